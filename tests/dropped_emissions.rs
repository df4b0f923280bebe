//! Reproduces the failure that sluicegate exists to prevent, deterministically, on tokio's paused
//! clock and a single-threaded runtime.
//!
//! The story: a gRPC observer's `onNext` pushed each record into a hot buffer of 256
//! (`Sinks.many().multicast().onBackpressureBuffer()`) with `tryEmitNext` and ignored the result.
//! Under bursts, before the downstream subscribed, or with several producers, the buffer
//! overflowed and records vanished without a trace. The naive tests show the loss (and name the
//! lost records); the sluicegate tests run the same scenarios and show that under `Block` nothing
//! is lost and per-producer order holds, and that under every shedding policy the missing records
//! are exactly the ones handed back to the producers and counted.

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::{Stream, StreamExt};
use sluicegate::pipeline::PipelineExt;
use sluicegate::sinks::{OverflowPolicy, SinkStats, bounded};
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;

/// The size of the hot buffer in the original incident.
const BUFFER: usize = 256;

/// A record id that remembers its producer and its place in that producer's sequence.
type Record = u64;

fn record(producer: u32, seq: u32) -> Record {
    u64::from(producer) << 32 | u64::from(seq)
}

fn producer_of(record: Record) -> u32 {
    (record >> 32) as u32
}

/// How records arrive and how the downstream consumes them.
#[derive(Clone, Copy, Debug)]
struct Scenario {
    producers: u32,
    records_per_producer: u32,
    /// Time between two emissions of one producer; zero means "as fast as the runtime allows".
    gap: Duration,
    /// When the downstream subscribes (the warm-up case: records arrive before it does).
    consumer_starts_after: Duration,
    batch_size: usize,
    linger: Duration,
    /// Time the downstream spends on each batch (a transform, a Kafka publish, a DB write).
    batch_cost: Duration,
}

/// A burst faster than a slow batch consumer.
const BURST: Scenario = Scenario {
    producers: 1,
    records_per_producer: 2_000,
    gap: Duration::ZERO,
    consumer_starts_after: Duration::ZERO,
    batch_size: 100,
    linger: Duration::from_millis(10),
    batch_cost: Duration::from_millis(20),
};

/// Records emitted before the consumer subscribes.
const WARM_UP: Scenario = Scenario {
    producers: 1,
    records_per_producer: 1_000,
    gap: Duration::ZERO,
    consumer_starts_after: Duration::from_secs(1),
    batch_size: 100,
    linger: Duration::from_millis(10),
    batch_cost: Duration::ZERO,
};

/// Several producers that together outpace the consumer.
const CONCURRENT: Scenario = Scenario {
    producers: 4,
    records_per_producer: 500,
    gap: Duration::from_millis(1),
    consumer_starts_after: Duration::ZERO,
    batch_size: 50,
    linger: Duration::from_millis(10),
    batch_cost: Duration::from_millis(20),
};

impl Scenario {
    fn all_records(&self) -> BTreeSet<Record> {
        (0..self.producers)
            .flat_map(|producer| {
                (0..self.records_per_producer).map(move |seq| record(producer, seq))
            })
            .collect()
    }

    async fn pause_between_emissions(&self) {
        if self.gap.is_zero() {
            tokio::task::yield_now().await;
        } else {
            tokio::time::sleep(self.gap).await;
        }
    }

    /// The downstream: subscribes late if the scenario says so, then takes batches slowly.
    async fn consume(self, records: impl Stream<Item = Record>) -> Vec<Record> {
        tokio::time::sleep(self.consumer_starts_after).await;
        let mut batches = std::pin::pin!(records.batch(self.batch_size, self.linger));
        let mut received = Vec::new();
        while let Some(batch) = batches.next().await {
            received.extend(batch);
            tokio::time::sleep(self.batch_cost).await;
        }
        received
    }

    /// The incident's pattern: a hot bounded buffer, `try_send`, result ignored.
    async fn run_naive(self) -> Vec<Record> {
        let (tx, rx) = mpsc::channel(BUFFER);
        let consumer = tokio::spawn(self.consume(ReceiverStream::new(rx)));
        let producers: Vec<_> = (0..self.producers)
            .map(|producer| {
                let tx = tx.clone();
                tokio::spawn(async move {
                    for seq in 0..self.records_per_producer {
                        // The bug under study, written on purpose: the result says whether the
                        // record was kept, and nobody looks at it.
                        #[allow(clippy::let_underscore_must_use)]
                        let _ = tx.try_send(record(producer, seq));
                        self.pause_between_emissions().await;
                    }
                })
            })
            .collect();
        drop(tx);
        for producer in producers {
            producer.await.expect("producer task");
        }
        consumer.await.expect("consumer task")
    }

    /// The same scenario through a sluicegate sink with `policy`.
    async fn run_sluicegate(self, policy: OverflowPolicy) -> Outcome {
        let (sink, stream) = bounded(BUFFER, policy);
        let handed_back = Arc::new(Mutex::new(Vec::new()));
        let consumer = tokio::spawn(self.consume(stream));
        let producers: Vec<_> = (0..self.producers)
            .map(|producer| {
                let sink = sink.clone();
                let handed_back = Arc::clone(&handed_back);
                tokio::spawn(async move {
                    for seq in 0..self.records_per_producer {
                        if let Some(lost) = sink.emit(record(producer, seq)).await.into_lost() {
                            handed_back.lock().expect("lock").push(lost);
                        }
                        self.pause_between_emissions().await;
                    }
                })
            })
            .collect();
        for producer in producers {
            producer.await.expect("producer task");
        }
        let stats = sink.stats();
        drop(sink);
        let delivered = consumer.await.expect("consumer task");
        let handed_back = std::mem::take(&mut *handed_back.lock().expect("lock"));
        Outcome {
            delivered,
            handed_back,
            stats,
        }
    }
}

struct Outcome {
    delivered: Vec<Record>,
    handed_back: Vec<Record>,
    stats: SinkStats,
}

fn missing(scenario: &Scenario, delivered: &[Record]) -> BTreeSet<Record> {
    let delivered: BTreeSet<Record> = delivered.iter().copied().collect();
    scenario
        .all_records()
        .difference(&delivered)
        .copied()
        .collect()
}

/// Names records compactly: `p0:256..=999, p1:3..=7`.
fn name_records(records: &BTreeSet<Record>) -> String {
    let mut ranges: Vec<(u32, u32, u32)> = Vec::new();
    for &record in records {
        let (producer, seq) = (producer_of(record), record as u32);
        match ranges.last_mut() {
            Some((p, _, end)) if *p == producer && *end + 1 == seq => *end = seq,
            _ => ranges.push((producer, seq, seq)),
        }
    }
    ranges
        .iter()
        .map(|(producer, start, end)| format!("p{producer}:{start}..={end}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Runs the naive pattern, asserts that it lost records, names them, and checks that the loss
/// is deterministic (the same records vanish on a second run).
async fn assert_naive_loses_records(scenario: Scenario) -> BTreeSet<Record> {
    let lost = missing(&scenario, &scenario.run_naive().await);
    assert!(
        !lost.is_empty(),
        "the naive pattern was expected to lose records in {scenario:?}"
    );
    eprintln!(
        "naive pattern lost {} of {} records: {}",
        lost.len(),
        scenario.all_records().len(),
        name_records(&lost)
    );
    let lost_again = missing(&scenario, &scenario.run_naive().await);
    assert_eq!(lost, lost_again, "the reproduction is deterministic");
    lost
}

/// Under `Block` every record arrives exactly once, and each producer's records arrive in order.
async fn assert_block_loses_nothing_and_keeps_order(scenario: Scenario) {
    let outcome = scenario.run_sluicegate(OverflowPolicy::Block).await;
    let lost = missing(&scenario, &outcome.delivered);
    assert!(
        lost.is_empty(),
        "Block lost records: {}",
        name_records(&lost)
    );
    assert_eq!(
        outcome.delivered.len(),
        scenario.all_records().len(),
        "no duplicates"
    );
    assert!(outcome.handed_back.is_empty());
    for producer in 0..scenario.producers {
        let sequence: Vec<u32> = outcome
            .delivered
            .iter()
            .filter(|record| producer_of(**record) == producer)
            .map(|record| *record as u32)
            .collect();
        assert!(
            sequence.windows(2).all(|pair| pair[0] < pair[1]),
            "producer {producer} order"
        );
    }
    let stats = outcome.stats;
    assert_eq!(stats.offered, stats.queued);
    assert_eq!(stats.lost(), 0);
}

/// Under a shedding policy the missing records are exactly those handed back, and the counters
/// account for every one of them.
async fn assert_shedding_is_exactly_accounted(scenario: Scenario, policy: OverflowPolicy) {
    let outcome = scenario.run_sluicegate(policy).await;
    let lost = missing(&scenario, &outcome.delivered);
    let handed_back: BTreeSet<Record> = outcome.handed_back.iter().copied().collect();
    assert_eq!(
        handed_back.len(),
        outcome.handed_back.len(),
        "no record is handed back twice"
    );
    assert!(
        !lost.is_empty(),
        "{policy:?} was expected to shed in {scenario:?}"
    );
    assert_eq!(lost, handed_back, "{policy:?}: missing == handed back");
    let stats = outcome.stats;
    let total = scenario.all_records().len() as u64;
    assert_eq!(stats.offered, total);
    assert_eq!(
        stats.offered,
        outcome.delivered.len() as u64
            + stats.dropped_newest
            + stats.evicted_oldest
            + stats.rejected,
        "{policy:?}: offered == delivered + counted drops ({stats:?})"
    );
    let counted = match policy {
        OverflowPolicy::DropNewest => stats.dropped_newest,
        OverflowPolicy::DropOldest => stats.evicted_oldest,
        OverflowPolicy::Reject => stats.rejected,
        OverflowPolicy::Block => unreachable!("Block does not shed"),
    };
    assert_eq!(
        counted,
        lost.len() as u64,
        "{policy:?} counts each lost record"
    );
}

const SHEDDING: [OverflowPolicy; 3] = [
    OverflowPolicy::DropNewest,
    OverflowPolicy::DropOldest,
    OverflowPolicy::Reject,
];

#[tokio::test(start_paused = true)]
async fn naive_buffer_loses_records_in_a_burst_faster_than_the_consumer() {
    assert_naive_loses_records(BURST).await;
}

#[tokio::test(start_paused = true)]
async fn naive_buffer_loses_every_record_past_256_before_the_consumer_subscribes() {
    let lost = assert_naive_loses_records(WARM_UP).await;
    let expected: BTreeSet<Record> = (BUFFER as u32..WARM_UP.records_per_producer)
        .map(|seq| record(0, seq))
        .collect();
    assert_eq!(lost, expected, "exactly records 256..1000 vanish");
}

#[tokio::test(start_paused = true)]
async fn naive_buffer_loses_records_from_concurrent_producers() {
    let lost = assert_naive_loses_records(CONCURRENT).await;
    let producers: BTreeSet<u32> = lost.iter().map(|record| producer_of(*record)).collect();
    assert_eq!(
        producers.len(),
        CONCURRENT.producers as usize,
        "every producer loses some"
    );
}

#[tokio::test(start_paused = true)]
async fn block_loses_nothing_in_a_burst() {
    assert_block_loses_nothing_and_keeps_order(BURST).await;
}

#[tokio::test(start_paused = true)]
async fn block_loses_nothing_before_the_consumer_subscribes() {
    assert_block_loses_nothing_and_keeps_order(WARM_UP).await;
}

#[tokio::test(start_paused = true)]
async fn block_loses_nothing_with_concurrent_producers() {
    assert_block_loses_nothing_and_keeps_order(CONCURRENT).await;
}

#[tokio::test(start_paused = true)]
async fn shedding_policies_hand_back_and_count_exactly_the_records_lost_in_a_burst() {
    for policy in SHEDDING {
        assert_shedding_is_exactly_accounted(BURST, policy).await;
    }
}

#[tokio::test(start_paused = true)]
async fn shedding_policies_hand_back_and_count_exactly_the_records_lost_during_warm_up() {
    for policy in SHEDDING {
        assert_shedding_is_exactly_accounted(WARM_UP, policy).await;
    }
    // DropOldest keeps the newest 256 and hands back the first 744 as they are displaced.
    let outcome = WARM_UP.run_sluicegate(OverflowPolicy::DropOldest).await;
    let expected: Vec<Record> = (744..1_000).map(|seq| record(0, seq)).collect();
    assert_eq!(outcome.delivered, expected);
}

#[tokio::test(start_paused = true)]
async fn shedding_policies_hand_back_and_count_exactly_the_records_lost_with_concurrent_producers()
{
    for policy in SHEDDING {
        assert_shedding_is_exactly_accounted(CONCURRENT, policy).await;
    }
}

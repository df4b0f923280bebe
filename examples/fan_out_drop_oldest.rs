//! A pipeline that feeds three peers, one of them slow, without losing anything silently.
//!
//! Records arrive with some upstream retries mixed in. `dedup_by_key` drops the repeats, then
//! `fan_out` hands every record to three peers:
//!
//! - `archive` and `index`, under [`OverflowPolicy::Block`]: small buffers, live consumers. When a
//!   buffer is full the whole fan-out waits (backpressure), so they receive every record.
//! - `dashboard`, under [`OverflowPolicy::DropOldest`] with room for 3: its consumer is stuck
//!   until the run is over, and it only ever wants the latest records. Each record that pushes
//!   an old one out reports the evicted record in its [`FanOutReport`].
//!
//! The example prints one line per report and each peer's [`SinkStats`], and asserts the
//! accounting invariant `offered == queued + dropped_newest + rejected + closed`, so it exits
//! non-zero if the library regresses.
//!
//! ```sh
//! cargo run --example fan_out_drop_oldest
//! ```

use futures::StreamExt;
use sluicegate::pipeline::{FanOutReport, PipelineExt};
use sluicegate::sinks::{Emission, OverflowPolicy, SinkStats, SinkStream, bounded};

#[derive(Clone, Debug)]
struct Record {
    id: u32,
    /// 1 for the first delivery, more for an upstream retry of the same record.
    attempt: u32,
}

const PEERS: [&str; 3] = ["archive", "index", "dashboard"];

/// Ids 1..=8 in order, with upstream retries of 3, 2 and 5 mixed in.
fn incoming() -> Vec<Record> {
    const ARRIVALS: [(u32, u32); 11] = [
        (1, 1),
        (2, 1),
        (3, 1),
        (3, 2),
        (4, 1),
        (2, 2),
        (5, 1),
        (6, 1),
        (5, 2),
        (7, 1),
        (8, 1),
    ];
    ARRIVALS
        .iter()
        .map(|&(id, attempt)| Record { id, attempt })
        .collect()
}

/// A live consumer: takes every record as soon as it is queued.
fn consume(stream: SinkStream<Record>) -> tokio::task::JoinHandle<Vec<u32>> {
    tokio::spawn(stream.map(|record| record.id).collect())
}

/// One line per report (one report per record that passed dedup): what each peer did with it.
fn print_report(number: u32, report: &FanOutReport<Record>) {
    let outcomes: Vec<String> = PEERS
        .iter()
        .zip(&report.outcomes)
        .map(|(peer, outcome)| match outcome {
            Emission::Evicted(old) => format!("{peer}=evicted #{}", old.id),
            other => format!("{peer}={}", other.kind()),
        })
        .collect();
    println!("  report {number}: {}", outcomes.join("  "));
}

fn print_and_check_stats(peer: &str, s: SinkStats) {
    println!(
        "  {peer:<9} offered={} queued={} delivered={} evicted_oldest={} dropped_newest={} \
         rejected={} closed={} blocked_emits={}",
        s.offered,
        s.queued,
        s.delivered,
        s.evicted_oldest,
        s.dropped_newest,
        s.rejected,
        s.closed,
        s.blocked_emits
    );
    assert_eq!(
        s.offered,
        s.queued + s.dropped_newest + s.rejected + s.closed
    );
    assert_eq!(
        s.queued,
        s.delivered + s.evicted_oldest + s.abandoned + s.len
    );
}

// Single-threaded: every run interleaves the pipeline and the consumers the same way.
#[tokio::main(flavor = "current_thread")]
async fn main() {
    let (archive, archive_stream) = bounded(2, OverflowPolicy::Block);
    let (index, index_stream) = bounded(2, OverflowPolicy::Block);
    let (dashboard, dashboard_stream) = bounded(3, OverflowPolicy::DropOldest);
    // Observers read the counters after the handles have moved into the pipeline.
    let observers = [archive.observer(), index.observer(), dashboard.observer()];
    let archived = consume(archive_stream);
    let indexed = consume(index_stream);

    let arrivals = incoming();
    let names: Vec<String> = arrivals
        .iter()
        .map(|r| match r.attempt {
            1 => format!("#{}", r.id),
            n => format!("#{}(retry {n})", r.id),
        })
        .collect();
    println!("incoming: {}\n", names.join(" "));

    let records = futures::stream::iter(arrivals).dedup_by_key(1024, |record| record.id);
    let dedup = records.counters();
    let mut reports = records.fan_out(vec![archive, index, dashboard]);

    println!("fan-out reports (archive, index: Block, 2 slots; dashboard: DropOldest, 3 slots):");
    let mut evicted = Vec::new();
    let mut count = 0;
    while let Some(report) = reports.next().await {
        count += 1;
        print_report(count, &report);
        let [archive, index, dashboard] = &report.outcomes[..] else {
            panic!("one outcome per peer, got {report:?}");
        };
        assert!(
            archive.is_queued() && index.is_queued(),
            "Block peers take all"
        );
        if let Emission::Evicted(old) = dashboard {
            evicted.push(old.id);
        }
    }
    // Dropping the fan-out drops its handles: the consumers' streams end once drained.
    drop(reports);
    let archived = archived.await.expect("archive consumer");
    let indexed = indexed.await.expect("index consumer");
    // The stuck dashboard consumer finally reads what is left: the latest three.
    let shown: Vec<u32> = dashboard_stream.map(|record| record.id).collect().await;

    let d = dedup.snapshot();
    println!(
        "\ndedup: passed={} duplicates={} forgotten={}",
        d.passed, d.duplicates, d.forgotten
    );
    println!("received: archive={archived:?} index={indexed:?} dashboard={shown:?}");
    println!("evicted from dashboard, each reported: {evicted:?}");
    println!("\nper-peer SinkStats:");
    for (peer, observer) in PEERS.iter().zip(&observers) {
        print_and_check_stats(peer, observer.stats());
    }

    let all: Vec<u32> = (1..=8).collect();
    assert_eq!((d.passed, d.duplicates, d.forgotten), (8, 3, 0));
    assert_eq!(archived, all);
    assert_eq!(indexed, all);
    assert_eq!(shown, [6, 7, 8]);
    assert_eq!(evicted, [1, 2, 3, 4, 5]);
    let dashboard = observers[2].stats();
    assert_eq!(dashboard.evicted_oldest, evicted.len() as u64);
    assert_eq!(dashboard.lost(), evicted.len() as u64);
    assert!(
        observers[0].stats().blocked_emits > 0,
        "archive pushed back"
    );
}

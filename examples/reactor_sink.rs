//! The bug sluicegate exists for, reproduced and fixed side by side.
//!
//! The incident: each incoming record was pushed into a 256-slot hot buffer with Reactor's
//! `tryEmitNext`, and the returned `EmitResult` was ignored. A burst that arrived before the
//! downstream subscribed overflowed the buffer, and the overflow vanished without a trace.
//!
//! Here a producer bursts 1000 records into a 256-slot sink while the consumer has not subscribed
//! yet, three ways:
//!
//! - **naive**: `try_emit`, outcome ignored (the bug). The consumer gets 256 records; the other
//!   744 are gone for the caller, and only the sink's counters still know about them.
//! - **Block**: `emit().await` under [`OverflowPolicy::Block`]. The producer waits for the
//!   consumer (backpressure) and every record arrives, in order.
//! - **DropNewest**: the same `emit().await` code under a shedding policy. Records are lost on
//!   purpose, and every lost one comes back to the producer as an [`Emission`] and is counted.
//!
//! The example asserts what it prints, so it exits non-zero if the library regresses.
//!
//! ```sh
//! cargo run --example reactor_sink
//! ```

use futures::StreamExt;
use sluicegate::sinks::{Emission, OverflowPolicy, SinkHandle, SinkObserver, SinkStats, bounded};

/// The size of the hot buffer in the incident.
const BUFFER: usize = 256;
/// Records in one burst.
const SENT: u32 = 1000;

/// How the producer hands records to the sink.
#[derive(Clone, Copy)]
enum Producer {
    /// The incident's code: `try_emit` and move on.
    FireAndForget,
    /// `emit().await`, keeping whatever the sink hands back.
    Emit,
}

/// What one run produced.
struct Run {
    received: Vec<u32>,
    handed_back: Vec<u32>,
    stats: SinkStats,
}

/// The incident's pattern, written on purpose: this is the bug. `try_emit` says whether the
/// record was kept, and the code looks at the answer only to do nothing with it. (sluicegate
/// makes this decision visible: `Emission` is `#[must_use]`, so ignoring it takes code like this.)
fn fire_and_forget(sink: &SinkHandle<u32>, record: u32) {
    match sink.try_emit(record) {
        Emission::Queued | Emission::Evicted(_) => {}
        // THE BUG: the record is right here, refused, and it is dropped on the floor.
        Emission::Rejected(_) | Emission::DroppedNewest(_) | Emission::Closed(_) => {}
    }
}

/// Bursts `SENT` records into `sink`; returns the records the sink handed back.
async fn produce(sink: SinkHandle<u32>, producer: Producer) -> Vec<u32> {
    let mut handed_back = Vec::new();
    for record in 0..SENT {
        match producer {
            Producer::FireAndForget => fire_and_forget(&sink, record),
            Producer::Emit => {
                if let Some(lost) = sink.emit(record).await.into_lost() {
                    handed_back.push(lost);
                }
            }
        }
    }
    // Dropping the last handle ends the consumer's stream once it has drained the buffer.
    handed_back
}

/// Lets the producer run until the buffer is full: the consumer has not subscribed yet. A
/// condition on the sink's state, not a sleep, orders the two. A producer that never waits
/// (`try_emit`, or `emit` under a shedding policy) finishes its whole burst in that time; one
/// under `Block` stops at record 257 and waits for the consumer.
async fn until_full(observer: &SinkObserver<u32>) {
    while observer.len() < BUFFER {
        tokio::task::yield_now().await;
    }
}

async fn run(policy: OverflowPolicy, producer: Producer) -> Run {
    let (sink, mut stream) = bounded(BUFFER, policy);
    let observer = sink.observer();
    let producing = tokio::spawn(produce(sink, producer));
    until_full(&observer).await;
    // Now the consumer subscribes and takes everything until the producer is done.
    let received: Vec<u32> = stream.by_ref().collect().await;
    let handed_back = producing.await.expect("the producer task panicked");
    Run {
        received,
        handed_back,
        stats: stream.stats(),
    }
}

/// The counters account for every record, whatever the caller did with the outcomes.
fn assert_accounted(run: &Run) {
    let s = run.stats;
    assert_eq!(s.offered, u64::from(SENT));
    assert_eq!(
        s.offered,
        s.queued + s.dropped_newest + s.rejected + s.closed
    );
    assert_eq!(
        s.queued,
        s.delivered + s.evicted_oldest + s.abandoned + s.len
    );
    assert_eq!(s.delivered, run.received.len() as u64);
    assert_eq!(s.lost(), u64::from(SENT) - s.delivered);
}

fn print_row(case: &str, run: &Run) {
    let s = run.stats;
    println!(
        "{case:<37} {SENT:>5} {:>9} {:>12} {:>9} {:>15} {:>14}",
        run.received.len(),
        run.handed_back.len(),
        s.rejected,
        s.dropped_newest,
        s.blocked_emits,
    );
}

// Single-threaded: the producer runs until it has to wait, then the consumer runs, so every run
// interleaves the same way and prints the same numbers.
#[tokio::main(flavor = "current_thread")]
async fn main() {
    let all: Vec<u32> = (0..SENT).collect();
    let first_buffer: Vec<u32> = (0..BUFFER as u32).collect();
    let overflow: Vec<u32> = (BUFFER as u32..SENT).collect();

    let naive = run(OverflowPolicy::Block, Producer::FireAndForget).await;
    let block = run(OverflowPolicy::Block, Producer::Emit).await;
    let drop_newest = run(OverflowPolicy::DropNewest, Producer::Emit).await;

    println!(
        "{:<37} {:>5} {:>9} {:>12} {:>9} {:>15} {:>14}",
        "case", "sent", "received", "handed back", "rejected", "dropped_newest", "blocked_emits"
    );
    print_row("naive: try_emit, outcome ignored", &naive);
    print_row("sluicegate: Block, emit().await", &block);
    print_row("sluicegate: DropNewest, emit().await", &drop_newest);

    // Naive: the burst past the buffer vanished; the caller holds nothing, only counters saw it.
    assert_eq!(naive.received, first_buffer);
    assert!(naive.handed_back.is_empty());
    assert_eq!(naive.stats.rejected, u64::from(SENT) - BUFFER as u64);
    // Block: every record, in order; the producer waited instead of losing anything.
    assert_eq!(block.received, all);
    assert!(block.handed_back.is_empty());
    assert_eq!(block.stats.lost(), 0);
    assert!(
        block.stats.blocked_emits > 0,
        "the producer felt backpressure"
    );
    // DropNewest: the same loss as naive, but every lost record came back and was counted.
    assert_eq!(drop_newest.received, first_buffer);
    assert_eq!(drop_newest.handed_back, overflow);
    assert_eq!(
        drop_newest.stats.dropped_newest,
        drop_newest.handed_back.len() as u64
    );
    for run in [&naive, &block, &drop_newest] {
        assert_accounted(run);
    }

    println!(
        "\nnaive: {} records lost, and the producer never knew (only the sink's counters saw \
         them).\nBlock: none lost. DropNewest: {} lost, every one handed back to the producer \
         and counted.",
        naive.stats.lost(),
        drop_newest.handed_back.len()
    );
}

//! The pipeline combinators, one test per behaviour; timing on tokio's paused clock.

use std::time::Duration;

use futures::{Stream, StreamExt};
use sluicegate::pipeline::PipelineExt;
use sluicegate::sinks::{Emission, OverflowPolicy, bounded};
use tokio::sync::mpsc;
use tokio::time::{Instant, advance};
use tokio_stream::wrappers::UnboundedReceiverStream;

#[tokio::test]
async fn dedup_passes_first_sightings_and_drops_repeats() {
    let deduped = futures::stream::iter([5, 1, 5, 2, 1, 3]).dedup_by_key(16, |value| *value);
    let counters = deduped.counters();
    assert_eq!(deduped.collect::<Vec<_>>().await, vec![5, 1, 2, 3]);
    let stats = counters.snapshot();
    assert_eq!((stats.passed, stats.duplicates, stats.forgotten), (4, 2, 0));
}

#[tokio::test]
async fn dedup_forgets_the_oldest_key_when_its_window_is_full_and_counts_it() {
    // Window of 2: after 1, 2, 3 the key 1 has been forgotten, so 1 passes again; 3 is remembered.
    let deduped = futures::stream::iter([1, 2, 3, 1, 3]).dedup_by_key(2, |value| *value);
    let counters = deduped.counters();
    assert_eq!(deduped.collect::<Vec<_>>().await, vec![1, 2, 3, 1]);
    let stats = counters.snapshot();
    assert_eq!((stats.passed, stats.duplicates, stats.forgotten), (4, 1, 2));
}

#[tokio::test]
async fn dedup_by_key_compares_keys_not_items() {
    let records = [("a", 1), ("b", 2), ("a", 3)];
    let deduped = futures::stream::iter(records).dedup_by_key(8, |(id, _)| *id);
    assert_eq!(deduped.collect::<Vec<_>>().await, vec![("a", 1), ("b", 2)]);
}

#[tokio::test(start_paused = true)]
async fn batch_yields_a_full_batch_at_once() {
    let (tx, rx) = mpsc::unbounded_channel();
    let mut batches =
        std::pin::pin!(UnboundedReceiverStream::new(rx).batch(3, Duration::from_millis(100)));
    for value in 0..3 {
        tx.send(value).unwrap();
    }
    let started = Instant::now();
    assert_eq!(batches.next().await, Some(vec![0, 1, 2]));
    assert_eq!(
        started.elapsed(),
        Duration::ZERO,
        "a full batch does not linger"
    );
}

#[tokio::test(start_paused = true)]
async fn batch_yields_a_partial_batch_when_linger_expires_after_its_first_item() {
    let (tx, rx) = mpsc::unbounded_channel();
    let mut batches =
        Box::pin(UnboundedReceiverStream::new(rx).batch(10, Duration::from_millis(100)));
    let consumer = tokio::spawn(async move {
        let batch = batches.next().await;
        (batch, Instant::now())
    });
    let started = Instant::now();
    tx.send(1).unwrap();
    // Let the consumer take the first item now: the linger timer starts when it does.
    tokio::task::yield_now().await;
    advance(Duration::from_millis(40)).await;
    tx.send(2).unwrap();
    let (batch, at) = consumer.await.unwrap();
    assert_eq!(batch, Some(vec![1, 2]));
    assert_eq!(at - started, Duration::from_millis(100));
}

#[tokio::test(start_paused = true)]
async fn batch_never_loses_the_partial_batch_when_the_input_ends() {
    let batches = futures::stream::iter(0..7).batch(3, Duration::from_secs(60));
    assert_eq!(
        batches.collect::<Vec<_>>().await,
        vec![vec![0, 1, 2], vec![3, 4, 5], vec![6]]
    );
}

#[tokio::test(start_paused = true)]
async fn batch_never_yields_an_empty_batch_while_idle() {
    let (tx, rx) = mpsc::unbounded_channel::<u8>();
    let mut batches =
        std::pin::pin!(UnboundedReceiverStream::new(rx).batch(3, Duration::from_millis(10)));
    let idle = tokio::time::timeout(Duration::from_secs(5), batches.next()).await;
    assert!(idle.is_err(), "nothing arrives, nothing is yielded");
    drop(tx);
    assert_eq!(batches.next().await, None);
}

#[tokio::test]
async fn fan_out_delivers_every_item_to_every_sink_and_reports_each_outcome() {
    let (first, first_stream) = bounded(8, OverflowPolicy::Block);
    let (second, second_stream) = bounded(8, OverflowPolicy::Block);
    let reports: Vec<_> = futures::stream::iter(["a", "b"])
        .fan_out(vec![first, second])
        .collect()
        .await;
    assert_eq!(reports.len(), 2);
    assert!(
        reports
            .iter()
            .all(|report| report.all_queued() && report.outcomes.len() == 2)
    );
    assert_eq!(first_stream.collect::<Vec<_>>().await, vec!["a", "b"]);
    assert_eq!(second_stream.collect::<Vec<_>>().await, vec!["a", "b"]);
}

#[tokio::test]
async fn fan_out_reports_what_a_full_drop_or_reject_sink_refused_without_stalling() {
    let (dropping, dropping_stream) = bounded(1, OverflowPolicy::DropNewest);
    let (rejecting, rejecting_stream) = bounded(1, OverflowPolicy::Reject);
    let (evicting, evicting_stream) = bounded(1, OverflowPolicy::DropOldest);
    let reports: Vec<_> = futures::stream::iter([1, 2])
        .fan_out(vec![dropping, rejecting, evicting])
        .collect()
        .await;
    assert!(reports[0].all_queued());
    assert!(
        !reports[1].all_queued(),
        "two sinks refused the second item"
    );
    assert_eq!(
        reports[1].outcomes,
        vec![
            Emission::DroppedNewest(2),
            Emission::Rejected(2),
            Emission::Evicted(1)
        ]
    );
    assert_eq!(dropping_stream.collect::<Vec<_>>().await, vec![1]);
    assert_eq!(rejecting_stream.collect::<Vec<_>>().await, vec![1]);
    assert_eq!(evicting_stream.collect::<Vec<_>>().await, vec![2]);
}

#[tokio::test(start_paused = true)]
async fn fan_out_stalls_on_a_full_block_sink_and_stops_polling_its_input() {
    let (slow, mut slow_stream) = bounded(1, OverflowPolicy::Block);
    let (fast, fast_stream) = bounded(16, OverflowPolicy::DropNewest);
    let (tx, rx) = mpsc::unbounded_channel();
    let fan_out = tokio::spawn(
        UnboundedReceiverStream::new(rx)
            .fan_out(vec![slow, fast])
            .collect::<Vec<_>>(),
    );
    for value in 0..3 {
        tx.send(value).unwrap();
    }
    drop(tx);
    tokio::time::sleep(Duration::from_secs(1)).await;
    // Item 0 filled the slow sink, item 1 is waiting for it, item 2 has not been taken.
    assert!(!fan_out.is_finished());
    let fast_stats = fast_stream.stats();
    assert_eq!(
        fast_stats.offered, 1,
        "the fan-out stalled before emitting 1 to the fast sink"
    );
    assert_eq!(slow_stream.next().await, Some(0));
    assert_eq!(slow_stream.next().await, Some(1));
    assert_eq!(slow_stream.next().await, Some(2));
    let reports = fan_out.await.unwrap();
    assert!(reports.iter().all(|report| report.all_queued()));
    assert_eq!(fast_stream.collect::<Vec<_>>().await, vec![0, 1, 2]);
}

#[tokio::test(start_paused = true)]
async fn size_hints_bound_what_the_combinators_can_yield() {
    let input = || futures::stream::iter(0..7);
    assert_eq!(
        input().dedup_by_key(4, |value| *value).size_hint(),
        (0, Some(7)),
        "dedup may drop everything after the first item, never adds one"
    );
    let (tx, rx) = mpsc::unbounded_channel::<u8>();
    assert_eq!(
        UnboundedReceiverStream::new(rx)
            .dedup_by_key(4, |value| *value)
            .size_hint(),
        (0, None),
        "an unbounded input stays unbounded"
    );
    drop(tx);
    let mut batches = std::pin::pin!(input().batch(3, Duration::from_secs(60)));
    let (lower, upper) = batches.size_hint();
    assert!(
        lower <= 3 && upper.is_some_and(|upper| upper >= 3),
        "7 items in batches of 3 make 3 batches: {:?}",
        (lower, upper)
    );
    assert_eq!(
        (lower, upper),
        (2, Some(7)),
        "tokio_stream's chunks_timeout hint"
    );
    assert_eq!(batches.next().await, Some(vec![0, 1, 2]));
    assert_eq!(batches.size_hint(), (1, Some(4)));
}

/// An item that counts its clones.
#[derive(Debug)]
struct Counted(std::sync::Arc<std::sync::atomic::AtomicUsize>);

impl Clone for Counted {
    fn clone(&self) -> Self {
        self.0.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        Counted(std::sync::Arc::clone(&self.0))
    }
}

#[tokio::test]
async fn fan_out_clones_an_item_for_all_sinks_but_the_last_which_takes_it() {
    let clones = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let sinks: Vec<_> = (0..3).map(|_| bounded(4, OverflowPolicy::Block)).collect();
    let (handles, streams): (Vec<_>, Vec<_>) = sinks.into_iter().unzip();
    let items = (0..2).map(|_| Counted(std::sync::Arc::clone(&clones)));
    let reports: Vec<_> = futures::stream::iter(items)
        .fan_out(handles)
        .collect()
        .await;
    assert!(reports.iter().all(|report| report.all_queued()));
    assert_eq!(
        clones.load(std::sync::atomic::Ordering::Relaxed),
        4,
        "two clones per item for three sinks"
    );
    for stream in streams {
        assert_eq!(stream.collect::<Vec<_>>().await.len(), 2);
    }
}

//! The behaviour of bounded sinks, one test per behaviour, on tokio's paused clock where time
//! matters.

use std::time::Duration;

use futures::{FutureExt, StreamExt};
use sluicegate::sinks::{Emission, OverflowPolicy, SinkStats, bounded};

const ALL_POLICIES: [OverflowPolicy; 4] = [
    OverflowPolicy::Block,
    OverflowPolicy::DropNewest,
    OverflowPolicy::DropOldest,
    OverflowPolicy::Reject,
];

fn assert_accounted(stats: &SinkStats) {
    assert_eq!(
        stats.offered,
        stats.queued + stats.dropped_newest + stats.rejected + stats.closed,
        "every offered item is queued or refused: {stats:?}"
    );
    assert_eq!(
        stats.queued,
        stats.delivered + stats.evicted_oldest + stats.abandoned + stats.len,
        "every queued item is delivered, evicted, abandoned or still queued: {stats:?}"
    );
}

#[tokio::test]
async fn invariant_holds_for_every_policy_through_overflow_and_close() {
    for policy in ALL_POLICIES {
        let (handle, mut stream) = bounded(3, policy);
        let mut returned = Vec::new();
        for item in 0..10 {
            if let Some(lost) = handle.try_emit(item).into_lost() {
                returned.push(lost);
            }
            assert_accounted(&handle.stats());
        }
        let first = stream.next().await;
        assert!(first.is_some(), "{policy:?} keeps items");
        drop(stream);
        assert!(
            matches!(handle.try_emit(99), Emission::Closed(99)),
            "{policy:?}"
        );
        let stats = handle.stats();
        assert_accounted(&stats);
        assert_eq!(stats.offered, 11, "{policy:?}");
        assert_eq!(stats.delivered, 1, "{policy:?}");
        assert_eq!(
            stats.abandoned, 2,
            "{policy:?}: two items left queued at drop"
        );
        assert_eq!(stats.lost(), returned.len() as u64 + 1 + 2, "{policy:?}");
    }
}

// serde_json comes with the `node` feature; the derive itself is the `serde` feature.
#[cfg(feature = "node")]
#[tokio::test]
async fn policy_serializes_as_snake_case() {
    let names: Vec<String> = ALL_POLICIES
        .iter()
        .map(|policy| serde_json::to_string(policy).unwrap())
        .collect();
    assert_eq!(
        names,
        [
            r#""block""#,
            r#""drop_newest""#,
            r#""drop_oldest""#,
            r#""reject""#
        ]
    );
    assert_eq!(OverflowPolicy::default(), OverflowPolicy::Block);
}

#[tokio::test]
async fn drop_oldest_evicts_the_oldest_queued_item_and_hands_it_back() {
    let (handle, stream) = bounded(3, OverflowPolicy::DropOldest);
    for item in 1..=3 {
        assert_eq!(handle.try_emit(item), Emission::Queued);
    }
    assert_eq!(handle.try_emit(4), Emission::Evicted(1));
    assert_eq!(handle.try_emit(5), Emission::Evicted(2));
    drop(handle);
    assert_eq!(stream.collect::<Vec<_>>().await, vec![3, 4, 5]);
}

#[tokio::test]
async fn drop_newest_keeps_the_queue_and_returns_the_new_item() {
    let (handle, stream) = bounded(2, OverflowPolicy::DropNewest);
    assert!(handle.try_emit(1).is_queued());
    assert!(handle.try_emit(2).is_queued());
    assert_eq!(handle.emit(3).await, Emission::DroppedNewest(3));
    let stats = handle.stats();
    assert_eq!(stats.dropped_newest, 1);
    drop(handle);
    assert_eq!(stream.collect::<Vec<_>>().await, vec![1, 2]);
}

#[tokio::test]
async fn reject_refuses_when_full_and_accepts_again_after_a_slot_frees() {
    let (handle, mut stream) = bounded(1, OverflowPolicy::Reject);
    assert_eq!(handle.emit(1).await, Emission::Queued);
    assert_eq!(handle.emit(2).await, Emission::Rejected(2));
    assert_eq!(stream.next().await, Some(1));
    assert_eq!(handle.emit(3).await, Emission::Queued);
    assert_eq!(handle.stats().rejected, 1);
}

#[tokio::test]
async fn try_emit_under_block_rejects_instead_of_waiting() {
    let (handle, _stream) = bounded(1, OverflowPolicy::Block);
    assert_eq!(handle.try_emit(1), Emission::Queued);
    assert_eq!(handle.try_emit(2), Emission::Rejected(2));
    assert_eq!(handle.stats().rejected, 1);
}

#[tokio::test(start_paused = true)]
async fn block_waits_for_the_consumer_and_counts_the_time_blocked() {
    let (handle, mut stream) = bounded(1, OverflowPolicy::Block);
    assert_eq!(handle.emit(1).await, Emission::Queued);
    let mut second = std::pin::pin!(handle.emit(2));
    assert!(
        second.as_mut().now_or_never().is_none(),
        "the producer parks while the sink is full"
    );
    assert_eq!(
        handle.stats().offered,
        1,
        "a parked emission is not counted yet"
    );
    tokio::time::advance(Duration::from_millis(250)).await;
    assert!(
        second.as_mut().now_or_never().is_none(),
        "still parked: nothing freed a slot"
    );
    assert_eq!(stream.next().await, Some(1));
    assert_eq!(second.await, Emission::Queued);
    let stats = handle.stats();
    assert_eq!(stats.blocked_emits, 1);
    assert_eq!(stats.blocked, Duration::from_millis(250));
    assert_eq!(stream.next().await, Some(2));
}

#[tokio::test(start_paused = true)]
async fn a_permit_dropped_unused_wakes_a_producer_waiting_in_emit() {
    let (handle, mut stream) = bounded(1, OverflowPolicy::Block);
    let permit = handle.reserve().await.expect("sink open");
    let producer = tokio::spawn({
        let handle = handle.clone();
        async move { handle.emit(7).await }
    });
    tokio::task::yield_now().await;
    assert!(
        !producer.is_finished(),
        "the only slot is reserved: emit waits"
    );
    tokio::time::advance(Duration::from_millis(10)).await;
    drop(permit);
    // On the paused clock a missing wake-up would idle the runtime and fire this timeout at
    // once, failing the test instead of hanging it.
    let emission = tokio::time::timeout(Duration::from_secs(5), producer)
        .await
        .expect("the dropped permit woke the waiting producer")
        .unwrap();
    assert_eq!(emission, Emission::Queued);
    assert_eq!(stream.next().await, Some(7));
    let stats = handle.stats();
    assert_eq!(
        (stats.offered, stats.queued, stats.blocked_emits),
        (1, 1, 1)
    );
    assert_eq!(stats.blocked, Duration::from_millis(10));
}

#[tokio::test(start_paused = true)]
async fn a_permit_dropped_unused_while_nobody_waits_leaves_the_slot_free() {
    let (handle, _stream) = bounded(2, OverflowPolicy::Block);
    let first = handle.reserve().await.expect("sink open");
    let second = handle.reserve().await.expect("sink open");
    drop(first);
    assert_eq!(handle.try_emit(1), Emission::Queued);
    assert_eq!(
        handle.try_emit(2),
        Emission::Rejected(2),
        "one slot still reserved"
    );
    assert_eq!(second.emit(3), Emission::Queued);
    let stats = handle.stats();
    assert_eq!((stats.queued, stats.rejected, stats.len), (2, 1, 2));
}

#[tokio::test]
async fn a_cancelled_emit_queues_nothing_counts_nothing_and_frees_nothing() {
    let (handle, mut stream) = bounded(1, OverflowPolicy::Block);
    assert_eq!(handle.emit(1).await, Emission::Queued);
    // Polled once while the sink is full, then dropped: cancelled while waiting.
    assert!(handle.emit(2).now_or_never().is_none());
    let stats = handle.stats();
    assert_eq!((stats.offered, stats.queued, stats.len), (1, 1, 1));
    assert_eq!(stream.next().await, Some(1));
    assert_eq!(
        handle.try_emit(3),
        Emission::Queued,
        "the slot is free again"
    );
}

#[tokio::test]
async fn a_reserved_slot_keeps_the_item_until_it_is_handed_over() {
    let (handle, mut stream) = bounded(1, OverflowPolicy::Reject);
    let permit = handle.reserve().await.expect("sink open");
    assert_eq!(
        handle.try_emit(1),
        Emission::Rejected(1),
        "the only slot is reserved"
    );
    assert_eq!(permit.emit(2), Emission::Queued);
    assert_eq!(stream.next().await, Some(2));
    drop(handle.reserve().await);
    assert_eq!(
        handle.try_emit(3),
        Emission::Queued,
        "an unused reservation frees its slot"
    );
}

#[tokio::test]
async fn drop_oldest_with_every_slot_reserved_drops_the_newest() {
    let (handle, _stream) = bounded(1, OverflowPolicy::DropOldest);
    let _permit = handle.reserve().await.expect("sink open");
    assert_eq!(handle.try_emit(1), Emission::DroppedNewest(1));
    let stats = handle.stats();
    assert_eq!(
        (
            stats.offered,
            stats.dropped_newest,
            stats.evicted_oldest,
            stats.queued
        ),
        (1, 1, 0, 0),
        "counted as dropped_newest, not as an eviction"
    );
    assert_accounted(&stats);
}

#[tokio::test]
async fn dropping_the_stream_closes_the_sink_for_every_producer() {
    let (handle, stream) = bounded(4, OverflowPolicy::Block);
    let other = handle.clone();
    drop(stream);
    assert!(handle.is_closed());
    assert_eq!(handle.emit(1).await, Emission::Closed(1));
    assert_eq!(other.try_emit(2), Emission::Closed(2));
    assert_eq!(handle.stats().closed, 2);
}

#[tokio::test(start_paused = true)]
async fn dropping_the_stream_wakes_producers_blocked_on_a_full_sink() {
    let (handle, stream) = bounded(1, OverflowPolicy::Block);
    assert_eq!(handle.emit(1).await, Emission::Queued);
    let blocked = tokio::spawn({
        let handle = handle.clone();
        async move { handle.emit(2).await }
    });
    tokio::task::yield_now().await;
    tokio::time::advance(Duration::from_millis(5)).await;
    drop(stream);
    assert_eq!(blocked.await.unwrap(), Emission::Closed(2));
    let stats = handle.stats();
    assert_eq!((stats.abandoned, stats.closed), (1, 1));
    assert_eq!(
        (stats.blocked_emits, stats.blocked),
        (1, Duration::from_millis(5)),
        "the wait before the refusal is counted"
    );
    assert_accounted(&stats);
}

#[tokio::test]
async fn the_stream_drains_everything_queued_after_the_last_handle_is_dropped() {
    let (handle, stream) = bounded(8, OverflowPolicy::Block);
    let second = handle.clone();
    for item in 0..4 {
        assert!(handle.try_emit(item).is_queued());
        assert!(second.try_emit(item + 10).is_queued());
    }
    drop(handle);
    drop(second);
    assert_eq!(
        stream.collect::<Vec<_>>().await,
        vec![0, 10, 1, 11, 2, 12, 3, 13]
    );
}

#[tokio::test]
async fn close_refuses_new_items_but_yields_what_was_queued() {
    let (handle, mut stream) = bounded(4, OverflowPolicy::Block);
    assert!(handle.try_emit(1).is_queued());
    assert!(handle.try_emit(2).is_queued());
    stream.close();
    assert_eq!(handle.emit(3).await, Emission::Closed(3));
    assert_eq!(stream.by_ref().collect::<Vec<_>>().await, vec![1, 2]);
    let stats = stream.stats();
    assert_eq!((stats.delivered, stats.abandoned, stats.closed), (2, 0, 1));
}

#[test]
#[should_panic(expected = "capacity of at least 1")]
fn a_sink_of_capacity_zero_is_refused() {
    let _sink = bounded::<u8>(0, OverflowPolicy::Block);
}

#[test]
fn handles_are_send_sync_and_clone() {
    fn assert_send_sync_clone<T: Send + Sync + Clone>() {}
    assert_send_sync_clone::<sluicegate::sinks::SinkHandle<String>>();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn producers_cancelled_while_blocked_never_lose_a_queued_item_or_strand_a_waiter() {
    use std::collections::BTreeSet;
    let (handle, stream) = bounded(4, OverflowPolicy::Block);
    let producers: Vec<_> = (0..4u64)
        .map(|producer| {
            let handle = handle.clone();
            tokio::spawn(async move {
                let mut cancelled = Vec::new();
                for seq in 0..2_000u64 {
                    let item = producer << 32 | seq;
                    // Give up on some waits: a cancelled emit must leave no trace.
                    let wait = Duration::from_micros(50 * (seq % 3));
                    match tokio::time::timeout(wait, handle.emit(item)).await {
                        Ok(emission) => assert_eq!(emission, Emission::Queued),
                        Err(_elapsed) => cancelled.push(item),
                    }
                }
                cancelled
            })
        })
        .collect();
    drop(handle);
    let consumer = tokio::spawn(async move {
        let mut stream = stream;
        let mut received = Vec::new();
        while let Some(item) = stream.next().await {
            received.push(item);
            if received.len() % 7 == 0 {
                tokio::task::yield_now().await;
            }
        }
        (received, stream.stats())
    });
    let mut cancelled = BTreeSet::new();
    for producer in producers {
        cancelled.extend(producer.await.unwrap());
    }
    let (received, stats) = consumer.await.unwrap();
    assert!(stats.blocked_emits > 0, "the producers did have to wait");
    let delivered: BTreeSet<u64> = received.iter().copied().collect();
    assert_eq!(delivered.len(), received.len(), "nothing delivered twice");
    assert!(
        delivered.is_disjoint(&cancelled),
        "a cancelled emit queued nothing"
    );
    assert_eq!(
        delivered.len() + cancelled.len(),
        8_000,
        "every item delivered or cancelled"
    );
    assert_eq!(
        stats.offered,
        received.len() as u64,
        "cancelled emits were never offered"
    );
    assert_accounted(&stats);
    for producer in 0..4u64 {
        let order: Vec<u64> = received
            .iter()
            .filter(|item| *item >> 32 == producer)
            .collect::<Vec<_>>()
            .iter()
            .map(|item| **item & 0xffff_ffff)
            .collect();
        assert!(
            order.windows(2).all(|pair| pair[0] < pair[1]),
            "producer {producer} order"
        );
    }
}

#[tokio::test]
async fn len_and_is_empty_follow_the_queue_on_both_sides() {
    let (handle, mut stream) = bounded(4, OverflowPolicy::Block);
    assert_eq!((handle.len(), stream.len()), (0, 0));
    assert!(handle.is_empty() && stream.is_empty());
    assert!(handle.try_emit(1).is_queued());
    assert!(handle.try_emit(2).is_queued());
    assert_eq!((handle.len(), stream.len()), (2, 2));
    assert!(!handle.is_empty() && !stream.is_empty());
    let permit = handle.reserve().await.expect("sink open");
    assert_eq!(handle.len(), 2, "a reservation is not a queued item");
    drop(permit);
    assert_eq!(stream.next().await, Some(1));
    assert_eq!((handle.len(), stream.len()), (1, 1));
    assert_eq!(stream.next().await, Some(2));
    assert!(handle.is_empty() && stream.is_empty());
}

#[test]
fn accessors_and_debug_describe_the_sink() {
    let (handle, stream) = bounded::<u8>(3, OverflowPolicy::DropOldest);
    assert_eq!(handle.capacity(), 3);
    assert_eq!(handle.policy(), OverflowPolicy::DropOldest);
    assert!(!handle.is_closed());
    assert!(handle.try_emit(9).is_queued());
    let handle_debug = format!("{handle:?}");
    assert!(handle_debug.starts_with("SinkHandle"), "{handle_debug}");
    assert!(handle_debug.contains("DropOldest") && handle_debug.contains("capacity: 3"));
    assert!(handle_debug.contains("queued: 1"), "{handle_debug}");
    let stream_debug = format!("{stream:?}");
    assert!(stream_debug.starts_with("SinkStream") && stream_debug.contains("queued: 1"));
    let observer_debug = format!("{:?}", handle.observer());
    assert!(observer_debug.starts_with("SinkObserver") && observer_debug.contains("queued: 1"));
    assert_eq!(handle.observer().clone().len(), 1);
    assert!(!handle.observer().is_empty());
}

#[test]
fn every_emission_names_its_kind_and_hands_back_what_it_did_not_keep() {
    let cases = [
        (Emission::Queued, "queued", None, true),
        (Emission::Evicted(1), "evicted", Some(1), true),
        (Emission::DroppedNewest(2), "dropped_newest", Some(2), false),
        (Emission::Rejected(3), "rejected", Some(3), false),
        (Emission::Closed(4), "closed", Some(4), false),
    ];
    for (emission, kind, lost, queued) in cases {
        assert_eq!(emission.kind(), kind);
        assert_eq!(emission.is_queued(), queued, "{kind}");
        assert_eq!(emission.into_lost(), lost, "{kind}");
    }
}

#[test]
fn lost_sums_every_refusal_and_every_item_queued_but_not_delivered() {
    let stats = SinkStats {
        dropped_newest: 1,
        evicted_oldest: 20,
        rejected: 300,
        closed: 4_000,
        abandoned: 50_000,
        offered: 7,
        queued: 7,
        delivered: 7,
        len: 7,
        blocked_emits: 7,
        ..SinkStats::default()
    };
    assert_eq!(stats.lost(), 54_321);
}

#[tokio::test]
async fn a_permit_used_after_the_stream_is_gone_is_refused_and_counted_as_closed() {
    let (handle, stream) = bounded(2, OverflowPolicy::Block);
    let permit = handle.reserve().await.expect("sink open");
    drop(stream);
    assert_eq!(permit.emit(1), Emission::Closed(1));
    let stats = handle.stats();
    assert_eq!((stats.offered, stats.closed, stats.queued), (1, 1, 0));
    assert_accounted(&stats);
}

/// A waker that counts its wake-ups, for polling futures by hand.
#[derive(Default)]
struct WakeCount(std::sync::atomic::AtomicUsize);

impl futures::task::ArcWake for WakeCount {
    fn wake_by_ref(count: &std::sync::Arc<Self>) {
        count.0.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
    }
}

/// A hand-polled future with a waker of its own, so a test can tell which of several parked
/// producers a freed slot woke.
struct Polled<F> {
    future: std::pin::Pin<Box<F>>,
    wakes: std::sync::Arc<WakeCount>,
}

impl<F: std::future::Future> Polled<F> {
    fn new(future: F) -> Self {
        Polled {
            future: Box::pin(future),
            wakes: std::sync::Arc::default(),
        }
    }

    fn poll(&mut self) -> std::task::Poll<F::Output> {
        let waker = futures::task::waker(std::sync::Arc::clone(&self.wakes));
        self.future
            .as_mut()
            .poll(&mut std::task::Context::from_waker(&waker))
    }

    fn wakes(&self) -> usize {
        self.wakes.0.load(std::sync::atomic::Ordering::SeqCst)
    }
}

#[tokio::test]
async fn parked_producers_are_woken_one_per_freed_slot_in_the_order_they_parked() {
    let (handle, mut stream) = bounded(1, OverflowPolicy::Block);
    assert_eq!(handle.emit(0).await, Emission::Queued);
    let mut parked: Vec<_> = (1..=3).map(|item| Polled::new(handle.emit(item))).collect();
    for producer in &mut parked {
        assert!(producer.poll().is_pending(), "the sink is full");
    }
    for item in 1..=3 {
        assert_eq!(stream.next().await, Some(item - 1));
        let wakes: Vec<usize> = parked.iter().map(Polled::wakes).collect();
        let mut expected = vec![0; 3];
        for earlier in expected.iter_mut().take(item as usize) {
            *earlier = 1;
        }
        assert_eq!(
            wakes, expected,
            "one freed slot wakes the longest-parked producer"
        );
        assert_eq!(
            parked[item as usize - 1].poll(),
            std::task::Poll::Ready(Emission::Queued)
        );
    }
    assert_eq!(stream.next().await, Some(3));
    let stats = handle.stats();
    assert_eq!((stats.offered, stats.delivered, stats.len), (4, 4, 0));
    assert_accounted(&stats);
}

#[tokio::test]
async fn a_producer_woken_for_a_slot_and_then_cancelled_passes_the_wake_up_on() {
    let (handle, mut stream) = bounded(1, OverflowPolicy::Block);
    assert_eq!(handle.emit(0).await, Emission::Queued);
    let mut first = Polled::new(handle.emit(1));
    let mut second = Polled::new(handle.emit(2));
    assert!(first.poll().is_pending());
    assert!(second.poll().is_pending());
    assert_eq!(stream.next().await, Some(0));
    assert_eq!(
        (first.wakes(), second.wakes()),
        (1, 0),
        "the slot went to the first"
    );
    drop(first);
    assert_eq!(
        second.wakes(),
        1,
        "the cancelled producer's wake-up went to the next one"
    );
    assert_eq!(second.poll(), std::task::Poll::Ready(Emission::Queued));
    let stats = handle.stats();
    assert_eq!(
        (stats.offered, stats.queued, stats.len),
        (2, 2, 1),
        "the cancelled emission was never offered"
    );
    assert_accounted(&stats);
    assert_eq!(stream.next().await, Some(2));
}

#[tokio::test]
async fn a_producer_cancelled_before_its_wake_up_leaves_the_line_without_waking_anyone() {
    let (handle, mut stream) = bounded(1, OverflowPolicy::Block);
    assert_eq!(handle.emit(0).await, Emission::Queued);
    let mut first = Polled::new(handle.emit(1));
    let mut second = Polled::new(handle.emit(2));
    assert!(first.poll().is_pending());
    assert!(second.poll().is_pending());
    drop(first);
    assert_eq!(second.wakes(), 0, "nothing was freed");
    assert_eq!(stream.next().await, Some(0));
    assert_eq!(
        second.wakes(),
        1,
        "the freed slot skipped the cancelled producer"
    );
    assert_eq!(second.poll(), std::task::Poll::Ready(Emission::Queued));
    assert_eq!(handle.stats().offered, 2);
}

#[tokio::test]
async fn a_woken_producer_that_finds_its_slot_taken_parks_again_and_is_woken_again() {
    let (handle, mut stream) = bounded(1, OverflowPolicy::Block);
    assert_eq!(handle.emit(0).await, Emission::Queued);
    let mut parked = Polled::new(handle.emit(1));
    assert!(parked.poll().is_pending());
    assert_eq!(stream.next().await, Some(0));
    assert_eq!(parked.wakes(), 1);
    // Another producer takes the freed slot before the woken one runs.
    assert_eq!(handle.try_emit(2), Emission::Queued);
    assert!(parked.poll().is_pending(), "the slot is gone: parked again");
    assert_eq!(stream.next().await, Some(2));
    assert_eq!(parked.wakes(), 2, "the next freed slot wakes it again");
    assert_eq!(parked.poll(), std::task::Poll::Ready(Emission::Queued));
    assert_eq!(stream.next().await, Some(1));
    assert_accounted(&handle.stats());
}

#[tokio::test]
async fn close_wakes_every_parked_producer_and_reservation_and_refuses_them() {
    let (handle, mut stream) = bounded(1, OverflowPolicy::Block);
    assert_eq!(handle.emit(0).await, Emission::Queued);
    let mut emitting = Polled::new(handle.emit(1));
    let mut reserving = Polled::new(handle.reserve());
    assert!(emitting.poll().is_pending());
    assert!(reserving.poll().is_pending());
    stream.close();
    assert_eq!((emitting.wakes(), reserving.wakes()), (1, 1));
    assert_eq!(emitting.poll(), std::task::Poll::Ready(Emission::Closed(1)));
    assert!(matches!(reserving.poll(), std::task::Poll::Ready(None)));
    drop(reserving);
    let stats = handle.stats();
    assert_eq!(
        (stats.offered, stats.closed, stats.blocked_emits),
        (2, 1, 1)
    );
    assert_accounted(&stats);
    assert_eq!(
        stream.next().await,
        Some(0),
        "what was queued is still yielded"
    );
    assert_eq!(stream.next().await, None);
}

#[tokio::test]
async fn a_stream_that_found_the_sink_empty_is_woken_by_the_next_emission() {
    let (handle, mut stream) = bounded::<u32>(4, OverflowPolicy::Block);
    let mut next = Polled::new(async move {
        let item = stream.next().await;
        (item, stream)
    });
    assert!(next.poll().is_pending(), "nothing queued: the stream parks");
    assert_eq!(next.wakes(), 0);
    assert_eq!(handle.try_emit(7), Emission::Queued);
    assert_eq!(next.wakes(), 1, "the emission woke the parked stream");
    match next.poll() {
        std::task::Poll::Ready((item, _stream)) => assert_eq!(item, Some(7)),
        std::task::Poll::Pending => panic!("the item was queued"),
    }
}

/// Many producers on threads lose nothing under Block: every item arrives, in each producer's
/// order, and the counters account for all of them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn producers_and_a_consumer_on_two_workers_keep_per_producer_order_and_every_count() {
    let (handle, stream) = bounded(16, OverflowPolicy::Block);
    let observer = handle.observer();
    let producers: Vec<_> = (0..4u64)
        .map(|producer| {
            let handle = handle.clone();
            tokio::spawn(async move {
                for seq in 0..10_000u64 {
                    assert_eq!(handle.emit(producer << 32 | seq).await, Emission::Queued);
                }
            })
        })
        .collect();
    drop(handle);
    let received: Vec<u64> = stream.collect().await;
    for producer in producers {
        producer.await.unwrap();
    }
    assert_eq!(received.len(), 40_000);
    for producer in 0..4u64 {
        let order: Vec<u64> = received
            .iter()
            .filter(|item| **item >> 32 == producer)
            .map(|item| item & 0xffff_ffff)
            .collect();
        assert_eq!(
            order,
            (0..10_000).collect::<Vec<_>>(),
            "producer {producer}"
        );
    }
    let stats = observer.stats();
    assert_accounted(&stats);
    assert_eq!(
        (stats.offered, stats.delivered, stats.len),
        (40_000, 40_000, 0)
    );
}

//! The consumer side of a sink.

use std::collections::VecDeque;
use std::fmt;
use std::pin::Pin;
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll};

use futures::Stream;

use super::SinkStats;
use super::shared::{Next, Shared};

/// The consumer side of a bounded sink: a [`Stream`] of the queued items, in queue order.
///
/// It ends once every [`SinkHandle`](super::SinkHandle) is dropped (or the sink is
/// [closed](Self::close)) and everything queued has been yielded. Dropping it closes the sink: later emissions return
/// [`Emission::Closed`](super::Emission::Closed), and items still queued are counted as
/// `abandoned`.
#[must_use = "streams do nothing unless polled"]
pub struct SinkStream<T> {
    shared: Arc<Shared<T>>,
    /// Items taken from the queue in one go and not yielded yet. They still hold their slots
    /// and count as queued (`len`) until yielded; see the `shared` module.
    ///
    /// In a `Mutex` that is never locked, only reached through `get_mut` (no atomic operation),
    /// so that the stream stays `Sync` whenever `T: Send`, as it was before it had a hand: no
    /// `&self` method touches the hand.
    hand: Mutex<VecDeque<T>>,
    /// Items yielded so far, the sink's `delivered` counter; the stream is its only writer.
    yielded: u64,
}

impl<T> SinkStream<T> {
    pub(super) fn new(shared: Arc<Shared<T>>) -> Self {
        SinkStream {
            shared,
            hand: Mutex::new(VecDeque::new()),
            yielded: 0,
        }
    }

    /// Stops accepting items (emissions return `Closed`, waiting producers wake) while keeping
    /// what is queued: the stream yields it, then ends. This is the graceful way to shut a sink
    /// down without abandoning anything.
    pub fn close(&mut self) {
        self.shared.close();
    }

    /// A consistent snapshot of the counters.
    pub fn stats(&self) -> SinkStats {
        self.shared.stats()
    }

    /// Items queued right now.
    pub fn len(&self) -> usize {
        self.shared.len()
    }

    /// True if nothing is queued right now.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

// Nothing in the stream is ever pinned in place: the hand is moved around freely, as the queue
// it came from was. Stated so that `SinkStream<T>` stays `Unpin` for every `T`, as before it had
// a hand.
impl<T> Unpin for SinkStream<T> {}

impl<T> Stream for SinkStream<T> {
    type Item = T;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<T>> {
        let this = self.get_mut();
        let hand = this.hand.get_mut().unwrap_or_else(PoisonError::into_inner);
        if let Some(item) = hand.pop_front() {
            this.yielded += 1;
            this.shared.item_yielded(this.yielded);
            return Poll::Ready(Some(item));
        }
        match this.shared.take_items(hand, this.yielded, cx.waker()) {
            Next::Item(item) => {
                this.yielded += 1;
                Poll::Ready(Some(item))
            }
            Next::Finished => Poll::Ready(None),
            Next::Empty => Poll::Pending,
        }
    }
}

impl<T> Drop for SinkStream<T> {
    fn drop(&mut self) {
        let hand = self.hand.get_mut().unwrap_or_else(PoisonError::into_inner);
        self.shared.abandon(std::mem::take(hand));
    }
}

impl<T> fmt::Debug for SinkStream<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SinkStream")
            .field("stats", &self.shared.stats())
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use std::pin::pin;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::task::{Context, Poll};

    use futures::task::{ArcWake, waker};
    use futures::{FutureExt, StreamExt};

    use crate::sinks::{Emission, OverflowPolicy, SinkStats, bounded};

    fn assert_accounted(stats: &SinkStats) {
        assert_eq!(
            stats.offered,
            stats.queued + stats.dropped_newest + stats.rejected + stats.closed,
            "{stats:?}"
        );
        assert_eq!(
            stats.queued,
            stats.delivered + stats.evicted_oldest + stats.abandoned + stats.len,
            "{stats:?}"
        );
    }

    /// A waker that records whether it was woken.
    #[derive(Default)]
    struct Flag(AtomicBool);

    impl ArcWake for Flag {
        fn wake_by_ref(flag: &Arc<Self>) {
            flag.0.store(true, Ordering::SeqCst);
        }
    }

    #[test]
    fn the_stream_is_send_and_sync_for_items_that_are_only_send() {
        fn assert_send_sync_unpin<S: Send + Sync + Unpin>() {}
        assert_send_sync_unpin::<super::SinkStream<std::cell::Cell<u8>>>();
    }

    #[tokio::test]
    async fn items_taken_into_the_hand_keep_their_slots_until_yielded() {
        let (handle, mut stream) = bounded(4, OverflowPolicy::Reject);
        for item in 0..4 {
            assert!(handle.try_emit(item).is_queued());
        }
        // The first poll takes all four out of the queue; one is yielded, three wait in hand.
        assert_eq!(stream.next().await, Some(0));
        assert_eq!(handle.len(), 3, "items in the hand still count as queued");
        assert!(
            handle.try_emit(4).is_queued(),
            "the yielded item's slot is free"
        );
        assert!(
            matches!(handle.try_emit(5), Emission::Rejected(5)),
            "the hand's items hold their slots"
        );
        assert_eq!(stream.next().await, Some(1));
        assert!(
            handle.try_emit(6).is_queued(),
            "a yield from the hand frees a slot"
        );
        let stats = handle.stats();
        assert_accounted(&stats);
        assert_eq!((stats.delivered, stats.len), (2, 4));
        drop(handle);
        assert_eq!(stream.collect::<Vec<_>>().await, vec![2, 3, 4, 6]);
    }

    #[tokio::test]
    async fn dropping_the_stream_abandons_what_it_held_in_hand() {
        let (handle, mut stream) = bounded(8, OverflowPolicy::Block);
        for item in 0..3 {
            assert!(handle.try_emit(item).is_queued());
        }
        assert_eq!(stream.next().await, Some(0));
        assert!(handle.try_emit(3).is_queued(), "queued behind the hand");
        drop(stream);
        let stats = handle.stats();
        assert_accounted(&stats);
        assert_eq!((stats.delivered, stats.abandoned, stats.len), (1, 3, 0));
    }

    #[tokio::test]
    async fn drop_oldest_leaves_the_oldest_item_in_the_queue_where_it_can_be_evicted() {
        let (handle, mut stream) = bounded(3, OverflowPolicy::DropOldest);
        for item in 0..3 {
            assert!(handle.try_emit(item).is_queued());
        }
        assert_eq!(stream.next().await, Some(0));
        assert!(handle.try_emit(3).is_queued());
        assert_eq!(handle.try_emit(4), Emission::Evicted(1));
        assert_accounted(&handle.stats());
        drop(handle);
        assert_eq!(stream.collect::<Vec<_>>().await, vec![2, 3, 4]);
    }

    #[tokio::test]
    async fn a_yield_from_the_hand_wakes_a_producer_blocked_on_a_full_sink() {
        let (handle, mut stream) = bounded(2, OverflowPolicy::Block);
        assert!(handle.try_emit(0).is_queued());
        assert!(handle.try_emit(1).is_queued());
        assert_eq!(stream.next().await, Some(0), "1 is now in the hand");
        assert!(handle.try_emit(2).is_queued());
        let flag = Arc::new(Flag::default());
        let waker = waker(Arc::clone(&flag));
        let mut cx = Context::from_waker(&waker);
        let mut blocked = pin!(handle.emit(3));
        assert!(
            blocked.as_mut().poll(&mut cx).is_pending(),
            "the sink is full"
        );
        assert!(!flag.0.load(Ordering::SeqCst));
        // Yielded from the hand, without the stream touching the queue.
        assert_eq!(stream.next().now_or_never(), Some(Some(1)));
        assert!(
            flag.0.load(Ordering::SeqCst),
            "the freed slot woke the producer"
        );
        assert_eq!(
            blocked.as_mut().poll(&mut cx),
            Poll::Ready(Emission::Queued)
        );
        stream.close();
        assert_eq!(stream.collect::<Vec<_>>().await, vec![2, 3]);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn every_snapshot_taken_while_items_flow_is_accounted() {
        let (handle, stream) = bounded(8, OverflowPolicy::Block);
        let observer = handle.observer();
        let producers: Vec<_> = (0..2u64)
            .map(|_| {
                let handle = handle.clone();
                tokio::spawn(async move {
                    for item in 0..20_000u64 {
                        assert_eq!(handle.emit(item).await, Emission::Queued);
                    }
                })
            })
            .collect();
        drop(handle);
        let consumer = tokio::spawn(stream.count());
        // Snapshots race with yields from the hand on the other worker.
        while !consumer.is_finished() {
            let stats = observer.stats();
            assert_accounted(&stats);
            assert!(stats.len <= 8, "never more than the capacity: {stats:?}");
            tokio::task::yield_now().await;
        }
        assert_eq!(consumer.await.unwrap(), 40_000);
        for producer in producers {
            producer.await.unwrap();
        }
        let stats = observer.stats();
        assert_accounted(&stats);
        assert_eq!((stats.delivered, stats.len), (40_000, 0));
    }
}

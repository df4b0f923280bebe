//! Exact deduplication within a bounded window of keys.

use std::collections::{HashSet, VecDeque};
use std::hash::Hash;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll, ready};

use futures::Stream;
use pin_project_lite::pin_project;

pin_project! {
    /// Stream for [`PipelineExt::dedup_by_key`](super::PipelineExt::dedup_by_key).
    ///
    /// It remembers the keys of the last `capacity` distinct items that passed. An item whose key
    /// is remembered is dropped as a duplicate; any other item passes and its key is remembered.
    /// Memory is bounded: when the window is full, the oldest remembered key is forgotten to make
    /// room, and that is counted in [`DedupStats::forgotten`]. A key that comes back after being
    /// forgotten passes again, so deduplication is exact only while `forgotten` is 0, or for
    /// repeats that arrive within `capacity` distinct keys of the first sighting.
    #[must_use = "streams do nothing unless polled"]
    pub struct Dedup<S, K, F> {
        #[pin]
        stream: S,
        key: F,
        seen: HashSet<K>,
        order: VecDeque<K>,
        capacity: usize,
        counters: DedupCounters,
    }
}

/// A shared view of a [`Dedup`] stream's counters, readable while the stream is in use
/// elsewhere (take it with [`Dedup::counters`] before moving the stream on).
#[derive(Debug, Clone, Default)]
pub struct DedupCounters(Arc<Counters>);

#[derive(Debug, Default)]
struct Counters {
    passed: AtomicU64,
    duplicates: AtomicU64,
    forgotten: AtomicU64,
}

/// A snapshot of a [`Dedup`] stream's counters.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DedupStats {
    /// Items whose key was new, passed downstream.
    pub passed: u64,
    /// Items dropped because their key was remembered.
    pub duplicates: u64,
    /// Keys forgotten to keep the window within its capacity.
    pub forgotten: u64,
}

impl DedupCounters {
    /// Reads the counters.
    pub fn snapshot(&self) -> DedupStats {
        DedupStats {
            passed: self.0.passed.load(Ordering::Relaxed),
            duplicates: self.0.duplicates.load(Ordering::Relaxed),
            forgotten: self.0.forgotten.load(Ordering::Relaxed),
        }
    }
}

impl<S, K, F> Dedup<S, K, F>
where
    S: Stream,
    K: Hash + Eq + Clone,
    F: FnMut(&S::Item) -> K,
{
    pub(super) fn new(stream: S, capacity: usize, key: F) -> Self {
        assert!(
            capacity > 0,
            "a dedup window needs a capacity of at least 1"
        );
        Dedup {
            stream,
            key,
            seen: HashSet::with_capacity(capacity.min(1 << 16)),
            order: VecDeque::with_capacity(capacity.min(1 << 16)),
            capacity,
            counters: DedupCounters::default(),
        }
    }

    /// A handle on this stream's counters that stays valid after the stream moves on.
    pub fn counters(&self) -> DedupCounters {
        self.counters.clone()
    }
}

impl<S, K, F> Stream for Dedup<S, K, F>
where
    S: Stream,
    K: Hash + Eq + Clone,
    F: FnMut(&S::Item) -> K,
{
    type Item = S::Item;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<S::Item>> {
        let mut this = self.project();
        loop {
            let Some(item) = ready!(this.stream.as_mut().poll_next(cx)) else {
                return Poll::Ready(None);
            };
            let key = (this.key)(&item);
            if this.seen.contains(&key) {
                this.counters.0.duplicates.fetch_add(1, Ordering::Relaxed);
                continue;
            }
            if this.order.len() == *this.capacity {
                // The window is full: forget the oldest key, and say so in the counters.
                if let Some(oldest) = this.order.pop_front() {
                    this.seen.remove(&oldest);
                    this.counters.0.forgotten.fetch_add(1, Ordering::Relaxed);
                }
            }
            this.order.push_back(key.clone());
            this.seen.insert(key);
            this.counters.0.passed.fetch_add(1, Ordering::Relaxed);
            return Poll::Ready(Some(item));
        }
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        (0, self.stream.size_hint().1)
    }
}

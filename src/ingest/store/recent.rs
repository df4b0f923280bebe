//! The window of recently stored ids that makes retries idempotent.

use std::collections::{HashSet, VecDeque};
use std::sync::Arc;

/// The ids of the last `capacity` distinct records stored, with the same contract as the
/// pipeline's `dedup_by_key`: exact within the window, bounded memory, and every forgotten id
/// counted. It lives in the store writer rather than in the stream because a repeat must be
/// *answered* (acked again), not silently dropped.
#[derive(Debug)]
pub struct RecentIds {
    // One shared allocation per id: the set and the eviction order hold the same string.
    seen: HashSet<Arc<str>>,
    order: VecDeque<Arc<str>>,
    capacity: usize,
    forgotten: u64,
}

impl RecentIds {
    /// An empty window of `capacity` ids (at least 1).
    pub fn new(capacity: usize) -> Self {
        let capacity = capacity.max(1);
        RecentIds {
            seen: HashSet::with_capacity(capacity.min(1 << 16)),
            order: VecDeque::with_capacity(capacity.min(1 << 16)),
            capacity,
            forgotten: 0,
        }
    }

    /// True if `id` is in the window.
    pub fn contains(&self, id: &str) -> bool {
        self.seen.contains(id)
    }

    /// Remembers `id`, forgetting the oldest id if the window is full. Returns false if it was
    /// already remembered.
    pub fn insert(&mut self, id: &str) -> bool {
        if self.seen.contains(id) {
            return false;
        }
        if self.order.len() == self.capacity
            && let Some(oldest) = self.order.pop_front()
        {
            self.seen.remove(&oldest);
            self.forgotten += 1;
        }
        let id: Arc<str> = Arc::from(id);
        self.order.push_back(Arc::clone(&id));
        self.seen.insert(id);
        true
    }

    /// Ids forgotten to keep the window within its capacity. Deduplication is exact for a retry
    /// that arrives within `capacity` distinct ids of the original.
    pub fn forgotten(&self) -> u64 {
        self.forgotten
    }

    /// Ids remembered now.
    pub fn len(&self) -> usize {
        self.order.len()
    }

    /// True if no id is remembered.
    pub fn is_empty(&self) -> bool {
        self.order.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_window_is_exact_until_it_forgets_and_counts_forgetting() {
        let mut recent = RecentIds::new(2);
        assert!(recent.insert("a"));
        assert!(!recent.insert("a"));
        assert!(recent.insert("b"));
        assert!(recent.insert("c"));
        assert!(!recent.contains("a"));
        assert!(recent.contains("b") && recent.contains("c"));
        assert_eq!(recent.forgotten(), 1);
        assert_eq!(recent.len(), 2);
    }
}

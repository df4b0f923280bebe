//! The window of recently stored ids that makes retries idempotent.

use std::collections::VecDeque;
use std::hash::{BuildHasher, RandomState};

use hashbrown::HashTable;

/// The ids of the last `capacity` distinct records stored, with the same contract as the
/// pipeline's `dedup_by_key`: exact within the window, bounded memory, and every forgotten id
/// counted. It lives in the store writer rather than in the stream because a repeat must be
/// *answered* (acked again), not silently dropped.
///
/// Every id is hashed once (SipHash with a random key: the ids come from clients) and its hash
/// is kept beside it, so forgetting the oldest id neither hashes nor compares a string: the
/// index holds sequence numbers, and the oldest one is found by its kept hash. The newest id
/// is copied into the oldest one's string, so a full window allocates nothing.
#[derive(Debug)]
pub struct RecentIds {
    /// Sequence numbers of the remembered ids, by hash.
    index: HashTable<u64>,
    /// The remembered ids with their hashes, oldest first; the id with sequence number `seq`
    /// is at `seq - first_seq`.
    order: VecDeque<(u64, String)>,
    first_seq: u64,
    hasher: RandomState,
    capacity: usize,
    forgotten: u64,
}

impl RecentIds {
    /// An empty window of `capacity` ids (at least 1).
    pub fn new(capacity: usize) -> Self {
        let capacity = capacity.max(1);
        RecentIds {
            index: HashTable::with_capacity(capacity.min(1 << 16)),
            order: VecDeque::with_capacity(capacity.min(1 << 16)),
            first_seq: 0,
            hasher: RandomState::new(),
            capacity,
            forgotten: 0,
        }
    }

    /// True if `id` is in the window.
    pub fn contains(&self, id: &str) -> bool {
        self.find(self.hasher.hash_one(id), id)
    }

    fn find(&self, hash: u64, id: &str) -> bool {
        let (order, first_seq) = (&self.order, self.first_seq);
        self.index
            .find(hash, |&seq| &*order[(seq - first_seq) as usize].1 == id)
            .is_some()
    }

    /// Remembers `id` as the newest, forgetting the oldest id if the window is full. It does not
    /// look for `id` first: callers remember the ids they just stored, having asked
    /// [`contains`](Self::contains) before. An id remembered twice takes two places, which is
    /// harmless: the window stays exact for every id in it.
    pub fn remember(&mut self, id: &str) {
        let hash = self.hasher.hash_one(id);
        let mut place = String::new();
        if self.order.len() == self.capacity
            && let Some((oldest_hash, oldest_id)) = self.order.pop_front()
        {
            let oldest = self.first_seq;
            if let Ok(entry) = self.index.find_entry(oldest_hash, |&seq| seq == oldest) {
                entry.remove();
            }
            self.first_seq += 1;
            self.forgotten += 1;
            place = oldest_id;
            place.clear();
        }
        place.push_str(id);
        let seq = self.first_seq + self.order.len() as u64;
        self.order.push_back((hash, place));
        let (order, first_seq) = (&self.order, self.first_seq);
        self.index
            .insert_unique(hash, seq, |&seq| order[(seq - first_seq) as usize].0);
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
        recent.remember("a");
        recent.remember("b");
        assert!(recent.contains("a") && recent.contains("b"));
        recent.remember("c");
        assert!(!recent.contains("a"));
        assert!(recent.contains("b") && recent.contains("c"));
        assert_eq!(recent.forgotten(), 1);
        assert_eq!(recent.len(), 2);
    }

    #[test]
    fn a_window_that_forgets_many_times_stays_exact() {
        let mut recent = RecentIds::new(1000);
        for index in 0..10_000_u32 {
            assert!(!recent.contains(&format!("id-{index}")));
            recent.remember(&format!("id-{index}"));
            // The window holds exactly the last 1000 ids remembered.
            let oldest = index.saturating_sub(999);
            assert!(recent.contains(&format!("id-{oldest}")));
            assert!(recent.contains(&format!("id-{index}")));
            assert!(index < 1000 || !recent.contains(&format!("id-{}", oldest - 1)));
        }
        assert_eq!(recent.len(), 1000);
        assert_eq!(recent.forgotten(), 9000);
    }

    #[test]
    fn an_id_remembered_twice_stays_until_its_second_place_is_forgotten() {
        let mut recent = RecentIds::new(3);
        for id in ["a", "b", "a", "c"] {
            recent.remember(id);
        }
        // The first "a" is forgotten, the second keeps it.
        assert!(recent.contains("a"));
        recent.remember("d");
        recent.remember("e");
        assert!(!recent.contains("a"));
        assert!(recent.contains("c") && recent.contains("d") && recent.contains("e"));
    }
}

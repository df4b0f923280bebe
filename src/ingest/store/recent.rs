//! The window of recently stored ids that makes retries idempotent.

use std::hash::{BuildHasher, RandomState};

use hashbrown::HashTable;

/// The ids of the most recently stored records, with the same contract as the pipeline's
/// `dedup_by_key`: exact for the last `capacity` ids, bounded memory, and every forgotten id
/// counted. It lives in the store writer rather than in the stream because a repeat must be
/// *answered* (acked again), not silently dropped.
///
/// Two generations of up to `capacity` ids each: new ids go into the current one, and when it
/// is full, the previous one is forgotten whole and the current one takes its place. So the
/// window always holds the last `capacity` ids and at most `2 * capacity`, and forgetting costs
/// no per-id work on the hot path: evicting the oldest id one at a time meant a cache miss into
/// a cold part of a large table for every record stored. Each generation keeps its ids in one
/// string (no allocation per id) and an index of their places, by hash (SipHash with a random
/// key: the ids come from clients).
#[derive(Debug)]
pub struct RecentIds {
    current: Generation,
    previous: Generation,
    capacity: usize,
    hasher: RandomState,
    forgotten: u64,
}

/// Up to `capacity` ids, one after another in `text`, found through `index`.
#[derive(Debug, Default)]
struct Generation {
    index: HashTable<Place>,
    text: String,
}

/// Where one id is in its generation's text, and its hash (to grow the index without hashing
/// again).
#[derive(Debug, Clone, Copy)]
struct Place {
    hash: u64,
    start: usize,
    end: usize,
}

impl Generation {
    fn contains(&self, hash: u64, id: &str) -> bool {
        self.index
            .find(hash, |place| &self.text[place.start..place.end] == id)
            .is_some()
    }

    fn insert(&mut self, hash: u64, id: &str) {
        let start = self.text.len();
        self.text.push_str(id);
        let place = Place {
            hash,
            start,
            end: self.text.len(),
        };
        self.index.insert_unique(hash, place, |place| place.hash);
    }

    fn len(&self) -> usize {
        self.index.len()
    }

    /// Forgets every id, keeping the allocations for the next generation.
    fn clear(&mut self) {
        self.index.clear();
        self.text.clear();
    }
}

impl RecentIds {
    /// An empty window that always holds the last `capacity` ids (at least 1).
    pub fn new(capacity: usize) -> Self {
        RecentIds {
            current: Generation::default(),
            previous: Generation::default(),
            capacity: capacity.max(1),
            hasher: RandomState::new(),
            forgotten: 0,
        }
    }

    /// True if `id` is in the window.
    pub fn contains(&self, id: &str) -> bool {
        let hash = self.hasher.hash_one(id);
        self.current.contains(hash, id) || self.previous.contains(hash, id)
    }

    /// Remembers `id` as the newest. It does not look for `id` first: callers remember the ids
    /// they just stored, having asked [`contains`](Self::contains) before. An id remembered
    /// twice takes two places, which is harmless: the window stays exact for every id in it.
    pub fn remember(&mut self, id: &str) {
        if self.current.len() >= self.capacity {
            self.forgotten += self.previous.len() as u64;
            std::mem::swap(&mut self.current, &mut self.previous);
            self.current.clear();
        }
        let hash = self.hasher.hash_one(id);
        self.current.insert(hash, id);
    }

    /// Ids forgotten so far. Deduplication is exact for a retry that arrives within `capacity`
    /// ids of the original.
    pub fn forgotten(&self) -> u64 {
        self.forgotten
    }

    /// Ids remembered now: at least the last `capacity` (once that many were remembered), at
    /// most `2 * capacity`.
    pub fn len(&self) -> usize {
        self.current.len() + self.previous.len()
    }

    /// True if no id is remembered.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_window_holds_the_last_capacity_ids_and_counts_what_it_forgets() {
        let mut recent = RecentIds::new(2);
        for id in ["a", "b", "c"] {
            recent.remember(id);
        }
        // "c" started a new generation; "a" and "b" are the previous one.
        assert!(recent.contains("a") && recent.contains("b") && recent.contains("c"));
        recent.remember("d");
        recent.remember("e");
        // "e" started a third generation: the first ("a", "b") is forgotten.
        assert!(!recent.contains("a") && !recent.contains("b"));
        assert!(recent.contains("c") && recent.contains("d") && recent.contains("e"));
        assert_eq!(recent.forgotten(), 2);
        assert_eq!(recent.len(), 3);
    }

    #[test]
    fn a_window_that_forgets_many_times_stays_exact_for_the_last_capacity_ids() {
        let mut recent = RecentIds::new(1000);
        for index in 0..10_000_u32 {
            assert!(!recent.contains(&format!("id-{index}")));
            recent.remember(&format!("id-{index}"));
            // Every one of the last 1000 ids is there; none older than 2000 is.
            for back in [0, 1, 500, 999] {
                if let Some(old) = index.checked_sub(back) {
                    assert!(recent.contains(&format!("id-{old}")), "id-{old} at {index}");
                }
            }
            if let Some(old) = index.checked_sub(2000) {
                assert!(!recent.contains(&format!("id-{old}")));
            }
            assert!(recent.len() <= 2000);
            assert_eq!(
                recent.forgotten() + recent.len() as u64,
                u64::from(index) + 1
            );
        }
    }

    #[test]
    fn an_id_remembered_twice_stays_until_its_second_place_is_forgotten() {
        let mut recent = RecentIds::new(2);
        for id in ["a", "b", "a", "c"] {
            recent.remember(id);
        }
        recent.remember("d");
        // Generations: ["a", "c"] and ["d"]; the first "a" is forgotten, the second keeps it.
        assert!(recent.contains("a"));
        recent.remember("e");
        recent.remember("f");
        assert!(!recent.contains("a"));
        assert!(recent.contains("e") && recent.contains("f"));
    }
}

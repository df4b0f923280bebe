//! The window of recently stored ids that makes retries idempotent.

use std::hash::{BuildHasher, RandomState};

use hashbrown::HashTable;

/// The ids of the most recently stored records, with the same contract as the pipeline's
/// `dedup_by_key`: exact for the last `capacity` ids, bounded memory, and every forgotten id
/// counted. It lives in the store writer rather than in the stream because a repeat must be
/// *answered* (acked again), not silently dropped.
///
/// Ids are remembered in generations of `capacity`: when the current generation is full, the
/// one before it is forgotten whole (one sequential pass over the index) and a new one starts.
/// So the window always holds the last `capacity` ids and at most `2 * capacity`, and the hot
/// path does no per-id eviction: evicting the oldest id one at a time meant a cache miss into a
/// cold part of a large table for every record stored. One index serves both generations, so a
/// lookup is one probe; each generation keeps its ids in one string (no allocation per id).
/// Hashes are SipHash with a random key: the ids come from clients.
#[derive(Debug)]
pub struct RecentIds {
    /// Where each remembered id is, by hash.
    index: HashTable<Place>,
    /// The ids of the current generation and of the one before, by generation parity.
    texts: [String; 2],
    generation: u64,
    /// Ids remembered in the current generation.
    current_len: usize,
    capacity: usize,
    hasher: RandomState,
    forgotten: u64,
}

/// Where one id is: its range in its generation's text. Twelve bytes, so that the index of a
/// large window stays small (hashes are computed again from the text when the index grows).
#[derive(Debug, Clone, Copy)]
struct Place {
    start: u32,
    len: u32,
    /// The generation's parity: which of the two texts.
    parity: u8,
}

impl RecentIds {
    /// An empty window that always holds the last `capacity` ids (at least 1).
    pub fn new(capacity: usize) -> Self {
        RecentIds {
            index: HashTable::new(),
            texts: [String::new(), String::new()],
            generation: 0,
            current_len: 0,
            capacity: capacity.max(1),
            hasher: RandomState::new(),
            forgotten: 0,
        }
    }

    fn text<'a>(texts: &'a [String; 2], place: &Place) -> &'a str {
        let start = place.start as usize;
        &texts[usize::from(place.parity)][start..start + place.len as usize]
    }

    fn parity(&self) -> u8 {
        (self.generation & 1) as u8
    }

    /// True if `id` is in the window.
    pub fn contains(&self, id: &str) -> bool {
        self.holds(self.hasher.hash_one(id), id)
    }

    /// True if `id`, whose hash is `hash`, is in the window.
    fn holds(&self, hash: u64, id: &str) -> bool {
        let texts = &self.texts;
        self.index
            .find(hash, |place| Self::text(texts, place) == id)
            .is_some()
    }

    /// Claims `id` for a write about to happen: true if it was not in the window, and is now
    /// (as the newest); false if it was. The insert follows the lookup at once, while the
    /// index's cache lines for `id` are still hot: asking [`contains`](Self::contains) for a
    /// whole batch and [`remember`](Self::remember)ing its ids after the write missed the
    /// cache twice per id on a large window, and hashed each id twice. A claim whose write
    /// fails must be [`release`](Self::release)d.
    pub fn claim(&mut self, id: &str) -> bool {
        let hash = self.hasher.hash_one(id);
        if self.holds(hash, id) {
            return false;
        }
        // Only now, so that a full generation never forgets the very id being asked about.
        self.start_generation_if_full(id);
        self.insert(hash, id);
        true
    }

    /// Takes back a [`claim`](Self::claim) whose write failed, so that a retry is written.
    pub fn release(&mut self, id: &str) {
        let hash = self.hasher.hash_one(id);
        let texts = &self.texts;
        if let Ok(claimed) = self
            .index
            .find_entry(hash, |place| Self::text(texts, place) == id)
        {
            let (place, _) = claimed.remove();
            // Its text stays in the arena until the generation is forgotten.
            if place.parity == self.parity() {
                self.current_len -= 1;
            }
        }
    }

    /// Remembers `id` as the newest. It does not look for `id` first: for ids known to be
    /// stored (a log being recovered). An id remembered twice takes two places, which is
    /// harmless: the window stays exact for every id in it.
    pub fn remember(&mut self, id: &str) {
        self.start_generation_if_full(id);
        let hash = self.hasher.hash_one(id);
        self.insert(hash, id);
    }

    /// Adds `id`, whose hash is `hash`, to the current generation. Nothing for an id of 4 GiB
    /// or more, which cannot be a record id (ingest takes at most 256 bytes).
    fn insert(&mut self, hash: u64, id: &str) {
        let Ok(len) = u32::try_from(id.len()) else {
            return;
        };
        let parity = self.parity();
        let text = &mut self.texts[usize::from(parity)];
        let place = Place {
            start: text.len() as u32,
            len,
            parity,
        };
        text.push_str(id);
        let (texts, hasher) = (&self.texts, &self.hasher);
        self.index.insert_unique(hash, place, |place| {
            hasher.hash_one(Self::text(texts, place))
        });
        self.current_len += 1;
    }

    /// Starts a new generation if the current one holds `capacity` ids, or if its text has no
    /// room for `id` (a text holds up to 4 GiB: u32 places).
    fn start_generation_if_full(&mut self, id: &str) {
        let text = &self.texts[usize::from(self.parity())];
        let full_text = text.len() + id.len() > u32::MAX as usize;
        if self.current_len >= self.capacity || full_text {
            self.next_generation();
        }
    }

    /// Forgets the generation before the current one and starts a new one in its text.
    fn next_generation(&mut self) {
        let before = self.index.len();
        let current = self.parity();
        self.index.retain(|place| place.parity == current);
        self.forgotten += (before - self.index.len()) as u64;
        self.generation += 1;
        self.texts[usize::from(self.parity())].clear();
        self.current_len = 0;
    }

    /// Ids forgotten so far. Deduplication is exact for a retry that arrives within `capacity`
    /// ids of the original.
    pub fn forgotten(&self) -> u64 {
        self.forgotten
    }

    /// Ids remembered now: at least the last `capacity` (once that many were remembered), at
    /// most `2 * capacity`.
    pub fn len(&self) -> usize {
        self.index.len()
    }

    /// True if no id is remembered.
    pub fn is_empty(&self) -> bool {
        self.index.is_empty()
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

    #[test]
    fn a_claim_is_granted_once_until_it_is_released() {
        let mut recent = RecentIds::new(2);
        assert!(recent.claim("a"));
        assert!(!recent.claim("a"), "a claimed id is known");
        recent.release("a");
        assert!(!recent.contains("a"));
        assert!(recent.claim("a"), "a released id can be claimed again");
        assert!(recent.claim("b"));
        // "c" starts a new generation; releasing it leaves the generation's count exact.
        assert!(recent.claim("c"));
        recent.release("c");
        assert!(recent.claim("d") && recent.claim("e"));
        // Had "c" still counted, "e" would have started a third generation and forgotten these.
        assert!(recent.contains("a") && recent.contains("b"));
        // "e" filled the second generation ("d", "e"): "f" forgets the first ("a", "b").
        assert!(recent.claim("f"));
        assert!(!recent.contains("a") && !recent.contains("b") && !recent.contains("c"));
        assert!(recent.contains("d") && recent.contains("e") && recent.contains("f"));
        assert_eq!(
            recent.forgotten(),
            2,
            "a released id is not counted as forgotten"
        );
    }

    #[test]
    fn releasing_an_id_of_the_generation_before_leaves_the_current_count_alone() {
        let mut recent = RecentIds::new(2);
        assert!(recent.claim("a") && recent.claim("b") && recent.claim("c"));
        // "a" is in the previous generation; "c" is the only id of the current one.
        recent.release("a");
        assert!(recent.claim("d"));
        assert!(
            recent.claim("e"),
            "the current generation was full with c and d"
        );
        assert!(!recent.contains("b") && recent.contains("c") && recent.contains("e"));
        assert_eq!(recent.forgotten(), 1);
    }
}

//! The window of recently stored ids that makes retries idempotent.

use std::hash::{BuildHasher, RandomState};

/// The ids of the most recently stored records, with the same contract as the pipeline's
/// `dedup_by_key`: exact for the last `capacity` ids, bounded memory, and every forgotten id
/// counted. It lives in the store writer rather than in the stream because a repeat must be
/// *answered* (acked again), not silently dropped.
///
/// Ids are remembered in generations of `capacity`: when the current generation is full, the
/// one before it is forgotten whole (its table cleared in one sequential pass) and a new one
/// starts. So the window always holds the last `capacity` ids and at most `2 * capacity`, and
/// the hot path does no per-id eviction. Each generation keeps its ids in one string (no
/// allocation per id).
///
/// A large window is larger than the CPU caches, so every lookup of a new id is a cache miss
/// into each generation's table: that miss was most of the window's cost in the ingest
/// benchmark. [`claim_all`](Self::claim_all) therefore hashes a whole group of ids first and
/// prefetches the slots of the ids a few places ahead of the one it claims, so that the misses
/// overlap instead of following one another. hashbrown cannot say where a hash's slot is, so
/// the tables are this module's own: open addressing with linear probing over `u64` slots.
/// Hashes are SipHash with a random key: the ids come from clients.
#[derive(Debug)]
pub struct RecentIds {
    /// The current generation and the one before it, by generation parity.
    generations: [Generation; 2],
    generation: u64,
    capacity: usize,
    hasher: RandomState,
    /// The hashes of the group being claimed (kept to reuse the allocation).
    hashes: Vec<u64>,
    forgotten: u64,
}

/// How many ids ahead of the one being claimed [`RecentIds::claim_all`] prefetches: enough to
/// cover a miss's latency with the work of claiming the ids in between.
const PREFETCH_AHEAD: usize = 8;

/// One generation's ids: an open-addressing table with linear probing, kept at most half full.
///
/// A slot is 0 when empty; otherwise its high 32 bits are the *tag*, the high 32 bits of the
/// id's hash (never 0: see [`tag`]), and its low 32 bits the id's entry in `places`. A slot's
/// home (where its probe starts) is `tag & mask`, so the table can move an entry without
/// hashing its id again, which removal needs.
struct Generation {
    slots: Vec<u64>,
    /// Where each entry's id is in `text`: (start, length).
    places: Vec<(u32, u32)>,
    text: String,
    /// Ids held (entries not released).
    held: usize,
}

/// Sizes, not the tables' contents (millions of slots).
impl std::fmt::Debug for Generation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Generation")
            .field("slots", &self.slots.len())
            .field("places", &self.places.len())
            .field("held", &self.held)
            .finish()
    }
}

/// The tag of `hash`: its high 32 bits, with the highest bit set so that no occupied slot is 0
/// (a table has at most 2^31 slots, so the home, the tag's low bits, keeps every bit it uses).
fn tag(hash: u64) -> u32 {
    (hash >> 32) as u32 | 1 << 31
}

/// Hints the CPU to fetch `slot`'s cache line, without waiting for it.
#[inline]
fn prefetch_line(slot: &u64) {
    #[cfg(target_arch = "x86_64")]
    // SAFETY: a prefetch only hints the cache: it reads nothing, cannot fault, and needs SSE,
    // which every x86_64 CPU has.
    unsafe {
        use std::arch::x86_64::{_MM_HINT_T0, _mm_prefetch};
        _mm_prefetch::<_MM_HINT_T0>(std::ptr::from_ref(slot).cast());
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = slot;
}

impl Generation {
    /// An empty generation for `capacity` ids at half load at most.
    fn new(capacity: usize) -> Self {
        let slots = capacity
            .saturating_mul(2)
            .checked_next_power_of_two()
            .unwrap_or(1 << 31);
        Generation {
            slots: vec![0; slots.min(1 << 31)],
            places: Vec::new(),
            text: String::new(),
            held: 0,
        }
    }

    fn mask(&self) -> usize {
        self.slots.len() - 1
    }

    fn home(&self, tag: u32) -> usize {
        tag as usize & self.mask()
    }

    fn id(&self, slot: u64) -> &str {
        let (start, len) = self.places[(slot & u64::from(u32::MAX)) as usize];
        &self.text[start as usize..(start + len) as usize]
    }

    fn prefetch(&self, hash: u64) {
        prefetch_line(&self.slots[self.home(tag(hash))]);
    }

    /// The slot holding `id`, whose hash is `hash`, if this generation holds it.
    fn find(&self, hash: u64, id: &str) -> Option<usize> {
        let tag = tag(hash);
        let mut at = self.home(tag);
        loop {
            let slot = self.slots[at];
            if slot == 0 {
                return None;
            }
            if (slot >> 32) as u32 == tag && self.id(slot) == id {
                return Some(at);
            }
            at = (at + 1) & self.mask();
        }
    }

    /// True if another id fits: places (released ones included) are fewer than slots, and
    /// the text stays addressable by u32.
    fn has_room_for(&self, id: &str) -> bool {
        self.places.len() < self.slots.len() && self.text.len() + id.len() <= u32::MAX as usize
    }

    /// Adds `id`, whose hash is `hash` ([`has_room_for`](Self::has_room_for) must hold).
    fn insert(&mut self, hash: u64, id: &str) {
        let entry = self.places.len() as u64;
        self.places.push((self.text.len() as u32, id.len() as u32));
        self.text.push_str(id);
        let tag = tag(hash);
        let mut at = self.home(tag);
        while self.slots[at] != 0 {
            at = (at + 1) & self.mask();
        }
        self.slots[at] = (u64::from(tag) << 32) | entry;
        self.held += 1;
    }

    /// Empties the slot at `hole`, moving back the entries after it whose probe passes it, so
    /// that every remaining id is still found from its home (backward-shift deletion). The id's
    /// text stays until the generation is cleared.
    fn remove(&mut self, mut hole: usize) {
        let mask = self.mask();
        let mut at = hole;
        loop {
            at = (at + 1) & mask;
            let slot = self.slots[at];
            if slot == 0 {
                break;
            }
            let home = self.home((slot >> 32) as u32);
            // The entry may fill the hole if the hole lies between its home and where it is.
            if at.wrapping_sub(home) & mask >= at.wrapping_sub(hole) & mask {
                self.slots[hole] = slot;
                hole = at;
            }
        }
        self.slots[hole] = 0;
        self.held -= 1;
    }

    /// Forgets every id, keeping the allocations.
    fn clear(&mut self) {
        self.slots.fill(0);
        self.places.clear();
        self.text.clear();
        self.held = 0;
    }
}

impl RecentIds {
    /// An empty window that always holds the last `capacity` ids (at least 1).
    pub fn new(capacity: usize) -> Self {
        let capacity = capacity.max(1);
        RecentIds {
            generations: [Generation::new(capacity), Generation::new(capacity)],
            generation: 0,
            capacity,
            hasher: RandomState::new(),
            hashes: Vec::new(),
            forgotten: 0,
        }
    }

    fn current(&self) -> usize {
        (self.generation & 1) as usize
    }

    /// True if `id` is in the window.
    #[cfg(any(test, feature = "unstable-internals"))]
    pub fn contains(&self, id: &str) -> bool {
        self.holds(self.hasher.hash_one(id), id)
    }

    /// True if `id`, whose hash is `hash`, is in the window.
    fn holds(&self, hash: u64, id: &str) -> bool {
        self.generations
            .iter()
            .any(|generation| generation.find(hash, id).is_some())
    }

    /// Claims `id` for a write about to happen: true if it was not in the window, and is now
    /// (as the newest); false if it was. A claim whose write fails must be
    /// [`release`](Self::release)d. For a group of ids, [`claim_all`](Self::claim_all) is
    /// faster.
    #[cfg(any(test, feature = "unstable-internals"))]
    pub fn claim(&mut self, id: &str) -> bool {
        let hash = self.hasher.hash_one(id);
        self.claim_hashed(hash, id)
    }

    /// [`claim`](Self::claim)s every id of `ids` in order (a repeat within `ids` is claimed by
    /// its first copy), prefetching ahead (see [`RecentIds`]). One answer per id, in order.
    pub fn claim_all(&mut self, ids: &[&str]) -> Vec<bool> {
        let mut hashes = std::mem::take(&mut self.hashes);
        hashes.extend(ids.iter().map(|id| self.hasher.hash_one(id)));
        for &hash in hashes.iter().take(PREFETCH_AHEAD) {
            self.prefetch(hash);
        }
        let claimed = ids
            .iter()
            .zip(&hashes)
            .enumerate()
            .map(|(index, (id, &hash))| {
                if let Some(&ahead) = hashes.get(index + PREFETCH_AHEAD) {
                    self.prefetch(ahead);
                }
                self.claim_hashed(hash, id)
            })
            .collect();
        hashes.clear();
        self.hashes = hashes;
        claimed
    }

    fn prefetch(&self, hash: u64) {
        for generation in &self.generations {
            generation.prefetch(hash);
        }
    }

    fn claim_hashed(&mut self, hash: u64, id: &str) -> bool {
        if self.holds(hash, id) {
            return false;
        }
        // Only now, so that a full generation never forgets the very id being asked about.
        self.insert(hash, id);
        true
    }

    /// Takes back a [`claim`](Self::claim) whose write failed, so that a retry is written.
    pub fn release(&mut self, id: &str) {
        let hash = self.hasher.hash_one(id);
        for generation in &mut self.generations {
            if let Some(at) = generation.find(hash, id) {
                generation.remove(at);
                return;
            }
        }
    }

    /// Remembers `id` as the newest. It does not look for `id` first: for ids known to be
    /// stored (a log being recovered). An id remembered twice takes two places, which is
    /// harmless: the window stays exact for every id in it.
    pub fn remember(&mut self, id: &str) {
        let hash = self.hasher.hash_one(id);
        self.insert(hash, id);
    }

    /// Adds `id`, whose hash is `hash`, to the current generation, starting a new one first if
    /// it holds `capacity` ids or has no room left (released ids keep their places). Nothing
    /// for an id of 4 GiB or more, which cannot be a record id (ingest takes at most 256 bytes).
    fn insert(&mut self, hash: u64, id: &str) {
        if u32::try_from(id.len()).is_err() {
            return;
        }
        let current = &self.generations[self.current()];
        if current.held >= self.capacity || !current.has_room_for(id) {
            self.next_generation();
        }
        let current = self.current();
        self.generations[current].insert(hash, id);
    }

    /// Forgets the generation before the current one and starts a new one in its place.
    fn next_generation(&mut self) {
        self.generation += 1;
        let oldest = &mut self.generations[self.current()];
        self.forgotten += oldest.held as u64;
        oldest.clear();
    }

    /// Ids forgotten so far. Deduplication is exact for a retry that arrives within `capacity`
    /// ids of the original.
    pub fn forgotten(&self) -> u64 {
        self.forgotten
    }

    /// Ids remembered now: at least the last `capacity` (once that many were remembered), at
    /// most `2 * capacity`.
    #[cfg(any(test, feature = "unstable-internals"))]
    pub fn len(&self) -> usize {
        self.generations
            .iter()
            .map(|generation| generation.held)
            .sum()
    }

    /// Whether no id is remembered.
    #[cfg(feature = "unstable-internals")]
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

    /// The window against a plain model of its contract (two generations of ids, by parity),
    /// over many claims, group claims and releases of a few ids in a small table, so that
    /// probes wrap around the table and removals shift long clusters back.
    #[test]
    fn claims_and_releases_agree_with_a_model_of_two_generations() {
        const CAPACITY: usize = 8;
        // The table's slots: the bound on a generation's places, released ones included.
        const SLOTS: usize = 16;
        #[derive(Default)]
        struct Model {
            generations: [Vec<String>; 2],
            places: usize,
            generation: usize,
            forgotten: u64,
        }
        impl Model {
            fn holds(&self, id: &str) -> bool {
                self.generations.iter().flatten().any(|held| held == id)
            }
            fn claim(&mut self, id: &str) -> bool {
                if self.holds(id) {
                    return false;
                }
                let current = self.generation % 2;
                if self.generations[current].len() >= CAPACITY || self.places >= SLOTS {
                    self.generation += 1;
                    let oldest = &mut self.generations[self.generation % 2];
                    self.forgotten += oldest.len() as u64;
                    oldest.clear();
                    self.places = 0;
                }
                self.generations[self.generation % 2].push(id.to_owned());
                self.places += 1;
                true
            }
            fn release(&mut self, id: &str) {
                for generation in &mut self.generations {
                    if let Some(at) = generation.iter().position(|held| held == id) {
                        generation.remove(at);
                        return;
                    }
                }
            }
        }
        let mut recent = RecentIds::new(CAPACITY);
        let mut model = Model::default();
        let mut seed: u64 = 0x5eed;
        let mut next = |bound: u64| {
            seed = seed
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            (seed >> 33) % bound
        };
        for _ in 0..20_000 {
            let id = format!("id-{}", next(24));
            match next(4) {
                0 => {
                    recent.release(&id);
                    model.release(&id);
                }
                1 => {
                    let group: Vec<String> =
                        (0..next(6)).map(|_| format!("id-{}", next(24))).collect();
                    let group: Vec<&str> = group.iter().map(String::as_str).collect();
                    let expected: Vec<bool> = group.iter().map(|id| model.claim(id)).collect();
                    assert_eq!(recent.claim_all(&group), expected, "{group:?}");
                }
                _ => assert_eq!(recent.claim(&id), model.claim(&id), "claim {id}"),
            }
            for probe in 0..24 {
                let probe = format!("id-{probe}");
                assert_eq!(recent.contains(&probe), model.holds(&probe), "{probe}");
            }
            assert_eq!(
                recent.len(),
                model.generations.iter().map(Vec::len).sum::<usize>()
            );
            assert_eq!(recent.forgotten(), model.forgotten);
        }
    }
}

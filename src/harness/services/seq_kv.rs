//! `seq-kv` exactly as Maelstrom implements it (`service.clj` `Sequential`, over the
//! `amalloy/ring-buffer` of 32 states): each requester is served from a version drawn uniformly
//! between the last one it was served and the newest; a request that would change that version
//! is instead applied to the newest and pushed as a new version.
//!
//! The ring's wrap is kept on purpose: when a requester lags by more than the ring holds, the
//! drawn offset wraps modulo the ring's length, so it is served the held version whose number is
//! congruent to the drawn one, and can see versions go backwards.

use std::collections::{HashMap, VecDeque};

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde_json::{Map, Value};

use super::kv::KvState;

/// How many versions Maelstrom's seq-kv keeps.
pub const RING_CAPACITY: usize = 32;

/// The sequentially consistent store.
#[derive(Debug)]
pub struct SeqKv {
    ring: VecDeque<KvState>,
    capacity: usize,
    /// The newest version's number.
    last: u64,
    /// Requester id (the message's `src`) -> the version it was served last.
    served: HashMap<String, u64>,
    rng: ChaCha8Rng,
}

impl SeqKv {
    /// An empty store keeping `capacity` versions, drawing from `seed`.
    pub fn new(capacity: usize, seed: u64) -> Self {
        SeqKv {
            ring: VecDeque::from([KvState::default()]),
            capacity: capacity.max(1),
            last: 0,
            served: HashMap::new(),
            rng: ChaCha8Rng::seed_from_u64(seed),
        }
    }

    /// The newest version's number.
    #[cfg(test)]
    pub fn last_version(&self) -> u64 {
        self.last
    }

    /// The newest state.
    pub(super) fn newest(&self) -> &KvState {
        self.ring
            .back()
            .unwrap_or_else(|| unreachable!("the ring is never empty"))
    }

    /// Serves one request from `src`; `None` (no reply, nothing changed) for an unknown type.
    pub fn handle(&mut self, src: &str, body: &Map<String, Value>) -> Option<Map<String, Value>> {
        let seen = self.served.get(src).copied().unwrap_or(0);
        let pick = self.rng.random_range(seen..=self.last);
        // Maelstrom's negative offset (-1 is the newest), reduced modulo the ring's length by
        // the ring buffer's `nth`: the wrap quirk.
        let offset = pick as i64 - self.last as i64 - 1;
        let slot = offset.rem_euclid(self.ring.len() as i64) as usize;
        let applied = self.ring[slot].apply(body)?;
        if applied.changed.is_none() {
            self.served.insert(src.to_string(), pick);
            return Some(applied.reply);
        }
        let newest = self.newest();
        let fresh = newest.apply(body)?;
        let next = fresh.changed.unwrap_or_else(|| newest.clone());
        self.ring.push_back(next);
        if self.ring.len() > self.capacity {
            self.ring.pop_front();
        }
        self.last += 1;
        self.served.insert(src.to_string(), self.last);
        Some(fresh.reply)
    }
}

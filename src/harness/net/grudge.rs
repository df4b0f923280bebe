//! Which server drops messages from which (docs/harness.md §5.3): the nemesis writes it, delivery
//! workers read it at dequeue time.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::RwLock;

/// Destination -> the sources whose messages it currently drops.
pub type Cut = BTreeMap<String, BTreeSet<String>>;

/// The network's current grudge. Only server nodes ever appear in it.
#[derive(Debug, Default)]
pub struct Grudge {
    cut: RwLock<Cut>,
}

impl Grudge {
    /// Adds every pair of `cut` to the grudge.
    pub fn add(&self, cut: &Cut) {
        let mut current = self.cut.write().unwrap_or_else(|p| p.into_inner());
        for (dest, sources) in cut {
            current
                .entry(dest.clone())
                .or_default()
                .extend(sources.iter().cloned());
        }
    }

    /// Forgets every grudge: the network is healed.
    pub fn heal(&self) {
        self.cut.write().unwrap_or_else(|p| p.into_inner()).clear();
    }

    /// True if `dest` currently drops messages from `src`.
    pub fn drops(&self, src: &str, dest: &str) -> bool {
        let current = self.cut.read().unwrap_or_else(|p| p.into_inner());
        current
            .get(dest)
            .is_some_and(|sources| sources.contains(src))
    }
}

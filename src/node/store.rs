//! The values a node knows, in the order it learnt them.

use std::collections::HashSet;

/// Every value the node has learnt, from a client or a peer. Reads return all of it: nothing is
/// hidden until it has spread.
#[derive(Debug, Default)]
pub struct ValueStore {
    seen: HashSet<i64>,
    order: Vec<i64>,
}

impl ValueStore {
    /// Adds `value`; returns whether it was new.
    pub fn insert(&mut self, value: i64) -> bool {
        let new = self.seen.insert(value);
        if new {
            self.order.push(value);
        }
        new
    }

    /// Every value, in the order learnt; each once.
    pub fn values(&self) -> &[i64] {
        &self.order
    }
}

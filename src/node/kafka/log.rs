//! The logs one node holds: for keys it leads, the log itself; for the others, a replica that may
//! lag and may have holes while replication is under way. Plus the committed offsets.

use std::collections::{BTreeMap, HashMap};

/// Every log and commit this node knows.
#[derive(Debug, Default)]
pub struct Logs {
    logs: HashMap<String, BTreeMap<u64, i64>>,
    committed: HashMap<String, u64>,
}

impl Logs {
    /// Appends `msg` to the log of `key`, which this node leads: its entries are exactly
    /// `0..len`, so the next offset is the length.
    pub fn append(&mut self, key: &str, msg: i64) -> u64 {
        let log = self.logs.entry(key.to_owned()).or_default();
        let offset = log.len() as u64;
        log.insert(offset, msg);
        offset
    }

    /// Places a replicated entry; an entry already there is kept (the leader never changes one).
    pub fn insert(&mut self, key: &str, offset: u64, msg: i64) {
        let log = self.logs.entry(key.to_owned()).or_default();
        if let Some(&held) = log.get(&offset) {
            if held != msg {
                tracing::error!(
                    key,
                    offset,
                    held,
                    msg,
                    "a replica disagrees with its leader"
                );
            }
            return;
        }
        log.insert(offset, msg);
    }

    /// The entries of `key` from offset `from` on, up to the first hole: a poll never skips a
    /// message, so a lagging replica returns less, never a gap.
    pub fn read_from(&self, key: &str, from: u64) -> Vec<(u64, i64)> {
        let Some(log) = self.logs.get(key) else {
            return Vec::new();
        };
        (from..)
            .zip(log.range(from..))
            .take_while(|(next, (offset, _))| *next == **offset)
            .map(|(_, (&offset, &msg))| (offset, msg))
            .collect()
    }

    /// Records that `key` was processed up to `offset` (commits only grow); returns whether
    /// that is news.
    pub fn commit(&mut self, key: &str, offset: u64) -> bool {
        match self.committed.get_mut(key) {
            Some(committed) if *committed >= offset => false,
            Some(committed) => {
                *committed = offset;
                true
            }
            None => {
                self.committed.insert(key.to_owned(), offset);
                true
            }
        }
    }

    /// The committed offset of `key`, if any.
    pub fn committed(&self, key: &str) -> Option<u64> {
        self.committed.get(key).copied()
    }
}

#[cfg(test)]
mod tests {
    use super::Logs;

    #[test]
    fn a_replica_with_a_hole_serves_only_up_to_it() {
        let mut logs = Logs::default();
        logs.insert("k", 0, 10);
        logs.insert("k", 2, 12);
        assert_eq!(logs.read_from("k", 0), [(0, 10)]);
        assert_eq!(logs.read_from("k", 1), []);
        assert_eq!(logs.read_from("k", 2), [(2, 12)]);
        logs.insert("k", 1, 11);
        assert_eq!(logs.read_from("k", 0), [(0, 10), (1, 11), (2, 12)]);
        assert_eq!(logs.read_from("absent", 0), []);
    }

    #[test]
    fn a_leader_appends_at_the_end_and_commits_only_grow() {
        let mut logs = Logs::default();
        assert_eq!(logs.append("k", 5), 0);
        assert_eq!(logs.append("k", 6), 1);
        assert_eq!(logs.append("j", 5), 0);
        assert!(logs.commit("k", 1));
        assert!(!logs.commit("k", 0));
        assert_eq!(logs.committed("k"), Some(1));
        assert_eq!(logs.committed("j"), None);
    }
}

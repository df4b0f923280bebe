//! Unique ids for the unique-ids workload.

/// Makes ids unique across nodes (the node id), across restarts (a per-process epoch, random
/// unless configured) and within the process (a counter): `"<node>-<epoch hex>-<counter>"`.
#[derive(Debug)]
pub struct IdGenerator {
    prefix: String,
    next: u64,
}

impl IdGenerator {
    /// A generator for `node_id`, with this process's `epoch`.
    pub fn new(node_id: &str, epoch: u64) -> Self {
        IdGenerator {
            prefix: format!("{node_id}-{epoch:016x}-"),
            next: 0,
        }
    }

    /// The next id.
    pub fn next_id(&mut self) -> String {
        self.next += 1;
        format!("{}{}", self.prefix, self.next)
    }
}

#[cfg(test)]
mod tests {
    use super::IdGenerator;

    #[test]
    fn ids_differ_by_node_epoch_and_counter() {
        let mut first = IdGenerator::new("n0", 1);
        let mut other_node = IdGenerator::new("n1", 1);
        let mut restarted = IdGenerator::new("n0", 2);
        let ids = [
            first.next_id(),
            first.next_id(),
            other_node.next_id(),
            restarted.next_id(),
        ];
        let distinct: std::collections::HashSet<_> = ids.iter().collect();
        assert_eq!(distinct.len(), ids.len(), "{ids:?}");
    }
}

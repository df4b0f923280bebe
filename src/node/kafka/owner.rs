//! Which node leads a key: the one that allocates its offsets. Fixed for the whole run (the node
//! set never changes), and the same on every node, with no coordination.

/// The leader of `key` among `node_ids`: a decimal key `k` (what Maelstrom's kafka workload
/// uses) goes to node `k mod N`, which spreads consecutive keys evenly; any other key by its
/// FNV-1a hash.
pub fn leader<'a>(key: &str, node_ids: &'a [String]) -> Option<&'a str> {
    if node_ids.is_empty() {
        return None;
    }
    let slot = match key.parse::<u64>() {
        Ok(number) => number,
        Err(_) => fnv1a(key.as_bytes()),
    };
    let index = (slot % node_ids.len() as u64) as usize;
    Some(node_ids[index].as_str())
}

fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |hash, byte| {
        (hash ^ u64::from(*byte)).wrapping_mul(0x0100_0000_01b3)
    })
}

#[cfg(test)]
mod tests {
    use super::leader;

    #[test]
    fn decimal_keys_alternate_and_other_keys_are_stable() {
        let ids = vec!["n0".to_owned(), "n1".to_owned()];
        assert_eq!(leader("0", &ids), Some("n0"));
        assert_eq!(leader("1", &ids), Some("n1"));
        assert_eq!(leader("309", &ids), Some("n1"));
        assert_eq!(leader("x", &ids), leader("x", &ids));
        assert_eq!(leader("x", &[]), None);
    }
}

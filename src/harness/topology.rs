//! The broadcast workload's topologies (docs/harness.md §3.2): which neighbours each node is
//! told about.

use std::collections::BTreeMap;

use serde_json::{Map, Value};

/// A topology shape, as `--topology` names it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[cfg_attr(feature = "cli", derive(clap::ValueEnum))]
pub enum TopologyKind {
    /// A square grid, `ceil(sqrt(N))` wide; Maelstrom's default.
    #[default]
    Grid,
    /// Each node next to its predecessor and successor.
    Line,
    /// Every node next to every other.
    Total,
    /// A binary tree in heap layout (the same as `tree2`).
    Tree,
    /// A binary tree in heap layout.
    Tree2,
    /// A ternary tree in heap layout.
    Tree3,
    /// A 4-ary tree in heap layout.
    Tree4,
}

/// Neighbours of every node, keyed by node id, each list in Maelstrom's order.
pub type Topology = BTreeMap<String, Vec<String>>;

impl TopologyKind {
    /// The neighbour lists for `nodes`, given in test order.
    pub fn build(self, nodes: &[String]) -> Topology {
        let n = nodes.len();
        let neighbours: Vec<Vec<usize>> = match self {
            TopologyKind::Grid => grid(n),
            TopologyKind::Line if n < 2 => return Topology::new(),
            TopologyKind::Line => (0..n).map(|k| line(k, n)).collect(),
            TopologyKind::Total => (0..n)
                .map(|k| (0..n).filter(|&o| o != k).collect())
                .collect(),
            TopologyKind::Tree | TopologyKind::Tree2 => tree(n, 2),
            TopologyKind::Tree3 => tree(n, 3),
            TopologyKind::Tree4 => tree(n, 4),
        };
        neighbours
            .into_iter()
            .enumerate()
            .map(|(k, list)| {
                let names = list.into_iter().map(|o| nodes[o].clone()).collect();
                (nodes[k].clone(), names)
            })
            .collect()
    }
}

/// The topology as the JSON object the `topology` request carries.
pub fn to_json(topology: &Topology) -> Value {
    let map: Map<String, Value> = topology
        .iter()
        .map(|(node, list)| (node.clone(), Value::from(list.clone())))
        .collect();
    Value::Object(map)
}

fn grid(n: usize) -> Vec<Vec<usize>> {
    let side = (1..=n).find(|s| s * s >= n).unwrap_or(0);
    (0..n)
        .map(|k| {
            let (i, j) = ((k / side) as isize, (k % side) as isize);
            [(i + 1, j), (i - 1, j), (i, j + 1), (i, j - 1)]
                .into_iter()
                .filter(|&(r, c)| r >= 0 && c >= 0 && (c as usize) < side)
                .map(|(r, c)| r as usize * side + c as usize)
                .filter(|&index| index < n)
                .collect()
        })
        .collect()
}

fn line(k: usize, n: usize) -> Vec<usize> {
    match k {
        0 => vec![1],
        _ if k == n - 1 => vec![k - 1],
        _ => vec![k - 1, k + 1],
    }
}

fn tree(n: usize, branching: usize) -> Vec<Vec<usize>> {
    (0..n)
        .map(|k| {
            let parent = (k > 0).then(|| (k - 1) / branching);
            let children = (branching * k + 1..=branching * k + branching).filter(|&c| c < n);
            parent.into_iter().chain(children).collect()
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn nodes(n: usize) -> Vec<String> {
        (0..n).map(|k| format!("n{k}")).collect()
    }

    fn of(topology: &Topology, node: &str) -> Vec<String> {
        topology[node].clone()
    }

    #[test]
    fn grid_of_five_matches_maelstrom() {
        let t = TopologyKind::Grid.build(&nodes(5));
        assert_eq!(of(&t, "n0"), ["n3", "n1"]);
        assert_eq!(of(&t, "n1"), ["n4", "n2", "n0"]);
        assert_eq!(of(&t, "n2"), ["n1"]);
        assert_eq!(of(&t, "n3"), ["n0", "n4"]);
        assert_eq!(of(&t, "n4"), ["n1", "n3"]);
    }

    #[test]
    fn grid_of_twenty_five_matches_maelstrom() {
        let t = TopologyKind::Grid.build(&nodes(25));
        assert_eq!(of(&t, "n12"), ["n17", "n7", "n13", "n11"]);
        assert_eq!(of(&t, "n0"), ["n5", "n1"]);
    }

    #[test]
    fn tree4_of_twenty_five_matches_maelstrom() {
        let t = TopologyKind::Tree4.build(&nodes(25));
        assert_eq!(of(&t, "n0"), ["n1", "n2", "n3", "n4"]);
        assert_eq!(of(&t, "n1"), ["n0", "n5", "n6", "n7", "n8"]);
        assert_eq!(of(&t, "n5"), ["n1", "n21", "n22", "n23", "n24"]);
        assert_eq!(of(&t, "n6"), ["n1"]);
        assert_eq!(of(&t, "n24"), ["n5"]);
    }

    #[test]
    fn line_of_one_is_empty_and_line_of_three_links_neighbours() {
        assert!(TopologyKind::Line.build(&nodes(1)).is_empty());
        let t = TopologyKind::Line.build(&nodes(3));
        assert_eq!(of(&t, "n0"), ["n1"]);
        assert_eq!(of(&t, "n1"), ["n0", "n2"]);
        assert_eq!(of(&t, "n2"), ["n1"]);
    }

    #[test]
    fn total_links_every_other_node_in_test_order() {
        let t = TopologyKind::Total.build(&nodes(3));
        assert_eq!(of(&t, "n1"), ["n0", "n2"]);
    }
}

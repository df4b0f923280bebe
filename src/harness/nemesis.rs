//! The partition nemesis's shapes (docs/harness.md §5.2): each start picks one of four uniformly,
//! with the nodes shuffled, and turns it into a grudge (destination -> sources it drops).

use std::collections::BTreeSet;

use rand::Rng;
use rand::seq::{IndexedRandom, SliceRandom};

use crate::harness::net::Cut;

/// The shapes Maelstrom's partition nemesis chooses from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Shape {
    /// One node cut off from all others.
    One,
    /// `floor((N-1)/3)` nodes against the rest.
    MinorityThird,
    /// `floor(N/2)` nodes against the rest.
    Majority,
    /// Everyone sees a majority, no two the same one.
    MajoritiesRing,
}

impl Shape {
    /// Maelstrom's keyword for the shape, without the colon.
    pub fn name(self) -> &'static str {
        match self {
            Shape::One => "one",
            Shape::MinorityThird => "minority-third",
            Shape::Majority => "majority",
            Shape::MajoritiesRing => "majorities-ring",
        }
    }

    /// One of the four, uniformly.
    pub fn choose(rng: &mut impl Rng) -> Shape {
        let shapes = [
            Shape::One,
            Shape::MinorityThird,
            Shape::Majority,
            Shape::MajoritiesRing,
        ];
        shapes[rng.random_range(0..shapes.len())]
    }

    /// The grudge this shape makes over `nodes`, drawing the shuffle from `rng`.
    pub fn grudge(self, nodes: &[String], rng: &mut impl Rng) -> Cut {
        let mut shuffled = nodes.to_vec();
        shuffled.shuffle(rng);
        match self {
            Shape::One => match nodes.choose(rng) {
                Some(node) => {
                    let alone = vec![node.clone()];
                    let rest: Vec<String> = nodes.iter().filter(|n| *n != node).cloned().collect();
                    complete_cut(&alone, &rest)
                }
                None => Cut::new(),
            },
            Shape::Majority => {
                let (minority, rest) = shuffled.split_at(nodes.len() / 2);
                complete_cut(minority, rest)
            }
            Shape::MinorityThird => {
                let (minority, rest) = shuffled.split_at(nodes.len().saturating_sub(1) / 3);
                complete_cut(minority, rest)
            }
            Shape::MajoritiesRing if nodes.len() <= 5 => small_ring(&shuffled),
            Shape::MajoritiesRing => greedy_majorities(&shuffled, rng),
        }
    }
}

/// Every node of `a` drops every node of `b` and the other way round. Empty sides cut nothing.
fn complete_cut(a: &[String], b: &[String]) -> Cut {
    let mut cut = Cut::new();
    if a.is_empty() || b.is_empty() {
        return cut;
    }
    for node in a {
        cut.insert(node.clone(), b.iter().cloned().collect());
    }
    for node in b {
        cut.insert(node.clone(), a.iter().cloned().collect());
    }
    cut
}

/// N <= 5: windows of `m = N/2 + 1` consecutive ring positions; the node at offset `m/2` of each
/// window drops everything outside it. N = 3 gives a one-way cut; N <= 2 none.
fn small_ring(ring: &[String]) -> Cut {
    let n = ring.len();
    let mut cut = Cut::new();
    if n <= 2 {
        return cut;
    }
    let m = n / 2 + 1;
    for start in 0..n {
        let window: BTreeSet<&String> = (0..m).map(|offset| &ring[(start + offset) % n]).collect();
        let keeper = &ring[(start + m / 2) % n];
        let dropped: BTreeSet<String> = ring
            .iter()
            .filter(|node| !window.contains(node))
            .cloned()
            .collect();
        if !dropped.is_empty() {
            cut.insert(keeper.clone(), dropped);
        }
    }
    cut
}

/// N > 5: link the least-connected pairs until every node sees a majority (itself included),
/// then drop everything else.
fn greedy_majorities(nodes: &[String], rng: &mut impl Rng) -> Cut {
    let n = nodes.len();
    let majority = n / 2 + 1;
    let mut sees: Vec<BTreeSet<usize>> = (0..n).map(|k| BTreeSet::from([k])).collect();
    while let Some(a) = least_connected(&sees, (0..n).filter(|&k| sees[k].len() < majority), rng) {
        let candidates = (0..n).filter(|k| !sees[a].contains(k));
        let Some(b) = least_connected(&sees, candidates, rng) else {
            break;
        };
        sees[a].insert(b);
        sees[b].insert(a);
    }
    (0..n)
        .filter_map(|k| {
            let dropped: BTreeSet<String> = (0..n)
                .filter(|other| !sees[k].contains(other))
                .map(|other| nodes[other].clone())
                .collect();
            (!dropped.is_empty()).then(|| (nodes[k].clone(), dropped))
        })
        .collect()
}

/// Among `candidates`, one with the fewest links, ties broken at random.
fn least_connected(
    sees: &[BTreeSet<usize>],
    candidates: impl Iterator<Item = usize>,
    rng: &mut impl Rng,
) -> Option<usize> {
    let candidates: Vec<usize> = candidates.collect();
    let fewest = candidates.iter().map(|&k| sees[k].len()).min()?;
    let tied: Vec<usize> = candidates
        .into_iter()
        .filter(|&k| sees[k].len() == fewest)
        .collect();
    tied.choose(rng).copied()
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;
    use rand_chacha::ChaCha8Rng;

    fn nodes(n: usize) -> Vec<String> {
        (0..n).map(|k| format!("n{k}")).collect()
    }

    fn symmetric(cut: &Cut) -> bool {
        cut.iter().all(|(dest, sources)| {
            sources
                .iter()
                .all(|src| cut.get(src).is_some_and(|s| s.contains(dest)))
        })
    }

    fn visible(cut: &Cut, node: &str, n: usize) -> usize {
        n - cut.get(node).map_or(0, BTreeSet::len)
    }

    #[test]
    fn majority_of_twenty_five_splits_twelve_against_thirteen() {
        let mut rng = ChaCha8Rng::seed_from_u64(1);
        let cut = Shape::Majority.grudge(&nodes(25), &mut rng);
        let mut sizes: Vec<usize> = cut.values().map(BTreeSet::len).collect();
        sizes.sort();
        sizes.dedup();
        assert_eq!(sizes, [12, 13]);
        assert!(symmetric(&cut));
    }

    #[test]
    fn minority_third_of_five_cuts_one_and_of_three_cuts_nothing() {
        let mut rng = ChaCha8Rng::seed_from_u64(2);
        let cut = Shape::MinorityThird.grudge(&nodes(5), &mut rng);
        assert_eq!(cut.values().filter(|s| s.len() == 4).count(), 1);
        assert!(Shape::MinorityThird.grudge(&nodes(3), &mut rng).is_empty());
    }

    #[test]
    fn one_isolates_a_single_node_both_ways() {
        let mut rng = ChaCha8Rng::seed_from_u64(3);
        let cut = Shape::One.grudge(&nodes(5), &mut rng);
        assert_eq!(cut.values().filter(|s| s.len() == 4).count(), 1);
        assert_eq!(cut.len(), 5);
        assert!(symmetric(&cut));
    }

    #[test]
    fn ring_of_five_keeps_two_neighbours_and_ring_of_three_is_one_way() {
        let mut rng = ChaCha8Rng::seed_from_u64(4);
        let cut = Shape::MajoritiesRing.grudge(&nodes(5), &mut rng);
        assert!(nodes(5).iter().all(|n| cut[n].len() == 2));
        assert!(symmetric(&cut));
        let three = Shape::MajoritiesRing.grudge(&nodes(3), &mut rng);
        assert!(nodes(3).iter().all(|n| three[n].len() == 1));
        assert!(!symmetric(&three));
    }

    #[test]
    fn ring_of_twenty_five_leaves_everyone_a_majority_but_cuts_someone() {
        for seed in 0..20 {
            let mut rng = ChaCha8Rng::seed_from_u64(seed);
            let cut = Shape::MajoritiesRing.grudge(&nodes(25), &mut rng);
            assert!(nodes(25).iter().all(|n| visible(&cut, n, 25) >= 13));
            assert!(!cut.is_empty());
            assert!(symmetric(&cut));
        }
    }
}

//! Jepsen's `stats` checker (docs/harness.md §6.3): completions of client ops, overall and per
//! function. A function that never once completed `:ok` makes the run invalid, so a broadcast run
//! whose reads all failed is invalid.

use std::collections::BTreeMap;

use super::Validity;
use crate::harness::edn::Edn;
use crate::harness::history::{History, OpFn, OpType};

/// Completion counts of one group of operations.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Counts {
    /// Completions of any type.
    pub count: u64,
    /// `:ok` completions.
    pub ok_count: u64,
    /// `:fail` completions.
    pub fail_count: u64,
    /// `:info` completions.
    pub info_count: u64,
    /// True for functions allowed to have no `:ok` (kafka's crash).
    pub exempt: bool,
}

impl Counts {
    fn add(&mut self, kind: OpType) {
        self.count += 1;
        match kind {
            OpType::Ok => self.ok_count += 1,
            OpType::Fail => self.fail_count += 1,
            OpType::Info => self.info_count += 1,
            OpType::Invoke => {}
        }
    }

    /// Valid iff at least one `:ok`.
    pub fn valid(&self) -> Validity {
        Validity::from_bool(self.ok_count > 0 || self.exempt)
    }

    fn entries(&self) -> Vec<(&'static str, Edn)> {
        vec![
            ("valid?", self.valid().to_edn()),
            ("count", Edn::uint(self.count)),
            ("ok-count", Edn::uint(self.ok_count)),
            ("fail-count", Edn::uint(self.fail_count)),
            ("info-count", Edn::uint(self.info_count)),
        ]
    }
}

/// The stats checker's result.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct StatsResult {
    /// All client completions.
    pub total: Counts,
    /// Per function name (`broadcast`, `read`, …), sorted by name.
    pub by_f: BTreeMap<&'static str, Counts>,
}

impl StatsResult {
    /// Invalid if some function has no `:ok` completion; valid otherwise (also when empty).
    pub fn valid(&self) -> Validity {
        Validity::merge_all(self.by_f.values().map(Counts::valid))
    }

    /// `{:valid? :count :ok-count :fail-count :info-count :by-f {…}}`.
    pub fn to_edn(&self) -> Edn {
        let mut entries = self.total.entries();
        entries[0].1 = self.valid().to_edn();
        entries.push((
            "by-f",
            Edn::kw_map(
                self.by_f
                    .iter()
                    .map(|(f, counts)| (*f, Edn::kw_map(counts.entries()))),
            ),
        ));
        Edn::kw_map(entries)
    }
}

/// Counts the completions of every client op in `history`.
pub fn check(history: &History) -> StatsResult {
    let mut result = StatsResult::default();
    for op in history.ops() {
        if op.is_client() && op.kind != OpType::Invoke {
            result.total.add(op.kind);
            result.by_f.entry(op.f.name()).or_default().add(op.kind);
        }
    }
    // Maelstrom's stats wrapper lets `:crash` go without an `:ok` (it never has one).
    if let Some(crash) = result.by_f.get_mut(OpFn::Crash.name()) {
        crash.exempt = true;
    }
    result
}

//! The g-counter checker: Maelstrom's `workload/pn_counter.clj` `checker`, which g-counter
//! reuses. Only final reads are judged: each `:ok` final read must lie in the set of totals the
//! adds could have produced, the `:ok` adds for sure and any subset of the `:info` ones.
//!
//! Quirks kept on purpose: main-phase reads are never judged (they may go down), final reads
//! that end `:info` are dropped, and with no `:ok` final read the workload is valid.

use serde_json::Value;

use super::Validity;
use crate::harness::edn::{Edn, op_to_edn};
use crate::harness::history::{History, Op, OpFn, OpType};

/// The g-counter checker's result.
#[derive(Clone, Debug, PartialEq)]
pub struct GCounterResult<'h> {
    /// `:ok` final reads whose value is not acceptable.
    pub errors: Vec<&'h Op>,
    /// The values of the `:ok` final reads, in history order.
    pub final_reads: Vec<Value>,
    /// The acceptable totals as ascending, disjoint, closed ranges.
    pub acceptable: Vec<(i64, i64)>,
}

impl GCounterResult<'_> {
    /// Valid iff no final read is out of range.
    pub fn valid(&self) -> Validity {
        Validity::from_bool(self.errors.is_empty())
    }

    /// `{:valid? b, :errors (...) | nil, :final-reads (...), :acceptable ([lo hi] ...)}`.
    pub fn to_edn(&self) -> Edn {
        let errors = if self.errors.is_empty() {
            Edn::Nil
        } else {
            Edn::List(self.errors.iter().map(|op| op_to_edn(op)).collect())
        };
        Edn::kw_map([
            ("valid?", self.valid().to_edn()),
            ("errors", errors),
            (
                "final-reads",
                Edn::List(self.final_reads.iter().map(Edn::from).collect()),
            ),
            (
                "acceptable",
                Edn::List(
                    self.acceptable
                        .iter()
                        .map(|&(lo, hi)| Edn::Vector(vec![Edn::Int(lo), Edn::Int(hi)]))
                        .collect(),
                ),
            ),
        ])
    }
}

/// The acceptable totals: `{sure + ΣS : S ⊆ maybe}`, built as a union of integer intervals
/// (start with `{sure}`, then `A := A ∪ (A + δ)` per indeterminate delta), adjacent integers
/// merged (`[8 10]`, never `[8 9] [10 10]`), as Maelstrom's Guava range set prints it.
pub fn acceptable(sure: i64, maybe: &[i64]) -> Vec<(i64, i64)> {
    let mut ranges = vec![(sure, sure)];
    for &delta in maybe {
        let shifted = ranges
            .iter()
            .map(|&(lo, hi)| (lo.saturating_add(delta), hi.saturating_add(delta)));
        let mut all: Vec<(i64, i64)> = ranges.iter().copied().chain(shifted).collect();
        all.sort_unstable();
        ranges = Vec::with_capacity(all.len());
        for (lo, hi) in all {
            match ranges.last_mut() {
                Some(last) if lo <= last.1.saturating_add(1) => last.1 = last.1.max(hi),
                _ => ranges.push((lo, hi)),
            }
        }
    }
    ranges
}

/// Checks a g-counter history.
pub fn check(history: &History) -> GCounterResult<'_> {
    let mut sure = 0i64;
    let mut maybe = Vec::new();
    let mut final_ops = Vec::new();
    for op in history.ops().iter().filter(|op| op.is_client()) {
        match (op.f, op.kind) {
            (OpFn::Add, OpType::Ok) => {
                sure = sure.saturating_add(op.value.as_i64().unwrap_or(0));
            }
            (OpFn::Add, OpType::Info) => maybe.push(op.value.as_i64().unwrap_or(0)),
            (OpFn::Read, OpType::Ok) if op.final_read => final_ops.push(op),
            _ => {}
        }
    }
    let acceptable = acceptable(sure, &maybe);
    let inside = |value: &Value| {
        value
            .as_i64()
            .is_some_and(|v| acceptable.iter().any(|&(lo, hi)| lo <= v && v <= hi))
    };
    GCounterResult {
        errors: final_ops
            .iter()
            .copied()
            .filter(|op| !inside(&op.value))
            .collect(),
        final_reads: final_ops.iter().map(|op| op.value.clone()).collect(),
        acceptable,
    }
}

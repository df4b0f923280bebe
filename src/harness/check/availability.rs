//! Jepsen's `availability` checker (docs/harness.md §6.3): the fraction of client invocations that
//! completed `:ok`, held against `--availability` when given.

use super::{AvailabilityRequirement, Validity};
use crate::harness::edn::Edn;
use crate::harness::history::{History, OpType};

/// The availability checker's result.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct AvailabilityResult {
    /// `:ok` completions over invocations, client ops only; 1 when nothing was invoked.
    pub ok_fraction: f64,
    /// Always valid without a requirement.
    pub valid: Validity,
}

impl AvailabilityResult {
    /// `{:valid? true, :ok-fraction 1.0}`.
    pub fn to_edn(self) -> Edn {
        Edn::kw_map([
            ("valid?", self.valid.to_edn()),
            ("ok-fraction", Edn::Float(self.ok_fraction)),
        ])
    }
}

/// Computes the ok fraction of `history` and checks it against `requirement`.
pub fn check(
    history: &History,
    requirement: Option<AvailabilityRequirement>,
) -> AvailabilityResult {
    let (mut invocations, mut oks) = (0u64, 0u64);
    for op in history.ops().iter().filter(|op| op.is_client()) {
        match op.kind {
            OpType::Invoke => invocations += 1,
            OpType::Ok => oks += 1,
            OpType::Fail | OpType::Info => {}
        }
    }
    let ok_fraction = if invocations == 0 {
        1.0
    } else {
        oks as f64 / invocations as f64
    };
    let valid = match requirement {
        None => true,
        Some(AvailabilityRequirement::Total) => ok_fraction == 1.0,
        Some(AvailabilityRequirement::Fraction(at_least)) => at_least <= ok_fraction,
    };
    AvailabilityResult {
        ok_fraction,
        valid: Validity::from_bool(valid),
    }
}

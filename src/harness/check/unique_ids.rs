//! Jepsen's `unique-ids` checker (docs/harness.md §8.2): no id may be acknowledged twice.

use std::collections::BTreeMap;

use serde_json::Value;

use super::Validity;
use super::value_key::ValueKey;
use crate::harness::edn::Edn;
use crate::harness::history::{History, OpFn, OpType};

/// How many duplicated ids `:duplicated` shows.
pub const DUPLICATED_LIMIT: usize = 48;

/// The unique-ids checker's result.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct UniqueIdsResult {
    /// Generate invocations.
    pub attempted_count: u64,
    /// `:ok` generate completions.
    pub acknowledged_count: u64,
    /// How many distinct ids were acknowledged more than once.
    pub duplicated_count: u64,
    /// The most duplicated ids (up to [`DUPLICATED_LIMIT`]) with how often each was
    /// acknowledged, sorted by id.
    pub duplicated: Vec<(Value, u64)>,
    /// The smallest and largest acknowledged id (integers numerically, then other values by
    /// their JSON text); `None` when nothing was acknowledged.
    pub range: Option<(Value, Value)>,
}

impl UniqueIdsResult {
    /// Valid iff no id was acknowledged twice.
    pub fn valid(&self) -> Validity {
        Validity::from_bool(self.duplicated_count == 0)
    }

    /// `{:valid? :attempted-count :acknowledged-count :duplicated-count :duplicated :range}`.
    pub fn to_edn(&self) -> Edn {
        let range = match &self.range {
            Some((low, high)) => Edn::Vector(vec![Edn::from(low), Edn::from(high)]),
            None => Edn::Vector(vec![Edn::Nil, Edn::Nil]),
        };
        Edn::kw_map([
            ("valid?", self.valid().to_edn()),
            ("attempted-count", Edn::uint(self.attempted_count)),
            ("acknowledged-count", Edn::uint(self.acknowledged_count)),
            ("duplicated-count", Edn::uint(self.duplicated_count)),
            (
                "duplicated",
                Edn::Map(
                    self.duplicated
                        .iter()
                        .map(|(id, count)| (Edn::from(id), Edn::uint(*count)))
                        .collect(),
                ),
            ),
            ("range", range),
        ])
    }
}

/// Counts every generate attempt and acknowledged id in `history`.
pub fn check(history: &History) -> UniqueIdsResult {
    let mut attempted_count = 0;
    let mut acknowledged: BTreeMap<ValueKey, u64> = BTreeMap::new();
    for op in history.ops() {
        if !op.is_client() || op.f != OpFn::Generate {
            continue;
        }
        match op.kind {
            OpType::Invoke => attempted_count += 1,
            OpType::Ok => *acknowledged.entry(ValueKey::new(&op.value)).or_default() += 1,
            OpType::Fail | OpType::Info => {}
        }
    }
    let acknowledged_count = acknowledged.values().sum();
    let mut duplicated: Vec<(&ValueKey, u64)> = acknowledged
        .iter()
        .filter(|(_, count)| **count > 1)
        .map(|(id, count)| (id, *count))
        .collect();
    let duplicated_count = duplicated.len() as u64;
    // The most frequent ones, then shown in id order.
    duplicated.sort_by_key(|(_, count)| std::cmp::Reverse(*count));
    duplicated.truncate(DUPLICATED_LIMIT);
    duplicated.sort_by(|a, b| a.0.cmp(b.0));
    let range = acknowledged
        .first_key_value()
        .zip(acknowledged.last_key_value())
        .map(|((low, _), (high, _))| (low.value().clone(), high.value().clone()));
    UniqueIdsResult {
        attempted_count,
        acknowledged_count,
        duplicated_count,
        duplicated: duplicated
            .into_iter()
            .map(|(id, count)| (id.value().clone(), count))
            .collect(),
        range,
    }
}

//! Jepsen's `set-full` checker as Maelstrom's broadcast workload uses it (docs/harness.md §6.1):
//! which broadcast values became stable, which were lost, and how long each took to become visible
//! everywhere.
//!
//! Broadcasts are the set's adds (docs/harness.md §3.3): they print as `:f :add` in the records.
//! Everything is compared by history index, never by time; times only give the latencies.
//!
//! The test `a_value_every_later_read_saw_is_stable` below shows
//! one broadcast value that a later read saw.

use std::collections::{BTreeMap, HashMap};

use serde_json::Value;

use super::Validity;
use super::value_key::ValueKey;
use crate::harness::edn::{Edn, op_to_edn};
use crate::harness::history::{History, Nanos, Op, OpFn, OpType, Process};

/// How many stale elements `:worst-stale` shows.
pub const WORST_STALE_LIMIT: usize = 8;

/// The quantiles set-full reports, in whole milliseconds: p = 0, 0.5, 0.95, 0.99 and 1.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LatencyQuantiles {
    /// p = 0, the minimum.
    pub p0: u64,
    /// p = 0.5, the (upper) median.
    pub p50: u64,
    /// p = 0.95.
    pub p95: u64,
    /// p = 0.99.
    pub p99: u64,
    /// p = 1, the maximum.
    pub max: u64,
}

impl LatencyQuantiles {
    /// The quantiles of `values` as Jepsen takes them: sort ascending, and for each p take the
    /// element at `min(n − 1, floor(n·p))`. `None` when `values` is empty.
    ///
    /// ```
    /// use sluicegate::harness::LatencyQuantiles;
    /// let q = LatencyQuantiles::from_values(&[7, 0, 5, 0]).unwrap();
    /// assert_eq!((q.p0, q.p50, q.p95, q.p99, q.max), (0, 5, 7, 7, 7));
    /// ```
    pub fn from_values(values: &[u64]) -> Option<LatencyQuantiles> {
        if values.is_empty() {
            return None;
        }
        let mut sorted = values.to_vec();
        sorted.sort_unstable();
        let n = sorted.len();
        let at = |p: f64| sorted[((n as f64 * p).floor() as usize).min(n - 1)];
        Some(LatencyQuantiles {
            p0: at(0.0),
            p50: at(0.5),
            p95: at(0.95),
            p99: at(0.99),
            max: at(1.0),
        })
    }

    /// `{0 0, 0.5 5, 0.95 7, 0.99 7, 1 7}`.
    pub fn to_edn(&self) -> Edn {
        Edn::Map(vec![
            (Edn::Int(0), Edn::uint(self.p0)),
            (Edn::Float(0.5), Edn::uint(self.p50)),
            (Edn::Float(0.95), Edn::uint(self.p95)),
            (Edn::Float(0.99), Edn::uint(self.p99)),
            (Edn::Int(1), Edn::uint(self.max)),
        ])
    }
}

/// What became of one broadcast value.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Outcome {
    /// Present in the last read that saw it, and no later read missed it.
    Stable,
    /// Known (acknowledged or read) and then missed by a read after its last presence.
    Lost,
    /// Neither: typically never acknowledged and never read.
    NeverRead,
}

impl Outcome {
    /// The EDN keyword name: `stable`, `lost`, `never-read`.
    pub fn name(self) -> &'static str {
        match self {
            Outcome::Stable => "stable",
            Outcome::Lost => "lost",
            Outcome::NeverRead => "never-read",
        }
    }
}

/// One broadcast value's record, borrowed from the history.
#[derive(Clone, Debug, PartialEq)]
pub struct ElementResult<'h> {
    /// The value broadcast.
    pub element: Value,
    /// Stable, lost or never read.
    pub outcome: Outcome,
    /// Stable only: ms from `known` to just after the invocation of the last read that missed
    /// it, truncated; 0 if no read missed it after it was known.
    pub stable_latency: Option<u64>,
    /// Lost only: ms from `known` to just after the invocation of the last read that saw it.
    pub lost_latency: Option<u64>,
    /// The broadcast's `:ok` completion, or the first `:ok` read completion that returned it,
    /// whichever came first.
    pub known: Option<&'h Op>,
    /// The invocation of the latest-invoked `:ok` read that returned it.
    pub last_present: Option<&'h Op>,
    /// The invocation of the latest-invoked `:ok` read that did not return it.
    pub last_absent: Option<&'h Op>,
}

impl ElementResult<'_> {
    /// `{:element :outcome :stable-latency :lost-latency :known :last-absent}`, as in
    /// `:worst-stale`.
    pub fn to_edn(&self) -> Edn {
        Edn::kw_map([
            ("element", Edn::from(&self.element)),
            ("outcome", Edn::keyword(self.outcome.name())),
            ("stable-latency", Edn::from(self.stable_latency)),
            ("lost-latency", Edn::from(self.lost_latency)),
            ("known", self.known.map_or(Edn::Nil, checker_op_edn)),
            (
                "last-absent",
                self.last_absent.map_or(Edn::Nil, checker_op_edn),
            ),
        ])
    }

    fn is_stale(&self) -> bool {
        self.stable_latency.is_some_and(|latency| latency > 0)
    }
}

/// An op as set-full sees it: broadcasts are adds.
fn checker_op_edn(op: &Op) -> Edn {
    let mut edn = op_to_edn(op);
    if op.f == OpFn::Broadcast {
        edn.set("f", Edn::keyword("add"));
    }
    edn
}

/// Everything set-full found.
#[derive(Clone, Debug, PartialEq)]
pub struct SetFullResult<'h> {
    /// Broadcast invocations.
    pub attempt_count: u64,
    /// One record per broadcast value, sorted by value.
    pub elements: Vec<ElementResult<'h>>,
    /// Every value some `:ok` read returned more than once, with the largest number of times
    /// one read returned it; sorted by value. Computed even under the dup quirk.
    pub duplicated: Vec<(Value, u64)>,
    /// Quantiles of the stable latencies; `None` if nothing is stable.
    pub stable_latencies: Option<LatencyQuantiles>,
    /// Quantiles of the lost latencies; `None` if nothing is lost.
    pub lost_latencies: Option<LatencyQuantiles>,
    /// Whether duplicates are hidden and ignored, as in Maelstrom.
    pub maelstrom_dup_quirk: bool,
}

impl<'h> SetFullResult<'h> {
    /// How many values are stable.
    pub fn stable_count(&self) -> u64 {
        self.with_outcome(Outcome::Stable).count() as u64
    }

    /// The lost values' records, by value.
    pub fn lost(&self) -> Vec<&ElementResult<'h>> {
        self.with_outcome(Outcome::Lost).collect()
    }

    /// The never-read values' records, by value.
    pub fn never_read(&self) -> Vec<&ElementResult<'h>> {
        self.with_outcome(Outcome::NeverRead).collect()
    }

    /// Stable values with a stable latency above 0, by value.
    pub fn stale(&self) -> Vec<&ElementResult<'h>> {
        self.elements.iter().filter(|e| e.is_stale()).collect()
    }

    /// Up to [`WORST_STALE_LIMIT`] stale records, highest latency first; on a tie the larger
    /// value comes first.
    pub fn worst_stale(&self) -> Vec<&ElementResult<'h>> {
        let mut stale = self.stale();
        // `stale` is sorted by value, so a stable sort on descending latency after reversing
        // puts larger values first among equal latencies.
        stale.reverse();
        stale.sort_by_key(|e| std::cmp::Reverse(e.stable_latency));
        stale.truncate(WORST_STALE_LIMIT);
        stale
    }

    /// The duplicates as reported: all of them, or none under the dup quirk.
    pub fn reported_duplicates(&self) -> &[(Value, u64)] {
        if self.maelstrom_dup_quirk {
            &[]
        } else {
            &self.duplicated
        }
    }

    /// Invalid if a value was lost or (without the quirk) returned twice by one read; else
    /// unknown if nothing is stable; else valid.
    pub fn valid(&self) -> Validity {
        if !self.lost().is_empty() || !self.reported_duplicates().is_empty() {
            Validity::Invalid
        } else if self.stable_count() == 0 {
            Validity::Unknown
        } else {
            Validity::Valid
        }
    }

    /// The `:workload` map, keys in the order Maelstrom prints them.
    pub fn to_edn(&self) -> Edn {
        let values = |records: Vec<&ElementResult<'_>>| {
            Edn::List(records.iter().map(|e| Edn::from(&e.element)).collect())
        };
        let lost = self.lost();
        let stale = self.stale();
        let never_read = self.never_read();
        let duplicated = self.reported_duplicates();
        let mut entries = vec![
            (
                "worst-stale",
                Edn::List(self.worst_stale().iter().map(|e| e.to_edn()).collect()),
            ),
            ("duplicated-count", Edn::from(duplicated.len())),
            ("valid?", self.valid().to_edn()),
            ("lost-count", Edn::from(lost.len())),
            ("lost", values(lost)),
            ("stable-count", Edn::uint(self.stable_count())),
            ("stale-count", Edn::from(stale.len())),
            ("stale", values(stale)),
            ("never-read-count", Edn::from(never_read.len())),
        ];
        if let Some(q) = &self.stable_latencies {
            entries.push(("stable-latencies", q.to_edn()));
        }
        if let Some(q) = &self.lost_latencies {
            entries.push(("lost-latencies", q.to_edn()));
        }
        entries.push(("attempt-count", Edn::uint(self.attempt_count)));
        entries.push(("never-read", values(never_read)));
        entries.push((
            "duplicated",
            Edn::Map(
                duplicated
                    .iter()
                    .map(|(value, count)| (Edn::from(value), Edn::uint(*count)))
                    .collect(),
            ),
        ));
        Edn::kw_map(entries)
    }

    fn with_outcome(&self, outcome: Outcome) -> impl Iterator<Item = &ElementResult<'h>> {
        self.elements.iter().filter(move |e| e.outcome == outcome)
    }
}

/// What the walk keeps per tracked element.
#[derive(Default)]
struct Record<'h> {
    known: Option<&'h Op>,
    last_present: Option<&'h Op>,
    last_absent: Option<&'h Op>,
}

/// Puts `candidate` in `slot` if the slot is empty or holds an op with a smaller index.
fn keep_later<'h>(slot: &mut Option<&'h Op>, candidate: &'h Op) {
    if slot.is_none_or(|current| current.index < candidate.index) {
        *slot = Some(candidate);
    }
}

/// `trunc_ms(max(0, end − start))`.
fn trunc_ms(end: Nanos, start: Nanos) -> u64 {
    end.saturating_sub(start) / 1_000_000
}

/// Runs set-full over the client ops of `history` (docs/harness.md §6.1). With
/// `maelstrom_dup_quirk`, duplicates are still computed (see [`SetFullResult::duplicated`]) but
/// reported as none and never invalidate, as in Maelstrom.
pub fn check(history: &History, maelstrom_dup_quirk: bool) -> SetFullResult<'_> {
    let mut attempt_count = 0;
    let mut open: HashMap<Process, &Op> = HashMap::new();
    let mut elements: BTreeMap<ValueKey, Record<'_>> = BTreeMap::new();
    let mut duplicated: BTreeMap<ValueKey, u64> = BTreeMap::new();

    for op in history.ops().iter().filter(|op| op.is_client()) {
        if op.kind == OpType::Invoke {
            open.insert(op.process, op);
            if op.f == OpFn::Broadcast {
                attempt_count += 1;
                // Only values whose broadcast has been invoked are tracked.
                elements.entry(ValueKey::new(&op.value)).or_default();
            }
            continue;
        }
        let invocation = open.remove(&op.process);
        if op.kind != OpType::Ok {
            // Failed and indeterminate completions tell nothing: ignored.
            continue;
        }
        match op.f {
            OpFn::Broadcast => {
                let value = invocation.map_or(&op.value, |inv| &inv.value);
                if let Some(record) = elements.get_mut(&ValueKey::new(value)) {
                    record.known.get_or_insert(op);
                }
            }
            OpFn::Read => {
                let Some(invocation) = invocation else {
                    continue;
                };
                let mut seen: BTreeMap<ValueKey, u64> = BTreeMap::new();
                for value in op.value.as_array().into_iter().flatten() {
                    *seen.entry(ValueKey::new(value)).or_default() += 1;
                }
                for (value, &count) in &seen {
                    if count > 1 {
                        let max = duplicated.entry(value.clone()).or_default();
                        *max = (*max).max(count);
                    }
                }
                for (value, record) in elements.iter_mut() {
                    if seen.contains_key(value) {
                        record.known.get_or_insert(op);
                        keep_later(&mut record.last_present, invocation);
                    } else {
                        keep_later(&mut record.last_absent, invocation);
                    }
                }
            }
            _ => {}
        }
    }

    let elements: Vec<ElementResult<'_>> = elements
        .into_iter()
        .map(|(value, record)| element_result(value.value().clone(), record))
        .collect();
    let latencies = |pick: fn(&ElementResult<'_>) -> Option<u64>| {
        LatencyQuantiles::from_values(&elements.iter().filter_map(pick).collect::<Vec<_>>())
    };
    let stable_latencies = latencies(|e| e.stable_latency);
    let lost_latencies = latencies(|e| e.lost_latency);
    SetFullResult {
        attempt_count,
        duplicated: duplicated
            .into_iter()
            .map(|(value, count)| (value.value().clone(), count))
            .collect(),
        elements,
        stable_latencies,
        lost_latencies,
        maelstrom_dup_quirk,
    }
}

fn element_result(element: Value, record: Record<'_>) -> ElementResult<'_> {
    let Record {
        known,
        last_present,
        last_absent,
    } = record;
    let index = |op: Option<&Op>| op.map(|op| op.index);
    let stable = match (index(last_present), index(last_absent)) {
        (Some(present), Some(absent)) => absent < present,
        (Some(_), None) => true,
        (None, _) => false,
    };
    let lost = match (index(known), index(last_absent)) {
        (Some(known), Some(absent)) => {
            index(last_present).is_none_or(|present| present < absent) && known < absent
        }
        _ => false,
    };
    let outcome = if stable {
        Outcome::Stable
    } else if lost {
        Outcome::Lost
    } else {
        Outcome::NeverRead
    };
    let known_time = known.map_or(0, |op| op.time);
    // The end is just after the invocation that decided it (`time + 1 ns`), or 0 if there is
    // none, which the `max(0, …)` then turns into a latency of 0.
    let end = |op: Option<&Op>| op.map_or(0, |op| op.time + 1);
    ElementResult {
        element,
        outcome,
        stable_latency: stable.then(|| trunc_ms(end(last_absent), known_time)),
        lost_latency: lost.then(|| trunc_ms(end(last_present), known_time)),
        known,
        last_present,
        last_absent,
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_value_every_later_read_saw_is_stable() {
        use crate::harness::check::set_full::{self, Outcome};
        use crate::harness::history::{History, Op, OpFn, OpType, Process};
        use serde_json::json;

        let op = |time: u64, kind, process, f, value| Op {
            index: 0,
            time,
            kind,
            process: Process::Client(process),
            f,
            value,
            error: None,
            exception: None,
            final_read: false,
        };
        let history = History::from_ops([
            op(0, OpType::Invoke, 0, OpFn::Broadcast, json!(7)),
            op(1_000_000, OpType::Ok, 0, OpFn::Broadcast, json!(7)),
            op(2_000_000, OpType::Invoke, 1, OpFn::Read, json!(null)),
            op(3_000_000, OpType::Ok, 1, OpFn::Read, json!([7])),
        ]);
        let result = set_full::check(&history, false);
        assert_eq!(result.elements[0].outcome, Outcome::Stable);
        assert_eq!(result.elements[0].stable_latency, Some(0)); // no later read missed it
    }
}

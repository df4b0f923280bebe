//! The kafka checker: Jepsen's `tests/kafka.clj` `analysis` and `checker` as Maelstrom's kafka
//! workload runs them (no transactions, assign only). Everything is judged by message value,
//! key by key, over client ops only.
//!
//! The version log of a key maps offsets to the messages seen there, from `:ok` sends and
//! `:ok` polls. The dense index of an offset is its rank among offsets that hold a message.
//! Anomalies: `inconsistent-offsets`, `duplicate`, `lost-write`, `unseen` (invalid too),
//! `int-poll-skip` / `int-nonmonotonic-poll`, `poll-skip` / `nonmonotonic-poll`,
//! `nonmonotonic-send`, `G1a`, and the one cycle a history without transactions can show,
//! `G1c-realtime` (a poll returned a message whose send was invoked after the poll completed;
//! with write-read and real-time edges only, every cycle contains such a pair).
//!
//! Quirks kept on purpose: a poll that answers `"k": []` erases the process's baseline for k;
//! a message with two indices takes the later one; offsets below 0 vanish from the log, as in
//! Maelstrom's vector-based logs (the log here is a sorted map, so huge offsets cost nothing).

use std::collections::{BTreeMap, BTreeSet, HashMap};

use serde_json::Value;

use super::Validity;
use crate::harness::edn::{Edn, error_to_edn, op_to_edn};
use crate::harness::history::{History, Nanos, Op, OpFn, OpType, Process};
use crate::harness::services::canonical;

/// Anomalies that do not make a run invalid (Jepsen's `allowed-error-types` without subscribe
/// and without write-write edges).
const ALLOWED: [&str; 6] = [
    "int-send-skip",
    "G0",
    "G0-process",
    "G0-realtime",
    "PL-1-cycle-exists",
    "strong-PL-1-cycle-exists",
];

/// A message, by value: its canonical JSON text (structural equality).
type Msg = String;

/// One anomaly found.
#[derive(Clone, Debug, PartialEq)]
pub struct Anomaly {
    /// For sorting when trimmed: the delta, the count, or the cycle length.
    pub rank: i64,
    /// The error map.
    pub edn: Edn,
}

/// The kafka checker's result.
#[derive(Clone, Debug, PartialEq)]
pub struct KafkaResult {
    /// Anomaly name -> every case found (names as Jepsen's keywords).
    pub anomalies: BTreeMap<&'static str, Vec<Anomaly>>,
    /// `:unseen` at the end: the time, key -> count, key -> messages.
    pub unseen: Option<(Nanos, BTreeMap<String, Vec<Msg>>)>,
    /// `:worst-realtime-lag`: (poll invocation time, process, key, lag), all ns.
    pub worst_lag: Option<(Nanos, u64, String, Nanos)>,
    /// Distinct `:error`s of `:info` sends and polls.
    pub info_causes: Vec<String>,
    /// Offsets below 0 or above 10^7 seen (warned about).
    pub odd_offsets: u64,
}

impl KafkaResult {
    /// Every anomaly type found, `unseen` included, sorted as Clojure sorts keywords.
    pub fn error_types(&self) -> Vec<&'static str> {
        let mut types: Vec<&'static str> = self.anomalies.keys().copied().collect();
        if self.unseen.is_some() {
            types.push("unseen");
        }
        types.sort_unstable();
        types
    }

    /// The types that make the run invalid.
    pub fn bad_error_types(&self) -> Vec<&'static str> {
        self.error_types()
            .into_iter()
            .filter(|t| !ALLOWED.contains(t))
            .collect()
    }

    /// Valid iff no bad error type.
    pub fn valid(&self) -> Validity {
        Validity::from_bool(self.bad_error_types().is_empty())
    }

    /// How many anomaly cases, over every type (unseen counts its messages).
    pub fn anomaly_count(&self) -> u64 {
        let unseen: usize = self
            .unseen
            .as_ref()
            .map_or(0, |(_, keys)| keys.values().map(Vec::len).sum());
        (self.anomalies.values().map(Vec::len).sum::<usize>() + unseen) as u64
    }

    /// `{:valid? :worst-realtime-lag :bad-error-types :error-types :info-txn-causes}` then one
    /// key per anomaly, alphabetically, each `{:count n, :errs [...]}` trimmed as Jepsen's
    /// `condense-error` does; `:unseen` is `{:time :unseen :messages}`.
    pub fn to_edn(&self) -> Edn {
        let keywords =
            |types: Vec<&'static str>| Edn::List(types.into_iter().map(Edn::keyword).collect());
        let lag = match &self.worst_lag {
            Some((time, process, key, lag)) => Edn::kw_map([
                ("time", seconds(*time)),
                ("process", Edn::uint(*process)),
                ("key", Edn::string(key.as_str())),
                ("lag", seconds(*lag)),
            ]),
            None => Edn::kw_map([("time", Edn::Int(0)), ("lag", Edn::Int(0))]),
        };
        let mut entries = vec![
            ("valid?".to_string(), self.valid().to_edn()),
            ("worst-realtime-lag".to_string(), lag),
            (
                "bad-error-types".to_string(),
                keywords(self.bad_error_types()),
            ),
            ("error-types".to_string(), keywords(self.error_types())),
            (
                "info-txn-causes".to_string(),
                Edn::List(self.info_causes.iter().map(|e| error_to_edn(e)).collect()),
            ),
        ];
        for name in self.error_types() {
            let value = if name == "unseen" {
                let Some((time, keys)) = &self.unseen else {
                    continue;
                };
                Edn::kw_map([
                    ("time", Edn::uint(*time)),
                    (
                        "unseen",
                        Edn::Map(
                            keys.iter()
                                .map(|(k, m)| (Edn::string(k.as_str()), Edn::from(m.len())))
                                .collect(),
                        ),
                    ),
                    (
                        "messages",
                        Edn::Map(
                            keys.iter()
                                .map(|(k, m)| {
                                    let shown = m.iter().take(32).map(|v| msg_edn(v)).collect();
                                    (Edn::string(k.as_str()), Edn::List(shown))
                                })
                                .collect(),
                        ),
                    ),
                ])
            } else {
                let cases = &self.anomalies[name];
                Edn::kw_map([
                    ("count", Edn::from(cases.len())),
                    ("errs", Edn::Vector(condense(name, cases))),
                ])
            };
            entries.push((name.to_string(), value));
        }
        Edn::kw_map(entries)
    }
}

fn seconds(ns: Nanos) -> Edn {
    Edn::Float(ns as f64 / 1e9)
}

fn msg_edn(msg: &str) -> Edn {
    serde_json::from_str::<Value>(msg).map_or_else(|_| Edn::string(msg), |v| Edn::from(&v))
}

/// Jepsen's trimming: duplicates and inconsistent offsets keep 32 (smallest count first),
/// nonmonotonic kinds the 8 smallest deltas, skips the 8 largest, cycles the 8 shortest.
fn condense(name: &str, cases: &[Anomaly]) -> Vec<Edn> {
    let mut sorted: Vec<&Anomaly> = cases.iter().collect();
    sorted.sort_by_key(|a| a.rank);
    let kept: Vec<&Anomaly> = match name {
        "duplicate" | "inconsistent-offsets" => sorted.into_iter().take(32).collect(),
        "nonmonotonic-poll" | "nonmonotonic-send" | "int-nonmonotonic-poll" | "G1c-realtime" => {
            sorted.into_iter().take(8).collect()
        }
        "poll-skip" | "int-poll-skip" => {
            let skip = sorted.len().saturating_sub(8);
            sorted.into_iter().skip(skip).collect()
        }
        _ => cases.iter().collect(),
    };
    kept.into_iter().map(|a| a.edn.clone()).collect()
}

/// What one op polled (ok polls only) and sent.
struct Parsed<'h> {
    op: &'h Op,
    /// key -> [(offset, msg)] in the order returned.
    reads: Vec<(String, Vec<(i64, Msg)>)>,
    /// key, offset if known, msg.
    writes: Vec<(String, Option<i64>, Msg)>,
}

fn parse(op: &Op) -> Parsed<'_> {
    let mut parsed = Parsed {
        op,
        reads: Vec::new(),
        writes: Vec::new(),
    };
    for mop in op.value.as_array().into_iter().flatten() {
        match mop.as_array().map(Vec::as_slice) {
            Some([f, key, sent]) if f == "send" => {
                let key = key.as_str().unwrap_or_default().to_string();
                match sent.as_array().map(Vec::as_slice) {
                    Some([offset, msg]) if op.kind == OpType::Ok => {
                        parsed.writes.push((key, offset.as_i64(), canonical(msg)));
                    }
                    _ => parsed.writes.push((key, None, canonical(sent))),
                }
            }
            Some([f, Value::Object(msgs)]) if f == "poll" && op.kind == OpType::Ok => {
                for (key, pairs) in msgs {
                    let pairs = pairs
                        .as_array()
                        .into_iter()
                        .flatten()
                        .filter_map(|pair| {
                            let offset = pair.get(0)?.as_i64()?;
                            Some((offset, canonical(pair.get(1)?)))
                        })
                        .collect();
                    parsed.reads.push((key.clone(), pairs));
                }
            }
            _ => {}
        }
    }
    parsed
}

/// One key's version order.
#[derive(Default)]
struct Order {
    /// offset -> messages seen there.
    log: BTreeMap<i64, BTreeSet<Msg>>,
    /// dense index -> one message (the first of its offset's set).
    by_index: Vec<Msg>,
    /// message -> dense index, for the messages in `by_index` (the later index wins).
    by_value: HashMap<Msg, i64>,
}

impl Order {
    fn index(&self, msg: Option<&Msg>) -> Option<i64> {
        msg.and_then(|m| self.by_value.get(m).copied())
    }
}

fn delta(i: Option<i64>, j: Option<i64>) -> i64 {
    match (i, j) {
        (Some(i), Some(j)) => j - i,
        _ => 1,
    }
}

fn strs(values: &[Option<&Msg>]) -> Edn {
    Edn::Vector(
        values
            .iter()
            .map(|v| v.map_or(Edn::Nil, |m| msg_edn(m)))
            .collect(),
    )
}

/// Checks a kafka history.
pub fn check(history: &History) -> KafkaResult {
    let ops: Vec<&Op> = history.ops().iter().filter(|op| op.is_client()).collect();
    let invocation_time: HashMap<usize, Nanos> = history
        .pairs()
        .into_iter()
        .filter_map(|(invoke, done)| done.map(|done| (done.index, invoke.time)))
        .collect();
    let parsed: Vec<Parsed> = ops
        .iter()
        .filter(|op| op.kind != OpType::Invoke && matches!(op.f, OpFn::Send | OpFn::Poll))
        .map(|op| parse(op))
        .collect();

    // Writers, ok reads, failed writes.
    let mut writer_of: HashMap<(String, Msg), &Op> = HashMap::new();
    let mut ok_reads: HashMap<String, BTreeSet<Msg>> = HashMap::new();
    let mut failed: HashMap<String, BTreeSet<Msg>> = HashMap::new();
    for p in &parsed {
        for (key, _, msg) in &p.writes {
            writer_of.insert((key.clone(), msg.clone()), p.op);
            if p.op.kind == OpType::Fail {
                failed.entry(key.clone()).or_default().insert(msg.clone());
            }
        }
        for (key, pairs) in &p.reads {
            let read = ok_reads.entry(key.clone()).or_default();
            read.extend(pairs.iter().map(|(_, m)| m.clone()));
        }
    }
    let committed = |key: &str, msg: &Msg| {
        writer_of
            .get(&(key.to_string(), msg.clone()))
            .is_some_and(|w| match w.kind {
                OpType::Ok => true,
                OpType::Info => ok_reads.get(key).is_some_and(|r| r.contains(msg)),
                _ => false,
            })
    };

    // Version orders.
    let mut odd_offsets = 0;
    let mut orders: BTreeMap<String, Order> = BTreeMap::new();
    for p in &parsed {
        let known = p
            .writes
            .iter()
            .filter(|_| p.op.kind == OpType::Ok)
            .filter_map(|(k, o, m)| o.map(|o| (k, o, m)));
        let polled = p
            .reads
            .iter()
            .flat_map(|(k, pairs)| pairs.iter().map(move |(o, m)| (k, *o, m)));
        for (key, offset, msg) in known.chain(polled) {
            if !(0..=10_000_000).contains(&offset) {
                odd_offsets += 1;
            }
            if offset < 0 {
                continue;
            }
            let order = orders.entry(key.clone()).or_default();
            order.log.entry(offset).or_default().insert(msg.clone());
        }
    }
    let mut anomalies: BTreeMap<&'static str, Vec<Anomaly>> = BTreeMap::new();
    let mut add = |name: &'static str, rank: i64, edn: Edn| {
        anomalies
            .entry(name)
            .or_default()
            .push(Anomaly { rank, edn });
    };
    for (key, order) in orders.iter_mut() {
        let mut counts: BTreeMap<&Msg, Vec<i64>> = BTreeMap::new();
        for (index, (offset, msgs)) in order.log.iter().enumerate() {
            if msgs.len() >= 2 {
                add(
                    "inconsistent-offsets",
                    msgs.len() as i64,
                    Edn::kw_map([
                        ("key", Edn::string(key.as_str())),
                        ("offset", Edn::Int(*offset)),
                        ("index", Edn::from(index)),
                        (
                            "values",
                            Edn::Set(msgs.iter().map(|m| msg_edn(m)).collect()),
                        ),
                    ]),
                );
            }
            for msg in msgs {
                counts.entry(msg).or_default().push(*offset);
            }
            if let Some(first) = msgs.iter().next() {
                order.by_value.insert(first.clone(), index as i64);
                order.by_index.push(first.clone());
            }
        }
        for (msg, offsets) in counts.into_iter().filter(|(_, o)| o.len() > 1) {
            add(
                "duplicate",
                offsets.len() as i64,
                Edn::kw_map([
                    ("key", Edn::string(key.as_str())),
                    ("value", msg_edn(msg)),
                    ("count", Edn::from(offsets.len())),
                    (
                        "offsets",
                        Edn::Vector(offsets.into_iter().map(Edn::Int).collect()),
                    ),
                ]),
            );
        }
    }

    // Lost writes.
    for (key, read) in &ok_reads {
        let Some(order) = orders.get(key) else {
            continue;
        };
        let mut first_index: HashMap<&Msg, i64> = HashMap::new();
        let mut last_index: HashMap<&Msg, i64> = HashMap::new();
        for (index, msgs) in order.log.values().enumerate() {
            for msg in msgs {
                first_index.entry(msg).or_insert(index as i64);
                last_index.insert(msg, index as i64);
            }
        }
        let bound = read
            .iter()
            .filter_map(|m| first_index.get(m).copied())
            .max()
            .unwrap_or(-1);
        let mut must: Vec<(&Msg, i64)> = last_index
            .iter()
            .filter(|(_, i)| **i <= bound)
            .map(|(m, i)| (*m, *i))
            .collect();
        must.sort_by_key(|(m, i)| (*i, (*m).clone()));
        for (msg, _) in must {
            if read.contains(msg) || !committed(key, msg) {
                continue;
            }
            let writer = writer_of.get(&(key.clone(), msg.clone()));
            add(
                "lost-write",
                0,
                Edn::kw_map([
                    ("key", Edn::string(key.as_str())),
                    ("value", msg_edn(msg)),
                    ("index", Edn::from(first_index.get(msg).copied())),
                    ("max-read-index", Edn::Int(bound)),
                    ("writer", writer.map_or(Edn::Nil, |w| op_to_edn(w))),
                ]),
            );
        }
    }

    // Unseen: messages of ok sends no ok poll returned, tracked in history order.
    let mut unseen: BTreeMap<String, BTreeSet<Msg>> = BTreeMap::new();
    let mut polled: HashMap<String, BTreeSet<Msg>> = HashMap::new();
    let mut last_time = 0;
    for p in parsed.iter().filter(|p| p.op.kind == OpType::Ok) {
        last_time = p.op.time;
        for (key, _, msg) in &p.writes {
            unseen.entry(key.clone()).or_default().insert(msg.clone());
        }
        for (key, pairs) in &p.reads {
            let seen = polled.entry(key.clone()).or_default();
            seen.extend(pairs.iter().map(|(_, m)| m.clone()));
        }
        for (key, msgs) in unseen.iter_mut() {
            if let Some(seen) = polled.get(key) {
                msgs.retain(|m| !seen.contains(m));
            }
        }
    }
    let unseen_keys: BTreeMap<String, Vec<Msg>> = unseen
        .into_iter()
        .filter(|(_, msgs)| !msgs.is_empty())
        .map(|(k, msgs)| {
            let mut msgs: Vec<Msg> = msgs.into_iter().collect();
            msgs.sort_by_key(|m| (m.parse::<i64>().ok(), m.clone()));
            (k, msgs)
        })
        .collect();

    // Per ok poll: internal skips and non-monotonic pairs; G1a; G1c-realtime.
    for p in parsed.iter().filter(|p| p.op.kind == OpType::Ok) {
        for (key, pairs) in &p.reads {
            let order = orders.get(key);
            let index = |m: &Msg| order.and_then(|o| o.index(Some(m)));
            let mut previous: Option<(&Msg, Option<i64>)> = None;
            for (_, msg) in pairs {
                let i2 = index(msg);
                if let Some((v1, i1)) = previous {
                    let d = delta(i1, i2);
                    if d > 1 {
                        let skipped = match (order, i1, i2) {
                            (Some(o), Some(a), Some(b)) => ((a + 1)..b)
                                .filter_map(|i| o.by_index.get(i as usize))
                                .map(|m| msg_edn(m))
                                .collect(),
                            _ => Vec::new(),
                        };
                        add(
                            "int-poll-skip",
                            d,
                            Edn::kw_map([
                                ("key", Edn::string(key.as_str())),
                                ("values", strs(&[Some(v1), Some(msg)])),
                                ("delta", Edn::Int(d)),
                                ("skipped", Edn::List(skipped)),
                                ("op", op_to_edn(p.op)),
                            ]),
                        );
                    } else if d < 1 {
                        add(
                            "int-nonmonotonic-poll",
                            d,
                            Edn::kw_map([
                                ("key", Edn::string(key.as_str())),
                                ("values", strs(&[Some(v1), Some(msg)])),
                                ("delta", Edn::Int(d)),
                                ("op", op_to_edn(p.op)),
                            ]),
                        );
                    }
                }
                previous = Some((msg, i2));
                if failed.get(key).is_some_and(|f| f.contains(msg)) {
                    let writer = writer_of.get(&(key.clone(), msg.clone()));
                    add(
                        "G1a",
                        0,
                        Edn::kw_map([
                            ("key", Edn::string(key.as_str())),
                            ("value", msg_edn(msg)),
                            ("writer", writer.map_or(Edn::Nil, |w| op_to_edn(w))),
                            ("reader", op_to_edn(p.op)),
                        ]),
                    );
                }
                if let Some(writer) = writer_of.get(&(key.clone(), msg.clone()))
                    && invocation_time
                        .get(&writer.index)
                        .is_some_and(|&invoked| invoked > p.op.time)
                {
                    add(
                        "G1c-realtime",
                        2,
                        Edn::kw_map([
                            (
                                "cycle",
                                Edn::Vector(vec![
                                    op_to_edn(writer),
                                    op_to_edn(p.op),
                                    op_to_edn(writer),
                                ]),
                            ),
                            (
                                "steps",
                                Edn::List(vec![
                                    Edn::kw_map([
                                        ("type", Edn::keyword("wr")),
                                        ("key", Edn::string(key.as_str())),
                                        ("value", msg_edn(msg)),
                                    ]),
                                    Edn::kw_map([("type", Edn::keyword("realtime"))]),
                                ]),
                            ),
                            ("type", Edn::keyword("G1c-realtime")),
                        ]),
                    );
                }
            }
        }
    }

    // Per process: external poll skips and non-monotonic polls and sends.
    let mut by_process: BTreeMap<u64, Vec<&Op>> = BTreeMap::new();
    for op in &ops {
        if let Process::Client(p) = op.process {
            by_process.entry(p).or_default().push(op);
        }
    }
    for process_ops in by_process.values() {
        let mut last_reads: BTreeMap<String, (&Op, Option<Msg>)> = BTreeMap::new();
        let mut last_sends: BTreeMap<String, (&Op, Msg)> = BTreeMap::new();
        for op in process_ops {
            match (op.f, op.kind) {
                (OpFn::Assign, OpType::Ok | OpType::Info) => {
                    let keep: BTreeSet<&str> = op
                        .value
                        .as_array()
                        .into_iter()
                        .flatten()
                        .filter_map(Value::as_str)
                        .collect();
                    last_reads.retain(|k, _| keep.contains(k.as_str()));
                    last_sends.retain(|k, _| keep.contains(k.as_str()));
                }
                (OpFn::Poll, OpType::Ok) => {
                    let parsed = parse(op);
                    for (key, pairs) in &parsed.reads {
                        let first = pairs.first().map(|(_, m)| m.clone());
                        if let Some((last_op, last)) = last_reads.get(key) {
                            let order = orders.get(key);
                            let i = order.and_then(|o| o.index(last.as_ref()));
                            let j = order.and_then(|o| o.index(first.as_ref()));
                            let d = delta(i, j);
                            let ops = Edn::Vector(vec![op_to_edn(last_op), op_to_edn(op)]);
                            if d > 1 {
                                let skipped = match (order, i, j) {
                                    (Some(o), Some(a), Some(b)) => ((a + 1)..b)
                                        .filter_map(|x| o.by_index.get(x as usize))
                                        .map(|m| msg_edn(m))
                                        .collect(),
                                    _ => Vec::new(),
                                };
                                add(
                                    "poll-skip",
                                    d,
                                    Edn::kw_map([
                                        ("key", Edn::string(key.as_str())),
                                        ("delta", Edn::Int(d)),
                                        ("skipped", Edn::List(skipped)),
                                        ("ops", ops),
                                    ]),
                                );
                            } else if d < 1 {
                                add(
                                    "nonmonotonic-poll",
                                    d,
                                    Edn::kw_map([
                                        ("key", Edn::string(key.as_str())),
                                        ("values", strs(&[last.as_ref(), first.as_ref()])),
                                        ("delta", Edn::Int(d)),
                                        ("ops", ops),
                                    ]),
                                );
                            }
                        }
                        let last = pairs.last().map(|(_, m)| m.clone());
                        last_reads.insert(key.clone(), (op, last));
                    }
                }
                (OpFn::Send, OpType::Ok | OpType::Info) => {
                    for (key, _, msg) in parse(op).writes {
                        if let Some((last_op, last)) = last_sends.get(&key) {
                            let order = orders.get(&key);
                            let i = order.and_then(|o| o.index(Some(last)));
                            let j = order.and_then(|o| o.index(Some(&msg)));
                            let d = delta(i, j);
                            if d < 1 {
                                add(
                                    "nonmonotonic-send",
                                    d,
                                    Edn::kw_map([
                                        ("key", Edn::string(key.as_str())),
                                        ("values", strs(&[Some(last), Some(&msg)])),
                                        ("delta", Edn::Int(d)),
                                        (
                                            "ops",
                                            Edn::Vector(vec![op_to_edn(last_op), op_to_edn(op)]),
                                        ),
                                    ]),
                                );
                            }
                        }
                        last_sends.insert(key, (op, msg));
                    }
                }
                _ => {}
            }
        }
    }

    let mut info_causes: Vec<String> = Vec::new();
    for op in &ops {
        if op.kind == OpType::Info
            && matches!(op.f, OpFn::Send | OpFn::Poll)
            && let Some(error) = &op.error
            && !info_causes.contains(error)
        {
            info_causes.push(error.clone());
        }
    }
    if odd_offsets > 0 {
        tracing::warn!(
            odd_offsets,
            "offsets below 0 or above 10^7: Maelstrom drops negative ones and may run out of memory on huge ones"
        );
    }
    KafkaResult {
        anomalies,
        unseen: (!unseen_keys.is_empty()).then_some((last_time, unseen_keys)),
        worst_lag: worst_lag(&ops, &invocation_time),
        info_causes,
        odd_offsets,
    }
}

/// Jepsen's realtime lag, shown and never judged: for each `:ok` poll and each key its
/// process tracks, how long before the poll's invocation an offset beyond the tracked one was
/// first known (from the completion of an `:ok`/`:info` op that sent or polled it).
fn worst_lag(
    ops: &[&Op],
    invocation_time: &HashMap<usize, Nanos>,
) -> Option<(Nanos, u64, String, Nanos)> {
    let mut known: HashMap<String, BTreeMap<i64, Nanos>> = HashMap::new();
    for op in ops
        .iter()
        .filter(|op| matches!(op.kind, OpType::Ok | OpType::Info))
    {
        let p = parse(op);
        let sent = p.writes.iter().filter_map(|(k, o, _)| o.map(|o| (k, o)));
        let read = p
            .reads
            .iter()
            .flat_map(|(k, pairs)| pairs.iter().map(move |(o, _)| (k, *o)));
        for (key, offset) in sent.chain(read) {
            let at = known
                .entry(key.clone())
                .or_default()
                .entry(offset)
                .or_insert(op.time);
            *at = (*at).min(op.time);
        }
    }
    let mut tracked: HashMap<u64, BTreeMap<String, i64>> = HashMap::new();
    let mut worst: Option<(Nanos, u64, String, Nanos)> = None;
    for op in ops {
        let Process::Client(process) = op.process else {
            continue;
        };
        let mine = tracked.entry(process).or_default();
        match (op.f, op.kind) {
            (OpFn::Assign, OpType::Ok | OpType::Info) => {
                let keys: Vec<String> = op
                    .value
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter_map(|k| k.as_str().map(str::to_string))
                    .collect();
                mine.retain(|k, _| keys.contains(k));
                for key in keys {
                    mine.entry(key).or_insert(-1);
                }
            }
            (OpFn::Poll, OpType::Ok) => {
                for (key, pairs) in parse(op).reads {
                    let highest = pairs.iter().map(|(o, _)| *o).max().unwrap_or(-1);
                    let at = mine.entry(key).or_insert(-1);
                    *at = (*at).max(highest);
                }
                let invoked = invocation_time.get(&op.index).copied().unwrap_or(op.time);
                for (key, &at) in mine.iter() {
                    let first_known = known
                        .get(key)
                        .and_then(|offsets| offsets.range(at + 1..).map(|(_, t)| *t).min());
                    let lag = first_known.map_or(0, |t| invoked.saturating_sub(t));
                    if worst.as_ref().is_none_or(|w| lag > w.3) {
                        worst = Some((invoked, process, key.clone(), lag));
                    }
                }
            }
            _ => {}
        }
    }
    worst
}

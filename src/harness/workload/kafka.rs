//! The kafka workload's client and generator, as Maelstrom's `workload/kafka.clj` and Jepsen's
//! `tests/kafka.clj` run them (Maelstrom v0.2.3 / Jepsen 0.3.1 by default).
//!
//! The client keeps, per process, the next offset to poll for each assigned key. A poll sends
//! those positions, advances them as soon as the reply is in, and then commits the highest
//! offsets it got; the op is `:ok` only if both RPCs succeed. Quirks kept on purpose: positions
//! are advanced before the commit (a commit that fails definitely leaves the process ahead of
//! its history, and the next poll shows as a skip), and an assign never uses the committed
//! offsets the node returns (Maelstrom looks them up in the whole reply body), so new keys
//! always start at 0.

use std::collections::BTreeMap;

use rand::Rng;
use serde_json::{Map, Value, json};

use super::{Completion, Field, Reply, Session, judge};
use crate::harness::history::{Nanos, Op, OpFn, OpType};
use crate::harness::interpreter::RPC_TIMEOUT;

/// Keys active at once (Elle's `wr-txns` `:key-count` under Maelstrom).
const KEY_COUNT: usize = 10;
/// Messages per key before the key is retired for a fresh one (`--max-writes-per-key`).
const MAX_WRITES_PER_KEY: u64 = 16;

/// Runs one kafka operation through the session.
pub async fn execute(
    f: OpFn,
    value: &Value,
    session: &mut Session,
    node: &str,
    final_op: bool,
) -> Completion {
    match f {
        OpFn::Crash => Completion::new(OpType::Info, Value::Null),
        OpFn::Assign => assign(value, session, node, final_op).await,
        OpFn::Send => send(value, session, node).await,
        _ => poll(value, session, node).await,
    }
}

fn keys_of(value: &Value) -> Vec<String> {
    value
        .as_array()
        .map(|keys| {
            keys.iter()
                .filter_map(|k| k.as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}

async fn assign(value: &Value, session: &mut Session, node: &str, seek: bool) -> Completion {
    let keys = keys_of(value);
    if !seek {
        let request = object(json!({"type": "list_committed_offsets", "keys": keys}));
        let reply = session.client.rpc(node, request, RPC_TIMEOUT).await;
        // Assign is idempotent: every failure is a `:fail`, except a malformed reply.
        match judge(
            reply,
            "list_committed_offsets_ok",
            &[("offsets", Field::Object)],
        ) {
            Reply::Valid(_) => {}
            Reply::Timeout => return failed(OpType::Fail, value, "net-timeout".into()),
            Reply::Error { name, text, .. } => {
                return failed(OpType::Fail, value, error_text(name, text));
            }
            Reply::Malformed(reason) => return malformed(value, reason),
        }
    }
    session.positions = keys
        .into_iter()
        .map(|key| {
            let at = if seek {
                0
            } else {
                session.positions.get(&key).copied().unwrap_or(0)
            };
            (key, at)
        })
        .collect();
    Completion::new(OpType::Ok, value.clone())
}

async fn send(value: &Value, session: &mut Session, node: &str) -> Completion {
    let (key, msg) = match value.get(0).and_then(Value::as_array).map(Vec::as_slice) {
        Some([_, key, msg]) => (key.clone(), msg.clone()),
        _ => (Value::Null, Value::Null),
    };
    let request = object(json!({"type": "send", "key": key, "msg": msg}));
    let reply = session.client.rpc(node, request, RPC_TIMEOUT).await;
    match judge(reply, "send_ok", &[("offset", Field::Integer)]) {
        Reply::Valid(body) => Completion::new(
            OpType::Ok,
            json!([["send", key, [body["offset"].clone(), msg]]]),
        ),
        other => unsuccessful(other, value),
    }
}

async fn poll(value: &Value, session: &mut Session, node: &str) -> Completion {
    let offsets: Map<String, Value> = session
        .positions
        .iter()
        .map(|(k, at)| (k.clone(), json!(at)))
        .collect();
    let request = object(json!({"type": "poll", "offsets": offsets}));
    let reply = session.client.rpc(node, request, RPC_TIMEOUT).await;
    let msgs = match judge(reply, "poll_ok", &[("msgs", Field::Object)]) {
        Reply::Valid(body) => match body.get("msgs").map(poll_msgs) {
            Some(Ok(msgs)) => msgs,
            Some(Err(reason)) => return malformed(value, reason),
            None => return malformed(value, "missing msgs".into()),
        },
        other => return unsuccessful(other, value),
    };
    // Positions advance now, before the commit (the quirk in the module docs).
    let mut commit = Map::new();
    for (key, pairs) in &msgs {
        let highest = pairs.iter().map(|(offset, _)| *offset).max();
        let next = highest.map_or(0, |h| h + 1);
        let at = session.positions.entry(key.clone()).or_insert(next);
        *at = (*at).max(next);
        if let Some(highest) = highest {
            commit.insert(key.clone(), json!(highest));
        }
    }
    let polled = Value::Object(
        msgs.iter()
            .map(|(k, pairs)| {
                let pairs: Vec<Value> = pairs.iter().map(|(o, m)| json!([o, m])).collect();
                (k.clone(), Value::Array(pairs))
            })
            .collect(),
    );
    if !commit.is_empty() {
        let request = object(json!({"type": "commit_offsets", "offsets": commit}));
        let reply = session.client.rpc(node, request, RPC_TIMEOUT).await;
        match judge(reply, "commit_offsets_ok", &[]) {
            Reply::Valid(_) => {}
            other => return unsuccessful(other, value),
        }
    }
    Completion::new(OpType::Ok, json!([["poll", polled]]))
}

/// A poll reply's `msgs`: key -> `[offset, msg]` pairs, offsets integers, exactly two elements.
type Polled = Vec<(String, Vec<(i64, Value)>)>;

fn poll_msgs(msgs: &Value) -> Result<Polled, String> {
    let Value::Object(map) = msgs else {
        return Err("msgs is not an object".into());
    };
    map.iter()
        .map(|(key, pairs)| {
            let pairs = pairs
                .as_array()
                .ok_or_else(|| format!("msgs[{key}] is not an array"))?;
            let pairs = pairs
                .iter()
                .map(|pair| match pair.as_array().map(Vec::as_slice) {
                    Some([offset, msg]) => offset
                        .as_i64()
                        .map(|o| (o, msg.clone()))
                        .ok_or_else(|| format!("offset {offset} in msgs[{key}] is not an integer")),
                    _ => Err(format!(
                        "{pair} in msgs[{key}] is not an [offset, msg] pair"
                    )),
                })
                .collect::<Result<Vec<_>, String>>()?;
            Ok((key.clone(), pairs))
        })
        .collect()
}

/// Send and poll outcomes other than success: a timeout or an indefinite code is `:info`, a
/// definite code `:fail`, a malformed reply `:info` with an exception.
fn unsuccessful(reply: Reply, value: &Value) -> Completion {
    match reply {
        Reply::Timeout => failed(OpType::Info, value, "net-timeout".into()),
        Reply::Error {
            name,
            definite,
            text,
        } => {
            let kind = if definite { OpType::Fail } else { OpType::Info };
            failed(kind, value, error_text(name, text))
        }
        Reply::Malformed(reason) => malformed(value, reason),
        Reply::Valid(_) => Completion::new(OpType::Ok, value.clone()),
    }
}

fn error_text(name: &str, text: Option<String>) -> String {
    match text {
        Some(text) => format!("{name}: {text}"),
        None => name.to_string(),
    }
}

fn failed(kind: OpType, value: &Value, error: String) -> Completion {
    Completion {
        kind,
        value: value.clone(),
        error: Some(error),
        exception: None,
    }
}

fn malformed(value: &Value, reason: String) -> Completion {
    Completion {
        kind: OpType::Info,
        value: value.clone(),
        error: Some("malformed-reply".into()),
        exception: Some(reason),
    }
}

fn object(value: Value) -> Map<String, Value> {
    match value {
        Value::Object(map) => map,
        _ => Map::new(),
    }
}

/// The main phase's op stream, inner to outer: Elle's `wr-txns` keys (10 active, slot j drawn
/// with weight 2^(j+1), messages 1..=16 per key, then a fresh key), poll or send with ½ each;
/// assign interleaving with probability `assign_p` (the op is offered again next time);
/// poll-unseen (an assign also takes, with probability 1/3, every key with sends not yet
/// polled); and the crash stream (mean 30/C s between crashes).
#[derive(Debug)]
pub struct KafkaGen {
    assign_p: f64,
    active: [u64; KEY_COUNT],
    writes: BTreeMap<u64, u64>,
    pending: Option<(OpFn, Value, String)>,
    /// Highest offset sent (`:ok`) per key, only for keys with sends not yet polled.
    sent: BTreeMap<String, i64>,
    polled: BTreeMap<String, i64>,
    /// Highest offset per key from `:ok` sends and polls: the final phase's target.
    max_offsets: BTreeMap<String, i64>,
    crash_span: Nanos,
    next_crash: Option<Nanos>,
}

impl KafkaGen {
    /// A generator for `concurrency` client threads and the given assign probability.
    pub fn new(assign_p: f64, concurrency: usize) -> Self {
        let mut active = [0; KEY_COUNT];
        for (slot, key) in active.iter_mut().enumerate() {
            *key = slot as u64;
        }
        KafkaGen {
            assign_p,
            active,
            writes: BTreeMap::new(),
            pending: None,
            sent: BTreeMap::new(),
            polled: BTreeMap::new(),
            max_offsets: BTreeMap::new(),
            crash_span: (60e9 / concurrency.max(1) as f64) as Nanos,
            next_crash: None,
        }
    }

    /// The next op at `stamp`.
    pub fn next(&mut self, rng: &mut impl Rng, stamp: Nanos) -> (OpFn, Value) {
        let crash_due = match self.next_crash {
            None => rng.random_bool(0.5),
            Some(at) if at < stamp => true,
            Some(at) => at == stamp && rng.random_bool(0.5),
        };
        if crash_due || self.next_crash.is_none() {
            // The crash stream's first op is due at once; ties with the main stream are broken
            // at random, so the first crash may wait for the next op.
            if crash_due {
                let gap = rng.random_range(0..self.crash_span.max(1));
                self.next_crash = Some(stamp + gap);
                return (OpFn::Crash, Value::Null);
            }
            self.next_crash = Some(stamp);
        }
        let (f, value, key) = match self.pending.take() {
            Some(op) => op,
            None => self.draw(rng),
        };
        if rng.random_bool(self.assign_p.clamp(0.0, 1.0)) {
            let mut keys = vec![key.clone()];
            if !self.sent.is_empty() && rng.random_bool(1.0 / 3.0) {
                for unseen in self.sent.keys() {
                    if !keys.contains(unseen) {
                        keys.push(unseen.clone());
                    }
                }
            }
            self.pending = Some((f, value, key));
            return (OpFn::Assign, json!(keys));
        }
        (f, value)
    }

    fn draw(&mut self, rng: &mut impl Rng) -> (OpFn, Value, String) {
        loop {
            let total: u64 = (0..KEY_COUNT).map(|j| 2u64 << j).sum();
            let mut pick = rng.random_range(0..total);
            let slot = (0..KEY_COUNT)
                .find(|&j| {
                    let weight = 2u64 << j;
                    if pick < weight {
                        true
                    } else {
                        pick -= weight;
                        false
                    }
                })
                .unwrap_or(KEY_COUNT - 1);
            let key = self.active[slot];
            if rng.random_bool(0.5) {
                return (OpFn::Poll, json!([["poll"]]), key.to_string());
            }
            let count = self.writes.entry(key).or_insert(0);
            if *count >= MAX_WRITES_PER_KEY {
                let fresh = self.active.iter().max().copied().unwrap_or(0) + 1;
                self.active[slot] = fresh;
                continue;
            }
            *count += 1;
            let message = *count;
            return (
                OpFn::Send,
                json!([["send", key.to_string(), message]]),
                key.to_string(),
            );
        }
    }

    /// Learns from a completion: offsets of `:ok` sends and polls.
    pub fn observe(&mut self, op: &Op) {
        if op.kind != OpType::Ok {
            return;
        }
        let (sends, polls) = max_offsets(op);
        for (key, offset) in &sends {
            raise(&mut self.sent, key, *offset);
            raise(&mut self.max_offsets, key, *offset);
        }
        for (key, offset) in &polls {
            raise(&mut self.polled, key, *offset);
            raise(&mut self.max_offsets, key, *offset);
        }
        let polled = &self.polled;
        let caught_up: Vec<String> = self
            .sent
            .iter()
            .filter(|(k, sent)| polled.get(*k).copied().unwrap_or(-1) >= **sent)
            .map(|(k, _)| k.clone())
            .collect();
        for key in caught_up {
            self.sent.remove(&key);
            self.polled.remove(&key);
        }
    }

    /// The final phase's target: the highest offset per key seen in `:ok` sends and polls.
    pub fn max_offsets(&self) -> BTreeMap<String, i64> {
        self.max_offsets.clone()
    }
}

fn raise(map: &mut BTreeMap<String, i64>, key: &str, offset: i64) {
    let at = map.entry(key.to_string()).or_insert(offset);
    *at = (*at).max(offset);
}

/// The highest offsets an `:ok` op sent and polled, per key (an empty poll list gives -1).
pub fn max_offsets(op: &Op) -> (BTreeMap<String, i64>, BTreeMap<String, i64>) {
    let mut sends = BTreeMap::new();
    let mut polls = BTreeMap::new();
    for mop in op.value.as_array().into_iter().flatten() {
        match mop.as_array().map(Vec::as_slice) {
            Some([f, key, pair]) if f == "send" => {
                if let (Some(key), Some(offset)) =
                    (key.as_str(), pair.get(0).and_then(Value::as_i64))
                {
                    raise(&mut sends, key, offset);
                }
            }
            Some([f, Value::Object(msgs)]) if f == "poll" => {
                for (key, pairs) in msgs {
                    let highest = pairs
                        .as_array()
                        .into_iter()
                        .flatten()
                        .filter_map(|pair| pair.get(0).and_then(Value::as_i64))
                        .max()
                        .unwrap_or(-1);
                    raise(&mut polls, key, highest);
                }
            }
            _ => {}
        }
    }
    (sends, polls)
}

//! The workloads: which operations a client issues, the request each becomes, and how each reply
//! maps to an outcome (docs/harness.md §2.4, §3, §8).

pub mod kafka;
mod reply;

pub use reply::{Field, Reply, judge};

use std::collections::BTreeMap;
use std::sync::Arc;

use rand::Rng;
use serde_json::{Map, Value, json};

use crate::harness::check::WorkloadKind;
use crate::harness::client::{Client, RpcError};
use crate::harness::history::{OpFn, OpType};
use crate::harness::interpreter::RPC_TIMEOUT;
use crate::harness::net::Network;
use crate::harness::topology::{self, Topology};

/// How one client operation completed.
#[derive(Clone, Debug, PartialEq)]
pub struct Completion {
    /// `Ok`, `Fail` or `Info`.
    pub kind: OpType,
    /// What the reply carried (a read's messages, an echo, a generated id), else `Null`.
    pub value: Value,
    /// Why it did not succeed.
    pub error: Option<String>,
    /// A malformed reply's description, for the `:exceptions` checker.
    pub exception: Option<String>,
}

impl Completion {
    fn new(kind: OpType, value: Value) -> Self {
        Completion {
            kind,
            value,
            error: None,
            exception: None,
        }
    }

    fn failed(kind: OpType, error: String) -> Self {
        Completion {
            kind,
            value: Value::Null,
            error: Some(error),
            exception: None,
        }
    }
}

/// A workload's protocol: requests and replies. Shared by every client thread.
#[derive(Clone, Debug)]
pub struct Workload {
    kind: WorkloadKind,
    topology: Topology,
}

impl Workload {
    /// The protocol of `kind`; `topology` is what broadcast's setup sends every node.
    pub fn new(kind: WorkloadKind, topology: Topology) -> Self {
        Workload { kind, topology }
    }

    /// Which workload this is.
    pub fn kind(&self) -> WorkloadKind {
        self.kind
    }

    /// Whether the workload has a final phase of one read per thread (recovery wait and final
    /// reads, docs/harness.md §2.6).
    pub fn has_final_phase(&self) -> bool {
        matches!(self.kind, WorkloadKind::Broadcast | WorkloadKind::GCounter)
    }

    /// Whether a thread keeps its client after an indeterminate op (unique-ids clients do).
    pub fn reusable_clients(&self) -> bool {
        self.kind == WorkloadKind::UniqueIds
    }

    /// The setup request each node gets from its own setup client, and the reply type expected.
    pub fn setup_request(&self) -> Option<(Map<String, Value>, &'static str)> {
        (self.kind == WorkloadKind::Broadcast).then(|| {
            let body = json!({"type": "topology", "topology": topology::to_json(&self.topology)});
            (object(body), "topology_ok")
        })
    }

    /// The request body (without `msg_id`) for operation `f` with `value`.
    pub fn request(&self, f: OpFn, value: &Value) -> Map<String, Value> {
        object(match f {
            OpFn::Broadcast => json!({"type": "broadcast", "message": value}),
            OpFn::Read => json!({"type": "read"}),
            OpFn::Echo => json!({"type": "echo", "echo": value}),
            OpFn::Add => json!({"type": "add", "delta": value}),
            _ => json!({"type": "generate"}),
        })
    }

    /// Runs operation `f` with `value` against `node` through the thread's session: one RPC
    /// for most workloads, the kafka client's RPCs (or none) for kafka.
    pub async fn execute(
        &self,
        f: OpFn,
        value: &Value,
        session: &mut Session,
        node: &str,
        final_op: bool,
    ) -> Completion {
        if self.kind == WorkloadKind::Kafka {
            return kafka::execute(f, value, session, node, final_op).await;
        }
        let reply = session
            .client
            .rpc(node, self.request(f, value), RPC_TIMEOUT)
            .await;
        let mut completion = self.complete(f, reply);
        if f == OpFn::Add {
            // An add's completion carries its delta, for the counter checker.
            completion.value = value.clone();
        }
        completion
    }

    /// Maps the reply to operation `f` to its outcome, by the table of docs/harness.md §2.4.
    pub fn complete(&self, f: OpFn, reply: Result<Map<String, Value>, RpcError>) -> Completion {
        if self.kind == WorkloadKind::GCounter {
            return complete_counter(f, reply);
        }
        let (expected, fields, read_like): (&str, &[(&str, Field)], bool) = match f {
            OpFn::Broadcast => ("broadcast_ok", &[], false),
            OpFn::Read => ("read_ok", &[("messages", Field::Array)], true),
            OpFn::Echo => ("echo_ok", &[("echo", Field::Any)], false),
            _ => ("generate_ok", &[("id", Field::Any)], false),
        };
        // Reads are idempotent: a read that surely or possibly did not happen is a failure.
        let unsure = if read_like {
            OpType::Fail
        } else {
            OpType::Info
        };
        match judge(reply, expected, fields) {
            Reply::Valid(body) => {
                let value = fields
                    .first()
                    .and_then(|(name, _)| body.get(*name).cloned())
                    .unwrap_or(Value::Null);
                Completion::new(OpType::Ok, value)
            }
            Reply::Timeout => Completion::failed(unsure, "net-timeout".into()),
            Reply::Error {
                name,
                definite,
                text,
            } => {
                let kind = if definite { OpType::Fail } else { unsure };
                let error = match text {
                    Some(text) => format!("{name}: {text}"),
                    None => name.to_string(),
                };
                Completion::failed(kind, error)
            }
            Reply::Malformed(reason) => Completion {
                kind: OpType::Info,
                value: Value::Null,
                error: Some("malformed-reply".into()),
                exception: Some(reason),
            },
        }
    }
}

/// G-counter replies (Maelstrom's `g_counter.clj` client does no error handling): `add_ok`, and
/// `read_ok` with an integer `value`; a timeout, any error body and a malformed reply all make
/// the op `:info` with `:error "indeterminate: ..."`. Ops never end `:fail`.
fn complete_counter(f: OpFn, reply: Result<Map<String, Value>, RpcError>) -> Completion {
    let (expected, fields): (&str, &[(&str, Field)]) = match f {
        OpFn::Add => ("add_ok", &[]),
        _ => ("read_ok", &[("value", Field::Integer)]),
    };
    let indeterminate = |reason: String| Completion {
        kind: OpType::Info,
        value: Value::Null,
        error: Some(format!("indeterminate: {reason}")),
        exception: Some(reason),
    };
    match judge(reply, expected, fields) {
        Reply::Valid(body) => Completion::new(
            OpType::Ok,
            body.get("value").cloned().unwrap_or(Value::Null),
        ),
        Reply::Timeout => indeterminate("net-timeout".into()),
        Reply::Error { name, text, .. } => {
            indeterminate(format!("{name}: {}", text.unwrap_or_default()))
        }
        Reply::Malformed(reason) => indeterminate(reason),
    }
}

/// A client thread's connection: its Maelstrom client, and the kafka client's local poll
/// positions. Both are thrown away together whenever the thread's process is replaced.
pub struct Session {
    /// The network client.
    pub client: Client,
    /// Kafka: key -> the next offset to poll (Maelstrom's `Client` `offsets` atom).
    pub positions: BTreeMap<String, i64>,
}

impl Session {
    /// A fresh session with a new client id.
    pub fn open(network: &Arc<Network>) -> Self {
        Session {
            client: Client::open(network),
            positions: BTreeMap::new(),
        }
    }
}

/// Chooses the next client operation: broadcast's ½/½ mix with values 0, 1, 2... in dispatch
/// order; echo's "Please echo k"; unique-ids' generate; g-counter's adds and reads; kafka's
/// generator.
#[derive(Debug)]
pub struct OpChooser {
    kind: WorkloadKind,
    next_broadcast: u64,
    kafka: Option<kafka::KafkaGen>,
}

impl OpChooser {
    /// A chooser for `kind`.
    pub fn new(kind: WorkloadKind) -> Self {
        OpChooser {
            kind,
            next_broadcast: 0,
            kafka: None,
        }
    }

    /// A chooser for the kafka workload on `concurrency` threads.
    pub fn kafka(assign_p: f64, concurrency: usize) -> Self {
        OpChooser {
            kind: WorkloadKind::Kafka,
            next_broadcast: 0,
            kafka: Some(kafka::KafkaGen::new(assign_p, concurrency)),
        }
    }

    /// Learns from a completion (kafka tracks offsets).
    pub fn observe(&mut self, op: &crate::harness::history::Op) {
        if let Some(kafka) = self.kafka.as_mut() {
            kafka.observe(op);
        }
    }

    /// Kafka's final-phase target: the highest offset seen per key.
    pub fn kafka_targets(&self) -> BTreeMap<String, i64> {
        self.kafka
            .as_ref()
            .map(kafka::KafkaGen::max_offsets)
            .unwrap_or_default()
    }

    /// The next operation and its value, dispatched at `stamp`.
    pub fn next(
        &mut self,
        rng: &mut impl Rng,
        stamp: crate::harness::history::Nanos,
    ) -> (OpFn, Value) {
        if let Some(kafka) = self.kafka.as_mut() {
            return kafka.next(rng, stamp);
        }
        match self.kind {
            WorkloadKind::Broadcast if rng.random_bool(0.5) => {
                let value = self.next_broadcast;
                self.next_broadcast += 1;
                (OpFn::Broadcast, value.into())
            }
            WorkloadKind::Broadcast => (OpFn::Read, Value::Null),
            WorkloadKind::Echo => {
                let k: u8 = rng.random_range(0..128);
                (OpFn::Echo, format!("Please echo {k}").into())
            }
            WorkloadKind::UniqueIds => (OpFn::Generate, Value::Null),
            // Maelstrom's mix of "add rand-int(10) - 5" and "read", redrawn until the add is
            // not negative: an add with probability 1/3, its delta uniform on 0..=4.
            WorkloadKind::GCounter => loop {
                if rng.random_bool(0.5) {
                    break (OpFn::Read, Value::Null);
                }
                let delta = rng.random_range(0..10) - 5;
                if delta >= 0 {
                    break (OpFn::Add, delta.into());
                }
            },
            WorkloadKind::Kafka => (OpFn::Crash, Value::Null),
        }
    }
}

fn object(value: Value) -> Map<String, Value> {
    match value {
        Value::Object(map) => map,
        _ => Map::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reply(value: Value) -> Result<Map<String, Value>, RpcError> {
        Ok(object(value))
    }

    fn broadcast() -> Workload {
        Workload::new(WorkloadKind::Broadcast, Topology::new())
    }

    #[test]
    fn a_read_reply_yields_its_messages() {
        let done = broadcast().complete(
            OpFn::Read,
            reply(json!({"type":"read_ok","messages":[1,2],"in_reply_to":1})),
        );
        assert_eq!(done, Completion::new(OpType::Ok, json!([1, 2])));
    }

    #[test]
    fn timeouts_make_broadcasts_info_and_reads_fail() {
        let timeout = || Err(RpcError::Timeout(std::time::Duration::from_secs(5)));
        assert_eq!(
            broadcast().complete(OpFn::Broadcast, timeout()).kind,
            OpType::Info
        );
        assert_eq!(
            broadcast().complete(OpFn::Read, timeout()).kind,
            OpType::Fail
        );
    }

    #[test]
    fn indefinite_errors_are_info_except_for_reads() {
        let crash = || reply(json!({"type":"error","code":13,"in_reply_to":1}));
        assert_eq!(
            broadcast().complete(OpFn::Broadcast, crash()).kind,
            OpType::Info
        );
        assert_eq!(broadcast().complete(OpFn::Read, crash()).kind, OpType::Fail);
        let not_supported = reply(json!({"type":"error","code":10,"in_reply_to":1}));
        assert_eq!(
            broadcast().complete(OpFn::Broadcast, not_supported).kind,
            OpType::Fail
        );
    }

    #[test]
    fn a_malformed_reply_is_info_with_an_exception_even_for_reads() {
        let done = broadcast().complete(
            OpFn::Read,
            reply(json!({"type":"read_ok","messages":[],"in_reply_to":1,"extra":true})),
        );
        assert_eq!(done.kind, OpType::Info);
        assert!(done.exception.is_some_and(|e| e.contains("extra")));
    }

    #[test]
    fn broadcast_values_count_up_in_dispatch_order() {
        use rand::SeedableRng;
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(7);
        let mut chooser = OpChooser::new(WorkloadKind::Broadcast);
        let values: Vec<u64> = (0..200)
            .filter_map(|_| match chooser.next(&mut rng, 0) {
                (OpFn::Broadcast, value) => value.as_u64(),
                _ => None,
            })
            .collect();
        assert!(
            values.len() > 60 && values.len() < 140,
            "about half: {}",
            values.len()
        );
        assert_eq!(values, (0..values.len() as u64).collect::<Vec<_>>());
    }
}

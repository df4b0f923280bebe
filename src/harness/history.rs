//! The history of a test run: every client and nemesis operation, invoked and completed, in the
//! order the interpreter saw them (docs/harness.md §2.7). The checkers read nothing else but this
//! and the network journal's counts.

use serde::Serialize;
use serde_json::Value;

/// Nanoseconds since the test's relative clock started (docs/harness.md §2.2 step 4).
pub type Nanos = u64;

/// Whether an event is an invocation or one of the three completion kinds.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum OpType {
    /// The operation was dispatched to a worker.
    Invoke,
    /// It completed and definitely happened.
    Ok,
    /// It completed and definitely did not happen.
    Fail,
    /// Indeterminate: it may or may not have happened (timeouts, indefinite errors, nemesis ops).
    Info,
}

impl OpType {
    /// The EDN keyword name, without the colon.
    pub fn name(self) -> &'static str {
        match self {
            OpType::Invoke => "invoke",
            OpType::Ok => "ok",
            OpType::Fail => "fail",
            OpType::Info => "info",
        }
    }
}

/// Who ran an operation: a client process number (thread `t` starts as process `t` and becomes
/// `t + C` after each indeterminate completion), or the nemesis.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(untagged)]
pub enum Process {
    /// A client process.
    Client(u64),
    /// The partition nemesis.
    #[serde(serialize_with = "serialize_nemesis")]
    Nemesis,
}

fn serialize_nemesis<S: serde::Serializer>(serializer: S) -> Result<S::Ok, S::Error> {
    serializer.serialize_str("nemesis")
}

/// The function of an operation.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum OpFn {
    /// Broadcast workload: send one value (`:add` to the set-full checker).
    Broadcast,
    /// Broadcast workload: read every value the node knows.
    Read,
    /// Echo workload.
    Echo,
    /// Unique-ids workload.
    Generate,
    /// G-counter: add a delta.
    Add,
    /// Kafka: append a message to a key.
    Send,
    /// Kafka: poll the assigned keys (and commit what was polled).
    Poll,
    /// Kafka: assign keys to the client (seek to the beginning in the final phase).
    Assign,
    /// Kafka: throw the client away (completes `:info` without any RPC).
    Crash,
    /// Nemesis: cut the network.
    StartPartition,
    /// Nemesis: heal the network.
    StopPartition,
}

impl OpFn {
    /// The EDN keyword name, without the colon.
    pub fn name(self) -> &'static str {
        match self {
            OpFn::Broadcast => "broadcast",
            OpFn::Read => "read",
            OpFn::Echo => "echo",
            OpFn::Generate => "generate",
            OpFn::Add => "add",
            OpFn::Send => "send",
            OpFn::Poll => "poll",
            OpFn::Assign => "assign",
            OpFn::Crash => "crash",
            OpFn::StartPartition => "start-partition",
            OpFn::StopPartition => "stop-partition",
        }
    }
}

/// One history event (docs/harness.md §2.7).
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Op {
    /// Dense position in the history, from 0.
    pub index: usize,
    /// Invocation: the op's stamped time; completion: when the interpreter dequeued it.
    pub time: Nanos,
    /// Invocation or completion kind.
    #[serde(rename = "type")]
    pub kind: OpType,
    /// Who ran it.
    pub process: Process,
    /// What it was.
    pub f: OpFn,
    /// Broadcast: the value; read completion: the array of values; echo: the string; generate
    /// completion: the id; nemesis: a description of the cut. `Null` where there is none.
    pub value: Value,
    /// Why a `fail` or `info` completion did not succeed, e.g. `net-timeout` or
    /// `not-supported: <text>`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// A malformed reply or another exception behind an `info` completion, for `:exceptions`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub exception: Option<String>,
    /// True for the reads of the final phase (docs/harness.md §2.6).
    #[serde(rename = "final?", skip_serializing_if = "std::ops::Not::not")]
    pub final_read: bool,
}

impl Op {
    /// An event with no error, exception or final flag; its index is given when it is pushed.
    pub fn new(time: Nanos, kind: OpType, process: Process, f: OpFn, value: Value) -> Self {
        Op {
            index: 0,
            time,
            kind,
            process,
            f,
            value,
            error: None,
            exception: None,
            final_read: false,
        }
    }

    /// True for a client operation (not the nemesis).
    pub fn is_client(&self) -> bool {
        matches!(self.process, Process::Client(_))
    }
}

/// The complete history of a run, in index order.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
#[serde(transparent)]
pub struct History {
    ops: Vec<Op>,
}

impl History {
    /// An empty history.
    pub fn new() -> Self {
        History::default()
    }

    /// Appends an event, giving it the next index, and returns that index.
    pub fn push(&mut self, mut op: Op) -> usize {
        let index = self.ops.len();
        op.index = index;
        self.ops.push(op);
        index
    }

    /// A history of `ops` in the given order, re-indexed from 0 (for tests and replays).
    pub fn from_ops(ops: impl IntoIterator<Item = Op>) -> Self {
        let mut history = History::new();
        for op in ops {
            history.push(op);
        }
        history
    }

    /// Every event, in index order.
    pub fn ops(&self) -> &[Op] {
        &self.ops
    }

    /// Pairs every invocation with its completion (the next event of the same process), in
    /// invocation order. An invocation that never completed is paired with `None`.
    pub fn pairs(&self) -> Vec<(&Op, Option<&Op>)> {
        let mut open: std::collections::HashMap<Process, usize> = Default::default();
        let mut pairs: Vec<(&Op, Option<&Op>)> = Vec::new();
        for op in &self.ops {
            if op.kind == OpType::Invoke {
                open.insert(op.process, pairs.len());
                pairs.push((op, None));
            } else if let Some(slot) = open.remove(&op.process) {
                pairs[slot].1 = Some(op);
            }
        }
        pairs
    }
}

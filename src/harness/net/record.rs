//! The network's optional event log, kept for the run folder's message diagram
//! (`messages.svg`): every send, delivery and partition drop with its time, and every partition
//! start and heal. Counting (the journal) is always on; this log only when views are wanted,
//! because it costs a lock and two short strings per message.

use std::sync::Mutex;

use serde_json::{Map, Value};
use tokio::time::Instant;

use super::Message;
use crate::harness::history::Nanos;

/// Longest label drawn on an arrow, in characters.
const LABEL_CHARS: usize = 48;
/// Longest body kept for the arrow's hover text, in characters.
const BODY_CHARS: usize = 400;

/// One message as the diagram shows it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LoggedMessage {
    /// The network's message id.
    pub id: u64,
    /// Sender.
    pub src: String,
    /// Destination.
    pub dest: String,
    /// The body's type and key fields, short: `broadcast message=5 msg_id=3`.
    pub label: String,
    /// The whole body as JSON, cut at a few hundred characters.
    pub body: String,
}

/// What happened on the network, in the order the log saw it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum NetEventKind {
    /// The network accepted message `id`.
    Send(u64),
    /// Message `id` reached its destination.
    Deliver(u64),
    /// Message `id` was dropped by a partition when its destination's worker dequeued it.
    Drop(u64),
    /// A partition started: its shape, and the nodes that drop someone.
    Partition {
        /// Maelstrom's shape name, e.g. `majority`.
        shape: String,
        /// Every node that drops messages from some other node.
        cut_nodes: Vec<String>,
    },
    /// The network was healed.
    Heal,
}

/// One event and its time.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NetEvent {
    /// Nanoseconds since the network was created (tokio's clock, so virtual in-process).
    pub at: Nanos,
    /// What happened.
    pub kind: NetEventKind,
}

/// Everything the log kept, for the views.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct MessageLog {
    /// Every message sent, by id.
    pub messages: Vec<LoggedMessage>,
    /// Every event, in order.
    pub events: Vec<NetEvent>,
    /// When the test's relative clock (history times) started, in the log's time: subtract it
    /// to put an event on the history's time line.
    pub clock_offset: Nanos,
}

impl MessageLog {
    /// The message with id `id`, if the log has it.
    pub fn message(&self, id: u64) -> Option<&LoggedMessage> {
        let index = self
            .messages
            .binary_search_by_key(&id, |message| message.id)
            .ok()?;
        self.messages.get(index)
    }

    /// `at` (log time) in seconds on the history's clock; negative before the clock started
    /// (init and setup messages).
    pub fn history_seconds(&self, at: Nanos) -> f64 {
        (at as f64 - self.clock_offset as f64) / 1e9
    }
}

/// The recorder the network writes to.
#[derive(Debug)]
pub(super) struct Recorder {
    epoch: Instant,
    log: Mutex<MessageLog>,
}

impl Recorder {
    pub(super) fn new() -> Self {
        Recorder {
            epoch: Instant::now(),
            log: Mutex::new(MessageLog::default()),
        }
    }

    fn now(&self) -> Nanos {
        self.epoch.elapsed().as_nanos() as Nanos
    }

    fn push(&self, kind: NetEventKind, message: Option<LoggedMessage>) {
        let at = self.now();
        let mut log = self.log.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(message) = message {
            log.messages.push(message);
        }
        log.events.push(NetEvent { at, kind });
    }

    pub(super) fn sent(&self, message: &Message) {
        let logged = LoggedMessage {
            id: message.id,
            src: message.src.clone(),
            dest: message.dest.clone(),
            label: label(&message.body),
            body: truncate(Value::Object(message.body.clone()).to_string(), BODY_CHARS),
        };
        self.push(NetEventKind::Send(message.id), Some(logged));
    }

    pub(super) fn delivered(&self, message: &Message) {
        self.push(NetEventKind::Deliver(message.id), None);
    }

    pub(super) fn dropped(&self, message: &Message) {
        self.push(NetEventKind::Drop(message.id), None);
    }

    pub(super) fn partition(&self, shape: &str, cut_nodes: Vec<String>) {
        let kind = NetEventKind::Partition {
            shape: shape.to_string(),
            cut_nodes,
        };
        self.push(kind, None);
    }

    pub(super) fn heal(&self) {
        self.push(NetEventKind::Heal, None);
    }

    pub(super) fn clock_started(&self) {
        let at = self.now();
        self.log
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clock_offset = at;
    }

    /// The log so far, messages sorted by id (sends race for the lock, ids do not).
    pub(super) fn snapshot(&self) -> MessageLog {
        let mut log = self.log.lock().unwrap_or_else(|p| p.into_inner()).clone();
        log.messages.sort_by_key(|message| message.id);
        log
    }
}

/// `type` first, then every other field as `key=value`, cut to [`LABEL_CHARS`].
fn label(body: &Map<String, Value>) -> String {
    let mut text = body
        .get("type")
        .and_then(Value::as_str)
        .unwrap_or("?")
        .to_string();
    for (key, value) in body {
        if key == "type" {
            continue;
        }
        if text.chars().count() >= LABEL_CHARS {
            break;
        }
        text.push(' ');
        text.push_str(key);
        text.push('=');
        match value {
            Value::String(s) => text.push_str(s),
            other => text.push_str(&other.to_string()),
        }
    }
    truncate(text, LABEL_CHARS)
}

fn truncate(text: String, max: usize) -> String {
    match text.char_indices().nth(max) {
        Some((cut, _)) => format!("{}…", &text[..cut]),
        None => text,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn body(value: Value) -> Map<String, Value> {
        match value {
            Value::Object(map) => map,
            _ => unreachable!(),
        }
    }

    #[test]
    fn a_label_names_the_type_then_the_key_fields() {
        let text = label(&body(
            json!({"type": "broadcast", "message": 5, "msg_id": 3}),
        ));
        assert_eq!(text, "broadcast message=5 msg_id=3");
    }

    #[test]
    fn a_long_label_is_cut_with_an_ellipsis() {
        let values: Vec<u64> = (0..100).collect();
        let text = label(&body(json!({"type": "gossip", "values": values})));
        assert_eq!(text.chars().count(), LABEL_CHARS + 1);
        assert!(text.starts_with("gossip values=[0,1,2"));
        assert!(text.ends_with('…'));
    }
}

//! The Maelstrom wire protocol as the node speaks it: envelopes, the requests it understands, the
//! bodies it sends, and the sorting of every input line into one of three outcomes.
//!
//! Replies carry exactly the workload's fields plus `msg_id` and `in_reply_to`: Maelstrom checks
//! them against closed schemas, so one extra key turns an acknowledged broadcast into an
//! indeterminate one.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// A message on the wire. The `id` Maelstrom adds to every delivered message is ignored.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Envelope<B> {
    /// Sender: `n…` for nodes, `c…` for clients.
    pub src: String,
    /// Recipient.
    pub dest: String,
    /// The payload.
    pub body: B,
}

/// The requests (and peer messages) a node acts on.
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Request {
    /// The first message: who this node is and who its peers are.
    Init {
        /// The request's id.
        msg_id: u64,
        /// This node's id.
        node_id: String,
        /// Every node's id, in test order.
        node_ids: Vec<String>,
    },
    /// The suggested neighbours of every node. Only a suggestion: the profiles choose their own.
    Topology {
        /// The request's id.
        msg_id: u64,
        /// Neighbours by node id.
        topology: BTreeMap<String, Vec<String>>,
    },
    /// A client's new value.
    Broadcast {
        /// The request's id.
        msg_id: u64,
        /// The value.
        message: i64,
    },
    /// A client asks for every value the node knows.
    Read {
        /// The request's id.
        msg_id: u64,
    },
    /// Echo workload.
    Echo {
        /// The request's id.
        msg_id: u64,
        /// Anything, sent back unchanged.
        echo: Value,
    },
    /// Unique-ids workload.
    Generate {
        /// The request's id.
        msg_id: u64,
    },
    /// Node-to-node gossip.
    Gossip(Gossip),
    /// Acknowledgements gathered for several links, passed on by the hub.
    Acks(AckDigest),
    /// G-counter workload: add `delta` to the counter.
    Add {
        /// The request's id.
        msg_id: u64,
        /// What to add (the workload sends 0 to 4).
        delta: i64,
    },
    /// Kafka workload: append `msg` to the log of `key`.
    Send {
        /// The request's id.
        msg_id: u64,
        /// The log.
        key: String,
        /// The message.
        msg: i64,
    },
    /// Kafka workload: the messages of each key from the given offset on.
    Poll {
        /// The request's id.
        msg_id: u64,
        /// First offset wanted, by key.
        offsets: BTreeMap<String, u64>,
    },
    /// Kafka workload: the client has processed each key up to the offset (inclusive).
    CommitOffsets {
        /// The request's id.
        msg_id: u64,
        /// Offsets by key.
        offsets: BTreeMap<String, u64>,
    },
    /// Kafka workload: the committed offsets of `keys`.
    ListCommittedOffsets {
        /// The request's id.
        msg_id: u64,
        /// The keys asked about.
        keys: Vec<String>,
    },
    /// Node to node: a `send` forwarded to the key's leader, which allocates the offset.
    KafkaSend {
        /// The request's id (a retry keeps it, so the leader appends once).
        msg_id: u64,
        /// The log.
        key: String,
        /// The message.
        msg: i64,
    },
    /// Node to node: log entries and commits to apply.
    Replicate(Replicate),
    /// Node to node: a [`Replicate`] message arrived and was applied.
    Replicated {
        /// The [`Replicate::id`] it acknowledges.
        id: u64,
    },
}

/// The `type`s [`Request`] understands; any other type is answered with error 10.
const KNOWN_TYPES: [&str; 16] = [
    "init",
    "topology",
    "broadcast",
    "read",
    "echo",
    "generate",
    "gossip",
    "acks",
    "add",
    "send",
    "poll",
    "commit_offsets",
    "list_committed_offsets",
    "kafka_send",
    "replicate",
    "replicated",
];

/// One batch of kafka replication on one link: entries of logs this node leads and commits.
/// Applying it twice changes nothing (entries are placed by offset, commits merged by max), so
/// a retransmission is harmless.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Replicate {
    /// The batch's number on this link, echoed by [`Request::Replicated`].
    pub id: u64,
    /// `[key, offset, msg]` triples.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub entries: Vec<(String, u64, i64)>,
    /// Committed offsets by key.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub commits: BTreeMap<String, u64>,
}

/// A gossip message on one directed link. It may carry new values (numbered by `seq`), an
/// acknowledgement of the reverse direction (`ack`), or both. A message without `seq` is a bare
/// acknowledgement and is not acknowledged itself.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Gossip {
    /// The link sequence numbers this message covers, `[first, last]`: one number when a batch
    /// is first sent, every unacknowledged one when they are sent again together.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seq: Option<SeqRange>,
    /// The values: the union of the covered batches.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub values: Vec<i64>,
    /// Cumulative acknowledgement: every sequence number up to this one arrived from the
    /// recipient (0: none yet).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub ack: u64,
}

fn is_zero(value: &u64) -> bool {
    *value == 0
}

/// Acknowledgements of several links in one message, so that the acks a node owes its peers at
/// the end of a burst cost two messages per node (to the hub, and from it) rather than one per
/// link. Each number is cumulative, as in [`Gossip::ack`].
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct AckDigest {
    /// Sent to the hub: the sender acknowledges each named peer's link up to the number; the hub
    /// passes each entry on to that peer.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub to: BTreeMap<String, u64>,
    /// Sent by the hub: each named node acknowledges the recipient's link up to the number.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub from: BTreeMap<String, u64>,
}

/// An inclusive range of link sequence numbers, `[first, last]` on the wire.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SeqRange(pub u64, pub u64);

impl SeqRange {
    /// The first number covered.
    pub fn first(self) -> u64 {
        self.0.min(self.1)
    }

    /// The last number covered.
    pub fn last(self) -> u64 {
        self.0.max(self.1)
    }
}

/// A body the node sends: a payload, plus `msg_id` and `in_reply_to` when they apply.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Body {
    /// The `type` and the payload's fields.
    #[serde(flatten)]
    pub payload: Payload,
    /// The node's own id for this message, unique per node.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub msg_id: Option<u64>,
    /// The request this replies to.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub in_reply_to: Option<u64>,
}

/// The payloads the node sends, each with exactly its schema's fields.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Payload {
    /// Reply to `init`.
    InitOk,
    /// Reply to `topology`.
    TopologyOk,
    /// Reply to `broadcast`: the value is stored and handed to gossip.
    BroadcastOk,
    /// Reply to `read`: every value the node knows.
    ReadOk {
        /// The values, in the order the node learnt them.
        messages: Vec<i64>,
    },
    /// Reply to `echo`.
    EchoOk {
        /// What the request carried.
        echo: Value,
    },
    /// Reply to `generate`.
    GenerateOk {
        /// An id unique across nodes and restarts.
        id: String,
    },
    /// A Maelstrom error.
    Error {
        /// The error code ([`ErrorCode`]).
        code: u16,
        /// What went wrong, for people.
        text: String,
    },
    /// Node-to-node gossip.
    Gossip(Gossip),
    /// Acknowledgements of several links.
    Acks(AckDigest),
    /// Reply to `add`.
    AddOk,
    /// Reply to a g-counter `read` (the same `type` as broadcast's, with `value` instead).
    #[serde(rename = "read_ok")]
    CounterReadOk {
        /// The counter.
        value: i64,
    },
    /// Reply to `send`.
    SendOk {
        /// Where the message went in its key's log.
        offset: u64,
    },
    /// Reply to `poll`.
    PollOk {
        /// `[offset, msg]` pairs by key, in offset order, without gaps.
        msgs: BTreeMap<String, Vec<(u64, i64)>>,
    },
    /// Reply to `commit_offsets`.
    CommitOffsetsOk,
    /// Reply to `list_committed_offsets`.
    ListCommittedOffsetsOk {
        /// Committed offsets of the keys asked about that have one.
        offsets: BTreeMap<String, u64>,
    },
    /// To a kv service: read `key`.
    #[serde(rename = "read")]
    KvRead {
        /// The key.
        key: Value,
    },
    /// To a kv service: set `key` to `value`.
    #[serde(rename = "write")]
    KvWrite {
        /// The key.
        key: Value,
        /// The value.
        value: Value,
    },
    /// To a key's leader: a forwarded `send`.
    KafkaSend {
        /// The log.
        key: String,
        /// The message.
        msg: i64,
    },
    /// From a key's leader: where the forwarded message went.
    KafkaSendOk {
        /// Its offset.
        offset: u64,
    },
    /// Kafka replication.
    Replicate(Replicate),
    /// Acknowledges a [`Payload::Replicate`].
    Replicated {
        /// The batch's number.
        id: u64,
    },
}

/// The Maelstrom error codes the node uses.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ErrorCode {
    /// 10: the message type is not implemented.
    NotSupported = 10,
    /// 11: cannot serve now; definitely not performed.
    TemporarilyUnavailable = 11,
    /// 12: the request could not be understood.
    MalformedRequest = 12,
    /// 13: indefinite failure.
    Crash = 13,
    /// 20: a kv service has no such key.
    KeyDoesNotExist = 20,
    /// 22: a kv service's `cas` found another value.
    PreconditionFailed = 22,
}

/// A message the node sends.
pub type Outbound = Envelope<Body>;

/// One input line, sorted.
#[derive(Clone, Debug, PartialEq)]
pub enum Inbound {
    /// A request the node understands.
    Request(Envelope<Request>),
    /// A reply (a body with `in_reply_to`), for the RPC client to match with its request.
    Reply {
        /// Who answered.
        src: String,
        /// The id of the request it answers.
        in_reply_to: u64,
        /// The whole body.
        body: Map<String, Value>,
    },
    /// A well-formed message of a type the node does not implement: answered with error 10.
    Unsupported {
        /// Sender.
        src: String,
        /// Recipient.
        dest: String,
        /// The unknown `type`.
        kind: String,
        /// The id to answer, if the message is a request.
        msg_id: Option<u64>,
        /// Set when the message is itself a reply: replies are never answered, so that two nodes
        /// cannot bounce errors at each other.
        is_reply: bool,
    },
    /// A line that is not a valid message: logged, and answered with error 12 when it names a
    /// sender and a `msg_id`.
    Malformed {
        /// Why it was rejected.
        reason: String,
        /// Where to send error 12, when the line says.
        answer_to: Option<AnswerTo>,
    },
    /// A line that is not UTF-8: treated as malformed (error 12 where, read leniently, it names
    /// a sender and a `msg_id`), and counted on its own.
    NotUtf8 {
        /// Where the first invalid byte is.
        reason: String,
        /// Where to send error 12, as far as the line says once its invalid bytes are replaced.
        answer_to: Option<AnswerTo>,
    },
    /// A line longer than the cap (`SLUICEGATE_MAX_LINE_BYTES`), skipped unread: logged and
    /// counted, never answered (nothing of it was kept to answer to).
    Oversized {
        /// Its length in bytes.
        len: u64,
    },
}

/// Enough of a malformed line to answer it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AnswerTo {
    /// The line's `src`.
    pub src: String,
    /// The line's `dest`, if it had a string one.
    pub dest: Option<String>,
    /// The line's `body.msg_id`.
    pub msg_id: u64,
}

/// Sorts one input line, as bytes: a line that is not UTF-8 is [`Inbound::NotUtf8`], any other
/// is sorted by [`parse_line`].
pub fn parse_bytes(line: &[u8]) -> Inbound {
    match std::str::from_utf8(line) {
        Ok(text) => parse_line(text),
        Err(error) => {
            let lossy = String::from_utf8_lossy(line);
            let answer_to = serde_json::from_str::<Value>(&lossy)
                .ok()
                .as_ref()
                .and_then(answer_to);
            Inbound::NotUtf8 {
                reason: format!("not UTF-8: {error}"),
                answer_to,
            }
        }
    }
}

/// Sorts one input line into a request, an unsupported type, or a malformed line.
pub fn parse_line(line: &str) -> Inbound {
    let value: Value = match serde_json::from_str(line) {
        Ok(value) => value,
        Err(error) => {
            return Inbound::Malformed {
                reason: format!("not JSON: {error}"),
                answer_to: None,
            };
        }
    };
    let answer_to = answer_to(&value);
    let malformed = |reason: String| Inbound::Malformed {
        reason,
        answer_to: answer_to.clone(),
    };
    let Value::Object(mut envelope) = value else {
        return malformed("not a JSON object".into());
    };
    let (Some(Value::String(src)), Some(Value::String(dest))) =
        (envelope.remove("src"), envelope.remove("dest"))
    else {
        return malformed("src and dest must be strings".into());
    };
    let Some(Value::Object(body)) = envelope.remove("body") else {
        return malformed("body must be an object".into());
    };
    let Some(Value::String(kind)) = body.get("type").cloned() else {
        return malformed("body.type must be a string".into());
    };
    if let Some(in_reply_to) = body.get("in_reply_to").and_then(Value::as_u64) {
        return Inbound::Reply {
            src,
            in_reply_to,
            body,
        };
    }
    if !KNOWN_TYPES.contains(&kind.as_str()) {
        return Inbound::Unsupported {
            src,
            dest,
            msg_id: body.get("msg_id").and_then(Value::as_u64),
            is_reply: body.contains_key("in_reply_to") || kind == "error",
            kind,
        };
    }
    match parse_request(body) {
        Ok(body) => Inbound::Request(Envelope { src, dest, body }),
        Err(error) => malformed(format!("bad {kind} body: {error}")),
    }
}

fn parse_request(body: Map<String, Value>) -> Result<Request, serde_json::Error> {
    serde_json::from_value(Value::Object(body))
}

fn answer_to(value: &Value) -> Option<AnswerTo> {
    Some(AnswerTo {
        src: value.get("src")?.as_str()?.to_owned(),
        dest: value.get("dest").and_then(Value::as_str).map(str::to_owned),
        msg_id: value.get("body")?.get("msg_id")?.as_u64()?,
    })
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn body_json(payload: Payload, msg_id: Option<u64>, in_reply_to: Option<u64>) -> Value {
        serde_json::to_value(Body {
            payload,
            msg_id,
            in_reply_to,
        })
        .unwrap()
    }

    #[test]
    fn replies_have_exactly_their_schema_fields() {
        assert_eq!(
            body_json(Payload::BroadcastOk, Some(4), Some(9)),
            json!({"type": "broadcast_ok", "msg_id": 4, "in_reply_to": 9})
        );
        assert_eq!(
            body_json(
                Payload::ReadOk {
                    messages: vec![1, 2]
                },
                None,
                Some(3)
            ),
            json!({"type": "read_ok", "messages": [1, 2], "in_reply_to": 3})
        );
    }

    #[test]
    fn gossip_omits_empty_parts() {
        let bare_ack = Gossip {
            ack: 7,
            ..Gossip::default()
        };
        assert_eq!(
            body_json(Payload::Gossip(bare_ack), None, None),
            json!({"type": "gossip", "ack": 7})
        );
        let batch = Gossip {
            seq: Some(SeqRange(3, 5)),
            values: vec![8],
            ack: 0,
        };
        assert_eq!(
            body_json(Payload::Gossip(batch), None, None),
            json!({"type": "gossip", "seq": [3, 5], "values": [8]})
        );
    }

    #[test]
    fn an_ack_digest_carries_only_its_non_empty_side() {
        let digest = AckDigest {
            to: BTreeMap::from([("n1".to_owned(), 4), ("n2".to_owned(), 9)]),
            from: BTreeMap::new(),
        };
        assert_eq!(
            body_json(Payload::Acks(digest.clone()), None, None),
            json!({"type": "acks", "to": {"n1": 4, "n2": 9}})
        );
        let line = r#"{"src":"n3","dest":"n0","body":{"type":"acks","to":{"n1":4,"n2":9}}}"#;
        assert!(matches!(
            parse_line(line),
            Inbound::Request(Envelope { body: Request::Acks(parsed), .. }) if parsed == digest
        ));
    }

    #[test]
    fn lines_are_sorted_into_requests_unsupported_and_malformed() {
        let line =
            r#"{"id":4,"src":"c1","dest":"n0","body":{"type":"broadcast","message":5,"msg_id":2}}"#;
        assert_eq!(
            parse_line(line),
            Inbound::Request(Envelope {
                src: "c1".into(),
                dest: "n0".into(),
                body: Request::Broadcast {
                    msg_id: 2,
                    message: 5
                }
            })
        );
        let unknown = r#"{"src":"c1","dest":"n0","body":{"type":"cas","msg_id":3}}"#;
        assert!(matches!(
            parse_line(unknown),
            Inbound::Unsupported {
                msg_id: Some(3),
                is_reply: false,
                ..
            }
        ));
        let bad_value =
            r#"{"src":"c1","dest":"n0","body":{"type":"broadcast","message":"x","msg_id":6}}"#;
        let Inbound::Malformed { answer_to, .. } = parse_line(bad_value) else {
            panic!("a broadcast without an integer message is malformed");
        };
        assert_eq!(answer_to.map(|to| to.msg_id), Some(6));
        assert!(matches!(
            parse_line("{not json"),
            Inbound::Malformed {
                answer_to: None,
                ..
            }
        ));
    }
}

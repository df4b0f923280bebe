//! The dispatcher: acts on each sorted input line, in order, and answers through the stdout sink.
//!
//! Before `init` the node knows neither its id nor its peers, so everything but `init` waits in
//! a queue (peers may gossip before this node's init arrives) and is replayed right after it.

use std::collections::VecDeque;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use rand::Rng;
use thiserror::Error;

use super::acks::RelayEntry;
use super::config::NodeConfig;
use super::counter::{Counter, Waiting};
use super::gossip::{GossipPipeline, GossipReport, Gossiped};
use super::ids::IdGenerator;
use super::kafka::Kafka;
use super::plan::Plan;
use super::protocol::{
    AckDigest, AnswerTo, Body, Envelope, ErrorCode, Gossip, Inbound, Outbound, Payload, Request,
};
use super::rpc::Rpc;
use super::store::ValueStore;
use crate::sinks::{Emission, SinkHandle};

/// The stdout sink is gone: nothing more can be said, so serving stops.
#[derive(Debug, Error)]
#[error("the output is closed")]
pub struct OutputClosed;

/// What the dispatcher counted.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ServerCounters {
    /// Messages handled (requests, unsupported and malformed lines).
    pub handled: u64,
    /// Malformed lines (answered with error 12 when they named a sender and a `msg_id`).
    pub malformed: u64,
    /// Messages of an unknown type (answered with error 10 when they were requests).
    pub unsupported: u64,
    /// Messages that arrived before `init` and waited for it.
    pub early: u64,
    /// Messages refused because too many were waiting for `init`.
    pub early_refused: u64,
    /// Client broadcasts acknowledged.
    pub broadcasts: u64,
    /// Gossip messages received.
    pub gossip_received: u64,
    /// Lines that were not UTF-8 (also counted as malformed).
    pub not_utf8: u64,
    /// Lines longer than `SLUICEGATE_MAX_LINE_BYTES`, skipped unread (not counted as handled).
    pub oversized: u64,
    /// Requests addressed to another node (after `init`), refused: error 12 to a client, nothing
    /// to a node.
    pub wrong_dest: u64,
}

/// Which workload the node serves, as far as it can tell: `read` is both broadcast's and
/// g-counter's, with different replies. Maelstrom's broadcast sends `topology` before any
/// read, and a g-counter node sees `add`s.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Workload {
    /// Neither yet: a read is answered as a counter read.
    Unknown,
    /// A topology, broadcast or gossip was seen.
    Broadcast,
    /// An add was seen.
    Counter,
}

/// The node after `init`.
struct Ready {
    me: Arc<str>,
    plan: Plan,
    store: ValueStore,
    ids: IdGenerator,
    gossip: GossipPipeline,
    workload: Workload,
    rpc: Rpc,
    counter: Counter,
    kafka: Kafka,
}

/// Where replies go: the stdout sink, with this node's id as `src` and its own `msg_id`s.
struct Outbox {
    out: SinkHandle<Outbound>,
    /// This node's id, once `init` has said it.
    me: Option<Arc<str>>,
    /// The last `msg_id` used, shared with the RPC client so ids are unique per node.
    msg_ids: Arc<AtomicU64>,
}

impl Outbox {
    async fn reply(
        &mut self,
        dest: String,
        in_reply_to: u64,
        payload: Payload,
    ) -> Result<(), OutputClosed> {
        let src = self.me.as_deref().unwrap_or_default().to_owned();
        self.send(src, dest, in_reply_to, payload).await
    }

    /// An error reply; `src` stands in for this node's id while `init` has not said it.
    async fn error(
        &mut self,
        src: Option<String>,
        dest: String,
        in_reply_to: u64,
        code: ErrorCode,
        text: String,
    ) -> Result<(), OutputClosed> {
        let src = match &self.me {
            Some(me) => me.to_string(),
            None => src.unwrap_or_default(),
        };
        let payload = Payload::Error {
            code: code as u16,
            text,
        };
        self.send(src, dest, in_reply_to, payload).await
    }

    async fn send(
        &mut self,
        src: String,
        dest: String,
        in_reply_to: u64,
        payload: Payload,
    ) -> Result<(), OutputClosed> {
        let msg_id = self.msg_ids.fetch_add(1, Ordering::Relaxed) + 1;
        let message = Envelope {
            src,
            dest,
            body: Body {
                payload,
                msg_id: Some(msg_id),
                in_reply_to: Some(in_reply_to),
            },
        };
        match self.out.emit(message).await {
            Emission::Queued => Ok(()),
            _refused => Err(OutputClosed),
        }
    }
}

/// The dispatcher's state.
pub struct Server {
    config: NodeConfig,
    outbox: Outbox,
    ready: Option<Ready>,
    early: VecDeque<Inbound>,
    counters: ServerCounters,
}

impl Server {
    /// A node waiting for `init`, answering through `out`.
    pub fn new(config: NodeConfig, out: SinkHandle<Outbound>) -> Self {
        Server {
            config,
            outbox: Outbox {
                out,
                me: None,
                msg_ids: Arc::default(),
            },
            ready: None,
            early: VecDeque::new(),
            counters: ServerCounters::default(),
        }
    }

    /// Acts on one input line.
    ///
    /// # Errors
    ///
    /// [`OutputClosed`] once the stdout sink refuses messages.
    pub async fn handle(&mut self, inbound: Inbound) -> Result<(), OutputClosed> {
        let inbound = match inbound {
            Inbound::Oversized { len } => {
                self.counters.oversized += 1;
                tracing::warn!(
                    len,
                    max = self.config.max_line_bytes,
                    "input line over the cap skipped"
                );
                return Ok(());
            }
            Inbound::NotUtf8 { reason, answer_to } => {
                self.counters.not_utf8 += 1;
                Inbound::Malformed { reason, answer_to }
            }
            inbound => inbound,
        };
        let Some(ready) = self.ready.as_mut() else {
            return match inbound {
                Inbound::Request(Envelope {
                    src,
                    body:
                        Request::Init {
                            msg_id,
                            node_id,
                            node_ids,
                        },
                    ..
                }) => self.init(src, msg_id, node_id, node_ids).await,
                early => self.wait_for_init(early).await,
            };
        };
        self.counters.handled += 1;
        match inbound {
            Inbound::Request(request) if request.dest != *ready.me => {
                self.counters.wrong_dest += 1;
                let Envelope { src, dest, body } = request;
                tracing::warn!(%src, %dest, "a message for another node; refused");
                match request_id(&body).filter(|_| src.starts_with('c')) {
                    Some(msg_id) => {
                        let text = format!("this is node {}, not {dest}", ready.me);
                        let code = ErrorCode::MalformedRequest;
                        self.outbox.error(None, src, msg_id, code, text).await
                    }
                    None => Ok(()),
                }
            }
            Inbound::Request(request) => {
                request_ready(ready, &mut self.outbox, &mut self.counters, request).await
            }
            Inbound::Reply {
                src,
                in_reply_to,
                body,
            } => {
                if !ready.rpc.deliver(in_reply_to, body) {
                    tracing::debug!(%src, in_reply_to, "a reply nobody waits for");
                }
                Ok(())
            }
            Inbound::Unsupported {
                src,
                dest,
                kind,
                msg_id,
                is_reply,
            } => {
                self.counters.unsupported += 1;
                tracing::warn!(%src, kind, "unsupported message type");
                match msg_id.filter(|_| !is_reply) {
                    Some(msg_id) => {
                        let text = format!("message type {kind:?} is not supported");
                        let code = ErrorCode::NotSupported;
                        self.outbox.error(Some(dest), src, msg_id, code, text).await
                    }
                    None => Ok(()),
                }
            }
            // Already counted and logged above.
            Inbound::Oversized { .. } => Ok(()),
            Inbound::Malformed { reason, answer_to } | Inbound::NotUtf8 { reason, answer_to } => {
                self.counters.malformed += 1;
                tracing::warn!(reason, "malformed input line");
                match answer_to {
                    Some(AnswerTo { src, dest, msg_id }) => {
                        let code = ErrorCode::MalformedRequest;
                        self.outbox.error(dest, src, msg_id, code, reason).await
                    }
                    None => Ok(()),
                }
            }
        }
    }

    /// Closes the gossip pipeline, waits for what it queued to go out, and returns the counts.
    pub async fn finish(self) -> (ServerCounters, Option<GossipReport>) {
        let Server {
            ready, counters, ..
        } = self;
        let gossip = match ready {
            Some(ready) => {
                let counter = ready.counter.finish().await;
                let kafka = ready.kafka.finish().await;
                tracing::info!(?counter, ?kafka, rpc = ?ready.rpc.stats(), "stopped");
                Some(ready.gossip.finish().await)
            }
            None => None,
        };
        (counters, gossip)
    }

    async fn wait_for_init(&mut self, inbound: Inbound) -> Result<(), OutputClosed> {
        if self.early.len() < self.config.pre_init_limit {
            self.counters.early += 1;
            self.early.push_back(inbound);
            return Ok(());
        }
        self.counters.early_refused += 1;
        tracing::warn!("too many messages before init; refusing one");
        let (src, dest, msg_id) = match inbound {
            Inbound::Request(Envelope { src, dest, body }) => (src, Some(dest), request_id(&body)),
            Inbound::Unsupported {
                src, dest, msg_id, ..
            } => (src, Some(dest), msg_id),
            // A reply before init answers nothing this node asked.
            Inbound::Reply { .. } => return Ok(()),
            Inbound::Malformed { answer_to, .. } | Inbound::NotUtf8 { answer_to, .. } => {
                match answer_to {
                    Some(to) => (to.src, to.dest, Some(to.msg_id)),
                    None => return Ok(()),
                }
            }
            Inbound::Oversized { .. } => return Ok(()),
        };
        match msg_id {
            Some(msg_id) => {
                let text = "the node has not been initialised yet".to_owned();
                let code = ErrorCode::TemporarilyUnavailable;
                self.outbox.error(dest, src, msg_id, code, text).await
            }
            None => Ok(()),
        }
    }

    async fn init(
        &mut self,
        src: String,
        msg_id: u64,
        node_id: String,
        node_ids: Vec<String>,
    ) -> Result<(), OutputClosed> {
        self.counters.handled += 1;
        let me: Arc<str> = Arc::from(node_id.as_str());
        let plan = Plan::new(&self.config, &me, &node_ids);
        tracing::info!(
            me = &*me,
            profile = ?self.config.profile,
            targets = plan.targets.len(),
            relays = plan.relays_peer_values,
            linger_ms = plan.linger.as_millis() as u64,
            "initialised"
        );
        let epoch = self.config.id_epoch.unwrap_or_else(|| rand::rng().random());
        let gossip = GossipPipeline::start(&self.config, &plan, &me, &node_ids, &self.outbox.out);
        let rpc = Rpc::new(
            Arc::clone(&me),
            self.outbox.out.clone(),
            Arc::clone(&self.outbox.msg_ids),
        );
        self.ready = Some(Ready {
            me: Arc::clone(&me),
            ids: IdGenerator::new(&me, epoch),
            plan,
            store: ValueStore::default(),
            gossip,
            workload: Workload::Unknown,
            counter: Counter::start(&rpc, &node_ids),
            kafka: Kafka::start(&rpc, &node_ids),
            rpc,
        });
        self.outbox.me = Some(me);
        self.outbox.reply(src, msg_id, Payload::InitOk).await?;
        // What arrived early is served now, in arrival order.
        while let Some(early) = self.early.pop_front() {
            Box::pin(self.handle(early)).await?;
        }
        Ok(())
    }
}

/// Takes in a digest of acks: those `from` other nodes settle this node's links; those `to`
/// other nodes (only the hub gets them) are passed on, except the ones meant for this node.
async fn receive_acks(ready: &mut Ready, src: String, digest: AckDigest) {
    for (from, ack) in digest.from {
        if let Some(link) = ready.gossip.links.get(&from) {
            link.acknowledge(ack);
        }
    }
    for (dest, ack) in digest.to {
        if dest == *ready.me {
            if let Some(link) = ready.gossip.links.get(&src) {
                link.acknowledge(ack);
            }
            continue;
        }
        if !ready.gossip.links.contains_key(&dest) {
            // Never address a node that does not exist: Maelstrom stops reading a node's
            // stdout after one message to an unknown destination.
            tracing::warn!(%src, %dest, "an ack digest names a node that is not a peer");
            continue;
        }
        let relay = ready
            .gossip
            .acks
            .as_ref()
            .and_then(|acks| acks.relay.as_ref());
        let Some(relay) = relay else {
            tracing::warn!(%src, %dest, "an ack digest reached a node that is not the hub");
            continue;
        };
        let entry = RelayEntry {
            dest,
            from: src.clone(),
            ack,
        };
        if relay.emit(entry).await.into_lost().is_some() {
            // Only at shutdown; the sender will re-send and get a direct ack.
            tracing::warn!("the ack relay is gone");
        }
    }
}

/// Acts on a request once the node is initialised.
async fn request_ready(
    ready: &mut Ready,
    outbox: &mut Outbox,
    counters: &mut ServerCounters,
    request: Envelope<Request>,
) -> Result<(), OutputClosed> {
    let Envelope { src, dest, body } = request;
    if ready.workload == Workload::Unknown {
        ready.workload = match body {
            Request::Topology { .. }
            | Request::Broadcast { .. }
            | Request::Gossip(_)
            | Request::Acks(_) => Workload::Broadcast,
            Request::Add { .. } => Workload::Counter,
            _ => Workload::Unknown,
        };
    }
    match body {
        Request::Init { msg_id, .. } => {
            tracing::warn!("init again; keeping the first one");
            outbox.reply(src, msg_id, Payload::InitOk).await
        }
        Request::Topology { msg_id, topology } => {
            tracing::debug!(?topology, "topology suggested; the profile decides instead");
            outbox.reply(src, msg_id, Payload::TopologyOk).await
        }
        Request::Broadcast { msg_id, message } => {
            ready.store.insert(message);
            let offered = Gossiped {
                value: message,
                origin: None,
            };
            // Acknowledge only once the value is in the pipeline: from there it is retried
            // until every peer it is meant for has it.
            match ready.gossip.input.emit(offered).await {
                Emission::Queued => {
                    counters.broadcasts += 1;
                    outbox.reply(src, msg_id, Payload::BroadcastOk).await
                }
                refused => {
                    tracing::error!(message, outcome = refused.kind(), "gossip refused a value");
                    let text = "the gossip pipeline is gone".to_owned();
                    outbox
                        .error(None, src, msg_id, ErrorCode::Crash, text)
                        .await
                }
            }
        }
        Request::Read { msg_id } if ready.workload != Workload::Broadcast => {
            let waiting = Waiting {
                client: src,
                msg_id,
            };
            match ready.counter.read(waiting).await {
                None => Ok(()),
                Some(lost) => stopping(outbox, lost).await,
            }
        }
        Request::Add { msg_id, delta } => {
            let waiting = Waiting {
                client: src,
                msg_id,
            };
            match ready.counter.add(delta, waiting).await {
                None => Ok(()),
                Some(lost) => stopping(outbox, lost).await,
            }
        }
        Request::Send { msg_id, key, msg } => closed(ready.kafka.send(src, msg_id, key, msg).await),
        Request::KafkaSend { msg_id, key, msg } => {
            closed(ready.kafka.leader_send(src, msg_id, key, msg).await)
        }
        Request::Poll { msg_id, offsets } => closed(ready.kafka.poll(src, msg_id, offsets).await),
        Request::CommitOffsets { msg_id, offsets } => {
            closed(ready.kafka.commit(src, msg_id, offsets).await)
        }
        Request::ListCommittedOffsets { msg_id, keys } => {
            closed(ready.kafka.list(src, msg_id, keys).await)
        }
        Request::Replicate(batch) => closed(ready.kafka.replicate(src, batch).await),
        Request::Replicated { id } => {
            ready.kafka.replicated(&src, id);
            Ok(())
        }
        Request::Read { msg_id } => {
            let messages = ready.store.values().to_vec();
            outbox
                .reply(src, msg_id, Payload::ReadOk { messages })
                .await
        }
        Request::Echo { msg_id, echo } => outbox.reply(src, msg_id, Payload::EchoOk { echo }).await,
        Request::Generate { msg_id } => {
            let id = ready.ids.next_id();
            outbox.reply(src, msg_id, Payload::GenerateOk { id }).await
        }
        Request::Gossip(gossip) => {
            counters.gossip_received += 1;
            receive_gossip(ready, src, dest, gossip).await;
            Ok(())
        }
        Request::Acks(digest) => {
            counters.gossip_received += 1;
            receive_acks(ready, src, digest).await;
            Ok(())
        }
    }
}

/// Takes in a peer's gossip: its ack and sequence numbers go to the link, its values to the
/// store, and (on the hub) on to the pipeline, marked with their origin.
async fn receive_gossip(ready: &mut Ready, src: String, dest: String, gossip: Gossip) {
    let origin: Arc<str> = Arc::from(src.as_str());
    for &value in &gossip.values {
        ready.store.insert(value);
        if ready.plan.relays_peer_values {
            let offered = Gossiped {
                value,
                origin: Some(Arc::clone(&origin)),
            };
            if let Some(lost) = ready.gossip.input.emit(offered).await.into_lost() {
                // Only at shutdown; the origin keeps it pending until it is acknowledged.
                tracing::warn!(value = lost.value, "gossip refused a relayed value");
            }
        }
    }
    // Recorded (and so acknowledged) only once the values are stored and on their way.
    match ready.gossip.links.get(&src) {
        Some(link) => link.receive(&gossip),
        None => tracing::warn!(%src, %dest, "gossip from a node that is not a peer"),
    }
}

/// The `msg_id` of a request.
fn request_id(request: &Request) -> Option<u64> {
    match request {
        Request::Init { msg_id, .. }
        | Request::Topology { msg_id, .. }
        | Request::Broadcast { msg_id, .. }
        | Request::Read { msg_id }
        | Request::Echo { msg_id, .. }
        | Request::Generate { msg_id }
        | Request::Add { msg_id, .. }
        | Request::Send { msg_id, .. }
        | Request::Poll { msg_id, .. }
        | Request::CommitOffsets { msg_id, .. }
        | Request::ListCommittedOffsets { msg_id, .. }
        | Request::KafkaSend { msg_id, .. } => Some(*msg_id),
        Request::Gossip(_)
        | Request::Acks(_)
        | Request::Replicate(_)
        | Request::Replicated { .. } => None,
    }
}

/// The kafka and counter parts fail only when the output is gone.
fn closed(result: Result<(), super::rpc::RpcError>) -> Result<(), OutputClosed> {
    result.map_err(|_| OutputClosed)
}

/// A request the counter refused because it is stopping: answered with error 13.
async fn stopping(outbox: &mut Outbox, lost: Waiting) -> Result<(), OutputClosed> {
    let text = "the node is stopping".to_owned();
    outbox
        .error(None, lost.client, lost.msg_id, ErrorCode::Crash, text)
        .await
}

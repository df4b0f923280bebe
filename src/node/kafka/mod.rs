//! The Kafka-style log (Gossip Glomers 5a-5c): `send`, `poll`, `commit_offsets`,
//! `list_committed_offsets`.
//!
//! Every key has one leader ([`owner::leader`], fixed by the node list, so no coordination), and
//! only the leader allocates the key's offsets: locally, with no service call. A `send` to another
//! node is forwarded to the leader (one request and one reply between nodes) and answered with
//! the leader's offset. The leader replicates each entry to every other node through the pipeline
//! ([`replicate`]), so any node answers `poll` from its own copy: a copy that lags returns less,
//! but never a gap (see [`log::Logs::read_from`]). Commits are kept where they are made and
//! replicated the same way, merged by max. With one node nothing leaves the node (5a).

mod log;
mod owner;
mod replicate;

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use serde_json::Value;
use tokio::task::JoinSet;

use self::log::Logs;
pub use self::replicate::ReplicationStats;
use self::replicate::{Item, Replication};
use super::protocol::{ErrorCode, Payload, Replicate};
use super::rpc::{Retry, Rpc, RpcError};

/// How long replication batches linger: long enough to carry many entries per message, short
/// enough that other nodes' polls see new entries soon.
const REPLICATION_LINGER: Duration = Duration::from_millis(100);
/// When an unacknowledged replication batch is sent again.
const REPLICATION_RETRY: Duration = Duration::from_millis(1000);
/// A forwarded send's wait and attempts: all within the client's 5 s timeout.
const FORWARD_RETRY: Retry = Retry {
    timeout: Duration::from_millis(500),
    attempts: 8,
};
/// Forwarded sends a leader remembers, so that a retry gets the first attempt's offset.
const FORWARDED_WINDOW: usize = 1 << 16;

/// What the log service did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct KafkaStats {
    /// Sends appended here, as the key's leader (forwarded ones included).
    pub appended: u64,
    /// Sends forwarded to another node.
    pub forwarded: u64,
    /// Forwarded sends that were retries of one already appended.
    pub duplicate_forwards: u64,
    /// The replication pipeline.
    pub replication: ReplicationStats,
}

/// The log service of one node.
#[derive(Debug)]
pub struct Kafka {
    node_ids: Vec<String>,
    rpc: Rpc,
    logs: Arc<Mutex<Logs>>,
    replication: Replication,
    /// `(origin, msg_id)` of forwarded sends appended, with their offsets; oldest first.
    forwarded: HashMap<(String, u64), u64>,
    forwarded_order: VecDeque<(String, u64)>,
    forwards: JoinSet<()>,
    stats: KafkaStats,
}

fn lock(logs: &Mutex<Logs>) -> MutexGuard<'_, Logs> {
    logs.lock().unwrap_or_else(PoisonError::into_inner)
}

/// A reply could not be written: the output is gone.
pub type Closed = RpcError;

impl Kafka {
    /// Starts the replication of node `rpc.me()` among `node_ids`.
    pub fn start(rpc: &Rpc, node_ids: &[String]) -> Self {
        Kafka {
            node_ids: node_ids.to_vec(),
            rpc: rpc.clone(),
            logs: Arc::default(),
            replication: Replication::start(rpc, node_ids, REPLICATION_LINGER, REPLICATION_RETRY),
            forwarded: HashMap::new(),
            forwarded_order: VecDeque::new(),
            forwards: JoinSet::new(),
            stats: KafkaStats::default(),
        }
    }

    /// A client's `send`: appended here if this node leads the key, else forwarded (in a task
    /// of its own: the leader's reply comes back through the dispatcher).
    ///
    /// # Errors
    ///
    /// When the output is gone.
    pub async fn send(
        &mut self,
        client: String,
        msg_id: u64,
        key: String,
        msg: i64,
    ) -> Result<(), Closed> {
        // Reap finished forwards so the set does not grow.
        while self.forwards.try_join_next().is_some() {}
        let leader = owner::leader(&key, &self.node_ids).unwrap_or_default();
        if leader == &**self.rpc.me() || self.node_ids.is_empty() {
            let payload = match self.append(&key, msg).await {
                Some(offset) => Payload::SendOk { offset },
                None => stopping(),
            };
            return self.rpc.send(&client, payload, Some(msg_id)).await;
        }
        self.stats.forwarded += 1;
        let (rpc, logs, leader) = (self.rpc.clone(), Arc::clone(&self.logs), leader.to_owned());
        self.forwards.spawn(async move {
            let forward = Payload::KafkaSend {
                key: key.clone(),
                msg,
            };
            let payload = match rpc.call(&leader, forward, FORWARD_RETRY).await {
                Ok(body) => match body.get("offset").and_then(Value::as_u64) {
                    Some(offset) => {
                        // Known now; replication will bring the entries before it.
                        lock(&logs).insert(&key, offset, msg);
                        Payload::SendOk { offset }
                    }
                    None => Payload::Error {
                        code: ErrorCode::Crash as u16,
                        text: "the leader's reply had no offset".into(),
                    },
                },
                Err(RpcError::Remote { code, text }) => Payload::Error {
                    code: u16::try_from(code).unwrap_or(ErrorCode::Crash as u16),
                    text,
                },
                // The leader may have appended it: indefinite.
                Err(error) => Payload::Error {
                    code: ErrorCode::Crash as u16,
                    text: format!("forwarding to the leader {leader} failed: {error}"),
                },
            };
            if rpc.send(&client, payload, Some(msg_id)).await.is_err() {
                tracing::warn!("stdout is gone; a send_ok is lost");
            }
        });
        Ok(())
    }

    /// A `send` forwarded by `origin`, which expects this node to lead the key.
    ///
    /// # Errors
    ///
    /// When the output is gone.
    pub async fn leader_send(
        &mut self,
        origin: String,
        msg_id: u64,
        key: String,
        msg: i64,
    ) -> Result<(), Closed> {
        let id = (origin, msg_id);
        let payload = if let Some(&offset) = self.forwarded.get(&id) {
            self.stats.duplicate_forwards += 1;
            Payload::KafkaSendOk { offset }
        } else if owner::leader(&key, &self.node_ids) != Some(&**self.rpc.me()) {
            Payload::Error {
                code: ErrorCode::TemporarilyUnavailable as u16,
                text: format!("{} does not lead key {key}", self.rpc.me()),
            }
        } else {
            match self.append(&key, msg).await {
                Some(offset) => {
                    self.remember(id.clone(), offset);
                    Payload::KafkaSendOk { offset }
                }
                None => stopping(),
            }
        };
        self.rpc.send(&id.0, payload, Some(msg_id)).await
    }

    /// A client's `poll`: from this node's copy, each key from its offset up to the first hole;
    /// keys with nothing are left out.
    ///
    /// # Errors
    ///
    /// When the output is gone.
    pub async fn poll(
        &self,
        client: String,
        msg_id: u64,
        offsets: BTreeMap<String, u64>,
    ) -> Result<(), Closed> {
        let msgs = {
            let logs = lock(&self.logs);
            offsets
                .into_iter()
                .map(|(key, from)| {
                    let entries = logs.read_from(&key, from);
                    (key, entries)
                })
                .filter(|(_, entries)| !entries.is_empty())
                .collect()
        };
        self.rpc
            .send(&client, Payload::PollOk { msgs }, Some(msg_id))
            .await
    }

    /// A client's `commit_offsets`: kept here and replicated to every peer.
    ///
    /// # Errors
    ///
    /// When the output is gone.
    pub async fn commit(
        &self,
        client: String,
        msg_id: u64,
        offsets: BTreeMap<String, u64>,
    ) -> Result<(), Closed> {
        for (key, offset) in offsets {
            let news = lock(&self.logs).commit(&key, offset);
            // A commit that replication refuses (only while stopping) still holds here: the
            // client is told it is done, which a commit never needs to be more than.
            if news && !self.replication.offer(Item::Commit { key, offset }).await {
                tracing::warn!("a commit was not replicated");
            }
        }
        self.rpc
            .send(&client, Payload::CommitOffsetsOk, Some(msg_id))
            .await
    }

    /// A client's `list_committed_offsets`: what this node knows.
    ///
    /// # Errors
    ///
    /// When the output is gone.
    pub async fn list(&self, client: String, msg_id: u64, keys: Vec<String>) -> Result<(), Closed> {
        let offsets = {
            let logs = lock(&self.logs);
            keys.into_iter()
                .filter_map(|key| logs.committed(&key).map(|offset| (key, offset)))
                .collect()
        };
        let payload = Payload::ListCommittedOffsetsOk { offsets };
        self.rpc.send(&client, payload, Some(msg_id)).await
    }

    /// A peer's replication batch: applied, then acknowledged.
    ///
    /// # Errors
    ///
    /// When the output is gone.
    pub async fn replicate(&self, src: String, batch: Replicate) -> Result<(), Closed> {
        {
            let mut logs = lock(&self.logs);
            for (key, offset, msg) in &batch.entries {
                logs.insert(key, *offset, *msg);
            }
            for (key, offset) in &batch.commits {
                logs.commit(key, *offset);
            }
        }
        let ack = Payload::Replicated { id: batch.id };
        self.rpc.send(&src, ack, None).await
    }

    /// A peer acknowledged replication batch `id`.
    pub fn replicated(&self, src: &str, id: u64) {
        self.replication.acknowledged(src, id);
    }

    /// Stops: forwards still waiting are abandoned (no reply can arrive once the input has
    /// ended), replication sends what is queued once. Returns the counts.
    pub async fn finish(mut self) -> KafkaStats {
        self.forwards.shutdown().await;
        KafkaStats {
            replication: self.replication.finish().await,
            ..self.stats
        }
    }

    async fn append(&mut self, key: &str, msg: i64) -> Option<u64> {
        let offset = lock(&self.logs).append(key, msg);
        self.stats.appended += 1;
        let entry = Item::Entry {
            key: key.to_owned(),
            offset,
            msg,
        };
        // Acknowledged only once the entry is on its way to every peer.
        self.replication.offer(entry).await.then_some(offset)
    }

    fn remember(&mut self, id: (String, u64), offset: u64) {
        if self.forwarded_order.len() >= FORWARDED_WINDOW
            && let Some(oldest) = self.forwarded_order.pop_front()
        {
            self.forwarded.remove(&oldest);
        }
        self.forwarded_order.push_back(id.clone());
        self.forwarded.insert(id, offset);
    }
}

fn stopping() -> Payload {
    Payload::Error {
        code: ErrorCode::Crash as u16,
        text: "the node is stopping".into(),
    }
}

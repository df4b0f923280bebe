//! Kafka replication on the pipeline, shaped like broadcast's gossip: what a node must tell its
//! peers (entries of the logs it leads, commits it received) goes into one `Block` sink ->
//! [`batch`](crate::pipeline::PipelineExt::batch) (size or linger) ->
//! [`fan_out`](crate::pipeline::PipelineExt::fan_out) to one `Block` sink per peer, each drained
//! by a link task that numbers its batches and keeps each one pending, re-sending it after
//! `retry_after`, until the peer acknowledges it.
//!
//! Applying a batch is idempotent (entries are placed by offset, commits merged by max), so a
//! re-sent batch that had arrived after all does no harm. Nothing is dropped: a full sink makes
//! the producer (the dispatcher, before it answers `send_ok`) wait.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use futures::StreamExt;
use tokio::sync::Notify;
use tokio::task::JoinHandle;
use tokio::time::{Instant, sleep_until};

use crate::node::protocol::{Payload, Replicate};
use crate::node::rpc::Rpc;
use crate::pipeline::PipelineExt;
use crate::sinks::{Emission, OverflowPolicy, SinkHandle, SinkStream, bounded};

/// Most items in one replication message.
const BATCH_MAX: usize = 1024;
/// Batches queued per peer before the fan-out waits.
const PEER_QUEUE: usize = 256;

/// One thing to tell every peer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Item {
    /// An entry of a log this node leads.
    Entry {
        /// The log.
        key: String,
        /// Its offset.
        offset: u64,
        /// The message.
        msg: i64,
    },
    /// A commit a client made on this node.
    Commit {
        /// The log.
        key: String,
        /// Processed up to here (inclusive).
        offset: u64,
    },
}

type SharedBatch = Arc<[Item]>;

/// What replication sent, once it has stopped.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ReplicationStats {
    /// Messages carrying a new batch.
    pub batches: u64,
    /// Messages re-sending a batch that was not acknowledged in time.
    pub retransmissions: u64,
    /// Batches never acknowledged (abandoned at the end).
    pub unacknowledged: u64,
}

/// The running replication of one node.
#[derive(Debug)]
pub struct Replication {
    input: SinkHandle<Item>,
    links: HashMap<String, Arc<ReplicaLink>>,
    task: JoinHandle<ReplicationStats>,
}

#[derive(Debug)]
struct ReplicaLink {
    peer: String,
    state: Mutex<LinkState>,
    /// Wakes the link task when an acknowledgement settled something.
    changed: Notify,
}

#[derive(Debug, Default)]
struct LinkState {
    last_id: u64,
    /// Batches not yet acknowledged, by id, with when each was last sent.
    pending: BTreeMap<u64, (Replicate, Instant)>,
    stats: ReplicationStats,
}

impl ReplicaLink {
    fn lock(&self) -> MutexGuard<'_, LinkState> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl Replication {
    /// Starts the pipeline and one link per peer of `rpc`'s node among `node_ids`.
    pub fn start(rpc: &Rpc, node_ids: &[String], linger: Duration, retry_after: Duration) -> Self {
        let me = rpc.me().to_string();
        let mut links = HashMap::new();
        let mut peer_sinks = Vec::new();
        let mut link_tasks = Vec::new();
        for peer in node_ids.iter().filter(|id| **id != me) {
            let link = Arc::new(ReplicaLink {
                peer: peer.clone(),
                state: Mutex::new(LinkState::default()),
                changed: Notify::new(),
            });
            let (sink, batches) = bounded::<SharedBatch>(PEER_QUEUE, OverflowPolicy::Block);
            peer_sinks.push(sink);
            link_tasks.push(tokio::spawn(run_link(
                Arc::clone(&link),
                batches,
                rpc.clone(),
                retry_after,
            )));
            links.insert(peer.clone(), link);
        }
        let (input, items) = bounded::<Item>(BATCH_MAX, OverflowPolicy::Block);
        let reports = items
            .batch(BATCH_MAX, linger)
            .map(SharedBatch::from)
            .fan_out(peer_sinks);
        let task = tokio::spawn(async move {
            {
                let mut reports = std::pin::pin!(reports);
                while let Some(report) = reports.next().await {
                    if !report.all_queued() {
                        tracing::warn!("a replication link is gone; batch refused");
                    }
                }
            }
            let mut total = ReplicationStats::default();
            for task in link_tasks {
                match task.await {
                    Ok(stats) => {
                        total.batches += stats.batches;
                        total.retransmissions += stats.retransmissions;
                        total.unacknowledged += stats.unacknowledged;
                    }
                    Err(error) => tracing::error!(%error, "a replication link task failed"),
                }
            }
            total
        });
        Replication { input, links, task }
    }

    /// Hands `item` to every peer's link (waits while the pipeline is full); false when
    /// replication has stopped.
    pub async fn offer(&self, item: Item) -> bool {
        if self.links.is_empty() {
            return true; // A single node has nobody to tell.
        }
        match self.input.emit(item).await {
            Emission::Queued => true,
            refused => {
                tracing::warn!(outcome = refused.kind(), "replication refused an item");
                false
            }
        }
    }

    /// `peer` has applied batch `id`.
    pub fn acknowledged(&self, peer: &str, id: u64) {
        match self.links.get(peer) {
            Some(link) => {
                link.lock().pending.remove(&id);
                link.changed.notify_one();
            }
            None => tracing::warn!(peer, "a replication ack from a node that is not a peer"),
        }
    }

    /// Closes the input; waits for what is queued to go out once (pending retries are
    /// abandoned) and returns the counts.
    pub async fn finish(self) -> ReplicationStats {
        let Replication { input, task, .. } = self;
        drop(input);
        task.await.unwrap_or_else(|error| {
            tracing::error!(%error, "the replication task failed");
            ReplicationStats::default()
        })
    }
}

fn to_message(id: u64, batch: &[Item]) -> Replicate {
    let mut message = Replicate {
        id,
        ..Replicate::default()
    };
    for item in batch {
        match item {
            Item::Entry { key, offset, msg } => message.entries.push((key.clone(), *offset, *msg)),
            Item::Commit { key, offset } => {
                let committed = message.commits.entry(key.clone()).or_insert(*offset);
                *committed = (*committed).max(*offset);
            }
        }
    }
    message
}

/// Sends each new batch to the link's peer and re-sends overdue ones until acknowledged.
async fn run_link(
    link: Arc<ReplicaLink>,
    mut batches: SinkStream<SharedBatch>,
    rpc: Rpc,
    retry_after: Duration,
) -> ReplicationStats {
    loop {
        let deadline = link
            .lock()
            .pending
            .values()
            .map(|(_, sent_at)| *sent_at + retry_after)
            .min();
        // A fixed polling order, so a run on a paused clock repeats exactly.
        let due: Vec<Replicate> = tokio::select! {
            biased;
            batch = batches.next() => match batch {
                Some(batch) => {
                    let mut state = link.lock();
                    state.last_id += 1;
                    state.stats.batches += 1;
                    let message = to_message(state.last_id, &batch);
                    state.pending.insert(message.id, (message.clone(), Instant::now()));
                    vec![message]
                }
                None => break,
            },
            () = link.changed.notified() => Vec::new(),
            () = sleep_until_some(deadline) => {
                let now = Instant::now();
                let mut state = link.lock();
                let overdue: Vec<Replicate> = state
                    .pending
                    .values_mut()
                    .filter(|(_, sent_at)| *sent_at + retry_after <= now)
                    .map(|(message, sent_at)| {
                        *sent_at = now;
                        message.clone()
                    })
                    .collect();
                state.stats.retransmissions += overdue.len() as u64;
                overdue
            }
        };
        for message in due {
            if rpc
                .send(&link.peer, Payload::Replicate(message), None)
                .await
                .is_err()
            {
                tracing::warn!(peer = link.peer, "stdout is gone; replication stops");
                return link.lock().stats;
            }
        }
    }
    let mut state = link.lock();
    state.stats.unacknowledged = state.pending.len() as u64;
    state.stats
}

async fn sleep_until_some(deadline: Option<Instant>) {
    match deadline {
        Some(deadline) => sleep_until(deadline).await,
        None => std::future::pending().await,
    }
}

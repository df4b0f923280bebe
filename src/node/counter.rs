//! The grow-only counter (Gossip Glomers 4) on `seq-kv`.
//!
//! Each node is the only writer of its own key (`g-counter/<node>`), which holds that node's
//! running total. Totals only grow, so a node's writes are strictly increasing and a later one
//! always supersedes an earlier one, whatever order seq-kv puts them in.
//!
//! - **add**: the local total grows at once; the add is acknowledged once a write of a total that
//!   includes it has been confirmed. Adds go through a `Block` sink and
//!   [`batch`](crate::pipeline::PipelineExt::batch): while one write is in flight the next adds
//!   queue, and the next write covers them all (one write per batch, not per add).
//! - **read**: seq-kv may serve any version from the last one this node saw to the newest, so a
//!   plain read can be stale forever. A refresh first writes a fresh value to the node's scratch
//!   key (a state change, which moves this node to the newest version), then reads the peers'
//!   keys, which are now at least that new. Reads are batched the same way, and a refresh that
//!   *started* less than [`REFRESH_PERIOD`] ago answers them from its result: main-phase reads may
//!   be a little stale (the checker only judges final reads), while a final read, which comes
//!   after 10 s without operations, always waits for a refresh that starts after it.
//!
//! No per-peer link is needed: the services are never partitioned, so seq-kv is the one channel
//! every node always reaches (see docs/node-kv.md).

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use futures::StreamExt;
use futures::future::join_all;
use serde_json::Value;
use tokio::task::JoinHandle;
use tokio::time::Instant;

use super::kv::{Kv, KvError, SEQ_KV};
use super::protocol::{ErrorCode, Payload};
use super::rpc::Rpc;
use crate::pipeline::PipelineExt;
use crate::sinks::{Emission, OverflowPolicy, SinkHandle, SinkStream, bounded};

/// How long a refresh of the peers' totals answers later reads.
pub const REFRESH_PERIOD: Duration = Duration::from_millis(1000);

/// Requests waiting in each queue before the dispatcher waits (`Block`).
const QUEUE: usize = 1024;

/// A client request waiting for its answer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Waiting {
    /// The client.
    pub client: String,
    /// Its request's id.
    pub msg_id: u64,
}

/// What the counter did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CounterStats {
    /// Writes of this node's total.
    pub writes: u64,
    /// Refreshes (one scratch write plus a read per peer).
    pub refreshes: u64,
    /// Reads answered from a recent refresh.
    pub cached_reads: u64,
}

#[derive(Debug, Default)]
struct State {
    /// This node's total, including adds not yet written.
    own: i64,
    /// The highest total seq-kv confirmed.
    written: i64,
    /// The peers' totals, as last read (merged by max: totals never shrink).
    peers: BTreeMap<String, i64>,
    /// When the last refresh started.
    refreshed: Option<Instant>,
    /// Scratch writes so far: the next one writes this plus one, never seen before.
    fresh: u64,
    stats: CounterStats,
}

impl State {
    fn value(&self) -> i64 {
        self.own + self.peers.values().sum::<i64>()
    }
}

type Shared = Arc<Mutex<State>>;

fn lock(state: &Shared) -> MutexGuard<'_, State> {
    state.lock().unwrap_or_else(PoisonError::into_inner)
}

/// The running counter of one node.
#[derive(Debug)]
pub struct Counter {
    state: Shared,
    adds: SinkHandle<Waiting>,
    reads: SinkHandle<Waiting>,
    tasks: Vec<JoinHandle<()>>,
}

impl Counter {
    /// Starts the writer and the reader of node `me` among `node_ids`.
    pub fn start(rpc: &Rpc, node_ids: &[String]) -> Self {
        let me = rpc.me().to_string();
        let state = Shared::default();
        lock(&state).peers = node_ids
            .iter()
            .filter(|id| **id != me)
            .map(|id| (id.clone(), 0))
            .collect();
        let kv = Kv::new(rpc.clone(), SEQ_KV);
        let (adds, add_queue) = bounded(QUEUE, OverflowPolicy::Block);
        let (reads, read_queue) = bounded(QUEUE, OverflowPolicy::Block);
        let tasks = vec![
            tokio::spawn(run_writer(
                Arc::clone(&state),
                kv.clone(),
                rpc.clone(),
                add_queue,
            )),
            tokio::spawn(run_reader(Arc::clone(&state), kv, rpc.clone(), read_queue)),
        ];
        Counter {
            state,
            adds,
            reads,
            tasks,
        }
    }

    /// Adds `delta` now; the client is answered once seq-kv has the new total. Returns the
    /// request back if the counter is stopping.
    pub async fn add(&self, delta: i64, waiting: Waiting) -> Option<Waiting> {
        lock(&self.state).own += delta;
        emitted(self.adds.emit(waiting).await)
    }

    /// Queues a read; the client is answered after a refresh (or from a recent one).
    pub async fn read(&self, waiting: Waiting) -> Option<Waiting> {
        emitted(self.reads.emit(waiting).await)
    }

    /// Stops, and returns the counts. Requests still waiting are abandoned: the input has
    /// ended, so no service reply can arrive any more.
    pub async fn finish(self) -> CounterStats {
        let Counter { state, tasks, .. } = self;
        for task in tasks {
            task.abort();
            if let Err(error) = task.await
                && !error.is_cancelled()
            {
                tracing::error!(%error, "a counter task failed");
            }
        }
        lock(&state).stats
    }
}

fn emitted(emission: Emission<Waiting>) -> Option<Waiting> {
    emission.into_lost()
}

fn own_key(node: &str) -> String {
    format!("g-counter/{node}")
}

/// Writes this node's total once per batch of adds, then answers the batch.
async fn run_writer(state: Shared, kv: Kv, rpc: Rpc, adds: SinkStream<Waiting>) {
    let key = own_key(rpc.me());
    let mut batches = std::pin::pin!(adds.batch(QUEUE, Duration::ZERO));
    while let Some(batch) = batches.next().await {
        let (total, written) = {
            let state = lock(&state);
            (state.own, state.written)
        };
        let alone = lock(&state).peers.is_empty();
        let outcome = if total == written || alone {
            // Only adds of 0 since the last write, or a single node: nobody reads the key.
            Ok(())
        } else {
            lock(&state).stats.writes += 1;
            kv.write(&key, Value::from(total)).await
        };
        let payload = match outcome {
            Ok(()) => {
                let mut state = lock(&state);
                state.written = state.written.max(total);
                Payload::AddOk
            }
            Err(error) => {
                // The total stays in `own`: the next write carries it. Whether this one
                // landed is unknown, so the error is indefinite.
                tracing::warn!(%error, "writing the counter failed");
                Payload::Error {
                    code: ErrorCode::Crash as u16,
                    text: format!("writing the counter to seq-kv failed: {error}"),
                }
            }
        };
        if !answer(&rpc, batch, &payload).await {
            return;
        }
    }
}

/// Answers batches of reads, refreshing the peers' totals when the last refresh is old.
async fn run_reader(state: Shared, kv: Kv, rpc: Rpc, reads: SinkStream<Waiting>) {
    let me = rpc.me().to_string();
    let mut batches = std::pin::pin!(reads.batch(QUEUE, Duration::ZERO));
    while let Some(batch) = batches.next().await {
        let now = Instant::now();
        let recent = lock(&state)
            .refreshed
            .is_some_and(|started| now.duration_since(started) < REFRESH_PERIOD);
        let payload = if recent {
            let mut state = lock(&state);
            state.stats.cached_reads += batch.len() as u64;
            Payload::CounterReadOk {
                value: state.value(),
            }
        } else {
            match refresh(&state, &kv, &me, now).await {
                Ok(value) => Payload::CounterReadOk { value },
                Err(error) => {
                    tracing::warn!(%error, "refreshing the counter failed");
                    Payload::Error {
                        code: ErrorCode::TemporarilyUnavailable as u16,
                        text: format!("reading the counter from seq-kv failed: {error}"),
                    }
                }
            }
        };
        if !answer(&rpc, batch, &payload).await {
            return;
        }
    }
}

/// Scratch write, then every peer's total; returns the counter.
async fn refresh(state: &Shared, kv: &Kv, me: &str, now: Instant) -> Result<i64, KvError> {
    let (fresh, peers): (u64, Vec<String>) = {
        let mut state = lock(state);
        state.refreshed = None;
        state.fresh += 1;
        state.stats.refreshes += 1;
        (state.fresh, state.peers.keys().cloned().collect())
    };
    if peers.is_empty() {
        // A single node's own total is the whole counter.
        let mut state = lock(state);
        state.refreshed = Some(now);
        return Ok(state.value());
    }
    kv.write(&format!("g-counter/fresh/{me}"), Value::from(fresh))
        .await?;
    let totals = join_all(peers.iter().map(|peer| kv.read_total(peer))).await;
    let mut state = lock(state);
    for (peer, total) in peers.iter().zip(totals) {
        let total = total?;
        let known = state.peers.entry(peer.clone()).or_insert(0);
        *known = (*known).max(total);
    }
    state.refreshed = Some(now);
    Ok(state.value())
}

impl Kv {
    /// A node's total: 0 while it has written none.
    async fn read_total(&self, node: &str) -> Result<i64, KvError> {
        match self.read(&own_key(node)).await {
            Ok(value) => Ok(value.as_i64().unwrap_or_else(|| {
                tracing::warn!(node, %value, "a counter total is not an integer");
                0
            })),
            Err(KvError::Missing) => Ok(0),
            Err(error) => Err(error),
        }
    }
}

/// Sends `payload` to every waiting client; false once the output is gone.
async fn answer(rpc: &Rpc, batch: Vec<Waiting>, payload: &Payload) -> bool {
    for waiting in batch {
        let sent = rpc
            .send(&waiting.client, payload.clone(), Some(waiting.msg_id))
            .await;
        if sent.is_err() {
            return false;
        }
    }
    true
}

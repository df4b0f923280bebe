//! The gossip pipeline: values to spread -> `dedup_by_key` -> `batch` (size or linger) ->
//! `fan_out` to one bounded sink per peer, each drained by its link task ([`run_peer_link`]).
//!
//! Every sink here is `Block`: a full peer sink stalls the fan-out, which stalls the values sink,
//! which makes the dispatcher wait before it acknowledges a broadcast. Nothing is dropped, so a
//! value acknowledged to a client is always on its way; the waits are counted in the sinks'
//! `blocked_emits`. Only the dedup forgets, and only beyond its window (counted, and harmless: a
//! forgotten value that comes back is merely sent again).

use std::collections::HashMap;
use std::sync::Arc;

use futures::StreamExt;
use tokio::task::JoinHandle;
use tracing::Instrument;

use super::acks::{AckRoute, AckRouteStats};
use super::config::NodeConfig;
use super::link::Link;
use super::peer::{PeerLink, PeerReport, SharedBatch, run_peer_link};
use super::plan::Plan;
use super::protocol::Outbound;
use crate::pipeline::{DedupStats, PipelineExt};
use crate::sinks::{OverflowPolicy, SinkHandle, SinkStats, bounded};

/// A value on its way to peers, and the peer it came from (`None`: from a client).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Gossiped {
    /// The value.
    pub value: i64,
    /// The peer that sent it, which must not get it back.
    pub origin: Option<Arc<str>>,
}

/// The running pipeline: where to put values, and the links of every peer.
#[derive(Debug)]
pub struct GossipPipeline {
    /// The pipeline's input (`Block`).
    pub input: SinkHandle<Gossiped>,
    /// The link of every other node, by id: targets and non-targets alike, since a node must
    /// acknowledge whoever sends to it.
    pub links: HashMap<String, Arc<PeerLink>>,
    /// The ack route, if acks go via the hub.
    pub acks: Option<AckRoute>,
    task: JoinHandle<GossipReport>,
}

/// What the pipeline did, once its input is closed and every link task has ended.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct GossipReport {
    /// Values offered to the pipeline, as of the moment its input closed.
    pub input: SinkStats,
    /// What the dedup passed, dropped and forgot.
    pub dedup: DedupStats,
    /// Batches fanned out.
    pub batches: u64,
    /// Batch copies a peer sink did not take (only when a link task is gone at shutdown).
    pub refused: u64,
    /// Every link.
    pub peers: Vec<PeerReport>,
    /// The ack route, if acks went via the hub.
    pub acks: Option<AckRouteStats>,
}

impl GossipPipeline {
    /// Starts the links of every other node in `node_ids` and the pipeline feeding `plan`'s
    /// targets. Must be called within a tokio runtime.
    pub fn start(
        config: &NodeConfig,
        plan: &Plan,
        me: &Arc<str>,
        node_ids: &[String],
        out: &SinkHandle<Outbound>,
    ) -> Self {
        let mut links = HashMap::new();
        let mut targets = Vec::new();
        // Non-targets get a sink too, that nothing emits to: it ends with the pipeline, and so
        // does their task, which meanwhile sends the acks they owe.
        let mut idle = Vec::new();
        let mut link_tasks = Vec::new();
        let acks = match &plan.hub {
            Some(hub) if config.ack_via_hub && node_ids.len() > 2 => Some(AckRoute::start(
                me,
                hub,
                config.ack_gather,
                config.peer_capacity,
                out,
            )),
            _ => None,
        };
        for peer in node_ids.iter().filter(|id| id.as_str() != &**me) {
            let link = Arc::new(PeerLink::new(
                Arc::from(peer.as_str()),
                Link::new(config.retry_after, config.ack_delay),
            ));
            let (handle, batches) =
                bounded::<SharedBatch>(config.peer_capacity, OverflowPolicy::Block);
            if plan.targets.contains(peer) {
                targets.push(handle);
            } else {
                idle.push(handle);
            }
            // In the current span: an in-process node's tasks log under its `node` span.
            link_tasks.push(tokio::spawn(
                run_peer_link(
                    Arc::clone(me),
                    Arc::clone(&link),
                    batches,
                    acks.as_ref().map(|acks| acks.collect.clone()),
                    out.clone(),
                )
                .in_current_span(),
            ));
            links.insert(peer.clone(), link);
        }
        let (input, values) = bounded::<Gossiped>(config.peer_capacity, OverflowPolicy::Block);
        let deduped = values.dedup_by_key(config.dedup_window, |gossiped| gossiped.value);
        let dedup = deduped.counters();
        let reports = deduped
            .batch(config.batch_max, plan.linger)
            .map(SharedBatch::from)
            .fan_out(targets);
        let task = tokio::spawn(
            async move {
                let mut report = GossipReport::default();
                {
                    let mut reports = std::pin::pin!(reports);
                    while let Some(fanned_out) = reports.next().await {
                        report.batches += 1;
                        for outcome in fanned_out.outcomes {
                            if let Some(batch) = outcome.into_lost() {
                                report.refused += 1;
                                tracing::warn!(
                                    values = batch.len(),
                                    "a peer link is gone; batch refused"
                                );
                            }
                        }
                    }
                } // The fan-out and its peer handles go here: the link tasks see their sinks end.
                drop(idle);
                for task in link_tasks {
                    match task.await {
                        Ok(peer) => report.peers.push(peer),
                        Err(error) => tracing::error!(%error, "a peer link task failed"),
                    }
                }
                report.dedup = dedup.snapshot();
                report
            }
            .in_current_span(),
        );
        GossipPipeline {
            input,
            links,
            acks,
            task,
        }
    }

    /// Closes the input and waits for everything queued to go out; returns the report.
    pub async fn finish(self) -> GossipReport {
        let GossipPipeline {
            input, task, acks, ..
        } = self;
        // Taken before the handle goes: offers are final now; deliveries are still draining.
        let input_stats = input.stats();
        drop(input);
        match task.await {
            Ok(report) => GossipReport {
                input: input_stats,
                // The link tasks have ended, so the route drains and ends too.
                acks: match acks {
                    Some(acks) => Some(acks.finish().await),
                    None => None,
                },
                ..report
            },
            Err(error) => {
                tracing::error!(%error, "the gossip pipeline task failed");
                GossipReport::default()
            }
        }
    }
}

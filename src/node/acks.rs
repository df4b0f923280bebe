//! Acknowledgements that take the long way round, when that is cheaper.
//!
//! When every node sends to every other one (the fast profile), each link ends a burst owing
//! its peer an acknowledgement that no outgoing message will carry: one bare ack per link, about
//! N² messages. Instead, link tasks hand those acks to this node's collector, which gathers them
//! (`batch`, linger `ack_gather`) into one digest for the hub; the hub gathers the entries of all
//! digests the same way and sends each node one message with every ack meant for it: about 2N
//! messages. Acks travel further (two hops and two gathers), so the senders' `retry_after` must
//! cover that. An ack wanted *now* (the peer is re-sending, perhaps because the hub is cut off)
//! never comes this way: the link sends it straight back.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use tokio::task::JoinHandle;
use tracing::Instrument;

use super::protocol::{AckDigest, Body, Envelope, Gossip, Outbound, Payload};
use crate::pipeline::PipelineExt;
use crate::sinks::{Emission, OverflowPolicy, SinkHandle, SinkStream, bounded};

/// An acknowledgement this node owes `peer`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AckEntry {
    /// The peer whose link it acknowledges.
    pub peer: Arc<str>,
    /// Cumulative: everything up to this arrived.
    pub ack: u64,
}

/// On the hub: an acknowledgement from node `from` to pass on to node `dest`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RelayEntry {
    /// The node whose link is acknowledged, and who gets the message.
    pub dest: String,
    /// The node that acknowledges.
    pub from: String,
    /// Cumulative: everything up to this arrived at `from`.
    pub ack: u64,
}

/// Messages the ack route sent, once it has finished.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct AckRouteStats {
    /// Digests sent to the hub.
    pub digests: u64,
    /// Messages the hub sent with acks passed on (and its own).
    pub relayed: u64,
    /// Gathered acks that went straight to their peer, as there was only one.
    pub direct: u64,
}

/// The running ack route of one node.
#[derive(Debug)]
pub struct AckRoute {
    /// Where link tasks put the acks they owe.
    pub collect: SinkHandle<AckEntry>,
    /// On the hub, where received digests are unpacked; `None` on other nodes.
    pub relay: Option<SinkHandle<RelayEntry>>,
    tasks: Vec<JoinHandle<AckRouteStats>>,
}

impl AckRoute {
    /// Starts the collector of node `me` (and, on the hub, the relay). Gathers for `gather`.
    pub fn start(
        me: &Arc<str>,
        hub: &str,
        gather: Duration,
        capacity: usize,
        out: &SinkHandle<Outbound>,
    ) -> Self {
        let (collect, entries) = bounded::<AckEntry>(capacity, OverflowPolicy::Block);
        let mut tasks = Vec::new();
        let relay = if &**me == hub {
            let (relay, relayed) = bounded::<RelayEntry>(capacity, OverflowPolicy::Block);
            // In the current span: an in-process node's tasks log under its `node` span.
            tasks.push(tokio::spawn(
                run_relay(Arc::clone(me), relayed, gather, out.clone()).in_current_span(),
            ));
            Some(relay)
        } else {
            None
        };
        tasks.push(tokio::spawn(
            run_collector(
                Arc::clone(me),
                Arc::from(hub),
                entries,
                relay.clone(),
                gather,
                out.clone(),
            )
            .in_current_span(),
        ));
        AckRoute {
            collect,
            relay,
            tasks,
        }
    }

    /// Drops this route's own handles and waits for both tasks to drain (they end once the
    /// link tasks have dropped theirs).
    pub async fn finish(self) -> AckRouteStats {
        let AckRoute {
            collect,
            relay,
            tasks,
        } = self;
        drop((collect, relay));
        let mut total = AckRouteStats::default();
        for task in tasks {
            match task.await {
                Ok(stats) => {
                    total.digests += stats.digests;
                    total.relayed += stats.relayed;
                    total.direct += stats.direct;
                }
                Err(error) => tracing::error!(%error, "an ack route task failed"),
            }
        }
        total
    }
}

/// Gathers the acks this node owes; sends them as one digest to the hub, or straight to the
/// peer when there is only one (one message either way), or, on the hub, into the relay.
async fn run_collector(
    me: Arc<str>,
    hub: Arc<str>,
    entries: SinkStream<AckEntry>,
    relay: Option<SinkHandle<RelayEntry>>,
    gather: Duration,
    out: SinkHandle<Outbound>,
) -> AckRouteStats {
    let mut stats = AckRouteStats::default();
    let mut batches = std::pin::pin!(entries.batch(4096, gather));
    while let Some(batch) = batches.next().await {
        let mut owed = BTreeMap::new();
        for entry in batch {
            let ack = owed.entry(entry.peer.to_string()).or_insert(0);
            *ack = (*ack).max(entry.ack);
        }
        if let Some(relay) = &relay {
            for (dest, ack) in owed {
                let entry = RelayEntry {
                    dest,
                    from: me.to_string(),
                    ack,
                };
                if relay.emit(entry).await.into_lost().is_some() {
                    return stats;
                }
            }
            continue;
        }
        let message = if owed.len() == 1 {
            stats.direct += 1;
            let Some((peer, ack)) = owed.pop_first() else {
                continue;
            };
            envelope(
                &me,
                peer,
                Payload::Gossip(Gossip {
                    ack,
                    ..Gossip::default()
                }),
            )
        } else {
            stats.digests += 1;
            let digest = AckDigest {
                to: owed,
                from: BTreeMap::new(),
            };
            envelope(&me, hub.to_string(), Payload::Acks(digest))
        };
        if !emitted(out.emit(message).await) {
            break;
        }
    }
    stats
}

/// On the hub: gathers the entries of every digest and sends each node one message with all
/// the acks meant for it.
async fn run_relay(
    me: Arc<str>,
    entries: SinkStream<RelayEntry>,
    gather: Duration,
    out: SinkHandle<Outbound>,
) -> AckRouteStats {
    let mut stats = AckRouteStats::default();
    let mut batches = std::pin::pin!(entries.batch(4096, gather));
    while let Some(batch) = batches.next().await {
        let mut by_dest: BTreeMap<String, BTreeMap<String, u64>> = BTreeMap::new();
        for entry in batch {
            let ack = by_dest
                .entry(entry.dest)
                .or_default()
                .entry(entry.from)
                .or_insert(0);
            *ack = (*ack).max(entry.ack);
        }
        for (dest, from) in by_dest {
            stats.relayed += 1;
            let digest = AckDigest {
                to: BTreeMap::new(),
                from,
            };
            if !emitted(out.emit(envelope(&me, dest, Payload::Acks(digest))).await) {
                return stats;
            }
        }
    }
    stats
}

fn envelope(me: &str, dest: String, payload: Payload) -> Outbound {
    Envelope {
        src: me.to_owned(),
        dest,
        body: Body {
            payload,
            msg_id: None,
            in_reply_to: None,
        },
    }
}

fn emitted(emission: Emission<Outbound>) -> bool {
    match emission {
        Emission::Queued => true,
        refused => {
            tracing::warn!(
                outcome = refused.kind(),
                "stdout is gone; the ack route stops"
            );
            false
        }
    }
}

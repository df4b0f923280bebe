//! The consumer of one peer's sink: the task that turns batches into gossip messages on that
//! link, and keeps re-sending and acknowledging on time.

use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use futures::StreamExt;
use tokio::sync::Notify;
use tokio::time::{Instant, sleep_until};

use super::acks::AckEntry;
use super::gossip::Gossiped;
use super::link::{Due, Link, LinkStats};
use super::protocol::{Body, Envelope, Gossip, Outbound, Payload};
use crate::sinks::{Emission, SinkHandle, SinkStats, SinkStream};

/// A batch of gossip as the fan-out hands it to every peer: shared, never copied per peer.
pub type SharedBatch = Arc<[Gossiped]>;

/// The link state of one peer, shared by its task (which sends) and the dispatcher (which
/// receives). The lock is never held across an `.await`.
#[derive(Debug)]
pub struct PeerLink {
    peer: Arc<str>,
    link: Mutex<Link>,
    /// Wakes the task when a received message changed what is due (an ack to send, or pending
    /// batches settled).
    changed: Notify,
}

impl PeerLink {
    /// The link to and from `peer`.
    pub fn new(peer: Arc<str>, link: Link) -> Self {
        PeerLink {
            peer,
            link: Mutex::new(link),
            changed: Notify::new(),
        }
    }

    /// The peer's id.
    pub fn peer(&self) -> &str {
        &self.peer
    }

    /// Takes in a gossip message from the peer (its ack and sequence numbers).
    pub fn receive(&self, gossip: &Gossip) {
        self.lock().receive(gossip, Instant::now());
        self.changed.notify_one();
    }

    /// Settles outgoing batches with an ack that came another way (passed on by the hub).
    pub fn acknowledge(&self, ack: u64) {
        self.lock().acknowledge(ack);
        self.changed.notify_one();
    }

    fn lock(&self) -> MutexGuard<'_, Link> {
        // A panic elsewhere cannot leave a Link half-updated in a way that loses values: every
        // method finishes its own bookkeeping before it returns. Keep serving.
        self.link.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// What one peer's task did, once it ends.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PeerReport {
    /// The peer.
    pub peer: String,
    /// Messages sent on the link.
    pub link: LinkStats,
    /// The peer's batch sink (policy `Block`: `blocked_emits` counts fan-outs that waited).
    pub queue: SinkStats,
    /// Batches still unacknowledged at the end.
    pub unacknowledged: usize,
}

/// Runs the link to one peer until its batch sink ends: new batches go out at once (minus the
/// values that came from that peer), pending ones are re-sent when overdue, and a bare ack goes
/// out when one is owed and nothing else carried it: through `acks` (the ack route) if given,
/// unless it is urgent. Messages go to `out`, the stdout sink.
pub async fn run_peer_link(
    me: Arc<str>,
    link: Arc<PeerLink>,
    mut batches: SinkStream<SharedBatch>,
    acks: Option<SinkHandle<AckEntry>>,
    out: SinkHandle<Outbound>,
) -> PeerReport {
    loop {
        let deadline = link.lock().next_deadline();
        // Polled in a fixed order (not tokio's random one), so that a run on a paused clock is
        // the same for the same seed.
        let batch = tokio::select! {
            biased;
            batch = batches.next() => match batch {
                Some(batch) => Some(batch),
                None => break,
            },
            () = link.changed.notified() => None,
            () = sleep_until_some(deadline) => None,
        };
        let now = Instant::now();
        let values: Vec<i64> = batch
            .iter()
            .flat_map(|batch| batch.iter())
            // The hub never sends a value back to the node it came from.
            .filter(|gossiped| gossiped.origin.as_deref() != Some(link.peer()))
            .map(|gossiped| gossiped.value)
            .collect();
        let (gossip, kind) = if !values.is_empty() {
            (link.lock().send(values, now), "batch")
        } else {
            let due = link.lock().due(now);
            match due {
                None => continue,
                Some(Due::Resend(gossip)) => (gossip, "retransmission"),
                Some(Due::Ack { ack, urgent }) => match &acks {
                    Some(acks) if !urgent => {
                        let entry = AckEntry {
                            peer: Arc::from(link.peer()),
                            ack,
                        };
                        if acks.emit(entry).await.into_lost().is_some() {
                            tracing::warn!(peer = link.peer(), "the ack route is gone");
                        }
                        continue;
                    }
                    _ => {
                        let bare = Gossip {
                            ack,
                            ..Gossip::default()
                        };
                        (bare, "bare ack")
                    }
                },
            }
        };
        tracing::debug!(
            peer = link.peer(),
            kind,
            seq = ?gossip.seq,
            ack = gossip.ack,
            values = gossip.values.len(),
            "gossip out"
        );
        let envelope = Envelope {
            src: me.to_string(),
            dest: link.peer().to_owned(),
            body: Body {
                payload: Payload::Gossip(gossip),
                msg_id: None,
                in_reply_to: None,
            },
        };
        match out.emit(envelope).await {
            Emission::Queued => {}
            refused => {
                tracing::warn!(
                    peer = link.peer(),
                    outcome = refused.kind(),
                    "stdout is gone; the link stops"
                );
                break;
            }
        }
    }
    let state = link.lock();
    PeerReport {
        peer: link.peer().to_owned(),
        link: state.stats(),
        queue: batches.stats(),
        unacknowledged: state.pending(),
    }
}

async fn sleep_until_some(deadline: Option<Instant>) {
    match deadline {
        Some(deadline) => sleep_until(deadline).await,
        None => std::future::pending().await,
    }
}

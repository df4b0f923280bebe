//! One directed pair of gossip links, as a state machine with no I/O and no clock of its own:
//! the caller passes `now`, so the same code runs on tokio's clock, a paused clock or a virtual one.
//!
//! Outbound, every batch gets the next sequence number and stays *pending* until the peer
//! acknowledges it. Acknowledgements are cumulative ("everything up to k arrived") and ride on
//! the next message in the opposite direction; only when nothing has gone that way for
//! `ack_delay` is one [due](Link::due) on its own (sent directly, or gathered with others and
//! passed on by the hub: see [`acks`](super::acks)). A pending batch older than `retry_after` is
//! sent again, together with every other pending one, as one message covering their whole range:
//! under a partition the values keep being offered until the link heals and they arrive.
//!
//! The test `an_acknowledgement_riding_on_a_reply_clears_pending` below shows
//! an acknowledgement riding on a reply.

use std::collections::{BTreeMap, HashSet};
use std::time::Duration;

use tokio::time::Instant;

use super::protocol::{Gossip, SeqRange};

/// The state of the links to and from one peer.
#[derive(Debug)]
pub struct Link {
    retry_after: Duration,
    ack_delay: Duration,
    /// The last sequence number given to an outgoing batch.
    last_seq: u64,
    /// Outgoing batches not yet acknowledged, by sequence number. Their send times never
    /// decrease with the sequence number, so the first one is the most overdue.
    pending: BTreeMap<u64, Pending>,
    /// Every incoming sequence number up to this one has arrived.
    received: u64,
    /// Incoming ranges that arrived beyond a gap, `first -> last`.
    received_beyond_gap: BTreeMap<u64, u64>,
    /// Whether the peer has not been told about everything that arrived.
    ack_owed: bool,
    /// Whether the owed ack is wanted now: the peer sent again what had arrived, so it did
    /// not hear the last one. It goes straight back rather than by any longer way.
    ack_urgent: bool,
    /// When a bare acknowledgement goes out if no other message carries it first.
    ack_due: Option<Instant>,
    stats: LinkStats,
}

#[derive(Debug)]
struct Pending {
    values: Vec<i64>,
    sent_at: Instant,
}

/// Something a link must send without new input.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Due {
    /// Every pending batch again, in one message.
    Resend(Gossip),
    /// An acknowledgement (cumulative) that must go out on its own.
    Ack {
        /// Everything up to this arrived.
        ack: u64,
        /// The peer is re-sending: send it directly, now.
        urgent: bool,
    },
}

/// What a link has sent, for the node's report.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct LinkStats {
    /// Messages carrying a new batch.
    pub batches: u64,
    /// Messages re-sending pending batches after `retry_after`.
    pub retransmissions: u64,
    /// Bare acknowledgements.
    pub bare_acks: u64,
    /// Values carried, counting every copy.
    pub values_sent: u64,
}

impl Link {
    /// A link that re-sends after `retry_after` and acknowledges on its own after `ack_delay`.
    pub fn new(retry_after: Duration, ack_delay: Duration) -> Self {
        Link {
            retry_after,
            ack_delay,
            last_seq: 0,
            pending: BTreeMap::new(),
            received: 0,
            received_beyond_gap: BTreeMap::new(),
            ack_owed: false,
            ack_urgent: false,
            ack_due: None,
            stats: LinkStats::default(),
        }
    }

    /// The message that sends `values` as a new batch, with the acknowledgement owed to the peer.
    /// If pending batches are overdue, they ride along: one message covers them all.
    pub fn send(&mut self, values: Vec<i64>, now: Instant) -> Gossip {
        self.last_seq += 1;
        self.stats.batches += 1;
        self.pending.insert(
            self.last_seq,
            Pending {
                values,
                sent_at: now,
            },
        );
        if self.retry_is_due(now) {
            self.stats.batches -= 1;
            return self.resend_pending(now);
        }
        let values = self.pending[&self.last_seq].values.clone();
        self.stats.values_sent += values.len() as u64;
        Gossip {
            seq: Some(SeqRange(self.last_seq, self.last_seq)),
            values,
            ack: self.take_ack(),
        }
    }

    /// Takes in a message from the peer: its acknowledgement settles pending batches, and its
    /// sequence numbers are recorded to be acknowledged. The values are the caller's business.
    pub fn receive(&mut self, gossip: &Gossip, now: Instant) {
        self.acknowledged(gossip.ack);
        if let Some(range) = gossip.seq {
            self.record(range, now);
        }
    }

    /// What is due at `now`, if anything: pending batches to re-send, or an acknowledgement that
    /// no outgoing message carried in time.
    pub fn due(&mut self, now: Instant) -> Option<Due> {
        if self.retry_is_due(now) {
            return Some(Due::Resend(self.resend_pending(now)));
        }
        if self.ack_owed && self.ack_due.is_some_and(|due| due <= now) {
            self.stats.bare_acks += 1;
            let urgent = self.ack_urgent;
            return Some(Due::Ack {
                ack: self.take_ack(),
                urgent,
            });
        }
        None
    }

    /// Settles pending batches with an acknowledgement that came another way (relayed).
    pub fn acknowledge(&mut self, ack: u64) {
        self.acknowledged(ack);
    }

    /// When [`due`](Self::due) will next have something to send, if ever without new input.
    pub fn next_deadline(&self) -> Option<Instant> {
        let retry = self
            .pending
            .values()
            .next()
            .map(|oldest| oldest.sent_at + self.retry_after);
        let ack = self.ack_due.filter(|_| self.ack_owed);
        match (retry, ack) {
            (Some(retry), Some(ack)) => Some(retry.min(ack)),
            (retry, ack) => retry.or(ack),
        }
    }

    /// Outgoing batches not yet acknowledged.
    pub fn pending(&self) -> usize {
        self.pending.len()
    }

    /// What this link has sent so far.
    pub fn stats(&self) -> LinkStats {
        self.stats
    }

    fn retry_is_due(&self, now: Instant) -> bool {
        self.pending
            .values()
            .next()
            .is_some_and(|oldest| oldest.sent_at + self.retry_after <= now)
    }

    /// One message covering every pending batch, their values merged.
    fn resend_pending(&mut self, now: Instant) -> Gossip {
        let first = self.pending.keys().next().copied().unwrap_or(self.last_seq);
        let mut seen = HashSet::new();
        let mut values = Vec::new();
        for pending in self.pending.values_mut() {
            pending.sent_at = now;
            values.extend(pending.values.iter().filter(|value| seen.insert(**value)));
        }
        self.stats.retransmissions += 1;
        self.stats.values_sent += values.len() as u64;
        Gossip {
            seq: Some(SeqRange(first, self.last_seq)),
            values,
            ack: self.take_ack(),
        }
    }

    fn take_ack(&mut self) -> u64 {
        self.ack_owed = false;
        self.ack_urgent = false;
        self.ack_due = None;
        self.received
    }

    fn acknowledged(&mut self, ack: u64) {
        while let Some(entry) = self.pending.first_entry() {
            if *entry.key() > ack {
                break;
            }
            entry.remove();
        }
    }

    fn record(&mut self, range: SeqRange, now: Instant) {
        let (first, last) = (range.first(), range.last());
        if first <= self.received {
            // The peer sent again something that had arrived: it is waiting for our
            // acknowledgement, so it goes out now rather than after the usual delay.
            self.ack_due = Some(now);
            self.ack_urgent = true;
        } else if self.ack_due.is_none() {
            self.ack_due = Some(now + self.ack_delay);
        }
        self.ack_owed = true;
        if first <= self.received + 1 {
            self.received = self.received.max(last);
        } else {
            let known = self.received_beyond_gap.entry(first).or_insert(last);
            *known = (*known).max(last);
        }
        // Ranges that arrived beyond a gap join the prefix once the gap is filled.
        while let Some(entry) = self.received_beyond_gap.first_entry() {
            if *entry.key() > self.received + 1 {
                break;
            }
            self.received = self.received.max(entry.remove());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_acknowledgement_riding_on_a_reply_clears_pending() {
        use crate::node::link::Link;
        use std::time::Duration;
        use tokio::time::Instant;

        let now = Instant::now();
        let (mut a, mut b) = (
            Link::new(Duration::from_secs(3), Duration::from_secs(2)),
            Link::new(Duration::from_secs(3), Duration::from_secs(2)),
        );
        let batch = a.send(vec![7], now);
        b.receive(&batch, now);
        let reply = b.send(vec![8], now); // carries b's acknowledgement of `batch`
        a.receive(&reply, now);
        assert_eq!(a.pending(), 0);
    }

    const RETRY: Duration = Duration::from_secs(3);
    const ACK_DELAY: Duration = Duration::from_secs(2);

    fn link() -> Link {
        Link::new(RETRY, ACK_DELAY)
    }

    #[test]
    fn a_new_batch_gets_the_next_sequence_number_and_stays_pending() {
        let now = Instant::now();
        let mut link = link();
        assert_eq!(
            link.send(vec![1, 2], now),
            Gossip {
                seq: Some(SeqRange(1, 1)),
                values: vec![1, 2],
                ack: 0
            }
        );
        assert_eq!(link.send(vec![3], now).seq, Some(SeqRange(2, 2)));
        assert_eq!(link.pending(), 2);
        assert_eq!(link.next_deadline(), Some(now + RETRY));
    }

    #[test]
    fn a_cumulative_ack_settles_every_batch_up_to_it() {
        let now = Instant::now();
        let mut link = link();
        for value in 0..3 {
            let _sent = link.send(vec![value], now);
        }
        link.receive(
            &Gossip {
                ack: 2,
                ..Gossip::default()
            },
            now,
        );
        assert_eq!(link.pending(), 1);
        link.receive(
            &Gossip {
                ack: 3,
                ..Gossip::default()
            },
            now,
        );
        assert_eq!(link.pending(), 0);
        assert_eq!(link.next_deadline(), None);
    }

    #[test]
    fn overdue_batches_are_resent_together_until_acknowledged() {
        let start = Instant::now();
        let mut link = link();
        let _first = link.send(vec![1], start);
        let _second = link.send(vec![2, 1], start + Duration::from_secs(1));
        assert_eq!(link.due(start + RETRY - Duration::from_millis(1)), None);
        let Some(Due::Resend(resent)) = link.due(start + RETRY) else {
            panic!("the first batch is overdue");
        };
        assert_eq!(resent.seq, Some(SeqRange(1, 2)));
        assert_eq!(resent.values, vec![1, 2], "values are merged, each once");
        assert_eq!(link.next_deadline(), Some(start + RETRY + RETRY));
        assert_eq!(link.stats().retransmissions, 1);
    }

    #[test]
    fn a_new_batch_carries_overdue_ones_along() {
        let start = Instant::now();
        let mut link = link();
        let _lost = link.send(vec![1], start);
        let sent = link.send(vec![2], start + RETRY);
        assert_eq!(sent.seq, Some(SeqRange(1, 2)));
        assert_eq!(sent.values, vec![1, 2]);
    }

    #[test]
    fn the_ack_rides_on_the_next_message_or_goes_alone_after_the_delay() {
        let start = Instant::now();
        let mut receiver = link();
        receiver.receive(
            &Gossip {
                seq: Some(SeqRange(1, 1)),
                values: vec![5],
                ack: 0,
            },
            start,
        );
        assert_eq!(receiver.next_deadline(), Some(start + ACK_DELAY));
        assert_eq!(
            receiver.due(start + ACK_DELAY - Duration::from_millis(1)),
            None
        );
        assert_eq!(
            receiver.due(start + ACK_DELAY),
            Some(Due::Ack {
                ack: 1,
                urgent: false
            })
        );
        assert_eq!(receiver.next_deadline(), None, "nothing more is owed");

        receiver.receive(
            &Gossip {
                seq: Some(SeqRange(2, 2)),
                values: vec![6],
                ack: 0,
            },
            start,
        );
        assert_eq!(receiver.send(vec![9], start).ack, 2, "piggybacked");
        assert_eq!(receiver.due(start + ACK_DELAY), None);
        assert_eq!(receiver.stats().bare_acks, 1);
    }

    #[test]
    fn a_gap_holds_the_ack_back_until_it_is_filled() {
        let now = Instant::now();
        let mut receiver = link();
        let arrive = |receiver: &mut Link, first, last| {
            receiver.receive(
                &Gossip {
                    seq: Some(SeqRange(first, last)),
                    values: vec![],
                    ack: 0,
                },
                now,
            );
        };
        arrive(&mut receiver, 1, 1);
        arrive(&mut receiver, 3, 3);
        assert_eq!(receiver.send(vec![], now).ack, 1);
        arrive(&mut receiver, 2, 3);
        assert_eq!(receiver.send(vec![], now).ack, 3);
    }

    #[test]
    fn a_repeat_of_what_arrived_is_acknowledged_at_once() {
        let now = Instant::now();
        let mut receiver = link();
        let batch = Gossip {
            seq: Some(SeqRange(1, 1)),
            values: vec![4],
            ack: 0,
        };
        receiver.receive(&batch, now);
        assert_eq!(
            receiver.due(now + ACK_DELAY),
            Some(Due::Ack {
                ack: 1,
                urgent: false
            })
        );
        let later = now + RETRY;
        receiver.receive(&batch, later);
        assert_eq!(
            receiver.due(later),
            Some(Due::Ack {
                ack: 1,
                urgent: true
            })
        );
    }
}

//! One delivery worker per server destination (spec §4.2): it takes the head of a queue ordered by
//! deadline, decides its partition fate at that moment, sleeps until the deadline (messages that
//! arrive meanwhile wait, even with earlier deadlines: Maelstrom's head-of-line blocking), then
//! journals and writes it. Writing blocks when the node does not read, stalling later deliveries.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncWrite, AsyncWriteExt};
use tokio::sync::mpsc;
use tokio::time::Instant;

use super::{Message, Network};

/// A message waiting for its deadline. Ties go in send order (message ids count up).
pub(super) struct Pending {
    deadline: Instant,
    message: Message,
}

impl Pending {
    pub(super) fn new(deadline: Instant, message: Message) -> Self {
        Pending { deadline, message }
    }

    fn key(&self) -> (Instant, u64) {
        (self.deadline, self.message.id)
    }
}

impl PartialEq for Pending {
    fn eq(&self, other: &Self) -> bool {
        self.key() == other.key()
    }
}
impl Eq for Pending {}
impl PartialOrd for Pending {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Pending {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.key().cmp(&other.key())
    }
}

/// The worker loop for destination `dest`.
pub(super) async fn deliver(
    network: Arc<Network>,
    dest: String,
    mut arrivals: mpsc::UnboundedReceiver<Pending>,
    mut inbox: impl AsyncWrite + Unpin,
) {
    let mut queue: BinaryHeap<Reverse<Pending>> = BinaryHeap::new();
    loop {
        while let Ok(pending) = arrivals.try_recv() {
            queue.push(Reverse(pending));
        }
        let head = match queue.pop() {
            Some(Reverse(head)) => head,
            None => match arrivals.recv().await {
                Some(pending) => pending,
                None => return,
            },
        };
        if network.grudge.drops(&head.message.src, &dest) {
            network.record_drop(&head.message);
            continue;
        }
        // Maelstrom sleeps whole milliseconds, rounded down.
        let wait = head.deadline.saturating_duration_since(Instant::now());
        let wait = Duration::from_millis(wait.as_millis() as u64);
        if !wait.is_zero() {
            tokio::time::sleep(wait).await;
        }
        network.record_receive(&head.message);
        let mut line = head.message.to_line();
        line.push('\n');
        if inbox.write_all(line.as_bytes()).await.is_err() || inbox.flush().await.is_err() {
            // The node's stdin is gone (it exited or was killed): nothing more can be delivered.
            return;
        }
    }
}

//! One delivery worker per server destination (docs/harness.md §4.2): it takes the head of a queue ordered by
//! deadline, decides its partition fate at that moment, sleeps until the deadline (messages that
//! arrive meanwhile wait, even with earlier deadlines: Maelstrom's head-of-line blocking), then
//! journals and hands it to the destination's [`Inbox`]. Writing blocks when the node does not
//! read, stalling later deliveries; a service answers before its next request is dequeued.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::sync::Arc;
use std::time::Duration;

use serde_json::{Map, Value};
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

/// Where a delivery worker puts what it dequeued.
pub(super) trait Inbox: Send + 'static {
    /// Takes one delivered message; false when the destination is gone for good.
    fn accept(&mut self, network: &Network, message: &Message)
    -> impl Future<Output = bool> + Send;
}

/// A node's stdin (an OS pipe or an in-memory one): each message as one JSON line.
pub(super) struct Lines<W>(pub(super) W);

impl<W: AsyncWrite + Unpin + Send + 'static> Inbox for Lines<W> {
    async fn accept(&mut self, _network: &Network, message: &Message) -> bool {
        let mut line = message.to_line();
        line.push('\n');
        self.0.write_all(line.as_bytes()).await.is_ok() && self.0.flush().await.is_ok()
    }
}

/// A built-in service: the handler's reply goes back to the request's sender, its body plus
/// `in_reply_to` (JSON `null` when the request had no `msg_id`) and never a `msg_id`.
pub(super) struct ServiceInbox<H> {
    pub(super) id: String,
    pub(super) handler: H,
}

impl<H> Inbox for ServiceInbox<H>
where
    H: FnMut(&str, &Map<String, Value>) -> Option<Map<String, Value>> + Send + 'static,
{
    async fn accept(&mut self, network: &Network, message: &Message) -> bool {
        let Some(mut reply) = (self.handler)(&message.src, &message.body) else {
            return true;
        };
        let msg_id = message.body.get("msg_id").cloned().unwrap_or(Value::Null);
        reply.insert("in_reply_to".into(), msg_id);
        if let Err(error) = network.send(&self.id, &message.src, reply) {
            // The requester left the network (a closed client): the reply has nowhere to go.
            tracing::debug!(service = %self.id, %error, "service reply not sent");
        }
        true
    }
}

/// The worker loop for destination `dest`.
pub(super) async fn deliver(
    network: Arc<Network>,
    dest: String,
    mut arrivals: mpsc::UnboundedReceiver<Pending>,
    mut inbox: impl Inbox,
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
        if !inbox.accept(&network, &head.message).await {
            // The node's stdin is gone (it exited or was killed): nothing more can be delivered.
            return;
        }
    }
}

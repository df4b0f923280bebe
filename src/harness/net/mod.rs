//! The simulated network (docs/harness.md §4): one id counter, a delay per server-to-server
//! message, one delivery queue and worker per destination, partitions decided at dequeue, and a
//! journal that counts every send and delivery.
//!
//! Nothing here knows about processes: a server destination is anything that accepts lines
//! through an [`AsyncWrite`], so nodes can be OS processes or in-process tasks alike.

mod delivery;
mod grudge;
mod journal;
mod latency;
mod message;
mod record;

pub use grudge::{Cut, Grudge};
pub use journal::{Journal, is_client};
pub use latency::{Latency, LatencyDist};
#[cfg(feature = "unstable-internals")]
pub use message::{EnvelopeError, Outgoing};
pub use message::{Message, parse_outgoing};
pub use record::{LoggedMessage, MessageLog, NetEvent, NetEventKind};

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};

use serde_json::{Map, Value};
use thiserror::Error;
use tokio::io::AsyncWrite;
use tokio::sync::mpsc;
use tokio::time::Instant;

use crate::harness::net_stats::NetStats;

/// A message refused by the network before it was counted.
#[derive(Debug, Error, PartialEq)]
pub enum SendError {
    /// Nobody with that id is registered now: a typo, or a client that was already closed.
    #[error("no node or client {0:?} is registered on the network")]
    UnknownDestination(String),
}

/// What the network prints to stderr, as `--log-net-send` / `--log-net-recv` ask.
#[derive(Clone, Copy, Debug, Default)]
pub struct NetLogging {
    /// Print every message accepted.
    pub sends: bool,
    /// Print every message delivered.
    pub receives: bool,
}

enum Route {
    Server(mpsc::UnboundedSender<delivery::Pending>),
    Client(mpsc::UnboundedSender<Message>),
}

/// The network every node and client talks through.
pub struct Network {
    latency: Latency,
    grudge: Grudge,
    journal: Journal,
    logging: NetLogging,
    next_message_id: AtomicU64,
    next_client_id: AtomicU64,
    routes: RwLock<HashMap<String, Route>>,
    /// The event log for the message diagram, when views are wanted.
    recorder: Option<record::Recorder>,
}

impl Network {
    /// A network with no one on it yet.
    pub fn new(latency: Latency, logging: NetLogging) -> Arc<Self> {
        Self::build(latency, logging, None)
    }

    /// A network that also keeps every message and partition with its time, for
    /// [`Network::message_log`].
    pub fn recorded(latency: Latency, logging: NetLogging) -> Arc<Self> {
        Self::build(latency, logging, Some(record::Recorder::new()))
    }

    fn build(
        latency: Latency,
        logging: NetLogging,
        recorder: Option<record::Recorder>,
    ) -> Arc<Self> {
        Arc::new(Network {
            latency,
            grudge: Grudge::default(),
            journal: Journal::default(),
            logging,
            next_message_id: AtomicU64::new(0),
            next_client_id: AtomicU64::new(0),
            routes: RwLock::new(HashMap::new()),
            recorder,
        })
    }

    /// Registers server `id`, whose deliveries are written as lines to `inbox`, and returns the
    /// delivery worker to spawn: it runs until the server is unregistered or its inbox fails.
    pub fn register_server(
        self: &Arc<Self>,
        id: &str,
        inbox: impl AsyncWrite + Unpin + Send + 'static,
    ) -> impl Future<Output = ()> + Send + 'static {
        let (sender, queue) = mpsc::unbounded_channel();
        self.routes_mut()
            .insert(id.to_string(), Route::Server(sender));
        delivery::deliver(
            Arc::clone(self),
            id.to_string(),
            queue,
            delivery::Lines(inbox),
        )
    }

    /// Registers a built-in service under `id` (Maelstrom's `lin-kv`, `seq-kv`, ...): a server
    /// like any node, whose delivery worker hands each request to `handler` and sends back what
    /// it returns, with `in_reply_to`, before it dequeues the next one (a serial service, as in
    /// Maelstrom's `service.clj` `service-thread`). `None` from the handler sends nothing.
    /// Returns the worker to spawn; it runs until `id` is unregistered.
    pub fn register_service(
        self: &Arc<Self>,
        id: &str,
        handler: impl FnMut(&str, &Map<String, Value>) -> Option<Map<String, Value>> + Send + 'static,
    ) -> impl Future<Output = ()> + Send + 'static {
        let (sender, queue) = mpsc::unbounded_channel();
        self.routes_mut()
            .insert(id.to_string(), Route::Server(sender));
        let inbox = delivery::ServiceInbox {
            id: id.to_string(),
            handler,
        };
        delivery::deliver(Arc::clone(self), id.to_string(), queue, inbox)
    }

    /// Registers a new client with the next `c` id (ids are never reused) and returns its id and
    /// its inbox. Messages to a client have no delay and are never partitioned.
    pub fn register_client(&self) -> (String, mpsc::UnboundedReceiver<Message>) {
        let id = format!("c{}", self.next_client_id.fetch_add(1, Ordering::Relaxed));
        let (sender, inbox) = mpsc::unbounded_channel();
        self.routes_mut().insert(id.clone(), Route::Client(sender));
        (id, inbox)
    }

    /// Removes `id` from the network: later messages to it are refused.
    pub fn unregister(&self, id: &str) {
        self.routes_mut().remove(id);
    }

    /// Accepts a message: validates the destination, numbers and journals it, draws its delay
    /// and queues it for the destination's delivery worker.
    pub fn send(&self, src: &str, dest: &str, body: Map<String, Value>) -> Result<(), SendError> {
        let routes = self.routes.read().unwrap_or_else(|p| p.into_inner());
        let route = routes
            .get(dest)
            .ok_or_else(|| SendError::UnknownDestination(dest.to_string()))?;
        let message = Message {
            id: self.next_message_id.fetch_add(1, Ordering::Relaxed),
            src: src.to_string(),
            dest: dest.to_string(),
            body,
        };
        self.journal.sent(src, dest);
        if let Some(recorder) = &self.recorder {
            recorder.sent(&message);
        }
        if self.logging.sends {
            tracing::info!(target: "net", "send {}", message.to_line());
        }
        // A closed queue means the destination is shutting down: like a message still queued
        // at kill, it counts as sent and is never received.
        match route {
            Route::Client(inbox) => {
                let _closed = inbox.send(message).is_err();
            }
            Route::Server(queue) => {
                let delay = if is_client(src) {
                    std::time::Duration::ZERO
                } else {
                    self.latency.draw()
                };
                let pending = delivery::Pending::new(Instant::now() + delay, message);
                let _closed = queue.send(pending).is_err();
            }
        }
        Ok(())
    }

    /// Journals a delivery to `dest` (delivery workers and clients call it as they dequeue).
    pub(crate) fn record_receive(&self, message: &Message) {
        self.journal.received(&message.src, &message.dest);
        if let Some(recorder) = &self.recorder {
            recorder.delivered(message);
        }
        if self.logging.receives {
            tracing::info!(target: "net", "recv {}", message.to_line());
        }
    }

    /// Logs a message a partition dropped at its destination's dequeue.
    pub(crate) fn record_drop(&self, message: &Message) {
        if let Some(recorder) = &self.recorder {
            recorder.dropped(message);
        }
    }

    /// The partition state (tests read and write it directly).
    pub fn grudge(&self) -> &Grudge {
        &self.grudge
    }

    /// Starts a partition of shape `shape`: adds `cut` to the grudge and logs it.
    pub fn partition(&self, shape: &str, cut: &Cut) {
        self.grudge.add(cut);
        if let Some(recorder) = &self.recorder {
            recorder.partition(shape, cut.keys().cloned().collect());
        }
    }

    /// Heals the network and logs it.
    pub fn heal(&self) {
        self.grudge.heal();
        if let Some(recorder) = &self.recorder {
            recorder.heal();
        }
    }

    /// Notes that the history's clock starts now, so the diagram can use history times.
    pub fn mark_clock_start(&self) {
        if let Some(recorder) = &self.recorder {
            recorder.clock_started();
        }
    }

    /// The event log so far; `None` unless the network was made with [`Network::recorded`].
    pub fn message_log(&self) -> Option<MessageLog> {
        self.recorder.as_ref().map(record::Recorder::snapshot)
    }

    /// The journal's counts so far.
    pub fn stats(&self) -> NetStats {
        self.journal.snapshot()
    }

    fn routes_mut(&self) -> std::sync::RwLockWriteGuard<'_, HashMap<String, Route>> {
        self.routes.write().unwrap_or_else(|p| p.into_inner())
    }
}

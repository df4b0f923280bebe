//! Requests this node makes and waits on: to Maelstrom's services (`seq-kv`, `lin-kv`) and to
//! other nodes (a forwarded kafka `send`).
//!
//! Every request gets a `msg_id` from the counter the dispatcher's replies also use, so ids are
//! unique per node. The request waits in a pending map until the dispatcher hands over a body
//! whose `in_reply_to` names it ([`Rpc::deliver`]); a reply nobody waits for (late, or a
//! duplicate) is dropped. Time is tokio's, so a paused clock drives the timeouts.
//!
//! A retry re-sends the *same* `msg_id`: whichever copy is answered first settles the call, and
//! a receiver that remembers ids (a kafka leader) can tell a retry from a new request.
//!
//! The dispatcher must never await a call: replies arrive through the dispatcher itself.
//! Callers run in their own tasks.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use serde_json::{Map, Value};
use thiserror::Error;
use tokio::sync::oneshot;
use tokio::time::timeout;

use super::protocol::{Body, Envelope, Outbound, Payload};
use crate::sinks::{Emission, SinkHandle};

/// How long to wait for a reply, and how many times to send.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Retry {
    /// Wait per attempt.
    pub timeout: Duration,
    /// Sends in all (at least 1).
    pub attempts: u32,
}

/// Why a call did not return a successful reply.
#[derive(Clone, Debug, Error, PartialEq, Eq)]
pub enum RpcError {
    /// No reply came to any attempt.
    #[error("no reply after {0} attempts")]
    Timeout(u32),
    /// The callee answered with an error body.
    #[error("error {code}: {text}")]
    Remote {
        /// The Maelstrom error code.
        code: u64,
        /// Its text.
        text: String,
    },
    /// The stdout sink is gone: the node is stopping.
    #[error("the output is closed")]
    Closed,
}

/// What the RPC client did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RpcStats {
    /// Calls made.
    pub calls: u64,
    /// Requests sent again after a timeout.
    pub retries: u64,
    /// Calls that got no reply at all.
    pub timeouts: u64,
    /// Replies that matched no waiting call (late or duplicated).
    pub unmatched: u64,
}

/// The node's RPC client; cheap to clone (all clones share one pending map).
#[derive(Clone, Debug)]
pub struct Rpc {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    me: Arc<str>,
    out: SinkHandle<Outbound>,
    ids: Arc<AtomicU64>,
    state: Mutex<State>,
}

#[derive(Debug, Default)]
struct State {
    pending: HashMap<u64, oneshot::Sender<Map<String, Value>>>,
    stats: RpcStats,
}

/// Removes a call from the pending map however the call ends (also when its task is aborted).
struct Waiting<'a> {
    inner: &'a Inner,
    msg_id: u64,
}

impl Drop for Waiting<'_> {
    fn drop(&mut self) {
        lock(&self.inner.state).pending.remove(&self.msg_id);
    }
}

fn lock(state: &Mutex<State>) -> MutexGuard<'_, State> {
    // Every update is complete before the lock is released; a panic elsewhere leaves a usable map.
    state.lock().unwrap_or_else(PoisonError::into_inner)
}

impl Rpc {
    /// A client sending as `me` through `out`, taking `msg_id`s from `ids`.
    pub fn new(me: Arc<str>, out: SinkHandle<Outbound>, ids: Arc<AtomicU64>) -> Self {
        Rpc {
            inner: Arc::new(Inner {
                me,
                out,
                ids,
                state: Mutex::new(State::default()),
            }),
        }
    }

    /// This node's id.
    pub fn me(&self) -> &Arc<str> {
        &self.inner.me
    }

    /// Sends `payload` to `dest` and waits for the reply, re-sending after each timeout.
    ///
    /// # Errors
    ///
    /// [`RpcError::Remote`] for an error reply, [`RpcError::Timeout`] when no attempt was
    /// answered, [`RpcError::Closed`] when the output is gone.
    pub async fn call(
        &self,
        dest: &str,
        payload: Payload,
        retry: Retry,
    ) -> Result<Map<String, Value>, RpcError> {
        let msg_id = self.next_id();
        let (reply_to, mut reply) = oneshot::channel();
        {
            let mut state = lock(&self.inner.state);
            state.pending.insert(msg_id, reply_to);
            state.stats.calls += 1;
        }
        let _waiting = Waiting {
            inner: &self.inner,
            msg_id,
        };
        let attempts = retry.attempts.max(1);
        for attempt in 1..=attempts {
            if attempt > 1 {
                lock(&self.inner.state).stats.retries += 1;
            }
            self.emit(dest, payload.clone(), Some(msg_id), None).await?;
            match timeout(retry.timeout, &mut reply).await {
                Ok(Ok(body)) => return classify(body),
                Ok(Err(_)) => return Err(RpcError::Closed),
                Err(_elapsed) => {}
            }
        }
        lock(&self.inner.state).stats.timeouts += 1;
        Err(RpcError::Timeout(attempts))
    }

    /// Hands a reply to the call waiting for it; returns whether one was.
    pub fn deliver(&self, in_reply_to: u64, body: Map<String, Value>) -> bool {
        let mut state = lock(&self.inner.state);
        match state.pending.remove(&in_reply_to) {
            // The caller may have given up this very moment; then nobody needs it.
            Some(waiting) => waiting.send(body).is_ok(),
            None => {
                state.stats.unmatched += 1;
                false
            }
        }
    }

    /// Sends a message that expects no reply (a reply itself, or a one-way message).
    ///
    /// # Errors
    ///
    /// [`RpcError::Closed`] when the output is gone.
    pub async fn send(
        &self,
        dest: &str,
        payload: Payload,
        in_reply_to: Option<u64>,
    ) -> Result<(), RpcError> {
        let msg_id = self.next_id();
        self.emit(dest, payload, Some(msg_id), in_reply_to).await
    }

    /// What the client did so far.
    pub fn stats(&self) -> RpcStats {
        lock(&self.inner.state).stats
    }

    fn next_id(&self) -> u64 {
        self.inner.ids.fetch_add(1, Ordering::Relaxed) + 1
    }

    async fn emit(
        &self,
        dest: &str,
        payload: Payload,
        msg_id: Option<u64>,
        in_reply_to: Option<u64>,
    ) -> Result<(), RpcError> {
        let message = Envelope {
            src: self.inner.me.to_string(),
            dest: dest.to_owned(),
            body: Body {
                payload,
                msg_id,
                in_reply_to,
            },
        };
        match self.inner.out.emit(message).await {
            Emission::Queued => Ok(()),
            _refused => Err(RpcError::Closed),
        }
    }
}

/// An `error` body becomes [`RpcError::Remote`]; anything else is the caller's to read.
fn classify(body: Map<String, Value>) -> Result<Map<String, Value>, RpcError> {
    if body.get("type").and_then(Value::as_str) != Some("error") {
        return Ok(body);
    }
    Err(RpcError::Remote {
        code: body.get("code").and_then(Value::as_u64).unwrap_or(0),
        text: body
            .get("text")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned(),
    })
}

#[cfg(test)]
mod tests {
    use futures::StreamExt;
    use serde_json::json;

    use super::*;
    use crate::sinks::{OverflowPolicy, bounded};

    fn body(value: Value) -> Map<String, Value> {
        match value {
            Value::Object(map) => map,
            _ => unreachable!("an object"),
        }
    }

    #[tokio::test(start_paused = true)]
    async fn a_call_is_retried_with_the_same_id_and_settled_by_its_reply() {
        let (out, mut sent) = bounded(16, OverflowPolicy::Block);
        let rpc = Rpc::new(Arc::from("n0"), out, Arc::new(AtomicU64::new(0)));
        let retry = Retry {
            timeout: Duration::from_millis(100),
            attempts: 3,
        };
        let caller = rpc.clone();
        let call = tokio::spawn(async move {
            let key = json!("k");
            caller.call("seq-kv", Payload::KvRead { key }, retry).await
        });
        let first = sent.next().await.unwrap();
        let second = sent.next().await.unwrap();
        assert_eq!(
            first.body.msg_id, second.body.msg_id,
            "a retry keeps its id"
        );
        let msg_id = first.body.msg_id.unwrap();
        assert!(!rpc.deliver(msg_id + 7, body(json!({"type": "read_ok"}))));
        assert!(rpc.deliver(msg_id, body(json!({"type": "read_ok", "value": 4}))));
        assert_eq!(call.await.unwrap().unwrap()["value"], 4);
        let stats = rpc.stats();
        assert_eq!((stats.calls, stats.retries, stats.unmatched), (1, 1, 1));
    }

    #[tokio::test(start_paused = true)]
    async fn error_bodies_and_silence_are_errors() {
        let (out, mut sent) = bounded(16, OverflowPolicy::Block);
        let rpc = Rpc::new(Arc::from("n0"), out, Arc::new(AtomicU64::new(0)));
        let retry = Retry {
            timeout: Duration::from_millis(100),
            attempts: 2,
        };
        let caller = rpc.clone();
        let call = tokio::spawn(async move {
            let key = json!("k");
            caller.call("lin-kv", Payload::KvRead { key }, retry).await
        });
        let msg_id = sent.next().await.unwrap().body.msg_id.unwrap();
        let error = json!({"type": "error", "code": 20, "text": "key does not exist"});
        assert!(rpc.deliver(msg_id, body(error)));
        assert_eq!(
            call.await.unwrap(),
            Err(RpcError::Remote {
                code: 20,
                text: "key does not exist".into()
            })
        );
        let key = json!("k");
        let silent = rpc.call("lin-kv", Payload::KvRead { key }, retry).await;
        assert_eq!(silent, Err(RpcError::Timeout(2)));
        assert!(lock(&rpc.inner.state).pending.is_empty());
    }
}

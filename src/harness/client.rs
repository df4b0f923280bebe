//! A Maelstrom client (docs/harness.md §1.3, §2.3): a `c` id on the network that sends one request
//! at a time and waits for the reply whose `in_reply_to` matches, dropping everything else.

use std::sync::Arc;
use std::time::Duration;

use serde_json::{Map, Value};
use thiserror::Error;
use tokio::sync::mpsc;

use crate::harness::net::{Message, Network, SendError};

/// Why an RPC produced no reply.
#[derive(Debug, Error, PartialEq)]
pub enum RpcError {
    /// No matching reply within the timeout.
    #[error("no reply within {0:?}")]
    Timeout(Duration),
    /// The destination is not on the network.
    #[error(transparent)]
    Send(#[from] SendError),
}

/// One client connection. Dropping it unregisters its id, so late replies to it are refused.
pub struct Client {
    id: String,
    inbox: mpsc::UnboundedReceiver<Message>,
    network: Arc<Network>,
    last_msg_id: u64,
}

impl Client {
    /// Opens a client with the next `c` id.
    pub fn open(network: &Arc<Network>) -> Self {
        let (id, inbox) = network.register_client();
        Client {
            id,
            inbox,
            network: Arc::clone(network),
            last_msg_id: 0,
        }
    }

    /// This client's id.
    #[cfg(test)]
    pub fn id(&self) -> &str {
        &self.id
    }

    /// Sends `body` (given a fresh `msg_id`, numbered 1, 2, 3... per client) to `dest` and waits
    /// up to `timeout` for the reply to it. Every message dequeued meanwhile is journaled as
    /// received; those that do not answer this request are dropped, as Maelstrom's clients do.
    pub async fn rpc(
        &mut self,
        dest: &str,
        mut body: Map<String, Value>,
        timeout: Duration,
    ) -> Result<Map<String, Value>, RpcError> {
        self.last_msg_id += 1;
        let msg_id = self.last_msg_id;
        body.insert("msg_id".into(), msg_id.into());
        self.network.send(&self.id, dest, body)?;
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            match tokio::time::timeout_at(deadline, self.inbox.recv()).await {
                Ok(Some(message)) => {
                    self.network.record_receive(&message);
                    if message.in_reply_to() == Some(msg_id) {
                        return Ok(message.body);
                    }
                }
                // The sender side lives in the network's routes until `drop`, so `None` cannot
                // come before the deadline; treat it like silence all the same.
                Ok(None) | Err(_) => return Err(RpcError::Timeout(timeout)),
            }
        }
    }
}

impl Drop for Client {
    fn drop(&mut self) {
        self.network.unregister(&self.id);
    }
}

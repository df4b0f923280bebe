//! A client of one of Maelstrom's key-value services (`seq-kv`, `lin-kv`): read, write and cas
//! on string keys, with the services' two error codes turned into variants.
//!
//! Services never drop or reorder on their own and are never partitioned, but they are serial
//! and go silent on a request type they do not know; so every call still has a timeout.

use std::time::Duration;

use serde_json::Value;
use thiserror::Error;

use super::protocol::{ErrorCode, Payload};
use super::rpc::{Retry, Rpc, RpcError};

/// The sequentially consistent service (stale reads are allowed).
pub const SEQ_KV: &str = "seq-kv";

/// How long a kv call waits, and how often it is sent. A service answers at once unless the
/// network delays it; retrying a read or an idempotent write is harmless.
pub const KV_RETRY: Retry = Retry {
    timeout: Duration::from_millis(1000),
    attempts: 4,
};

/// Why a kv call failed.
#[derive(Clone, Debug, Error, PartialEq, Eq)]
pub enum KvError {
    /// Code 20: the key does not exist (in the version the service served).
    #[error("key does not exist")]
    Missing,
    /// Code 22: a cas found another value.
    #[error("precondition failed: {0}")]
    Precondition(String),
    /// Anything else: no reply, another code, or the node stopping.
    #[error(transparent)]
    Rpc(#[from] RpcError),
}

/// One service, through the node's RPC client.
#[derive(Clone, Debug)]
pub struct Kv {
    rpc: Rpc,
    service: &'static str,
}

impl Kv {
    /// A client of `service` (e.g. [`SEQ_KV`]).
    pub fn new(rpc: Rpc, service: &'static str) -> Self {
        Kv { rpc, service }
    }

    /// The value of `key`.
    ///
    /// # Errors
    ///
    /// [`KvError::Missing`] when the key does not exist; [`KvError::Rpc`] otherwise.
    pub async fn read(&self, key: &str) -> Result<Value, KvError> {
        let payload = Payload::KvRead { key: key.into() };
        let mut body = self.call(payload).await?;
        Ok(body.remove("value").unwrap_or(Value::Null))
    }

    /// Sets `key` to `value`.
    ///
    /// # Errors
    ///
    /// [`KvError::Rpc`] when the service did not confirm.
    pub async fn write(&self, key: &str, value: Value) -> Result<(), KvError> {
        let payload = Payload::KvWrite {
            key: key.into(),
            value,
        };
        self.call(payload).await.map(drop)
    }

    async fn call(&self, payload: Payload) -> Result<serde_json::Map<String, Value>, KvError> {
        match self.rpc.call(self.service, payload, KV_RETRY).await {
            Ok(body) => Ok(body),
            Err(RpcError::Remote { code, .. }) if code == ErrorCode::KeyDoesNotExist as u64 => {
                Err(KvError::Missing)
            }
            Err(RpcError::Remote { code, text })
                if code == ErrorCode::PreconditionFailed as u64 =>
            {
                Err(KvError::Precondition(text))
            }
            Err(error) => Err(KvError::Rpc(error)),
        }
    }
}

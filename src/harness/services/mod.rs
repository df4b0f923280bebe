//! Maelstrom's built-in services (`service.clj`): `lin-kv`, `seq-kv`, `lww-kv` and `lin-tso`,
//! present in every run whatever the workload, as Maelstrom's `db.clj` starts them.
//!
//! Each is a server on the network, addressed by its id like a node (not listed in init's
//! `node_ids`): its requests and replies take the `--latency` delay, are counted in `:servers`
//! (two messages per RPC), and are never partitioned (grudges only cover the test's nodes). One
//! delivery worker per service handles one request at a time, so a service is a serial
//! bottleneck. A request type a service does not handle gets no reply at all, as in Maelstrom
//! (whose worker throws and logs); the harness logs a warning.

mod kv;
mod lww_kv;
mod seq_kv;
mod tso;

pub use kv::{KvState, canonical};
pub use lww_kv::LwwKv;
pub use seq_kv::{RING_CAPACITY, SeqKv};
pub use tso::Tso;

use std::sync::Arc;

use serde_json::{Map, Value};
use tokio::task::JoinHandle;

use crate::harness::net::Network;

/// The service ids, in the order Maelstrom logs them.
pub const SERVICE_IDS: [&str; 4] = ["lin-kv", "lin-tso", "lww-kv", "seq-kv"];

/// One service's state.
#[derive(Debug)]
pub enum Service {
    /// `lin-kv`: one state, each request applied whole in dequeue order.
    LinKv(KvState),
    /// `seq-kv`.
    SeqKv(SeqKv),
    /// `lww-kv`.
    LwwKv(LwwKv),
    /// `lin-tso`.
    LinTso(Tso),
}

impl Service {
    /// The service called `id`, drawing any randomness from `seed`; `None` for an unknown id.
    pub fn named(id: &str, seed: u64) -> Option<Service> {
        Some(match id {
            "lin-kv" => Service::LinKv(KvState::default()),
            "seq-kv" => Service::SeqKv(SeqKv::new(RING_CAPACITY, seed)),
            "lww-kv" => Service::LwwKv(LwwKv::new(seed.wrapping_add(1))),
            "lin-tso" => Service::LinTso(Tso::default()),
            _ => return None,
        })
    }

    /// Handles one request from `src`: the reply body, or `None` for no reply.
    pub fn handle(&mut self, src: &str, body: &Map<String, Value>) -> Option<Map<String, Value>> {
        match self {
            Service::LinKv(state) => {
                let applied = state.apply(body)?;
                if let Some(next) = applied.changed {
                    *state = next;
                }
                Some(applied.reply)
            }
            Service::SeqKv(store) => store.handle(src, body),
            Service::LwwKv(store) => store.handle(body),
            Service::LinTso(tso) => tso.handle(body),
        }
    }
}

/// The running services of one test.
pub struct Services {
    network: Arc<Network>,
    workers: Vec<JoinHandle<()>>,
}

impl Services {
    /// Registers the four services on `network` and spawns their workers; call before any node
    /// starts. Randomness (seq-kv's and lww-kv's draws) comes from `seed`, so an in-process run
    /// stays deterministic.
    pub fn start(network: &Arc<Network>, seed: u64) -> Services {
        let workers = SERVICE_IDS
            .iter()
            .filter_map(|&id| {
                let mut service = Service::named(id, seed)?;
                let name = id.to_string();
                let worker = network.register_service(id, move |src, body| {
                    let reply = service.handle(src, body);
                    if reply.is_none() {
                        let request = Value::Object(body.clone()).to_string();
                        tracing::warn!(
                            service = %name,
                            from = src,
                            %request,
                            "the service does not handle this request and sends no reply (as Maelstrom)"
                        );
                    }
                    reply
                });
                Some(tokio::spawn(worker))
            })
            .collect();
        Services {
            network: Arc::clone(network),
            workers,
        }
    }

    /// Takes the services off the network (also on drop); requests still queued are never
    /// received.
    pub fn stop(self) {
        drop(self);
    }
}

impl Drop for Services {
    fn drop(&mut self) {
        for id in SERVICE_IDS {
            self.network.unregister(id);
        }
        for worker in self.workers.drain(..) {
            worker.abort();
        }
    }
}

#[cfg(test)]
mod tests;

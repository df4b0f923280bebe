//! The gRPC bi-stream ingest server, its load client and store tools.
//!
//! ```text
//!  client batches        per stream (stream.rs)                      writer.rs            store/
//!  (IngestRequest) --> credits, validation -> batch(size, linger) --> bounded queue  --> one write +
//!                      -> fan_out([queue]) : refusals answered       (OverflowPolicy)    fdatasync per
//!  acks (IngestResponse) <------------ reply.rs <----------------------------------------- group
//! ```
//!
//! - [`proto`]: the generated types of `proto/ingest.proto` (`sluicegate.ingest.v1`), for
//!   clients.
//! - [`start`] runs the service with health, reflection, compression, metrics and a graceful
//!   drain, configured by a [`ServerConfig`]; the [`RunningServer`] it returns is the handle.
//! - [`read_dir`] (and with the `nats` feature `read_stream`) reads a store back. Records go
//!   to the embedded append-only segment log with length + CRC framing, or to a NATS JetStream
//!   stream.
//! - [`load`]: the load client with exact accounting.

mod accept;
mod config;
mod inbound;
pub mod load;
mod oversized;
#[cfg(feature = "metrics")]
mod prometheus;
pub mod proto;
mod reply;
mod server;
mod service;
mod stats;
mod store;
mod stream;
mod tls;
mod tokens;
mod writer;

pub use config::{Exposed, ServerConfig, StoreTarget};
pub use server::{DrainReport, RunningServer, SERVICE_NAME, ServeError, start};
pub use stats::IngestStats;
pub use store::{
    Contents, Lost, Recovery, RepairReport, Repaired, StoreError, read_dir, repair_dir, stored_len,
};
#[cfg(feature = "nats")]
pub use store::{JetStreamConfig, read_stream};
pub use tls::{ClientTls, ServerTls, TlsError};
pub use tokens::{TokenError, Tokens};

/// What `sluicegate::internals` exposes of the ingest server.
#[cfg(feature = "unstable-internals")]
pub(crate) mod internals {
    pub use super::inbound::{MAX_ID_BYTES, validate};
    pub use super::store::RecentIds;
    pub use super::store::internals::*;
}

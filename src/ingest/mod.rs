//! The gRPC bi-stream ingest server, its load client and store tools.
//!
//! ```text
//!  client batches        per stream (stream.rs)                      writer.rs            store/
//!  (IngestRequest) --> credits, validation -> batch(size, linger) --> bounded queue  --> one write +
//!                      -> fan_out([queue]) : refusals answered       (OverflowPolicy)    fdatasync per
//!  acks (IngestResponse) <------------ reply.rs <----------------------------------------- group
//! ```
//!
//! - [`proto`]: the generated types of `proto/ingest.proto` (`sluicegate.ingest.v1`).
//! - [`server`]: [`server::start`] runs the service with health, reflection, compression,
//!   metrics and a graceful drain; [`config::ServerConfig`] holds its settings.
//! - [`store`]: the [`store::RecordStore`] interface the writer writes through: the embedded
//!   append-only segment log with length + CRC framing, or a NATS JetStream stream.
//! - [`load`]: the load client with exact accounting.
//! - [`cli`]: `sluicegate ingest serve | load | verify`.

pub mod cli;
pub mod config;
pub mod load;
pub mod oversized;
pub mod proto;
pub mod reply;
pub mod server;
pub mod service;
pub mod stats;
pub mod store;
pub mod stream;
pub mod writer;

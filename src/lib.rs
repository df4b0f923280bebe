//! # sluicegate
//!
//! Reactive streaming with channels and backpressure, where overflow is never silent.
//!
//! Data flows one way, and the modules follow it:
//!
//! ```text
//!  source               pipeline                          sinks                   consumer
//!  (node stdin lines,   dedup_by_key -> batch -> fan_out  bounded(capacity,       (stdout writer,
//!   gRPC inbound)  -->  (futures::Stream combinators) --> OverflowPolicy)    -->   gRPC acks, store)
//!                                                          emit -> Emission<T>
//! ```
//!
//! - [`pipeline`]: combinators on any [`futures::Stream`], through [`pipeline::PipelineExt`].
//! - [`sinks`]: bounded queues whose every emission returns a `#[must_use]`
//!   [`sinks::Emission`] that hands back any item it did not keep, and whose counters always
//!   account for every item offered.
//! - `node` (feature `node`): a Maelstrom node whose broadcast gossip runs on the pipeline.
//! - `harness` (feature `harness`): a Maelstrom-compatible harness that runs any node binary.
//! - `ingest` (feature `ingest`, Unix): a gRPC bi-stream ingest server that stores records
//!   durably through the pipeline; `nats` adds a JetStream store, `metrics` a Prometheus
//!   exporter.
//!
//! With `default-features = false` only [`sinks`] and [`pipeline`] are built, on tokio,
//! tokio-stream and futures alone.
//!
//! ```
//! use futures::StreamExt;
//! use sluicegate::pipeline::PipelineExt;
//! use sluicegate::sinks::{bounded, OverflowPolicy};
//!
//! # #[tokio::main(flavor = "current_thread")] async fn main() {
//! // A burst of 1000 records into a sink of 256: under Block the producer waits, nothing is lost.
//! let (sink, consumer) = bounded(256, OverflowPolicy::Block);
//! let producer = tokio::spawn(async move {
//!     let reports: Vec<_> = futures::stream::iter(0..1000u32).fan_out(vec![sink]).collect().await;
//!     reports.iter().all(|report| report.all_queued())
//! });
//! let received: Vec<u32> = consumer.collect().await;
//! assert!(producer.await.unwrap());
//! assert_eq!(received, (0..1000).collect::<Vec<_>>());
//! # }
//! ```

#![cfg_attr(docsrs, feature(doc_cfg))]

#[cfg(feature = "harness")]
pub mod harness;
// The embedded store uses positional file I/O (`std::os::unix::fs::FileExt`).
#[cfg(all(feature = "ingest", unix))]
pub mod ingest;
#[cfg(feature = "node")]
pub mod node;
pub mod pipeline;
pub mod sinks;

/// Internals exposed to the crate's own benchmarks and fuzz targets. Not part of the API.
#[cfg(feature = "unstable-internals")]
#[doc(hidden)]
pub mod internals {
    #[cfg(feature = "harness")]
    pub use crate::harness::internals::*;
    #[cfg(all(feature = "ingest", unix))]
    pub use crate::ingest::internals::*;
}

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
//! - [`node`]: a Maelstrom node whose broadcast gossip runs on the pipeline.
//! - [`harness`]: a Maelstrom-compatible harness that runs any node binary.
//! - [`ingest`]: a gRPC bi-stream ingest server that stores records durably through the pipeline.
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

pub mod harness;
pub mod ingest;
pub mod node;
pub mod pipeline;
pub mod sinks;

//! sluicegate (placeholder docs)
pub mod harness;
pub mod ingest;
pub mod node;
pub mod pipeline;
pub mod sinks;

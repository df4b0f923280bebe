//! (placeholder, replaced by the ingest issue)
pub mod cli;

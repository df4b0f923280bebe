//! (placeholder, replaced by the harness issue)
pub mod cli;

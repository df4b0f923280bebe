//! A Maelstrom-compatible harness: runs any node binary the way Maelstrom does and judges it the
//! way Maelstrom does. `docs/harness.md` states the Maelstrom semantics it reproduces, with the
//! Maelstrom and Jepsen sources for each; the section numbers (§N.M) in the docs below refer to it.
//!
//! ```text
//!  cli -> run: spawn nodes (process) -> init -> setup (topology) -> interpreter -> teardown
//!                     |                                               |  (schedule: stagger,
//!                     v                                               |   cursor; workload:
//!   node stdout -> net (journal, latency, one delivery worker         |   requests, replies;
//!                  per destination, grudge) -> node stdin / client <--+   nemesis: shapes)
//!  history + net stats -> check (set-full, stats, availability, net, echo, unique-ids)
//!                      -> report (EDN results, verdict, summary, store folder)
//! ```
//!
//! The network, the clock and the node transport are small seams: the network delivers to any
//! `AsyncWrite` and reads from any `AsyncBufRead`, and all timing goes through tokio's clock, so
//! nodes can later run as in-process tasks on a paused runtime.

#[cfg(feature = "serve")]
mod browse;
mod check;
mod client;
mod clock;
mod edn;
mod error;
mod history;
mod interpreter;
mod nemesis;
mod net;
mod net_stats;
mod nodes;
mod process;
mod report;
mod run;
mod schedule;
mod services;
mod sweep;
mod topology;
mod workload;

#[cfg(feature = "serve")]
pub use browse::serve_store;
pub use check::{
    Analysis, AvailabilityRequirement, CheckOptions, LatencyQuantiles, Summary, Validity,
    WorkloadKind,
};
pub use edn::Edn;
pub use error::HarnessError;
pub use history::{History, Op, OpFn, OpType, Process};
pub use interpreter::{Plan, RECOVERY_WAIT};
pub use net::{LatencyDist, LoggedMessage, MessageLog, NetEvent, NetEventKind, NetLogging};
pub use nodes::NodeSource;
pub use process::{BadOutput, Launcher};
pub use report::{DiagramWindow, RunNotes, RunStore, StdoutDeath, print_results};
pub use run::{RunOutcome, TestConfig, run};
pub use services::SERVICE_IDS;
pub use sweep::{SeedRun, SeedVerdict, describe, sweep};
pub use topology::TopologyKind;

/// What `sluicegate::internals` exposes of the harness: how a node's stdout lines and replies are
/// judged, for the fuzz targets.
#[cfg(feature = "unstable-internals")]
pub(crate) mod internals {
    pub use super::client::RpcError;
    pub use super::net::{EnvelopeError, Outgoing, parse_outgoing};
    pub use super::workload::{Field, Reply, judge};
}

#[cfg(test)]
mod tests;

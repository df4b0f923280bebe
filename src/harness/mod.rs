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

pub mod check;
pub mod cli;
pub mod client;
pub mod clock;
pub mod edn;
pub mod history;
pub mod interpreter;
pub mod nemesis;
pub mod net;
pub mod net_stats;
pub mod nodes;
pub mod process;
pub mod report;
pub mod run;
pub mod schedule;
pub mod sweep;
pub mod topology;
pub mod workload;

//! Where the nodes under test run: OS processes of any binary (what Maelstrom does), or our own
//! node as tasks inside the harness, connected by in-memory pipes, so that a run can go on
//! tokio's paused clock (virtual time, reproducible by seed).

use std::path::Path;
use std::sync::Arc;

use tokio::io::{AsyncBufRead, BufReader};
use tokio::task::JoinHandle;
use tracing::Instrument;

use crate::harness::error::HarnessError;
use crate::harness::net::Network;
use crate::harness::process::{BadOutput, DeathWatch, Launcher, NodeProcess, Tails, relay_stdout};
use crate::node::{NodeConfig, NodeError, NodeReport, run_node};

/// Bytes an in-process node's pipes hold before the writer waits, as an OS pipe does.
const PIPE_CAPACITY: usize = 64 * 1024;

/// What runs the nodes.
#[derive(Clone, Debug)]
pub enum NodeSource {
    /// One process per node, from any binary.
    Binary(Launcher),
    /// sluicegate's own node, one task per node, with these settings.
    InProcess(NodeConfig),
}

/// A started node, whichever way it runs.
pub enum RunningNode {
    /// An OS process.
    Process(NodeProcess),
    /// A task of this process.
    Task {
        /// The node id.
        id: String,
        /// The node's task.
        task: JoinHandle<Result<NodeReport, NodeError>>,
    },
}

/// Everything a run needs to wire a node into the network.
pub struct Wiring<'a> {
    /// The network the node talks through.
    pub network: &'a Arc<Network>,
    /// Where bad output is recorded.
    pub watch: &'a Arc<DeathWatch>,
    /// What bad output does.
    pub bad_output: BadOutput,
}

impl Wiring<'_> {
    fn relay(
        &self,
        id: &str,
        stdout: impl AsyncBufRead + Unpin + Send + 'static,
        tails: Arc<Tails>,
    ) -> impl Future<Output = ()> + Send + 'static {
        relay_stdout(
            id.to_string(),
            stdout,
            Arc::clone(self.network),
            Arc::clone(self.watch),
            tails,
            self.bad_output,
        )
    }
}

impl NodeSource {
    /// Starts node `id`, registers it on the network and relays its output; `log` is where a
    /// process's stderr goes (nowhere when `None`). A task logs through tracing inside a `node`
    /// span whose `log_file` field is `log`, for a subscriber layer that writes it there.
    pub fn start(
        &self,
        id: &str,
        log: Option<&Path>,
        wiring: &Wiring<'_>,
    ) -> Result<RunningNode, HarnessError> {
        match self {
            NodeSource::Binary(launcher) => {
                let spawned = launcher.spawn(id, log.unwrap_or(Path::new("/dev/null")))?;
                tokio::spawn(
                    wiring
                        .network
                        .register_server(id, spawned.stdin)
                        .in_current_span(),
                );
                tokio::spawn(
                    wiring
                        .relay(id, spawned.stdout, spawned.tails)
                        .in_current_span(),
                );
                Ok(RunningNode::Process(spawned.process))
            }
            NodeSource::InProcess(config) => {
                let (inbox, node_stdin) = tokio::io::duplex(PIPE_CAPACITY);
                let (node_stdout, outbox) = tokio::io::duplex(PIPE_CAPACITY);
                // Error level: any filter that lets the node's events through keeps this span.
                let span = match log {
                    Some(path) => {
                        tracing::error_span!("node", node = id, log_file = %path.display())
                    }
                    None => tracing::error_span!("node", node = id),
                };
                let task = tokio::spawn(
                    run_node(BufReader::new(node_stdin), node_stdout, config.clone())
                        .instrument(span),
                );
                tokio::spawn(wiring.network.register_server(id, inbox).in_current_span());
                tokio::spawn(
                    wiring
                        .relay(id, BufReader::new(outbox), Arc::new(Tails::default()))
                        .in_current_span(),
                );
                Ok(RunningNode::Task {
                    id: id.to_string(),
                    task,
                })
            }
        }
    }
}

impl RunningNode {
    /// If the node already stopped, a report of how.
    pub fn crash_report(&mut self) -> Option<String> {
        match self {
            RunningNode::Process(process) => process.crash_report(),
            RunningNode::Task { id, task } if task.is_finished() => {
                Some(format!("node {id} stopped before the test ended"))
            }
            RunningNode::Task { .. } => None,
        }
    }

    /// Stops the node for good.
    pub async fn kill(&mut self) {
        match self {
            RunningNode::Process(process) => process.kill().await,
            RunningNode::Task { task, .. } => task.abort(),
        }
    }
}

//! One test run, in Maelstrom's order (docs/harness.md §2.2): network, nodes, init, clock, setup,
//! phases, teardown, analysis.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::future::try_join_all;
use serde_json::{Value, json};
use tracing::Instrument;

use crate::harness::check::{self, Analysis, CheckOptions, WorkloadKind};
use crate::harness::client::Client;
use crate::harness::clock::Clock;
use crate::harness::error::HarnessError;
use crate::harness::history::History;
use crate::harness::interpreter::{Interpreter, Plan};
use crate::harness::net::{Latency, LatencyDist, MessageLog, NetLogging, Network};
use crate::harness::nodes::{NodeSource, RunningNode, Wiring};
use crate::harness::process::{BadOutput, DeathWatch};
use crate::harness::report::{RunNotes, RunStore};
use crate::harness::services::Services;
use crate::harness::topology::TopologyKind;
use crate::harness::workload::{Reply, Workload, judge};

/// A node must answer init within this (docs/harness.md §1.5).
const INIT_TIMEOUT: Duration = Duration::from_secs(10);
/// And the workload's setup (broadcast's topology) within this (docs/harness.md §2.2).
const SETUP_TIMEOUT: Duration = Duration::from_secs(5);

/// Everything a run needs, parsed and checked.
#[derive(Clone, Debug)]
pub struct TestConfig {
    /// Which workload.
    pub workload: WorkloadKind,
    /// What runs the nodes.
    pub nodes: NodeSource,
    /// Main and final phase parameters (nodes, threads, time limit, rate, nemesis, seed).
    pub plan: Plan,
    /// Mean inter-server delay, in ms.
    pub latency_ms: u64,
    /// Its distribution.
    pub latency_dist: LatencyDist,
    /// The topology broadcast's setup sends.
    pub topology: TopologyKind,
    /// Checker options.
    pub check: CheckOptions,
    /// Network console logging.
    pub net_logging: NetLogging,
    /// What a bad stdout line does.
    pub bad_output: BadOutput,
    /// Where run folders go; `None` keeps nothing on disk (seed sweeps), and node stderr is
    /// then discarded.
    pub store: Option<PathBuf>,
    /// Keep every message and partition with its time (for the message diagram,
    /// [`RunOutcome::messages`]); off, the network only counts.
    pub record_messages: bool,
}

impl TestConfig {
    /// A run of `workload` on `node_count` nodes (`n0`...) with Maelstrom's defaults for
    /// everything else: one client thread per node, 60 s, rate 5, no latency, no nemesis, the
    /// grid topology, seed 0, and no run folder.
    pub fn new(workload: WorkloadKind, nodes: NodeSource, node_count: usize) -> Self {
        TestConfig {
            workload,
            nodes,
            plan: Plan {
                nodes: (0..node_count).map(|k| format!("n{k}")).collect(),
                concurrency: node_count,
                time_limit: Duration::from_secs(60),
                rate: 5.0,
                nemesis_interval: None,
                seed: 0,
                recovery_wait: crate::harness::interpreter::RECOVERY_WAIT,
                kafka_assign_p: 1.0 / 8.0,
            },
            latency_ms: 0,
            latency_dist: LatencyDist::Constant,
            topology: TopologyKind::Grid,
            check: CheckOptions::default(),
            net_logging: NetLogging::default(),
            bad_output: BadOutput::StdoutDies,
            store: None,
            record_messages: false,
        }
    }
}

/// What a finished run produced.
pub struct RunOutcome {
    /// The checkers' verdict and results map.
    pub analysis: Analysis,
    /// Stdout deaths and harness cost.
    pub notes: RunNotes,
    /// The run folder, with node logs already in it, unless the config asked for none.
    pub store: Option<RunStore>,
    /// Every operation.
    pub history: History,
    /// Every message and partition with its time, if the config asked for them.
    pub messages: Option<MessageLog>,
}

/// Runs the test. An error means the test itself crashed (exit 255): a node failed init or
/// setup, or exited before teardown.
///
/// # Errors
///
/// A [`HarnessError`] when the test crashed instead of reaching a verdict.
pub async fn run(config: &TestConfig) -> Result<RunOutcome, HarnessError> {
    let started = Instant::now();
    let cpu_before = harness_cpu();
    let store =
        match &config.store {
            Some(base) => Some(RunStore::create(base, config.workload.name()).map_err(
                |source| HarnessError::Store {
                    path: base.clone(),
                    source,
                },
            )?),
            None => None,
        };
    // Events inside this span carry the run's `harness.log` path, for a subscriber layer that
    // writes them there (the `sluicegate` binary has one). An error-level span, so that any
    // filter letting an event through also keeps the span that routes it.
    let span = match &store {
        Some(store) => tracing::error_span!("run", log_file = %store.harness_log_path().display()),
        None => tracing::Span::none(),
    };
    run_stored(config, store, started, cpu_before)
        .instrument(span)
        .await
}

async fn run_stored(
    config: &TestConfig,
    store: Option<RunStore>,
    started: Instant,
    cpu_before: Duration,
) -> Result<RunOutcome, HarnessError> {
    tracing::info!(
        workload = config.workload.name(),
        nodes = config.plan.nodes.len(),
        seed = config.plan.seed,
        "run started"
    );
    let nodes = &config.plan.nodes;
    let latency = Latency::new(
        config.latency_ms,
        config.latency_dist,
        config.plan.seed.wrapping_add(2),
    );
    let network = if config.record_messages {
        Network::recorded(latency, config.net_logging)
    } else {
        Network::new(latency, config.net_logging)
    };
    // Maelstrom's services are on the network before any node starts, whatever the workload.
    let services = Services::start(&network, config.plan.seed.wrapping_add(3));
    let watch = Arc::new(DeathWatch::default());
    let wiring = Wiring {
        network: &network,
        watch: &watch,
        bad_output: config.bad_output,
    };
    let mut running = Vec::with_capacity(nodes.len());
    for node in nodes {
        let log = store.as_ref().map(|store| store.node_log_path(node));
        running.push(config.nodes.start(node, log.as_deref(), &wiring)?);
    }
    let tested = async {
        init_all(&network, nodes).await?;
        let clock = Clock::start();
        network.mark_clock_start();
        let workload = Workload::new(config.workload, config.topology.build(nodes));
        let setup_clients = setup_all(&network, &workload, nodes).await?;
        let history = Interpreter::new(config.plan.clone(), Arc::clone(&network), workload, clock)
            .run()
            .await;
        drop(setup_clients);
        Ok::<_, HarnessError>(history)
    }
    .await;
    network.heal();
    let crashes = teardown(&mut running).await;
    services.stop();
    let history = tested?;
    if !crashes.is_empty() {
        return Err(HarnessError::Crashed(crashes));
    }
    let analysis = check::analyze(config.workload, &history, &network.stats(), &config.check);
    let notes = RunNotes {
        stdout_deaths: watch.deaths(),
        harness_cpu: harness_cpu().saturating_sub(cpu_before),
        wall: started.elapsed(),
    };
    tracing::info!(valid = ?analysis.valid, "run finished");
    Ok(RunOutcome {
        analysis,
        notes,
        store,
        history,
        messages: network.message_log(),
    })
}

/// Inits every node in parallel, each from a fresh client; any failure aborts the test.
async fn init_all(network: &Arc<Network>, nodes: &[String]) -> Result<(), HarnessError> {
    try_join_all(nodes.iter().map(|node| async move {
        let mut client = Client::open(network);
        let body = json!({"type": "init", "node_id": node, "node_ids": nodes});
        let init_error = |reason| HarnessError::Init {
            node: node.clone(),
            reason,
        };
        let reply = client
            .rpc(node, object(body), INIT_TIMEOUT)
            .await
            .map_err(|error| init_error(error.to_string()))?;
        // init_ok is the one reply that is not schema-checked: only its type matters.
        match reply.get("type").and_then(Value::as_str) {
            Some("init_ok") => Ok(()),
            _ => Err(init_error(format!("answered {}", Value::Object(reply)))),
        }
    }))
    .await?;
    Ok(())
}

/// The workload's setup RPC on every node, from a fresh client each; the clients stay open
/// until teardown.
async fn setup_all(
    network: &Arc<Network>,
    workload: &Workload,
    nodes: &[String],
) -> Result<Vec<Client>, HarnessError> {
    let Some((request, expected)) = workload.setup_request() else {
        return Ok(Vec::new());
    };
    try_join_all(nodes.iter().map(|node| {
        let request = request.clone();
        async move {
            let mut client = Client::open(network);
            let reply = client.rpc(node, request, SETUP_TIMEOUT).await;
            match judge(reply, expected, &[]) {
                Reply::Valid(_) => Ok(client),
                other => Err(HarnessError::Setup {
                    node: node.clone(),
                    request: expected.to_string(),
                    reason: format!("{other:?}"),
                }),
            }
        }
    }))
    .await
}

/// Reports every node that already exited, then kills them all.
async fn teardown(running: &mut [RunningNode]) -> Vec<String> {
    let crashes = running
        .iter_mut()
        .filter_map(RunningNode::crash_report)
        .collect();
    for node in running.iter_mut() {
        node.kill().await;
    }
    crashes
}

/// CPU time this process has used (user + system), from `/proc/self/stat` in clock ticks of
/// 1/100 s (Linux's USER_HZ); zero where that is not readable.
fn harness_cpu() -> Duration {
    let Ok(stat) = std::fs::read_to_string("/proc/self/stat") else {
        return Duration::ZERO;
    };
    // Fields after the parenthesised command name; utime and stime are fields 14 and 15.
    let after_name = stat.rsplit_once(')').map_or("", |(_, rest)| rest);
    let ticks: u64 = after_name
        .split_whitespace()
        .skip(11)
        .take(2)
        .filter_map(|field| field.parse::<u64>().ok())
        .sum();
    Duration::from_millis(ticks * 10)
}

fn object(value: Value) -> serde_json::Map<String, Value> {
    match value {
        Value::Object(map) => map,
        _ => serde_json::Map::new(),
    }
}

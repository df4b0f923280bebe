//! `sluicegate test`: the flags of `maelstrom test`, plus `--seed`, `--json` and `--store`.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context;
use clap::ValueEnum;

use sluicegate::harness::{
    AvailabilityRequirement, BadOutput, CheckOptions, DiagramWindow, LatencyDist, Launcher,
    NetLogging, NodeSource, Plan, TestConfig, TopologyKind, WorkloadKind, describe, print_results,
    run, sweep,
};
use sluicegate::node::NodeConfig;

/// The workloads the harness can run.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum WorkloadArg {
    /// Echo: `echo` -> `echo_ok`.
    Echo,
    /// Unique ids: `generate` -> `generate_ok`.
    UniqueIds,
    /// Broadcast (Gossip Glomers 3a-3e).
    Broadcast,
    /// Grow-only counter (Gossip Glomers 4): `add` -> `add_ok`, `read` -> `read_ok`.
    GCounter,
    /// Kafka-style log (Gossip Glomers 5a-5c): send, poll, commit_offsets,
    /// list_committed_offsets.
    Kafka,
}

/// The only nemesis Maelstrom has.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum NemesisArg {
    /// Network partitions.
    Partition,
}

/// Flags of `sluicegate test`, named and defaulted as in `maelstrom test`.
#[derive(clap::Args, Debug)]
pub struct TestArgs {
    /// The workload to run.
    #[arg(short = 'w', long, value_enum)]
    workload: WorkloadArg,
    /// The node binary; arguments after `--` are passed to it.
    #[arg(long, required_unless_present = "in_process")]
    bin: Option<PathBuf>,
    /// Number of nodes, named n0..n{N-1}; without it, n1..n5 as in Maelstrom.
    #[arg(long, value_parser = clap::value_parser!(u16).range(1..))]
    node_count: Option<u16>,
    /// Client threads: an integer, or `<k>n` for k per node.
    #[arg(long, default_value = "1n", value_parser = parse_concurrency)]
    concurrency: Concurrency,
    /// Length of the main phase, in seconds.
    #[arg(long, default_value_t = 60)]
    time_limit: u64,
    /// Client operations per second, over all clients; 0 for none.
    #[arg(long, default_value_t = 5.0, value_parser = parse_rate)]
    rate: f64,
    /// Mean delay of server-to-server messages, in ms.
    #[arg(long, default_value_t = 0)]
    latency: u64,
    /// Distribution of that delay.
    #[arg(long, value_enum, default_value_t)]
    latency_dist: LatencyDist,
    /// Fault injection: `partition`.
    #[arg(long, value_enum)]
    nemesis: Option<NemesisArg>,
    /// Mean seconds between nemesis operations.
    #[arg(long, default_value_t = 10.0, value_parser = parse_rate)]
    nemesis_interval: f64,
    /// Broadcast topology.
    #[arg(long, value_enum, default_value_t)]
    topology: TopologyKind,
    /// Required availability: `total`, or a fraction of ops that must succeed.
    #[arg(long, value_parser = parse_availability)]
    availability: Option<AvailabilityRequirement>,
    /// Echo node stderr on the console (it always goes to the run's node-logs/).
    #[arg(long)]
    log_stderr: bool,
    /// Print every message the network accepts.
    #[arg(long)]
    log_net_send: bool,
    /// Print every message the network delivers.
    #[arg(long)]
    log_net_recv: bool,
    /// Seed of every random choice of the harness (printed when chosen at random).
    #[arg(long)]
    seed: Option<u64>,
    /// Print the results map as JSON instead of EDN.
    #[arg(long)]
    json: bool,
    /// Folder for run folders (results, history, node logs, plot).
    #[arg(long, default_value = "store")]
    store: PathBuf,
    /// On a bad stdout line, drop only that line instead of the node's later output.
    #[arg(long)]
    lenient: bool,
    /// Report duplicates as Maelstrom does (never), instead of flagging them.
    #[arg(long)]
    maelstrom_dup_quirk: bool,
    /// Run sluicegate's own node as tasks inside the harness on a virtual clock (deterministic
    /// for a seed, faster than real time) instead of processes of `--bin`. The node reads its
    /// settings from the same environment variables as `sluicegate-node`.
    #[arg(long, conflicts_with = "bin")]
    in_process: bool,
    /// Sweep: run the test once per seed from `--seed` (default 0) on, in-process, and report
    /// every seed whose run is invalid with the command that replays it.
    #[arg(long, requires = "in_process", value_parser = clap::value_parser!(u64).range(1..))]
    seeds: Option<u64>,
    /// Kafka: probability that an op is preceded by an assign, as a fraction (`1/8`, the
    /// default, as Maelstrom v0.2.3 which Fly.io users run; `1/64` as v0.2.4) or a decimal.
    #[arg(long, default_value = "1/8", value_parser = parse_probability)]
    kafka_assign_p: f64,
    /// Skip the debugging views (messages.svg, timeline.html, history.txt) and the message log
    /// they need.
    #[arg(long)]
    no_views: bool,
    /// Draw in messages.svg only the messages sent between these history times, in seconds
    /// (`5..10`, `..3`, `20..`; negative times are init and setup).
    #[arg(long, value_parser = parse_window, allow_hyphen_values = true)]
    diagram_window: Option<(Option<f64>, Option<f64>)>,
    /// Draw at most this many messages in messages.svg (the first sent in the window).
    #[arg(long, default_value_t = 2000)]
    diagram_messages: usize,
    /// Arguments for the node binary.
    #[arg(last = true)]
    args: Vec<String>,
}

/// `--concurrency`: a thread count, or a multiple of the node count.
#[derive(Clone, Copy, Debug)]
enum Concurrency {
    Threads(usize),
    PerNode(usize),
}

fn parse_concurrency(text: &str) -> Result<Concurrency, String> {
    let (number, per_node) = match text.strip_suffix('n') {
        Some(number) => (number, true),
        None => (text, false),
    };
    let count: usize = number
        .parse()
        .ok()
        .filter(|&count| count > 0)
        .ok_or_else(|| format!("expected a positive integer or <k>n, got {text:?}"))?;
    Ok(if per_node {
        Concurrency::PerNode(count)
    } else {
        Concurrency::Threads(count)
    })
}

fn parse_rate(text: &str) -> Result<f64, String> {
    text.parse::<f64>()
        .ok()
        .filter(|rate| rate.is_finite() && *rate >= 0.0)
        .ok_or_else(|| format!("expected a non-negative number, got {text:?}"))
}

fn parse_probability(text: &str) -> Result<f64, String> {
    let value = match text.split_once('/') {
        Some((num, den)) => match (num.trim().parse::<f64>(), den.trim().parse::<f64>()) {
            (Ok(num), Ok(den)) if den > 0.0 => Some(num / den),
            _ => None,
        },
        None => text.parse::<f64>().ok(),
    };
    value
        .filter(|p| (0.0..=1.0).contains(p))
        .ok_or_else(|| format!("expected a probability such as 1/8 or 0.125, got {text:?}"))
}

/// `FROM..TO` in seconds, either end optional.
fn parse_window(text: &str) -> Result<(Option<f64>, Option<f64>), String> {
    let (from, to) = text
        .split_once("..")
        .ok_or_else(|| format!("expected FROM..TO in seconds, got {text:?}"))?;
    let end = |part: &str| -> Result<Option<f64>, String> {
        if part.trim().is_empty() {
            return Ok(None);
        }
        part.trim()
            .parse::<f64>()
            .ok()
            .filter(|seconds| seconds.is_finite())
            .map(Some)
            .ok_or_else(|| format!("expected a number of seconds, got {part:?}"))
    };
    let (from, to) = (end(from)?, end(to)?);
    if let (Some(from), Some(to)) = (from, to)
        && from >= to
    {
        return Err(format!("the window {text:?} is empty"));
    }
    Ok((from, to))
}

fn parse_availability(text: &str) -> Result<AvailabilityRequirement, String> {
    if text == "total" {
        return Ok(AvailabilityRequirement::Total);
    }
    text.parse::<f64>()
        .ok()
        .filter(|fraction| (0.0..=1.0).contains(fraction))
        .map(AvailabilityRequirement::Fraction)
        .ok_or_else(|| format!("expected `total` or a fraction in 0..1, got {text:?}"))
}

impl TestArgs {
    /// True if in-process nodes' logs should also show on stderr (`--log-stderr`).
    pub fn echoes_node_logs(&self) -> bool {
        self.log_stderr
    }

    fn diagram(&self) -> DiagramWindow {
        let (from_s, to_s) = self.diagram_window.unwrap_or((None, None));
        DiagramWindow {
            from_s,
            to_s,
            max_messages: self.diagram_messages,
        }
    }

    fn into_config(self, seed: u64) -> anyhow::Result<TestConfig> {
        let nodes: Vec<String> = match self.node_count {
            Some(count) => (0..count).map(|k| format!("n{k}")).collect(),
            None => (1..=5).map(|k| format!("n{k}")).collect(),
        };
        let concurrency = match self.concurrency {
            Concurrency::Threads(threads) => threads,
            Concurrency::PerNode(k) => k * nodes.len(),
        };
        Ok(TestConfig {
            workload: match self.workload {
                WorkloadArg::Echo => WorkloadKind::Echo,
                WorkloadArg::UniqueIds => WorkloadKind::UniqueIds,
                WorkloadArg::Broadcast => WorkloadKind::Broadcast,
                WorkloadArg::GCounter => WorkloadKind::GCounter,
                WorkloadArg::Kafka => WorkloadKind::Kafka,
            },
            nodes: match self.bin {
                Some(bin) => NodeSource::Binary(Launcher::new(&bin, self.args, self.log_stderr)?),
                None => NodeSource::InProcess(NodeConfig::from_env()?),
            },
            plan: Plan {
                nodes,
                concurrency,
                time_limit: Duration::from_secs(self.time_limit),
                rate: self.rate,
                nemesis_interval: self
                    .nemesis
                    .map(|_| Duration::from_secs_f64(self.nemesis_interval)),
                seed,
                recovery_wait: sluicegate::harness::RECOVERY_WAIT,
                kafka_assign_p: self.kafka_assign_p,
            },
            latency_ms: self.latency,
            latency_dist: self.latency_dist,
            topology: self.topology,
            check: CheckOptions {
                availability: self.availability,
                maelstrom_dup_quirk: self.maelstrom_dup_quirk,
            },
            net_logging: NetLogging {
                sends: self.log_net_send,
                receives: self.log_net_recv,
            },
            bad_output: if self.lenient {
                BadOutput::DropLine
            } else {
                BadOutput::StdoutDies
            },
            store: Some(self.store),
            record_messages: !self.no_views,
        })
    }
}

/// Runs `sluicegate test`: exit 0 valid, 1 invalid, 2 unknown; an error means a crash (255).
pub fn run_test(args: TestArgs) -> anyhow::Result<ExitCode> {
    if let Some(count) = args.seeds {
        let first = args.seed.unwrap_or(0);
        return run_sweep(args.into_config(first)?, first, count);
    }
    let seed = args.seed.unwrap_or_else(rand::random);
    let json = args.json;
    let views = (!args.no_views).then(|| args.diagram());
    let config = args.into_config(seed)?;
    if config.workload == WorkloadKind::Kafka {
        tracing::info!(
            "kafka assign probability {} (--kafka-assign-p)",
            config.plan.kafka_assign_p
        );
    }
    tracing::info!(
        seed,
        "running {} nodes; replay with --seed {seed}",
        config.plan.nodes.len()
    );
    let runtime = match config.nodes {
        // Virtual time: one thread, and the clock jumps ahead whenever every task is waiting.
        NodeSource::InProcess(_) => tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .start_paused(true)
            .build(),
        NodeSource::Binary(_) => tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build(),
    }
    .context("starting the tokio runtime")?;
    let outcome = runtime.block_on(run(&config))?;
    // The store first: a reader that stops early (`| head -1`) must not cost the run folder.
    if let Some(store) = &outcome.store {
        store
            .write_all(&outcome.analysis, &outcome.history, &outcome.notes)
            .with_context(|| format!("writing {}", store.dir().display()))?;
        store
            .write_test_info(&config)
            .with_context(|| format!("writing {}", store.dir().display()))?;
        if let Some(window) = views {
            store
                .write_views(&outcome.history, outcome.messages.as_ref(), &window)
                .with_context(|| format!("writing the views in {}", store.dir().display()))?;
        }
    }
    let mut stdout = std::io::stdout().lock();
    match print_results(&outcome.analysis, &outcome.notes, json, &mut stdout) {
        Ok(()) => {}
        // Whoever reads stdout has seen all they wanted; the verdict still decides the exit.
        Err(error) if error.kind() == std::io::ErrorKind::BrokenPipe => {}
        Err(error) => return Err(error).context("printing the results"),
    }
    Ok(ExitCode::from(outcome.analysis.valid.exit_code()))
}

/// `--seeds N`: every seed's verdict, the failed ones with their replay command; exit 1 if any
/// failed.
fn run_sweep(config: TestConfig, first: u64, count: u64) -> anyhow::Result<ExitCode> {
    let workers = std::thread::available_parallelism().map_or(1, usize::from);
    let runs = sweep(&config, first, count, workers);
    let mut stdout = std::io::stdout().lock();
    match write!(stdout, "{}", describe(&runs, replay_command)) {
        Ok(()) => {}
        Err(error) if error.kind() == std::io::ErrorKind::BrokenPipe => {}
        Err(error) => return Err(error).context("printing the sweep"),
    }
    let all_passed = runs.iter().all(|run| run.passed());
    Ok(ExitCode::from(if all_passed { 0 } else { 1 }))
}

/// This command line without `--seeds`, with `--seed <seed>`.
fn replay_command(seed: u64) -> String {
    let mut words = Vec::new();
    let mut args = std::env::args();
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--seeds" | "--seed" => {
                args.next();
            }
            _ if arg.starts_with("--seeds=") || arg.starts_with("--seed=") => {}
            _ => words.push(arg),
        }
    }
    words.push(format!("--seed {seed}"));
    words.join(" ")
}

//! The harness's in-process mode: our node as tasks on tokio's paused clock. A seed fixes the
//! whole run, byte for byte; runs take a fraction of real time; a sweep finds a seed that breaks
//! a node, and that seed replays exactly.
#![cfg(feature = "harness")]

use std::time::Duration;

use sluicegate::harness::NodeSource;
use sluicegate::harness::sweep;
use sluicegate::harness::{RunOutcome, TestConfig, run};
use sluicegate::harness::{Validity, WorkloadKind};
use sluicegate::node::NodeConfig;

fn config(
    nodes: u16,
    rate: f64,
    latency_ms: u64,
    partitions: bool,
    node: NodeConfig,
) -> TestConfig {
    let mut config = TestConfig::new(
        WorkloadKind::Broadcast,
        NodeSource::InProcess(node),
        nodes.into(),
    );
    config.plan.time_limit = Duration::from_secs(20);
    config.plan.rate = rate;
    config.plan.nemesis_interval = partitions.then_some(Duration::from_secs(10));
    config.plan.seed = 11;
    config.latency_ms = latency_ms;
    config
}

/// The 3d/3e setting: 25 nodes, rate 100, 100 ms links.
fn efficiency(partitions: bool) -> TestConfig {
    config(25, 100.0, 100, partitions, NodeConfig::default())
}

fn run_virtual(config: &TestConfig) -> RunOutcome {
    tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .start_paused(true)
        .build()
        .expect("runtime")
        .block_on(run(config))
        .expect("the run completes")
}

fn fingerprint(outcome: &RunOutcome) -> (String, String) {
    (
        serde_json::to_string(&outcome.history).expect("history serializes"),
        outcome.analysis.results.pretty(),
    )
}

#[test]
fn the_same_seed_gives_the_same_history_and_results_byte_for_byte() {
    let config = efficiency(true);
    let first = run_virtual(&config);
    let second = run_virtual(&config);
    assert!(first.history.ops().len() > 4000);
    assert_eq!(fingerprint(&first), fingerprint(&second));
}

#[test]
fn another_seed_gives_another_history() {
    let mut config = config(5, 10.0, 0, true, NodeConfig::default());
    let first = run_virtual(&config);
    config.plan.seed += 1;
    let second = run_virtual(&config);
    assert_ne!(fingerprint(&first).0, fingerprint(&second).0);
}

#[test]
fn a_3e_sized_run_takes_a_fraction_of_its_thirty_virtual_seconds() {
    let started = std::time::Instant::now();
    let outcome = run_virtual(&efficiency(false));
    let wall = started.elapsed();
    assert_eq!(outcome.analysis.valid, Validity::Valid);
    // The main phase ends at the last op stamped before its 20 s cutoff (within one stagger
    // gap of it), then come the 10 s recovery wait and the final reads.
    let last = outcome.history.ops().last().map_or(0, |op| op.time);
    assert!(
        last >= 29_900_000_000,
        "about 20 s + 10 s recovery of virtual time, got {last} ns"
    );
    // The issue asks for <= 2 s in release builds; debug builds are several times slower.
    let budget = if cfg!(debug_assertions) { 20 } else { 2 };
    assert!(wall < Duration::from_secs(budget), "took {wall:?}");
}

#[test]
fn the_efficient_profile_meets_its_targets_in_virtual_time() {
    let outcome = run_virtual(&efficiency(false));
    let summary = &outcome.analysis.summary;
    let stable = summary.stable_latencies.as_ref().expect("stable values");
    assert!(
        summary.servers_msgs_per_op.is_some_and(|m| m <= 1.5),
        "{summary:?}"
    );
    assert!(stable.p50 <= 350 && stable.max <= 550, "{stable:?}");
}

#[test]
fn a_sweep_of_partition_schedules_loses_nothing() {
    let runs = sweep(&config(5, 10.0, 0, true, NodeConfig::default()), 0, 50, 2);
    assert_eq!(runs.len(), 50);
    let failed: Vec<u64> = runs
        .iter()
        .filter(|run| !run.passed())
        .map(|run| run.seed)
        .collect();
    assert!(failed.is_empty(), "failed seeds: {failed:?}");
}

#[test]
fn a_sweep_finds_the_seeds_that_break_a_node_without_retries_and_each_replays_exactly() {
    let never_retry = NodeConfig {
        retry_after: Duration::from_secs(3600),
        ..NodeConfig::default()
    };
    let base = config(5, 10.0, 0, true, never_retry);
    let runs = sweep(&base, 0, 40, 2);
    let failed: Vec<_> = runs.iter().filter(|run| !run.passed()).collect();
    assert!(
        !failed.is_empty(),
        "partitions must lose values when nothing is retried"
    );
    let seed = failed[0].seed;
    let mut replay = base.clone();
    replay.plan.seed = seed;
    let again = run_virtual(&replay);
    let swept = failed[0].outcome.as_ref().expect("the swept run completed");
    assert_eq!(again.analysis.valid, swept.valid);
    assert_eq!(again.analysis.summary, swept.summary);
    assert_eq!(fingerprint(&again), fingerprint(&run_virtual(&replay)));
}

//! Calibration against Maelstrom's published runs (docs/harness.md §9.3): the naive
//! neighbour-gossip node on 25 nodes at rate 100 must land where Maelstrom put it. Each run takes
//! ~35 s of wall clock and measures latency, so they are #[ignore]d here and run one at a time from
//! `.ci/run`: `cargo test --release --test harness_calibration -- --ignored --test-threads=1`.
#![cfg(feature = "harness")]

use std::path::PathBuf;
use std::time::Duration;

use sluicegate::harness::Launcher;
use sluicegate::harness::NodeSource;
use sluicegate::harness::TopologyKind;
use sluicegate::harness::{Summary, Validity, WorkloadKind};
use sluicegate::harness::{TestConfig, run};

async fn naive_gossip(topology: TopologyKind) -> Summary {
    let fixture = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/gossip_node.py");
    let launcher = Launcher::new(&fixture, vec!["naive".into()], false).expect("fixture exists");
    let mut config = TestConfig::new(WorkloadKind::Broadcast, NodeSource::Binary(launcher), 25);
    config.plan.time_limit = Duration::from_secs(20);
    config.plan.rate = 100.0;
    config.plan.seed = 1;
    config.latency_ms = 100;
    config.topology = topology;
    let outcome = run(&config).await.expect("the run completes");
    assert_eq!(
        outcome.analysis.valid,
        Validity::Valid,
        "{:?}",
        outcome.analysis.summary
    );
    eprintln!("{topology:?}: {:?}", outcome.analysis.summary);
    outcome.analysis.summary
}

fn within(measured: f64, published: f64, tolerance: f64) -> bool {
    (measured - published).abs() <= published * tolerance
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "35 s of wall clock; run alone by .ci/run"]
async fn naive_gossip_on_the_grid_matches_maelstroms_stable_latencies() {
    let summary = naive_gossip(TopologyKind::Grid).await;
    let stable = summary.stable_latencies.expect("values were stable");
    assert!(
        within(stable.p50 as f64, 452.0, 0.15),
        "p50 {} vs 452",
        stable.p50
    );
    assert!(
        within(stable.max as f64, 795.0, 0.15),
        "max {} vs 795",
        stable.max
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "35 s of wall clock; run alone by .ci/run"]
async fn naive_gossip_on_tree4_matches_maelstroms_message_count() {
    let summary = naive_gossip(TopologyKind::Tree4).await;
    let per_op = summary.servers_msgs_per_op.expect("ops ran") as f64;
    assert!(
        within(per_op, 12.0, 0.05),
        "servers msgs-per-op {per_op} vs 12.0"
    );
    let stable = summary.stable_latencies.expect("values were stable");
    assert!(
        within(stable.p50 as f64, 386.0, 0.15),
        "p50 {} vs 386",
        stable.p50
    );
    assert!(
        within(stable.max as f64, 505.0, 0.15),
        "max {} vs 505",
        stable.max
    );
}

//! The harness end to end, against the Python test node in `tests/fixtures/gossip_node.py`:
//! a correct node passes every workload, and each defective node is judged invalid for the
//! right reason. Every run is short; the long calibration runs live in `harness_calibration.rs`.

use std::path::PathBuf;
use std::time::Duration;

use crate::harness::check::{CheckOptions, Validity, WorkloadKind};
use crate::harness::nodes::NodeSource;
use crate::harness::process::Launcher;
use crate::harness::run::{RunOutcome, TestConfig, run};

fn fixture() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/gossip_node.py")
}

struct Setup {
    workload: WorkloadKind,
    mode: &'static str,
    nodes: u16,
    time_limit: u64,
    rate: f64,
    nemesis: bool,
}

impl Setup {
    fn broadcast(mode: &'static str, nodes: u16) -> Self {
        Setup {
            workload: WorkloadKind::Broadcast,
            mode,
            nodes,
            time_limit: 4,
            rate: 10.0,
            nemesis: false,
        }
    }

    async fn run(self) -> RunOutcome {
        let launcher =
            Launcher::new(&fixture(), vec![self.mode.to_string()], false).expect("fixture exists");
        let mut config = TestConfig::new(
            self.workload,
            NodeSource::Binary(launcher),
            self.nodes.into(),
        );
        config.plan.time_limit = Duration::from_secs(self.time_limit);
        config.plan.rate = self.rate;
        config.plan.nemesis_interval = self.nemesis.then_some(Duration::from_secs(1));
        config.plan.seed = 7;
        config.latency_ms = 10;
        run(&config).await.expect("the test itself does not crash")
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn naive_gossip_passes_broadcast_on_one_node() {
    let outcome = Setup::broadcast("naive", 1).run().await;
    assert_eq!(
        outcome.analysis.valid,
        Validity::Valid,
        "{:?}",
        outcome.analysis.summary
    );
    assert!(outcome.analysis.summary.stable_count > 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn naive_gossip_passes_broadcast_on_five_nodes_with_sane_counts() {
    let outcome = Setup::broadcast("naive", 5).run().await;
    let summary = &outcome.analysis.summary;
    assert_eq!(outcome.analysis.valid, Validity::Valid, "{summary:?}");
    assert_eq!((summary.lost_count, summary.never_read_count), (0, 0));
    // About rate x time-limit main-phase ops, plus one final read per node.
    assert!((25..=60).contains(&summary.op_count), "{summary:?}");
    let gossip = summary.servers_msgs_per_op.expect("ops ran");
    assert!(gossip > 0.5, "five nodes must gossip: {gossip}");
    assert!(outcome.notes.stdout_deaths.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retrying_gossip_survives_partitions_on_five_nodes() {
    let mut setup = Setup::broadcast("retry", 5);
    setup.nemesis = true;
    setup.time_limit = 6;
    let outcome = setup.run().await;
    let summary = &outcome.analysis.summary;
    assert_eq!(outcome.analysis.valid, Validity::Valid, "{summary:?}");
    let nemesis_ops = outcome
        .history
        .ops()
        .iter()
        .filter(|op| !op.is_client())
        .count();
    assert!(
        nemesis_ops >= 4,
        "partitions started and healed: {nemesis_ops}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_that_never_gossips_loses_values() {
    let outcome = Setup::broadcast("silent", 5).run().await;
    assert_eq!(outcome.analysis.valid, Validity::Invalid);
    assert!(
        outcome.analysis.summary.lost_count > 0,
        "{:?}",
        outcome.analysis.summary
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_that_drops_some_gossip_loses_exactly_those_values() {
    let outcome = Setup::broadcast("drop-some", 5).run().await;
    assert_eq!(outcome.analysis.valid, Validity::Invalid);
    assert!(
        outcome.analysis.summary.lost_count > 0,
        "{:?}",
        outcome.analysis.summary
    );
    let lost = crate::harness::check::set_full::check(&outcome.history, false);
    assert!(
        lost.lost()
            .iter()
            .all(|result| result.element.as_u64().is_some_and(|v| v % 5 == 0))
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_that_reads_a_value_twice_is_flagged_unless_the_quirk_is_asked_for() {
    let outcome = Setup::broadcast("duplicate", 1).run().await;
    assert_eq!(outcome.analysis.valid, Validity::Invalid);
    assert!(outcome.analysis.summary.duplicated_count > 0);
    let quirk = crate::harness::check::analyze(
        WorkloadKind::Broadcast,
        &outcome.history,
        &crate::harness::net_stats::NetStats::default(),
        &CheckOptions {
            maelstrom_dup_quirk: true,
            ..CheckOptions::default()
        },
    );
    assert_eq!(quirk.valid, Validity::Valid);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_line_of_debug_output_kills_the_nodes_stdout_as_in_maelstrom() {
    let outcome = Setup::broadcast("junk", 1).run().await;
    assert_eq!(
        outcome.analysis.valid,
        Validity::Invalid,
        "no op can succeed after it"
    );
    let deaths = &outcome.notes.stdout_deaths;
    assert_eq!(deaths.len(), 1);
    assert_eq!(deaths[0].node, "n0");
    assert!(
        deaths[0].example.contains("debug: got a broadcast"),
        "{deaths:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_extra_key_in_a_reply_makes_every_read_indeterminate() {
    let outcome = Setup::broadcast("extra-key", 1).run().await;
    assert_eq!(outcome.analysis.valid, Validity::Invalid);
    let reads = outcome.history.ops().iter().filter(|op| {
        op.f == crate::harness::history::OpFn::Read
            && op.kind == crate::harness::history::OpType::Info
    });
    assert!(reads.clone().count() > 0);
    assert!(
        reads
            .clone()
            .all(|op| op.exception.as_deref().is_some_and(|e| e.contains("node")))
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn echo_passes_against_an_echoing_node() {
    let setup = Setup {
        workload: WorkloadKind::Echo,
        mode: "naive",
        nodes: 1,
        time_limit: 2,
        rate: 20.0,
        nemesis: false,
    };
    let outcome = setup.run().await;
    assert_eq!(
        outcome.analysis.valid,
        Validity::Valid,
        "{:?}",
        outcome.analysis.summary
    );
    assert!(outcome.analysis.summary.op_count >= 20);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unique_ids_passes_with_partitions_and_total_availability() {
    let setup = Setup {
        workload: WorkloadKind::UniqueIds,
        mode: "naive",
        nodes: 3,
        time_limit: 3,
        rate: 100.0,
        nemesis: true,
    };
    let outcome = setup.run().await;
    assert_eq!(
        outcome.analysis.valid,
        Validity::Valid,
        "{:?}",
        outcome.analysis.summary
    );
    assert_eq!(outcome.analysis.summary.ok_fraction, 1.0);
}

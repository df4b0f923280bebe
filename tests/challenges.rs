//! The Fly.io Gossip Glomers broadcast challenges 3a-3e, run against our node
//! (`sluicegate-node`) in our harness with the exact Maelstrom command lines
//! (docs/harness.md §9.1). Each run takes 30+ s of wall clock, so they are #[ignore]d here and
//! run by `.ci/run`: `cargo test --release --test challenges -- --ignored --test-threads=1`.
#![cfg(all(feature = "harness", feature = "cli"))]

use std::path::PathBuf;
use std::time::Duration;

use sluicegate::harness::Launcher;
use sluicegate::harness::NodeSource;
use sluicegate::harness::{Summary, Validity, WorkloadKind};
use sluicegate::harness::{TestConfig, run};
use sluicegate::node::NodeConfig;

/// `--node-count N --time-limit 20 --rate R --latency L [--nemesis partition]` on our node.
struct Challenge {
    nodes: u16,
    rate: f64,
    latency_ms: u64,
    partitions: bool,
    profile: &'static str,
}

const SMALL: Challenge = Challenge {
    nodes: 5,
    rate: 10.0,
    latency_ms: 0,
    partitions: false,
    profile: "efficient",
};
const EFFICIENCY: Challenge = Challenge {
    nodes: 25,
    rate: 100.0,
    latency_ms: 100,
    partitions: false,
    profile: "efficient",
};

impl Challenge {
    fn config(&self, nodes: NodeSource) -> TestConfig {
        let mut config = TestConfig::new(WorkloadKind::Broadcast, nodes, self.nodes.into());
        config.plan.time_limit = Duration::from_secs(20);
        config.plan.rate = self.rate;
        config.plan.nemesis_interval = self.partitions.then_some(Duration::from_secs(10));
        config.plan.seed = 42;
        config.latency_ms = self.latency_ms;
        config
    }

    /// The same challenge with the node as tasks on a paused clock, on a thread of its own; the
    /// run must be valid and lose nothing, as the process run must.
    fn run_in_virtual_time(&self) -> Summary {
        let profile = self.profile.parse().expect("a known profile");
        let config = self.config(NodeSource::InProcess(NodeConfig::for_profile(profile)));
        std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_time()
                .start_paused(true)
                .build()
                .expect("runtime");
            let outcome = runtime.block_on(run(&config)).expect("the run completes");
            let summary = outcome.analysis.summary;
            assert_eq!(
                outcome.analysis.valid,
                Validity::Valid,
                "in-process: {summary:?}"
            );
            assert_eq!(summary.lost_count, 0, "in-process: {summary:?}");
            summary
        })
        .join()
        .expect("the virtual run finishes")
    }

    async fn run(&self) -> Summary {
        let mut launcher = Launcher::new(
            &PathBuf::from(env!("CARGO_BIN_EXE_sluicegate-node")),
            Vec::new(),
            false,
        )
        .expect("the node binary was built");
        launcher
            .env
            .push(("SLUICEGATE_PROFILE".into(), self.profile.into()));
        let config = self.config(NodeSource::Binary(launcher));
        let outcome = run(&config).await.expect("the run completes");
        let summary = outcome.analysis.summary;
        eprintln!("{summary:?}");
        assert_eq!(outcome.analysis.valid, Validity::Valid, "{summary:?}");
        assert_eq!(summary.lost_count, 0);
        assert!(
            outcome.notes.stdout_deaths.is_empty(),
            "{:?}",
            outcome.notes.stdout_deaths
        );
        summary
    }
}

fn msgs_per_op(summary: &Summary) -> f32 {
    summary.servers_msgs_per_op.expect("operations ran")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "30 s of wall clock; run by .ci/run"]
async fn challenge_3a_single_node() {
    Challenge { nodes: 1, ..SMALL }.run().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "30 s of wall clock; run by .ci/run"]
async fn challenge_3b_five_nodes() {
    SMALL.run().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "30 s of wall clock; run by .ci/run"]
async fn challenge_3c_five_nodes_with_partitions() {
    Challenge {
        partitions: true,
        ..SMALL
    }
    .run()
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "30 s of wall clock; run by .ci/run"]
async fn challenge_3d_and_3e_efficient_profile() {
    let summary = EFFICIENCY.run().await;
    let stable = summary.stable_latencies.expect("values were stable");
    // 3d: < 30 msgs-per-op, p50 < 400 ms, max < 600 ms; 3e: < 20, < 1 s, < 2 s.
    assert!(msgs_per_op(&summary) < 20.0, "{summary:?}");
    assert!(stable.p50 < 400 && stable.max < 600, "{stable:?}");
    // Our own target for this profile: <= 1.5 msgs-per-op, p50 <= 350 ms, max <= 550 ms.
    assert!(msgs_per_op(&summary) <= 1.5, "{summary:?}");
    assert!(stable.p50 <= 350 && stable.max <= 550, "{stable:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "30 s of wall clock; run by .ci/run"]
async fn challenge_3d_and_3e_fast_profile() {
    let summary = Challenge {
        profile: "fast",
        ..EFFICIENCY
    }
    .run()
    .await;
    let stable = summary.stable_latencies.expect("values were stable");
    assert!(msgs_per_op(&summary) < 20.0, "{summary:?}");
    assert!(stable.p50 < 400 && stable.max < 600, "{stable:?}");
    // Our target for this profile (docs/node.md): max <= 150 ms with <= 12.2 msgs-per-op; its
    // floor is 11.4-12.1 depending on the run's broadcast/read mix.
    assert!(stable.max <= 150, "{stable:?}");
    assert!(msgs_per_op(&summary) <= 12.2, "{summary:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "30 s of wall clock; run by .ci/run"]
async fn challenge_3d_stays_valid_under_partitions() {
    Challenge {
        partitions: true,
        ..EFFICIENCY
    }
    .run()
    .await;
}

/// Agreement of the in-process mode with real processes: the same figures within the noise of
/// the process runs. Bands measured: msgs-per-op within 2 %, p50 within 5 %, max within 5 %
/// on 3d; tested with room to spare.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "30 s of wall clock; run by .ci/run"]
async fn in_process_mode_agrees_with_processes_on_3d() {
    let processes = EFFICIENCY.run().await;
    let virtual_time = EFFICIENCY.run_in_virtual_time();
    let close = |a: f64, b: f64, band: f64| (a - b).abs() <= b * band;
    let (p, v) = (
        msgs_per_op(&processes) as f64,
        msgs_per_op(&virtual_time) as f64,
    );
    assert!(close(v, p, 0.10), "msgs-per-op {v} in process vs {p}");
    let (p, v) = (
        processes.stable_latencies.expect("stable"),
        virtual_time.stable_latencies.expect("stable"),
    );
    assert!(
        close(v.p50 as f64, p.p50 as f64, 0.15),
        "p50 {} vs {}",
        v.p50,
        p.p50
    );
    assert!(
        close(v.max as f64, p.max as f64, 0.15),
        "max {} vs {}",
        v.max,
        p.max
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "30 s of wall clock; run by .ci/run"]
async fn in_process_mode_agrees_with_processes_on_3c() {
    let challenge = Challenge {
        partitions: true,
        ..SMALL
    };
    let processes = challenge.run().await;
    let virtual_time = challenge.run_in_virtual_time();
    let (p, v) = (
        msgs_per_op(&processes) as f64,
        msgs_per_op(&virtual_time) as f64,
    );
    // docs/harness-usage.md: within 15 % (partitions cut at different instants of the gossip in
    // the two modes, so the retries differ a little).
    assert!(
        (v - p).abs() <= p * 0.15,
        "msgs-per-op {v} in process vs {p}"
    );
}

/// 3b (5 nodes, no latency): measured 1.12 msgs-per-op in both modes, stable p95/max 325/337 ms
/// with processes vs 326/338 ms in-process (seed 42).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "30 s of wall clock; run by .ci/run"]
async fn in_process_mode_agrees_with_processes_on_3b() {
    let processes = SMALL.run().await;
    let virtual_time = SMALL.run_in_virtual_time();
    let (p, v) = (
        msgs_per_op(&processes) as f64,
        msgs_per_op(&virtual_time) as f64,
    );
    assert!(
        (v - p).abs() <= p * 0.10,
        "msgs-per-op {v} in process vs {p}"
    );
    let (p, v) = (
        processes.stable_latencies.expect("stable"),
        virtual_time.stable_latencies.expect("stable"),
    );
    let close = |a: u64, b: u64| a.abs_diff(b) as f64 <= b as f64 * 0.15 + 20.0;
    assert!(close(v.p95, p.p95), "p95 {} vs {}", v.p95, p.p95);
    assert!(close(v.max, p.max), "max {} vs {}", v.max, p.max);
}

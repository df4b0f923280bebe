//! The g-counter and kafka workloads end to end, with Maelstrom's services, against small
//! Python fixture nodes (tests/fixtures/counter_node.py, kafka_node.py): the designs the harness
//! must judge invalid, each by the anomaly it shows, and the ones it must judge valid.
//!
//! Runs are shortened (a 3 s main phase, a 1 s recovery wait instead of 10 s) so each takes a
//! few seconds; they mostly wait, so run them with many test threads (`.ci/kv-fixtures.sh`).
//! Those that need more than about 10 s are #[ignore]d and run by that script.
#![cfg(feature = "harness")]

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::time::Duration;

use futures::future::join_all;
use futures::{StreamExt, stream};
use serde_json::json;
use sluicegate::harness::{
    Edn, Launcher, NodeSource, RunOutcome, TestConfig, Validity, WorkloadKind,
};
use sluicegate::harness::{OpFn, OpType, run};

fn fixture(script: &str, mode: &[&str]) -> NodeSource {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(script);
    let args = mode.iter().map(|arg| arg.to_string()).collect();
    NodeSource::Binary(Launcher::new(&path, args, false).expect("the fixture exists"))
}

/// Challenge 4's shape, shortened: 3 nodes, rate 100.
fn counter(mode: &[&str], seed: u64, partitions: bool) -> TestConfig {
    let mut config = TestConfig::new(WorkloadKind::GCounter, fixture("counter_node.py", mode), 3);
    config.plan.time_limit = Duration::from_secs(3);
    config.plan.rate = 100.0;
    config.plan.seed = seed;
    config.plan.recovery_wait = Duration::from_secs(1);
    config.plan.nemesis_interval = partitions.then_some(Duration::from_secs(1));
    config
}

/// Challenge 5a's shape (5b with two nodes), shortened: two clients per node, rate 1000.
fn kafka(mode: &str, nodes: usize) -> TestConfig {
    let mut config = TestConfig::new(
        WorkloadKind::Kafka,
        fixture("kafka_node.py", &[mode]),
        nodes,
    );
    config.plan.concurrency = 2 * nodes;
    config.plan.time_limit = Duration::from_secs(3);
    config.plan.rate = 1000.0;
    config.plan.seed = 3;
    config.plan.recovery_wait = Duration::from_secs(1);
    config
}

async fn outcome(config: &TestConfig) -> RunOutcome {
    tokio::time::timeout(Duration::from_secs(120), run(config))
        .await
        .expect("the run ends")
        .expect("the run completes")
}

fn workload_text(outcome: &RunOutcome) -> String {
    outcome
        .analysis
        .results
        .get("workload")
        .map(ToString::to_string)
        .unwrap_or_default()
}

/// Asserts the kafka run is invalid and names `anomaly` among its bad error types.
async fn kafka_names(mode: &str, nodes: usize, anomaly: &str) -> RunOutcome {
    let outcome = outcome(&kafka(mode, nodes)).await;
    let summary = &outcome.analysis.summary;
    assert_eq!(
        outcome.analysis.valid,
        Validity::Invalid,
        "{mode}: {summary:?}"
    );
    assert!(
        summary.kafka_error_types.iter().any(|t| t == anomaly),
        "{mode}: expected {anomaly} in {:?}",
        summary.kafka_error_types
    );
    assert!(workload_text(&outcome).contains(":bad-error-types ("));
    outcome
}

async fn kafka_valid(mode: &str, nodes: usize) -> RunOutcome {
    let outcome = outcome(&kafka(mode, nodes)).await;
    assert_eq!(
        outcome.analysis.valid,
        Validity::Valid,
        "{mode}: {}",
        outcome.analysis.results
    );
    outcome
}

fn final_reads(outcome: &RunOutcome) -> String {
    outcome
        .analysis
        .results
        .get("workload")
        .and_then(|w| w.get("final-reads"))
        .map(ToString::to_string)
        .unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn g1_a_local_only_counter_is_invalid() {
    let outcome = outcome(&counter(&["local"], 1, false)).await;
    assert_eq!(
        outcome.analysis.valid,
        Validity::Invalid,
        "{}",
        final_reads(&outcome)
    );
    assert!(outcome.analysis.summary.counter_errors >= 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn g2_read_then_write_on_one_seq_kv_key_loses_adds() {
    let outcome = outcome(&counter(&["kv-read-write"], 2, false)).await;
    assert_eq!(
        outcome.analysis.valid,
        Validity::Invalid,
        "{}",
        final_reads(&outcome)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn g3_increments_sent_once_are_lost_under_partitions_and_fine_without() {
    let mut config = counter(&["crdt-once"], 3, true);
    config.plan.time_limit = Duration::from_secs(4);
    let calm_config = counter(&["crdt-once"], 3, false);
    let (partitioned, calm) = tokio::join!(outcome(&config), outcome(&calm_config));
    assert_eq!(
        partitioned.analysis.valid,
        Validity::Invalid,
        "{}",
        final_reads(&partitioned)
    );
    assert_eq!(
        calm.analysis.valid,
        Validity::Valid,
        "{}",
        final_reads(&calm)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn g4_gossip_without_dedup_overcounts() {
    let outcome = outcome(&counter(&["no-dedup"], 4, false)).await;
    assert_eq!(
        outcome.analysis.valid,
        Validity::Invalid,
        "{}",
        final_reads(&outcome)
    );
    let text = workload_text(&outcome);
    assert!(text.contains(":errors ({"), "{text}");
}

/// G5's seeds and how many of its runs go at once (each is three Python nodes; more at once
/// slows every node, and with them the run). Five, as the other fixture tests run at most: a
/// CI run with ten at a time once stalled with every run idle (not understood yet).
const G5_SEEDS: u64 = 40;
const G5_AT_ONCE: usize = 5;

/// G5: per-node keys read back with plain seq-kv reads. A final read is stale only when some
/// other node's last write landed after this node's last-served version; every main-phase read
/// pulls that version forward (uniformly between it and the newest), so only the last few
/// versions before the final phase can be missed, and most runs end with every node current.
/// Under Maelstrom's algorithm (its `Sequential`, the g-counter mix, Jepsen's thread cursor,
/// 3 nodes, rate 100) a run is invalid with probability p = 0.20 to 0.21 (a model of exactly
/// that over 1000 to 3000 seeds, for 1 s, 3 s and 20 s main phases alike; our `SeqKv` gives
/// 0.198, see services/tests.rs), and the harness measured 30 of 160 in this shape (8, 6, 10
/// and 6 of 40). So the spec's "invalid in most seeds; at least 1 in 5" cannot hold reliably:
/// 0 of 5 has probability 0.8^5 = 0.33. Over 40 seeds it is 0.8^40 = 1e-4 (0.6 % even at
/// p = 0.12), so 0 invalid means seq-kv no longer serves stale versions. The upper bound, at
/// most half invalid (5e-6 at p = 0.2, 0.2 % at p = 0.3), catches the other direction, reads
/// that never catch up (a seq-kv that forgot each node's last-served version makes every run
/// invalid). The 1 s main phase and 100 ms recovery wait change none of this (seq-kv has no
/// clock) and keep the test near 30 s.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "40 runs, about 30 s: .ci/kv-fixtures.sh runs it"]
async fn g5_plain_seq_kv_reads_are_stale_at_the_end_in_some_seeds() {
    let configs: Vec<TestConfig> = (0..G5_SEEDS)
        .map(|seed| {
            let mut config = counter(&["per-node-plain"], seed, false);
            config.plan.time_limit = Duration::from_secs(1);
            config.plan.recovery_wait = Duration::from_millis(100);
            config
        })
        .collect();
    let outcomes: Vec<RunOutcome> = stream::iter(configs.iter().map(outcome))
        .buffer_unordered(G5_AT_ONCE)
        .collect()
        .await;
    let mut invalid = 0;
    for outcome in &outcomes {
        let summary = &outcome.analysis.summary;
        let workload = outcome
            .analysis
            .results
            .get("workload")
            .map(Edn::to_json)
            .unwrap_or_default();
        assert_eq!(summary.counter_final_reads, 3, "{workload}");
        // The most a final read may show: every add, the indeterminate ones too.
        let most = workload["acceptable"]
            .as_array()
            .and_then(|ranges| ranges.last())
            .and_then(|range| range[1].as_i64())
            .expect("an acceptable range");
        if outcome.analysis.valid == Validity::Valid {
            continue;
        }
        invalid += 1;
        // The anomaly: the workload checker's errors, each a final read that missed some adds
        // (a stale read under-counts; a count above every add would be a harness bug).
        assert_eq!(outcome.analysis.valid, Validity::Invalid, "{workload}");
        assert_eq!(workload["valid?"], json!(false), "{workload}");
        let errors = workload["errors"].as_array().expect("errors listed");
        assert_eq!(errors.len() as u64, summary.counter_errors, "{workload}");
        assert!(!errors.is_empty(), "{workload}");
        for error in errors {
            assert_eq!(error["final?"], json!(true), "{workload}");
            let value = error["value"].as_i64().expect("an integer read");
            assert!(value < most, "a stale read is below {most}: {workload}");
        }
    }
    eprintln!("G5 per-node-plain: {invalid} of {G5_SEEDS} seeds invalid");
    assert!(
        invalid >= 1,
        "no stale final read in {G5_SEEDS} seeds (expected about a fifth)"
    );
    assert!(
        invalid <= G5_SEEDS / 2,
        "{invalid} of {G5_SEEDS} seeds invalid (expected about a fifth)"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn v1_a_fresh_write_before_reading_per_node_keys_is_valid() {
    let outcome = outcome(&counter(&["per-node-fresh"], 5, false)).await;
    assert_eq!(
        outcome.analysis.valid,
        Validity::Valid,
        "{}",
        final_reads(&outcome)
    );
    let acceptable = outcome
        .analysis
        .results
        .get("workload")
        .and_then(|w| w.get("acceptable"))
        .map(ToString::to_string)
        .unwrap_or_default();
    let point = acceptable.trim_matches(|c| c == '(' || c == ')' || c == '[' || c == ']');
    let bounds: Vec<&str> = point.split(' ').collect();
    assert_eq!(bounds.len(), 2, "{acceptable}");
    assert_eq!(bounds[0], bounds[1], "one point: {acceptable}");
    assert!(outcome.analysis.summary.servers_msgs_per_op.unwrap_or(0.0) > 0.0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn v2_a_state_crdt_is_valid_despite_partitions_and_clients_count_two_per_op() {
    let outcome = outcome(&counter(&["crdt-state"], 6, true)).await;
    assert_eq!(
        outcome.analysis.valid,
        Validity::Valid,
        "{}",
        final_reads(&outcome)
    );
    let summary = &outcome.analysis.summary;
    let clients = outcome
        .analysis
        .results
        .get("net")
        .and_then(|n| n.get("clients"))
        .and_then(|c| c.get("msg-count"))
        .map(ToString::to_string)
        .unwrap_or_default();
    assert_eq!(clients, (2 * 3 + 2 * summary.op_count).to_string());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn v3_a_cas_retry_loop_on_one_seq_kv_key_is_valid_in_five_seeds() {
    let configs: Vec<TestConfig> = (10..15)
        .map(|seed| counter(&["cas-loop"], seed, false))
        .collect();
    for outcome in join_all(configs.iter().map(outcome)).await {
        assert_eq!(
            outcome.analysis.valid,
            Validity::Valid,
            "{}",
            final_reads(&outcome)
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "reads time out for 5 s each: about 15 s; run by .ci/kv-fixtures.sh"]
async fn v4_final_reads_that_time_out_are_dropped_and_the_run_is_valid() {
    let outcome = outcome(&counter(&["stop-reads", "2"], 7, false)).await;
    assert_eq!(
        outcome.analysis.valid,
        Validity::Valid,
        "{}",
        outcome.analysis.results
    );
    assert_eq!(final_reads(&outcome), "()");
    let info_final_reads = outcome
        .history
        .ops()
        .iter()
        .filter(|op| op.final_read && op.kind == OpType::Info && op.f == OpFn::Read)
        .count();
    assert_eq!(info_final_reads, 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn k1_shared_offsets_are_inconsistent() {
    kafka_names("half-offset", 1, "inconsistent-offsets").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "the final polls wait the full 10 s for the unstored messages; run by .ci/kv-fixtures.sh"]
async fn k2_acked_but_unstored_messages_are_unseen_and_the_final_phase_waits_for_them() {
    let outcome = kafka_names("ack-no-store", 1, "unseen").await;
    let ops = outcome.history.ops();
    // The final phase polls until every key's highest acked offset is polled. When the last
    // acked send of some key is one the fixture never stored, that never happens, and the phase
    // must run to its 10 s limit; otherwise it ends once the stored ones are polled. Which case a
    // run is in depends on how the sends interleave, so the history decides which to assert.
    let mut highest_acked: BTreeMap<String, i64> = BTreeMap::new();
    let mut polled: BTreeSet<(String, i64)> = BTreeSet::new();
    for op in ops.iter().filter(|op| op.kind == OpType::Ok) {
        for mop in op.value.as_array().into_iter().flatten() {
            match mop.as_array().map(Vec::as_slice) {
                Some([f, key, pair]) if f == "send" => {
                    if let (Some(key), Some(offset)) = (key.as_str(), pair[0].as_i64()) {
                        let at = highest_acked.entry(key.to_owned()).or_insert(offset);
                        *at = (*at).max(offset);
                    }
                }
                Some([f, serde_json::Value::Object(msgs)]) if f == "poll" => {
                    for (key, pairs) in msgs {
                        for pair in pairs.as_array().into_iter().flatten() {
                            if let Some(offset) = pair[0].as_i64() {
                                polled.insert((key.clone(), offset));
                            }
                        }
                    }
                }
                _ => {}
            }
        }
    }
    let never_polled = highest_acked
        .iter()
        .any(|(key, &offset)| !polled.contains(&(key.clone(), offset)));
    let first_final = ops.iter().find(|op| op.final_read).map(|op| op.time);
    let last = ops.last().map(|op| op.time);
    let lasted = last.zip(first_final).map(|(l, f)| l - f).unwrap_or(0);
    if never_polled {
        assert!(
            lasted >= 9_500_000_000,
            "a key's highest acked offset was never polled, yet the final phase lasted {lasted} ns"
        );
    } else {
        assert!(
            lasted < 9_500_000_000,
            "every key's highest acked offset was polled, yet the final phase ran to its limit"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn k3_offsets_counting_down_are_nonmonotonic_sends() {
    kafka_names("countdown", 1, "nonmonotonic-send").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn k4_polls_from_zero_are_nonmonotonic() {
    kafka_names("from-zero", 1, "nonmonotonic-poll").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn k5_descending_pairs_are_internally_nonmonotonic() {
    kafka_names("descending", 1, "int-nonmonotonic-poll").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn k6_every_second_message_is_an_internal_skip() {
    kafka_names("every-second", 1, "int-poll-skip").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn k7_messages_stored_twice_are_duplicates() {
    kafka_names("twice", 1, "duplicate").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn k8_failed_sends_that_are_polled_are_g1a() {
    kafka_names("fail-fifth", 1, "G1a").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn k9_two_nodes_with_their_own_logs_are_inconsistent() {
    kafka_names("split", 2, "inconsistent-offsets").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn k10_failed_commits_show_as_poll_skips() {
    kafka_names("commit-fail", 1, "poll-skip").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kv1_an_in_memory_log_is_valid_with_no_server_traffic_and_a_short_final_phase() {
    let outcome = kafka_valid("memory", 1).await;
    let summary = &outcome.analysis.summary;
    assert_eq!(summary.servers_msgs_per_op, Some(0.0));
    assert!(summary.ok_fraction < 1.0, "crashes are :info");
    assert!(summary.send_latencies.is_some() && summary.poll_latencies.is_some());
    let ops = outcome.history.ops();
    let first_final = ops.iter().find(|op| op.final_read).map(|op| op.time);
    let last = ops.last().map(|op| op.time);
    let lasted = last
        .zip(first_final)
        .map(|(l, f)| l - f)
        .unwrap_or(u64::MAX);
    assert!(lasted < 2_000_000_000, "the final phase lasted {lasted} ns");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kv2_ignoring_commits_passes_because_assign_never_uses_them() {
    kafka_valid("no-commit", 1).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kv3_keys_owned_by_one_node_with_forwarding_are_valid_and_only_forwarding_counts() {
    let outcome = kafka_valid("owner", 2).await;
    let servers = outcome.analysis.summary.servers_msgs_per_op.unwrap_or(0.0);
    // About half the sends and polls forward one RPC (two messages): around 1 per op.
    assert!(
        servers > 0.2 && servers < 2.5,
        "servers msgs-per-op {servers}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn services_are_never_partitioned() {
    // V1 reads every node's key from seq-kv: under partitions it still sees all of them.
    let outcome = outcome(&counter(&["per-node-fresh"], 8, true)).await;
    assert_eq!(
        outcome.analysis.valid,
        Validity::Valid,
        "{}",
        final_reads(&outcome)
    );
    let partitions = outcome
        .history
        .ops()
        .iter()
        .filter(|op| op.f == OpFn::StartPartition && op.kind == OpType::Info)
        .count();
    assert!(
        partitions >= 2,
        "the nemesis ran ({partitions} partition ops)"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kv4_a_whole_log_per_lin_kv_key_is_valid_on_two_nodes() {
    let outcome = kafka_valid("lin-kv-log", 2).await;
    let servers = outcome
        .analysis
        .results
        .get("net")
        .and_then(|n| n.get("servers"))
        .and_then(|s| s.get("msg-count"))
        .map(ToString::to_string)
        .unwrap_or_default();
    let count: u64 = servers.parse().unwrap_or(0);
    assert!(
        count > 0 && count.is_multiple_of(2),
        "two messages per service RPC: {count}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kv5_empty_lists_for_keys_with_nothing_new_are_fine() {
    kafka_valid("empty-lists", 1).await;
}

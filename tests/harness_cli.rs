//! `sluicegate test` as a Maelstrom user runs it: same flags, results map and verdict on stdout,
//! Maelstrom's exit codes, and a run folder in the store.
#![cfg(all(feature = "harness", feature = "cli", feature = "ingest"))]

use std::path::PathBuf;
use std::process::{Command, Output};

fn sluicegate(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_sluicegate"))
        .args(args)
        .output()
        .expect("the sluicegate binary runs")
}

fn fixture() -> String {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/gossip_node.py")
        .display()
        .to_string()
}

#[test]
fn bad_arguments_exit_254_like_maelstrom() {
    let output = sluicegate(&["test", "-w", "broadcast", "--bin", "x", "--rate", "fast"]);
    assert_eq!(output.status.code(), Some(254));
    let output = sluicegate(&["test", "-w", "no-such-workload", "--bin", "x"]);
    assert_eq!(output.status.code(), Some(254));
}

#[test]
fn a_missing_node_binary_is_a_crash_with_exit_255() {
    let store = tempfile::tempdir().expect("temp dir");
    let store = store.path().display().to_string();
    let output = sluicegate(&[
        "test",
        "-w",
        "echo",
        "--bin",
        "/nonexistent/node",
        "--store",
        &store,
    ]);
    assert_eq!(output.status.code(), Some(255));
    assert!(String::from_utf8_lossy(&output.stderr).contains("/nonexistent/node"));
}

#[test]
fn a_passing_run_prints_the_results_map_the_verdict_and_a_summary_and_stores_them() {
    let store = tempfile::tempdir().expect("temp dir");
    let store_arg = store.path().display().to_string();
    let bin = fixture();
    let output = sluicegate(&[
        "test",
        "-w",
        "echo",
        "--bin",
        &bin,
        "--node-count",
        "1",
        "--time-limit",
        "2",
        "--rate",
        "10",
        "--seed",
        "3",
        "--store",
        &store_arg,
    ]);
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert_eq!(output.status.code(), Some(0), "{stdout}");
    assert!(stdout.starts_with("{:perf"), "{stdout}");
    assert!(
        stdout.contains("Everything looks good! ヽ(‘ー`)ノ"),
        "{stdout}"
    );
    let latest = store.path().join("latest");
    for file in [
        "results.edn",
        "results.json",
        "history.edn",
        "node-logs/n0.log",
    ] {
        assert!(
            latest.join(file).exists(),
            "{file} missing from the run folder"
        );
    }
}

/// A 2 s broadcast run on one node of the test fixture in `mode`, keeping nothing on disk.
fn short_broadcast_run(mode: &str) -> Output {
    let store = tempfile::tempdir().expect("temp dir");
    let store_arg = store.path().display().to_string();
    let bin = fixture();
    sluicegate(&[
        "test",
        "-w",
        "broadcast",
        "--bin",
        &bin,
        "--node-count",
        "1",
        "--time-limit",
        "2",
        "--rate",
        "10",
        "--store",
        &store_arg,
        "--",
        mode,
    ])
}

#[test]
fn an_invalid_run_exits_1_with_the_table_flip() {
    let output = short_broadcast_run("duplicate");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert_eq!(output.status.code(), Some(1), "{stdout}");
    assert!(
        stdout.contains("Analysis invalid! (ﾉಥ益ಥ）ﾉ ┻━┻"),
        "{stdout}"
    );
    assert!(stdout.contains("Maelstrom would not flag this"), "{stdout}");
}

#[test]
fn a_node_that_exits_early_crashes_the_test_with_its_last_words() {
    let output = short_broadcast_run("crash");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(255), "{stderr}");
    assert!(stderr.contains("node n0 crashed"), "{stderr}");
    assert!(stderr.contains("crashing on purpose"), "{stderr}");
}

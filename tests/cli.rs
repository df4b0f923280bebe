//! The two binaries as a person meets them on a terminal or in a script: help that lists values
//! and settings, plain logs when stderr is not a terminal, pipes closed early, host names,
//! completions, and errors said once.
#![cfg(all(feature = "harness", feature = "cli", feature = "ingest"))]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::PathBuf;
use std::process::{Child, Command, Output, Stdio};

use sluicegate::node::NodeConfig;

const SLUICEGATE: &str = env!("CARGO_BIN_EXE_sluicegate");
const NODE: &str = env!("CARGO_BIN_EXE_sluicegate-node");

fn run(bin: &str, args: &[&str]) -> Output {
    Command::new(bin)
        .args(args)
        .output()
        .expect("the binary runs")
}

fn stdout_of(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

fn stderr_of(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

#[test]
fn help_lists_the_values_of_policy_and_compression() {
    let serve = stdout_of(&run(SLUICEGATE, &["ingest", "serve", "--help"]));
    for policy in ["block", "drop-newest", "drop-oldest", "reject"] {
        assert!(serve.contains(policy), "{policy} missing from:\n{serve}");
    }
    let load = stdout_of(&run(SLUICEGATE, &["ingest", "load", "--help"]));
    for compression in ["none", "gzip", "zstd"] {
        assert!(
            load.contains(compression),
            "{compression} missing from:\n{load}"
        );
    }
}

#[test]
fn the_node_has_help_and_version_and_lists_every_setting() {
    let help = run(NODE, &["--help"]);
    assert!(help.status.success());
    let help = stdout_of(&help);
    for (name, _) in NodeConfig::VARIABLES {
        assert!(help.contains(name), "{name} missing from:\n{help}");
    }
    let version = run(NODE, &["--version"]);
    assert!(version.status.success());
    assert!(stdout_of(&version).contains(env!("CARGO_PKG_VERSION")));
}

#[test]
fn the_node_still_runs_with_no_arguments() {
    let mut node = Command::new(NODE)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the node starts");
    let init = r#"{"src":"c1","dest":"n1","body":{"type":"init","msg_id":1,"node_id":"n1","node_ids":["n1"]}}"#;
    let mut stdin = node.stdin.take().expect("stdin");
    writeln!(stdin, "{init}").expect("the node reads stdin");
    drop(stdin);
    let output = node.wait_with_output().expect("the node exits");
    assert!(output.status.success());
    assert!(stdout_of(&output).contains(r#""type":"init_ok""#));
    let logs = stderr_of(&output);
    assert!(logs.contains("initialised"), "{logs}");
    assert!(
        !logs.contains('\u{1b}'),
        "escape codes in a log that is not a terminal: {logs:?}"
    );
}

#[test]
fn a_reader_that_stops_after_one_line_costs_neither_the_exit_code_nor_the_store() {
    let store = tempfile::tempdir().expect("temp dir");
    let fixture = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/gossip_node.py");
    // `2>&1 | head -1`: stdout and stderr both go into a pipe closed after the first line.
    let script = format!(
        "{SLUICEGATE} test -w echo --bin {} --node-count 1 --time-limit 2 --store {} 2>&1 \
         | head -1 >/dev/null; echo \"exit ${{PIPESTATUS[0]}}\"",
        fixture.display(),
        store.path().display()
    );
    let output = Command::new("bash")
        .args(["-c", &script])
        .output()
        .expect("bash runs");
    assert_eq!(
        stdout_of(&output).trim(),
        "exit 0",
        "{}",
        stderr_of(&output)
    );
    let results = store.path().join("latest/results.edn");
    assert!(results.exists(), "{} was not written", results.display());
}

#[test]
fn completions_are_generated_for_each_shell() {
    for shell in ["bash", "zsh", "fish"] {
        let output = run(SLUICEGATE, &["completions", shell]);
        assert!(output.status.success(), "{shell}: {}", stderr_of(&output));
        assert!(stdout_of(&output).contains("ingest"), "{shell}");
    }
}

#[test]
fn a_failed_verify_states_its_os_error_once() {
    let output = run(
        SLUICEGATE,
        &["ingest", "verify", "--data-dir", "/nonexistent/sluicegate"],
    );
    assert!(!output.status.success());
    let stderr = stderr_of(&output);
    assert_eq!(stderr.matches("os error 2").count(), 1, "{stderr}");
    assert!(stderr.contains("/nonexistent/sluicegate"), "{stderr}");
}

/// A server started on port 0 for gRPC and for metrics; its stderr is read line by line.
struct Server {
    child: Child,
    addr: String,
    logs: BufReader<std::process::ChildStderr>,
}

impl Server {
    fn start(data_dir: &std::path::Path) -> Server {
        let mut child = Command::new(SLUICEGATE)
            .args(["ingest", "serve", "--listen", "127.0.0.1:0"])
            .args(["--metrics-listen", "127.0.0.1:0", "--data-dir"])
            .arg(data_dir)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("the server starts");
        let mut line = String::new();
        BufReader::new(child.stdout.take().expect("stdout"))
            .read_line(&mut line)
            .expect("the server prints its address");
        let addr = line
            .trim()
            .strip_prefix("listening on ")
            .unwrap_or_else(|| panic!("unexpected first line {line:?}"))
            .to_owned();
        let logs = BufReader::new(child.stderr.take().expect("stderr"));
        Server { child, addr, logs }
    }

    /// The metrics address the server logged, from the log lines before it started listening.
    fn logged_metrics_addr(&mut self) -> String {
        let mut line = String::new();
        // Bounded: the line is logged before "listening on", which was already printed.
        for _ in 0..20 {
            line.clear();
            self.logs.read_line(&mut line).expect("stderr reads");
            if let Some((_, addr)) = line.trim().split_once("metrics_addr=") {
                return addr.to_owned();
            }
        }
        panic!("no metrics_addr in the server's first log lines");
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if self.child.kill().is_ok() {
            // Reaped so that no zombie outlives the test; its status does not matter here.
            if self.child.wait().is_err() {
                eprintln!("could not reap the server");
            }
        }
    }
}

#[test]
fn metrics_on_port_zero_log_the_port_bound_and_serve_there() {
    let dir = tempfile::tempdir().expect("temp dir");
    let mut server = Server::start(dir.path());
    let metrics = server.logged_metrics_addr();
    assert!(
        !metrics.ends_with(":0"),
        "logged the requested port: {metrics}"
    );
    let mut stream = TcpStream::connect(&metrics).expect("the metrics port is open");
    stream
        .write_all(b"GET /metrics HTTP/1.0\r\nHost: localhost\r\n\r\n")
        .expect("request written");
    let mut response = String::new();
    stream.read_to_string(&mut response).expect("response read");
    assert!(response.starts_with("HTTP/1.0 200") || response.starts_with("HTTP/1.1 200"));
}

#[test]
fn the_load_client_takes_a_host_name() {
    let dir = tempfile::tempdir().expect("temp dir");
    let server = Server::start(dir.path());
    let port = server.addr.rsplit_once(':').expect("host:port").1;
    let output = run(
        SLUICEGATE,
        &[
            "ingest",
            "load",
            "--server",
            &format!("localhost:{port}"),
            "--records",
            "200",
        ],
    );
    let report = stdout_of(&output);
    assert!(output.status.success(), "{report}{}", stderr_of(&output));
    assert!(report.contains("stored       200"), "{report}");
    assert!(report.contains("p999"), "{report}");
}

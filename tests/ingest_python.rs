//! An independent client: Python `grpcio`, with stubs generated from `proto/ingest.proto` by
//! `grpcio-tools`, streams batches to the server (also with a slowed store) and checks the acks.
//!
//! The venv comes from `SLUICEGATE_INGEST_PYTHON` (a python with grpcio and grpcio-tools, as
//! `.ci/run` prepares it) or is created here under the target directory with pip.
#![cfg(feature = "ingest")]

mod ingest_support;

use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

use ingest_support::*;
use sluicegate::ingest::read_dir;

fn python() -> PathBuf {
    if let Some(python) = std::env::var_os("SLUICEGATE_INGEST_PYTHON") {
        return python.into();
    }
    let venv = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("ingest-venv");
    let python = venv.join("bin/python");
    let ready = Command::new(&python)
        .args(["-c", "import grpc, grpc_tools"])
        .status()
        .is_ok_and(|status| status.success());
    if !ready {
        let created = Command::new("python3")
            .args(["-m", "venv"])
            .arg(&venv)
            .status()
            .expect("python3 runs");
        assert!(created.success(), "python3 -m venv failed");
        let installed = Command::new(&python)
            .args(["-m", "pip", "install", "--quiet", "grpcio", "grpcio-tools"])
            .status()
            .expect("pip runs");
        assert!(
            installed.success(),
            "pip install grpcio grpcio-tools failed"
        );
    }
    python
}

/// TLS and a token for the Python client: the server's settings and the client's environment.
struct Secured {
    tls: sluicegate::ingest::ServerTls,
    tokens: PathBuf,
    env: Vec<(&'static str, String)>,
}

async fn run_python_client(store_delay: Duration, prefix_check: &str) {
    run_python_client_with(store_delay, prefix_check, None).await;
}

async fn run_python_client_with(
    store_delay: Duration,
    prefix_check: &str,
    secured: Option<Secured>,
) {
    let dir = tempfile::tempdir().unwrap();
    let mut config = config(&dir);
    let mut env = Vec::new();
    if let Some(secured) = secured {
        config.tls = Some(secured.tls);
        config.tokens = Some(secured.tokens);
        env = secured.env;
    }
    config.store_delay = store_delay;
    config.capacity = 256;
    config.batch_records = 64;
    config.credit_window = 512;
    let server = start(config).await;
    let python = python();
    let addr = server.local_addr().to_string();
    let proto = concat!(env!("CARGO_MANIFEST_DIR"), "/proto");
    let script = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/ingest_client.py"
    );
    let output = tokio::task::spawn_blocking(move || {
        Command::new(python)
            .args([script, proto, &addr, "3000", "100"])
            .envs(env)
            .output()
            .expect("the python client runs")
    })
    .await
    .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{prefix_check}: python client failed: {stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(stdout.contains("\"stored\": 3000"), "{stdout}");
    assert!(stdout.contains("\"in_order\": true"), "{stdout}");
    server.shutdown();
    let report = server.wait().await.unwrap();
    assert!(report.drained);
    if !store_delay.is_zero() {
        assert!(report.stats.queue.blocked_emits > 0, "{:?}", report.stats);
    }
    assert_eq!(read_dir(dir.path()).unwrap().records.len(), 3000);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_python_grpcio_client_streams_batches_and_every_record_is_acked_once() {
    run_python_client(Duration::ZERO, "fast store").await;
    run_python_client(Duration::from_millis(5), "slowed store").await;
}

#[cfg(feature = "tls")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_python_grpcio_client_streams_over_tls_with_a_token() {
    let pki = ingest_support::pki::Pki::new();
    let tokens = pki.path("tokens.txt");
    std::fs::write(&tokens, "python py-s3cret\n").unwrap();
    let env = vec![
        ("INGEST_TLS_CA", pki.path("ca.pem").display().to_string()),
        ("INGEST_TLS_DOMAIN", "localhost".to_owned()),
        ("INGEST_TOKEN", "py-s3cret".to_owned()),
    ];
    let secured = Secured {
        tls: pki.server_tls(false),
        tokens,
        env,
    };
    run_python_client_with(Duration::ZERO, "TLS and token", Some(secured)).await;
}

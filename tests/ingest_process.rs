//! The `sluicegate ingest` binary as operators run it: killed with SIGKILL mid-load it loses no
//! acked record; SIGTERM drains and exits 0; /metrics serves the counters; `verify` reads back.

mod ingest_support;

use std::collections::HashSet;
use std::net::SocketAddr;
use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use ingest_support::*;
use sluicegate::ingest::proto::ingest_client::IngestClient;
use sluicegate::ingest::store::read_dir;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::process::{Child, Command};

const BIN: &str = env!("CARGO_BIN_EXE_sluicegate");

fn free_port() -> SocketAddr {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap()
}

/// Starts `sluicegate ingest serve` and reads the address it prints.
async fn serve(dir: &Path, metrics: Option<SocketAddr>) -> (Child, SocketAddr) {
    let metrics = metrics.map_or("off".to_owned(), |addr| addr.to_string());
    let mut child = Command::new(BIN)
        .args([
            "ingest",
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--batch-records",
            "64",
        ])
        .args(["--store-delay-ms", "1", "--metrics-listen", &metrics])
        .arg("--data-dir")
        .arg(dir)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let mut line = String::new();
    tokio::time::timeout(PATIENCE, BufReader::new(stdout).read_line(&mut line))
        .await
        .expect("the server starts in time")
        .unwrap();
    let addr = line
        .trim()
        .strip_prefix("listening on ")
        .unwrap_or_else(|| panic!("unexpected first line {line:?}"))
        .parse()
        .unwrap();
    (child, addr)
}

async fn scrape(addr: SocketAddr) -> String {
    for _ in 0..100 {
        if let Ok(mut stream) = tokio::net::TcpStream::connect(addr).await {
            stream
                .write_all(b"GET /metrics HTTP/1.0\r\nHost: localhost\r\n\r\n")
                .await
                .unwrap();
            let mut body = String::new();
            stream.read_to_string(&mut body).await.unwrap();
            return body;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("no metrics endpoint at {addr}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_acked_record_survives_kill_9_and_a_restart_stores_retries_once() {
    let dir = tempfile::tempdir().unwrap();
    let metrics = free_port();
    let (mut child, addr) = serve(dir.path(), Some(metrics)).await;
    let all = ids("crash", 0..20_000);

    // Two streams push everything; the server is killed once a few thousand records are acked.
    let mut client = IngestClient::new(channel(addr).await);
    let mut streams = [
        RawStream::open(&mut client).await,
        RawStream::open(&mut client).await,
    ];
    let mut acked: HashSet<String> = HashSet::new();
    'load: for (sent, chunk) in all.chunks(200).enumerate() {
        let stream = &mut streams[sent % 2];
        // Stay within credits: wait for answers when the window is used up.
        stream.send_ids(chunk).await;
        let answers = stream.answers(1).await;
        acked.extend(answers.stored);
        if acked.len() >= 3000 {
            break 'load;
        }
    }
    let body = scrape(metrics).await;
    for name in [
        "sluicegate_ingest_records_stored_total",
        "sluicegate_ingest_queue_offered_total",
        "sluicegate_ingest_store_write_seconds",
    ] {
        assert!(body.contains(name), "{name} missing from /metrics:\n{body}");
    }
    child.start_kill().unwrap();
    assert!(!child.wait().await.unwrap().success());
    drop(streams);

    // Straight after the crash, before any recovery: every acked record is in the log.
    let on_disk: HashSet<String> = read_dir(dir.path())
        .unwrap()
        .records
        .into_iter()
        .map(|record| record.id)
        .collect();
    let missing: Vec<_> = acked.iter().filter(|id| !on_disk.contains(*id)).collect();
    assert!(missing.is_empty(), "acked but lost: {missing:?}");

    // Restart on the same directory and retry everything: stored once each.
    let (mut child, addr) = serve(dir.path(), None).await;
    let mut client = IngestClient::new(channel(addr).await);
    let mut stream = RawStream::open(&mut client).await;
    let mut answered = 0;
    for chunk in all.chunks(500) {
        stream.send_ids(chunk).await;
        let answers = stream.answers(chunk.len()).await;
        assert!(answers.rejected.is_empty());
        answered += answers.stored.len();
    }
    assert_eq!(answered, all.len());

    // SIGTERM drains and exits 0.
    let pid = child.id().unwrap().to_string();
    let status = std::process::Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .unwrap();
    assert!(status.success());
    let exit = tokio::time::timeout(PATIENCE, child.wait())
        .await
        .unwrap()
        .unwrap();
    assert!(exit.success(), "{exit:?}");

    let verify = Command::new(BIN)
        .args(["ingest", "verify", "--dump", "--data-dir"])
        .arg(dir.path())
        .output()
        .await
        .unwrap();
    assert!(verify.status.success(), "{verify:?}");
    let dumped = String::from_utf8(verify.stdout).unwrap();
    assert_eq!(dumped.lines().count(), all.len(), "each record stored once");
    let contents = read_dir(dir.path()).unwrap();
    assert_eq!(contents.torn_tail, None);
    let distinct: HashSet<_> = contents.records.iter().map(|r| r.id.as_str()).collect();
    assert_eq!(distinct.len(), all.len());
}

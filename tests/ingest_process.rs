//! The `sluicegate ingest` binary as operators run it: killed with SIGKILL mid-load it loses no
//! acked record; a full disk rejects with a reason and loses nothing acked; SIGTERM drains and
//! exits 0; /metrics serves the counters; `verify` reads back.
#![cfg(all(feature = "harness", feature = "cli", feature = "ingest"))]

mod ingest_support;

use std::collections::HashSet;
use std::net::SocketAddr;
use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use ingest_support::*;
use sluicegate::ingest::proto::Reason;
use sluicegate::ingest::proto::ingest_client::IngestClient;
use sluicegate::ingest::{read_dir, stored_len};
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
    let mut command = Command::new(BIN);
    command
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
        .arg(dir);
    listening(command).await
}

/// Starts a server command and reads the address it prints.
async fn listening(mut command: Command) -> (Child, SocketAddr) {
    let mut child = command
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

/// Stops a server with SIGTERM and checks that it drained and exited 0.
async fn terminate(mut child: Child) {
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
    let on_disk: HashSet<String> = stored_ids(dir.path()).into_iter().collect();
    let missing: Vec<_> = acked.iter().filter(|id| !on_disk.contains(*id)).collect();
    assert!(missing.is_empty(), "acked but lost: {missing:?}");

    // Restart on the same directory and retry everything: stored once each.
    let (child, addr) = serve(dir.path(), None).await;
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
    terminate(child).await;

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

/// A disk that fills up mid-write, played by a file size limit (`prlimit --fsize`, with SIGXFSZ
/// ignored so that writes fail with EFBIG as they would with ENOSPC). Batches of 100 records
/// land at multiples of 100 frames; the limit sits half a batch past the third, so the fourth
/// batch is written halfway and fails. The store must cut that half batch off: the single
/// records that still fit after it are acked, and had they landed behind the torn half batch,
/// recovery (which cuts the log at the first torn frame) would have dropped them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_disk_rejects_with_reason_and_loses_no_acked_record() {
    let dir = tempfile::tempdir().unwrap();
    let all = ids("full", 1000..1460);
    let batch_bytes = 100 * stored_len(&record(&all[0]));
    let limit = 3 * batch_bytes + batch_bytes / 2;

    let mut command = Command::new("sh");
    command
        .args(["-c", r#"trap "" XFSZ; exec prlimit --fsize="$0" -- "$@""#])
        .arg(limit.to_string())
        .arg(BIN)
        .args(["ingest", "serve", "--listen", "127.0.0.1:0"])
        .args(["--batch-records", "100", "--group-batches", "1"])
        .args(["--metrics-listen", "off", "--data-dir"])
        .arg(dir.path());
    let (child, addr) = listening(command).await;
    let mut client = IngestClient::new(channel(addr).await);
    let mut stream = RawStream::open(&mut client).await;
    let mut stored = Vec::new();
    // Four whole batches: three fit, the fourth is cut off by the limit.
    for (index, batch) in all[..400].chunks(100).enumerate() {
        stream.send_ids(batch).await;
        let answers = stream.answers(batch.len()).await;
        if index < 3 {
            assert_eq!(answers.stored, batch, "batch {index} fits");
        } else {
            assert!(answers.stored.is_empty(), "{answers:?}");
            assert_eq!(answers.rejected.len(), 100);
            for rejection in &answers.rejected {
                assert_eq!(rejection.reason, Reason::StoreFailed as i32);
                assert!(
                    rejection.detail.contains("File too large"),
                    "{}",
                    rejection.detail
                );
            }
        }
        stored.extend(answers.stored);
    }
    // Half a batch of space is left: 50 records fit. A retry of a rejected record takes the
    // first: it is written, not acked on the strength of the write that failed.
    let retried = std::slice::from_ref(&all[300]);
    stream.send_ids(retried).await;
    let answers = stream.answers(1).await;
    // Acked either way; that it was written shows below: it takes one of the 50 places, and
    // the log must hold exactly the acked records.
    assert_eq!(answers.stored, retried, "{answers:?}");
    stored.extend(answers.stored);
    // 49 single records still fit, the other 11 are rejected.
    for (index, id) in all[400..].iter().enumerate() {
        stream.send_ids(std::slice::from_ref(id)).await;
        let answers = stream.answers(1).await;
        if index < 49 {
            assert_eq!(
                answers.stored,
                std::slice::from_ref(id),
                "single record {index} fits"
            );
        } else {
            assert_eq!(
                answers.rejected.len(),
                1,
                "single record {index}: {answers:?}"
            );
        }
        stored.extend(answers.stored);
    }
    stream.close();
    assert!(stream.until_end().await.ended_cleanly());
    terminate(child).await;

    // Exactly the acked records, intact, with nothing torn in between.
    let contents = read_dir(dir.path()).unwrap();
    assert_eq!(contents.torn_tail, None);
    let on_disk: Vec<String> = contents.records.into_iter().map(|r| r.id).collect();
    assert_eq!(on_disk, stored);

    // With space again, a retry of everything stores each record once.
    let (child, addr) = serve(dir.path(), None).await;
    let mut client = IngestClient::new(channel(addr).await);
    let mut stream = RawStream::open(&mut client).await;
    for chunk in all.chunks(100) {
        stream.send_ids(chunk).await;
        let answers = stream.answers(chunk.len()).await;
        assert_eq!(answers.stored, chunk);
    }
    terminate(child).await;
    let on_disk = stored_ids(dir.path());
    assert_eq!(on_disk.len(), all.len());
    assert_eq!(on_disk.iter().collect::<HashSet<_>>().len(), all.len());
}

/// Safe defaults: a non-loopback address without TLS and tokens is refused before anything is
/// bound or created, and the message says how to fix it.
#[tokio::test]
async fn a_non_loopback_address_is_refused_without_insecure_and_nothing_is_created() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let output = tokio::time::timeout(
        PATIENCE,
        Command::new(BIN)
            .args(["ingest", "serve", "--listen", "0.0.0.0:0"])
            .args(["--metrics-listen", "off", "--data-dir"])
            .arg(&data)
            .env_remove("SLUICEGATE_INGEST_INSECURE")
            .output(),
    )
    .await
    .expect("exits in time")
    .unwrap();
    assert!(!output.status.success(), "{output:?}");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("refusing to listen on 0.0.0.0:0") && stderr.contains("--insecure"),
        "{stderr}"
    );
    assert!(!data.exists(), "nothing is created before the check");
}

/// Opens a stream carrying `token` and sends `ids`; the call's status if it is refused.
async fn stream_with_token(
    addr: SocketAddr,
    token: &str,
) -> Result<
    (
        tokio::sync::mpsc::Sender<sluicegate::ingest::proto::IngestRequest>,
        tonic::Streaming<sluicegate::ingest::proto::IngestResponse>,
    ),
    tonic::Status,
> {
    let (tx, rx) = tokio::sync::mpsc::channel(8);
    let mut request = tonic::Request::new(tokio_stream::wrappers::ReceiverStream::new(rx));
    request
        .metadata_mut()
        .insert("authorization", format!("Bearer {token}").parse().unwrap());
    let inbound = IngestClient::new(channel(addr).await)
        .ingest(request)
        .await?
        .into_inner();
    Ok((tx, inbound))
}

/// Sends one record on an open stream and returns the ids acked for it.
async fn one_record(
    tx: &tokio::sync::mpsc::Sender<sluicegate::ingest::proto::IngestRequest>,
    inbound: &mut tonic::Streaming<sluicegate::ingest::proto::IngestResponse>,
    id: &str,
) -> Vec<String> {
    tx.send(sluicegate::ingest::proto::IngestRequest {
        records: vec![record(id)],
    })
    .await
    .unwrap();
    loop {
        let response = tokio::time::timeout(PATIENCE, inbound.message())
            .await
            .expect("an answer in time")
            .expect("the stream stays open")
            .expect("a message");
        if !response.stored_ids.is_empty() || !response.rejected.is_empty() {
            return response.stored_ids;
        }
    }
}

/// Tokens reloaded on SIGHUP: a revoked token is refused on new calls while a stream it opened
/// before goes on; a token still listed keeps working; nothing refused is stored.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sighup_reloads_the_tokens_a_revoked_token_is_refused_and_open_streams_go_on() {
    let dir = tempfile::tempdir().unwrap();
    let tokens = dir.path().join("tokens.txt");
    std::fs::write(&tokens, "alice tok-a\nbob tok-b\n").unwrap();
    let data = dir.path().join("data");
    let mut command = Command::new(BIN);
    command
        .args([
            "ingest",
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--metrics-listen",
            "off",
        ])
        .arg("--tokens")
        .arg(&tokens)
        .arg("--data-dir")
        .arg(&data);
    let (child, addr) = listening(command).await;
    let (open_tx, mut open_inbound) = stream_with_token(addr, "tok-a").await.unwrap();
    assert_eq!(
        one_record(&open_tx, &mut open_inbound, "before").await,
        ["before"]
    );

    std::fs::write(&tokens, "bob tok-b\n").unwrap();
    let pid = child.id().unwrap().to_string();
    assert!(
        std::process::Command::new("kill")
            .args(["-HUP", &pid])
            .status()
            .unwrap()
            .success()
    );
    // The reload happens on the server's own time: poll new calls until it shows, boundedly.
    let refused = tokio::time::timeout(PATIENCE, async {
        loop {
            match stream_with_token(addr, "tok-a").await {
                Err(status) => break status,
                Ok((tx, _inbound)) => drop(tx),
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await
    .expect("the revocation takes effect in time");
    assert_eq!(refused.code(), tonic::Code::Unauthenticated, "{refused:?}");

    assert_eq!(
        one_record(&open_tx, &mut open_inbound, "after-on-open-stream").await,
        ["after-on-open-stream"]
    );
    let (bob_tx, mut bob_inbound) = stream_with_token(addr, "tok-b").await.unwrap();
    assert_eq!(one_record(&bob_tx, &mut bob_inbound, "bob").await, ["bob"]);
    drop((open_tx, bob_tx, open_inbound, bob_inbound));
    terminate(child).await;
    let mut stored = read_dir(&data)
        .unwrap()
        .records
        .into_iter()
        .map(|r| r.id)
        .collect::<Vec<_>>();
    stored.sort();
    assert_eq!(stored, ["after-on-open-stream", "before", "bob"]);
}

/// CPU time (user + system) of process `pid` so far, from /proc/<pid>/stat.
fn cpu_time(pid: u32) -> Duration {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    // Fields after the command name (which is in parentheses and may hold spaces).
    let fields: Vec<&str> = stat[stat.rfind(')').unwrap() + 2..].split(' ').collect();
    let ticks: u64 = fields[11].parse::<u64>().unwrap() + fields[12].parse::<u64>().unwrap();
    // USER_HZ is 100 on Linux.
    Duration::from_millis(ticks * 10)
}

/// Descriptor exhaustion: under `prlimit --nofile=64`, clients holding more connections than
/// the server has descriptors make `accept` fail with EMFILE. The server backs off instead of
/// spinning (its CPU stays low over the abuse window) and serves a well-behaved client once the
/// descriptors are back.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn at_the_descriptor_limit_accept_backs_off_with_low_cpu_and_serving_resumes() {
    let dir = tempfile::tempdir().unwrap();
    let mut command = Command::new("prlimit");
    command
        .args([
            "--nofile=64:64",
            "--",
            BIN,
            "ingest",
            "serve",
            "--listen",
            "127.0.0.1:0",
        ])
        .args([
            "--metrics-listen",
            "off",
            "--max-connections",
            "100000",
            "--data-dir",
        ])
        .arg(dir.path().join("data"));
    let (child, addr) = listening(command).await;
    let pid = child.id().unwrap();
    // More than the server has descriptors, fewer than its listen backlog holds (so that every
    // connect completes in the kernel).
    let mut abusers = Vec::new();
    for _ in 0..100 {
        let connect = tokio::net::TcpStream::connect(addr);
        abusers.push(
            tokio::time::timeout(PATIENCE, connect)
                .await
                .unwrap()
                .unwrap(),
        );
    }
    // The abuse window: a measurement, not a synchronisation.
    let before = cpu_time(pid);
    tokio::time::sleep(Duration::from_secs(2)).await;
    let burnt = cpu_time(pid) - before;
    eprintln!("server CPU over the 2 s abuse window: {burnt:?}");
    assert!(
        burnt < Duration::from_millis(400),
        "the server burnt {burnt:?} of CPU in 2 s at the descriptor limit"
    );
    drop(abusers);
    let mut load_config = sluicegate::ingest::load::LoadConfig::new(addr, 200);
    load_config.concurrency = 2;
    load_config.batch_size = 50;
    let report = tokio::time::timeout(PATIENCE, sluicegate::ingest::load::run(load_config))
        .await
        .expect("served in time")
        .unwrap();
    assert!(report.accounting.is_exact(), "{}", report.render());
    assert_eq!(report.accounting.stored, 200);
    terminate(child).await;
}

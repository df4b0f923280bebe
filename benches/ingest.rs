//! Ingest against a plain tonic bidi echo server with the same messages, in the same run, with
//! the embedded store and (when `nats-server` is on PATH) the JetStream store, and the server's
//! RSS while a client pushes 10x faster than the store drains.
//!
//! With the `tls` feature, TLS rounds follow: ingest over TLS against the echo over TLS, with
//! certificates generated here (`cargo bench --bench ingest -- --tls-only` runs just those).
//!
//! `cargo bench --bench ingest` (a bench binary, not criterion: each figure is one whole run).

use std::net::SocketAddr;
use std::pin::Pin;
use std::process::Stdio;
use std::time::Duration;

use futures::{Stream, StreamExt};
use sluicegate::ingest::load::{self, LoadConfig, LoadReport};
use sluicegate::ingest::proto::ingest_server::{Ingest, IngestServer};
use sluicegate::ingest::proto::{IngestRequest, IngestResponse};
use sluicegate::ingest::{ServerConfig, StoreTarget};

use sluicegate::ingest::JetStreamConfig;
use tokio::io::{AsyncBufReadExt, BufReader};
use tonic::codec::CompressionEncoding;
use tonic::{Request, Response, Status, Streaming};

const RECORDS: usize = 400_000;
/// Rounds of echo and ingest runs back to back, so that each round's ratios see the same machine
/// load; the order within a round alternates. The median of many rounds, since single rounds on
/// a shared machine move by 20 % and more.
const ROUNDS: usize = 11;
const RECORD_SIZE: usize = 256;
const BATCH: usize = 256;
const CONCURRENCY: usize = 4;

/// The baseline: acks every record of a request at once, with the same message types.
struct Echo;

type Responses = Pin<Box<dyn Stream<Item = Result<IngestResponse, Status>> + Send>>;

#[tonic::async_trait]
impl Ingest for Echo {
    type IngestStream = Responses;

    async fn ingest(
        &self,
        request: Request<Streaming<IngestRequest>>,
    ) -> Result<Response<Responses>, Status> {
        let grant = IngestResponse {
            credits: 4096,
            ..IngestResponse::default()
        };
        let echoes = request.into_inner().map(|request| {
            request.map(|request| {
                let stored_ids: Vec<String> = request
                    .records
                    .into_iter()
                    .map(|record| record.id)
                    .collect();
                IngestResponse {
                    credits: stored_ids.len() as u32,
                    stored_ids,
                    rejected: Vec::new(),
                }
            })
        });
        Ok(Response::new(Box::pin(
            futures::stream::iter([Ok(grant)]).chain(echoes),
        )))
    }
}

async fn start_echo() -> SocketAddr {
    start_echo_on(tonic::transport::Server::builder()).await
}

async fn start_echo_on(server: tonic::transport::Server) -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let incoming = tonic::transport::server::TcpIncoming::from(listener).with_nodelay(Some(true));
    let mut server = server;
    tokio::spawn(
        server
            // The ingest server's compression settings, so that both answer alike.
            .add_service(
                IngestServer::new(Echo)
                    .accept_compressed(CompressionEncoding::Gzip)
                    .accept_compressed(CompressionEncoding::Zstd)
                    .send_compressed(CompressionEncoding::Gzip)
                    .send_compressed(CompressionEncoding::Zstd),
            )
            .serve_with_incoming(incoming),
    );
    addr
}

fn load_config(server: SocketAddr, prefix: &str) -> LoadConfig {
    let mut config = LoadConfig::new(server, RECORDS);
    config.record_size = RECORD_SIZE;
    config.batch_size = BATCH;
    config.concurrency = CONCURRENCY;
    config.id_prefix = prefix.into();
    config
}

/// Ack latency p50 and p99 in ms (zero when nothing was answered).
fn p50_p99_ms(report: &LoadReport) -> (f64, f64) {
    report.accounting.latency.map_or((0.0, 0.0), |q| {
        (q.p50.as_secs_f64() * 1e3, q.p99.as_secs_f64() * 1e3)
    })
}

fn line(name: &str, report: &LoadReport) {
    let (p50, p99) = p50_p99_ms(report);
    println!(
        "{name:<34} {:>9.0} records/s   ack p50 {p50:>7.2} ms   p99 {p99:>7.2} ms   exact {}",
        report.records_per_second(),
        report.accounting.is_exact()
    );
}

/// Keeps `report` in `best` if it is the fastest so far.
fn keep_best(best: &mut Option<LoadReport>, report: LoadReport) {
    if best
        .as_ref()
        .is_none_or(|best| report.records_per_second() > best.records_per_second())
    {
        *best = Some(report);
    }
}

fn rss_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|line| line.starts_with("VmRSS:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// The server as a process, with a store that drains `drain_rate` records/s, and a client
/// trying to push 10x that. Samples the server's RSS throughout.
async fn rss_under_overload() {
    let dir = tempfile::tempdir().unwrap();
    // 100-record batches, one per write, 10 ms per write: the store drains about 10 000/s.
    let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_sluicegate"))
        .args([
            "ingest",
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--metrics-listen",
            "off",
        ])
        .args([
            "--batch-records",
            "100",
            "--group-batches",
            "1",
            "--store-delay-ms",
            "10",
        ])
        .arg("--data-dir")
        .arg(dir.path())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let pid = child.id().unwrap();
    let mut first = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut first)
        .await
        .unwrap();
    let addr: SocketAddr = first
        .trim()
        .strip_prefix("listening on ")
        .unwrap()
        .parse()
        .unwrap();
    let drain_rate = 10_000.0;
    let mut config = load_config(addr, "rss");
    config.records = 80_000;
    config.batch_size = 100;
    config.rate = 10.0 * drain_rate;
    let mut run = std::pin::pin!(load::run(config));
    let mut samples = Vec::new();
    let mut ticks = tokio::time::interval(Duration::from_millis(250));
    let report = loop {
        tokio::select! {
            report = &mut run => break report.unwrap(),
            _ = ticks.tick() => samples.extend(rss_kib(pid)),
        }
    };
    child.start_kill().unwrap();
    let exit = child.wait().await;
    drop(exit);
    line("ingest, client 10x the store rate", &report);
    let max = samples.iter().copied().max().unwrap_or(0);
    let half = samples.len() / 2;
    let first_half = samples[..half].iter().copied().max().unwrap_or(0);
    let second_half = samples[half..].iter().copied().max().unwrap_or(0);
    println!(
        "server RSS over {} samples: max {:.1} MiB, max of first half {:.1} MiB, of second half {:.1} MiB",
        samples.len(),
        max as f64 / 1024.0,
        first_half as f64 / 1024.0,
        second_half as f64 / 1024.0
    );
}

/// A `nats-server -js` on a free loopback port with its own store directory, if the binary is
/// on PATH. Killed when the child is dropped.
async fn start_nats(dir: &std::path::Path) -> Option<(tokio::process::Child, String)> {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .ok()?
        .local_addr()
        .ok()?
        .port();
    let child = tokio::process::Command::new("nats-server")
        .args(["-js", "-a", "127.0.0.1", "-p", &port.to_string(), "-sd"])
        .arg(dir)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .ok()?;
    let url = format!("nats://127.0.0.1:{port}");
    // Poll until it accepts connections, within a bounded deadline.
    for _ in 0..200 {
        if tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .is_ok()
        {
            return Some((child, url));
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    None
}

/// The best of 3 runs against the ingest server with its store on JetStream.
async fn jetstream_round() -> Option<LoadReport> {
    let dir = tempfile::tempdir().unwrap();
    let Some((_nats, url)) = start_nats(dir.path()).await else {
        println!("jetstream: skipped (no nats-server on PATH)");
        return None;
    };
    let config = ServerConfig {
        listen: "127.0.0.1:0".parse().unwrap(),
        store: StoreTarget::JetStream(JetStreamConfig::new(url, "BENCH")),
        ..ServerConfig::new(dir.path())
    };
    let ingest = sluicegate::ingest::start(config).await.unwrap();
    let mut best: Option<LoadReport> = None;
    for round in 0..3 {
        let report = load::run(load_config(ingest.local_addr(), &format!("js{round}")))
            .await
            .unwrap();
        line("ingest (pipeline + JetStream)", &report);
        keep_best(&mut best, report);
    }
    ingest.shutdown();
    let stats = ingest.wait().await.unwrap().stats;
    println!(
        "jetstream ingest server: {} batches published",
        stats.store_writes
    );
    best
}

/// One ingest server under test, with the results of its rounds.
struct Contender {
    name: &'static str,
    /// Starts its record ids: as short as echo's, so that every run moves the same bytes.
    tag: char,
    server: sluicegate::ingest::RunningServer,
    ratios: Vec<f64>,
    best: Option<LoadReport>,
    _dir: tempfile::TempDir,
}

impl Contender {
    async fn start(name: &'static str, tag: char, direct_io: bool) -> Self {
        Self::start_with(name, tag, direct_io, None).await
    }

    async fn start_with(
        name: &'static str,
        tag: char,
        direct_io: bool,
        tls: Option<sluicegate::ingest::ServerTls>,
    ) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let config = ServerConfig {
            listen: "127.0.0.1:0".parse().unwrap(),
            direct_io,
            tls,
            ..ServerConfig::new(dir.path())
        };
        Contender {
            name,
            tag,
            server: sluicegate::ingest::start(config).await.unwrap(),
            ratios: Vec::new(),
            best: None,
            _dir: dir,
        }
    }

    async fn round(&mut self, round: usize) -> LoadReport {
        self.round_with(round, None).await
    }

    async fn round_with(
        &mut self,
        round: usize,
        tls: Option<sluicegate::ingest::ClientTls>,
    ) -> LoadReport {
        let prefix = format!("{}{round}", self.tag);
        let mut config = load_config(self.server.local_addr(), &prefix);
        config.tls = tls;
        let report = load::run(config).await.unwrap();
        line(self.name, &report);
        report
    }

    fn record(&mut self, report: LoadReport, echo: &LoadReport) {
        self.ratios
            .push(report.records_per_second() / echo.records_per_second());
        keep_best(&mut self.best, report);
    }

    /// Prints the ratios of every round and their median.
    fn summary(&mut self) {
        self.ratios.sort_by(f64::total_cmp);
        println!(
            "{} / echo per round: {}; median {:.2}x",
            self.name,
            self.ratios
                .iter()
                .map(|ratio| format!("{ratio:.2}"))
                .collect::<Vec<_>>()
                .join(" "),
            self.ratios[self.ratios.len() / 2]
        );
    }

    async fn stop(self) {
        self.server.shutdown();
        let stats = self.server.wait().await.unwrap().stats;
        println!(
            "{}: {} store writes (fdatasync)",
            self.name, stats.store_writes
        );
    }
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    // `cargo bench` passes --bench; `cargo test --benches` passes nothing and wants a quick exit.
    if !std::env::args().any(|arg| arg == "--bench") {
        return;
    }
    #[cfg(feature = "tls")]
    if std::env::args().any(|arg| arg == "--tls-only") {
        tls_rounds().await;
        return;
    }
    let echo = start_echo().await;
    // The default (direct writes, where the filesystem allows them), and the page cache.
    let mut contenders = [
        Contender::start("ingest (pipeline + fdatasync)", 'i', true).await,
        Contender::start("ingest, --direct-io false", 'p', false).await,
    ];
    println!(
        "{RECORDS} records of {RECORD_SIZE} B, batches of {BATCH}, {CONCURRENCY} streams, loopback"
    );
    let mut best_echo: Option<LoadReport> = None;
    for round in 0..ROUNDS {
        let echo_round = || async {
            let report = load::run(load_config(echo, &format!("e{round}")))
                .await
                .unwrap();
            line("echo (tonic bidi, no store)", &report);
            report
        };
        // Echo first in even rounds, last in odd ones.
        let (echo_report, reports) = if round % 2 == 0 {
            let echo_report = echo_round().await;
            let mut reports = Vec::new();
            for contender in &mut contenders {
                reports.push(contender.round(round).await);
            }
            (echo_report, reports)
        } else {
            let mut reports = Vec::new();
            for contender in contenders.iter_mut().rev() {
                reports.push(contender.round(round).await);
            }
            reports.reverse();
            (echo_round().await, reports)
        };
        for (contender, report) in contenders.iter_mut().zip(reports) {
            contender.record(report, &echo_report);
        }
        keep_best(&mut best_echo, echo_report);
    }
    let best_echo = best_echo.expect("at least one round");
    for contender in &mut contenders {
        contender.summary();
        if let Some(best) = &contender.best {
            println!(
                "best of {ROUNDS}: {} / best echo = {:.2}x ({:.0} vs {:.0} records/s)",
                contender.name,
                best.records_per_second() / best_echo.records_per_second(),
                best.records_per_second(),
                best_echo.records_per_second()
            );
        }
    }
    for contender in contenders {
        contender.stop().await;
    }
    if let Some(jetstream) = jetstream_round().await {
        let (p50, p99) = p50_p99_ms(&jetstream);
        println!(
            "best of 3: jetstream ingest / echo = {:.2}x ({:.0} vs {:.0} records/s), ack p50 {p50:.2} ms, p99 {p99:.2} ms",
            jetstream.records_per_second() / best_echo.records_per_second(),
            jetstream.records_per_second(),
            best_echo.records_per_second(),
        );
    }
    rss_under_overload().await;
    #[cfg(feature = "tls")]
    tls_rounds().await;
}

// The tests' certificate helper; not every helper is used here.
#[cfg(feature = "tls")]
#[path = "../tests/ingest_support/pki.rs"]
#[allow(dead_code)]
mod pki;

/// Rounds of TLS echo and TLS ingest back to back, alternating which goes first: what TLS costs
/// the ingest server, against what it costs a server that does nothing but answer.
#[cfg(feature = "tls")]
const TLS_ROUNDS: usize = 5;

#[cfg(feature = "tls")]
async fn tls_rounds() {
    let pki = pki::Pki::new();
    let server_tls = pki.server_tls(false);
    let identity = tonic::transport::Identity::from_pem(
        std::fs::read(&server_tls.cert).unwrap(),
        std::fs::read(&server_tls.key).unwrap(),
    );
    let echo_server = tonic::transport::Server::builder()
        .tls_config(tonic::transport::ServerTlsConfig::new().identity(identity))
        .unwrap();
    let echo = start_echo_on(echo_server).await;
    let mut ingest =
        Contender::start_with("ingest over TLS", 't', true, Some(server_tls.clone())).await;
    let client_tls = pki.client_tls(None);
    println!(
        "TLS rounds: {RECORDS} records of {RECORD_SIZE} B, batches of {BATCH}, {CONCURRENCY} streams"
    );
    let mut best_echo: Option<LoadReport> = None;
    for round in 0..TLS_ROUNDS {
        let echo_round = || async {
            let mut config = load_config(echo, &format!("s{round}"));
            config.tls = Some(client_tls.clone());
            let report = load::run(config).await.unwrap();
            line("echo over TLS", &report);
            report
        };
        let (echo_report, report) = if round % 2 == 0 {
            let echo_report = echo_round().await;
            (
                echo_report,
                ingest.round_with(round, Some(client_tls.clone())).await,
            )
        } else {
            let report = ingest.round_with(round, Some(client_tls.clone())).await;
            (echo_round().await, report)
        };
        ingest.record(report, &echo_report);
        keep_best(&mut best_echo, echo_report);
    }
    ingest.summary();
    if let (Some(best), Some(best_echo)) = (&ingest.best, &best_echo) {
        println!(
            "best of {TLS_ROUNDS}: ingest over TLS / best echo over TLS = {:.2}x ({:.0} vs {:.0} records/s)",
            best.records_per_second() / best_echo.records_per_second(),
            best.records_per_second(),
            best_echo.records_per_second()
        );
    }
    ingest.stop().await;
}

//! `sluicegate ingest serve | load | verify`: flags (and environment variables) in, library out.

use std::collections::HashMap;
use std::io::Write;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context;
use tonic::codec::CompressionEncoding;

use sluicegate::ingest::load::{self, LoadConfig};
use sluicegate::ingest::proto::Record;
use sluicegate::ingest::{
    ClientTls, Lost, ServerConfig, ServerTls, StoreError, StoreTarget, Tokens, read_dir,
    repair_dir, start,
};
use sluicegate::sinks::OverflowPolicy;

/// `sluicegate ingest` subcommands.
#[derive(clap::Subcommand, Debug)]
pub enum IngestCommand {
    /// Run the ingest server until SIGINT or SIGTERM, then drain.
    // Boxed: its many flags would make every command as large as this one.
    Serve(Box<ServeArgs>),
    /// Push records to a server and account for every one of them.
    Load(LoadArgs),
    /// Read back the stored records and check the log (framing, checksums, no id stored twice).
    Verify(VerifyArgs),
    /// Move the damaged part of each corrupt segment of the embedded store aside (to
    /// `<segment>.damaged-<offset>`), keep every intact record found after it, and list every
    /// record that could not be kept. Deletes nothing. Stop the server first.
    Repair(RepairArgs),
}

fn parse_millis(value: &str) -> Result<Duration, String> {
    value
        .parse::<f64>()
        .ok()
        .filter(|ms| ms.is_finite() && *ms >= 0.0)
        .map(|ms| Duration::from_secs_f64(ms / 1e3))
        .ok_or_else(|| format!("{value:?} is not a number of milliseconds"))
}

/// An address to listen on, or none ("off").
#[derive(Debug, Clone, Copy)]
pub struct MaybeAddr(pub Option<SocketAddr>);

fn parse_metrics_listen(value: &str) -> Result<MaybeAddr, String> {
    if value == "off" {
        return Ok(MaybeAddr(None));
    }
    value
        .parse()
        .map(|addr| MaybeAddr(Some(addr)))
        .map_err(|error| format!("{value:?}: {error} (or \"off\")"))
}

/// A request compression, or none.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Compression {
    /// Uncompressed.
    None,
    /// gzip.
    Gzip,
    /// zstd.
    Zstd,
}

impl Compression {
    fn encoding(self) -> Option<CompressionEncoding> {
        match self {
            Compression::None => None,
            Compression::Gzip => Some(CompressionEncoding::Gzip),
            Compression::Zstd => Some(CompressionEncoding::Zstd),
        }
    }
}

/// Flags of `sluicegate ingest serve`.
#[derive(clap::Args, Debug)]
pub struct ServeArgs {
    /// Address for gRPC (port 0 picks a free one; the chosen address is printed on stdout).
    #[arg(
        long,
        env = "SLUICEGATE_INGEST_LISTEN",
        default_value = "127.0.0.1:50051"
    )]
    pub listen: SocketAddr,
    /// Where records are stored.
    #[command(flatten)]
    pub store: StoreArgs,
    /// What the queue in front of the store does when full. Refused records are answered as
    /// rejected with the reason.
    #[arg(long, env = "SLUICEGATE_INGEST_POLICY", value_enum, default_value_t = OverflowPolicy::Block)]
    pub policy: OverflowPolicy,
    /// Records the queue in front of the store holds at most.
    #[arg(long, env = "SLUICEGATE_INGEST_CAPACITY", default_value_t = 8192)]
    pub capacity: usize,
    /// Records per batch at most.
    #[arg(long, env = "SLUICEGATE_INGEST_BATCH_RECORDS", default_value_t = 512)]
    pub batch_records: usize,
    /// Milliseconds a partial batch waits for more records.
    #[arg(long, env = "SLUICEGATE_INGEST_LINGER_MS", default_value = "2", value_parser = parse_millis)]
    pub linger_ms: Duration,
    /// Records a stream may have unanswered (its flow credits).
    #[arg(long, env = "SLUICEGATE_INGEST_CREDITS", default_value_t = 4096)]
    pub credits: usize,
    /// Recently stored ids remembered so that a retried record is stored once: always the last
    /// N, at most 2N.
    #[arg(
        long,
        env = "SLUICEGATE_INGEST_DEDUP_WINDOW",
        default_value_t = 100_000
    )]
    pub dedup_window: usize,
    /// Largest request message in bytes; larger ones end the stream with RESOURCE_EXHAUSTED.
    #[arg(long, env = "SLUICEGATE_INGEST_MAX_MESSAGE_BYTES", default_value_t = 4 << 20)]
    pub max_message_bytes: usize,
    /// Milliseconds a graceful shutdown waits for open streams to be answered.
    #[arg(long, env = "SLUICEGATE_INGEST_DRAIN_TIMEOUT_MS", default_value = "10000", value_parser = parse_millis)]
    pub drain_timeout_ms: Duration,
    /// Address for Prometheus /metrics over HTTP, or "off".
    #[arg(long, env = "SLUICEGATE_INGEST_METRICS_LISTEN", default_value = "127.0.0.1:9464", value_parser = parse_metrics_listen)]
    pub metrics_listen: MaybeAddr,
    /// Queued batches the store writer takes into one write and one fdatasync at most.
    #[arg(long, env = "SLUICEGATE_INGEST_GROUP_BATCHES", default_value_t = 16)]
    pub group_batches: usize,
    /// Write the embedded store around the page cache (O_DIRECT, in whole 4 KiB blocks) where
    /// the filesystem allows; `false` writes through the page cache.
    #[arg(long, env = "SLUICEGATE_INGEST_DIRECT_IO", default_value_t = true, action = clap::ArgAction::Set)]
    pub direct_io: bool,
    /// Milliseconds of artificial delay after every store write (plays a slow disk).
    #[arg(long, env = "SLUICEGATE_INGEST_STORE_DELAY_MS", default_value = "0", value_parser = parse_millis)]
    pub store_delay_ms: Duration,
    /// Serve a non-loopback --listen address without TLS and token authentication: anyone who
    /// reaches it can write records. Without this flag such an address is refused.
    #[arg(long, env = "SLUICEGATE_INGEST_INSECURE")]
    pub insecure: bool,
    /// Serve over TLS with this certificate chain (PEM); needs --tls-key.
    #[arg(long, env = "SLUICEGATE_INGEST_TLS_CERT", requires = "tls_key")]
    pub tls_cert: Option<PathBuf>,
    /// The private key (PEM) of --tls-cert.
    #[arg(long, env = "SLUICEGATE_INGEST_TLS_KEY", requires = "tls_cert")]
    pub tls_key: Option<PathBuf>,
    /// Require client certificates signed by this CA (PEM): mutual TLS.
    #[arg(long, env = "SLUICEGATE_INGEST_TLS_CLIENT_CA", requires = "tls_cert")]
    pub tls_client_ca: Option<PathBuf>,
    /// A file of `name token` lines: ingest and reflection calls must carry
    /// `authorization: Bearer <token>` with one of them. Reloaded on SIGHUP.
    #[arg(long, env = "SLUICEGATE_INGEST_TOKENS")]
    pub tokens: Option<PathBuf>,
    /// Connections open at once at most; further clients wait until one closes.
    #[arg(
        long,
        env = "SLUICEGATE_INGEST_MAX_CONNECTIONS",
        default_value_t = 1024
    )]
    pub max_connections: usize,
    /// Streams open at once on one connection at most.
    #[arg(
        long,
        env = "SLUICEGATE_INGEST_MAX_CONCURRENT_STREAMS",
        default_value_t = 128
    )]
    pub max_concurrent_streams: u32,
    /// Milliseconds a stream may send nothing before it is closed (after its records are
    /// answered) with DEADLINE_EXCEEDED.
    #[arg(long, env = "SLUICEGATE_INGEST_STREAM_IDLE_TIMEOUT_MS", default_value = "300000", value_parser = parse_millis)]
    pub stream_idle_timeout_ms: Duration,
    /// Milliseconds between HTTP/2 PINGs on a quiet connection.
    #[arg(long, env = "SLUICEGATE_INGEST_HTTP2_KEEPALIVE_INTERVAL_MS", default_value = "30000", value_parser = parse_millis)]
    pub http2_keepalive_interval_ms: Duration,
    /// Milliseconds a PING may go unanswered before the connection is closed.
    #[arg(long, env = "SLUICEGATE_INGEST_HTTP2_KEEPALIVE_TIMEOUT_MS", default_value = "20000", value_parser = parse_millis)]
    pub http2_keepalive_timeout_ms: Duration,
    /// HTTP/2 connection window in bytes: what one connection may have in flight unread. h2
    /// closes a connection whose unread small messages cost more than half of it
    /// (ENHANCE_YOUR_CALM); raise it for clients of many tiny messages, at the cost of memory.
    #[arg(
        long,
        env = "SLUICEGATE_INGEST_HTTP2_CONNECTION_WINDOW_BYTES",
        default_value_t = 1 << 20,
        value_parser = clap::value_parser!(u32).range(65_535..=2_147_483_647)
    )]
    pub http2_connection_window_bytes: u32,
    /// Milliseconds a TLS handshake may take before the connection is closed.
    #[arg(long, env = "SLUICEGATE_INGEST_TLS_HANDSHAKE_TIMEOUT_MS", default_value = "10000", value_parser = parse_millis)]
    pub tls_handshake_timeout_ms: Duration,
}

/// The store flags, shared by `serve` (where to write) and `verify` (what to read back).
#[derive(clap::Args, Debug)]
pub struct StoreArgs {
    /// Directory of the store's segment files.
    #[arg(
        long,
        env = "SLUICEGATE_INGEST_DATA_DIR",
        default_value = "ingest-data"
    )]
    pub data_dir: PathBuf,
    /// Where records are stored: `embedded` (the segment log in --data-dir), `embedded:PATH`, or
    /// a JetStream stream `nats://HOST:PORT?stream=NAME` (optional &subject=S,
    /// &duplicate_window_s=N and &replicas=N for a stream it creates, &max_in_flight=N,
    /// &ack_timeout_ms=N, &retry_timeout_ms=N).
    #[arg(long, env = "SLUICEGATE_INGEST_STORE", default_value = "embedded", value_parser = parse_store)]
    pub store: StoreSpec,
}

impl StoreArgs {
    /// The embedded store's directory: the one `embedded:PATH` names, else `--data-dir`.
    pub fn embedded_dir(&self) -> &Path {
        self.store.1.as_deref().unwrap_or(&self.data_dir)
    }
}

/// A parsed `--store`: the target, and the data directory `embedded:PATH` names.
#[derive(Debug, Clone)]
pub struct StoreSpec(pub StoreTarget, pub Option<PathBuf>);

fn parse_store(value: &str) -> Result<StoreSpec, String> {
    StoreTarget::parse(value)
        .map(|(target, dir)| StoreSpec(target, dir))
        .map_err(|error| error.to_string())
}

/// Flags of `sluicegate ingest load`.
#[derive(clap::Args, Debug)]
pub struct LoadArgs {
    /// The server's gRPC address.
    #[arg(
        long,
        env = "SLUICEGATE_INGEST_SERVER",
        default_value = "127.0.0.1:50051"
    )]
    pub server: String,
    /// Records to send.
    #[arg(long, default_value_t = 100_000)]
    pub records: usize,
    /// Payload bytes per record.
    #[arg(long, default_value_t = 256)]
    pub record_size: usize,
    /// Records per request message.
    #[arg(long, default_value_t = 256)]
    pub batch_size: usize,
    /// Concurrent streams, each on its own connection.
    #[arg(long, default_value_t = 4)]
    pub concurrency: usize,
    /// Records per second over all streams (0: as fast as the server's credits allow).
    #[arg(long, default_value_t = 0.0)]
    pub rate: f64,
    /// Stream failures each worker survives, re-sending its unanswered records.
    #[arg(long, default_value_t = 5)]
    pub retries: u32,
    /// Ids are PREFIX-INDEX; run again with the same prefix to resend the same records.
    #[arg(long, default_value = "r")]
    pub id_prefix: String,
    /// Compression of requests and acks.
    #[arg(long, value_enum, default_value_t = Compression::None)]
    pub compression: Compression,
    /// A bearer token for a server that checks tokens (sent as `authorization: Bearer TOKEN`).
    #[arg(long, env = "SLUICEGATE_INGEST_TOKEN", hide_env_values = true)]
    pub token: Option<String>,
    /// Connect over TLS, trusting this CA (PEM) for the server's certificate.
    #[arg(long, env = "SLUICEGATE_INGEST_TLS_CA")]
    pub tls_ca: Option<PathBuf>,
    /// The name the server's certificate must carry (default: the host of --server).
    #[arg(long, env = "SLUICEGATE_INGEST_TLS_DOMAIN", requires = "tls_ca")]
    pub tls_domain: Option<String>,
    /// A client certificate (PEM) for a server that requires one (mutual TLS).
    #[arg(long, env = "SLUICEGATE_INGEST_TLS_CLIENT_CERT", requires_all = ["tls_ca", "tls_client_key"])]
    pub tls_client_cert: Option<PathBuf>,
    /// The private key (PEM) of --tls-client-cert.
    #[arg(
        long,
        env = "SLUICEGATE_INGEST_TLS_CLIENT_KEY",
        requires = "tls_client_cert"
    )]
    pub tls_client_key: Option<PathBuf>,
}

/// Flags of `sluicegate ingest verify`.
#[derive(clap::Args, Debug)]
pub struct VerifyArgs {
    /// The store to read (a JetStream stream is read message by message).
    #[command(flatten)]
    pub store: StoreArgs,
    /// Also print every record as a JSON line on stdout: id, key, payload size and CRC-32.
    #[arg(long)]
    pub dump: bool,
}

/// Flags of `sluicegate ingest repair`.
#[derive(clap::Args, Debug)]
pub struct RepairArgs {
    /// The embedded store to repair.
    #[command(flatten)]
    pub store: StoreArgs,
}

/// Runs an ingest subcommand.
pub fn run(command: IngestCommand) -> anyhow::Result<ExitCode> {
    match command {
        IngestCommand::Serve(args) => runtime()?.block_on(serve(*args)),
        IngestCommand::Load(args) => runtime()?.block_on(load(args)),
        IngestCommand::Verify(args) => verify(args),
        IngestCommand::Repair(args) => repair(args),
    }
}

fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the tokio runtime")
}

/// Installs the SIGINT and SIGTERM handlers (before the server says it listens, so that a signal
/// sent as soon as it does drains it rather than kills it) and returns a future that completes
/// on either.
fn termination() -> anyhow::Result<impl Future<Output = ()>> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut terminate =
        signal(SignalKind::terminate()).context("installing the SIGTERM handler")?;
    let mut interrupt = signal(SignalKind::interrupt()).context("installing the SIGINT handler")?;
    Ok(async move {
        tokio::select! {
            _ = interrupt.recv() => {}
            _ = terminate.recv() => {}
        }
    })
}

/// Reloads the token file on every SIGHUP; a file that does not load leaves the previous tokens.
fn reload_on_hangup(tokens: std::sync::Arc<Tokens>) -> anyhow::Result<()> {
    let mut hangups = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup())
        .context("installing the SIGHUP handler")?;
    tokio::spawn(async move {
        while hangups.recv().await.is_some() {
            match tokens.reload() {
                Ok(count) => tracing::info!(tokens = count, "token file reloaded"),
                Err(error) => {
                    tracing::error!(%error, "token file not reloaded; the previous tokens stay");
                }
            }
        }
    });
    Ok(())
}

async fn serve(args: ServeArgs) -> anyhow::Result<ExitCode> {
    let config = ServerConfig {
        listen: args.listen,
        data_dir: args.store.embedded_dir().to_path_buf(),
        store: args.store.store.0,
        policy: args.policy,
        capacity: args.capacity.max(1),
        batch_records: args.batch_records.max(1),
        linger: args.linger_ms,
        credit_window: args.credits.max(1),
        dedup_window: args.dedup_window.max(1),
        max_message_bytes: args.max_message_bytes,
        drain_timeout: args.drain_timeout_ms,
        metrics_listen: args.metrics_listen.0,
        store_delay: args.store_delay_ms,
        group_batches: args.group_batches.max(1),
        direct_io: args.direct_io,
        insecure: args.insecure,
        tls: args
            .tls_cert
            .zip(args.tls_key)
            .map(|(cert, key)| ServerTls {
                cert,
                key,
                client_ca: args.tls_client_ca,
            }),
        tls_handshake_timeout: args.tls_handshake_timeout_ms,
        tokens: args.tokens,
        max_connections: args.max_connections.max(1),
        max_concurrent_streams: args.max_concurrent_streams.max(1),
        stream_idle_timeout: args.stream_idle_timeout_ms,
        http2_keepalive_interval: args.http2_keepalive_interval_ms,
        http2_keepalive_timeout: args.http2_keepalive_timeout_ms,
        http2_connection_window: args.http2_connection_window_bytes,
        ..ServerConfig::new("")
    };
    let running = start(config).await?;
    let signalled = termination()?;
    // Before the line below: a SIGHUP sent once it is printed must find the handler in place
    // (its default action ends the process).
    if let Some(tokens) = running.tokens() {
        reload_on_hangup(tokens)?;
    }
    // One machine-readable line on stdout, for scripts and tests that start on port 0.
    let mut stdout = std::io::stdout();
    writeln!(stdout, "listening on {}", running.local_addr())
        .and_then(|()| stdout.flush())
        .context("writing to stdout")?;
    let shutdown = running.shutdown_token();
    tokio::spawn(async move {
        signalled.await;
        tracing::info!("signal received: draining");
        shutdown.cancel();
    });
    let report = running.wait().await?;
    Ok(if report.drained {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

async fn load(args: LoadArgs) -> anyhow::Result<ExitCode> {
    let config = LoadConfig {
        server: args.server,
        records: args.records,
        record_size: args.record_size,
        batch_size: args.batch_size.max(1),
        concurrency: args.concurrency.max(1),
        rate: args.rate,
        retries: args.retries,
        id_prefix: args.id_prefix,
        compression: args.compression.encoding(),
        progress: true,
        tls: args.tls_ca.map(|ca| ClientTls {
            ca,
            domain: args.tls_domain,
            identity: args.tls_client_cert.zip(args.tls_client_key),
        }),
        token: args.token,
    };
    let report = load::run(config).await?;
    print!("{}", report.render());
    Ok(if report.accounting.is_exact() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

/// What `verify` read: the records, and a line about where they came from.
fn read_store(args: &VerifyArgs) -> anyhow::Result<(Vec<Record>, String)> {
    match &args.store.store.0 {
        StoreTarget::Embedded => {
            let dir = args.store.embedded_dir();
            let contents = read_dir(dir).map_err(|error| {
                let corrupt = matches!(error, StoreError::Corrupt { .. });
                let error = anyhow::Error::new(error);
                if corrupt {
                    error.context(format!(
                        "{} is damaged; `sluicegate ingest repair --data-dir {}` moves the \
                         damage aside and lists what it could not keep",
                        dir.display(),
                        dir.display()
                    ))
                } else {
                    error
                }
            })?;
            let torn = match contents.torn_tail {
                Some((offset, reason)) => {
                    format!("at byte {offset} ({reason}; cut off when a server opens the store)")
                }
                None => "none".into(),
            };
            let about = format!("segments {}, torn tail {torn}", contents.segments);
            Ok((contents.records, about))
        }
        #[cfg(feature = "nats")]
        StoreTarget::JetStream(config) => {
            let records = runtime()?
                .block_on(sluicegate::ingest::read_stream(config))
                .with_context(|| format!("reading {}", config.url()))?;
            Ok((records, format!("JetStream stream {}", config.stream)))
        }
    }
}

fn verify(args: VerifyArgs) -> anyhow::Result<ExitCode> {
    let (records, about) = read_store(&args)?;
    let mut copies: HashMap<&str, u32> = HashMap::with_capacity(records.len());
    let mut stdout = std::io::stdout().lock();
    for record in &records {
        *copies.entry(record.id.as_str()).or_default() += 1;
        if args.dump {
            let line = serde_json::json!({
                "id": record.id,
                "key": record.key,
                "payload_bytes": record.payload.len(),
                "payload_crc32": crc32fast::hash(&record.payload),
            });
            writeln!(stdout, "{line}").context("writing to stdout")?;
        }
    }
    let stored_twice = copies.values().filter(|count| **count > 1).count();
    eprintln!(
        "{about}, records {}, distinct ids {}, ids stored more than once {}",
        records.len(),
        copies.len(),
        stored_twice,
    );
    Ok(if stored_twice == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

fn repair(args: RepairArgs) -> anyhow::Result<ExitCode> {
    if !matches!(args.store.store.0, StoreTarget::Embedded) {
        anyhow::bail!("only the embedded store can be repaired");
    }
    let dir = args.store.embedded_dir();
    let report = repair_dir(dir).with_context(|| format!("repairing {}", dir.display()))?;
    let mut stdout = std::io::stdout().lock();
    for repaired in &report.repaired {
        let moved = repaired
            .moved_to
            .as_ref()
            .map_or("nothing to move".to_owned(), |path| {
                format!("bytes from there moved to {}", path.display())
            });
        writeln!(
            stdout,
            "segment {} damaged at byte {} ({}): {moved}; kept {} intact records found after it",
            repaired.segment.display(),
            repaired.offset,
            repaired.reason,
            repaired.kept.len()
        )?;
        for lost in &repaired.lost {
            match lost {
                Lost::Record { offset, len, id } => writeln!(
                    stdout,
                    "  not kept: record {id:?} (damaged frame at byte {offset}, {len} bytes)"
                )?,
                Lost::Bytes { offset, len } => writeln!(
                    stdout,
                    "  not kept: bytes {offset}..{} (no readable record)",
                    offset + len
                )?,
            }
        }
    }
    writeln!(
        stdout,
        "segments {}, repaired {}",
        report.segments,
        report.repaired.len()
    )?;
    Ok(ExitCode::SUCCESS)
}

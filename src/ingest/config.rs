//! The server's settings.

use std::net::{Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::time::Duration;

#[cfg(feature = "nats")]
use crate::ingest::store::JetStreamConfig;
use crate::ingest::store::StoreError;
use crate::ingest::tls::ServerTls;
use crate::sinks::OverflowPolicy;

/// Everything [`start`](super::server::start) needs. [`ServerConfig::new`] gives the defaults
/// the command line uses.
#[derive(Debug, Clone)]
pub struct ServerConfig {
    /// Where to listen for gRPC (default `127.0.0.1:50051`; port 0 picks a free port).
    pub listen: SocketAddr,
    /// Where the embedded store keeps its segment files (when `store` is
    /// [`StoreTarget::Embedded`]).
    pub data_dir: PathBuf,
    /// Which store the records go to.
    pub store: StoreTarget,
    /// What the queue in front of the store does when it is full.
    pub policy: OverflowPolicy,
    /// Records the queue in front of the store holds at most. The queue holds batches, so it
    /// takes `capacity / batch_records` batches (at least one).
    pub capacity: usize,
    /// Records per batch at most: a stream's records are batched by size ...
    pub batch_records: usize,
    /// ... or by linger time, counted from a batch's first record.
    pub linger: Duration,
    /// Records a stream may have unanswered: the credits granted to each stream.
    pub credit_window: usize,
    /// Recently stored ids remembered to make retries idempotent: always the last N, at most 2N
    /// (`store/recent.rs`).
    pub dedup_window: usize,
    /// The largest request message accepted (larger ones end the stream with
    /// `RESOURCE_EXHAUSTED`).
    pub max_message_bytes: usize,
    /// How long a graceful shutdown waits for open streams to be answered.
    pub drain_timeout: Duration,
    /// Queued batches the store writer takes at once into one write and one `fdatasync`.
    pub group_batches: usize,
    /// Bytes after which the store starts a new segment.
    pub segment_bytes: u64,
    /// Write the embedded store around the page cache (`O_DIRECT`) where the filesystem allows.
    pub direct_io: bool,
    /// An artificial delay after every store write, to play a slow disk (tests, benchmarks).
    pub store_delay: Duration,
    /// Where to serve Prometheus `/metrics` over HTTP, if anywhere.
    pub metrics_listen: Option<SocketAddr>,
    /// Serve a non-loopback `listen` address without TLS and token authentication. Off by
    /// default: [`start`](super::server::start) refuses such an address, since anyone who
    /// reaches it could write records.
    pub insecure: bool,
    /// Serve gRPC over TLS (needs the `tls` feature).
    pub tls: Option<ServerTls>,
    /// How long a TLS handshake may take before the connection is closed.
    pub tls_handshake_timeout: Duration,
    /// A file of `name token` lines: calls of the ingest service and of reflection must carry
    /// `authorization: Bearer <token>` with one of them (health stays open).
    pub tokens: Option<PathBuf>,
    /// Connections open at once at most; further clients wait in the listen backlog.
    pub max_connections: usize,
    /// Streams open at once on one connection at most (HTTP/2 SETTINGS_MAX_CONCURRENT_STREAMS).
    pub max_concurrent_streams: u32,
    /// A stream that sends nothing for this long is ended with `DEADLINE_EXCEEDED` once its
    /// records are answered.
    pub stream_idle_timeout: Duration,
    /// How often an HTTP/2 PING checks that a quiet connection's peer is still there.
    pub http2_keepalive_interval: Duration,
    /// How long a PING may go unanswered before the connection is closed.
    pub http2_keepalive_timeout: Duration,
    /// The HTTP/2 connection window in bytes: how much a client may have sent that the server
    /// has not read yet, on all its streams together. h2 also derives its flood guard from it:
    /// DATA frames under 256 bytes are charged against a budget of half this window until the
    /// server reads them, and a connection that spends it is closed (`ENHANCE_YOUR_CALM`). So it
    /// bounds both the memory one connection can hold and how far the server's reading may fall
    /// behind a client of tiny messages (at 1 MiB, about 2 400 messages of one small record).
    pub http2_connection_window: u32,
}

impl ServerConfig {
    /// The defaults, storing in `data_dir`.
    pub fn new(data_dir: impl Into<PathBuf>) -> Self {
        ServerConfig {
            listen: SocketAddr::from((Ipv4Addr::LOCALHOST, 50051)),
            data_dir: data_dir.into(),
            store: StoreTarget::Embedded,
            policy: OverflowPolicy::Block,
            capacity: 8192,
            batch_records: 512,
            linger: Duration::from_millis(2),
            credit_window: 4096,
            dedup_window: 100_000,
            max_message_bytes: 4 << 20,
            drain_timeout: Duration::from_secs(10),
            group_batches: 16,
            segment_bytes: 64 << 20,
            direct_io: true,
            store_delay: Duration::ZERO,
            metrics_listen: None,
            insecure: false,
            tls: None,
            tls_handshake_timeout: Duration::from_secs(10),
            tokens: None,
            max_connections: 1024,
            max_concurrent_streams: 128,
            stream_idle_timeout: Duration::from_secs(300),
            http2_keepalive_interval: Duration::from_secs(30),
            http2_keepalive_timeout: Duration::from_secs(20),
            http2_connection_window: 1 << 20,
        }
    }

    /// Refuses to expose a server without TLS and tokens beyond this machine: `listen` must be a
    /// loopback address unless both [`tls`](Self::tls) and [`tokens`](Self::tokens) are set,
    /// or [`insecure`](Self::insecure) is.
    ///
    /// # Errors
    ///
    /// [`Exposed`] naming the address and how to fix it.
    pub fn check_exposure(&self) -> Result<(), Exposed> {
        let protected = self.tls.is_some() && self.tokens.is_some();
        if self.listen.ip().is_loopback() || protected || self.insecure {
            return Ok(());
        }
        Err(Exposed { addr: self.listen })
    }

    /// Batches the queue in front of the store holds: `capacity / batch_records`, at least 1,
    /// so that it never holds more than `capacity` records (unless one batch is larger).
    pub fn queue_batches(&self) -> usize {
        (self.capacity / self.batch_records.max(1)).max(1)
    }
}

/// A non-loopback address without TLS and token authentication, and no `insecure` to say that is
/// meant.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error(
    "refusing to listen on {addr} without TLS and token authentication: anyone who reaches it \
     could write records. Give --tls-cert, --tls-key and --tokens (a file of `name token` lines), \
     listen on a loopback address (--listen 127.0.0.1:{port}), or pass --insecure \
     (SLUICEGATE_INGEST_INSECURE=true) to serve it without them anyway",
    port = addr.port()
)]
pub struct Exposed {
    /// The address refused.
    pub addr: SocketAddr,
}

/// Which store the writer writes through (`--store`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StoreTarget {
    /// The embedded segment log in [`ServerConfig::data_dir`].
    Embedded,
    /// A NATS JetStream stream.
    #[cfg(feature = "nats")]
    JetStream(JetStreamConfig),
}

impl StoreTarget {
    /// Parses `--store`: `embedded` (the log in `--data-dir`), `embedded:PATH` (the log in
    /// PATH, which then replaces the data directory), or, with the `nats` feature, a `nats://`
    /// URL (`JetStreamConfig::parse`). Returns the target and the data directory it names, if any.
    ///
    /// # Errors
    ///
    /// [`StoreError::Spec`] for anything else.
    pub fn parse(spec: &str) -> Result<(StoreTarget, Option<PathBuf>), StoreError> {
        if spec == "embedded" {
            return Ok((StoreTarget::Embedded, None));
        }
        if let Some(path) = spec.strip_prefix("embedded:") {
            if path.is_empty() {
                return Err(StoreError::Spec {
                    spec: spec.to_owned(),
                    reason: "embedded:PATH needs a path".into(),
                });
            }
            return Ok((StoreTarget::Embedded, Some(PathBuf::from(path))));
        }
        if spec.starts_with("nats://") {
            #[cfg(feature = "nats")]
            return Ok((StoreTarget::JetStream(JetStreamConfig::parse(spec)?), None));
            #[cfg(not(feature = "nats"))]
            return Err(StoreError::Spec {
                spec: spec.to_owned(),
                reason: "this build has no JetStream store (the `nats` feature)".into(),
            });
        }
        Err(StoreError::Spec {
            spec: spec.to_owned(),
            reason: "expected embedded, embedded:PATH or nats://HOST:PORT?stream=NAME".into(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_loopback_addresses_are_served_without_insecure() {
        let mut config = ServerConfig::new("/nonexistent");
        for loopback in ["127.0.0.1:50051", "127.8.0.1:1", "[::1]:50051"] {
            config.listen = loopback.parse().unwrap();
            assert_eq!(config.check_exposure(), Ok(()), "{loopback}");
        }
        for exposed in ["0.0.0.0:50051", "192.168.1.2:50051", "[::]:50051"] {
            config.listen = exposed.parse().unwrap();
            let refused = config.check_exposure().unwrap_err();
            assert_eq!(refused.addr, config.listen);
            let message = refused.to_string();
            assert!(message.contains("--insecure"), "{message}");
            assert!(message.contains("--listen 127.0.0.1:50051"), "{message}");
        }
        config.tls = Some(ServerTls {
            cert: "c".into(),
            key: "k".into(),
            client_ca: None,
        });
        assert!(config.check_exposure().is_err(), "TLS alone is not enough");
        config.tokens = Some("tokens.txt".into());
        assert_eq!(config.check_exposure(), Ok(()), "TLS and tokens");
        config.tls = None;
        config.insecure = true;
        assert_eq!(config.check_exposure(), Ok(()));
    }

    #[test]
    fn store_specifications_parse() {
        assert_eq!(
            StoreTarget::parse("embedded").unwrap(),
            (StoreTarget::Embedded, None)
        );
        assert_eq!(
            StoreTarget::parse("embedded:/tmp/x").unwrap(),
            (StoreTarget::Embedded, Some(PathBuf::from("/tmp/x")))
        );
        #[cfg(feature = "nats")]
        {
            let (target, dir) = StoreTarget::parse("nats://127.0.0.1:4222?stream=S").unwrap();
            assert_eq!(dir, None);
            assert!(matches!(target, StoreTarget::JetStream(config) if config.stream == "S"));
        }
        #[cfg(not(feature = "nats"))]
        assert!(StoreTarget::parse("nats://127.0.0.1:4222?stream=S").is_err());
        assert!(StoreTarget::parse("kafka://x").is_err());
        assert!(StoreTarget::parse("embedded:").is_err());
    }
}

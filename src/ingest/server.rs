//! Starting, running and draining the server: the ingest service behind gzip/zstd, a message size
//! limit, health (`grpc.health.v1`) and reflection (v1 and v1alpha), the store writer on its own
//! thread, and a graceful shutdown that ends open streams through a cancellation token.

use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use futures::Stream;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tonic::codec::CompressionEncoding;
use tonic::service::interceptor::InterceptedService;
use tonic::transport::Server;

use crate::ingest::accept::{self, Admitted};
use crate::ingest::config::{Exposed, ServerConfig, StoreTarget};
use crate::ingest::oversized::OversizedLayer;
use crate::ingest::proto::FILE_DESCRIPTOR_SET;
use crate::ingest::proto::ingest_server::IngestServer;
use crate::ingest::reply::PendingBatch;
use crate::ingest::service::{Entry, IngestService};
use crate::ingest::stats::{Counters, IngestStats};
#[cfg(feature = "nats")]
use crate::ingest::store::JetStreamStore;
use crate::ingest::store::{RecordStore, Recovery, Store, StoreError, StoreOptions};
use crate::ingest::stream::StreamContext;
use crate::ingest::tls::TlsError;
use crate::ingest::tokens::{RequireToken, TokenError, Tokens};
use crate::ingest::writer::{self, WriterOptions};
use crate::sinks::{SinkObserver, bounded};

/// The gRPC service name, as health checks and reflection know it.
pub const SERVICE_NAME: &str = "sluicegate.ingest.v1.Ingest";

/// Errors starting or running the server.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    /// The address would expose an unauthenticated server (see [`ServerConfig::insecure`]).
    #[error(transparent)]
    Exposed(#[from] Exposed),
    /// TLS could not be set up.
    #[error(transparent)]
    Tls(#[from] TlsError),
    /// The token file could not be loaded.
    #[error(transparent)]
    Tokens(#[from] TokenError),
    /// The store could not be opened.
    #[error("opening the store: {0}")]
    Store(#[from] StoreError),
    /// The listening socket could not be bound.
    #[error("binding {addr}: {source}")]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// Why.
        source: std::io::Error,
    },
    /// The reflection service could not be built from the descriptors.
    #[error("building reflection: {0}")]
    Reflection(#[from] tonic_reflection::server::Error),
    /// The transport failed.
    #[error("serving: {0}")]
    Transport(#[from] tonic::transport::Error),
    /// The metrics exporter could not start.
    #[error("starting the metrics exporter: {0}")]
    Metrics(String),
    /// A task of the server panicked.
    #[error("a server task failed: {0}")]
    Task(#[from] tokio::task::JoinError),
}

/// How a server run ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DrainReport {
    /// False if the drain timeout cut open streams off (their unanswered records were never
    /// acked, so clients retry them).
    pub drained: bool,
    /// The counters at the end.
    pub stats: IngestStats,
}

/// A running server.
#[derive(Debug)]
pub struct RunningServer {
    addr: SocketAddr,
    metrics_addr: Option<SocketAddr>,
    recovery: Recovery,
    shutdown: CancellationToken,
    stats: LiveStats,
    tokens: Option<Arc<Tokens>>,
    task: JoinHandle<Result<DrainReport, ServeError>>,
}

/// Where the statistics are read from, live: the server's counters and its queue.
#[derive(Debug, Clone)]
struct LiveStats {
    counters: Arc<Counters>,
    queue: SinkObserver<PendingBatch>,
    queue_capacity: usize,
}

impl LiveStats {
    fn read(&self) -> IngestStats {
        IngestStats::read(&self.counters, self.queue.stats(), self.queue_capacity)
    }
}

impl RunningServer {
    /// The address the server listens on.
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// Where Prometheus `/metrics` is served, if anywhere.
    pub fn metrics_addr(&self) -> Option<SocketAddr> {
        self.metrics_addr
    }

    /// What opening the store found (for JetStream: the messages already in the stream).
    pub fn recovery(&self) -> &Recovery {
        &self.recovery
    }

    /// The counters now.
    pub fn stats(&self) -> IngestStats {
        self.stats.read()
    }

    /// Starts a graceful shutdown: health turns NOT_SERVING, no new connections or streams are
    /// taken, open streams stop reading, and what they sent is stored and acked.
    pub fn shutdown(&self) {
        self.shutdown.cancel();
    }

    /// The bearer tokens the server checks, if it checks any: [`Tokens::reload`] swaps them
    /// without touching open streams (the binary calls it on SIGHUP).
    pub fn tokens(&self) -> Option<Arc<Tokens>> {
        self.tokens.clone()
    }

    /// A token that starts the graceful shutdown when cancelled.
    pub fn shutdown_token(&self) -> CancellationToken {
        self.shutdown.clone()
    }

    /// Waits until the server has stopped (after [`shutdown`](Self::shutdown)).
    ///
    /// # Errors
    ///
    /// Transport failures and panics of the server's tasks.
    pub async fn wait(self) -> Result<DrainReport, ServeError> {
        self.task.await?
    }
}

/// Opens the configured store: the embedded log (recovering it) or a JetStream stream.
async fn open_store(config: &ServerConfig) -> Result<(Box<dyn RecordStore>, Recovery), ServeError> {
    match &config.store {
        StoreTarget::Embedded => {
            let store_options = StoreOptions {
                segment_bytes: config.segment_bytes,
                direct_io: config.direct_io,
                dedup_window: config.dedup_window,
            };
            let data_dir = config.data_dir.clone();
            let (store, recovery) =
                tokio::task::spawn_blocking(move || Store::open(&data_dir, store_options))
                    .await??;
            tracing::info!(
                records = recovery.records, segments = recovery.segments,
                truncated_bytes = recovery.truncated_bytes, dir = %config.data_dir.display(),
                "store opened"
            );
            Ok((Box::new(store), recovery))
        }
        #[cfg(feature = "nats")]
        StoreTarget::JetStream(jetstream) => {
            let (store, summary) =
                JetStreamStore::connect(jetstream.clone(), config.dedup_window).await?;
            tracing::info!(
                url = %jetstream.url(), messages = summary.messages,
                duplicate_window = ?summary.duplicate_window, replicas = summary.replicas,
                "JetStream stream opened; retries are stored once within its duplicate window"
            );
            let recovery = Recovery {
                records: summary.messages,
                ..Recovery::default()
            };
            Ok((Box::new(store), recovery))
        }
    }
}

/// Opens the store, binds the socket and starts serving in the background.
///
/// # Errors
///
/// The address is not loopback and nothing says exposing it is meant ([`ServeError::Exposed`]),
/// the store cannot be opened, the socket cannot be bound, or the metrics exporter cannot start.
pub async fn start(config: ServerConfig) -> Result<RunningServer, ServeError> {
    // Before anything is created or bound.
    config.check_exposure()?;
    let transport = transport(&config)?;
    let tokens = match &config.tokens {
        Some(path) => Some(Arc::new(Tokens::load(path)?)),
        None => None,
    };
    let (store, recovery) = open_store(&config).await?;
    let listener = tokio::net::TcpListener::bind(config.listen)
        .await
        .map_err(|source| ServeError::Bind {
            addr: config.listen,
            source,
        })?;
    let addr = listener.local_addr().map_err(|source| ServeError::Bind {
        addr: config.listen,
        source,
    })?;
    let shutdown = CancellationToken::new();
    let metrics_addr = match config.metrics_listen {
        #[cfg(feature = "metrics")]
        Some(metrics_addr) => {
            Some(crate::ingest::prometheus::serve(metrics_addr, shutdown.clone()).await?)
        }
        // Asking for an exporter this build does not have is an error, not a silent no-op.
        #[cfg(not(feature = "metrics"))]
        Some(_) => {
            return Err(ServeError::Metrics(
                "this build has no Prometheus exporter (the `metrics` feature)".into(),
            ));
        }
        None => None,
    };

    let counters = Arc::new(Counters::default());
    let incoming = Box::pin(accept::admit(
        listener,
        config.max_connections,
        Arc::clone(&counters),
    ));
    let queue_capacity = config.queue_batches();
    let (queue, queue_stream) = bounded(queue_capacity, config.policy);
    let stats = LiveStats {
        counters: Arc::clone(&counters),
        queue: queue.observer(),
        queue_capacity,
    };
    let writer_options = WriterOptions {
        group_batches: config.group_batches,
        store_delay: config.store_delay,
    };
    let writer = {
        let counters = Arc::clone(&counters);
        tokio::task::spawn_blocking(move || {
            writer::run(store, queue_stream, writer_options, counters)
        })
    };

    let context = StreamContext {
        queue,
        batch_records: config.batch_records.max(1),
        linger: config.linger,
        shutdown: shutdown.clone(),
        counters: Arc::clone(&counters),
        idle_timeout: config.stream_idle_timeout,
    };
    let entry: Entry = Arc::new(Mutex::new(Some(context)));
    let streams = TaskTracker::new();
    let service = IngestService::new(Arc::clone(&entry), streams.clone(), config.credit_window);
    let task = tokio::spawn(serve(
        config,
        Listener {
            transport,
            incoming,
            guard: RequireToken(tokens.clone()),
        },
        service,
        Drain { entry, streams },
        writer,
        shutdown.clone(),
        stats.clone(),
    ));
    tracing::info!(%addr, "ingest server listening");
    Ok(RunningServer {
        addr,
        metrics_addr,
        recovery,
        shutdown,
        stats,
        tokens,
        task,
    })
}

/// What every service accepts: gzip and zstd requests, and messages up to `limit` bytes. A
/// macro, since the generated servers share these methods but no trait.
macro_rules! accepting {
    ($service:expr, $limit:expr) => {
        $service
            .accept_compressed(CompressionEncoding::Gzip)
            .accept_compressed(CompressionEncoding::Zstd)
            .max_decoding_message_size($limit)
    };
}

/// The transport's settings: TLS, if asked for (its files are read now, so that a bad one stops
/// the start rather than the first handshake).
fn transport(config: &ServerConfig) -> Result<Server, ServeError> {
    let server = Server::builder()
        .http2_keepalive_interval(Some(config.http2_keepalive_interval))
        .http2_keepalive_timeout(Some(config.http2_keepalive_timeout))
        .max_concurrent_streams(Some(config.max_concurrent_streams))
        .initial_connection_window_size(Some(config.http2_connection_window));
    let Some(tls) = &config.tls else {
        return Ok(server);
    };
    #[cfg(feature = "tls")]
    {
        let tls = tls.load(config.tls_handshake_timeout)?;
        server
            .tls_config(tls)
            .map_err(|error| TlsError::Config(error.to_string()).into())
    }
    #[cfg(not(feature = "tls"))]
    {
        let _ = (tls, server);
        Err(TlsError::Unsupported.into())
    }
}

/// The accepted connections.
type Incoming = Pin<Box<dyn Stream<Item = Result<Admitted, std::io::Error>> + Send>>;

/// Where connections come from, how they are spoken to (TLS or not), and which calls get in.
struct Listener {
    transport: Server,
    incoming: Incoming,
    /// Checked on each call of the ingest service and of reflection; health stays open.
    guard: RequireToken,
}

async fn serve(
    config: ServerConfig,
    listener: Listener,
    service: IngestService,
    drain: Drain,
    writer: JoinHandle<Box<dyn RecordStore>>,
    shutdown: CancellationToken,
    live_stats: LiveStats,
) -> Result<DrainReport, ServeError> {
    let metrics = tokio::spawn(publish_metrics(live_stats.clone()));
    let (health, health_service) = tonic_health::server::health_reporter();
    health.set_serving::<IngestServer<IngestService>>().await;
    let reflection_v1 = tonic_reflection::server::Builder::configure()
        .register_encoded_file_descriptor_set(FILE_DESCRIPTOR_SET)
        .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
        .build_v1()?;
    let reflection_v1alpha = tonic_reflection::server::Builder::configure()
        .register_encoded_file_descriptor_set(FILE_DESCRIPTOR_SET)
        .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
        .build_v1alpha()?;
    let limit = config.max_message_bytes;
    let ingest = accepting!(IngestServer::new(service), limit)
        .send_compressed(CompressionEncoding::Gzip)
        .send_compressed(CompressionEncoding::Zstd);
    let health_service = accepting!(health_service, limit);
    let reflection_v1 = accepting!(reflection_v1, limit);
    let reflection_v1alpha = accepting!(reflection_v1alpha, limit);

    let draining = {
        let shutdown = shutdown.clone();
        let health = health.clone();
        async move {
            shutdown.cancelled().await;
            // Load balancers stop sending before the listener closes.
            health
                .set_not_serving::<IngestServer<IngestService>>()
                .await;
            health
                .set_service_status("", tonic_health::ServingStatus::NotServing)
                .await;
            tracing::info!("draining: no new streams; open streams end once answered");
        }
    };
    // serve_with_shutdown stops accepting when `draining` completes, then waits for every
    // connection to finish. Open bidi streams finish because the same token ends their inbound
    // side in `stream::run`; their responses end once the writer has answered everything.
    let Listener {
        transport,
        incoming,
        guard,
    } = listener;
    let serving = transport
        .layer(OversizedLayer)
        .add_service(health_service)
        .add_service(InterceptedService::new(reflection_v1, guard.clone()))
        .add_service(InterceptedService::new(reflection_v1alpha, guard.clone()))
        .add_service(InterceptedService::new(ingest, guard))
        .serve_with_incoming_shutdown(incoming, draining);
    let mut serving = Box::pin(serving);
    let mut served = false;
    tokio::select! {
        result = &mut serving => {
            result?;
            served = true;
        }
        () = shutdown.cancelled() => {}
    }
    let deadline = tokio::time::Instant::now() + config.drain_timeout;
    // No new streams, and the service lets go of its queue handle: once the open streams have
    // queued what they read, the writer can finish.
    drop(
        drain
            .entry
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take(),
    );
    drain.streams.close();
    // Every stream task done and every response stream ended: everything accepted is answered.
    // Keep serving meanwhile, so that the answers reach the clients.
    let mut answered = std::pin::pin!(tokio::time::timeout_at(deadline, drain.streams.wait()));
    let mut drained = loop {
        tokio::select! {
            result = &mut serving, if !served => {
                result?;
                served = true;
            }
            waited = &mut answered => break waited.is_ok(),
        }
    };
    if !served {
        // The last answers and trailers still have to leave. Connections with nothing of ours on
        // them (a health watch, say) would keep serve_with_shutdown waiting forever, hence the cap.
        let grace = deadline
            .saturating_duration_since(tokio::time::Instant::now())
            .min(Duration::from_secs(1));
        match tokio::time::timeout(grace, &mut serving).await {
            Ok(result) => result?,
            Err(_) => tracing::info!("closing connections that are still open"),
        }
    }
    drop(serving);
    if !drained {
        tracing::warn!(
            timeout = ?config.drain_timeout,
            "drain timeout: cutting off open streams; their unanswered records were never acked"
        );
    }
    let left = deadline
        .saturating_duration_since(tokio::time::Instant::now())
        .max(Duration::from_millis(1));
    match tokio::time::timeout(left, writer).await {
        Ok(store) => {
            let store = store?;
            tracing::info!(
                store = %store.describe(), forgotten = store.dedup_forgotten(),
                "store writer finished"
            );
        }
        Err(_) => {
            drained = false;
            tracing::warn!("the store writer did not finish in time");
        }
    }
    metrics.abort();
    let stats = live_stats.read();
    stats.publish();
    tracing::info!(?stats, drained, "ingest server stopped");
    Ok(DrainReport { drained, stats })
}

/// Publishes the counters as Prometheus gauges every second: from here rather than from the
/// store writer, so that they stay fresh while a write is stuck (a slow or failing disk).
async fn publish_metrics(stats: LiveStats) {
    let mut ticks = tokio::time::interval(Duration::from_secs(1));
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        ticks.tick().await;
        stats.read().publish();
    }
}

/// What a drain takes down: the service's way in, and the tracker of stream tasks and response
/// streams.
struct Drain {
    entry: Entry,
    streams: TaskTracker,
}

//! The load client: pushes records to an ingest server over several streams, within its flow
//! credits and an optional rate, retries what broken streams left unanswered (same ids, so the
//! server stores them once), and accounts for every record exactly.
//!
//! ```no_run
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! use sluicegate::ingest::load::{run, LoadConfig};
//!
//! let report = run(LoadConfig::new("127.0.0.1:50051", 10_000)).await?;
//! assert!(report.accounting.is_exact());
//! # Ok(()) }
//! ```

mod ledger;
mod worker;

use std::collections::VecDeque;
use std::io::IsTerminal;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressStyle};
use tonic::codec::CompressionEncoding;
use tonic::transport::Endpoint;

use crate::ingest::tls::{ClientTls, TlsError};

use ledger::Ledger;
pub use ledger::{Accounting, LatencyQuantiles};

/// What to push and how.
#[derive(Debug, Clone)]
pub struct LoadConfig {
    /// The server, as `host:port` (a name such as `localhost:50051` or an address).
    pub server: String,
    /// Records to send in all.
    pub records: usize,
    /// Payload bytes per record.
    pub record_size: usize,
    /// Records per request message.
    pub batch_size: usize,
    /// Streams (each on its own connection).
    pub concurrency: usize,
    /// Records per second over all streams; 0 for as fast as credits allow.
    pub rate: f64,
    /// Stream failures a worker survives (re-sending its unanswered records each time).
    pub retries: u32,
    /// Ids are `<prefix>-<index>`: the same prefix resends the same records.
    pub id_prefix: String,
    /// Compression of the requests and of the acks (both or neither).
    pub compression: Option<CompressionEncoding>,
    /// Show a progress bar on stderr (only drawn when stderr is a terminal).
    pub progress: bool,
    /// Connect over TLS (needs the `tls` feature).
    pub tls: Option<ClientTls>,
    /// Sent as `authorization: Bearer <token>` on every stream.
    pub token: Option<String>,
}

impl LoadConfig {
    /// Defaults: 256-byte records in batches of 256 over 4 streams, no rate limit, 5 retries.
    pub fn new(server: impl std::fmt::Display, records: usize) -> Self {
        LoadConfig {
            server: server.to_string(),
            records,
            record_size: 256,
            batch_size: 256,
            concurrency: 4,
            rate: 0.0,
            retries: 5,
            id_prefix: "r".into(),
            compression: None,
            progress: false,
            tls: None,
            token: None,
        }
    }
}

/// The outcome of a load run.
#[derive(Debug, Clone)]
pub struct LoadReport {
    /// Every record, accounted for.
    pub accounting: Accounting,
    /// Wall time of the run.
    pub elapsed: Duration,
}

impl LoadReport {
    /// Answered records per second.
    pub fn records_per_second(&self) -> f64 {
        let answered = (self.accounting.stored + self.accounting.rejected) as f64;
        answered / self.elapsed.as_secs_f64().max(1e-9)
    }

    /// The report as the command prints it.
    pub fn render(&self) -> String {
        let a = &self.accounting;
        let mut out = format!(
            "records      {}\nstored       {}\nrejected     {}\n",
            a.records, a.stored, a.rejected
        );
        for (reason, count) in &a.rejections {
            out.push_str(&format!("  {reason:<22} {count}\n"));
        }
        out.push_str(&format!(
            "unaccounted  {}\nanswered twice {}\nunexpected answers {}\nelapsed      {:.3} s\nrecords/s    {:.0}\n",
            a.unaccounted,
            a.answered_twice,
            a.unexpected,
            self.elapsed.as_secs_f64(),
            self.records_per_second(),
        ));
        let ms = |latency: Duration| latency.as_secs_f64() * 1e3;
        out.push_str(&match &a.latency {
            Some(q) => format!(
                "ack latency  p50 {:.2} ms, p90 {:.2} ms, p99 {:.2} ms, p999 {:.2} ms, max {:.2} ms\n",
                ms(q.p50),
                ms(q.p90),
                ms(q.p99),
                ms(q.p999),
                ms(q.max)
            ),
            None => "ack latency  no answers\n".to_owned(),
        });
        out.push_str(if a.is_exact() {
            "accounting   exact: every record stored or rejected with a reason, none twice\n"
        } else {
            "accounting   INCOMPLETE\n"
        });
        out
    }
}

/// Errors before any record is sent.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    /// The server address does not make an endpoint.
    #[error("bad server address: {0}")]
    Endpoint(#[from] tonic::transport::Error),
    /// TLS could not be set up.
    #[error(transparent)]
    Tls(#[from] TlsError),
    /// A worker task panicked.
    #[error("a load worker failed: {0}")]
    Worker(#[from] tokio::task::JoinError),
}

/// The server's endpoint, over TLS if the config asks for it.
fn endpoint(config: &LoadConfig) -> Result<Endpoint, LoadError> {
    let scheme = if config.tls.is_some() {
        "https"
    } else {
        "http"
    };
    let endpoint = Endpoint::from_shared(format!("{scheme}://{}", config.server))?
        .tcp_nodelay(true)
        .connect_timeout(Duration::from_secs(5));
    let Some(tls) = &config.tls else {
        return Ok(endpoint);
    };
    #[cfg(feature = "tls")]
    {
        Ok(endpoint.tls_config(tls.load()?)?)
    }
    #[cfg(not(feature = "tls"))]
    {
        let _ = (tls, endpoint);
        Err(TlsError::Unsupported.into())
    }
}

/// Runs the load and returns its accounting.
///
/// # Errors
///
/// Only for a bad address or a panicking worker; failed streams are retried and whatever stays
/// unanswered shows up as `unaccounted`.
pub async fn run(config: LoadConfig) -> Result<LoadReport, LoadError> {
    let endpoint = endpoint(&config)?;
    let ledger = Arc::new(Mutex::new(Ledger::new(config.records)));
    let progress = if config.progress && std::io::stderr().is_terminal() {
        let bar = ProgressBar::new(config.records as u64);
        if let Ok(style) = ProgressStyle::with_template(
            "{bar:40} {pos}/{len} records answered  {per_sec}  eta {eta}",
        ) {
            bar.set_style(style);
        }
        bar
    } else {
        ProgressBar::hidden()
    };
    let concurrency = config.concurrency.max(1);
    let config = Arc::new(config);
    let started = Instant::now();
    let mut workers = Vec::with_capacity(concurrency);
    for worker in 0..concurrency {
        let todo: VecDeque<usize> = (worker..config.records).step_by(concurrency).collect();
        workers.push(tokio::spawn(worker::run(
            Arc::clone(&config),
            endpoint.clone(),
            todo,
            Arc::clone(&ledger),
            progress.clone(),
        )));
    }
    for worker in workers {
        worker.await?;
    }
    let elapsed = started.elapsed();
    progress.finish_and_clear();
    let accounting = ledger
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .summary();
    Ok(LoadReport {
        accounting,
        elapsed,
    })
}

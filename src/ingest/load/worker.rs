//! One load worker: one connection, one stream at a time, sending within its credits, and
//! re-sending (with the same ids) whatever a broken stream left unanswered.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use indicatif::ProgressBar;
use tokio::sync::mpsc;
use tokio::time::Instant;
use tokio_stream::wrappers::ReceiverStream;
use tonic::transport::Endpoint;

use super::LoadConfig;
use super::ledger::Ledger;
use crate::ingest::proto::ingest_client::IngestClient;
use crate::ingest::proto::{IngestRequest, Reason, Record};

/// The record with index `index`: the same id, key and payload every time it is (re)sent.
pub fn record(prefix: &str, index: usize, size: usize) -> Record {
    let seed = index as u64;
    let payload: Vec<u8> = (0..size as u64)
        .map(|offset| (seed.wrapping_mul(31).wrapping_add(offset) % 251) as u8)
        .collect();
    Record {
        id: format!("{prefix}-{index}"),
        payload: payload.into(),
        key: Some(format!("k{}", index % 16)),
    }
}

/// Why a stream ended early.
#[derive(Debug, thiserror::Error)]
pub enum StreamError {
    /// Connecting failed.
    #[error("connect: {0}")]
    Connect(#[from] tonic::transport::Error),
    /// The call or the stream failed.
    #[error("stream: {0}")]
    Status(#[from] tonic::Status),
    /// The server ended the stream while records were unanswered.
    #[error("the server ended the stream with {0} records unanswered")]
    Ended(usize),
}

/// The rate limit of one worker: one batch per `period`.
struct Pace {
    period: Option<Duration>,
    next: Instant,
}

/// Runs one worker over `todo` until every record is answered or its retries are spent.
pub async fn run(
    config: Arc<LoadConfig>,
    endpoint: Endpoint,
    mut todo: VecDeque<usize>,
    ledger: Arc<Mutex<Ledger>>,
    progress: ProgressBar,
) {
    let mut failures = 0;
    let per_worker_rate = config.rate / config.concurrency.max(1) as f64;
    let mut pace = Pace {
        period: (per_worker_rate > 0.0)
            .then(|| Duration::from_secs_f64(config.batch_size as f64 / per_worker_rate)),
        next: Instant::now(),
    };
    while !todo.is_empty() {
        match stream_once(&config, &endpoint, &mut todo, &ledger, &progress, &mut pace).await {
            Ok(()) => continue,
            Err(error) => {
                failures += 1;
                if failures > config.retries {
                    tracing::warn!(%error, left = todo.len(), "giving up after {} retries", config.retries);
                    return;
                }
                tracing::info!(%error, left = todo.len(), attempt = failures, "retrying");
                let backoff = Duration::from_millis(50 * (1 << failures.min(5)));
                tokio::time::sleep(backoff).await;
            }
        }
    }
}

fn reason_name(code: i32) -> String {
    Reason::try_from(code)
        .map(|reason| reason.as_str_name().to_owned())
        .unwrap_or_else(|_| format!("REASON_{code}"))
}

async fn stream_once(
    config: &LoadConfig,
    endpoint: &Endpoint,
    todo: &mut VecDeque<usize>,
    ledger: &Mutex<Ledger>,
    progress: &ProgressBar,
    pace: &mut Pace,
) -> Result<(), StreamError> {
    let channel = endpoint.connect().await?;
    let mut client = IngestClient::new(channel).max_decoding_message_size(64 << 20);
    // Compression is asked for both ways or not at all: a client that accepted compressed acks
    // unasked would have the server spend CPU compressing them on loopback.
    if let Some(encoding) = config.compression {
        client = client.send_compressed(encoding).accept_compressed(encoding);
    }
    let (tx, rx) = mpsc::channel::<IngestRequest>(2);
    let mut sender = Some(tx);
    let mut request = tonic::Request::new(ReceiverStream::new(rx));
    if let Some(token) = &config.token {
        let value = format!("Bearer {token}").parse().map_err(|_| {
            tonic::Status::invalid_argument("the token is not a valid header value")
        })?;
        request.metadata_mut().insert("authorization", value);
    }
    let mut inbound = client.ingest(request).await?.into_inner();
    let mut credits = 0usize;
    let mut outstanding: HashMap<String, (usize, Instant)> = HashMap::new();
    let result = loop {
        if todo.is_empty() && outstanding.is_empty() {
            // Everything answered: close our side; the server then ends the stream.
            sender = None;
        }
        let batch = config.batch_size.min(todo.len()).min(credits);
        let paced = pace.period.is_none() || Instant::now() >= pace.next;
        let can_send = sender.is_some() && batch > 0 && paced;
        let reserve = async {
            match &sender {
                Some(tx) if can_send => tx.reserve().await.ok(),
                _ => std::future::pending().await,
            }
        };
        tokio::select! {
            permit = reserve => {
                let Some(permit) = permit else {
                    break Err(StreamError::Ended(outstanding.len()));
                };
                let now = Instant::now();
                let records: Vec<Record> = todo
                    .drain(..batch)
                    .map(|index| {
                        let record = record(&config.id_prefix, index, config.record_size);
                        outstanding.insert(record.id.clone(), (index, now));
                        record
                    })
                    .collect();
                credits -= records.len();
                permit.send(IngestRequest { records });
                if let Some(period) = pace.period {
                    pace.next = (pace.next + period).max(now - period);
                }
            }
            () = tokio::time::sleep_until(pace.next), if sender.is_some() && batch > 0 && !paced => {}
            message = inbound.message() => match message {
                Ok(Some(response)) => {
                    credits += response.credits as usize;
                    let now = Instant::now();
                    let mut ledger = ledger.lock().unwrap_or_else(PoisonError::into_inner);
                    let mut answered = 0;
                    for id in response.stored_ids {
                        match outstanding.remove(&id) {
                            Some((index, sent)) => answered += u64::from(ledger.stored(index, now - sent)),
                            None => ledger.unexpected(),
                        }
                    }
                    for rejection in response.rejected {
                        match outstanding.remove(&rejection.id) {
                            Some((index, sent)) => {
                                let reason = reason_name(rejection.reason);
                                answered += u64::from(ledger.rejected(index, &reason, now - sent));
                            }
                            None => ledger.unexpected(),
                        }
                    }
                    drop(ledger);
                    progress.inc(answered);
                }
                Ok(None) if outstanding.is_empty() && (todo.is_empty() || sender.is_none()) => break Ok(()),
                Ok(None) => break Err(StreamError::Ended(outstanding.len())),
                Err(status) => break Err(StreamError::Status(status)),
            },
        }
    };
    // Whatever is unanswered goes back to be sent again, with the same ids.
    let mut unanswered: Vec<usize> = outstanding.into_values().map(|(index, _)| index).collect();
    unanswered.sort_unstable();
    for index in unanswered.into_iter().rev() {
        todo.push_front(index);
    }
    result
}

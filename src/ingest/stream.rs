//! One client stream through the pipeline:
//!
//! ```text
//! inbound requests --(credit window, validation)--> records --batch(size, linger)-->
//!     fan_out([queue in front of the store])  --reports--> rejections for what was not queued
//! ```
//!
//! Under `Block` a full queue stalls the fan-out, which stops polling the batcher, which stops
//! reading the inbound stream: HTTP/2 flow control then slows the client. Under the other
//! policies every batch the queue refuses (or evicts) is answered as rejected, with its reason.

use std::sync::atomic::Ordering;
use std::sync::{Arc, PoisonError};
use std::time::Duration;

use futures::{Stream, StreamExt};
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;
use tonic::Streaming;

use crate::ingest::proto::{IngestRequest, Reason, Record};
use crate::ingest::reply::{Answer, Failure, PendingBatch, Replies};
use crate::ingest::stats::Counters;
use crate::pipeline::PipelineExt;
use crate::sinks::{Emission, SinkHandle};

/// The longest id accepted, in bytes.
pub const MAX_ID_BYTES: usize = 256;

/// What every stream shares.
#[derive(Debug, Clone)]
pub struct StreamContext {
    /// The queue in front of the store.
    pub queue: SinkHandle<PendingBatch>,
    /// Records per batch at most.
    pub batch_records: usize,
    /// How long a partial batch waits for more records.
    pub linger: Duration,
    /// Ends the inbound side of every stream (graceful shutdown).
    pub shutdown: CancellationToken,
    /// The server's counters.
    pub counters: Arc<Counters>,
}

/// Why a record cannot be taken, if it cannot.
pub fn validate(record: &Record) -> Result<(), String> {
    if record.id.is_empty() {
        return Err("empty id".into());
    }
    if record.id.len() > MAX_ID_BYTES {
        return Err(format!(
            "id of {} bytes, more than {MAX_ID_BYTES}",
            record.id.len()
        ));
    }
    Ok(())
}

/// The records of the inbound stream, taken within the credit window, validated (invalid ones
/// are answered at once), until the client ends its side, fails, or the server shuts down.
fn records(
    mut inbound: Streaming<IngestRequest>,
    context: StreamContext,
    replies: Replies,
    credits: Arc<Semaphore>,
    window: usize,
    failure: Failure,
) -> impl Stream<Item = Record> + Send + 'static {
    async_stream::stream! {
        loop {
            let next = tokio::select! {
                biased;
                () = context.shutdown.cancelled() => break,
                next = inbound.message() => next,
            };
            let request = match next {
                Ok(Some(request)) => request,
                Ok(None) => break,
                Err(status) => {
                    tracing::debug!(%status, "inbound stream failed");
                    *failure.lock().unwrap_or_else(PoisonError::into_inner) = Some(status);
                    break;
                }
            };
            Counters::add(&context.counters.received, request.records.len());
            let mut left = request.records.len();
            let mut records = request.records.into_iter();
            while left > 0 {
                // Every record holds one credit until its answer leaves for the client. A
                // request larger than the window goes through in window-sized parts.
                let take = left.min(window);
                let Ok(permit) = credits.acquire_many(take as u32).await else {
                    return;
                };
                permit.forget();
                left -= take;
                let mut invalid = Answer::default();
                for record in records.by_ref().take(take) {
                    match validate(&record) {
                        Ok(()) => yield record,
                        Err(detail) => invalid.rejected(record.id, Reason::Invalid, detail),
                    }
                }
                Counters::add(&context.counters.rejected, invalid.len());
                if !replies.send(invalid) {
                    return;
                }
            }
        }
    }
}

/// Runs one stream until its inbound side ends and every record it sent is in the queue or
/// answered. The response stream ends once the store writer has answered the rest.
pub async fn run(
    inbound: Streaming<IngestRequest>,
    context: StreamContext,
    replies: Replies,
    credits: Arc<Semaphore>,
    window: usize,
    failure: Failure,
) {
    context.counters.streams.fetch_add(1, Ordering::Relaxed);
    let counters = Arc::clone(&context.counters);
    let (batch_records, linger) = (context.batch_records, context.linger);
    let queue = context.queue.clone();
    let batches = {
        let invalid_replies = replies.clone();
        records(inbound, context, invalid_replies, credits, window, failure)
            .batch(batch_records, linger)
            .map(move |records| PendingBatch {
                records,
                replies: replies.clone(),
            })
    };
    let mut reports = std::pin::pin!(batches.fan_out(vec![queue]));
    while let Some(report) = reports.next().await {
        for outcome in report.outcomes {
            let (batch, reason, detail) = match outcome {
                Emission::Queued => continue,
                Emission::Evicted(oldest) => (
                    oldest,
                    Reason::EvictedOldest,
                    "queue full (drop_oldest): displaced by newer records",
                ),
                Emission::DroppedNewest(batch) => {
                    (batch, Reason::DroppedNewest, "queue full (drop_newest)")
                }
                Emission::Rejected(batch) => (batch, Reason::QueueFull, "queue full (reject)"),
                Emission::Closed(batch) => (batch, Reason::ShuttingDown, "server shutting down"),
            };
            Counters::add(&counters.rejected, batch.len());
            Replies::reject_all(batch, reason, detail);
        }
    }
    counters.streams.fetch_sub(1, Ordering::Relaxed);
}

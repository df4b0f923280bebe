//! One client stream through the pipeline:
//!
//! ```text
//! inbound requests --(inbound.rs: credit window, validation)--> records --batch(size, linger)-->
//!     fan_out([queue in front of the store])  --reports--> rejections for what was not queued
//! ```
//!
//! Under `Block` a full queue stalls the fan-out, and with it the batcher; the reader keeps
//! reading, but what it hands on is bounded by the stream's credits, which come back only as
//! records are answered: a client keeping to its credits is slowed down to the store's pace,
//! and one that does not has the excess answered with `REASON_NO_CREDIT`. Under the other
//! policies every batch the queue refuses (or evicts) is answered as rejected, with its reason.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use futures::StreamExt;
use tokio::sync::mpsc;
use tokio_stream::wrappers::UnboundedReceiverStream;
use tokio_util::sync::CancellationToken;
use tonic::Streaming;

use crate::ingest::inbound::Reader;
use crate::ingest::proto::{IngestRequest, Reason};
use crate::ingest::reply::{PendingBatch, Replies, WayBack};
use crate::ingest::stats::Counters;
use crate::pipeline::PipelineExt;
use crate::sinks::{Emission, SinkHandle};

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
    /// A stream that sends nothing for this long is ended (after its records are answered).
    pub idle_timeout: Duration,
}

/// Runs one stream until its inbound side ends and every record it sent is in the queue or
/// answered. The response stream ends once the store writer has answered the rest.
///
/// The reader and the pipeline run side by side in this task: the reader keeps reading while
/// the pipeline waits on a full queue (see `inbound.rs` for why).
pub async fn run(inbound: Streaming<IngestRequest>, context: StreamContext, way_back: WayBack) {
    context.counters.streams.fetch_add(1, Ordering::Relaxed);
    let counters = Arc::clone(&context.counters);
    let (batch_records, linger) = (context.batch_records, context.linger);
    let queue = context.queue.clone();
    let WayBack {
        replies,
        credits,
        failure,
    } = way_back;
    // Unbounded, but never holds more than the credit window: the reader hands on only records
    // that hold a credit.
    let (taken, records) = mpsc::unbounded_channel();
    let reader = Reader {
        inbound,
        context,
        replies: replies.clone(),
        credits,
        failure,
    };
    let batches = {
        UnboundedReceiverStream::new(records)
            .batch(batch_records, linger)
            .map(move |records| PendingBatch {
                records,
                replies: replies.clone(),
            })
    };
    let pipeline = async move {
        let mut reports = std::pin::pin!(batches.fan_out(vec![queue]));
        while let Some(report) = reports.next().await {
            answer_refused(report.outcomes, &counters);
        }
        counters
    };
    let ((), counters) = tokio::join!(reader.run(taken), pipeline);
    counters.streams.fetch_sub(1, Ordering::Relaxed);
}

/// Answers every batch the queue did not take, with the reason it gives.
fn answer_refused(outcomes: Vec<Emission<PendingBatch>>, counters: &Counters) {
    {
        for outcome in outcomes {
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
}

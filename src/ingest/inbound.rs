//! The reading side of one stream: takes every request off the wire as soon as it arrives, and
//! decides for each record whether it goes on into the pipeline (it is within the stream's
//! credits and valid) or is answered at once (invalid, or over the credit window).
//!
//! Reading never waits for credits or for the pipeline. A client that ignores its credits and
//! floods small messages would otherwise have them pile up unread in h2, whose flood guard
//! (hyperium/h2#935) charges every DATA frame against a connection budget that only comes back
//! when the application consumes the frame, and kills the whole connection with
//! `GOAWAY ENHANCE_YOUR_CALM` once it is spent: records lost unanswered, one layer down. So the
//! excess is read and answered with [`Reason::NoCredit`] instead; what is within credit is
//! bounded by the window, which bounds what this reader hands on.

use std::sync::atomic::Ordering;
use std::sync::{Arc, PoisonError};
use std::time::{Duration, Instant};

use tokio::sync::{Semaphore, mpsc};
use tonic::Streaming;

use crate::ingest::proto::{IngestRequest, Reason, Record};
use crate::ingest::reply::{Answer, Failure, Replies};
use crate::ingest::stats::Counters;
use crate::ingest::stream::StreamContext;

/// The longest id accepted, in bytes.
pub const MAX_ID_BYTES: usize = 256;

/// The detail sent with every [`Reason::NoCredit`] rejection.
pub const NO_CREDIT_DETAIL: &str = "sent beyond the credit window; wait for credits";

/// At most one overrun log line per stream per this interval: a flooding client must not flood
/// the log too.
const OVERRUN_LOG_INTERVAL: Duration = Duration::from_secs(1);

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

/// What the reader of one stream needs.
pub struct Reader {
    /// The client's requests.
    pub inbound: Streaming<IngestRequest>,
    /// Shutdown and counters.
    pub context: StreamContext,
    /// Where immediate answers go.
    pub replies: Replies,
    /// The stream's credit window: one permit per record in flight.
    pub credits: Arc<Semaphore>,
    /// Where a failed inbound stream leaves its status for the response stream's end.
    pub failure: Failure,
}

/// Records over the credit window seen on one stream, and when they were last logged.
struct Overruns {
    total: u64,
    logged: u64,
    last_log: Option<Instant>,
}

impl Overruns {
    fn count(&mut self, records: usize) {
        self.total += records as u64;
        let now = Instant::now();
        if self
            .last_log
            .is_none_or(|last| now.duration_since(last) >= OVERRUN_LOG_INTERVAL)
        {
            tracing::warn!(
                overruns = self.total,
                since_last_log = self.total - self.logged,
                "a client sent records beyond its credit window; they are rejected with \
                 REASON_NO_CREDIT"
            );
            self.logged = self.total;
            self.last_log = Some(now);
        }
    }
}

impl Reader {
    /// Reads until the client ends its side, the stream fails, the server shuts down or the
    /// stream's answers have nowhere to go; sends each record taken to `records`.
    pub async fn run(self, records: mpsc::UnboundedSender<Record>) {
        let Reader {
            mut inbound,
            context,
            replies,
            credits,
            failure,
        } = self;
        let mut overruns = Overruns {
            total: 0,
            logged: 0,
            last_log: None,
        };
        // One timer for the stream, not one per message: a message only notes when it came,
        // and the timer, when it fires, is pushed back to the last message's deadline.
        let mut last_message = tokio::time::Instant::now();
        let idle = tokio::time::sleep_until(last_message + context.idle_timeout);
        tokio::pin!(idle);
        loop {
            let next = tokio::select! {
                biased;
                () = context.shutdown.cancelled() => break,
                next = inbound.message() => {
                    last_message = tokio::time::Instant::now();
                    next
                }
                () = &mut idle => {
                    let deadline = last_message + context.idle_timeout;
                    if deadline > tokio::time::Instant::now() {
                        idle.as_mut().reset(deadline);
                        continue;
                    }
                    // The records it sent are answered first: the status ends the response
                    // stream only after them (reply.rs).
                    Counters::add(&context.counters.idle_streams, 1);
                    tracing::info!(timeout = ?context.idle_timeout, "closing an idle stream");
                    *failure.lock().unwrap_or_else(PoisonError::into_inner) =
                        Some(tonic::Status::deadline_exceeded(format!(
                            "no message for {:?}: the stream was closed as idle after its \
                             records were answered; open a new one",
                            context.idle_timeout
                        )));
                    break;
                }
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
            let offered = request.records.len();
            Counters::add(&context.counters.received, offered);
            // Only this reader takes permits (answers only give them back), so what is available
            // now can still be taken right after.
            let within = offered.min(credits.available_permits());
            if within > 0 {
                match credits.try_acquire_many(u32::try_from(within).unwrap_or(u32::MAX)) {
                    Ok(permit) => permit.forget(),
                    Err(_) => break,
                }
            }
            let mut immediate = Answer::default();
            let mut refused = Answer::default();
            for (index, record) in request.records.into_iter().enumerate() {
                if index >= within {
                    refused.rejected(record.id, Reason::NoCredit, NO_CREDIT_DETAIL);
                    continue;
                }
                match validate(&record) {
                    // The pipeline outlives this reader; if it is gone the stream is over.
                    Ok(()) => {
                        if let Err(unsent) = records.send(record) {
                            tracing::debug!(id = %unsent.0.id, "the stream's pipeline is gone");
                            return;
                        }
                    }
                    Err(detail) => immediate.rejected(record.id, Reason::Invalid, detail),
                }
            }
            Counters::add(&context.counters.rejected, immediate.len() + refused.len());
            if !refused.is_empty() {
                Counters::add(&context.counters.no_credit, refused.len());
                overruns.count(refused.len());
            }
            // Invalid records held credits, which their answer returns; refused ones held none.
            if !replies.send(immediate) || !replies.send_uncredited(refused) {
                break;
            }
        }
        if overruns.total > 0 {
            context
                .counters
                .overrun_streams
                .fetch_add(1, Ordering::Relaxed);
            tracing::info!(
                overruns = overruns.total,
                "stream ended; records sent beyond its credit window were rejected"
            );
        }
    }
}

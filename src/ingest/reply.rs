//! The way back to a client: answers travel from the pipeline and the store writer to the
//! stream's response, and every answer returns its records' credits.

use std::sync::{Arc, Mutex, PoisonError};

use futures::Stream;
use tokio::sync::{Semaphore, mpsc};
use tokio_util::task::task_tracker::TaskTrackerToken;
use tonic::Status;

use crate::ingest::proto::{IngestResponse, Reason, Record, Rejection};

/// A batch of one stream's records on its way through the pipeline, with the way back to that
/// stream (one handle per batch, not per record).
#[derive(Debug, Clone)]
pub struct PendingBatch {
    /// The records as received, in order.
    pub records: Vec<Record>,
    /// Where their answers go.
    pub replies: Replies,
}

impl PendingBatch {
    /// Records in the batch.
    pub fn len(&self) -> usize {
        self.records.len()
    }
}

/// A message for the response stream.
#[derive(Debug)]
struct Outbound {
    response: IngestResponse,
    /// Records answered, to drop on the response stream's side (see [`Answer::carry`]).
    spent: Vec<Vec<Record>>,
    /// Credits this message gives back to the stream's window when it is handed to the transport
    /// (0 for the initial grant, which the window already holds).
    returns: usize,
}

/// The sending side of one stream's responses. Cheap to clone; the response stream ends when
/// every clone is gone (so after every record is answered).
#[derive(Debug, Clone)]
pub struct Replies {
    tx: mpsc::UnboundedSender<Outbound>,
}

/// A builder for one response.
#[derive(Debug, Default)]
pub struct Answer {
    response: IngestResponse,
    spent: Vec<Vec<Record>>,
}

impl Answer {
    /// Adds a stored (durable) record.
    pub fn stored(&mut self, id: String) {
        self.response.stored_ids.push(id);
    }

    /// Adds a rejected record.
    pub fn rejected(&mut self, id: String, reason: Reason, detail: impl Into<String>) {
        self.response.rejected.push(Rejection {
            id,
            reason: reason as i32,
            detail: detail.into(),
        });
    }

    /// Takes `records` (whose ids were taken) along, to be dropped once the answer has left on
    /// the response stream's side, a tokio worker, where the records were decoded, instead of
    /// on the thread that answers. glibc frees a block of another thread's arena under that
    /// arena's lock: on the store writer's answer thread, that was most of its time.
    pub fn carry(&mut self, records: Vec<Record>) {
        self.spent.push(records);
    }

    /// Makes room for `records` more stored ids at once (the writer knows each batch's size).
    pub fn reserve(&mut self, records: usize) {
        self.response.stored_ids.reserve(records);
    }

    /// Records answered so far.
    pub fn len(&self) -> usize {
        self.response.stored_ids.len() + self.response.rejected.len()
    }

    /// True if it answers nothing yet.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl Replies {
    /// Sends `answer` with the credits of the records it answers. Returns false if the stream is
    /// gone; the caller has nothing better to do then (a stored record stays stored, and a retry
    /// is acked again from the dedup window).
    pub fn send(&self, answer: Answer) -> bool {
        self.send_returning(answer, true)
    }

    /// Sends `answer` for records that held no credit (sent beyond the window): it grants
    /// nothing, or an overrunning client would be rewarded with a larger window.
    pub fn send_uncredited(&self, answer: Answer) -> bool {
        self.send_returning(answer, false)
    }

    fn send_returning(&self, answer: Answer, credited: bool) -> bool {
        let Answer {
            mut response,
            spent,
        } = answer;
        let answered = response.stored_ids.len() + response.rejected.len();
        if answered == 0 {
            return true;
        }
        let returns = if credited { answered } else { 0 };
        response.credits = u32::try_from(returns).unwrap_or(u32::MAX);
        self.tx
            .send(Outbound {
                response,
                spent,
                returns,
            })
            .is_ok()
    }

    /// Answers every record of `batch` as rejected with `reason`.
    pub fn reject_all(batch: PendingBatch, reason: Reason, detail: &str) {
        let mut answer = Answer::default();
        for record in batch.records {
            answer.rejected(record.id, reason, detail);
        }
        if !batch.replies.send(answer) {
            tracing::debug!("a client left before hearing that its records were rejected");
        }
    }

    /// True if both send to the same stream.
    pub fn same_stream(&self, other: &Replies) -> bool {
        self.tx.same_channel(&other.tx)
    }
}

/// A status to end the response stream with once every record is answered.
pub type Failure = Arc<Mutex<Option<Status>>>;

/// The pipeline's side of the way back to one client.
#[derive(Debug)]
pub struct WayBack {
    /// Where answers go.
    pub replies: Replies,
    /// The stream's credit window: one permit per record in flight, returned when its answer
    /// leaves.
    pub credits: Arc<Semaphore>,
    /// The status to end the response stream with, if the inbound side failed.
    pub failure: Failure,
}

/// Opens the way back for a new stream: the pipeline's side ([`WayBack`]) and the response
/// stream for tonic.
///
/// `token` is held until the response stream ends (or tonic drops it because the client left),
/// so that a graceful drain can wait for every answer to leave.
pub fn open(
    window: usize,
    token: TaskTrackerToken,
) -> (
    WayBack,
    impl Stream<Item = Result<IngestResponse, Status>> + Send + 'static,
) {
    let (tx, mut rx) = mpsc::unbounded_channel::<Outbound>();
    let credits = Arc::new(Semaphore::new(window));
    let failure: Failure = Arc::default();
    let grant = Outbound {
        response: IngestResponse {
            credits: u32::try_from(window).unwrap_or(u32::MAX),
            ..IngestResponse::default()
        },
        spent: Vec::new(),
        returns: 0,
    };
    // The receiver is alive right here, so this cannot fail; if it could, the client would just
    // start without credits and be throttled by the transport.
    let granted = tx.send(grant).is_ok();
    debug_assert!(granted);
    let responses = {
        let credits = Arc::clone(&credits);
        let failure = Arc::clone(&failure);
        async_stream::stream! {
            let _in_flight = token;
            while let Some(outbound) = rx.recv().await {
                // Credits come back when the answer leaves for the client, so a client that
                // stops reading its answers stops getting credits, and the window bounds what
                // the server holds for it.
                credits.add_permits(outbound.returns);
                let spent = outbound.spent;
                yield Ok(outbound.response);
                drop(spent);
            }
            let status = failure.lock().unwrap_or_else(PoisonError::into_inner).take();
            if let Some(status) = status {
                yield Err(status);
            }
        }
    };
    let way_back = WayBack {
        replies: Replies { tx },
        credits,
        failure,
    };
    (way_back, responses)
}

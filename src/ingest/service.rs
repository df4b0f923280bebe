//! The `sluicegate.ingest.v1.Ingest` service: each call opens the way back to the client and
//! starts the stream's pipeline task.

use std::pin::Pin;
use std::sync::{Arc, Mutex, PoisonError};

use futures::Stream;
use tokio_util::task::TaskTracker;
use tonic::{Request, Response, Status, Streaming};

use crate::ingest::proto::ingest_server::Ingest;
use crate::ingest::proto::{IngestRequest, IngestResponse};
use crate::ingest::reply;
use crate::ingest::stream::{self, StreamContext};

/// The service's way into the pipeline, until a drain takes it away (and with it the service's
/// handle on the queue, so that the store writer can finish once the streams have).
pub type Entry = Arc<Mutex<Option<StreamContext>>>;

/// The service implementation.
#[derive(Debug)]
pub struct IngestService {
    entry: Entry,
    streams: TaskTracker,
    credit_window: usize,
}

impl IngestService {
    /// A service feeding every stream through `entry`, granting each stream `credit_window`
    /// records of credit. Every stream task and every response stream is tracked by `streams`.
    pub fn new(entry: Entry, streams: TaskTracker, credit_window: usize) -> Self {
        IngestService {
            entry,
            streams,
            credit_window: credit_window.max(1),
        }
    }
}

/// The response stream of one call.
pub type ResponseStream = Pin<Box<dyn Stream<Item = Result<IngestResponse, Status>> + Send>>;

#[tonic::async_trait]
impl Ingest for IngestService {
    type IngestStream = ResponseStream;

    async fn ingest(
        &self,
        request: Request<Streaming<IngestRequest>>,
    ) -> Result<Response<Self::IngestStream>, Status> {
        let context = self
            .entry
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
            .filter(|context| !context.shutdown.is_cancelled());
        let Some(context) = context else {
            return Err(Status::unavailable("the server is shutting down"));
        };
        let (way_back, responses) = reply::open(self.credit_window, self.streams.token());
        self.streams
            .spawn(stream::run(request.into_inner(), context, way_back));
        Ok(Response::new(Box::pin(responses)))
    }
}

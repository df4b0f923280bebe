//! The `sluicegate.ingest.v1.Ingest` service: each call opens the way back to the client and
//! starts the stream's pipeline task.

use std::pin::Pin;

use futures::Stream;
use tonic::{Request, Response, Status, Streaming};

use crate::ingest::proto::ingest_server::Ingest;
use crate::ingest::proto::{IngestRequest, IngestResponse};
use crate::ingest::reply;
use crate::ingest::stream::{self, StreamContext};

/// The service implementation.
#[derive(Debug)]
pub struct IngestService {
    context: StreamContext,
    credit_window: usize,
}

impl IngestService {
    /// A service feeding every stream into the queue of `context`, granting each stream
    /// `credit_window` records of credit.
    pub fn new(context: StreamContext, credit_window: usize) -> Self {
        IngestService {
            context,
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
        if self.context.shutdown.is_cancelled() {
            return Err(Status::unavailable("the server is shutting down"));
        }
        let (replies, responses, credits, failure) = reply::open(self.credit_window);
        tokio::spawn(stream::run(
            request.into_inner(),
            self.context.clone(),
            replies,
            credits,
            self.credit_window,
            failure,
        ));
        Ok(Response::new(Box::pin(responses)))
    }
}

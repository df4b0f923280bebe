//! Shared helpers of the ingest tests: a server on 127.0.0.1:0 in a temporary directory, and a
//! raw client stream that sends exactly what a test says.

#![allow(dead_code)]

#[cfg(feature = "tls")]
pub mod pki;

use std::net::SocketAddr;
use std::time::Duration;

use sluicegate::ingest::RunningServer;
use sluicegate::ingest::ServerConfig;
use sluicegate::ingest::proto::ingest_client::IngestClient;
use sluicegate::ingest::proto::{IngestRequest, IngestResponse, Record, Rejection};
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tonic::transport::{Channel, Endpoint};
use tonic::{Status, Streaming};

/// Every wait in these tests is bounded by this, so a bug fails a test instead of hanging it.
pub const PATIENCE: Duration = Duration::from_secs(30);

/// A config on 127.0.0.1:0 storing in `dir`, with metrics off.
pub fn config(dir: &tempfile::TempDir) -> ServerConfig {
    ServerConfig {
        listen: "127.0.0.1:0".parse().expect("a loopback address"),
        drain_timeout: Duration::from_secs(10),
        ..ServerConfig::new(dir.path())
    }
}

pub async fn start(config: ServerConfig) -> RunningServer {
    sluicegate::ingest::start(config)
        .await
        .expect("the server starts")
}

pub fn record(id: &str) -> Record {
    Record {
        id: id.to_owned(),
        payload: format!("payload of {id}").into_bytes().into(),
        key: Some("k".into()),
    }
}

/// The ids in the embedded store's log in `dir`, in log order.
pub fn stored_ids(dir: &std::path::Path) -> Vec<String> {
    sluicegate::ingest::read_dir(dir)
        .expect("the store reads back")
        .records
        .into_iter()
        .map(|record| record.id)
        .collect()
}

pub fn ids(prefix: &str, range: std::ops::Range<usize>) -> Vec<String> {
    range.map(|index| format!("{prefix}-{index}")).collect()
}

pub async fn channel(addr: SocketAddr) -> Channel {
    Endpoint::from_shared(format!("http://{addr}"))
        .expect("an endpoint")
        .connect()
        .await
        .expect("connects")
}

/// One ingest stream driven by hand.
pub struct RawStream {
    pub tx: Option<mpsc::Sender<IngestRequest>>,
    pub inbound: Streaming<IngestResponse>,
    /// Credits granted so far.
    pub granted: u64,
}

/// What came back for some records.
#[derive(Debug, Default)]
pub struct Answers {
    pub stored: Vec<String>,
    pub rejected: Vec<Rejection>,
    /// The stream's end: `None` while open, `Some(Ok(()))` for a clean end.
    pub end: Option<Result<(), Status>>,
}

impl Answers {
    pub fn len(&self) -> usize {
        self.stored.len() + self.rejected.len()
    }

    pub fn ended_cleanly(&self) -> bool {
        matches!(self.end, Some(Ok(())))
    }
}

impl RawStream {
    pub async fn open(client: &mut IngestClient<Channel>) -> RawStream {
        let (tx, rx) = mpsc::channel(64);
        let mut inbound = client
            .ingest(ReceiverStream::new(rx))
            .await
            .expect("the call starts")
            .into_inner();
        let grant = tokio::time::timeout(PATIENCE, inbound.message())
            .await
            .expect("a credit grant in time")
            .expect("no error")
            .expect("a first message");
        assert!(grant.stored_ids.is_empty() && grant.rejected.is_empty());
        assert!(grant.credits > 0, "the first message grants credits");
        RawStream {
            tx: Some(tx),
            inbound,
            granted: u64::from(grant.credits),
        }
    }

    pub async fn send(&self, records: Vec<Record>) {
        let tx = self.tx.as_ref().expect("the sending side is open");
        tx.send(IngestRequest { records })
            .await
            .expect("the request stream is open");
    }

    pub async fn send_ids(&self, ids: &[String]) {
        self.send(ids.iter().map(|id| record(id)).collect()).await;
    }

    /// Ends the client's side of the stream.
    pub fn close(&mut self) {
        self.tx = None;
    }

    /// Reads answers until `count` records are answered or the stream ends.
    pub async fn answers(&mut self, count: usize) -> Answers {
        let mut answers = Answers::default();
        while answers.len() < count {
            let next = tokio::time::timeout(PATIENCE, self.inbound.message())
                .await
                .expect("an answer in time");
            match next {
                Ok(Some(response)) => {
                    self.granted += u64::from(response.credits);
                    answers.stored.extend(response.stored_ids);
                    answers.rejected.extend(response.rejected);
                }
                Ok(None) => {
                    answers.end = Some(Ok(()));
                    break;
                }
                Err(status) => {
                    answers.end = Some(Err(status));
                    break;
                }
            }
        }
        answers
    }

    /// Reads answers until the stream ends.
    pub async fn until_end(&mut self) -> Answers {
        self.answers(usize::MAX).await
    }
}

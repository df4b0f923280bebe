//! The NATS JetStream store: batches are published to one stream, shared by any number of ingest
//! servers, and a record is answered as stored only once JetStream has acknowledged it.
//!
//! - **Ack after JetStream's ack.** Every record is one message (payload as the body, the id as
//!   `Nats-Msg-Id`, the key as `Sluicegate-Key`); [`RecordStore::write_batch`] returns only when
//!   every publish of the batch has its `PubAck` (or has failed for good), and only then does the
//!   writer ack the client. No publish ack is dropped unawaited.
//! - **Idempotence.** JetStream drops a message whose `Nats-Msg-Id` it has seen within the
//!   stream's duplicate window (`duplicate_window`, 2 minutes unless the stream says otherwise)
//!   and answers `duplicate: true`: a record retried by the client, by this store after a lost
//!   ack, or by another ingest server is stored once if the retry comes within the window. After
//!   the window a retry is stored again. A local window of recent ids also answers repeats
//!   without a round trip.
//! - **Backpressure.** At most `max_in_flight` publishes of a batch are unacknowledged at once
//!   (the async-nats context is built with a larger bound and `backpressure_on_inflight`, so its
//!   own limit never turns into an error); the writer takes the next batch only when this one is
//!   answered, so a slow JetStream fills the bounded queue in front and the overflow policy
//!   throttles or refuses clients.
//! - **Failure.** A publish that fails or is not acked within `ack_timeout` is published again
//!   with the same `Nats-Msg-Id` (so at most once more in the stream) with a growing pause, until
//!   `retry_timeout` has passed since the batch started; then its record is answered
//!   [`Outcome::Failed`] ([`StoreError::Unconfirmed`]) and the client is told it was rejected
//!   (`REASON_STORE_FAILED`) - it may in fact be stored, and a retry with the same id is not
//!   stored twice. The connection reconnects without limit when the server returns.
//! - **Durability.** A `PubAck` means the stream's leader (and, with replicas, a quorum) has the
//!   message. nats-server 2.9 does not `fsync` before acking: file streams are synced every
//!   `sync_interval` (2 minutes by default), so on a single node a power loss or OS crash can lose
//!   acknowledged records (a process crash does not: the data is in the OS page cache).
//!   Durability against machine failure comes from replicas (`replicas=3` on a cluster).
//!
//! A store is configured by a URL (see [`JetStreamConfig::parse`]):
//!
//! ```
//! use sluicegate::ingest::JetStreamConfig;
//!
//! let config = JetStreamConfig::parse("nats://127.0.0.1:4222?stream=EVENTS&replicas=3").unwrap();
//! assert_eq!(config.server, "nats://127.0.0.1:4222");
//! assert_eq!(config.stream, "EVENTS");
//! assert_eq!(config.subject, "sluicegate.ingest.EVENTS");
//! assert_eq!(config.replicas, 1.max(config.replicas));
//! ```

use std::collections::VecDeque;
use std::future::IntoFuture;
use std::sync::Arc;
use std::time::Duration;

use async_nats::HeaderMap;
use async_nats::jetstream::context::PublishAckFuture;
use async_nats::jetstream::message::PublishMessage;
use async_nats::jetstream::stream::{Config as StreamConfig, StorageType};
use async_nats::jetstream::{self, Context};
use futures::StreamExt;
use tokio::runtime::Handle;
use tokio::time::Instant;

use super::{Appended, Outcome, RecentIds, RecordStore, StoreError};
use crate::ingest::proto::Record;

/// The header that carries a record's key.
pub const KEY_HEADER: &str = "Sluicegate-Key";

/// Where and how to publish.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JetStreamConfig {
    /// The NATS server, `nats://host:port`, or several, comma-separated (the members of a
    /// cluster): the client connects to any and reconnects to another when it goes away.
    pub server: String,
    /// The stream's name. It is created if it does not exist.
    pub stream: String,
    /// The subject records are published on (one of the stream's subjects).
    pub subject: String,
    /// The duplicate window of a stream this store creates (an existing stream keeps its own).
    pub duplicate_window: Duration,
    /// Replicas of a stream this store creates (1 on a single server).
    pub replicas: usize,
    /// Publishes of one batch awaiting their acks at most.
    pub max_in_flight: usize,
    /// How long one publish waits for its ack.
    pub ack_timeout: Duration,
    /// How long a batch keeps republishing unacked records before rejecting them.
    pub retry_timeout: Duration,
}

impl JetStreamConfig {
    /// The defaults for `stream` on `server`.
    pub fn new(server: impl Into<String>, stream: impl Into<String>) -> Self {
        let stream = stream.into();
        JetStreamConfig {
            server: server.into(),
            subject: format!("sluicegate.ingest.{stream}"),
            stream,
            duplicate_window: Duration::from_secs(120),
            replicas: 1,
            max_in_flight: 1024,
            ack_timeout: Duration::from_secs(5),
            retry_timeout: Duration::from_secs(30),
        }
    }

    /// Parses `nats://HOST:PORT?stream=NAME[&subject=S][&duplicate_window_s=N][&replicas=N]
    /// [&max_in_flight=N][&ack_timeout_ms=N][&retry_timeout_ms=N]`. Values are taken as written
    /// (no percent-decoding; stream names and subjects do not need it).
    ///
    /// # Errors
    ///
    /// [`StoreError::Spec`] for another scheme, a missing stream, an unknown parameter or a bad
    /// number.
    pub fn parse(spec: &str) -> Result<Self, StoreError> {
        let fail = |reason: String| StoreError::Spec {
            spec: spec.to_owned(),
            reason,
        };
        if !spec.starts_with("nats://") {
            return Err(fail("expected nats://HOST:PORT?stream=NAME".into()));
        }
        let (server, query) = spec.split_once('?').unwrap_or((spec, ""));
        let mut pairs = Vec::new();
        for pair in query.split('&').filter(|pair| !pair.is_empty()) {
            let (name, value) = pair
                .split_once('=')
                .ok_or_else(|| fail(format!("{pair:?} is not NAME=VALUE")))?;
            pairs.push((name, value));
        }
        let stream = pairs
            .iter()
            .find(|(name, _)| *name == "stream")
            .map(|(_, value)| *value)
            .filter(|value| !value.is_empty())
            .ok_or_else(|| fail("missing stream=NAME".into()))?;
        if stream.contains(['.', '*', '>', ' ']) {
            return Err(fail(format!("stream name {stream:?} has . * > or a space")));
        }
        let mut config = JetStreamConfig::new(server, stream);
        for (name, value) in pairs {
            let number = || {
                value
                    .parse::<u64>()
                    .map_err(|_| fail(format!("{name}={value:?} is not a whole number")))
            };
            match name {
                "stream" => {}
                "subject" => config.subject = value.to_owned(),
                "duplicate_window_s" => {
                    config.duplicate_window = Duration::from_secs(number()?);
                }
                "replicas" => config.replicas = number()?.max(1) as usize,
                "max_in_flight" => config.max_in_flight = number()?.max(1) as usize,
                "ack_timeout_ms" => config.ack_timeout = Duration::from_millis(number()?.max(1)),
                "retry_timeout_ms" => config.retry_timeout = Duration::from_millis(number()?),
                other => return Err(fail(format!("unknown parameter {other:?}"))),
            }
        }
        Ok(config)
    }

    /// The specification back as a URL (for logs and for another server to use).
    pub fn url(&self) -> String {
        format!(
            "{}?stream={}&subject={}",
            self.server, self.stream, self.subject
        )
    }
}

/// What [`JetStreamStore::connect`] found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StreamSummary {
    /// Messages in the stream.
    pub messages: u64,
    /// The stream's duplicate window: a retry later than this is stored again.
    pub duplicate_window: Duration,
    /// Its replicas.
    pub replicas: usize,
}

/// The writer's handle on a JetStream stream.
#[derive(Debug)]
pub struct JetStreamStore {
    config: JetStreamConfig,
    context: Context,
    runtime: Handle,
    recent: RecentIds,
}

fn nats_error(what: &'static str) -> impl FnOnce(&dyn std::fmt::Display) -> StoreError {
    move |error| StoreError::Nats {
        what,
        detail: error.to_string(),
    }
}

/// Connects to the server of `config` (any of them, if it lists several), reconnecting without
/// limit after a disconnection.
async fn connect_client(config: &JetStreamConfig) -> Result<async_nats::Client, StoreError> {
    async_nats::ConnectOptions::new()
        .name("sluicegate-ingest")
        .connection_timeout(Duration::from_secs(5))
        .max_reconnects(None)
        // Short pauses: a restarted server is back within seconds, and while it is away the
        // queue in front of the store fills anyway.
        .reconnect_delay_callback(|attempts| {
            Duration::from_millis(50 << attempts.min(5)).min(Duration::from_secs(1))
        })
        .event_callback(|event| async move {
            match event {
                async_nats::Event::Connected => tracing::info!("NATS connected"),
                async_nats::Event::Disconnected => {
                    tracing::warn!("NATS disconnected; reconnecting")
                }
                async_nats::Event::Closed => tracing::info!("NATS connection closed"),
                other => tracing::warn!(event = %other, "NATS event"),
            }
        })
        // async-nats takes a list, not a comma-separated string.
        .connect(config.server.split(',').map(str::trim).collect::<Vec<_>>())
        .await
        .map_err(|error| nats_error("connecting")(&error))
}

impl JetStreamStore {
    /// Connects, creates the stream if it does not exist (file storage, the configured subject,
    /// duplicate window and replicas), and reads its state. Call it inside the tokio runtime
    /// that will run the client; [`write_batch`](RecordStore::write_batch) drives it from the
    /// writer's blocking thread.
    ///
    /// # Errors
    ///
    /// [`StoreError::Nats`] if the server cannot be reached, has no JetStream, or refuses the
    /// stream.
    pub async fn connect(
        config: JetStreamConfig,
        dedup_window: usize,
    ) -> Result<(JetStreamStore, StreamSummary), StoreError> {
        let client = connect_client(&config).await?;
        let max_in_flight = config.max_in_flight.max(1);
        // Our own bound is max_in_flight; the context's is larger and waits instead of failing,
        // so it never turns a full window into an error.
        let context = jetstream::context::ContextBuilder::new()
            .timeout(config.ack_timeout)
            .max_ack_inflight(max_in_flight * 2)
            .backpressure_on_inflight(true)
            .build(client);
        let mut stream = context
            .get_or_create_stream(StreamConfig {
                name: config.stream.clone(),
                subjects: vec![config.subject.clone()],
                duplicate_window: config.duplicate_window,
                num_replicas: config.replicas.max(1),
                storage: StorageType::File,
                ..StreamConfig::default()
            })
            .await
            .map_err(|error| nats_error("creating the stream")(&error))?;
        let info = stream
            .info()
            .await
            .map_err(|error| nats_error("reading the stream's state")(&error))?;
        if !info.config.subjects.contains(&config.subject) {
            tracing::warn!(
                stream = %config.stream, subject = %config.subject, subjects = ?info.config.subjects,
                "the existing stream does not list the subject literally; publishes fail unless a \
                 wildcard covers it"
            );
        }
        let summary = StreamSummary {
            messages: info.state.messages,
            duplicate_window: info.config.duplicate_window,
            replicas: info.config.num_replicas,
        };
        let store = JetStreamStore {
            config,
            context,
            runtime: Handle::current(),
            recent: RecentIds::new(dedup_window.max(1)),
        };
        Ok((store, summary))
    }

    fn message(record: &Record) -> PublishMessage {
        let mut headers = HeaderMap::new();
        if let Some(key) = &record.key {
            headers.insert(KEY_HEADER, key.as_str());
        }
        PublishMessage::build()
            .payload(record.payload.clone())
            .headers(headers)
            .message_id(record.id.as_str())
    }

    /// One round: publishes the records at `pending` (indexes into `records`) with at most
    /// `max_in_flight` acks outstanding, and awaits every ack. Settles `outcomes` of the acked
    /// ones and returns the others with their errors.
    ///
    /// Each ack is awaited until `ack_timeout` after its own publish (an absolute deadline, so
    /// awaiting them one after another does not add their timeouts up), and the first publish
    /// that cannot even be sent ends the round: the rest are returned unpublished, so a round
    /// with the server away takes about one `ack_timeout`, not one per record.
    async fn publish_round(
        &self,
        records: &[&Record],
        pending: &[usize],
        outcomes: &mut [Option<Outcome>],
    ) -> Vec<(usize, String)> {
        let mut failed = Vec::new();
        let mut in_flight: VecDeque<(usize, Instant, PublishAckFuture)> = VecDeque::new();
        let limit = self.config.max_in_flight.max(1);
        let mut unsent = pending.iter();
        for &index in unsent.by_ref() {
            if in_flight.len() >= limit
                && let Some((acked, deadline, ack)) = in_flight.pop_front()
            {
                let ack = self.await_ack(deadline, ack).await;
                self.settle(acked, ack, outcomes, &mut failed);
            }
            let published = self
                .context
                .send_publish(self.config.subject.clone(), Self::message(records[index]))
                .await;
            match published {
                Ok(ack) => {
                    in_flight.push_back((index, Instant::now() + self.config.ack_timeout, ack))
                }
                Err(error) => {
                    failed.push((index, error.to_string()));
                    break;
                }
            }
        }
        let not_sent = "not sent: an earlier publish of the round failed";
        failed.extend(unsent.map(|&index| (index, not_sent.to_owned())));
        // Every ack is awaited, in order, even after failures: none is left to the background.
        while let Some((acked, deadline, ack)) = in_flight.pop_front() {
            let ack = self.await_ack(deadline, ack).await;
            self.settle(acked, ack, outcomes, &mut failed);
        }
        failed
    }

    async fn await_ack(
        &self,
        deadline: Instant,
        ack: PublishAckFuture,
    ) -> Result<jetstream::publish::PublishAck, String> {
        match tokio::time::timeout_at(deadline, ack.into_future()).await {
            Ok(Ok(ack)) => Ok(ack),
            Ok(Err(error)) => Err(error.to_string()),
            Err(_) => Err(format!("no ack within {:?}", self.config.ack_timeout)),
        }
    }

    fn settle(
        &self,
        index: usize,
        ack: Result<jetstream::publish::PublishAck, String>,
        outcomes: &mut [Option<Outcome>],
        failed: &mut Vec<(usize, String)>,
    ) {
        match ack {
            Ok(ack) if ack.stream != self.config.stream => failed.push((
                index,
                format!(
                    "stored in stream {:?}, not {:?}: the subject belongs to another stream",
                    ack.stream, self.config.stream
                ),
            )),
            Ok(ack) => {
                outcomes[index] = Some(if ack.duplicate {
                    Outcome::Duplicate
                } else {
                    Outcome::Stored
                });
            }
            Err(error) => failed.push((index, error)),
        }
    }

    async fn publish_batch(&self, records: &[&Record]) -> Vec<Outcome> {
        let mut outcomes: Vec<Option<Outcome>> = vec![None; records.len()];
        let deadline = Instant::now() + self.config.retry_timeout;
        let mut pending: Vec<usize> = (0..records.len()).collect();
        let mut attempts = 0u32;
        // Bounded: every round either settles records or moves closer to the deadline (each
        // publish is bounded by ack_timeout).
        while !pending.is_empty() {
            attempts += 1;
            let failed = self.publish_round(records, &pending, &mut outcomes).await;
            let Some((_, last)) = failed.last() else {
                break;
            };
            let now = Instant::now();
            if now >= deadline {
                tracing::error!(
                    records = failed.len(), attempts, error = %last,
                    "JetStream did not confirm records in time; rejecting them"
                );
                let error = Arc::new(StoreError::Unconfirmed {
                    attempts,
                    last: last.clone(),
                });
                for (index, _) in failed {
                    outcomes[index] = Some(Outcome::Failed(Arc::clone(&error)));
                }
                break;
            }
            tracing::warn!(
                records = failed.len(), attempts, error = %last,
                "JetStream publishes failed; publishing them again with the same Nats-Msg-Id"
            );
            // A pause between rounds (not a synchronisation stand-in): retrying a server that is
            // restarting in a tight loop would only spin.
            let pause = Duration::from_millis(50 << attempts.min(4)).min(deadline - now);
            tokio::time::sleep(pause).await;
            pending = failed.into_iter().map(|(index, _)| index).collect();
        }
        outcomes
            .into_iter()
            .map(|outcome| {
                // Unreachable by construction (every index is settled or failed); answering
                // it as failed keeps the record answered rather than panicking.
                outcome.unwrap_or_else(|| {
                    Outcome::Failed(Arc::new(StoreError::Unconfirmed {
                        attempts,
                        last: "not published".into(),
                    }))
                })
            })
            .collect()
    }
}

impl RecordStore for JetStreamStore {
    fn claim_all(&mut self, ids: &[&str]) -> Vec<bool> {
        self.recent.claim_all(ids)
    }

    fn write_batch(&mut self, records: &[&Record]) -> Appended {
        if records.is_empty() {
            return Appended::new(Vec::new());
        }
        let outcomes = self.runtime.block_on(self.publish_batch(records));
        for (record, outcome) in records.iter().zip(&outcomes) {
            if !outcome.is_stored() {
                self.recent.release(&record.id);
            }
        }
        Appended::new(outcomes)
    }

    fn dedup_forgotten(&self) -> u64 {
        self.recent.forgotten()
    }

    fn describe(&self) -> String {
        format!("JetStream {}", self.config.url())
    }
}

/// Reads every message of the stream of `config` back as records (id from `Nats-Msg-Id`, key
/// from `Sluicegate-Key`), in stream order. For `verify` and tests; it asks for each message by
/// sequence, 64 requests at a time.
///
/// # Errors
///
/// [`StoreError::Nats`] if the server or the stream cannot be reached or a message cannot be
/// read.
pub async fn read_stream(config: &JetStreamConfig) -> Result<Vec<Record>, StoreError> {
    let client = connect_client(config).await?;
    let context = jetstream::new(client);
    let stream = context
        .get_stream(&config.stream)
        .await
        .map_err(|error| nats_error("opening the stream")(&error))?;
    let info = stream
        .get_info()
        .await
        .map_err(|error| nats_error("reading the stream's state")(&error))?;
    let (first, last) = (info.state.first_sequence, info.state.last_sequence);
    if info.state.messages == 0 {
        return Ok(Vec::new());
    }
    let stream = &stream;
    let mut messages = futures::stream::iter(first..=last)
        .map(|sequence| async move { (sequence, stream.get_raw_message(sequence).await) })
        .buffered(64);
    let mut records = Vec::with_capacity(info.state.messages as usize);
    while let Some((sequence, message)) = messages.next().await {
        let message = match message {
            Ok(message) => message,
            // A deleted sequence (gaps are possible after deletes): nothing to read there.
            Err(error)
                if error.kind() == jetstream::stream::RawMessageErrorKind::NoMessageFound =>
            {
                continue;
            }
            Err(error) => {
                return Err(StoreError::Nats {
                    what: "reading a message",
                    detail: format!("sequence {sequence}: {error}"),
                });
            }
        };
        let header = |name: &str| {
            message
                .headers
                .get(name)
                .map(|value| value.as_str().to_owned())
        };
        records.push(Record {
            id: header("Nats-Msg-Id").unwrap_or_default(),
            payload: message.payload.clone(),
            key: header(KEY_HEADER),
        });
    }
    Ok(records)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_url_with_every_parameter_parses() {
        let config = JetStreamConfig::parse(
            "nats://127.0.0.1:4222?stream=S&subject=a.b&duplicate_window_s=600&replicas=3\
             &max_in_flight=64&ack_timeout_ms=250&retry_timeout_ms=1000",
        )
        .unwrap();
        assert_eq!(
            config,
            JetStreamConfig {
                server: "nats://127.0.0.1:4222".into(),
                stream: "S".into(),
                subject: "a.b".into(),
                duplicate_window: Duration::from_secs(600),
                replicas: 3,
                max_in_flight: 64,
                ack_timeout: Duration::from_millis(250),
                retry_timeout: Duration::from_secs(1),
            }
        );
    }

    #[test]
    fn bad_urls_are_refused_with_the_reason() {
        for (spec, reason) in [
            ("http://x?stream=S", "nats://"),
            ("nats://x", "missing stream"),
            ("nats://x?stream=a.b", "stream name"),
            ("nats://x?stream=S&replicas=many", "whole number"),
            ("nats://x?stream=S&colour=red", "unknown parameter"),
        ] {
            let error = JetStreamConfig::parse(spec).unwrap_err().to_string();
            assert!(error.contains(reason), "{spec}: {error}");
        }
    }
}

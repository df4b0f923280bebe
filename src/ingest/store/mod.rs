//! Where stored records go: the [`RecordStore`] interface the store writer writes through, and
//! its two implementations, chosen by configuration
//! ([`StoreTarget`](crate::ingest::config::StoreTarget)):
//!
//! - [`embedded`]: an append-only log of segment files on this machine, one `fdatasync` per
//!   write ([`Store`]).
//! - [`jetstream`]: a NATS JetStream stream, shared by any number of ingest servers; a record is
//!   stored once JetStream has acknowledged it, and its id is the `Nats-Msg-Id`, so JetStream
//!   drops a retried record within the stream's duplicate window ([`JetStreamStore`]).
//!
//! Characteristics of every store:
//! - **Answers**: [`RecordStore::write_batch`] answers every record of the batch with an
//!   [`Outcome`], in order, final once [`Appended::finish`] returns them (the embedded store
//!   leaves its `fdatasync` to `finish`); a record is acked to the client only on
//!   [`Outcome::Stored`] or [`Outcome::Duplicate`].
//! - **Backpressure**: the call returns only when the batch is written, and the writer holds at
//!   most one batch waiting for `finish`, so a slow store stalls the writer, the bounded queue
//!   in front of it fills, and its [`OverflowPolicy`](crate::sinks::OverflowPolicy) decides who
//!   waits or who is refused.
//! - **Idempotence**: [`RecordStore::claim_all`] answers repeats the writer does not need to
//!   write again; the store's own dedup (JetStream's `Nats-Msg-Id`) catches the rest.
//!
//! The test `a_store_answers_claims_and_writes_in_order` below shows
//! a claim, a write and the claims after it.

mod checkpoint;
mod direct;
mod embedded;
mod frame;
#[cfg(feature = "nats")]
mod jetstream;
mod page_cache;
mod recent;
mod recover;
mod repair;

pub use embedded::{Contents, Recovery, read_dir};
pub(crate) use embedded::{Store, StoreOptions};
pub use frame::encoded_len as stored_len;
#[cfg(feature = "nats")]
pub(crate) use jetstream::JetStreamStore;
#[cfg(feature = "nats")]
pub use jetstream::{JetStreamConfig, read_stream};
pub use recent::RecentIds;
pub use recover::Lost;
pub use repair::{RepairReport, Repaired, repair_dir};

/// The frame codec and the embedded store's recovery, for the fuzz targets
/// (`sluicegate::internals`).
#[cfg(feature = "unstable-internals")]
pub(crate) mod internals {
    pub use super::embedded::{Store, StoreOptions};
    pub use super::frame::{Decoded, HEADER_LEN, MAX_BODY_LEN, decode, encode};
}

use std::io;
use std::path::PathBuf;
use std::sync::Arc;

use crate::ingest::proto::Record;

/// Errors of the stores.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// An I/O operation failed. The OS error is part of the message and deliberately not a
    /// `source()` as well, so that a printed error chain says it once.
    #[error("{what} {path}: {error}")]
    Io {
        /// What was being done.
        what: &'static str,
        /// The file or directory.
        path: PathBuf,
        /// The underlying error.
        error: io::Error,
    },
    /// A segment is damaged where a crash cannot have torn it (a finished segment, damage
    /// followed by intact frames, or before the synced length; see `store/recover.rs`): records
    /// in it may have been acked, so the store refuses to open rather than cut them off.
    /// `sluicegate ingest repair` ([`repair_dir`]) moves the damage aside.
    #[error(
        "segment {path} is corrupt at byte {offset}: {reason}; records found after it: {records_after}"
    )]
    Corrupt {
        /// The segment.
        path: PathBuf,
        /// Where its first bad frame starts (where its intact frames end).
        offset: u64,
        /// Why this is corruption rather than a torn tail.
        reason: &'static str,
        /// Records found after the damage, intact or with a readable id (as many as can be
        /// counted: a frame whose length field is damaged cannot be).
        records_after: u64,
    },
    /// A `--store` specification could not be understood.
    #[error("store specification {spec:?}: {reason}")]
    Spec {
        /// The specification as given.
        spec: String,
        /// What is wrong with it.
        reason: String,
    },
    /// Talking to NATS or JetStream failed (connecting, creating or reading the stream).
    #[error("JetStream: {what}: {detail}")]
    Nats {
        /// What was being done.
        what: &'static str,
        /// The client's error.
        detail: String,
    },
    /// An earlier `fdatasync` failed, or a failed write could not be cut back to the segment's
    /// last written length: the store refuses writes rather than trust pages the kernel may have
    /// dropped or append behind a partial frame. Opening the store again (restarting the server)
    /// recovers: it keeps every intact frame and cuts a torn tail off.
    #[error(
        "segment {path}: refusing writes after an earlier failure ({detail}); restart to recover"
    )]
    Broken {
        /// The segment.
        path: PathBuf,
        /// The failure (and the failed cut back, if that was it).
        detail: String,
    },
    /// A record without an id: the store keeps records by id, and the frame of a record with
    /// nothing in it would read back as padding.
    #[error("a record without an id cannot be stored")]
    EmptyId,
    /// JetStream did not confirm a record within the retry time. It may or may not be stored:
    /// the client is told it was rejected, and a retry with the same id is stored at most once
    /// (within the stream's duplicate window).
    #[error("JetStream did not confirm the record after {attempts} attempts: {last}")]
    Unconfirmed {
        /// Publishes tried.
        attempts: u32,
        /// The last failure.
        last: String,
    },
}

/// What became of one record of a batch.
#[derive(Debug, Clone)]
pub enum Outcome {
    /// Durable now (as durable as the store makes it: see the store's docs).
    Stored,
    /// Was already stored (the store's own dedup recognised the id); not stored again.
    Duplicate,
    /// Not stored, as far as the store knows: the client is told, and may retry.
    Failed(Arc<StoreError>),
}

impl Outcome {
    /// True for [`Stored`](Outcome::Stored) and [`Duplicate`](Outcome::Duplicate): the record
    /// may be acked.
    #[cfg(feature = "nats")]
    pub fn is_stored(&self) -> bool {
        !matches!(self, Outcome::Failed(_))
    }
}

/// Work left before a written batch is durable (the embedded store's `fdatasync`). The writer
/// runs it on its second thread, so the next batch is written while this one reaches the disk.
pub struct PendingSync(Box<dyn FnOnce() -> Result<(), StoreError> + Send>);

impl PendingSync {
    /// The work to do.
    pub fn new(sync: impl FnOnce() -> Result<(), StoreError> + Send + 'static) -> Self {
        PendingSync(Box::new(sync))
    }

    /// Does it; returns only when the batch is durable, or could not be made so.
    ///
    /// # Errors
    ///
    /// The store's error: then no record of the batch is stored.
    pub fn run(self) -> Result<(), StoreError> {
        (self.0)()
    }
}

impl std::fmt::Debug for PendingSync {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter.write_str("PendingSync")
    }
}

/// The answers to one [`RecordStore::write_batch`]: one [`Outcome`] per record, in order, which
/// hold once [`finish`](Appended::finish) has returned them.
#[derive(Debug)]
#[must_use = "every record of a batch must be answered"]
pub struct Appended {
    outcomes: Vec<Outcome>,
    sync: Option<PendingSync>,
}

impl Appended {
    /// One outcome per record, in the order of the batch, final as they are.
    pub fn new(outcomes: Vec<Outcome>) -> Self {
        Appended {
            outcomes,
            sync: None,
        }
    }

    /// The same outcome for each of `len` records (a store that writes a batch all or nothing).
    pub fn all(len: usize, outcome: Outcome) -> Self {
        Appended::new(vec![outcome; len])
    }

    /// Each of `len` records stored once `sync` has succeeded.
    pub fn after_sync(len: usize, sync: PendingSync) -> Self {
        Appended {
            outcomes: vec![Outcome::Stored; len],
            sync: Some(sync),
        }
    }

    /// Waits until the batch is durable (if anything is left to do) and returns its outcomes,
    /// in the order of the batch.
    ///
    /// # Errors
    ///
    /// The pending sync failed: no record of the batch is stored.
    pub fn finish(self) -> Result<Vec<Outcome>, StoreError> {
        if let Some(sync) = self.sync {
            sync.run()?;
        }
        Ok(self.outcomes)
    }
}

/// A destination for batches of records. The store writer owns one and calls it from its own
/// blocking thread, one batch at a time.
pub trait RecordStore: Send + 'static {
    /// Claims each of `ids`, in order, for the next [`write_batch`](Self::write_batch): true
    /// if the store does not know the id, so the writer writes it; false if a recent write of
    /// this store (within its dedup window) stored or is storing it, or an earlier id of `ids`
    /// claimed it, so the writer acks it again without writing it. The writer acks such a
    /// repeat only after the claiming write's `finish` succeeded. One answer per id, in order;
    /// a group at once, so that the dedup window can prefetch ([`RecentIds::claim_all`]).
    fn claim_all(&mut self, ids: &[&str]) -> Vec<bool>;

    /// Stores `records` (distinct ids, each just claimed by [`claim_all`](Self::claim_all)).
    /// Blocking; the outcomes hold once [`Appended::finish`] returns them. The claim of every
    /// record this call already answers as failed is released, so that a retry is written.
    fn write_batch(&mut self, records: &[&Record]) -> Appended;

    /// Ids forgotten by the local dedup window so far.
    fn dedup_forgotten(&self) -> u64;

    /// A short description for logs: the directory, or the server and stream.
    fn describe(&self) -> String;
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_store_answers_claims_and_writes_in_order() {
        use crate::ingest::proto::Record;
        use crate::ingest::store::{Outcome, RecordStore, Store, StoreOptions};

        let dir = tempfile::tempdir().unwrap();
        let (store, _recovery) = Store::open(dir.path(), StoreOptions::default()).unwrap();
        let mut store: Box<dyn RecordStore> = Box::new(store);
        let record = Record {
            id: "r-1".into(),
            payload: b"hello".to_vec().into(),
            key: None,
        };
        assert_eq!(store.claim_all(&["r-1"]), [true]);
        let appended = store.write_batch(&[&record]);
        assert!(matches!(appended.finish().unwrap()[..], [Outcome::Stored]));
        assert_eq!(
            store.claim_all(&["r-1", "r-2", "r-2"]),
            [false, true, false]
        );
    }
}

//! The store writer: the consumer of the queue, in two stages on two threads.
//!
//! 1. **Write** (the caller's thread): takes whatever batches are queued (up to a limit) into one
//!    [`RecordStore::write_batch`] (one positional write for the embedded store; publishes
//!    awaited to their JetStream acks for JetStream), writing each id once and none that was
//!    written recently.
//! 2. **Answer** (its own thread): [`Appended::finish`]es each written group in order (the
//!    embedded store's `fdatasync`), then acks every record stored and rejects the rest.
//!
//! So the next group is written while the previous one reaches the disk (group commit), and an
//! ack still leaves only once its record is durable. A repeat of an id written by an earlier
//! group is acked with its own group, which is answered after the earlier one; and once a
//! `finish` has failed, every later group fails too, so a repeat is never acked on the strength
//! of a write that did not become durable.

use std::hash::{BuildHasher, RandomState};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use futures::StreamExt;
use hashbrown::HashTable;

use crate::ingest::proto::{Reason, Record};
use crate::ingest::reply::{Answer, PendingBatch, Replies};
use crate::ingest::stats::Counters;
use crate::ingest::store::{Appended, Outcome, RecordStore, StoreError};
use crate::sinks::SinkStream;

/// How the writer runs.
#[derive(Debug, Clone, Copy)]
pub struct WriterOptions {
    /// Queued batches taken into one write at most.
    pub group_batches: usize,
    /// Artificial delay after each write (a slow disk, for tests and benchmarks).
    pub store_delay: Duration,
}

/// Runs until every producer is gone, the queue is drained and every record answered.
/// Blocking: run it on its own thread (`spawn_blocking`); it starts one more for the answers.
/// Returns the store, for a caller that wants to look at it.
pub fn run(
    mut store: Box<dyn RecordStore>,
    queue: SinkStream<PendingBatch>,
    options: WriterOptions,
    counters: Arc<Counters>,
) -> Box<dyn RecordStore> {
    let mut groups = queue.ready_chunks(options.group_batches.max(1));
    // One written group waits for the answer stage at most: memory stays bounded by the
    // queue plus three groups (being written, waiting, being answered).
    let (written_tx, written_rx) = mpsc::sync_channel::<Written>(1);
    std::thread::scope(|scope| {
        std::thread::Builder::new()
            .name("ingest-answers".into())
            .spawn_scoped(scope, || {
                let mut answering = Answering::default();
                for written in written_rx {
                    answering.answer(written, &counters);
                }
            })
            .expect("cannot start the store writer's answer thread");
        let mut group_ids = GroupIds::default();
        loop {
            let queued = groups.get_ref().len() as u64;
            counters
                .queue_high_water
                .fetch_max(queued, Ordering::Relaxed);
            let Some(group) = futures::executor::block_on(groups.next()) else {
                break;
            };
            let written = write_group(store.as_mut(), group, &mut group_ids, options, &counters);
            if written_tx.send(written).is_err() {
                // Only if the answer thread panicked; the scope then reports it.
                break;
            }
        }
        drop(written_tx);
    });
    store
}

/// A group written by the store, waiting to be finished and answered.
struct Written {
    group: Vec<PendingBatch>,
    /// For each record of the group in order, the index in the write whose outcome answers it
    /// (a repeat within the group shares its first copy's), or `None` if the id was written
    /// by an earlier group.
    slots: Vec<Option<usize>>,
    appended: Appended,
    started: Instant,
}

/// The ids of the group being written, to find repeats within it. Indexed lazily: only once
/// the store answers an id of the group as known, which is when it may be a repeat within the
/// group; a group without repeats (the common case) hashes nothing here. Kept from group to
/// group, so that its table is allocated once rather than for every group (a fresh table of a
/// few thousand entries is fresh memory: page faults and cache misses on every group).
#[derive(Default)]
struct GroupIds {
    /// Index in the write, by hash of the id.
    index: HashTable<usize>,
    /// The hash of each record indexed so far (the first ones of the write), to grow the index
    /// without hashing again.
    hashes: Vec<u64>,
    hasher: RandomState,
}

impl GroupIds {
    /// Forgets the previous group.
    fn clear(&mut self) {
        self.index.clear();
        self.hashes.clear();
    }

    /// Where `id` is in `to_write` (the group's records to write so far), if it is there.
    fn find(&mut self, id: &str, to_write: &[&Record]) -> Option<usize> {
        let Self {
            index,
            hashes,
            hasher,
        } = self;
        for (slot, record) in to_write.iter().enumerate().skip(hashes.len()) {
            let hash = hasher.hash_one(record.id.as_str());
            hashes.push(hash);
            index.insert_unique(hash, slot, |&slot| hashes[slot]);
        }
        let hash = hasher.hash_one(id);
        index.find(hash, |&slot| to_write[slot].id == id).copied()
    }
}

/// Writes each id of `group` once, and none written recently.
fn write_group(
    store: &mut dyn RecordStore,
    group: Vec<PendingBatch>,
    group_ids: &mut GroupIds,
    options: WriterOptions,
    counters: &Counters,
) -> Written {
    let total: usize = group.iter().map(PendingBatch::len).sum();
    let mut slots: Vec<Option<usize>> = Vec::with_capacity(total);
    let mut to_write: Vec<&Record> = Vec::with_capacity(total);
    group_ids.clear();
    let records = || group.iter().flat_map(|batch| &batch.records);
    let ids: Vec<&str> = records().map(|record| record.id.as_str()).collect();
    let claimed = store.claim_all(&ids);
    for (record, claimed) in records().zip(claimed) {
        let id = record.id.as_str();
        if claimed {
            to_write.push(record);
            slots.push(Some(to_write.len() - 1));
        } else {
            // Known: written by an earlier group, or a repeat within this one, which shares its
            // first copy's outcome, whatever it is.
            slots.push(group_ids.find(id, &to_write));
        }
    }
    let started = Instant::now();
    let appended = store.write_batch(&to_write);
    Counters::add(&counters.store_writes, 1);
    if !options.store_delay.is_zero() {
        std::thread::sleep(options.store_delay);
    }
    drop(to_write);
    Written {
        group,
        slots,
        appended,
        started,
    }
}

/// The answer stage's memory: the failure that fails every later group.
#[derive(Default)]
struct Answering {
    failed: Option<Arc<StoreError>>,
}

impl Answering {
    /// Finishes one written group (waits until it is durable) and answers each of its records.
    fn answer(&mut self, written: Written, counters: &Counters) {
        let Written {
            group,
            slots,
            appended,
            started,
        } = written;
        let outcomes = match &self.failed {
            Some(error) => Err(Arc::clone(error)),
            None => appended.finish().map_err(Arc::new),
        };
        metrics::histogram!("sluicegate_ingest_store_write_seconds")
            .record(started.elapsed().as_secs_f64());
        let outcomes = outcomes.unwrap_or_else(|error| {
            self.failed.get_or_insert_with(|| Arc::clone(&error));
            vec![Outcome::Failed(error); slots.len()]
        });
        answer_group(group, slots, outcomes, self.failed.as_ref(), counters);
    }
}

/// The answers of one group, one per stream, in the order streams first appear.
#[derive(Default)]
struct Answers(Vec<(Replies, Answer)>);

impl Answers {
    fn of(&mut self, replies: &Replies) -> &mut Answer {
        let position = self
            .0
            .iter()
            .rposition(|(known, _)| known.same_stream(replies));
        let index = match position {
            Some(index) => index,
            None => {
                self.0.push((replies.clone(), Answer::default()));
                self.0.len() - 1
            }
        };
        &mut self.0[index].1
    }
}

/// Acks the records stored (now, or by an earlier group) and rejects the rest. After a failure
/// (`failed`), a record written by an earlier group is rejected too: that write may be the one
/// that failed.
fn answer_group(
    group: Vec<PendingBatch>,
    slots: Vec<Option<usize>>,
    outcomes: Vec<Outcome>,
    failed: Option<&Arc<StoreError>>,
    counters: &Counters,
) {
    // Records that became stored by this write: every other ack is a duplicate.
    let newly_stored = outcomes
        .iter()
        .filter(|outcome| matches!(outcome, Outcome::Stored))
        .count();
    let mut answers = Answers::default();
    let (mut stored, mut rejected) = (0, 0);
    let mut first_error = None;
    let mut slots = slots.into_iter();
    for batch in group {
        let answer = answers.of(&batch.replies);
        answer.reserve(batch.len());
        let mut records = batch.records;
        for record in &mut records {
            let id = std::mem::take(&mut record.id);
            // One slot per record, in the same order as the write.
            let outcome = match slots.next().flatten() {
                Some(slot) => &outcomes[slot],
                None => match failed {
                    Some(error) => &Outcome::Failed(Arc::clone(error)),
                    None => &Outcome::Duplicate,
                },
            };
            match outcome {
                Outcome::Stored | Outcome::Duplicate => {
                    answer.stored(id);
                    stored += 1;
                }
                Outcome::Failed(error) => {
                    answer.rejected(id, Reason::StoreFailed, error.to_string());
                    rejected += 1;
                    first_error.get_or_insert_with(|| error.to_string());
                }
            }
        }
        answer.carry(records);
    }
    if let Some(error) = first_error {
        tracing::error!(%error, rejected, "store write failed; its records are rejected");
    }
    Counters::add(&counters.stored, stored);
    Counters::add(&counters.duplicates, stored.saturating_sub(newly_stored));
    Counters::add(&counters.rejected, rejected);
    for (replies, answer) in answers.0 {
        if !replies.send(answer) {
            tracing::debug!("a client left before its ack; a retry will be acked from the store");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ingest::proto::IngestResponse;
    use crate::ingest::reply;
    use crate::ingest::store::{Store, StoreOptions, read_dir};

    fn record(id: &str) -> Record {
        Record {
            id: id.into(),
            payload: vec![3; 8].into(),
            key: None,
        }
    }

    /// The ids acked on a response stream, after its initial grant.
    fn acked(
        responses: impl futures::Stream<Item = Result<IngestResponse, tonic::Status>>,
    ) -> Vec<String> {
        futures::executor::block_on(Box::pin(responses).collect::<Vec<_>>())
            .into_iter()
            .skip(1)
            .flat_map(|response| response.unwrap().stored_ids)
            .collect()
    }

    #[test]
    fn repeats_within_a_group_and_of_stored_ids_are_acked_and_written_once() {
        let dir = tempfile::tempdir().unwrap();
        let (mut store, _) = Store::open(dir.path(), StoreOptions::default()).unwrap();
        store.append(&[&record("old")]).unwrap();
        let tracker = tokio_util::task::TaskTracker::new();
        let (one, responses_one) = reply::open(16, tracker.token());
        let one = one.replies;
        let (two, responses_two) = reply::open(16, tracker.token());
        let two = two.replies;
        let batch = |replies: &Replies, ids: &[&str]| PendingBatch {
            records: ids.iter().map(|id| record(id)).collect(),
            replies: replies.clone(),
        };
        let group = vec![
            batch(&one, &["a", "b", "a"]),
            batch(&two, &["a", "old", "c"]),
            batch(&one, &["c"]),
        ];
        let options = WriterOptions {
            group_batches: 16,
            store_delay: Duration::ZERO,
        };
        let counters = Counters::default();
        Answering::default().answer(
            write_group(
                &mut store,
                group,
                &mut GroupIds::default(),
                options,
                &counters,
            ),
            &counters,
        );
        drop((one, two));
        assert_eq!(acked(responses_one), ["a", "b", "a", "c"]);
        assert_eq!(acked(responses_two), ["a", "old", "c"]);
        let ids: Vec<_> = read_dir(dir.path())
            .unwrap()
            .records
            .into_iter()
            .map(|record| record.id)
            .collect();
        assert_eq!(ids, ["old", "a", "b", "c"]);
        assert_eq!(counters.stored.load(Ordering::Relaxed), 7);
        assert_eq!(counters.duplicates.load(Ordering::Relaxed), 4);
    }

    /// A store that fails the records whose ids are in `failing`, keeping the claim contract
    /// (a failed record's claim is released), as JetStream does for a record it cannot confirm.
    struct PartlyFailing {
        recent: crate::ingest::store::RecentIds,
        failing: Vec<&'static str>,
        written: Vec<String>,
    }

    impl RecordStore for PartlyFailing {
        fn claim_all(&mut self, ids: &[&str]) -> Vec<bool> {
            self.recent.claim_all(ids)
        }

        fn write_batch(&mut self, records: &[&Record]) -> Appended {
            let outcomes = records
                .iter()
                .map(|record| {
                    if self.failing.contains(&record.id.as_str()) {
                        self.recent.release(&record.id);
                        Outcome::Failed(Arc::new(StoreError::Unconfirmed {
                            attempts: 1,
                            last: "test".into(),
                        }))
                    } else {
                        self.written.push(record.id.clone());
                        Outcome::Stored
                    }
                })
                .collect();
            Appended::new(outcomes)
        }

        fn dedup_forgotten(&self) -> u64 {
            0
        }

        fn describe(&self) -> String {
            "partly failing".into()
        }
    }

    #[test]
    fn a_repeat_shares_a_failed_first_copy_and_a_later_retry_is_written() {
        let mut store = PartlyFailing {
            recent: crate::ingest::store::RecentIds::new(100),
            failing: vec!["x"],
            written: Vec::new(),
        };
        let tracker = tokio_util::task::TaskTracker::new();
        let (way_back, responses) = reply::open(16, tracker.token());
        let replies = way_back.replies;
        let batch = |ids: &[&str]| PendingBatch {
            records: ids.iter().map(|id| record(id)).collect(),
            replies: replies.clone(),
        };
        let options = WriterOptions {
            group_batches: 16,
            store_delay: Duration::ZERO,
        };
        let counters = Counters::default();
        let mut group_ids = GroupIds::default();
        let mut answering = Answering::default();
        let group = vec![batch(&["a", "x"]), batch(&["x", "a"])];
        let written = write_group(&mut store, group, &mut group_ids, options, &counters);
        answering.answer(written, &counters);
        // "x" failed: its repeat in the same group is rejected with it, not acked as known.
        assert_eq!(counters.rejected.load(Ordering::Relaxed), 2);
        store.failing.clear();
        let written = write_group(
            &mut store,
            vec![batch(&["x", "a"])],
            &mut group_ids,
            options,
            &counters,
        );
        answering.answer(written, &counters);
        drop(replies);
        assert_eq!(acked(responses), ["a", "a", "x", "a"]);
        assert_eq!(
            store.written,
            ["a", "x"],
            "the retry of x is written, a is not"
        );
        assert_eq!(counters.rejected.load(Ordering::Relaxed), 2);
    }
}

//! The store writer: the consumer of the queue. It takes whatever batches are queued (up to a
//! limit) into one [`RecordStore::write_batch`] (one write and one `fdatasync` for the embedded
//! store; publishes awaited to their JetStream acks for JetStream), acks every record only after
//! the store has answered it as stored, and acks a repeat of a recently stored id again without
//! writing it twice.

use std::collections::HashMap;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use futures::StreamExt;

use crate::ingest::proto::{Reason, Record};
use crate::ingest::reply::{Answer, PendingBatch, Replies};
use crate::ingest::stats::{Counters, IngestStats};
use crate::ingest::store::{Outcome, RecordStore};
use crate::sinks::{SinkStats, SinkStream};

/// How the writer runs.
#[derive(Debug, Clone, Copy)]
pub struct WriterOptions {
    /// Queued batches taken into one write at most.
    pub group_batches: usize,
    /// Artificial delay after each write (a slow disk, for tests and benchmarks).
    pub store_delay: Duration,
    /// The queue's capacity in batches, for the published statistics.
    pub queue_capacity: usize,
}

/// Runs until every producer is gone and the queue is drained. Blocking: run it on its own
/// thread (`spawn_blocking`). Returns the store, for a caller that wants to look at it.
pub fn run(
    mut store: Box<dyn RecordStore>,
    queue: SinkStream<PendingBatch>,
    options: WriterOptions,
    counters: Arc<Counters>,
    queue_stats: Arc<Mutex<SinkStats>>,
) -> Box<dyn RecordStore> {
    let capacity = options.queue_capacity;
    let mut groups = queue.ready_chunks(options.group_batches.max(1));
    let publish = |groups: &futures::stream::ReadyChunks<SinkStream<PendingBatch>>| {
        let stats = groups.get_ref().stats();
        *queue_stats.lock().unwrap_or_else(PoisonError::into_inner) = stats;
        IngestStats::read(&counters, stats, capacity).publish();
    };
    loop {
        let queued = groups.get_ref().len() as u64;
        counters
            .queue_high_water
            .fetch_max(queued, Ordering::Relaxed);
        let Some(group) = futures::executor::block_on(groups.next()) else {
            break;
        };
        write_group(store.as_mut(), group, options, &counters);
        publish(&groups);
    }
    publish(&groups);
    store
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

fn write_group(
    store: &mut dyn RecordStore,
    group: Vec<PendingBatch>,
    options: WriterOptions,
    counters: &Counters,
) {
    let total: usize = group.iter().map(PendingBatch::len).sum();
    // Which records to write: each id once, and only if not stored recently. `slots[i]` is the
    // index in `to_write` whose outcome answers record `i` (a repeat within the group shares
    // its first copy's), or `None` if the id was stored before.
    let mut first_copy: HashMap<&str, usize> = HashMap::with_capacity(total);
    let mut slots: Vec<Option<usize>> = Vec::with_capacity(total);
    let mut to_write: Vec<&Record> = Vec::with_capacity(total);
    for record in group.iter().flat_map(|batch| &batch.records) {
        let id = record.id.as_str();
        if store.contains(id) {
            slots.push(None);
            continue;
        }
        let slot = *first_copy.entry(id).or_insert_with(|| {
            to_write.push(record);
            to_write.len() - 1
        });
        slots.push(Some(slot));
    }
    drop(first_copy);
    let started = Instant::now();
    let appended = store.write_batch(&to_write);
    metrics::histogram!("sluicegate_ingest_store_write_seconds")
        .record(started.elapsed().as_secs_f64());
    Counters::add(&counters.store_writes, 1);
    if !options.store_delay.is_zero() {
        std::thread::sleep(options.store_delay);
    }
    drop(to_write);
    let outcomes = appended.into_outcomes();
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
        for record in batch.records {
            // One slot per record, in the same order as above.
            let slot = slots.next().flatten();
            match slot.map(|slot| &outcomes[slot]) {
                // Stored before (the local window), now, or before as the store itself found.
                None | Some(Outcome::Stored | Outcome::Duplicate) => {
                    answer.stored(record.id);
                    stored += 1;
                }
                Some(Outcome::Failed(error)) => {
                    answer.rejected(record.id, Reason::StoreFailed, error.to_string());
                    rejected += 1;
                    first_error.get_or_insert_with(|| error.to_string());
                }
            }
        }
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
        let (one, responses_one, _, _) = reply::open(16, tracker.token());
        let (two, responses_two, _, _) = reply::open(16, tracker.token());
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
            queue_capacity: 16,
        };
        let counters = Counters::default();
        write_group(&mut store, group, options, &counters);
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
}

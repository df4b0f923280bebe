//! The store writer: the consumer of the queue. It takes whatever batches are queued (up to a
//! limit) into one [`RecordStore::write_batch`] (one write and one `fdatasync` for the embedded
//! store; publishes awaited to their JetStream acks for JetStream), acks every record only after
//! the store has answered it as stored, and acks a repeat of a recently stored id again without
//! writing it twice.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use futures::StreamExt;

use crate::ingest::proto::{Reason, Record};
use crate::ingest::reply::{Answer, Pending, Replies};
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
    queue: SinkStream<Vec<Pending>>,
    options: WriterOptions,
    counters: Arc<Counters>,
    queue_stats: Arc<Mutex<SinkStats>>,
) -> Box<dyn RecordStore> {
    let capacity = options.queue_capacity;
    let mut groups = queue.ready_chunks(options.group_batches.max(1));
    let publish = |groups: &futures::stream::ReadyChunks<SinkStream<Vec<Pending>>>| {
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
    group: Vec<Vec<Pending>>,
    options: WriterOptions,
    counters: &Counters,
) {
    let records: Vec<Pending> = group.into_iter().flatten().collect();
    // Which records to write: each id once, and only if not stored recently.
    let mut fresh_ids: HashSet<&str> = HashSet::new();
    let mut already_stored = vec![false; records.len()];
    let mut to_write: Vec<&Record> = Vec::with_capacity(records.len());
    for (index, pending) in records.iter().enumerate() {
        let id = pending.record.id.as_str();
        if store.contains(id) {
            already_stored[index] = true;
        } else if fresh_ids.insert(id) {
            to_write.push(&pending.record);
        }
    }
    let started = Instant::now();
    let appended = store.write_batch(&to_write);
    metrics::histogram!("sluicegate_ingest_store_write_seconds")
        .record(started.elapsed().as_secs_f64());
    Counters::add(&counters.store_writes, 1);
    if !options.store_delay.is_zero() {
        std::thread::sleep(options.store_delay);
    }
    // The outcome of each written id; a repeat within the group shares its first copy's.
    let outcomes: HashMap<String, Outcome> = to_write
        .iter()
        .map(|record| record.id.clone())
        .zip(appended.into_outcomes())
        .collect();
    drop(to_write);
    // Records that became stored by this write: every other ack is a duplicate.
    let newly_stored = outcomes
        .values()
        .filter(|outcome| matches!(outcome, Outcome::Stored))
        .count();

    let mut answers = Answers::default();
    let (mut stored, mut rejected) = (0, 0);
    let mut first_error = None;
    for (pending, was_stored) in records.into_iter().zip(already_stored) {
        let answer = answers.of(&pending.replies);
        let outcome = if was_stored {
            None
        } else {
            outcomes.get(pending.record.id.as_str())
        };
        match outcome {
            // Stored before (the local window), now, or before as the store itself found.
            None | Some(Outcome::Stored | Outcome::Duplicate) => {
                answer.stored(pending.record.id);
                stored += 1;
            }
            Some(Outcome::Failed(error)) => {
                answer.rejected(pending.record.id, Reason::StoreFailed, error.to_string());
                rejected += 1;
                first_error.get_or_insert_with(|| error.to_string());
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

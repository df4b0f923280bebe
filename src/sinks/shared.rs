//! The state shared by a sink's handles and its stream, and the decisions made on it.
//!
//! One mutex guards the queue and the counters together, so a decision and its counter move in
//! the same critical section and every snapshot is consistent. Free slots are also tracked by a
//! semaphore so that producers under `Block` can wait for one fairly and cancel-safely. Slots are
//! only ever returned while the mutex is held, which makes "is there a free slot?" asked under the
//! mutex an exact question.

use std::collections::VecDeque;
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use futures::task::AtomicWaker;
use tokio::sync::{Semaphore, TryAcquireError};

use super::{Emission, OverflowPolicy, SinkStats};

pub(super) struct Shared<T> {
    state: Mutex<State<T>>,
    /// One permit per free slot.
    pub(super) slots: Semaphore,
    /// The consumer's waker, woken after an item is queued or the last handle is dropped.
    consumer: AtomicWaker,
    pub(super) capacity: usize,
    pub(super) policy: OverflowPolicy,
}

struct State<T> {
    queue: VecDeque<T>,
    handles: usize,
    /// Set when the stream is dropped or closed: from then on every emission is `Closed`.
    closed: bool,
    stats: SinkStats,
}

/// What the stream found when it looked for the next item.
pub(super) enum Next<T> {
    Item(T),
    Empty,
    Finished,
}

impl<T> Shared<T> {
    pub(super) fn new(capacity: usize, policy: OverflowPolicy) -> Self {
        Shared {
            state: Mutex::new(State {
                queue: VecDeque::new(),
                handles: 1,
                closed: false,
                stats: SinkStats::default(),
            }),
            slots: Semaphore::new(capacity),
            consumer: AtomicWaker::new(),
            capacity,
            policy,
        }
    }

    /// The state lock. Nothing panics while holding it, so a poisoned lock still guards
    /// consistent state; counting must go on even after a panic elsewhere.
    fn lock(&self) -> MutexGuard<'_, State<T>> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Queues `item` into a slot whose permit the caller has already taken (and forgotten).
    pub(super) fn push_into_reserved_slot(&self, item: T) -> Emission<T> {
        let mut state = self.lock();
        state.stats.offered += 1;
        if state.closed {
            state.stats.closed += 1;
            return Emission::Closed(item);
        }
        state.queue.push_back(item);
        state.stats.queued += 1;
        drop(state);
        self.consumer.wake();
        Emission::Queued
    }

    /// Queues `item` if a slot is free right now. Otherwise hands it back uncounted, for a caller
    /// that is about to wait for a slot and will be counted then.
    pub(super) fn queue_if_slot_free(&self, item: T) -> Result<Emission<T>, T> {
        match self.slots.try_acquire() {
            Ok(permit) => {
                permit.forget();
                Ok(self.push_into_reserved_slot(item))
            }
            Err(TryAcquireError::Closed) => Ok(self.refuse_closed(item)),
            Err(TryAcquireError::NoPermits) => Err(item),
        }
    }

    /// Decides the fate of `item` without waiting: queue it if a slot is free, otherwise apply the
    /// overflow policy. `Block` cannot wait here, so it rejects.
    pub(super) fn offer_without_waiting(&self, item: T) -> Emission<T> {
        let mut state = self.lock();
        state.stats.offered += 1;
        if state.closed {
            state.stats.closed += 1;
            return Emission::Closed(item);
        }
        // Exact under the lock: slots are only returned while it is held.
        if let Ok(permit) = self.slots.try_acquire() {
            permit.forget();
            state.queue.push_back(item);
            state.stats.queued += 1;
            drop(state);
            self.consumer.wake();
            return Emission::Queued;
        }
        match self.policy {
            OverflowPolicy::Block | OverflowPolicy::Reject => {
                state.stats.rejected += 1;
                Emission::Rejected(item)
            }
            OverflowPolicy::DropNewest => {
                state.stats.dropped_newest += 1;
                Emission::DroppedNewest(item)
            }
            OverflowPolicy::DropOldest => match state.queue.pop_front() {
                Some(oldest) => {
                    // The evicted item's slot passes straight to the new item.
                    state.queue.push_back(item);
                    state.stats.queued += 1;
                    state.stats.evicted_oldest += 1;
                    Emission::Evicted(oldest)
                }
                // Every slot is held by a reservation and nothing is queued: there is no
                // oldest item to displace, so the newest one is the one that cannot fit.
                None => {
                    state.stats.dropped_newest += 1;
                    Emission::DroppedNewest(item)
                }
            },
        }
    }

    /// Counts an emission refused because the sink closed while it waited for a slot.
    pub(super) fn refuse_closed(&self, item: T) -> Emission<T> {
        let mut state = self.lock();
        state.stats.offered += 1;
        state.stats.closed += 1;
        Emission::Closed(item)
    }

    /// Adds one wait for a slot to the counters.
    pub(super) fn record_blocked(&self, waited: Duration) {
        let mut state = self.lock();
        state.stats.blocked_emits += 1;
        state.stats.blocked += waited;
    }

    /// Returns an unused reserved slot.
    pub(super) fn release_reserved_slot(&self) {
        let _state = self.lock();
        self.slots.add_permits(1);
    }

    /// Takes the next item for the consumer, registering its waker when there is none yet.
    pub(super) fn next_item(&self, waker: &std::task::Waker) -> Next<T> {
        let mut state = self.lock();
        if let Some(item) = state.queue.pop_front() {
            state.stats.delivered += 1;
            self.slots.add_permits(1);
            return Next::Item(item);
        }
        // Nothing more can arrive once every handle is gone or the sink is closed.
        if state.handles == 0 || state.closed {
            return Next::Finished;
        }
        // Registered under the lock: a producer queues under the same lock and wakes after it,
        // so it cannot slip between this check and the registration.
        self.consumer.register(waker);
        Next::Empty
    }

    /// Refuses every later emission and wakes producers waiting for a slot. Items already queued
    /// stay and can still be taken.
    pub(super) fn close(&self) {
        self.lock().closed = true;
        self.slots.close();
    }

    /// Closes the sink for good because the consumer is gone, counting what it left queued.
    pub(super) fn abandon(&self) {
        let leftovers = {
            let mut state = self.lock();
            state.closed = true;
            state.stats.abandoned += state.queue.len() as u64;
            std::mem::take(&mut state.queue)
        };
        self.slots.close();
        // Dropped outside the lock: an item's destructor may do anything.
        drop(leftovers);
    }

    pub(super) fn add_handle(&self) {
        self.lock().handles += 1;
    }

    pub(super) fn remove_handle(&self) {
        let last = {
            let mut state = self.lock();
            state.handles -= 1;
            state.handles == 0
        };
        if last {
            self.consumer.wake();
        }
    }

    pub(super) fn is_closed(&self) -> bool {
        self.lock().closed
    }

    pub(super) fn len(&self) -> usize {
        self.lock().queue.len()
    }

    pub(super) fn stats(&self) -> SinkStats {
        let state = self.lock();
        SinkStats {
            len: state.queue.len() as u64,
            ..state.stats
        }
    }
}

//! The state shared by a sink's handles and its stream, and the decisions made on it.
//!
//! One mutex guards the queue, the slot accounting and the counters together, so a decision and
//! its counter move in the same critical section and every snapshot is consistent. Each emission
//! and each delivery takes that lock once. Producers waiting for a slot under `Block` park on a
//! [`Notify`], which passes a wake-up on to the next waiter if a woken one is cancelled.

use std::collections::VecDeque;
use std::pin::pin;
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::task::Waker;
use std::time::Duration;

use futures::task::AtomicWaker;
use tokio::sync::Notify;

use super::{Emission, OverflowPolicy, SinkStats};

pub(super) struct Shared<T> {
    state: Mutex<State<T>>,
    /// Signalled when a slot frees up while producers wait, and to everyone on close.
    slot_freed: Notify,
    /// The consumer's waker, woken after an item is queued or the last handle is dropped.
    consumer: AtomicWaker,
    pub(super) capacity: usize,
    pub(super) policy: OverflowPolicy,
}

struct State<T> {
    queue: VecDeque<T>,
    /// Slots held by reservations that have not handed over their item yet.
    reserved: usize,
    /// Producers parked until a slot frees up.
    waiting: usize,
    /// Whether the consumer is parked and needs a wake-up for the next item.
    consumer_parked: bool,
    handles: usize,
    /// Set when the stream is dropped or closed: from then on every emission is `Closed`.
    closed: bool,
    stats: SinkStats,
}

impl<T> State<T> {
    fn has_free_slot(&self, capacity: usize) -> bool {
        self.queue.len() + self.reserved < capacity
    }

    /// Queues an item into a slot already known to be free; returns whether to wake the consumer.
    fn push(&mut self, item: T) -> bool {
        self.queue.push_back(item);
        self.stats.queued += 1;
        std::mem::take(&mut self.consumer_parked)
    }
}

/// What the stream found when it looked for the next item.
pub(super) enum Next<T> {
    Item(T),
    Empty,
    Finished,
}

/// A producer's place among the waiting ones; leaving it (on wake-up or cancellation) is counted.
struct WaitingPlace<'a, T> {
    shared: &'a Shared<T>,
    held: bool,
}

impl<T> WaitingPlace<'_, T> {
    fn leave(&mut self, state: &mut State<T>) {
        if std::mem::take(&mut self.held) {
            state.waiting -= 1;
        }
    }
}

impl<T> Drop for WaitingPlace<'_, T> {
    fn drop(&mut self) {
        if self.held {
            self.shared.lock().waiting -= 1;
        }
    }
}

impl<T> Shared<T> {
    pub(super) fn new(capacity: usize, policy: OverflowPolicy) -> Self {
        Shared {
            state: Mutex::new(State {
                queue: VecDeque::new(),
                reserved: 0,
                waiting: 0,
                consumer_parked: false,
                handles: 1,
                closed: false,
                stats: SinkStats::default(),
            }),
            slot_freed: Notify::new(),
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

    fn wake_consumer_if(&self, parked: bool) {
        if parked {
            self.consumer.wake();
        }
    }

    /// Queues `item` if a slot is free right now. Otherwise hands it back uncounted, for a caller
    /// that is about to wait for a slot and will be counted then.
    pub(super) fn queue_if_slot_free(&self, item: T) -> Result<Emission<T>, T> {
        let mut state = self.lock();
        if state.closed {
            state.stats.offered += 1;
            state.stats.closed += 1;
            return Ok(Emission::Closed(item));
        }
        if !state.has_free_slot(self.capacity) {
            return Err(item);
        }
        state.stats.offered += 1;
        let parked = state.push(item);
        drop(state);
        self.wake_consumer_if(parked);
        Ok(Emission::Queued)
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
        if state.has_free_slot(self.capacity) {
            let parked = state.push(item);
            drop(state);
            self.wake_consumer_if(parked);
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
                    state.stats.evicted_oldest += 1;
                    let parked = state.push(item);
                    drop(state);
                    self.wake_consumer_if(parked);
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

    /// Waits until a slot is free and reserves it. Returns `false`, reserving nothing, if the
    /// sink is closed first.
    ///
    /// Cancel-safe: a cancelled wait leaves its place among the waiters and reserves nothing, and
    /// a wake-up it had already received passes on to the next waiter.
    pub(super) async fn reserve_slot(&self) -> bool {
        let mut place = WaitingPlace {
            shared: self,
            held: false,
        };
        loop {
            let mut notified = pin!(self.slot_freed.notified());
            {
                let mut state = self.lock();
                place.leave(&mut state);
                if state.closed {
                    return false;
                }
                if state.has_free_slot(self.capacity) {
                    state.reserved += 1;
                    return true;
                }
                // Registered before the lock is released, so a slot freed from now on wakes us.
                notified.as_mut().enable();
                state.waiting += 1;
                place.held = true;
            }
            notified.await;
        }
    }

    /// Queues `item` into a slot reserved by [`reserve_slot`](Self::reserve_slot), counting the
    /// time the producer waited for it.
    pub(super) fn push_into_reserved_slot(&self, item: T, waited: Duration) -> Emission<T> {
        let mut state = self.lock();
        state.reserved -= 1;
        state.stats.offered += 1;
        if !waited.is_zero() {
            state.stats.blocked_emits += 1;
            state.stats.blocked += waited;
        }
        if state.closed {
            state.stats.closed += 1;
            return Emission::Closed(item);
        }
        let parked = state.push(item);
        drop(state);
        self.wake_consumer_if(parked);
        Emission::Queued
    }

    /// Counts an emission refused because the sink closed while it waited for a slot.
    pub(super) fn refuse_closed(&self, item: T, waited: Duration) -> Emission<T> {
        let mut state = self.lock();
        state.stats.offered += 1;
        state.stats.closed += 1;
        state.stats.blocked_emits += 1;
        state.stats.blocked += waited;
        Emission::Closed(item)
    }

    /// Returns a reserved slot that was never used.
    pub(super) fn release_reserved_slot(&self) {
        let wake = {
            let mut state = self.lock();
            state.reserved -= 1;
            state.waiting > 0
        };
        if wake {
            self.slot_freed.notify_one();
        }
    }

    /// Takes the next item for the consumer, registering its waker when there is none yet.
    pub(super) fn next_item(&self, waker: &Waker) -> Next<T> {
        let mut state = self.lock();
        if let Some(item) = state.queue.pop_front() {
            state.stats.delivered += 1;
            let wake = state.waiting > 0;
            drop(state);
            if wake {
                self.slot_freed.notify_one();
            }
            return Next::Item(item);
        }
        // Nothing more can arrive once every handle is gone or the sink is closed.
        if state.handles == 0 || state.closed {
            return Next::Finished;
        }
        // Registered under the lock: a producer queues under the same lock and wakes after it,
        // so it cannot slip between this check and the registration.
        self.consumer.register(waker);
        state.consumer_parked = true;
        Next::Empty
    }

    /// Refuses every later emission and wakes producers waiting for a slot. Items already queued
    /// stay and can still be taken.
    pub(super) fn close(&self) {
        self.lock().closed = true;
        self.slot_freed.notify_waiters();
    }

    /// Closes the sink for good because the consumer is gone, counting what it left queued.
    pub(super) fn abandon(&self) {
        let leftovers = {
            let mut state = self.lock();
            state.closed = true;
            state.stats.abandoned += state.queue.len() as u64;
            std::mem::take(&mut state.queue)
        };
        self.slot_freed.notify_waiters();
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

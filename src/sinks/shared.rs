//! The state shared by a sink's handles and its stream, and the decisions made on it.
//!
//! One mutex guards the queue, the slot accounting, the parked producers and the counters
//! together, so a decision and its counter move in the same critical section and every snapshot
//! is exact. An emission that finds a free slot takes the lock once; one that finds the sink
//! full under `Block` takes it again to park, and once more when it is woken.
//!
//! A producer that finds the sink full under `Block` parks in the state's own list of waiters,
//! in the same critical section. Whoever frees a slot takes the longest-parked producer out of
//! the list and wakes it; the count of parked producers is published in an atomic beside the
//! stream's `yielded` counter, so that the stream learns without the lock whether a yield must
//! wake someone. A woken producer takes the slot when it runs, in one critical section again;
//! if it is cancelled first, it passes the wake-up on to the next parked producer, and if another
//! producer took the slot meanwhile, it parks again at the end of the line.
//!
//! The consumer does not take the lock once per item: when it finds the queue non-empty it takes
//! everything queued into its own hand (a buffer swap) and yields from there without the lock.
//! Items in the consumer's hand still hold their slots and still count in `len` until they are
//! yielded, so capacity and the counters mean what they did; the stream publishes each yield
//! through the `yielded` counter, which a producer reads only when the queue looks full.
//! Under [`OverflowPolicy::DropOldest`] the consumer takes one item at a time instead: the oldest
//! item must stay in the queue, where a producer can evict it.

use std::collections::VecDeque;
use std::future::poll_fn;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::task::{Poll, Waker};
use std::time::Duration;

use tokio::time::Instant;

use futures::task::AtomicWaker;

use super::{Emission, OverflowPolicy, SinkStats};

pub(super) struct Shared<T> {
    /// On a cache line of its own: producers take the lock for every item, and the stream's
    /// per-item traffic on `yield_line` must not pull that line away from them.
    state: CacheLine<Mutex<State<T>>>,
    /// What the stream touches for every item it yields from its hand.
    yield_line: CacheLine<YieldLine>,
    /// The consumer's waker, woken after an item is queued or the last handle is dropped.
    consumer: AtomicWaker,
    pub(super) capacity: usize,
    pub(super) policy: OverflowPolicy,
}

/// Aligns its content to a cache line of its own (128 bytes covers adjacent-line prefetching).
#[repr(align(128))]
struct CacheLine<T>(T);

/// The two atomics of a yield from the hand, together, so that a yield stays within one cache
/// line that producers touch only when the sink is full.
struct YieldLine {
    /// Items the stream has yielded, ever: the `delivered` counter. Only the stream writes it,
    /// without the lock.
    yielded: AtomicU64,
    /// How many producers are parked in [`State::waiters`], published under the lock so that
    /// the stream can tell, without the lock, whether a yield must wake one; both sides use
    /// `SeqCst` (see `item_yielded`).
    waiting: AtomicUsize,
}

/// A producer parked until a slot frees up (or the sink closes).
struct Waiter {
    id: u64,
    waker: Waker,
}

struct State<T> {
    queue: VecDeque<T>,
    /// Items moved from the queue into the stream's hand, ever. `taken - yielded` of them are
    /// still in the hand: they hold their slots and count in `len`.
    taken: u64,
    /// A value `yielded` had at some point, so never more than it: enough to prove that a slot
    /// is free without reading the stream's counter.
    yielded_seen: u64,
    /// Slots held by reservations that have not handed over their item yet.
    reserved: usize,
    /// Producers parked until a slot frees up, oldest first. Whoever frees a slot takes the
    /// first one out and wakes it; a woken producer that no longer wants the slot (cancelled)
    /// passes the wake-up on to the next one.
    waiters: VecDeque<Waiter>,
    /// The id of the next waiter to park.
    next_waiter: u64,
    /// Whether the consumer is parked and needs a wake-up for the next item.
    consumer_parked: bool,
    handles: usize,
    /// Set when the stream is dropped or closed: from then on every emission is `Closed`.
    closed: bool,
    /// The counters; `delivered` and `len` are filled in by [`Shared::stats`].
    stats: SinkStats,
}

impl<T> State<T> {
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

/// A producer's place among the parked ones, for one emission or reservation. Dropping it while
/// parked (a cancelled wait) leaves the list; if the producer had already been woken for a freed
/// slot it will not take, the wake-up passes on to the next parked producer.
struct WaitingPlace<'a, T> {
    shared: &'a Shared<T>,
    /// The id under which it parked, until it leaves.
    id: Option<u64>,
}

impl<T> WaitingPlace<'_, T> {
    /// Parks (or stays parked) with `waker`. Publishes the number of parked producers with
    /// `SeqCst`; the caller must look for a free slot again afterwards (see `item_yielded`).
    fn park(&mut self, state: &mut State<T>, waker: &Waker) {
        if let Some(id) = self.id
            && let Some(waiter) = state.waiters.iter_mut().find(|waiter| waiter.id == id)
        {
            if !waiter.waker.will_wake(waker) {
                waiter.waker = waker.clone();
            }
            return;
        }
        // Not parked yet, or woken since: (back) to the end of the line.
        let id = state.next_waiter;
        state.next_waiter += 1;
        state.waiters.push_back(Waiter {
            id,
            waker: waker.clone(),
        });
        self.id = Some(id);
        self.shared
            .yield_line
            .0
            .waiting
            .store(state.waiters.len(), Ordering::SeqCst);
    }

    /// Leaves the list. Returns true if this producer had been woken for a freed slot (taken out
    /// of the list by whoever freed it) since it last parked.
    fn leave(&mut self, state: &mut State<T>) -> bool {
        let Some(id) = self.id.take() else {
            return false;
        };
        match state.waiters.iter().position(|waiter| waiter.id == id) {
            Some(index) => {
                state.waiters.remove(index);
                self.shared.publish_waiting(state);
                false
            }
            None => true,
        }
    }
}

impl<T> Drop for WaitingPlace<'_, T> {
    fn drop(&mut self) {
        if self.id.is_none() {
            return;
        }
        let next = {
            let mut state = self.shared.lock();
            if self.leave(&mut state) {
                // Woken for a slot this producer will not use: the next one may.
                self.shared.unpark_one(&mut state)
            } else {
                None
            }
        };
        if let Some(waker) = next {
            waker.wake();
        }
    }
}

impl<T> Shared<T> {
    pub(super) fn new(capacity: usize, policy: OverflowPolicy) -> Self {
        Shared {
            state: CacheLine(Mutex::new(State {
                queue: VecDeque::new(),
                taken: 0,
                yielded_seen: 0,
                reserved: 0,
                waiters: VecDeque::new(),
                next_waiter: 0,
                consumer_parked: false,
                handles: 1,
                closed: false,
                stats: SinkStats::default(),
            })),
            yield_line: CacheLine(YieldLine {
                yielded: AtomicU64::new(0),
                waiting: AtomicUsize::new(0),
            }),
            consumer: AtomicWaker::new(),
            capacity,
            policy,
        }
    }

    /// The state lock. Nothing panics while holding it, so a poisoned lock still guards
    /// consistent state; counting must go on even after a panic elsewhere.
    fn lock(&self) -> MutexGuard<'_, State<T>> {
        self.state.0.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Whether a slot is free for one more item: neither queued, nor in the stream's hand, nor
    /// reserved. Reads the stream's `yielded` counter only when the value last seen does not
    /// already prove a free slot.
    fn has_free_slot(&self, state: &mut State<T>) -> bool {
        let held = state.queue.len() + state.reserved;
        if held + ((state.taken - state.yielded_seen) as usize) < self.capacity {
            return true;
        }
        // SeqCst pairs with `item_yielded`: a producer that parked before this load either sees
        // the yield here or is woken by the stream.
        state.yielded_seen = self.yield_line.0.yielded.load(Ordering::SeqCst);
        held + ((state.taken - state.yielded_seen) as usize) < self.capacity
    }

    /// Publishes a shrunk list of parked producers (a grown one is published by `park`).
    fn publish_waiting(&self, state: &State<T>) {
        self.yield_line
            .0
            .waiting
            .store(state.waiters.len(), Ordering::Release);
    }

    /// Takes the longest-parked producer out of the list, for the caller to wake once the lock
    /// is released: a slot was freed.
    fn unpark_one(&self, state: &mut State<T>) -> Option<Waker> {
        let waiter = state.waiters.pop_front()?;
        self.publish_waiting(state);
        Some(waiter.waker)
    }

    /// Takes every parked producer out of the list, for the caller to wake: the sink closed.
    fn unpark_all(&self, state: &mut State<T>) -> VecDeque<Waiter> {
        let waiters = std::mem::take(&mut state.waiters);
        self.publish_waiting(state);
        waiters
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
        if !self.has_free_slot(&mut state) {
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
        if self.has_free_slot(&mut state) {
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
                // Every slot is held by a reservation (or by the one item the stream is
                // yielding) and nothing is queued: there is no oldest item to displace, so the
                // newest one is the one that cannot fit.
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
            id: None,
        };
        poll_fn(|cx| {
            let mut state = self.lock();
            loop {
                if state.closed {
                    place.leave(&mut state);
                    return Poll::Ready(false);
                }
                if self.has_free_slot(&mut state) {
                    place.leave(&mut state);
                    state.reserved += 1;
                    return Poll::Ready(true);
                }
                // Parked (or still parked), then one more look: a slot freed before the
                // announcement is seen here, one freed after it wakes us.
                place.park(&mut state, cx.waker());
                if !self.has_free_slot(&mut state) {
                    return Poll::Pending;
                }
            }
        })
        .await
    }

    /// Queues `item` as soon as a slot is free: the path of
    /// [`SinkHandle::emit`](super::SinkHandle::emit) under `Block` once the sink was found full.
    /// A producer that still finds no free slot parks in the same critical section; the item is
    /// queued in the critical section that finds the free slot. The time from the first poll
    /// that found the sink full to that moment is counted as `blocked`.
    ///
    /// Cancel-safe: until the item is queued it is only held by this future, nothing is counted
    /// and no slot is taken; a cancelled wait leaves its place among the waiters, and a wake-up it
    /// had already received passes on to the next waiter.
    pub(super) async fn emit_blocking(&self, item: T) -> Emission<T> {
        let mut place = WaitingPlace {
            shared: self,
            id: None,
        };
        let mut item = Some(item);
        let mut started: Option<Instant> = None;
        poll_fn(|cx| {
            let mut state = self.lock();
            loop {
                if state.closed {
                    place.leave(&mut state);
                    state.stats.offered += 1;
                    state.stats.closed += 1;
                    if let Some(started) = started {
                        state.stats.blocked_emits += 1;
                        state.stats.blocked += started.elapsed();
                    }
                    let item = item.take().expect("polled after completion");
                    return Poll::Ready(Emission::Closed(item));
                }
                if self.has_free_slot(&mut state) {
                    place.leave(&mut state);
                    state.stats.offered += 1;
                    if let Some(started) = started {
                        // As in `push_into_reserved_slot`: no time passed, no wait to count.
                        let waited = started.elapsed();
                        if !waited.is_zero() {
                            state.stats.blocked_emits += 1;
                            state.stats.blocked += waited;
                        }
                    }
                    let item = item.take().expect("polled after completion");
                    let parked = state.push(item);
                    drop(state);
                    self.wake_consumer_if(parked);
                    return Poll::Ready(Emission::Queued);
                }
                if started.is_none() {
                    started = Some(Instant::now());
                }
                // Parked (or still parked), then one more look: a slot freed before the
                // announcement is seen here, one freed after it wakes us.
                place.park(&mut state, cx.waker());
                if !self.has_free_slot(&mut state) {
                    return Poll::Pending;
                }
            }
        })
        .await
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

    /// Returns a reserved slot that was never used.
    pub(super) fn release_reserved_slot(&self) {
        let waker = {
            let mut state = self.lock();
            state.reserved -= 1;
            self.unpark_one(&mut state)
        };
        if let Some(waker) = waker {
            waker.wake();
        }
    }

    /// The stream yielded an item from its hand, its `yielded`-th ever: publishes the freed slot
    /// and wakes a producer parked for one. The lock is taken only if one is parked: the
    /// `SeqCst` store and load here and the `SeqCst` announcement and load in a parking producer
    /// (`WaitingPlace::park`, then `has_free_slot`) cannot both miss each other, so either the
    /// producer sees the slot or the stream sees the producer.
    pub(super) fn item_yielded(&self, yielded: u64) {
        self.yield_line.0.yielded.store(yielded, Ordering::SeqCst);
        if self.yield_line.0.waiting.load(Ordering::SeqCst) > 0 {
            let waker = self.unpark_one(&mut self.lock());
            if let Some(waker) = waker {
                waker.wake();
            }
        }
    }

    /// Takes the next item for the consumer, registering its waker when there is none yet. The
    /// stream has yielded `yielded` items so far and its hand is empty; the items queued behind
    /// the returned one move into `hand` (all of them, or none under `DropOldest`), still
    /// holding their slots until [`item_yielded`](Self::item_yielded) reports them.
    pub(super) fn take_items(
        &self,
        hand: &mut VecDeque<T>,
        yielded: u64,
        waker: &Waker,
    ) -> Next<T> {
        debug_assert!(
            hand.is_empty(),
            "the stream yields its hand before taking more"
        );
        let mut state = self.lock();
        let Some(item) = state.queue.pop_front() else {
            // Nothing more can arrive once every handle is gone or the sink is closed.
            if state.handles == 0 || state.closed {
                return Next::Finished;
            }
            // Registered under the lock: a producer queues under the same lock and wakes after
            // it, so it cannot slip between this check and the registration.
            self.consumer.register(waker);
            state.consumer_parked = true;
            return Next::Empty;
        };
        if self.policy != OverflowPolicy::DropOldest {
            // A swap, not a copy: the hand's empty buffer becomes the queue's.
            std::mem::swap(&mut state.queue, hand);
        }
        state.taken += 1 + hand.len() as u64;
        // The returned item is yielded under the lock, so its slot is free the moment it leaves
        // the queue, exactly as if it had been taken alone.
        // Producers park under this lock, so the list says whether one waits for that slot.
        self.yield_line
            .0
            .yielded
            .store(yielded + 1, Ordering::Release);
        state.yielded_seen = yielded + 1;
        let waker = self.unpark_one(&mut state);
        drop(state);
        if let Some(waker) = waker {
            waker.wake();
        }
        Next::Item(item)
    }

    /// Refuses every later emission and wakes producers waiting for a slot. Items already queued
    /// stay and can still be taken.
    pub(super) fn close(&self) {
        let waiters = {
            let mut state = self.lock();
            state.closed = true;
            self.unpark_all(&mut state)
        };
        for waiter in waiters {
            waiter.waker.wake();
        }
    }

    /// Closes the sink for good because the consumer is gone, counting what it left queued and
    /// what it left in its `hand`, taken but never yielded.
    pub(super) fn abandon(&self, hand: VecDeque<T>) {
        let (leftovers, waiters) = {
            let mut state = self.lock();
            state.closed = true;
            state.taken -= hand.len() as u64;
            state.stats.abandoned += (state.queue.len() + hand.len()) as u64;
            (
                std::mem::take(&mut state.queue),
                self.unpark_all(&mut state),
            )
        };
        for waiter in waiters {
            waiter.waker.wake();
        }
        // Dropped outside the lock: an item's destructor may do anything.
        drop(leftovers);
        drop(hand);
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

    /// Items queued or in the stream's hand: everything not yet yielded.
    pub(super) fn len(&self) -> usize {
        let state = self.lock();
        state.queue.len()
            + (state.taken - self.yield_line.0.yielded.load(Ordering::SeqCst)) as usize
    }

    pub(super) fn stats(&self) -> SinkStats {
        let state = self.lock();
        // One read of `yielded` for both fields, so that `queued == delivered + evicted_oldest +
        // abandoned + len` holds exactly even while the stream yields concurrently.
        let delivered = self.yield_line.0.yielded.load(Ordering::SeqCst);
        SinkStats {
            delivered,
            len: state.queue.len() as u64 + (state.taken - delivered),
            ..state.stats
        }
    }
}

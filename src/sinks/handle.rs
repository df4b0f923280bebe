//! The producer side of a sink.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use tokio::time::Instant;

use super::shared::Shared;
use super::{Emission, OverflowPolicy, SinkObserver, SinkStats};

/// The producer side of a bounded sink. Clone it for every producer; the stream ends once every
/// handle is dropped and the queue is drained.
pub struct SinkHandle<T> {
    shared: Arc<Shared<T>>,
}

impl<T> SinkHandle<T> {
    pub(super) fn new(shared: Arc<Shared<T>>) -> Self {
        SinkHandle { shared }
    }

    /// Emits `item`, waiting for a free slot under [`OverflowPolicy::Block`]; every other policy
    /// decides at once, exactly like [`try_emit`](Self::try_emit).
    ///
    /// # Cancel safety
    ///
    /// Cancel-safe in the sense of `tokio::sync::mpsc::Sender::send`: the item is queued, and
    /// counted, in the same critical section that finds it a free slot, and until then it is
    /// held by the future alone, so a cancelled call queues nothing, counts nothing and leaves
    /// no slot taken (a wake-up it received for a freed slot passes on to the next waiting
    /// producer). The item is dropped with the future; to keep it across cancellation,
    /// [`reserve`](Self::reserve) first.
    pub async fn emit(&self, item: T) -> Emission<T> {
        match self.emit_without_waiting(item) {
            Ok(emission) => emission,
            Err(item) => self.shared.emit_blocking(item).await,
        }
    }

    /// Queues `item` if that needs no waiting, deciding as [`emit`](Self::emit) would. Under
    /// [`OverflowPolicy::Block`] with no free slot, hands the item back uncounted so that the
    /// caller can `emit` it later, for example from a future it can keep across polls.
    pub(crate) fn emit_without_waiting(&self, item: T) -> Result<Emission<T>, T> {
        if self.shared.policy == OverflowPolicy::Block {
            self.shared.queue_if_slot_free(item)
        } else {
            Ok(self.shared.offer_without_waiting(item))
        }
    }

    /// Emits `item` without ever waiting: it is queued if a slot is free, otherwise the overflow
    /// policy decides. Under [`OverflowPolicy::Block`] a full sink returns
    /// [`Emission::Rejected`], since waiting is exactly what this call promises not to do.
    pub fn try_emit(&self, item: T) -> Emission<T> {
        self.shared.offer_without_waiting(item)
    }

    /// Waits for a free slot, whatever the policy, and holds it until [`SinkPermit::emit`].
    ///
    /// Returns `None` if the sink is closed.
    ///
    /// # Cancel safety
    ///
    /// Cancel-safe: a cancelled wait takes no slot. Since the item is not handed over until the
    /// slot is held, nothing is lost by cancelling.
    pub async fn reserve(&self) -> Option<SinkPermit<'_, T>> {
        let started = Instant::now();
        if !self.shared.reserve_slot().await {
            return None;
        }
        Some(SinkPermit {
            shared: &self.shared,
            waited: started.elapsed(),
            used: false,
        })
    }

    /// True once the consumer is gone or has closed the sink: every emission will be refused.
    pub fn is_closed(&self) -> bool {
        self.shared.is_closed()
    }

    /// The overflow policy this sink was created with.
    pub fn policy(&self) -> OverflowPolicy {
        self.shared.policy
    }

    /// The most items the sink holds at once.
    pub fn capacity(&self) -> usize {
        self.shared.capacity
    }

    /// Items queued right now.
    pub fn len(&self) -> usize {
        self.shared.len()
    }

    /// True if nothing is queued right now.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// A consistent snapshot of the counters.
    pub fn stats(&self) -> SinkStats {
        self.shared.stats()
    }

    /// A watcher of this sink's counters that does not keep the sink open.
    pub fn observer(&self) -> SinkObserver<T> {
        SinkObserver::new(Arc::clone(&self.shared))
    }
}

impl<T> Clone for SinkHandle<T> {
    fn clone(&self) -> Self {
        self.shared.add_handle();
        SinkHandle {
            shared: Arc::clone(&self.shared),
        }
    }
}

impl<T> Drop for SinkHandle<T> {
    fn drop(&mut self) {
        self.shared.remove_handle();
    }
}

impl<T> fmt::Debug for SinkHandle<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SinkHandle")
            .field("policy", &self.shared.policy)
            .field("capacity", &self.shared.capacity)
            .field("stats", &self.shared.stats())
            .finish()
    }
}

/// A free slot held for one item, from [`SinkHandle::reserve`]. Dropping it unused frees the slot.
#[must_use = "a reserved slot is held until the permit is used or dropped"]
pub struct SinkPermit<'a, T> {
    shared: &'a Shared<T>,
    /// How long the reservation waited, counted as blocked time when the item is handed over.
    waited: Duration,
    used: bool,
}

impl<T> SinkPermit<'_, T> {
    /// Queues `item` in the reserved slot. Returns [`Emission::Closed`] if the consumer went away
    /// since the slot was reserved.
    pub fn emit(mut self, item: T) -> Emission<T> {
        self.used = true;
        self.shared.push_into_reserved_slot(item, self.waited)
    }
}

impl<T> Drop for SinkPermit<'_, T> {
    fn drop(&mut self) {
        if !self.used {
            self.shared.release_reserved_slot();
        }
    }
}

//! The counters of a sink.

use std::time::Duration;

/// A consistent snapshot of a sink's counters, taken under the same lock that makes every
/// decision, so the invariants below hold exactly in every snapshot:
///
/// - `offered == queued + dropped_newest + rejected + closed`
/// - `queued == delivered + evicted_oldest + abandoned + len`
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SinkStats {
    /// Items a producer handed to the sink (an emit cancelled while waiting was never offered).
    pub offered: u64,
    /// Items that entered the queue.
    pub queued: u64,
    /// Items refused because the sink was full under `DropNewest`.
    pub dropped_newest: u64,
    /// Queued items displaced by a newer one under `DropOldest`.
    pub evicted_oldest: u64,
    /// Items refused because the sink was full under `Reject`, or by `try_emit` under `Block`.
    pub rejected: u64,
    /// Items refused because the consumer was gone or had closed the sink.
    pub closed: u64,
    /// Items the stream yielded to the consumer.
    pub delivered: u64,
    /// Queued items discarded because the stream was dropped before yielding them.
    pub abandoned: u64,
    /// Items queued right now.
    pub len: u64,
    /// Emissions that had to wait for a slot under `Block`.
    pub blocked_emits: u64,
    /// Total time producers spent waiting for a slot under `Block`.
    pub blocked: Duration,
}

impl SinkStats {
    /// Items that left the sink's custody without reaching the consumer, whatever the reason.
    pub fn lost(&self) -> u64 {
        self.dropped_newest + self.evicted_oldest + self.rejected + self.closed + self.abandoned
    }
}

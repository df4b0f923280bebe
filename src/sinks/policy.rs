//! What a sink does when it is full.

/// What a full sink does with one more item. Each choice names who pays for it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
#[cfg_attr(
    feature = "serde",
    derive(serde::Serialize, serde::Deserialize),
    serde(rename_all = "snake_case")
)]
#[cfg_attr(feature = "cli", derive(clap::ValueEnum))]
pub enum OverflowPolicy {
    /// Backpressure: [`emit`](super::SinkHandle::emit) waits until the consumer frees a slot.
    ///
    /// The producer pays, in time; nothing is lost. The time spent waiting is added to
    /// [`blocked`](super::SinkStats::blocked). [`try_emit`](super::SinkHandle::try_emit) never
    /// waits, so on a full sink it returns [`Rejected`](super::Emission::Rejected) and moves
    /// `rejected`.
    #[default]
    Block,
    /// The new item is not queued and is handed back as
    /// [`DroppedNewest`](super::Emission::DroppedNewest); the queue is untouched.
    ///
    /// The newest item pays; nobody waits. Moves `dropped_newest`.
    DropNewest,
    /// The oldest queued item is removed and handed back as
    /// [`Evicted`](super::Emission::Evicted); the new item takes its place at the back.
    ///
    /// The oldest item pays; nobody waits. Moves `queued` and `evicted_oldest`.
    DropOldest,
    /// Fail fast: the new item is handed back as [`Rejected`](super::Emission::Rejected) so the
    /// caller can tell its own client.
    ///
    /// The caller pays, by handling the refusal; nobody waits. Moves `rejected`.
    Reject,
}

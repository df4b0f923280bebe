//! The outcome of one emission.

/// What happened to an emitted item. It cannot be ignored: an item that was not queued comes
/// back inside the variant, so losing it takes a visible decision by the caller.
#[must_use = "an emission outcome says whether the item was queued; ignoring it hides lost items"]
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Emission<T> {
    /// The item is queued and will be yielded by the stream.
    Queued,
    /// The item is queued, and to make room the oldest queued item was removed: here it is.
    Evicted(T),
    /// The sink was full and the item was not queued ([`DropNewest`](super::OverflowPolicy::DropNewest)).
    DroppedNewest(T),
    /// The sink was full and refused the item ([`Reject`](super::OverflowPolicy::Reject), or
    /// [`try_emit`](super::SinkHandle::try_emit) under [`Block`](super::OverflowPolicy::Block)).
    Rejected(T),
    /// The consumer is gone (or closed the sink); the item was not queued.
    Closed(T),
}

impl<T> Emission<T> {
    /// True if the emitted item itself is now queued ([`Queued`](Self::Queued) or
    /// [`Evicted`](Self::Evicted)).
    pub fn is_queued(&self) -> bool {
        matches!(self, Emission::Queued | Emission::Evicted(_))
    }

    /// The item that this emission left out of the sink: the emitted item when it was not
    /// queued, the displaced item after an eviction, `None` when nothing was lost.
    pub fn into_lost(self) -> Option<T> {
        match self {
            Emission::Queued => None,
            Emission::Evicted(item)
            | Emission::DroppedNewest(item)
            | Emission::Rejected(item)
            | Emission::Closed(item) => Some(item),
        }
    }

    /// A short, stable name of the outcome, for logs and metrics labels.
    pub fn kind(&self) -> &'static str {
        match self {
            Emission::Queued => "queued",
            Emission::Evicted(_) => "evicted",
            Emission::DroppedNewest(_) => "dropped_newest",
            Emission::Rejected(_) => "rejected",
            Emission::Closed(_) => "closed",
        }
    }
}

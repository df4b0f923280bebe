//! Watching a sink without being one of its producers.

use std::fmt;
use std::sync::Arc;

use super::SinkStats;
use super::shared::Shared;

/// Reads a sink's counters and length at any time, without keeping the sink open: unlike a
/// [`SinkHandle`](super::SinkHandle), it does not count as a producer, so the stream still ends
/// once every handle is gone. For metrics and status pages that must stay fresh while the
/// consumer is stuck.
pub struct SinkObserver<T> {
    shared: Arc<Shared<T>>,
}

impl<T> SinkObserver<T> {
    pub(super) fn new(shared: Arc<Shared<T>>) -> Self {
        SinkObserver { shared }
    }

    /// A consistent snapshot of the counters.
    pub fn stats(&self) -> SinkStats {
        self.shared.stats()
    }

    /// Items queued right now.
    pub fn len(&self) -> usize {
        self.shared.len()
    }

    /// True if nothing is queued right now.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl<T> Clone for SinkObserver<T> {
    fn clone(&self) -> Self {
        SinkObserver {
            shared: Arc::clone(&self.shared),
        }
    }
}

impl<T> fmt::Debug for SinkObserver<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SinkObserver")
            .field("stats", &self.stats())
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use futures::StreamExt;

    use crate::sinks::{Emission, OverflowPolicy, bounded};

    #[tokio::test]
    async fn an_observer_sees_the_counters_and_does_not_keep_the_stream_open() {
        let (handle, mut stream) = bounded::<u32>(1, OverflowPolicy::Reject);
        let observer = handle.observer();
        assert!(handle.try_emit(1).is_queued());
        assert!(matches!(handle.try_emit(2), Emission::Rejected(2)));
        assert_eq!(observer.len(), 1);
        assert_eq!(observer.stats().rejected, 1);
        drop(handle);
        assert_eq!(stream.next().await, Some(1));
        assert_eq!(stream.next().await, None, "the observer is not a producer");
        assert!(observer.is_empty());
        assert_eq!(observer.stats().delivered, 1);
    }
}

//! The consumer side of a sink.

use std::fmt;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use futures::Stream;

use super::SinkStats;
use super::shared::{Next, Shared};

/// The consumer side of a bounded sink: a [`Stream`] of the queued items, in queue order.
///
/// It ends once every [`SinkHandle`](super::SinkHandle) is dropped (or the sink is
/// [closed](Self::close)) and everything queued has been yielded. Dropping it closes the sink: later emissions return
/// [`Emission::Closed`](super::Emission::Closed), and items still queued are counted as
/// `abandoned`.
#[must_use = "streams do nothing unless polled"]
pub struct SinkStream<T> {
    shared: Arc<Shared<T>>,
}

impl<T> SinkStream<T> {
    pub(super) fn new(shared: Arc<Shared<T>>) -> Self {
        SinkStream { shared }
    }

    /// Stops accepting items (emissions return `Closed`, waiting producers wake) while keeping
    /// what is queued: the stream yields it, then ends. This is the graceful way to shut a sink
    /// down without abandoning anything.
    pub fn close(&mut self) {
        self.shared.close();
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

impl<T> Stream for SinkStream<T> {
    type Item = T;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<T>> {
        match self.shared.next_item(cx.waker()) {
            Next::Item(item) => Poll::Ready(Some(item)),
            Next::Finished => Poll::Ready(None),
            Next::Empty => Poll::Pending,
        }
    }
}

impl<T> Drop for SinkStream<T> {
    fn drop(&mut self) {
        self.shared.abandon();
    }
}

impl<T> fmt::Debug for SinkStream<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SinkStream")
            .field("stats", &self.shared.stats())
            .finish()
    }
}

//! Batching by size or linger time.

use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use futures::Stream;
use pin_project_lite::pin_project;
use tokio_stream::StreamExt as _;
use tokio_stream::adapters::ChunksTimeout;

pin_project! {
    /// Stream for [`PipelineExt::batch`](super::PipelineExt::batch).
    ///
    /// A thin, named wrapper around `tokio_stream`'s `chunks_timeout`, which already has the
    /// edge cases right: batches are never empty, the linger timer starts with a batch's first
    /// item, and the partial batch is yielded when the input ends.
    #[must_use = "streams do nothing unless polled"]
    pub struct Batch<S: Stream> {
        #[pin]
        chunks: ChunksTimeout<S>,
    }
}

impl<S: Stream> Batch<S> {
    pub(super) fn new(stream: S, max_items: usize, linger: Duration) -> Self {
        assert!(max_items > 0, "a batch needs room for at least 1 item");
        Batch {
            chunks: stream.chunks_timeout(max_items, linger),
        }
    }
}

impl<S: Stream> Stream for Batch<S> {
    type Item = Vec<S::Item>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        self.project().chunks.poll_next(cx)
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        self.chunks.size_hint()
    }
}

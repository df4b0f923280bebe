//! Stream combinators that carry items from a source to sinks.
//!
//! [`PipelineExt`] is the only way in: it extends every [`futures::Stream`] with
//!
//! - [`dedup_by_key`](PipelineExt::dedup_by_key): drop repeats, exactly, within a bounded window
//!   of remembered keys;
//! - [`batch`](PipelineExt::batch): group items by size or linger time (Kafka's `batch.size` /
//!   `linger.ms`), built on `tokio_stream::StreamExt::chunks_timeout`;
//! - [`fan_out`](PipelineExt::fan_out): emit every item to several [`SinkHandle`]s and report
//!   each sink's [`Emission`](crate::sinks::Emission).
//!
//! # Example
//!
//! ```
//! use std::time::Duration;
//! use futures::StreamExt;
//! use sluicegate::pipeline::PipelineExt;
//! use sluicegate::sinks::{bounded, OverflowPolicy};
//!
//! # #[tokio::main(flavor = "current_thread")] async fn main() {
//! let (peer, mut peer_stream) = bounded(16, OverflowPolicy::Block);
//! let reports: Vec<_> = futures::stream::iter([3, 1, 3, 2, 1])
//!     .dedup_by_key(1024, |value| *value)
//!     .batch(2, Duration::from_millis(50))
//!     .fan_out(vec![peer])
//!     .collect()
//!     .await;
//! assert!(reports.iter().all(|report| report.all_queued()));
//! assert_eq!(peer_stream.next().await, Some(vec![3, 1]));
//! assert_eq!(peer_stream.next().await, Some(vec![2]));
//! # }
//! ```

mod batch;
mod dedup;
mod fan_out;

pub use batch::Batch;
pub use dedup::{Dedup, DedupCounters, DedupStats};
pub use fan_out::{FanOut, FanOutReport};

use std::hash::Hash;
use std::time::Duration;

use futures::Stream;

use crate::sinks::SinkHandle;

/// The pipeline combinators, available on every [`Stream`].
pub trait PipelineExt: Stream {
    /// Passes each item whose key was not seen among the last `capacity` distinct keys, and drops
    /// the repeats. See [`Dedup`] for what "window" means and how forgetting is counted.
    ///
    /// # Panics
    ///
    /// Panics if `capacity` is 0.
    fn dedup_by_key<K, F>(self, capacity: usize, key: F) -> Dedup<Self, K, F>
    where
        Self: Sized,
        K: Hash + Eq + Clone,
        F: FnMut(&Self::Item) -> K,
    {
        Dedup::new(self, capacity, key)
    }

    /// Groups items into batches of at most `max_items`, yielding a batch when it is full or when
    /// `linger` has passed since its first item arrived. When the input ends, the partial batch is
    /// yielded, never lost. Batches are never empty.
    ///
    /// # Panics
    ///
    /// Panics if `max_items` is 0.
    fn batch(self, max_items: usize, linger: Duration) -> Batch<Self>
    where
        Self: Sized,
    {
        Batch::new(self, max_items, linger)
    }

    /// Emits every item to each of `sinks` (cloned for all but the last, moved into the last) and
    /// yields one [`FanOutReport`] per item with every sink's outcome, in `sinks` order.
    ///
    /// A sink under [`OverflowPolicy::Block`](crate::sinks::OverflowPolicy::Block) that is full
    /// stalls the whole fan-out until it has room: that is backpressure, and it reaches the input
    /// because the input is not polled meanwhile. Sinks with a drop or reject policy never stall
    /// it; their refusals come back in the report.
    fn fan_out(self, sinks: Vec<SinkHandle<Self::Item>>) -> FanOut<Self>
    where
        Self: Sized,
        Self::Item: Clone + Send + 'static,
    {
        FanOut::new(self, sinks)
    }
}

impl<S: Stream + ?Sized> PipelineExt for S {}

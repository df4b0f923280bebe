//! Bounded sinks with an explicit overflow policy.
//!
//! [`bounded`] returns a [`SinkHandle`] for producers and a [`SinkStream`] for the consumer. Every
//! emission returns an [`Emission`] that says what happened to the item and hands it back whenever
//! it was not queued (or, under [`OverflowPolicy::DropOldest`], hands back the item it displaced).
//! Every decision moves a counter at the moment it is made, so a [`SinkStats`] snapshot always
//! satisfies `offered == queued + dropped_newest + rejected + closed`.
//!
//! # Characteristics
//!
//! | | |
//! |---|---|
//! | buffering | at most `capacity` items, allocated as needed |
//! | backpressure | [`SinkHandle::emit`] waits for a slot under [`OverflowPolicy::Block`]; every other policy decides at once |
//! | without a consumer | items wait in the buffer until the [`SinkStream`] polls them; overflow follows the policy |
//! | consumer gone | emissions return [`Emission::Closed`]; items it left queued are counted as `abandoned` |
//! | producers gone | the stream yields everything still queued, then ends |
//!
//! # Example
//!
//! ```
//! use futures::StreamExt;
//! use sluicegate::sinks::{bounded, Emission, OverflowPolicy};
//!
//! # #[tokio::main(flavor = "current_thread")] async fn main() {
//! let (handle, mut stream) = bounded(2, OverflowPolicy::DropOldest);
//! assert!(handle.try_emit(1).is_queued());
//! assert!(handle.try_emit(2).is_queued());
//! // The sink is full: the oldest item is displaced and handed back, never silently lost.
//! assert_eq!(handle.try_emit(3), Emission::Evicted(1));
//! drop(handle);
//! assert_eq!(stream.by_ref().collect::<Vec<_>>().await, vec![2, 3]);
//! assert_eq!(stream.stats().evicted_oldest, 1);
//! # }
//! ```

mod emission;
mod handle;
mod observer;
mod policy;
mod shared;
mod stats;
mod stream;

pub use emission::Emission;
pub use handle::{SinkHandle, SinkPermit};
pub use observer::SinkObserver;
pub use policy::{OverflowPolicy, ParsePolicyError};
pub use stats::SinkStats;
pub use stream::SinkStream;

use std::sync::Arc;

/// Creates a bounded sink holding at most `capacity` items, with the given overflow policy.
///
/// # Panics
///
/// Panics if `capacity` is 0: a sink that can hold nothing would turn every policy into "lose it".
pub fn bounded<T>(capacity: usize, policy: OverflowPolicy) -> (SinkHandle<T>, SinkStream<T>) {
    assert!(capacity > 0, "a sink needs a capacity of at least 1");
    let shared = Arc::new(shared::Shared::new(capacity, policy));
    (
        SinkHandle::new(Arc::clone(&shared)),
        SinkStream::new(shared),
    )
}

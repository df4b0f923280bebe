//! Fan-out of every item to several sinks.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, ready};

use futures::Stream;
use pin_project_lite::pin_project;

use crate::sinks::{Emission, SinkHandle};

/// What happened to one item at each sink of a [`FanOut`], in the order the sinks were given.
#[must_use = "a fan-out report says which sinks did not take the item"]
#[derive(Debug)]
pub struct FanOutReport<T> {
    /// One outcome per sink, in sink order.
    pub outcomes: Vec<Emission<T>>,
}

impl<T> FanOutReport<T> {
    /// True if every sink queued the item.
    pub fn all_queued(&self) -> bool {
        self.outcomes.iter().all(Emission::is_queued)
    }
}

type Waiting<T> = Pin<Box<dyn Future<Output = FanOutReport<T>> + Send>>;

pin_project! {
    /// Stream for [`PipelineExt::fan_out`](super::PipelineExt::fan_out).
    ///
    /// For each input item it emits to every sink in order and yields a [`FanOutReport`]. Emitting
    /// is synchronous while no sink has to wait; only when a full sink under `Block` must wait is
    /// the rest of the item's fan-out parked in a future, and the input is not polled until that
    /// future completes. With no sinks, each item is reported with no outcomes.
    #[must_use = "streams do nothing unless polled"]
    pub struct FanOut<S: Stream> {
        #[pin]
        stream: S,
        sinks: Arc<[SinkHandle<S::Item>]>,
        waiting: Option<Waiting<S::Item>>,
    }
}

impl<S> FanOut<S>
where
    S: Stream,
    S::Item: Clone + Send + 'static,
{
    pub(super) fn new(stream: S, sinks: Vec<SinkHandle<S::Item>>) -> Self {
        FanOut {
            stream,
            sinks: sinks.into(),
            waiting: None,
        }
    }
}

/// The copy of `item` for sink `index` of `count`: a clone for all but the last, which takes it.
fn copy_for<T: Clone>(item: &mut Option<T>, index: usize, count: usize) -> Option<T> {
    if index + 1 == count {
        item.take()
    } else {
        item.clone()
    }
}

/// Finishes one item's fan-out from sink `from` on, waiting wherever a sink is full.
async fn emit_rest<T: Clone>(
    sinks: Arc<[SinkHandle<T>]>,
    from: usize,
    first: T,
    mut rest: Option<T>,
    mut outcomes: Vec<Emission<T>>,
) -> FanOutReport<T> {
    outcomes.push(sinks[from].emit(first).await);
    for index in from + 1..sinks.len() {
        if let Some(copy) = copy_for(&mut rest, index, sinks.len()) {
            outcomes.push(sinks[index].emit(copy).await);
        }
    }
    FanOutReport { outcomes }
}

impl<S> Stream for FanOut<S>
where
    S: Stream,
    S::Item: Clone + Send + 'static,
{
    type Item = FanOutReport<S::Item>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let mut this = self.project();
        if let Some(waiting) = this.waiting.as_mut() {
            let report = ready!(waiting.as_mut().poll(cx));
            *this.waiting = None;
            return Poll::Ready(Some(report));
        }
        let Some(item) = ready!(this.stream.as_mut().poll_next(cx)) else {
            return Poll::Ready(None);
        };
        let count = this.sinks.len();
        let mut outcomes = Vec::with_capacity(count);
        let mut remaining = Some(item);
        for index in 0..count {
            let Some(copy) = copy_for(&mut remaining, index, count) else {
                break;
            };
            match this.sinks[index].emit_without_waiting(copy) {
                Ok(emission) => outcomes.push(emission),
                Err(copy) => {
                    // This sink is full under Block: the fan-out stalls here (backpressure).
                    let mut waiting: Waiting<S::Item> = Box::pin(emit_rest(
                        Arc::clone(this.sinks),
                        index,
                        copy,
                        remaining,
                        outcomes,
                    ));
                    return match waiting.as_mut().poll(cx) {
                        Poll::Ready(report) => Poll::Ready(Some(report)),
                        Poll::Pending => {
                            *this.waiting = Some(waiting);
                            Poll::Pending
                        }
                    };
                }
            }
        }
        Poll::Ready(Some(FanOutReport { outcomes }))
    }
}

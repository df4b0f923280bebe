//! Sink throughput against raw `tokio::sync::mpsc`, measured in the same run.
//!
//! One producer task emits `ITEMS` integers into a queue of 1024 slots while the consumer drains
//! it, on a two-worker runtime. The ratio `mpsc time / sink time` is the figure we report.

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use futures::StreamExt;
use sluicegate::sinks::{Emission, OverflowPolicy, bounded};
use tokio::sync::mpsc;

const ITEMS: u64 = 100_000;
const CAPACITY: usize = 1024;

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .build()
        .expect("tokio runtime")
}

async fn through_mpsc() -> u64 {
    let (tx, mut rx) = mpsc::channel(CAPACITY);
    tokio::spawn(async move {
        for item in 0..ITEMS {
            if tx.send(item).await.is_err() {
                break;
            }
        }
    });
    let mut sum = 0;
    while let Some(item) = rx.recv().await {
        sum += item;
    }
    sum
}

async fn through_sink(policy: OverflowPolicy) -> u64 {
    let (sink, mut stream) = bounded(CAPACITY, policy);
    tokio::spawn(async move {
        for item in 0..ITEMS {
            if let Emission::Closed(_) = sink.emit(item).await {
                break;
            }
        }
    });
    let mut sum = 0;
    while let Some(item) = stream.next().await {
        sum += item;
    }
    sum
}

fn sink_throughput(c: &mut Criterion) {
    let runtime = runtime();
    let expected = ITEMS * (ITEMS - 1) / 2;
    let mut group = c.benchmark_group("sink_throughput");
    group.throughput(Throughput::Elements(ITEMS));
    group.bench_function("tokio_mpsc", |b| {
        b.to_async(&runtime)
            .iter(|| async { assert_eq!(through_mpsc().await, expected) })
    });
    group.bench_function("sink_block", |b| {
        b.to_async(&runtime)
            .iter(|| async { assert_eq!(through_sink(OverflowPolicy::Block).await, expected) })
    });
    group.finish();
}

criterion_group!(benches, sink_throughput);
criterion_main!(benches);

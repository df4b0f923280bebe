//! Throughput of a sink and of the pipeline against raw `tokio::sync::mpsc`, in the same run.
//!
//! Every case moves `ITEMS` integers from one producer task to its consumers on a two-worker
//! runtime through queues of `CAPACITY` slots. The figures we report are ratios against the
//! `tokio_mpsc` case of the same group, so a noisy machine shifts both sides alike.
//!
//! - `sink_throughput`: one hop through `bounded(CAPACITY, Block)` vs one `mpsc::channel` hop.
//! - `pipeline_throughput`: dedup -> batch(64, 1 ms) -> fan-out to 4 Block sinks, counted per
//!   item delivered to each peer, vs one `mpsc::channel` hop. The pipeline does strictly more.

use std::time::Duration;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use futures::StreamExt;
use sluicegate::pipeline::PipelineExt;
use sluicegate::sinks::{Emission, OverflowPolicy, bounded};
use tokio::sync::mpsc;

const ITEMS: u64 = 100_000;
const CAPACITY: usize = 1024;
const PEERS: usize = 4;
const BATCH: usize = 64;

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_time()
        .build()
        .expect("tokio runtime")
}

/// The baseline: one bounded mpsc hop. Returns how many items arrived.
async fn mpsc_hop() -> u64 {
    let (tx, mut rx) = mpsc::channel(CAPACITY);
    tokio::spawn(async move {
        for item in 0..ITEMS {
            if tx.send(item).await.is_err() {
                break;
            }
        }
    });
    let mut count = 0;
    while rx.recv().await.is_some() {
        count += 1;
    }
    count
}

/// One hop through a sluicegate sink under Block. Returns how many items arrived.
async fn sink_hop() -> u64 {
    let (sink, stream) = bounded(CAPACITY, OverflowPolicy::Block);
    tokio::spawn(async move {
        for item in 0..ITEMS {
            if let Emission::Closed(_) = sink.emit(item).await {
                break;
            }
        }
    });
    stream.fold(0, |count, _| async move { count + 1 }).await
}

/// dedup -> batch -> fan-out to `PEERS` sinks. Returns how many items each peer received.
async fn pipeline() -> u64 {
    let mut sinks = Vec::new();
    let mut peers = Vec::new();
    for _ in 0..PEERS {
        let (sink, stream) = bounded::<Vec<u64>>(CAPACITY / BATCH, OverflowPolicy::Block);
        sinks.push(sink);
        peers.push(tokio::spawn(stream.fold(0u64, |count, batch| async move {
            count + batch.len() as u64
        })));
    }
    let source = futures::stream::iter(0..ITEMS)
        .dedup_by_key(4096, |item| *item)
        .batch(BATCH, Duration::from_millis(1))
        .fan_out(sinks);
    tokio::spawn(source.for_each(|report| async move {
        assert!(report.all_queued(), "Block sinks queue everything");
    }));
    let mut delivered = 0;
    for peer in peers {
        delivered += peer.await.expect("peer task");
    }
    delivered / PEERS as u64
}

fn sink_throughput(c: &mut Criterion) {
    let runtime = runtime();
    let mut group = c.benchmark_group("sink_throughput");
    group.throughput(Throughput::Elements(ITEMS));
    group.bench_function("tokio_mpsc", |b| {
        b.to_async(&runtime)
            .iter(|| async { assert_eq!(mpsc_hop().await, ITEMS) })
    });
    group.bench_function("sink_block", |b| {
        b.to_async(&runtime)
            .iter(|| async { assert_eq!(sink_hop().await, ITEMS) })
    });
    group.finish();
}

fn pipeline_throughput(c: &mut Criterion) {
    let runtime = runtime();
    let mut group = c.benchmark_group("pipeline_throughput");
    group.throughput(Throughput::Elements(ITEMS));
    group.bench_function("tokio_mpsc", |b| {
        b.to_async(&runtime)
            .iter(|| async { assert_eq!(mpsc_hop().await, ITEMS) })
    });
    group.bench_function("dedup_batch_fan_out_4", |b| {
        b.to_async(&runtime)
            .iter(|| async { assert_eq!(pipeline().await, ITEMS) })
    });
    group.finish();
}

criterion_group!(benches, sink_throughput, pipeline_throughput);
criterion_main!(benches);

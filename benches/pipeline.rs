//! Pipeline throughput (dedup -> batch -> fan-out to 4 sinks) against one raw
//! `tokio::sync::mpsc` hop, measured in the same run.
//!
//! Both move `ITEMS` integers from a producer to consumers on a two-worker runtime. The pipeline
//! does strictly more work (dedup lookups, batching, four deliveries per batch); the ratio
//! `mpsc time / pipeline time` is the figure we report.

use std::time::Duration;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use futures::StreamExt;
use sluicegate::pipeline::PipelineExt;
use sluicegate::sinks::{OverflowPolicy, bounded};
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

async fn raw_mpsc_hop() -> u64 {
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

async fn pipeline() -> u64 {
    let mut sinks = Vec::new();
    let mut consumers = Vec::new();
    for _ in 0..PEERS {
        let (sink, stream) = bounded::<Vec<u64>>(CAPACITY / BATCH, OverflowPolicy::Block);
        sinks.push(sink);
        consumers.push(tokio::spawn(stream.fold(0u64, |count, batch| async move {
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
    for consumer in consumers {
        delivered += consumer.await.expect("consumer task");
    }
    delivered / PEERS as u64
}

fn pipeline_throughput(c: &mut Criterion) {
    let runtime = runtime();
    let mut group = c.benchmark_group("pipeline_throughput");
    group.throughput(Throughput::Elements(ITEMS));
    group.bench_function("tokio_mpsc_single_hop", |b| {
        b.to_async(&runtime)
            .iter(|| async { assert_eq!(raw_mpsc_hop().await, ITEMS) })
    });
    group.bench_function("dedup_batch_fan_out_4", |b| {
        b.to_async(&runtime)
            .iter(|| async { assert_eq!(pipeline().await, ITEMS) })
    });
    group.finish();
}

criterion_group!(benches, pipeline_throughput);
criterion_main!(benches);

//! A Block sink against the bounded async channels people would otherwise reach for, in the
//! same run: `tokio::sync::mpsc`, `flume` and `async-channel`.
//!
//! Every case moves `ITEMS` integers from its producer tasks to one consumer on a two-worker
//! runtime, through a queue of `CAPACITY` slots. The figures we report are ratios of the sink
//! against the best peer of the same group, so a noisy machine shifts both sides alike.
//!
//! - `peers_1_producer`: one producer task sends all `ITEMS`.
//! - `peers_4_producers`: four producer tasks send `ITEMS / 4` each, into clones of one sender.
//!
//! Each case returns how many items the consumer received and their sum, and the bench asserts
//! both: a case that loses or duplicates items fails instead of looking fast. Every consumer is
//! the same `while let` loop over its channel's receive future, so that the loops compare the
//! channels and not the combinators around them.
//!
//! Reproduce with `cargo bench --bench peers`; the ratios are in `docs/peers-bench.md`.

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use futures::StreamExt;
use sluicegate::sinks::{Emission, OverflowPolicy, bounded};
use tokio::sync::mpsc;

const ITEMS: u64 = 100_000;
const CAPACITY: usize = 1024;

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_time()
        .build()
        .expect("tokio runtime")
}

/// The items producer `index` of `producers` sends: a contiguous share of `0..ITEMS`.
fn share(index: u64, producers: u64) -> std::ops::Range<u64> {
    let per = ITEMS / producers;
    index * per..(index + 1) * per
}

/// What the consumer must have seen: every item of `0..ITEMS` exactly once.
fn expected() -> (u64, u64) {
    (ITEMS, ITEMS * (ITEMS - 1) / 2)
}

/// Counts and sums what arrives, the consumer's work in every case.
fn tally((count, sum): (u64, u64), item: u64) -> (u64, u64) {
    (count + 1, sum + item)
}

async fn sink_block(producers: u64) -> (u64, u64) {
    let (sink, stream) = bounded(CAPACITY, OverflowPolicy::Block);
    for index in 0..producers {
        let sink = sink.clone();
        tokio::spawn(async move {
            for item in share(index, producers) {
                match sink.emit(item).await {
                    Emission::Queued => {}
                    // Block never drops; the only other outcome is a closed sink, and the
                    // consumer keeps it open until every item arrived. A panic here shows up
                    // as a short count.
                    other => panic!("emission {} under Block", other.kind()),
                }
            }
        });
    }
    drop(sink);
    let mut stream = stream;
    let mut acc = (0, 0);
    while let Some(item) = stream.next().await {
        acc = tally(acc, item);
    }
    acc
}

async fn tokio_mpsc(producers: u64) -> (u64, u64) {
    let (tx, mut rx) = mpsc::channel(CAPACITY);
    for index in 0..producers {
        let tx = tx.clone();
        tokio::spawn(async move {
            for item in share(index, producers) {
                tx.send(item)
                    .await
                    .expect("the receiver outlives the producers");
            }
        });
    }
    drop(tx);
    let mut acc = (0, 0);
    while let Some(item) = rx.recv().await {
        acc = tally(acc, item);
    }
    acc
}

async fn flume(producers: u64) -> (u64, u64) {
    let (tx, rx) = flume::bounded(CAPACITY);
    for index in 0..producers {
        let tx = tx.clone();
        tokio::spawn(async move {
            for item in share(index, producers) {
                tx.send_async(item)
                    .await
                    .expect("the receiver outlives the producers");
            }
        });
    }
    drop(tx);
    let mut acc = (0, 0);
    while let Ok(item) = rx.recv_async().await {
        acc = tally(acc, item);
    }
    acc
}

async fn async_channel(producers: u64) -> (u64, u64) {
    let (tx, rx) = async_channel::bounded(CAPACITY);
    for index in 0..producers {
        let tx = tx.clone();
        tokio::spawn(async move {
            for item in share(index, producers) {
                tx.send(item)
                    .await
                    .expect("the receiver outlives the producers");
            }
        });
    }
    drop(tx);
    let mut acc = (0, 0);
    while let Ok(item) = rx.recv().await {
        acc = tally(acc, item);
    }
    acc
}

fn group(c: &mut Criterion, name: &str, producers: u64) {
    assert_eq!(ITEMS % producers, 0, "every producer sends an equal share");
    let runtime = runtime();
    let mut group = c.benchmark_group(name);
    group.throughput(Throughput::Elements(ITEMS));
    group.bench_function("sink_block", |b| {
        b.to_async(&runtime)
            .iter(|| async { assert_eq!(sink_block(producers).await, expected()) })
    });
    group.bench_function("tokio_mpsc", |b| {
        b.to_async(&runtime)
            .iter(|| async { assert_eq!(tokio_mpsc(producers).await, expected()) })
    });
    group.bench_function("flume", |b| {
        b.to_async(&runtime)
            .iter(|| async { assert_eq!(flume(producers).await, expected()) })
    });
    group.bench_function("async_channel", |b| {
        b.to_async(&runtime)
            .iter(|| async { assert_eq!(async_channel(producers).await, expected()) })
    });
    group.finish();
}

fn one_producer(c: &mut Criterion) {
    group(c, "peers_1_producer", 1);
}

fn four_producers(c: &mut Criterion) {
    group(c, "peers_4_producers", 4);
}

criterion_group!(benches, one_producer, four_producers);
criterion_main!(benches);

//! The ingest dedup window's two ways of claiming a group of ids, in the same run:
//!
//! - `claim`: [`RecentIds::claim`] one id after the other: each lookup of a new id waits for
//!   its cache misses.
//! - `claim_all`: [`RecentIds::claim_all`] for the whole group (what the store writer does): it
//!   hashes the group first and prefetches ahead, so that the misses overlap.
//!
//! `IDS` distinct ids shaped like the load client's, in groups of `GROUP` (about what the writer
//! takes per write in `cargo bench --bench ingest`), through a window of `WINDOW` ids (the
//! server's default), so the tables are larger than the caches, as in a server. Report the ratio.

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use sluicegate::internals::RecentIds;

const IDS: usize = 400_000;
const GROUP: usize = 1_500;
const WINDOW: usize = 100_000;

fn ids() -> Vec<String> {
    (0..IDS)
        .map(|index| format!("load-{}-{index}", index % 4))
        .collect()
}

fn claim(ids: &[String]) -> usize {
    let mut window = RecentIds::new(WINDOW);
    ids.iter().filter(|id| window.claim(id)).count()
}

fn claim_all(ids: &[&str]) -> usize {
    let mut window = RecentIds::new(WINDOW);
    ids.chunks(GROUP)
        .map(|group| {
            window
                .claim_all(group)
                .into_iter()
                .filter(|&new| new)
                .count()
        })
        .sum()
}

fn dedup_window(c: &mut Criterion) {
    let ids = ids();
    let borrowed: Vec<&str> = ids.iter().map(String::as_str).collect();
    let mut group = c.benchmark_group("dedup_window");
    group.throughput(Throughput::Elements(IDS as u64));
    group.sample_size(20);
    group.bench_function("claim", |b| b.iter(|| assert_eq!(claim(&ids), IDS)));
    group.bench_function("claim_all", |b| {
        b.iter(|| assert_eq!(claim_all(&borrowed), IDS))
    });
    group.finish();
}

criterion_group!(benches, dedup_window);
criterion_main!(benches);

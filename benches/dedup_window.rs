//! The ingest dedup window's two ways of handling a group of ids, in the same run:
//!
//! - `contains_then_remember`: ask [`RecentIds::contains`] for every id of the group, then
//!   [`RecentIds::remember`] the new ones after the write (the store writer before it claimed).
//! - `claim`: [`RecentIds::claim`] each id, lookup and insert back to back (the writer now).
//!
//! `IDS` distinct ids shaped like the load client's, in groups of `GROUP` (about what the writer
//! takes per write in `cargo bench --bench ingest`), through a window of `WINDOW` ids (the
//! server's default), so the index is larger than the caches, as in a server. Report the ratio.

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use sluicegate::ingest::store::RecentIds;

const IDS: usize = 400_000;
const GROUP: usize = 1_500;
const WINDOW: usize = 100_000;

fn ids() -> Vec<String> {
    (0..IDS)
        .map(|index| format!("load-{}-{index}", index % 4))
        .collect()
}

fn contains_then_remember(ids: &[String]) -> usize {
    let mut window = RecentIds::new(WINDOW);
    let mut new = Vec::with_capacity(GROUP);
    let mut written = 0;
    for group in ids.chunks(GROUP) {
        new.clear();
        new.extend(group.iter().filter(|id| !window.contains(id)));
        for id in &new {
            window.remember(id);
        }
        written += new.len();
    }
    written
}

fn claim(ids: &[String]) -> usize {
    let mut window = RecentIds::new(WINDOW);
    ids.iter().filter(|id| window.claim(id)).count()
}

fn dedup_window(c: &mut Criterion) {
    let ids = ids();
    let mut group = c.benchmark_group("dedup_window");
    group.throughput(Throughput::Elements(IDS as u64));
    group.sample_size(20);
    group.bench_function("contains_then_remember", |b| {
        b.iter(|| assert_eq!(contains_then_remember(&ids), IDS))
    });
    group.bench_function("claim", |b| b.iter(|| assert_eq!(claim(&ids), IDS)));
    group.finish();
}

criterion_group!(benches, dedup_window);
criterion_main!(benches);

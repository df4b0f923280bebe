//! Seed sweeps: the same test under many seeds (each a different op mix, partition schedule and
//! latency draw), in-process on the virtual clock, with every invalid seed reported so that it
//! can be replayed exactly.

use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use indicatif::ProgressBar;

use crate::harness::check::{Summary, Validity};
use crate::harness::run::{TestConfig, run};

/// One seed's run.
#[derive(Clone, Debug)]
pub struct SeedRun {
    /// The seed.
    pub seed: u64,
    /// Its verdict, or why the test itself crashed.
    pub outcome: Result<SeedVerdict, String>,
}

/// A completed run's verdict and figures.
#[derive(Clone, Debug)]
pub struct SeedVerdict {
    /// Overall validity.
    pub valid: Validity,
    /// Its summary figures.
    pub summary: Summary,
    /// Nodes whose stdout went dead.
    pub stdout_deaths: usize,
}

impl SeedRun {
    /// True if the run completed, was valid and lost no node's output.
    pub fn passed(&self) -> bool {
        matches!(&self.outcome, Ok(v) if v.valid == Validity::Valid && v.stdout_deaths == 0)
    }
}

/// Runs `config` once for every seed in `first..first + count`, each on a fresh single-threaded
/// runtime with a paused clock, `workers` at a time. Results come back in seed order.
pub fn sweep(config: &TestConfig, first: u64, count: u64, workers: usize) -> Vec<SeedRun> {
    let next = AtomicU64::new(first);
    let end = first.saturating_add(count);
    let runs = Mutex::new(Vec::with_capacity(count as usize));
    let progress = ProgressBar::new(count);
    std::thread::scope(|scope| {
        for _ in 0..workers.max(1) {
            scope.spawn(|| {
                loop {
                    let seed = next.fetch_add(1, Ordering::Relaxed);
                    if seed >= end {
                        return;
                    }
                    let run = run_seed(config, seed);
                    progress.inc(1);
                    runs.lock().unwrap_or_else(|p| p.into_inner()).push(run);
                }
            });
        }
    });
    progress.finish_and_clear();
    let mut runs = runs.into_inner().unwrap_or_else(|p| p.into_inner());
    runs.sort_by_key(|run| run.seed);
    runs
}

fn run_seed(config: &TestConfig, seed: u64) -> SeedRun {
    let mut config = config.clone();
    config.plan.seed = seed;
    config.store = None;
    config.record_messages = false;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .start_paused(true)
        .build();
    // A sweep reports its failures at the end; the runs' own progress logs would drown them.
    let quiet = tracing::subscriber::NoSubscriber::default();
    let outcome = match runtime {
        Ok(runtime) => tracing::subscriber::with_default(quiet, || runtime.block_on(run(&config)))
            .map_err(|error| format!("{error:#}")),
        Err(error) => Err(format!("starting a runtime: {error}")),
    };
    SeedRun {
        seed,
        outcome: outcome.map(|outcome| SeedVerdict {
            valid: outcome.analysis.valid,
            summary: outcome.analysis.summary,
            stdout_deaths: outcome.notes.stdout_deaths.len(),
        }),
    }
}

/// A human summary of a sweep: one line per failed seed, then the totals.
pub fn describe(runs: &[SeedRun], replay: impl Fn(u64) -> String) -> String {
    let mut text = String::new();
    for run in runs.iter().filter(|run| !run.passed()) {
        let why = match &run.outcome {
            Ok(v) => format!(
                "{:?}: lost {}, never-read {}, stdout deaths {}",
                v.valid, v.summary.lost_count, v.summary.never_read_count, v.stdout_deaths
            ),
            Err(crash) => format!("crashed: {crash}"),
        };
        text += &format!("seed {} {why}\n  replay: {}\n", run.seed, replay(run.seed));
    }
    let done: Vec<&SeedVerdict> = runs
        .iter()
        .filter_map(|run| run.outcome.as_ref().ok())
        .collect();
    let mut per_op: Vec<f32> = done
        .iter()
        .filter_map(|v| v.summary.servers_msgs_per_op)
        .collect();
    per_op.sort_by(f32::total_cmp);
    let worst_max = done
        .iter()
        .filter_map(|v| v.summary.stable_latencies.as_ref().map(|q| q.max))
        .max();
    let lost: u64 = done.iter().map(|v| v.summary.lost_count).sum();
    let failed = runs.iter().filter(|run| !run.passed()).count();
    text += &format!(
        "swept {} seeds: {} passed, {failed} failed | lost values in all runs {lost} | servers msgs-per-op median {} (min {}, max {}) | worst stable max {} ms\n",
        runs.len(),
        runs.len() - failed,
        quantile(&per_op, 0.5),
        quantile(&per_op, 0.0),
        quantile(&per_op, 1.0),
        worst_max.map_or("-".to_string(), |max| max.to_string()),
    );
    text
}

fn quantile(sorted: &[f32], p: f64) -> String {
    if sorted.is_empty() {
        return "-".into();
    }
    let index = ((sorted.len() as f64 * p) as usize).min(sorted.len() - 1);
    format!("{:.2}", sorted[index])
}

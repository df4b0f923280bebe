//! Per-message delay draws between servers (docs/harness.md §4.1).

use std::sync::Mutex;
use std::time::Duration;

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// How inter-server delays are distributed, as `--latency-dist` names it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[cfg_attr(feature = "cli", derive(clap::ValueEnum))]
pub enum LatencyDist {
    /// Exactly the mean.
    #[default]
    Constant,
    /// An integer uniform on `0..2*mean` ms (end exclusive), so the mean is `mean - 0.5`.
    Uniform,
    /// Exponential with the given mean, floored to whole ms.
    Exponential,
}

/// Draws the delay of each server-to-server message. Anything to or from a client has none.
#[derive(Debug)]
pub struct Latency {
    mean_ms: u64,
    dist: LatencyDist,
    rng: Mutex<ChaCha8Rng>,
}

impl Latency {
    /// Delays with mean `mean_ms` drawn from `dist`, reproducible from `seed`.
    pub fn new(mean_ms: u64, dist: LatencyDist, seed: u64) -> Self {
        Latency {
            mean_ms,
            dist,
            rng: Mutex::new(ChaCha8Rng::seed_from_u64(seed)),
        }
    }

    /// The delay of one server-to-server message.
    pub fn draw(&self) -> Duration {
        let ms = match self.dist {
            _ if self.mean_ms == 0 => 0,
            LatencyDist::Constant => self.mean_ms,
            LatencyDist::Uniform => self.with_rng(|rng| rng.random_range(0..2 * self.mean_ms)),
            LatencyDist::Exponential => self.with_rng(|rng| {
                let unit: f64 = rng.random();
                // Inverse CDF; `1 - unit` is in (0, 1], so the logarithm is finite.
                (-(1.0 - unit).ln() * self.mean_ms as f64).floor() as u64
            }),
        };
        Duration::from_millis(ms)
    }

    fn with_rng<R>(&self, draw: impl FnOnce(&mut ChaCha8Rng) -> R) -> R {
        let mut rng = self
            .rng
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        draw(&mut rng)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mean_of(latency: &Latency, draws: u32) -> f64 {
        let total: u128 = (0..draws).map(|_| latency.draw().as_millis()).sum();
        total as f64 / draws as f64
    }

    #[test]
    fn constant_is_exactly_the_mean() {
        let latency = Latency::new(100, LatencyDist::Constant, 1);
        assert!((0..100).all(|_| latency.draw() == Duration::from_millis(100)));
    }

    #[test]
    fn uniform_stays_below_twice_the_mean_and_averages_mean_minus_half() {
        let latency = Latency::new(10, LatencyDist::Uniform, 2);
        assert!((0..10_000).all(|_| latency.draw() < Duration::from_millis(20)));
        let mean = mean_of(&latency, 100_000);
        assert!((mean - 9.5).abs() < 0.1, "mean {mean}");
    }

    #[test]
    fn exponential_is_floored_and_averages_about_the_mean_minus_half() {
        let latency = Latency::new(100, LatencyDist::Exponential, 3);
        let mean = mean_of(&latency, 100_000);
        assert!((mean - 99.5).abs() < 2.0, "mean {mean}");
    }

    #[test]
    fn zero_latency_means_no_delay_whatever_the_distribution() {
        let latency = Latency::new(0, LatencyDist::Exponential, 4);
        assert_eq!(latency.draw(), Duration::ZERO);
    }
}

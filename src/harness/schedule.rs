//! When the next operation may go out, and on which thread (docs/harness.md §2.5): Jepsen's
//! `stagger` (one schedule for all clients, gaps uniform on [0, 2/rate), no catch-up) and its
//! rotating thread cursor (C client slots plus one nemesis slot).

use rand::Rng;

use crate::harness::history::Nanos;

/// One stagger schedule: the earliest time of the next op.
#[derive(Debug)]
pub struct Stagger {
    /// Twice the mean gap, in ns.
    span: Nanos,
    next: Option<Nanos>,
}

impl Stagger {
    /// A schedule whose gaps average `mean_gap_ns`.
    pub fn new(mean_gap_ns: f64) -> Self {
        Stagger {
            span: (2.0 * mean_gap_ns) as Nanos,
            next: None,
        }
    }

    /// When the next op may go out, seen at `now`: at once the first time, never in the past.
    pub fn due(&self, now: Nanos) -> Nanos {
        self.next.unwrap_or(now).max(now)
    }

    /// An op went out at `stamp`: the next one is due a random gap later.
    pub fn dispatched(&mut self, stamp: Nanos, rng: &mut impl Rng) {
        let gap = if self.span == 0 {
            0
        } else {
            rng.random_range(0..self.span)
        };
        self.next = Some(stamp + gap);
    }
}

/// Jepsen's thread cursor over `clients + 1` slots (the last is the nemesis's).
#[derive(Debug)]
pub struct Cursor {
    slots: usize,
    position: usize,
}

impl Cursor {
    /// A cursor over `clients` client threads and the nemesis.
    pub fn new(clients: usize) -> Self {
        Cursor {
            slots: clients + 1,
            position: 0,
        }
    }

    /// The client thread the next client op goes to: the first free one at or after the cursor,
    /// else the first free one from 0.
    pub fn pick(&self, free: impl Fn(usize) -> bool) -> Option<usize> {
        let clients = self.slots - 1;
        (self.position..clients)
            .chain(0..clients)
            .find(|&t| free(t))
    }

    /// Every dispatched op, client or nemesis, moves the cursor on by one.
    pub fn advance(&mut self) {
        self.position = (self.position + 1) % self.slots;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;
    use rand_chacha::ChaCha8Rng;

    #[test]
    fn with_idle_threads_thread_zero_gets_two_ops_of_every_c_plus_one() {
        let mut cursor = Cursor::new(5);
        let mut counts = [0; 5];
        for _ in 0..600 {
            if let Some(thread) = cursor.pick(|_| true) {
                counts[thread] += 1;
            }
            cursor.advance();
        }
        assert_eq!(counts, [200, 100, 100, 100, 100]);
    }

    #[test]
    fn a_busy_thread_is_skipped_for_the_next_free_one() {
        let cursor = Cursor::new(3);
        assert_eq!(cursor.pick(|t| t != 0), Some(1));
        assert_eq!(cursor.pick(|_| false), None);
    }

    #[test]
    fn stagger_goes_out_at_once_then_averages_the_mean_gap_without_catching_up() {
        let mut rng = ChaCha8Rng::seed_from_u64(5);
        let mut stagger = Stagger::new(10_000_000.0);
        assert_eq!(stagger.due(42), 42);
        let mut stamp = 0;
        let mut gaps = Vec::new();
        for _ in 0..10_000 {
            stagger.dispatched(stamp, &mut rng);
            let next = stagger.due(stamp);
            assert!(next - stamp < 20_000_000);
            gaps.push(next - stamp);
            stamp = next;
        }
        let mean = gaps.iter().sum::<u64>() as f64 / gaps.len() as f64;
        assert!((mean - 10_000_000.0).abs() < 300_000.0, "mean gap {mean}");
        // Late by a second: the op goes out now, and the lost time is not made up.
        assert_eq!(stagger.due(stamp + 1_000_000_000), stamp + 1_000_000_000);
    }
}

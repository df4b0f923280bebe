//! The load client's exact accounting: every record is answered once, as stored or as rejected
//! with a reason, or it is unaccounted for.

use std::collections::BTreeMap;
use std::time::Duration;

use hdrhistogram::Histogram;

/// The slowest answer the histogram tells apart: one hour, in microseconds.
const MAX_LATENCY_US: u64 = 3_600_000_000;

/// What became of one record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Unanswered,
    Stored,
    Rejected,
}

/// The accounting of a whole run.
#[derive(Debug)]
pub struct Ledger {
    states: Vec<State>,
    rejections: BTreeMap<String, u64>,
    answered_twice: u64,
    unexpected: u64,
    /// Answer latencies in microseconds, 3 significant digits (0.1 % resolution).
    latencies_us: Histogram<u64>,
}

impl Ledger {
    /// A ledger of `records` unanswered records.
    pub fn new(records: usize) -> Self {
        Ledger {
            states: vec![State::Unanswered; records],
            rejections: BTreeMap::new(),
            answered_twice: 0,
            unexpected: 0,
            // Up to an hour, in µs; anything slower saturates at the hour.
            latencies_us: Histogram::new_with_max(MAX_LATENCY_US, 3)
                .expect("an hour in µs with 3 significant digits is a valid histogram"),
        }
    }

    fn settle(&mut self, index: usize, state: State, latency: Duration) -> bool {
        let Some(slot) = self.states.get_mut(index) else {
            self.unexpected += 1;
            return false;
        };
        if *slot != State::Unanswered {
            self.answered_twice += 1;
            return false;
        }
        *slot = state;
        self.latencies_us
            .saturating_record(u64::try_from(latency.as_micros()).unwrap_or(u64::MAX));
        true
    }

    /// Record `index` is stored. Returns false if it was already answered.
    pub fn stored(&mut self, index: usize, latency: Duration) -> bool {
        self.settle(index, State::Stored, latency)
    }

    /// Record `index` was rejected for `reason`. Returns false if it was already answered.
    pub fn rejected(&mut self, index: usize, reason: &str, latency: Duration) -> bool {
        let first = self.settle(index, State::Rejected, latency);
        if first {
            *self.rejections.entry(reason.to_owned()).or_default() += 1;
        }
        first
    }

    /// An answer named a record this client never sent on that stream.
    pub fn unexpected(&mut self) {
        self.unexpected += 1;
    }

    /// The totals.
    pub fn summary(&self) -> Accounting {
        let count = |state| self.states.iter().filter(|s| **s == state).count() as u64;
        let histogram = &self.latencies_us;
        let quantile = |q: f64| Duration::from_micros(histogram.value_at_quantile(q));
        let latency = (!histogram.is_empty()).then(|| LatencyQuantiles {
            p50: quantile(0.50),
            p90: quantile(0.90),
            p99: quantile(0.99),
            p999: quantile(0.999),
            max: Duration::from_micros(histogram.max()),
        });
        Accounting {
            records: self.states.len() as u64,
            stored: count(State::Stored),
            rejected: count(State::Rejected),
            unaccounted: count(State::Unanswered),
            rejections: self.rejections.clone(),
            answered_twice: self.answered_twice,
            unexpected: self.unexpected,
            latency,
        }
    }
}

/// The totals of a run. Complete when `stored + rejected == records`, with nothing answered
/// twice and no unexpected answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Accounting {
    /// Records the run was asked to send.
    pub records: u64,
    /// Acked as durable.
    pub stored: u64,
    /// Rejected with a reason.
    pub rejected: u64,
    /// Neither.
    pub unaccounted: u64,
    /// Rejections by reason.
    pub rejections: BTreeMap<String, u64>,
    /// Answers for a record that was already answered.
    pub answered_twice: u64,
    /// Answers naming a record not outstanding on that stream.
    pub unexpected: u64,
    /// Time from sending a record to its answer; `None` when nothing was answered.
    pub latency: Option<LatencyQuantiles>,
}

/// Quantiles of the answer latency (from a histogram with 0.1 % resolution).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LatencyQuantiles {
    /// Median.
    pub p50: Duration,
    /// 90th percentile.
    pub p90: Duration,
    /// 99th percentile.
    pub p99: Duration,
    /// 99.9th percentile.
    pub p999: Duration,
    /// Slowest answer.
    pub max: Duration,
}

impl Accounting {
    /// True if every record is stored or rejected with a reason, and none was answered twice.
    pub fn is_exact(&self) -> bool {
        self.unaccounted == 0
            && self.answered_twice == 0
            && self.unexpected == 0
            && self.stored + self.rejected == self.records
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_second_answer_is_counted_not_applied() {
        let mut ledger = Ledger::new(3);
        assert!(ledger.stored(0, Duration::from_millis(1)));
        assert!(!ledger.rejected(0, "x", Duration::from_millis(1)));
        assert!(ledger.rejected(1, "queue full", Duration::from_millis(3)));
        let summary = ledger.summary();
        assert_eq!(
            (summary.stored, summary.rejected, summary.unaccounted),
            (1, 1, 1)
        );
        assert_eq!(summary.answered_twice, 1);
        assert!(!summary.is_exact());
        let latency = summary.latency.expect("two answers were timed");
        assert_eq!(latency.p50, Duration::from_millis(1));
        // The histogram keeps 3 significant digits: within 0.1 % of the 3 ms answer.
        for slow in [latency.p90, latency.p99, latency.p999, latency.max] {
            assert!(slow.abs_diff(Duration::from_millis(3)) <= Duration::from_micros(3));
        }
    }

    #[test]
    fn no_answers_have_no_latency() {
        let ledger = Ledger::new(2);
        assert_eq!(ledger.summary().latency, None);
    }
}

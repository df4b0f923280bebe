//! The checkers Maelstrom composes (docs/harness.md §6), run over a finished history and the
//! network journal's counts, and the results map they make together (docs/harness.md §7.1).
//!
//! Each checker has its own module and returns a typed result that knows its EDN form;
//! [`analyze`] runs the ones a workload uses and merges their validity the way Jepsen does
//! (`false` beats `:unknown`, which beats `true`).
//!
//! The test `an_empty_broadcast_history_is_unknown_and_exits_2` below shows
//! the verdict of a run with no operations.

pub mod availability;
pub mod echo;
pub mod exceptions;
pub mod g_counter;
pub mod kafka;
pub mod net;
pub mod perf;
pub mod set_full;
pub mod stats;
pub mod unique_ids;
mod value_key;

use super::edn::Edn;
use super::history::{History, OpType};
use super::net_stats::NetStats;

pub use set_full::LatencyQuantiles;

/// Which workload ran, which decides the `:workload` checker.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum WorkloadKind {
    /// `-w echo`: every reply must echo its request (docs/harness.md §8.1).
    Echo,
    /// `-w unique-ids`: no id may be acknowledged twice (docs/harness.md §8.2).
    UniqueIds,
    /// `-w broadcast`: the set-full checker over broadcasts and reads (docs/harness.md §6.1).
    Broadcast,
    /// `-w g-counter`: adds and reads of a grow-only counter, final reads judged against the
    /// acceptable range (Maelstrom's `workload/g_counter.clj`).
    GCounter,
    /// `-w kafka`: send, poll, commit and assign on keyed logs, checked by message value
    /// (Maelstrom's `workload/kafka.clj`, Jepsen's `tests/kafka.clj` checker).
    Kafka,
}

impl WorkloadKind {
    /// The workload's name on the command line and in the store (`unique-ids`).
    pub fn name(self) -> &'static str {
        match self {
            WorkloadKind::Echo => "echo",
            WorkloadKind::UniqueIds => "unique-ids",
            WorkloadKind::Broadcast => "broadcast",
            WorkloadKind::GCounter => "g-counter",
            WorkloadKind::Kafka => "kafka",
        }
    }
}

/// A checker's verdict, and the run's (docs/harness.md §6.3, "Overall `:valid?`").
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Validity {
    /// `:valid? true`.
    Valid,
    /// `:valid? false`: an anomaly was found.
    Invalid,
    /// `:valid? :unknown`: nothing wrong was found, but not enough was seen to say it is right.
    Unknown,
}

impl Validity {
    /// The process exit code Maelstrom uses for this verdict (docs/harness.md §7.4): 0, 1 or 2.
    pub fn exit_code(self) -> u8 {
        match self {
            Validity::Valid => 0,
            Validity::Invalid => 1,
            Validity::Unknown => 2,
        }
    }

    /// Jepsen's `merge-valid` of two verdicts: `Invalid` beats `Unknown`, which beats `Valid`.
    pub fn merge(self, other: Validity) -> Validity {
        match (self, other) {
            (Validity::Invalid, _) | (_, Validity::Invalid) => Validity::Invalid,
            (Validity::Unknown, _) | (_, Validity::Unknown) => Validity::Unknown,
            _ => Validity::Valid,
        }
    }

    /// The merge of many verdicts; `Valid` when there are none.
    pub fn merge_all(verdicts: impl IntoIterator<Item = Validity>) -> Validity {
        verdicts.into_iter().fold(Validity::Valid, Validity::merge)
    }

    /// `true` for valid, anything else for invalid.
    pub fn from_bool(valid: bool) -> Validity {
        if valid {
            Validity::Valid
        } else {
            Validity::Invalid
        }
    }

    /// The EDN form: `true`, `false` or `:unknown`.
    pub fn to_edn(self) -> Edn {
        match self {
            Validity::Valid => Edn::Bool(true),
            Validity::Invalid => Edn::Bool(false),
            Validity::Unknown => Edn::keyword("unknown"),
        }
    }
}

/// `--availability`: how many client operations must succeed (docs/harness.md §6.3).
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum AvailabilityRequirement {
    /// `total`: every invocation must complete `:ok`.
    Total,
    /// A number `a` in 0…1: the ok fraction must be at least `a`.
    Fraction(f64),
}

/// Options of the analysis that come from the command line.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct CheckOptions {
    /// `--availability`; `None` means the availability checker is always valid.
    pub availability: Option<AvailabilityRequirement>,
    /// `--maelstrom-dup-quirk`: report no duplicates in broadcast reads, as Maelstrom does
    /// (docs/harness.md §6.1 "Duplicates"). Off by default: duplicates are reported and invalidate.
    pub maelstrom_dup_quirk: bool,
}

/// The outcome of the analysis of one run.
#[derive(Clone, Debug, PartialEq)]
pub struct Analysis {
    /// The whole results map, top-level keys in the order of docs/harness.md §7.1.
    pub results: Edn,
    /// The merged verdict (the results map's top-level `:valid?`).
    pub valid: Validity,
    /// The numbers a person looks at first, for the summary line.
    pub summary: Summary,
}

/// The numbers of a run that the summary line shows (docs/harness.md §7.2).
#[derive(Clone, Debug, PartialEq)]
pub struct Summary {
    /// Which workload ran.
    pub workload: WorkloadKind,
    /// Invocations by client processes (the msgs-per-op denominator).
    pub op_count: u64,
    /// `:availability :ok-fraction`.
    pub ok_fraction: f64,
    /// `:net :servers :msgs-per-op`, the Fly.io metric; `None` when there were no operations.
    pub servers_msgs_per_op: Option<f32>,
    /// `:net :all :msgs-per-op`; `None` when there were no operations.
    pub all_msgs_per_op: Option<f32>,
    /// Broadcast: `:stable-latencies`, `None` when no element was stable.
    pub stable_latencies: Option<LatencyQuantiles>,
    /// Broadcast: `:lost-latencies`, `None` when no element was lost.
    pub lost_latencies: Option<LatencyQuantiles>,
    /// Broadcast: `:attempt-count`.
    pub attempt_count: u64,
    /// Broadcast: `:stable-count`.
    pub stable_count: u64,
    /// Broadcast: `:stale-count`.
    pub stale_count: u64,
    /// Broadcast: `:lost-count`.
    pub lost_count: u64,
    /// Broadcast: `:never-read-count`.
    pub never_read_count: u64,
    /// Broadcast: elements some read returned more than once; unique-ids: ids acknowledged more
    /// than once. For broadcast this is counted even under the dup quirk, so the summary can
    /// mention what the results map hides.
    pub duplicated_count: u64,
    /// Whether `duplicated_count` made the run invalid here (false for broadcast under
    /// [`CheckOptions::maelstrom_dup_quirk`]).
    pub duplicates_invalidate: bool,
    /// Echo: operations whose reply did not echo the request (or that did not complete `:ok`).
    pub echo_error_count: u64,
    /// G-counter: `:ok` final reads outside the acceptable range.
    pub counter_errors: u64,
    /// G-counter: `:ok` final reads.
    pub counter_final_reads: u64,
    /// Kafka: latency (ms) of `:ok` sends; Maelstrom prints none, challenge 5c asks for it.
    pub send_latencies: Option<LatencyQuantiles>,
    /// Kafka: latency (ms) of `:ok` polls (including their commit).
    pub poll_latencies: Option<LatencyQuantiles>,
    /// Kafka: anomaly cases found.
    pub kafka_anomalies: u64,
    /// Kafka: the anomaly types found (`:error-types`).
    pub kafka_error_types: Vec<String>,
}

/// Runs every checker Maelstrom runs for `workload` and builds the results map
/// (docs/harness.md §6, §7.1).
pub fn analyze(
    workload: WorkloadKind,
    history: &History,
    net: &NetStats,
    options: &CheckOptions,
) -> Analysis {
    let op_count = client_invocation_count(history);
    let perf = perf::perf();
    let timeline = perf::timeline();
    let exceptions = exceptions::check(history);
    let stats = stats::check(history);
    let availability = availability::check(history, options.availability);
    let net_result = net::check(net, op_count);

    let mut summary = Summary {
        workload,
        op_count,
        ok_fraction: availability.ok_fraction,
        servers_msgs_per_op: net_result.servers_msgs_per_op(),
        all_msgs_per_op: net_result.all_msgs_per_op(),
        stable_latencies: None,
        lost_latencies: None,
        attempt_count: 0,
        stable_count: 0,
        stale_count: 0,
        lost_count: 0,
        never_read_count: 0,
        duplicated_count: 0,
        duplicates_invalidate: true,
        echo_error_count: 0,
        counter_errors: 0,
        counter_final_reads: 0,
        send_latencies: None,
        poll_latencies: None,
        kafka_anomalies: 0,
        kafka_error_types: Vec::new(),
    };
    let (workload_edn, workload_valid) = match workload {
        WorkloadKind::Broadcast => {
            let result = set_full::check(history, options.maelstrom_dup_quirk);
            summary.stable_latencies = result.stable_latencies;
            summary.lost_latencies = result.lost_latencies;
            summary.attempt_count = result.attempt_count;
            summary.stable_count = result.stable_count();
            summary.stale_count = result.stale().len() as u64;
            summary.lost_count = result.lost().len() as u64;
            summary.never_read_count = result.never_read().len() as u64;
            summary.duplicated_count = result.duplicated.len() as u64;
            summary.duplicates_invalidate = !options.maelstrom_dup_quirk;
            (result.to_edn(), result.valid())
        }
        WorkloadKind::Echo => {
            let result = echo::check(history);
            summary.echo_error_count = result.errors.len() as u64;
            (result.to_edn(), result.valid())
        }
        WorkloadKind::UniqueIds => {
            let result = unique_ids::check(history);
            summary.duplicated_count = result.duplicated_count;
            (result.to_edn(), result.valid())
        }
        WorkloadKind::Kafka => {
            let result = kafka::check(history);
            summary.kafka_anomalies = result.anomaly_count();
            summary.kafka_error_types = result
                .error_types()
                .into_iter()
                .map(str::to_string)
                .collect();
            let (send, poll) = ok_latencies(history);
            summary.send_latencies = LatencyQuantiles::from_values(&send);
            summary.poll_latencies = LatencyQuantiles::from_values(&poll);
            (result.to_edn(), result.valid())
        }
        WorkloadKind::GCounter => {
            let result = g_counter::check(history);
            summary.counter_errors = result.errors.len() as u64;
            summary.counter_final_reads = result.final_reads.len() as u64;
            (result.to_edn(), result.valid())
        }
    };

    let valid = Validity::merge_all([
        Validity::Valid, // perf, timeline, exceptions and net are always valid
        stats.valid(),
        availability.valid,
        workload_valid,
    ]);
    let results = Edn::kw_map([
        ("perf", perf),
        ("timeline", timeline),
        ("exceptions", exceptions.to_edn()),
        ("stats", stats.to_edn()),
        ("availability", availability.to_edn()),
        ("net", net_result.to_edn()),
        ("workload", workload_edn),
        ("valid?", valid.to_edn()),
    ]);
    Analysis {
        results,
        valid,
        summary,
    }
}

/// Latencies in ms of `:ok` sends and of `:ok` polls (completion time minus invocation time).
fn ok_latencies(history: &History) -> (Vec<u64>, Vec<u64>) {
    use super::history::OpFn;
    let (mut send, mut poll) = (Vec::new(), Vec::new());
    for (invoke, done) in history.pairs() {
        let Some(done) = done.filter(|d| d.kind == OpType::Ok) else {
            continue;
        };
        let ms = done.time.saturating_sub(invoke.time) / 1_000_000;
        match done.f {
            OpFn::Send => send.push(ms),
            OpFn::Poll => poll.push(ms),
            _ => {}
        }
    }
    (send, poll)
}

/// Invocations by non-nemesis processes over the whole history: the `op-count` of docs/harness.md §6.2
/// (broadcasts, reads and final reads, whatever their outcome).
pub fn client_invocation_count(history: &History) -> u64 {
    history
        .ops()
        .iter()
        .filter(|op| op.is_client() && op.kind == OpType::Invoke)
        .count() as u64
}

#[cfg(test)]
mod tests {
    #[test]
    fn an_empty_broadcast_history_is_unknown_and_exits_2() {
        use crate::harness::check::{CheckOptions, Validity, WorkloadKind, analyze};
        use crate::harness::history::History;
        use crate::harness::net_stats::NetStats;

        // No operations at all: nothing was broadcast, so nothing can be judged stable.
        let analysis = analyze(
            WorkloadKind::Broadcast,
            &History::new(),
            &NetStats::default(),
            &CheckOptions::default(),
        );
        assert_eq!(analysis.valid, Validity::Unknown);
        assert_eq!(analysis.valid.exit_code(), 2);
    }
}

//! The checkers and the results output of the harness (docs/harness.md §6, §7, §8), on synthetic
//! histories: one test per behaviour.

use std::time::Duration;

use crate::harness::check::set_full::{self, LatencyQuantiles, Outcome};
use crate::harness::check::{
    Analysis, AvailabilityRequirement, CheckOptions, Validity, WorkloadKind, analyze,
};
use crate::harness::edn::Edn;
use crate::harness::history::{History, Op, OpFn, OpType, Process};
use crate::harness::net_stats::{NetCounts, NetStats};
use crate::harness::report::{
    RunNotes, RunStore, StdoutDeath, print_results, summary_line, verdict_line,
};
use serde_json::{Value, json};

const MS: u64 = 1_000_000;

/// Builds a history op by op; indexes are given by position.
#[derive(Default)]
struct Script {
    ops: Vec<Op>,
}

impl Script {
    fn push(&mut self, time: u64, kind: OpType, process: Process, f: OpFn, value: Value) -> usize {
        self.ops.push(Op {
            index: self.ops.len(),
            ..Op::new(time, kind, process, f, value)
        });
        self.ops.len() - 1
    }
    fn invoke(&mut self, time: u64, process: u64, f: OpFn, value: Value) -> usize {
        self.push(time, OpType::Invoke, Process::Client(process), f, value)
    }
    fn complete(&mut self, time: u64, kind: OpType, process: u64, f: OpFn, value: Value) -> usize {
        self.push(time, kind, Process::Client(process), f, value)
    }
    /// An acknowledged broadcast of `value`, invoked at `time` and acked at `ack`.
    fn broadcast(&mut self, time: u64, ack: u64, process: u64, value: i64) {
        self.invoke(time, process, OpFn::Broadcast, json!(value));
        self.complete(ack, OpType::Ok, process, OpFn::Broadcast, json!(value));
    }
    /// An `:ok` read invoked at `time` returning `values`; returns the invocation's index.
    fn read(&mut self, time: u64, process: u64, values: Value) -> usize {
        let index = self.invoke(time, process, OpFn::Read, Value::Null);
        self.complete(time + MS / 2, OpType::Ok, process, OpFn::Read, values);
        index
    }
    fn nemesis(&mut self, time: u64, f: OpFn) {
        self.push(time, OpType::Info, Process::Nemesis, f, Value::Null);
        self.push(
            time,
            OpType::Info,
            Process::Nemesis,
            f,
            json!("network-healed"),
        );
    }
    fn history(self) -> History {
        History::from_ops(self.ops)
    }
}

fn options() -> CheckOptions {
    CheckOptions::default()
}

fn broadcast(history: &History) -> Analysis {
    analyze(
        WorkloadKind::Broadcast,
        history,
        &NetStats::default(),
        &options(),
    )
}

fn workload(analysis: &Analysis) -> &Edn {
    analysis.results.get("workload").expect(":workload")
}

fn outcomes(history: &History) -> Vec<(Value, Outcome)> {
    set_full::check(history, false)
        .elements
        .iter()
        .map(|e| (e.element.clone(), e.outcome))
        .collect()
}

/// Stable latencies 0, 0, 5 and 7 ms: values 0..4 acked at 0; a read at 5 ms misses 2, a read
/// at 7 ms misses 3, a read at 8 ms sees all.
fn four_stable_latencies() -> History {
    let mut s = Script::default();
    for value in 0..4 {
        s.broadcast(0, 0, 0, value);
    }
    s.read(5 * MS, 1, json!([0, 1, 3]));
    s.read(7 * MS, 1, json!([0, 1, 2]));
    s.read(8 * MS, 1, json!([0, 1, 2, 3]));
    s.history()
}

#[test]
fn quantiles_take_floor_of_n_times_p_of_the_sorted_latencies() {
    let analysis = broadcast(&four_stable_latencies());
    assert_eq!(
        workload(&analysis)
            .get("stable-latencies")
            .unwrap()
            .to_string(),
        "{0 0, 0.5 5, 0.95 7, 0.99 7, 1 7}"
    );
    assert_eq!(
        analysis.summary.stable_latencies,
        Some(LatencyQuantiles {
            p0: 0,
            p50: 5,
            p95: 7,
            p99: 7,
            max: 7
        })
    );
    assert_eq!(analysis.valid, Validity::Valid);
}

#[test]
fn stale_and_worst_stale_list_the_values_some_read_missed_after_they_were_known() {
    let analysis = broadcast(&four_stable_latencies());
    let workload = workload(&analysis);
    assert_eq!(workload.get("stale").unwrap().to_string(), "(2 3)");
    assert_eq!(workload.get("stale-count").unwrap().to_string(), "2");
    let worst = workload.get("worst-stale").unwrap().to_string();
    // Highest latency first; broadcasts print as :add, the last absent read as its invocation.
    assert!(
        worst.starts_with(
            "({:element 3, :outcome :stable, :stable-latency 7, :lost-latency nil, \
         :known {:index 7, :time 0, :type :ok, :process 0, :f :add, :value 3}, \
         :last-absent {:index 10, :time 7000000, :type :invoke, :process 1, :f :read, :value nil}} \
         {:element 2,"
        ),
        "{worst}"
    );
}

#[test]
fn worst_stale_keeps_eight_and_puts_the_larger_value_first_on_a_tie() {
    let mut s = Script::default();
    for value in 0..10 {
        s.broadcast(0, 0, 0, value);
    }
    s.read(3 * MS, 1, json!([]));
    s.read(4 * MS, 1, (0..10).collect::<Value>());
    let history = s.history();
    let result = set_full::check(&history, false);
    let worst: Vec<Value> = result
        .worst_stale()
        .iter()
        .map(|e| e.element.clone())
        .collect();
    assert_eq!(worst, (2..10).rev().map(|v| json!(v)).collect::<Vec<_>>());
}

#[test]
fn outcomes_are_decided_by_history_index_not_by_time() {
    let mut s = Script::default();
    s.broadcast(0, MS, 0, 0);
    s.broadcast(0, MS, 0, 1);
    // Read A is invoked later in time but earlier in the history than read B.
    s.read(20 * MS, 1, json!([0]));
    s.read(10 * MS, 2, json!([1]));
    let history = s.history();
    // 0: present in A, absent from B, which comes later by index: lost, though B's time is
    // earlier. 1: absent from A, present in B: stable.
    assert_eq!(
        outcomes(&history),
        [(json!(0), Outcome::Lost), (json!(1), Outcome::Stable)]
    );
    let analysis = broadcast(&history);
    assert_eq!(workload(&analysis).get("lost").unwrap().to_string(), "(0)");
    assert_eq!(analysis.summary.lost_count, 1);
    assert_eq!(analysis.valid, Validity::Invalid);
}

#[test]
fn a_value_never_acknowledged_nor_read_is_never_read() {
    let mut s = Script::default();
    s.invoke(0, 0, OpFn::Broadcast, json!(0));
    s.complete(5000 * MS, OpType::Info, 0, OpFn::Broadcast, json!(0));
    s.read(6000 * MS, 1, json!([]));
    let history = s.history();
    assert_eq!(outcomes(&history), [(json!(0), Outcome::NeverRead)]);
    let analysis = broadcast(&history);
    assert_eq!(
        workload(&analysis).get("never-read").unwrap().to_string(),
        "(0)"
    );
    // Nothing lost, nothing stable: set-full says unknown (and stats, with no :ok broadcast,
    // say invalid).
    assert_eq!(
        workload(&analysis).get("valid?"),
        Some(&Edn::keyword("unknown"))
    );
    assert_eq!(analysis.valid, Validity::Invalid);
}

#[test]
fn a_value_missed_only_before_it_was_acknowledged_is_not_lost() {
    let mut s = Script::default();
    s.invoke(0, 0, OpFn::Broadcast, json!(0));
    s.invoke(MS, 1, OpFn::Read, Value::Null);
    s.complete(2 * MS, OpType::Ok, 0, OpFn::Broadcast, json!(0));
    s.complete(3 * MS, OpType::Ok, 1, OpFn::Read, json!([]));
    let history = s.history();
    assert_eq!(outcomes(&history), [(json!(0), Outcome::NeverRead)]);
}

#[test]
fn an_indeterminate_broadcast_seen_by_a_read_is_stable() {
    let mut s = Script::default();
    s.invoke(0, 0, OpFn::Broadcast, json!(0));
    s.complete(5000 * MS, OpType::Info, 0, OpFn::Broadcast, json!(0));
    s.read(6000 * MS, 1, json!([0]));
    assert_eq!(outcomes(&s.history()), [(json!(0), Outcome::Stable)]);
}

#[test]
fn stable_latency_runs_to_one_nanosecond_after_the_last_absent_read_and_truncates() {
    let mut s = Script::default();
    s.broadcast(0, MS, 0, 0); // known at 1 ms
    s.broadcast(0, MS, 0, 1);
    s.read(4 * MS - 1, 1, json!([1])); // 0 absent at 3.999999 ms: +1 ns makes exactly 3 ms
    s.read(2 * MS + MS / 2, 2, json!([0])); // 1 absent at 2.5 ms: 1.5 ms, truncated to 1
    s.read(10 * MS, 3, json!([0, 1]));
    let history = s.history();
    let result = set_full::check(&history, false);
    let latencies: Vec<Option<u64>> = result.elements.iter().map(|e| e.stable_latency).collect();
    assert_eq!(latencies, [Some(3), Some(1)]);
}

#[test]
fn stable_latency_is_zero_when_the_last_absent_read_was_stamped_before_the_ack() {
    let mut s = Script::default();
    s.invoke(0, 0, OpFn::Broadcast, json!(0));
    // A read stamped at 1 ms (the scheduler held it) but dispatched after the ack at 5 ms.
    s.complete(5 * MS, OpType::Ok, 0, OpFn::Broadcast, json!(0));
    s.read(MS, 1, json!([]));
    s.read(9 * MS, 1, json!([0]));
    let history = s.history();
    let result = set_full::check(&history, false);
    assert_eq!(result.elements[0].outcome, Outcome::Stable);
    assert_eq!(result.elements[0].stable_latency, Some(0));
}

#[test]
fn lost_latency_runs_from_known_to_just_after_the_last_present_read() {
    let mut s = Script::default();
    s.broadcast(0, MS, 0, 0);
    s.read(3 * MS, 1, json!([0]));
    s.read(9 * MS, 1, json!([]));
    let history = s.history();
    let result = set_full::check(&history, false);
    assert_eq!(result.elements[0].outcome, Outcome::Lost);
    assert_eq!(result.elements[0].lost_latency, Some(2));
    assert_eq!(result.lost_latencies.map(|q| q.max), Some(2));
}

#[test]
fn failed_and_indeterminate_reads_are_ignored() {
    let mut s = Script::default();
    s.broadcast(0, MS, 0, 0);
    s.read(2 * MS, 1, json!([0]));
    s.invoke(3 * MS, 1, OpFn::Read, Value::Null);
    s.complete(5003 * MS, OpType::Fail, 1, OpFn::Read, json!([]));
    s.invoke(5004 * MS, 2, OpFn::Read, Value::Null);
    s.complete(5005 * MS, OpType::Info, 2, OpFn::Read, json!([]));
    let history = s.history();
    assert_eq!(outcomes(&history), [(json!(0), Outcome::Stable)]);
    assert_eq!(
        set_full::check(&history, false).elements[0].stable_latency,
        Some(0)
    );
}

#[test]
fn values_read_but_never_broadcast_are_ignored() {
    let mut s = Script::default();
    s.read(0, 1, json!([7])); // before 7's broadcast was invoked
    s.broadcast(MS, 2 * MS, 0, 7);
    s.read(3 * MS, 1, json!([7, 99]));
    let analysis = broadcast(&s.history());
    let workload = workload(&analysis);
    assert_eq!(workload.get("attempt-count").unwrap().to_string(), "1");
    assert_eq!(workload.get("stable-count").unwrap().to_string(), "1");
    assert_eq!(workload.get("never-read").unwrap().to_string(), "()");
    // The read before the broadcast did not make 7 stale.
    assert_eq!(workload.get("stale").unwrap().to_string(), "()");
    assert_eq!(analysis.valid, Validity::Valid);
}

fn duplicated_read() -> History {
    let mut s = Script::default();
    s.broadcast(0, MS, 0, 0);
    s.broadcast(0, MS, 0, 1);
    s.read(2 * MS, 1, json!([0, 1, 0, 0]));
    s.read(3 * MS, 1, json!([0, 0, 1]));
    s.history()
}

#[test]
fn a_value_returned_twice_by_one_read_is_a_duplicate_and_invalidates() {
    let history = duplicated_read();
    let analysis = broadcast(&history);
    let workload = workload(&analysis);
    assert_eq!(workload.get("duplicated-count").unwrap().to_string(), "1");
    assert_eq!(workload.get("duplicated").unwrap().to_string(), "{0 3}");
    assert_eq!(workload.get("valid?"), Some(&Edn::Bool(false)));
    assert_eq!(analysis.valid, Validity::Invalid);
    let notes = RunNotes::default();
    let line = summary_line(&analysis.summary, &notes);
    assert!(
        line.contains("duplicated 1 (invalid here; Maelstrom would not flag this)"),
        "{line}"
    );
}

#[test]
fn the_maelstrom_dup_quirk_reports_no_duplicates_and_stays_valid() {
    let history = duplicated_read();
    let options = CheckOptions {
        maelstrom_dup_quirk: true,
        ..CheckOptions::default()
    };
    let analysis = analyze(
        WorkloadKind::Broadcast,
        &history,
        &NetStats::default(),
        &options,
    );
    let workload = workload(&analysis);
    assert_eq!(workload.get("duplicated-count").unwrap().to_string(), "0");
    assert_eq!(workload.get("duplicated").unwrap().to_string(), "{}");
    assert_eq!(analysis.valid, Validity::Valid);
    // The summary still tells.
    let line = summary_line(&analysis.summary, &RunNotes::default());
    assert!(
        line.contains("duplicated 1 (") && line.contains("Maelstrom would not flag this"),
        "{line}"
    );
}

#[test]
fn stats_count_completions_per_function() {
    let mut s = Script::default();
    s.broadcast(0, MS, 0, 0);
    s.invoke(2 * MS, 0, OpFn::Broadcast, json!(1));
    s.complete(5002 * MS, OpType::Info, 0, OpFn::Broadcast, json!(1));
    s.read(5003 * MS, 1, json!([0]));
    s.nemesis(0, OpFn::StartPartition);
    let analysis = broadcast(&s.history());
    assert_eq!(
        analysis.results.get("stats").unwrap().to_string(),
        "{:valid? true, :count 3, :ok-count 2, :fail-count 0, :info-count 1, \
         :by-f {:broadcast {:valid? true, :count 2, :ok-count 1, :fail-count 0, :info-count 1}, \
         :read {:valid? true, :count 1, :ok-count 1, :fail-count 0, :info-count 0}}}"
    );
}

#[test]
fn a_broadcast_run_whose_reads_all_failed_is_invalid() {
    let mut s = Script::default();
    s.broadcast(0, MS, 0, 0);
    s.invoke(2 * MS, 1, OpFn::Read, Value::Null);
    s.complete(5002 * MS, OpType::Fail, 1, OpFn::Read, Value::Null);
    let analysis = broadcast(&s.history());
    let stats = analysis.results.get("stats").unwrap();
    assert_eq!(stats.get("valid?"), Some(&Edn::Bool(false)));
    let read = stats.get("by-f").and_then(|by_f| by_f.get("read")).unwrap();
    assert_eq!(read.get("valid?"), Some(&Edn::Bool(false)));
    assert_eq!(analysis.valid, Validity::Invalid);
}

/// Four client invocations, three `:ok`.
fn three_of_four_ok() -> History {
    let mut s = Script::default();
    s.broadcast(0, MS, 0, 0);
    s.read(2 * MS, 1, json!([0]));
    s.read(3 * MS, 1, json!([0]));
    s.invoke(4 * MS, 2, OpFn::Read, Value::Null);
    s.complete(5004 * MS, OpType::Fail, 2, OpFn::Read, Value::Null);
    s.nemesis(0, OpFn::StartPartition);
    s.history()
}

fn availability_with(requirement: Option<AvailabilityRequirement>) -> Edn {
    let options = CheckOptions {
        availability: requirement,
        ..CheckOptions::default()
    };
    let analysis = analyze(
        WorkloadKind::Broadcast,
        &three_of_four_ok(),
        &NetStats::default(),
        &options,
    );
    analysis.results.get("availability").unwrap().clone()
}

#[test]
fn availability_is_the_ok_fraction_and_always_valid_without_a_requirement() {
    assert_eq!(
        availability_with(None).to_string(),
        "{:valid? true, :ok-fraction 0.75}"
    );
    let empty = analyze(
        WorkloadKind::Echo,
        &History::new(),
        &NetStats::default(),
        &options(),
    );
    assert_eq!(
        empty.results.get("availability").unwrap().to_string(),
        "{:valid? true, :ok-fraction 1.0}"
    );
}

#[test]
fn availability_total_needs_every_invocation_ok() {
    assert_eq!(
        availability_with(Some(AvailabilityRequirement::Total)).get("valid?"),
        Some(&Edn::Bool(false))
    );
    let mut s = Script::default();
    s.broadcast(0, MS, 0, 0);
    let options = CheckOptions {
        availability: Some(AvailabilityRequirement::Total),
        ..CheckOptions::default()
    };
    let analysis = analyze(
        WorkloadKind::Broadcast,
        &s.history(),
        &NetStats::default(),
        &options,
    );
    assert_eq!(
        analysis.results.get("availability").unwrap().get("valid?"),
        Some(&Edn::Bool(true))
    );
}

#[test]
fn availability_fraction_needs_at_least_that_fraction_ok() {
    let valid = |a| {
        availability_with(Some(AvailabilityRequirement::Fraction(a)))
            .get("valid?")
            .cloned()
    };
    assert_eq!(valid(0.7), Some(Edn::Bool(true)));
    assert_eq!(valid(0.75), Some(Edn::Bool(true)));
    assert_eq!(valid(0.8), Some(Edn::Bool(false)));
}

fn counts(send: u64, recv: u64) -> NetCounts {
    NetCounts {
        send_count: send,
        recv_count: recv,
    }
}

#[test]
fn msgs_per_op_counts_every_client_invocation_but_not_the_nemesis() {
    let mut s = Script::default();
    s.broadcast(0, MS, 0, 0); // 1
    s.read(2 * MS, 1, json!([0])); // 2
    s.invoke(3 * MS, 2, OpFn::Read, Value::Null); // 3: failed
    s.complete(5003 * MS, OpType::Fail, 2, OpFn::Read, Value::Null);
    s.invoke(4 * MS, 3, OpFn::Broadcast, json!(1)); // 4: indeterminate
    s.complete(5004 * MS, OpType::Info, 3, OpFn::Broadcast, json!(1));
    s.nemesis(0, OpFn::StartPartition);
    s.nemesis(6000 * MS, OpFn::StopPartition);
    let final_read = s.invoke(16_000 * MS, 1, OpFn::Read, Value::Null); // 5: final
    s.complete(16_001 * MS, OpType::Ok, 1, OpFn::Read, json!([0, 1]));
    let mut ops = s.ops;
    ops[final_read].final_read = true;
    let history = History::from_ops(ops);

    let net = NetStats {
        all: counts(100, 97),
        clients: counts(30, 30),
        servers: counts(70, 67),
    };
    let analysis = analyze(WorkloadKind::Broadcast, &history, &net, &options());
    assert_eq!(analysis.summary.op_count, 5);
    assert_eq!(
        analysis.results.get("net").unwrap().to_string(),
        "{:all {:send-count 100, :recv-count 97, :msg-count 100, :msgs-per-op 20.0}, \
         :clients {:send-count 30, :recv-count 30, :msg-count 30}, \
         :servers {:send-count 70, :recv-count 67, :msg-count 70, :msgs-per-op 14.0}, \
         :valid? true}"
    );
}

#[test]
fn msgs_per_op_prints_as_a_32_bit_float() {
    // Maelstrom's own 3d sample: 206 ops, 4334 messages in all, 3822 between servers.
    let mut s = Script::default();
    for i in 0..206 {
        s.read(i * MS, 0, json!([]));
    }
    let net = NetStats {
        all: counts(4334, 4334),
        clients: counts(512, 512),
        servers: counts(3822, 3822),
    };
    let analysis = analyze(WorkloadKind::Broadcast, &s.history(), &net, &options());
    let net = analysis.results.get("net").unwrap();
    assert_eq!(
        net.get("all")
            .unwrap()
            .get("msgs-per-op")
            .unwrap()
            .to_string(),
        "21.038836"
    );
    assert_eq!(
        net.get("servers")
            .unwrap()
            .get("msgs-per-op")
            .unwrap()
            .to_string(),
        "18.553398"
    );
    assert_eq!(analysis.summary.servers_msgs_per_op, Some(3822.0 / 206.0));
}

#[test]
fn msgs_per_op_is_left_out_when_there_were_no_ops() {
    let net = NetStats {
        all: counts(10, 10),
        clients: counts(10, 10),
        servers: counts(0, 0),
    };
    let analysis = analyze(WorkloadKind::Broadcast, &History::new(), &net, &options());
    assert_eq!(
        analysis.results.get("net").unwrap().to_string(),
        "{:all {:send-count 10, :recv-count 10, :msg-count 10}, \
         :clients {:send-count 10, :recv-count 10, :msg-count 10}, \
         :servers {:send-count 0, :recv-count 0, :msg-count 0}, :valid? true}"
    );
    assert_eq!(analysis.summary.servers_msgs_per_op, None);
}

fn echo_history(reply: Value, kind: OpType) -> History {
    let mut s = Script::default();
    s.invoke(0, 0, OpFn::Echo, json!("Please echo 1"));
    s.complete(MS, OpType::Ok, 0, OpFn::Echo, json!("Please echo 1"));
    s.invoke(2 * MS, 0, OpFn::Echo, json!("Please echo 2"));
    s.complete(3 * MS, kind, 0, OpFn::Echo, reply);
    s.history()
}

#[test]
fn echo_is_valid_when_every_reply_echoes_the_request() {
    let history = echo_history(json!("Please echo 2"), OpType::Ok);
    let analysis = analyze(
        WorkloadKind::Echo,
        &history,
        &NetStats::default(),
        &options(),
    );
    assert_eq!(
        workload(&analysis).to_string(),
        "{:valid? true, :errors ()}"
    );
    assert_eq!(analysis.valid, Validity::Valid);
}

#[test]
fn an_echo_mismatch_is_invalid() {
    let history = echo_history(json!("Please echo 3"), OpType::Ok);
    let analysis = analyze(
        WorkloadKind::Echo,
        &history,
        &NetStats::default(),
        &options(),
    );
    assert_eq!(
        workload(&analysis).to_string(),
        "{:valid? false, :errors ([\"Expected a message with :echo\" \"Please echo 2\" \
         \"But received\" \"Please echo 3\"])}"
    );
    assert_eq!(analysis.valid, Validity::Invalid);
    assert_eq!(analysis.summary.echo_error_count, 1);
}

#[test]
fn an_echo_that_did_not_complete_ok_is_an_error() {
    let history = echo_history(Value::Null, OpType::Info);
    let analysis = analyze(
        WorkloadKind::Echo,
        &history,
        &NetStats::default(),
        &options(),
    );
    assert_eq!(analysis.valid, Validity::Invalid);
    assert_eq!(analysis.summary.echo_error_count, 1);
}

fn generate(ids: &[Value]) -> History {
    let mut s = Script::default();
    for (i, id) in ids.iter().enumerate() {
        s.invoke(i as u64 * MS, 0, OpFn::Generate, Value::Null);
        s.complete(i as u64 * MS + 1, OpType::Ok, 0, OpFn::Generate, id.clone());
    }
    s.invoke(99 * MS, 1, OpFn::Generate, Value::Null);
    s.complete(5099 * MS, OpType::Info, 1, OpFn::Generate, Value::Null);
    s.history()
}

#[test]
fn unique_ids_are_valid_when_no_id_repeats() {
    let history = generate(&[json!(3), json!(10), json!(2)]);
    let analysis = analyze(
        WorkloadKind::UniqueIds,
        &history,
        &NetStats::default(),
        &options(),
    );
    assert_eq!(
        workload(&analysis).to_string(),
        "{:valid? true, :attempted-count 4, :acknowledged-count 3, :duplicated-count 0, \
         :duplicated {}, :range [2 10]}"
    );
}

#[test]
fn a_unique_id_acknowledged_twice_is_invalid() {
    let history = generate(&[json!("n1-1"), json!("n2-1"), json!("n1-1")]);
    let analysis = analyze(
        WorkloadKind::UniqueIds,
        &history,
        &NetStats::default(),
        &options(),
    );
    assert_eq!(
        workload(&analysis).to_string(),
        "{:valid? false, :attempted-count 4, :acknowledged-count 3, :duplicated-count 1, \
         :duplicated {\"n1-1\" 2}, :range [\"n1-1\" \"n2-1\"]}"
    );
    assert_eq!(analysis.valid, Validity::Invalid);
    assert_eq!(analysis.summary.duplicated_count, 1);
}

#[test]
fn exceptions_are_listed_by_class_and_stay_valid() {
    let mut s = Script::default();
    s.invoke(0, 0, OpFn::Broadcast, json!(0));
    s.complete(MS, OpType::Info, 0, OpFn::Broadcast, Value::Null);
    let mut ops = s.ops;
    ops[1].exception = Some("malformed-reply: unexpected key \"x\"".to_owned());
    let analysis = broadcast(&History::from_ops(ops));
    let exceptions = analysis.results.get("exceptions").unwrap().to_string();
    assert!(
        exceptions.starts_with(
            "{:valid? true, :exceptions ({:count 1, :class \"malformed-reply\", :example {:index 1,"
        ),
        "{exceptions}"
    );
}

#[test]
fn top_level_keys_follow_the_spec_order() {
    let analysis = broadcast(&four_stable_latencies());
    assert_eq!(
        analysis.results.keyword_keys(),
        [
            "perf",
            "timeline",
            "exceptions",
            "stats",
            "availability",
            "net",
            "workload",
            "valid?"
        ]
    );
    assert_eq!(
        workload(&analysis).keyword_keys(),
        [
            "worst-stale",
            "duplicated-count",
            "valid?",
            "lost-count",
            "lost",
            "stable-count",
            "stale-count",
            "stale",
            "never-read-count",
            "stable-latencies",
            "attempt-count",
            "never-read",
            "duplicated",
        ]
    );
    assert_eq!(
        analysis.results.get("perf").unwrap().to_string(),
        "{:latency-graph {:valid? true}, :rate-graph {:valid? true}, :valid? true}"
    );
    assert_eq!(
        analysis.results.get("timeline").unwrap().to_string(),
        "{:valid? true}"
    );
    assert_eq!(
        analysis.results.get("exceptions").unwrap().to_string(),
        "{:valid? true}"
    );
}

#[test]
fn the_overall_verdict_is_false_over_unknown_over_true() {
    use Validity::*;
    assert_eq!(Validity::merge_all([Valid, Unknown, Valid]), Unknown);
    assert_eq!(Validity::merge_all([Unknown, Invalid, Valid]), Invalid);
    assert_eq!(Validity::merge_all([]), Valid);
    assert_eq!(
        [Valid.exit_code(), Invalid.exit_code(), Unknown.exit_code()],
        [0, 1, 2]
    );
    assert_eq!(Unknown.to_edn().to_string(), ":unknown");
}

#[test]
fn the_verdict_lines_are_jepsens() {
    assert_eq!(
        verdict_line(Validity::Valid),
        "Everything looks good! ヽ(‘ー`)ノ"
    );
    assert_eq!(
        verdict_line(Validity::Invalid),
        "Analysis invalid! (ﾉಥ益ಥ）ﾉ ┻━┻"
    );
    assert_eq!(
        verdict_line(Validity::Unknown),
        "Errors occurred during analysis, but no anomalies found. ಠ~ಠ"
    );
}

#[test]
fn the_results_print_as_maelstrom_prints_them() {
    let mut s = Script::default();
    for i in 0..206 {
        s.read(i * MS, 0, json!([]));
    }
    let net = NetStats {
        all: counts(4334, 4334),
        clients: counts(512, 512),
        servers: counts(3822, 3822),
    };
    let analysis = analyze(WorkloadKind::Broadcast, &s.history(), &net, &options());
    let notes = RunNotes {
        stdout_deaths: vec![],
        harness_cpu: Duration::from_millis(1500),
        wall: Duration::from_secs(31),
    };
    let mut out = Vec::new();
    print_results(&analysis, &notes, false, &mut out).unwrap();
    let text = String::from_utf8(out).unwrap();
    // As in a real Maelstrom 3d run (docs/harness.md §7.1).
    let expected_start = "\
{:perf {:latency-graph {:valid? true},
        :rate-graph {:valid? true},
        :valid? true},
 :timeline {:valid? true},
 :exceptions {:valid? true},
 :stats {:valid? true,
         :count 206,
         :ok-count 206,
         :fail-count 0,
         :info-count 0,
         :by-f {:read {:valid? true,
                       :count 206,
                       :ok-count 206,
                       :fail-count 0,
                       :info-count 0}}},
 :availability {:valid? true, :ok-fraction 1.0},
 :net {:all {:send-count 4334,
             :recv-count 4334,
             :msg-count 4334,
             :msgs-per-op 21.038836},
       :clients {:send-count 512, :recv-count 512, :msg-count 512},
       :servers {:send-count 3822,
                 :recv-count 3822,
                 :msg-count 3822,
                 :msgs-per-op 18.553398},
       :valid? true},
 :workload {:worst-stale (),
";
    assert!(text.starts_with(expected_start), "{text}");
    // Nothing broadcast: unknown.
    assert!(
        text.contains(
            " :valid? :unknown}\n\nErrors occurred during analysis, but no anomalies found. ಠ~ಠ\n\n\
             servers msgs-per-op 18.55 | stable latency n/a"
        ),
        "{text}"
    );
    assert!(
        text.trim_end().ends_with("harness cpu 1.5 s, wall 31.0 s"),
        "{text}"
    );
}

#[test]
fn stdout_deaths_are_printed_prominently_and_counted_in_the_summary() {
    let analysis = broadcast(&four_stable_latencies());
    let notes = RunNotes {
        stdout_deaths: vec![StdoutDeath {
            node: "n3".to_owned(),
            example: "not JSON: debug: hello".to_owned(),
            count: 5,
        }],
        harness_cpu: Duration::ZERO,
        wall: Duration::ZERO,
    };
    let mut out = Vec::new();
    print_results(&analysis, &notes, false, &mut out).unwrap();
    let text = String::from_utf8(out).unwrap();
    assert!(
        text.contains("!! STDOUT DEATH on 1 node(s), 5 line(s)"),
        "{text}"
    );
    assert!(
        text.contains("!!   n3: 5 line(s); first: not JSON: debug: hello"),
        "{text}"
    );
    assert!(text.contains("| stdout deaths 1 (5 lines) |"), "{text}");
}

#[test]
fn the_summary_line_shows_the_numbers_of_the_fly_io_thresholds() {
    let analysis = broadcast(&four_stable_latencies());
    let line = summary_line(&analysis.summary, &RunNotes::default());
    assert_eq!(
        line,
        "servers msgs-per-op 0.00 | stable latency p50 5 ms, p95 7 ms, p99 7 ms, max 7 ms \
         | lost 0, never-read 0 | ops 7, ok-fraction 1.000 | stdout deaths 0 \
         | harness cpu 0.0 s, wall 0.0 s"
    );
}

#[test]
fn json_output_is_one_document_with_the_same_results() {
    let analysis = broadcast(&four_stable_latencies());
    let mut out = Vec::new();
    print_results(&analysis, &RunNotes::default(), true, &mut out).unwrap();
    let document: Value = serde_json::from_slice(&out).unwrap();
    assert_eq!(document["results"], analysis.results.to_json());
    assert_eq!(
        document["results"]["workload"]["stable-latencies"]["0.5"],
        json!(5)
    );
    assert_eq!(document["valid"], json!(true));
}

#[test]
fn the_run_store_keeps_results_history_plot_and_a_latest_link() {
    let base = tempfile::tempdir().unwrap();
    let store = RunStore::create(base.path(), "broadcast").unwrap();
    assert!(store.dir().starts_with(base.path().join("broadcast")));
    assert_eq!(
        store.node_log_path("n0"),
        store.dir().join("node-logs").join("n0.log")
    );
    assert!(store.dir().join("node-logs").is_dir());

    let history = four_stable_latencies();
    let analysis = broadcast(&history);
    store
        .write_all(&analysis, &history, &RunNotes::default())
        .unwrap();
    let read = |name: &str| std::fs::read_to_string(store.dir().join(name)).unwrap();
    assert_eq!(
        read("results.edn"),
        format!("{}\n", analysis.results.pretty())
    );
    let json: Value = serde_json::from_str(&read("results.json")).unwrap();
    assert_eq!(json, analysis.results.to_json());
    let history_edn = read("history.edn");
    assert_eq!(
        history_edn.lines().next(),
        Some("{:index 0, :time 0, :type :invoke, :process 0, :f :broadcast, :value 0}")
    );
    assert_eq!(history_edn.lines().count(), history.ops().len());
    let svg = read("latency.svg");
    assert!(svg.starts_with("<svg ") && svg.trim_end().ends_with("</svg>"));
    assert!(svg.contains("<circle"));
    assert!(read("summary.txt").starts_with("Everything looks good!"));

    let latest = base.path().join("latest");
    assert_eq!(
        latest.canonicalize().unwrap(),
        store.dir().canonicalize().unwrap()
    );
    // A second run in the same millisecond gets its own folder, and the link follows it.
    let second = RunStore::create(base.path(), "broadcast").unwrap();
    assert_ne!(second.dir(), store.dir());
    assert_eq!(
        latest.canonicalize().unwrap(),
        second.dir().canonicalize().unwrap()
    );
}

#[test]
fn history_lines_show_errors_final_reads_and_the_nemesis() {
    let mut s = Script::default();
    s.invoke(0, 0, OpFn::Read, Value::Null);
    s.complete(5000 * MS, OpType::Fail, 0, OpFn::Read, Value::Null);
    s.nemesis(1, OpFn::StartPartition);
    let mut ops = s.ops;
    ops[1].error = Some("net-timeout".to_owned());
    ops[0].final_read = true;
    let lines: Vec<String> = ops
        .iter()
        .map(|op| crate::harness::edn::op_to_edn(op).to_string())
        .collect();
    assert_eq!(
        lines[0],
        "{:index 0, :time 0, :type :invoke, :process 0, :f :read, :value nil, :final? true}"
    );
    assert_eq!(
        lines[1],
        "{:index 1, :time 5000000000, :type :fail, :process 0, :f :read, :value nil, :error :net-timeout}"
    );
    assert_eq!(
        lines[2],
        "{:index 2, :time 1, :type :info, :process :nemesis, :f :start-partition, :value nil}"
    );
}

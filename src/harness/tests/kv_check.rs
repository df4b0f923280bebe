//! Checker vectors for g-counter (from Maelstrom's `pn_counter_test.clj`) and kafka (one
//! history per anomaly of Jepsen's `tests/kafka.clj` checker), on key "x".

use serde_json::{Value, json};

use crate::harness::check::{g_counter, kafka};
use crate::harness::history::{History, Op, OpFn, OpType, Process};

fn op(time: u64, kind: OpType, process: u64, f: OpFn, value: Value) -> Op {
    Op::new(time, kind, Process::Client(process), f, value)
}

fn final_read(time: u64, kind: OpType, process: u64, value: Value) -> Vec<Op> {
    vec![
        Op {
            final_read: true,
            ..op(time, OpType::Invoke, process, OpFn::Read, Value::Null)
        },
        Op {
            final_read: true,
            ..op(time + 1, kind, process, OpFn::Read, value)
        },
    ]
}

fn add(time: u64, kind: OpType, process: u64, delta: i64) -> Vec<Op> {
    vec![
        op(time, OpType::Invoke, process, OpFn::Add, json!(delta)),
        op(time + 1, kind, process, OpFn::Add, json!(delta)),
    ]
}

#[test]
fn g_counter_empty_history_is_valid_with_zero_acceptable() {
    let history = History::new();
    let result = g_counter::check(&history);
    assert!(result.errors.is_empty());
    assert_eq!(
        result.to_edn().to_string(),
        "{:valid? true, :errors nil, :final-reads (), :acceptable ([0 0])}"
    );
}

#[test]
fn g_counter_a_low_final_read_is_the_only_error() {
    let ops = [
        add(0, OpType::Ok, 0, 2),
        add(2, OpType::Ok, 1, 3),
        final_read(10, OpType::Ok, 0, json!(5)),
        final_read(10, OpType::Ok, 1, json!(4)),
    ];
    let history = History::from_ops(ops.into_iter().flatten());
    let result = g_counter::check(&history);
    assert_eq!(result.errors.len(), 1);
    assert_eq!(result.errors[0].value, json!(4));
    assert_eq!(result.acceptable, vec![(5, 5)]);
}

#[test]
fn g_counter_indeterminate_adds_widen_the_range_in_merged_intervals() {
    let ops = [
        add(0, OpType::Ok, 0, 10),
        add(2, OpType::Info, 1, 5),
        add(4, OpType::Info, 2, -1),
        add(6, OpType::Info, 3, -1),
        final_read(10, OpType::Ok, 4, json!(11)),
        final_read(10, OpType::Ok, 5, json!(15)),
    ];
    let history = History::from_ops(ops.into_iter().flatten());
    let result = g_counter::check(&history);
    assert_eq!(result.acceptable, vec![(8, 10), (13, 15)]);
    assert_eq!(result.errors.len(), 1);
    assert_eq!(result.errors[0].value, json!(11));
    assert!(
        result
            .to_edn()
            .to_string()
            .ends_with(":final-reads (11 15), :acceptable ([8 10] [13 15])}")
    );
}

#[test]
fn g_counter_only_indeterminate_final_reads_and_main_phase_reads_are_not_judged() {
    let ops = [
        add(0, OpType::Ok, 0, 3),
        vec![
            op(1, OpType::Invoke, 1, OpFn::Read, Value::Null),
            op(2, OpType::Ok, 1, OpFn::Read, json!(99)),
        ],
        final_read(10, OpType::Info, 0, Value::Null),
    ];
    let history = History::from_ops(ops.into_iter().flatten());
    assert!(g_counter::check(&history).errors.is_empty());
}

/// A send of `msg` to x by `process`, acked at `offset` (or completing `kind` without one).
fn send(t: u64, process: u64, msg: i64, kind: OpType, offset: Option<i64>) -> Vec<Op> {
    let done = match offset {
        Some(offset) => json!([["send", "x", [offset, msg]]]),
        None => json!([["send", "x", msg]]),
    };
    vec![
        op(
            t,
            OpType::Invoke,
            process,
            OpFn::Send,
            json!([["send", "x", msg]]),
        ),
        op(t + 1, kind, process, OpFn::Send, done),
    ]
}

/// An ok poll of x by `process` that returned `pairs` ([offset, msg]).
fn poll(t: u64, process: u64, pairs: Value) -> Vec<Op> {
    vec![
        op(t, OpType::Invoke, process, OpFn::Poll, json!([["poll"]])),
        op(
            t + 1,
            OpType::Ok,
            process,
            OpFn::Poll,
            json!([["poll", {"x": pairs}]]),
        ),
    ]
}

fn assign(t: u64, process: u64, keys: Value) -> Vec<Op> {
    vec![
        op(t, OpType::Invoke, process, OpFn::Assign, keys.clone()),
        op(t + 1, OpType::Ok, process, OpFn::Assign, keys),
    ]
}

fn kafka_types(ops: Vec<Vec<Op>>) -> Vec<&'static str> {
    let history = History::from_ops(ops.into_iter().flatten());
    kafka::check(&history).error_types()
}

/// Sends of 1, 2, 3 at offsets 0, 1, 2 by process 9.
fn three_sends() -> Vec<Vec<Op>> {
    vec![
        send(0, 9, 1, OpType::Ok, Some(0)),
        send(2, 9, 2, OpType::Ok, Some(1)),
        send(4, 9, 3, OpType::Ok, Some(2)),
    ]
}

/// Sends of 1-4 at offsets 1-4 by process 9, then one poll by process 8 that sees all four.
fn four_sends_polled_by_process_8() -> Vec<Vec<Op>> {
    vec![
        send(0, 9, 1, OpType::Ok, Some(1)),
        send(2, 9, 2, OpType::Ok, Some(2)),
        send(4, 9, 3, OpType::Ok, Some(3)),
        send(6, 9, 4, OpType::Ok, Some(4)),
        poll(8, 8, json!([[1, 1], [2, 2], [3, 3], [4, 4]])),
    ]
}

#[test]
fn kafka_a_clean_history_is_valid() {
    let mut ops = three_sends();
    ops.push(poll(10, 0, json!([[0, 1], [1, 2], [2, 3]])));
    let history = History::from_ops(ops.into_iter().flatten());
    let result = kafka::check(&history);
    assert!(result.error_types().is_empty());
    let edn = result.to_edn().to_string();
    assert!(
        edn.starts_with("{:valid? true, :worst-realtime-lag {:time "),
        "{edn}"
    );
    assert!(edn.ends_with(":bad-error-types (), :error-types (), :info-txn-causes ()}"));
}

#[test]
fn kafka_two_messages_at_one_offset_are_inconsistent() {
    let types = kafka_types(vec![
        send(0, 0, 1, OpType::Ok, Some(0)),
        send(2, 1, 2, OpType::Ok, Some(0)),
        poll(10, 2, json!([[0, 1]])),
    ]);
    assert!(types.contains(&"inconsistent-offsets"), "{types:?}");
}

#[test]
fn kafka_one_message_at_two_offsets_is_a_duplicate() {
    let types = kafka_types(vec![
        send(0, 0, 1, OpType::Ok, Some(0)),
        poll(10, 2, json!([[0, 1], [1, 1]])),
    ]);
    assert!(types.contains(&"duplicate"), "{types:?}");
}

#[test]
fn kafka_reading_only_the_last_offset_loses_the_earlier_writes() {
    let mut ops = three_sends();
    ops.push(poll(10, 0, json!([[2, 3]])));
    let history = History::from_ops(ops.into_iter().flatten());
    let result = kafka::check(&history);
    assert_eq!(result.anomalies["lost-write"].len(), 2);
    assert_eq!(result.error_types(), ["lost-write", "unseen"]);
}

#[test]
fn kafka_a_send_never_polled_is_unseen_only() {
    let types = kafka_types(vec![send(0, 0, 1, OpType::Ok, Some(0))]);
    assert_eq!(types, ["unseen"]);
}

#[test]
fn kafka_gaps_and_reversals_inside_one_poll() {
    let mut skip = four_sends_polled_by_process_8();
    skip.push(poll(20, 0, json!([[1, 1], [4, 4]])));
    assert!(kafka_types(skip).contains(&"int-poll-skip"));
    let mut reverse = four_sends_polled_by_process_8();
    reverse.push(poll(20, 0, json!([[3, 3], [1, 1]])));
    assert!(kafka_types(reverse).contains(&"int-nonmonotonic-poll"));
}

#[test]
fn kafka_skips_and_reversals_between_polls_of_one_process() {
    let mut skip = four_sends_polled_by_process_8();
    skip.push(poll(20, 0, json!([[1, 1], [2, 2]])));
    skip.push(poll(30, 0, json!([[4, 4]])));
    assert_eq!(kafka_types(skip), ["poll-skip"]);

    let mut back = four_sends_polled_by_process_8();
    back.push(poll(20, 0, json!([[1, 1], [2, 2], [3, 3]])));
    back.push(poll(30, 0, json!([[2, 2], [3, 3], [4, 4]])));
    assert_eq!(kafka_types(back), ["nonmonotonic-poll"]);

    // An assign that drops x and one that re-adds it reset the baseline.
    let mut reassigned = four_sends_polled_by_process_8();
    reassigned.push(poll(20, 0, json!([[1, 1], [2, 2]])));
    reassigned.push(assign(22, 0, json!(["y"])));
    reassigned.push(assign(24, 0, json!(["x"])));
    reassigned.push(poll(30, 0, json!([[4, 4]])));
    assert!(kafka_types(reassigned).is_empty());

    // So does an empty list for x (the quirk).
    let mut emptied = four_sends_polled_by_process_8();
    emptied.push(poll(20, 0, json!([[1, 1], [2, 2]])));
    emptied.push(poll(25, 0, json!([])));
    emptied.push(poll(30, 0, json!([[4, 4]])));
    assert!(kafka_types(emptied).is_empty());
}

#[test]
fn kafka_sends_of_one_process_going_backwards() {
    let types = kafka_types(vec![
        send(0, 0, 1, OpType::Ok, Some(3)),
        send(2, 0, 2, OpType::Ok, Some(1)),
        poll(10, 1, json!([[1, 2], [3, 1]])),
    ]);
    assert_eq!(types, ["nonmonotonic-send"]);
}

#[test]
fn kafka_reading_a_failed_send_is_g1a() {
    let types = kafka_types(vec![
        send(0, 0, 1, OpType::Fail, None),
        poll(10, 1, json!([[0, 1]])),
    ]);
    assert_eq!(types, ["G1a"]);
}

#[test]
fn kafka_reading_a_message_sent_after_the_poll_is_g1c_realtime() {
    let types = kafka_types(vec![
        poll(0, 1, json!([[0, 1]])),
        send(10, 0, 1, OpType::Ok, Some(0)),
    ]);
    assert_eq!(types, ["G1c-realtime"]);
}

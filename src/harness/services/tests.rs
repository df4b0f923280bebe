//! The services against Maelstrom's semantics (`service.clj`, and `service_test.clj` for
//! seq-kv), on seeded RNGs, then one on the network with latency.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde_json::{Map, Value, json};
use tokio::io::{AsyncBufReadExt, BufReader};

use super::{KvState, LwwKv, SeqKv, Service, Services, Tso};
use crate::harness::net::{Latency, LatencyDist, NetLogging, Network};
use crate::harness::schedule::Cursor;

fn body(value: Value) -> Map<String, Value> {
    value.as_object().cloned().unwrap_or_default()
}

fn lin_kv() -> Service {
    Service::named("lin-kv", 0).expect("a known service")
}

fn code(reply: &Map<String, Value>) -> Option<i64> {
    reply.get("code").and_then(Value::as_i64)
}

#[test]
fn lin_kv_reads_writes_and_cas_as_maelstrom() {
    let mut kv = lin_kv();
    let mut call = |request: Value| kv.handle("n0", &body(request)).expect("a reply");
    assert_eq!(code(&call(json!({"type": "read", "key": "x"}))), Some(20));
    assert_eq!(
        call(json!({"type": "write", "key": "x", "value": 1}))["type"],
        "write_ok"
    );
    assert_eq!(call(json!({"type": "read", "key": "x"}))["value"], 1);
    let wrong = call(json!({"type": "cas", "key": "x", "from": 2, "to": 3}));
    assert_eq!(code(&wrong), Some(22));
    assert_eq!(wrong["text"], "current value 1 is not 2");
    assert_eq!(
        code(&call(
            json!({"type": "cas", "key": "y", "from": 0, "to": 1})
        )),
        Some(20)
    );
    // Clojure truthiness: 0 counts as true.
    let created =
        call(json!({"type": "cas", "key": "y", "from": 9, "to": 5, "create_if_not_exists": 0}));
    assert_eq!(created["type"], "cas_ok");
    assert_eq!(call(json!({"type": "read", "key": "y"}))["value"], 5);
    // An integer never equals a float.
    call(json!({"type": "write", "key": "f", "value": 1.0}));
    assert_eq!(
        code(&call(
            json!({"type": "cas", "key": "f", "from": 1, "to": 2})
        )),
        Some(22)
    );
    // Keys are any JSON, compared structurally; a missing key field is the key null.
    call(json!({"type": "write", "key": {"a": 1, "b": [2]}, "value": "obj"}));
    assert_eq!(
        call(json!({"type": "read", "key": {"b": [2], "a": 1}}))["value"],
        "obj"
    );
    call(json!({"type": "write", "value": "nil-key"}));
    assert_eq!(
        call(json!({"type": "read", "key": null}))["value"],
        "nil-key"
    );
}

#[test]
fn an_unknown_type_gets_no_reply_and_changes_nothing() {
    let mut kv = lin_kv();
    kv.handle(
        "n0",
        &body(json!({"type": "write", "key": "x", "value": 1})),
    );
    assert_eq!(kv.handle("n0", &body(json!({"type": "ts"}))), None);
    assert_eq!(
        kv.handle("n0", &body(json!({"type": "delete", "key": "x"}))),
        None
    );
    assert_eq!(
        kv.handle("n0", &body(json!({"type": "read", "key": "x"})))
            .map(|r| r["value"].clone()),
        Some(json!(1))
    );
    for id in ["seq-kv", "lww-kv", "lin-tso"] {
        let mut service = Service::named(id, 1).expect("a known service");
        let unknown = if id == "lin-tso" { "read" } else { "ts" };
        assert_eq!(
            service.handle("n0", &body(json!({"type": unknown, "key": "x"}))),
            None,
            "{id}"
        );
    }
}

#[test]
fn lin_tso_counts_from_zero_across_callers() {
    let mut tso = Tso::default();
    let ts: Vec<Value> = (0..3)
        .map(|_| tso.handle(&body(json!({"type": "ts"}))).expect("ts_ok")["ts"].clone())
        .collect();
    assert_eq!(ts, [json!(0), json!(1), json!(2)]);
}

/// A seq-kv where `writer` wrote x = 0..count (versions 1..=count).
fn seq_kv_with_writes(seed: u64, count: i64) -> SeqKv {
    let mut kv = SeqKv::new(super::RING_CAPACITY, seed);
    for value in 0..count {
        kv.handle(
            "writer",
            &body(json!({"type": "write", "key": "x", "value": value})),
        );
    }
    assert_eq!(kv.last_version(), count as u64);
    kv
}

fn read_x(kv: &mut SeqKv, src: &str) -> Value {
    let reply = kv
        .handle(src, &body(json!({"type": "read", "key": "x"})))
        .expect("a reply");
    reply.get("value").cloned().unwrap_or(json!("missing"))
}

#[test]
fn seq_kv_fresh_readers_see_different_versions() {
    let mut kv = seq_kv_with_writes(1, 8);
    let seen: BTreeSet<String> = (0..64)
        .map(|r| read_x(&mut kv, &format!("r{r}")).to_string())
        .collect();
    assert!(seen.len() >= 2, "{seen:?}");
}

#[test]
fn seq_kv_a_fresh_write_makes_the_next_read_current() {
    for trial in 0..8 {
        let mut kv = seq_kv_with_writes(10 + trial, 8);
        kv.handle(
            "r",
            &body(json!({"type": "write", "key": "scratch", "value": trial})),
        );
        assert_eq!(read_x(&mut kv, "r"), json!(7));
    }
}

#[test]
fn seq_kv_repeated_reads_converge_to_the_newest() {
    for trial in 0..8 {
        let mut kv = seq_kv_with_writes(20 + trial, 8);
        let reads = (1..=160).find(|_| read_x(&mut kv, "r") == json!(7));
        assert!(reads.is_some(), "trial {trial} never saw 7");
    }
}

#[test]
fn seq_kv_stale_cas_fails_and_no_op_cas_succeeds_on_a_stale_version() {
    let mut kv = seq_kv_with_writes(3, 8);
    let replies: Vec<Map<String, Value>> = (0..64)
        .map(|r| {
            kv.handle(
                &format!("r{r}"),
                &body(json!({"type": "cas", "key": "x", "from": 7, "to": 7})),
            )
            .expect("a reply")
        })
        .collect();
    assert!(replies.iter().any(|reply| code(reply) == Some(22)));
    assert_eq!(kv.newest().get(&json!("x")), Some(&json!(7)));
    let stale_ok = (0..64).any(|r| {
        let reply = kv
            .handle(
                &format!("s{r}"),
                &body(json!({"type": "cas", "key": "x", "from": 3, "to": 3})),
            )
            .expect("a reply");
        reply["type"] == "cas_ok"
    });
    assert!(stale_ok, "a no-op cas can succeed on a stale version");
    assert_eq!(kv.newest().get(&json!("x")), Some(&json!(7)));
}

#[test]
fn seq_kv_a_write_equal_to_a_stale_value_is_ordered_into_the_past() {
    let lost = (0..64).any(|trial| {
        let mut kv = seq_kv_with_writes(100 + trial, 8);
        let reply = kv
            .handle("r", &body(json!({"type": "write", "key": "x", "value": 3})))
            .expect("a reply");
        reply["type"] == "write_ok" && kv.last_version() == 8
    });
    assert!(lost);
}

#[test]
fn seq_kv_a_cas_that_fails_on_the_newest_still_adds_a_version() {
    let added = (0..64).any(|trial| {
        let mut kv = seq_kv_with_writes(200 + trial, 8);
        let reply = kv
            .handle(
                "r",
                &body(json!({"type": "cas", "key": "x", "from": 5, "to": 9})),
            )
            .expect("a reply");
        code(&reply) == Some(22) && kv.last_version() == 9
    });
    assert!(added);
}

#[test]
fn seq_kv_a_reader_far_behind_sees_the_ring_wrap_and_goes_backwards() {
    let mut kv = seq_kv_with_writes(5, 80);
    let backwards = (0..20).any(|reader| {
        let src = format!("far{reader}");
        let values: Vec<i64> = (0..10)
            .filter_map(|_| read_x(&mut kv, &src).as_i64())
            .collect();
        values.windows(2).any(|pair| pair[1] < pair[0])
    });
    assert!(
        backwards,
        "a lagging reader saw an older version after a newer one"
    );
}

#[test]
fn lww_kv_never_converges() {
    let mut kv = LwwKv::new(9);
    kv.handle(&body(json!({"type": "write", "key": "k", "value": 1})));
    let missing: Vec<bool> = (0..1000)
        .map(|_| {
            let reply = kv
                .handle(&body(json!({"type": "read", "key": "k"})))
                .expect("a reply");
            code(&reply) == Some(20)
        })
        .collect();
    let count = missing.iter().filter(|&&m| m).count();
    assert!((350..=650).contains(&count), "{count} of 1000 reads missed");
    assert!(
        missing[800..].iter().any(|&m| m),
        "still missing at the end"
    );
    // cas ignores create_if_not_exists.
    let reply = kv
        .handle(&body(
            json!({"type": "cas", "key": "new", "from": 0, "to": 1, "create_if_not_exists": true}),
        ))
        .expect("a reply");
    assert_eq!(code(&reply), Some(20));
}

#[test]
fn kv_state_equality_is_structural() {
    let state = KvState::default();
    let applied = state
        .apply(&body(json!({"type": "write", "key": "x", "value": [1, 2]})))
        .expect("write");
    let next = applied.changed.expect("a new key changes the state");
    let again = next
        .apply(&body(json!({"type": "write", "key": "x", "value": [1, 2]})))
        .expect("write");
    assert!(
        again.changed.is_none(),
        "writing the same value is no change"
    );
}

fn network(latency_ms: u64) -> Arc<Network> {
    Network::new(
        Latency::new(latency_ms, LatencyDist::Constant, 1),
        NetLogging::default(),
    )
}

#[tokio::test(start_paused = true)]
async fn a_service_rpc_takes_two_delays_and_two_server_messages() {
    let network = network(100);
    let services = Services::start(&network, 7);
    let (inbox, node_side) = tokio::io::duplex(1 << 16);
    tokio::spawn(network.register_server("n0", inbox));
    let mut lines = BufReader::new(node_side).lines();
    let start = tokio::time::Instant::now();
    network
        .send(
            "n0",
            "seq-kv",
            body(json!({"type": "write", "key": "c", "value": 3, "msg_id": 7})),
        )
        .expect("seq-kv is registered");
    let line = lines.next_line().await.ok().flatten().unwrap_or_default();
    let reply: Value = serde_json::from_str(&line).unwrap_or(Value::Null);
    assert_eq!(start.elapsed(), Duration::from_millis(200));
    assert_eq!(reply["src"], "seq-kv");
    assert_eq!(reply["body"], json!({"type": "write_ok", "in_reply_to": 7}));
    let stats = network.stats();
    assert_eq!(stats.servers.send_count, 2);
    assert_eq!(stats.servers.recv_count, 2);
    assert_eq!(stats.clients.send_count, 0);

    // Unknown type: silence; the next request is still answered.
    network
        .send("n0", "lin-kv", body(json!({"type": "ts", "msg_id": 8})))
        .expect("lin-kv is registered");
    network
        .send("n0", "lin-tso", body(json!({"type": "ts", "msg_id": 9})))
        .expect("lin-tso is registered");
    let line = lines.next_line().await.ok().flatten().unwrap_or_default();
    let reply: Value = serde_json::from_str(&line).unwrap_or(Value::Null);
    assert_eq!(
        reply["body"],
        json!({"type": "ts_ok", "ts": 0, "in_reply_to": 9})
    );
    services.stop();
    assert!(network.send("n0", "lin-kv", Map::new()).is_err());
}

#[test]
fn the_same_seed_serves_the_same_versions_and_another_seed_does_not() {
    let replies = |seed: u64| -> Vec<Value> {
        let mut kv = seq_kv_with_writes(seed, 8);
        let mut lww = LwwKv::new(seed);
        lww.handle(&body(json!({"type": "write", "key": "k", "value": 1})));
        (0..64)
            .flat_map(|r| {
                let lww_reply = lww
                    .handle(&body(json!({"type": "read", "key": "k"})))
                    .map_or(Value::Null, Value::Object);
                [read_x(&mut kv, &format!("r{r}")), lww_reply]
            })
            .collect()
    };
    assert_eq!(replies(42), replies(42));
    assert_ne!(replies(42), replies(43));
}

/// One g-counter run of the G5 fixture design against `kv`, with every op instantaneous: each
/// node writes its own count to its own key, and reads sum every key (its own first) with plain
/// reads. Ops follow Maelstrom's mix (an add of 0..=4 with probability 1/3, else a read) and
/// Jepsen's thread cursor (n0 twice in every cycle of four). Returns whether some node's final
/// read missed an add.
fn per_node_plain_run(kv: &mut SeqKv, rng: &mut impl Rng, ops: usize) -> bool {
    let nodes = ["n0", "n1", "n2"];
    let mut counts = [0i64; 3];
    let mut cursor = Cursor::new(nodes.len());
    let sum_from = |kv: &mut SeqKv, node: usize| -> i64 {
        let order = std::iter::once(node).chain((0..nodes.len()).filter(|&m| m != node));
        order
            .map(|m| {
                let request = body(json!({"type": "read", "key": nodes[m]}));
                let reply = kv.handle(nodes[node], &request).expect("a reply");
                reply.get("value").and_then(Value::as_i64).unwrap_or(0)
            })
            .sum()
    };
    for _ in 0..ops {
        let node = cursor.pick(|_| true).expect("a free thread");
        cursor.advance();
        if rng.random_range(0..3) == 0 {
            counts[node] += rng.random_range(0..=4);
            let request = body(json!({"type": "write", "key": nodes[node], "value": counts[node]}));
            kv.handle(nodes[node], &request);
        } else {
            sum_from(kv, node);
        }
    }
    let total: i64 = counts.iter().sum();
    (0..nodes.len()).any(|node| sum_from(kv, node) != total)
}

/// Why G5 (tests/harness_kv.rs) is invalid in only about a fifth of its runs, not in most:
/// every plain read moves its node's version forward, so a final read can only miss adds
/// written in the last few versions before the final phase. This pins that rate for our seq-kv
/// in the end-to-end test's shape (3 nodes, about 100 ops): 1000 seeded runs give 0.198, which
/// the end-to-end test's bound relies on. A seq-kv that always served the newest version would
/// give 0; one that lost a node's last-served version (a fresh requester per request) would
/// give far more. The range is 4 standard deviations (0.013 at p = 0.2) either side.
#[test]
fn seq_kv_plain_reads_of_per_node_keys_are_stale_at_the_end_in_about_a_fifth_of_runs() {
    let runs = 1000;
    let stale = (0..runs)
        .filter(|&seed| {
            let mut kv = SeqKv::new(super::RING_CAPACITY, seed);
            let mut rng = ChaCha8Rng::seed_from_u64(seed.wrapping_add(1 << 32));
            per_node_plain_run(&mut kv, &mut rng, 100)
        })
        .count();
    let rate = stale as f64 / runs as f64;
    assert!(
        (0.15..=0.27).contains(&rate),
        "{stale} of {runs} runs stale"
    );
}

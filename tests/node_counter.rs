//! The grow-only counter (Gossip Glomers 4) on an in-test seq-kv that serves stale versions, on
//! tokio's paused clock: partitions between nodes do not matter (services are never cut off),
//! stale reads do not reach a read made after a quiet period, and adds are acknowledged only
//! once seq-kv has them.
#![cfg(feature = "node")]

mod node_support;

use std::collections::BTreeSet;
use std::time::Duration;

use node_support::kv::Services;
use node_support::{Cluster, Node};
use serde_json::json;
use sluicegate::node::NodeConfig;
use tokio::time::sleep;

/// Longer than the node's refresh period: the quiet before Maelstrom's final reads is 10 s.
const QUIET: Duration = Duration::from_secs(10);

async fn add(cluster: &mut Cluster, node: &str, delta: i64) {
    let reply = cluster
        .call(node, json!({"type": "add", "delta": delta}))
        .await;
    assert_eq!(reply["type"], "add_ok", "{reply}");
}

async fn read(cluster: &mut Cluster, node: &str) -> i64 {
    let reply = cluster.call(node, json!({"type": "read"})).await;
    assert_eq!(reply["type"], "read_ok", "{reply}");
    let keys: BTreeSet<&str> = reply
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    assert_eq!(
        keys,
        BTreeSet::from(["in_reply_to", "msg_id", "type", "value"])
    );
    reply["value"].as_i64().unwrap()
}

#[test]
fn the_test_seq_kv_serves_stale_reads_until_a_write_moves_the_reader_on() {
    let mut services = Services::new(7);
    for value in 0..8 {
        let write = json!({"type": "write", "key": "x", "value": value, "msg_id": 1});
        services.handle("seq-kv", "w", &write).unwrap();
    }
    let read = json!({"type": "read", "key": "x", "msg_id": 2});
    let values: BTreeSet<String> = (0..64)
        .map(|reader| {
            let reply = services
                .handle("seq-kv", &format!("r{reader}"), &read)
                .unwrap();
            reply["value"].to_string()
        })
        .collect();
    assert!(
        values.len() > 1,
        "fresh readers see stale versions: {values:?}"
    );
    let scratch = json!({"type": "write", "key": "fresh", "value": 1, "msg_id": 3});
    services.handle("seq-kv", "late", &scratch).unwrap();
    assert_eq!(
        services.handle("seq-kv", "late", &read).unwrap()["value"],
        7
    );
}

#[tokio::test(start_paused = true)]
async fn every_node_reads_the_sum_of_all_adds_after_a_partition_heals() {
    for seed in 1..=8 {
        let latency = Duration::from_millis(5);
        let mut cluster = Cluster::start_seeded(3, NodeConfig::default(), latency, seed).await;
        let ids = cluster.ids();
        let mut total = 0;
        cluster.partition(&["n0"]);
        for round in 0..30_i64 {
            let node = &ids[round as usize % 3];
            let delta = round % 5;
            add(&mut cluster, node, delta).await;
            total += delta;
            // Main-phase reads may lag; they never exceed what was added.
            let seen = read(&mut cluster, &ids[(round as usize + 1) % 3]).await;
            assert!(seen <= total, "seed {seed}: read {seen} > {total}");
            sleep(Duration::from_millis(37)).await;
        }
        cluster.heal();
        sleep(QUIET).await;
        for id in &ids {
            assert_eq!(read(&mut cluster, id).await, total, "seed {seed}, {id}");
        }
    }
}

#[tokio::test(start_paused = true)]
async fn reads_within_the_refresh_period_cost_no_service_call() {
    let mut cluster = Cluster::start(3, NodeConfig::default(), Duration::ZERO).await;
    add(&mut cluster, "n1", 4).await;
    let after_add = cluster.service_messages();
    assert_eq!(after_add, 2, "one write, one reply");
    assert_eq!(read(&mut cluster, "n0").await, 4);
    let after_refresh = cluster.service_messages();
    assert_eq!(after_refresh - after_add, 6, "scratch write and two reads");
    for _ in 0..10 {
        assert_eq!(read(&mut cluster, "n0").await, 4);
    }
    assert_eq!(cluster.service_messages(), after_refresh);
}

#[tokio::test(start_paused = true)]
async fn a_single_node_counts_alone_with_no_service_call() {
    let mut node = Node::started(NodeConfig::default(), "n0", &["n0"]).await;
    for (msg_id, delta) in [(2, 3), (3, 0), (4, 4)] {
        let reply = node
            .call(
                "c1",
                json!({"type": "add", "msg_id": msg_id, "delta": delta}),
            )
            .await;
        assert_eq!(reply["type"], "add_ok");
    }
    let reply = node.call("c1", json!({"type": "read", "msg_id": 5})).await;
    assert_eq!(reply["value"], 7);
    node.finish().await;
}

/// A challenge-4-like load: three nodes, 100 operations a second for 20 s (a third adds of 0 to
/// 4, the rest reads, on random nodes), n0 cut off from the others for the middle 10 s, then
/// heal, 10 s of quiet and one final read per node. Every final read is the sum of the adds;
/// reports the service messages per operation (Maelstrom's `:servers` msgs-per-op; published
/// valid runs show 2.79).
#[tokio::test(start_paused = true)]
async fn a_challenge_4_like_load_ends_exact_and_costs_few_service_messages() {
    let mut cluster = Cluster::start_seeded(3, NodeConfig::default(), Duration::ZERO, 4).await;
    let ids = cluster.ids();
    let mut rng: u64 = 0x4444_4444;
    let mut next = move |bound: u64| {
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        rng % bound
    };
    let (mut total, mut operations) = (0, 0_u64);
    for tick in 0..2000 {
        if tick == 500 {
            cluster.partition(&["n0"]);
        }
        if tick == 1500 {
            cluster.heal();
        }
        sleep(Duration::from_millis(10)).await;
        let node = ids[next(3) as usize].clone();
        operations += 1;
        if next(3) == 0 {
            let delta = next(5) as i64;
            add(&mut cluster, &node, delta).await;
            total += delta;
        } else {
            read(&mut cluster, &node).await;
        }
    }
    sleep(QUIET).await;
    for id in &ids {
        operations += 1;
        assert_eq!(read(&mut cluster, id).await, total, "{id}");
    }
    let messages = cluster.service_messages();
    let (between_nodes, _) = cluster.sent_and_dropped();
    assert_eq!(
        between_nodes, 0,
        "the counter never talks to its peers directly"
    );
    let per_operation = messages as f64 / operations as f64;
    println!(
        "challenge-4-like load: {operations} operations, {messages} service messages: \
         {per_operation:.3} servers messages per operation"
    );
    assert!(per_operation < 1.5, "{per_operation}");
}

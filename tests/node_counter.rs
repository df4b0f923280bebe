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

//! The Kafka-style log (Gossip Glomers 5a-5c) on one node and on clusters, on tokio's paused
//! clock: offsets unique and gap-free per key, polls without gaps from any offset, commits that
//! round-trip and spread, sends forwarded across a partition once it heals, and the messages per
//! operation of a 5c-like load.
#![cfg(feature = "node")]

mod node_support;

use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use node_support::{Cluster, Node, keys};
use serde_json::{Value, json};
use sluicegate::node::NodeConfig;
use tokio::time::sleep;

/// Longer than the replication linger plus a retry.
const SETTLE: Duration = Duration::from_millis(1500);

fn pairs(value: &Value) -> Vec<(u64, i64)> {
    value
        .as_array()
        .map(|pairs| {
            pairs
                .iter()
                .map(|pair| (pair[0].as_u64().unwrap(), pair[1].as_i64().unwrap()))
                .collect()
        })
        .unwrap_or_default()
}

async fn send(cluster: &mut Cluster, node: &str, key: &str, msg: i64) -> u64 {
    let reply = cluster
        .call(node, json!({"type": "send", "key": key, "msg": msg}))
        .await;
    assert_eq!(reply["type"], "send_ok", "{reply}");
    assert_eq!(keys(&reply), ["in_reply_to", "msg_id", "offset", "type"]);
    reply["offset"].as_u64().unwrap()
}

async fn poll(cluster: &mut Cluster, node: &str, offsets: Value) -> Value {
    let reply = cluster
        .call(node, json!({"type": "poll", "offsets": offsets}))
        .await;
    assert_eq!(reply["type"], "poll_ok", "{reply}");
    reply["msgs"].clone()
}

#[tokio::test(start_paused = true)]
async fn a_single_node_logs_polls_and_commits_in_memory() {
    let mut node = Node::started(NodeConfig::default(), "n0", &["n0"]).await;
    let mut msg_id = 1;
    let mut call = async |node: &mut Node, body: Value| {
        msg_id += 1;
        let mut body = body;
        body["msg_id"] = json!(msg_id);
        node.call("c1", body).await
    };
    for (key, msg, offset) in [("0", 1, 0), ("0", 2, 1), ("1", 1, 0), ("0", 3, 2)] {
        let reply = call(&mut node, json!({"type": "send", "key": key, "msg": msg})).await;
        assert_eq!(reply["offset"], offset, "{reply}");
    }
    let reply = call(
        &mut node,
        json!({"type": "poll", "offsets": {"0": 1, "1": 0, "2": 0}}),
    )
    .await;
    assert_eq!(keys(&reply), ["in_reply_to", "msg_id", "msgs", "type"]);
    assert_eq!(reply["msgs"], json!({"0": [[1, 2], [2, 3]], "1": [[0, 1]]}));
    let reply = call(
        &mut node,
        json!({"type": "commit_offsets", "offsets": {"0": 2, "1": 0}}),
    )
    .await;
    assert_eq!(reply["type"], "commit_offsets_ok");
    let reply = call(
        &mut node,
        json!({"type": "commit_offsets", "offsets": {"0": 1}}),
    )
    .await;
    assert_eq!(reply["type"], "commit_offsets_ok");
    let reply = call(
        &mut node,
        json!({"type": "list_committed_offsets", "keys": ["0", "1", "2"]}),
    )
    .await;
    assert_eq!(keys(&reply), ["in_reply_to", "msg_id", "offsets", "type"]);
    assert_eq!(
        reply["offsets"],
        json!({"0": 2, "1": 0}),
        "commits only grow"
    );
    assert_eq!(
        node.recv_within(SETTLE).await,
        None,
        "a single node talks to nobody"
    );
    node.finish().await;
}

#[tokio::test(start_paused = true)]
async fn two_nodes_share_one_offset_sequence_per_key_and_every_node_polls_it_all() {
    let mut cluster = Cluster::start(2, NodeConfig::default(), Duration::from_millis(5)).await;
    let mut expected: BTreeMap<String, Vec<(u64, i64)>> = BTreeMap::new();
    for round in 0..24_i64 {
        let node = if round % 3 == 0 { "n1" } else { "n0" };
        let key = (round % 4).to_string();
        let msg = round + 100;
        let offset = send(&mut cluster, node, &key, msg).await;
        let log = expected.entry(key).or_default();
        assert_eq!(
            offset,
            log.len() as u64,
            "offsets are dense and in send order"
        );
        log.push((offset, msg));
    }
    sleep(SETTLE).await;
    let from_zero = json!({"0": 0, "1": 0, "2": 0, "3": 0});
    for node in ["n0", "n1"] {
        let msgs = poll(&mut cluster, node, from_zero.clone()).await;
        for (key, log) in &expected {
            assert_eq!(&pairs(&msgs[key]), log, "{node} key {key}");
        }
        let tail = poll(&mut cluster, node, json!({"2": 4})).await;
        assert_eq!(pairs(&tail["2"]), expected["2"][4..], "{node}");
    }
    let reply = cluster
        .call("n0", json!({"type": "commit_offsets", "offsets": {"1": 3}}))
        .await;
    assert_eq!(reply["type"], "commit_offsets_ok");
    sleep(SETTLE).await;
    let reply = cluster
        .call(
            "n1",
            json!({"type": "list_committed_offsets", "keys": ["1", "3"]}),
        )
        .await;
    assert_eq!(
        reply["offsets"],
        json!({"1": 3}),
        "commits spread to the other node"
    );
}

#[tokio::test(start_paused = true)]
async fn a_forwarded_send_whose_replies_are_lost_lands_once_when_the_partition_heals() {
    let mut cluster = Cluster::start(2, NodeConfig::default(), Duration::from_millis(5)).await;
    // Key "1" is led by n1. Nothing from n1 reaches n0: n1's replication and its replies to
    // n0's forwarded send are lost, so n0 sends that forward again and again, and n1 must
    // append it only once.
    cluster.cut_one_way("n1", "n0");
    assert_eq!(send(&mut cluster, "n1", "1", 10).await, 0);
    let pending = cluster.request("n0", json!({"type": "send", "key": "1", "msg": 11}));
    sleep(Duration::from_millis(1200)).await;
    let during = poll(&mut cluster, "n0", json!({"1": 0})).await;
    assert_eq!(during, json!({}), "n0 has nothing of key 1 yet");
    cluster.heal();
    let reply = cluster.reply().await;
    assert_eq!(reply["body"]["in_reply_to"], pending);
    assert_eq!(reply["body"]["offset"], 1, "{reply}");
    assert_eq!(
        send(&mut cluster, "n0", "1", 12).await,
        2,
        "the retry did not append twice"
    );
    sleep(SETTLE).await;
    for node in ["n0", "n1"] {
        let msgs = poll(&mut cluster, node, json!({"1": 0})).await;
        assert_eq!(pairs(&msgs["1"]), [(0, 10), (1, 11), (2, 12)], "{node}");
    }
}

/// A small deterministic generator (xorshift64*).
struct Rng(u64);

impl Rng {
    fn below(&mut self, bound: u64) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d) % bound
    }
}

/// A 5c-like load on two nodes: about 800 operations a second, half sends (each key takes 16
/// messages, then a fresh key replaces it) and half polls of every key the client knows, each
/// poll that returned messages followed by a commit, as Maelstrom's client does. Checks every
/// send's offset against a final poll of every key on both nodes, and reports the node-to-node
/// messages per operation (Maelstrom's `:servers` msgs-per-op, whose published 5c figures are
/// 5.25 to 6.45).
#[tokio::test(start_paused = true)]
async fn a_5c_like_load_costs_few_messages_per_operation() {
    let mut cluster = Cluster::start(2, NodeConfig::default(), Duration::ZERO).await;
    let mut rng = Rng(0x5c5c_5c5c);
    let mut active: Vec<(u64, i64)> = (0..10).map(|key| (key, 0)).collect();
    let mut next_key = 10;
    let mut sent: HashMap<String, BTreeMap<u64, i64>> = HashMap::new();
    let mut positions: [BTreeMap<String, u64>; 2] = Default::default();
    let nodes = ["n0", "n1"];
    let mut operations = 0_u64;
    for _ in 0..8000 {
        sleep(Duration::from_micros(1250)).await;
        let client = rng.below(2) as usize;
        let node = nodes[client];
        operations += 1;
        let slot = rng.below(active.len() as u64) as usize;
        if rng.below(2) == 0 {
            let (key, written) = &mut active[slot];
            *written += 1;
            let (key, msg) = (key.to_string(), *written);
            positions[client].entry(key.clone()).or_insert(0);
            let offset = send(&mut cluster, node, &key, msg).await;
            let previous = sent.entry(key.clone()).or_default().insert(offset, msg);
            assert_eq!(previous, None, "offset {offset} of key {key} given twice");
            if msg == 16 {
                active[slot] = (next_key, 0);
                next_key += 1;
            }
            continue;
        }
        let offsets = json!(positions[client]);
        let msgs = poll(&mut cluster, node, offsets).await;
        let mut commits = BTreeMap::new();
        for (key, entries) in msgs.as_object().unwrap() {
            let entries = pairs(entries);
            let from = positions[client][key];
            let expected_offsets: Vec<u64> = (from..from + entries.len() as u64).collect();
            let offsets: Vec<u64> = entries.iter().map(|(offset, _)| *offset).collect();
            assert_eq!(
                offsets, expected_offsets,
                "a poll starts at its offset, with no gap"
            );
            let last = entries.last().unwrap().0;
            positions[client].insert(key.clone(), last + 1);
            commits.insert(key.clone(), last);
        }
        if !commits.is_empty() {
            let reply = cluster
                .call(node, json!({"type": "commit_offsets", "offsets": commits}))
                .await;
            assert_eq!(reply["type"], "commit_offsets_ok");
        }
    }
    let (node_messages, _) = cluster.sent_and_dropped();
    let service_messages = cluster.service_messages();
    sleep(SETTLE).await;
    let everything: BTreeMap<&String, u64> = sent.keys().map(|key| (key, 0)).collect();
    for node in nodes {
        let msgs = poll(&mut cluster, node, json!(everything)).await;
        for (key, log) in &sent {
            let polled: BTreeMap<u64, i64> = pairs(&msgs[key]).into_iter().collect();
            assert_eq!(&polled, log, "{node} key {key}: every send, at its offset");
        }
    }
    let per_operation = (node_messages + service_messages) as f64 / operations as f64;
    println!(
        "5c-like load: {operations} operations, {node_messages} node-to-node and \
         {service_messages} service messages: {per_operation:.3} servers messages per operation"
    );
    assert!(per_operation < 1.0, "{per_operation}");
}

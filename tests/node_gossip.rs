//! Gossip on one node whose peers the test plays, on tokio's paused clock: who gets what, when,
//! batching, dedup, acknowledgements and retries. Timing is virtual and exact.
#![cfg(feature = "node")]

mod node_support;

use std::time::Duration;

use node_support::Node;
use serde_json::{Value, json};
use sluicegate::node::{NodeConfig, Profile};
use tokio::time::Instant;

const IDS: [&str; 4] = ["n0", "n1", "n2", "n3"];

fn efficient() -> NodeConfig {
    NodeConfig {
        linger: Duration::from_millis(300),
        forward_linger: Duration::ZERO,
        retry_after: Duration::from_secs(3),
        ack_delay: Duration::from_secs(2),
        ..NodeConfig::for_profile(Profile::Efficient)
    }
}

fn fast() -> NodeConfig {
    NodeConfig {
        linger: Duration::from_millis(30),
        retry_after: Duration::from_secs(4),
        ack_delay: Duration::from_secs(3),
        ..NodeConfig::for_profile(Profile::Fast)
    }
}

async fn broadcast(node: &mut Node, msg_id: u64, value: i64) {
    let dest = node.me().to_owned();
    node.send(json!({"src": "c1", "dest": dest,
                     "body": {"type": "broadcast", "msg_id": msg_id, "message": value}}))
        .await;
}

fn gossip(src: &str, dest: &str, body: Value) -> Value {
    let mut body = body;
    body["type"] = json!("gossip");
    json!({"src": src, "dest": dest, "body": body})
}

/// Reads messages until `count` gossip messages came; replies to clients are skipped.
async fn next_gossip(node: &mut Node, count: usize) -> Vec<Value> {
    let mut gossip = Vec::new();
    while gossip.len() < count {
        let message = node.recv().await;
        if message["body"]["type"] == "gossip" {
            gossip.push(message);
        }
    }
    gossip
}

async fn assert_silent_for(node: &mut Node, wait: Duration) {
    if let Some(message) = node.recv_within(wait).await {
        panic!("expected silence, got {message}");
    }
}

#[tokio::test(start_paused = true)]
async fn a_leaf_acknowledges_a_broadcast_and_forwards_it_to_the_hub_at_once() {
    let mut leaf = Node::started(efficient(), "n2", &IDS).await;
    let started = Instant::now();
    broadcast(&mut leaf, 1, 10).await;
    let ack = leaf.recv().await;
    assert_eq!(ack["body"]["type"], "broadcast_ok");
    let sent = next_gossip(&mut leaf, 1).await;
    assert_eq!(
        started.elapsed(),
        Duration::ZERO,
        "no linger on the way to the hub"
    );
    assert_eq!(sent[0]["dest"], "n0");
    assert_eq!(
        sent[0]["body"],
        json!({"type": "gossip", "seq": [1, 1], "values": [10]})
    );
}

#[tokio::test(start_paused = true)]
async fn the_hub_batches_within_its_linger_and_never_sends_a_value_back_to_its_origin() {
    let mut hub = Node::started(efficient(), "n0", &IDS).await;
    let started = Instant::now();
    broadcast(&mut hub, 1, 1).await;
    hub.send(gossip("n1", "n0", json!({"seq": [1, 1], "values": [2]})))
        .await;
    broadcast(&mut hub, 2, 3).await;
    let mut sent = next_gossip(&mut hub, 3).await;
    assert_eq!(started.elapsed(), Duration::from_millis(300), "one linger");
    sent.sort_by_key(|message| message["dest"].as_str().unwrap().to_owned());
    let values: Vec<(&str, &Value)> = sent
        .iter()
        .map(|message| {
            (
                message["dest"].as_str().unwrap(),
                &message["body"]["values"],
            )
        })
        .collect();
    assert_eq!(
        values,
        [
            ("n1", &json!([1, 3])),
            ("n2", &json!([1, 2, 3])),
            ("n3", &json!([1, 2, 3]))
        ]
    );
    assert_eq!(
        sent[0]["body"]["ack"], 1,
        "n1's batch is acknowledged on the way"
    );
    assert_silent_for(&mut hub, Duration::from_secs(1)).await;
}

#[tokio::test(start_paused = true)]
async fn the_hub_relays_a_value_once_however_often_it_arrives() {
    let mut hub = Node::started(efficient(), "n0", &["n0", "n1", "n2"]).await;
    hub.send(gossip("n1", "n0", json!({"seq": [1, 1], "values": [5]})))
        .await;
    hub.send(gossip("n2", "n0", json!({"seq": [1, 1], "values": [5]})))
        .await;
    broadcast(&mut hub, 1, 5).await;
    assert_eq!(hub.recv().await["body"]["type"], "broadcast_ok");
    let sent = next_gossip(&mut hub, 1).await;
    assert_eq!(sent[0]["dest"], "n2");
    assert_eq!(sent[0]["body"]["values"], json!([5]));
    // n1 was the origin; n2 sent it too but learnt nothing new. Both get only acks later.
    let acks = next_gossip(&mut hub, 1).await;
    assert_eq!(acks[0]["dest"], "n1");
    assert_eq!(acks[0]["body"], json!({"type": "gossip", "ack": 1}));
    let report = hub.finish().await;
    let gossip = report.gossip.unwrap();
    assert_eq!((gossip.dedup.passed, gossip.dedup.duplicates), (1, 2));
}

#[tokio::test(start_paused = true)]
async fn nothing_is_sent_when_there_is_nothing_new() {
    let mut hub = Node::started(efficient(), "n0", &IDS).await;
    assert_silent_for(&mut hub, Duration::from_secs(60)).await;
    let mut fast_node = Node::started(fast(), "n1", &IDS).await;
    assert_silent_for(&mut fast_node, Duration::from_secs(60)).await;
}

#[tokio::test(start_paused = true)]
async fn unacknowledged_gossip_is_sent_again_after_the_retry_delay_until_acknowledged() {
    let mut leaf = Node::started(efficient(), "n1", &IDS).await;
    broadcast(&mut leaf, 1, 7).await;
    let first = next_gossip(&mut leaf, 1).await.remove(0);
    let sent_at = Instant::now();
    // The first copy is lost. Nothing goes out before the retry delay, then the same batch does.
    let again = next_gossip(&mut leaf, 1).await.remove(0);
    assert_eq!(sent_at.elapsed(), Duration::from_secs(3));
    assert_eq!(again["body"], first["body"]);
    // A new value goes out alone at once; the next retry covers every pending batch together.
    broadcast(&mut leaf, 2, 8).await;
    let second = next_gossip(&mut leaf, 1).await.remove(0);
    assert_eq!(second["body"]["seq"], json!([2, 2]));
    let resent_at = Instant::now();
    let both = next_gossip(&mut leaf, 1).await.remove(0);
    assert_eq!(resent_at.elapsed(), Duration::from_secs(3));
    assert_eq!(
        both["body"],
        json!({"type": "gossip", "seq": [1, 2], "values": [7, 8]})
    );
    // Acknowledged at last: silence.
    leaf.send(gossip("n0", "n1", json!({"ack": 2}))).await;
    assert_silent_for(&mut leaf, Duration::from_secs(60)).await;
    let report = leaf.finish().await;
    let hub_link = &report.gossip.unwrap().peers[0];
    assert_eq!(hub_link.peer, "n0");
    assert_eq!(hub_link.link.retransmissions, 2);
    assert_eq!(hub_link.unacknowledged, 0);
}

#[tokio::test(start_paused = true)]
async fn an_ack_rides_on_outgoing_gossip_or_goes_alone_after_the_ack_delay() {
    let mut leaf = Node::started(efficient(), "n1", &IDS).await;
    let received_at = Instant::now();
    leaf.send(gossip("n0", "n1", json!({"seq": [1, 1], "values": [4]})))
        .await;
    broadcast(&mut leaf, 1, 9).await;
    let forwarded = next_gossip(&mut leaf, 1).await.remove(0);
    assert_eq!(forwarded["body"]["ack"], 1, "piggybacked");

    leaf.send(gossip("n0", "n1", json!({"seq": [2, 2], "values": [5]})))
        .await;
    let bare = next_gossip(&mut leaf, 1).await.remove(0);
    assert_eq!(received_at.elapsed(), Duration::from_secs(2));
    assert_eq!(bare["body"], json!({"type": "gossip", "ack": 2}));
    // A repeat of an acknowledged batch means the ack was lost: it is sent again at once.
    let repeated_at = Instant::now();
    leaf.send(gossip("n0", "n1", json!({"seq": [1, 2], "values": [4, 5]})))
        .await;
    let again = next_gossip(&mut leaf, 1).await.remove(0);
    assert_eq!(repeated_at.elapsed(), Duration::ZERO);
    assert_eq!(again["body"], json!({"type": "gossip", "ack": 2}));
}

#[tokio::test(start_paused = true)]
async fn a_fast_node_sends_its_clients_values_to_every_peer_after_a_short_linger() {
    let mut node = Node::started(fast(), "n1", &IDS).await;
    let started = Instant::now();
    broadcast(&mut node, 1, 1).await;
    broadcast(&mut node, 2, 2).await;
    let mut sent = next_gossip(&mut node, 3).await;
    assert_eq!(started.elapsed(), Duration::from_millis(30));
    sent.sort_by_key(|message| message["dest"].as_str().unwrap().to_owned());
    for (message, dest) in sent.iter().zip(["n0", "n2", "n3"]) {
        assert_eq!(message["dest"], dest);
        assert_eq!(message["body"]["values"], json!([1, 2]));
    }
}

#[tokio::test(start_paused = true)]
async fn a_fast_node_does_not_relay_what_peers_sent_it_but_reads_return_it() {
    let mut node = Node::started(fast(), "n1", &IDS).await;
    node.send(gossip("n2", "n1", json!({"seq": [1, 1], "values": [6]})))
        .await;
    let reply = node.call("c1", json!({"type": "read", "msg_id": 3})).await;
    assert_eq!(reply["messages"], json!([6]));
    let ack = next_gossip(&mut node, 1).await.remove(0);
    assert_eq!(ack["dest"], "n2");
    assert_eq!(ack["body"], json!({"type": "gossip", "ack": 1}));
    assert_silent_for(&mut node, Duration::from_secs(60)).await;
}

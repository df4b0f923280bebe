//! The harness's network model (docs/harness.md §4), on tokio's paused clock: head-of-line
//! delivery, partitions decided at dequeue, zero delay for clients, and the journal's counts.

use std::sync::Arc;
use std::time::Duration;

use crate::harness::client::{Client, RpcError};
use crate::harness::net::{Cut, Latency, LatencyDist, NetLogging, Network};
use serde_json::{Map, Value, json};
use tokio::io::{AsyncBufReadExt, BufReader, DuplexStream};
use tokio::time::Instant;

fn network(latency_ms: u64) -> Arc<Network> {
    Network::new(
        Latency::new(latency_ms, LatencyDist::Constant, 1),
        NetLogging::default(),
    )
}

fn body(value: Value) -> Map<String, Value> {
    value.as_object().cloned().unwrap_or_default()
}

/// Registers server `id` and returns a reader of the lines delivered to it.
fn server(network: &Arc<Network>, id: &str) -> tokio::io::Lines<BufReader<DuplexStream>> {
    let (inbox, node_side) = tokio::io::duplex(1 << 16);
    tokio::spawn(network.register_server(id, inbox));
    BufReader::new(node_side).lines()
}

async fn next_delivery(lines: &mut tokio::io::Lines<BufReader<DuplexStream>>) -> Value {
    let line = lines.next_line().await.ok().flatten().unwrap_or_default();
    serde_json::from_str(&line).unwrap_or(Value::Null)
}

#[tokio::test(start_paused = true)]
async fn a_client_request_waits_behind_a_sleeping_server_message() {
    let network = network(100);
    let mut n1 = server(&network, "n1");
    let _n0 = server(&network, "n0");
    let start = Instant::now();
    network
        .send("n0", "n1", body(json!({"type": "gossip"})))
        .expect("n1 is registered");
    tokio::time::sleep(Duration::from_millis(10)).await;
    let (client, _inbox) = network.register_client();
    network
        .send(&client, "n1", body(json!({"type": "read"})))
        .expect("n1 is registered");

    let first = next_delivery(&mut n1).await;
    assert_eq!(first["body"]["type"], "gossip");
    assert_eq!(start.elapsed(), Duration::from_millis(100));
    let second = next_delivery(&mut n1).await;
    assert_eq!(
        second["body"]["type"], "read",
        "the 0-delay request waited for the head"
    );
    assert_eq!(start.elapsed(), Duration::from_millis(100));
}

#[tokio::test(start_paused = true)]
async fn every_delivery_carries_a_network_wide_id_first() {
    let network = network(0);
    let mut n0 = server(&network, "n0");
    network
        .send("n1", "n0", body(json!({"type": "a"})))
        .expect("registered");
    network
        .send("n1", "n0", body(json!({"type": "b"})))
        .expect("registered");
    let line = next_delivery(&mut n0).await;
    assert_eq!(
        line.to_string(),
        r#"{"id":0,"src":"n1","dest":"n0","body":{"type":"a"}}"#
    );
    assert_eq!(next_delivery(&mut n0).await["id"], 1);
}

#[tokio::test(start_paused = true)]
async fn a_partition_drops_at_dequeue_and_counts_the_message_as_sent_only() {
    let network = network(100);
    let mut n1 = server(&network, "n1");
    let cut: Cut = [("n1".to_string(), ["n0".to_string()].into())].into();
    network.grudge().add(&cut);
    network
        .send("n0", "n1", body(json!({"type": "lost"})))
        .expect("registered");
    tokio::task::yield_now().await;
    network.grudge().heal();
    network
        .send("n0", "n1", body(json!({"type": "kept"})))
        .expect("registered");
    assert_eq!(next_delivery(&mut n1).await["body"]["type"], "kept");
    let stats = network.stats();
    assert_eq!((stats.servers.send_count, stats.servers.recv_count), (2, 1));
    assert_eq!(stats.clients.send_count, 0);
}

#[tokio::test(start_paused = true)]
async fn a_message_that_passed_the_check_is_delivered_even_if_a_partition_starts_during_its_sleep()
{
    let network = network(100);
    let mut n1 = server(&network, "n1");
    network
        .send("n0", "n1", body(json!({"type": "in-flight"})))
        .expect("registered");
    tokio::time::sleep(Duration::from_millis(50)).await;
    let cut: Cut = [("n1".to_string(), ["n0".to_string()].into())].into();
    network.grudge().add(&cut);
    assert_eq!(next_delivery(&mut n1).await["body"]["type"], "in-flight");
}

#[tokio::test(start_paused = true)]
async fn clients_see_no_delay_and_drop_replies_to_other_requests() {
    let network = network(100);
    let (inbox, node_side) = tokio::io::duplex(1 << 16);
    tokio::spawn(network.register_server("n0", inbox));
    let echo_network = Arc::clone(&network);
    // A node that first answers a request that was never made, then the real one.
    tokio::spawn(async move {
        let mut lines = BufReader::new(node_side).lines();
        while let Ok(Some(line)) = lines.next_line().await {
            let request: Value = serde_json::from_str(&line).unwrap_or(Value::Null);
            let src = request["src"].as_str().unwrap_or_default().to_string();
            let msg_id = request["body"]["msg_id"].as_u64().unwrap_or_default();
            for in_reply_to in [msg_id + 100, msg_id] {
                let reply = body(json!({"type": "echo_ok", "in_reply_to": in_reply_to}));
                if echo_network.send("n0", &src, reply).is_err() {
                    return;
                }
            }
        }
    });
    let mut client = Client::open(&network);
    let start = Instant::now();
    let reply = client
        .rpc("n0", body(json!({"type": "echo"})), Duration::from_secs(5))
        .await;
    assert_eq!(reply.map(|r| r["in_reply_to"].clone()), Ok(json!(1)));
    assert_eq!(start.elapsed(), Duration::ZERO);
    let stats = network.stats();
    assert_eq!(stats.clients.send_count, 3);
    assert_eq!(
        stats.clients.recv_count, 3,
        "the stray reply was received, then dropped"
    );
}

#[tokio::test(start_paused = true)]
async fn a_closed_client_is_unknown_to_the_network_and_an_unanswered_rpc_times_out() {
    let network = network(0);
    let _n0 = server(&network, "n0");
    let mut client = Client::open(&network);
    let id = client.id().to_string();
    let timeout = Duration::from_secs(5);
    let reply = client
        .rpc("n0", body(json!({"type": "read"})), timeout)
        .await;
    assert_eq!(reply, Err(RpcError::Timeout(timeout)));
    drop(client);
    assert!(
        network
            .send("n0", &id, body(json!({"type": "late"})))
            .is_err()
    );
}

//! The node's protocol, one behaviour per test, through `tokio::io::duplex`: exact reply
//! schemas, errors 10 and 12 without stopping, messages before init, unique ids.
#![cfg(feature = "node")]

mod node_support;

use std::collections::HashSet;
use std::time::Duration;

use node_support::{Node, init, keys};
use serde_json::json;
use sluicegate::node::NodeConfig;

#[tokio::test(start_paused = true)]
async fn init_ok_answers_init() {
    let mut node = Node::start(NodeConfig::default());
    node.send(init("n0", &["n0"])).await;
    let reply = node.recv().await;
    assert_eq!(
        (&reply["src"], &reply["dest"]),
        (&json!("n0"), &json!("c0"))
    );
    assert_eq!(keys(&reply), ["body", "dest", "src"]);
    assert_eq!(keys(&reply["body"]), ["in_reply_to", "msg_id", "type"]);
    assert_eq!(reply["body"]["type"], "init_ok");
    assert_eq!(reply["body"]["in_reply_to"], 1);
}

#[tokio::test(start_paused = true)]
async fn every_workload_reply_has_exactly_its_schema_fields() {
    let mut node = Node::started(NodeConfig::default(), "n0", &["n0"]).await;
    let cases = [
        (
            json!({"type": "topology", "msg_id": 1, "topology": {"n0": []}}),
            "topology_ok",
            vec!["in_reply_to", "msg_id", "type"],
        ),
        (
            json!({"type": "broadcast", "msg_id": 2, "message": 7}),
            "broadcast_ok",
            vec!["in_reply_to", "msg_id", "type"],
        ),
        (
            json!({"type": "read", "msg_id": 3}),
            "read_ok",
            vec!["in_reply_to", "messages", "msg_id", "type"],
        ),
        (
            json!({"type": "echo", "msg_id": 4, "echo": "Please echo 35"}),
            "echo_ok",
            vec!["echo", "in_reply_to", "msg_id", "type"],
        ),
        (
            json!({"type": "generate", "msg_id": 5}),
            "generate_ok",
            vec!["id", "in_reply_to", "msg_id", "type"],
        ),
    ];
    for (request, reply_type, fields) in cases {
        let reply = node.call("c3", request).await;
        assert_eq!(reply["type"], reply_type);
        assert_eq!(keys(&reply), fields, "{reply}");
        assert!(reply["msg_id"].is_u64() && reply["in_reply_to"].is_u64());
    }
}

#[tokio::test(start_paused = true)]
async fn echo_returns_the_value_unchanged() {
    let mut node = Node::started(NodeConfig::default(), "n0", &["n0"]).await;
    let echo = json!({"nested": [1, 2.5, "x"]});
    let reply = node
        .call("c1", json!({"type": "echo", "msg_id": 9, "echo": echo}))
        .await;
    assert_eq!(reply["echo"], echo);
}

#[tokio::test(start_paused = true)]
async fn read_returns_every_value_known_each_once() {
    let mut node = Node::started(NodeConfig::default(), "n0", &["n0"]).await;
    for (msg_id, value) in [(1, 3), (2, 1), (3, 3)] {
        let reply = node
            .call(
                "c1",
                json!({"type": "broadcast", "msg_id": msg_id, "message": value}),
            )
            .await;
        assert_eq!(reply["type"], "broadcast_ok");
    }
    let reply = node.call("c1", json!({"type": "read", "msg_id": 4})).await;
    assert_eq!(reply["messages"], json!([3, 1]));
}

#[tokio::test(start_paused = true)]
async fn an_unknown_type_gets_error_10_and_the_node_keeps_serving() {
    let mut node = Node::started(NodeConfig::default(), "n0", &["n0"]).await;
    let reply = node
        .call("c1", json!({"type": "cas", "msg_id": 5, "key": 1}))
        .await;
    assert_eq!(reply["type"], "error");
    assert_eq!(reply["code"], 10);
    assert!(reply["text"].as_str().unwrap().contains("cas"));
    let reply = node.call("c1", json!({"type": "read", "msg_id": 6})).await;
    assert_eq!(reply["type"], "read_ok");
}

#[tokio::test(start_paused = true)]
async fn an_unknown_reply_is_not_answered() {
    let mut node = Node::started(NodeConfig::default(), "n0", &["n0"]).await;
    node.send(json!({"src": "n1", "dest": "n0",
                     "body": {"type": "cas_ok", "msg_id": 2, "in_reply_to": 4}}))
        .await;
    node.send(json!({"src": "n1", "dest": "n0",
                     "body": {"type": "error", "code": 10, "in_reply_to": 5}}))
        .await;
    assert_eq!(node.recv_within(Duration::from_secs(30)).await, None);
}

#[tokio::test(start_paused = true)]
async fn a_malformed_request_with_a_sender_and_msg_id_gets_error_12_and_the_node_keeps_serving() {
    let mut node = Node::started(NodeConfig::default(), "n0", &["n0"]).await;
    let reply = node
        .call(
            "c2",
            json!({"type": "broadcast", "msg_id": 8, "message": "seven"}),
        )
        .await;
    assert_eq!(
        (&reply["type"], &reply["code"]),
        (&json!("error"), &json!(12))
    );
    let reply = node
        .call(
            "c2",
            json!({"type": "broadcast", "msg_id": 9, "message": 7}),
        )
        .await;
    assert_eq!(reply["type"], "broadcast_ok");
}

#[tokio::test(start_paused = true)]
async fn a_line_that_names_no_sender_is_only_logged_and_the_node_keeps_serving() {
    let mut node = Node::started(NodeConfig::default(), "n0", &["n0"]).await;
    node.send_line("{this is not json").await;
    node.send_line(r#"{"dest":"n0","body":{"type":"read","msg_id":3}}"#)
        .await;
    node.send_line(r#"[1, 2]"#).await;
    let reply = node.call("c1", json!({"type": "read", "msg_id": 4})).await;
    assert_eq!(reply["type"], "read_ok", "the first reply is the read's");
    let report = node.finish().await;
    assert_eq!(report.counters.malformed, 3);
}

#[tokio::test(start_paused = true)]
async fn messages_before_init_are_kept_and_served_after_it() {
    let mut node = Node::start(NodeConfig::default());
    // A peer gossips before this node's init, and a client reads: neither is lost.
    node.send(json!({"src": "n1", "dest": "n0",
                     "body": {"type": "gossip", "seq": [1, 1], "values": [41, 42]}}))
        .await;
    node.send(json!({"src": "c7", "dest": "n0", "body": {"type": "read", "msg_id": 1}}))
        .await;
    assert_eq!(node.recv_within(Duration::from_secs(5)).await, None);
    node.send(init("n0", &["n0", "n1"])).await;
    assert_eq!(node.recv().await["body"]["type"], "init_ok");
    let read = node.recv().await;
    assert_eq!(read["dest"], "c7");
    assert_eq!(read["body"]["messages"], json!([41, 42]));
}

#[tokio::test(start_paused = true)]
async fn generated_ids_are_unique_across_nodes_and_restarts() {
    let mut ids = HashSet::new();
    for run in 0..2 {
        for me in ["n0", "n1"] {
            let mut node = Node::started(NodeConfig::default(), me, &["n0", "n1"]).await;
            for msg_id in 1..=50 {
                let reply = node
                    .call("c1", json!({"type": "generate", "msg_id": msg_id}))
                    .await;
                let id = reply["id"].as_str().unwrap().to_owned();
                assert!(
                    ids.insert(id.clone()),
                    "run {run}: {id} was generated twice"
                );
            }
            let _report = node.finish().await;
        }
    }
    assert_eq!(ids.len(), 200);
}

#[tokio::test(start_paused = true)]
async fn end_of_input_finishes_the_node_with_a_report() {
    let mut node = Node::started(NodeConfig::default(), "n0", &["n0"]).await;
    let _reply = node
        .call(
            "c1",
            json!({"type": "broadcast", "msg_id": 1, "message": 1}),
        )
        .await;
    let report = node.finish().await;
    assert_eq!(report.counters.broadcasts, 1);
    assert_eq!(report.written, 2);
    assert_eq!(report.output.lost(), 0);
}

#[tokio::test(start_paused = true)]
async fn a_line_that_is_not_utf8_is_answered_or_skipped_and_the_next_request_is_answered() {
    let mut node = Node::started(NodeConfig::default(), "n0", &["n0"]).await;
    // Names nobody: skipped.
    node.send_bytes(b"\xff\n").await;
    // Names a sender and a msg_id once its bad byte is replaced: error 12.
    node.send_bytes(b"{\"src\":\"c1\",\"dest\":\"n0\",\"body\":{\"type\":\"echo\",\"msg_id\":5,\"echo\":\"\xff\"}}\n")
        .await;
    let refused = node.recv().await;
    assert_eq!(refused["dest"], "c1");
    assert_eq!(refused["body"]["type"], "error");
    assert_eq!(refused["body"]["code"], 12);
    assert_eq!(refused["body"]["in_reply_to"], 5);
    let echo = node
        .call(
            "c1",
            json!({"type": "echo", "msg_id": 6, "echo": "still here"}),
        )
        .await;
    assert_eq!(echo["echo"], "still here");
    let report = node.finish().await;
    assert_eq!(report.counters.not_utf8, 2);
    assert_eq!(report.counters.malformed, 2);
}

#[tokio::test(start_paused = true)]
async fn a_line_over_the_cap_is_skipped_and_the_next_request_is_answered() {
    let config = NodeConfig {
        max_line_bytes: 1 << 20,
        ..NodeConfig::default()
    };
    let mut node = Node::started(config, "n0", &["n0"]).await;
    // 5 MiB of one line, written in pieces as a pipe would carry it.
    let piece = vec![b'x'; 64 << 10];
    for _ in 0..80 {
        node.send_bytes(&piece).await;
    }
    node.send_bytes(b"\n").await;
    let echo = node
        .call("c1", json!({"type": "echo", "msg_id": 1, "echo": "after"}))
        .await;
    assert_eq!(echo["echo"], "after");
    let report = node.finish().await;
    assert_eq!(report.counters.oversized, 1);
    assert_eq!(report.counters.malformed, 0);
}

#[tokio::test(start_paused = true)]
async fn a_message_for_another_node_is_refused_and_not_stored() {
    let mut node = Node::started(NodeConfig::default(), "n0", &["n0", "n1", "n2"]).await;
    // As Maelstrom's broadcast workload does before any read: without it, a read that comes
    // before any broadcast the node accepted is a g-counter's read.
    let topology = json!({"n0": ["n1", "n2"], "n1": ["n0"], "n2": ["n0"]});
    node.call(
        "c1",
        json!({"type": "topology", "msg_id": 2, "topology": topology}),
    )
    .await;
    node.send(json!({"src": "c1", "dest": "n1",
                     "body": {"type": "broadcast", "msg_id": 3, "message": 42}}))
        .await;
    let refused = node.recv().await;
    assert_eq!(refused["dest"], "c1");
    assert_eq!(refused["body"]["code"], 12);
    assert_eq!(refused["body"]["in_reply_to"], 3);
    // From a node: refused without an answer.
    node.send(json!({"src": "n1", "dest": "n2",
                     "body": {"type": "gossip", "seq": [1, 1], "values": [43]}}))
        .await;
    let read = node.call("c1", json!({"type": "read", "msg_id": 4})).await;
    assert_eq!(read["messages"], json!([]));
    let report = node.finish().await;
    assert_eq!(report.counters.wrong_dest, 2);
    assert_eq!(report.counters.broadcasts, 0);
    assert_eq!(report.counters.gossip_received, 0);
}

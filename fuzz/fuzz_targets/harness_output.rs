//! Any line on a node's stdout: the harness's envelope parser never panics and accepts only
//! objects with string `src` and `dest`, an object `body` and at most an integer `id` besides;
//! the reply judge never panics, calls a reply valid only when it matches the closed schema, and
//! an error only when it carries an integer code.
#![no_main]

use libfuzzer_sys::fuzz_target;
use serde_json::Value;
use sluicegate::internals::{Field, Reply, RpcError, judge, parse_outgoing};

/// The schemas the broadcast and echo workloads judge replies by.
const SCHEMAS: &[(&str, &[(&str, Field)])] = &[
    ("broadcast_ok", &[]),
    ("read_ok", &[("messages", Field::Array)]),
    ("echo_ok", &[("echo", Field::Any)]),
    ("generate_ok", &[("id", Field::Any)]),
    ("topology_ok", &[]),
];

fn is_integer(value: &Value) -> bool {
    value.is_i64() || value.is_u64()
}

fuzz_target!(|data: &[u8]| {
    let Ok(line) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(outgoing) = parse_outgoing(line) else {
        return;
    };
    let Ok(Value::Object(envelope)) = serde_json::from_str::<Value>(line) else {
        panic!("accepted a line that is not a JSON object: {line:?}");
    };
    assert_eq!(
        envelope.get("src").and_then(Value::as_str),
        Some(outgoing.src.as_str())
    );
    assert_eq!(
        envelope.get("dest").and_then(Value::as_str),
        Some(outgoing.dest.as_str())
    );
    assert_eq!(
        envelope.get("body"),
        Some(&Value::Object(outgoing.body.clone()))
    );
    for (key, value) in &envelope {
        assert!(
            matches!(key.as_str(), "src" | "dest" | "body") || (key == "id" && is_integer(value)),
            "accepted the top-level key {key:?}"
        );
    }
    for (expected, fields) in SCHEMAS {
        let reply = judge(Ok::<_, RpcError>(outgoing.body.clone()), expected, fields);
        match reply {
            Reply::Valid(body) => {
                assert_eq!(body.get("type").and_then(Value::as_str), Some(*expected));
                assert!(body.get("in_reply_to").is_some_and(is_integer));
                assert!(body.get("msg_id").is_none_or(is_integer));
                for key in body.keys() {
                    assert!(
                        matches!(key.as_str(), "type" | "in_reply_to" | "msg_id")
                            || fields.iter().any(|(name, _)| name == key),
                        "valid {expected} with the extra key {key:?}"
                    );
                }
            }
            Reply::Error { .. } => {
                assert_eq!(
                    outgoing.body.get("type").and_then(Value::as_str),
                    Some("error")
                );
                assert!(outgoing.body.get("code").is_some_and(Value::is_i64));
            }
            Reply::Malformed(reason) => assert!(!reason.is_empty()),
            Reply::Timeout => panic!("a reply that arrived judged as a timeout"),
        }
    }
});

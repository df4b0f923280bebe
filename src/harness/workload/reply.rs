//! How a workload reply is judged before its workload maps it to an outcome
//! (docs/harness.md §1.3, §1.6, §2.4): valid under the closed schema, an error body, malformed,
//! or missing.

use serde_json::{Map, Value};

use crate::harness::client::RpcError;

/// The type a reply field must have.
#[derive(Clone, Copy, Debug)]
pub enum Field {
    /// Any JSON value.
    Any,
    /// An integer.
    Integer,
    /// An array of anything.
    Array,
    /// An object of anything.
    Object,
}

impl Field {
    fn accepts(self, value: &Value) -> bool {
        match self {
            Field::Any => true,
            Field::Integer => value.is_i64() || value.is_u64(),
            Field::Array => value.is_array(),
            Field::Object => value.is_object(),
        }
    }
}

/// What came back for one request.
#[derive(Debug, PartialEq)]
pub enum Reply {
    /// The expected type with exactly the schema's fields.
    Valid(Map<String, Value>),
    /// An error body.
    Error {
        /// Maelstrom's name for the code (`:unknown` for unknown codes).
        name: &'static str,
        /// True if the code says the operation definitely did not happen.
        definite: bool,
        /// The optional `text`.
        text: Option<String>,
    },
    /// Not the expected schema: the operation's outcome is unknown, and the reason is kept.
    Malformed(String),
    /// No reply within the timeout (or the node was unreachable).
    Timeout,
}

/// Judges `reply` against a closed schema: `type == expected`, exactly `fields` (all required),
/// an integer `in_reply_to`, and optionally an integer `msg_id`. Error bodies are open.
pub fn judge(
    reply: Result<Map<String, Value>, RpcError>,
    expected: &str,
    fields: &[(&str, Field)],
) -> Reply {
    let body = match reply {
        Ok(body) => body,
        Err(_) => return Reply::Timeout,
    };
    if body.get("type").and_then(Value::as_str) == Some("error") {
        return judge_error(&body);
    }
    match schema_violation(&body, expected, fields) {
        Some(reason) => Reply::Malformed(reason),
        None => Reply::Valid(body),
    }
}

fn schema_violation(
    body: &Map<String, Value>,
    expected: &str,
    fields: &[(&str, Field)],
) -> Option<String> {
    let found = body.get("type").and_then(Value::as_str).unwrap_or("<none>");
    if found != expected {
        return Some(format!("expected a reply of type {expected}, got {found}"));
    }
    if !body
        .get("in_reply_to")
        .is_some_and(|v| Field::Integer.accepts(v))
    {
        return Some("in_reply_to missing or not an integer".into());
    }
    if body
        .get("msg_id")
        .is_some_and(|v| !Field::Integer.accepts(v))
    {
        return Some("msg_id is not an integer".into());
    }
    for (name, field) in fields {
        match body.get(*name) {
            None => return Some(format!("missing required key {name}")),
            Some(value) if !field.accepts(value) => {
                return Some(format!("key {name} has the wrong type: {value}"));
            }
            Some(_) => {}
        }
    }
    body.keys()
        .find(|key| {
            !matches!(key.as_str(), "type" | "in_reply_to" | "msg_id")
                && !fields.iter().any(|(name, _)| name == key)
        })
        .map(|key| format!("unexpected key {key} in {expected} (Maelstrom's schemas are closed)"))
}

fn judge_error(body: &Map<String, Value>) -> Reply {
    let Some(code) = body.get("code").and_then(Value::as_i64) else {
        return Reply::Malformed("error body without an integer code".into());
    };
    let (name, definite) = error_code(code);
    Reply::Error {
        name,
        definite,
        text: body.get("text").and_then(Value::as_str).map(str::to_string),
    }
}

/// Maelstrom's name for an error code and whether it is definite (docs/harness.md §1.6).
pub fn error_code(code: i64) -> (&'static str, bool) {
    match code {
        0 => ("timeout", false),
        1 => ("node-not-found", true),
        10 => ("not-supported", true),
        11 => ("temporarily-unavailable", true),
        12 => ("malformed-request", true),
        13 => ("crash", false),
        14 => ("abort", true),
        20 => ("key-does-not-exist", true),
        21 => ("key-already-exists", true),
        22 => ("precondition-failed", true),
        30 => ("txn-conflict", true),
        _ => ("unknown", false),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn body(value: Value) -> Result<Map<String, Value>, RpcError> {
        Ok(value.as_object().cloned().unwrap_or_default())
    }

    const READ_OK: &[(&str, Field)] = &[("messages", Field::Array)];

    #[test]
    fn exact_schema_with_optional_msg_id_is_valid() {
        let reply = body(json!({"type":"read_ok","messages":[1],"in_reply_to":3,"msg_id":9}));
        assert!(matches!(judge(reply, "read_ok", READ_OK), Reply::Valid(_)));
    }

    #[test]
    fn an_extra_key_makes_the_reply_malformed() {
        let reply = body(json!({"type":"read_ok","messages":[],"in_reply_to":3,"node":"n1"}));
        assert!(
            matches!(judge(reply, "read_ok", READ_OK), Reply::Malformed(r) if r.contains("node"))
        );
    }

    #[test]
    fn a_missing_field_or_non_integer_id_makes_it_malformed() {
        let missing = body(json!({"type":"read_ok","in_reply_to":3}));
        assert!(matches!(
            judge(missing, "read_ok", READ_OK),
            Reply::Malformed(_)
        ));
        let bad_id = body(json!({"type":"read_ok","messages":[],"in_reply_to":"3"}));
        assert!(matches!(
            judge(bad_id, "read_ok", READ_OK),
            Reply::Malformed(_)
        ));
    }

    #[test]
    fn error_bodies_are_open_and_classified_by_code() {
        let reply = body(json!({"type":"error","in_reply_to":1,"code":11,"text":"busy","x":1}));
        assert_eq!(
            judge(reply, "read_ok", READ_OK),
            Reply::Error {
                name: "temporarily-unavailable",
                definite: true,
                text: Some("busy".into())
            }
        );
        assert_eq!(error_code(1000), ("unknown", false));
        assert_eq!(error_code(13), ("crash", false));
    }
}

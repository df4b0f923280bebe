//! The key-value state behind `lin-kv` and `seq-kv` (Maelstrom's `service.clj` `PersistentKV`):
//! read, write and cas on keys and values that are any JSON, compared structurally.

use std::collections::BTreeMap;
use std::sync::Arc;

use serde_json::{Map, Value, json};

/// One version of a key-value store. Cloning is cheap (values are shared), because seq-kv keeps
/// up to 32 versions.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct KvState {
    /// Canonical key text -> (the key as sent, its value).
    entries: BTreeMap<String, (Arc<Value>, Arc<Value>)>,
}

/// What one request did to a state.
#[derive(Debug, PartialEq)]
pub struct Applied {
    /// The new state, when the request changed it; `None` when the state is unchanged (reads,
    /// failed cas, and writes of the value already there).
    pub changed: Option<KvState>,
    /// The reply body (without `in_reply_to`).
    pub reply: Map<String, Value>,
}

impl KvState {
    /// The value stored under `key`, if any.
    pub fn get(&self, key: &Value) -> Option<&Value> {
        self.entries.get(&canonical(key)).map(|(_, value)| &**value)
    }

    /// Applies `body` (`read`, `write` or `cas`); `None` for any other type, which Maelstrom's
    /// service answers with nothing at all (its `case` throws in the worker).
    pub fn apply(&self, body: &Map<String, Value>) -> Option<Applied> {
        let key = body.get("key").unwrap_or(&Value::Null);
        let current = self.get(key);
        let unchanged = |reply: Value| Applied {
            changed: None,
            reply: object(reply),
        };
        Some(match body.get("type").and_then(Value::as_str)? {
            "read" => match current {
                Some(value) => unchanged(json!({"type": "read_ok", "value": value})),
                None => unchanged(missing_key()),
            },
            "write" => {
                let value = body.get("value").unwrap_or(&Value::Null);
                self.store(key, value, json!({"type": "write_ok"}))
            }
            "cas" => {
                let from = body.get("from").unwrap_or(&Value::Null);
                let to = body.get("to").unwrap_or(&Value::Null);
                match current {
                    Some(value) if value == from => self.store(key, to, json!({"type": "cas_ok"})),
                    Some(value) => unchanged(precondition_failed(value, &render(from))),
                    None if truthy(body.get("create_if_not_exists")) => {
                        self.store(key, to, json!({"type": "cas_ok"}))
                    }
                    None => unchanged(missing_key()),
                }
            }
            _ => return None,
        })
    }

    /// Stores `value` under `key`; the state counts as changed unless it already held exactly
    /// that value (Clojure's `=` on the whole map, as seq-kv compares states).
    fn store(&self, key: &Value, value: &Value, reply: Value) -> Applied {
        let changed = (self.get(key) != Some(value)).then(|| {
            let mut next = self.clone();
            next.entries.insert(
                canonical(key),
                (Arc::new(key.clone()), Arc::new(value.clone())),
            );
            next
        });
        Applied {
            changed,
            reply: object(reply),
        }
    }
}

/// Error 20.
pub fn missing_key() -> Value {
    json!({"type": "error", "code": 20, "text": "key does not exist"})
}

/// Error 22; `from` is already rendered (lww-kv prints it differently).
pub fn precondition_failed(current: &Value, from: &str) -> Value {
    json!({
        "type": "error",
        "code": 22,
        "text": format!("current value {} is not {from}", render(current)),
    })
}

/// Clojure truthiness: everything but `false` and `null` (and absence) is true, `0` and `""`
/// included.
pub fn truthy(value: Option<&Value>) -> bool {
    !matches!(value, None | Some(Value::Null) | Some(Value::Bool(false)))
}

/// A value as the error texts show it (JSON; Maelstrom prints Clojure notation, which only
/// differs cosmetically).
pub fn render(value: &Value) -> String {
    value.to_string()
}

/// A key's identity: its JSON text with object keys sorted, so that structurally equal keys
/// (Clojure `=`) map to the same entry and `1` and `1.0` stay distinct.
pub fn canonical(value: &Value) -> String {
    match value {
        Value::Object(map) => {
            let mut entries: Vec<(&String, &Value)> = map.iter().collect();
            entries.sort_by(|a, b| a.0.cmp(b.0));
            let inner: Vec<String> = entries
                .into_iter()
                .map(|(k, v)| format!("{}:{}", Value::String(k.clone()), canonical(v)))
                .collect();
            format!("{{{}}}", inner.join(","))
        }
        Value::Array(items) => {
            let inner: Vec<String> = items.iter().map(canonical).collect();
            format!("[{}]", inner.join(","))
        }
        other => other.to_string(),
    }
}

pub(super) fn object(value: Value) -> Map<String, Value> {
    match value {
        Value::Object(map) => map,
        _ => Map::new(),
    }
}

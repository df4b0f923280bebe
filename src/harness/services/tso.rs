//! `lin-tso` (Maelstrom's `service.clj` `PersistentTSO`): timestamps 0, 1, 2, ... across all
//! callers.

use serde_json::{Map, Value, json};

use super::kv::object;

/// The timestamp oracle's counter.
#[derive(Debug, Default)]
pub struct Tso {
    next: u64,
}

impl Tso {
    /// `ts` -> `ts_ok` with the next timestamp; anything else -> no reply.
    pub fn handle(&mut self, body: &Map<String, Value>) -> Option<Map<String, Value>> {
        if body.get("type").and_then(Value::as_str) != Some("ts") {
            return None;
        }
        let ts = self.next;
        self.next += 1;
        Some(object(json!({"type": "ts_ok", "ts": ts})))
    }
}

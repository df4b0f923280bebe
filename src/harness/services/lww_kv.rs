//! `lww-kv` as Maelstrom's code behaves (`service.clj` `Eventual` over `LWWKV`), not as its
//! `doc/services.md` describes it: two replicas, each request served by one drawn at random,
//! and the merge it computes is thrown away (the replica vector is rebuilt from the pre-merge
//! value), so the replicas never converge. A key written once is visible to about half of the
//! later reads, forever.

use std::collections::BTreeMap;

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde_json::{Map, Value, json};

use super::kv::{canonical, missing_key, object, precondition_failed};

/// Maelstrom's replica count.
const REPLICAS: usize = 2;

#[derive(Clone, Debug, Default)]
struct Replica {
    /// Lamport clock: stamps each write, then increments.
    clock: u64,
    /// Canonical key -> (timestamp, value).
    entries: BTreeMap<String, (u64, Value)>,
}

/// The never-converging store.
#[derive(Debug)]
pub struct LwwKv {
    replicas: Vec<Replica>,
    rng: ChaCha8Rng,
}

impl LwwKv {
    /// Two empty replicas, drawing from `seed`.
    pub fn new(seed: u64) -> Self {
        LwwKv {
            replicas: vec![Replica::default(); REPLICAS],
            rng: ChaCha8Rng::seed_from_u64(seed),
        }
    }

    /// Serves one request from a random replica; `None` for an unknown type. `cas` ignores
    /// `create_if_not_exists`, as Maelstrom's `LWWKV` does.
    pub fn handle(&mut self, body: &Map<String, Value>) -> Option<Map<String, Value>> {
        // Maelstrom draws the merge's source and target first; the merge has no effect.
        let _merge_source: usize = self.rng.random_range(0..REPLICAS);
        let _merge_target: usize = self.rng.random_range(0..REPLICAS);
        let replica = &mut self.replicas[self.rng.random_range(0..REPLICAS)];
        let key = canonical(body.get("key").unwrap_or(&Value::Null));
        let current = replica.entries.get(&key).map(|(_, value)| value);
        let reply = match body.get("type").and_then(Value::as_str)? {
            "read" => match current {
                Some(value) => json!({"type": "read_ok", "value": value}),
                None => missing_key(),
            },
            "write" => {
                let value = body.get("value").cloned().unwrap_or(Value::Null);
                replica.entries.insert(key, (replica.clock, value));
                replica.clock += 1;
                json!({"type": "write_ok"})
            }
            "cas" => {
                let from = body.get("from").unwrap_or(&Value::Null);
                match current {
                    Some(value) if value == from => {
                        let to = body.get("to").cloned().unwrap_or(Value::Null);
                        replica.entries.insert(key, (replica.clock, to));
                        replica.clock += 1;
                        json!({"type": "cas_ok"})
                    }
                    // lww-kv prints `from` unquoted.
                    Some(value) => precondition_failed(value, &unquoted(from)),
                    None => missing_key(),
                }
            }
            _ => return None,
        };
        Some(object(reply))
    }
}

fn unquoted(value: &Value) -> String {
    match value {
        Value::String(text) => text.clone(),
        other => other.to_string(),
    }
}

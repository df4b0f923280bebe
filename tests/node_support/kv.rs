//! Tiny in-test versions of Maelstrom's `lin-kv` and `seq-kv`, for nodes run by [`Cluster`]
//! (super::Cluster): one state for lin-kv; for seq-kv the random-version algorithm of
//! `maelstrom-kv-spec.md` §2.2 (a ring of the last 32 versions, each node served a version drawn
//! uniformly between the last one it saw and the newest; a state change is applied to the newest),
//! on a seeded generator so a run repeats exactly.

use std::collections::{BTreeMap, HashMap, VecDeque};

use serde_json::{Value, json};

type State = BTreeMap<String, Value>;

const RING: usize = 32;

/// Both services.
pub struct Services {
    lin: State,
    seq: SeqKv,
    /// Requests handled, by service.
    pub requests: BTreeMap<String, u64>,
}

struct SeqKv {
    ring: VecDeque<State>,
    newest: u64,
    seen: HashMap<String, u64>,
    rng: u64,
}

impl Services {
    /// Empty services; `seed` drives seq-kv's choices.
    pub fn new(seed: u64) -> Self {
        Services {
            lin: State::new(),
            seq: SeqKv {
                ring: VecDeque::from([State::new()]),
                newest: 0,
                seen: HashMap::new(),
                rng: seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1,
            },
            requests: BTreeMap::new(),
        }
    }

    /// Whether `id` names a service.
    pub fn is_service(id: &str) -> bool {
        matches!(id, "lin-kv" | "seq-kv")
    }

    /// The reply body to `body` sent by `src` to `service`; `None` for an unknown type
    /// (services go silent).
    pub fn handle(&mut self, service: &str, src: &str, body: &Value) -> Option<Value> {
        *self.requests.entry(service.to_owned()).or_default() += 1;
        let mut reply = match service {
            "lin-kv" => {
                let (next, reply) = apply(&self.lin, body)?;
                self.lin = next;
                reply
            }
            _ => self.seq.handle(src, body)?,
        };
        reply["in_reply_to"] = body["msg_id"].clone();
        Some(reply)
    }
}

impl SeqKv {
    fn next(&mut self) -> u64 {
        // xorshift64*
        self.rng ^= self.rng >> 12;
        self.rng ^= self.rng << 25;
        self.rng ^= self.rng >> 27;
        self.rng.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn handle(&mut self, src: &str, body: &Value) -> Option<Value> {
        let seen = self.seen.get(src).copied().unwrap_or(0);
        let pick = seen + self.next() % (self.newest - seen + 1);
        // Position pick - newest - 1 from the end, wrapped by the ring's length (the quirk).
        let back = (self.newest - pick) as usize % self.ring.len();
        let index = self.ring.len() - 1 - back;
        let (next, reply) = apply(&self.ring[index], body)?;
        if next == self.ring[index] {
            self.seen.insert(src.to_owned(), pick);
            return Some(reply);
        }
        let newest = self.ring.back().expect("never empty");
        let (next, reply) = apply(newest, body)?;
        self.ring.push_back(next);
        if self.ring.len() > RING {
            self.ring.pop_front();
        }
        self.newest += 1;
        self.seen.insert(src.to_owned(), self.newest);
        Some(reply)
    }
}

fn error(code: u64, text: &str) -> Value {
    json!({"type": "error", "code": code, "text": text})
}

/// Applies a request to a state: the next state and the reply (without `in_reply_to`).
fn apply(state: &State, body: &Value) -> Option<(State, Value)> {
    let key = body["key"].to_string();
    let mut next = state.clone();
    let reply = match body["type"].as_str()? {
        "read" => match state.get(&key) {
            Some(value) => json!({"type": "read_ok", "value": value}),
            None => error(20, "key does not exist"),
        },
        "write" => {
            next.insert(key, body["value"].clone());
            json!({"type": "write_ok"})
        }
        "cas" => {
            let create = !matches!(
                body["create_if_not_exists"],
                Value::Null | Value::Bool(false)
            );
            match state.get(&key) {
                None if create => {
                    next.insert(key, body["to"].clone());
                    json!({"type": "cas_ok"})
                }
                None => error(20, "key does not exist"),
                Some(current) if *current == body["from"] => {
                    next.insert(key, body["to"].clone());
                    json!({"type": "cas_ok"})
                }
                Some(_) => error(22, "precondition failed"),
            }
        }
        _ => return None,
    };
    Some((next, reply))
}

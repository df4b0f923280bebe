//! A message on the simulated network, and the envelope rules a node's output must follow
//! (docs/harness.md §1.2).

use serde_json::{Map, Value};
use thiserror::Error;

/// A message as the network delivers it: `{"id", "src", "dest", "body"}` in that order.
#[derive(Clone, Debug, PartialEq)]
pub struct Message {
    /// The network-wide message counter, from 0, one per message sent.
    pub id: u64,
    /// Sender id.
    pub src: String,
    /// Destination id.
    pub dest: String,
    /// The body, as re-encoded JSON.
    pub body: Map<String, Value>,
}

impl Message {
    /// The JSON line written to a node's stdin (no trailing newline).
    pub fn to_line(&self) -> String {
        let mut envelope = Map::new();
        envelope.insert("id".into(), self.id.into());
        envelope.insert("src".into(), self.src.clone().into());
        envelope.insert("dest".into(), self.dest.clone().into());
        envelope.insert("body".into(), Value::Object(self.body.clone()));
        Value::Object(envelope).to_string()
    }

    /// The body's `in_reply_to`, if it is an integer.
    pub fn in_reply_to(&self) -> Option<u64> {
        self.body.get("in_reply_to").and_then(Value::as_u64)
    }
}

/// What a node wrote, once it passed the envelope schema: where it goes and what it says.
#[derive(Clone, Debug, PartialEq)]
pub struct Outgoing {
    /// Sender id as the node wrote it.
    pub src: String,
    /// Destination id.
    pub dest: String,
    /// The body object.
    pub body: Map<String, Value>,
}

/// Why a line from a node's stdout is not a message (docs/harness.md §1.2, §1.7).
#[derive(Debug, Error, PartialEq)]
pub enum EnvelopeError {
    /// Not JSON at all.
    #[error("not JSON: {0}")]
    NotJson(String),
    /// JSON, but not an object with string `src`/`dest` and an object `body`.
    #[error("malformed envelope: {0}")]
    Malformed(String),
    /// A top-level key other than `src`, `dest`, `body` and an integer `id`.
    #[error("unexpected top-level key {0:?}")]
    UnexpectedKey(String),
}

/// Parses one line of a node's stdout, as strictly as Maelstrom's message schema.
pub fn parse_outgoing(line: &str) -> Result<Outgoing, EnvelopeError> {
    let value: Value =
        serde_json::from_str(line).map_err(|error| EnvelopeError::NotJson(error.to_string()))?;
    let Value::Object(mut envelope) = value else {
        return Err(EnvelopeError::Malformed("not an object".into()));
    };
    if let Some(key) = envelope
        .iter()
        .find(|(key, value)| match key.as_str() {
            "src" | "dest" | "body" => false,
            "id" => !value.is_i64() && !value.is_u64(),
            _ => true,
        })
        .map(|(key, _)| key.clone())
    {
        return Err(EnvelopeError::UnexpectedKey(key));
    }
    let mut take_string = |key: &str| match envelope.remove(key) {
        Some(Value::String(text)) => Ok(text),
        _ => Err(EnvelopeError::Malformed(format!(
            "{key} missing or not a string"
        ))),
    };
    let src = take_string("src")?;
    let dest = take_string("dest")?;
    let Some(Value::Object(body)) = envelope.remove("body") else {
        return Err(EnvelopeError::Malformed(
            "body missing or not an object".into(),
        ));
    };
    Ok(Outgoing { src, dest, body })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delivered_lines_put_id_first_then_src_dest_body() {
        let body = serde_json::json!({"type": "read"})
            .as_object()
            .cloned()
            .unwrap_or_default();
        let message = Message {
            id: 7,
            src: "c3".into(),
            dest: "n0".into(),
            body,
        };
        assert_eq!(
            message.to_line(),
            r#"{"id":7,"src":"c3","dest":"n0","body":{"type":"read"}}"#
        );
    }

    #[test]
    fn a_well_formed_line_parses_and_may_carry_an_integer_id() {
        let out = parse_outgoing(r#"{"id":3,"src":"n0","dest":"c1","body":{"type":"x"}}"#);
        assert_eq!(out.map(|o| o.dest), Ok("c1".to_string()));
    }

    #[test]
    fn debug_output_extra_keys_and_missing_fields_are_rejected() {
        assert!(matches!(
            parse_outgoing("hello"),
            Err(EnvelopeError::NotJson(_))
        ));
        assert_eq!(
            parse_outgoing(r#"{"src":"n0","dest":"c1","body":{},"extra":1}"#),
            Err(EnvelopeError::UnexpectedKey("extra".into()))
        );
        assert!(matches!(
            parse_outgoing(r#"{"src":"n0","body":{}}"#),
            Err(EnvelopeError::Malformed(_))
        ));
        assert!(matches!(
            parse_outgoing(r#"{"id":"x","src":"n0","dest":"c1","body":{}}"#),
            Err(EnvelopeError::UnexpectedKey(_))
        ));
    }
}

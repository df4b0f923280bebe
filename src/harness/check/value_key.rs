//! A JSON value as a map key: equal exactly when the values are equal as Clojure compares
//! elements of a set (`1` and `1.0` differ), and ordered so that integers sort numerically.

use std::cmp::Ordering;

use serde_json::Value;

/// A JSON value with a total order: integers (numerically), then other numbers (by
/// `f64::total_cmp`), then everything else (by its JSON text).
#[derive(Clone, Debug)]
pub(crate) struct ValueKey {
    class: Class,
    text: String,
    value: Value,
}

#[derive(Clone, Copy, Debug, PartialEq, PartialOrd)]
enum Class {
    Integer(i128),
    Float(f64),
    Other,
}

impl ValueKey {
    pub(crate) fn new(value: &Value) -> ValueKey {
        let class = match value {
            Value::Number(n) => match (n.as_i64(), n.as_u64()) {
                (Some(i), _) => Class::Integer(i128::from(i)),
                (None, Some(u)) => Class::Integer(i128::from(u)),
                _ => Class::Float(n.as_f64().unwrap_or(f64::NAN)),
            },
            _ => Class::Other,
        };
        let text = match class {
            Class::Other => value.to_string(),
            _ => String::new(),
        };
        ValueKey {
            class,
            text,
            value: value.clone(),
        }
    }

    pub(crate) fn value(&self) -> &Value {
        &self.value
    }
}

impl Ord for ValueKey {
    fn cmp(&self, other: &Self) -> Ordering {
        match (self.class, other.class) {
            (Class::Integer(a), Class::Integer(b)) => a.cmp(&b),
            (Class::Integer(_), _) => Ordering::Less,
            (_, Class::Integer(_)) => Ordering::Greater,
            (Class::Float(a), Class::Float(b)) => a.total_cmp(&b),
            (Class::Float(_), _) => Ordering::Less,
            (_, Class::Float(_)) => Ordering::Greater,
            (Class::Other, Class::Other) => self.text.cmp(&other.text),
        }
    }
}

impl PartialOrd for ValueKey {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl PartialEq for ValueKey {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}

impl Eq for ValueKey {}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn integers_sort_numerically_and_differ_from_floats() {
        let mut keys: Vec<ValueKey> = [json!(10), json!("a"), json!(2), json!(1.0), json!(1)]
            .iter()
            .map(ValueKey::new)
            .collect();
        keys.sort();
        let values: Vec<&Value> = keys.iter().map(ValueKey::value).collect();
        assert_eq!(
            values,
            [&json!(1), &json!(2), &json!(10), &json!(1.0), &json!("a")]
        );
        assert_ne!(ValueKey::new(&json!(1)), ValueKey::new(&json!(1.0)));
    }
}

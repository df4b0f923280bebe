//! EDN values and a Clojure-style printer, so that our results read like Maelstrom's (spec §7).
//!
//! Maelstrom prints its results map with Jepsen's pretty printer: a collection that fits on the
//! rest of the line (70 columns) is printed inline; one that does not puts each map entry, or each
//! sequence element, on its own line, aligned after the opening bracket. A map key and its value
//! always stay on the same line. Numbers print as the JVM prints them: `1.0`, `27.806324`
//! (a 32-bit float), `1.0E-4`.
//!
//! ```
//! use sluicegate::harness::Edn;
//!
//! let results = Edn::kw_map([
//!     ("availability", Edn::kw_map([("valid?", Edn::Bool(true)), ("ok-fraction", Edn::Float(1.0))])),
//!     ("valid?", Edn::Bool(true)),
//! ]);
//! assert_eq!(results.to_string(), "{:availability {:valid? true, :ok-fraction 1.0}, :valid? true}");
//! // Short enough for one line.
//! assert_eq!(results.pretty(), results.to_string());
//!
//! let long = Edn::kw_map([("stale", Edn::List((0..30).map(Edn::Int).collect()))]);
//! assert!(long.pretty().starts_with("{:stale (0\n         1\n         2\n"));
//! ```

use std::fmt;

use serde_json::Value;

use super::history::{Op, Process};

/// Width of the pretty printer's lines, as in Jepsen's printer (fipp's default).
pub const PRETTY_WIDTH: usize = 70;

/// An EDN value.
#[derive(Clone, Debug, PartialEq)]
pub enum Edn {
    /// `nil`.
    Nil,
    /// `true` or `false`.
    Bool(bool),
    /// An integer.
    Int(i64),
    /// A 32-bit float, printed as the JVM prints a `float` (Maelstrom's `:msgs-per-op`).
    Float32(f32),
    /// A 64-bit float, printed as the JVM prints a `double` (`1.0`, `0.5`, `1.0E-4`).
    Float(f64),
    /// A string, printed quoted and escaped.
    Str(String),
    /// A keyword; holds the name without the leading colon.
    Keyword(String),
    /// A symbol or any other token printed verbatim (e.g. `18446744073709551615N`).
    Symbol(String),
    /// `[...]`.
    Vector(Vec<Edn>),
    /// `(...)`.
    List(Vec<Edn>),
    /// `#{...}`; the elements print in the order given.
    Set(Vec<Edn>),
    /// `{...}`; the entries print in insertion order.
    Map(Vec<(Edn, Edn)>),
}

impl Edn {
    /// A keyword, from its name without the colon.
    pub fn keyword(name: impl Into<String>) -> Edn {
        Edn::Keyword(name.into())
    }

    /// A string value.
    pub fn string(text: impl Into<String>) -> Edn {
        Edn::Str(text.into())
    }

    /// A map whose keys are keywords, in the order given.
    pub fn kw_map<K: Into<String>>(entries: impl IntoIterator<Item = (K, Edn)>) -> Edn {
        Edn::Map(
            entries
                .into_iter()
                .map(|(key, value)| (Edn::Keyword(key.into()), value))
                .collect(),
        )
    }

    /// An unsigned count: an integer, or a Clojure big-integer token past `i64::MAX`.
    pub fn uint(n: u64) -> Edn {
        match i64::try_from(n) {
            Ok(n) => Edn::Int(n),
            Err(_) => Edn::Symbol(format!("{n}N")),
        }
    }

    /// The value under keyword `key`, if this is a map that has it.
    pub fn get(&self, key: &str) -> Option<&Edn> {
        match self {
            Edn::Map(entries) => entries.iter().find_map(|(k, v)| match k {
                Edn::Keyword(name) if name == key => Some(v),
                _ => None,
            }),
            _ => None,
        }
    }

    /// Sets keyword `key` to `value` in a map: replaces it in place if present, appends it
    /// otherwise. Does nothing to a value that is not a map.
    pub fn set(&mut self, key: &str, value: Edn) {
        if let Edn::Map(entries) = self {
            match entries
                .iter_mut()
                .find(|(k, _)| matches!(k, Edn::Keyword(name) if name == key))
            {
                Some((_, slot)) => *slot = value,
                None => entries.push((Edn::keyword(key), value)),
            }
        }
    }

    /// The keys of a map, as keyword names (other keys are skipped); empty for other values.
    pub fn keyword_keys(&self) -> Vec<&str> {
        match self {
            Edn::Map(entries) => entries
                .iter()
                .filter_map(|(k, _)| match k {
                    Edn::Keyword(name) => Some(name.as_str()),
                    _ => None,
                })
                .collect(),
            _ => Vec::new(),
        }
    }

    /// The pretty-printed form, without a trailing newline (see the module docs for the layout).
    pub fn pretty(&self) -> String {
        let mut out = String::new();
        pretty_into(self, 0, &mut out);
        out
    }

    /// The same value as JSON: keywords become strings without the colon, map keys become
    /// strings (`0.5` becomes `"0.5"`), lists and sets become arrays.
    pub fn to_json(&self) -> Value {
        match self {
            Edn::Nil => Value::Null,
            Edn::Bool(b) => Value::Bool(*b),
            Edn::Int(n) => Value::from(*n),
            // Through the shortest f32 text, so 27.806324f32 stays 27.806324 and does not
            // become 27.80632400512695.
            Edn::Float32(x) => x
                .to_string()
                .parse::<f64>()
                .ok()
                .and_then(serde_json::Number::from_f64)
                .map_or(Value::Null, Value::Number),
            Edn::Float(x) => serde_json::Number::from_f64(*x).map_or(Value::Null, Value::Number),
            Edn::Str(s) | Edn::Keyword(s) | Edn::Symbol(s) => Value::String(s.clone()),
            Edn::Vector(items) | Edn::List(items) | Edn::Set(items) => {
                Value::Array(items.iter().map(Edn::to_json).collect())
            }
            Edn::Map(entries) => Value::Object(
                entries
                    .iter()
                    .map(|(k, v)| {
                        let key = match k {
                            Edn::Str(s) | Edn::Keyword(s) | Edn::Symbol(s) => s.clone(),
                            other => other.to_string(),
                        };
                        (key, v.to_json())
                    })
                    .collect(),
            ),
        }
    }
}

impl From<bool> for Edn {
    fn from(b: bool) -> Edn {
        Edn::Bool(b)
    }
}

impl From<i64> for Edn {
    fn from(n: i64) -> Edn {
        Edn::Int(n)
    }
}

impl From<u64> for Edn {
    fn from(n: u64) -> Edn {
        Edn::uint(n)
    }
}

impl From<usize> for Edn {
    fn from(n: usize) -> Edn {
        Edn::uint(n as u64)
    }
}

impl From<&str> for Edn {
    fn from(s: &str) -> Edn {
        Edn::Str(s.to_owned())
    }
}

impl<T: Into<Edn>> From<Option<T>> for Edn {
    fn from(value: Option<T>) -> Edn {
        value.map_or(Edn::Nil, Into::into)
    }
}

/// JSON to EDN, as Maelstrom sees a JSON value: objects keep string keys, arrays become vectors,
/// integers stay exact and other numbers are doubles.
impl From<&Value> for Edn {
    fn from(value: &Value) -> Edn {
        match value {
            Value::Null => Edn::Nil,
            Value::Bool(b) => Edn::Bool(*b),
            Value::Number(n) => {
                if let Some(i) = n.as_i64() {
                    Edn::Int(i)
                } else if let Some(u) = n.as_u64() {
                    Edn::uint(u)
                } else {
                    Edn::Float(n.as_f64().unwrap_or(f64::NAN))
                }
            }
            Value::String(s) => Edn::Str(s.clone()),
            Value::Array(items) => Edn::Vector(items.iter().map(Edn::from).collect()),
            Value::Object(map) => Edn::Map(
                map.iter()
                    .map(|(k, v)| (Edn::Str(k.clone()), Edn::from(v)))
                    .collect(),
            ),
        }
    }
}

/// One history event as Jepsen prints it: `{:index 0, :time 123, :type :invoke, :process 0,
/// :f :broadcast, :value 0}`, then `:error`, `:exception` and `:final? true` when present.
pub fn op_to_edn(op: &Op) -> Edn {
    let process = match op.process {
        Process::Client(p) => Edn::uint(p),
        Process::Nemesis => Edn::keyword("nemesis"),
    };
    let mut entries = vec![
        ("index", Edn::from(op.index)),
        ("time", Edn::uint(op.time)),
        ("type", Edn::keyword(op.kind.name())),
        ("process", process),
        ("f", Edn::keyword(op.f.name())),
        ("value", Edn::from(&op.value)),
    ];
    if let Some(error) = &op.error {
        entries.push(("error", error_to_edn(error)));
    }
    if let Some(exception) = &op.exception {
        entries.push(("exception", Edn::string(exception.as_str())));
    }
    if op.final_read {
        entries.push(("final?", Edn::Bool(true)));
    }
    Edn::kw_map(entries)
}

/// `net-timeout` prints as the keyword `:net-timeout`, as Maelstrom's error names do; anything
/// with spaces or punctuation stays a string.
pub(crate) fn error_to_edn(error: &str) -> Edn {
    let keyword_like = !error.is_empty()
        && error
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '?' | '!'));
    if keyword_like {
        Edn::keyword(error)
    } else {
        Edn::string(error)
    }
}

/// The compact, one-line form: `{:a 1, :b [1 2]}`.
impl fmt::Display for Edn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write_compact(self, f)
    }
}

fn write_compact<W: fmt::Write>(value: &Edn, out: &mut W) -> fmt::Result {
    match value {
        Edn::Nil => out.write_str("nil"),
        Edn::Bool(b) => write!(out, "{b}"),
        Edn::Int(n) => write!(out, "{n}"),
        Edn::Float32(x) => {
            out.write_str(&jvm_float(f64::from(*x), &x.to_string(), &format!("{x:e}")))
        }
        Edn::Float(x) => out.write_str(&jvm_float(*x, &x.to_string(), &format!("{x:e}"))),
        Edn::Str(s) => write_string(s, out),
        Edn::Keyword(name) => write!(out, ":{name}"),
        Edn::Symbol(token) => out.write_str(token),
        Edn::Vector(items) => write_seq("[", "]", items, out),
        Edn::List(items) => write_seq("(", ")", items, out),
        Edn::Set(items) => write_seq("#{", "}", items, out),
        Edn::Map(entries) => {
            out.write_char('{')?;
            for (i, (k, v)) in entries.iter().enumerate() {
                if i > 0 {
                    out.write_str(", ")?;
                }
                write_compact(k, out)?;
                out.write_char(' ')?;
                write_compact(v, out)?;
            }
            out.write_char('}')
        }
    }
}

fn write_seq<W: fmt::Write>(open: &str, close: &str, items: &[Edn], out: &mut W) -> fmt::Result {
    out.write_str(open)?;
    for (i, item) in items.iter().enumerate() {
        if i > 0 {
            out.write_char(' ')?;
        }
        write_compact(item, out)?;
    }
    out.write_str(close)
}

fn write_string<W: fmt::Write>(s: &str, out: &mut W) -> fmt::Result {
    out.write_char('"')?;
    for c in s.chars() {
        match c {
            '"' => out.write_str("\\\"")?,
            '\\' => out.write_str("\\\\")?,
            '\n' => out.write_str("\\n")?,
            '\r' => out.write_str("\\r")?,
            '\t' => out.write_str("\\t")?,
            c if c.is_control() => write!(out, "\\u{:04x}", c as u32)?,
            c => out.write_char(c)?,
        }
    }
    out.write_char('"')
}

/// The JVM's `Double.toString`/`Float.toString` layout, given Rust's shortest round-trip digits
/// in plain (`display`) and scientific (`scientific`, e.g. `2.7806324e1`) form: plain with at
/// least one decimal for 10⁻³ ≤ |x| < 10⁷, otherwise `d.dddE±n`.
fn jvm_float(x: f64, display: &str, scientific: &str) -> String {
    if x.is_nan() {
        return "##NaN".to_owned();
    }
    if x.is_infinite() {
        return if x > 0.0 { "##Inf" } else { "##-Inf" }.to_owned();
    }
    let magnitude = x.abs();
    if magnitude == 0.0 || (1e-3..1e7).contains(&magnitude) {
        if display.contains('.') {
            display.to_owned()
        } else {
            format!("{display}.0")
        }
    } else {
        let (mantissa, exponent) = scientific.split_once('e').unwrap_or((scientific, "0"));
        if mantissa.contains('.') {
            format!("{mantissa}E{exponent}")
        } else {
            format!("{mantissa}.0E{exponent}")
        }
    }
}

/// Appends the compact form of `value` to `out` unless it would be longer than `budget`
/// characters; returns whether it fitted (on `false`, `out` is left as it was).
fn try_inline(value: &Edn, budget: usize, out: &mut String) -> bool {
    struct Limited<'a> {
        out: &'a mut String,
        left: usize,
    }
    impl fmt::Write for Limited<'_> {
        fn write_str(&mut self, s: &str) -> fmt::Result {
            let width = s.chars().count();
            if width > self.left {
                return Err(fmt::Error);
            }
            self.left -= width;
            self.out.push_str(s);
            Ok(())
        }
    }
    let start = out.len();
    let fitted = write_compact(
        value,
        &mut Limited {
            out: &mut *out,
            left: budget,
        },
    )
    .is_ok();
    if !fitted {
        out.truncate(start);
    }
    fitted
}

/// The column after the last character of `out`.
fn column(out: &str) -> usize {
    let line_start = out.rfind('\n').map_or(0, |i| i + 1);
    out[line_start..].chars().count()
}

fn newline_to(column: usize, out: &mut String) {
    out.push('\n');
    out.extend(std::iter::repeat_n(' ', column));
}

fn pretty_into(value: &Edn, col: usize, out: &mut String) {
    if try_inline(value, PRETTY_WIDTH.saturating_sub(col), out) {
        return;
    }
    match value {
        Edn::Map(entries) => {
            out.push('{');
            let inner = col + 1;
            for (i, (k, v)) in entries.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                    newline_to(inner, out);
                }
                pretty_into(k, inner, out);
                out.push(' ');
                let value_col = column(out);
                pretty_into(v, value_col, out);
            }
            out.push('}');
        }
        Edn::Vector(items) => pretty_seq("[", "]", items, col, out),
        Edn::List(items) => pretty_seq("(", ")", items, col, out),
        Edn::Set(items) => pretty_seq("#{", "}", items, col, out),
        // Atoms longer than the line: nothing to break.
        atom => {
            let _fits_or_not = write_compact(atom, out).is_ok();
        }
    }
}

fn pretty_seq(open: &str, close: &str, items: &[Edn], col: usize, out: &mut String) {
    out.push_str(open);
    let inner = col + open.chars().count();
    for (i, item) in items.iter().enumerate() {
        if i > 0 {
            newline_to(inner, out);
        }
        pretty_into(item, inner, out);
    }
    out.push_str(close);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn doubles_print_as_the_jvm_prints_them() {
        assert_eq!(Edn::Float(1.0).to_string(), "1.0");
        assert_eq!(Edn::Float(0.5).to_string(), "0.5");
        assert_eq!(Edn::Float(0.0).to_string(), "0.0");
        assert_eq!(Edn::Float(1e-4).to_string(), "1.0E-4");
        assert_eq!(Edn::Float(1.5e7).to_string(), "1.5E7");
        assert_eq!(Edn::Float(f64::NAN).to_string(), "##NaN");
    }

    #[test]
    fn floats_print_with_f32_digits() {
        assert_eq!(Edn::Float32(27.806324).to_string(), "27.806324");
        assert_eq!(Edn::Float32(98.0 / 48.0).to_string(), "2.0416667");
        assert_eq!(Edn::Float32(0.0).to_string(), "0.0");
        assert_eq!(Edn::Float32(14.7).to_string(), "14.7");
    }

    #[test]
    fn collections_print_with_their_brackets() {
        let value = Edn::kw_map([
            ("lost", Edn::List(vec![])),
            ("dup", Edn::Map(vec![])),
            ("set", Edn::Set(vec![Edn::Int(1), Edn::Int(2)])),
            ("v", Edn::Vector(vec![Edn::Nil, Edn::string("a\"b")])),
            ("ok", Edn::keyword("unknown")),
        ]);
        assert_eq!(
            value.to_string(),
            r#"{:lost (), :dup {}, :set #{1 2}, :v [nil "a\"b"], :ok :unknown}"#
        );
    }

    #[test]
    fn a_map_too_long_for_the_line_puts_entries_under_each_other() {
        let counts = |n: i64| {
            Edn::kw_map([
                ("send-count", Edn::Int(n)),
                ("recv-count", Edn::Int(n)),
                ("msg-count", Edn::Int(n)),
            ])
        };
        let net = Edn::kw_map([(
            "net",
            Edn::kw_map([("clients", counts(512)), ("servers", counts(54628))]),
        )]);
        assert_eq!(
            net.pretty(),
            "{:net {:clients {:send-count 512, :recv-count 512, :msg-count 512},\n       \
             :servers {:send-count 54628,\n                 :recv-count 54628,\n                 \
             :msg-count 54628}}}"
        );
    }

    #[test]
    fn a_list_too_long_for_the_line_puts_one_element_per_line() {
        let list = Edn::kw_map([("stale", Edn::List((0..40).map(Edn::Int).collect()))]);
        let pretty = list.pretty();
        assert!(
            pretty.starts_with("{:stale (0\n         1\n         2\n"),
            "{pretty}"
        );
        assert!(pretty.ends_with("\n         39)}"), "{pretty}");
    }

    #[test]
    fn json_becomes_edn_with_exact_integers() {
        let json: Value = serde_json::json!({"a": [1, 2.5, null, true, "x"], "b": u64::MAX});
        assert_eq!(
            Edn::from(&json).to_string(),
            r#"{"a" [1 2.5 nil true "x"], "b" 18446744073709551615N}"#
        );
    }

    #[test]
    fn edn_becomes_json_with_string_keys() {
        let value = Edn::Map(vec![
            (Edn::Int(0), Edn::Int(1)),
            (Edn::Float(0.5), Edn::Float32(27.806324)),
            (Edn::keyword("valid?"), Edn::keyword("unknown")),
        ]);
        assert_eq!(
            value.to_json().to_string(),
            r#"{"0":1,"0.5":27.806324,"valid?":"unknown"}"#
        );
    }
}

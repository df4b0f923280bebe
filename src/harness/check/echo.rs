//! Maelstrom's echo checker (docs/harness.md §8.1): every echo must come back with exactly the
//! value sent. A completion that is not `:ok` carries no echo, so it is an error too.

use serde_json::Value;

use super::Validity;
use crate::harness::edn::Edn;
use crate::harness::history::{History, Op, OpFn, OpType};

/// One echo that did not come back right.
#[derive(Clone, Debug, PartialEq)]
pub struct EchoError<'h> {
    /// The invocation, whose value is what was sent.
    pub invoke: &'h Op,
    /// Its completion, if it completed at all.
    pub complete: Option<&'h Op>,
}

impl EchoError<'_> {
    /// `["Expected a message with :echo" <sent> "But received" <received>]`, as Maelstrom
    /// words it; `<received>` is nil unless the completion was `:ok`.
    pub fn to_edn(&self) -> Edn {
        let received = self
            .complete
            .filter(|op| op.kind == OpType::Ok)
            .map_or(Edn::Nil, |op| Edn::from(&op.value));
        Edn::Vector(vec![
            Edn::string("Expected a message with :echo"),
            Edn::from(&self.invoke.value),
            Edn::string("But received"),
            received,
        ])
    }
}

/// The echo checker's result.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct EchoResult<'h> {
    /// Every bad echo, in invocation order.
    pub errors: Vec<EchoError<'h>>,
}

impl EchoResult<'_> {
    /// Valid iff there is no error.
    pub fn valid(&self) -> Validity {
        Validity::from_bool(self.errors.is_empty())
    }

    /// `{:valid? true, :errors ()}`.
    pub fn to_edn(&self) -> Edn {
        Edn::kw_map([
            ("valid?", self.valid().to_edn()),
            (
                "errors",
                Edn::List(self.errors.iter().map(EchoError::to_edn).collect()),
            ),
        ])
    }
}

/// Pairs every echo invocation with its completion and keeps the ones that did not complete
/// `:ok` with the value sent (the completion's value is the reply's `echo`).
pub fn check(history: &History) -> EchoResult<'_> {
    let errors = history
        .pairs()
        .into_iter()
        .filter(|(invoke, _)| invoke.is_client() && invoke.f == OpFn::Echo)
        .filter(|(invoke, complete)| !echoed(invoke, *complete))
        .map(|(invoke, complete)| EchoError { invoke, complete })
        .collect();
    EchoResult { errors }
}

fn echoed(invoke: &Op, complete: Option<&Op>) -> bool {
    complete.is_some_and(|op| op.kind == OpType::Ok && values_equal(&op.value, &invoke.value))
}

/// JSON equality; both sides come from the same parser, so integers compare exactly.
fn values_equal(a: &Value, b: &Value) -> bool {
    a == b
}

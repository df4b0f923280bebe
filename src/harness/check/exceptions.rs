//! Jepsen's `unhandled-exceptions` checker (docs/harness.md §6.3): always valid; lists the
//! exceptions behind `:info` completions, grouped by class, most frequent first.

use crate::harness::edn::{Edn, op_to_edn};
use crate::harness::history::{History, Op, OpType};

/// One class of exception.
#[derive(Clone, Debug, PartialEq)]
pub struct ExceptionClass<'h> {
    /// How many ops carried it.
    pub count: u64,
    /// The class: the exception text up to its first `:`, or all of it.
    pub class: String,
    /// The first op that carried it.
    pub example: &'h Op,
}

/// The exceptions checker's result.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ExceptionsResult<'h> {
    /// Most frequent first; on a tie, the class seen first.
    pub classes: Vec<ExceptionClass<'h>>,
}

impl ExceptionsResult<'_> {
    /// `{:valid? true}`, plus `:exceptions ({:count :class :example} …)` when there are any.
    pub fn to_edn(&self) -> Edn {
        let mut entries = vec![("valid?", Edn::Bool(true))];
        if !self.classes.is_empty() {
            let classes = self.classes.iter().map(|class| {
                Edn::kw_map([
                    ("count", Edn::uint(class.count)),
                    ("class", Edn::string(class.class.as_str())),
                    ("example", op_to_edn(class.example)),
                ])
            });
            entries.push(("exceptions", Edn::List(classes.collect())));
        }
        Edn::kw_map(entries)
    }
}

/// Groups the exceptions of the `:info` completions in `history`.
pub fn check(history: &History) -> ExceptionsResult<'_> {
    let mut classes: Vec<ExceptionClass<'_>> = Vec::new();
    for op in history.ops() {
        let Some(exception) = op.exception.as_deref() else {
            continue;
        };
        if op.kind != OpType::Info {
            continue;
        }
        let class = exception.split(':').next().unwrap_or(exception).trim();
        match classes.iter_mut().find(|c| c.class == class) {
            Some(existing) => existing.count += 1,
            None => classes.push(ExceptionClass {
                count: 1,
                class: class.to_owned(),
                example: op,
            }),
        }
    }
    classes.sort_by_key(|class| std::cmp::Reverse(class.count));
    ExceptionsResult { classes }
}

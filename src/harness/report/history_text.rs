//! `history.txt`: the history one event per line, tab-separated, as Jepsen prints histories
//! (`jepsen.util/print-history`): process, type, f, value, then the error if any.

use std::fmt::Write as _;

use crate::harness::edn::{Edn, error_to_edn};
use crate::harness::history::{History, Process};

/// The whole history as text, e.g. `0\t:invoke\t:broadcast\t5` and
/// `:nemesis\t:info\t:start-partition\t:majority`.
pub fn history_text(history: &History) -> String {
    let mut text = String::new();
    for op in history.ops() {
        let process = match op.process {
            Process::Client(p) => p.to_string(),
            Process::Nemesis => ":nemesis".to_string(),
        };
        let value = match (&op.value, op.process) {
            // The nemesis's shape is a keyword in Jepsen's histories.
            (serde_json::Value::String(shape), Process::Nemesis) => Edn::keyword(shape.as_str()),
            (value, _) => Edn::from(value),
        };
        let _infallible = write!(
            text,
            "{process}\t:{}\t:{}\t{value}",
            op.kind.name(),
            op.f.name()
        );
        if let Some(error) = &op.error {
            let _infallible = write!(text, "\t{}", error_to_edn(error));
        }
        text.push('\n');
    }
    text
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::history_text;
    use crate::harness::history::{History, Op, OpFn, OpType, Process};

    #[test]
    fn each_event_is_one_tab_separated_line() {
        let mut timeout = Op::new(9, OpType::Info, Process::Client(1), OpFn::Read, json!(null));
        timeout.error = Some("net-timeout".into());
        let history = History::from_ops([
            Op::new(
                1,
                OpType::Invoke,
                Process::Client(0),
                OpFn::Broadcast,
                json!(5),
            ),
            Op::new(
                2,
                OpType::Info,
                Process::Nemesis,
                OpFn::StartPartition,
                json!("one"),
            ),
            Op::new(3, OpType::Ok, Process::Client(0), OpFn::Broadcast, json!(5)),
            Op::new(
                4,
                OpType::Invoke,
                Process::Client(1),
                OpFn::Read,
                json!(null),
            ),
            timeout,
        ]);
        assert_eq!(
            history_text(&history),
            "0\t:invoke\t:broadcast\t5\n\
             :nemesis\t:info\t:start-partition\t:one\n\
             0\t:ok\t:broadcast\t5\n\
             1\t:invoke\t:read\tnil\n\
             1\t:info\t:read\tnil\t:net-timeout\n"
        );
    }
}

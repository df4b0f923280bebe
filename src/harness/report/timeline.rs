//! `timeline.html`: one column per process, one box per operation from its invocation to its
//! completion, coloured by outcome (ok green, fail red, info orange, never completed grey), the
//! op on hover. Self-contained: inline CSS, no scripts, no fetches, so it opens from disk.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use super::escape::escape;
use crate::harness::edn::Edn;
use crate::harness::history::{History, Op, OpFn, OpType, Process};

/// Column width in pixels.
const COLUMN: usize = 96;
/// Pixels per second of history time, at most.
const MAX_SCALE: f64 = 100.0;
/// Tallest page, in pixels: longer runs get a smaller scale.
const MAX_HEIGHT: f64 = 40_000.0;
/// Most boxes drawn; the page says how many were left out.
const MAX_BOXES: usize = 20_000;
/// Room above the boxes for the column headers.
const HEADER: f64 = 40.0;

/// The page for `history`, titled `title`.
pub fn timeline_html(history: &History, title: &str) -> String {
    let pairs = pairs(history);
    let end = history.ops().last().map_or(0, |op| op.time) as f64 / 1e9;
    let scale = (MAX_HEIGHT / end.max(1.0)).min(MAX_SCALE);
    let mut columns: BTreeMap<ColumnKey, usize> = BTreeMap::new();
    for (invoke, _) in &pairs {
        let next = columns.len();
        columns.entry(ColumnKey::of(invoke.process)).or_insert(next);
    }
    // Number the columns in sorted order (clients by number, then the nemesis).
    for (position, index) in columns.values_mut().enumerate() {
        *index = position;
    }
    let height = HEADER + end * scale + 40.0;
    let width = columns.len() * COLUMN + 80;
    let mut page = String::new();
    let _infallible = write!(
        page,
        "<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>{}</title>\n<style>\n\
         body {{ font: 12px sans-serif; margin: 8px; }}\n\
         .timeline {{ position: relative; width: {width}px; height: {height:.0}px; }}\n\
         .lane {{ position: absolute; top: 0; width: {}px; height: 100%; border-left: 1px solid #ddd; }}\n\
         .lane h2 {{ font-size: 12px; margin: 4px; position: sticky; top: 0; background: #fff; }}\n\
         .op {{ position: absolute; left: 4px; width: {}px; border-radius: 2px; overflow: hidden; \
         font-size: 10px; box-sizing: border-box; border: 1px solid rgba(0,0,0,.25); }}\n\
         .ok {{ background: #b3f3b5; }} .fail {{ background: #f5a8a8; }}\n\
         .info {{ background: #ffd890; }} .open {{ background: #ccc; }}\n\
         .tick {{ position: absolute; left: 0; width: 100%; border-top: 1px dotted #eee; color: #999; }}\n\
         </style></head><body>\n<h1>{}</h1>\n\
         <p>One column per process (the nemesis's boxes are partitions, start to heal), time downward ({scale:.1} px per second). Green: ok; red: \
         fail; orange: info (indeterminate); grey: never completed. Hover a box for the op.</p>\n",
        escape(title),
        COLUMN,
        COLUMN - 8,
        escape(title),
    );
    if pairs.len() > MAX_BOXES {
        let _infallible = writeln!(
            page,
            "<p class=\"omitted\">Showing the first {MAX_BOXES} of {} operations; {} left out \
             (see history.txt).</p>",
            pairs.len(),
            pairs.len() - MAX_BOXES
        );
    }
    page.push_str("<div class=\"timeline\">\n");
    let tick_every = if end > 120.0 { 10 } else { 1 };
    let mut second = 0;
    while (second as f64) <= end {
        let _infallible = writeln!(
            page,
            "<div class=\"tick\" style=\"top:{:.0}px\">{second} s</div>",
            HEADER + second as f64 * scale
        );
        second += tick_every;
    }
    for (key, index) in &columns {
        let _infallible = writeln!(
            page,
            "<div class=\"lane\" style=\"left:{}px\"><h2>{}</h2></div>",
            60 + index * COLUMN,
            escape(&key.name())
        );
    }
    for (invoke, completion) in pairs.iter().take(MAX_BOXES) {
        let column = columns[&ColumnKey::of(invoke.process)];
        let start = invoke.time as f64 / 1e9;
        let stop = completion.map_or(end, |op| op.time as f64 / 1e9);
        let class = match completion.map(|op| op.kind) {
            Some(OpType::Ok) => "ok",
            Some(OpType::Fail) => "fail",
            Some(OpType::Info) => "info",
            Some(OpType::Invoke) | None => "open",
        };
        let _infallible = writeln!(
            page,
            "<div class=\"op {class}\" style=\"left:{}px;top:{:.1}px;height:{:.1}px\" \
             title=\"{}\">{}</div>",
            64 + column * COLUMN,
            HEADER + start * scale,
            ((stop - start) * scale).max(3.0),
            escape(&hover(invoke, *completion)),
            invoke.f.name(),
        );
    }
    page.push_str("</div>\n</body></html>\n");
    page
}

/// Client invocations with their completions ([`History::pairs`]), and for the nemesis one box
/// per partition, from its start to the heal that ended it (Maelstrom records each nemesis step
/// as two `info` events, not as an invocation and a completion).
fn pairs(history: &History) -> Vec<(&Op, Option<&Op>)> {
    let mut pairs = history.pairs();
    let mut cut: Option<&Op> = None;
    for op in history
        .ops()
        .iter()
        .filter(|op| op.process == Process::Nemesis)
    {
        match (op.f, cut) {
            (OpFn::StartPartition, None) => cut = Some(op),
            (OpFn::StopPartition, Some(start)) => {
                pairs.push((start, Some(op)));
                cut = None;
            }
            _ => {}
        }
    }
    if let Some(start) = cut {
        pairs.push((start, None));
    }
    pairs.sort_by_key(|(invoke, _)| invoke.index);
    pairs
}

/// What hovering a box shows: the process, the op, its outcome and its times.
fn hover(invoke: &Op, completion: Option<&Op>) -> String {
    let process = ColumnKey::of(invoke.process).name();
    let mut text = format!(
        "{process} :{} {}\ninvoked at {:.3} s",
        invoke.f.name(),
        Edn::from(&invoke.value),
        invoke.time as f64 / 1e9
    );
    match completion {
        Some(done) => {
            let _infallible = write!(
                text,
                "\n:{} {} at {:.3} s ({:.1} ms)",
                done.kind.name(),
                Edn::from(&done.value),
                done.time as f64 / 1e9,
                done.time.saturating_sub(invoke.time) as f64 / 1e6
            );
            if let Some(error) = &done.error {
                let _infallible = write!(text, "\nerror {error}");
            }
        }
        None => text.push_str("\nnever completed"),
    }
    text
}

/// Columns sort clients by number, then the nemesis.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum ColumnKey {
    Client(u64),
    Nemesis,
}

impl ColumnKey {
    fn of(process: Process) -> Self {
        match process {
            Process::Client(p) => ColumnKey::Client(p),
            Process::Nemesis => ColumnKey::Nemesis,
        }
    }

    fn name(self) -> String {
        match self {
            ColumnKey::Client(p) => format!("process {p}"),
            ColumnKey::Nemesis => "nemesis".to_string(),
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::timeline_html;
    use crate::harness::history::{History, Op, OpFn, OpType, Process};

    #[test]
    fn one_column_per_process_and_one_box_per_operation() {
        let history = History::from_ops([
            Op::new(
                0,
                OpType::Invoke,
                Process::Client(0),
                OpFn::Broadcast,
                json!(1),
            ),
            Op::new(
                5,
                OpType::Invoke,
                Process::Client(3),
                OpFn::Read,
                json!(null),
            ),
            Op::new(
                9_000_000,
                OpType::Ok,
                Process::Client(0),
                OpFn::Broadcast,
                json!(1),
            ),
            Op::new(
                1_000_000_000,
                OpType::Fail,
                Process::Client(3),
                OpFn::Read,
                json!(null),
            ),
            Op::new(
                1_100_000_000,
                OpType::Invoke,
                Process::Client(0),
                OpFn::Read,
                json!(null),
            ),
            Op::new(
                1_200_000_000,
                OpType::Info,
                Process::Nemesis,
                OpFn::StartPartition,
                json!("one"),
            ),
            Op::new(
                1_200_000_001,
                OpType::Info,
                Process::Nemesis,
                OpFn::StartPartition,
                json!({}),
            ),
            Op::new(
                1_500_000_000,
                OpType::Info,
                Process::Nemesis,
                OpFn::StopPartition,
                json!(null),
            ),
            Op::new(
                1_500_000_001,
                OpType::Info,
                Process::Nemesis,
                OpFn::StopPartition,
                json!("network-healed"),
            ),
        ]);
        let page = timeline_html(&history, "broadcast <run>");
        assert_eq!(page.matches("class=\"lane\"").count(), 3);
        assert_eq!(
            page.matches("class=\"op info\"").count(),
            1,
            "the partition, start to heal"
        );
        assert_eq!(page.matches("class=\"op ok\"").count(), 1);
        assert_eq!(page.matches("class=\"op fail\"").count(), 1);
        assert_eq!(page.matches("class=\"op open\"").count(), 1);
        assert!(page.contains("broadcast &lt;run&gt;"));
        assert!(page.contains("process 0 :broadcast 1\ninvoked at 0.000 s\n:ok 1 at 0.009 s"));
        assert!(
            !page.contains("http"),
            "no fetches: the page is self-contained"
        );
    }
}

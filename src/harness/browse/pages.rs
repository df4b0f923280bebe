//! The two HTML pages of `sluicegate serve`: the index of runs and one run's page. Plain HTML
//! with inline CSS, no scripts: it has to read well in any browser and in a test's DOM dump.

use std::fmt::Write as _;
use std::fs;
use std::path::Path;

use super::runs::{RunEntry, readable_stamp};
use crate::harness::report::escape;

const STYLE: &str = "<style>body { font: 14px sans-serif; margin: 16px; } \
table { border-collapse: collapse; } td, th { padding: 4px 8px; border-bottom: 1px solid #ddd; \
text-align: left; vertical-align: top; } .summary { font: 12px monospace; } \
.verdict.valid { color: #170; font-weight: bold; } .verdict.invalid { color: #c00; \
font-weight: bold; } .verdict.unknown, .verdict.unfinished { color: #a60; font-weight: bold; } \
pre { background: #f6f6f6; padding: 8px; white-space: pre-wrap; } \
iframe, object { border: 1px solid #ccc; width: 100%; }</style>";

/// The index: one row per run, newest first.
pub fn index_page(store: &Path, runs: &[RunEntry]) -> String {
    let mut page = format!(
        "<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>sluicegate runs</title>\
         {STYLE}</head><body>\n<h1>Runs in {}</h1>\n<p>{} run(s), newest first.</p>\n\
         <table class=\"runs\"><tr><th>started</th><th>workload</th><th>node</th>\
         <th>verdict</th><th>summary</th></tr>\n",
        escape(&store.display().to_string()),
        runs.len()
    );
    for run in runs {
        let _infallible = writeln!(
            page,
            "<tr class=\"run {verdict}\"><td><a href=\"/runs/{workload}/{stamp}/\">{started}</a>\
             </td><td class=\"workload\">{workload}</td><td>{node}</td>\
             <td class=\"verdict {verdict}\">{verdict}</td><td class=\"summary\">{summary}</td></tr>",
            verdict = run.verdict,
            workload = escape(&run.workload),
            stamp = escape(&run.stamp),
            started = escape(&readable_stamp(&run.stamp)),
            node = escape(&run.node),
            summary = escape(&run.summary),
        );
    }
    page.push_str("</table>\n</body></html>\n");
    page
}

/// What each file of a run folder is, in the order the page lists them.
const FILES: &[(&str, &str)] = &[
    ("summary.txt", "verdict and the figures that matter"),
    (
        "messages.svg",
        "message diagram: every message between clients and nodes",
    ),
    (
        "timeline.html",
        "timeline: each process's operations over time",
    ),
    ("history.txt", "history, one event per line"),
    ("results.edn", "results map, as Maelstrom prints it"),
    ("results.json", "results map as JSON"),
    ("history.edn", "history in EDN"),
    ("latency.svg", "latency plot"),
    ("test.json", "what was run"),
    ("harness.log", "the harness's own log"),
];

/// One run's page: verdict, summary, what was run, links to every file, and the diagrams.
pub fn run_page(dir: &Path, run: &RunEntry) -> String {
    let summary = fs::read_to_string(dir.join("summary.txt")).unwrap_or_default();
    let info = fs::read_to_string(dir.join("test.json")).unwrap_or_default();
    let mut page = format!(
        "<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>{workload} {started}</title>\
         {STYLE}</head><body>\n<p><a href=\"/\">all runs</a></p>\n\
         <h1>{workload} run of {started}</h1>\n\
         <p>Verdict: <span class=\"verdict {verdict}\">{verdict}</span></p>\n\
         <pre class=\"summary\">{}</pre>\n<h2>Files</h2>\n<ul class=\"files\">\n",
        escape(&summary),
        workload = escape(&run.workload),
        started = escape(&readable_stamp(&run.stamp)),
        verdict = run.verdict,
    );
    for (name, what) in FILES {
        if dir.join(name).is_file() {
            let _infallible = writeln!(page, "<li><a href=\"{name}\">{name}</a>: {what}</li>");
        }
    }
    let mut logs: Vec<String> = fs::read_dir(dir.join("node-logs"))
        .map(|entries| {
            entries
                .filter_map(Result::ok)
                .filter_map(|entry| entry.file_name().into_string().ok())
                .collect()
        })
        .unwrap_or_default();
    logs.sort_by_key(|name| natural_key(name));
    for log in &logs {
        let _infallible = writeln!(
            page,
            "<li><a href=\"node-logs/{0}\">node-logs/{0}</a>: node log</li>",
            escape(log)
        );
    }
    page.push_str("</ul>\n");
    if !info.is_empty() {
        let _infallible = writeln!(
            page,
            "<h2>What was run</h2>\n<pre class=\"test\">{}</pre>",
            escape(&info)
        );
    }
    if dir.join("messages.svg").is_file() {
        page.push_str(
            "<h2>Message diagram</h2>\n<p><a href=\"messages.svg\">open it alone</a>; hover an \
             arrow for its whole body.</p>\n<object class=\"diagram\" data=\"messages.svg\" \
             type=\"image/svg+xml\" style=\"height: 700px\"></object>\n",
        );
    }
    if dir.join("timeline.html").is_file() {
        page.push_str(
            "<h2>Timeline</h2>\n<p><a href=\"timeline.html\">open it alone</a>.</p>\n\
             <iframe class=\"timeline\" src=\"timeline.html\" style=\"height: 600px\"></iframe>\n",
        );
    }
    if dir.join("latency.svg").is_file() {
        page.push_str("<h2>Latency</h2>\n<img src=\"latency.svg\" alt=\"latency plot\">\n");
    }
    page.push_str("</body></html>\n");
    page
}

/// `n10` after `n9`: the name's text, then its number.
fn natural_key(name: &str) -> (String, u64) {
    let digits: String = name.chars().filter(char::is_ascii_digit).collect();
    let text: String = name.chars().filter(|c| !c.is_ascii_digit()).collect();
    (text, digits.parse().unwrap_or(0))
}

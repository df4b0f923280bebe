//! What a run leaves behind: the results printed as Maelstrom prints them
//! (docs/harness.md §6.4, §7), a one-line summary of the numbers that matter, and the run folder
//! in the store.
//!
//! The test `results_print_as_edn_with_the_verdict_line` below shows
//! what an echo run with no operations prints.

mod escape;
mod history_text;
mod messages;
mod store;
mod svg;
mod timeline;
mod timestamp;

use std::fmt::Write as _;
use std::io::{self, Write};
use std::time::Duration;

#[cfg(feature = "serve")]
pub(crate) use escape::escape;
pub use history_text::history_text;
pub use messages::{DiagramWindow, messages_svg};
pub use store::RunStore;
pub use svg::latency_svg;
pub use timeline::timeline_html;
pub use timestamp::utc_timestamp;

use crate::harness::check::{Analysis, LatencyQuantiles, Summary, Validity, WorkloadKind};

/// One node whose stdout Maelstrom would have stopped reading (docs/harness.md §1.7).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StdoutDeath {
    /// The node, e.g. `n3`.
    pub node: String,
    /// The first offending line and why it was rejected.
    pub example: String,
    /// How many lines were rejected or, after the death, discarded.
    pub count: u64,
}

/// What the runtime knows about a run besides the history and the journal.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RunNotes {
    /// One entry per node whose stdout died; empty in a healthy run.
    pub stdout_deaths: Vec<StdoutDeath>,
    /// CPU time the harness itself used, to tell a saturated harness from a slow node.
    pub harness_cpu: Duration,
    /// Wall-clock duration of the whole run.
    pub wall: Duration,
}

/// Jepsen's verdict line for `valid` (docs/harness.md §6.4), exactly.
pub fn verdict_line(valid: Validity) -> &'static str {
    match valid {
        Validity::Valid => "Everything looks good! \u{30fd}(\u{2018}\u{30fc}`)\u{30ce}",
        Validity::Invalid => {
            "Analysis invalid! (\u{ff89}\u{ca5}\u{76ca}\u{ca5}\u{ff09}\u{ff89} \u{253b}\u{2501}\u{253b}"
        }
        Validity::Unknown => {
            "Errors occurred during analysis, but no anomalies found. \u{ca0}~\u{ca0}"
        }
    }
}

/// Prints the results as Maelstrom does: the results map in EDN, a blank line and the verdict
/// line; then any stdout deaths, loudly, and the summary line. With `json`, prints one JSON
/// object instead: `{"results", "valid", "verdict", "summary", "stdout_deaths", ...}`.
///
/// # Errors
/// Any error writing to `out`.
pub fn print_results(
    analysis: &Analysis,
    notes: &RunNotes,
    json: bool,
    out: &mut impl Write,
) -> io::Result<()> {
    if json {
        let document = json_document(analysis, notes);
        let text = serde_json::to_string_pretty(&document).map_err(io::Error::other)?;
        return writeln!(out, "{text}");
    }
    writeln!(out, "{}", analysis.results.pretty())?;
    writeln!(out)?;
    writeln!(out, "{}", verdict_line(analysis.valid))?;
    let deaths = stdout_deaths_block(&notes.stdout_deaths);
    if !deaths.is_empty() {
        writeln!(out)?;
        write!(out, "{deaths}")?;
    }
    writeln!(out)?;
    writeln!(out, "{}", summary_line(&analysis.summary, notes))?;
    out.flush()
}

/// The stdout-death warning, one header line and one line per node; empty when there were
/// none.
pub fn stdout_deaths_block(deaths: &[StdoutDeath]) -> String {
    if deaths.is_empty() {
        return String::new();
    }
    let lines: u64 = deaths.iter().map(|death| death.count).sum();
    let mut block = format!(
        "!! STDOUT DEATH on {} node(s), {lines} line(s): after a bad stdout line Maelstrom stops \
         reading that node's stdout, so its later output is lost (docs/harness.md §1.7)\n",
        deaths.len()
    );
    for death in deaths {
        let _infallible = writeln!(
            block,
            "!!   {}: {} line(s); first: {}",
            death.node, death.count, death.example
        );
    }
    block
}

/// One line with the numbers a person checks first, e.g. `servers msgs-per-op 21.90 | stable
/// latency p50 310 ms, p95 650 ms, p99 720 ms, max 790 ms | lost 0, never-read 0 | ops 2025 |
/// stdout deaths 0 | harness cpu 3.1 s, wall 31.2 s`.
pub fn summary_line(summary: &Summary, notes: &RunNotes) -> String {
    let mut parts: Vec<String> = Vec::new();
    match summary.workload {
        WorkloadKind::Broadcast => {
            parts.push(format!(
                "servers msgs-per-op {}",
                ratio(summary.servers_msgs_per_op)
            ));
            parts.push(format!(
                "stable latency {}",
                quantiles(summary.stable_latencies.as_ref())
            ));
            parts.push(format!(
                "lost {}, never-read {}",
                summary.lost_count, summary.never_read_count
            ));
            if summary.duplicated_count > 0 {
                let effect = if summary.duplicates_invalidate {
                    "invalid here"
                } else {
                    "ignored under --maelstrom-dup-quirk"
                };
                parts.push(format!(
                    "duplicated {} ({effect}; Maelstrom would not flag this)",
                    summary.duplicated_count
                ));
            }
        }
        WorkloadKind::Echo => {
            parts.push(format!(
                "all msgs-per-op {}",
                ratio(summary.all_msgs_per_op)
            ));
            parts.push(format!("echo errors {}", summary.echo_error_count));
        }
        WorkloadKind::UniqueIds => {
            parts.push(format!(
                "all msgs-per-op {}",
                ratio(summary.all_msgs_per_op)
            ));
            parts.push(format!("duplicated ids {}", summary.duplicated_count));
        }
        WorkloadKind::Kafka => {
            parts.push(format!(
                "servers msgs-per-op {}",
                ratio(summary.servers_msgs_per_op)
            ));
            parts.push(format!(
                "send latency {}",
                ok_quantiles(summary.send_latencies.as_ref())
            ));
            parts.push(format!(
                "poll latency {}",
                ok_quantiles(summary.poll_latencies.as_ref())
            ));
            if summary.kafka_error_types.is_empty() {
                parts.push("anomalies none".to_owned());
            } else {
                parts.push(format!(
                    "anomalies {} ({})",
                    summary.kafka_anomalies,
                    summary.kafka_error_types.join(", ")
                ));
            }
        }
        WorkloadKind::GCounter => {
            parts.push(format!(
                "servers msgs-per-op {}",
                ratio(summary.servers_msgs_per_op)
            ));
            parts.push(format!(
                "final reads out of range {} of {}",
                summary.counter_errors, summary.counter_final_reads
            ));
        }
    }
    parts.push(format!(
        "ops {}, ok-fraction {:.3}",
        summary.op_count, summary.ok_fraction
    ));
    let dead_lines: u64 = notes.stdout_deaths.iter().map(|death| death.count).sum();
    parts.push(if notes.stdout_deaths.is_empty() {
        "stdout deaths 0".to_owned()
    } else {
        format!(
            "stdout deaths {} ({dead_lines} lines)",
            notes.stdout_deaths.len()
        )
    });
    parts.push(format!(
        "harness cpu {:.1} s, wall {:.1} s",
        notes.harness_cpu.as_secs_f64(),
        notes.wall.as_secs_f64()
    ));
    parts.join(" | ")
}

fn ratio(value: Option<f32>) -> String {
    value.map_or_else(|| "n/a (no ops)".to_owned(), |v| format!("{v:.2}"))
}

fn quantiles(q: Option<&LatencyQuantiles>) -> String {
    match q {
        Some(q) => format!(
            "p50 {} ms, p95 {} ms, p99 {} ms, max {} ms",
            q.p50, q.p95, q.p99, q.max
        ),
        None => "n/a (nothing stable)".to_owned(),
    }
}

fn ok_quantiles(q: Option<&LatencyQuantiles>) -> String {
    match q {
        Some(q) => format!(
            "p50 {} ms, p95 {} ms, p99 {} ms, max {} ms",
            q.p50, q.p95, q.p99, q.max
        ),
        None => "n/a (no :ok op)".to_owned(),
    }
}

fn json_document(analysis: &Analysis, notes: &RunNotes) -> serde_json::Value {
    let summary = &analysis.summary;
    let quantiles = |q: Option<&LatencyQuantiles>| {
        q.map(|q| serde_json::json!({"p0": q.p0, "p50": q.p50, "p95": q.p95, "p99": q.p99, "max": q.max}))
    };
    let ratio = |r: Option<f32>| r.map(analysis_float);
    serde_json::json!({
        "results": analysis.results.to_json(),
        "valid": analysis.valid.to_edn().to_json(),
        "verdict": verdict_line(analysis.valid),
        "summary": {
            "workload": summary.workload.name(),
            "op_count": summary.op_count,
            "ok_fraction": summary.ok_fraction,
            "servers_msgs_per_op": ratio(summary.servers_msgs_per_op),
            "all_msgs_per_op": ratio(summary.all_msgs_per_op),
            "stable_latencies": quantiles(summary.stable_latencies.as_ref()),
            "lost_latencies": quantiles(summary.lost_latencies.as_ref()),
            "attempt_count": summary.attempt_count,
            "stable_count": summary.stable_count,
            "stale_count": summary.stale_count,
            "lost_count": summary.lost_count,
            "never_read_count": summary.never_read_count,
            "duplicated_count": summary.duplicated_count,
            "duplicates_invalidate": summary.duplicates_invalidate,
            "echo_error_count": summary.echo_error_count,
            "counter_errors": summary.counter_errors,
            "counter_final_reads": summary.counter_final_reads,
            "send_latencies": quantiles(summary.send_latencies.as_ref()),
            "poll_latencies": quantiles(summary.poll_latencies.as_ref()),
            "kafka_anomalies": summary.kafka_anomalies,
            "kafka_error_types": summary.kafka_error_types,
        },
        "stdout_deaths": notes.stdout_deaths.iter().map(|death| serde_json::json!({
            "node": death.node, "example": death.example, "count": death.count,
        })).collect::<Vec<_>>(),
        "harness_cpu_s": notes.harness_cpu.as_secs_f64(),
        "wall_s": notes.wall.as_secs_f64(),
    })
}

/// An f32 as JSON with its f32 digits (27.806324, not 27.806324005126953).
fn analysis_float(value: f32) -> serde_json::Value {
    crate::harness::edn::Edn::Float32(value).to_json()
}

#[cfg(test)]
mod tests {
    #[test]
    fn results_print_as_edn_with_the_verdict_line() {
        use crate::harness::check::{CheckOptions, WorkloadKind, analyze};
        use crate::harness::history::History;
        use crate::harness::net_stats::NetStats;
        use crate::harness::report::{RunNotes, print_results};
        use std::time::Duration;

        let analysis = analyze(
            WorkloadKind::Echo,
            &History::new(),
            &NetStats::default(),
            &CheckOptions::default(),
        );
        let notes = RunNotes {
            stdout_deaths: vec![],
            harness_cpu: Duration::ZERO,
            wall: Duration::from_secs(10),
        };
        let mut out = Vec::new();
        print_results(&analysis, &notes, false, &mut out).unwrap();
        let text = String::from_utf8(out).unwrap();
        assert!(text.starts_with("{:perf {:latency-graph {:valid? true},\n"));
        assert!(text.contains(" :valid? true}\n\nEverything looks good! ヽ(‘ー`)ノ\n"));
    }
}

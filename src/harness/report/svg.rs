//! `latency.svg`: a hand-written plot of the run, readable in any browser.
//!
//! Top panel, broadcast: each stable value's stable latency (ms) against the time it became
//! known, lost values in red; other workloads: each op's latency against its invocation time.
//! Bottom panel: invocations per second, one line per function.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use crate::harness::check::WorkloadKind;
use crate::harness::check::set_full::{self, Outcome};
use crate::harness::history::{History, OpType};

const WIDTH: f64 = 900.0;
const PANEL_HEIGHT: f64 = 260.0;
const LEFT: f64 = 70.0;
const RIGHT: f64 = 20.0;
const TOP: f64 = 40.0;
const GAP: f64 = 80.0;
const COLORS: [&str; 6] = [
    "#1f77b4", "#2ca02c", "#9467bd", "#8c564b", "#e377c2", "#17becf",
];

/// One scatter point: seconds, milliseconds, colour.
type Point = (f64, f64, &'static str);

/// The SVG text of the plot for a run of `workload` with `history`.
pub fn latency_svg(workload: WorkloadKind, history: &History) -> String {
    let (title, points, legend) = match workload {
        WorkloadKind::Broadcast => broadcast_points(history),
        WorkloadKind::Echo
        | WorkloadKind::UniqueIds
        | WorkloadKind::GCounter
        | WorkloadKind::Kafka => op_latency_points(history),
    };
    let height = TOP + PANEL_HEIGHT + GAP + PANEL_HEIGHT + 50.0;
    let end_s = history
        .ops()
        .last()
        .map_or(1.0, |op| op.time as f64 / 1e9)
        .max(1.0);
    let mut svg = format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{WIDTH}\" height=\"{height}\" \
         font-family=\"sans-serif\" font-size=\"12\">\n\
         <rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n"
    );

    // Top panel: latencies.
    let max_ms = points.iter().map(|p| p.1).fold(0.0, f64::max).max(1.0);
    let top = Panel::new(TOP, end_s, max_ms);
    top.frame(&mut svg, &title, "time (s)", "ms");
    for (x, y, color) in &points {
        let _infallible = writeln!(
            svg,
            "<circle cx=\"{:.1}\" cy=\"{:.1}\" r=\"2.2\" fill=\"{color}\" fill-opacity=\"0.7\"/>",
            top.x(*x),
            top.y(*y)
        );
    }
    legend_row(&mut svg, TOP - 8.0, &legend);

    // Bottom panel: invocation rate per function, 1 s buckets.
    let buckets = end_s.ceil() as usize;
    let mut rates: BTreeMap<&'static str, Vec<f64>> = BTreeMap::new();
    for op in history
        .ops()
        .iter()
        .filter(|op| op.is_client() && op.kind == OpType::Invoke)
    {
        let bucket = ((op.time / 1_000_000_000) as usize).min(buckets.saturating_sub(1));
        rates
            .entry(op.f.name())
            .or_insert_with(|| vec![0.0; buckets.max(1)])[bucket] += 1.0;
    }
    let max_rate = rates
        .values()
        .flatten()
        .fold(0.0, |a: f64, b| a.max(*b))
        .max(1.0);
    let bottom_top = TOP + PANEL_HEIGHT + GAP;
    let bottom = Panel::new(bottom_top, end_s, max_rate);
    bottom.frame(&mut svg, "Invocations per second", "time (s)", "ops/s");
    let mut rate_legend = Vec::new();
    for ((f, counts), color) in rates.iter().zip(COLORS.iter().cycle()) {
        let path: Vec<String> = counts
            .iter()
            .enumerate()
            .map(|(i, n)| format!("{:.1},{:.1}", bottom.x(i as f64 + 0.5), bottom.y(*n)))
            .collect();
        let _infallible = writeln!(
            svg,
            "<polyline fill=\"none\" stroke=\"{color}\" stroke-width=\"1.5\" points=\"{}\"/>",
            path.join(" ")
        );
        rate_legend.push((
            format!("{f} ({:.0} total)", counts.iter().sum::<f64>()),
            *color,
        ));
    }
    legend_row(&mut svg, bottom_top - 8.0, &rate_legend);
    svg.push_str("</svg>\n");
    svg
}

type Scatter = (String, Vec<Point>, Vec<(String, &'static str)>);

fn broadcast_points(history: &History) -> Scatter {
    let result = set_full::check(history, false);
    let mut points = Vec::new();
    let (mut stable, mut lost) = (0, 0);
    for element in &result.elements {
        let Some(known) = element.known else { continue };
        let x = known.time as f64 / 1e9;
        match element.outcome {
            Outcome::Stable => {
                stable += 1;
                points.push((x, element.stable_latency.unwrap_or(0) as f64, COLORS[0]));
            }
            Outcome::Lost => {
                lost += 1;
                points.push((x, element.lost_latency.unwrap_or(0) as f64, "#d62728"));
            }
            Outcome::NeverRead => {}
        }
    }
    let mut legend = vec![(format!("stable ({stable})"), COLORS[0])];
    if lost > 0 {
        legend.push((format!("lost ({lost}), at lost latency"), "#d62728"));
    }
    if let Some(q) = result.stable_latencies {
        legend.push((
            format!(
                "p50 {} ms, p95 {} ms, p99 {} ms, max {} ms",
                q.p50, q.p95, q.p99, q.max
            ),
            "#555555",
        ));
    }
    (
        "Stable latency of each broadcast value (ms) vs when it became known".to_owned(),
        points,
        legend,
    )
}

fn op_latency_points(history: &History) -> Scatter {
    let mut points = Vec::new();
    let mut counts = [0u64; 3];
    for (invoke, complete) in history.pairs() {
        let Some(complete) = complete.filter(|_| invoke.is_client()) else {
            continue;
        };
        let (slot, color) = match complete.kind {
            OpType::Ok => (0, COLORS[1]),
            OpType::Fail => (1, "#d62728"),
            _ => (2, "#ff7f0e"),
        };
        counts[slot] += 1;
        let latency_ms = complete.time.saturating_sub(invoke.time) as f64 / 1e6;
        points.push((invoke.time as f64 / 1e9, latency_ms, color));
    }
    let legend = vec![
        (format!("ok ({})", counts[0]), COLORS[1]),
        (format!("fail ({})", counts[1]), "#d62728"),
        (format!("info ({})", counts[2]), "#ff7f0e"),
    ];
    (
        "Latency of each operation (ms) vs invocation time".to_owned(),
        points,
        legend,
    )
}

fn legend_row(svg: &mut String, y: f64, items: &[(String, &'static str)]) {
    let mut x = WIDTH - RIGHT;
    // Right-aligned: lay out from the right edge leftwards.
    for (label, color) in items.iter().rev() {
        let width = 7.0 * label.chars().count() as f64 + 20.0;
        x -= width;
        let _infallible = writeln!(
            svg,
            "<rect x=\"{x:.1}\" y=\"{:.1}\" width=\"10\" height=\"10\" fill=\"{color}\"/>\
             <text x=\"{:.1}\" y=\"{y:.1}\">{}</text>",
            y - 9.0,
            x + 14.0,
            escape(label)
        );
    }
}

fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

/// One plot area with linear axes from 0.
struct Panel {
    top: f64,
    x_max: f64,
    y_max: f64,
}

impl Panel {
    fn new(top: f64, x_max: f64, y_max: f64) -> Panel {
        Panel {
            top,
            x_max: nice_ceiling(x_max),
            y_max: nice_ceiling(y_max),
        }
    }

    fn x(&self, value: f64) -> f64 {
        LEFT + value / self.x_max * (WIDTH - LEFT - RIGHT)
    }

    fn y(&self, value: f64) -> f64 {
        self.top + PANEL_HEIGHT - value / self.y_max * PANEL_HEIGHT
    }

    fn frame(&self, svg: &mut String, title: &str, x_label: &str, y_label: &str) {
        let bottom = self.top + PANEL_HEIGHT;
        let _infallible = writeln!(
            svg,
            "<text x=\"{LEFT}\" y=\"{:.1}\" font-size=\"14\" font-weight=\"bold\">{}</text>\n\
             <rect x=\"{LEFT}\" y=\"{:.1}\" width=\"{:.1}\" height=\"{PANEL_HEIGHT}\" fill=\"none\" stroke=\"#333\"/>\n\
             <text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"middle\">{x_label}</text>\n\
             <text x=\"14\" y=\"{:.1}\" transform=\"rotate(-90 14 {:.1})\" text-anchor=\"middle\">{y_label}</text>",
            self.top - 22.0,
            escape(title),
            self.top,
            WIDTH - LEFT - RIGHT,
            LEFT + (WIDTH - LEFT - RIGHT) / 2.0,
            bottom + 34.0,
            self.top + PANEL_HEIGHT / 2.0,
            self.top + PANEL_HEIGHT / 2.0,
        );
        let x_step = nice_step(self.x_max);
        let mut tick = 0.0;
        while tick <= self.x_max + x_step / 2.0 {
            let _infallible = writeln!(
                svg,
                "<line x1=\"{x:.1}\" y1=\"{bottom:.1}\" x2=\"{x:.1}\" y2=\"{:.1}\" stroke=\"#333\"/>\
                 <text x=\"{x:.1}\" y=\"{:.1}\" text-anchor=\"middle\">{}</text>",
                bottom + 4.0,
                bottom + 17.0,
                tick_label(tick),
                x = self.x(tick),
            );
            tick += x_step;
        }
        let y_step = nice_step(self.y_max);
        let mut tick = 0.0;
        while tick <= self.y_max + y_step / 2.0 {
            let y = self.y(tick);
            let _infallible = writeln!(
                svg,
                "<line x1=\"{LEFT}\" y1=\"{y:.1}\" x2=\"{:.1}\" y2=\"{y:.1}\" stroke=\"#ddd\"/>\
                 <text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"end\">{}</text>",
                WIDTH - RIGHT,
                LEFT - 6.0,
                y + 4.0,
                tick_label(tick),
            );
            tick += y_step;
        }
    }
}

fn tick_label(value: f64) -> String {
    if (value - value.round()).abs() < 1e-9 {
        format!("{value:.0}")
    } else {
        format!("{value:.1}")
    }
}

/// A step of 1, 2 or 5 × 10ⁿ giving about 5 to 10 ticks up to `max`.
fn nice_step(max: f64) -> f64 {
    let raw = max / 6.0;
    let magnitude = 10f64.powf(raw.log10().floor());
    let step = [1.0, 2.0, 5.0, 10.0]
        .into_iter()
        .map(|m| m * magnitude)
        .find(|step| *step >= raw)
        .unwrap_or(10.0 * magnitude);
    step.max(f64::MIN_POSITIVE)
}

/// `max` rounded up to a whole number of steps.
fn nice_ceiling(max: f64) -> f64 {
    let step = nice_step(max);
    (max / step).ceil().max(1.0) * step
}

//! `messages.svg`: a Lamport diagram of the network's event log. One vertical lane per client and
//! node, time flowing down one row per event (send, delivery, drop, partition), an arrow per
//! message from its send row on the sender's lane to its delivery row on the receiver's, labelled
//! with the body's type and key fields (the whole body on hover). Partitions are shaded from
//! start to heal, darker on the lanes of the nodes that drop someone; a message a partition
//! dropped ends in a red cross, one never delivered trails off dashed. Rows, not seconds: a
//! burst stays readable; the time of every few rows is written on the left.
//!
//! Large runs draw a window (the first `max_messages` sent between two history times) and say
//! in the picture what was left out.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::fmt::Write as _;

use super::escape::escape;
use crate::harness::net::{MessageLog, NetEventKind, is_client};

const ROW: f64 = 16.0;
const LANE: f64 = 110.0;
const LEFT: f64 = 70.0;
const TOP: f64 = 70.0;

/// Which part of the log the diagram draws.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct DiagramWindow {
    /// Only messages sent at or after this history time, in seconds (negative: init).
    pub from_s: Option<f64>,
    /// Only messages sent before this history time, in seconds.
    pub to_s: Option<f64>,
    /// At most this many messages, the first sent.
    pub max_messages: usize,
}

impl Default for DiagramWindow {
    /// The first 2000 messages of the run.
    fn default() -> Self {
        DiagramWindow {
            from_s: None,
            to_s: None,
            max_messages: 2000,
        }
    }
}

/// Where each drawn message starts and ends, in rows.
struct Arrow {
    id: u64,
    sent: usize,
    end: Option<(usize, bool)>,
}

/// The diagram of `log` within `window`.
pub fn messages_svg(log: &MessageLog, window: &DiagramWindow) -> String {
    let in_window = |seconds: f64| {
        window.from_s.is_none_or(|from| seconds >= from)
            && window.to_s.is_none_or(|to| seconds < to)
    };
    let mut chosen: HashSet<u64> = HashSet::new();
    let (mut before, mut after) = (0usize, 0usize);
    for event in &log.events {
        if let NetEventKind::Send(id) = event.kind {
            let seconds = log.history_seconds(event.at);
            if !in_window(seconds) {
                if window.from_s.is_some_and(|from| seconds < from) {
                    before += 1;
                } else {
                    after += 1;
                }
            } else if chosen.len() < window.max_messages {
                chosen.insert(id);
            } else {
                after += 1;
            }
        }
    }
    // Rows: every event of a chosen message, and the partitions between the first and the last.
    let mut rows: Vec<(f64, Option<&NetEventKind>)> = Vec::new();
    let mut arrows: Vec<Arrow> = Vec::new();
    let mut arrow_of: HashMap<u64, usize> = HashMap::new();
    let mut partitions: Vec<(usize, Option<usize>, String, Vec<String>)> = Vec::new();
    let mut open_partition: Option<(String, Vec<String>)> = None;
    let mut started = false;
    let mut remaining = chosen.len();
    for event in &log.events {
        let seconds = log.history_seconds(event.at);
        let row = rows.len();
        match &event.kind {
            NetEventKind::Send(id) if chosen.contains(id) => {
                if !started {
                    started = true;
                    // A partition already on when the window opens is shaded from the top.
                    if let Some((shape, cut)) = open_partition.take() {
                        partitions.push((row, None, shape, cut));
                    }
                }
                arrow_of.insert(*id, arrows.len());
                arrows.push(Arrow {
                    id: *id,
                    sent: row,
                    end: None,
                });
            }
            NetEventKind::Deliver(id) | NetEventKind::Drop(id) if arrow_of.contains_key(id) => {
                let dropped = matches!(event.kind, NetEventKind::Drop(_));
                arrows[arrow_of[id]].end = Some((row, dropped));
                remaining -= 1;
            }
            NetEventKind::Partition { shape, cut_nodes } => {
                if !started {
                    open_partition = Some((shape.clone(), cut_nodes.clone()));
                    continue;
                }
                partitions.push((row, None, shape.clone(), cut_nodes.clone()));
            }
            NetEventKind::Heal => {
                if !started {
                    open_partition = None;
                    continue;
                }
                for partition in partitions.iter_mut().filter(|p| p.1.is_none()) {
                    partition.1 = Some(row);
                }
            }
            _ => continue,
        }
        rows.push((seconds, Some(&event.kind)));
        if started && remaining == 0 && arrows.len() == chosen.len() {
            break;
        }
    }
    let lanes = lane_order(log, &arrows);
    let lane_x: HashMap<&str, f64> = lanes
        .iter()
        .enumerate()
        .map(|(i, lane)| (lane.as_str(), LEFT + LANE * (i as f64 + 0.5)))
        .collect();
    let width = LEFT + LANE * lanes.len() as f64 + 20.0;
    let bottom = TOP + ROW * (rows.len() as f64 + 1.0);
    let height = bottom + 60.0;
    let y = |row: usize| TOP + ROW * (row as f64 + 0.5);

    let mut svg = String::new();
    let _infallible = write!(
        svg,
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{width:.0}\" height=\"{height:.0}\" \
         font-family=\"sans-serif\" font-size=\"10\">\n\
         <defs><marker id=\"head\" viewBox=\"0 0 10 10\" refX=\"10\" refY=\"5\" markerWidth=\"7\" \
         markerHeight=\"7\" orient=\"auto-start-reverse\"><path d=\"M0,0 L10,5 L0,10 z\"/></marker>\n\
         <marker id=\"head-client\" viewBox=\"0 0 10 10\" refX=\"10\" refY=\"5\" markerWidth=\"7\" \
         markerHeight=\"7\" orient=\"auto-start-reverse\"><path d=\"M0,0 L10,5 L0,10 z\" \
         fill=\"#4a90d9\"/></marker></defs>\n\
         <rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n"
    );
    let total = log.messages.len();
    let summary = if arrows.len() == total {
        format!("all {total} messages")
    } else {
        format!(
            "{} of {total} messages; left out: {before} sent earlier, {after} sent later \
             (--diagram-window FROM..TO picks another window)",
            arrows.len()
        )
    };
    let _infallible = writeln!(
        svg,
        "<text class=\"window\" x=\"8\" y=\"16\" font-size=\"12\">Messages: {}. Rows are events in \
         order; the left column gives the time in seconds. Red cross: dropped by a partition; \
         dashed: never delivered.</text>",
        escape(&summary)
    );
    for (start, end, shape, cut) in &partitions {
        let top = y(*start) - ROW / 2.0;
        let stop = end.map_or(bottom, |row| y(row) - ROW / 2.0);
        let _infallible = writeln!(
            svg,
            "<g class=\"partition\"><title>partition ({}): {} drop messages from the other \
             side</title><rect x=\"{LEFT}\" y=\"{top:.1}\" width=\"{:.0}\" height=\"{:.1}\" \
             fill=\"#ffe4e1\" fill-opacity=\"0.6\"/>",
            escape(shape),
            escape(&cut.join(" ")),
            width - LEFT,
            stop - top
        );
        for node in cut {
            if let Some(x) = lane_x.get(node.as_str()) {
                let _infallible = write!(
                    svg,
                    "<rect x=\"{:.1}\" y=\"{top:.1}\" width=\"{:.0}\" height=\"{:.1}\" \
                     fill=\"#f4a6a0\" fill-opacity=\"0.45\"/>",
                    x - LANE / 2.0 + 6.0,
                    LANE - 12.0,
                    stop - top
                );
            }
        }
        let _infallible = writeln!(
            svg,
            "<text x=\"{:.0}\" y=\"{:.1}\" fill=\"#b22\">partition: {}</text></g>",
            LEFT + 4.0,
            top + 11.0,
            escape(shape)
        );
    }
    for (lane, x) in lanes.iter().map(|lane| (lane, lane_x[lane.as_str()])) {
        let _infallible = writeln!(
            svg,
            "<g class=\"lane\"><text x=\"{x:.1}\" y=\"{:.0}\" text-anchor=\"middle\" \
             font-size=\"13\" font-weight=\"bold\">{}</text><line x1=\"{x:.1}\" y1=\"{:.0}\" \
             x2=\"{x:.1}\" y2=\"{bottom:.0}\" stroke=\"#999\"/></g>",
            TOP - 22.0,
            escape(lane),
            TOP - 14.0
        );
    }
    for (row, (seconds, _)) in rows.iter().enumerate() {
        if row % 5 == 0 {
            let _infallible = writeln!(
                svg,
                "<text x=\"4\" y=\"{:.1}\" fill=\"#888\">{seconds:.3}</text>",
                y(row) + 3.0
            );
        }
    }
    for arrow in &arrows {
        let Some(message) = log.message(arrow.id) else {
            continue;
        };
        let (x1, y1) = (lane_x[message.src.as_str()], y(arrow.sent));
        let x2 = lane_x[message.dest.as_str()];
        let involves_client = is_client(&message.src) || is_client(&message.dest);
        let colour = if message.label.starts_with("error") {
            "#e0167a"
        } else if involves_client {
            "#4a90d9"
        } else {
            "#000"
        };
        let head = if involves_client {
            "head-client"
        } else {
            "head"
        };
        let (class, y2, line_style) = match arrow.end {
            Some((row, false)) => (
                "msg",
                y(row),
                format!("stroke=\"{colour}\" marker-end=\"url(#{head})\""),
            ),
            Some((row, true)) => (
                "msg dropped",
                y(row),
                "stroke=\"#d00\" stroke-dasharray=\"4 3\"".to_string(),
            ),
            None => (
                "msg undelivered",
                bottom,
                format!("stroke=\"{colour}\" stroke-dasharray=\"2 4\""),
            ),
        };
        let fate = match arrow.end {
            Some((_, false)) => "delivered",
            Some((_, true)) => "DROPPED by a partition",
            None => "never delivered",
        };
        let _infallible = write!(
            svg,
            "<g class=\"{class}\"><title>{} → {} ({fate}) id {}: {}</title>\
             <line x1=\"{x1:.1}\" y1=\"{y1:.1}\" x2=\"{x2:.1}\" y2=\"{y2:.1}\" {line_style}/>",
            escape(&message.src),
            escape(&message.dest),
            message.id,
            escape(&message.body)
        );
        if let Some((_, true)) = arrow.end {
            let _infallible = write!(
                svg,
                "<path d=\"M{:.1},{:.1} l8,8 m0,-8 l-8,8\" stroke=\"#d00\" stroke-width=\"2\"/>",
                x2 - 4.0,
                y2 - 4.0
            );
        }
        let (mx, my) = ((x1 + x2) / 2.0, (y1 + y2) / 2.0);
        let angle = (y2 - y1).atan2(x2 - x1).to_degrees();
        // Keep text upright: flip labels on arrows that point left.
        let angle = if angle.abs() > 90.0 {
            angle - 180.0
        } else {
            angle
        };
        let _infallible = writeln!(
            svg,
            "<text x=\"{mx:.1}\" y=\"{:.1}\" text-anchor=\"middle\" fill=\"{}\" \
             transform=\"rotate({angle:.1} {mx:.1} {my:.1})\">{}</text></g>",
            my - 3.0,
            if arrow.end.is_some_and(|(_, dropped)| dropped) {
                "#d00"
            } else {
                colour
            },
            escape(&message.label)
        );
    }
    svg.push_str("</svg>\n");
    svg
}

/// Lanes of every party to a drawn message: nodes by number first (what a reader debugs), then
/// clients by number.
fn lane_order(log: &MessageLog, arrows: &[Arrow]) -> Vec<String> {
    let mut lanes: BTreeMap<(bool, u64, String), ()> = BTreeMap::new();
    for arrow in arrows {
        if let Some(message) = log.message(arrow.id) {
            for party in [&message.src, &message.dest] {
                let number = party
                    .trim_start_matches(|c: char| !c.is_ascii_digit())
                    .parse()
                    .unwrap_or(u64::MAX);
                lanes.insert((is_client(party), number, party.clone()), ());
            }
        }
    }
    lanes.into_keys().map(|(_, _, name)| name).collect()
}

#[cfg(test)]
mod tests {
    use super::{DiagramWindow, messages_svg};
    use crate::harness::net::{LoggedMessage, MessageLog, NetEvent, NetEventKind};

    fn message(id: u64, src: &str, dest: &str, label: &str) -> LoggedMessage {
        LoggedMessage {
            id,
            src: src.into(),
            dest: dest.into(),
            label: label.into(),
            body: format!("{{\"type\":\"{label}\"}}"),
        }
    }

    fn event(at: u64, kind: NetEventKind) -> NetEvent {
        NetEvent { at, kind }
    }

    fn log() -> MessageLog {
        MessageLog {
            messages: vec![
                message(0, "c1", "n0", "broadcast message=5"),
                message(1, "n0", "n1", "gossip message=5"),
                message(2, "n0", "c1", "broadcast_ok"),
                message(3, "n1", "n0", "gossip message=6"),
            ],
            events: vec![
                event(0, NetEventKind::Send(0)),
                event(1, NetEventKind::Deliver(0)),
                event(
                    2,
                    NetEventKind::Partition {
                        shape: "one".into(),
                        cut_nodes: vec!["n0".into(), "n1".into()],
                    },
                ),
                event(3, NetEventKind::Send(1)),
                event(4, NetEventKind::Send(2)),
                event(5, NetEventKind::Deliver(2)),
                event(6, NetEventKind::Drop(1)),
                event(7, NetEventKind::Heal),
                event(2_000_000_000, NetEventKind::Send(3)),
            ],
            clock_offset: 0,
        }
    }

    #[test]
    fn lanes_arrows_drops_and_partitions_are_drawn() {
        let svg = messages_svg(&log(), &DiagramWindow::default());
        assert_eq!(svg.matches("class=\"lane\"").count(), 3);
        assert_eq!(svg.matches("class=\"msg\"").count(), 2);
        assert_eq!(svg.matches("class=\"msg dropped\"").count(), 1);
        assert_eq!(svg.matches("class=\"msg undelivered\"").count(), 1);
        assert_eq!(svg.matches("class=\"partition\"").count(), 1);
        assert!(svg.contains("n0 → n1 (DROPPED by a partition) id 1"));
        assert!(svg.contains("Messages: all 4 messages."));
    }

    #[test]
    fn a_window_draws_only_its_messages_and_says_what_it_left_out() {
        let window = DiagramWindow {
            from_s: None,
            to_s: Some(1.0),
            max_messages: 2,
        };
        let svg = messages_svg(&log(), &window);
        assert_eq!(svg.matches("<g class=\"msg").count(), 2);
        assert!(svg.contains("2 of 4 messages; left out: 0 sent earlier, 2 sent later"));
    }
}

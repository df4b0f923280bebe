//! Reading the store: every run folder `<store>/<workload>/<stamp>/` with what the index shows
//! (verdict from `results.json`, the summary line from `summary.txt`, the node from `test.json`).
//! Links (`latest`) and hidden files are skipped, so each run is listed once.

use std::fs;
use std::path::Path;

/// One run as the index lists it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RunEntry {
    /// Workload folder name, e.g. `broadcast`.
    pub workload: String,
    /// Run folder name, a UTC timestamp such as `20261124T113050.123Z`.
    pub stamp: String,
    /// The node command, `in-process`, or `?` for runs without `test.json`.
    pub node: String,
    /// `valid`, `invalid`, `unknown`, or `unfinished` (no results yet).
    pub verdict: &'static str,
    /// The summary line (last line of `summary.txt`), empty if none.
    pub summary: String,
}

/// Every run under `store`, newest first.
pub fn list_runs(store: &Path) -> Vec<RunEntry> {
    let mut runs = Vec::new();
    for workload in real_dirs(store) {
        for stamp in real_dirs(&store.join(&workload)) {
            runs.push(read_run(store, &workload, &stamp));
        }
    }
    runs.sort_by(|a, b| {
        b.stamp
            .cmp(&a.stamp)
            .then_with(|| a.workload.cmp(&b.workload))
    });
    runs
}

/// What the index knows of `<store>/<workload>/<stamp>/`.
pub fn read_run(store: &Path, workload: &str, stamp: &str) -> RunEntry {
    let dir = store.join(workload).join(stamp);
    let node = fs::read_to_string(dir.join("test.json"))
        .ok()
        .and_then(|text| serde_json::from_str::<serde_json::Value>(&text).ok())
        .and_then(|info| info.get("node")?.as_str().map(str::to_owned))
        .unwrap_or_else(|| "?".to_owned());
    let verdict = match fs::read_to_string(dir.join("results.json"))
        .ok()
        .and_then(|text| serde_json::from_str::<serde_json::Value>(&text).ok())
    {
        None => "unfinished",
        Some(results) => match results.get("valid?") {
            Some(serde_json::Value::Bool(true)) => "valid",
            Some(serde_json::Value::Bool(false)) => "invalid",
            _ => "unknown",
        },
    };
    let summary = fs::read_to_string(dir.join("summary.txt"))
        .ok()
        .and_then(|text| text.lines().last().map(str::to_owned))
        .unwrap_or_default();
    RunEntry {
        workload: workload.to_owned(),
        stamp: stamp.to_owned(),
        node,
        verdict,
        summary,
    }
}

/// `20261124T113050.123Z` as `2026-11-24 11:30:50.123 UTC`; anything else as it is.
pub fn readable_stamp(stamp: &str) -> String {
    let digits = |range: std::ops::Range<usize>| {
        stamp
            .get(range)
            .filter(|s| s.bytes().all(|b| b.is_ascii_digit()))
    };
    match (
        digits(0..4),
        digits(4..6),
        digits(6..8),
        stamp.get(8..9),
        digits(9..11),
        digits(11..13),
        digits(13..15),
    ) {
        (Some(y), Some(mo), Some(d), Some("T"), Some(h), Some(mi), Some(s)) => {
            // Fractional seconds, without the `Z` and any `-2` a same-moment run got.
            let fraction = stamp
                .get(15..)
                .unwrap_or("")
                .split('-')
                .next()
                .unwrap_or("");
            format!(
                "{y}-{mo}-{d} {h}:{mi}:{s}{} UTC",
                fraction.trim_end_matches('Z')
            )
        }
        _ => stamp.to_owned(),
    }
}

/// Names of the real (not linked, not hidden) folders in `dir`, any order.
fn real_dirs(dir: &Path) -> Vec<String> {
    let Ok(entries) = fs::read_dir(dir) else {
        return Vec::new();
    };
    entries
        .filter_map(Result::ok)
        .filter(|entry| entry.file_type().is_ok_and(|kind| kind.is_dir()))
        .filter_map(|entry| entry.file_name().into_string().ok())
        .filter(|name| !name.starts_with('.'))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::{list_runs, readable_stamp};

    #[test]
    fn runs_are_listed_newest_first_once_each_with_their_verdicts() {
        let store = tempfile::tempdir().unwrap();
        let root = store.path();
        for (workload, stamp, valid) in [
            ("echo", "20261124T113050.123Z", "true"),
            ("broadcast", "20261125T090000.000Z", "false"),
        ] {
            let dir = root.join(workload).join(stamp);
            std::fs::create_dir_all(&dir).unwrap();
            std::fs::write(dir.join("results.json"), format!("{{\"valid?\": {valid}}}")).unwrap();
            std::fs::write(dir.join("summary.txt"), "verdict\nops 3").unwrap();
            std::os::unix::fs::symlink(stamp, root.join(workload).join("latest")).unwrap();
        }
        std::fs::create_dir_all(root.join("echo/20261126T000000.000Z")).unwrap();
        let runs = list_runs(root);
        let seen: Vec<(&str, &str)> = runs
            .iter()
            .map(|r| (r.workload.as_str(), r.verdict))
            .collect();
        assert_eq!(
            seen,
            [
                ("echo", "unfinished"),
                ("broadcast", "invalid"),
                ("echo", "valid")
            ]
        );
        assert_eq!(runs[1].summary, "ops 3");
        assert_eq!(runs[1].node, "?");
    }

    #[test]
    fn stamps_read_as_dates() {
        assert_eq!(
            readable_stamp("20261124T113050.123Z"),
            "2026-11-24 11:30:50.123 UTC"
        );
        assert_eq!(
            readable_stamp("20261124T113050.123Z-2"),
            "2026-11-24 11:30:50.123 UTC"
        );
        assert_eq!(readable_stamp("odd"), "odd");
    }
}

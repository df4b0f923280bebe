//! The run folder: `<store>/<workload>/<timestamp>/` with `node-logs/`, the results in EDN and
//! JSON, the history, a latency plot and the summary, plus a `<store>/latest` link to it
//! (docs/harness.md §7.3).

use std::fs;
use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use super::{
    DiagramWindow, RunNotes, history_text, latency_svg, messages_svg, stdout_deaths_block,
    summary_line, timeline_html, utc_timestamp, verdict_line,
};
use crate::harness::check::Analysis;
use crate::harness::edn::op_to_edn;
use crate::harness::history::History;
use crate::harness::net::MessageLog;
use crate::harness::nodes::NodeSource;
use crate::harness::run::TestConfig;

/// One run's folder in the store.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RunStore {
    dir: PathBuf,
}

impl RunStore {
    /// Makes `base/<workload>/<timestamp>/node-logs/` (the timestamp in UTC, e.g.
    /// `20261124T113050.123Z`, with `-2`, `-3`… appended if that folder exists) and points
    /// `base/latest` and `base/<workload>/latest` at it.
    ///
    /// # Errors
    /// Any error creating the folders. A link that cannot be replaced (say, `latest` is a real
    /// folder) is only logged.
    pub fn create(base: &Path, workload: &str) -> io::Result<RunStore> {
        let workload_dir = base.join(workload);
        fs::create_dir_all(&workload_dir)?;
        let stamp = utc_timestamp(SystemTime::now());
        let mut name = stamp.clone();
        let mut attempt = 1;
        let dir = loop {
            let candidate = workload_dir.join(&name);
            match fs::create_dir(&candidate) {
                Ok(()) => break candidate,
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
                    attempt += 1;
                    name = format!("{stamp}-{attempt}");
                }
                Err(e) => return Err(e),
            }
        };
        fs::create_dir(dir.join("node-logs"))?;
        let store = RunStore { dir };
        // Relative targets, so the store can be moved or copied whole.
        for (link, target) in [
            (base.join("latest"), Path::new(workload).join(&name)),
            (workload_dir.join("latest"), PathBuf::from(&name)),
        ] {
            if let Err(error) = replace_symlink(&link, &target) {
                tracing::warn!(link = %link.display(), %error, "could not update the latest link");
            }
        }
        Ok(store)
    }

    /// The run folder.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Where the harness's own log goes: `harness.log`.
    pub fn harness_log_path(&self) -> PathBuf {
        self.dir.join("harness.log")
    }

    /// Where a node's stderr goes: `node-logs/<node>.log`.
    pub fn node_log_path(&self, node: &str) -> PathBuf {
        self.dir.join("node-logs").join(format!("{node}.log"))
    }

    /// Writes `results.edn` (as printed), `results.json` (the same map), `history.edn` (one op
    /// per line), `latency.svg` and `summary.txt` (verdict, stdout deaths, summary line).
    ///
    /// # Errors
    /// The first error writing any of them.
    pub fn write_all(
        &self,
        analysis: &Analysis,
        history: &History,
        notes: &RunNotes,
    ) -> io::Result<()> {
        fs::write(
            self.dir.join("results.edn"),
            format!("{}\n", analysis.results.pretty()),
        )?;
        let json =
            serde_json::to_string_pretty(&analysis.results.to_json()).map_err(io::Error::other)?;
        fs::write(self.dir.join("results.json"), format!("{json}\n"))?;
        self.write_history(history)?;
        fs::write(
            self.dir.join("latency.svg"),
            latency_svg(analysis.summary.workload, history),
        )?;
        fs::write(
            self.dir.join("summary.txt"),
            format!(
                "{}\n{}{}\n",
                verdict_line(analysis.valid),
                stdout_deaths_block(&notes.stdout_deaths),
                summary_line(&analysis.summary, notes)
            ),
        )
    }

    /// Writes `test.json`: what was run (workload, node binary and arguments or `in-process`,
    /// node count, seed, time limit, rate, latency, nemesis), for `sluicegate serve`'s index.
    ///
    /// # Errors
    /// Any error writing it.
    pub fn write_test_info(&self, config: &TestConfig) -> io::Result<()> {
        let node = match &config.nodes {
            NodeSource::Binary(launcher) => {
                let mut words = vec![launcher.bin.display().to_string()];
                words.extend(launcher.args.iter().cloned());
                words.join(" ")
            }
            NodeSource::InProcess(_) => "in-process".to_string(),
        };
        let info = serde_json::json!({
            "workload": config.workload.name(),
            "node": node,
            "node_count": config.plan.nodes.len(),
            "concurrency": config.plan.concurrency,
            "seed": config.plan.seed,
            "time_limit_s": config.plan.time_limit.as_secs_f64(),
            "rate": config.plan.rate,
            "latency_ms": config.latency_ms,
            "nemesis_interval_s": config.plan.nemesis_interval.map(|i| i.as_secs_f64()),
        });
        let text = serde_json::to_string_pretty(&info).map_err(io::Error::other)?;
        fs::write(self.dir.join("test.json"), format!("{text}\n"))
    }

    /// Writes the debugging views: `history.txt` (Jepsen's one line per event),
    /// `timeline.html` (ops per process over time) and, given the network's log,
    /// `messages.svg` (the Lamport diagram of `window`).
    ///
    /// # Errors
    /// The first error writing any of them.
    pub fn write_views(
        &self,
        history: &History,
        messages: Option<&MessageLog>,
        window: &DiagramWindow,
    ) -> io::Result<()> {
        fs::write(self.dir.join("history.txt"), history_text(history))?;
        let title = format!(
            "{} — {}",
            self.dir
                .parent()
                .and_then(Path::file_name)
                .map_or_else(String::new, |name| name.to_string_lossy().into_owned()),
            self.dir
                .file_name()
                .map_or_else(String::new, |name| name.to_string_lossy().into_owned())
        );
        fs::write(
            self.dir.join("timeline.html"),
            timeline_html(history, &title),
        )?;
        if let Some(log) = messages {
            fs::write(self.dir.join("messages.svg"), messages_svg(log, window))?;
        }
        Ok(())
    }

    fn write_history(&self, history: &History) -> io::Result<()> {
        let mut out = BufWriter::new(fs::File::create(self.dir.join("history.edn"))?);
        for op in history.ops() {
            writeln!(out, "{}", op_to_edn(op))?;
        }
        out.flush()
    }
}

/// Points `link` at `target`, replacing what was there atomically (a rename over it).
#[cfg(unix)]
fn replace_symlink(link: &Path, target: &Path) -> io::Result<()> {
    let temporary = link.with_file_name(format!(
        ".{}.{}.tmp",
        link.file_name()
            .and_then(|n| n.to_str())
            .unwrap_or("latest"),
        std::process::id()
    ));
    // A leftover from a crashed run; not there normally.
    if let Err(e) = fs::remove_file(&temporary)
        && e.kind() != io::ErrorKind::NotFound
    {
        return Err(e);
    }
    std::os::unix::fs::symlink(target, &temporary)?;
    fs::rename(&temporary, link)
}

#[cfg(not(unix))]
fn replace_symlink(_link: &Path, _target: &Path) -> io::Result<()> {
    Ok(())
}

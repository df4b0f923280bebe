//! Node processes (docs/harness.md §1.1, §2.2): spawn the binary in the temp dir, relay its stdout
//! to the network line by line, keep its stderr in `node-logs/<id>.log`, and watch for the bad
//! output that makes real Maelstrom stop reading a node (docs/harness.md §1.7).

use std::collections::VecDeque;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncBufRead, AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::process::{Child, ChildStdin, Command};

use crate::harness::error::HarnessError;
use crate::harness::net::{Network, parse_outgoing};
use crate::harness::report::StdoutDeath;

/// How many of a crashed node's last lines are shown.
const TAIL_LINES: usize = 32;

/// The last lines a node printed on stdout and stderr, for the crash report.
#[derive(Debug, Default)]
pub struct Tails {
    stdout: Mutex<VecDeque<String>>,
    stderr: Mutex<VecDeque<String>>,
}

impl Tails {
    fn push(lines: &Mutex<VecDeque<String>>, line: &str) {
        let mut lines = lines.lock().unwrap_or_else(|p| p.into_inner());
        if lines.len() == TAIL_LINES {
            lines.pop_front();
        }
        lines.push_back(line.to_string());
    }

    fn render(lines: &Mutex<VecDeque<String>>) -> String {
        let lines = lines.lock().unwrap_or_else(|p| p.into_inner());
        lines.iter().map(|line| format!("    {line}\n")).collect()
    }
}

/// What to do when a node writes a line the network cannot take (docs/harness.md §1.7).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BadOutput {
    /// As Maelstrom: the node's later output is lost for the rest of the test.
    StdoutDies,
    /// Drop only the offending line (`--lenient`).
    DropLine,
}

/// Every node whose stdout went dead (or, leniently, lost lines), with the first offence.
#[derive(Debug, Default)]
pub struct DeathWatch {
    deaths: Mutex<Vec<StdoutDeath>>,
}

impl DeathWatch {
    fn record(&self, node: &str, example: String) {
        let mut deaths = self.deaths.lock().unwrap_or_else(|p| p.into_inner());
        match deaths.iter_mut().find(|death| death.node == node) {
            Some(death) => death.count += 1,
            None => {
                tracing::error!(
                    node,
                    "{example}; Maelstrom would lose this node's output from here on"
                );
                deaths.push(StdoutDeath {
                    node: node.to_string(),
                    example,
                    count: 1,
                });
            }
        }
    }

    /// Every event so far, one entry per node.
    pub fn deaths(&self) -> Vec<StdoutDeath> {
        self.deaths
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }
}

/// Reads a node's stdout and sends each message through the network, stamped as sent now.
/// A bad line (not JSON, a malformed envelope, an unknown destination) is recorded; under
/// [`BadOutput::StdoutDies`] every later line is read and discarded, and counted.
pub async fn relay_stdout(
    node: String,
    stdout: impl AsyncBufRead + Unpin,
    network: Arc<Network>,
    watch: Arc<DeathWatch>,
    tails: Arc<Tails>,
    on_bad_output: BadOutput,
) {
    let mut lines = stdout.lines();
    let mut dead = false;
    while let Ok(Some(line)) = lines.next_line().await {
        Tails::push(&tails.stdout, &line);
        if dead {
            watch.record(&node, String::new());
            continue;
        }
        let sent = parse_outgoing(&line)
            .map_err(|error| error.to_string())
            .and_then(|out| {
                network
                    .send(&out.src, &out.dest, out.body)
                    .map_err(|e| e.to_string())
            });
        if let Err(reason) = sent {
            watch.record(&node, format!("{node} wrote {line:?}: {reason}"));
            dead = on_bad_output == BadOutput::StdoutDies;
        }
    }
}

/// One running node process.
pub struct NodeProcess {
    id: String,
    child: Child,
    tails: Arc<Tails>,
}

/// A spawned node: the process, and the pipe its deliveries are written to.
pub struct Spawned {
    /// The process handle.
    pub process: NodeProcess,
    /// The node's stdin.
    pub stdin: ChildStdin,
    /// The node's stdout, to hand to [`relay_stdout`].
    pub stdout: BufReader<tokio::process::ChildStdout>,
    /// Its last output lines.
    pub tails: Arc<Tails>,
}

/// How to start nodes.
#[derive(Clone, Debug)]
pub struct Launcher {
    /// The binary, made absolute (nodes run in the temp dir).
    pub bin: PathBuf,
    /// Arguments passed after the options.
    pub args: Vec<String>,
    /// Echo node stderr to the console (`--log-stderr`).
    pub echo_stderr: bool,
    /// Extra environment variables for the nodes (for example a node's settings); the nodes
    /// otherwise inherit the harness's environment.
    pub env: Vec<(String, String)>,
}

impl Launcher {
    /// A launcher for `bin`, resolved against the current directory.
    ///
    /// # Errors
    ///
    /// [`HarnessError::BinaryNotFound`] when `bin` does not exist.
    pub fn new(bin: &Path, args: Vec<String>, echo_stderr: bool) -> Result<Self, HarnessError> {
        let bin = std::fs::canonicalize(bin).map_err(|source| HarnessError::BinaryNotFound {
            path: bin.to_path_buf(),
            source,
        })?;
        Ok(Launcher {
            bin,
            args,
            echo_stderr,
            env: Vec::new(),
        })
    }

    /// Starts node `id`, its stderr going to `log`.
    pub(crate) fn spawn(&self, id: &str, log: &Path) -> Result<Spawned, HarnessError> {
        let spawn_error = |source| HarnessError::Spawn {
            node: id.to_string(),
            bin: self.bin.clone(),
            source,
        };
        let mut child = Command::new(&self.bin)
            .args(&self.args)
            .envs(self.env.iter().map(|(key, value)| (key, value)))
            .current_dir(std::env::temp_dir())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .map_err(spawn_error)?;
        let (Some(stdin), Some(stdout), Some(stderr)) =
            (child.stdin.take(), child.stdout.take(), child.stderr.take())
        else {
            return Err(spawn_error(std::io::Error::other(
                "the node's pipes were not set up",
            )));
        };
        let tails = Arc::new(Tails::default());
        let log = tokio::fs::File::from_std(std::fs::File::create(log).map_err(|source| {
            HarnessError::Store {
                path: log.to_path_buf(),
                source,
            }
        })?);
        tokio::spawn(keep_stderr(
            id.to_string(),
            BufReader::new(stderr),
            log,
            Arc::clone(&tails),
            self.echo_stderr,
        ));
        Ok(Spawned {
            process: NodeProcess {
                id: id.to_string(),
                child,
                tails: Arc::clone(&tails),
            },
            stdin,
            stdout: BufReader::new(stdout),
            tails,
        })
    }
}

async fn keep_stderr(
    id: String,
    stderr: impl AsyncBufRead + Unpin,
    mut log: tokio::fs::File,
    tails: Arc<Tails>,
    echo: bool,
) {
    let mut lines = stderr.lines();
    while let Ok(Some(line)) = lines.next_line().await {
        Tails::push(&tails.stderr, &line);
        // `--log-stderr` echo; if the harness's own stderr is closed, the log file still has it.
        if echo && writeln!(std::io::stderr(), "{id} | {line}").is_err() {
            tracing::debug!(node = %id, "stderr closed; node stderr goes to its log only");
        }
        if log.write_all(format!("{line}\n").as_bytes()).await.is_err() {
            tracing::warn!(node = %id, "could not write the node log; stderr still shown on --log-stderr");
        }
    }
    // Whatever is buffered is written now; a failure here only shortens the log.
    if log.flush().await.is_err() {
        tracing::warn!(node = %id, "could not flush the node log");
    }
}

impl NodeProcess {
    /// The node id.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// If the process has already exited, a crash report with its status and last lines.
    pub fn crash_report(&mut self) -> Option<String> {
        let status = self.child.try_wait().ok().flatten()?;
        Some(format!(
            "node {} crashed ({status}) before the test ended\n  last stdout lines:\n{}  last stderr lines:\n{}",
            self.id,
            Tails::render(&self.tails.stdout),
            Tails::render(&self.tails.stderr),
        ))
    }

    /// Kills the process and waits at most 5 s for it to go.
    pub async fn kill(&mut self) {
        if self.child.start_kill().is_ok()
            && tokio::time::timeout(Duration::from_secs(5), self.child.wait())
                .await
                .is_err()
        {
            tracing::warn!(node = %self.id, "did not exit within 5 s of SIGKILL");
        }
    }
}

//! A real `nats-server -js` for the JetStream tests: started by the test on a free loopback port
//! with its own store directory when `nats-server` is on PATH, stopped (and restarted on the same
//! port and directory) by its pid, killed when dropped. Without the binary the tests skip with a
//! message saying how to get it.

#![allow(dead_code)]

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use sluicegate::ingest::JetStreamConfig;
use tokio::process::{Child, Command};

/// Every wait is bounded by this.
pub const PATIENCE: Duration = Duration::from_secs(30);

/// The binary the tests run.
pub const BINARY: &str = "nats-server";

/// A nats-server process owned by a test.
pub struct NatsServer {
    child: Option<Child>,
    addr: SocketAddr,
    store_dir: PathBuf,
    _dir: tempfile::TempDir,
}

fn free_port() -> SocketAddr {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("a loopback port");
    listener.local_addr().expect("its address")
}

/// True if `nats-server` is on PATH.
fn on_path() -> bool {
    std::process::Command::new(BINARY)
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|status| status.success())
}

/// True if `nats-server` can be started; otherwise prints why the calling test skips.
pub fn available(test: &str) -> bool {
    let found = on_path();
    if !found {
        eprintln!(
            "SKIPPED {test}: no `{BINARY}` on PATH to start and restart (apt-get install \
             nats-server; .ci/run does)"
        );
    }
    found
}

impl NatsServer {
    /// Starts `nats-server -js` on a free 127.0.0.1 port with a fresh store directory and waits
    /// until JetStream answers.
    pub async fn start() -> NatsServer {
        let dir = tempfile::tempdir().expect("a temporary directory");
        let store_dir = dir.path().join("js");
        let mut server = NatsServer {
            child: None,
            addr: free_port(),
            store_dir,
            _dir: dir,
        };
        server.spawn().await;
        server
    }

    async fn spawn(&mut self) {
        let child = Command::new(BINARY)
            .args(["-js", "-a", "127.0.0.1", "-p"])
            .arg(self.addr.port().to_string())
            .arg("-sd")
            .arg(&self.store_dir)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .expect("nats-server starts");
        self.child = Some(child);
        wait_ready(&self.url()).await;
    }

    /// `nats://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("nats://{}", self.addr)
    }

    /// A store configuration for `stream` on this server.
    pub fn store(&self, stream: &str) -> JetStreamConfig {
        JetStreamConfig::new(self.url(), stream)
    }

    /// The store directory (kept across restarts).
    pub fn store_dir(&self) -> &Path {
        &self.store_dir
    }

    /// Stops the server with `signal` (`TERM` for a clean shutdown, `KILL` for a crash) by its
    /// pid and waits for it to exit.
    pub async fn stop(&mut self, signal: &str) {
        let Some(mut child) = self.child.take() else {
            return;
        };
        let pid = child.id().expect("a running nats-server has a pid");
        let status = std::process::Command::new("kill")
            .arg(format!("-{signal}"))
            .arg(pid.to_string())
            .status()
            .expect("kill runs");
        assert!(status.success(), "kill -{signal} {pid}");
        tokio::time::timeout(PATIENCE, child.wait())
            .await
            .expect("nats-server exits in time")
            .expect("waiting for nats-server");
    }

    /// Starts the server again on the same port and store directory.
    pub async fn restart(&mut self) {
        assert!(self.child.is_none(), "stop it first");
        self.spawn().await;
    }
}

/// Polls until JetStream on `url` answers an account query, within [`PATIENCE`]. (The port
/// accepts connections a little before JetStream has recovered its streams.)
pub async fn wait_ready(url: &str) {
    let deadline = tokio::time::Instant::now() + PATIENCE;
    let mut last = String::new();
    // Bounded by the deadline; each attempt is bounded by the connection timeout.
    while tokio::time::Instant::now() < deadline {
        let connected = async_nats::ConnectOptions::new()
            .connection_timeout(Duration::from_secs(1))
            .connect(url)
            .await;
        match connected {
            // The raw account info request: async-nats's typed one expects newer servers'
            // fields. JetStream is up once it answers without an error.
            Ok(client) => match client.request("$JS.API.INFO", "".into()).await {
                Ok(reply) if !String::from_utf8_lossy(&reply.payload).contains("\"error\"") => {
                    return;
                }
                Ok(reply) => last = String::from_utf8_lossy(&reply.payload).into_owned(),
                Err(error) => last = error.to_string(),
            },
            Err(error) => last = error.to_string(),
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("nats-server at {url} not ready within {PATIENCE:?}: {last}");
}

/// The variable naming an already running `nats-server -js` (as `.ci/run` starts one); tests
/// that do not stop the server use it when set.
pub const URL_VARIABLE: &str = "SLUICEGATE_INGEST_NATS_URL";

/// A JetStream server for a test: the one named by [`URL_VARIABLE`], or an own process.
pub enum Nats {
    /// A server someone else runs.
    External(String),
    /// A server this test runs.
    Own(Box<NatsServer>),
}

impl Nats {
    /// The server named by [`URL_VARIABLE`] if set, else an own one if `nats-server` is on PATH,
    /// else `None` after printing why `test` skips.
    pub async fn any(test: &str) -> Option<Nats> {
        if let Ok(url) = std::env::var(URL_VARIABLE) {
            wait_ready(&url).await;
            return Some(Nats::External(url));
        }
        if !on_path() {
            eprintln!(
                "SKIPPED {test}: {URL_VARIABLE} is not set and no `{BINARY}` is on PATH \
                 (apt-get install nats-server; .ci/run does)"
            );
            return None;
        }
        Some(Nats::Own(Box::new(NatsServer::start().await)))
    }

    /// The server's URL.
    pub fn url(&self) -> String {
        match self {
            Nats::External(url) => url.clone(),
            Nats::Own(server) => server.url(),
        }
    }

    /// A store configuration for a stream unique to this process and `name`, so that runs
    /// against a shared server do not see each other's records.
    pub fn store(&self, name: &str) -> JetStreamConfig {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |since| since.subsec_nanos());
        let stream = format!("{name}_{}_{nanos}", std::process::id());
        JetStreamConfig::new(self.url(), stream)
    }
}

/// Sends the library's logs (reconnects, republished records) to the test's output, shown when
/// a test fails.
pub fn logs() {
    let installed = tracing_subscriber::fmt()
        .with_env_filter("sluicegate=info,async_nats=warn")
        .with_test_writer()
        .try_init();
    // Another test of this binary installed it first: it is global, and that is the same one.
    drop(installed);
}

//! Three `nats-server -js` processes clustered on loopback for the failover test: free ports, a
//! store directory each, routes to one another, each stopped and restarted by its own pid, all
//! killed when dropped. The stream's state is read with the raw JetStream API (JSON), since
//! async-nats's typed replies expect newer servers' fields than Debian's 2.9.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use serde_json::Value;
use tokio::process::{Child, Command};

/// Every wait is bounded by this.
pub const PATIENCE: Duration = Duration::from_secs(60);

const BINARY: &str = "nats-server";
const CLUSTER: &str = "sluicegate-test";

/// True if `nats-server` can be started; otherwise prints why `test` skips.
pub fn available(test: &str) -> bool {
    let found = std::process::Command::new(BINARY)
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|status| status.success());
    if !found {
        eprintln!(
            "SKIPPED {test}: no `{BINARY}` on PATH to cluster (apt-get install nats-server; \
             .ci/nats-cluster.sh does)"
        );
    }
    found
}

fn free_port() -> SocketAddr {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("a loopback port");
    listener.local_addr().expect("its address")
}

/// One member of the cluster.
struct Member {
    name: String,
    client: SocketAddr,
    route: SocketAddr,
    store_dir: PathBuf,
    child: Option<Child>,
}

/// Three clustered JetStream servers.
pub struct NatsCluster {
    members: Vec<Member>,
    _dir: tempfile::TempDir,
}

impl NatsCluster {
    /// Starts three servers routed to one another and waits until JetStream's meta group has a
    /// leader (streams can be created).
    pub async fn start() -> NatsCluster {
        let dir = tempfile::tempdir().expect("a temporary directory");
        let members = (0..3)
            .map(|index| Member {
                name: format!("n{index}"),
                client: free_port(),
                route: free_port(),
                store_dir: dir.path().join(format!("n{index}")),
                child: None,
            })
            .collect();
        let mut cluster = NatsCluster { members, _dir: dir };
        for index in 0..3 {
            cluster.spawn(index);
        }
        cluster.wait_ready().await;
        cluster
    }

    fn spawn(&mut self, index: usize) {
        let routes: Vec<String> = self
            .members
            .iter()
            .enumerate()
            .filter(|(other, _)| *other != index)
            .map(|(_, member)| format!("nats://{}", member.route))
            .collect();
        let member = &mut self.members[index];
        let child = Command::new(BINARY)
            .args(["-js", "-a", "127.0.0.1", "-n", &member.name])
            .args(["-p", &member.client.port().to_string()])
            .arg("-sd")
            .arg(&member.store_dir)
            .args(["--cluster_name", CLUSTER])
            .args(["--cluster", &format!("nats://{}", member.route)])
            .args(["--routes", &routes.join(",")])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .expect("nats-server starts");
        member.child = Some(child);
    }

    /// Every member's client URL, comma-separated: what a client connects to, so that it can
    /// reconnect to any member.
    pub fn urls(&self) -> String {
        let urls: Vec<String> = self
            .members
            .iter()
            .map(|member| format!("nats://{}", member.client))
            .collect();
        urls.join(",")
    }

    /// The index of the member named `name`.
    pub fn index_of(&self, name: &str) -> usize {
        self.members
            .iter()
            .position(|member| member.name == name)
            .unwrap_or_else(|| panic!("no member named {name}"))
    }

    /// Kills member `index` with SIGKILL by its pid and waits for it to exit.
    pub async fn kill(&mut self, index: usize) {
        let mut child = self.members[index].child.take().expect("running");
        let pid = child.id().expect("a running nats-server has a pid");
        let status = std::process::Command::new("kill")
            .args(["-KILL", &pid.to_string()])
            .status()
            .expect("kill runs");
        assert!(status.success(), "kill -KILL {pid}");
        tokio::time::timeout(PATIENCE, child.wait())
            .await
            .expect("nats-server exits in time")
            .expect("waiting for nats-server");
    }

    /// Starts member `index` again on its ports and store directory.
    pub fn restart(&mut self, index: usize) {
        assert!(self.members[index].child.is_none(), "kill it first");
        self.spawn(index);
    }

    /// A raw JetStream API request to any member, answered without an `error`.
    pub async fn api(&self, subject: &str) -> Result<Value, String> {
        let client = async_nats::ConnectOptions::new()
            .connection_timeout(Duration::from_secs(1))
            .connect(self.urls().split(',').collect::<Vec<_>>())
            .await
            .map_err(|error| error.to_string())?;
        let reply = tokio::time::timeout(
            Duration::from_secs(2),
            client.request(subject.to_string(), "".into()),
        )
        .await
        .map_err(|_| format!("{subject}: no answer in 2 s"))?
        .map_err(|error| error.to_string())?;
        let value: Value = serde_json::from_slice(&reply.payload).map_err(|e| e.to_string())?;
        match value.get("error") {
            Some(error) => Err(error.to_string()),
            None => Ok(value),
        }
    }

    /// Polls until the meta group answers a stream listing, within [`PATIENCE`].
    async fn wait_ready(&self) {
        let deadline = tokio::time::Instant::now() + PATIENCE;
        let mut last = String::new();
        while tokio::time::Instant::now() < deadline {
            match self.api("$JS.API.STREAM.NAMES").await {
                Ok(_) => return,
                Err(error) => last = error,
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("the JetStream cluster is not ready within {PATIENCE:?}: {last}");
    }

    /// The stream's cluster state: `(leader, replicas)`, each replica as
    /// `(name, current, offline, lag)`.
    pub async fn stream_cluster(&self, stream: &str) -> Result<StreamCluster, String> {
        let info = self.api(&format!("$JS.API.STREAM.INFO.{stream}")).await?;
        let cluster = &info["cluster"];
        let leader = cluster["leader"]
            .as_str()
            .ok_or_else(|| format!("no leader in {cluster}"))?
            .to_string();
        let replicas = cluster["replicas"]
            .as_array()
            .map(|replicas| {
                replicas
                    .iter()
                    .map(|replica| Replica {
                        name: replica["name"].as_str().unwrap_or_default().to_string(),
                        current: replica["current"].as_bool().unwrap_or(false),
                        offline: replica["offline"].as_bool().unwrap_or(false),
                        lag: replica["lag"].as_u64().unwrap_or(0),
                    })
                    .collect()
            })
            .unwrap_or_default();
        let messages = info["state"]["messages"].as_u64().unwrap_or(0);
        Ok(StreamCluster {
            leader,
            replicas,
            messages,
        })
    }

    /// Polls the stream until `ready` holds of its cluster state, within [`PATIENCE`].
    pub async fn wait_for(
        &self,
        stream: &str,
        what: &str,
        ready: impl Fn(&StreamCluster) -> bool,
    ) -> StreamCluster {
        let deadline = tokio::time::Instant::now() + PATIENCE;
        let mut last = String::new();
        while tokio::time::Instant::now() < deadline {
            match self.stream_cluster(stream).await {
                Ok(state) if ready(&state) => return state,
                Ok(state) => last = format!("{state:?}"),
                Err(error) => last = error,
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("{what}: not within {PATIENCE:?}; last seen {last}");
    }
}

/// A stream's replication state, as its leader reports it.
#[derive(Debug)]
pub struct StreamCluster {
    /// The leader's server name.
    pub leader: String,
    /// The other replicas.
    pub replicas: Vec<Replica>,
    /// Messages in the stream.
    pub messages: u64,
}

/// A follower of a stream.
#[derive(Debug)]
pub struct Replica {
    /// Server name.
    pub name: String,
    /// Caught up with the leader.
    pub current: bool,
    /// Not reachable.
    pub offline: bool,
    /// Operations behind the leader.
    pub lag: u64,
}

//! Drives nodes in-process for the `node_*` tests: one node through `tokio::io::duplex`, or
//! several wired together by a router that delays node-to-node messages and can cut links.
//! Everything runs on the test's (paused) tokio clock; nothing sleeps for real.

#![allow(dead_code)] // each test file uses a different part

pub mod kv;

use std::collections::{BTreeMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::{Value, json};
use sluicegate::node::{NodeConfig, NodeError, NodeReport, run_node};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader, DuplexStream, Lines};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio::time::{Instant, sleep_until, timeout};

use self::kv::Services;

const PIPE: usize = 1 << 16;

/// One node, its stdin and stdout in the test's hands.
pub struct Node {
    stdin: DuplexStream,
    stdout: Lines<BufReader<DuplexStream>>,
    task: JoinHandle<Result<NodeReport, NodeError>>,
    /// The node's id once [`started`](Node::started) (`n0` before): where [`call`](Node::call)
    /// addresses requests (a node refuses messages for another one).
    me: String,
}

impl Node {
    /// Starts a node (not yet initialised).
    pub fn start(config: NodeConfig) -> Self {
        let (stdin, node_stdin) = tokio::io::duplex(PIPE);
        let (node_stdout, stdout) = tokio::io::duplex(PIPE);
        let task = tokio::spawn(run_node(BufReader::new(node_stdin), node_stdout, config));
        Node {
            stdin,
            stdout: BufReader::new(stdout).lines(),
            task,
            me: "n0".into(),
        }
    }

    /// Starts a node and initialises it as `me` among `ids`; consumes the init_ok.
    pub async fn started(config: NodeConfig, me: &str, ids: &[&str]) -> Self {
        let mut node = Node::start(config);
        node.me = me.to_owned();
        node.send(init(me, ids)).await;
        let reply = node.recv().await;
        assert_eq!(reply["body"]["type"], "init_ok", "{reply}");
        node
    }

    /// Writes one message (as one line).
    pub async fn send(&mut self, message: Value) {
        self.send_line(&message.to_string()).await;
    }

    /// Writes one raw line.
    pub async fn send_line(&mut self, line: &str) {
        self.stdin.write_all(line.as_bytes()).await.unwrap();
        self.stdin.write_all(b"\n").await.unwrap();
    }

    /// The node's id (`n0` until [`started`](Node::started) says otherwise).
    pub fn me(&self) -> &str {
        &self.me
    }

    /// Writes raw bytes (a newline is not added).
    pub async fn send_bytes(&mut self, bytes: &[u8]) {
        self.stdin.write_all(bytes).await.unwrap();
    }

    /// The next output line, parsed; panics if none comes within a minute of (virtual) time.
    pub async fn recv(&mut self) -> Value {
        self.recv_within(Duration::from_secs(60))
            .await
            .expect("the node said nothing for a minute")
    }

    /// The next output line, if one comes within `wait` (virtual time on a paused clock).
    pub async fn recv_within(&mut self, wait: Duration) -> Option<Value> {
        let line = timeout(wait, self.stdout.next_line()).await.ok()?;
        let line = line.unwrap().expect("the node's output ended");
        Some(serde_json::from_str(&line).unwrap_or_else(|error| {
            panic!("the node wrote a line that is not JSON ({error}): {line}")
        }))
    }

    /// Sends a client request and returns the reply's body.
    pub async fn call(&mut self, client: &str, body: Value) -> Value {
        let msg_id = body["msg_id"].clone();
        let me = self.me.clone();
        self.send(json!({"src": client, "dest": me, "body": body}))
            .await;
        let reply = self.recv().await;
        assert_eq!(reply["dest"], client, "{reply}");
        assert_eq!(reply["body"]["in_reply_to"], msg_id, "{reply}");
        reply["body"].clone()
    }

    /// Ends the input and returns the node's report.
    pub async fn finish(self) -> NodeReport {
        drop(self.stdin);
        self.task.await.unwrap().unwrap()
    }
}

/// An init request for `me`.
pub fn init(me: &str, ids: &[&str]) -> Value {
    json!({"src": "c0", "dest": me,
           "body": {"type": "init", "msg_id": 1, "node_id": me, "node_ids": ids}})
}

/// The ids `n0 … n{count-1}`.
pub fn node_ids(count: usize) -> Vec<String> {
    (0..count).map(|index| format!("n{index}")).collect()
}

/// The keys of a body, sorted.
pub fn keys(body: &Value) -> Vec<String> {
    let mut keys: Vec<String> = body.as_object().unwrap().keys().cloned().collect();
    keys.sort();
    keys
}

/// Several nodes wired together: node-to-node messages take `latency`, can be cut per directed
/// pair, and are counted; messages to clients come back to the test at once.
pub struct Cluster {
    ids: Vec<String>,
    stdins: BTreeMap<String, mpsc::UnboundedSender<(Instant, String)>>,
    replies: mpsc::UnboundedReceiver<Value>,
    net: Arc<Mutex<Net>>,
    next_msg_id: u64,
}

#[derive(Default)]
struct Net {
    /// Directed pairs (src, dest) whose messages are dropped.
    cut: HashSet<(String, String)>,
    /// Node-to-node messages sent, dropped or not.
    sent: u64,
    /// Node-to-node messages dropped by a cut.
    dropped: u64,
    /// The in-test `lin-kv` and `seq-kv`; never cut off.
    services: Option<Services>,
    /// Messages between nodes and services (requests and replies).
    service_messages: u64,
}

impl Cluster {
    /// Starts `count` nodes with `config`, delivering node-to-node messages after `latency`,
    /// and initialises them all.
    pub async fn start(count: usize, config: NodeConfig, latency: Duration) -> Self {
        Self::start_seeded(count, config, latency, 1).await
    }

    /// As [`start`](Self::start), with `seq-kv`'s choices drawn from `seed`.
    pub async fn start_seeded(
        count: usize,
        config: NodeConfig,
        latency: Duration,
        seed: u64,
    ) -> Self {
        let ids = node_ids(count);
        let net = Arc::new(Mutex::new(Net {
            services: Some(Services::new(seed)),
            ..Net::default()
        }));
        let (reply_tx, replies) = mpsc::unbounded_channel();
        let mut stdins = BTreeMap::new();
        let mut stdouts = Vec::new();
        for id in &ids {
            let (mut stdin, node_stdin) = tokio::io::duplex(PIPE);
            let (node_stdout, stdout) = tokio::io::duplex(PIPE);
            tokio::spawn(run_node(
                BufReader::new(node_stdin),
                node_stdout,
                config.clone(),
            ));
            // One delivery queue per node, in deadline order (constant latency keeps it FIFO).
            let (deliver, mut queue) = mpsc::unbounded_channel::<(Instant, String)>();
            tokio::spawn(async move {
                while let Some((deadline, line)) = queue.recv().await {
                    sleep_until(deadline).await;
                    if stdin
                        .write_all(format!("{line}\n").as_bytes())
                        .await
                        .is_err()
                    {
                        break;
                    }
                }
            });
            stdins.insert(id.clone(), deliver);
            stdouts.push(stdout);
        }
        for stdout in stdouts {
            let stdins = stdins.clone();
            let net = Arc::clone(&net);
            let reply_tx = reply_tx.clone();
            tokio::spawn(async move {
                let mut lines = BufReader::new(stdout).lines();
                while let Ok(Some(line)) = lines.next_line().await {
                    let message: Value = serde_json::from_str(&line).unwrap();
                    let src = message["src"].as_str().unwrap().to_owned();
                    let dest = message["dest"].as_str().unwrap().to_owned();
                    if dest.starts_with('c') {
                        reply_tx.send(message).unwrap();
                        continue;
                    }
                    if Services::is_service(&dest) {
                        let reply = {
                            let mut net = net.lock().unwrap();
                            net.service_messages += 1;
                            let services = net.services.as_mut().unwrap();
                            let reply = services.handle(&dest, &src, &message["body"]);
                            net.service_messages += u64::from(reply.is_some());
                            reply
                        };
                        if let Some(body) = reply {
                            let line = json!({"src": dest, "dest": src, "body": body});
                            stdins[&src]
                                .send((Instant::now() + 2 * latency, line.to_string()))
                                .unwrap();
                        }
                        continue;
                    }
                    {
                        let mut net = net.lock().unwrap();
                        net.sent += 1;
                        if net.cut.contains(&(src.clone(), dest.clone())) {
                            net.dropped += 1;
                            continue;
                        }
                    }
                    stdins[&dest]
                        .send((Instant::now() + latency, line))
                        .unwrap();
                }
            });
        }
        let mut cluster = Cluster {
            ids,
            stdins,
            replies,
            net,
            next_msg_id: 1,
        };
        let ids = cluster.ids();
        let id_refs: Vec<&str> = ids.iter().map(String::as_str).collect();
        for id in &id_refs {
            cluster.deliver(init(id, &id_refs));
            let reply = cluster.replies.recv().await.unwrap();
            assert_eq!(reply["body"]["type"], "init_ok");
        }
        cluster
    }

    fn deliver(&self, message: Value) {
        let dest = message["dest"].as_str().unwrap();
        self.stdins[dest]
            .send((Instant::now(), message.to_string()))
            .unwrap();
    }

    /// Sends a client request to `node` without waiting; returns its `msg_id`.
    pub fn request(&mut self, node: &str, mut body: Value) -> u64 {
        self.next_msg_id += 1;
        body["msg_id"] = json!(self.next_msg_id);
        self.deliver(json!({"src": "c9", "dest": node, "body": body}));
        self.next_msg_id
    }

    /// The next reply to a client, whichever request it answers.
    pub async fn reply(&mut self) -> Value {
        timeout(Duration::from_secs(60), self.replies.recv())
            .await
            .expect("no reply for a minute")
            .unwrap()
    }

    /// Messages between nodes and services so far (requests and replies).
    pub fn service_messages(&self) -> u64 {
        self.net.lock().unwrap().service_messages
    }

    /// A client request to `node`; returns the reply body.
    pub async fn call(&mut self, node: &str, mut body: Value) -> Value {
        self.next_msg_id += 1;
        body["msg_id"] = json!(self.next_msg_id);
        self.deliver(json!({"src": "c9", "dest": node, "body": body}));
        let reply = self.replies.recv().await.unwrap();
        assert_eq!(
            reply["body"]["in_reply_to"],
            json!(self.next_msg_id),
            "{reply}"
        );
        reply["body"].clone()
    }

    /// Broadcasts `value` through `node`; asserts it was acknowledged.
    pub async fn broadcast(&mut self, node: &str, value: i64) {
        let reply = self
            .call(node, json!({"type": "broadcast", "message": value}))
            .await;
        assert_eq!(reply["type"], "broadcast_ok", "{reply}");
    }

    /// What `node` returns to a read, sorted.
    pub async fn read(&mut self, node: &str) -> Vec<i64> {
        let reply = self.call(node, json!({"type": "read"})).await;
        assert_eq!(reply["type"], "read_ok", "{reply}");
        let mut values: Vec<i64> = reply["messages"]
            .as_array()
            .unwrap()
            .iter()
            .map(|value| value.as_i64().unwrap())
            .collect();
        values.sort_unstable();
        values
    }

    /// The node ids.
    pub fn ids(&self) -> Vec<String> {
        self.ids.clone()
    }

    /// Cuts `a` and `b` apart in both directions.
    pub fn cut(&self, a: &str, b: &str) {
        let mut net = self.net.lock().unwrap();
        net.cut.insert((a.to_owned(), b.to_owned()));
        net.cut.insert((b.to_owned(), a.to_owned()));
    }

    /// Drops messages from `src` to `dest` (only that direction).
    pub fn cut_one_way(&self, src: &str, dest: &str) {
        let mut net = self.net.lock().unwrap();
        net.cut.insert((src.to_owned(), dest.to_owned()));
    }

    /// Cuts every node of `side` from every node not in it.
    pub fn partition(&self, side: &[&str]) {
        for a in side {
            for b in &self.ids {
                if !side.contains(&b.as_str()) {
                    self.cut(a, b);
                }
            }
        }
    }

    /// Removes every cut.
    pub fn heal(&self) {
        self.net.lock().unwrap().cut.clear();
    }

    /// Node-to-node messages sent so far (dropped ones included) and dropped.
    pub fn sent_and_dropped(&self) -> (u64, u64) {
        let net = self.net.lock().unwrap();
        (net.sent, net.dropped)
    }
}

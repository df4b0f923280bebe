//! A Maelstrom broadcast node (Gossip Glomers 3a-3e) built on the pipeline.
//!
//! It also serves the grow-only counter on `seq-kv` (4, `node/counter.rs`) and the Kafka-style
//! log (5a-5c, `node/kafka/`), calling Maelstrom's services and other nodes through its RPC
//! client (`node/rpc.rs`); docs/node-kv.md has the designs.
//!
//! ```text
//!  stdin lines --> inbound_stream --> Server (dispatcher) --replies-----------------+
//!                  (Stream of sorted   |  store, ids, early queue                   |
//!                   envelopes)         | values                                     v
//!                                      v                                     stdout sink (Block)
//!                  gossip input sink (Block) -> dedup_by_key -> batch ->            |
//!                  fan_out -> one sink per peer (Block) -> run_peer_link --gossip--+
//!                                                          (seq, acks, retries)     |
//!                                      owed acks (fast) -> AckRoute (batch) --------+
//!                                                                                   v
//!                                                                          write_lines -> stdout
//! ```
//!
//! Every sink is `Block`, so nothing is dropped: a full sink makes its producer wait, and the
//! wait reaches the dispatcher, which acknowledges a broadcast only once the value is in the
//! gossip pipeline. From there each peer link keeps the value pending until the peer
//! acknowledges it, and re-sends it while it does not (partitions drop messages silently).
//!
//! The shape of the gossip is the [`Profile`]'s: a star with a batching hub (few messages) or
//! direct sends from every node (one hop). See `node/plan.rs`. Acks ride on gossip going the other
//! way; the few that cannot go on their own after a quiet delay, or, when every node talks to
//! every other one, gathered and passed on by the hub (`node/acks.rs`). Nothing is sent when there
//! is nothing new.
//!
//! The node can be driven in-process:
//!
//! ```
//! use sluicegate::node::{NodeConfig, run_node};
//! use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
//!
//! # #[tokio::main(flavor = "current_thread")] async fn main() {
//! let (mut stdin, node_stdin) = tokio::io::duplex(4096);
//! let (node_stdout, stdout) = tokio::io::duplex(4096);
//! let node = tokio::spawn(run_node(BufReader::new(node_stdin), node_stdout, NodeConfig::default()));
//! stdin.write_all(br#"{"src":"c0","dest":"n0","body":{"type":"init","msg_id":1,"node_id":"n0","node_ids":["n0"]}}
//! {"src":"c1","dest":"n0","body":{"type":"echo","msg_id":1,"echo":"hi"}}
//! "#).await.unwrap();
//! drop(stdin); // end of input: the node finishes what it queued and returns
//! let mut lines = BufReader::new(stdout).lines();
//! assert!(lines.next_line().await.unwrap().unwrap().contains(r#""type":"init_ok""#));
//! assert!(lines.next_line().await.unwrap().unwrap().contains(r#""echo":"hi""#));
//! assert_eq!(node.await.unwrap().unwrap().counters.handled, 2);
//! # }
//! ```

mod acks;
mod config;
mod counter;
mod gossip;
mod ids;
mod input;
mod kafka;
mod kv;
mod link;
mod output;
mod peer;
mod plan;
mod protocol;
mod rpc;
mod server;
mod store;

pub use config::{ConfigError, NodeConfig, Profile};
pub use gossip::GossipReport;
pub use server::ServerCounters;

use std::pin::pin;

use futures::StreamExt;
use thiserror::Error;
use tokio::io::{AsyncBufRead, AsyncWrite};

use crate::sinks::{OverflowPolicy, SinkStats, bounded};

/// Why a node stopped other than at the end of its input.
#[derive(Debug, Error)]
pub enum NodeError {
    /// Reading the input failed.
    #[error("reading input: {0}")]
    Input(#[source] std::io::Error),
    /// Writing the output failed.
    #[error("writing output: {0}")]
    Output(#[source] std::io::Error),
}

/// What a node did, once its input has ended and everything it queued has been written.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct NodeReport {
    /// The dispatcher's counts.
    pub counters: ServerCounters,
    /// The gossip pipeline's, if the node was initialised.
    pub gossip: Option<GossipReport>,
    /// The stdout sink's counters (policy `Block`).
    pub output: SinkStats,
    /// Lines written.
    pub written: u64,
}

/// Runs a node: reads protocol lines from `input`, writes protocol lines to `output`, until the
/// input ends. Then it stops taking new work, lets what is queued go out, and returns.
/// Retries still pending at that moment are abandoned (nobody is left to hear them); their count
/// is in the report.
///
/// Tasks are spawned on the current tokio runtime; time is tokio's, so a paused clock drives it.
///
/// # Errors
///
/// [`NodeError`] when reading the input or writing the output fails.
pub async fn run_node<R, W>(
    input: R,
    output: W,
    config: NodeConfig,
) -> Result<NodeReport, NodeError>
where
    R: AsyncBufRead + Unpin,
    W: AsyncWrite + Unpin,
{
    let (out, mut out_stream) = bounded(config.output_capacity, OverflowPolicy::Block);
    let max_line_bytes = config.max_line_bytes;
    let serve = async move {
        let mut server = server::Server::new(config, out);
        let mut inbound = pin!(input::inbound_stream(input, max_line_bytes));
        let mut failure = None;
        while let Some(line) = inbound.next().await {
            match line {
                Ok(line) => {
                    if server.handle(line).await.is_err() {
                        break;
                    }
                }
                Err(error) => {
                    failure = Some(error);
                    break;
                }
            }
        }
        (server.finish().await, failure)
    };
    let writer = async move {
        let written = output::write_lines(&mut out_stream, output).await;
        // The stream is dropped here, also after a write error: producers then see `Closed`.
        (written, out_stream.stats())
    };
    let (((counters, gossip), read_failure), (written, output)) = tokio::join!(serve, writer);
    if let Some(error) = read_failure {
        return Err(NodeError::Input(error));
    }
    Ok(NodeReport {
        counters,
        gossip,
        output,
        written: written.map_err(NodeError::Output)?,
    })
}

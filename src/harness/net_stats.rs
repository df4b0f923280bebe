//! Counts of the network journal (docs/harness.md §6.2), shared by the network that moves messages
//! and the checker that reports them.

use serde::Serialize;

/// Sends and receives of one subset of the traffic.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct NetCounts {
    /// Messages accepted by the network (each gets a fresh id, so this is also the msg-count).
    pub send_count: u64,
    /// Messages delivered to their destination (dropped and still-queued ones are not).
    pub recv_count: u64,
}

/// The journal's counts, from init to node kill, split as Maelstrom splits them.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct NetStats {
    /// Every message.
    pub all: NetCounts,
    /// Messages whose source or destination is a client (an id starting with `c`).
    pub clients: NetCounts,
    /// Messages between servers (nodes and services).
    pub servers: NetCounts,
}

//! Maelstrom's network checker (docs/harness.md §6.2): message counts from the journal, overall, to
//! or from clients, and between servers, with messages per client operation.

use crate::harness::edn::Edn;
use crate::harness::net_stats::{NetCounts, NetStats};

/// The net checker's result; always valid.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct NetResult {
    /// The journal's counts.
    pub stats: NetStats,
    /// Invocations by client processes (the denominator of msgs-per-op).
    pub op_count: u64,
}

impl NetResult {
    /// `msg-count / op-count` as Maelstrom computes it, a 32-bit float; `None` when there were
    /// no operations.
    pub fn msgs_per_op(&self, counts: NetCounts) -> Option<f32> {
        // The msg-count is the number of distinct message ids, and every send gets a fresh id.
        (self.op_count > 0).then(|| (counts.send_count as f64 / self.op_count as f64) as f32)
    }

    /// `:net :servers :msgs-per-op`, the Fly.io metric.
    pub fn servers_msgs_per_op(&self) -> Option<f32> {
        self.msgs_per_op(self.stats.servers)
    }

    /// `:net :all :msgs-per-op`.
    pub fn all_msgs_per_op(&self) -> Option<f32> {
        self.msgs_per_op(self.stats.all)
    }

    /// `{:all {…}, :clients {…}, :servers {…}, :valid? true}`; `:clients` has no msgs-per-op.
    pub fn to_edn(self) -> Edn {
        let subset = |counts: NetCounts, msgs_per_op: Option<f32>| {
            let mut entries = vec![
                ("send-count", Edn::uint(counts.send_count)),
                ("recv-count", Edn::uint(counts.recv_count)),
                ("msg-count", Edn::uint(counts.send_count)),
            ];
            if let Some(ratio) = msgs_per_op {
                entries.push(("msgs-per-op", Edn::Float32(ratio)));
            }
            Edn::kw_map(entries)
        };
        Edn::kw_map([
            ("all", subset(self.stats.all, self.all_msgs_per_op())),
            ("clients", subset(self.stats.clients, None)),
            (
                "servers",
                subset(self.stats.servers, self.servers_msgs_per_op()),
            ),
            ("valid?", Edn::Bool(true)),
        ])
    }
}

/// The net checker over the journal's counts and the history's client invocation count
/// ([`super::client_invocation_count`]).
pub fn check(stats: &NetStats, op_count: u64) -> NetResult {
    NetResult {
        stats: *stats,
        op_count,
    }
}

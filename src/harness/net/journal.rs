//! The message journal's counters (docs/harness.md §4.3, §6.2), always on, split as the checker
//! reports them.

use std::sync::atomic::{AtomicU64, Ordering};

use crate::harness::net_stats::{NetCounts, NetStats};

/// True for a Maelstrom client id: any id whose first character is `c` (docs/harness.md §1.4).
pub fn is_client(id: &str) -> bool {
    id.starts_with('c')
}

#[derive(Debug, Default)]
struct Counts {
    sent: AtomicU64,
    received: AtomicU64,
}

impl Counts {
    fn snapshot(&self) -> NetCounts {
        NetCounts {
            send_count: self.sent.load(Ordering::Relaxed),
            recv_count: self.received.load(Ordering::Relaxed),
        }
    }
}

/// Sends and receives, counted at the moment the network accepts or delivers a message.
#[derive(Debug, Default)]
pub struct Journal {
    all: Counts,
    clients: Counts,
    servers: Counts,
}

impl Journal {
    fn subset(&self, src: &str, dest: &str) -> &Counts {
        if is_client(src) || is_client(dest) {
            &self.clients
        } else {
            &self.servers
        }
    }

    /// A message from `src` to `dest` was accepted (before any partition decision).
    pub fn sent(&self, src: &str, dest: &str) {
        self.all.sent.fetch_add(1, Ordering::Relaxed);
        self.subset(src, dest).sent.fetch_add(1, Ordering::Relaxed);
    }

    /// A message from `src` was delivered to `dest`.
    pub fn received(&self, src: &str, dest: &str) {
        self.all.received.fetch_add(1, Ordering::Relaxed);
        self.subset(src, dest)
            .received
            .fetch_add(1, Ordering::Relaxed);
    }

    /// The counts so far.
    pub fn snapshot(&self) -> NetStats {
        NetStats {
            all: self.all.snapshot(),
            clients: self.clients.snapshot(),
            servers: self.servers.snapshot(),
        }
    }
}

//! The server's always-on counters, and the Prometheus names they are exported under.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use crate::sinks::SinkStats;

/// Counters shared by the streams, the store writer and the metrics exporter.
#[derive(Debug, Default)]
pub struct Counters {
    /// Records received (every record is answered exactly once).
    pub received: AtomicU64,
    /// Records acked as stored, repeats included.
    pub stored: AtomicU64,
    /// Of those, repeats of a recently stored id (acked again, not written again).
    pub duplicates: AtomicU64,
    /// Records rejected, for any reason.
    pub rejected: AtomicU64,
    /// Of those, records sent beyond the stream's credit window (`REASON_NO_CREDIT`).
    pub no_credit: AtomicU64,
    /// Streams that sent records beyond their credit window.
    pub overrun_streams: AtomicU64,
    /// Streams ended for sending nothing for the idle timeout.
    pub idle_streams: AtomicU64,
    /// Connections open now.
    pub connections_open: AtomicU64,
    /// Times the accept loop waited at the connection limit.
    pub connection_limit_waits: AtomicU64,
    /// Failed accepts (each followed by a back-off).
    pub accept_errors: AtomicU64,
    /// Streams open now.
    pub streams: AtomicU64,
    /// The most batches ever seen queued in front of the store.
    pub queue_high_water: AtomicU64,
    /// Store writes (one `fdatasync` each).
    pub store_writes: AtomicU64,
}

impl Counters {
    pub(crate) fn add(counter: &AtomicU64, n: usize) {
        counter.fetch_add(n as u64, Ordering::Relaxed);
    }
}

/// A snapshot of a running server's counters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IngestStats {
    /// The queue in front of the store (counted in batches).
    pub queue: SinkStats,
    /// Its capacity, in batches.
    pub queue_capacity: u64,
    /// The most batches ever seen queued in front of the store, sampled by the writer each time
    /// it takes from the queue (when the queue is fullest).
    pub queue_high_water: u64,
    /// Records received.
    pub received: u64,
    /// Records acked as stored, repeats included.
    pub stored: u64,
    /// Repeats acked again without being written again.
    pub duplicates: u64,
    /// Records rejected.
    pub rejected: u64,
    /// Of those, records sent beyond their stream's credit window.
    pub no_credit: u64,
    /// Streams that sent records beyond their credit window.
    pub overrun_streams: u64,
    /// Streams ended for sending nothing for the idle timeout.
    pub idle_streams: u64,
    /// Connections open now.
    pub connections_open: u64,
    /// Times the accept loop waited at the connection limit.
    pub connection_limit_waits: u64,
    /// Failed accepts (each followed by a back-off).
    pub accept_errors: u64,
    /// Streams open now.
    pub streams: u64,
    /// Store writes (one `fdatasync` each).
    pub store_writes: u64,
}

impl IngestStats {
    pub(crate) fn read(counters: &Arc<Counters>, queue: SinkStats, capacity: usize) -> Self {
        let load = |counter: &AtomicU64| counter.load(Ordering::Relaxed);
        IngestStats {
            queue,
            queue_capacity: capacity as u64,
            queue_high_water: load(&counters.queue_high_water),
            received: load(&counters.received),
            stored: load(&counters.stored),
            duplicates: load(&counters.duplicates),
            rejected: load(&counters.rejected),
            no_credit: load(&counters.no_credit),
            overrun_streams: load(&counters.overrun_streams),
            idle_streams: load(&counters.idle_streams),
            connections_open: load(&counters.connections_open),
            connection_limit_waits: load(&counters.connection_limit_waits),
            accept_errors: load(&counters.accept_errors),
            streams: load(&counters.streams),
            store_writes: load(&counters.store_writes),
        }
    }

    /// Publishes the snapshot to the `metrics` recorder (a no-op if none is installed).
    pub fn publish(&self) {
        let queue = &self.queue;
        for (name, value) in [
            ("sluicegate_ingest_queue_offered_total", queue.offered),
            ("sluicegate_ingest_queue_queued_total", queue.queued),
            ("sluicegate_ingest_queue_delivered_total", queue.delivered),
            (
                "sluicegate_ingest_queue_dropped_newest_total",
                queue.dropped_newest,
            ),
            (
                "sluicegate_ingest_queue_evicted_oldest_total",
                queue.evicted_oldest,
            ),
            ("sluicegate_ingest_queue_rejected_total", queue.rejected),
            ("sluicegate_ingest_queue_closed_total", queue.closed),
            ("sluicegate_ingest_queue_abandoned_total", queue.abandoned),
            (
                "sluicegate_ingest_queue_blocked_emits_total",
                queue.blocked_emits,
            ),
            ("sluicegate_ingest_records_received_total", self.received),
            ("sluicegate_ingest_records_stored_total", self.stored),
            ("sluicegate_ingest_records_duplicate_total", self.duplicates),
            ("sluicegate_ingest_records_rejected_total", self.rejected),
            ("sluicegate_ingest_store_writes_total", self.store_writes),
            ("sluicegate_ingest_records_no_credit_total", self.no_credit),
            (
                "sluicegate_ingest_streams_idle_closed_total",
                self.idle_streams,
            ),
            (
                "sluicegate_ingest_connection_limit_waits_total",
                self.connection_limit_waits,
            ),
            ("sluicegate_ingest_accept_errors_total", self.accept_errors),
            (
                "sluicegate_ingest_streams_overrun_total",
                self.overrun_streams,
            ),
        ] {
            metrics::counter!(name).absolute(value);
        }
        metrics::gauge!("sluicegate_ingest_queue_len").set(queue.len as f64);
        metrics::gauge!("sluicegate_ingest_queue_capacity").set(self.queue_capacity as f64);
        metrics::gauge!("sluicegate_ingest_queue_blocked_seconds").set(queue.blocked.as_secs_f64());
        metrics::gauge!("sluicegate_ingest_streams_open").set(self.streams as f64);
        metrics::gauge!("sluicegate_ingest_connections_open").set(self.connections_open as f64);
    }
}

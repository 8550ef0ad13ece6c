//! Counters of the broker, readable as a [`BrokerStats`] snapshot and reported to the
//! `metrics` facade.
//!
//! # When counters reach the facade
//!
//! Per event, through `metrics::counter!` handles: a request costs microseconds (a syscall
//! at least), so a facade call per request is noise. Request latency goes to a
//! `keel_stream_broker_request_seconds` histogram labelled by API. Gauges that need a scan
//! (groups, lag per group) are published by [`crate::BrokerHandle::publish_metrics`].

use std::sync::atomic::{AtomicU64, Ordering};

/// A snapshot of the broker's counters.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct BrokerStats {
    /// Connections accepted since start.
    pub connections_accepted: u64,
    /// Connections refused because `max_connections` were open.
    pub connections_refused: u64,
    /// Connections open now.
    pub connections_open: u64,
    /// Requests answered (or handled, for `acks = 0` produces).
    pub requests: u64,
    /// Frames refused (bad length, unknown API or version, malformed); each closed its connection.
    pub frames_rejected: u64,
    /// Record batches appended by `Produce`.
    pub produced_batches: u64,
    /// Records appended by `Produce`.
    pub produced_records: u64,
    /// Bytes appended by `Produce`.
    pub produced_bytes: u64,
    /// Batches an idempotent producer retried and the log recognised (not written twice).
    pub duplicate_batches: u64,
    /// `Fetch` requests answered.
    pub fetches: u64,
    /// Record bytes returned by `Fetch`.
    pub fetched_bytes: u64,
    /// Completed group rebalances (a new generation handed out).
    pub rebalances: u64,
    /// Offsets committed.
    pub offsets_committed: u64,
}

#[derive(Debug, Default)]
pub(crate) struct Counters {
    pub(crate) connections_accepted: AtomicU64,
    pub(crate) connections_refused: AtomicU64,
    pub(crate) connections_open: AtomicU64,
    pub(crate) requests: AtomicU64,
    pub(crate) frames_rejected: AtomicU64,
    pub(crate) produced_batches: AtomicU64,
    pub(crate) produced_records: AtomicU64,
    pub(crate) produced_bytes: AtomicU64,
    pub(crate) duplicate_batches: AtomicU64,
    pub(crate) fetches: AtomicU64,
    pub(crate) fetched_bytes: AtomicU64,
    pub(crate) rebalances: AtomicU64,
    pub(crate) offsets_committed: AtomicU64,
}

/// Adds `n` to a local counter and to the facade counter `name`.
macro_rules! count {
    ($counters:expr, $field:ident, $n:expr) => {{
        let n: u64 = $n;
        $counters
            .$field
            .fetch_add(n, ::std::sync::atomic::Ordering::Relaxed);
        ::metrics::counter!(concat!("keel_stream_broker_", stringify!($field))).increment(n);
    }};
}
pub(crate) use count;

impl Counters {
    pub(crate) fn snapshot(&self) -> BrokerStats {
        let r = |a: &AtomicU64| a.load(Ordering::Relaxed);
        BrokerStats {
            connections_accepted: r(&self.connections_accepted),
            connections_refused: r(&self.connections_refused),
            connections_open: r(&self.connections_open),
            requests: r(&self.requests),
            frames_rejected: r(&self.frames_rejected),
            produced_batches: r(&self.produced_batches),
            produced_records: r(&self.produced_records),
            produced_bytes: r(&self.produced_bytes),
            duplicate_batches: r(&self.duplicate_batches),
            fetches: r(&self.fetches),
            fetched_bytes: r(&self.fetched_bytes),
            rebalances: r(&self.rebalances),
            offsets_committed: r(&self.offsets_committed),
        }
    }
}

/// Records one request's latency in the per-API histogram.
pub(crate) fn record_latency(api: &'static str, seconds: f64) {
    metrics::histogram!("keel_stream_broker_request_seconds", "api" => api).record(seconds);
}

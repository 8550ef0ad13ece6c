//! Store counters: a [`JobsStats`] snapshot and the `metrics` facade.
//!
//! Every store call already takes a lock (and, on the embedded store, waits for an
//! fsync), so one `Relaxed` `fetch_add` per event and a facade counter bump per call are
//! noise; the facade is fed per event with handles registered once at construction:
//! `keel_jobs_events_total{store, event}` (event = enqueued, duplicate, leased, completed,
//! failed, retried, dead, lease_recovered, released, cancelled, stale_rejected) and
//! `keel_jobs_commits_total{store}` / `keel_jobs_committed_changes_total{store}` for the
//! group committer. Depth by queue and state comes from [`Store::counts`](crate::Store::counts).

use std::sync::atomic::{AtomicU64, Ordering};

use crate::state::Events;

/// A snapshot of a store's counters since it was opened.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct JobsStats {
    /// Jobs created.
    pub enqueued: u64,
    /// Enqueues answered with an existing job (unique key held).
    pub duplicates: u64,
    /// Leases handed out (runs started).
    pub leased: u64,
    /// Runs acknowledged.
    pub completed: u64,
    /// Runs reported failed.
    pub failed: u64,
    /// Failures that scheduled another attempt.
    pub retried: u64,
    /// Jobs dead-lettered.
    pub dead: u64,
    /// Expired leases given back (lost workers).
    pub lease_recoveries: u64,
    /// Leases released unrun (graceful shutdown).
    pub released: u64,
    /// Pending jobs cancelled.
    pub cancelled: u64,
    /// Heartbeats, acks, failures and releases rejected for a stale or expired lease.
    pub stale_rejected: u64,
    /// Group commits (write transactions) of the embedded store; on Redis and Postgres,
    /// ack groups (one call carrying every `complete` that arrived while the previous
    /// one ran).
    pub commits: u64,
    /// Changes (job writes and deletes) those commits carried; on Redis and Postgres,
    /// the acks those groups carried.
    pub committed_changes: u64,
    /// Jobs completed over the store's whole life (persisted across restarts).
    pub succeeded_total: u64,
}

const EVENTS: [&str; 11] = [
    "enqueued",
    "duplicate",
    "leased",
    "completed",
    "failed",
    "retried",
    "dead",
    "lease_recovered",
    "released",
    "cancelled",
    "stale_rejected",
];

/// A store's counters and facade handles.
#[derive(Debug)]
pub(crate) struct StoreMetrics {
    counts: [AtomicU64; 11],
    commits: AtomicU64,
    committed_changes: AtomicU64,
    facade: [metrics::Counter; 11],
    facade_commits: metrics::Counter,
    facade_changes: metrics::Counter,
}

impl StoreMetrics {
    pub(crate) fn new(store: &'static str) -> Self {
        Self {
            counts: Default::default(),
            commits: AtomicU64::new(0),
            committed_changes: AtomicU64::new(0),
            facade: EVENTS.map(|event| metrics::counter!("keel_jobs_events_total", "store" => store, "event" => event)),
            facade_commits: metrics::counter!("keel_jobs_commits_total", "store" => store),
            facade_changes: metrics::counter!("keel_jobs_committed_changes_total", "store" => store),
        }
    }

    pub(crate) fn record(&self, e: &Events) {
        let values = [
            e.enqueued,
            e.duplicates,
            e.leased,
            e.completed,
            e.failed,
            e.retried,
            e.dead,
            e.lease_recoveries,
            e.released,
            e.cancelled,
            e.stale_rejected,
        ];
        for (i, v) in values.into_iter().enumerate() {
            if v > 0 {
                self.counts[i].fetch_add(v, Ordering::Relaxed);
                self.facade[i].increment(v);
            }
        }
    }

    pub(crate) fn record_commit(&self, changes: u64) {
        self.commits.fetch_add(1, Ordering::Relaxed);
        self.committed_changes.fetch_add(changes, Ordering::Relaxed);
        self.facade_commits.increment(1);
        self.facade_changes.increment(changes);
    }

    pub(crate) fn snapshot(&self, succeeded_total: u64) -> JobsStats {
        let c = |i: usize| self.counts[i].load(Ordering::Relaxed);
        JobsStats {
            enqueued: c(0),
            duplicates: c(1),
            leased: c(2),
            completed: c(3),
            failed: c(4),
            retried: c(5),
            dead: c(6),
            lease_recoveries: c(7),
            released: c(8),
            cancelled: c(9),
            stale_rejected: c(10),
            commits: self.commits.load(Ordering::Relaxed),
            committed_changes: self.committed_changes.load(Ordering::Relaxed),
            succeeded_total,
        }
    }
}

/// A snapshot of a worker pool's counters since it started.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct WorkerStats {
    /// Jobs leased by this pool.
    pub fetched: u64,
    /// Runs that succeeded and were acknowledged.
    pub succeeded: u64,
    /// Runs that failed (error, panic, timeout, unknown kind, bad payload).
    pub failed: u64,
    /// Failures that scheduled a retry.
    pub retried: u64,
    /// Failures that dead-lettered the job.
    pub dead: u64,
    /// Handler panics (contained; counted in `failed` too).
    pub panicked: u64,
    /// Runs that exceeded their timeout (counted in `failed` too).
    pub timed_out: u64,
    /// Jobs whose kind has no handler (dead-lettered).
    pub unknown_kind: u64,
    /// Jobs whose payload did not deserialize (dead-lettered).
    pub bad_payload: u64,
    /// Runs abandoned because a heartbeat found the lease gone.
    pub lost_leases: u64,
    /// Acks or failure reports the store rejected for a stale or expired lease.
    pub late_acks_rejected: u64,
    /// Leases given back unrun at shutdown.
    pub released: u64,
    /// Store calls that failed (the pool backs off and retries).
    pub store_errors: u64,
}

const WORKER_EVENTS: [&str; 13] = [
    "fetched",
    "succeeded",
    "failed",
    "retried",
    "dead",
    "panicked",
    "timed_out",
    "unknown_kind",
    "bad_payload",
    "lost_lease",
    "late_ack_rejected",
    "released",
    "store_error",
];

/// One worker-pool event (index into the counters).
#[derive(Clone, Copy, Debug)]
pub(crate) enum WorkerEvent {
    Fetched = 0,
    Succeeded,
    Failed,
    Retried,
    Dead,
    Panicked,
    TimedOut,
    UnknownKind,
    BadPayload,
    LostLease,
    LateAckRejected,
    Released,
    StoreError,
}

/// A pool's counters (`keel_jobs_worker_events_total{event}`) and latency histograms:
/// `keel_jobs_wait_seconds` (due → started) and `keel_jobs_run_seconds` (handler time).
#[derive(Debug)]
pub(crate) struct WorkerMetrics {
    counts: [AtomicU64; 13],
    facade: [metrics::Counter; 13],
    pub(crate) wait: metrics::Histogram,
    pub(crate) run: metrics::Histogram,
}

impl WorkerMetrics {
    pub(crate) fn new() -> Self {
        Self {
            counts: Default::default(),
            facade: WORKER_EVENTS
                .map(|event| metrics::counter!("keel_jobs_worker_events_total", "event" => event)),
            wait: metrics::histogram!("keel_jobs_wait_seconds"),
            run: metrics::histogram!("keel_jobs_run_seconds"),
        }
    }

    pub(crate) fn add(&self, event: WorkerEvent, n: u64) {
        self.counts[event as usize].fetch_add(n, Ordering::Relaxed);
        self.facade[event as usize].increment(n);
    }

    pub(crate) fn snapshot(&self) -> WorkerStats {
        let c = |e: WorkerEvent| self.counts[e as usize].load(Ordering::Relaxed);
        WorkerStats {
            fetched: c(WorkerEvent::Fetched),
            succeeded: c(WorkerEvent::Succeeded),
            failed: c(WorkerEvent::Failed),
            retried: c(WorkerEvent::Retried),
            dead: c(WorkerEvent::Dead),
            panicked: c(WorkerEvent::Panicked),
            timed_out: c(WorkerEvent::TimedOut),
            unknown_kind: c(WorkerEvent::UnknownKind),
            bad_payload: c(WorkerEvent::BadPayload),
            lost_leases: c(WorkerEvent::LostLease),
            late_acks_rejected: c(WorkerEvent::LateAckRejected),
            released: c(WorkerEvent::Released),
            store_errors: c(WorkerEvent::StoreError),
        }
    }
}

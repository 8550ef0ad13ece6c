//! Observability: [`QueueStats`], the plain snapshot `stats()` returns, and
//! how the counters reach the `metrics` facade.
//!
//! # The rule
//!
//! **keel-queue publishes on demand, never per operation.** The counters live
//! in the queue (`pushed`/`popped` are even derived from the ring's positions,
//! so the hot path writes no counter at all), [`QueueStats`] and [`PoolStats`]
//! are plain snapshots, and the facade sees them only when the application
//! calls [`Sender::publish_metrics`](crate::Sender::publish_metrics) /
//! [`Receiver::publish_metrics`](crate::Receiver::publish_metrics) or
//! [`QueueStats::publish`] / [`PoolStats::publish`] — typically from a
//! periodic reporter (every few seconds) or a scrape handler.
//!
//! Why: a hand-off on the ring costs tens of nanoseconds; even a cached
//! `metrics::counter!` handle is an extra atomic RMW on a line shared by every
//! producer, and a global recorder lookup per message would cost more than the
//! hand-off itself. Counters are published with `absolute(..)`, so publishing
//! twice, or from several reporters, never double-counts.
//!
//! # Names
//!
//! Queue (label `queue`): counters `keel_queue_{pushed,popped,dropped,rejected}_total`,
//! `keel_queue_producer_blocked_nanos_total`; gauges `keel_queue_len`,
//! `keel_queue_capacity`, `keel_queue_high_watermark`.
//!
//! Pool (label `pool`, and `worker` on per-worker counters): counters
//! `keel_pool_tasks_run_total`, `keel_pool_steals_total`; gauge `keel_pool_pending`.

use std::time::Duration;

use crate::policy::{Backpressure, Strategy};
use crate::pool::PoolStats;

/// A snapshot of one queue's counters.
///
/// Accounting identity: `pushed == popped + evicted + len`, where evicted items
/// are the `DropOldest` part of `dropped`; `DropIncoming` items are counted in
/// `dropped` and never in `pushed`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueueStats {
    /// Items in the queue now (a permit not yet sent is a promised slot, not
    /// an item, on every flavor).
    pub len: usize,
    /// The bound.
    pub capacity: usize,
    /// The deepest the queue has been. Exact for LIFO/priority and whenever the
    /// queue filled up; on the FIFO ring it is sampled once per lap, when a
    /// push takes slot 0 (reading the consumer's index on every push would
    /// cost a cache miss per message, on both sides).
    pub high_watermark: usize,
    /// Items accepted into the queue (a permit's item once it is sent).
    pub pushed: u64,
    /// Items handed out (pop, batch, drain, shutdown leftovers).
    pub popped: u64,
    /// Items lost to `DropIncoming` or evicted by `DropOldest`.
    pub dropped: u64,
    /// Pushes and reservations refused because the queue was full: `Full` and
    /// `Timeout` results (the item went back to the caller).
    pub rejected: u64,
    /// Total time producers spent blocked waiting for space.
    pub producer_blocked: Duration,
    /// Whether the queue is closed.
    pub closed: bool,
    /// The order strategy.
    pub strategy: Strategy,
    /// The policy when full.
    pub backpressure: Backpressure,
}

impl QueueStats {
    /// Publishes the snapshot through the `metrics` facade, labelled
    /// `queue = name` (names in the crate's metrics rule, module `metrics`).
    ///
    /// ```
    /// let (tx, _rx) = keel_queue::bounded::<u32>(4)?;
    /// tx.push(1).unwrap();
    /// let stats = tx.stats();
    /// assert_eq!(stats.pushed, 1);
    /// stats.publish("jobs"); // a no-op without an installed recorder
    /// # Ok::<(), keel_queue::BuildError>(())
    /// ```
    pub fn publish(&self, name: &str) {
        let label = name.to_owned();
        metrics::counter!("keel_queue_pushed_total", "queue" => label.clone())
            .absolute(self.pushed);
        metrics::counter!("keel_queue_popped_total", "queue" => label.clone())
            .absolute(self.popped);
        metrics::counter!("keel_queue_dropped_total", "queue" => label.clone())
            .absolute(self.dropped);
        metrics::counter!("keel_queue_rejected_total", "queue" => label.clone())
            .absolute(self.rejected);
        metrics::counter!("keel_queue_producer_blocked_nanos_total", "queue" => label.clone())
            .absolute(u64::try_from(self.producer_blocked.as_nanos()).unwrap_or(u64::MAX));
        metrics::gauge!("keel_queue_len", "queue" => label.clone()).set(self.len as f64);
        metrics::gauge!("keel_queue_capacity", "queue" => label.clone()).set(self.capacity as f64);
        metrics::gauge!("keel_queue_high_watermark", "queue" => label)
            .set(self.high_watermark as f64);
    }
}

impl PoolStats {
    /// Publishes through the `metrics` facade (`keel_pool_tasks_run_total` and
    /// `keel_pool_steals_total` per `worker`, `keel_pool_pending`), labelled
    /// `pool = name`.
    pub fn publish(&self, name: &str) {
        for (index, worker) in self.workers.iter().enumerate() {
            let labels = [("pool", name.to_owned()), ("worker", index.to_string())];
            metrics::counter!("keel_pool_tasks_run_total", &labels).absolute(worker.tasks_run);
            metrics::counter!("keel_pool_steals_total", &labels).absolute(worker.steals);
        }
        metrics::gauge!("keel_pool_pending", "pool" => name.to_owned()).set(self.pending as f64);
    }
}

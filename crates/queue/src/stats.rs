//! Counters as a snapshot struct, and their export through the `metrics` facade.

use std::time::Duration;

use crate::config::{Backpressure, Strategy};

/// A snapshot of one queue's counters.
///
/// Accounting identity: `pushed == popped + evicted + len`, where evicted items
/// are the `DropOldest` part of `dropped`; `DropIncoming` items are counted in
/// `dropped` and never in `pushed`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueueStats {
    /// Items in the queue now.
    pub len: usize,
    /// The bound.
    pub capacity: usize,
    /// The deepest the queue has been. Exact for LIFO/priority and whenever the
    /// queue filled up; on the FIFO ring it is sampled every 32 slots (reading
    /// the consumer's index on every push would cost a cache miss per message).
    pub high_watermark: usize,
    /// Items accepted into the queue.
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
    /// `queue = name`: counters `keel_queue_{pushed,popped,dropped,rejected}_total`,
    /// `keel_queue_producer_blocked_nanos_total`, and gauges
    /// `keel_queue_len`, `keel_queue_capacity`, `keel_queue_high_watermark`.
    ///
    /// The hot path never touches the facade (a global recorder lookup per
    /// message would cost more than the hand-off itself); call this from a
    /// periodic reporter instead.
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

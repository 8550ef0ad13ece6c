//! [`QueueStats`]: a plain snapshot of one queue's counters (how they reach
//! the `metrics` facade is in `metrics.rs`).

use std::time::Duration;

use crate::policy::{Backpressure, Strategy};

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
    /// queue filled up; on the FIFO ring it is sampled every 32 slots (reading
    /// the consumer's index on every push would cost a cache miss per message).
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

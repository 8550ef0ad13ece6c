//! The two choices that shape a queue: the order items leave in ([`Strategy`])
//! and what a push does when the queue is full ([`Backpressure`]).
//!
//! A leaf module: the builder, the core and the stats snapshot all read these
//! enums, and nothing here depends on them.

/// In which order items leave the queue.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Strategy {
    /// First in, first out (a lock-free ring).
    Fifo,
    /// Last in, first out (a stack under a lock).
    Lifo,
    /// Highest priority first, ties in arrival order (a stable heap under a lock).
    Priority,
}

/// What a push does when the queue is full.
///
/// | policy | blocking `push` | `try_push` | counted as |
/// |---|---|---|---|
/// | `Block` | waits for space | `Err(Full(item))` | `rejected` (try/timeout only) |
/// | `Reject` | `Err(Full(item))` at once | `Err(Full(item))` | `rejected` |
/// | `DropIncoming` | drops the new item, `Ok(())` | same | `dropped` |
/// | `DropOldest` | evicts the oldest, enqueues, `Ok(())` | same | `dropped` |
///
/// Under `DropOldest` a push that finds nothing to evict — every slot is
/// promised to a [`Permit`](crate::Permit), or on the FIFO ring a permit holds
/// the head slot (a ring frees slots in order) — gets `Full(item)` back,
/// counted as `rejected`.
///
/// "Oldest" means the item that has waited longest for FIFO and LIFO (for LIFO
/// that is the bottom of the stack, the item served last), and for priority the
/// item that would be served last: the lowest priority, newest among equals.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Backpressure {
    /// Producers wait for space: lossless, slows producers to consumer speed.
    #[default]
    Block,
    /// Fail fast and hand the item back: the caller decides (retry, 503, spill).
    Reject,
    /// Keep what is queued, lose the newest: for samples where old data still matters.
    DropIncoming,
    /// Keep the newest, evict the oldest: for telemetry where fresh data matters most.
    DropOldest,
}

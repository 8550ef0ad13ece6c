//! The storage flavors behind one queue type, dispatched by a private enum in
//! the core (`queue.rs`), as crossbeam-channel does: each flavor is complete in
//! its own file and the core's match arms are one line each.
//!
//! - `ring` — FIFO: a lock-free bounded ring with per-slot sequence stamps.
//! - `locked` — LIFO and priority: a stack or a stable heap under one mutex.
//!
//! Both offer the same operations with the same meaning; the core adds the
//! backpressure policy, the counters, blocking and shutdown on top. A flavor
//! wakes the other side itself (it knows whether its change was a read-modify-
//! write or a plain store, which decides how the wake-up must be ordered, see
//! `waiters.rs`).

pub(crate) mod locked;
pub(crate) mod ring;

/// Outcome of a non-blocking pop or eviction.
#[derive(Debug)]
pub(crate) enum TryPop<T> {
    /// The item taken.
    Item(T),
    /// Nothing there now.
    Empty,
    /// Empty and closed: nothing will ever arrive.
    Closed,
    /// Ring only: a producer claimed the head slot and is writing it (a
    /// matter of nanoseconds, unless it was preempted).
    Busy,
    /// A [`Permit`](crate::Permit) holds the slot an eviction needs: on the
    /// ring the head slot, on the locked flavor every slot. Nothing can be
    /// evicted until a permit is sent or dropped.
    Held,
    /// Ring, quick probe only ([`Probe::Quick`]): the head slot is not
    /// published, and why (empty, closed, busy, held) was not looked up.
    Unpublished,
}

/// How much a pop on the ring may find out when the head slot is not ready.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Probe {
    /// Say exactly why: read `tail` (after a `SeqCst` fence) and the permit
    /// marks. `try_pop`, eviction, and a blocked pop once it stops spinning.
    Exact,
    /// Only look at the head slot's stamp ([`TryPop::Unpublished`] if it is
    /// not published): what a blocked pop does while it spins, so that
    /// waiting on an empty ring reads neither `tail` nor anything else the
    /// producer writes except the slot it is about to fill.
    Quick,
}

/// What a permit holds until it is sent or dropped.
#[derive(Debug)]
pub(crate) enum Reservation {
    /// A claimed ring slot (its place in line).
    Ring(ring::Claim),
    /// A counted slot of the locked storage.
    Locked,
}

/// A consistent view of a flavor's item counts, for `stats()`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Counts {
    pub(crate) pushed: u64,
    pub(crate) popped: u64,
    /// Items removed by `DropOldest` (neither popped nor in the queue).
    pub(crate) evicted: u64,
    pub(crate) len: usize,
    pub(crate) closed: bool,
}

//! Errors. Queue operations hand the item back so nothing is lost silently;
//! construction problems are a typed [`BuildError`].

use std::fmt;
use std::sync::Arc;

/// A queue or pool could not be built from its configuration.
///
/// Cloneable and comparable (a spawn failure compares by its
/// [`io::ErrorKind`](std::io::ErrorKind)), so tests can assert on it.
#[derive(Debug, Clone, thiserror::Error)]
pub enum BuildError {
    /// [`QueueBuilder::capacity`](crate::QueueBuilder::capacity) was never set.
    #[error("capacity is required")]
    MissingCapacity,
    /// The capacity must be at least 1.
    #[error("capacity must be greater than zero")]
    ZeroCapacity,
    /// The capacity is above [`Queue::MAX_CAPACITY`](crate::Queue::MAX_CAPACITY).
    #[error("capacity {0} is too large (at most 16777216)")]
    CapacityTooLarge(usize),
    /// The FIFO ring's slots (allocated up front) do not fit in memory.
    #[error("cannot allocate {bytes} bytes for a ring of {capacity} slots")]
    OutOfMemory {
        /// The capacity asked for.
        capacity: usize,
        /// The bytes its slots need (`usize::MAX` if that overflows).
        bytes: usize,
    },
    /// More worker threads than [`Pool::MAX_THREADS`](crate::Pool::MAX_THREADS).
    #[error("{0} worker threads is too many (at most 1024)")]
    TooManyThreads(usize),
    /// A pool needs at least one worker thread.
    #[error("a pool needs at least one worker thread")]
    ZeroThreads,
    /// The operating system refused to start a worker thread.
    #[error("could not start a worker thread")]
    Spawn(#[source] Arc<std::io::Error>),
}

impl PartialEq for BuildError {
    fn eq(&self, other: &Self) -> bool {
        match (self, other) {
            (Self::CapacityTooLarge(a), Self::CapacityTooLarge(b)) => a == b,
            (Self::TooManyThreads(a), Self::TooManyThreads(b)) => a == b,
            (
                Self::OutOfMemory {
                    capacity: a,
                    bytes: x,
                },
                Self::OutOfMemory {
                    capacity: b,
                    bytes: y,
                },
            ) => (a, x) == (b, y),
            (Self::Spawn(a), Self::Spawn(b)) => a.kind() == b.kind(),
            _ => std::mem::discriminant(self) == std::mem::discriminant(other),
        }
    }
}

impl Eq for BuildError {}

/// A push failed; the item is handed back.
#[derive(PartialEq, Eq, Clone, Copy)]
pub enum PushError<T> {
    /// The queue is full: from `try_push`, or any push under [`Backpressure::Reject`](crate::Backpressure::Reject).
    Full(T),
    /// The queue is closed (explicitly, by shutdown, or every receiver is gone).
    Closed(T),
    /// `push_timeout` ran out of time while the queue stayed full.
    Timeout(T),
}

impl<T> PushError<T> {
    /// Takes the item back.
    pub fn into_inner(self) -> T {
        match self {
            Self::Full(item) | Self::Closed(item) | Self::Timeout(item) => item,
        }
    }

    /// `true` for [`PushError::Closed`].
    pub fn is_closed(&self) -> bool {
        matches!(self, Self::Closed(_))
    }
}

impl<T> fmt::Debug for PushError<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Like std's channel errors: do not require `T: Debug`.
        match self {
            Self::Full(_) => f.write_str("Full(..)"),
            Self::Closed(_) => f.write_str("Closed(..)"),
            Self::Timeout(_) => f.write_str("Timeout(..)"),
        }
    }
}

impl<T> fmt::Display for PushError<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Full(_) => "queue is full",
            Self::Closed(_) => "queue is closed",
            Self::Timeout(_) => "timed out waiting for space",
        })
    }
}

impl<T> std::error::Error for PushError<T> {}

/// A pop failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum PopError {
    /// Nothing to take right now (`try_pop`).
    #[error("queue is empty")]
    Empty,
    /// The queue is closed and fully drained: nothing will ever arrive.
    #[error("queue is closed and empty")]
    Closed,
    /// `pop_timeout` ran out of time while the queue stayed empty.
    #[error("timed out waiting for an item")]
    Timeout,
}

/// `reserve` failed: no permit was issued.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum ReserveError {
    /// No free slot right now (`try_reserve`, or under `Backpressure::Reject`).
    #[error("queue is full")]
    Full,
    /// The queue is closed.
    #[error("queue is closed")]
    Closed,
}

/// A task did not produce a result.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TaskError {
    /// The task panicked; the message is the panic payload when it was a string.
    #[error("task panicked: {0}")]
    Panicked(String),
    /// The task never started: the pool was shut down immediately (or had
    /// already stopped when the task was spawned).
    #[error("task was cancelled before it started")]
    Cancelled,
}

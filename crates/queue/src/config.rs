//! Construction: the order strategy, the backpressure policy and the builder.

use std::cmp::Ordering;
use std::sync::Arc;

use crate::channel::{Receiver, Sender};
use crate::error::BuildError;
use crate::priority::Compare;
use crate::queue::Shared;

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

/// Builds a bounded queue and returns its two handles.
///
/// ```
/// use keel_queue::{Backpressure, QueueBuilder};
///
/// let (tx, rx) = QueueBuilder::new(2).lifo().backpressure(Backpressure::DropOldest).build::<u32>()?;
/// for i in 0..4 {
///     tx.push(i).unwrap();
/// }
/// assert_eq!(rx.try_pop(), Ok(3));
/// assert_eq!(rx.try_pop(), Ok(2));
/// assert_eq!(tx.stats().dropped, 2);
/// # Ok::<(), keel_queue::BuildError>(())
/// ```
#[must_use]
#[derive(Debug, Clone)]
pub struct QueueBuilder {
    capacity: usize,
    strategy: Strategy,
    backpressure: Backpressure,
    clock: Option<quanta::Clock>,
    name: String,
}

impl QueueBuilder {
    /// A FIFO queue holding at most `capacity` items, blocking when full.
    pub fn new(capacity: usize) -> Self {
        Self {
            capacity,
            strategy: Strategy::Fifo,
            backpressure: Backpressure::Block,
            clock: None,
            name: "queue".into(),
        }
    }

    /// First in, first out (the default).
    pub fn fifo(mut self) -> Self {
        self.strategy = Strategy::Fifo;
        self
    }

    /// Last in, first out.
    pub fn lifo(mut self) -> Self {
        self.strategy = Strategy::Lifo;
        self
    }

    /// The policy when full (default [`Backpressure::Block`]).
    pub fn backpressure(mut self, policy: Backpressure) -> Self {
        self.backpressure = policy;
        self
    }

    /// The clock for timeouts, deadlines and blocked-time accounting
    /// (default `quanta::Clock::new()`; tests pass `quanta::Clock::mock()`).
    pub fn clock(mut self, clock: quanta::Clock) -> Self {
        self.clock = Some(clock);
        self
    }

    /// The `queue` label on the metrics this queue publishes.
    pub fn name(mut self, name: impl Into<String>) -> Self {
        self.name = name.into();
        self
    }

    fn check(&self) -> Result<(), BuildError> {
        if self.capacity == 0 {
            return Err(BuildError::ZeroCapacity);
        }
        if self.capacity > (isize::MAX as usize) / 4 {
            return Err(BuildError::CapacityTooLarge(self.capacity));
        }
        Ok(())
    }

    /// Builds a FIFO or LIFO queue (a priority strategy needs [`QueueBuilder::priority`]
    /// or one of its variants, which choose the order).
    ///
    /// # Errors
    /// [`BuildError::ZeroCapacity`] or [`BuildError::CapacityTooLarge`].
    pub fn build<T: Send>(self) -> Result<(Sender<T>, Receiver<T>), BuildError> {
        self.check()?;
        let strategy = if self.strategy == Strategy::Priority {
            Strategy::Fifo
        } else {
            self.strategy
        };
        Ok(Shared::into_handles(Shared::new(
            self.capacity,
            strategy,
            None,
            self.backpressure,
            self.clock.unwrap_or_default(),
            self.name,
        )))
    }

    /// Builds a priority queue ordered by `T: Ord` (greatest first).
    ///
    /// # Errors
    /// As [`QueueBuilder::build`].
    pub fn priority<T: Ord + Send + 'static>(self) -> Result<(Sender<T>, Receiver<T>), BuildError> {
        self.priority_by(T::cmp)
    }

    /// Builds a priority queue ordered by a key (greatest key first).
    ///
    /// # Errors
    /// As [`QueueBuilder::build`].
    pub fn priority_by_key<T, K, F>(self, key: F) -> Result<(Sender<T>, Receiver<T>), BuildError>
    where
        T: Send + 'static,
        K: Ord,
        F: Fn(&T) -> K + Send + Sync + 'static,
    {
        self.priority_by(move |a: &T, b: &T| key(a).cmp(&key(b)))
    }

    /// Builds a priority queue ordered by a comparator (`Greater` is served first).
    ///
    /// # Errors
    /// As [`QueueBuilder::build`].
    pub fn priority_by<T, F>(self, compare: F) -> Result<(Sender<T>, Receiver<T>), BuildError>
    where
        T: Send + 'static,
        F: Fn(&T, &T) -> Ordering + Send + Sync + 'static,
    {
        self.check()?;
        let compare: Compare<T> = Arc::new(compare);
        Ok(Shared::into_handles(Shared::new(
            self.capacity,
            Strategy::Priority,
            Some(compare),
            self.backpressure,
            self.clock.unwrap_or_default(),
            self.name,
        )))
    }
}

/// A FIFO queue of `capacity` items that blocks producers when full: the
/// channel most code wants.
///
/// # Errors
/// [`BuildError::ZeroCapacity`] if `capacity` is 0.
pub fn bounded<T: Send>(capacity: usize) -> Result<(Sender<T>, Receiver<T>), BuildError> {
    QueueBuilder::new(capacity).build()
}

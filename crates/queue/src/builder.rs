//! Construction: [`Queue::builder`] and its [`QueueBuilder`], and the
//! [`bounded`] shorthand.

use std::cmp::Ordering;
use std::sync::Arc;

use crate::channel::{Receiver, Sender, handles};
use crate::error::BuildError;
use crate::policy::{Backpressure, Strategy};
use crate::priority::Compare;
use crate::queue::Shared;

/// A bounded queue, seen through its two handles ([`Sender`] and
/// [`Receiver`]); this type only names the entry point, [`Queue::builder`].
///
/// ```
/// use keel_queue::{Backpressure, Queue};
///
/// let (tx, rx) = Queue::builder()
///     .capacity(2)
///     .lifo()
///     .backpressure(Backpressure::DropOldest)
///     .build::<u32>()?;
/// for i in 0..4 {
///     tx.push(i).unwrap();
/// }
/// assert_eq!(rx.try_pop(), Ok(3));
/// assert_eq!(rx.try_pop(), Ok(2));
/// assert_eq!(tx.stats().dropped, 2);
/// # Ok::<(), keel_queue::BuildError>(())
/// ```
#[derive(Debug)]
pub enum Queue {}

impl Queue {
    /// The largest capacity a builder accepts (2^24 = 16,777,216), on every
    /// flavor. The FIFO ring allocates all its slots when it is built (a slot
    /// is `size_of::<T>()` plus an 8-byte stamp, rounded up to the alignment,
    /// and 2 bytes of permit marks: 18 bytes for `u64`, so 18 MiB for a
    /// million slots); LIFO and priority
    /// queues allocate as they fill. A bound keeps a typo from reserving gigabytes, or from
    /// aborting the process on an allocation that cannot succeed.
    pub const MAX_CAPACITY: usize = 1 << 24;

    /// A builder; [`QueueBuilder::capacity`] is required, everything else has
    /// a default (FIFO, [`Backpressure::Block`], the real clock).
    pub fn builder() -> QueueBuilder {
        QueueBuilder {
            capacity: None,
            strategy: Strategy::Fifo,
            backpressure: Backpressure::Block,
            clock: None,
            name: "queue".into(),
        }
    }
}

/// Configures a bounded queue; from [`Queue::builder`].
#[must_use]
#[derive(Debug, Clone)]
pub struct QueueBuilder {
    capacity: Option<usize>,
    strategy: Strategy,
    backpressure: Backpressure,
    clock: Option<quanta::Clock>,
    name: String,
}

impl QueueBuilder {
    /// The bound: at most `capacity` items (and permits) at a time. Required;
    /// between 1 and [`Queue::MAX_CAPACITY`]. A FIFO queue allocates all
    /// `capacity` slots when built (see [`Queue::MAX_CAPACITY`]).
    pub fn capacity(mut self, capacity: usize) -> Self {
        self.capacity = Some(capacity);
        self
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

    fn check(&self) -> Result<usize, BuildError> {
        let capacity = self.capacity.ok_or(BuildError::MissingCapacity)?;
        if capacity == 0 {
            return Err(BuildError::ZeroCapacity);
        }
        if capacity > Queue::MAX_CAPACITY {
            return Err(BuildError::CapacityTooLarge(capacity));
        }
        Ok(capacity)
    }

    fn shared<T>(self, compare: Option<Compare<T>>) -> Result<Shared<T>, BuildError> {
        let capacity = self.check()?;
        // A priority order needs its comparator: `build` makes FIFO/LIFO only.
        let strategy = match (self.strategy, &compare) {
            (_, Some(_)) => Strategy::Priority,
            (Strategy::Priority, None) => Strategy::Fifo,
            (strategy, None) => strategy,
        };
        Shared::new(
            capacity,
            strategy,
            compare,
            self.backpressure,
            self.clock.unwrap_or_default(),
            self.name,
        )
    }

    /// Builds a FIFO or LIFO queue (a priority queue is built by
    /// [`QueueBuilder::priority`] or one of its variants, which choose the order).
    ///
    /// # Errors
    /// [`BuildError::MissingCapacity`], [`BuildError::ZeroCapacity`],
    /// [`BuildError::CapacityTooLarge`] (above [`Queue::MAX_CAPACITY`]), or
    /// [`BuildError::OutOfMemory`] if a FIFO ring's slots cannot be allocated.
    pub fn build<T: Send>(self) -> Result<(Sender<T>, Receiver<T>), BuildError> {
        Ok(handles(self.shared(None)?))
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
    /// # Panics
    /// Never itself. If the order panics (this comparator, a key fn, an `Ord`
    /// impl, `partial_cmp().unwrap()` on a NaN), the queue operation that ran
    /// it panics too, and the queue stays as it was before that step: a failed
    /// pop leaves its item queued, a failed push does not enqueue (the item is
    /// dropped with the unwinding call), the heap order and the counters stay
    /// right, and other threads carry on. A batch (`pop_batch`, `drain`,
    /// `shutdown`) that already took items stops there and returns them.
    ///
    /// # Errors
    /// As [`QueueBuilder::build`].
    pub fn priority_by<T, F>(self, compare: F) -> Result<(Sender<T>, Receiver<T>), BuildError>
    where
        T: Send + 'static,
        F: Fn(&T, &T) -> Ordering + Send + Sync + 'static,
    {
        let compare: Compare<T> = Arc::new(compare);
        Ok(handles(self.shared(Some(compare))?))
    }
}

/// A FIFO queue of `capacity` items that blocks producers when full: the
/// channel most code wants. Shorthand for
/// `Queue::builder().capacity(capacity).build()`.
///
/// ```
/// let (tx, rx) = keel_queue::bounded::<u32>(8)?;
/// tx.push(1).unwrap();
/// assert_eq!(rx.pop(), Ok(1));
/// # Ok::<(), keel_queue::BuildError>(())
/// ```
///
/// # Errors
/// As [`QueueBuilder::build`].
pub fn bounded<T: Send>(capacity: usize) -> Result<(Sender<T>, Receiver<T>), BuildError> {
    Queue::builder().capacity(capacity).build()
}

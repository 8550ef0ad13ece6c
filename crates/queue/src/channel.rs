//! The public handles: [`Sender`], [`Receiver`] and [`Permit`].
//!
//! Both handles are cloneable. When the last `Sender` is dropped the queue
//! closes (receivers drain what is left, then see `Closed`); when the last
//! `Receiver` is dropped it closes too (pushes fail with `Closed(item)`).

use std::fmt;
use std::time::Duration;

use crate::error::{PopError, PushError, ReserveError};
use crate::future::{PopFuture, PushFuture};
use crate::queue::{Reservation, Shared, Wait};
use crate::stats::QueueStats;
use crate::sync::{Arc, Ordering};

/// The producing half of a queue.
pub struct Sender<T> {
    pub(crate) shared: Arc<Shared<T>>,
}

/// The consuming half of a queue.
pub struct Receiver<T> {
    pub(crate) shared: Arc<Shared<T>>,
}

impl<T> fmt::Debug for Sender<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Sender")
            .field("len", &self.shared.len())
            .field("capacity", &self.shared.capacity())
            .finish()
    }
}

impl<T> fmt::Debug for Receiver<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Receiver")
            .field("len", &self.shared.len())
            .field("capacity", &self.shared.capacity())
            .finish()
    }
}

/// Methods both handles share.
macro_rules! common_methods {
    () => {
        /// Items in the queue now.
        pub fn len(&self) -> usize {
            self.shared.len()
        }

        /// `true` if the queue holds no item now.
        pub fn is_empty(&self) -> bool {
            self.shared.len() == 0
        }

        /// The bound given at construction.
        pub fn capacity(&self) -> usize {
            self.shared.capacity()
        }

        /// Closes the queue: later pushes fail with `Closed(item)`, blocked
        /// producers wake with their item back, consumers drain what is left
        /// and then see [`PopError::Closed`]. Returns `true` if this call closed it.
        pub fn close(&self) -> bool {
            self.shared.close()
        }

        /// `true` once closed (explicitly, by shutdown, or by disconnection).
        pub fn is_closed(&self) -> bool {
            self.shared.is_closed()
        }

        /// Graceful shutdown: closes the queue, lets consumers drain it until
        /// `grace` has passed on the queue's clock, then takes whatever is
        /// still queued and returns it, so nothing is lost silently.
        pub fn shutdown(&self, grace: Duration) -> Vec<T> {
            self.shared.shutdown(grace)
        }

        /// A snapshot of the counters.
        pub fn stats(&self) -> QueueStats {
            self.shared.stats()
        }

        /// Publishes the counters through the `metrics` facade (see [`QueueStats::publish`]).
        pub fn publish_metrics(&self) {
            self.shared.stats().publish(&self.shared.name);
        }
    };
}

impl<T> Sender<T> {
    pub(crate) fn from_shared(shared: Arc<Shared<T>>) -> Self {
        Self { shared }
    }

    common_methods!();

    /// Pushes, waiting for space under [`Backpressure::Block`](crate::Backpressure::Block)
    /// (the other policies never wait; see the table on [`Backpressure`](crate::Backpressure)).
    ///
    /// # Errors
    /// `Closed(item)` if the queue is closed; `Full(item)` under `Reject`.
    pub fn push(&self, item: T) -> Result<(), PushError<T>> {
        self.shared.push(item, Wait::Forever)
    }

    /// Pushes without waiting.
    ///
    /// # Errors
    /// `Full(item)` if full under `Block` or `Reject`; `Closed(item)` if closed.
    pub fn try_push(&self, item: T) -> Result<(), PushError<T>> {
        self.shared.push(item, Wait::No)
    }

    /// Pushes, waiting at most `timeout` (on the queue's clock) for space.
    ///
    /// # Errors
    /// `Timeout(item)` if the queue stayed full; `Closed(item)`; `Full(item)` under `Reject`.
    pub fn push_timeout(&self, item: T, timeout: Duration) -> Result<(), PushError<T>> {
        let deadline = self.shared.deadline(timeout);
        self.shared.push(item, Wait::Until(deadline))
    }

    /// Pushes from async code: the future completes when the item is queued
    /// (waiting for space under `Block`). Usable from tokio or any executor,
    /// and interoperates with blocking consumers on the same queue.
    ///
    /// # Cancel safety
    /// Dropping the future before it completes drops the item (it was not queued).
    pub fn push_async(&self, item: T) -> PushFuture<'_, T> {
        PushFuture::new(&self.shared, item)
    }

    /// Secures a slot before the item exists: the returned [`Permit`] always
    /// succeeds in sending. Waits for space under `Block`; evicts under
    /// `DropOldest`; fails with `Full` under `Reject` and `DropIncoming`.
    ///
    /// On the FIFO ring a permit holds its place in line: consumers reach its
    /// slot and wait there until it is sent or dropped, so keep permits short.
    ///
    /// # Errors
    /// [`ReserveError::Closed`], or [`ReserveError::Full`] as above.
    pub fn reserve(&self) -> Result<Permit<'_, T>, ReserveError> {
        let reservation = self.shared.reserve(Wait::Forever)?;
        Ok(Permit {
            shared: &self.shared,
            reservation: Some(reservation),
        })
    }

    /// Like [`Sender::reserve`] but never waits.
    ///
    /// # Errors
    /// [`ReserveError::Full`] or [`ReserveError::Closed`].
    pub fn try_reserve(&self) -> Result<Permit<'_, T>, ReserveError> {
        let reservation = self.shared.reserve(Wait::No)?;
        Ok(Permit {
            shared: &self.shared,
            reservation: Some(reservation),
        })
    }
}

impl<T> Receiver<T> {
    pub(crate) fn from_shared(shared: Arc<Shared<T>>) -> Self {
        Self { shared }
    }

    common_methods!();

    /// Takes the next item, waiting for one.
    ///
    /// # Errors
    /// [`PopError::Closed`] once the queue is closed and drained.
    pub fn pop(&self) -> Result<T, PopError> {
        self.shared.pop(Wait::Forever)
    }

    /// Takes the next item if there is one.
    ///
    /// # Errors
    /// [`PopError::Empty`], or [`PopError::Closed`] once closed and drained.
    pub fn try_pop(&self) -> Result<T, PopError> {
        self.shared.try_pop()
    }

    /// Takes the next item, waiting at most `timeout` on the queue's clock.
    ///
    /// # Errors
    /// [`PopError::Timeout`], or [`PopError::Closed`] once closed and drained.
    pub fn pop_timeout(&self, timeout: Duration) -> Result<T, PopError> {
        let deadline = self.shared.deadline(timeout);
        self.shared.pop(Wait::Until(deadline))
    }

    /// Waits for one item, then takes up to `max` in total without waiting
    /// further (amortises wake-ups and locking for consumers that batch).
    ///
    /// # Errors
    /// [`PopError::Closed`] once closed and drained.
    pub fn pop_batch(&self, max: usize) -> Result<Vec<T>, PopError> {
        self.shared.pop_batch(max, Wait::Forever)
    }

    /// Takes up to `max` items that are there now.
    ///
    /// # Errors
    /// [`PopError::Empty`] or [`PopError::Closed`] when there is none.
    pub fn try_pop_batch(&self, max: usize) -> Result<Vec<T>, PopError> {
        self.shared.pop_batch(max, Wait::No)
    }

    /// Takes everything queued now, without waiting.
    pub fn drain(&self) -> Vec<T> {
        self.shared.drain()
    }

    /// Takes the next item from async code; interoperates with blocking
    /// producers on the same queue.
    ///
    /// # Cancel safety
    /// Cancel safe: an item is only taken when the future completes.
    pub fn pop_async(&self) -> PopFuture<'_, T> {
        PopFuture::new(&self.shared)
    }

    /// A blocking iterator that ends when the queue is closed and drained.
    pub fn iter(&self) -> impl Iterator<Item = T> + '_ {
        std::iter::from_fn(move || self.pop().ok())
    }
}

impl<T> Clone for Sender<T> {
    fn clone(&self) -> Self {
        self.shared.senders.fetch_add(1, Ordering::Relaxed);
        Self {
            shared: self.shared.clone(),
        }
    }
}

impl<T> Clone for Receiver<T> {
    fn clone(&self) -> Self {
        self.shared.receivers.fetch_add(1, Ordering::Relaxed);
        Self {
            shared: self.shared.clone(),
        }
    }
}

impl<T> Drop for Sender<T> {
    fn drop(&mut self) {
        if self.shared.senders.fetch_sub(1, Ordering::AcqRel) == 1 {
            self.shared.close();
        }
    }
}

impl<T> Drop for Receiver<T> {
    fn drop(&mut self) {
        if self.shared.receivers.fetch_sub(1, Ordering::AcqRel) == 1 {
            self.shared.close();
        }
    }
}

/// A secured slot in the queue, from [`Sender::reserve`]. Sending through it
/// cannot fail; dropping it unused gives the slot back.
pub struct Permit<'a, T> {
    shared: &'a Shared<T>,
    reservation: Option<Reservation>,
}

impl<T> fmt::Debug for Permit<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Permit").finish_non_exhaustive()
    }
}

impl<T> Permit<'_, T> {
    /// Puts the item in the reserved slot.
    pub fn send(mut self, item: T) {
        if let Some(reservation) = self.reservation.take() {
            self.shared.fill(reservation, item);
        }
    }
}

impl<T> Drop for Permit<'_, T> {
    fn drop(&mut self) {
        if let Some(reservation) = self.reservation.take() {
            self.shared.release(reservation);
        }
    }
}

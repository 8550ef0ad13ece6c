//! The public handles: [`Sender`], [`Receiver`] and [`Permit`], and how a
//! queue's core becomes a pair of them ([`handles`]).
//!
//! Both handles are cloneable. When the last `Sender` is dropped the queue
//! closes (receivers drain what is left, then see `Closed`); when the last
//! `Receiver` is dropped it closes too (pushes fail with `Closed(item)`).

use std::fmt;
use std::time::Duration;

use crate::error::{PopError, PushError, ReserveError};
use crate::flavors::Reservation;
use crate::future::{PopFuture, PushFuture};
use crate::metrics::QueueStats;
use crate::queue::{Shared, Wait};
use crate::sync::{Arc, Ordering};

/// Wraps a queue's core in its two handles (one sender, one receiver: the
/// core's handle counts start at one each).
pub(crate) fn handles<T>(shared: Shared<T>) -> (Sender<T>, Receiver<T>) {
    let shared = Arc::new(shared);
    (
        Sender {
            shared: shared.clone(),
        },
        Receiver { shared },
    )
}

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
        /// `grace` (counted from this call) has passed on the queue's clock,
        /// then takes whatever is still queued and returns it, so nothing is
        /// lost silently. `Duration::MAX` waits until the consumers have
        /// drained everything.
        ///
        /// ```
        /// use std::time::Duration;
        ///
        /// let (tx, rx) = keel_queue::bounded::<u32>(4)?;
        /// tx.push(1).unwrap();
        /// tx.push(2).unwrap();
        /// // Nobody consumes: after the grace the leftovers come back.
        /// assert_eq!(tx.shutdown(Duration::from_millis(1)), vec![1, 2]);
        /// assert!(rx.is_closed());
        /// # Ok::<(), keel_queue::BuildError>(())
        /// ```
        pub fn shutdown(&self, grace: Duration) -> Vec<T> {
            self.shared.shutdown(grace)
        }

        /// A snapshot of the counters.
        pub fn stats(&self) -> QueueStats {
            self.shared.stats()
        }

        /// Publishes the counters through the `metrics` facade, labelled with
        /// the queue's name (see [`QueueStats::publish`] and the crate's
        /// metrics rule: the hot path never touches the facade).
        pub fn publish_metrics(&self) {
            self.shared.stats().publish(&self.shared.name);
        }
    };
}

impl<T> Sender<T> {
    common_methods!();

    /// Pushes, waiting for space under [`Backpressure::Block`](crate::Backpressure::Block)
    /// (the other policies never wait; see the table on [`Backpressure`](crate::Backpressure)).
    ///
    /// # Errors
    /// `Closed(item)` if the queue is closed; `Full(item)` under `Reject`.
    ///
    /// # Examples
    /// ```
    /// use keel_queue::{PushError, bounded};
    ///
    /// let (tx, rx) = bounded::<u32>(2)?;
    /// assert_eq!(tx.push(1), Ok(()));
    /// assert_eq!(tx.len(), 1);
    /// drop(rx); // no receiver left: the queue closes
    /// assert_eq!(tx.push(2), Err(PushError::Closed(2)));
    /// # Ok::<(), keel_queue::BuildError>(())
    /// ```
    pub fn push(&self, item: T) -> Result<(), PushError<T>> {
        self.shared.push(item, Wait::Forever)
    }

    /// Pushes without waiting.
    ///
    /// # Errors
    /// `Full(item)` if full under `Block` or `Reject`; `Closed(item)` if closed.
    ///
    /// # Examples
    /// ```
    /// use keel_queue::{PushError, bounded};
    ///
    /// let (tx, _rx) = bounded::<u32>(1)?;
    /// assert_eq!(tx.try_push(1), Ok(()));
    /// assert_eq!(tx.try_push(2), Err(PushError::Full(2))); // the item comes back
    /// assert_eq!(tx.stats().rejected, 1);
    /// # Ok::<(), keel_queue::BuildError>(())
    /// ```
    pub fn try_push(&self, item: T) -> Result<(), PushError<T>> {
        self.shared.push(item, Wait::No)
    }

    /// Pushes, waiting at most `timeout` (on the queue's clock) for space.
    /// `Duration::MAX` waits without a deadline, like [`Sender::push`].
    ///
    /// # Errors
    /// `Timeout(item)` if the queue stayed full; `Closed(item)`; `Full(item)` under `Reject`.
    ///
    /// # Examples
    /// ```
    /// use std::time::Duration;
    /// use keel_queue::{PushError, bounded};
    ///
    /// let (tx, rx) = bounded::<u32>(1)?;
    /// assert_eq!(tx.push_timeout(1, Duration::from_millis(1)), Ok(()));
    /// assert_eq!(tx.push_timeout(2, Duration::from_millis(1)), Err(PushError::Timeout(2)));
    /// assert_eq!(rx.pop(), Ok(1));
    /// # Ok::<(), keel_queue::BuildError>(())
    /// ```
    pub fn push_timeout(&self, item: T, timeout: Duration) -> Result<(), PushError<T>> {
        self.shared.push(item, self.shared.wait_for(timeout))
    }

    /// Pushes from async code: the future completes when the item is queued
    /// (waiting for space under `Block`). Usable from tokio or any executor,
    /// and interoperates with blocking consumers on the same queue.
    ///
    /// # Cancel safety
    /// Dropping the future before it completes drops the item (it was not queued).
    ///
    /// # Examples
    /// ```
    /// use keel_queue::bounded;
    ///
    /// let (tx, rx) = bounded::<u32>(1)?;
    /// futures::executor::block_on(async {
    ///     tx.push_async(7).await.unwrap();
    ///     assert_eq!(rx.pop_async().await, Ok(7));
    /// });
    /// # Ok::<(), keel_queue::BuildError>(())
    /// ```
    pub fn push_async(&self, item: T) -> PushFuture<'_, T> {
        PushFuture::new(&self.shared, item)
    }

    /// Secures a slot before the item exists: the returned [`Permit`] always
    /// succeeds in sending. Waits for space under `Block`; evicts under
    /// `DropOldest`; fails with `Full` under `Reject` and `DropIncoming`, and
    /// under `DropOldest` when nothing can be evicted (every slot promised to
    /// a permit, or on the FIFO ring a permit holding the head slot).
    ///
    /// On the FIFO ring a permit holds its place in line: consumers reach its
    /// slot and wait there until it is sent or dropped, so keep permits short.
    /// An unsent permit is not an item: `len()` and `stats().pushed` count it
    /// once it is sent.
    ///
    /// # Errors
    /// [`ReserveError::Closed`], or [`ReserveError::Full`] as above.
    ///
    /// # Examples
    /// ```
    /// use keel_queue::bounded;
    ///
    /// let (tx, rx) = bounded::<String>(1)?;
    /// let permit = tx.reserve().unwrap(); // the slot is ours
    /// permit.send("built after the slot was secured".to_owned());
    /// assert_eq!(rx.pop().unwrap(), "built after the slot was secured");
    /// # Ok::<(), keel_queue::BuildError>(())
    /// ```
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
    ///
    /// # Examples
    /// ```
    /// use keel_queue::{ReserveError, bounded};
    ///
    /// let (tx, rx) = bounded::<u32>(1)?;
    /// let permit = tx.try_reserve().unwrap();
    /// assert_eq!(tx.try_reserve().unwrap_err(), ReserveError::Full);
    /// permit.send(1);
    /// assert_eq!(rx.pop(), Ok(1));
    /// # Ok::<(), keel_queue::BuildError>(())
    /// ```
    pub fn try_reserve(&self) -> Result<Permit<'_, T>, ReserveError> {
        let reservation = self.shared.reserve(Wait::No)?;
        Ok(Permit {
            shared: &self.shared,
            reservation: Some(reservation),
        })
    }
}

impl<T> Receiver<T> {
    common_methods!();

    /// Takes the next item, waiting for one.
    ///
    /// # Errors
    /// [`PopError::Closed`] once the queue is closed and drained.
    ///
    /// # Examples
    /// ```
    /// use keel_queue::{PopError, bounded};
    ///
    /// let (tx, rx) = bounded::<u32>(4)?;
    /// let producer = std::thread::spawn(move || tx.push(5)); // then drops tx
    /// assert_eq!(rx.pop(), Ok(5)); // waits for the producer
    /// producer.join().unwrap().unwrap();
    /// assert_eq!(rx.pop(), Err(PopError::Closed)); // closed and drained
    /// # Ok::<(), keel_queue::BuildError>(())
    /// ```
    pub fn pop(&self) -> Result<T, PopError> {
        self.shared.pop(Wait::Forever)
    }

    /// Takes the next item if there is one.
    ///
    /// # Errors
    /// [`PopError::Empty`], or [`PopError::Closed`] once closed and drained.
    ///
    /// # Examples
    /// ```
    /// use keel_queue::{PopError, bounded};
    ///
    /// let (tx, rx) = bounded::<u32>(4)?;
    /// assert_eq!(rx.try_pop(), Err(PopError::Empty));
    /// tx.push(1).unwrap();
    /// assert_eq!(rx.try_pop(), Ok(1));
    /// # Ok::<(), keel_queue::BuildError>(())
    /// ```
    pub fn try_pop(&self) -> Result<T, PopError> {
        self.shared.try_pop()
    }

    /// Takes the next item, waiting at most `timeout` on the queue's clock.
    /// `Duration::MAX` waits without a deadline, like [`Receiver::pop`].
    ///
    /// # Errors
    /// [`PopError::Timeout`], or [`PopError::Closed`] once closed and drained.
    ///
    /// # Examples
    /// ```
    /// use std::time::Duration;
    /// use keel_queue::{PopError, bounded};
    ///
    /// let (tx, rx) = bounded::<u32>(4)?;
    /// assert_eq!(rx.pop_timeout(Duration::from_millis(1)), Err(PopError::Timeout));
    /// tx.push(3).unwrap();
    /// assert_eq!(rx.pop_timeout(Duration::from_millis(1)), Ok(3));
    /// # Ok::<(), keel_queue::BuildError>(())
    /// ```
    pub fn pop_timeout(&self, timeout: Duration) -> Result<T, PopError> {
        self.shared.pop(self.shared.wait_for(timeout))
    }

    /// Waits for one item, then takes up to `max` in total without waiting
    /// further (amortises wake-ups and locking for consumers that batch).
    ///
    /// # Errors
    /// [`PopError::Closed`] once closed and drained.
    ///
    /// # Examples
    /// ```
    /// use keel_queue::bounded;
    ///
    /// let (tx, rx) = bounded::<u32>(8)?;
    /// for i in 0..5 {
    ///     tx.push(i).unwrap();
    /// }
    /// assert_eq!(rx.pop_batch(3), Ok(vec![0, 1, 2]));
    /// assert_eq!(rx.pop_batch(3), Ok(vec![3, 4]));
    /// # Ok::<(), keel_queue::BuildError>(())
    /// ```
    pub fn pop_batch(&self, max: usize) -> Result<Vec<T>, PopError> {
        self.shared.pop_batch(max, Wait::Forever)
    }

    /// Takes up to `max` items that are there now.
    ///
    /// # Errors
    /// [`PopError::Empty`] or [`PopError::Closed`] when there is none.
    ///
    /// # Examples
    /// ```
    /// use keel_queue::{PopError, bounded};
    ///
    /// let (tx, rx) = bounded::<u32>(8)?;
    /// assert_eq!(rx.try_pop_batch(4), Err(PopError::Empty));
    /// tx.push(1).unwrap();
    /// assert_eq!(rx.try_pop_batch(4), Ok(vec![1]));
    /// # Ok::<(), keel_queue::BuildError>(())
    /// ```
    pub fn try_pop_batch(&self, max: usize) -> Result<Vec<T>, PopError> {
        self.shared.pop_batch(max, Wait::No)
    }

    /// Takes everything queued now, without waiting.
    ///
    /// # Examples
    /// ```
    /// use keel_queue::bounded;
    ///
    /// let (tx, rx) = bounded::<u32>(8)?;
    /// tx.push(1).unwrap();
    /// tx.push(2).unwrap();
    /// assert_eq!(rx.drain(), vec![1, 2]);
    /// assert!(rx.is_empty());
    /// # Ok::<(), keel_queue::BuildError>(())
    /// ```
    pub fn drain(&self) -> Vec<T> {
        self.shared.drain()
    }

    /// Takes the next item from async code; interoperates with blocking
    /// producers on the same queue.
    ///
    /// # Cancel safety
    /// Cancel safe: an item is only taken when the future completes.
    ///
    /// # Examples
    /// ```
    /// use keel_queue::bounded;
    ///
    /// let (tx, rx) = bounded::<u32>(1)?;
    /// let producer = std::thread::spawn(move || tx.push(9)); // a blocking producer
    /// assert_eq!(futures::executor::block_on(rx.pop_async()), Ok(9));
    /// producer.join().unwrap().unwrap();
    /// # Ok::<(), keel_queue::BuildError>(())
    /// ```
    pub fn pop_async(&self) -> PopFuture<'_, T> {
        PopFuture::new(&self.shared)
    }

    /// A blocking iterator that ends when the queue is closed and drained.
    ///
    /// # Examples
    /// ```
    /// use keel_queue::bounded;
    ///
    /// let (tx, rx) = bounded::<u32>(4)?;
    /// tx.push(1).unwrap();
    /// tx.push(2).unwrap();
    /// drop(tx); // closes: the iterator ends after the last item
    /// assert_eq!(rx.iter().collect::<Vec<_>>(), vec![1, 2]);
    /// # Ok::<(), keel_queue::BuildError>(())
    /// ```
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
    ///
    /// ```
    /// use keel_queue::bounded;
    ///
    /// let (tx, rx) = bounded::<u32>(1)?;
    /// let permit = tx.reserve().unwrap();
    /// assert_eq!(tx.len(), 0); // a promised slot, not an item yet
    /// permit.send(3);
    /// assert_eq!(rx.pop(), Ok(3));
    /// # Ok::<(), keel_queue::BuildError>(())
    /// ```
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

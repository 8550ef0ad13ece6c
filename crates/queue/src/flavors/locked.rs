//! The LIFO and priority flavor: a stack ([`Lifo`]) or a stable heap
//! ([`PriorityHeap`]) under one mutex, with the slots promised to permits
//! counted beside them.
//!
//! Neither order is a ring, so a lock-free hand-off buys nothing here; the
//! mutex is `parking_lot`'s (uncontended lock + unlock is two atomic ops) and
//! waking goes through the same wait lists as the ring. Every change is made
//! under the lock and its release is a read-modify-write, so a plain
//! "anybody waiting?" check after it cannot miss a registered waiter.
//!
//! The priority order runs user code under the lock. The heap rolls back a
//! step whose comparator panics (see `priority.rs`); here every operation
//! runs in `Locked::guarded`, which counts only completed steps (a failed
//! push is not `pushed`, a failed pop not `popped`, evictions already made
//! stay counted), releases the lock, wakes both sides (an earlier step may
//! have freed a slot) and lets the panic continue. Batches keep what they
//! took: a panic part-way through `pop_batch` or `drain` ends the batch and
//! returns the items already taken, so none is dropped with the unwinding.

use std::panic::{AssertUnwindSafe, catch_unwind, resume_unwind};

use crate::error::{PushError, ReserveError};
use crate::flavors::{Counts, Reservation, TryPop};
use crate::lifo::Lifo;
use crate::priority::{Compare, PriorityHeap};
use crate::sync::Mutex;
use crate::waiters::{Readiness, Waiters};

/// The container under the lock.
#[derive(Debug)]
enum Items<T> {
    Lifo(Lifo<T>),
    Priority(PriorityHeap<T>),
}

#[derive(Debug)]
struct State<T> {
    items: Items<T>,
    /// Slots promised to outstanding permits.
    reserved: usize,
    closed: bool,
    pushed: u64,
    popped: u64,
    evicted: u64,
}

impl<T> State<T> {
    fn len(&self) -> usize {
        match &self.items {
            Items::Lifo(items) => items.len(),
            Items::Priority(items) => items.len(),
        }
    }

    fn is_full(&self, cap: usize) -> bool {
        self.len() + self.reserved >= cap
    }

    fn insert(&mut self, item: T) {
        match &mut self.items {
            Items::Lifo(items) => items.push(item),
            Items::Priority(items) => items.push(item),
        }
        self.pushed += 1;
    }

    fn take(&mut self) -> Option<T> {
        let item = match &mut self.items {
            Items::Lifo(items) => items.pop(),
            Items::Priority(items) => items.pop(),
        };
        if item.is_some() {
            self.popped += 1;
        }
        item
    }

    /// The item `DropOldest` evicts (counted as evicted, not popped).
    fn evict(&mut self) -> Option<T> {
        let item = match &mut self.items {
            Items::Lifo(items) => items.pop_oldest(),
            Items::Priority(items) => items.pop_least_urgent(),
        };
        if item.is_some() {
            self.evicted += 1;
        }
        item
    }
}

/// A LIFO or priority queue of at most `cap` items (and permits).
#[derive(Debug)]
pub(crate) struct Locked<T> {
    state: Mutex<State<T>>,
    cap: usize,
}

impl<T> Locked<T> {
    fn with_items(items: Items<T>, cap: usize) -> Self {
        Self {
            state: Mutex::new(State {
                items,
                reserved: 0,
                closed: false,
                pushed: 0,
                popped: 0,
                evicted: 0,
            }),
            cap,
        }
    }

    /// A stack of at most `cap` items.
    pub(crate) fn lifo(cap: usize) -> Self {
        Self::with_items(Items::Lifo(Lifo::with_capacity(cap)), cap)
    }

    /// A priority queue of at most `cap` items ordered by `compare`.
    pub(crate) fn priority(compare: Compare<T>, cap: usize) -> Self {
        Self::with_items(Items::Priority(PriorityHeap::new(compare, cap)), cap)
    }

    /// Runs `op` under the lock. If user code in it (the priority order)
    /// panics, the lock is released, both sides are woken (an earlier step of
    /// `op` may have freed a slot), and the panic continues.
    fn guarded<R>(&self, waiters: &Waiters, op: impl FnOnce(&mut State<T>) -> R) -> R {
        let mut state = self.state.lock();
        match catch_unwind(AssertUnwindSafe(|| op(&mut state))) {
            Ok(result) => result,
            Err(panic) => {
                drop(state);
                waiters.producers.notify_all_if_waiting();
                waiters.consumers.notify_all_if_waiting();
                resume_unwind(panic)
            }
        }
    }

    /// One attempt to enqueue; returns the depth after the push.
    pub(crate) fn try_push(
        &self,
        item: T,
        waiters: &Waiters,
    ) -> Result<Option<usize>, PushError<T>> {
        let depth = self.guarded(waiters, |state| {
            if state.closed {
                return Err(PushError::Closed(item));
            }
            if state.is_full(self.cap) {
                return Err(PushError::Full(item));
            }
            state.insert(item);
            Ok(state.len())
        })?;
        waiters.consumers.notify_one_if_waiting();
        Ok(Some(depth))
    }

    /// `DropOldest`: evicts until there is room, then enqueues. `Full` if
    /// every slot is promised to a permit (nothing to evict).
    pub(crate) fn push_evicting(
        &self,
        item: T,
        waiters: &Waiters,
    ) -> Result<Option<usize>, PushError<T>> {
        let depth = self.guarded(waiters, |state| {
            if state.closed {
                return Err(PushError::Closed(item));
            }
            while state.is_full(self.cap) {
                match state.evict() {
                    Some(old) => drop(old),
                    None => return Err(PushError::Full(item)),
                }
            }
            state.insert(item);
            Ok(state.len())
        })?;
        waiters.consumers.notify_one_if_waiting();
        Ok(Some(depth))
    }

    /// One attempt to dequeue.
    pub(crate) fn try_pop(&self, waiters: &Waiters) -> TryPop<T> {
        let popped = self.guarded(waiters, |state| match state.take() {
            Some(item) => TryPop::Item(item),
            None if state.closed => TryPop::Closed,
            None => TryPop::Empty,
        });
        if let TryPop::Item(_) = popped {
            waiters.producers.notify_one_if_waiting();
        }
        popped
    }

    /// Appends up to `max - batch.len()` items under one lock. A panic in the
    /// order ends the batch early when the batch holds any item (they are
    /// popped: unwinding would drop them); an empty batch lets it continue.
    pub(crate) fn pop_more(&self, batch: &mut Vec<T>, max: usize, waiters: &Waiters) {
        let taken = {
            let mut state = self.state.lock();
            catch_unwind(AssertUnwindSafe(|| {
                while batch.len() < max {
                    match state.take() {
                        Some(item) => batch.push(item),
                        None => break,
                    }
                }
            }))
        };
        waiters.producers.notify_all_if_waiting();
        if let Err(panic) = taken
            && batch.is_empty()
        {
            waiters.consumers.notify_all_if_waiting();
            resume_unwind(panic);
        }
    }

    /// Evicts the item `DropOldest` would drop (for a reservation). `Held`
    /// when there is no item but every slot is promised to a permit.
    pub(crate) fn evict_one(&self, waiters: &Waiters) -> TryPop<T> {
        self.guarded(waiters, |state| match state.evict() {
            Some(item) => TryPop::Item(item),
            None if state.closed => TryPop::Closed,
            None if state.is_full(self.cap) => TryPop::Held,
            None => TryPop::Empty,
        })
    }

    /// Promises a slot to a permit.
    pub(crate) fn try_reserve(&self) -> Result<Reservation, ReserveError> {
        let mut state = self.state.lock();
        if state.closed {
            Err(ReserveError::Closed)
        } else if state.is_full(self.cap) {
            Err(ReserveError::Full)
        } else {
            state.reserved += 1;
            Ok(Reservation::Locked)
        }
    }

    /// Turns a promised slot into an item (even after close: consumers drain
    /// it). If the order panics, the slot is given back and the item dropped.
    pub(crate) fn fill(&self, item: T, waiters: &Waiters) -> Option<usize> {
        let depth = self.guarded(waiters, |state| {
            state.reserved -= 1;
            state.insert(item);
            state.len()
        });
        waiters.consumers.notify_one_if_waiting();
        Some(depth)
    }

    /// Gives a promised slot back.
    pub(crate) fn release(&self, waiters: &Waiters) {
        self.state.lock().reserved -= 1;
        waiters.producers.notify_one_if_waiting();
    }

    pub(crate) fn producer_may_proceed(&self) -> bool {
        let state = self.state.lock();
        state.closed || !state.is_full(self.cap)
    }

    pub(crate) fn consumer_readiness(&self) -> Readiness {
        let state = self.state.lock();
        if state.closed || state.len() > 0 {
            Readiness::Ready
        } else {
            Readiness::Park
        }
    }

    /// Marks the queue closed. Returns `true` if this call closed it.
    pub(crate) fn close(&self) -> bool {
        !std::mem::replace(&mut self.state.lock().closed, true)
    }

    pub(crate) fn is_closed(&self) -> bool {
        self.state.lock().closed
    }

    pub(crate) fn len(&self) -> usize {
        self.state.lock().len()
    }

    pub(crate) fn counts(&self) -> Counts {
        let state = self.state.lock();
        Counts {
            pushed: state.pushed,
            popped: state.popped,
            evicted: state.evicted,
            len: state.len(),
            closed: state.closed,
        }
    }
}

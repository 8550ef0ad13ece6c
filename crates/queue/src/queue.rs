//! The shared core behind [`Sender`] and [`Receiver`]: storage dispatch, the
//! backpressure policies, blocking with spin-then-park, close and shutdown.

use std::time::Duration;

use crossbeam_utils::CachePadded;

use crate::channel::{Receiver, Sender};
use crate::config::{Backpressure, Strategy};
use crate::error::{PopError, PushError, ReserveError};
use crate::lifo::Lifo;
use crate::priority::{Compare, PriorityHeap};
use crate::ring::{Claim, Ring, RingClaim, RingPop};
use crate::stats::QueueStats;
use crate::sync::{Arc, AtomicU64, AtomicUsize, Mutex, Ordering, Spin, yield_now};
use crate::waiters::{Deadline, Readiness, WaitQueue, Wake};

/// Yields a blocked consumer makes while the head slot is claimed but not yet
/// published, before it parks briefly (see `Readiness::ParkBriefly`).
const BUSY_YIELDS: u32 = if cfg!(loom) { 0 } else { 64 };

/// How long an operation may wait.
#[derive(Debug, Clone)]
pub(crate) enum Wait {
    /// Never wait (`try_*`).
    No,
    /// Wait until it succeeds or the queue closes.
    Forever,
    /// Wait until the deadline.
    Until(Deadline),
}

impl Wait {
    fn deadline(&self) -> Option<&Deadline> {
        match self {
            Wait::Until(deadline) => Some(deadline),
            _ => None,
        }
    }
}

/// The LIFO or priority storage, guarded by one mutex.
#[derive(Debug)]
pub(crate) enum LockedItems<T> {
    Lifo(Lifo<T>),
    Priority(PriorityHeap<T>),
}

#[derive(Debug)]
pub(crate) struct Locked<T> {
    items: LockedItems<T>,
    /// Slots promised to outstanding permits.
    reserved: usize,
    closed: bool,
    pushed: u64,
    popped: u64,
}

impl<T> Locked<T> {
    fn len(&self) -> usize {
        match &self.items {
            LockedItems::Lifo(items) => items.len(),
            LockedItems::Priority(items) => items.len(),
        }
    }

    fn insert(&mut self, item: T) {
        match &mut self.items {
            LockedItems::Lifo(items) => items.push(item),
            LockedItems::Priority(items) => items.push(item),
        }
        self.pushed += 1;
    }

    fn take(&mut self) -> Option<T> {
        let item = match &mut self.items {
            LockedItems::Lifo(items) => items.pop(),
            LockedItems::Priority(items) => items.pop(),
        };
        if item.is_some() {
            self.popped += 1;
        }
        item
    }

    fn evict(&mut self) -> Option<T> {
        match &mut self.items {
            LockedItems::Lifo(items) => items.pop_oldest(),
            LockedItems::Priority(items) => items.pop_least_urgent(),
        }
    }
}

// One per queue; boxing the ring would add an indirection to every push.
#[allow(clippy::large_enum_variant)]
#[derive(Debug)]
pub(crate) enum Storage<T> {
    Ring(Ring<T>),
    Locked(Mutex<Locked<T>>),
}

/// Counters off the hot path (the ring derives pushed/popped from its positions).
#[derive(Debug, Default)]
struct Counters {
    dropped: AtomicU64,
    rejected: AtomicU64,
    blocked_nanos: AtomicU64,
    /// Ring only: items evicted by `DropOldest` (taken from head, not popped).
    evicted: AtomicU64,
    high_watermark: AtomicUsize,
}

/// What a permit holds until it is used.
#[derive(Debug)]
pub(crate) enum Reservation {
    Ring(Claim),
    Locked,
}

/// One step of a retry loop.
enum Step<R> {
    Ready(R),
    NotYet,
    Closed,
}

enum Blocked {
    Closed,
    TimedOut,
}

/// Shared state of one queue.
#[derive(Debug)]
pub(crate) struct Shared<T> {
    storage: Storage<T>,
    cap: usize,
    strategy: Strategy,
    policy: Backpressure,
    /// Threads and tasks waiting for an item.
    pub(crate) consumers: WaitQueue,
    /// Threads and tasks waiting for space (and `shutdown` waiting for empty).
    pub(crate) producers: WaitQueue,
    pub(crate) senders: AtomicUsize,
    pub(crate) receivers: AtomicUsize,
    pub(crate) clock: quanta::Clock,
    counters: CachePadded<Counters>,
    pub(crate) name: String,
}

impl<T> Shared<T> {
    pub(crate) fn new(
        cap: usize,
        strategy: Strategy,
        compare: Option<Compare<T>>,
        policy: Backpressure,
        clock: quanta::Clock,
        name: String,
    ) -> Self {
        let storage = match (strategy, compare) {
            (Strategy::Priority, Some(compare)) => Storage::Locked(Mutex::new(Locked {
                items: LockedItems::Priority(PriorityHeap::new(compare, cap)),
                reserved: 0,
                closed: false,
                pushed: 0,
                popped: 0,
            })),
            (Strategy::Lifo, _) => Storage::Locked(Mutex::new(Locked {
                items: LockedItems::Lifo(Lifo::with_capacity(cap)),
                reserved: 0,
                closed: false,
                pushed: 0,
                popped: 0,
            })),
            _ => Storage::Ring(Ring::new(cap)),
        };
        let strategy = match storage {
            Storage::Ring(_) => Strategy::Fifo,
            Storage::Locked(_) => strategy,
        };
        Self {
            storage,
            cap,
            strategy,
            policy,
            consumers: WaitQueue::new(),
            producers: WaitQueue::new(),
            senders: AtomicUsize::new(1),
            receivers: AtomicUsize::new(1),
            clock,
            counters: CachePadded::new(Counters::default()),
            name,
        }
    }

    pub(crate) fn into_handles(self) -> (Sender<T>, Receiver<T>) {
        let shared = Arc::new(self);
        (
            Sender::from_shared(shared.clone()),
            Receiver::from_shared(shared),
        )
    }

    pub(crate) fn capacity(&self) -> usize {
        self.cap
    }

    pub(crate) fn policy(&self) -> Backpressure {
        self.policy
    }

    pub(crate) fn deadline(&self, timeout: Duration) -> Deadline {
        let clock = self.clock.clone();
        let at = clock.now() + timeout;
        Deadline { clock, at }
    }

    fn note_depth(&self, depth: usize) {
        if depth > self.counters.high_watermark.load(Ordering::Relaxed) {
            self.counters
                .high_watermark
                .fetch_max(depth, Ordering::Relaxed);
        }
    }

    // ---- raw, policy-free operations -------------------------------------

    /// One non-blocking attempt to enqueue, without any policy.
    fn raw_push(&self, item: T) -> Result<(), PushError<T>> {
        match &self.storage {
            Storage::Ring(ring) => match ring.try_claim() {
                RingClaim::Claimed(claim) => {
                    // Sample the depth every 32 slots (reading `head` on every
                    // push would cost a cache miss per message).
                    if claim.index() % 32 == 0 {
                        self.note_depth(ring.len());
                    }
                    ring.publish(claim, Some(item));
                    self.consumers.notify_one_if_waiting();
                    Ok(())
                }
                RingClaim::Full => Err(PushError::Full(item)),
                RingClaim::Closed => Err(PushError::Closed(item)),
            },
            Storage::Locked(locked) => {
                let mut guard = locked.lock();
                if guard.closed {
                    return Err(PushError::Closed(item));
                }
                if guard.len() + guard.reserved >= self.cap {
                    return Err(PushError::Full(item));
                }
                guard.insert(item);
                let depth = guard.len();
                drop(guard);
                self.note_depth(depth);
                self.consumers.notify_one_if_waiting();
                Ok(())
            }
        }
    }

    /// One non-blocking attempt to dequeue.
    fn raw_pop(&self) -> RingPop<T> {
        match &self.storage {
            Storage::Ring(ring) => {
                let popped = ring.try_pop();
                if let RingPop::Item(_) = popped {
                    self.producers.notify_one_if_waiting();
                }
                popped
            }
            Storage::Locked(locked) => {
                let mut guard = locked.lock();
                match guard.take() {
                    Some(item) => {
                        drop(guard);
                        self.producers.notify_one_if_waiting();
                        RingPop::Item(item)
                    }
                    None if guard.closed => RingPop::Closed,
                    None => RingPop::Empty,
                }
            }
        }
    }

    pub(crate) fn producer_may_proceed(&self) -> bool {
        match &self.storage {
            Storage::Ring(ring) => ring.producer_may_proceed(),
            Storage::Locked(locked) => {
                let guard = locked.lock();
                guard.closed || guard.len() + guard.reserved < self.cap
            }
        }
    }

    pub(crate) fn producer_readiness(&self) -> Readiness {
        if self.producer_may_proceed() {
            Readiness::Ready
        } else {
            Readiness::Park
        }
    }

    pub(crate) fn consumer_readiness(&self) -> Readiness {
        match &self.storage {
            Storage::Ring(ring) => ring.consumer_readiness(),
            Storage::Locked(locked) => {
                let guard = locked.lock();
                if guard.closed || guard.len() > 0 {
                    Readiness::Ready
                } else {
                    Readiness::Park
                }
            }
        }
    }

    /// `true` if the FIFO ring's head slot is claimed but not yet published.
    pub(crate) fn head_is_busy(&self) -> bool {
        match &self.storage {
            Storage::Ring(ring) => ring.head_is_busy(),
            Storage::Locked(_) => false,
        }
    }

    /// Retries `attempt`, spinning briefly and then parking on `queue` until
    /// `may_proceed`, closing or the deadline.
    fn block_on<R>(
        &self,
        queue: &WaitQueue,
        may_proceed: impl Fn() -> Readiness,
        deadline: Option<&Deadline>,
        mut attempt: impl FnMut() -> Step<R>,
    ) -> Result<R, Blocked> {
        let mut spin = Spin::new();
        let mut busy_yields = 0;
        loop {
            match attempt() {
                Step::Ready(value) => return Ok(value),
                Step::Closed => return Err(Blocked::Closed),
                Step::NotYet => {}
            }
            if spin.spin() {
                continue;
            }
            // A producer is between claim and publish (nanoseconds, unless it
            // was preempted): give it the CPU a few times before parking.
            if busy_yields < BUSY_YIELDS && self.head_is_busy() {
                busy_yields += 1;
                yield_now();
                continue;
            }
            if queue.wait(&may_proceed, deadline) == Wake::TimedOut {
                return match attempt() {
                    Step::Ready(value) => Ok(value),
                    Step::Closed => Err(Blocked::Closed),
                    Step::NotYet => Err(Blocked::TimedOut),
                };
            }
        }
    }

    // ---- push with policy --------------------------------------------------

    /// One non-blocking attempt that applies the backpressure policy. Under
    /// `Block` a full queue yields `Full` without counting it (the caller
    /// decides whether to wait or to count a rejection).
    pub(crate) fn push_attempt(&self, item: T) -> Result<(), PushError<T>> {
        match &self.storage {
            Storage::Ring(ring) => match self.raw_push(item) {
                Err(PushError::Full(item)) => match self.policy {
                    Backpressure::Block => Err(PushError::Full(item)),
                    Backpressure::Reject => {
                        self.note_depth(self.cap);
                        self.counters.rejected.fetch_add(1, Ordering::Relaxed);
                        Err(PushError::Full(item))
                    }
                    Backpressure::DropIncoming => {
                        self.note_depth(self.cap);
                        self.counters.dropped.fetch_add(1, Ordering::Relaxed);
                        drop(item);
                        Ok(())
                    }
                    Backpressure::DropOldest => self.ring_push_evicting(ring, item),
                },
                other => other,
            },
            Storage::Locked(locked) => {
                let mut guard = locked.lock();
                if guard.closed {
                    return Err(PushError::Closed(item));
                }
                if guard.len() + guard.reserved >= self.cap {
                    drop(guard);
                    self.note_depth(self.cap);
                    match self.policy {
                        Backpressure::Block => return Err(PushError::Full(item)),
                        Backpressure::Reject => {
                            self.counters.rejected.fetch_add(1, Ordering::Relaxed);
                            return Err(PushError::Full(item));
                        }
                        Backpressure::DropIncoming => {
                            self.counters.dropped.fetch_add(1, Ordering::Relaxed);
                            drop(item);
                            return Ok(());
                        }
                        Backpressure::DropOldest => {
                            guard = locked.lock();
                            if guard.closed {
                                return Err(PushError::Closed(item));
                            }
                            // Room may have appeared while unlocked; evict only if
                            // still full, and only if something is there (all
                            // slots could be promised to permits).
                            while guard.len() + guard.reserved >= self.cap {
                                match guard.evict() {
                                    Some(old) => {
                                        self.counters.dropped.fetch_add(1, Ordering::Relaxed);
                                        drop(old);
                                    }
                                    None => return Err(PushError::Full(item)),
                                }
                            }
                        }
                    }
                }
                guard.insert(item);
                let depth = guard.len();
                drop(guard);
                self.note_depth(depth);
                self.consumers.notify_one_if_waiting();
                Ok(())
            }
        }
    }

    /// `DropOldest` on the ring: evict from head until our claim succeeds.
    fn ring_push_evicting(&self, ring: &Ring<T>, mut item: T) -> Result<(), PushError<T>> {
        self.note_depth(self.cap);
        loop {
            match self.raw_push(item) {
                Err(PushError::Full(back)) => item = back,
                other => return other,
            }
            match ring.try_pop() {
                RingPop::Item(old) => {
                    self.counters.evicted.fetch_add(1, Ordering::Relaxed);
                    self.counters.dropped.fetch_add(1, Ordering::Relaxed);
                    drop(old);
                }
                RingPop::Closed => return Err(PushError::Closed(item)),
                RingPop::Empty => {}
                // The head slot is held by a permit or a mid-write producer.
                RingPop::Busy => yield_now(),
            }
        }
    }

    /// Push honouring the policy and the wait mode.
    pub(crate) fn push(&self, item: T, wait: Wait) -> Result<(), PushError<T>> {
        let item = match self.push_attempt(item) {
            Err(PushError::Full(item)) if self.policy == Backpressure::Block => item,
            other => return other,
        };
        if let Wait::No = wait {
            self.counters.rejected.fetch_add(1, Ordering::Relaxed);
            return Err(PushError::Full(item));
        }
        // The queue was full: that is its deepest possible point.
        self.note_depth(self.cap);
        let started = self.clock.now();
        let mut slot = Some(item);
        let outcome = self.block_on(
            &self.producers,
            || self.producer_readiness(),
            wait.deadline(),
            || {
                let Some(item) = slot.take() else {
                    return Step::Ready(());
                };
                match self.raw_push(item) {
                    Ok(()) => Step::Ready(()),
                    Err(PushError::Full(item)) => {
                        slot = Some(item);
                        Step::NotYet
                    }
                    Err(PushError::Closed(item) | PushError::Timeout(item)) => {
                        slot = Some(item);
                        Step::Closed
                    }
                }
            },
        );
        self.record_blocked(started);
        match (outcome, slot) {
            (Ok(()), _) => Ok(()),
            (Err(Blocked::Closed), Some(item)) => Err(PushError::Closed(item)),
            (Err(Blocked::TimedOut), Some(item)) => {
                self.counters.rejected.fetch_add(1, Ordering::Relaxed);
                Err(PushError::Timeout(item))
            }
            // The item is always put back before a failure is reported.
            (Err(_), None) => Ok(()),
        }
    }

    pub(crate) fn record_blocked(&self, started: quanta::Instant) {
        let nanos = self
            .clock
            .now()
            .saturating_duration_since(started)
            .as_nanos();
        self.counters
            .blocked_nanos
            .fetch_add(u64::try_from(nanos).unwrap_or(u64::MAX), Ordering::Relaxed);
    }

    // ---- reserve -------------------------------------------------------------

    fn raw_reserve(&self) -> Result<Reservation, ReserveError> {
        match &self.storage {
            Storage::Ring(ring) => match ring.try_claim() {
                RingClaim::Claimed(claim) => Ok(Reservation::Ring(claim)),
                RingClaim::Full => Err(ReserveError::Full),
                RingClaim::Closed => Err(ReserveError::Closed),
            },
            Storage::Locked(locked) => {
                let mut guard = locked.lock();
                if guard.closed {
                    Err(ReserveError::Closed)
                } else if guard.len() + guard.reserved >= self.cap {
                    Err(ReserveError::Full)
                } else {
                    guard.reserved += 1;
                    Ok(Reservation::Locked)
                }
            }
        }
    }

    /// Secures a slot: waits under `Block`, evicts under `DropOldest`, fails
    /// with `Full` under `Reject` and `DropIncoming` (nothing to drop yet).
    pub(crate) fn reserve(&self, wait: Wait) -> Result<Reservation, ReserveError> {
        match self.raw_reserve() {
            Err(ReserveError::Full) => {}
            other => return other,
        }
        self.note_depth(self.cap);
        match self.policy {
            Backpressure::Reject | Backpressure::DropIncoming => {
                self.counters.rejected.fetch_add(1, Ordering::Relaxed);
                return Err(ReserveError::Full);
            }
            Backpressure::DropOldest => loop {
                match self.raw_reserve() {
                    Err(ReserveError::Full) => {}
                    other => return other,
                }
                match self.evict_one() {
                    RingPop::Closed => return Err(ReserveError::Closed),
                    RingPop::Busy => yield_now(),
                    RingPop::Item(_) | RingPop::Empty => {}
                }
            },
            Backpressure::Block => {}
        }
        if let Wait::No = wait {
            self.counters.rejected.fetch_add(1, Ordering::Relaxed);
            return Err(ReserveError::Full);
        }
        let started = self.clock.now();
        let outcome = self.block_on(
            &self.producers,
            || self.producer_readiness(),
            wait.deadline(),
            || match self.raw_reserve() {
                Ok(reservation) => Step::Ready(reservation),
                Err(ReserveError::Full) => Step::NotYet,
                Err(ReserveError::Closed) => Step::Closed,
            },
        );
        self.record_blocked(started);
        match outcome {
            Ok(reservation) => Ok(reservation),
            Err(Blocked::Closed) => Err(ReserveError::Closed),
            Err(Blocked::TimedOut) => {
                self.counters.rejected.fetch_add(1, Ordering::Relaxed);
                Err(ReserveError::Full)
            }
        }
    }

    /// Evicts the oldest item (for `DropOldest` reservations).
    fn evict_one(&self) -> RingPop<T> {
        let evicted = match &self.storage {
            Storage::Ring(ring) => {
                let popped = ring.try_pop();
                if let RingPop::Item(_) = popped {
                    self.counters.evicted.fetch_add(1, Ordering::Relaxed);
                }
                popped
            }
            Storage::Locked(locked) => {
                let mut guard = locked.lock();
                match guard.evict() {
                    Some(item) => RingPop::Item(item),
                    None if guard.closed => RingPop::Closed,
                    None => RingPop::Empty,
                }
            }
        };
        if let RingPop::Item(_) = evicted {
            self.counters.dropped.fetch_add(1, Ordering::Relaxed);
        }
        evicted
    }

    /// Fills a reserved slot. Never fails: the slot was secured, even if the
    /// queue was closed in the meantime (consumers still drain it).
    pub(crate) fn fill(&self, reservation: Reservation, item: T) {
        match (&self.storage, reservation) {
            (Storage::Ring(ring), Reservation::Ring(claim)) => ring.publish(claim, Some(item)),
            (Storage::Locked(locked), _) => {
                let mut guard = locked.lock();
                guard.reserved -= 1;
                guard.insert(item);
                let depth = guard.len();
                drop(guard);
                self.note_depth(depth);
            }
            // A ring reservation for locked storage (or the reverse) cannot be
            // built: storages never change kind.
            (Storage::Ring(_), Reservation::Locked) => drop(item),
        }
        match &self.storage {
            // The publish was a plain store: fence before looking for waiters
            // (a consumer may be parked on exactly this slot).
            Storage::Ring(_) => self.consumers.notify_all_after_store(),
            Storage::Locked(_) => self.consumers.notify_one_if_waiting(),
        }
    }

    /// Returns an unused reserved slot.
    pub(crate) fn release(&self, reservation: Reservation) {
        match (&self.storage, reservation) {
            (Storage::Ring(ring), Reservation::Ring(claim)) => {
                ring.publish(claim, None);
                // Free the slot now if it is at the head; otherwise consumers
                // free it when they get there.
                if ring.skip_head_tombstones() > 0 {
                    self.producers.notify_one_if_waiting();
                }
                // A consumer may be parked on this slot while it was unpublished.
                self.consumers.notify_all_after_store();
            }
            (Storage::Locked(locked), _) => {
                locked.lock().reserved -= 1;
                self.producers.notify_one_if_waiting();
            }
            (Storage::Ring(_), Reservation::Locked) => {}
        }
    }

    // ---- pop -------------------------------------------------------------------

    /// One non-blocking pop; `Busy` is reported as `Empty`.
    pub(crate) fn try_pop(&self) -> Result<T, PopError> {
        match self.raw_pop() {
            RingPop::Item(item) => Ok(item),
            RingPop::Closed => Err(PopError::Closed),
            RingPop::Empty | RingPop::Busy => Err(PopError::Empty),
        }
    }

    pub(crate) fn pop(&self, wait: Wait) -> Result<T, PopError> {
        match self.try_pop() {
            Err(PopError::Empty) => {}
            other => return other,
        }
        if let Wait::No = wait {
            return Err(PopError::Empty);
        }
        let outcome = self.block_on(
            &self.consumers,
            || self.consumer_readiness(),
            wait.deadline(),
            || match self.raw_pop() {
                RingPop::Item(item) => Step::Ready(item),
                RingPop::Closed => Step::Closed,
                RingPop::Empty | RingPop::Busy => Step::NotYet,
            },
        );
        match outcome {
            Ok(item) => Ok(item),
            Err(Blocked::Closed) => Err(PopError::Closed),
            Err(Blocked::TimedOut) => Err(PopError::Timeout),
        }
    }

    /// Waits (per `wait`) for one item, then takes up to `max - 1` more that
    /// are already there. `max == 0` returns an empty batch at once.
    pub(crate) fn pop_batch(&self, max: usize, wait: Wait) -> Result<Vec<T>, PopError> {
        if max == 0 {
            return Ok(Vec::new());
        }
        let first = self.pop(wait)?;
        let mut batch = Vec::with_capacity(max.min(1024));
        batch.push(first);
        match &self.storage {
            Storage::Ring(_) => {
                while batch.len() < max {
                    match self.raw_pop() {
                        RingPop::Item(item) => batch.push(item),
                        _ => break,
                    }
                }
            }
            Storage::Locked(locked) => {
                let mut guard = locked.lock();
                while batch.len() < max {
                    match guard.take() {
                        Some(item) => batch.push(item),
                        None => break,
                    }
                }
                drop(guard);
                self.producers.notify_all_if_waiting();
            }
        }
        Ok(batch)
    }

    /// Takes everything available now.
    pub(crate) fn drain(&self) -> Vec<T> {
        let mut out = Vec::new();
        while let Ok(item) = self.try_pop() {
            out.push(item);
        }
        out
    }

    // ---- close and shutdown ----------------------------------------------

    pub(crate) fn close(&self) -> bool {
        let closed_now = match &self.storage {
            Storage::Ring(ring) => ring.close(),
            Storage::Locked(locked) => {
                let mut guard = locked.lock();
                !std::mem::replace(&mut guard.closed, true)
            }
        };
        self.consumers.notify_all();
        self.producers.notify_all();
        closed_now
    }

    pub(crate) fn is_closed(&self) -> bool {
        match &self.storage {
            Storage::Ring(ring) => ring.is_closed(),
            Storage::Locked(locked) => locked.lock().closed,
        }
    }

    pub(crate) fn len(&self) -> usize {
        match &self.storage {
            Storage::Ring(ring) => ring.len().saturating_sub(ring.tombstones()),
            Storage::Locked(locked) => locked.lock().len(),
        }
    }

    /// Closes, lets consumers drain until `grace` has passed on the queue's
    /// clock, then takes and returns whatever is left.
    pub(crate) fn shutdown(&self, grace: Duration) -> Vec<T> {
        self.close();
        let deadline = self.deadline(grace);
        let _ = self.block_on(
            &self.producers,
            || {
                if self.len() == 0 {
                    Readiness::Ready
                } else {
                    Readiness::Park
                }
            },
            Some(&deadline),
            || {
                if self.len() == 0 {
                    Step::Ready(())
                } else {
                    Step::NotYet
                }
            },
        );
        self.drain()
    }

    // ---- stats -----------------------------------------------------------------

    pub(crate) fn stats(&self) -> QueueStats {
        let counters = &self.counters;
        let evicted = counters.evicted.load(Ordering::Relaxed);
        let (pushed, popped, len, closed) = match &self.storage {
            Storage::Ring(ring) => {
                let cancelled = ring.cancelled() as u64;
                let skipped = ring.skipped() as u64;
                let head = ring.head_count() as u64;
                let tail = ring.tail_count() as u64;
                let popped = head.saturating_sub(skipped).saturating_sub(evicted);
                let pushed = tail.saturating_sub(cancelled);
                let len = tail
                    .saturating_sub(head)
                    .saturating_sub(cancelled.saturating_sub(skipped));
                (pushed, popped, len as usize, ring.is_closed())
            }
            Storage::Locked(locked) => {
                let guard = locked.lock();
                (guard.pushed, guard.popped, guard.len(), guard.closed)
            }
        };
        self.note_depth(len);
        QueueStats {
            len,
            capacity: self.cap,
            high_watermark: counters
                .high_watermark
                .load(Ordering::Relaxed)
                .min(self.cap),
            pushed,
            popped,
            dropped: counters.dropped.load(Ordering::Relaxed),
            rejected: counters.rejected.load(Ordering::Relaxed),
            producer_blocked: Duration::from_nanos(counters.blocked_nanos.load(Ordering::Relaxed)),
            closed,
            strategy: self.strategy,
            backpressure: self.policy,
        }
    }
}

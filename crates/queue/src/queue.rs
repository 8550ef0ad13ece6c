//! The shared core behind [`Sender`](crate::Sender) and
//! [`Receiver`](crate::Receiver): the flavor dispatch, the backpressure
//! policies, the counters, blocking with spin-then-park, close and shutdown.
//!
//! The storage itself lives in `flavors/`; every method here that touches it
//! is one `match` with a one-line arm per flavor.

use std::time::Duration;

use crossbeam_utils::CachePadded;

use crate::error::{BuildError, PopError, PushError, ReserveError};
use crate::flavors::locked::Locked;
use crate::flavors::ring::Ring;
use crate::flavors::{Counts, Probe, Reservation, TryPop};
use crate::metrics::QueueStats;
use crate::policy::{Backpressure, Strategy};
use crate::priority::Compare;
use crate::sync::{AtomicU64, AtomicUsize, Ordering, Snooze, yield_now};
use crate::waiters::{Deadline, Readiness, WaitQueue, Waiters, Wake};

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

/// The storage: which flavor this queue is. Private; callers see one type.
// One per queue; boxing the ring would add an indirection to every push.
#[allow(clippy::large_enum_variant)]
#[derive(Debug)]
enum Flavor<T> {
    /// FIFO: the lock-free ring.
    Ring(Ring<T>),
    /// LIFO and priority: a stack or a heap under a mutex.
    Locked(Locked<T>),
}

/// Counters off the hot path (pushed/popped/evicted come from the flavor).
#[derive(Debug, Default)]
struct Counters {
    /// `DropIncoming` drops (evictions are counted by the flavor).
    dropped: AtomicU64,
    rejected: AtomicU64,
    high_watermark: AtomicUsize,
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
    flavor: Flavor<T>,
    cap: usize,
    strategy: Strategy,
    policy: Backpressure,
    pub(crate) waiters: Waiters,
    pub(crate) senders: AtomicUsize,
    pub(crate) receivers: AtomicUsize,
    pub(crate) clock: quanta::Clock,
    counters: CachePadded<Counters>,
    /// Time producers spent blocked. On its own line: every blocked push adds
    /// to it, and it must not evict `high_watermark`, which every push that
    /// finds the queue full reads.
    blocked_nanos: CachePadded<AtomicU64>,
    pub(crate) name: String,
}

impl<T> Shared<T> {
    /// A queue of `cap` items: priority order when `compare` is given, else
    /// FIFO or LIFO per `strategy` (`Priority` without a comparator is FIFO).
    ///
    /// # Errors
    /// [`BuildError::OutOfMemory`] if the FIFO ring's slots cannot be allocated.
    pub(crate) fn new(
        cap: usize,
        strategy: Strategy,
        compare: Option<Compare<T>>,
        policy: Backpressure,
        clock: quanta::Clock,
        name: String,
    ) -> Result<Self, BuildError> {
        let (flavor, strategy) = match (strategy, compare) {
            (_, Some(compare)) => (
                Flavor::Locked(Locked::priority(compare, cap)),
                Strategy::Priority,
            ),
            (Strategy::Lifo, None) => (Flavor::Locked(Locked::lifo(cap)), Strategy::Lifo),
            (_, None) => (Flavor::Ring(Ring::new(cap)?), Strategy::Fifo),
        };
        Ok(Self {
            flavor,
            cap,
            strategy,
            policy,
            waiters: Waiters::default(),
            senders: AtomicUsize::new(1),
            receivers: AtomicUsize::new(1),
            clock,
            counters: CachePadded::new(Counters::default()),
            blocked_nanos: CachePadded::new(AtomicU64::new(0)),
            name,
        })
    }

    pub(crate) fn capacity(&self) -> usize {
        self.cap
    }

    pub(crate) fn policy(&self) -> Backpressure {
        self.policy
    }

    /// How long to wait for `timeout` on the queue's clock. A timeout past
    /// the end of the clock's range (`Duration::MAX`, "wait forever")
    /// saturates to an untimed wait instead of overflowing the instant.
    pub(crate) fn wait_for(&self, timeout: Duration) -> Wait {
        let clock = self.clock.clone();
        match clock.now().checked_add(timeout) {
            Some(at) => Wait::Until(Deadline { clock, at }),
            None => Wait::Forever,
        }
    }

    fn note_depth(&self, depth: usize) {
        if depth > self.counters.high_watermark.load(Ordering::Relaxed) {
            self.counters
                .high_watermark
                .fetch_max(depth, Ordering::Relaxed);
        }
    }

    fn note_sample(&self, depth: Option<usize>) {
        if let Some(depth) = depth {
            self.note_depth(depth);
        }
    }

    // ---- flavor dispatch (one line per flavor) ---------------------------

    /// One non-blocking attempt to enqueue, without any policy.
    fn raw_push(&self, item: T) -> Result<(), PushError<T>> {
        let depth = match &self.flavor {
            Flavor::Ring(ring) => ring.try_push(item, &self.waiters)?,
            Flavor::Locked(locked) => locked.try_push(item, &self.waiters)?,
        };
        self.note_sample(depth);
        Ok(())
    }

    /// `DropOldest`: evict until the item fits.
    fn push_evicting(&self, item: T) -> Result<(), PushError<T>> {
        let depth = match &self.flavor {
            Flavor::Ring(ring) => ring.push_evicting(item, &self.waiters)?,
            Flavor::Locked(locked) => locked.push_evicting(item, &self.waiters)?,
        };
        self.note_sample(depth);
        Ok(())
    }

    /// One non-blocking attempt to dequeue (`probe` matters on the ring only).
    fn raw_pop(&self, probe: Probe) -> TryPop<T> {
        match &self.flavor {
            Flavor::Ring(ring) => ring.try_pop(&self.waiters, probe),
            Flavor::Locked(locked) => locked.try_pop(&self.waiters),
        }
    }

    fn raw_reserve(&self) -> Result<Reservation, ReserveError> {
        match &self.flavor {
            Flavor::Ring(ring) => ring.try_reserve(),
            Flavor::Locked(locked) => locked.try_reserve(),
        }
    }

    /// Evicts the oldest item (for `DropOldest` reservations; the flavor
    /// counts it).
    fn evict_one(&self) -> TryPop<T> {
        match &self.flavor {
            Flavor::Ring(ring) => ring.evict_one(),
            Flavor::Locked(locked) => locked.evict_one(&self.waiters),
        }
    }

    /// Fills a reserved slot. Never fails: the slot was secured, even if the
    /// queue was closed in the meantime (consumers still drain it).
    pub(crate) fn fill(&self, reservation: Reservation, item: T) {
        let depth = match (&self.flavor, reservation) {
            (Flavor::Ring(ring), Reservation::Ring(claim)) => ring.fill(claim, item, &self.waiters),
            (Flavor::Locked(locked), Reservation::Locked) => locked.fill(item, &self.waiters),
            // Reservations come from this queue's own flavor; a mismatch cannot be built.
            _ => None,
        };
        self.note_sample(depth);
    }

    /// Returns an unused reserved slot.
    pub(crate) fn release(&self, reservation: Reservation) {
        match (&self.flavor, reservation) {
            (Flavor::Ring(ring), Reservation::Ring(claim)) => ring.release(claim, &self.waiters),
            (Flavor::Locked(locked), Reservation::Locked) => locked.release(&self.waiters),
            _ => {}
        }
    }

    pub(crate) fn producer_may_proceed(&self) -> bool {
        match &self.flavor {
            Flavor::Ring(ring) => ring.producer_may_proceed(),
            Flavor::Locked(locked) => locked.producer_may_proceed(),
        }
    }

    pub(crate) fn consumer_readiness(&self) -> Readiness {
        match &self.flavor {
            Flavor::Ring(ring) => ring.consumer_readiness(),
            Flavor::Locked(locked) => locked.consumer_readiness(),
        }
    }

    /// `true` if the FIFO ring's head slot is claimed but not yet published.
    pub(crate) fn head_is_busy(&self) -> bool {
        match &self.flavor {
            Flavor::Ring(ring) => ring.head_is_busy(),
            Flavor::Locked(_) => false,
        }
    }

    fn pop_more(&self, batch: &mut Vec<T>, max: usize) {
        match &self.flavor {
            Flavor::Ring(ring) => ring.pop_more(batch, max, &self.waiters),
            Flavor::Locked(locked) => locked.pop_more(batch, max, &self.waiters),
        }
    }

    fn close_storage(&self) -> bool {
        match &self.flavor {
            Flavor::Ring(ring) => ring.close(),
            Flavor::Locked(locked) => locked.close(),
        }
    }

    pub(crate) fn is_closed(&self) -> bool {
        match &self.flavor {
            Flavor::Ring(ring) => ring.is_closed(),
            Flavor::Locked(locked) => locked.is_closed(),
        }
    }

    pub(crate) fn len(&self) -> usize {
        match &self.flavor {
            Flavor::Ring(ring) => ring.len(),
            Flavor::Locked(locked) => locked.len(),
        }
    }

    fn counts(&self) -> Counts {
        match &self.flavor {
            Flavor::Ring(ring) => ring.counts(),
            Flavor::Locked(locked) => locked.counts(),
        }
    }

    // ---- blocking ----------------------------------------------------------

    pub(crate) fn producer_readiness(&self) -> Readiness {
        if self.producer_may_proceed() {
            Readiness::Ready
        } else {
            Readiness::Park
        }
    }

    /// Retries `attempt` (which the caller has just tried once), spinning
    /// briefly and then parking on `queue` until `may_proceed`, closing or the
    /// deadline.
    ///
    /// While it spins, a retry is made only when `worth_retrying` says so: a
    /// producer blocked on a full ring waits for a burst of free slots instead
    /// of taking each slot the moment a consumer frees it (see
    /// `Ring::has_room`). Once it yields, any progress is worth a retry.
    fn block_on<R>(
        &self,
        queue: &WaitQueue,
        may_proceed: impl Fn() -> Readiness,
        worth_retrying: impl Fn() -> bool,
        deadline: Option<&Deadline>,
        mut attempt: impl FnMut(Probe) -> Step<R>,
    ) -> Result<R, Blocked> {
        let mut snooze = Snooze::new();
        let mut busy_yields = 0;
        loop {
            let mut probe = Probe::Exact;
            if snooze.snooze() {
                if snooze.spinning() {
                    if !worth_retrying() {
                        continue;
                    }
                    probe = Probe::Quick;
                }
            } else if busy_yields < BUSY_YIELDS && self.head_is_busy() {
                // A producer is between claim and publish (nanoseconds, unless
                // it was preempted): give it the CPU a few times before parking.
                busy_yields += 1;
                yield_now();
            } else if queue.wait(&may_proceed, deadline) == Wake::TimedOut {
                return match attempt(Probe::Exact) {
                    Step::Ready(value) => Ok(value),
                    Step::Closed => Err(Blocked::Closed),
                    Step::NotYet => Err(Blocked::TimedOut),
                };
            }
            match attempt(probe) {
                Step::Ready(value) => return Ok(value),
                Step::Closed => return Err(Blocked::Closed),
                Step::NotYet => {}
            }
        }
    }

    /// While spinning, is a blocked producer's retry worth making? On the
    /// ring only once a burst of slots is free; elsewhere always.
    fn producer_worth_retrying(&self) -> bool {
        match &self.flavor {
            Flavor::Ring(ring) => ring.has_room_for_burst(),
            Flavor::Locked(_) => true,
        }
    }

    pub(crate) fn record_blocked(&self, started: quanta::Instant) {
        let nanos = self
            .clock
            .now()
            .saturating_duration_since(started)
            .as_nanos();
        self.blocked_nanos
            .fetch_add(u64::try_from(nanos).unwrap_or(u64::MAX), Ordering::Relaxed);
    }

    // ---- push with policy --------------------------------------------------

    /// One non-blocking attempt that applies the backpressure policy. Under
    /// `Block` a full queue yields `Full` without counting it (the caller
    /// decides whether to wait or to count a rejection).
    pub(crate) fn push_attempt(&self, item: T) -> Result<(), PushError<T>> {
        let item = match self.raw_push(item) {
            Err(PushError::Full(item)) => item,
            other => return other,
        };
        // The queue was full: that is its deepest possible point.
        self.note_depth(self.cap);
        match self.policy {
            Backpressure::Block => Err(PushError::Full(item)),
            Backpressure::Reject => {
                self.counters.rejected.fetch_add(1, Ordering::Relaxed);
                Err(PushError::Full(item))
            }
            Backpressure::DropIncoming => {
                self.counters.dropped.fetch_add(1, Ordering::Relaxed);
                drop(item);
                Ok(())
            }
            Backpressure::DropOldest => match self.push_evicting(item) {
                // Nothing evictable: every slot is promised to a permit (or,
                // on the ring, a permit holds the head).
                Err(PushError::Full(item)) => {
                    self.counters.rejected.fetch_add(1, Ordering::Relaxed);
                    Err(PushError::Full(item))
                }
                other => other,
            },
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
        let started = self.clock.now();
        let mut slot = Some(item);
        let outcome = self.block_on(
            &self.waiters.producers,
            || self.producer_readiness(),
            || self.producer_worth_retrying(),
            wait.deadline(),
            |_| {
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

    // ---- reserve -------------------------------------------------------------

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
                    TryPop::Closed => return Err(ReserveError::Closed),
                    TryPop::Busy => yield_now(),
                    // Nothing evictable while a permit holds the ring's head.
                    TryPop::Held => {
                        self.counters.rejected.fetch_add(1, Ordering::Relaxed);
                        return Err(ReserveError::Full);
                    }
                    TryPop::Item(_) | TryPop::Empty | TryPop::Unpublished => {}
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
            &self.waiters.producers,
            || self.producer_readiness(),
            || self.producer_worth_retrying(),
            wait.deadline(),
            |_| match self.raw_reserve() {
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

    // ---- pop -------------------------------------------------------------------

    /// One non-blocking pop; `Busy` and `Held` are reported as `Empty`.
    pub(crate) fn try_pop(&self) -> Result<T, PopError> {
        match self.raw_pop(Probe::Exact) {
            TryPop::Item(item) => Ok(item),
            TryPop::Closed => Err(PopError::Closed),
            TryPop::Empty | TryPop::Busy | TryPop::Held | TryPop::Unpublished => {
                Err(PopError::Empty)
            }
        }
    }

    /// A pop that may wait. Until it stops spinning it probes the ring
    /// quickly (the head slot's stamp only, see [`Probe::Quick`]); from the
    /// yields on, and after every park, exactly, so `Closed` is seen.
    pub(crate) fn pop(&self, wait: Wait) -> Result<T, PopError> {
        if let Wait::No = wait {
            return self.try_pop();
        }
        let attempt = |probe| match self.raw_pop(probe) {
            TryPop::Item(item) => Step::Ready(item),
            TryPop::Closed => Step::Closed,
            TryPop::Empty | TryPop::Busy | TryPop::Held | TryPop::Unpublished => Step::NotYet,
        };
        match attempt(Probe::Quick) {
            Step::Ready(item) => return Ok(item),
            Step::Closed => return Err(PopError::Closed),
            Step::NotYet => {}
        }
        let outcome = self.block_on(
            &self.waiters.consumers,
            || self.consumer_readiness(),
            || true,
            wait.deadline(),
            attempt,
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
        self.pop_more(&mut batch, max);
        Ok(batch)
    }

    /// Takes everything available now (under one lock for the locked flavor).
    pub(crate) fn drain(&self) -> Vec<T> {
        let mut out = Vec::new();
        self.pop_more(&mut out, usize::MAX);
        out
    }

    // ---- close and shutdown ----------------------------------------------

    pub(crate) fn close(&self) -> bool {
        let closed_now = self.close_storage();
        self.waiters.consumers.notify_all();
        self.waiters.producers.notify_all();
        closed_now
    }

    /// Closes, lets consumers drain until `grace` has passed on the queue's
    /// clock, then takes and returns whatever is left.
    ///
    /// The grace period starts at the call: the deadline is read *before* the
    /// queue closes, so anyone who sees the queue closed (and then moves a
    /// mock clock, or reasons about time) sees a deadline already fixed.
    pub(crate) fn shutdown(&self, grace: Duration) -> Vec<T> {
        let wait = self.wait_for(grace);
        self.close();
        if self.len() > 0 {
            let _ = self.block_on(
                &self.waiters.producers,
                || {
                    if self.len() == 0 {
                        Readiness::Ready
                    } else {
                        Readiness::Park
                    }
                },
                || true,
                wait.deadline(),
                |_| {
                    if self.len() == 0 {
                        Step::Ready(())
                    } else {
                        Step::NotYet
                    }
                },
            );
        }
        self.drain()
    }

    // ---- stats -----------------------------------------------------------------

    pub(crate) fn stats(&self) -> QueueStats {
        let counters = &self.counters;
        let Counts {
            pushed,
            popped,
            evicted,
            len,
            closed,
        } = self.counts();
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
            dropped: counters.dropped.load(Ordering::Relaxed) + evicted,
            rejected: counters.rejected.load(Ordering::Relaxed),
            producer_blocked: Duration::from_nanos(self.blocked_nanos.load(Ordering::Relaxed)),
            closed,
            strategy: self.strategy,
            backpressure: self.policy,
        }
    }
}

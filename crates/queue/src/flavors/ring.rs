//! The FIFO storage: a bounded lock-free ring in the style of Dmitry Vyukov's
//! bounded MPMC queue (as in crossbeam's `ArrayQueue`).
//!
//! Every slot carries a *stamp*. A producer may write slot `i` when its stamp
//! equals the producer's tail position; it claims the position with one CAS on
//! `tail`, writes the value, then publishes by storing `tail + 1` in the stamp.
//! A consumer may read slot `i` when its stamp equals `head + 1`; it claims with
//! one CAS on `head`, reads, and frees the slot for the next lap by storing
//! `head + one_lap`. Producers and consumers touch different cache lines except
//! for the slot they hand over, and nobody takes a lock.
//!
//! Positions encode `lap | index`, where `index < capacity` and a lap is the next
//! power of two above the capacity, so any capacity works without a division on
//! the hot path. One more bit in `tail` marks the ring closed: closing is a single
//! `fetch_or`, after which every claim fails, so no push can slip in after close.
//!
//! Waiting is where the cost is: on a full or empty ring every probe by the
//! waiting side takes a line the working side must take back. So a blocked
//! producer retries only once a burst of slots is free
//! ([`Ring::has_room_for_burst`]), a blocked consumer probes only the head
//! slot's stamp while it spins ([`Probe::Quick`]), and the depth sample that
//! reads `head` is taken once per lap (see the crate docs for the figures).
//!
//! A claimed slot may be *cancelled* (a [`Permit`](crate::Permit) dropped unused):
//! it is published holding no value, a tombstone that consumers skip.
//!
//! A slot is only its stamp and its value (16 bytes for a `u64`, four slots
//! per cache line, as in crossbeam): the permit marks (tombstone, held) live
//! in a separate array of [`Marks`] that only permits write, so the line a
//! producer hands to a consumer carries four messages, not two.
//!
//! The first half of the file is the ring itself (claim, publish, take); the
//! second half is the flavor interface the queue core dispatches to (the same
//! operations `locked.rs` offers), which adds the wake-ups.

use std::mem::MaybeUninit;

use crossbeam_utils::{Backoff, CachePadded};

use crate::error::{BuildError, PushError, ReserveError};
use crate::flavors::{Counts, Probe, Reservation, TryPop};
use crate::sync::{AtomicBool, AtomicUsize, Ordering, UnsafeCell, fence, spin_hint, yield_now};
use crate::waiters::{Readiness, Waiters};

/// One slot of the ring: what a push hands to a pop, nothing else.
struct Slot<T> {
    stamp: AtomicUsize,
    /// The item. Initialised iff the stamp says full and the slot's
    /// [`Marks::cancelled`] is clear (a tombstone has no value).
    value: UnsafeCell<MaybeUninit<T>>,
}

/// The permit marks of one slot, kept apart from the slots: only permits
/// write them, so on the hot path their lines stay shared in every cache and
/// a pop's read of `cancelled` costs no transfer.
struct Marks {
    /// Set (before the stamp is published) when the slot holds a tombstone
    /// (no value); cleared by the consumer that skips it, before it frees
    /// the slot for the next lap.
    cancelled: AtomicBool,
    /// Set while a permit holds this slot claimed and unpublished, so a
    /// consumer or an evicting producer can tell "held for as long as the
    /// permit lives" from "a producer is mid-write".
    held: AtomicBool,
}

/// A claimed, not yet written position (the producer half of a push).
#[derive(Debug)]
pub(crate) struct Claim {
    index: usize,
    stamp: usize,
}

impl Claim {
    /// The slot index this claim owns.
    pub(crate) fn index(&self) -> usize {
        self.index
    }
}

/// Outcome of a non-blocking claim.
#[derive(Debug)]
enum RingClaim {
    Claimed(Claim),
    Full,
    Closed,
}

pub(crate) struct Ring<T> {
    head: CachePadded<AtomicUsize>,
    tail: CachePadded<AtomicUsize>,
    slots: Box<[Slot<T>]>,
    /// One [`Marks`] per slot, same index.
    marks: Box<[Marks]>,
    cap: usize,
    /// Low bit above every index: set in `tail` once closed.
    mark_bit: usize,
    /// Added to a position to move one lap forward.
    one_lap: usize,
    /// Tombstones published (cancelled permits).
    cancelled: AtomicUsize,
    /// Tombstones consumed (skipped).
    skipped: AtomicUsize,
    /// Items taken from the head by `DropOldest` (not popped).
    evicted: AtomicUsize,
    /// Slots claimed by permits and not yet sent or dropped: claimed, but not
    /// items (so neither in `len` nor in `pushed`).
    reserved: AtomicUsize,
    /// Free slots a spinning blocked producer waits for before it retries
    /// (see [`Ring::has_room_for_burst`]).
    burst: usize,
}

// SAFETY: values of type T move between threads through the slots; the stamp
// protocol gives each slot exactly one owner at a time.
unsafe impl<T: Send> Send for Ring<T> {}
// SAFETY: as above; shared access only goes through the atomics and the stamp
// protocol that serialises access to each slot's cell.
unsafe impl<T: Send> Sync for Ring<T> {}

impl<T> std::fmt::Debug for Ring<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Ring")
            .field("capacity", &self.cap)
            .field("occupied", &self.occupied())
            .finish()
    }
}

impl<T> Ring<T> {
    /// The largest burst a blocked producer waits for (a quarter of the ring
    /// below 1024 slots).
    const MAX_BURST: usize = 256;

    /// Bytes the slots (and their marks) of a ring of `cap` items of `T`
    /// take (allocated up front); `None` if that overflows `usize`.
    pub(crate) fn slot_bytes(cap: usize) -> Option<usize> {
        cap.checked_mul(std::mem::size_of::<Slot<T>>() + std::mem::size_of::<Marks>())
    }

    /// A ring of exactly `cap` slots; `cap` must be at least 1 and at most
    /// `Queue::MAX_CAPACITY` (checked by the builder). All slots are allocated
    /// here: an allocation failure is an error, not an abort.
    pub(crate) fn new(cap: usize) -> Result<Self, BuildError> {
        debug_assert!(cap > 0);
        let out_of_memory = || BuildError::OutOfMemory {
            capacity: cap,
            bytes: Self::slot_bytes(cap).unwrap_or(usize::MAX),
        };
        let mark_bit = (cap + 1).next_power_of_two();
        let one_lap = mark_bit * 2;
        let mut slots = Vec::new();
        slots.try_reserve_exact(cap).map_err(|_| out_of_memory())?;
        slots.extend((0..cap).map(|i| Slot {
            stamp: AtomicUsize::new(i),
            value: UnsafeCell::new(MaybeUninit::uninit()),
        }));
        let slots = slots.into_boxed_slice();
        let mut marks = Vec::new();
        marks.try_reserve_exact(cap).map_err(|_| out_of_memory())?;
        marks.extend((0..cap).map(|_| Marks {
            cancelled: AtomicBool::new(false),
            held: AtomicBool::new(false),
        }));
        let marks = marks.into_boxed_slice();
        Ok(Self {
            head: CachePadded::new(AtomicUsize::new(0)),
            tail: CachePadded::new(AtomicUsize::new(0)),
            slots,
            marks,
            cap,
            mark_bit,
            one_lap,
            cancelled: AtomicUsize::new(0),
            skipped: AtomicUsize::new(0),
            evicted: AtomicUsize::new(0),
            reserved: AtomicUsize::new(0),
            burst: (cap / 4).clamp(1, Self::MAX_BURST),
        })
    }

    /// Next position after `pos` (same lap, or index 0 of the next lap).
    fn advance(&self, pos: usize) -> usize {
        let index = pos & (self.mark_bit - 1);
        if index + 1 < self.cap {
            pos + 1
        } else {
            (pos & !(self.one_lap - 1)).wrapping_add(self.one_lap)
        }
    }

    /// Claims the tail slot. Spins only while a consumer is still reading the
    /// slot from the previous lap (a few instructions, no user code).
    fn try_claim(&self) -> RingClaim {
        let backoff = Backoff::new();
        let mut tail = self.tail.load(Ordering::Relaxed);
        loop {
            if tail & self.mark_bit != 0 {
                return RingClaim::Closed;
            }
            let index = tail & (self.mark_bit - 1);
            let slot = &self.slots[index];
            let stamp = slot.stamp.load(Ordering::Acquire);
            if tail == stamp {
                // SeqCst: this CAS is part of the total order the wake-up
                // protocol relies on (see `waiters.rs`).
                match self.tail.compare_exchange_weak(
                    tail,
                    self.advance(tail),
                    Ordering::SeqCst,
                    Ordering::Relaxed,
                ) {
                    Ok(_) => {
                        return RingClaim::Claimed(Claim {
                            index,
                            stamp: tail + 1,
                        });
                    }
                    Err(current) => {
                        tail = current;
                        backoff.spin();
                        spin_hint();
                    }
                }
            } else if stamp.wrapping_add(self.one_lap) == tail + 1 {
                // The slot still holds last lap's value: full unless head moved.
                fence(Ordering::SeqCst);
                let head = self.head.load(Ordering::Relaxed);
                if head.wrapping_add(self.one_lap) == tail {
                    return RingClaim::Full;
                }
                backoff.spin();
                spin_hint();
                tail = self.tail.load(Ordering::Relaxed);
            } else {
                // A consumer is mid-read of this slot, our tail is stale, or
                // the slot is claimed by a permit one lap behind (then the
                // ring is full: head is still at that slot).
                fence(Ordering::SeqCst);
                let head = self.head.load(Ordering::Relaxed);
                if head.wrapping_add(self.one_lap) == tail {
                    return RingClaim::Full;
                }
                backoff.snooze();
                spin_hint();
                tail = self.tail.load(Ordering::Relaxed);
            }
        }
    }

    /// Writes `value` (or a tombstone) into a claimed slot and publishes it.
    fn publish(&self, claim: Claim, value: Option<T>) {
        let slot = &self.slots[claim.index];
        match value {
            // SAFETY: the successful CAS in `try_claim` made us the only
            // owner of this slot until the stamp below is stored.
            Some(value) => slot
                .value
                .with_mut(|cell| unsafe { cell.write(MaybeUninit::new(value)) }),
            None => {
                // A tombstone: no value; the mark is published by the stamp.
                self.marks[claim.index]
                    .cancelled
                    .store(true, Ordering::Relaxed);
                self.cancelled.fetch_add(1, Ordering::SeqCst);
            }
        };
        slot.stamp.store(claim.stamp, Ordering::Release);
    }

    /// Tombstones published and not yet skipped.
    fn tombstones(&self) -> usize {
        self.cancelled
            .load(Ordering::SeqCst)
            .saturating_sub(self.skipped.load(Ordering::SeqCst))
    }

    /// Consumes tombstones sitting at the head, so a cancelled permit's slot is
    /// free again as soon as it reaches the head. Returns how many it skipped.
    fn skip_head_tombstones(&self) -> usize {
        let mut skipped = 0;
        loop {
            let head = self.head.load(Ordering::SeqCst);
            let index = head & (self.mark_bit - 1);
            let slot = &self.slots[index];
            let stamp = slot.stamp.load(Ordering::Acquire);
            if stamp != head + 1 || !self.marks[index].cancelled.load(Ordering::Relaxed) {
                return skipped;
            }
            if self
                .head
                .compare_exchange(
                    head,
                    self.advance(head),
                    Ordering::SeqCst,
                    Ordering::Relaxed,
                )
                .is_ok()
            {
                // Published (stamp) and claimed by our CAS: a tombstone, no
                // value to read. Clear the mark before freeing the slot.
                self.marks[index].cancelled.store(false, Ordering::Relaxed);
                slot.stamp
                    .store(head.wrapping_add(self.one_lap), Ordering::Release);
                self.skipped.fetch_add(1, Ordering::SeqCst);
                skipped += 1;
            }
        }
    }

    /// Takes the head item, skipping tombstones. With [`Probe::Quick`] an
    /// unpublished head slot is [`TryPop::Unpublished`], without reading
    /// `tail`: on an empty ring that read (and its fence) is a cache miss for
    /// the consumer and another for the producer's next CAS on `tail`.
    fn take_head(&self, probe: Probe) -> TryPop<T> {
        let backoff = Backoff::new();
        let mut head = self.head.load(Ordering::Relaxed);
        loop {
            let index = head & (self.mark_bit - 1);
            let slot = &self.slots[index];
            let stamp = slot.stamp.load(Ordering::Acquire);
            if head + 1 == stamp {
                match self.head.compare_exchange_weak(
                    head,
                    self.advance(head),
                    Ordering::SeqCst,
                    Ordering::Relaxed,
                ) {
                    Ok(_) => {
                        // The stamp's acquire made the producer's mark visible.
                        let marks = &self.marks[index];
                        let value = if marks.cancelled.load(Ordering::Relaxed) {
                            marks.cancelled.store(false, Ordering::Relaxed);
                            None
                        } else {
                            // SAFETY: the stamp said the slot is published
                            // with a value (no tombstone mark) and the CAS
                            // made us its only reader; we move the value out
                            // and hand the slot to the next lap's producer.
                            Some(
                                slot.value
                                    .with_mut(|cell| unsafe { cell.read().assume_init() }),
                            )
                        };
                        slot.stamp
                            .store(head.wrapping_add(self.one_lap), Ordering::Release);
                        match value {
                            Some(item) => {
                                // Free cancelled slots now at the head (on the
                                // hot path this is two relaxed loads).
                                if self.cancelled.load(Ordering::Relaxed)
                                    != self.skipped.load(Ordering::Relaxed)
                                {
                                    self.skip_head_tombstones();
                                }
                                return TryPop::Item(item);
                            }
                            None => {
                                self.skipped.fetch_add(1, Ordering::SeqCst);
                                head = self.head.load(Ordering::Relaxed);
                                continue;
                            }
                        }
                    }
                    Err(current) => {
                        head = current;
                        backoff.spin();
                        spin_hint();
                    }
                }
            } else if stamp == head {
                if probe == Probe::Quick {
                    return TryPop::Unpublished;
                }
                fence(Ordering::SeqCst);
                let tail = self.tail.load(Ordering::Relaxed);
                if tail & !self.mark_bit == head {
                    return if tail & self.mark_bit != 0 {
                        TryPop::Closed
                    } else {
                        TryPop::Empty
                    };
                }
                // Tail moved past head but the slot is unpublished: a permit
                // holds it, or a producer is between claim and publish.
                return if self.marks[index].held.load(Ordering::SeqCst) {
                    TryPop::Held
                } else {
                    TryPop::Busy
                };
            } else {
                backoff.snooze();
                spin_hint();
                head = self.head.load(Ordering::Relaxed);
            }
        }
    }

    /// Marks the ring closed. Returns `true` if this call closed it.
    pub(crate) fn close(&self) -> bool {
        self.tail.fetch_or(self.mark_bit, Ordering::SeqCst) & self.mark_bit == 0
    }

    pub(crate) fn is_closed(&self) -> bool {
        self.tail.load(Ordering::SeqCst) & self.mark_bit != 0
    }

    /// Wake-up predicate for consumers, after registering: `Ready` if the
    /// head slot is published (or our view is stale) or the ring is closed;
    /// `Park` if the ring is empty (the next claim is a `SeqCst` CAS on `tail`,
    /// after which the producer reads the waiter count: one of us sees the
    /// other); `ParkBriefly` if a producer claimed the head slot but has not
    /// published it (its publish is a plain store, so it might miss us).
    pub(crate) fn consumer_readiness(&self) -> Readiness {
        let head = self.head.load(Ordering::SeqCst);
        let tail = self.tail.load(Ordering::SeqCst);
        if tail & self.mark_bit != 0 {
            return Readiness::Ready;
        }
        if tail & !self.mark_bit == head {
            return Readiness::Park;
        }
        let stamp = self.slots[head & (self.mark_bit - 1)]
            .stamp
            .load(Ordering::SeqCst);
        if stamp == head {
            Readiness::ParkBriefly
        } else {
            Readiness::Ready
        }
    }

    /// `true` if a pop would find the head slot claimed but unpublished.
    pub(crate) fn head_is_busy(&self) -> bool {
        self.consumer_readiness() == Readiness::ParkBriefly
    }

    /// Wake-up predicate for producers: a slot is free, or closed.
    pub(crate) fn producer_may_proceed(&self) -> bool {
        let head = self.head.load(Ordering::SeqCst);
        let tail = self.tail.load(Ordering::SeqCst);
        tail & self.mark_bit != 0 || self.count(tail & !self.mark_bit) - self.count(head) < self.cap
    }

    /// `true` once a burst of slots is free (or the ring is closed): what a
    /// producer blocked on a full ring waits for while it spins, before it
    /// retries.
    ///
    /// Why not retry as soon as one slot is free: on a full ring the producer
    /// would then write the slot the consumer has just freed, on the cache
    /// line the consumer is reading, and re-read `head` after every pop; each
    /// message would move two lines between the cores (measured: the
    /// hand-off ran at half crossbeam-channel's rate, see the crate docs).
    /// Waiting for a quarter of the ring lets the consumer run on lines the
    /// producer does not touch, and the producer then refills them in one
    /// burst. Only a heuristic for *when* to retry (relaxed loads): the claim
    /// itself stays exact, and a producer that has stopped spinning retries
    /// on any free slot.
    pub(crate) fn has_room_for_burst(&self) -> bool {
        let tail = self.tail.load(Ordering::Relaxed);
        let head = self.head.load(Ordering::Relaxed);
        tail & self.mark_bit != 0
            || self.cap
                - self
                    .count(tail)
                    .saturating_sub(self.count(head))
                    .min(self.cap)
                >= self.burst
    }

    /// Total positions ever passed by `pos` (laps × capacity + index).
    fn count(&self, pos: usize) -> usize {
        let pos = pos & !self.mark_bit;
        (pos / self.one_lap) * self.cap + (pos & (self.mark_bit - 1))
    }

    /// Number of claimed positions not yet consumed, tombstones included (a
    /// consistent snapshot).
    fn occupied(&self) -> usize {
        loop {
            let tail = self.tail.load(Ordering::SeqCst);
            let head = self.head.load(Ordering::SeqCst);
            if self.tail.load(Ordering::SeqCst) == tail {
                return self
                    .count(tail)
                    .saturating_sub(self.count(head))
                    .min(self.cap);
            }
        }
    }
}

// ---- the flavor interface (what the queue core calls) ---------------------

impl<T> Ring<T> {
    /// One attempt to enqueue; returns a depth sample once per lap, when the
    /// push takes slot 0. Reading `head` costs the producer a miss and the
    /// consumer another one (its next CAS on `head` must take the line back):
    /// with a sample every 32 slots a 1→1 hand-off ran at ~40M msgs/s, with
    /// one per lap at ~60M (2 cores, threads at real-time priority).
    pub(crate) fn try_push(
        &self,
        item: T,
        waiters: &Waiters,
    ) -> Result<Option<usize>, PushError<T>> {
        match self.try_claim() {
            RingClaim::Claimed(claim) => {
                let depth = (claim.index() == 0).then(|| self.len());
                self.publish(claim, Some(item));
                waiters.consumers.notify_one_if_waiting();
                Ok(depth)
            }
            RingClaim::Full => Err(PushError::Full(item)),
            RingClaim::Closed => Err(PushError::Closed(item)),
        }
    }

    /// `DropOldest`: evicts from the head until our claim succeeds.
    pub(crate) fn push_evicting(
        &self,
        mut item: T,
        waiters: &Waiters,
    ) -> Result<Option<usize>, PushError<T>> {
        loop {
            match self.try_push(item, waiters) {
                Err(PushError::Full(back)) => item = back,
                other => return other,
            }
            match self.evict_one() {
                TryPop::Item(old) => drop(old),
                TryPop::Closed => return Err(PushError::Closed(item)),
                TryPop::Empty => {}
                // A mid-write producer: it publishes in a moment.
                TryPop::Busy => yield_now(),
                // A permit holds the head: nothing can be evicted past it
                // (a ring frees slots in order) for as long as it lives.
                TryPop::Held => return Err(PushError::Full(item)),
                // Eviction probes exactly.
                TryPop::Unpublished => yield_now(),
            }
        }
    }

    /// One attempt to dequeue.
    pub(crate) fn try_pop(&self, waiters: &Waiters, probe: Probe) -> TryPop<T> {
        let popped = self.take_head(probe);
        if let TryPop::Item(_) = popped {
            waiters.producers.notify_one_if_waiting();
        }
        popped
    }

    /// Appends up to `max - batch.len()` items that are there now.
    pub(crate) fn pop_more(&self, batch: &mut Vec<T>, max: usize, waiters: &Waiters) {
        while batch.len() < max {
            match self.try_pop(waiters, Probe::Quick) {
                TryPop::Item(item) => batch.push(item),
                _ => break,
            }
        }
    }

    /// Takes the head item for `DropOldest` (counted as evicted, not popped).
    pub(crate) fn evict_one(&self) -> TryPop<T> {
        let taken = self.take_head(Probe::Exact);
        if let TryPop::Item(_) = taken {
            self.evicted.fetch_add(1, Ordering::Relaxed);
        }
        taken
    }

    /// Claims a slot for a permit: its place in line.
    pub(crate) fn try_reserve(&self) -> Result<Reservation, ReserveError> {
        match self.try_claim() {
            RingClaim::Claimed(claim) => {
                self.reserved.fetch_add(1, Ordering::SeqCst);
                self.marks[claim.index].held.store(true, Ordering::SeqCst);
                Ok(Reservation::Ring(claim))
            }
            RingClaim::Full => Err(ReserveError::Full),
            RingClaim::Closed => Err(ReserveError::Closed),
        }
    }

    /// Publishes a permit's item (even after close: consumers drain it).
    pub(crate) fn fill(&self, claim: Claim, item: T, waiters: &Waiters) -> Option<usize> {
        self.marks[claim.index].held.store(false, Ordering::SeqCst);
        self.publish(claim, Some(item));
        // After the publish: `len` may briefly miss this item, never count
        // the permit as one.
        self.reserved.fetch_sub(1, Ordering::SeqCst);
        // The publish was a plain store: fence before looking for waiters
        // (a consumer may be parked on exactly this slot).
        waiters.consumers.notify_all_after_store();
        None
    }

    /// Cancels a permit: its slot becomes a tombstone.
    pub(crate) fn release(&self, claim: Claim, waiters: &Waiters) {
        self.marks[claim.index].held.store(false, Ordering::SeqCst);
        self.publish(claim, None);
        self.reserved.fetch_sub(1, Ordering::SeqCst);
        // Free the slot now if it is at the head; otherwise consumers free it
        // when they get there.
        if self.skip_head_tombstones() > 0 {
            waiters.producers.notify_one_if_waiting();
        }
        // A consumer may be parked on this slot while it was unpublished.
        waiters.consumers.notify_all_after_store();
    }

    /// Items in the ring now: claimed positions minus tombstones and minus
    /// slots held by unsent permits.
    pub(crate) fn len(&self) -> usize {
        self.occupied()
            .saturating_sub(self.tombstones())
            .saturating_sub(self.reserved.load(Ordering::SeqCst))
    }

    /// Pushed/popped derived from the positions (no counter on the hot path).
    pub(crate) fn counts(&self) -> Counts {
        let evicted = self.evicted.load(Ordering::Relaxed) as u64;
        let reserved = self.reserved.load(Ordering::SeqCst) as u64;
        let cancelled = self.cancelled.load(Ordering::SeqCst) as u64;
        let skipped = self.skipped.load(Ordering::SeqCst) as u64;
        let head = self.count(self.head.load(Ordering::SeqCst)) as u64;
        let tail = self.count(self.tail.load(Ordering::SeqCst)) as u64;
        let popped = head.saturating_sub(skipped).saturating_sub(evicted);
        let pushed = tail.saturating_sub(cancelled).saturating_sub(reserved);
        let len = tail
            .saturating_sub(head)
            .saturating_sub(cancelled.saturating_sub(skipped))
            .saturating_sub(reserved);
        Counts {
            pushed,
            popped,
            evicted,
            len: len as usize,
            closed: self.is_closed(),
        }
    }
}

impl<T> Drop for Ring<T> {
    fn drop(&mut self) {
        // Exclusive access: every claimed slot between head and tail is published
        // (a claim is always followed by a publish before its owner returns, and a
        // permit keeps the ring alive), so each holds an initialised value
        // unless it is a tombstone (marked cancelled, no value).
        let head = self.head.load(Ordering::Relaxed);
        let tail = self.tail.load(Ordering::Relaxed) & !self.mark_bit;
        let len = self.count(tail) - self.count(head);
        let start = head & (self.mark_bit - 1);
        for i in 0..len {
            let index = (start + i) % self.cap;
            if self.marks[index].cancelled.load(Ordering::Relaxed) {
                continue;
            }
            // SAFETY: see above; each of these slots was published exactly once
            // with a value and not yet read.
            self.slots[index]
                .value
                .with_mut(|cell| unsafe { cell.read().assume_init() });
        }
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;

    /// Every `unsafe` cell access of the ring on one thread (a Miri target):
    /// publish and take over several laps, a tombstone skipped at the head
    /// and in the middle, a permit filled after close, and items still queued
    /// when the ring is dropped (read out by `Drop`, not leaked or freed twice).
    #[test]
    fn unsafe_slot_accesses_over_laps_tombstones_and_drop() {
        let waiters = Waiters::default();
        let ring = Ring::<String>::new(3).unwrap();
        for lap in 0..4 {
            for i in 0..3 {
                ring.try_push(format!("{lap}-{i}"), &waiters).unwrap();
            }
            assert!(matches!(
                ring.try_push("x".into(), &waiters),
                Err(PushError::Full(_))
            ));
            for i in 0..3 {
                assert!(
                    matches!(ring.try_pop(&waiters, Probe::Exact), TryPop::Item(s) if s == format!("{lap}-{i}"))
                );
            }
        }
        let Ok(Reservation::Ring(head)) = ring.try_reserve() else {
            panic!("reserve")
        };
        ring.try_push("a".into(), &waiters).unwrap();
        let Ok(Reservation::Ring(middle)) = ring.try_reserve() else {
            panic!("reserve")
        };
        assert!(matches!(ring.try_pop(&waiters, Probe::Exact), TryPop::Held));
        ring.release(head, &waiters); // a tombstone at the head: skipped at once
        assert_eq!(ring.len(), 1);
        ring.close();
        ring.release(middle, &waiters); // a tombstone behind an item
        assert!(matches!(ring.try_pop(&waiters, Probe::Exact), TryPop::Item(s) if s == "a"));
        assert!(matches!(
            ring.try_pop(&waiters, Probe::Exact),
            TryPop::Closed
        ));
        let ring = Ring::<String>::new(4).unwrap();
        ring.try_push("left".into(), &waiters).unwrap();
        let Ok(Reservation::Ring(claim)) = ring.try_reserve() else {
            panic!("reserve")
        };
        ring.fill(claim, "behind".into(), &waiters);
        ring.try_push("queued".into(), &waiters).unwrap();
        assert_eq!(ring.counts().len, 3);
        drop(ring); // three Strings freed by `Drop`
    }

    /// A producer blocked on a full ring retries (while it spins) only once a
    /// quarter of the ring is free, or the ring is closed; a one-slot ring
    /// needs one free slot.
    #[test]
    fn a_full_ring_has_room_for_a_burst_once_a_quarter_is_free() {
        let waiters = Waiters::default();
        let ring = Ring::<u32>::new(8).unwrap(); // burst: 2 slots
        assert!(ring.has_room_for_burst());
        for i in 0..8 {
            ring.try_push(i, &waiters).unwrap();
        }
        assert!(!ring.has_room_for_burst());
        assert!(matches!(
            ring.try_pop(&waiters, Probe::Exact),
            TryPop::Item(0)
        ));
        assert!(!ring.has_room_for_burst(), "one free slot is not a burst");
        assert!(matches!(
            ring.try_pop(&waiters, Probe::Exact),
            TryPop::Item(1)
        ));
        assert!(ring.has_room_for_burst());
        ring.try_push(8, &waiters).unwrap();
        ring.try_push(9, &waiters).unwrap();
        assert!(!ring.has_room_for_burst());
        ring.close();
        assert!(ring.has_room_for_burst(), "closed: the retry must see it");

        let one = Ring::<u32>::new(1).unwrap();
        one.try_push(1, &waiters).unwrap();
        assert!(!one.has_room_for_burst());
        assert!(matches!(
            one.try_pop(&waiters, Probe::Exact),
            TryPop::Item(1)
        ));
        assert!(one.has_room_for_burst());
    }

    /// A quick probe looks at the head slot's stamp only: it takes a
    /// published item like an exact one, but cannot tell empty, busy or
    /// closed apart (that needs `tail`), which the exact probe does.
    #[test]
    fn a_quick_probe_takes_published_items_and_leaves_the_why_to_the_exact_one() {
        let waiters = Waiters::default();
        let ring = Ring::<u32>::new(4).unwrap();
        assert!(matches!(
            ring.try_pop(&waiters, Probe::Quick),
            TryPop::Unpublished
        ));
        assert!(matches!(
            ring.try_pop(&waiters, Probe::Exact),
            TryPop::Empty
        ));
        ring.try_push(7, &waiters).unwrap();
        assert!(matches!(
            ring.try_pop(&waiters, Probe::Quick),
            TryPop::Item(7)
        ));
        let Ok(Reservation::Ring(claim)) = ring.try_reserve() else {
            panic!("reserve")
        };
        assert!(matches!(
            ring.try_pop(&waiters, Probe::Quick),
            TryPop::Unpublished
        ));
        assert!(matches!(ring.try_pop(&waiters, Probe::Exact), TryPop::Held));
        ring.release(claim, &waiters);
        ring.close();
        assert!(matches!(
            ring.try_pop(&waiters, Probe::Quick),
            TryPop::Unpublished
        ));
        assert!(matches!(
            ring.try_pop(&waiters, Probe::Exact),
            TryPop::Closed
        ));
    }

    /// The per-slot cost the builder documents (`Queue::MAX_CAPACITY`): a
    /// `u64` slot is 16 bytes (four to a cache line, like crossbeam's), plus
    /// 2 bytes of permit marks kept apart.
    #[test]
    fn a_u64_slot_is_16_bytes_plus_2_of_marks() {
        assert_eq!(std::mem::size_of::<Slot<u64>>(), 16);
        assert_eq!(std::mem::size_of::<Marks>(), 2);
        assert_eq!(Ring::<u64>::slot_bytes(1 << 20), Some(18 << 20));
    }
}

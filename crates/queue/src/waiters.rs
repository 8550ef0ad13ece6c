//! The parking layer: where blocked producers and consumers wait, threads and
//! async tasks alike, and how they are woken without ever losing a wake-up.
//!
//! # Paying only when someone waits
//!
//! The fast path of a push or pop never takes a lock: after it changes the
//! queue it reads one counter, `count` (the number of registered waiters), and
//! only when that is non-zero does it lock the list and wake one waiter.
//!
//! # Why no wake-up is lost
//!
//! The classic lost wake-up: a consumer sees "empty", a producer pushes and
//! sees "nobody waiting", then the consumer goes to sleep forever. Here a
//! waiter (1) registers itself and increments `count` (a `SeqCst` RMW,
//! followed by a `SeqCst` fence), then (2) re-checks the queue, and only then
//! parks. A notifier (1) changes the queue with a `SeqCst` read-modify-write
//! (the ring's CAS on `tail` or `head`, or a mutex release), then (2) reads
//! `count` with a `SeqCst` load. All of these sit in one total order, so the
//! two sides cannot both miss each other: either the waiter's re-check sees
//! the change (and it does not park) or the notifier sees the waiter (and
//! wakes it). The wake itself is a flag plus `unpark`/`Waker::wake`, both
//! sticky: a wake that lands before the park makes the park return at once.
//!
//! One case is not covered by an RMW: a producer has claimed the head slot
//! (the CAS) but not yet *published* it (a plain store of the slot's stamp).
//! A consumer that registers in that window sees "claimed, not ready"
//! ([`Readiness::ParkBriefly`]): it yields a few times, then parks for at
//! most 200 µs and re-checks, instead of trusting a notification that the
//! publisher's store→load reordering could lose. Permits, which can hold a
//! slot unpublished for long, fence before notifying, so their consumers are
//! woken at once.
//!
//! A waiter that gives up (timeout, future dropped) after having been picked
//! by `notify_one` passes the notification on, so it is never swallowed.

use std::collections::VecDeque;
use std::task::Waker;
use std::time::Duration;

use crossbeam_utils::CachePadded;

use crate::sync::{
    Arc, AtomicBool, AtomicUsize, Mutex, Ordering, Thread, current, fence, park, park_timeout,
};

/// What a waiter's re-check after registering found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Readiness {
    /// The operation may succeed now: retry instead of parking.
    Ready,
    /// Park until notified: whoever changes this will see the registration.
    Park,
    /// Park briefly and re-check: the change we wait for is a plain store
    /// (a producer publishing its slot) whose notifier might not see us.
    ParkBriefly,
}

/// How long a waiter parks on [`Readiness::ParkBriefly`] (a producer is between
/// its claim and its publish: normally nanoseconds; longer only for a permit,
/// whose send notifies with a fence anyway).
const BRIEF_PARK: Duration = Duration::from_micros(200);

/// How a blocking wait ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Wake {
    /// Woken, or the condition may already hold: retry the operation.
    Retry,
    /// The deadline passed.
    TimedOut,
}

/// A point in time on the queue's clock.
#[derive(Debug, Clone)]
pub(crate) struct Deadline {
    pub(crate) clock: quanta::Clock,
    pub(crate) at: quanta::Instant,
}

/// Longest single park in a timed wait, so a mock clock moved by a test is
/// noticed promptly (timed waits only; untimed waits park until woken).
const TIMED_PARK_SLICE: Duration = Duration::from_millis(5);

#[derive(Debug)]
struct ThreadSignal {
    notified: AtomicBool,
    thread: Thread,
}

#[derive(Debug)]
enum Waiter {
    Thread(Arc<ThreadSignal>),
    Task(Waker),
}

#[derive(Debug, Default)]
struct List {
    entries: VecDeque<(u64, Waiter)>,
    next_id: u64,
}

/// The two wait lists of one queue.
#[derive(Debug, Default)]
pub(crate) struct Waiters {
    /// Threads and tasks waiting for an item.
    pub(crate) consumers: WaitQueue,
    /// Threads and tasks waiting for space (and `shutdown` waiting for empty).
    pub(crate) producers: WaitQueue,
}

/// A FIFO list of parked threads and tasks waiting for one side of a queue.
#[derive(Debug)]
pub(crate) struct WaitQueue {
    count: CachePadded<AtomicUsize>,
    list: Mutex<List>,
}

impl Default for WaitQueue {
    fn default() -> Self {
        Self::new()
    }
}

impl WaitQueue {
    pub(crate) fn new() -> Self {
        Self {
            count: CachePadded::new(AtomicUsize::new(0)),
            list: Mutex::new(List::default()),
        }
    }

    /// Cheap check on the fast path: is anybody registered?
    ///
    /// Callers reach this right after a `SeqCst` read-modify-write on the
    /// queue (the ring's CAS on `tail`/`head`, or a mutex release): that RMW
    /// and this `SeqCst` load, against the waiter's `SeqCst` increment of
    /// `count` and its `SeqCst` re-check, all sit in one total order, so no
    /// fence is needed here. Loom cannot model that total order for plain
    /// loads (tokio-rs/loom#180), so under loom a fence stands in for it.
    #[inline]
    pub(crate) fn has_waiters(&self) -> bool {
        #[cfg(loom)]
        fence(Ordering::SeqCst);
        self.count.load(Ordering::SeqCst) != 0
    }

    /// Wakes one waiter if there is any. Call after changing the queue.
    #[inline]
    pub(crate) fn notify_one_if_waiting(&self) {
        if self.has_waiters() {
            self.notify_one();
        }
    }

    /// Like [`WaitQueue::notify_one_if_waiting`] after a plain (non-RMW) store
    /// that a waiter's re-check reads (a permit filling its slot): the fence
    /// orders that store before the load of `count`.
    pub(crate) fn notify_all_after_store(&self) {
        fence(Ordering::SeqCst);
        if self.count.load(Ordering::SeqCst) != 0 {
            self.notify_all();
        }
    }

    /// Wakes every waiter if there is any (close, or batch operations).
    pub(crate) fn notify_all_if_waiting(&self) {
        if self.has_waiters() {
            self.notify_all();
        }
    }

    /// Wakes the longest-waiting waiter.
    pub(crate) fn notify_one(&self) {
        let entry = {
            let mut list = self.list.lock();
            let entry = list.entries.pop_front();
            if entry.is_some() {
                self.count.fetch_sub(1, Ordering::SeqCst);
            }
            entry
        };
        if let Some((_, waiter)) = entry {
            wake(waiter);
        }
    }

    /// Wakes every waiter.
    pub(crate) fn notify_all(&self) {
        let entries = {
            let mut list = self.list.lock();
            let entries = std::mem::take(&mut list.entries);
            self.count.fetch_sub(entries.len(), Ordering::SeqCst);
            entries
        };
        for (_, waiter) in entries {
            wake(waiter);
        }
    }

    fn register(&self, waiter: Waiter) -> u64 {
        let id = {
            let mut list = self.list.lock();
            let id = list.next_id;
            list.next_id += 1;
            list.entries.push_back((id, waiter));
            self.count.fetch_add(1, Ordering::SeqCst);
            id
        };
        // Pairs with the fence in `has_waiters`: the caller's re-check that
        // follows cannot be ordered before our registration.
        fence(Ordering::SeqCst);
        id
    }

    /// Removes a registration. Returns `false` if it was already removed by a
    /// notification (the caller then owns that notification).
    fn cancel(&self, id: u64) -> bool {
        let mut list = self.list.lock();
        if let Some(pos) = list.entries.iter().position(|(entry, _)| *entry == id) {
            list.entries.remove(pos);
            self.count.fetch_sub(1, Ordering::SeqCst);
            true
        } else {
            false
        }
    }

    /// Blocks the calling thread until woken, until `may_proceed` reports
    /// `Ready` after registration, or until the deadline passes.
    pub(crate) fn wait(
        &self,
        may_proceed: impl Fn() -> Readiness,
        deadline: Option<&Deadline>,
    ) -> Wake {
        let signal = Arc::new(ThreadSignal {
            notified: AtomicBool::new(false),
            thread: current(),
        });
        let id = self.register(Waiter::Thread(signal.clone()));
        let readiness = may_proceed();
        if readiness == Readiness::Ready {
            // We will retry right away; if a notification picked us meanwhile,
            // that retry consumes what it announced.
            self.cancel(id);
            return Wake::Retry;
        }
        loop {
            if signal.notified.load(Ordering::Acquire) {
                return Wake::Retry;
            }
            let now_and_deadline = deadline.map(|d| (d.clock.now(), d));
            if let Some((now, deadline)) = now_and_deadline
                && now >= deadline.at
            {
                if !self.cancel(id) {
                    // Picked by a notifier but giving up: pass it on.
                    self.notify_one();
                }
                return Wake::TimedOut;
            }
            let slice = now_and_deadline
                .map(|(now, d)| d.at.saturating_duration_since(now).min(TIMED_PARK_SLICE));
            match (readiness, slice) {
                (Readiness::ParkBriefly, slice) => {
                    park_timeout(slice.map_or(BRIEF_PARK, |s| s.min(BRIEF_PARK)));
                    // If a notification picked us meanwhile, the retry
                    // consumes what it announced.
                    self.cancel(id);
                    return Wake::Retry;
                }
                (_, Some(slice)) => park_timeout(slice),
                (_, None) => park(),
            }
        }
    }

    /// Registers (or refreshes) an async task's waker. `slot` keeps the id
    /// between polls. Returns `true` if a notification already picked the task
    /// since its last registration (so it should retry instead of sleeping).
    pub(crate) fn register_waker(&self, slot: &mut Option<u64>, waker: &Waker) -> bool {
        if let Some(id) = *slot {
            let mut list = self.list.lock();
            if let Some((_, waiter)) = list.entries.iter_mut().find(|(entry, _)| *entry == id) {
                if let Waiter::Task(current) = waiter
                    && !current.will_wake(waker)
                {
                    *current = waker.clone();
                }
                return false;
            }
            drop(list);
            // Removed by a notification since the last poll.
            *slot = None;
            return true;
        }
        *slot = Some(self.register(Waiter::Task(waker.clone())));
        false
    }

    /// Drops an async registration. If the task was picked by a notification
    /// it did not act on, the notification is passed on.
    pub(crate) fn unregister_waker(&self, slot: &mut Option<u64>, pass_on: bool) {
        if let Some(id) = slot.take()
            && !self.cancel(id)
            && pass_on
        {
            self.notify_one();
        }
    }
}

fn wake(waiter: Waiter) {
    match waiter {
        Waiter::Thread(signal) => {
            signal.notified.store(true, Ordering::Release);
            signal.thread.unpark();
        }
        Waiter::Task(waker) => waker.wake(),
    }
}

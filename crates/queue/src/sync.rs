//! The `loom` shim: every atomic, lock, cell and park used by the hand-written
//! synchronisation comes from here, so `RUSTFLAGS="--cfg loom"` swaps the whole
//! crate onto loom's model checker without touching the algorithms.

#[cfg(loom)]
pub(crate) use loom::sync::Arc;
#[cfg(loom)]
pub(crate) use loom::sync::atomic::{
    AtomicBool, AtomicU8, AtomicU64, AtomicUsize, Ordering, fence,
};
#[cfg(loom)]
pub(crate) use loom::thread::{Thread, current, park};

#[cfg(not(loom))]
pub(crate) use std::sync::Arc;
#[cfg(not(loom))]
pub(crate) use std::sync::atomic::{AtomicBool, AtomicU8, AtomicU64, AtomicUsize, Ordering, fence};
#[cfg(not(loom))]
pub(crate) use std::thread::{Thread, current, park};

/// Parks with a timeout. Loom has no timed park; a spurious return is always
/// allowed by `park`'s contract, so under loom it only yields.
#[cfg(loom)]
pub(crate) fn park_timeout(_timeout: std::time::Duration) {
    loom::thread::yield_now();
}

#[cfg(not(loom))]
pub(crate) use std::thread::park_timeout;

/// Gives the CPU away while spinning: a real yield, or a loom scheduling point.
pub(crate) fn yield_now() {
    #[cfg(loom)]
    loom::thread::yield_now();
    #[cfg(not(loom))]
    std::thread::yield_now();
}

/// One step of a busy-wait: a CPU hint, or a loom scheduling point (loom must
/// be allowed to run the thread being waited for).
pub(crate) fn spin_hint() {
    #[cfg(loom)]
    loom::thread::yield_now();
    #[cfg(not(loom))]
    std::hint::spin_loop();
}

/// A mutex without poisoning: `parking_lot` in production, loom's in the model.
#[derive(Debug, Default)]
pub(crate) struct Mutex<T> {
    #[cfg(loom)]
    inner: loom::sync::Mutex<T>,
    #[cfg(not(loom))]
    inner: parking_lot::Mutex<T>,
}

#[cfg(loom)]
pub(crate) type MutexGuard<'a, T> = loom::sync::MutexGuard<'a, T>;
#[cfg(not(loom))]
pub(crate) type MutexGuard<'a, T> = parking_lot::MutexGuard<'a, T>;

impl<T> Mutex<T> {
    pub(crate) fn new(value: T) -> Self {
        Self {
            #[cfg(loom)]
            inner: loom::sync::Mutex::new(value),
            #[cfg(not(loom))]
            inner: parking_lot::Mutex::new(value),
        }
    }

    pub(crate) fn lock(&self) -> MutexGuard<'_, T> {
        #[cfg(loom)]
        {
            // Loom's mutex poisons like std's; nothing in this crate panics
            // while holding it except a user comparator, whose state we keep.
            self.inner
                .lock()
                .unwrap_or_else(|poisoned| poisoned.into_inner())
        }
        #[cfg(not(loom))]
        {
            self.inner.lock()
        }
    }
}

/// `UnsafeCell` with loom's closure API, so loom can check every access.
#[derive(Debug)]
pub(crate) struct UnsafeCell<T> {
    #[cfg(loom)]
    inner: loom::cell::UnsafeCell<T>,
    #[cfg(not(loom))]
    inner: std::cell::UnsafeCell<T>,
}

impl<T> UnsafeCell<T> {
    pub(crate) fn new(value: T) -> Self {
        Self {
            #[cfg(loom)]
            inner: loom::cell::UnsafeCell::new(value),
            #[cfg(not(loom))]
            inner: std::cell::UnsafeCell::new(value),
        }
    }

    /// Runs `f` with a mutable pointer to the contents.
    pub(crate) fn with_mut<R>(&self, f: impl FnOnce(*mut T) -> R) -> R {
        #[cfg(loom)]
        {
            self.inner.with_mut(f)
        }
        #[cfg(not(loom))]
        {
            f(self.inner.get())
        }
    }
}

/// The bounded busy-wait before parking: a few exponentially growing spins,
/// then a few yields, then the caller parks. Under loom there is no spinning
/// (it would only multiply the explored schedules).
#[derive(Debug, Default)]
pub(crate) struct Spin {
    step: u32,
}

impl Spin {
    const SPIN_STEPS: u32 = 6;
    const YIELD_STEPS: u32 = 8;

    pub(crate) fn new() -> Self {
        Self { step: 0 }
    }

    /// Waits a little and returns `true`, or returns `false` once the budget is
    /// spent and the caller should park.
    pub(crate) fn spin(&mut self) -> bool {
        if cfg!(loom) || self.step >= Self::YIELD_STEPS {
            return false;
        }
        if self.step < Self::SPIN_STEPS {
            for _ in 0..(1u32 << self.step) {
                spin_hint();
            }
        } else {
            yield_now();
        }
        self.step += 1;
        true
    }
}

/// The busy-wait of a blocked push or pop before it registers and parks, on
/// crossbeam-channel's schedule (its `Backoff`): seven spin steps of 2^0..2^6
/// `spin_loop` hints, then four `yield_now`s, then the caller parks. Unlike
/// `Backoff` it says which phase it is in, so a blocked producer can ask for
/// more room while it spins and a blocked consumer can probe quickly (see
/// `Shared::block_on`). Under loom it is two empty spin steps and no yield:
/// enough for the models to take the spinning retries (the burst gate, the
/// quick probe) and then the exact one before the register/re-check/park
/// protocol, without multiplying the explored schedules.
#[derive(Debug, Default)]
pub(crate) struct Snooze {
    step: u32,
}

impl Snooze {
    const SPIN_STEPS: u32 = if cfg!(loom) { 2 } else { 7 };
    const YIELD_STEPS: u32 = if cfg!(loom) { 0 } else { 4 };

    pub(crate) fn new() -> Self {
        Self::default()
    }

    /// Waits a little and returns `true`, or returns `false` once the budget
    /// is spent and the caller should park.
    pub(crate) fn snooze(&mut self) -> bool {
        if self.step >= Self::SPIN_STEPS + Self::YIELD_STEPS {
            return false;
        }
        if cfg!(loom) {
            // No scheduling point: a loom yield forces a switch, which would
            // push the lost-wake-up interleavings past the models'
            // preemption bound. The retries' own atomics are enough.
        } else if self.step < Self::SPIN_STEPS {
            for _ in 0..(1u32 << self.step) {
                spin_hint();
            }
        } else {
            yield_now();
        }
        self.step += 1;
        true
    }

    /// `true` while the next wait is a spin too: the retries made in this
    /// phase may be gated and quick; the one after the last spin is exact.
    pub(crate) fn spinning(&self) -> bool {
        self.step < Self::SPIN_STEPS
    }
}

/// A condition variable matching [`Mutex`]: parking_lot's, or loom's.
#[derive(Debug, Default)]
pub(crate) struct Condvar {
    #[cfg(loom)]
    inner: loom::sync::Condvar,
    #[cfg(not(loom))]
    inner: parking_lot::Condvar,
}

impl Condvar {
    pub(crate) fn new() -> Self {
        Self {
            #[cfg(loom)]
            inner: loom::sync::Condvar::new(),
            #[cfg(not(loom))]
            inner: parking_lot::Condvar::new(),
        }
    }

    /// Atomically unlocks, waits for a notification (or a spurious wake-up) and relocks.
    pub(crate) fn wait<'a, T>(&self, guard: MutexGuard<'a, T>) -> MutexGuard<'a, T> {
        #[cfg(loom)]
        {
            self.inner
                .wait(guard)
                .unwrap_or_else(|poisoned| poisoned.into_inner())
        }
        #[cfg(not(loom))]
        {
            let mut guard = guard;
            self.inner.wait(&mut guard);
            guard
        }
    }

    pub(crate) fn notify_one(&self) {
        self.inner.notify_one();
    }

    pub(crate) fn notify_all(&self) {
        self.inner.notify_all();
    }
}

//! How idle workers sleep and how new work wakes them.
//!
//! A worker that found nothing (after a short spin) takes the lock,
//! increments `sleeping`, fences, and re-checks for work *before* waiting on
//! the condition variable. A spawner publishes its task, fences, and only if
//! `sleeping > 0` takes the lock to notify. The two fences make the two
//! checks impossible to both miss, and because the sleeper holds the lock from
//! its increment until `wait` releases it atomically, a notifier that saw it
//! cannot notify before it actually waits. Cost on the spawn path when every
//! worker is busy: one fence and one load.

use crate::sync::{AtomicUsize, Condvar, Mutex, Ordering, fence};

/// The sleep/wake protocol of idle workers (exposed for the loom tests).
#[derive(Debug)]
pub struct Sleep {
    sleeping: AtomicUsize,
    lock: Mutex<()>,
    condvar: Condvar,
}

impl Default for Sleep {
    fn default() -> Self {
        Self::new()
    }
}

impl Sleep {
    /// Nobody asleep.
    pub fn new() -> Self {
        Self {
            sleeping: AtomicUsize::new(0),
            lock: Mutex::new(()),
            condvar: Condvar::new(),
        }
    }

    /// Call after publishing work: wakes one sleeper if any.
    pub fn wake_one(&self) {
        fence(Ordering::SeqCst);
        if self.sleeping.load(Ordering::SeqCst) > 0 {
            let _guard = self.lock.lock();
            self.condvar.notify_one();
        }
    }

    /// Wakes one sleeper if the (unfenced) count says there is one: for pushes
    /// that liveness does not depend on.
    pub fn wake_one_unfenced(&self) {
        if self.sleeping.load(Ordering::SeqCst) > 0 {
            let _guard = self.lock.lock();
            self.condvar.notify_one();
        }
    }

    /// Wakes every sleeper (shutdown).
    pub fn wake_all(&self) {
        let _guard = self.lock.lock();
        self.condvar.notify_all();
    }

    /// Sleeps unless `has_work` holds after registering; returns after a
    /// notification (or spuriously): the caller loops and looks for work again.
    pub fn sleep(&self, has_work: impl Fn() -> bool) {
        let guard = self.lock.lock();
        self.sleeping.fetch_add(1, Ordering::SeqCst);
        fence(Ordering::SeqCst);
        if !has_work() {
            let guard = self.condvar.wait(guard);
            drop(guard);
        }
        self.sleeping.fetch_sub(1, Ordering::SeqCst);
    }

    /// Number of workers asleep now.
    pub fn sleeping(&self) -> usize {
        self.sleeping.load(Ordering::Relaxed)
    }
}

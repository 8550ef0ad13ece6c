//! Time for the limiters: nanoseconds since the limiter's epoch, from an injected
//! [`quanta::Clock`] (`Clock::new()` in production, `Clock::mock()` in tests).
//!
//! `raw()` reads the fastest source (the TSC where available, a few nanoseconds) and
//! `delta_as_nanos` scales it with one multiply and shift — cheaper than building an
//! `Instant` per decision. A raw reading that goes backwards (TSC skew between cores)
//! yields the epoch-relative time 0-clamped by quanta, and every algorithm treats a `now`
//! earlier than its state as "no time passed", never as a panic.

use quanta::Clock;

/// A clock plus the raw reading taken at construction.
#[derive(Debug, Clone)]
pub(crate) struct Timer {
    clock: Clock,
    epoch: u64,
}

impl Timer {
    pub(crate) fn new(clock: Clock) -> Self {
        let epoch = clock.raw();
        Self { clock, epoch }
    }

    /// Nanoseconds since construction.
    #[inline]
    pub(crate) fn now(&self) -> u64 {
        self.clock.delta_as_nanos(self.epoch, self.clock.raw())
    }
}

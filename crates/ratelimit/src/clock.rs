//! Time for the limiters: nanoseconds since the limiter's epoch, from an injected
//! [`quanta::Clock`] (`Clock::new()` in production, `Clock::mock()` in tests).
//!
//! `raw()` reads the fastest source (the TSC where available, a few nanoseconds) and
//! `delta_as_nanos` scales it with one multiply and shift — cheaper than building an
//! `Instant` per decision.
//!
//! # A clock that steps backwards
//!
//! Readings are not forced monotonic here: that would need a shared "latest reading"
//! written on every decision, one more contended cache line on the hot path. A reading
//! before the epoch is 0 (quanta clamps it); a later reading may still be earlier than one
//! a state has already seen (TSC skew between cores, a mock clock driven by hand, a
//! client-side time source on Redis). Every algorithm handles it with one comparison, never
//! a panic and never more allowed than at the latest reading
//! (`tests/clock_backwards.rs`):
//!
//! | algorithm | a `now` earlier than its state |
//! |---|---|
//! | fixed window | no time passed: decided at the start of the state's window (the count is kept) |
//! | sliding counter | no time passed: decided at the start of the state's window |
//! | sliding log | no time passed: nothing expires; an allowed request joins the newest entry |
//! | token bucket, GCRA | the state is one timestamp (token bucket: "full again at"), so the step back is read as time still to wait (`retry_after` grows by the step); once the clock is back, decisions are exactly the undisturbed ones |

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

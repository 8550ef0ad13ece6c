//! GCRA — the generic cell rate algorithm, "a leaky bucket used as a meter".
//!
//! The whole state is one number, the *theoretical arrival time* (TAT): when the bucket
//! would be empty again if every allowed request had arrived exactly on schedule. With
//! emission interval `T = window / limit` and tolerance `τ = burst × T`, a request of cost
//! `n` at `now` is allowed iff
//!
//! ```text
//! max(TAT, now) + n·T − now ≤ τ          and then   TAT ← max(TAT, now) + n·T
//! ```
//!
//! Because the state is a single `u64`, the update is a compare-and-swap loop on an
//! [`AtomicU64`]: no lock, no allocation, 8 bytes per key. GCRA is exactly equivalent to a
//! token bucket refilled continuously (capacity `burst`, rate `limit / window`), which is
//! why governor and Redis' `redis-cell` use it.
//!
//! **A clock that steps back.** The state does not remember the last reading, only TAT,
//! so a `now` earlier than before is read as "the client came back sooner": the wait grows
//! by the step (never a panic — `max(TAT, now) ≥ now` — and never more allowed: any decision
//! at a reading leaves TAT at or after it, so an earlier `now` finds `max(TAT, now) = TAT`). An allowed
//! request at an earlier `now` ≤ TAT moves TAT exactly as it would have at the later
//! reading, so once the clock is back, decisions are the undisturbed ones. Remembering the
//! last reading would double the state and turn the CAS into a 128-bit one.

use crate::reciprocal::Reciprocal;
use crate::sync::{AtomicU64, Ordering};
use crate::{Algorithm, Decision, Quota};

/// GCRA parameters: emission interval `T` and tolerance `τ = burst × T`, in nanoseconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Gcra {
    quota: Quota,
    interval: u64,
    tolerance: u64,
    per_interval: Reciprocal,
}

/// Per-key GCRA state: the theoretical arrival time in one atomic.
#[derive(Debug, Default)]
pub struct GcraState {
    tat: AtomicU64,
}

impl Gcra {
    /// The decision once the outcome is known; kept out of the CAS loop so the loop itself
    /// is a handful of integer instructions.
    #[inline]
    fn allowed(&self, backlog: u64) -> Decision {
        let remaining = self.per_interval.divide(self.tolerance - backlog);
        Decision::allow(self.quota.burst(), remaining, backlog)
    }

    #[inline]
    fn denied(&self, current: u64, backlog: u64) -> Decision {
        let remaining = self
            .per_interval
            .divide(self.tolerance.saturating_sub(current));
        Decision::deny(
            self.quota.burst(),
            remaining,
            current,
            backlog - self.tolerance,
        )
    }

    /// The decision for a request of `cost` given `tat`, without changing anything.
    fn decide_at(&self, tat: u64, now: u64, cost: u64) -> Decision {
        let base = tat.max(now);
        let backlog = base + cost * self.interval - now;
        if backlog <= self.tolerance {
            self.allowed(backlog)
        } else {
            self.denied(base - now, backlog)
        }
    }
}

impl Algorithm for Gcra {
    type State = GcraState;
    const NAME: &'static str = "gcra";

    fn from_quota(quota: Quota) -> Self {
        let interval = quota.emission_interval_ns();
        Self {
            quota,
            interval,
            // Cannot overflow: `Quota::with_burst` bounds burst × interval by MAX_WINDOW.
            tolerance: u64::from(quota.burst()) * interval,
            per_interval: Reciprocal::new(interval),
        }
    }

    fn quota(&self) -> Quota {
        self.quota
    }

    fn capacity(&self) -> u32 {
        self.quota.burst()
    }

    fn new_state(&self, _now: u64) -> GcraState {
        GcraState::default()
    }

    #[inline]
    fn check(&self, state: &GcraState, now: u64, cost: u32) -> Decision {
        let increment = u64::from(cost) * self.interval;
        // Relaxed is enough: the decision depends on this one location only, and the
        // modification order of a single atomic is total, so a successful CAS linearizes.
        let mut tat = state.tat.load(Ordering::Relaxed);
        loop {
            let base = tat.max(now);
            let backlog = base + increment - now;
            if backlog > self.tolerance {
                return self.denied(base - now, backlog);
            }
            match state.tat.compare_exchange_weak(
                tat,
                base + increment,
                Ordering::Relaxed,
                Ordering::Relaxed,
            ) {
                Ok(_) => return self.allowed(backlog),
                Err(actual) => tat = actual,
            }
        }
    }

    fn peek(&self, state: &GcraState, now: u64) -> Decision {
        self.decide_at(state.tat.load(Ordering::Relaxed), now, 1)
    }

    fn is_idle(&self, state: &GcraState, now: u64) -> bool {
        state.tat.load(Ordering::Relaxed) <= now
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    fn gcra(limit: u32, window_ms: u64, burst: u32) -> Gcra {
        Gcra::from_quota(
            Quota::new(limit, Duration::from_millis(window_ms))
                .unwrap()
                .with_burst(burst)
                .unwrap(),
        )
    }

    const MS: u64 = 1_000_000;

    #[test]
    fn burst_then_one_per_interval() {
        let g = gcra(10, 1000, 3); // T = 100 ms, burst 3
        let s = g.new_state(0);
        for remaining in [2, 1, 0] {
            let d = g.check(&s, 0, 1);
            assert!(d.allowed);
            assert_eq!(d.remaining, remaining);
        }
        let d = g.check(&s, 0, 1);
        assert!(!d.allowed);
        assert_eq!(d.retry_after, Some(Duration::from_millis(100)));
        assert_eq!(d.reset_after, Duration::from_millis(300));
        assert!(!g.check(&s, 99 * MS, 1).allowed);
        assert!(g.check(&s, 100 * MS, 1).allowed);
        assert!(!g.check(&s, 100 * MS, 1).allowed);
    }

    #[test]
    fn cost_n_and_exact_retry_after() {
        let g = gcra(10, 1000, 5);
        let s = g.new_state(0);
        assert!(g.check(&s, 0, 4).allowed);
        let d = g.check(&s, 0, 3);
        assert!(!d.allowed);
        // Needs 2 more tokens: 200 ms.
        assert_eq!(d.retry_after, Some(Duration::from_millis(200)));
        assert!(!g.check(&s, 200 * MS - 1, 3).allowed);
        assert!(g.check(&s, 200 * MS, 3).allowed);
    }

    #[test]
    fn idle_after_full_refill_and_peek_consumes_nothing() {
        let g = gcra(10, 1000, 2);
        let s = g.new_state(0);
        assert!(g.is_idle(&s, 0));
        g.check(&s, 0, 2);
        let p = g.peek(&s, 0);
        assert!(!p.allowed);
        assert_eq!(p.retry_after, Some(Duration::from_millis(100)));
        let p = g.peek(&s, 100 * MS);
        assert!(p.allowed);
        assert_eq!(p.remaining, 0);
        assert_eq!(g.peek(&s, 100 * MS), p);
        assert!(!g.is_idle(&s, 199 * MS));
        assert!(g.is_idle(&s, 200 * MS));
    }
}

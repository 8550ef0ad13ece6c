//! [`RateLimiter`]: one algorithm, one state — a limit for a whole process or one resource.

use std::fmt;

use crossbeam_utils::CachePadded;
use quanta::Clock;

use crate::clock::Timer;
use crate::{Algorithm, CheckError, Decision, LimiterMetrics, MetricsSnapshot, Quota};

/// A direct (un-keyed) rate limiter over algorithm `A`, thread-safe (`&self` everywhere).
///
/// ```
/// use keel_ratelimit::{Quota, RateLimiter, SlidingLog, CheckError};
///
/// let (clock, _mock) = quanta::Clock::mock();
/// let limiter = RateLimiter::<SlidingLog>::with_clock(Quota::per_minute(10)?, clock);
/// assert!(limiter.check_n(7)?.allowed);
/// assert!(!limiter.check_n(4)?.allowed);       // would exceed 10 this minute: wait
/// assert_eq!(
///     limiter.check_n(11),                    // can never fit: a distinct error
///     Err(CheckError::InsufficientCapacity { cost: 11, capacity: 10 })
/// );
/// assert_eq!(limiter.metrics().allowed, 1);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
// `repr(C)`: the hot fields first and the 2 KiB of counter slots last (see `metrics.rs`).
#[repr(C)]
pub struct RateLimiter<A: Algorithm> {
    algorithm: A,
    /// On a cache line of its own: another core's write to the state does not evict the
    /// read-only quota and clock fields every decision reads first.
    state: CachePadded<A::State>,
    timer: Timer,
    metrics: LimiterMetrics,
}

impl<A: Algorithm> fmt::Debug for RateLimiter<A> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RateLimiter")
            .field("algorithm", &self.algorithm)
            .field("state", &*self.state)
            .finish_non_exhaustive()
    }
}

impl<A: Algorithm> RateLimiter<A> {
    /// A limiter on the real clock (`quanta::Clock::new()`).
    pub fn new(quota: Quota) -> Self {
        Self::with_clock(quota, Clock::new())
    }

    /// A limiter on the given clock (`quanta::Clock::mock()` in tests).
    pub fn with_clock(quota: Quota, clock: Clock) -> Self {
        Self::named(quota, clock, A::NAME)
    }

    /// A limiter whose metrics carry the label `limiter = name`.
    pub fn named(quota: Quota, clock: Clock, name: &str) -> Self {
        let timer = Timer::new(clock);
        let algorithm = A::from_quota(quota);
        let state = algorithm.new_state(timer.now());
        Self {
            algorithm,
            state: CachePadded::new(state),
            timer,
            metrics: LimiterMetrics::new(name),
        }
    }

    /// Decides one unit-cost request.
    #[inline]
    pub fn check(&self) -> Decision {
        let decision = self.algorithm.check(&self.state, self.timer.now(), 1);
        self.metrics.record(&decision);
        decision
    }

    /// Decides a request of `cost` units. A cost of 0 consumes nothing (like [`peek`](Self::peek)).
    ///
    /// # Errors
    /// [`CheckError::InsufficientCapacity`] when `cost` exceeds the limit (window algorithms)
    /// or the burst (token bucket, GCRA): it could never be allowed.
    #[inline]
    pub fn check_n(&self, cost: u32) -> Result<Decision, CheckError> {
        let capacity = self.algorithm.capacity();
        if cost > capacity {
            return Err(CheckError::InsufficientCapacity { cost, capacity });
        }
        if cost == 0 {
            return Ok(self.peek());
        }
        let decision = self.algorithm.check(&self.state, self.timer.now(), cost);
        self.metrics.record(&decision);
        Ok(decision)
    }

    /// The decision a unit-cost request would get now, consuming nothing.
    pub fn peek(&self) -> Decision {
        self.algorithm.peek(&self.state, self.timer.now())
    }

    /// The quota.
    pub fn quota(&self) -> Quota {
        self.algorithm.quota()
    }

    /// A snapshot of the allowed/denied counters.
    pub fn metrics(&self) -> MetricsSnapshot {
        self.metrics.snapshot()
    }
}

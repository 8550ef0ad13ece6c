//! [`RateLimiter`]: one algorithm, one state — a limit for a whole process or one resource.

use std::fmt;

use crossbeam_utils::CachePadded;
use quanta::Clock;

use crate::clock::Timer;
use crate::error::BuildError;
use crate::{Algorithm, CheckError, Decision, LimiterMetrics, Quota, RatelimitStats};

/// A direct (un-keyed) rate limiter over algorithm `A`, thread-safe (`&self` everywhere).
///
/// Build it with [`RateLimiter::builder`] (or the shorthands [`new`](RateLimiter::new) and
/// [`with_clock`](RateLimiter::with_clock)).
///
/// ```
/// use keel_ratelimit::{Quota, RateLimiter, SlidingLog, CheckError};
///
/// let (clock, _mock) = quanta::Clock::mock();
/// let limiter = RateLimiter::<SlidingLog>::builder()
///     .quota(Quota::per_minute(10)?)
///     .clock(clock)
///     .name("uploads")
///     .build()?;
/// assert!(limiter.check_n(7)?.allowed);
/// assert!(!limiter.check_n(4)?.allowed);       // would exceed 10 this minute: wait
/// assert_eq!(
///     limiter.check_n(11),                    // can never fit: a distinct error
///     Err(CheckError::InsufficientCapacity { cost: 11, capacity: 10 })
/// );
/// assert_eq!(limiter.stats().allowed, 1);
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

/// Builder for [`RateLimiter`]: `.quota(..)` is required; everything else has a default.
#[must_use]
pub struct RateLimiterBuilder<A: Algorithm> {
    quota: Option<Quota>,
    clock: Option<Clock>,
    name: Option<String>,
    _algorithm: std::marker::PhantomData<A>,
}

impl<A: Algorithm> fmt::Debug for RateLimiterBuilder<A> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RateLimiterBuilder")
            .field("algorithm", &A::NAME)
            .field("quota", &self.quota)
            .field("name", &self.name)
            .finish_non_exhaustive()
    }
}

impl<A: Algorithm> RateLimiterBuilder<A> {
    /// The quota (required).
    pub fn quota(mut self, quota: Quota) -> Self {
        self.quota = Some(quota);
        self
    }

    /// The clock (default: `quanta::Clock::new()`; `quanta::Clock::mock()` in tests).
    pub fn clock(mut self, clock: Clock) -> Self {
        self.clock = Some(clock);
        self
    }

    /// The `limiter` label of this limiter's metrics (default: the algorithm's name).
    pub fn name(mut self, name: impl Into<String>) -> Self {
        self.name = Some(name.into());
        self
    }

    /// Builds the limiter.
    ///
    /// # Errors
    /// [`BuildError::MissingQuota`] when no quota was given.
    pub fn build(self) -> Result<RateLimiter<A>, BuildError> {
        let quota = self.quota.ok_or(BuildError::MissingQuota)?;
        Ok(RateLimiter::assemble(
            quota,
            self.clock.unwrap_or_default(),
            self.name.as_deref().unwrap_or(A::NAME),
        ))
    }
}

impl<A: Algorithm> RateLimiter<A> {
    /// A builder: `.quota(..)` (required), `.clock(..)`, `.name(..)`, then `.build()`.
    pub fn builder() -> RateLimiterBuilder<A> {
        RateLimiterBuilder {
            quota: None,
            clock: None,
            name: None,
            _algorithm: std::marker::PhantomData,
        }
    }

    /// Shorthand for `builder().quota(quota).build()`: a limiter on the real clock
    /// (`quanta::Clock::new()`); infallible because the quota is given.
    ///
    /// ```
    /// use keel_ratelimit::{Gcra, Quota, RateLimiter};
    ///
    /// let limiter = RateLimiter::<Gcra>::new(Quota::per_second(1)?);
    /// assert!(limiter.check().allowed);
    /// # Ok::<(), keel_ratelimit::QuotaError>(())
    /// ```
    pub fn new(quota: Quota) -> Self {
        Self::with_clock(quota, Clock::new())
    }

    /// Shorthand for `builder().quota(quota).clock(clock).build()` (`quanta::Clock::mock()`
    /// in tests).
    pub fn with_clock(quota: Quota, clock: Clock) -> Self {
        Self::assemble(quota, clock, A::NAME)
    }

    fn assemble(quota: Quota, clock: Clock, name: &str) -> Self {
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
    ///
    /// ```
    /// use std::time::Duration;
    /// use keel_ratelimit::{Gcra, Quota, RateLimiter};
    ///
    /// let (clock, mock) = quanta::Clock::mock();
    /// let limiter = RateLimiter::<Gcra>::with_clock(Quota::per_second(1)?, clock);
    /// assert!(limiter.check().allowed);
    /// assert_eq!(limiter.check().retry_after, Some(Duration::from_secs(1)));
    /// mock.increment(Duration::from_secs(1));
    /// assert!(limiter.check().allowed);
    /// # Ok::<(), keel_ratelimit::QuotaError>(())
    /// ```
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
    ///
    /// ```
    /// use keel_ratelimit::{CheckError, Quota, RateLimiter, TokenBucket};
    ///
    /// let (clock, _mock) = quanta::Clock::mock();
    /// let limiter = RateLimiter::<TokenBucket>::with_clock(Quota::per_second(10)?, clock);
    /// assert_eq!(limiter.check_n(7)?.remaining, 3);
    /// assert!(!limiter.check_n(4)?.allowed);
    /// assert_eq!(limiter.check_n(0)?.remaining, 2); // a cost of 0 only looks
    /// assert!(matches!(limiter.check_n(11), Err(CheckError::InsufficientCapacity { .. })));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
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
    ///
    /// ```
    /// use keel_ratelimit::{FixedWindow, Quota, RateLimiter};
    ///
    /// let (clock, _mock) = quanta::Clock::mock();
    /// let limiter = RateLimiter::<FixedWindow>::with_clock(Quota::per_minute(2)?, clock);
    /// assert_eq!(limiter.peek().remaining, 1);
    /// assert_eq!(limiter.peek().remaining, 1); // nothing consumed
    /// assert_eq!(limiter.stats().decisions(), 0);
    /// # Ok::<(), keel_ratelimit::QuotaError>(())
    /// ```
    pub fn peek(&self) -> Decision {
        self.algorithm.peek(&self.state, self.timer.now())
    }

    /// The quota.
    pub fn quota(&self) -> Quota {
        self.algorithm.quota()
    }

    /// A snapshot of the allowed/denied counters.
    ///
    /// ```
    /// use keel_ratelimit::{Gcra, Quota, RateLimiter};
    ///
    /// let (clock, _mock) = quanta::Clock::mock();
    /// let limiter = RateLimiter::<Gcra>::with_clock(Quota::per_second(1)?, clock);
    /// limiter.check();
    /// limiter.check();
    /// let stats = limiter.stats();
    /// assert_eq!((stats.allowed, stats.denied), (1, 1));
    /// # Ok::<(), keel_ratelimit::QuotaError>(())
    /// ```
    pub fn stats(&self) -> RatelimitStats {
        self.metrics.snapshot()
    }
}

//! [`Decision`]: the one answer every algorithm, the keyed limiter, Redis and the middleware give.

use std::time::Duration;

/// The outcome of one rate-limit check, shared by every algorithm.
///
/// `retry_after` is `Some` exactly when the request was denied, and is exact: a request of
/// the same cost made `retry_after` later is allowed if nothing else happened in between.
///
/// ```
/// use std::time::Duration;
/// use keel_ratelimit::{Gcra, Quota, RateLimiter};
///
/// let (clock, mock) = quanta::Clock::mock();
/// let limiter = RateLimiter::<Gcra>::with_clock(Quota::per_second(2)?, clock);
/// assert!(limiter.check().allowed);
/// assert!(limiter.check().allowed);
/// let denied = limiter.check();
/// assert!(!denied.allowed);
/// assert_eq!(denied.remaining, 0);
/// assert_eq!(denied.retry_after, Some(Duration::from_millis(500)));
/// mock.increment(Duration::from_millis(500));
/// assert!(limiter.check().allowed);
/// # Ok::<(), keel_ratelimit::QuotaError>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Decision {
    /// Whether the request may proceed.
    pub allowed: bool,
    /// The most the limiter allows at once: the window's limit, or the bucket's burst.
    pub limit: u32,
    /// How many more unit-cost requests would be allowed right now (after this one).
    pub remaining: u32,
    /// Time until the limiter is back to its fresh state (`remaining == limit`).
    pub reset_after: Duration,
    /// When denied: how long to wait before the same request will be allowed.
    pub retry_after: Option<Duration>,
}

impl Decision {
    /// An allowed decision.
    pub(crate) fn allow(limit: u32, remaining: u64, reset_after_ns: u64) -> Self {
        Self {
            allowed: true,
            limit,
            remaining: clamp_u32(remaining),
            reset_after: Duration::from_nanos(reset_after_ns),
            retry_after: None,
        }
    }

    /// A denied decision.
    pub(crate) fn deny(
        limit: u32,
        remaining: u64,
        reset_after_ns: u64,
        retry_after_ns: u64,
    ) -> Self {
        Self {
            allowed: false,
            limit,
            remaining: clamp_u32(remaining),
            reset_after: Duration::from_nanos(reset_after_ns),
            retry_after: Some(Duration::from_nanos(retry_after_ns)),
        }
    }

    /// `true` if the request was denied.
    pub fn is_denied(&self) -> bool {
        !self.allowed
    }
}

fn clamp_u32(value: u64) -> u32 {
    u32::try_from(value).unwrap_or(u32::MAX)
}

//! [`Quota`]: how many requests per window, and how big a burst — validated once, at construction.

use std::time::Duration;

use crate::error::QuotaError;

/// The longest window accepted (about 136 years). Keeping every timestamp below 2^62 ns
/// means `now + burst × interval` can never overflow a `u64` in the limiter's lifetime.
pub const MAX_WINDOW: Duration = Duration::from_secs(1 << 32);

/// A rate limit: at most `limit` requests per `window`, with bursts of up to `burst`.
///
/// * Window algorithms (fixed window, sliding log, sliding counter) allow `limit` requests
///   in a window and ignore `burst`.
/// * Rate algorithms (token bucket, GCRA) refill at `limit / window` and hold at most `burst`
///   (the bucket's capacity; by default `burst == limit`).
///
/// ```
/// use std::time::Duration;
/// use keel_ratelimit::{Quota, QuotaError};
///
/// let q = Quota::per_second(100)?.with_burst(10)?;
/// assert_eq!(q.limit(), 100);
/// assert_eq!(q.burst(), 10);
/// assert_eq!(q.emission_interval(), Duration::from_millis(10));
/// assert_eq!(Quota::new(0, Duration::from_secs(1)), Err(QuotaError::ZeroLimit));
/// # Ok::<(), QuotaError>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Quota {
    limit: u32,
    burst: u32,
    window_ns: u64,
}

impl Quota {
    /// `limit` requests per `window`; the burst equals the limit.
    ///
    /// # Errors
    /// [`QuotaError::ZeroLimit`], [`QuotaError::ZeroWindow`], [`QuotaError::WindowTooLong`]
    /// or [`QuotaError::RateTooHigh`] when `window / limit` is below one nanosecond.
    pub fn new(limit: u32, window: Duration) -> Result<Self, QuotaError> {
        if limit == 0 {
            return Err(QuotaError::ZeroLimit);
        }
        if window.is_zero() {
            return Err(QuotaError::ZeroWindow);
        }
        if window > MAX_WINDOW {
            return Err(QuotaError::WindowTooLong(window));
        }
        let window_ns = window.as_nanos() as u64; // fits: MAX_WINDOW < 2^62 ns
        if window_ns / u64::from(limit) == 0 {
            return Err(QuotaError::RateTooHigh { limit, window });
        }
        Ok(Self {
            limit,
            burst: limit,
            window_ns,
        })
    }

    /// `limit` requests per second.
    ///
    /// # Errors
    /// As [`Quota::new`].
    pub fn per_second(limit: u32) -> Result<Self, QuotaError> {
        Self::new(limit, Duration::from_secs(1))
    }

    /// `limit` requests per minute.
    ///
    /// # Errors
    /// As [`Quota::new`].
    pub fn per_minute(limit: u32) -> Result<Self, QuotaError> {
        Self::new(limit, Duration::from_secs(60))
    }

    /// `limit` requests per hour.
    ///
    /// # Errors
    /// As [`Quota::new`].
    pub fn per_hour(limit: u32) -> Result<Self, QuotaError> {
        Self::new(limit, Duration::from_secs(3600))
    }

    /// Sets the burst (capacity) used by the token bucket and GCRA.
    ///
    /// # Errors
    /// [`QuotaError::ZeroBurst`], or [`QuotaError::BurstOverflow`] when
    /// `burst × emission interval` exceeds [`MAX_WINDOW`].
    pub fn with_burst(self, burst: u32) -> Result<Self, QuotaError> {
        if burst == 0 {
            return Err(QuotaError::ZeroBurst);
        }
        let tolerance = u128::from(burst) * u128::from(self.emission_interval_ns());
        if tolerance > MAX_WINDOW.as_nanos() {
            return Err(QuotaError::BurstOverflow { burst });
        }
        Ok(Self { burst, ..self })
    }

    /// Requests allowed per window (and the refill rate's numerator).
    pub fn limit(&self) -> u32 {
        self.limit
    }

    /// Capacity of the token bucket / GCRA.
    pub fn burst(&self) -> u32 {
        self.burst
    }

    /// The window.
    pub fn window(&self) -> Duration {
        Duration::from_nanos(self.window_ns)
    }

    /// The window in nanoseconds.
    pub fn window_ns(&self) -> u64 {
        self.window_ns
    }

    /// Time for one token to refill: `window / limit` (rounded down to a nanosecond).
    pub fn emission_interval(&self) -> Duration {
        Duration::from_nanos(self.emission_interval_ns())
    }

    /// [`Quota::emission_interval`] in nanoseconds (at least 1).
    pub fn emission_interval_ns(&self) -> u64 {
        self.window_ns / u64::from(self.limit)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rejects_bad_quotas_with_typed_errors() {
        assert_eq!(
            Quota::new(0, Duration::from_secs(1)),
            Err(QuotaError::ZeroLimit)
        );
        assert_eq!(Quota::new(1, Duration::ZERO), Err(QuotaError::ZeroWindow));
        let too_long = MAX_WINDOW + Duration::from_secs(1);
        assert_eq!(
            Quota::new(1, too_long),
            Err(QuotaError::WindowTooLong(too_long))
        );
        assert_eq!(
            Quota::new(u32::MAX, Duration::from_nanos(10)),
            Err(QuotaError::RateTooHigh {
                limit: u32::MAX,
                window: Duration::from_nanos(10)
            })
        );
        let q = Quota::per_second(1).unwrap();
        assert_eq!(q.with_burst(0), Err(QuotaError::ZeroBurst));
        assert_eq!(
            Quota::new(1, MAX_WINDOW).unwrap().with_burst(2),
            Err(QuotaError::BurstOverflow { burst: 2 })
        );
    }

    #[test]
    fn accessors_report_what_was_built() {
        let q = Quota::per_minute(60).unwrap().with_burst(5).unwrap();
        assert_eq!(q.limit(), 60);
        assert_eq!(q.burst(), 5);
        assert_eq!(q.window(), Duration::from_secs(60));
        assert_eq!(q.emission_interval(), Duration::from_secs(1));
        assert_eq!(
            Quota::per_hour(3600).unwrap().emission_interval_ns(),
            1_000_000_000
        );
    }
}

//! Typed errors: bad quotas are rejected at construction, impossible costs at decision time.

use std::time::Duration;

/// Why a [`Quota`](crate::Quota) was rejected.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum QuotaError {
    /// The limit (requests per window) was zero: nothing could ever be allowed.
    #[error("limit must be at least 1")]
    ZeroLimit,
    /// The burst (capacity of the token bucket / GCRA tolerance) was zero.
    #[error("burst must be at least 1")]
    ZeroBurst,
    /// The window was zero: a rate of "n per 0 s" is infinite.
    #[error("window must be longer than zero")]
    ZeroWindow,
    /// The window does not fit the limiter's nanosecond (or, on Redis, microsecond) clock.
    #[error("window of {0:?} is too long")]
    WindowTooLong(Duration),
    /// `window / limit` is below the clock's resolution: the rate cannot be represented.
    #[error("rate too high: {limit} per {window:?} is below one tick per request")]
    RateTooHigh {
        /// The requested limit.
        limit: u32,
        /// The requested window.
        window: Duration,
    },
    /// `burst × emission interval` overflows the 64-bit clock.
    #[error("burst {burst} with this rate overflows the clock")]
    BurstOverflow {
        /// The requested burst.
        burst: u32,
    },
}

/// Why a decision could not be made for a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum CheckError {
    /// The request's cost is larger than the limiter could ever allow at once, so denying
    /// it with a `retry_after` would be a lie: no amount of waiting makes it fit.
    #[error("cost {cost} can never fit a capacity of {capacity}")]
    InsufficientCapacity {
        /// The cost asked for.
        cost: u32,
        /// The most the limiter can ever allow at once (limit or burst).
        capacity: u32,
    },
}

/// Errors of the Redis-backed limiter.
#[cfg(feature = "redis")]
#[derive(Debug, thiserror::Error)]
pub enum RedisLimitError {
    /// The quota cannot be expressed (see [`QuotaError`]).
    #[error(transparent)]
    Quota(#[from] QuotaError),
    /// The cost can never fit (see [`CheckError`]).
    #[error(transparent)]
    Check(#[from] CheckError),
    /// Redis failed and the failure policy is [`FailurePolicy::Error`](crate::redis::FailurePolicy::Error).
    #[error("redis: {0}")]
    Redis(#[from] redis::RedisError),
    /// The script returned something that is not the expected reply.
    #[error("unexpected reply from the rate-limit script: {0}")]
    BadReply(String),
}

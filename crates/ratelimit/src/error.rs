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

/// Why a builder's `build()` refused its settings.
///
/// Every builder in the crate (`RateLimiter::builder()`, `KeyedLimiter::builder()`,
/// `RedisLimiter::builder()`, `RateLimitLayer::builder()`) returns this; the underlying
/// error stays reachable through [`std::error::Error::source`].
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BuildError {
    /// No quota was given (`.quota(..)` is required).
    #[error("a quota is required")]
    MissingQuota,
    /// The quota cannot be expressed by this limiter (e.g. finer than the Redis scripts'
    /// microsecond clock).
    #[error("quota cannot be used by this limiter")]
    Quota(#[source] QuotaError),
    /// The middleware layer has no limiter (`.limiter(..)` is required).
    #[cfg(feature = "tower")]
    #[error("a limiter is required")]
    MissingLimiter,
    /// A keyed limiter with no shards.
    #[error("shard count must be at least 1")]
    ZeroShards,
    /// More shards than [`MAX_SHARDS`](crate::MAX_SHARDS).
    #[error("{requested} shards is more than the maximum of {max}")]
    TooManyShards {
        /// The shard count asked for.
        requested: usize,
        /// The largest accepted.
        max: usize,
    },
    /// A hard key cap of 0: no key could ever be limited.
    #[error("max_keys must be at least 1")]
    ZeroMaxKeys,
    /// An IPv6 prefix length outside 1..=128 for [`PeerIp`](crate::middleware::PeerIp).
    #[cfg(feature = "tower")]
    #[error("ipv6 prefix of {0} bits is not in 1..=128")]
    InvalidIpv6Prefix(u8),
    /// A structured `RateLimit-Policy` name that is empty or not printable ASCII.
    #[cfg(feature = "tower")]
    #[error("policy name {0:?} must be non-empty printable ascii")]
    InvalidPolicyName(String),
    /// The Redis limiter has no server to talk to (`.url(..)` or `.client(..)` is required).
    #[cfg(feature = "redis")]
    #[error("a redis url or client is required")]
    MissingRedis,
    /// A Redis timeout of zero: every call would fail before it was sent.
    #[cfg(feature = "redis")]
    #[error("timeout must be longer than zero")]
    ZeroTimeout,
    /// The first connection to Redis failed, or the URL is invalid.
    #[cfg(feature = "redis")]
    #[error("could not connect to redis")]
    Redis(#[source] redis::RedisError),
}

/// Errors of the Redis-backed limiter.
#[cfg(feature = "redis")]
#[derive(Debug, thiserror::Error)]
pub enum RedisLimitError {
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

//! Errors: bad configuration at build time, failed or panicked loads, and
//! (feature `redis`) the tiered cache's Redis errors.

use std::sync::Arc;

/// A cache configuration that cannot work, rejected by `build()`.
#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    /// `max_capacity` was zero.
    #[error("capacity must be greater than zero")]
    ZeroCapacity,
    /// A default time to live of zero.
    #[error("time to live must be greater than zero")]
    ZeroTimeToLive,
    /// More entries per shard than the arena's `u32` indices can address.
    #[error("capacity {requested} exceeds the maximum of {max} entries per shard")]
    CapacityTooLarge {
        /// Entries requested per shard.
        requested: u64,
        /// The limit.
        max: u64,
    },
    /// The shard count is not a power of two, or exceeds the capacity.
    #[error("shard count must be a power of two no larger than the capacity, got {0}")]
    InvalidShards(usize),
    /// More shards than [`crate::CacheBuilder::MAX_SHARDS`]: each shard costs
    /// ≈ 2 KiB empty (its lock, counters and timer-wheel heads), so a huge
    /// count is memory spent before the first insert.
    #[error("shard count {requested} exceeds the maximum of {max}")]
    TooManyShards {
        /// Shards requested.
        requested: usize,
        /// The limit.
        max: usize,
    },
    /// A background sweep interval of zero.
    #[error("sweep interval must be greater than zero")]
    ZeroSweepInterval,
    /// The background sweeper thread could not be started.
    #[error("could not start the sweeper thread")]
    Sweeper(#[source] std::io::Error),
    /// `TieredCache`: a time to live above `TieredCacheBuilder::MAX_TTL`
    /// (Redis could not add it to its clock, and every write would fail).
    #[cfg(feature = "redis")]
    #[error("time to live {requested:?} exceeds the maximum of {max:?}")]
    TimeToLiveTooLarge {
        /// The time to live requested.
        requested: std::time::Duration,
        /// The limit.
        max: std::time::Duration,
    },
    /// `TieredCache`: an `l2_timeout` of zero (every Redis call would fail).
    #[cfg(feature = "redis")]
    #[error("l2 timeout must be greater than zero")]
    ZeroTimeout,
    /// `TieredCache`: a `liveness_interval` of zero.
    #[cfg(feature = "redis")]
    #[error("liveness interval must be greater than zero")]
    ZeroLivenessInterval,
    /// `TieredCache`: no Redis URL was given (`redis_url`).
    #[cfg(feature = "redis")]
    #[error("a redis url is required")]
    MissingRedisUrl,
    /// `TieredCache`: the Redis URL could not be parsed.
    #[cfg(feature = "redis")]
    #[error("invalid redis url")]
    InvalidRedisUrl(#[source] redis::RedisError),
}

/// Why `get_or_load` produced no value. Every caller waiting on the same
/// load receives a clone of the same error.
#[derive(Debug, Clone, thiserror::Error)]
pub enum LoadError {
    /// The loader returned an error; downcast it with
    /// `err.downcast_ref::<YourError>()`.
    #[error("loader failed: {0}")]
    Failed(Arc<dyn std::error::Error + Send + Sync + 'static>),
    /// The loader panicked; the panic was contained and its message kept.
    #[error("loader panicked: {0}")]
    Panicked(Arc<str>),
    /// The loading task was dropped (an async leader was cancelled) before
    /// it finished.
    #[error("load was cancelled before it finished")]
    Cancelled,
}

impl LoadError {
    /// The loader's own error, if it returned one of type `E`.
    pub fn downcast_ref<E: std::error::Error + 'static>(&self) -> Option<&E> {
        match self {
            LoadError::Failed(err) => err.downcast_ref::<E>(),
            _ => None,
        }
    }
}

/// Errors of the Redis-backed [`crate::TieredCache`].
#[cfg(feature = "redis")]
#[derive(Debug, thiserror::Error)]
pub enum TieredError {
    /// Redis could not be reached or answered with an error.
    #[error("redis: {0}")]
    Redis(#[from] redis::RedisError),
    /// A value could not be encoded or decoded.
    #[error("codec: {0}")]
    Codec(#[from] serde_json::Error),
    /// The loader failed, panicked or was cancelled.
    #[error(transparent)]
    Load(#[from] LoadError),
}

//! The options every cache kind shares — capacity, default TTL, policy,
//! clock — with their setters and their validation written once.
//!
//! [`crate::LruCacheBuilder`] and [`crate::CacheBuilder`] each hold an
//! [`Options`] and expand [`common_setters!`] into their `impl`, so a setter
//! has one definition and one doc comment; `build()` starts with
//! [`Options::validate`]. What differs stays in each builder: the weigher and
//! listener bounds (`Send + Sync` only for the concurrent cache) and the
//! concurrent cache's shards, sweeper and metrics name.

use std::time::Duration;

use quanta::Clock;

use crate::error::BuildError;
use crate::policy::Policy;

/// Largest entry count one arena (cache or shard) can index with `u32`.
pub(crate) const MAX_ENTRIES: u64 = (u32::MAX - 1) as u64;

/// Options shared by every cache kind (see the module docs).
#[derive(Debug, Clone, Default)]
pub(crate) struct Options {
    pub(crate) max_capacity: Option<u64>,
    pub(crate) default_ttl: Option<Duration>,
    pub(crate) policy: Policy,
    pub(crate) clock: Option<Clock>,
}

/// [`Options`] that passed validation.
#[derive(Debug)]
pub(crate) struct Valid {
    /// Entries, or total weight with a weigher; at least 1.
    pub(crate) capacity: u64,
    pub(crate) default_ttl: Option<Duration>,
    pub(crate) policy: Policy,
    pub(crate) clock: Clock,
}

impl Options {
    /// The checks every cache kind makes.
    ///
    /// # Errors
    ///
    /// [`BuildError::ZeroCapacity`], [`BuildError::ZeroTimeToLive`].
    pub(crate) fn validate(self) -> Result<Valid, BuildError> {
        let capacity = self.max_capacity.unwrap_or(0);
        if capacity == 0 {
            return Err(BuildError::ZeroCapacity);
        }
        if self.default_ttl == Some(Duration::ZERO) {
            return Err(BuildError::ZeroTimeToLive);
        }
        Ok(Valid {
            capacity,
            default_ttl: self.default_ttl,
            policy: self.policy,
            clock: self.clock.unwrap_or_default(),
        })
    }
}

/// The arena size limit of one cache or shard: `Some(entries)` when the
/// capacity counts entries (the arena then stops growing there), `None` with
/// a weigher.
///
/// # Errors
///
/// [`BuildError::CapacityTooLarge`] above [`MAX_ENTRIES`] counted entries.
pub(crate) fn entry_limit(entries: u64, counted: bool) -> Result<Option<usize>, BuildError> {
    if !counted {
        return Ok(None);
    }
    if entries > MAX_ENTRIES {
        return Err(BuildError::CapacityTooLarge {
            requested: entries,
            max: MAX_ENTRIES,
        });
    }
    Ok(Some(entries as usize))
}

/// The setters of [`Options`], expanded into each builder's `impl` (the
/// builder has a field `options: Options`).
macro_rules! common_setters {
    () => {
        /// Maximum entries, or maximum total weight when a weigher is set.
        pub fn max_capacity(mut self, capacity: u64) -> Self {
            self.options.max_capacity = Some(capacity);
            self
        }

        /// Time to live of entries written without their own (`put`,
        /// `insert`, loaded values). Default: none.
        pub fn default_ttl(mut self, ttl: core::time::Duration) -> Self {
            self.options.default_ttl = Some(ttl);
            self
        }

        /// The eviction policy ([`Policy::Lru`](crate::Policy::Lru) by default).
        pub fn policy(mut self, policy: $crate::Policy) -> Self {
            self.options.policy = policy;
            self
        }

        /// The clock for TTLs and load timing (`quanta::Clock::new()` by
        /// default; a `quanta::Clock::mock()` in tests).
        pub fn clock(mut self, clock: quanta::Clock) -> Self {
            self.options.clock = Some(clock);
            self
        }
    };
}

pub(crate) use common_setters;

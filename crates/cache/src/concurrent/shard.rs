//! One shard of a [`Cache`](super::Cache): the cache core, the key's
//! in-flight loads, and the shard's counters (plain integers under the
//! shard's lock).

use core::hash::Hash;
use std::sync::Arc;
use std::time::Duration;

use foldhash::fast::RandomState;

use super::load::Flight;
use crate::metrics::PUBLISH_EVERY;
use crate::raw::RawCache;
use crate::stats::CacheStats;

pub(super) struct Shard<K, V> {
    pub(super) raw: RawCache<K, V, RandomState>,
    /// Keys being loaded right now (see [`super::load`]).
    pub(super) inflight: hashbrown::HashMap<K, Arc<Flight<V>>, RandomState>,
    pub(super) loads_ok: u64,
    pub(super) loads_failed: u64,
    pub(super) load_time: Duration,
    /// The counters as last pushed to the `metrics` facade.
    published: CacheStats,
    ops: u32,
}

impl<K: Hash + Eq, V> Shard<K, V> {
    pub(super) fn new(raw: RawCache<K, V, RandomState>, hasher: RandomState) -> Self {
        Self {
            raw,
            inflight: hashbrown::HashMap::with_hasher(hasher),
            loads_ok: 0,
            loads_failed: 0,
            load_time: Duration::ZERO,
            published: CacheStats::default(),
            ops: 0,
        }
    }

    pub(super) fn snapshot(&self) -> CacheStats {
        // Listener panics are counted outside the lock, in `Inner` (see
        // `Cache::stats`).
        CacheStats {
            loads_ok: self.loads_ok,
            loads_failed: self.loads_failed,
            total_load_time: self.load_time,
            ..CacheStats::of_core(&self.raw)
        }
    }

    /// Counts one operation; every [`PUBLISH_EVERY`] returns the counter
    /// deltas to publish once the lock is released.
    #[inline]
    pub(super) fn count_op(&mut self) -> Option<CacheStats> {
        self.ops = self.ops.wrapping_add(1);
        if self.ops % PUBLISH_EVERY != 0 {
            return None;
        }
        Some(self.take_delta())
    }

    /// The counter increase since the last publication.
    pub(super) fn take_delta(&mut self) -> CacheStats {
        let now = self.snapshot();
        let delta = now.delta(&self.published);
        self.published = now;
        delta
    }
}

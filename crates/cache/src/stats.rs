//! [`CacheStats`]: a plain snapshot of a cache's counters, returned by
//! `stats()` on [`crate::LruCache`] and [`crate::Cache`] (and inside
//! `TieredStats`). How the same numbers reach the `metrics` facade is in
//! `metrics.rs`.

use std::time::Duration;

use crate::raw::RawCache;

/// A point-in-time copy of a cache's counters.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CacheStats {
    /// Lookups that found a live entry.
    pub hits: u64,
    /// Lookups that found nothing (or only an expired entry).
    pub misses: u64,
    /// Entries written (new or replacing).
    pub inserts: u64,
    /// Entries evicted for capacity.
    pub evictions: u64,
    /// Entries removed because their TTL ran out.
    pub expirations: u64,
    /// Loader calls that returned a value.
    pub loads_ok: u64,
    /// Loader calls that returned an error, panicked or were cancelled.
    pub loads_failed: u64,
    /// Time spent in loaders, summed.
    pub total_load_time: Duration,
    /// Eviction-listener calls that panicked (contained: the cache carried
    /// on, and the panic went to the panic hook as usual).
    pub listener_panics: u64,
    /// Entries stored now.
    pub entries: u64,
    /// Total weight stored now (equals `entries` without a weigher).
    pub weight: u64,
}

impl CacheStats {
    /// The counters and sizes of one cache core (no loads, no listener
    /// panics: the wrappers add those).
    pub(crate) fn of_core<K, V, S>(raw: &RawCache<K, V, S>) -> Self {
        let s = raw.stats;
        CacheStats {
            hits: s.hits,
            misses: s.misses,
            inserts: s.inserts,
            evictions: s.evictions,
            expirations: s.expirations,
            entries: raw.len() as u64,
            weight: raw.weight(),
            ..CacheStats::default()
        }
    }

    /// `hits / (hits + misses)`, or 0 before any lookup.
    pub fn hit_ratio(&self) -> f64 {
        let total = self.hits + self.misses;
        if total == 0 {
            0.0
        } else {
            self.hits as f64 / total as f64
        }
    }

    /// `hits + misses`.
    pub fn requests(&self) -> u64 {
        self.hits + self.misses
    }

    pub(crate) fn add(&mut self, other: &CacheStats) {
        self.hits += other.hits;
        self.misses += other.misses;
        self.inserts += other.inserts;
        self.evictions += other.evictions;
        self.expirations += other.expirations;
        self.loads_ok += other.loads_ok;
        self.loads_failed += other.loads_failed;
        self.total_load_time += other.total_load_time;
        self.listener_panics += other.listener_panics;
        self.entries += other.entries;
        self.weight += other.weight;
    }

    /// Counter increase since `earlier` (gauges `entries`/`weight` are
    /// taken from `self`).
    pub(crate) fn delta(&self, earlier: &CacheStats) -> CacheStats {
        CacheStats {
            hits: self.hits - earlier.hits,
            misses: self.misses - earlier.misses,
            inserts: self.inserts - earlier.inserts,
            evictions: self.evictions - earlier.evictions,
            expirations: self.expirations - earlier.expirations,
            loads_ok: self.loads_ok - earlier.loads_ok,
            loads_failed: self.loads_failed - earlier.loads_failed,
            total_load_time: self.total_load_time.saturating_sub(earlier.total_load_time),
            listener_panics: self.listener_panics - earlier.listener_panics,
            entries: self.entries,
            weight: self.weight,
        }
    }
}

//! The `metrics` facade: every metric the crate reports, and the rule for
//! when counters reach it.
//!
//! # When counters reach the facade
//!
//! - **[`crate::Cache`]: batched, every [`PUBLISH_EVERY`] (1,024) operations
//!   of a shard**, and on every [`crate::Cache::stats`] and
//!   [`crate::Cache::run_pending_tasks`] call (so on every sweep). The cache
//!   counts under each shard's lock in plain integers — no atomic
//!   read-modify-write and no shared cache line on the hot path — and pushes
//!   the deltas after the lock is released. An exporter therefore lags by at
//!   most 1,023 operations per shard (or one sweep interval on an idle
//!   cache). A `metrics::counter!` call per `get` would cost a registry
//!   lookup or an atomic on a shared line per operation, which the hot path
//!   cannot afford (`keel-bench cache` runs at ≈ 10M ops/s per core).
//! - **Per event** for what is rare: a contained listener panic, and in
//!   `TieredCache` (feature `redis`) an L2 error or a received
//!   invalidation: these happen at Redis round-trip rates, where a counter
//!   increment is noise. Its L1 is a [`crate::Cache`] and follows the rule
//!   above.
//! - **[`crate::LruCache`]: never.** It is single-threaded, has no name, and
//!   is usually owned by one component; read [`crate::LruCache::stats`].
//!
//! # Metrics
//!
//! | metric | kind |
//! |---|---|
//! | `keel_cache_hits_total` | counter |
//! | `keel_cache_misses_total` | counter |
//! | `keel_cache_inserts_total` | counter |
//! | `keel_cache_evictions_total` | counter |
//! | `keel_cache_expirations_total` | counter |
//! | `keel_cache_loads_total{result="ok"\|"failed"}` | counter |
//! | `keel_cache_load_microseconds_total` | counter (time in loaders, µs) |
//! | `keel_cache_listener_panics_total` | counter (per event; see [`crate::CacheStats::listener_panics`]) |
//! | `keel_cache_l2_errors_total` | counter (tiered: failed or timed-out Redis calls) |
//! | `keel_cache_invalidations_received_total` | counter (tiered) |
//!
//! Every metric carries the label `cache` = the name given to the builder
//! (the namespace for a `TieredCache`).

use crate::stats::CacheStats;

/// Operations of a shard between two pushes to the `metrics` facade.
pub(crate) const PUBLISH_EVERY: u32 = 1024;

/// Pushes counter deltas to the `metrics` facade.
pub(crate) fn publish(name: &str, delta: &CacheStats) {
    let labels = [("cache", name.to_owned())];
    if delta.hits > 0 {
        metrics::counter!("keel_cache_hits_total", &labels).increment(delta.hits);
    }
    if delta.misses > 0 {
        metrics::counter!("keel_cache_misses_total", &labels).increment(delta.misses);
    }
    if delta.inserts > 0 {
        metrics::counter!("keel_cache_inserts_total", &labels).increment(delta.inserts);
    }
    if delta.evictions > 0 {
        metrics::counter!("keel_cache_evictions_total", &labels).increment(delta.evictions);
    }
    if delta.expirations > 0 {
        metrics::counter!("keel_cache_expirations_total", &labels).increment(delta.expirations);
    }
    if delta.loads_ok > 0 {
        metrics::counter!(
            "keel_cache_loads_total",
            &[labels[0].clone(), ("result", "ok".to_owned())]
        )
        .increment(delta.loads_ok);
    }
    if delta.loads_failed > 0 {
        metrics::counter!(
            "keel_cache_loads_total",
            &[labels[0].clone(), ("result", "failed".to_owned())]
        )
        .increment(delta.loads_failed);
    }
    let micros = delta.total_load_time.as_micros() as u64;
    if micros > 0 {
        metrics::counter!("keel_cache_load_microseconds_total", &labels).increment(micros);
    }
}

/// One contained eviction-listener panic (rare: published per event).
pub(crate) fn listener_panic(name: &str) {
    metrics::counter!("keel_cache_listener_panics_total", "cache" => name.to_owned()).increment(1);
}

/// Tiered cache: one failed or timed-out Redis call.
#[cfg(feature = "redis")]
pub(crate) fn l2_error(namespace: &str) {
    metrics::counter!("keel_cache_l2_errors_total", "cache" => namespace.to_owned()).increment(1);
}

/// Tiered cache: one invalidation received from another instance.
#[cfg(feature = "redis")]
pub(crate) fn invalidation_received(namespace: &str) {
    metrics::counter!("keel_cache_invalidations_received_total", "cache" => namespace.to_owned())
        .increment(1);
}

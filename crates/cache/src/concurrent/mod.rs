//! [`Cache`]: the thread-safe, sharded cache with single-flight loading.
//!
//! # Design
//!
//! The key space is split over `N` shards (a power of two) by bits 32.. of
//! the key's foldhash. Each shard is a [`RawCache`](crate::raw) — the same
//! table + arena list + timer wheel as [`crate::LruCache`] — plus its
//! in-flight loads and counters, behind one `parking_lot::Mutex`, padded to
//! its own cache line. An operation hashes once, locks one shard, does O(1)
//! work, unlocks. Nothing is allocated on a `get`.
//!
//! Bits 32.. are used because hashbrown uses the low bits for the bucket
//! and the top 7 for its control bytes; taking the shard from either would
//! make every key in a shard collide in one of them.
//!
//! # How close to global LRU
//!
//! Within a shard the order is exact LRU (or exact SIEVE / S3-FIFO). Across shards it
//! is not: a full shard evicts its own least recently used entry even if
//! another shard holds an older one. With `N` shards and uniform hashing each
//! shard holds ≈ `capacity / N` entries, and the victim is the oldest of
//! its shard, so it is among the oldest ≈ `N` entries globally in
//! expectation; the hit ratio difference from a global LRU shrinks as
//! `capacity / N` grows (the default keeps at least 64 entries per shard).
//! Capacity and weight limits hold per shard, so the global limit is never
//! exceeded; an entry heavier than one shard's share is rejected.
//!
//! # Concurrent calls on the same key
//!
//! `get_or_load` and friends run the loader once per key at a time (see
//! [`load`]). An `insert`, `remove` or `invalidate` of a key
//! whose load is in flight *supersedes* that load: its result still goes to
//! the callers already waiting, but is not stored, and the next miss starts
//! a fresh load — a slow loader cannot overwrite newer data.

//!
//! # Files
//!
//! | file | what |
//! |---|---|
//! | `mod.rs` | [`Cache`] and its operations (get, insert, remove, stats) |
//! | `shard` | one shard: core, in-flight map, counters |
//! | `load` | single-flight, whole: the flight, the leader and its guards, the waiters, `get_or_load` and friends |
//! | `builder` | [`CacheBuilder`] and the sweeper thread |

mod builder;
mod load;
mod shard;

pub use builder::CacheBuilder;

use core::borrow::Borrow;
use core::fmt;
use core::hash::{BuildHasher, Hash};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use crossbeam_utils::CachePadded;
use foldhash::fast::RandomState;
use parking_lot::Mutex;
use quanta::{Clock, Instant};

use self::builder::Sweeper;
use self::shard::Shard;
use crate::arena::NEVER;
use crate::error::BuildError;
use crate::listener::{RemovalCause, call_contained};
use crate::metrics;
use crate::stats::CacheStats;
use crate::timer_wheel::{deadline_tick, elapsed_ns};

type Weigher<K, V> = Arc<dyn Fn(&K, &V) -> u32 + Send + Sync>;
type Listener<K, V> = Arc<dyn Fn(&K, &V, RemovalCause) + Send + Sync>;
type Removed<K, V> = Vec<(K, V, RemovalCause)>;
type Shards<K, V> = Box<[CachePadded<Mutex<Shard<K, V>>>]>;

struct Inner<K, V> {
    shards: Shards<K, V>,
    shard_mask: u64,
    hasher: RandomState,
    clock: Clock,
    origin: Instant,
    default_ttl: Option<Duration>,
    weigher: Option<Weigher<K, V>>,
    listener: Option<Listener<K, V>>,
    name: Arc<str>,
    sweeper: OnceLock<Sweeper>,
    /// Contained listener panics (the listener runs outside the shard lock).
    listener_panics: AtomicU64,
    /// The sweeper's period after clamping, if there is a sweeper.
    sweep_interval: Option<Duration>,
}

impl<K, V> Drop for Inner<K, V> {
    fn drop(&mut self) {
        if let Some(sweeper) = self.sweeper.get() {
            sweeper.stop();
        }
    }
}

impl<K, V> Inner<K, V> {
    #[inline]
    fn now_ns(&self) -> u64 {
        elapsed_ns(&self.clock, self.origin)
    }

    #[inline]
    fn shard(&self, hash: u64) -> &Mutex<Shard<K, V>> {
        &self.shards[((hash >> 32) & self.shard_mask) as usize]
    }

    /// Tells the listener, one entry at a time; a panic is contained and
    /// counted, and the other entries are still reported.
    fn notify(&self, removed: Removed<K, V>) {
        if let Some(listener) = &self.listener {
            for (k, v, cause) in &removed {
                if call_contained(|| listener(k, v, *cause)) {
                    self.listener_panics.fetch_add(1, Ordering::Relaxed);
                    metrics::listener_panic(&self.name);
                }
            }
        }
    }
}

/// A thread-safe cache: sharded, O(1) per operation, with TTL, an eviction
/// listener and single-flight loading. Cloning is cheap (a shared handle).
///
/// # Examples
///
/// ```
/// use keel_cache::Cache;
///
/// let cache: Cache<u64, String> = Cache::new(1_000).unwrap();
/// cache.insert(1, "one".to_string());
/// assert_eq!(cache.get(&1).as_deref(), Some("one"));
///
/// // Misses run the loader once, even with many concurrent callers.
/// let v = cache.get_or_load(2, || "two".to_string()).unwrap();
/// assert_eq!(v, "two");
/// assert_eq!(cache.stats().loads_ok, 1);
/// ```
pub struct Cache<K, V> {
    inner: Arc<Inner<K, V>>,
}

impl<K, V> Clone for Cache<K, V> {
    fn clone(&self) -> Self {
        Self {
            inner: Arc::clone(&self.inner),
        }
    }
}

impl<K, V> fmt::Debug for Cache<K, V> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Cache")
            .field("name", &self.inner.name)
            .field("shards", &self.inner.shards.len())
            .field("default_ttl", &self.inner.default_ttl)
            .finish_non_exhaustive()
    }
}

impl<K, V> Cache<K, V>
where
    K: Hash + Eq + Clone + Send + Sync + 'static,
    V: Clone + Send + Sync + 'static,
{
    /// A cache of at most `capacity` entries, LRU, no TTL.
    ///
    /// # Errors
    ///
    /// [`BuildError::ZeroCapacity`] if `capacity` is 0.
    pub fn new(capacity: u64) -> Result<Self, BuildError> {
        Self::builder().max_capacity(capacity).build()
    }

    /// A builder for every option (see [`CacheBuilder`]).
    pub fn builder() -> CacheBuilder<K, V> {
        CacheBuilder::default()
    }

    #[inline]
    fn removal_sink(
        listening: bool,
        removed: &mut Removed<K, V>,
    ) -> impl FnMut(K, V, RemovalCause) + '_ {
        move |k, v, cause| {
            if listening {
                removed.push((k, v, cause));
            }
        }
    }

    /// Advances the shard's wheel if it has timers; returns "now" (0 when
    /// nothing in the shard has a deadline).
    #[inline]
    fn tick(&self, shard: &mut Shard<K, V>, removed: &mut Removed<K, V>) -> u64 {
        if !shard.raw.has_timers() {
            return 0;
        }
        let now = self.inner.now_ns();
        shard.raw.advance(
            now,
            &mut Self::removal_sink(self.inner.listener.is_some(), removed),
        );
        now
    }

    /// After the shard lock is released: tell the listener, publish metrics.
    /// Inlined for its common case (nothing to do), which every operation
    /// takes; as a call it cost ≈ 19 instructions per operation, ≈ 6 % of
    /// a SIEVE miss-heavy run under callgrind (moving an `Option<CacheStats>`
    /// and a `Vec` into the frame).
    #[inline]
    fn finish(&self, removed: Removed<K, V>, delta: Option<CacheStats>) {
        if removed.is_empty() && delta.is_none() {
            return;
        }
        self.finish_slow(removed, delta);
    }

    #[cold]
    #[inline(never)]
    fn finish_slow(&self, removed: Removed<K, V>, delta: Option<CacheStats>) {
        if !removed.is_empty() {
            self.inner.notify(removed);
        }
        if let Some(delta) = delta {
            metrics::publish(&self.inner.name, &delta);
        }
    }

    /// Returns a clone of the value and marks it used. O(1).
    ///
    /// # Examples
    ///
    /// ```
    /// use keel_cache::Cache;
    ///
    /// let cache: Cache<&str, u32> = Cache::new(10).unwrap();
    /// assert_eq!(cache.get("a"), None);
    /// cache.insert("a", 1);
    /// assert_eq!(cache.get("a"), Some(1));
    /// assert_eq!(cache.stats().hits, 1);
    /// ```
    pub fn get<Q>(&self, key: &Q) -> Option<V>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        let hash = self.inner.hasher.hash_one(key);
        let mut shard = self.inner.shard(hash).lock();
        if shard.raw.has_timers() {
            return self.get_timed(shard, hash, key);
        }
        // No entry of the shard has a deadline: no clock read, nothing can
        // expire, so nothing goes to the listener. This path keeps its
        // frame small (no removal list): callgrind counted ≈ 120
        // instructions per `get` before, with ≈ 40 of them spent saving
        // registers and moving the list around.
        let value = shard.raw.get(hash, key, 0).cloned();
        let delta = shard.count_op();
        drop(shard);
        if let Some(delta) = delta {
            self.finish_slow(Vec::new(), Some(delta));
        }
        value
    }

    /// [`Cache::get`] when the shard has entries with a deadline: expire
    /// what is due first, and tell the listener after unlocking.
    #[cold]
    #[inline(never)]
    fn get_timed<Q>(
        &self,
        mut shard: parking_lot::MutexGuard<'_, Shard<K, V>>,
        hash: u64,
        key: &Q,
    ) -> Option<V>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        let mut removed = Vec::new();
        let now = self.tick(&mut shard, &mut removed);
        let value = shard.raw.get(hash, key, now).cloned();
        let delta = shard.count_op();
        drop(shard);
        self.finish(removed, delta);
        value
    }

    /// `true` if a live entry exists (does not promote or count).
    pub fn contains_key<Q>(&self, key: &Q) -> bool
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        let hash = self.inner.hasher.hash_one(key);
        let shard = self.inner.shard(hash).lock();
        let now = if shard.raw.has_timers() {
            self.inner.now_ns()
        } else {
            0
        };
        shard.raw.peek(hash, key, now).is_some()
    }

    /// Inserts with the default TTL. A replaced value goes to the listener as
    /// [`RemovalCause::Replaced`]. O(1) amortised.
    ///
    /// # Examples
    ///
    /// ```
    /// use keel_cache::Cache;
    ///
    /// let cache: Cache<u64, u64> = Cache::builder().max_capacity(1).shards(1).build().unwrap();
    /// cache.insert(1, 10);
    /// cache.insert(2, 20); // full: evicts 1
    /// assert_eq!(cache.get(&1), None);
    /// assert_eq!(cache.get(&2), Some(20));
    /// ```
    pub fn insert(&self, key: K, value: V) {
        self.insert_inner(key, value, self.inner.default_ttl);
    }

    /// Inserts with its own time to live.
    pub fn insert_with_ttl(&self, key: K, value: V, ttl: Duration) {
        self.insert_inner(key, value, Some(ttl));
    }

    fn insert_inner(&self, key: K, value: V, ttl: Option<Duration>) {
        let hash = self.inner.hasher.hash_one(&key);
        let weight = self.inner.weigher.as_ref().map_or(1, |w| w(&key, &value));
        let mut shard = self.inner.shard(hash).lock();
        if ttl.is_none()
            && self.inner.listener.is_none()
            && !shard.raw.has_timers()
            && shard.inflight.is_empty()
        {
            // Nothing to expire, no flight to supersede, nobody to tell:
            // removed entries are dropped in place. Callgrind: ≈ 60
            // instructions per insert fewer than through `store` and its
            // removal list (Zipf trace, SIEVE).
            let _replaced = shard
                .raw
                .put(hash, key, value, weight, NEVER, &mut |_, _, _| {});
            let delta = shard.count_op();
            drop(shard);
            if let Some(delta) = delta {
                self.finish_slow(Vec::new(), Some(delta));
            }
            return;
        }
        let mut removed = Vec::new();
        self.store(&mut shard, hash, key, value, weight, ttl, &mut removed);
        let delta = shard.count_op();
        drop(shard);
        self.finish(removed, delta);
    }

    /// Writes under the shard lock: advance, supersede (and unregister) any
    /// in-flight load of the key, put.
    #[allow(clippy::too_many_arguments)]
    fn store(
        &self,
        shard: &mut Shard<K, V>,
        hash: u64,
        key: K,
        value: V,
        weight: u32,
        ttl: Option<Duration>,
        removed: &mut Removed<K, V>,
    ) {
        let listening = self.inner.listener.is_some();
        let mut now = self.tick(shard, removed);
        let deadline = match ttl {
            Some(ttl) => {
                if now == 0 {
                    now = self.inner.now_ns();
                    shard
                        .raw
                        .advance(now, &mut Self::removal_sink(listening, removed));
                }
                deadline_tick(now, ttl.as_nanos().min(u128::from(u64::MAX)) as u64)
            }
            None => NEVER,
        };
        // Unregister the flight, not just mark it: should this write be
        // evicted or expire before the load ends, the next miss must start
        // a fresh load rather than wait for the superseded one.
        if !shard.inflight.is_empty()
            && let Some(flight) = shard.inflight.remove(&key)
        {
            flight.supersede();
        }
        let old = shard.raw.put(
            hash,
            key,
            value,
            weight,
            deadline,
            &mut Self::removal_sink(listening, removed),
        );
        if let (Some((k, v)), true) = (old, listening) {
            removed.push((k, v, RemovalCause::Replaced));
        }
    }

    /// Removes `key` and returns its value; the listener sees
    /// [`RemovalCause::Removed`]. Supersedes an in-flight load of the key.
    ///
    /// # Examples
    ///
    /// ```
    /// use keel_cache::Cache;
    ///
    /// let cache: Cache<u64, u64> = Cache::new(10).unwrap();
    /// cache.insert(1, 10);
    /// assert_eq!(cache.remove(&1), Some(10));
    /// assert!(!cache.contains_key(&1));
    /// ```
    pub fn remove<Q>(&self, key: &Q) -> Option<V>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        let hash = self.inner.hasher.hash_one(key);
        let mut removed = Vec::new();
        let (value, delta) = {
            let mut shard = self.inner.shard(hash).lock();
            let now = self.tick(&mut shard, &mut removed);
            if !shard.inflight.is_empty()
                && let Some(flight) = shard.inflight.remove(key)
            {
                flight.supersede();
            }
            let value = match shard.raw.remove(hash, key, now) {
                Some((k, v)) => {
                    let out = v.clone();
                    if self.inner.listener.is_some() {
                        removed.push((k, v, RemovalCause::Removed));
                    }
                    Some(out)
                }
                None => None,
            };
            (value, shard.count_op())
        };
        self.finish(removed, delta);
        value
    }

    /// Removes `key` without returning it.
    pub fn invalidate<Q>(&self, key: &Q)
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        let _ = self.remove(key);
    }

    /// Removes every entry (listener: [`RemovalCause::Removed`]) and
    /// supersedes every in-flight load.
    pub fn invalidate_all(&self) {
        for shard in self.inner.shards.iter() {
            let mut removed = Vec::new();
            {
                let mut shard = shard.lock();
                for flight in shard.inflight.values() {
                    flight.supersede();
                }
                shard.inflight.clear();
                let listening = self.inner.listener.is_some();
                shard.raw.clear(
                    RemovalCause::Removed,
                    &mut Self::removal_sink(listening, &mut removed),
                );
            }
            self.finish(removed, None);
        }
    }

    /// Expires what is due in every shard and publishes metrics. Operations
    /// expire their own shard as they go; the optional sweeper calls this
    /// periodically so idle shards release memory too.
    pub fn run_pending_tasks(&self) {
        for shard in self.inner.shards.iter() {
            let mut removed = Vec::new();
            let delta = {
                let mut shard = shard.lock();
                if shard.raw.has_timers() {
                    let now = self.inner.now_ns();
                    let listening = self.inner.listener.is_some();
                    shard
                        .raw
                        .advance(now, &mut Self::removal_sink(listening, &mut removed));
                }
                shard.take_delta()
            };
            self.finish(removed, Some(delta));
        }
    }

    /// Entries stored (summed over shards; may include entries that expired
    /// since their shard was last touched).
    pub fn len(&self) -> u64 {
        self.inner
            .shards
            .iter()
            .map(|s| s.lock().raw.len() as u64)
            .sum()
    }

    /// `true` if no entry is stored.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Total weight stored (equals [`Cache::len`] without a weigher).
    pub fn weighted_size(&self) -> u64 {
        self.inner
            .shards
            .iter()
            .map(|s| s.lock().raw.weight())
            .sum()
    }

    /// The configured capacity (entries, or weight with a weigher).
    pub fn capacity(&self) -> u64 {
        self.inner
            .shards
            .iter()
            .map(|s| s.lock().raw.max_weight())
            .sum()
    }

    /// Number of shards.
    pub fn shard_count(&self) -> usize {
        self.inner.shards.len()
    }

    /// The background sweeper's period (after raising it to
    /// [`CacheBuilder::MIN_SWEEP_INTERVAL`]), or `None` without a sweeper.
    pub fn sweep_interval(&self) -> Option<Duration> {
        self.inner.sweep_interval
    }

    /// Keys being loaded right now (the in-flight map's size).
    pub fn pending_loads(&self) -> usize {
        self.inner
            .shards
            .iter()
            .map(|s| s.lock().inflight.len())
            .sum()
    }

    /// A snapshot of the counters (also pushes them to `metrics`).
    pub fn stats(&self) -> CacheStats {
        let mut total = CacheStats::default();
        for shard in self.inner.shards.iter() {
            let (snapshot, delta) = {
                let mut shard = shard.lock();
                let delta = shard.take_delta();
                (shard.snapshot(), delta)
            };
            metrics::publish(&self.inner.name, &delta);
            total.add(&snapshot);
        }
        total.listener_panics = self.inner.listener_panics.load(Ordering::Relaxed);
        total
    }
}

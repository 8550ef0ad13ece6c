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
//! Within a shard the order is exact LRU (or exact SIEVE). Across shards it
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
//! [`crate::single_flight`]). An `insert`, `remove` or `invalidate` of a key
//! whose load is in flight *supersedes* that load: its result still goes to
//! the callers already waiting, but is not stored, and the next miss starts
//! a fresh load — a slow loader cannot overwrite newer data.

use core::borrow::Borrow;
use core::fmt;
use core::future::Future;
use core::hash::{BuildHasher, Hash};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock, Weak};
use std::time::Duration;

use crossbeam_utils::CachePadded;
use foldhash::fast::RandomState;
use parking_lot::Mutex;
use quanta::{Clock, Instant};

use crate::arena::NEVER;
use crate::error::{BuildError, LoadError};
use crate::listener::RemovalCause;
use crate::lru::MAX_ENTRIES;
use crate::policy::Policy;
use crate::raw::RawCache;
use crate::single_flight::{CatchUnwind, Flight, WaitFlight, panic_message};
use crate::stats::{self, CacheStats};
use crate::timer_wheel::deadline_tick;

type Weigher<K, V> = Arc<dyn Fn(&K, &V) -> u32 + Send + Sync>;
type Listener<K, V> = Arc<dyn Fn(&K, &V, RemovalCause) + Send + Sync>;
type Removed<K, V> = Vec<(K, V, RemovalCause)>;
type Shards<K, V> = Box<[CachePadded<Mutex<Shard<K, V>>>]>;

/// Operations of a shard between two pushes to the `metrics` facade.
const METRICS_EVERY: u32 = 1024;

struct Shard<K, V> {
    raw: RawCache<K, V, RandomState>,
    inflight: hashbrown::HashMap<K, Arc<Flight<V>>, RandomState>,
    loads_ok: u64,
    loads_failed: u64,
    load_time: Duration,
    published: CacheStats,
    ops: u32,
}

impl<K: Hash + Eq, V> Shard<K, V> {
    fn snapshot(&self) -> CacheStats {
        let s = self.raw.stats;
        CacheStats {
            hits: s.hits,
            misses: s.misses,
            inserts: s.inserts,
            evictions: s.evictions,
            expirations: s.expirations,
            loads_ok: self.loads_ok,
            loads_failed: self.loads_failed,
            total_load_time: self.load_time,
            entries: self.raw.len() as u64,
            weight: self.raw.weight(),
        }
    }

    /// Counts one operation; every `METRICS_EVERY` returns the counter
    /// deltas to publish once the lock is released.
    #[inline]
    fn count_op(&mut self) -> Option<CacheStats> {
        self.ops = self.ops.wrapping_add(1);
        if self.ops % METRICS_EVERY != 0 {
            return None;
        }
        Some(self.take_delta())
    }

    fn take_delta(&mut self) -> CacheStats {
        let now = self.snapshot();
        let delta = now.delta(&self.published);
        self.published = now;
        delta
    }
}

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
}

impl<K, V> Drop for Inner<K, V> {
    fn drop(&mut self) {
        if let Some(sweeper) = self.sweeper.get() {
            sweeper.stop.store(true, Ordering::Release);
            sweeper.thread.unpark();
        }
    }
}

#[derive(Debug)]
struct Sweeper {
    stop: Arc<AtomicBool>,
    thread: std::thread::Thread,
}

impl<K, V> Inner<K, V> {
    #[inline]
    fn now_ns(&self) -> u64 {
        self.clock
            .now()
            .saturating_duration_since(self.origin)
            .as_nanos()
            .min(u128::from(u64::MAX)) as u64
    }

    #[inline]
    fn shard(&self, hash: u64) -> &Mutex<Shard<K, V>> {
        &self.shards[((hash >> 32) & self.shard_mask) as usize]
    }

    fn notify(&self, removed: Removed<K, V>) {
        if let Some(listener) = &self.listener {
            for (k, v, cause) in &removed {
                listener(k, v, *cause);
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

/// What a lookup in `get_or_load` found.
enum Lookup<V> {
    Hit(V),
    Wait(Arc<Flight<V>>),
    Lead(Arc<Flight<V>>),
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

    /// A builder for every option.
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

    fn finish(&self, removed: Removed<K, V>, delta: Option<CacheStats>) {
        if !removed.is_empty() {
            self.inner.notify(removed);
        }
        if let Some(delta) = delta {
            stats::publish(&self.inner.name, &delta);
        }
    }

    /// Returns a clone of the value and marks it used. O(1).
    pub fn get<Q>(&self, key: &Q) -> Option<V>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        let hash = self.inner.hasher.hash_one(key);
        let mut removed = Vec::new();
        let (value, delta) = {
            let mut shard = self.inner.shard(hash).lock();
            let now = self.tick(&mut shard, &mut removed);
            let value = shard.raw.get(hash, key, now).cloned();
            (value, shard.count_op())
        };
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
        let mut removed = Vec::new();
        let delta = {
            let mut shard = self.inner.shard(hash).lock();
            self.store(&mut shard, hash, key, value, weight, ttl, &mut removed);
            shard.count_op()
        };
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
            stats::publish(&self.inner.name, &delta);
            total.add(&snapshot);
        }
        total
    }

    /// Looks `key` up; on a miss registers as leader or joins the flight.
    fn lookup_or_join(&self, hash: u64, key: &K) -> Lookup<V> {
        let mut removed = Vec::new();
        let (lookup, delta) = {
            let mut shard = self.inner.shard(hash).lock();
            let now = self.tick(&mut shard, &mut removed);
            let lookup = if let Some(v) = shard.raw.get(hash, key, now) {
                Lookup::Hit(v.clone())
            } else if let Some(flight) = shard.inflight.get(key) {
                Lookup::Wait(Arc::clone(flight))
            } else {
                let flight = Arc::new(Flight::new());
                shard.inflight.insert(key.clone(), Arc::clone(&flight));
                Lookup::Lead(flight)
            };
            (lookup, shard.count_op())
        };
        self.finish(removed, delta);
        lookup
    }

    /// The leader's last step: drop the flight from the map, count, store
    /// the value (unless superseded), then wake the waiters.
    fn complete_load(
        &self,
        hash: u64,
        key: K,
        flight: &Arc<Flight<V>>,
        result: Result<(V, Option<Duration>), LoadError>,
        elapsed: Duration,
    ) -> Result<V, LoadError> {
        // User code runs below (the weigher, `V::clone`): should it panic,
        // the waiters still get an answer instead of blocking forever.
        let _unwind = CompleteOnUnwind(flight);
        let mut removed = Vec::new();
        let published = {
            let mut shard = self.inner.shard(hash).lock();
            // First, before any user code: the map never keeps a flight
            // whose leader is gone.
            if shard
                .inflight
                .get(&key)
                .is_some_and(|f| Arc::ptr_eq(f, flight))
            {
                shard.inflight.remove(&key);
            }
            shard.load_time += elapsed;
            match result {
                Ok((value, ttl)) => {
                    shard.loads_ok += 1;
                    if !flight.is_superseded() {
                        let stored = value.clone();
                        let weight = self.inner.weigher.as_ref().map_or(1, |w| w(&key, &stored));
                        let ttl = ttl.or(self.inner.default_ttl);
                        self.store(&mut shard, hash, key, stored, weight, ttl, &mut removed);
                    }
                    Ok(value)
                }
                Err(err) => {
                    shard.loads_failed += 1;
                    Err(err)
                }
            }
        };
        flight.complete(published.clone());
        self.finish(removed, None);
        published
    }

    /// Returns the cached value or runs `loader` — once per key however many
    /// threads miss at the same time; the others block until it finishes
    /// and get the same value.
    ///
    /// # Errors
    ///
    /// [`LoadError::Panicked`] if the loader (this caller's or the leader's)
    /// panicked; [`LoadError::Failed`] if this caller waited on a
    /// [`Cache::try_get_or_load`] whose loader failed.
    ///
    /// # Panics
    ///
    /// If the weigher or `V::clone` panics while the loaded value is stored,
    /// the leader's caller sees that panic (as from [`Cache::insert`]); the
    /// callers waiting on it get [`LoadError::Panicked`].
    ///
    /// Blocks the thread while waiting; in async code use
    /// [`Cache::try_get_or_load_async`]. A loader must not load its own key
    /// again (directly or through another loader): it would wait on itself.
    pub fn get_or_load(&self, key: K, loader: impl FnOnce() -> V) -> Result<V, LoadError> {
        self.try_get_or_load(key, || Ok::<V, core::convert::Infallible>(loader()))
    }

    /// Like [`Cache::get_or_load`] with a fallible loader. An error is not
    /// cached; every caller waiting on this load receives a clone of it.
    ///
    /// # Errors
    ///
    /// [`LoadError::Failed`] with the loader's error, [`LoadError::Panicked`]
    /// if it panicked.
    ///
    /// # Panics
    ///
    /// As [`Cache::get_or_load`].
    pub fn try_get_or_load<E>(
        &self,
        key: K,
        loader: impl FnOnce() -> Result<V, E>,
    ) -> Result<V, LoadError>
    where
        E: std::error::Error + Send + Sync + 'static,
    {
        let hash = self.inner.hasher.hash_one(&key);
        match self.lookup_or_join(hash, &key) {
            Lookup::Hit(v) => Ok(v),
            Lookup::Wait(flight) => flight.wait(),
            Lookup::Lead(flight) => {
                let guard = LeaderGuard {
                    cache: self,
                    hash,
                    key: Some(key),
                    flight,
                    started: self.inner.clock.now(),
                };
                let result = match std::panic::catch_unwind(std::panic::AssertUnwindSafe(loader)) {
                    Ok(Ok(v)) => Ok((v, None)),
                    Ok(Err(e)) => Err(LoadError::Failed(Arc::new(e))),
                    Err(payload) => Err(LoadError::Panicked(panic_message(payload.as_ref()))),
                };
                guard.complete(result)
            }
        }
    }

    /// Async single-flight load: like [`Cache::try_get_or_load`], but
    /// waiters await instead of blocking.
    ///
    /// # Errors
    ///
    /// As [`Cache::try_get_or_load`], plus [`LoadError::Cancelled`] for
    /// waiters whose leader's future was dropped before it finished.
    ///
    /// # Cancel safety
    ///
    /// Dropping a waiter's future is harmless. Dropping the leader's future
    /// completes the flight with [`LoadError::Cancelled`] and removes it, so
    /// nobody hangs and the next miss starts a new load.
    pub async fn try_get_or_load_async<E, Fut>(
        &self,
        key: K,
        loader: impl FnOnce() -> Fut,
    ) -> Result<V, LoadError>
    where
        E: std::error::Error + Send + Sync + 'static,
        Fut: Future<Output = Result<V, E>>,
    {
        self.load_async_with_ttl(key, || async move { loader().await.map(|v| (v, None)) })
            .await
    }

    /// The async load used by the tiered cache: the loader also says how
    /// long the value may live (`None` = the default TTL).
    pub(crate) async fn load_async_with_ttl<E, Fut>(
        &self,
        key: K,
        loader: impl FnOnce() -> Fut,
    ) -> Result<V, LoadError>
    where
        E: std::error::Error + Send + Sync + 'static,
        Fut: Future<Output = Result<(V, Option<Duration>), E>>,
    {
        let hash = self.inner.hasher.hash_one(&key);
        match self.lookup_or_join(hash, &key) {
            Lookup::Hit(v) => Ok(v),
            Lookup::Wait(flight) => WaitFlight { flight }.await,
            Lookup::Lead(flight) => {
                let guard = LeaderGuard {
                    cache: self,
                    hash,
                    key: Some(key),
                    flight,
                    started: self.inner.clock.now(),
                };
                let result = match (CatchUnwind {
                    inner: Box::pin(loader()),
                })
                .await
                {
                    Ok(Ok(v)) => Ok(v),
                    Ok(Err(e)) => Err(LoadError::Failed(Arc::new(e))),
                    Err(message) => Err(LoadError::Panicked(message)),
                };
                guard.complete(result)
            }
        }
    }
}

/// Completes a flight with [`LoadError::Panicked`] if the leader unwinds
/// while storing its result (a panicking weigher or `V::clone`). A flight
/// that is already complete ignores it.
struct CompleteOnUnwind<'a, V: Clone>(&'a Flight<V>);

impl<V: Clone> Drop for CompleteOnUnwind<'_, V> {
    fn drop(&mut self) {
        if std::thread::panicking() {
            self.0.complete(Err(LoadError::Panicked(Arc::from(
                "panicked while storing the loaded value",
            ))));
        }
    }
}

/// Completes the flight exactly once: normally through [`LeaderGuard::complete`],
/// or with [`LoadError::Cancelled`] when dropped early.
struct LeaderGuard<'a, K, V>
where
    K: Hash + Eq + Clone + Send + Sync + 'static,
    V: Clone + Send + Sync + 'static,
{
    cache: &'a Cache<K, V>,
    hash: u64,
    key: Option<K>,
    flight: Arc<Flight<V>>,
    started: Instant,
}

impl<K, V> LeaderGuard<'_, K, V>
where
    K: Hash + Eq + Clone + Send + Sync + 'static,
    V: Clone + Send + Sync + 'static,
{
    fn complete(
        mut self,
        result: Result<(V, Option<Duration>), LoadError>,
    ) -> Result<V, LoadError> {
        let elapsed = self
            .cache
            .inner
            .clock
            .now()
            .saturating_duration_since(self.started);
        match self.key.take() {
            Some(key) => self
                .cache
                .complete_load(self.hash, key, &self.flight, result, elapsed),
            None => Err(LoadError::Cancelled),
        }
    }
}

impl<K, V> Drop for LeaderGuard<'_, K, V>
where
    K: Hash + Eq + Clone + Send + Sync + 'static,
    V: Clone + Send + Sync + 'static,
{
    fn drop(&mut self) {
        if let Some(key) = self.key.take() {
            let elapsed = self
                .cache
                .inner
                .clock
                .now()
                .saturating_duration_since(self.started);
            let _ = self.cache.complete_load(
                self.hash,
                key,
                &self.flight,
                Err(LoadError::Cancelled),
                elapsed,
            );
        }
    }
}

/// Configures a [`Cache`].
#[must_use]
pub struct CacheBuilder<K, V> {
    max_capacity: Option<u64>,
    default_ttl: Option<Duration>,
    policy: Policy,
    clock: Option<Clock>,
    weigher: Option<Weigher<K, V>>,
    listener: Option<Listener<K, V>>,
    shards: Option<usize>,
    sweep_interval: Option<Duration>,
    name: Option<String>,
}

impl<K, V> Default for CacheBuilder<K, V> {
    fn default() -> Self {
        Self {
            max_capacity: None,
            default_ttl: None,
            policy: Policy::Lru,
            clock: None,
            weigher: None,
            listener: None,
            shards: None,
            sweep_interval: None,
            name: None,
        }
    }
}

impl<K, V> fmt::Debug for CacheBuilder<K, V> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CacheBuilder")
            .field("max_capacity", &self.max_capacity)
            .field("default_ttl", &self.default_ttl)
            .field("policy", &self.policy)
            .field("shards", &self.shards)
            .field("sweep_interval", &self.sweep_interval)
            .field("name", &self.name)
            .finish_non_exhaustive()
    }
}

impl<K, V> CacheBuilder<K, V>
where
    K: Hash + Eq + Clone + Send + Sync + 'static,
    V: Clone + Send + Sync + 'static,
{
    /// Maximum entries, or maximum total weight with a weigher.
    pub fn max_capacity(mut self, capacity: u64) -> Self {
        self.max_capacity = Some(capacity);
        self
    }

    /// Time to live for `insert` and loaded values.
    pub fn default_ttl(mut self, ttl: Duration) -> Self {
        self.default_ttl = Some(ttl);
        self
    }

    /// Eviction policy (LRU by default).
    pub fn policy(mut self, policy: Policy) -> Self {
        self.policy = policy;
        self
    }

    /// Clock for TTLs and load timing (a `quanta::Clock::mock()` in tests).
    pub fn clock(mut self, clock: Clock) -> Self {
        self.clock = Some(clock);
        self
    }

    /// Weigh entries; capacity then bounds the total weight. A weight of 0
    /// counts as 1, so the capacity also bounds the number of entries.
    pub fn weigher(mut self, weigher: impl Fn(&K, &V) -> u32 + Send + Sync + 'static) -> Self {
        self.weigher = Some(Arc::new(weigher));
        self
    }

    /// Called for every entry that leaves the cache, after the shard lock is
    /// released (so it may call back into the cache).
    pub fn eviction_listener(
        mut self,
        listener: impl Fn(&K, &V, RemovalCause) + Send + Sync + 'static,
    ) -> Self {
        self.listener = Some(Arc::new(listener));
        self
    }

    /// Number of shards (a power of two). Default: 16 × the CPU count,
    /// at most 256, halved until each shard holds at least 64 entries.
    pub fn shards(mut self, shards: usize) -> Self {
        self.shards = Some(shards);
        self
    }

    /// Start a background thread that expires due entries every `interval`,
    /// so memory is released even when nobody touches the cache. The thread
    /// stops when the last handle is dropped.
    pub fn sweep_interval(mut self, interval: Duration) -> Self {
        self.sweep_interval = Some(interval);
        self
    }

    /// The `cache` label on the metrics (default `"default"`).
    pub fn name(mut self, name: impl Into<String>) -> Self {
        self.name = Some(name.into());
        self
    }

    /// Builds the cache.
    ///
    /// # Errors
    ///
    /// [`BuildError::ZeroCapacity`], [`BuildError::ZeroTimeToLive`],
    /// [`BuildError::InvalidShards`], [`BuildError::CapacityTooLarge`],
    /// [`BuildError::ZeroSweepInterval`], or [`BuildError::Sweeper`] if the
    /// sweeper thread cannot be spawned.
    pub fn build(self) -> Result<Cache<K, V>, BuildError> {
        let capacity = self.max_capacity.unwrap_or(0);
        if capacity == 0 {
            return Err(BuildError::ZeroCapacity);
        }
        if self.default_ttl == Some(Duration::ZERO) {
            return Err(BuildError::ZeroTimeToLive);
        }
        if self.sweep_interval == Some(Duration::ZERO) {
            return Err(BuildError::ZeroSweepInterval);
        }
        let shards = match self.shards {
            Some(n) if n == 0 || !n.is_power_of_two() || n as u64 > capacity => {
                return Err(BuildError::InvalidShards(n));
            }
            Some(n) => n,
            None => {
                let cpus = std::thread::available_parallelism().map_or(4, |n| n.get());
                let mut n = (cpus * 16).next_power_of_two().min(256);
                while n > 1 && capacity / (n as u64) < 64 {
                    n /= 2;
                }
                n
            }
        };
        let per_shard = capacity / shards as u64;
        let remainder = capacity % shards as u64;
        let counted = self.weigher.is_none();
        if counted && per_shard + 1 > MAX_ENTRIES {
            return Err(BuildError::CapacityTooLarge {
                requested: per_shard + 1,
                max: MAX_ENTRIES,
            });
        }
        let hasher = RandomState::default();
        let shard_list: Vec<_> = (0..shards as u64)
            .map(|i| {
                let max = per_shard + u64::from(i < remainder);
                let entry_cap = counted.then_some(max as usize);
                CachePadded::new(Mutex::new(Shard {
                    raw: RawCache::new(self.policy, max, entry_cap, hasher),
                    inflight: hashbrown::HashMap::with_hasher(hasher),
                    loads_ok: 0,
                    loads_failed: 0,
                    load_time: Duration::ZERO,
                    published: CacheStats::default(),
                    ops: 0,
                }))
            })
            .collect();
        let clock = self.clock.unwrap_or_default();
        let origin = clock.now();
        let inner = Arc::new(Inner {
            shards: shard_list.into_boxed_slice(),
            shard_mask: shards as u64 - 1,
            hasher,
            clock,
            origin,
            default_ttl: self.default_ttl,
            weigher: self.weigher,
            listener: self.listener,
            name: Arc::from(self.name.as_deref().unwrap_or("default")),
            sweeper: OnceLock::new(),
        });
        if let Some(interval) = self.sweep_interval {
            let stop = Arc::new(AtomicBool::new(false));
            let weak = Arc::downgrade(&inner);
            let thread_stop = Arc::clone(&stop);
            let handle = std::thread::Builder::new()
                .name("keel-cache-sweeper".into())
                .spawn(move || sweep_loop(weak, thread_stop, interval))
                .map_err(|e| BuildError::Sweeper(e.to_string()))?;
            let _ = inner.sweeper.set(Sweeper {
                stop,
                thread: handle.thread().clone(),
            });
        }
        Ok(Cache { inner })
    }
}

fn sweep_loop<K, V>(weak: Weak<Inner<K, V>>, stop: Arc<AtomicBool>, interval: Duration)
where
    K: Hash + Eq + Clone + Send + Sync + 'static,
    V: Clone + Send + Sync + 'static,
{
    loop {
        std::thread::park_timeout(interval);
        if stop.load(Ordering::Acquire) {
            return;
        }
        let Some(inner) = weak.upgrade() else { return };
        Cache { inner }.run_pending_tasks();
    }
}

//! [`LruCache`]: the single-threaded cache — the part an interview asks you
//! to write — with capacity by count or weight, TTL, and an eviction listener.
//!
//! Every operation first advances the timer wheel to "now" (O(1) when the
//! clock tick has not changed), so expired entries are removed and reported
//! by whatever operation comes next, without a maintenance call. To release
//! memory while the cache is idle, call [`LruCache::run_pending_expirations`].

use core::borrow::Borrow;
use core::fmt;
use core::hash::Hash;
use std::time::Duration;

use foldhash::fast::RandomState;
use quanta::{Clock, Instant};

use crate::arena::NEVER;
use crate::error::BuildError;
use crate::listener::{RemovalCause, call_contained};
use crate::options::{Options, common_setters, entry_limit};
use crate::raw::RawCache;
use crate::stats::CacheStats;
use crate::timer_wheel::{TICK_SHIFT, deadline_tick, elapsed_ns};

type Weigher<K, V> = Box<dyn Fn(&K, &V) -> u32>;
type Listener<K, V> = Box<dyn FnMut(&K, &V, RemovalCause)>;

/// A single-threaded cache with O(1) `get`/`peek`/`put`/`remove`, LRU (or
/// SIEVE or S3-FIFO) eviction, optional weights and TTLs.
///
/// # Examples
///
/// ```
/// use keel_cache::LruCache;
///
/// let mut cache = LruCache::new(2).unwrap();
/// cache.put("a", 1);
/// cache.put("b", 2);
/// assert_eq!(cache.get(&"a"), Some(&1)); // "a" is now the most recent
/// cache.put("c", 3); // evicts "b", the least recently used
/// assert_eq!(cache.peek(&"b"), None);
/// let order: Vec<_> = cache.iter().map(|(k, _)| *k).collect();
/// assert_eq!(order, ["c", "a"]);
/// ```
pub struct LruCache<K, V> {
    raw: RawCache<K, V, RandomState>,
    clock: Clock,
    origin: Instant,
    default_ttl: Option<Duration>,
    weigher: Option<Weigher<K, V>>,
    listener: Notifier<K, V>,
}

/// The listener plus its contained-panic count.
struct Notifier<K, V> {
    listener: Option<Listener<K, V>>,
    panics: u64,
}

impl<K, V> Notifier<K, V> {
    /// Calls the listener (if any); a panic is contained and counted.
    fn emit(&mut self, key: &K, value: &V, cause: RemovalCause) {
        if let Some(listener) = self.listener.as_mut()
            && call_contained(|| listener(key, value, cause))
        {
            self.panics += 1;
        }
    }
}

impl<K, V> fmt::Debug for LruCache<K, V> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LruCache")
            .field("len", &self.raw.len())
            .field("weight", &self.raw.weight())
            .field("max_weight", &self.raw.max_weight())
            .field("default_ttl", &self.default_ttl)
            .finish_non_exhaustive()
    }
}

impl<K: Hash + Eq, V> LruCache<K, V> {
    /// An LRU cache holding at most `capacity` entries, no TTL.
    ///
    /// # Errors
    ///
    /// [`BuildError::ZeroCapacity`] if `capacity` is 0.
    pub fn new(capacity: usize) -> Result<Self, BuildError> {
        Self::builder().max_capacity(capacity as u64).build()
    }

    /// A builder for every option.
    pub fn builder() -> LruCacheBuilder<K, V> {
        LruCacheBuilder::default()
    }

    fn now_ns(&self) -> u64 {
        elapsed_ns(&self.clock, self.origin)
    }

    /// Expires what is due. Returns the current time in ns since `origin`
    /// (0 when nothing has a deadline, in which case it is not needed).
    fn tick(&mut self) -> u64 {
        if !self.raw.has_timers() {
            return 0;
        }
        let now = self.now_ns();
        let listener = &mut self.listener;
        self.raw.advance(now, &mut |k, v, cause| {
            listener.emit(&k, &v, cause);
        });
        now
    }

    /// Returns the value and marks it as used (LRU: most recent; SIEVE:
    /// visited; S3-FIFO: counter + 1, at most 3). O(1).
    ///
    /// # Examples
    ///
    /// ```
    /// use keel_cache::LruCache;
    ///
    /// let mut cache = LruCache::new(2).unwrap();
    /// cache.put(1, "one");
    /// cache.put(2, "two");
    /// assert_eq!(cache.get(&1), Some(&"one")); // 1 is now the most recent
    /// cache.put(3, "three"); // evicts 2
    /// assert_eq!(cache.get(&2), None);
    /// ```
    pub fn get<Q>(&mut self, key: &Q) -> Option<&V>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        let now = self.tick();
        let hash = self.raw.hash(key);
        self.raw.get(hash, key, now)
    }

    /// Returns the value without changing its position. O(1). Never returns
    /// an expired entry (it checks the deadline even though it cannot
    /// remove anything through `&self`).
    pub fn peek<Q>(&self, key: &Q) -> Option<&V>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        let hash = self.raw.hash(key);
        let now = if self.raw.has_timers() {
            self.now_ns()
        } else {
            0
        };
        self.raw.peek(hash, key, now)
    }

    /// `true` if a live entry exists for `key` (does not promote).
    pub fn contains_key<Q>(&self, key: &Q) -> bool
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        self.peek(key).is_some()
    }

    /// Inserts with the default TTL (if any). Returns the previous value for
    /// `key`, which the listener also sees as [`RemovalCause::Replaced`].
    /// Evicts what the policy chooses to make room. An entry heavier than
    /// the whole capacity is not stored; the listener sees it as
    /// [`RemovalCause::Evicted`]. O(1) amortised.
    ///
    /// # Examples
    ///
    /// ```
    /// use keel_cache::LruCache;
    ///
    /// let mut cache = LruCache::new(2).unwrap();
    /// assert_eq!(cache.put("a", 1), None);
    /// assert_eq!(cache.put("a", 2), Some(1)); // replaced
    /// assert_eq!(cache.peek(&"a"), Some(&2));
    /// ```
    pub fn put(&mut self, key: K, value: V) -> Option<V> {
        let ttl = self.default_ttl;
        self.put_inner(key, value, ttl)
    }

    /// Inserts with its own time to live, overriding the default. The entry
    /// becomes invisible at the first clock tick (2^20 ns ≈ 1.05 ms) after
    /// `now + ttl`.
    pub fn put_with_ttl(&mut self, key: K, value: V, ttl: Duration) -> Option<V> {
        self.put_inner(key, value, Some(ttl))
    }

    fn put_inner(&mut self, key: K, value: V, ttl: Option<Duration>) -> Option<V> {
        let mut now = self.tick();
        let deadline = match ttl {
            Some(ttl) => {
                if now == 0 {
                    now = self.now_ns();
                    self.raw.advance(now, &mut |_, _, _| {});
                }
                deadline_tick(now, ttl.as_nanos().min(u128::from(u64::MAX)) as u64)
            }
            None => NEVER,
        };
        let weight = self.weigher.as_ref().map_or(1, |w| w(&key, &value));
        let hash = self.raw.hash(&key);
        let listener = &mut self.listener;
        let old = self
            .raw
            .put(hash, key, value, weight, deadline, &mut |k, v, cause| {
                listener.emit(&k, &v, cause);
            });
        let (old_key, old_value) = old?;
        self.listener
            .emit(&old_key, &old_value, RemovalCause::Replaced);
        Some(old_value)
    }

    /// Removes `key`, returning its value; the listener sees
    /// [`RemovalCause::Removed`]. O(1).
    pub fn remove<Q>(&mut self, key: &Q) -> Option<V>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        let now = self.tick();
        let hash = self.raw.hash(key);
        let (k, v) = self.raw.remove(hash, key, now)?;
        self.listener.emit(&k, &v, RemovalCause::Removed);
        Some(v)
    }

    /// Removes every entry; the listener sees each as [`RemovalCause::Removed`].
    pub fn clear(&mut self) {
        self.tick();
        let listener = &mut self.listener;
        self.raw.clear(RemovalCause::Removed, &mut |k, v, cause| {
            listener.emit(&k, &v, cause);
        });
    }

    /// Expires everything that is due now. Operations do this themselves;
    /// call it to release memory while the cache is otherwise idle.
    pub fn run_pending_expirations(&mut self) {
        self.tick();
    }

    /// Remaining time to live of a live entry (`None` if absent; `Some(None)`
    /// if it never expires). Rounded to the wheel's tick.
    pub fn time_to_live<Q>(&self, key: &Q) -> Option<Option<Duration>>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        let hash = self.raw.hash(key);
        let now = self.now_ns();
        let deadline = self.raw.deadline(hash, key, now)?;
        if deadline == NEVER {
            return Some(None);
        }
        let deadline_ns = deadline.saturating_mul(1 << TICK_SHIFT);
        Some(Some(Duration::from_nanos(deadline_ns.saturating_sub(now))))
    }

    /// Entries stored, including any expired since the last operation (the
    /// next operation removes them).
    pub fn len(&self) -> usize {
        self.raw.len()
    }

    /// `true` if nothing is stored.
    pub fn is_empty(&self) -> bool {
        self.raw.len() == 0
    }

    /// Total weight stored (the entry count without a weigher).
    pub fn weight(&self) -> u64 {
        self.raw.weight()
    }

    /// The capacity: entries, or total weight with a weigher.
    pub fn capacity(&self) -> u64 {
        self.raw.max_weight()
    }

    /// Live entries in list order: most recently used first (LRU), newest
    /// first (SIEVE), the small queue then main, each newest first
    /// (S3-FIFO). Does not promote.
    pub fn iter(&self) -> impl Iterator<Item = (&K, &V)> + '_ {
        let now = if self.raw.has_timers() {
            self.now_ns()
        } else {
            0
        };
        self.raw.iter(now)
    }

    /// Counter snapshot (no loads in the single-threaded cache).
    pub fn stats(&self) -> CacheStats {
        CacheStats {
            listener_panics: self.listener.panics,
            ..CacheStats::of_core(&self.raw)
        }
    }

    /// Bytes held by the table and the arena (allocated capacity; excludes
    /// heap data owned by keys and values).
    pub fn allocated_bytes(&self) -> usize {
        self.raw.allocated_bytes()
    }
}

/// Configures an [`LruCache`]; start with [`LruCache::builder`].
///
/// # Examples
///
/// ```
/// use keel_cache::{LruCache, Policy};
///
/// let mut cache = LruCache::builder()
///     .max_capacity(10)
///     .policy(Policy::Sieve)
///     .weigher(|_k: &&str, v: &String| v.len() as u32)
///     .build()
///     .unwrap();
/// cache.put("a", "four".to_string());
/// assert_eq!(cache.weight(), 4);
/// ```
#[must_use]
pub struct LruCacheBuilder<K, V> {
    options: Options,
    weigher: Option<Weigher<K, V>>,
    listener: Option<Listener<K, V>>,
}

impl<K, V> Default for LruCacheBuilder<K, V> {
    fn default() -> Self {
        Self {
            options: Options::default(),
            weigher: None,
            listener: None,
        }
    }
}

impl<K, V> fmt::Debug for LruCacheBuilder<K, V> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LruCacheBuilder")
            .field("options", &self.options)
            .finish_non_exhaustive()
    }
}

impl<K: Hash + Eq, V> LruCacheBuilder<K, V> {
    common_setters!();

    /// Weigh entries (e.g. bytes); capacity then bounds the total weight.
    /// A weight of 0 counts as 1, so the capacity also bounds the number of
    /// entries.
    pub fn weigher(mut self, weigher: impl Fn(&K, &V) -> u32 + 'static) -> Self {
        self.weigher = Some(Box::new(weigher));
        self
    }

    /// Called for every entry that leaves the cache, with the cause.
    pub fn eviction_listener(
        mut self,
        listener: impl FnMut(&K, &V, RemovalCause) + 'static,
    ) -> Self {
        self.listener = Some(Box::new(listener));
        self
    }

    /// Builds the cache.
    ///
    /// # Errors
    ///
    /// [`BuildError::ZeroCapacity`] without a positive capacity,
    /// [`BuildError::ZeroTimeToLive`] for a zero default TTL,
    /// [`BuildError::CapacityTooLarge`] above `u32::MAX - 1` entries.
    pub fn build(self) -> Result<LruCache<K, V>, BuildError> {
        let valid = self.options.validate()?;
        let entry_cap = entry_limit(valid.capacity, self.weigher.is_none())?;
        let clock = valid.clock;
        let origin = clock.now();
        Ok(LruCache {
            raw: RawCache::new(
                valid.policy,
                valid.capacity,
                entry_cap,
                RandomState::default(),
            ),
            clock,
            origin,
            default_ttl: valid.default_ttl,
            weigher: self.weigher,
            listener: Notifier {
                listener: self.listener,
                panics: 0,
            },
        })
    }
}

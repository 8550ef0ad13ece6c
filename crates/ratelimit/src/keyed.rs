//! [`KeyedLimiter`]: one limiter state per key (user id, IP, API key) in a sharded map.
//!
//! # Design
//!
//! * **Sharded map.** `N` shards (a power of two), each a `parking_lot::RwLock` around a
//!   `hashbrown::HashTable`. The key is hashed once with `foldhash`; a few middle bits
//!   (from bit 32) pick the shard — clear of the top 7 bits hashbrown uses for its control
//!   bytes and of the low bits it uses for the bucket — and the same hash finds the slot. This is the design of `dashmap`, minus a second hash and with the
//!   limiter's state stored inline in the slot.
//! * **Slots hold key + state only.** A key on the default quota stores no parameters:
//!   they are the shard's `default` copy, read under the shard lock the lookup already
//!   holds (16 B per `u64` key with GCRA or the token bucket, like governor's
//!   `(key, AtomicU64)`; a slot used to carry its own parameters, ≈ 72 B). Keys with
//!   their own quota (override or resolver) sit in a second, usually empty, table of the
//!   shard with their parameters; a lookup probes it only when it is not empty.
//! * **Hot path, key present:** shared (read) lock on one shard, probe, decide, unlock. The
//!   decision mutates only the slot's own state — an `AtomicU64` CAS for GCRA and the token
//!   bucket, a per-key mutex for the window algorithms — so readers of one shard never
//!   block each other on GCRA / token bucket and never allocate.
//! * **Cold path, new key:** exclusive lock on the shard, re-probe, maybe sweep, insert.
//! * **Quotas per key.** The default quota, per-key overrides (plan tiers) and an optional
//!   resolver closure are consulted only when a key's slot is created; the hot path reads
//!   only the shard it has locked (its `default`) or the pinned slot's own parameters,
//!   never the shared configuration. Changing the default (each shard's `default`) or a
//!   key's quota (moving it between the shard's two tables) at run time happens under the
//!   shard locks and keeps the live keys' state (GCRA / token bucket: the time still
//!   owed; windows: the counts).
//! * **Memory bound.** A slot whose state is *idle* — indistinguishable from a fresh one,
//!   e.g. a GCRA key whose TAT is in the past — can be dropped without changing any future
//!   decision. [`KeyedLimiter::retain_recent`] sweeps every shard; the automatic
//!   [`CleanupPolicy`] sweeps a shard when an insert finds it has doubled since the last
//!   sweep (amortized O(1) per insert, memory ≤ 2 × live keys + slack), and an optional
//!   hard cap evicts even active keys (counted, documented as a trade-off: a forgotten key
//!   starts fresh, i.e. may get extra requests).

use std::borrow::Borrow;
use std::collections::HashMap;
use std::fmt;
use std::hash::{BuildHasher, Hash};
use std::sync::atomic::{AtomicBool, Ordering};

use crossbeam_utils::CachePadded;
use foldhash::fast::RandomState;
use hashbrown::HashTable;
use parking_lot::RwLock;
use quanta::Clock;

use crate::clock::Timer;
use crate::error::BuildError;
use crate::{Algorithm, CheckError, Decision, LimiterMetrics, Quota, RatelimitStats};

/// A function that picks a quota for a new key (e.g. by plan tier); `None` → the default.
pub type QuotaResolver<K> = Box<dyn Fn(&K) -> Option<Quota> + Send + Sync>;

/// When a [`KeyedLimiter`] removes idle keys by itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CleanupPolicy {
    /// A shard is swept (idle keys removed) when an insert finds it holding at least this
    /// many keys *and* twice as many as after its last sweep. `None`: never automatically.
    pub sweep_at_shard_len: Option<usize>,
    /// A hard cap on the total number of keys, never exceeded. Each shard holds at most
    /// `max_keys / shards`; when a sweep cannot bring a shard under that, active keys are
    /// evicted (counted in [`RatelimitStats::keys_evicted_active`]). A cap below the shard
    /// count lowers the shard count to `max_keys` rounded down to a power of two, so every
    /// shard keeps at least one key. `Some(0)` is rejected by `build()`
    /// ([`BuildError::ZeroMaxKeys`]). `None`: no cap.
    pub max_keys: Option<usize>,
}

/// The hard key cap of [`CleanupPolicy::default`]: 1 048 576 keys. Far above what idle
/// sweeps leave for honest traffic, it bounds memory under a flood of distinct keys that
/// are all active at once (e.g. random API keys or header values through the middleware).
pub const DEFAULT_MAX_KEYS: usize = 1 << 20;

impl Default for CleanupPolicy {
    /// Sweep shards from 512 keys each; hard cap at [`DEFAULT_MAX_KEYS`].
    fn default() -> Self {
        Self {
            sweep_at_shard_len: Some(512),
            max_keys: Some(DEFAULT_MAX_KEYS),
        }
    }
}

impl CleanupPolicy {
    /// Only explicit [`KeyedLimiter::retain_recent`] calls remove keys; no cap (memory grows
    /// with the number of keys until you call it).
    pub fn manual() -> Self {
        Self {
            sweep_at_shard_len: None,
            max_keys: None,
        }
    }

    /// The default sweeps plus a hard cap on the number of keys (at least 1: a cap of 0 is
    /// a [`BuildError::ZeroMaxKeys`] at `build()`).
    pub fn with_max_keys(max_keys: usize) -> Self {
        Self {
            max_keys: Some(max_keys),
            ..Self::default()
        }
    }
}

/// A key on the default quota: the key and its state, nothing else (16 B for a `u64` key
/// and GCRA); the parameters are the shard's [`Shard::default`].
struct Slot<K, A: Algorithm> {
    key: K,
    state: A::State,
}

/// A key with its own quota (an override or the resolver's answer) and its parameters.
struct PinnedSlot<K, A: Algorithm> {
    slot: Slot<K, A>,
    algorithm: A,
}

struct Shard<K, A: Algorithm> {
    /// The default quota's parameters, read under the shard lock already held; a quota
    /// change rewrites them in every shard.
    default: A,
    /// Keys on the default quota.
    table: HashTable<Slot<K, A>>,
    /// Keys with their own quota (usually few; probed only when not empty).
    pinned: HashTable<PinnedSlot<K, A>>,
    next_sweep: usize,
}

impl<K, A: Algorithm> Shard<K, A> {
    /// `key`'s parameters and slot, if it has state.
    #[inline]
    fn find<Q>(&self, hash: u64, key: &Q) -> Option<(&A, &Slot<K, A>)>
    where
        K: Borrow<Q>,
        Q: Eq + ?Sized,
    {
        if let Some(slot) = self.table.find(hash, |s| s.key.borrow() == key) {
            return Some((&self.default, slot));
        }
        if self.pinned.is_empty() {
            return None;
        }
        self.pinned
            .find(hash, |p| p.slot.key.borrow() == key)
            .map(|p| (&p.algorithm, &p.slot))
    }

    fn len(&self) -> usize {
        self.table.len() + self.pinned.len()
    }

    /// Drops idle slots; returns how many.
    fn retain_active(&mut self, now: u64) -> usize {
        let before = self.len();
        let default = &self.default;
        self.table.retain(|s| !default.is_idle(&s.state, now));
        self.pinned
            .retain(|p| !p.algorithm.is_idle(&p.slot.state, now));
        before - self.len()
    }
}

/// The most shards a [`KeyedLimiter`] accepts: 4 096 (each is a cache-padded lock and an
/// empty table, ≈ 128 B, so ≈ 512 KiB before the first key). More shards than cores × a
/// few hundred buys no concurrency.
pub const MAX_SHARDS: usize = 1 << 12;

/// One shard on its own cache line(s), so two shards' locks never share one.
type PaddedShard<K, A> = CachePadded<RwLock<Shard<K, A>>>;

struct QuotaConfig<K> {
    default: Quota,
    overrides: HashMap<K, Quota, RandomState>,
}

/// A thread-safe, memory-bounded map from keys to rate-limiter states of algorithm `A`.
///
/// ```
/// use std::time::Duration;
/// use keel_ratelimit::{Gcra, KeyedLimiter, Quota};
///
/// let (clock, mock) = quanta::Clock::mock();
/// let limiter = KeyedLimiter::<String, Gcra>::with_clock(Quota::per_second(2)?, clock);
/// limiter.set_quota_for("pro-user".to_string(), Quota::per_second(100)?); // a plan tier
///
/// assert!(limiter.check("alice").allowed);
/// assert!(limiter.check("alice").allowed);
/// assert!(!limiter.check("alice").allowed);
/// assert_eq!(limiter.peek("pro-user").remaining, 99);   // peek consumes nothing
/// assert_eq!(limiter.len(), 1);                         // peek did not insert either
///
/// mock.increment(Duration::from_secs(1));               // alice is fully refilled …
/// assert_eq!(limiter.retain_recent(), 1);               // … so her state can go
/// assert_eq!(limiter.len(), 0);
/// # Ok::<(), keel_ratelimit::QuotaError>(())
/// ```
pub struct KeyedLimiter<K, A: Algorithm> {
    shards: Box<[PaddedShard<K, A>]>,
    /// `shards - 1` (a power of two minus one).
    mask: usize,
    hasher: RandomState,
    timer: Timer,
    config: RwLock<QuotaConfig<K>>,
    has_overrides: AtomicBool,
    resolver: Option<QuotaResolver<K>>,
    cleanup: CleanupPolicy,
    sweep_at: usize,
    max_per_shard: usize,
    metrics: LimiterMetrics,
}

impl<K, A: Algorithm> fmt::Debug for KeyedLimiter<K, A> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KeyedLimiter")
            .field("algorithm", &A::NAME)
            .field("default", &self.config.read().default)
            .field("shards", &self.shards.len())
            .field("cleanup", &self.cleanup)
            .finish_non_exhaustive()
    }
}

/// Builder for [`KeyedLimiter`].
#[must_use]
pub struct KeyedLimiterBuilder<K, A: Algorithm> {
    quota: Option<Quota>,
    clock: Option<Clock>,
    shards: usize,
    cleanup: CleanupPolicy,
    resolver: Option<QuotaResolver<K>>,
    name: Option<String>,
    _algorithm: std::marker::PhantomData<A>,
}

impl<K, A: Algorithm> fmt::Debug for KeyedLimiterBuilder<K, A> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KeyedLimiterBuilder")
            .field("quota", &self.quota)
            .field("shards", &self.shards)
            .field("cleanup", &self.cleanup)
            .field("resolver", &self.resolver.is_some())
            .finish_non_exhaustive()
    }
}

impl<K, A> KeyedLimiterBuilder<K, A>
where
    K: Hash + Eq + Send + Sync + 'static,
    A: Algorithm,
{
    /// The default quota for every key (required); overrides and the resolver can give
    /// single keys another one.
    pub fn quota(mut self, quota: Quota) -> Self {
        self.quota = Some(quota);
        self
    }

    /// The clock (default: `quanta::Clock::new()`; `quanta::Clock::mock()` in tests).
    pub fn clock(mut self, clock: Clock) -> Self {
        self.clock = Some(clock);
        self
    }

    /// Number of shards, `1..=`[`MAX_SHARDS`], rounded up to a power of two (default 64);
    /// lowered when a hard key cap is smaller (see [`CleanupPolicy::max_keys`]).
    pub fn shards(mut self, shards: usize) -> Self {
        self.shards = shards;
        self
    }

    /// The automatic cleanup policy (default: [`CleanupPolicy::default`]).
    pub fn cleanup(mut self, cleanup: CleanupPolicy) -> Self {
        self.cleanup = cleanup;
        self
    }

    /// A resolver called once when a key's state is created, e.g. to look up its plan tier.
    /// Explicit [`KeyedLimiter::set_quota_for`] overrides win over it. It runs under a
    /// shard's write lock, so keep it cheap (a map lookup, not a database query).
    pub fn quota_resolver(
        mut self,
        resolver: impl Fn(&K) -> Option<Quota> + Send + Sync + 'static,
    ) -> Self {
        self.resolver = Some(Box::new(resolver));
        self
    }

    /// The `limiter` label of this limiter's metrics (default: the algorithm's name).
    pub fn name(mut self, name: impl Into<String>) -> Self {
        self.name = Some(name.into());
        self
    }

    /// Builds the limiter.
    ///
    /// # Errors
    /// [`BuildError::MissingQuota`] when no quota was given; [`BuildError::ZeroShards`] /
    /// [`BuildError::TooManyShards`] for a shard count outside `1..=`[`MAX_SHARDS`];
    /// [`BuildError::ZeroMaxKeys`] for a hard cap of 0 keys.
    pub fn build(self) -> Result<KeyedLimiter<K, A>, BuildError> {
        let quota = self.quota.ok_or(BuildError::MissingQuota)?;
        if self.shards == 0 {
            return Err(BuildError::ZeroShards);
        }
        if self.shards > MAX_SHARDS {
            return Err(BuildError::TooManyShards {
                requested: self.shards,
                max: MAX_SHARDS,
            });
        }
        if self.cleanup.max_keys == Some(0) {
            return Err(BuildError::ZeroMaxKeys);
        }
        Ok(self.assemble(quota))
    }

    /// Builds from validated settings (`shards` in `1..=MAX_SHARDS`, `max_keys` ≥ 1).
    fn assemble(self, quota: Quota) -> KeyedLimiter<K, A> {
        let mut shards = self.shards.clamp(1, MAX_SHARDS).next_power_of_two();
        if let Some(max) = self.cleanup.max_keys {
            // Every shard must be able to hold a key: at most `max` shards (a power of two,
            // rounded down), so `shards × (max / shards) ≤ max` with `max / shards ≥ 1`.
            let fit = 1usize << max.max(1).ilog2();
            shards = shards.min(fit);
        }
        let sweep_at = self.cleanup.sweep_at_shard_len.unwrap_or(usize::MAX).max(1);
        let max_per_shard = self
            .cleanup
            .max_keys
            // Rounded down per shard (at least 1, as `shards ≤ max`): the total never
            // exceeds `max_keys`.
            .map_or(usize::MAX, |max| (max / shards).max(1));
        let first_sweep = sweep_at.min(max_per_shard);
        KeyedLimiter {
            shards: (0..shards)
                .map(|_| {
                    CachePadded::new(RwLock::new(Shard {
                        default: A::from_quota(quota),
                        table: HashTable::new(),
                        pinned: HashTable::new(),
                        next_sweep: first_sweep,
                    }))
                })
                .collect(),
            mask: shards - 1,
            hasher: RandomState::default(),
            timer: Timer::new(self.clock.unwrap_or_default()),
            config: RwLock::new(QuotaConfig {
                default: quota,
                overrides: HashMap::default(),
            }),
            has_overrides: AtomicBool::new(false),
            resolver: self.resolver,
            cleanup: self.cleanup,
            sweep_at,
            max_per_shard,
            metrics: LimiterMetrics::new(self.name.as_deref().unwrap_or(A::NAME)),
        }
    }
}

impl<K, A> KeyedLimiter<K, A>
where
    K: Hash + Eq + Send + Sync + 'static,
    A: Algorithm,
{
    /// Shorthand for `builder().quota(quota).build()`: `quota` for every key, on the real
    /// clock, default shards and cleanup; infallible because the quota is given.
    ///
    /// ```
    /// use keel_ratelimit::{Gcra, KeyedLimiter, Quota};
    ///
    /// let limiter = KeyedLimiter::<u64, Gcra>::new(Quota::per_second(1)?);
    /// assert!(limiter.check(&7).allowed);
    /// # Ok::<(), keel_ratelimit::QuotaError>(())
    /// ```
    pub fn new(quota: Quota) -> Self {
        Self::builder().assemble(quota)
    }

    /// Shorthand for `builder().quota(quota).clock(clock).build()`.
    pub fn with_clock(quota: Quota, clock: Clock) -> Self {
        Self::builder().clock(clock).assemble(quota)
    }

    /// A builder: `.quota(..)` (required), `.clock(..)`, `.shards(..)`, `.cleanup(..)`,
    /// `.quota_resolver(..)`, `.name(..)`, then `.build()`.
    ///
    /// ```
    /// use keel_ratelimit::{CleanupPolicy, KeyedLimiter, Quota, TokenBucket};
    ///
    /// let (clock, _mock) = quanta::Clock::mock();
    /// let limiter = KeyedLimiter::<String, TokenBucket>::builder()
    ///     .quota(Quota::per_minute(60)?)
    ///     .clock(clock)
    ///     .cleanup(CleanupPolicy::with_max_keys(100_000))
    ///     .quota_resolver(|key: &String| key.starts_with("pro:").then(|| Quota::per_minute(600).ok()).flatten())
    ///     .build()?;
    /// assert_eq!(limiter.quota_for("pro:alice").limit(), 600);
    /// assert_eq!(limiter.quota_for("bob").limit(), 60);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn builder() -> KeyedLimiterBuilder<K, A> {
        KeyedLimiterBuilder {
            quota: None,
            clock: None,
            shards: 64,
            cleanup: CleanupPolicy::default(),
            resolver: None,
            name: None,
            _algorithm: std::marker::PhantomData,
        }
    }

    #[inline]
    fn shard(&self, hash: u64) -> &RwLock<Shard<K, A>> {
        // Bits 32.. pick the shard: hashbrown uses the top 7 bits as the control byte and
        // the low bits as the bucket index inside the shard, so these are independent of
        // both (up to 2^32 buckets per shard, and MAX_SHARDS ≤ 2^12 uses bits 32..44).
        &self.shards[(hash >> 32) as usize & self.mask]
    }

    #[inline]
    fn decide(
        &self,
        algorithm: &A,
        state: &A::State,
        now: u64,
        cost: u32,
    ) -> Result<Decision, CheckError> {
        let capacity = algorithm.capacity();
        if cost > capacity {
            return Err(CheckError::InsufficientCapacity { cost, capacity });
        }
        if cost == 0 {
            return Ok(algorithm.peek(state, now));
        }
        let decision = algorithm.check(state, now, cost);
        self.metrics.record(&decision);
        Ok(decision)
    }

    /// Decides one unit-cost request for `key`, creating its state on first use.
    ///
    /// ```
    /// use std::time::Duration;
    /// use keel_ratelimit::{Gcra, KeyedLimiter, Quota};
    ///
    /// let (clock, _mock) = quanta::Clock::mock();
    /// let limiter = KeyedLimiter::<String, Gcra>::with_clock(Quota::per_minute(1)?, clock);
    /// assert!(limiter.check("alice").allowed);
    /// assert_eq!(limiter.check("alice").retry_after, Some(Duration::from_secs(60)));
    /// assert!(limiter.check("bob").allowed);
    /// assert_eq!(limiter.len(), 2);
    /// # Ok::<(), keel_ratelimit::QuotaError>(())
    /// ```
    #[inline]
    pub fn check<Q>(&self, key: &Q) -> Decision
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized + ToOwned<Owned = K>,
    {
        let now = self.timer.now();
        // Every quota has a capacity of at least 1, so a unit cost needs no validation.
        let Ok(decision) = self.with_slot(key, now, |algorithm, state| {
            let decision = algorithm.check(state, now, 1);
            self.metrics.record(&decision);
            Ok::<_, std::convert::Infallible>(decision)
        });
        decision
    }

    /// Decides a request of `cost` units for `key`; a cost of 0 consumes nothing.
    ///
    /// # Errors
    /// [`CheckError::InsufficientCapacity`] when `cost` exceeds the key's limit or burst;
    /// such a request creates no state.
    ///
    /// ```
    /// use keel_ratelimit::{CheckError, KeyedLimiter, Quota, SlidingLog};
    ///
    /// let (clock, _mock) = quanta::Clock::mock();
    /// let limiter = KeyedLimiter::<String, SlidingLog>::with_clock(Quota::per_minute(10)?, clock);
    /// assert_eq!(limiter.check_n("upload", 8)?.remaining, 2);
    /// assert!(!limiter.check_n("upload", 3)?.allowed);
    /// assert_eq!(
    ///     limiter.check_n("other", 11),
    ///     Err(CheckError::InsufficientCapacity { cost: 11, capacity: 10 })
    /// );
    /// assert_eq!(limiter.len(), 1); // the impossible request created no state
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    #[inline]
    pub fn check_n<Q>(&self, key: &Q, cost: u32) -> Result<Decision, CheckError>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized + ToOwned<Owned = K>,
    {
        let now = self.timer.now();
        self.with_slot(key, now, |algorithm, state| {
            self.decide(algorithm, state, now, cost)
        })
    }

    /// Runs `f` on `key`'s slot, creating the slot if needed (and keeping it only if `f`
    /// succeeded).
    #[inline]
    fn with_slot<Q, R, E>(
        &self,
        key: &Q,
        now: u64,
        f: impl FnOnce(&A, &A::State) -> Result<R, E>,
    ) -> Result<R, E>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized + ToOwned<Owned = K>,
    {
        let hash = self.hasher.hash_one(key);
        let shard = self.shard(hash);
        {
            let guard = shard.read();
            if let Some((algorithm, slot)) = guard.find(hash, key) {
                return f(algorithm, &slot.state);
            }
        }
        self.insert_with(shard, hash, key, now, f)
    }

    #[cold]
    #[inline(never)]
    fn insert_with<Q, R, E>(
        &self,
        shard: &RwLock<Shard<K, A>>,
        hash: u64,
        key: &Q,
        now: u64,
        f: impl FnOnce(&A, &A::State) -> Result<R, E>,
    ) -> Result<R, E>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized + ToOwned<Owned = K>,
    {
        let mut guard = shard.write();
        if let Some((algorithm, slot)) = guard.find(hash, key) {
            return f(algorithm, &slot.state);
        }
        let owned = key.to_owned();
        let (algorithm, pinned) = self.algorithm_for(&owned);
        let algorithm = if pinned { algorithm } else { guard.default };
        let slot = Slot {
            state: algorithm.new_state(now),
            key: owned,
        };
        // Decide before inserting: a request that can never fit does not create a key.
        let result = f(&algorithm, &slot.state)?;
        if guard.len() >= guard.next_sweep {
            self.sweep(&mut guard, now);
        }
        if pinned {
            guard
                .pinned
                .insert_unique(hash, PinnedSlot { slot, algorithm }, |p| {
                    self.hasher.hash_one(&p.slot.key)
                });
        } else {
            guard
                .table
                .insert_unique(hash, slot, |s| self.hasher.hash_one(&s.key));
        }
        Ok(result)
    }

    /// Parameters for a key whose slot is being created. Reads the configuration under
    /// the caller's shard lock, so a concurrent quota change either sees this slot when it
    /// sweeps the shard, or was published before this read.
    fn algorithm_for(&self, key: &K) -> (A, bool) {
        let config = self.config.read();
        if self.has_overrides.load(Ordering::Acquire) {
            if let Some(quota) = config.overrides.get(key) {
                return (A::from_quota(*quota), true);
            }
        }
        if let Some(quota) = self.resolver.as_ref().and_then(|resolve| resolve(key)) {
            return (A::from_quota(quota), true);
        }
        (A::from_quota(config.default), false)
    }

    /// Removes idle slots of one shard; evicts active ones if the hard cap requires it.
    fn sweep(&self, shard: &mut Shard<K, A>, now: u64) {
        let removed = shard.retain_active(now);
        if shard.len() >= self.max_per_shard {
            // Still over the cap: evict active keys down to three quarters of it, keys on
            // the default quota first.
            let mut excess = shard.len() - self.max_per_shard * 3 / 4;
            let evicted = excess;
            let mut evict = |_: &mut _| {
                if excess > 0 {
                    excess -= 1;
                    false
                } else {
                    true
                }
            };
            shard.table.retain(|s| evict(s));
            shard.pinned.retain(|p| evict(&mut p.slot));
            self.metrics.record_evicted_active(evicted as u64);
        }
        self.metrics.record_removed(removed as u64);
        let len = shard.len();
        shard.next_sweep = len
            .saturating_mul(2)
            .max(self.sweep_at)
            .min(self.max_per_shard);
    }

    /// The decision a unit-cost request for `key` would get now, consuming nothing and
    /// creating no state.
    pub fn peek<Q>(&self, key: &Q) -> Decision
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized + ToOwned<Owned = K>,
    {
        let now = self.timer.now();
        let hash = self.hasher.hash_one(key);
        {
            let guard = self.shard(hash).read();
            if let Some((algorithm, slot)) = guard.find(hash, key) {
                return algorithm.peek(&slot.state, now);
            }
        }
        let (algorithm, _) = self.algorithm_for(&key.to_owned());
        algorithm.peek(&algorithm.new_state(now), now)
    }

    /// The quota that applies to `key` now (override, resolver or default).
    pub fn quota_for<Q>(&self, key: &Q) -> Quota
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized + ToOwned<Owned = K>,
    {
        let hash = self.hasher.hash_one(key);
        {
            let guard = self.shard(hash).read();
            if let Some((algorithm, _)) = guard.find(hash, key) {
                return algorithm.quota();
            }
        }
        self.algorithm_for(&key.to_owned()).0.quota()
    }

    /// Changes the default quota at run time. Keys without an override switch to it at
    /// once, keeping their state.
    pub fn set_quota(&self, quota: Quota) {
        self.config.write().default = quota;
        let algorithm = A::from_quota(quota);
        for shard in self.shards.iter() {
            shard.write().default = algorithm;
        }
    }

    /// The default quota.
    pub fn default_quota(&self) -> Quota {
        self.config.read().default
    }

    /// Gives `key` its own quota (e.g. its plan tier), now and whenever its state is
    /// recreated; the key keeps its current state. Overrides are configuration: they stay
    /// until [`clear_quota_for`](Self::clear_quota_for).
    pub fn set_quota_for(&self, key: K, quota: Quota)
    where
        K: Clone,
    {
        let hash = self.hasher.hash_one(&key);
        {
            let mut config = self.config.write();
            config.overrides.insert(key.clone(), quota);
            self.has_overrides.store(true, Ordering::Release);
        }
        let algorithm = A::from_quota(quota);
        let mut guard = self.shard(hash).write();
        if let Some(pinned) = guard.pinned.find_mut(hash, |p| p.slot.key == key) {
            pinned.algorithm = algorithm;
        } else if let Ok(entry) = guard.table.find_entry(hash, |s| s.key == key) {
            // Moves to the pinned table with its state.
            let (slot, _) = entry.remove();
            guard
                .pinned
                .insert_unique(hash, PinnedSlot { slot, algorithm }, |p| {
                    self.hasher.hash_one(&p.slot.key)
                });
        }
    }

    /// Removes `key`'s override: it goes back to the resolver's or the default quota.
    /// Returns the removed override.
    pub fn clear_quota_for<Q>(&self, key: &Q) -> Option<Quota>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized + ToOwned<Owned = K>,
    {
        let removed = {
            let mut config = self.config.write();
            let removed = config.overrides.remove(key);
            if config.overrides.is_empty() {
                self.has_overrides.store(false, Ordering::Release);
            }
            removed
        };
        let hash = self.hasher.hash_one(key);
        let mut guard = self.shard(hash).write();
        if let Ok(entry) = guard
            .pinned
            .find_entry(hash, |p| p.slot.key.borrow() == key)
        {
            let (PinnedSlot { slot, .. }, _) = entry.remove();
            // Keeps its state: the resolver's quota (still pinned) or the default.
            match self
                .resolver
                .as_ref()
                .and_then(|resolve| resolve(&slot.key))
            {
                Some(quota) => {
                    let algorithm = A::from_quota(quota);
                    guard
                        .pinned
                        .insert_unique(hash, PinnedSlot { slot, algorithm }, |p| {
                            self.hasher.hash_one(&p.slot.key)
                        });
                }
                None => {
                    guard
                        .table
                        .insert_unique(hash, slot, |s| self.hasher.hash_one(&s.key));
                }
            }
        }
        removed
    }

    /// Number of keys with state.
    pub fn len(&self) -> usize {
        self.shards.iter().map(|s| s.read().len()).sum()
    }

    /// `true` when no key has state.
    pub fn is_empty(&self) -> bool {
        self.shards.iter().all(|s| s.read().len() == 0)
    }

    /// Removes every key whose state is indistinguishable from fresh (GCRA: TAT in the
    /// past; token bucket: full; windows: nothing counted any more). Future decisions are
    /// unchanged. Returns how many keys were removed. O(keys), one shard locked at a time.
    pub fn retain_recent(&self) -> usize {
        let now = self.timer.now();
        let mut removed = 0;
        for shard in self.shards.iter() {
            let mut guard = shard.write();
            removed += guard.retain_active(now);
            let len = guard.len();
            guard.next_sweep = len
                .saturating_mul(2)
                .max(self.sweep_at)
                .min(self.max_per_shard);
        }
        self.metrics.record_removed(removed as u64);
        removed
    }

    /// Releases the memory of removed keys (after a [`retain_recent`](Self::retain_recent)).
    pub fn shrink_to_fit(&self) {
        for shard in self.shards.iter() {
            let mut guard = shard.write();
            guard.table.shrink_to_fit(|s| self.hasher.hash_one(&s.key));
            guard
                .pinned
                .shrink_to_fit(|p| self.hasher.hash_one(&p.slot.key));
        }
    }

    /// Number of slots allocated across shards (≥ [`len`](Self::len)).
    pub fn capacity(&self) -> usize {
        self.shards
            .iter()
            .map(|s| {
                let guard = s.read();
                guard.table.capacity() + guard.pinned.capacity()
            })
            .sum()
    }

    /// A snapshot of the counters.
    ///
    /// ```
    /// use keel_ratelimit::{Gcra, KeyedLimiter, Quota};
    ///
    /// let (clock, _mock) = quanta::Clock::mock();
    /// let limiter = KeyedLimiter::<u32, Gcra>::with_clock(Quota::per_second(1)?, clock);
    /// limiter.check(&1);
    /// limiter.check(&1);
    /// limiter.check(&2);
    /// let stats = limiter.stats();
    /// assert_eq!((stats.allowed, stats.denied), (2, 1));
    /// # Ok::<(), keel_ratelimit::QuotaError>(())
    /// ```
    pub fn stats(&self) -> RatelimitStats {
        self.metrics.snapshot()
    }

    /// The cleanup policy.
    pub fn cleanup_policy(&self) -> CleanupPolicy {
        self.cleanup
    }
}

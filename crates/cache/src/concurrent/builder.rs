//! [`CacheBuilder`]: the shared [`Options`] plus what only the concurrent
//! cache has (shards, the sweeper thread, the metrics name), and the
//! sweeper itself.

use core::fmt;
use core::hash::Hash;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, OnceLock, Weak};
use std::time::Duration;

use crossbeam_utils::CachePadded;
use foldhash::fast::RandomState;
use parking_lot::Mutex;

use super::shard::Shard;
use super::{Cache, Inner, Listener, Weigher};
use crate::error::BuildError;
use crate::listener::RemovalCause;
use crate::options::{Options, common_setters, entry_limit};
use crate::raw::RawCache;

/// Configures a [`Cache`]; start with [`Cache::builder`].
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use keel_cache::{Cache, Policy};
///
/// let (clock, mock) = quanta::Clock::mock();
/// let cache: Cache<u64, u64> = Cache::builder()
///     .max_capacity(1_000)
///     .policy(Policy::Sieve)
///     .default_ttl(Duration::from_secs(1))
///     .clock(clock)
///     .build()
///     .unwrap();
/// cache.insert(1, 10);
/// mock.increment(Duration::from_secs(2));
/// assert_eq!(cache.get(&1), None);
/// ```
#[must_use]
pub struct CacheBuilder<K, V> {
    options: Options,
    weigher: Option<Weigher<K, V>>,
    listener: Option<Listener<K, V>>,
    shards: Option<usize>,
    sweep_interval: Option<Duration>,
    name: Option<String>,
}

impl<K, V> Default for CacheBuilder<K, V> {
    fn default() -> Self {
        Self {
            options: Options::default(),
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
            .field("options", &self.options)
            .field("shards", &self.shards)
            .field("sweep_interval", &self.sweep_interval)
            .field("name", &self.name)
            .finish_non_exhaustive()
    }
}

impl<K, V> CacheBuilder<K, V> {
    /// The largest shard count [`CacheBuilder::shards`] accepts (4,096).
    /// Each shard costs ≈ 2 KiB before the first insert (lock, counters,
    /// 1.5 KiB of timer-wheel heads), so this caps the empty cache at
    /// ≈ 8 MiB; the default picks at most 256. More shards than cores × 16
    /// buys no extra parallelism.
    pub const MAX_SHARDS: usize = 4096;

    /// The shortest sweep interval; shorter ones are raised to it (10 ms).
    /// A sweep only releases memory — reads never return an expired entry
    /// whatever the interval — and the wheel's resolution is ≈ 1 ms, so
    /// sweeping more often burns a core for nothing (a 1 ns interval kept a
    /// sweeper at ≈ 39 % of a core on an idle cache).
    pub const MIN_SWEEP_INTERVAL: Duration = Duration::from_millis(10);
}

impl<K, V> CacheBuilder<K, V>
where
    K: Hash + Eq + Clone + Send + Sync + 'static,
    V: Clone + Send + Sync + 'static,
{
    common_setters!();

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

    /// Number of shards: a power of two, at most the capacity and at most
    /// [`CacheBuilder::MAX_SHARDS`]. Default: 16 × the CPU count, at most
    /// 256, halved until each shard holds at least 64 entries.
    pub fn shards(mut self, shards: usize) -> Self {
        self.shards = Some(shards);
        self
    }

    /// Start a background thread that expires due entries every `interval`,
    /// so memory is released even when nobody touches the cache. The thread
    /// stops when the last handle is dropped. Zero is rejected; anything
    /// below [`CacheBuilder::MIN_SWEEP_INTERVAL`] (10 ms) is raised to it.
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
    /// [`BuildError::InvalidShards`], [`BuildError::TooManyShards`],
    /// [`BuildError::CapacityTooLarge`],
    /// [`BuildError::ZeroSweepInterval`], or [`BuildError::Sweeper`] if the
    /// sweeper thread cannot be spawned.
    pub fn build(self) -> Result<Cache<K, V>, BuildError> {
        let valid = self.options.validate()?;
        let capacity = valid.capacity;
        if self.sweep_interval == Some(Duration::ZERO) {
            return Err(BuildError::ZeroSweepInterval);
        }
        let sweep_interval = self.sweep_interval.map(|i| i.max(Self::MIN_SWEEP_INTERVAL));
        let shards = match self.shards {
            Some(n) if n > Self::MAX_SHARDS => {
                return Err(BuildError::TooManyShards {
                    requested: n,
                    max: Self::MAX_SHARDS,
                });
            }
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
        // The largest shard holds one entry of the remainder.
        entry_limit(per_shard + 1, counted)?;
        let hasher = RandomState::default();
        let shard_list: Vec<_> = (0..shards as u64)
            .map(|i| {
                let max = per_shard + u64::from(i < remainder);
                let entry_cap = counted.then_some(max as usize);
                CachePadded::new(Mutex::new(Shard::new(
                    RawCache::new(valid.policy, max, entry_cap, hasher),
                    hasher,
                )))
            })
            .collect();
        let clock = valid.clock;
        let origin = clock.now();
        let inner = Arc::new(Inner {
            shards: shard_list.into_boxed_slice(),
            shard_mask: shards as u64 - 1,
            hasher,
            clock,
            origin,
            default_ttl: valid.default_ttl,
            weigher: self.weigher,
            listener: self.listener,
            name: Arc::from(self.name.as_deref().unwrap_or("default")),
            sweeper: OnceLock::new(),
            listener_panics: AtomicU64::new(0),
            sweep_interval,
        });
        if let Some(interval) = sweep_interval {
            let stop = Arc::new(AtomicBool::new(false));
            let weak = Arc::downgrade(&inner);
            let thread_stop = Arc::clone(&stop);
            let handle = std::thread::Builder::new()
                .name("keel-cache-sweeper".into())
                .spawn(move || sweep_loop(weak, thread_stop, interval))
                .map_err(BuildError::Sweeper)?;
            let _ = inner.sweeper.set(Sweeper {
                stop,
                thread: handle.thread().clone(),
            });
        }
        Ok(Cache { inner })
    }
}

/// The handle `Inner`'s drop uses to stop the sweeper thread.
#[derive(Debug)]
pub(super) struct Sweeper {
    stop: Arc<AtomicBool>,
    thread: std::thread::Thread,
}

impl Sweeper {
    pub(super) fn stop(&self) {
        self.stop.store(true, Ordering::Release);
        self.thread.unpark();
    }
}

/// Runs [`Cache::run_pending_tasks`] every `interval` until stopped or the
/// last handle is gone (it holds only a `Weak`, so it never keeps the cache
/// alive).
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

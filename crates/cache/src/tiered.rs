//! [`TieredCache`] (feature `redis`): L1 = an in-process [`Cache`], L2 = Redis,
//! with cross-instance invalidation over Redis pub/sub.
//!
//! # Read path
//!
//! L1 → on a miss, one single-flight load per key per process: L2 (`GET` +
//! `PTTL` + the key's generation in one `MULTI`) → on a hit, promote into L1
//! with the *remaining* TTL, so L1 never outlives L2 → on an L2 miss, the
//! loader; its value goes to L1 and the caller at once, and is written back
//! to L2 by a background task (see *Write-back*).
//!
//! # Redis keys
//!
//! A namespace `ns` and a key `k` map to `{len(ns)}:{ns}:d:{k}` (the value)
//! and `{len(ns)}:{ns}:g:{k}` (its generation); the channel is
//! `{len(ns)}:{ns}:invalidate`. The length prefix makes the encoding
//! unambiguous: namespace `app` + key `x:y` (`3:app:d:x:y`) and namespace
//! `app:x` + key `y` (`5:app:x:d:y`) are different keys.
//! [`TieredCache::redis_key`] shows the value key.
//!
//! # Writes, invalidation and stale write-backs
//!
//! `set` writes L1 and, in one `MULTI`, `SET PX` in L2, `INCR` of the key's
//! generation and `PUBLISH` on the channel. `invalidate` removes from L1,
//! then `DEL` + `INCR` generation + `PUBLISH`. Every instance subscribes to
//! the channel and drops its L1 copy of a published key (messages carry the
//! sender's id, so the writer keeps its fresh copy).
//!
//! A load that *started* before a `set` or `invalidate` must not write its
//! older value back afterwards (an `invalidate` that returned `Ok` would be
//! undone for every instance until the TTL). The choice here is a
//! **versioned write**: the L2 read that precedes the loader also reads the
//! key's generation, and the write-back is a Lua script that `SET`s only if
//! the generation is still the one read (and otherwise does nothing,
//! counted in `write_backs_skipped`). A load whose L2 read failed does not
//! know the generation and skips its write-back too. Generation keys live
//! for the TTL, at least [`TieredCacheBuilder::GENERATION_MIN_TTL`] (one hour): a loader that
//! runs longer than that after an invalidation could still write back.
//!
//! # Deadlines
//!
//! Every Redis call on a caller's path runs under **one deadline**,
//! `l2_timeout` from the start of the call, covering the connection
//! manager's reconnects and retries inside it; a miss costs at most one
//! `l2_timeout` of Redis time plus the loader. The write-back runs in a
//! spawned task with its own deadline, off the caller's path
//! ([`TieredCache::flush_write_backs`] waits for it; at most
//! [`TieredCacheBuilder::MAX_PENDING_WRITE_BACKS`] are in flight, more are skipped and counted).
//!
//! # Redis down or silent
//!
//! On an error or timeout the cache counts it (`l2_errors`) and carries
//! on: reads fall through to the loader, writes update L1 and return the
//! error. The connection manager reconnects by itself on I/O errors; after
//! [`TieredCacheBuilder::RECONNECT_AFTER_TIMEOUTS`] timeouts in a row (a peer that went silent:
//! a NAT or load balancer that dropped the flow produces no I/O error) the
//! cache replaces the connection. The subscriber pings its connection every
//! `liveness_interval`; a ping unanswered within `l2_timeout` (or a closed
//! stream) counts as lost (`subscriber_losses`), and it reconnects with
//! backoff. Invalidations published while it was away are lost (pub/sub is
//! fire-and-forget), so it clears L1 on every re-subscription (`resyncs`).
//!
//! # Consistency
//!
//! Cache-aside with invalidation gives *eventual* consistency: between a
//! write on instance A and B receiving the message (typically well under a
//! millisecond on a LAN) B may serve the old value; if the subscriber is
//! disconnected, the L1 TTL bounds the staleness until the resync (at most
//! `liveness_interval + l2_timeout` to notice a silent connection). A load
//! racing with an invalidation is superseded in L1 (see [`Cache`]) and in
//! L2 (the versioned write-back); a plain `get` that read L2 just before an
//! invalidation arrived does not promote what it read.

use core::hash::BuildHasher as _;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Weak};
use std::time::Duration;

use futures::StreamExt as _;
use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use serde::Serialize;
use serde::de::DeserializeOwned;
use tokio::sync::{oneshot, watch};
use tokio::time::Instant;

use crate::concurrent::Cache;
use crate::error::{BuildError, LoadError, TieredError};
use crate::metrics;
use crate::policy::Policy;
use crate::stats::CacheStats;

/// `SET` only if the generation is still the one the load read.
/// KEYS: value, generation. ARGV: generation read ("" = none), payload,
/// ttl ms, channel, message.
const WRITE_BACK: &str = r"
local g = redis.call('GET', KEYS[2])
if (g or '') ~= ARGV[1] then return 0 end
redis.call('SET', KEYS[1], ARGV[2], 'PX', ARGV[3])
redis.call('PUBLISH', ARGV[4], ARGV[5])
return 1
";

/// Counters of the tiered cache.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TieredStats {
    /// The L1 cache's counters (its loads are L2 lookups + loader calls).
    pub l1: CacheStats,
    /// L2 lookups that found the key.
    pub l2_hits: u64,
    /// L2 lookups that did not.
    pub l2_misses: u64,
    /// Redis calls that failed or timed out.
    pub l2_errors: u64,
    /// Loader calls (after an L1 and L2 miss).
    pub loader_calls: u64,
    /// Invalidations this instance published (writes, write-backs,
    /// invalidations).
    pub invalidations_published: u64,
    /// Invalidations from other instances that dropped (or found no) L1 copy.
    pub invalidations_received: u64,
    /// Times the subscriber re-connected and cleared L1.
    pub resyncs: u64,
    /// Times the subscriber found its connection lost (closed, or a ping
    /// unanswered within `l2_timeout`).
    pub subscriber_losses: u64,
    /// Loaded values written back to L2.
    pub write_backs: u64,
    /// Write-backs not done: superseded by a newer write or invalidation,
    /// generation unknown (the L2 read had failed), too many in flight, or
    /// the write itself failed.
    pub write_backs_skipped: u64,
    /// Times the command connection was replaced after repeated timeouts.
    pub reconnects: u64,
}

/// What the subscriber has seen so far; watch it with
/// [`TieredCache::sync_events`] to wait for an invalidation in tests.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SyncState {
    /// The subscriber is connected and subscribed.
    pub subscribed: bool,
    /// Invalidation messages from other instances processed.
    pub invalidations_received: u64,
    /// Re-subscriptions after a disconnect (each cleared L1).
    pub resyncs: u64,
    /// Connections found lost (closed, or a ping unanswered in time).
    pub losses: u64,
}

#[derive(Debug, Default)]
struct Counters {
    l2_hits: AtomicU64,
    l2_misses: AtomicU64,
    l2_errors: AtomicU64,
    loader_calls: AtomicU64,
    invalidations_published: AtomicU64,
    write_backs: AtomicU64,
    write_backs_skipped: AtomicU64,
    reconnects: AtomicU64,
}

struct Inner<V> {
    l1: Cache<String, V>,
    client: redis::Client,
    conn_config: ConnectionManagerConfig,
    conn: parking_lot::Mutex<ConnectionManager>,
    /// Timeouts in a row on the command connection.
    timeouts_in_a_row: AtomicU32,
    /// `{len}:{namespace}:`, the start of every key and of the channel.
    prefix: String,
    namespace: String,
    channel: String,
    instance: String,
    ttl: Duration,
    generation_ttl: Duration,
    l2_timeout: Duration,
    liveness_interval: Duration,
    /// Bumped by every invalidation this instance applies to L1 (its own,
    /// received, resync), so a `get` can tell that its L2 read may be stale.
    epoch: AtomicU64,
    write_back_script: redis::Script,
    /// Write-backs in flight.
    pending_write_backs: watch::Sender<u64>,
    counters: Counters,
    sync_tx: watch::Sender<SyncState>,
    /// Dropping it stops the subscriber task.
    _shutdown: oneshot::Sender<()>,
}

/// A two-level cache: in-process L1, Redis L2, invalidation by pub/sub.
///
/// Cheap to clone. Values are stored in Redis as JSON. Needs a Tokio
/// runtime (the subscriber and the write-backs are spawned tasks).
///
/// # Examples
///
/// ```no_run
/// # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
/// use std::time::Duration;
/// use keel_cache::TieredCache;
///
/// let cache: TieredCache<String> = TieredCache::builder()
///     .redis_url("redis://127.0.0.1:6379/")
///     .namespace("users")
///     .ttl(Duration::from_secs(60))
///     .build()
///     .await?;
/// let name = cache.get_or_load("42", || async { Ok::<_, std::io::Error>("Ada".to_string()) }).await?;
/// assert_eq!(name, "Ada");
/// cache.invalidate("42").await?; // every instance drops its L1 copy
/// # Ok(()) }
/// ```
pub struct TieredCache<V> {
    inner: Arc<Inner<V>>,
}

impl<V> Clone for TieredCache<V> {
    fn clone(&self) -> Self {
        Self {
            inner: Arc::clone(&self.inner),
        }
    }
}

impl<V> std::fmt::Debug for TieredCache<V> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TieredCache")
            .field("namespace", &self.inner.namespace)
            .field("instance", &self.inner.instance)
            .field("ttl", &self.inner.ttl)
            .field("l2_timeout", &self.inner.l2_timeout)
            .finish_non_exhaustive()
    }
}

impl TieredCache<()> {
    /// A builder; set at least [`TieredCacheBuilder::redis_url`]. The value
    /// type is chosen by [`TieredCacheBuilder::build`].
    pub fn builder() -> TieredCacheBuilder {
        TieredCacheBuilder {
            url: None,
            namespace: "keel".into(),
            ttl: Duration::from_secs(300),
            l1_capacity: 10_000,
            l1_policy: Policy::Lru,
            l2_timeout: Duration::from_millis(250),
            liveness_interval: Duration::from_secs(5),
            clock: None,
        }
    }
}

/// The outcome of one Redis call under a deadline.
enum Outcome<T> {
    Done(T),
    Failed(redis::RedisError),
    TimedOut,
}

impl<V> TieredCache<V>
where
    V: Serialize + DeserializeOwned + Clone + Send + Sync + 'static,
{
    /// The Redis key holding `key`'s value (see "Redis keys" in the
    /// module docs).
    ///
    /// # Examples
    ///
    /// ```no_run
    /// # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
    /// # let cache: keel_cache::TieredCache<String> = keel_cache::TieredCache::builder()
    /// #     .redis_url("redis://127.0.0.1:6379/").namespace("app").build().await?;
    /// assert_eq!(cache.redis_key("x:y"), "3:app:d:x:y");
    /// # Ok(()) }
    /// ```
    pub fn redis_key(&self, key: &str) -> String {
        format!("{}d:{key}", self.inner.prefix)
    }

    fn generation_key(&self, key: &str) -> String {
        format!("{}g:{key}", self.inner.prefix)
    }

    fn message(&self, key: &str) -> String {
        format!("{}\n{key}", self.inner.instance)
    }

    fn conn(&self) -> ConnectionManager {
        self.inner.conn.lock().clone()
    }

    fn l2_error(&self) {
        self.inner
            .counters
            .l2_errors
            .fetch_add(1, Ordering::Relaxed);
        metrics::l2_error(&self.inner.namespace);
    }

    /// Runs one Redis call until `deadline` (retries and reconnects inside
    /// the connection manager included). Errors and timeouts are counted;
    /// repeated timeouts replace the connection.
    async fn l2_until<T>(
        &self,
        deadline: Instant,
        call: impl Future<Output = redis::RedisResult<T>>,
    ) -> Outcome<T> {
        match tokio::time::timeout_at(deadline, call).await {
            Ok(Ok(v)) => {
                self.inner.timeouts_in_a_row.store(0, Ordering::Relaxed);
                Outcome::Done(v)
            }
            // The connection manager's own response timeout: a timeout too.
            Ok(Err(e)) if e.is_timeout() => {
                self.timed_out();
                Outcome::Failed(e)
            }
            Ok(Err(e)) => {
                self.inner.timeouts_in_a_row.store(0, Ordering::Relaxed);
                self.l2_error();
                Outcome::Failed(e)
            }
            Err(_) => {
                self.timed_out();
                Outcome::TimedOut
            }
        }
    }

    /// Counts a timeout; enough in a row replace the connection.
    fn timed_out(&self) {
        self.l2_error();
        let n = self.inner.timeouts_in_a_row.fetch_add(1, Ordering::Relaxed) + 1;
        if n >= TieredCacheBuilder::RECONNECT_AFTER_TIMEOUTS {
            self.reconnect();
        }
    }

    /// [`Self::l2_until`] with the error as a [`TieredError`].
    async fn l2<T>(
        &self,
        deadline: Instant,
        call: impl Future<Output = redis::RedisResult<T>>,
    ) -> Result<T, TieredError> {
        match self.l2_until(deadline, call).await {
            Outcome::Done(v) => Ok(v),
            Outcome::Failed(e) => Err(TieredError::Redis(e)),
            Outcome::TimedOut => Err(TieredError::Redis(redis::RedisError::from((
                redis::ErrorKind::Io,
                "l2 call timed out",
            )))),
        }
    }

    /// Replaces the command connection: a silent peer never produces the
    /// I/O error that would make the connection manager reconnect.
    fn reconnect(&self) {
        let fresh = ConnectionManager::new_lazy_with_config(
            self.inner.client.clone(),
            self.inner.conn_config.clone(),
        );
        if let Ok(fresh) = fresh {
            *self.inner.conn.lock() = fresh;
            self.inner.timeouts_in_a_row.store(0, Ordering::Relaxed);
            self.inner
                .counters
                .reconnects
                .fetch_add(1, Ordering::Relaxed);
        }
    }

    fn deadline(&self) -> Instant {
        Instant::now() + self.inner.l2_timeout
    }

    /// L2 lookup: the value with its remaining TTL, and the key's
    /// generation (`""` when it has none).
    #[allow(clippy::type_complexity)]
    async fn l2_get(
        &self,
        key: &str,
        deadline: Instant,
    ) -> Result<(Option<(V, Option<Duration>)>, String), TieredError> {
        let l2_key = self.redis_key(key);
        let generation_key = self.generation_key(key);
        let mut conn = self.conn();
        let (raw, pttl, generation): (Option<String>, i64, Option<String>) = self
            .l2(deadline, async move {
                redis::pipe()
                    .atomic()
                    .get(&l2_key)
                    .cmd("PTTL")
                    .arg(&l2_key)
                    .get(&generation_key)
                    .query_async(&mut conn)
                    .await
            })
            .await?;
        let generation = generation.unwrap_or_default();
        let Some(raw) = raw else {
            self.inner
                .counters
                .l2_misses
                .fetch_add(1, Ordering::Relaxed);
            return Ok((None, generation));
        };
        self.inner.counters.l2_hits.fetch_add(1, Ordering::Relaxed);
        let value: V = serde_json::from_str(&raw)?;
        let ttl = (pttl > 0).then(|| Duration::from_millis(pttl as u64));
        Ok((Some((value, ttl)), generation))
    }

    fn ttl_ms(&self) -> u64 {
        // Validated at build: non-zero and at most `MAX_TTL`, so this fits.
        self.inner.ttl.as_millis().max(1) as u64
    }

    fn skip_write_back(&self) {
        self.inner
            .counters
            .write_backs_skipped
            .fetch_add(1, Ordering::Relaxed);
    }

    /// Writes a loaded value back to L2 in a spawned task (its own
    /// deadline), only if the key's generation is still `generation`.
    fn spawn_write_back(&self, key: String, value: &V, generation: String) {
        let Ok(payload) = serde_json::to_string(value) else {
            self.skip_write_back();
            return;
        };
        let mut admitted = false;
        self.inner.pending_write_backs.send_if_modified(|n| {
            admitted = *n < TieredCacheBuilder::MAX_PENDING_WRITE_BACKS;
            if admitted {
                *n += 1;
            }
            admitted
        });
        if !admitted {
            self.skip_write_back();
            return;
        }
        let this = self.clone();
        let deadline = self.deadline();
        tokio::spawn(async move {
            let mut conn = this.conn();
            let script = this.inner.write_back_script.clone();
            let (l2_key, generation_key) = (this.redis_key(&key), this.generation_key(&key));
            let (channel, message, ttl_ms) = (
                this.inner.channel.clone(),
                this.message(&key),
                this.ttl_ms(),
            );
            let outcome = this
                .l2_until(deadline, async move {
                    script
                        .key(l2_key)
                        .key(generation_key)
                        .arg(generation)
                        .arg(payload)
                        .arg(ttl_ms)
                        .arg(channel)
                        .arg(message)
                        .invoke_async::<i64>(&mut conn)
                        .await
                })
                .await;
            let c = &this.inner.counters;
            match outcome {
                Outcome::Done(1) => {
                    c.write_backs.fetch_add(1, Ordering::Relaxed);
                    c.invalidations_published.fetch_add(1, Ordering::Relaxed);
                }
                _ => this.skip_write_back(),
            }
            this.inner.pending_write_backs.send_modify(|n| *n -= 1);
        });
    }

    /// Drops `key` from L1 and marks every L2 read in progress as possibly
    /// stale.
    fn invalidate_l1(&self, key: &str) {
        self.inner.epoch.fetch_add(1, Ordering::AcqRel);
        self.inner.l1.invalidate(key);
    }

    /// L1, then L2 (promoting with the remaining TTL). `None` on a miss in
    /// both, or when Redis fails (counted). One `l2_timeout` at most.
    ///
    /// # Examples
    ///
    /// ```no_run
    /// # async fn demo(cache: keel_cache::TieredCache<String>) -> Result<(), keel_cache::TieredError> {
    /// cache.set("k", "v".to_string()).await?;
    /// assert_eq!(cache.get("k").await.as_deref(), Some("v"));
    /// # Ok(()) }
    /// ```
    pub async fn get(&self, key: &str) -> Option<V> {
        if let Some(v) = self.inner.l1.get(key) {
            return Some(v);
        }
        let epoch = self.inner.epoch.load(Ordering::Acquire);
        let (found, _) = self.l2_get(key, self.deadline()).await.ok()?;
        let (value, ttl) = found?;
        // An invalidation applied while we read may be newer than what we
        // read: serve it to this caller, but do not keep it.
        if self.inner.epoch.load(Ordering::Acquire) == epoch {
            match ttl {
                Some(ttl) => self
                    .inner
                    .l1
                    .insert_with_ttl(key.to_owned(), value.clone(), ttl),
                None => self.inner.l1.insert(key.to_owned(), value.clone()),
            }
        }
        Some(value)
    }

    /// L1 → L2 → `loader`, single-flight per key in this process. The
    /// loaded value is returned and stored in L1 at once; the write-back to
    /// L2 runs in the background and is skipped if a newer write or
    /// invalidation happened meanwhile (see the module docs).
    ///
    /// # Errors
    ///
    /// [`TieredError::Load`] if the loader failed, panicked or was cancelled.
    ///
    /// # Examples
    ///
    /// ```no_run
    /// # async fn demo(cache: keel_cache::TieredCache<String>) -> Result<(), keel_cache::TieredError> {
    /// let v = cache.get_or_load("42", || async { Ok::<_, std::io::Error>("Ada".to_string()) }).await?;
    /// assert_eq!(v, "Ada");
    /// assert!(cache.in_l1("42"));
    /// # Ok(()) }
    /// ```
    pub async fn get_or_load<E, Fut>(
        &self,
        key: &str,
        loader: impl FnOnce() -> Fut,
    ) -> Result<V, TieredError>
    where
        E: std::error::Error + Send + Sync + 'static,
        Fut: Future<Output = Result<V, E>>,
    {
        let this = self.clone();
        let owned = key.to_owned();
        let value = self
            .inner
            .l1
            .load_async_with_ttl(key.to_owned(), move || async move {
                let generation = match this.l2_get(&owned, this.deadline()).await {
                    Ok((Some((value, ttl)), _)) => return Ok((value, ttl)),
                    Ok((None, generation)) => Some(generation),
                    // Redis failed (counted): serve from the loader, and do
                    // not write back blind.
                    Err(_) => None,
                };
                this.inner
                    .counters
                    .loader_calls
                    .fetch_add(1, Ordering::Relaxed);
                let value = loader().await.map_err(|e| LoadError::Failed(Arc::new(e)))?;
                match generation {
                    Some(generation) => this.spawn_write_back(owned, &value, generation),
                    None => this.skip_write_back(),
                }
                Ok::<_, LoadError>((value, Some(this.inner.ttl)))
            })
            .await;
        match value {
            Ok(v) => Ok(v),
            // Unwrap our own wrapping so callers see the loader's error once.
            Err(LoadError::Failed(e)) => match e.downcast_ref::<LoadError>() {
                Some(inner) => Err(TieredError::Load(inner.clone())),
                None => Err(TieredError::Load(LoadError::Failed(e))),
            },
            Err(e) => Err(TieredError::Load(e)),
        }
    }

    /// Write-through: L1 now, then L2 `SET PX` + generation bump +
    /// `PUBLISH` so other instances drop their copies and older loads do not
    /// write back over it. One `l2_timeout` at most.
    ///
    /// # Errors
    ///
    /// [`TieredError::Redis`] if L2 could not be written (L1 still holds
    /// the new value; other instances may keep theirs until their TTL).
    ///
    /// # Examples
    ///
    /// ```no_run
    /// # async fn demo(cache: keel_cache::TieredCache<String>) -> Result<(), keel_cache::TieredError> {
    /// cache.set("k", "v2".to_string()).await?;
    /// assert!(cache.in_l1("k"));
    /// # Ok(()) }
    /// ```
    pub async fn set(&self, key: &str, value: V) -> Result<(), TieredError> {
        let deadline = self.deadline();
        let payload = serde_json::to_string(&value)?;
        // A `get` reading L2 right now must not promote the older value;
        // the insert itself supersedes a load of this key in progress.
        self.inner.epoch.fetch_add(1, Ordering::AcqRel);
        self.inner
            .l1
            .insert_with_ttl(key.to_owned(), value, self.inner.ttl);
        let ttl_ms = self.ttl_ms();
        self.write_l2(key, deadline, move |pipe, l2_key| {
            pipe.set_options(
                l2_key,
                payload,
                redis::SetOptions::default().with_expiration(redis::SetExpiry::PX(ttl_ms)),
            );
        })
        .await
    }

    /// Removes `key` everywhere: L1 here, `DEL` + generation bump in L2, and
    /// `PUBLISH` so every other instance drops its L1 copy. Once it returns
    /// `Ok`, no load that started before it can put the old value back.
    /// One `l2_timeout` at most.
    ///
    /// # Errors
    ///
    /// [`TieredError::Redis`] if Redis could not be reached.
    ///
    /// # Examples
    ///
    /// ```no_run
    /// # async fn demo(cache: keel_cache::TieredCache<String>) -> Result<(), keel_cache::TieredError> {
    /// cache.invalidate("k").await?;
    /// assert!(!cache.in_l1("k"));
    /// # Ok(()) }
    /// ```
    pub async fn invalidate(&self, key: &str) -> Result<(), TieredError> {
        let deadline = self.deadline();
        self.invalidate_l1(key);
        self.write_l2(key, deadline, |pipe, l2_key| {
            pipe.del(l2_key);
        })
        .await
    }

    /// One `MULTI` that changes `key`'s value (`change`), bumps its
    /// generation (so older loads do not write back) and publishes the key
    /// to the other instances; counted as a published invalidation.
    async fn write_l2(
        &self,
        key: &str,
        deadline: Instant,
        change: impl FnOnce(&mut redis::Pipeline, &str),
    ) -> Result<(), TieredError> {
        let (l2_key, generation_key) = (self.redis_key(key), self.generation_key(key));
        let generation_ms = self.inner.generation_ttl.as_millis() as i64;
        let mut pipe = redis::pipe();
        pipe.atomic();
        change(&mut pipe, &l2_key);
        pipe.ignore()
            .incr(&generation_key, 1)
            .ignore()
            .pexpire(&generation_key, generation_ms)
            .ignore()
            .publish(&self.inner.channel, self.message(key))
            .ignore();
        let mut conn = self.conn();
        self.l2(
            deadline,
            async move { pipe.query_async::<()>(&mut conn).await },
        )
        .await?;
        self.inner
            .counters
            .invalidations_published
            .fetch_add(1, Ordering::Relaxed);
        Ok(())
    }

    /// Waits until every write-back started so far has finished (each is
    /// bounded by its own `l2_timeout`).
    pub async fn flush_write_backs(&self) {
        let mut rx = self.inner.pending_write_backs.subscribe();
        let _ = rx.wait_for(|n| *n == 0).await;
    }

    /// Whether `key` is in L1 right now (for tests and the tour).
    pub fn in_l1(&self, key: &str) -> bool {
        self.inner.l1.contains_key(key)
    }

    /// The timeout of each call's Redis work (after lowering to
    /// [`TieredCacheBuilder::MAX_L2_TIMEOUT`]).
    pub fn l2_timeout(&self) -> Duration {
        self.inner.l2_timeout
    }

    /// Counters.
    pub fn stats(&self) -> TieredStats {
        let c = &self.inner.counters;
        let sync = *self.inner.sync_tx.borrow();
        TieredStats {
            l1: self.inner.l1.stats(),
            l2_hits: c.l2_hits.load(Ordering::Relaxed),
            l2_misses: c.l2_misses.load(Ordering::Relaxed),
            l2_errors: c.l2_errors.load(Ordering::Relaxed),
            loader_calls: c.loader_calls.load(Ordering::Relaxed),
            invalidations_published: c.invalidations_published.load(Ordering::Relaxed),
            invalidations_received: sync.invalidations_received,
            resyncs: sync.resyncs,
            subscriber_losses: sync.losses,
            write_backs: c.write_backs.load(Ordering::Relaxed),
            write_backs_skipped: c.write_backs_skipped.load(Ordering::Relaxed),
            reconnects: c.reconnects.load(Ordering::Relaxed),
        }
    }

    /// Subscriber state; `.wait_for(..)` on it to wait for an invalidation
    /// or a (re)subscription instead of sleeping.
    pub fn sync_events(&self) -> watch::Receiver<SyncState> {
        self.inner.sync_tx.subscribe()
    }
}

/// Configures a [`TieredCache`]; start with [`TieredCache::builder`].
#[must_use]
#[derive(Debug)]
pub struct TieredCacheBuilder {
    url: Option<String>,
    namespace: String,
    ttl: Duration,
    l1_capacity: u64,
    l1_policy: Policy,
    l2_timeout: Duration,
    liveness_interval: Duration,
    clock: Option<quanta::Clock>,
}

impl TieredCacheBuilder {
    /// The longest `ttl` a [`TieredCacheBuilder`] accepts (100 years): Redis
    /// must be able to add it to its clock in milliseconds.
    pub const MAX_TTL: Duration = Duration::from_secs(100 * 365 * 24 * 3600);

    /// `l2_timeout` values above this (one minute) are lowered to it: a cache
    /// that waits longer than that for Redis is not degrading, it is down.
    pub const MAX_L2_TIMEOUT: Duration = Duration::from_secs(60);

    /// `liveness_interval` values below this (10 ms) are raised to it.
    pub const MIN_LIVENESS_INTERVAL: Duration = Duration::from_millis(10);

    /// The shortest life of a generation key (see the module docs).
    pub const GENERATION_MIN_TTL: Duration = Duration::from_secs(3600);

    /// Write-backs in flight at most; further ones are skipped (and counted).
    pub const MAX_PENDING_WRITE_BACKS: u64 = 1024;

    /// Consecutive timeouts after which the command connection is replaced.
    pub const RECONNECT_AFTER_TIMEOUTS: u32 = 3;

    /// The Redis server, e.g. `redis://127.0.0.1:6379/` (required).
    pub fn redis_url(mut self, url: impl Into<String>) -> Self {
        self.url = Some(url.into());
        self
    }

    /// The namespace of the Redis keys and of the channel (see "Redis keys"
    /// in the module docs). Instances that share data share it. Default
    /// `keel`.
    pub fn namespace(mut self, namespace: impl Into<String>) -> Self {
        self.namespace = namespace.into();
        self
    }

    /// Time to live of written values in L2 (and L1): more than zero, at
    /// most [`TieredCacheBuilder::MAX_TTL`]; whole milliseconds in Redis (at least 1).
    /// Default 5 minutes.
    pub fn ttl(mut self, ttl: Duration) -> Self {
        self.ttl = ttl;
        self
    }

    /// L1 capacity in entries. Default 10,000.
    pub fn l1_capacity(mut self, capacity: u64) -> Self {
        self.l1_capacity = capacity;
        self
    }

    /// L1 eviction policy.
    pub fn l1_policy(mut self, policy: Policy) -> Self {
        self.l1_policy = policy;
        self
    }

    /// Deadline of each call's Redis work, retries and reconnects included.
    /// More than zero; values above [`TieredCacheBuilder::MAX_L2_TIMEOUT`] (e.g. `Duration::MAX`)
    /// are lowered to it. Default 250 ms.
    pub fn l2_timeout(mut self, timeout: Duration) -> Self {
        self.l2_timeout = timeout;
        self
    }

    /// How often the subscriber pings its connection to notice a silent
    /// peer. More than zero; raised to at least [`TieredCacheBuilder::MIN_LIVENESS_INTERVAL`].
    /// Default 5 s.
    pub fn liveness_interval(mut self, interval: Duration) -> Self {
        self.liveness_interval = interval;
        self
    }

    /// Clock of the L1 cache.
    pub fn clock(mut self, clock: quanta::Clock) -> Self {
        self.clock = Some(clock);
        self
    }

    /// Connects (lazily: a Redis that is down now is not an error) and starts
    /// the subscriber, waiting up to 4 × the L2 timeout (at most 10 s) for
    /// the first subscription.
    ///
    /// # Errors
    ///
    /// [`BuildError::ZeroTimeToLive`], [`BuildError::TimeToLiveTooLarge`],
    /// [`BuildError::ZeroTimeout`], [`BuildError::ZeroLivenessInterval`],
    /// [`BuildError::MissingRedisUrl`], [`BuildError::InvalidRedisUrl`], or
    /// the L1 cache's [`BuildError`].
    ///
    /// # Panics
    ///
    /// Outside a Tokio runtime (it spawns the subscriber).
    pub async fn build<V>(self) -> Result<TieredCache<V>, BuildError>
    where
        V: Serialize + DeserializeOwned + Clone + Send + Sync + 'static,
    {
        if self.ttl.is_zero() {
            return Err(BuildError::ZeroTimeToLive);
        }
        if self.ttl > TieredCacheBuilder::MAX_TTL {
            return Err(BuildError::TimeToLiveTooLarge {
                requested: self.ttl,
                max: TieredCacheBuilder::MAX_TTL,
            });
        }
        if self.l2_timeout.is_zero() {
            return Err(BuildError::ZeroTimeout);
        }
        if self.liveness_interval.is_zero() {
            return Err(BuildError::ZeroLivenessInterval);
        }
        let l2_timeout = self.l2_timeout.min(TieredCacheBuilder::MAX_L2_TIMEOUT);
        let liveness_interval = self
            .liveness_interval
            .max(TieredCacheBuilder::MIN_LIVENESS_INTERVAL);
        let url = self.url.ok_or(BuildError::MissingRedisUrl)?;
        let prefix = format!("{}:{}:", self.namespace.len(), self.namespace);
        let mut l1 = Cache::builder()
            .max_capacity(self.l1_capacity)
            .policy(self.l1_policy)
            .default_ttl(self.ttl)
            .name(self.namespace.clone());
        if let Some(clock) = self.clock {
            l1 = l1.clock(clock);
        }
        let l1 = l1.build()?;
        let client = redis::Client::open(url.as_str()).map_err(BuildError::InvalidRedisUrl)?;
        let conn_config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(l2_timeout))
            .set_response_timeout(Some(l2_timeout))
            .set_number_of_retries(1)
            .set_max_delay(Duration::from_millis(500));
        let conn = ConnectionManager::new_lazy_with_config(client.clone(), conn_config.clone())
            .map_err(BuildError::InvalidRedisUrl)?;
        static NEXT_INSTANCE: AtomicU64 = AtomicU64::new(0);
        let n = NEXT_INSTANCE.fetch_add(1, Ordering::Relaxed);
        let salt = foldhash::fast::RandomState::default().hash_one((std::process::id(), n));
        let instance = format!("{:x}-{n:x}-{salt:016x}", std::process::id());
        let (sync_tx, mut sync_rx) = watch::channel(SyncState::default());
        let (shutdown, shutdown_rx) = oneshot::channel();
        let inner = Arc::new(Inner {
            l1,
            client: client.clone(),
            conn_config,
            conn: parking_lot::Mutex::new(conn),
            timeouts_in_a_row: AtomicU32::new(0),
            channel: format!("{prefix}invalidate"),
            prefix,
            namespace: self.namespace,
            instance,
            ttl: self.ttl,
            generation_ttl: self.ttl.clamp(
                TieredCacheBuilder::GENERATION_MIN_TTL,
                TieredCacheBuilder::MAX_TTL,
            ),
            l2_timeout,
            liveness_interval,
            epoch: AtomicU64::new(0),
            write_back_script: redis::Script::new(WRITE_BACK),
            pending_write_backs: watch::channel(0).0,
            counters: Counters::default(),
            sync_tx,
            _shutdown: shutdown,
        });
        tokio::spawn(subscriber(Arc::downgrade(&inner), client, shutdown_rx));
        let first_wait = l2_timeout.saturating_mul(4).min(Duration::from_secs(10));
        let _ = tokio::time::timeout(first_wait, sync_rx.wait_for(|s| s.subscribed)).await;
        Ok(TieredCache { inner })
    }
}

/// Keeps one pub/sub subscription alive; drops L1 copies named by other
/// instances' messages; pings the connection every `liveness_interval` and
/// treats an unanswered ping as a lost connection; clears L1 after every
/// reconnect.
async fn subscriber<V>(
    weak: Weak<Inner<V>>,
    client: redis::Client,
    mut shutdown: oneshot::Receiver<()>,
) where
    V: Serialize + DeserializeOwned + Clone + Send + Sync + 'static,
{
    let mut backoff = Duration::from_millis(50);
    let mut connected_before = false;
    loop {
        let (channel, timeout, liveness) = match weak.upgrade() {
            Some(inner) => (
                inner.channel.clone(),
                inner.l2_timeout,
                inner.liveness_interval,
            ),
            None => return,
        };
        let attempt = async {
            let mut pubsub = tokio::time::timeout(timeout, client.get_async_pubsub())
                .await
                .ok()?
                .ok()?;
            tokio::time::timeout(timeout, pubsub.subscribe(&channel))
                .await
                .ok()?
                .ok()?;
            Some(pubsub)
        };
        let pubsub = tokio::select! {
            _ = &mut shutdown => return,
            p = attempt => p,
        };
        let Some(pubsub) = pubsub else {
            tokio::select! {
                _ = &mut shutdown => return,
                () = tokio::time::sleep(backoff) => {}
            }
            backoff = (backoff * 2).min(Duration::from_secs(1));
            continue;
        };
        backoff = Duration::from_millis(50);
        {
            let Some(inner) = weak.upgrade() else { return };
            if connected_before {
                // Messages published while we were away are gone: drop L1.
                inner.epoch.fetch_add(1, Ordering::AcqRel);
                inner.l1.invalidate_all();
            }
            inner.sync_tx.send_modify(|s| {
                s.subscribed = true;
                if connected_before {
                    s.resyncs += 1;
                }
            });
        }
        connected_before = true;
        let (mut sink, mut stream) = pubsub.split();
        let mut ping = tokio::time::interval_at(Instant::now() + liveness, liveness);
        ping.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            let msg = tokio::select! {
                _ = &mut shutdown => return,
                _ = ping.tick() => {
                    let answered = tokio::time::timeout(timeout, sink.ping::<redis::Value>()).await;
                    if matches!(answered, Ok(Ok(_))) {
                        continue;
                    }
                    // A silent peer: no I/O error will ever come.
                    break;
                }
                m = stream.next() => m,
            };
            let Some(msg) = msg else { break };
            let Some(inner) = weak.upgrade() else { return };
            let Ok(payload) = msg.get_payload::<String>() else {
                continue;
            };
            let Some((sender, key)) = payload.split_once('\n') else {
                continue;
            };
            if sender == inner.instance {
                continue;
            }
            inner.epoch.fetch_add(1, Ordering::AcqRel);
            inner.l1.invalidate(key);
            inner.sync_tx.send_modify(|s| s.invalidations_received += 1);
            metrics::invalidation_received(&inner.namespace);
        }
        if let Some(inner) = weak.upgrade() {
            inner.sync_tx.send_modify(|s| {
                s.subscribed = false;
                s.losses += 1;
            });
        }
    }
}

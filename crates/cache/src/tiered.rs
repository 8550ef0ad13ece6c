//! [`TieredCache`] (feature `redis`): L1 = an in-process [`Cache`], L2 = Redis,
//! with cross-instance invalidation over Redis pub/sub.
//!
//! # Read path
//!
//! L1 → on a miss, one single-flight load per key per process: L2 (`GET` +
//! `PTTL` in one `MULTI`) → on a hit, promote into L1 with the *remaining*
//! TTL, so L1 never outlives L2 → on an L2 miss, the loader, whose value is
//! written through to L2 (`SET … PX ttl`) and L1.
//!
//! # Writes and invalidation
//!
//! `set` writes L1 and, in one `MULTI`, `SET PX` in L2 plus `PUBLISH` on
//! `{namespace}:invalidate`. `invalidate` removes from L1, and `DEL` +
//! `PUBLISH`. Every instance subscribes to the channel and drops its L1
//! copy of a published key (messages carry the sender's id, so the writer
//! keeps its fresh copy).
//!
//! # Redis down
//!
//! Every L2 call has a timeout (default 250 ms). On an error or timeout the
//! cache counts it (`l2_errors`) and carries on: reads fall through to the
//! loader, writes update L1 and return the error. The connection manager
//! reconnects on its own; the subscriber task reconnects with backoff and,
//! because invalidations published while it was away are lost (pub/sub is
//! fire-and-forget), clears L1 on every re-subscription (`resyncs`).
//!
//! # Consistency
//!
//! Cache-aside with invalidation gives *eventual* consistency: between a
//! write on instance A and B receiving the message (typically well under a
//! millisecond on a LAN) B may serve the old value; if the subscriber is
//! disconnected, the L1 TTL bounds the staleness until the resync. A load
//! racing with an invalidation is superseded (see [`Cache`]).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Weak};
use std::time::Duration;

use futures::StreamExt as _;
use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use serde::Serialize;
use serde::de::DeserializeOwned;
use tokio::sync::{oneshot, watch};

use crate::concurrent::Cache;
use crate::error::{BuildError, LoadError, TieredError};
use crate::metrics;
use crate::policy::Policy;
use crate::stats::CacheStats;

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
    /// Invalidations this instance published.
    pub invalidations_published: u64,
    /// Invalidations from other instances that dropped (or found no) L1 copy.
    pub invalidations_received: u64,
    /// Times the subscriber re-connected and cleared L1.
    pub resyncs: u64,
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
}

#[derive(Debug, Default)]
struct Counters {
    l2_hits: AtomicU64,
    l2_misses: AtomicU64,
    l2_errors: AtomicU64,
    loader_calls: AtomicU64,
    invalidations_published: AtomicU64,
}

struct Inner<V> {
    l1: Cache<String, V>,
    conn: ConnectionManager,
    namespace: String,
    channel: String,
    instance: String,
    ttl: Duration,
    l2_timeout: Duration,
    counters: Counters,
    sync_tx: watch::Sender<SyncState>,
    /// Dropping it stops the subscriber task.
    _shutdown: oneshot::Sender<()>,
}

/// A two-level cache: in-process L1, Redis L2, invalidation by pub/sub.
///
/// Cheap to clone. Values are stored in Redis as JSON.
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
            clock: None,
        }
    }
}

impl<V> TieredCache<V>
where
    V: Serialize + DeserializeOwned + Clone + Send + Sync + 'static,
{
    fn l2_key(&self, key: &str) -> String {
        format!("{}:{key}", self.inner.namespace)
    }

    fn l2_error(&self) {
        self.inner
            .counters
            .l2_errors
            .fetch_add(1, Ordering::Relaxed);
        metrics::l2_error(&self.inner.namespace);
    }

    /// Runs one Redis call under the L2 timeout; errors and timeouts are
    /// counted and returned.
    async fn l2<T>(
        &self,
        call: impl Future<Output = redis::RedisResult<T>>,
    ) -> Result<T, TieredError> {
        match tokio::time::timeout(self.inner.l2_timeout, call).await {
            Ok(Ok(v)) => Ok(v),
            Ok(Err(e)) => {
                self.l2_error();
                Err(TieredError::Redis(e))
            }
            Err(_) => {
                self.l2_error();
                Err(TieredError::Redis(redis::RedisError::from((
                    redis::ErrorKind::Io,
                    "l2 call timed out",
                ))))
            }
        }
    }

    /// L2 lookup: the value and its remaining TTL.
    async fn l2_get(&self, key: &str) -> Result<Option<(V, Option<Duration>)>, TieredError> {
        let l2_key = self.l2_key(key);
        let mut conn = self.inner.conn.clone();
        let (raw, pttl): (Option<String>, i64) = self
            .l2(async move {
                redis::pipe()
                    .atomic()
                    .get(&l2_key)
                    .cmd("PTTL")
                    .arg(&l2_key)
                    .query_async(&mut conn)
                    .await
            })
            .await?;
        let Some(raw) = raw else {
            self.inner
                .counters
                .l2_misses
                .fetch_add(1, Ordering::Relaxed);
            return Ok(None);
        };
        self.inner.counters.l2_hits.fetch_add(1, Ordering::Relaxed);
        let value: V = serde_json::from_str(&raw)?;
        let ttl = (pttl > 0).then(|| Duration::from_millis(pttl as u64));
        Ok(Some((value, ttl)))
    }

    /// `SET PX` plus `PUBLISH`, atomically.
    async fn l2_set(&self, key: &str, value: &V) -> Result<(), TieredError> {
        let payload = serde_json::to_string(value)?;
        let l2_key = self.l2_key(key);
        let message = format!("{}\n{key}", self.inner.instance);
        let channel = self.inner.channel.clone();
        let ttl_ms = self.inner.ttl.as_millis().max(1) as u64;
        let mut conn = self.inner.conn.clone();
        self.l2(async move {
            redis::pipe()
                .atomic()
                .set_options(
                    &l2_key,
                    payload,
                    redis::SetOptions::default().with_expiration(redis::SetExpiry::PX(ttl_ms)),
                )
                .ignore()
                .publish(&channel, message)
                .ignore()
                .query_async::<()>(&mut conn)
                .await
        })
        .await?;
        self.inner
            .counters
            .invalidations_published
            .fetch_add(1, Ordering::Relaxed);
        Ok(())
    }

    /// L1, then L2 (promoting with the remaining TTL). `None` on a miss in
    /// both, or when Redis fails (counted).
    pub async fn get(&self, key: &str) -> Option<V> {
        if let Some(v) = self.inner.l1.get(key) {
            return Some(v);
        }
        let (value, ttl) = self.l2_get(key).await.ok().flatten()?;
        match ttl {
            Some(ttl) => self
                .inner
                .l1
                .insert_with_ttl(key.to_owned(), value.clone(), ttl),
            None => self.inner.l1.insert(key.to_owned(), value.clone()),
        }
        Some(value)
    }

    /// L1 → L2 → `loader`, single-flight per key in this process. The
    /// loaded value is written to L2 (errors counted, not returned) and L1.
    ///
    /// # Errors
    ///
    /// [`TieredError::Load`] if the loader failed, panicked or was cancelled.
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
                if let Ok(Some((value, ttl))) = this.l2_get(&owned).await {
                    return Ok((value, ttl));
                }
                this.inner
                    .counters
                    .loader_calls
                    .fetch_add(1, Ordering::Relaxed);
                let value = loader().await.map_err(|e| LoadError::Failed(Arc::new(e)))?;
                // Redis down: already counted; keep serving from L1.
                let _ = this.l2_set(&owned, &value).await;
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

    /// Write-through: L1 now, then L2 `SET PX` + `PUBLISH` so other
    /// instances drop their copies.
    ///
    /// # Errors
    ///
    /// [`TieredError::Redis`] if L2 could not be written (L1 still holds
    /// the new value; other instances may keep theirs until their TTL).
    pub async fn set(&self, key: &str, value: V) -> Result<(), TieredError> {
        self.inner
            .l1
            .insert_with_ttl(key.to_owned(), value.clone(), self.inner.ttl);
        self.l2_set(key, &value).await
    }

    /// Removes `key` everywhere: L1 here, `DEL` in L2, and `PUBLISH` so
    /// every other instance drops its L1 copy.
    ///
    /// # Errors
    ///
    /// [`TieredError::Redis`] if Redis could not be reached.
    pub async fn invalidate(&self, key: &str) -> Result<(), TieredError> {
        self.inner.l1.invalidate(key);
        let l2_key = self.l2_key(key);
        let message = format!("{}\n{key}", self.inner.instance);
        let channel = self.inner.channel.clone();
        let mut conn = self.inner.conn.clone();
        self.l2(async move {
            redis::pipe()
                .atomic()
                .del(&l2_key)
                .ignore()
                .publish(&channel, message)
                .ignore()
                .query_async::<()>(&mut conn)
                .await
        })
        .await?;
        self.inner
            .counters
            .invalidations_published
            .fetch_add(1, Ordering::Relaxed);
        Ok(())
    }

    /// Whether `key` is in L1 right now (for tests and the tour).
    pub fn in_l1(&self, key: &str) -> bool {
        self.inner.l1.contains_key(key)
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
        }
    }

    /// Subscriber state; `.wait_for(..)` on it to wait for an invalidation
    /// or a (re)subscription instead of sleeping.
    pub fn sync_events(&self) -> watch::Receiver<SyncState> {
        self.inner.sync_tx.subscribe()
    }
}

/// Configures a [`TieredCache`].
#[must_use]
#[derive(Debug)]
pub struct TieredCacheBuilder {
    url: Option<String>,
    namespace: String,
    ttl: Duration,
    l1_capacity: u64,
    l1_policy: Policy,
    l2_timeout: Duration,
    clock: Option<quanta::Clock>,
}

impl TieredCacheBuilder {
    /// The Redis server, e.g. `redis://127.0.0.1:6379/` (required).
    pub fn redis_url(mut self, url: impl Into<String>) -> Self {
        self.url = Some(url.into());
        self
    }

    /// Prefix of L2 keys (`{namespace}:{key}`) and of the channel
    /// (`{namespace}:invalidate`). Instances that share data share it.
    pub fn namespace(mut self, namespace: impl Into<String>) -> Self {
        self.namespace = namespace.into();
        self
    }

    /// Time to live of written values in L2 (and L1). Default 5 minutes.
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

    /// Timeout of each Redis call. Default 250 ms.
    pub fn l2_timeout(mut self, timeout: Duration) -> Self {
        self.l2_timeout = timeout;
        self
    }

    /// Clock of the L1 cache.
    pub fn clock(mut self, clock: quanta::Clock) -> Self {
        self.clock = Some(clock);
        self
    }

    /// Connects (lazily: a Redis that is down now is not an error) and starts
    /// the subscriber, waiting up to the L2 timeout × 4 for the first
    /// subscription.
    ///
    /// # Errors
    ///
    /// A [`BuildError`] for a bad L1 configuration or zero TTL,
    /// [`BuildError::MissingRedisUrl`], [`BuildError::InvalidRedisUrl`].
    pub async fn build<V>(self) -> Result<TieredCache<V>, BuildError>
    where
        V: Serialize + DeserializeOwned + Clone + Send + Sync + 'static,
    {
        if self.ttl.is_zero() || self.l2_timeout.is_zero() {
            return Err(BuildError::ZeroTimeToLive);
        }
        let url = self.url.ok_or(BuildError::MissingRedisUrl)?;
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
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(self.l2_timeout))
            .set_response_timeout(Some(self.l2_timeout))
            .set_number_of_retries(1)
            .set_max_delay(Duration::from_millis(500));
        let conn = ConnectionManager::new_lazy_with_config(client.clone(), config)
            .map_err(BuildError::InvalidRedisUrl)?;
        static NEXT_INSTANCE: AtomicU64 = AtomicU64::new(0);
        let n = NEXT_INSTANCE.fetch_add(1, Ordering::Relaxed);
        let salt = foldhash::fast::RandomState::default().hash_one((std::process::id(), n));
        let instance = format!("{:x}-{n:x}-{salt:016x}", std::process::id());
        let (sync_tx, mut sync_rx) = watch::channel(SyncState::default());
        let (shutdown, shutdown_rx) = oneshot::channel();
        let inner = Arc::new(Inner {
            l1,
            conn,
            channel: format!("{}:invalidate", self.namespace),
            namespace: self.namespace,
            instance,
            ttl: self.ttl,
            l2_timeout: self.l2_timeout,
            counters: Counters::default(),
            sync_tx,
            _shutdown: shutdown,
        });
        tokio::spawn(subscriber(Arc::downgrade(&inner), client, shutdown_rx));
        let _ = tokio::time::timeout(self.l2_timeout * 4, sync_rx.wait_for(|s| s.subscribed)).await;
        Ok(TieredCache { inner })
    }
}

use core::hash::BuildHasher as _;

/// Keeps one pub/sub subscription alive; drops L1 copies named by other
/// instances' messages; clears L1 after every reconnect.
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
        let (channel, timeout) = match weak.upgrade() {
            Some(inner) => (inner.channel.clone(), inner.l2_timeout),
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
        let Some(mut pubsub) = pubsub else {
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
        let mut stream = pubsub.on_message();
        loop {
            let msg = tokio::select! {
                _ = &mut shutdown => return,
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
            inner.l1.invalidate(key);
            inner.sync_tx.send_modify(|s| s.invalidations_received += 1);
            metrics::invalidation_received(&inner.namespace);
        }
        if let Some(inner) = weak.upgrade() {
            inner.sync_tx.send_modify(|s| s.subscribed = false);
        }
    }
}

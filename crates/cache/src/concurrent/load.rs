//! Single-flight, all of it: the in-flight marker ([`Flight`]), the
//! leader's path (register, run the loader, store, publish) and the waiters'
//! (block or await), for [`Cache::get_or_load`] and its fallible and async
//! forms.
//!
//! The first caller to miss a key becomes the *leader*: it registers a
//! [`Flight`] for the key in its shard's in-flight map (under the same lock
//! as the cache lookup, so there is no window in which a second caller can
//! miss both) and runs the loader. Everyone else who misses the key while
//! the flight is registered becomes a *waiter* and blocks (or, in async
//! code, awaits) on the flight. The leader stores the value in the cache and
//! removes the flight under the shard lock, then publishes the result.
//!
//! Failure handling:
//! - a loader error is wrapped once in an `Arc` and every waiter receives a
//!   clone of the same [`LoadError`];
//! - a panicking loader is caught (`catch_unwind`) and reported as
//!   [`LoadError::Panicked`] to the leader and every waiter — never a hang;
//! - an async leader that is dropped mid-load completes the flight with
//!   [`LoadError::Cancelled`] from a drop guard.
//!
//! In every case the flight leaves the in-flight map, so the map holds only
//! keys being loaded right now (memory is bounded by concurrent loads).
//!
//! # Guards
//!
//! Two drop guards make "every waiter gets an answer" hold on every path:
//! [`LeaderGuard`] completes the flight with [`LoadError::Cancelled`] when an
//! async leader is dropped mid-load, and [`CompleteOnUnwind`] completes it
//! with [`LoadError::Panicked`] if user code (the weigher, `V::clone`) panics
//! while the leader stores the value.

use core::future::Future;
use core::hash::{BuildHasher as _, Hash};
use core::pin::Pin;
use core::task::{Context, Poll, Waker};
use std::any::Any;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use quanta::Instant;

use super::Cache;
use crate::error::LoadError;
use crate::sync::{AtomicBool, Condvar, Mutex};

/// The shared state of one in-progress load.
#[derive(Debug)]
pub(crate) struct Flight<V> {
    state: Mutex<FlightState<V>>,
    done: Condvar,
    /// Set (under the shard lock) when the key was written or invalidated
    /// during the load: the result is still handed to the waiters, but not
    /// stored, so it cannot overwrite newer data.
    superseded: AtomicBool,
}

#[derive(Debug)]
struct FlightState<V> {
    result: Option<Result<V, LoadError>>,
    wakers: Vec<Waker>,
}

impl<V: Clone> Flight<V> {
    pub(crate) fn new() -> Self {
        Self {
            state: Mutex::new(FlightState {
                result: None,
                wakers: Vec::new(),
            }),
            done: Condvar::new(),
            superseded: AtomicBool::new(false),
        }
    }

    pub(crate) fn supersede(&self) {
        self.superseded.store(true, Ordering::Relaxed);
    }

    pub(crate) fn is_superseded(&self) -> bool {
        self.superseded.load(Ordering::Relaxed)
    }

    /// Publishes the result and wakes every waiter (blocking and async).
    pub(crate) fn complete(&self, result: Result<V, LoadError>) {
        let wakers = {
            let mut state = self.state.lock();
            if state.result.is_some() {
                return;
            }
            state.result = Some(result);
            std::mem::take(&mut state.wakers)
        };
        self.done.notify_all();
        for waker in wakers {
            waker.wake();
        }
    }

    /// Blocks until the leader completes the flight.
    pub(crate) fn wait(&self) -> Result<V, LoadError> {
        let mut state = self.state.lock();
        loop {
            if let Some(result) = &state.result {
                return result.clone();
            }
            state = self.done.wait(state);
        }
    }

    fn poll_result(&self, cx: &mut Context<'_>) -> Poll<Result<V, LoadError>> {
        let mut state = self.state.lock();
        if let Some(result) = &state.result {
            return Poll::Ready(result.clone());
        }
        if !state.wakers.iter().any(|w| w.will_wake(cx.waker())) {
            state.wakers.push(cx.waker().clone());
        }
        Poll::Pending
    }
}

/// Awaits a flight's result.
#[derive(Debug)]
pub(crate) struct WaitFlight<V> {
    pub(crate) flight: Arc<Flight<V>>,
}

impl<V: Clone> Future for WaitFlight<V> {
    type Output = Result<V, LoadError>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        self.flight.poll_result(cx)
    }
}

/// Runs a boxed future, turning a panic inside `poll` into `Err(message)`.
pub(crate) struct CatchUnwind<F> {
    pub(crate) inner: Pin<Box<F>>,
}

impl<F> core::fmt::Debug for CatchUnwind<F> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str("CatchUnwind")
    }
}

impl<F: Future> Future for CatchUnwind<F> {
    type Output = Result<F::Output, Arc<str>>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let inner = self.inner.as_mut();
        match std::panic::catch_unwind(std::panic::AssertUnwindSafe(move || inner.poll(cx))) {
            Ok(Poll::Ready(out)) => Poll::Ready(Ok(out)),
            Ok(Poll::Pending) => Poll::Pending,
            Err(payload) => Poll::Ready(Err(panic_message(payload.as_ref()))),
        }
    }
}

/// The text of a panic payload (`&str` or `String`), or a placeholder.
pub(crate) fn panic_message(payload: &(dyn Any + Send)) -> Arc<str> {
    if let Some(s) = payload.downcast_ref::<&str>() {
        Arc::from(*s)
    } else if let Some(s) = payload.downcast_ref::<String>() {
        Arc::from(s.as_str())
    } else {
        Arc::from("non-string panic payload")
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
    /// # Examples
    ///
    /// ```
    /// use keel_cache::Cache;
    ///
    /// let cache: Cache<u64, String> = Cache::new(100).unwrap();
    /// let v = cache.get_or_load(7, || "seven".to_string()).unwrap();
    /// assert_eq!(v, "seven");
    /// // A hit: the loader is not called again.
    /// let v = cache.get_or_load(7, || unreachable!()).unwrap();
    /// assert_eq!(v, "seven");
    /// assert_eq!(cache.stats().loads_ok, 1);
    /// ```
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
    ///
    /// # Examples
    ///
    /// ```
    /// use keel_cache::{Cache, LoadError};
    ///
    /// let cache: Cache<u64, u64> = Cache::new(100).unwrap();
    /// let err = cache
    ///     .try_get_or_load(1, || Err(std::io::Error::other("db down")))
    ///     .unwrap_err();
    /// assert!(err.downcast_ref::<std::io::Error>().is_some());
    /// // Errors are not cached: the next call loads again.
    /// assert_eq!(cache.try_get_or_load(1, || Ok::<_, std::io::Error>(5)).unwrap(), 5);
    /// ```
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
                let guard = LeaderGuard::new(self, hash, key, flight);
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
    ///
    /// # Examples
    ///
    /// ```
    /// use keel_cache::Cache;
    ///
    /// let cache: Cache<u64, u64> = Cache::new(100).unwrap();
    /// let rt = tokio::runtime::Builder::new_current_thread().build().unwrap();
    /// let v = rt.block_on(cache.try_get_or_load_async(3, || async { Ok::<_, std::io::Error>(9) }));
    /// assert_eq!(v.unwrap(), 9);
    /// assert_eq!(cache.get(&3), Some(9));
    /// ```
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
                let guard = LeaderGuard::new(self, hash, key, flight);
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

impl<'a, K, V> LeaderGuard<'a, K, V>
where
    K: Hash + Eq + Clone + Send + Sync + 'static,
    V: Clone + Send + Sync + 'static,
{
    /// The leader of `flight`, which registered it for `key`; starts the
    /// load timer.
    fn new(cache: &'a Cache<K, V>, hash: u64, key: K, flight: Arc<Flight<V>>) -> Self {
        LeaderGuard {
            cache,
            hash,
            key: Some(key),
            flight,
            started: cache.inner.clock.now(),
        }
    }

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

#[cfg(loom)]
mod loom_tests {
    //! `RUSTFLAGS="--cfg loom" cargo test -p keel-cache --lib --release loom_`
    //! (with its own target dir): every interleaving of a leader completing
    //! a flight against blocking waiters.
    use super::*;

    #[test]
    fn loom_every_waiter_sees_the_single_result() {
        loom::model(|| {
            let flight = Arc::new(Flight::<u32>::new());
            let waiters: Vec<_> = (0..2)
                .map(|_| {
                    let flight = Arc::clone(&flight);
                    loom::thread::spawn(move || flight.wait())
                })
                .collect();
            let leader = {
                let flight = Arc::clone(&flight);
                loom::thread::spawn(move || flight.complete(Ok(7)))
            };
            // A late duplicate completion (e.g. a drop guard) must not win.
            flight.complete(Err(LoadError::Cancelled));
            leader.join().unwrap();
            let first = waiters
                .into_iter()
                .map(|w| w.join().unwrap().ok())
                .collect::<Vec<_>>();
            assert_eq!(first[0], first[1], "all waiters see the same result");
        });
    }

    #[test]
    fn loom_async_waiter_is_woken_by_completion() {
        loom::model(|| {
            let flight = Arc::new(Flight::<u32>::new());
            let leader = {
                let flight = Arc::clone(&flight);
                loom::thread::spawn(move || flight.complete(Ok(3)))
            };
            // A lost wake-up would leave this blocked: loom reports it.
            let got = loom::future::block_on(WaitFlight {
                flight: Arc::clone(&flight),
            });
            assert_eq!(got.ok(), Some(3));
            leader.join().unwrap();
        });
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;

    #[test]
    fn waiters_see_the_published_result() {
        let flight = Arc::new(Flight::<u32>::new());
        let waiters: Vec<_> = (0..8)
            .map(|_| {
                let flight = Arc::clone(&flight);
                std::thread::spawn(move || flight.wait())
            })
            .collect();
        flight.complete(Ok(7));
        // A second completion is ignored: the first result wins.
        flight.complete(Err(LoadError::Cancelled));
        for w in waiters {
            assert_eq!(w.join().ok().and_then(Result::ok), Some(7));
        }
    }
}

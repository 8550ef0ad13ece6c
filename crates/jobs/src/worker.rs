//! The worker pool: per-queue fetch loops on tokio, one task per running job, heartbeats,
//! timeouts, contained panics, retries with backoff, and graceful shutdown.
//!
//! Per queue, a semaphore holds `concurrency` permits; the fetch loop waits for one free
//! permit, takes every other free one, and fetches that many jobs in one store call (one
//! commit on the embedded store). Each job runs in its own spawned task (or on tokio's
//! blocking pool for [`blocking_handler`](WorkerPoolBuilder::blocking_handler)s) under a
//! supervisor that heartbeats the lease, enforces the timeout, and reports the outcome.
//! A panic unwinds only the handler's task; the supervisor sees a `JoinError` and records
//! a [`FailureKind::Panic`].

use std::collections::HashMap;
use std::fmt;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use parking_lot::Mutex;
use rand::SeedableRng;
use rand::rngs::SmallRng;
use tokio::sync::{Notify, OwnedSemaphorePermit, Semaphore, watch};
use tokio::task::{AbortHandle, JoinHandle};

use keel_ratelimit::quanta::Clock as RateClock;
use keel_ratelimit::{Gcra, Quota, RateLimiter};

use crate::backoff::Backoff;
use crate::job::{FailureKind, Job};
use crate::metrics::{WorkerEvent, WorkerMetrics, WorkerStats};
use crate::store::{FailOutcome, Failure, Lease, Store};
use crate::{BuildError, FencingToken, JobId, Timestamp};

/// A handler's failure. Any `std::error::Error` converts into a retryable one with `?`;
/// [`HandlerError::permanent`] dead-letters the job without further attempts.
pub struct HandlerError {
    message: String,
    permanent: bool,
}

impl HandlerError {
    /// A retryable failure.
    pub fn new(message: impl Into<String>) -> Self {
        Self {
            message: message.into(),
            permanent: false,
        }
    }

    /// A failure that no retry can fix (bad input): the job is dead-lettered now.
    ///
    /// ```
    /// # use keel_jobs::HandlerError;
    /// assert!(HandlerError::permanent("no such user").is_permanent());
    /// assert!(!HandlerError::new("timeout talking to smtp").is_permanent());
    /// ```
    pub fn permanent(message: impl Into<String>) -> Self {
        Self {
            message: message.into(),
            permanent: true,
        }
    }

    /// The message recorded in the job's error history.
    pub fn message(&self) -> &str {
        &self.message
    }

    /// Whether retries are skipped.
    pub fn is_permanent(&self) -> bool {
        self.permanent
    }
}

impl<E: std::error::Error> From<E> for HandlerError {
    fn from(e: E) -> Self {
        Self::new(e.to_string())
    }
}

impl fmt::Display for HandlerError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl fmt::Debug for HandlerError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HandlerError")
            .field("message", &self.message)
            .field("permanent", &self.permanent)
            .finish()
    }
}

/// What a handler knows about the run it is in.
///
/// Delivery is at-least-once: a run can be repeated after a crash or a lost lease, so
/// side effects must be idempotent. Use [`JobContext::id`] as the idempotency key (e.g. a
/// unique constraint on `(job_id)` in the table the handler writes, or the
/// `Idempotency-Key` header of a payment API).
#[derive(Clone, Debug)]
pub struct JobContext {
    id: JobId,
    attempt: u32,
    max_attempts: u32,
    token: FencingToken,
    queue: String,
    kind: String,
    enqueued_at: Timestamp,
}

impl JobContext {
    /// The job's id: stable across attempts — the idempotency key.
    pub fn id(&self) -> JobId {
        self.id
    }

    /// This run's number, 1-based.
    pub fn attempt(&self) -> u32 {
        self.attempt
    }

    /// Runs allowed in total.
    pub fn max_attempts(&self) -> u32 {
        self.max_attempts
    }

    /// Whether a failure now dead-letters the job.
    pub fn is_last_attempt(&self) -> bool {
        self.attempt >= self.max_attempts
    }

    /// The lease's fencing token: pass it to a downstream system that can reject writes
    /// from a stale token (the classic fencing pattern).
    pub fn token(&self) -> FencingToken {
        self.token
    }

    /// The queue.
    pub fn queue(&self) -> &str {
        &self.queue
    }

    /// The kind.
    pub fn kind(&self) -> &str {
        &self.kind
    }

    /// When the job was enqueued.
    pub fn enqueued_at(&self) -> Timestamp {
        self.enqueued_at
    }
}

type HandlerResult = Result<(), HandlerError>;
type Spawner = dyn Fn(serde_json::Value, JobContext) -> Result<JoinHandle<HandlerResult>, String>
    + Send
    + Sync;

struct Handler {
    spawn: Box<Spawner>,
    backoff: Backoff,
}

/// Pool settings.
#[derive(Clone, Copy, Debug)]
struct Settings {
    lease: Duration,
    heartbeat: Duration,
    poll: Duration,
    default_timeout: Duration,
}

/// Builds a [`WorkerPool`].
#[must_use]
pub struct WorkerPoolBuilder<S> {
    store: Arc<S>,
    queues: Vec<(String, usize)>,
    handlers: HashMap<String, Handler>,
    duplicate: Option<String>,
    settings: Settings,
    seed: Option<u64>,
    rate_limits: Vec<(String, Quota)>,
    rate_clock: Option<RateClock>,
}

impl<S> fmt::Debug for WorkerPoolBuilder<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WorkerPoolBuilder")
            .field("queues", &self.queues)
            .field("settings", &self.settings)
            .finish()
    }
}

impl<S: Store> WorkerPoolBuilder<S> {
    /// Runs `queue` with up to `concurrency` jobs at once in this pool.
    pub fn queue(mut self, queue: impl Into<String>, concurrency: usize) -> Self {
        self.queues.push((queue.into(), concurrency));
        self
    }

    fn register(mut self, kind: &str, handler: Handler) -> Self {
        if self.handlers.insert(kind.to_owned(), handler).is_some() {
            self.duplicate.get_or_insert_with(|| kind.to_owned());
        }
        self
    }

    /// Handles jobs of type `J` with an async function (on tokio's worker threads).
    pub fn handler<J, F, Fut>(self, f: F) -> Self
    where
        J: Job,
        F: Fn(J, JobContext) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = HandlerResult> + Send + 'static,
    {
        let spawn = move |payload: serde_json::Value, ctx: JobContext| {
            let job: J = serde_json::from_value(payload).map_err(|e| e.to_string())?;
            Ok(tokio::spawn(f(job, ctx)))
        };
        self.register(
            J::KIND,
            Handler {
                spawn: Box::new(spawn),
                backoff: J::options().backoff,
            },
        )
    }

    /// Handles jobs of type `J` with a blocking function, on tokio's blocking pool (for
    /// CPU-heavy or synchronous-I/O work that would stall the async workers). A timed-out
    /// blocking run cannot be stopped: it is recorded as failed and its late ack is
    /// rejected by fencing, but its thread runs to the end.
    pub fn blocking_handler<J, F>(self, f: F) -> Self
    where
        J: Job,
        F: Fn(J, JobContext) -> HandlerResult + Send + Sync + 'static,
    {
        let f = Arc::new(f);
        let spawn = move |payload: serde_json::Value, ctx: JobContext| {
            let job: J = serde_json::from_value(payload).map_err(|e| e.to_string())?;
            let f = Arc::clone(&f);
            Ok(tokio::task::spawn_blocking(move || f(job, ctx)))
        };
        self.register(
            J::KIND,
            Handler {
                spawn: Box::new(spawn),
                backoff: J::options().backoff,
            },
        )
    }

    /// Lease length per fetch and per heartbeat extension (default 30 s).
    pub fn lease(mut self, lease: Duration) -> Self {
        self.settings.lease = lease;
        self
    }

    /// Heartbeat period while a job runs (default 10 s; must be under half the lease).
    pub fn heartbeat(mut self, every: Duration) -> Self {
        self.settings.heartbeat = every;
        self
    }

    /// Longest idle wait between fetches of an empty queue (default 100 ms; in-process
    /// stores wake the pool at once on enqueue).
    pub fn poll_interval(mut self, poll: Duration) -> Self {
        self.settings.poll = poll;
        self
    }

    /// Timeout of jobs that carry none (default 5 min).
    pub fn default_timeout(mut self, timeout: Duration) -> Self {
        self.settings.default_timeout = timeout;
        self
    }

    /// Starts at most `quota` jobs of `queue` (a GCRA limiter from `keel-ratelimit`: rate
    /// plus burst). The limit holds per pool: tokens are taken before each fetch, so a
    /// fetch that finds fewer jobs wastes some and the rate stays an upper bound. Limits
    /// across processes need a shared backend (Redis/Postgres, not built yet).
    pub fn rate_limit(mut self, queue: impl Into<String>, quota: Quota) -> Self {
        self.rate_limits.push((queue.into(), quota));
        self
    }

    /// The clock of the rate limiters (default `quanta::Clock::new()`; a mock in tests).
    pub fn clock(mut self, clock: RateClock) -> Self {
        self.rate_clock = Some(clock);
        self
    }

    /// Seeds the retry jitter (reproducible schedules in tests).
    pub fn seed(mut self, seed: u64) -> Self {
        self.seed = Some(seed);
        self
    }

    /// The pool (not yet running: see [`WorkerPool::start`]).
    ///
    /// # Errors
    ///
    /// [`BuildError::NoQueues`], [`BuildError::ZeroConcurrency`],
    /// [`BuildError::DuplicateHandler`], [`BuildError::ZeroDuration`],
    /// [`BuildError::HeartbeatTooSlow`], [`BuildError::DurationTooLong`].
    pub fn build(self) -> Result<WorkerPool<S>, BuildError> {
        if self.queues.is_empty() {
            return Err(BuildError::NoQueues);
        }
        if let Some((name, _)) = self.queues.iter().find(|(_, c)| *c == 0) {
            return Err(BuildError::ZeroConcurrency(name.clone()));
        }
        if let Some(kind) = self.duplicate {
            return Err(BuildError::DuplicateHandler(kind));
        }
        let s = self.settings;
        for (d, name) in [
            (s.lease, "lease"),
            (s.heartbeat, "heartbeat"),
            (s.poll, "poll interval"),
            (s.default_timeout, "default timeout"),
        ] {
            if d.is_zero() {
                return Err(BuildError::ZeroDuration(name));
            }
            if d > MAX_DURATION {
                return Err(BuildError::DurationTooLong(name));
            }
        }
        if s.heartbeat * 2 > s.lease {
            return Err(BuildError::HeartbeatTooSlow);
        }
        let rng = match self.seed {
            Some(seed) => SmallRng::seed_from_u64(seed),
            None => SmallRng::from_os_rng(),
        };
        let clock = self.rate_clock.unwrap_or_default();
        let mut limiters = HashMap::new();
        for (queue, quota) in self.rate_limits {
            let limiter = RateLimiter::<Gcra>::builder()
                .quota(quota)
                .clock(clock.clone())
                .name(format!("keel-jobs:{queue}"))
                .build()
                .map_err(|source| BuildError::RateLimit {
                    queue: queue.clone(),
                    source,
                })?;
            limiters.insert(queue, Arc::new(limiter));
        }
        let (shutdown, _) = watch::channel(false);
        Ok(WorkerPool {
            shared: Arc::new(Shared {
                store: self.store,
                handlers: self.handlers,
                settings: s,
                rng: Mutex::new(rng),
                metrics: WorkerMetrics::new(),
                inflight: Mutex::new(HashMap::new()),
                idle: Notify::new(),
                shutdown,
            }),
            queues: self.queues,
            limiters,
        })
    }
}

/// How long shutdown waits for aborted runs to actually stop before releasing them.
const ABORT_GRACE: Duration = Duration::from_millis(100);

/// The handler task of a run, set by its supervisor when it spawns it.
type HandlerSlot = Arc<std::sync::OnceLock<AbortHandle>>;

/// Longest lease, heartbeat, poll or timeout setting (about 100 years would overflow
/// nothing, but a year is already a mistake).
const MAX_DURATION: Duration = Duration::from_secs(366 * 24 * 3600);

struct Shared<S> {
    store: Arc<S>,
    handlers: HashMap<String, Handler>,
    settings: Settings,
    rng: Mutex<SmallRng>,
    metrics: WorkerMetrics,
    /// Running jobs by lease token: what shutdown must abort and release.
    /// Per running job: its id, its supervisor task, and its handler task once spawned.
    inflight: Mutex<HashMap<FencingToken, (JobId, AbortHandle, HandlerSlot)>>,
    idle: Notify,
    shutdown: watch::Sender<bool>,
}

/// A pool of workers for one store. Build with [`WorkerPool::builder`], run with
/// [`WorkerPool::start`].
///
/// ```
/// use std::sync::Arc;
/// use std::time::Duration;
/// use keel_jobs::{HandlerError, Job, JobContext, MemoryStore, Producer, Store, WorkerPool};
/// use serde::{Deserialize, Serialize};
///
/// #[derive(Serialize, Deserialize)]
/// struct Resize { image: u32 }
/// impl Job for Resize { const KIND: &'static str = "resize"; }
///
/// # tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap().block_on(async {
/// let store = Arc::new(MemoryStore::builder().build());
/// Producer::new(Arc::clone(&store)).enqueue(&Resize { image: 7 }).await?;
/// let pool = WorkerPool::builder(Arc::clone(&store))
///     .queue("default", 4)
///     .handler(|job: Resize, ctx: JobContext| async move {
///         assert_eq!((job.image, ctx.attempt()), (7, 1));
///         Ok::<(), HandlerError>(())
///     })
///     .build()?
///     .start();
/// while store.stats().completed < 1 { tokio::time::sleep(Duration::from_millis(5)).await }
/// let report = pool.shutdown(Duration::from_secs(5)).await;
/// assert_eq!((report.stats.succeeded, report.released), (1, 0));
/// # Ok::<(), Box<dyn std::error::Error>>(()) }).unwrap();
/// ```
pub struct WorkerPool<S> {
    shared: Arc<Shared<S>>,
    queues: Vec<(String, usize)>,
    limiters: HashMap<String, Arc<RateLimiter<Gcra>>>,
}

impl<S> fmt::Debug for WorkerPool<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WorkerPool")
            .field("queues", &self.queues)
            .field("settings", &self.shared.settings)
            .finish()
    }
}

impl<S: Store> WorkerPool<S> {
    /// A builder for a pool on `store`.
    pub fn builder(store: Arc<S>) -> WorkerPoolBuilder<S> {
        WorkerPoolBuilder {
            store,
            queues: Vec::new(),
            handlers: HashMap::new(),
            duplicate: None,
            settings: Settings {
                lease: Duration::from_secs(30),
                heartbeat: Duration::from_secs(10),
                poll: Duration::from_millis(100),
                default_timeout: Duration::from_secs(300),
            },
            seed: None,
            rate_limits: Vec::new(),
            rate_clock: None,
        }
    }

    /// Starts one fetch loop per queue on the current tokio runtime.
    ///
    /// # Panics
    ///
    /// Outside a tokio runtime.
    pub fn start(self) -> RunningPool<S> {
        let loops = self
            .queues
            .iter()
            .map(|(queue, concurrency)| {
                tokio::spawn(fetch_loop(
                    Arc::clone(&self.shared),
                    queue.clone(),
                    *concurrency,
                    self.limiters.get(queue).cloned(),
                ))
            })
            .collect();
        RunningPool {
            shared: self.shared,
            loops,
        }
    }
}

/// A started pool. Dropping it without [`shutdown`](RunningPool::shutdown) stops fetching
/// but leaves running jobs to finish on their own (their leases expire if they never do).
pub struct RunningPool<S> {
    shared: Arc<Shared<S>>,
    loops: Vec<JoinHandle<()>>,
}

impl<S> fmt::Debug for RunningPool<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RunningPool")
            .field("loops", &self.loops.len())
            .finish()
    }
}

impl<S> Drop for RunningPool<S> {
    fn drop(&mut self) {
        self.shared.shutdown.send_replace(true);
    }
}

/// What [`RunningPool::shutdown`] did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ShutdownReport {
    /// Jobs still running at the deadline, aborted and given back to the store.
    pub released: usize,
    /// The pool's counters at the end.
    pub stats: WorkerStats,
}

impl<S: Store> RunningPool<S> {
    /// The pool's counters.
    pub fn stats(&self) -> WorkerStats {
        self.shared.metrics.snapshot()
    }

    /// Jobs running now.
    pub fn running(&self) -> usize {
        self.shared.inflight.lock().len()
    }

    /// Graceful shutdown: stop fetching, let running jobs finish for up to `deadline`,
    /// then abort the rest and release their leases so another worker takes them at once
    /// (their attempt does not count). A run whose handler has not actually stopped within
    /// a short grace after the abort (a [blocking](WorkerPoolBuilder::blocking_handler)
    /// run, or an async one stuck in synchronous work) is not released — another worker
    /// would run the job concurrently — its heartbeats stop and its lease runs out instead.
    pub async fn shutdown(mut self, deadline: Duration) -> ShutdownReport {
        let shared = Arc::clone(&self.shared);
        shared.shutdown.send_replace(true);
        for handle in self.loops.drain(..) {
            let _ = handle.await;
        }
        let until = tokio::time::Instant::now() + deadline;
        loop {
            let idle = shared.idle.notified();
            tokio::pin!(idle);
            idle.as_mut().enable();
            if shared.inflight.lock().is_empty() {
                break;
            }
            if tokio::time::timeout_at(until, idle).await.is_err() {
                break;
            }
        }
        let leftovers: Vec<(FencingToken, (JobId, AbortHandle, HandlerSlot))> =
            shared.inflight.lock().drain().collect();
        for (_, (_, supervisor, handler)) in &leftovers {
            supervisor.abort();
            if let Some(h) = handler.get() {
                h.abort();
            }
        }
        // An abort is a request: a handler is only gone once its task has finished (an
        // async handler at its next await; a blocking one never before it returns).
        // Releasing earlier would let another worker start the job while this run still
        // executes it — two runs on a valid lease. Wait a short, bounded grace; a run
        // still going after it keeps its lease (heartbeats have stopped, so it runs out).
        let stopped = |(supervisor, handler): (&AbortHandle, &HandlerSlot)| {
            supervisor.is_finished() && handler.get().is_none_or(AbortHandle::is_finished)
        };
        let grace = tokio::time::Instant::now() + ABORT_GRACE;
        while !leftovers.iter().all(|(_, (_, s, h))| stopped((s, h)))
            && tokio::time::Instant::now() < grace
        {
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        let mut released = 0;
        for (token, (id, supervisor, handler)) in leftovers {
            if !stopped((&supervisor, &handler)) {
                continue;
            }
            match shared.store.release(id, token).await {
                Ok(()) => {
                    released += 1;
                    shared.metrics.add(WorkerEvent::Released, 1);
                }
                Err(e) if e.is_fenced() => {} // finished or lost meanwhile
                Err(_) => shared.metrics.add(WorkerEvent::StoreError, 1),
            }
        }
        ShutdownReport {
            released,
            stats: shared.metrics.snapshot(),
        }
    }
}

async fn fetch_loop<S: Store>(
    shared: Arc<Shared<S>>,
    queue: String,
    concurrency: usize,
    limiter: Option<Arc<RateLimiter<Gcra>>>,
) {
    let permits = Arc::new(Semaphore::new(concurrency));
    let mut stop = shared.shutdown.subscribe();
    let mut error_wait = shared.settings.poll;
    loop {
        let first = tokio::select! {
            biased;
            _ = stop.wait_for(|s| *s) => return,
            p = Arc::clone(&permits).acquire_owned() => match p { Ok(p) => p, Err(_) => return },
        };
        let mut held = vec![first];
        while let Ok(p) = Arc::clone(&permits).try_acquire_owned() {
            held.push(p);
        }
        if let Some(limiter) = &limiter {
            // One token per job this fetch may start; stop at the first denial.
            let mut allowed = 0;
            let mut wait = None;
            while allowed < held.len() {
                let decision = limiter.check();
                if decision.allowed {
                    allowed += 1;
                } else {
                    wait = decision.retry_after;
                    break;
                }
            }
            if allowed == 0 {
                drop(held);
                let wait = wait
                    .unwrap_or(shared.settings.poll)
                    .max(Duration::from_millis(1));
                tokio::select! {
                    biased;
                    _ = stop.wait_for(|s| *s) => return,
                    () = tokio::time::sleep(wait) => {}
                }
                continue;
            }
            held.truncate(allowed);
        }
        match shared
            .store
            .fetch(&queue, held.len(), shared.settings.lease)
            .await
        {
            Ok(leases) if leases.is_empty() => {
                drop(held);
                error_wait = shared.settings.poll;
                tokio::select! {
                    biased;
                    _ = stop.wait_for(|s| *s) => return,
                    () = shared.store.wait_for_work(&queue, shared.settings.poll) => {}
                }
            }
            Ok(leases) => {
                error_wait = shared.settings.poll;
                shared
                    .metrics
                    .add(WorkerEvent::Fetched, leases.len() as u64);
                if *shared.shutdown.borrow() {
                    for lease in leases {
                        if shared
                            .store
                            .release(lease.job.id, lease.token)
                            .await
                            .is_ok()
                        {
                            shared.metrics.add(WorkerEvent::Released, 1);
                        }
                    }
                    return;
                }
                for (lease, permit) in leases.into_iter().zip(held) {
                    spawn_job(&shared, lease, permit);
                }
            }
            Err(_) => {
                drop(held);
                shared.metrics.add(WorkerEvent::StoreError, 1);
                tokio::select! {
                    biased;
                    _ = stop.wait_for(|s| *s) => return,
                    () = tokio::time::sleep(error_wait) => {}
                }
                error_wait = (error_wait * 2).min(Duration::from_secs(5));
            }
        }
    }
}

fn spawn_job<S: Store>(shared: &Arc<Shared<S>>, lease: Lease, permit: OwnedSemaphorePermit) {
    let token = lease.token;
    let id = lease.job.id;
    let slot = HandlerSlot::default();
    let mut inflight = shared.inflight.lock();
    let task = tokio::spawn(run_job(
        Arc::clone(shared),
        lease,
        permit,
        Arc::clone(&slot),
    ));
    inflight.insert(token, (id, task.abort_handle(), slot));
}

/// Aborts the handler's task when the supervisor is dropped (shutdown abort) or leaves
/// early (timeout, lost lease).
struct AbortOnDrop(AbortHandle);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

enum Outcome {
    Success,
    Failed {
        kind: FailureKind,
        message: String,
        permanent: bool,
    },
    LostLease,
}

async fn run_job<S: Store>(
    shared: Arc<Shared<S>>,
    lease: Lease,
    permit: OwnedSemaphorePermit,
    slot: HandlerSlot,
) {
    let job = lease.job;
    let (id, token) = (job.id, lease.token);
    let started = shared.store.now();
    shared.metrics.wait.record(
        started
            .saturating_since(job.run_at.max(job.enqueued_at))
            .as_secs_f64(),
    );
    let ctx = JobContext {
        id,
        attempt: job.attempt,
        max_attempts: job.max_attempts,
        token,
        queue: job.queue.clone(),
        kind: job.kind.clone(),
        enqueued_at: job.enqueued_at,
    };
    let handler = shared.handlers.get(&job.kind);
    let outcome = match handler {
        None => {
            shared.metrics.add(WorkerEvent::UnknownKind, 1);
            Outcome::Failed {
                kind: FailureKind::UnknownKind,
                message: format!("no handler for job kind `{}`", job.kind),
                permanent: true,
            }
        }
        // The handler closure runs here, synchronously, before its future is spawned: a
        // panic in it (or in a payload's `Deserialize`) must not unwind this supervisor,
        // which would leave the job leased until expiry and its in-flight entry leaked.
        Some(h) => match std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            (h.spawn)(job.payload, ctx)
        })) {
            Err(panic) => {
                shared.metrics.add(WorkerEvent::Panicked, 1);
                Outcome::Failed {
                    kind: FailureKind::Panic,
                    message: format!("handler panicked: {}", panic_message(panic)),
                    permanent: false,
                }
            }
            Ok(Err(e)) => {
                shared.metrics.add(WorkerEvent::BadPayload, 1);
                Outcome::Failed {
                    kind: FailureKind::BadPayload,
                    message: format!("payload does not deserialize as `{}`: {e}", job.kind),
                    permanent: true,
                }
            }
            Ok(Ok(task)) => {
                let _ = slot.set(task.abort_handle());
                supervise(
                    &shared,
                    task,
                    id,
                    token,
                    job.timeout.unwrap_or(shared.settings.default_timeout),
                )
                .await
            }
        },
    };
    shared
        .metrics
        .run
        .record(shared.store.now().saturating_since(started).as_secs_f64());
    let m = &shared.metrics;
    match outcome {
        Outcome::Success => match shared.store.complete(id, token).await {
            Ok(()) => m.add(WorkerEvent::Succeeded, 1),
            Err(e) if e.is_fenced() => m.add(WorkerEvent::LateAckRejected, 1),
            Err(_) => m.add(WorkerEvent::StoreError, 1),
        },
        Outcome::Failed {
            kind,
            message,
            permanent,
        } => {
            m.add(WorkerEvent::Failed, 1);
            let retry_at = (!permanent).then(|| {
                let backoff = handler.map_or_else(Backoff::default, |h| h.backoff);
                let delay = backoff.delay(job.attempt, &mut *shared.rng.lock());
                shared.store.now().saturating_add(delay)
            });
            match shared
                .store
                .fail(
                    id,
                    token,
                    Failure {
                        kind,
                        message,
                        retry_at,
                    },
                )
                .await
            {
                Ok(FailOutcome::Retrying { .. }) => m.add(WorkerEvent::Retried, 1),
                Ok(FailOutcome::Dead) => m.add(WorkerEvent::Dead, 1),
                Err(e) if e.is_fenced() => m.add(WorkerEvent::LateAckRejected, 1),
                Err(_) => m.add(WorkerEvent::StoreError, 1),
            }
        }
        Outcome::LostLease => m.add(WorkerEvent::LostLease, 1),
    }
    drop(permit);
    let mut inflight = shared.inflight.lock();
    inflight.remove(&token);
    if inflight.is_empty() {
        shared.idle.notify_waiters();
    }
}

async fn supervise<S: Store>(
    shared: &Shared<S>,
    mut task: JoinHandle<HandlerResult>,
    id: JobId,
    token: FencingToken,
    timeout: Duration,
) -> Outcome {
    let _abort = AbortOnDrop(task.abort_handle());
    let period = shared.settings.heartbeat;
    let mut heartbeat = tokio::time::interval_at(tokio::time::Instant::now() + period, period);
    let deadline = tokio::time::sleep(timeout);
    tokio::pin!(deadline);
    loop {
        tokio::select! {
            result = &mut task => {
                return match result {
                    Ok(Ok(())) => Outcome::Success,
                    Ok(Err(e)) => Outcome::Failed { kind: FailureKind::Error, permanent: e.permanent, message: e.message },
                    Err(e) if e.is_panic() => {
                        shared.metrics.add(WorkerEvent::Panicked, 1);
                        Outcome::Failed { kind: FailureKind::Panic, message: format!("handler panicked: {}", panic_message(e.into_panic())), permanent: false }
                    }
                    Err(_) => Outcome::Failed { kind: FailureKind::Error, message: "handler task was cancelled".into(), permanent: false },
                };
            }
            () = &mut deadline => {
                shared.metrics.add(WorkerEvent::TimedOut, 1);
                return Outcome::Failed { kind: FailureKind::Timeout, message: format!("timed out after {timeout:?}"), permanent: false };
            }
            _ = heartbeat.tick() => {
                match shared.store.heartbeat(id, token, shared.settings.lease).await {
                    Ok(_) => {}
                    Err(e) if e.is_fenced() => return Outcome::LostLease,
                    Err(_) => shared.metrics.add(WorkerEvent::StoreError, 1),
                }
            }
        }
    }
}

fn panic_message(payload: Box<dyn std::any::Any + Send>) -> String {
    if let Some(s) = payload.downcast_ref::<&str>() {
        (*s).to_owned()
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s.clone()
    } else {
        "non-string panic payload".to_owned()
    }
}

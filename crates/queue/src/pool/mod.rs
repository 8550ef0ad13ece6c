//! A work-stealing thread pool.
//!
//! Each worker owns a LIFO deque (`crossbeam_deque::Worker`): tasks spawned
//! from inside a task go there, so a task's children run on the same core
//! with warm caches. Tasks spawned from outside go to a global FIFO
//! `Injector`. An idle worker takes from its own deque, then a batch from the
//! injector, then steals the *oldest* task from another worker's deque (the
//! other end from where its owner works, so owner and thief rarely collide).
//! When there is nothing anywhere a worker spins briefly and then sleeps on a
//! condition variable (see `sleep.rs`); spawning wakes one sleeper.
//!
//! Per-task cost (the bench's fork-join tree, 8 191 tiny tasks, one worker,
//! callgrind instructions per task for the whole program): 409 before, 263
//! after `execute` closures of up to three words went inline into the deque
//! slot instead of a box (`job.rs`: ≈ 138 instructions of `malloc`/`free`
//! gone) and the worker loop kept one borrow of its context; rayon 318. Wall
//! time followed only once a spawn stopped copying the job through the stack
//! (a `const` thread-local pointer to the worker's context, `worker.rs`):
//! with inline jobs alone, same-run Keel/rayon on the loaded 2-core machine
//! was 0.63–0.68× at 1 thread (a standalone ns/task A/B put the code before
//! inline jobs at the same speed); with the pointer, three runs at load 3–5:
//! 1 thread 0.91–1.04×, 2 threads 0.98–1.09×.
//!
//! ```
//! use keel_queue::Pool;
//!
//! let pool = Pool::new(2)?;
//! let handle = pool.spawn(|| 6 * 7);
//! assert_eq!(handle.join(), Ok(42));
//! let panicked = pool.spawn(|| -> u32 { panic!("boom") });
//! assert!(panicked.join().is_err());
//! assert_eq!(pool.spawn(|| 1).join(), Ok(1)); // the worker survived
//! pool.shutdown();
//! # Ok::<(), keel_queue::BuildError>(())
//! ```

mod job;
mod sleep;
mod task;
mod worker;

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::AtomicU8;
use std::thread::JoinHandle as ThreadHandle;

use crossbeam_deque::{Injector, Steal, Stealer, Worker};
use crossbeam_utils::CachePadded;

use crate::error::BuildError;
use crate::sync::{AtomicU64, AtomicUsize, Condvar, Mutex, Ordering, fence};
use job::Job;
pub use sleep::Sleep;
use task::Task;
pub use task::{JoinHandle, ModelJob};

const RUNNING: u8 = 0;
const DRAINING: u8 = 1;
const STOPPING: u8 = 2;

static NEXT_POOL_ID: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(1);

#[derive(Debug, Default)]
struct WorkerCounters {
    tasks_run: AtomicU64,
    steals: AtomicU64,
    panicked: AtomicU64,
}

pub(crate) struct PoolInner {
    id: usize,
    injector: Injector<Job>,
    stealers: Vec<Stealer<Job>>,
    sleep: CachePadded<Sleep>,
    state: AtomicU8,
    /// Spawned and not yet finished (run or cancelled). Written on every
    /// spawn and completion, so it gets a cache line of its own (sharing one
    /// with `state` or the stealers would make every worker's reads miss).
    pending: CachePadded<AtomicUsize>,
    never_started: AtomicUsize,
    workers: Vec<CachePadded<WorkerCounters>>,
    idle_lock: Mutex<()>,
    idle: Condvar,
}

impl fmt::Debug for PoolInner {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PoolInner")
            .field("id", &self.id)
            .field("workers", &self.workers.len())
            .finish()
    }
}

impl PoolInner {
    fn is_stopping(&self) -> bool {
        self.state.load(Ordering::SeqCst) == STOPPING
    }

    fn is_draining(&self) -> bool {
        self.state.load(Ordering::SeqCst) == DRAINING
    }

    fn has_visible_work(&self) -> bool {
        !self.injector.is_empty() || self.stealers.iter().any(|s| !s.is_empty())
    }

    fn task_done(&self) {
        if self.pending.fetch_sub(1, Ordering::SeqCst) == 1 {
            let _guard = self.idle_lock.lock();
            self.idle.notify_all();
            drop(_guard);
            if self.is_draining() {
                self.sleep.wake_all();
            }
        }
    }

    fn cancel_injected(&self) {
        loop {
            match self.injector.steal() {
                Steal::Success(job) => {
                    job.cancel();
                    self.never_started.fetch_add(1, Ordering::Relaxed);
                    self.task_done();
                }
                Steal::Retry => continue,
                Steal::Empty => break,
            }
        }
    }

    /// Inlined into each `execute`/`spawn`, with [`worker::push`] and the job's
    /// construction: the job then goes from registers straight into its deque
    /// slot. Called through a function, the job was copied on the stack on the
    /// way, and each copy read back 16-byte halves of values just written as
    /// 8-byte words — failed store-to-load forwards, where `perf` put most of
    /// the pool's time on the bench's tree.
    #[inline]
    fn submit(self: &Arc<Self>, job: Job) {
        self.pending.fetch_add(1, Ordering::SeqCst);
        if self.is_stopping() {
            self.reject(job);
            return;
        }
        match worker::push(self, job) {
            // The worker's deque already had work, so an earlier push (to the
            // empty deque) made the fenced check below, and this worker is
            // awake and will run it anyway: a plain look for sleepers is
            // enough (a wake here only adds parallelism, as in rayon).
            Some(false) => self.sleep.wake_one_unfenced(),
            Some(true) => self.sleep.wake_one(),
            None => self.injected(),
        }
    }

    /// A job submitted after an immediate shutdown: never started.
    #[cold]
    #[inline(never)]
    fn reject(&self, job: Job) {
        job.cancel();
        self.never_started.fetch_add(1, Ordering::Relaxed);
        self.task_done();
    }

    /// After a push onto the injector.
    #[inline(never)]
    fn injected(&self) {
        // If the pool stopped while we pushed, nobody may ever look at the
        // injector again: cancel what is there ourselves.
        fence(Ordering::SeqCst);
        if self.is_stopping() {
            self.cancel_injected();
            return;
        }
        self.sleep.wake_one();
    }

    fn wait_idle(&self) {
        // Fork-join callers usually wait for a burst that is about to end:
        // a short spin saves the futex round trip (bounded, then block).
        let mut spin = crate::sync::Spin::new();
        while self.pending.load(Ordering::SeqCst) != 0 && spin.spin() {}
        let mut guard = self.idle_lock.lock();
        while self.pending.load(Ordering::SeqCst) != 0 {
            guard = self.idle.wait(guard);
        }
    }
}

/// Per-worker counters.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct WorkerStats {
    /// Tasks this worker ran (including ones that panicked).
    pub tasks_run: u64,
    /// Tasks this worker stole from another worker's deque.
    pub steals: u64,
    /// Tasks that panicked on this worker (caught; reported through the
    /// handle, or only counted for `execute`d tasks).
    pub panicked: u64,
}

/// A snapshot of a pool's counters.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct PoolStats {
    /// One entry per worker, in worker order.
    pub workers: Vec<WorkerStats>,
    /// Tasks spawned and not finished.
    pub pending: usize,
    /// Tasks cancelled before they started (immediate shutdown).
    pub never_started: usize,
}

impl PoolStats {
    /// Total tasks run by all workers.
    pub fn tasks_run(&self) -> u64 {
        self.workers.iter().map(|w| w.tasks_run).sum()
    }

    /// Tasks spawned so far: run, never started, or still pending.
    pub fn spawned(&self) -> u64 {
        self.tasks_run() + self.never_started as u64 + self.pending as u64
    }

    /// Total steals by all workers.
    pub fn steals(&self) -> u64 {
        self.workers.iter().map(|w| w.steals).sum()
    }
}

/// A cloneable handle that spawns onto a pool, for tasks that spawn tasks.
#[derive(Clone)]
pub struct Spawner {
    inner: Arc<PoolInner>,
}

impl fmt::Debug for Spawner {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Spawner")
            .field("pool", &self.inner.id)
            .finish()
    }
}

impl Spawner {
    /// Spawns `func`; see [`Pool::spawn`].
    pub fn spawn<F, R>(&self, func: F) -> JoinHandle<R>
    where
        F: FnOnce() -> R + Send + 'static,
        R: Send + 'static,
    {
        spawn_on(&self.inner, func)
    }

    /// Runs `func` on the pool without a handle (fire and forget); see [`Pool::execute`].
    #[inline]
    pub fn execute<F: FnOnce() + Send + 'static>(&self, func: F) {
        self.inner.submit(Job::detached(func));
    }

    /// `true` once the pool was asked to shut down (graceful or immediate):
    /// long-running tasks can poll this to stop early.
    pub fn is_shut_down(&self) -> bool {
        self.inner.state.load(Ordering::SeqCst) != RUNNING
    }
}

fn spawn_on<F, R>(inner: &Arc<PoolInner>, func: F) -> JoinHandle<R>
where
    F: FnOnce() -> R + Send + 'static,
    R: Send + 'static,
{
    let (job, completion) = Task::new(func);
    inner.submit(Job::Boxed(job));
    JoinHandle {
        task: completion,
        pool_id: inner.id,
    }
}

/// Configures a [`Pool`]; from [`Pool::builder`].
#[must_use]
#[derive(Debug, Clone)]
pub struct PoolBuilder {
    threads: Option<usize>,
    name: String,
}

impl PoolBuilder {
    /// Number of worker threads, 1 to [`Pool::MAX_THREADS`] (default:
    /// `std::thread::available_parallelism`).
    pub fn threads(mut self, threads: usize) -> Self {
        self.threads = Some(threads);
        self
    }

    /// Worker threads are named `{name}-{index}`.
    pub fn name(mut self, name: impl Into<String>) -> Self {
        self.name = name.into();
        self
    }

    /// Starts the workers.
    ///
    /// # Errors
    /// [`BuildError::ZeroThreads`], [`BuildError::TooManyThreads`] (above
    /// [`Pool::MAX_THREADS`]), or [`BuildError::Spawn`] (carrying the
    /// `io::Error`) if the OS refuses a thread.
    pub fn build(self) -> Result<Pool, BuildError> {
        let threads = self.threads.unwrap_or_else(|| {
            std::thread::available_parallelism().map_or(1, std::num::NonZeroUsize::get)
        });
        Pool::start(threads, &self.name)
    }
}

/// A work-stealing pool of worker threads.
pub struct Pool {
    inner: Arc<PoolInner>,
    threads: Vec<ThreadHandle<()>>,
}

impl fmt::Debug for Pool {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Pool")
            .field("threads", &self.threads.len())
            .finish()
    }
}

impl Pool {
    /// The most worker threads a pool accepts. A pool is for CPU-bound work,
    /// where threads beyond the core count only add switching; the bound
    /// turns a typo (`usize::MAX`, `100_000`) into an error instead of a panic
    /// or thousands of threads.
    pub const MAX_THREADS: usize = 1024;

    /// A builder: [`PoolBuilder::threads`] (default: the machine's available
    /// parallelism) and [`PoolBuilder::name`] (default `keel-pool`).
    ///
    /// ```
    /// use keel_queue::Pool;
    ///
    /// let pool = Pool::builder().threads(2).name("render").build()?;
    /// assert_eq!(pool.threads(), 2);
    /// assert_eq!(pool.spawn(|| 6 * 7).join(), Ok(42));
    /// # Ok::<(), keel_queue::BuildError>(())
    /// ```
    pub fn builder() -> PoolBuilder {
        PoolBuilder {
            threads: None,
            name: "keel-pool".into(),
        }
    }

    /// Starts `threads` workers: shorthand for `Pool::builder().threads(threads).build()`.
    ///
    /// # Errors
    /// As [`PoolBuilder::build`].
    pub fn new(threads: usize) -> Result<Self, BuildError> {
        Self::builder().threads(threads).build()
    }

    fn start(threads: usize, name: &str) -> Result<Self, BuildError> {
        if threads == 0 {
            return Err(BuildError::ZeroThreads);
        }
        if threads > Self::MAX_THREADS {
            return Err(BuildError::TooManyThreads(threads));
        }
        let locals: Vec<Worker<Job>> = (0..threads).map(|_| Worker::new_lifo()).collect();
        let inner = Arc::new(PoolInner {
            id: NEXT_POOL_ID.fetch_add(1, std::sync::atomic::Ordering::Relaxed),
            injector: Injector::new(),
            stealers: locals.iter().map(Worker::stealer).collect(),
            sleep: CachePadded::new(Sleep::new()),
            state: AtomicU8::new(RUNNING),
            pending: CachePadded::new(AtomicUsize::new(0)),
            never_started: AtomicUsize::new(0),
            workers: (0..threads)
                .map(|_| CachePadded::new(WorkerCounters::default()))
                .collect(),
            idle_lock: Mutex::new(()),
            idle: Condvar::new(),
        });
        let mut pool = Pool {
            inner: inner.clone(),
            threads: Vec::with_capacity(threads),
        };
        for (index, local) in locals.into_iter().enumerate() {
            let inner = inner.clone();
            let thread = std::thread::Builder::new()
                .name(format!("{name}-{index}"))
                .spawn(move || worker::main_loop(inner, index, local))
                .map_err(|e| BuildError::Spawn(Arc::new(e)))?;
            pool.threads.push(thread);
        }
        Ok(pool)
    }

    /// Number of worker threads.
    pub fn threads(&self) -> usize {
        self.threads.len()
    }

    /// Runs `func` on the pool and returns a handle to its result. A panic in
    /// `func` is caught and reported by [`JoinHandle::join`]; the worker lives
    /// on. Called from inside a task, the new task goes to that worker's own
    /// deque (and may be stolen by idle workers).
    pub fn spawn<F, R>(&self, func: F) -> JoinHandle<R>
    where
        F: FnOnce() -> R + Send + 'static,
        R: Send + 'static,
    {
        spawn_on(&self.inner, func)
    }

    /// Runs `func` on the pool without a handle: cheaper than [`Pool::spawn`]
    /// when nobody needs the result — no result slot, and a closure of up to
    /// three words (a reference or an `Arc` and an index, say) travels inside
    /// the deque with no allocation at all (`pool/job.rs`). A panic is caught
    /// and counted in [`WorkerStats::panicked`].
    #[inline]
    pub fn execute<F: FnOnce() + Send + 'static>(&self, func: F) {
        self.inner.submit(Job::detached(func));
    }

    /// A cloneable handle for spawning from inside tasks.
    pub fn spawner(&self) -> Spawner {
        Spawner {
            inner: self.inner.clone(),
        }
    }

    /// Blocks until every spawned task has finished (including tasks they spawned).
    pub fn wait_idle(&self) {
        self.inner.wait_idle();
    }

    /// A snapshot of the counters.
    pub fn stats(&self) -> PoolStats {
        PoolStats {
            workers: self
                .inner
                .workers
                .iter()
                .map(|w| WorkerStats {
                    tasks_run: w.tasks_run.load(Ordering::Relaxed),
                    steals: w.steals.load(Ordering::Relaxed),
                    panicked: w.panicked.load(Ordering::Relaxed),
                })
                .collect(),
            pending: self.inner.pending.load(Ordering::SeqCst),
            never_started: self.inner.never_started.load(Ordering::Relaxed),
        }
    }

    /// Graceful shutdown: runs everything already queued (and whatever those
    /// tasks spawn), then stops the workers. Returns the final counters.
    pub fn shutdown(mut self) -> PoolStats {
        self.stop_gracefully();
        self.stats()
    }

    /// Immediate shutdown: running tasks finish, queued tasks never start
    /// (their handles report [`TaskError::Cancelled`](crate::TaskError::Cancelled)).
    /// Returns how many tasks never started.
    pub fn shutdown_now(mut self) -> usize {
        self.inner.state.store(STOPPING, Ordering::SeqCst);
        fence(Ordering::SeqCst);
        self.inner.sleep.wake_all();
        self.join_threads();
        self.inner.cancel_injected();
        self.inner.never_started.load(Ordering::Relaxed)
    }

    fn stop_gracefully(&mut self) {
        if self.threads.is_empty() {
            return;
        }
        self.inner.state.store(DRAINING, Ordering::SeqCst);
        self.inner.sleep.wake_all();
        self.inner.wait_idle();
        self.inner.state.store(STOPPING, Ordering::SeqCst);
        fence(Ordering::SeqCst);
        self.inner.sleep.wake_all();
        self.join_threads();
        // Anything spawned between the last task and STOPPING.
        self.inner.cancel_injected();
    }

    fn join_threads(&mut self) {
        for thread in self.threads.drain(..) {
            // A worker only ends by returning; task panics are caught inside.
            let _ = thread.join();
        }
    }

    /// Number of workers asleep now.
    pub fn sleeping(&self) -> usize {
        self.inner.sleep.sleeping()
    }
}

impl Drop for Pool {
    /// Dropping a pool shuts it down gracefully (nothing queued is lost).
    fn drop(&mut self) {
        self.stop_gracefully();
    }
}

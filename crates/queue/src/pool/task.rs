//! A task and the handle to its result. One allocation per task holds the
//! closure, the result slot and the joiner's thread handle.
//!
//! A task's life is a small state machine in one atomic byte: `QUEUED`, then
//! exactly one of `run` or `cancel` wins the CAS to `TAKEN` and owns the
//! closure, then it writes the outcome and sets `DONE` (release). A joiner
//! that finds the task unfinished records its thread and sets the `WAITING`
//! bit; the completer sees that bit in the value it swapped out and unparks
//! it. No lock is taken unless somebody actually waits.
//!
//! Every atomic, cell, lock and park here comes from the crate's loom shim
//! (`sync.rs`), so `tests/loom_pool_task.rs` checks this protocol under every
//! interleaving.

use std::fmt;
use std::panic::{AssertUnwindSafe, catch_unwind};

use super::job::Job;
use crate::error::TaskError;
use crate::sync::{Arc, AtomicU8, Mutex, Ordering, Thread, UnsafeCell, current, park};

const QUEUED: u8 = 0;
const TAKEN: u8 = 1;
const DONE: u8 = 2;
const STATE_MASK: u8 = 0b11;
const WAITING: u8 = 0b100;

/// A type-erased runnable task, boxed in a [`Job`]. A job sits in exactly one
/// deque once, so whoever pops it owns it: it is consumed by exactly one of
/// `run` or `cancel`.
pub(crate) trait Runnable: Send {
    /// Runs the task. Panics are caught; returns `true` if it panicked.
    fn run(self: Box<Self>) -> bool;
    /// Resolves the task as never started.
    fn cancel(self: Box<Self>);
}

/// The state machine shared by a task and its handle.
pub(crate) struct Completion<R> {
    state: AtomicU8,
    result: UnsafeCell<Option<Result<R, TaskError>>>,
    joiner: Mutex<Option<Thread>>,
}

// SAFETY: `result` is written once by the thread that won the QUEUED→TAKEN
// CAS, before it publishes DONE with release ordering, and read only after an
// acquire load observed DONE (by the single `JoinHandle`, which `join` consumes).
unsafe impl<R: Send> Sync for Completion<R> {}
// SAFETY: as above; the result value moves between threads, hence `R: Send`.
unsafe impl<R: Send> Send for Completion<R> {}

impl<R> Completion<R> {
    fn new() -> Self {
        Self {
            state: AtomicU8::new(QUEUED),
            result: UnsafeCell::new(None),
            joiner: Mutex::new(None),
        }
    }

    /// Claims the right to resolve the task (keeping the `WAITING` bit).
    fn take(&self) -> bool {
        let mut state = self.state.load(Ordering::Acquire);
        loop {
            if state & STATE_MASK != QUEUED {
                return false;
            }
            match self.state.compare_exchange_weak(
                state,
                state | TAKEN,
                Ordering::AcqRel,
                Ordering::Acquire,
            ) {
                Ok(_) => return true,
                Err(current) => state = current,
            }
        }
    }

    /// Stores the outcome; only after a successful `take`.
    fn complete(&self, outcome: Result<R, TaskError>) {
        // SAFETY: we won `take`, so nobody else writes; nobody reads before DONE.
        self.result
            .with_mut(|slot| unsafe { *slot = Some(outcome) });
        // TAKEN (1) + 1 = DONE (2); the WAITING bit is untouched.
        let previous = self.state.fetch_add(1, Ordering::AcqRel);
        if previous & WAITING != 0
            && let Some(thread) = self.joiner.lock().take()
        {
            thread.unpark();
        }
    }

    pub(crate) fn is_done(&self) -> bool {
        self.state.load(Ordering::Acquire) & STATE_MASK == DONE
    }

    /// Blocks until done, then takes the outcome.
    pub(crate) fn wait(&self) -> Result<R, TaskError> {
        if !self.is_done() {
            *self.joiner.lock() = Some(current());
            self.state.fetch_or(WAITING, Ordering::AcqRel);
            while !self.is_done() {
                park();
            }
        }
        // SAFETY: DONE was observed with acquire ordering, so the write in
        // `complete` is visible and finished; the handle is the only reader.
        self.result
            .with_mut(|slot| unsafe { (*slot).take() })
            .unwrap_or(Err(TaskError::Cancelled))
    }
}

/// A task whose result goes to a [`JoinHandle`].
pub(crate) struct Task<F, R> {
    func: F,
    completion: Arc<Completion<R>>,
}

impl<F, R> Task<F, R>
where
    F: FnOnce() -> R + Send + 'static,
    R: Send + 'static,
{
    /// The job and the completion its handle waits on.
    pub(crate) fn new(func: F) -> (Box<Self>, Arc<Completion<R>>) {
        let completion = Arc::new(Completion::new());
        (
            Box::new(Self {
                func,
                completion: completion.clone(),
            }),
            completion,
        )
    }
}

impl<F, R> Runnable for Task<F, R>
where
    F: FnOnce() -> R + Send + 'static,
    R: Send + 'static,
{
    fn run(self: Box<Self>) -> bool {
        let Task { func, completion } = *self;
        if !completion.take() {
            return false;
        }
        let outcome = catch_unwind(AssertUnwindSafe(func))
            .map_err(|payload| TaskError::Panicked(panic_message(&*payload)));
        let panicked = outcome.is_err();
        completion.complete(outcome);
        panicked
    }

    fn cancel(self: Box<Self>) {
        let Task { func, completion } = *self;
        drop(func);
        if completion.take() {
            completion.complete(Err(TaskError::Cancelled));
        }
    }
}

/// A fire-and-forget task (no handle) too large to travel inline in a
/// [`Job`]: just the closure, one allocation.
pub(crate) struct Detached<F>(pub(crate) F);

impl<F: FnOnce() + Send + 'static> Runnable for Detached<F> {
    fn run(self: Box<Self>) -> bool {
        // Nobody to report to: the panic is contained here and counted by the pool.
        catch_unwind(AssertUnwindSafe(self.0)).is_err()
    }

    fn cancel(self: Box<Self>) {}
}

fn panic_message(payload: &(dyn std::any::Any + Send)) -> String {
    payload
        .downcast_ref::<&str>()
        .map(|s| (*s).to_owned())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "non-string panic payload".to_owned())
}

/// The handle to a spawned task's result.
pub struct JoinHandle<R> {
    pub(crate) task: Arc<Completion<R>>,
    pub(crate) pool_id: usize,
}

impl<R> fmt::Debug for JoinHandle<R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("JoinHandle")
            .field("finished", &self.is_finished())
            .finish()
    }
}

impl<R> JoinHandle<R> {
    /// `true` once the task ran (or panicked, or was cancelled).
    pub fn is_finished(&self) -> bool {
        self.task.is_done()
    }

    /// Waits for the task and returns its value. Called from a worker of the
    /// same pool (a task joining a task it spawned), it runs other tasks while
    /// it waits instead of blocking the worker, so nested fork-join cannot
    /// deadlock the pool.
    ///
    /// # Errors
    /// [`TaskError::Panicked`] with the panic message, or
    /// [`TaskError::Cancelled`] if the pool was shut down before the task started.
    pub fn join(self) -> Result<R, TaskError> {
        let completion = &self.task;
        if !completion.is_done() {
            super::worker::help_until(self.pool_id, || completion.is_done());
        }
        completion.wait()
    }
}

/// One task taken apart for the loom model (`tests/loom_pool_task.rs`): the
/// job a worker would pop, and the handle a joiner holds. Not a public API.
#[doc(hidden)]
pub struct ModelJob(Job);

impl fmt::Debug for ModelJob {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ModelJob").finish_non_exhaustive()
    }
}

impl ModelJob {
    /// A task running `func`, outside any pool.
    pub fn new<F, R>(func: F) -> (Self, JoinHandle<R>)
    where
        F: FnOnce() -> R + Send + 'static,
        R: Send + 'static,
    {
        let (job, completion) = Task::new(func);
        (
            Self(Job::Boxed(job)),
            JoinHandle {
                task: completion,
                pool_id: 0,
            },
        )
    }

    /// What a worker does with a popped job. Returns `true` if it panicked.
    pub fn run(self) -> bool {
        self.0.run()
    }

    /// What an immediate shutdown does with a queued job.
    pub fn cancel(self) {
        self.0.cancel();
    }
}

//! A task and the handle to its result. One allocation per task holds the
//! closure, the result slot and the condition variable a joiner waits on.

use std::fmt;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Arc;

use crate::error::TaskError;
use crate::sync::{AtomicBool, Condvar, Mutex, Ordering};

/// A type-erased runnable task, as stored in the deques.
pub(crate) trait Runnable: Send + Sync {
    /// Runs the task (at most once; later calls do nothing). Panics are caught.
    fn run(&self);
    /// Resolves the task as never started. Returns `true` if it had not run.
    fn cancel(&self) -> bool;
}

pub(crate) type Job = Arc<dyn Runnable>;

/// Where a task's outcome lands.
pub(crate) struct Completion<R> {
    result: Mutex<Option<Result<R, TaskError>>>,
    done: AtomicBool,
    condvar: Condvar,
}

impl<R> Completion<R> {
    fn complete(&self, outcome: Result<R, TaskError>) {
        *self.result.lock() = Some(outcome);
        self.done.store(true, Ordering::Release);
        let _guard = self.result.lock();
        self.condvar.notify_all();
    }

    pub(crate) fn is_done(&self) -> bool {
        self.done.load(Ordering::Acquire)
    }

    /// Blocks until done, then takes the outcome.
    pub(crate) fn wait(&self) -> Result<R, TaskError> {
        let mut guard = self.result.lock();
        loop {
            if let Some(outcome) = guard.take() {
                return outcome;
            }
            if self.is_done() {
                // Already taken: only possible if joined twice, which the
                // handle's `self`-consuming `join` rules out.
                return Err(TaskError::Cancelled);
            }
            guard = self.condvar.wait(guard);
        }
    }
}

pub(crate) trait HasCompletion<R>: Send + Sync {
    fn completion(&self) -> &Completion<R>;
}

pub(crate) struct Task<F, R> {
    func: Mutex<Option<F>>,
    completion: Completion<R>,
}

impl<F, R> Task<F, R>
where
    F: FnOnce() -> R + Send + 'static,
    R: Send + 'static,
{
    pub(crate) fn new(func: F) -> Arc<Self> {
        Arc::new(Self {
            func: Mutex::new(Some(func)),
            completion: Completion {
                result: Mutex::new(None),
                done: AtomicBool::new(false),
                condvar: Condvar::new(),
            },
        })
    }
}

impl<F, R> Runnable for Task<F, R>
where
    F: FnOnce() -> R + Send + 'static,
    R: Send + 'static,
{
    fn run(&self) {
        let Some(func) = self.func.lock().take() else {
            return;
        };
        let outcome = catch_unwind(AssertUnwindSafe(func)).map_err(|payload| {
            let message = payload
                .downcast_ref::<&str>()
                .map(|s| (*s).to_owned())
                .or_else(|| payload.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "non-string panic payload".to_owned());
            TaskError::Panicked(message)
        });
        self.completion.complete(outcome);
    }

    fn cancel(&self) -> bool {
        let Some(func) = self.func.lock().take() else {
            return false;
        };
        drop(func);
        self.completion.complete(Err(TaskError::Cancelled));
        true
    }
}

impl<F, R> HasCompletion<R> for Task<F, R>
where
    F: FnOnce() -> R + Send + 'static,
    R: Send + 'static,
{
    fn completion(&self) -> &Completion<R> {
        &self.completion
    }
}

/// The handle to a spawned task's result.
pub struct JoinHandle<R> {
    pub(crate) task: Arc<dyn HasCompletion<R>>,
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
        self.task.completion().is_done()
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
        let completion = self.task.completion();
        if !completion.is_done() {
            super::worker::help_until(self.pool_id, || completion.is_done());
        }
        completion.wait()
    }
}

//! The worker loop: local deque first, then the global injector, then
//! stealing from the other workers; sleep when there is nothing anywhere.

use std::cell::RefCell;
use std::sync::Arc;

use crossbeam_deque::{Steal, Worker};

use super::PoolInner;
use super::task::Job;
use crate::sync::{Ordering, Spin, park_timeout, yield_now};

/// Yields an idle worker makes before it sleeps.
const IDLE_YIELDS: usize = if cfg!(loom) { 0 } else { 64 };

/// What a worker thread knows about itself, reachable from the tasks it runs
/// (so `spawn` from inside a task goes to the local deque).
struct Context {
    pool: Arc<PoolInner>,
    index: usize,
    local: Worker<Job>,
}

thread_local! {
    static CONTEXT: RefCell<Option<Context>> = const { RefCell::new(None) };
}

/// Pushes onto the current worker's deque if this thread is a worker of
/// `pool_id` (returning whether the deque was empty before), otherwise hands
/// the job back.
pub(crate) fn push_local(pool_id: usize, job: Job) -> Result<bool, Job> {
    CONTEXT.with(|cell| match cell.borrow().as_ref() {
        Some(ctx) if ctx.pool.id == pool_id => {
            let was_empty = ctx.local.is_empty();
            ctx.local.push(job);
            Ok(was_empty)
        }
        _ => Err(job),
    })
}

/// Finds a task for worker `ctx`: local, then injector, then steal.
fn find_task(ctx: &Context) -> Option<Job> {
    if let Some(job) = ctx.local.pop() {
        return Some(job);
    }
    let pool = &ctx.pool;
    loop {
        match pool.injector.steal_batch_and_pop(&ctx.local) {
            Steal::Success(job) => return Some(job),
            Steal::Retry => continue,
            Steal::Empty => break,
        }
    }
    let n = pool.stealers.len();
    for offset in 1..n {
        let victim = (ctx.index + offset) % n;
        loop {
            match pool.stealers[victim].steal() {
                Steal::Success(job) => {
                    bump(&pool.workers[ctx.index].steals);
                    return Some(job);
                }
                Steal::Retry => continue,
                Steal::Empty => break,
            }
        }
    }
    None
}

/// Increments a per-worker counter. Only the owning worker thread writes it,
/// so a load and a store suffice (no read-modify-write on the hot path).
fn bump(counter: &crate::sync::AtomicU64) {
    counter.store(counter.load(Ordering::Relaxed) + 1, Ordering::Relaxed);
}

fn run_job(pool: &PoolInner, index: usize, job: Job) {
    let panicked = job.run();
    let counters = &pool.workers[index];
    bump(&counters.tasks_run);
    if panicked {
        bump(&counters.panicked);
    }
    pool.task_done();
}

/// Runs tasks on the current thread until `done()` holds, if it is a worker
/// of `pool_id` (nested join); otherwise returns at once.
pub(crate) fn help_until(pool_id: usize, done: impl Fn() -> bool) {
    loop {
        if done() {
            return;
        }
        let next = CONTEXT.with(|cell| match cell.borrow().as_ref() {
            Some(ctx) if ctx.pool.id == pool_id => {
                Some(find_task(ctx).map(|job| (ctx.pool.clone(), ctx.index, job)))
            }
            _ => None,
        });
        match next {
            // Not a worker of this pool: the caller blocks normally.
            None => return,
            Some(Some((pool, index, job))) => run_job(&pool, index, job),
            // Nothing to run: the awaited task is running on another worker.
            Some(None) => park_timeout(std::time::Duration::from_micros(50)),
        }
    }
}

/// The body of worker thread `index`.
pub(crate) fn main_loop(pool: Arc<PoolInner>, index: usize, local: Worker<Job>) {
    CONTEXT.with(|cell| {
        *cell.borrow_mut() = Some(Context {
            pool: pool.clone(),
            index,
            local,
        })
    });
    loop {
        let job = CONTEXT.with(|cell| cell.borrow().as_ref().and_then(find_task));
        if let Some(job) = job {
            if pool.is_stopping() {
                job.cancel();
                pool.never_started.fetch_add(1, Ordering::Relaxed);
                pool.task_done();
            } else {
                run_job(&pool, index, job);
            }
            continue;
        }
        if pool.is_stopping() || (pool.is_draining() && pool.pending.load(Ordering::SeqCst) == 0) {
            break;
        }
        // Spin, then yield for a while before sleeping: in fork-join bursts
        // the next batch usually arrives within tens of microseconds, and a
        // futex wake-up costs more than that. Bounded: an idle pool sleeps.
        let mut spin = Spin::new();
        let mut found = false;
        while spin.spin() {
            if pool.has_visible_work() {
                found = true;
                break;
            }
        }
        for _ in 0..IDLE_YIELDS {
            if found || pool.has_visible_work() || pool.is_stopping() {
                found = true;
                break;
            }
            yield_now();
        }
        if !found {
            pool.sleep.sleep(|| {
                pool.has_visible_work()
                    || pool.is_stopping()
                    || (pool.is_draining() && pool.pending.load(Ordering::SeqCst) == 0)
            });
        }
    }
    // Immediate shutdown: whatever is still in our deque never starts.
    let leftover = CONTEXT.with(|cell| cell.borrow_mut().take());
    if let Some(ctx) = leftover {
        while let Some(job) = ctx.local.pop() {
            job.cancel();
            pool.never_started.fetch_add(1, Ordering::Relaxed);
            pool.task_done();
        }
    }
}

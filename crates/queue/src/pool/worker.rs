//! The worker loop: local deque first, then the global injector, then
//! stealing from the other workers; sleep when there is nothing anywhere.

use std::cell::Cell;
use std::sync::Arc;

use crossbeam_deque::{Steal, Worker};

use super::PoolInner;
use super::job::Job;
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
    /// The worker's [`Context`] while [`main_loop`] runs on this thread, else null.
    ///
    /// A raw pointer in a `const`-initialised `Cell` (as rayon does), not a
    /// `RefCell<Option<Context>>`: reading it is one thread-relative load that
    /// inlines into every spawn, so the job goes from registers into its deque
    /// slot. Behind the `RefCell` the push stayed in an out-of-line
    /// `LocalKey::with`, the job was copied through the stack on the way, and
    /// those copies read back 16-byte halves of values just written as 8-byte
    /// words (failed store-to-load forwards): `perf` put half of the pool's
    /// time on the bench's tree on those loads.
    static CURRENT: Cell<*const Context> = const { Cell::new(std::ptr::null()) };
}

/// Runs `f` with this thread's worker context, if it is a worker.
#[inline]
fn with_current<R>(f: impl FnOnce(Option<&Context>) -> R) -> R {
    let ctx = CURRENT.with(Cell::get);
    // SAFETY: `main_loop` points `CURRENT` at a `Context` on its own stack frame
    // and nulls it before that frame ends; only this thread reads it, and only
    // while running code called from inside that frame (a task, a join), so the
    // context outlives the reference. Nothing takes `&mut` to it meanwhile.
    f(unsafe { ctx.as_ref() })
}

/// Pushes onto the current worker's deque if this thread is a worker of
/// `pool` (returning whether the deque was empty before), otherwise onto the
/// pool's injector (returning `None`).
///
/// The job moves once, straight into its deque (see [`CURRENT`]).
#[inline]
pub(crate) fn push(pool: &PoolInner, job: Job) -> Option<bool> {
    with_current(|ctx| match ctx {
        Some(ctx) if ctx.pool.id == pool.id => {
            let was_empty = ctx.local.is_empty();
            ctx.local.push(job);
            Some(was_empty)
        }
        _ => {
            pool.injector.push(job);
            None
        }
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
        let next = with_current(|ctx| match ctx {
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
    let ctx = Context {
        pool: pool.clone(),
        index,
        local,
    };
    /// Nulls `CURRENT` when the loop ends, by return or by unwinding.
    struct Unset;
    impl Drop for Unset {
        fn drop(&mut self) {
            CURRENT.with(|current| current.set(std::ptr::null()));
        }
    }
    CURRENT.with(|current| current.set(&ctx));
    let unset = Unset;
    run_until_stopped(&pool, index, &ctx);
    drop(unset);
    // Immediate shutdown: whatever is still in our deque never starts.
    while let Some(job) = ctx.local.pop() {
        job.cancel();
        pool.never_started.fetch_add(1, Ordering::Relaxed);
        pool.task_done();
    }
}

fn run_until_stopped(pool: &PoolInner, index: usize, ctx: &Context) {
    loop {
        if let Some(job) = find_task(ctx) {
            if pool.is_stopping() {
                job.cancel();
                pool.never_started.fetch_add(1, Ordering::Relaxed);
                pool.task_done();
            } else {
                run_job(pool, index, job);
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
}

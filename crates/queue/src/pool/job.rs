//! What the deques hold: a job, with small fire-and-forget closures stored inline.
//!
//! # Why inline
//!
//! A boxed job costs one `malloc` when it is spawned and one `free` when it has run. On
//! the bench's fork-join tree (8 191 tiny tasks) callgrind counted ≈ 409 instructions per
//! task for the whole pool at one thread, ≈ 138 of them in glibc's `malloc`/`free` (the
//! deque holds more boxes of one size than the thread cache keeps, so most frees take the
//! slower path). rayon pays the same (`HeapJob` is a box). An [`Pool::execute`] closure
//! that fits in [`INLINE_WORDS`] words (most do: a reference or an `Arc` and an index)
//! travels by value inside the deque slot instead, and nothing is allocated. Closures
//! that do not fit, and every [`Pool::spawn`] (whose result slot is shared with the handle
//! anyway), stay boxed.
//!
//! [`Pool::execute`]: super::Pool::execute
//! [`Pool::spawn`]: super::Pool::spawn

use std::mem::{ManuallyDrop, MaybeUninit};
use std::panic::{AssertUnwindSafe, catch_unwind};

use super::task::{Detached, Runnable};

/// Words of closure an inline job holds.
pub(crate) const INLINE_WORDS: usize = 3;

/// A job as the deques and the injector hold it; consumed by exactly one of
/// [`run`](Job::run) or [`cancel`](Job::cancel) (dropping it is a cancel too).
pub(crate) enum Job {
    /// A closure of at most [`INLINE_WORDS`] words, stored in place.
    Inline(InlineJob),
    /// Anything else.
    Boxed(Box<dyn Runnable>),
}

impl Job {
    /// A fire-and-forget job: inline when `func` fits, boxed otherwise.
    #[inline]
    pub(crate) fn detached<F: FnOnce() + Send + 'static>(func: F) -> Self {
        if InlineJob::fits::<F>() {
            Self::Inline(InlineJob::new(func))
        } else {
            Self::Boxed(Box::new(Detached(func)))
        }
    }

    /// Runs the job; panics are caught. Returns `true` if it panicked.
    pub(crate) fn run(self) -> bool {
        match self {
            Self::Inline(job) => job.run(),
            Self::Boxed(job) => job.run(),
        }
    }

    /// Resolves the job as never started.
    pub(crate) fn cancel(self) {
        match self {
            Self::Inline(job) => drop(job),
            Self::Boxed(job) => job.cancel(),
        }
    }
}

#[derive(Clone, Copy)]
enum Action {
    Run,
    Drop,
}

/// A closure moved into `data`, with the one function that knows its type.
pub(crate) struct InlineJob {
    data: [MaybeUninit<usize>; INLINE_WORDS],
    /// Takes the closure out of `data` and runs or drops it; called exactly once.
    consume: unsafe fn(*mut u8, Action) -> bool,
}

// `InlineJob` is `Send` automatically (its fields are), which is only sound because
// `new` accepts `Send` closures alone.

impl InlineJob {
    const fn fits<F>() -> bool {
        size_of::<F>() <= size_of::<[MaybeUninit<usize>; INLINE_WORDS]>()
            && align_of::<F>() <= align_of::<usize>()
    }

    #[inline]
    fn new<F: FnOnce() + Send + 'static>(func: F) -> Self {
        assert!(Self::fits::<F>(), "checked by Job::detached");
        let mut data = [MaybeUninit::<usize>::uninit(); INLINE_WORDS];
        // SAFETY: `fits` checked that an `F` fits in `data` and that `data`'s alignment
        // (a `usize`'s) is enough for it; `data` is ours and uninitialised.
        unsafe { data.as_mut_ptr().cast::<F>().write(func) };
        Self {
            data,
            consume: consume::<F>,
        }
    }

    fn run(self) -> bool {
        let mut this = ManuallyDrop::new(self);
        // SAFETY: `data` holds the `F` that `consume` was made for; `ManuallyDrop`
        // keeps `Drop` from consuming it a second time.
        unsafe { (this.consume)(this.data.as_mut_ptr().cast(), Action::Run) }
    }
}

impl Drop for InlineJob {
    fn drop(&mut self) {
        // SAFETY: a job not run still holds its `F`; this is the only consumption.
        unsafe { (self.consume)(self.data.as_mut_ptr().cast(), Action::Drop) };
    }
}

/// Moves the `F` out of `data`, then runs it (panics caught: `true` if it panicked) or
/// drops it.
///
/// # Safety
/// `data` must hold an initialised `F`, and nothing may use it afterwards.
unsafe fn consume<F: FnOnce()>(data: *mut u8, action: Action) -> bool {
    // SAFETY: the caller guarantees an initialised `F`, read once.
    let func = unsafe { data.cast::<F>().read() };
    match action {
        Action::Run => catch_unwind(AssertUnwindSafe(func)).is_err(),
        Action::Drop => {
            drop(func);
            false
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};

    use super::*;

    /// Counts its drops, so a job that drops its closure twice (or never) shows.
    struct Guard(Arc<AtomicUsize>);

    impl Drop for Guard {
        fn drop(&mut self) {
            self.0.fetch_add(1, Ordering::SeqCst);
        }
    }

    #[test]
    fn small_closures_are_inline_and_large_ones_boxed() {
        let small = 7u64;
        assert!(matches!(
            Job::detached(move || {
                std::hint::black_box(small);
            }),
            Job::Inline(_)
        ));
        let large = [0u64; INLINE_WORDS + 1];
        assert!(matches!(
            Job::detached(move || {
                std::hint::black_box(large);
            }),
            Job::Boxed(_)
        ));
    }

    #[test]
    fn an_inline_job_runs_once_and_drops_its_captures_once() {
        let drops = Arc::new(AtomicUsize::new(0));
        let ran = Arc::new(AtomicUsize::new(0));
        let (guard, counter) = (Guard(drops.clone()), ran.clone());
        let job = Job::detached(move || {
            let _guard = &guard;
            counter.fetch_add(1, Ordering::SeqCst);
        });
        assert!(matches!(job, Job::Inline(_)));
        assert!(!job.run());
        assert_eq!(ran.load(Ordering::SeqCst), 1);
        assert_eq!(drops.load(Ordering::SeqCst), 1);
    }

    #[test]
    fn a_cancelled_or_dropped_inline_job_drops_its_captures_once_without_running() {
        for cancel in [true, false] {
            let drops = Arc::new(AtomicUsize::new(0));
            let guard = Guard(drops.clone());
            let job = Job::detached(move || {
                let _guard = &guard;
                panic!("must not run");
            });
            if cancel {
                job.cancel();
            } else {
                drop(job);
            }
            assert_eq!(drops.load(Ordering::SeqCst), 1, "cancel {cancel}");
        }
    }

    #[test]
    fn a_panicking_inline_job_reports_it_and_still_drops_its_captures() {
        let drops = Arc::new(AtomicUsize::new(0));
        let guard = Guard(drops.clone());
        let job = Job::detached(move || {
            let _guard = &guard;
            panic!("boom");
        });
        assert!(job.run());
        assert_eq!(drops.load(Ordering::SeqCst), 1);
    }
}

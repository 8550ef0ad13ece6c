//! Loom models of a pool task's completion protocol (`pool/task.rs`): the
//! run-once state machine, the result slot and the joiner's park/unpark. A
//! lost wake-up shows up as a deadlock, a result read before it was written
//! as a loom cell-access error, a task run twice as a failed assertion.
#![cfg(loom)]

use keel_queue::__loom::ModelJob;
use keel_queue::TaskError;
use loom::sync::Arc;
use loom::sync::atomic::{AtomicUsize, Ordering};
use loom::thread;

/// A worker runs the task while the owner joins: the joiner gets the value
/// whether it parks before, during or after completion.
#[test]
fn join_sees_the_result_of_a_task_run_on_another_thread() {
    loom::model(|| {
        let (job, handle) = ModelJob::new(|| 42u32);
        let worker = thread::spawn(move || job.run());
        assert_eq!(handle.join(), Ok(42));
        assert!(!worker.join().unwrap(), "the task did not panic");
    });
}

/// A panicking task is reported through the handle, not lost.
#[test]
fn join_sees_a_panic_as_an_error() {
    loom::model(|| {
        let (job, handle) = ModelJob::new(|| -> u32 { panic!("boom") });
        let worker = thread::spawn(move || job.run());
        assert!(matches!(handle.join(), Err(TaskError::Panicked(message)) if message == "boom"));
        assert!(worker.join().unwrap(), "the run reported the panic");
    });
}

/// A cancelled (never started) task resolves its handle as `Cancelled`, and
/// its closure never runs.
#[test]
fn cancel_resolves_the_joiner_and_never_runs_the_task() {
    loom::model(|| {
        let runs = Arc::new(AtomicUsize::new(0));
        let counted = runs.clone();
        let (job, handle) = ModelJob::new(move || {
            counted.fetch_add(1, Ordering::SeqCst);
        });
        let canceller = thread::spawn(move || job.cancel());
        assert_eq!(handle.join(), Err(TaskError::Cancelled));
        canceller.join().unwrap();
        assert_eq!(runs.load(Ordering::SeqCst), 0);
    });
}

/// `is_finished` polled from another thread turns true exactly when the
/// result is ready; joining after that never blocks.
#[test]
fn is_finished_then_join_returns_the_value() {
    loom::model(|| {
        let (job, handle) = ModelJob::new(|| 7u8);
        let worker = thread::spawn(move || job.run());
        while !handle.is_finished() {
            thread::yield_now();
        }
        assert_eq!(handle.join(), Ok(7));
        worker.join().unwrap();
    });
}

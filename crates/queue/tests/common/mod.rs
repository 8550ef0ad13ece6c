//! Helpers shared by the behaviour suites: a watchdog so that a hung test
//! fails in bounded time, and mock-clock drivers that cannot race the waiter.
#![allow(dead_code)] // each suite uses a subset

use std::sync::mpsc;
use std::thread;
use std::time::Duration;

/// How long one test may run before the watchdog ends the test process
/// (real time; `KEEL_TEST_TIMEOUT_SECS` overrides it).
fn limit() -> Duration {
    let secs = std::env::var("KEEL_TEST_TIMEOUT_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(120);
    Duration::from_secs(secs)
}

/// Ends the whole test process if the test that created it is still running
/// after the limit: a hang then fails CI in bounded time, naming the test,
/// instead of stalling the run. Keep it alive for the test's duration:
/// `let _watchdog = common::watchdog();`.
#[must_use = "the watchdog stops watching when dropped"]
pub(crate) struct Watchdog {
    _done: mpsc::Sender<()>,
}

pub(crate) fn watchdog() -> Watchdog {
    let name = thread::current()
        .name()
        .unwrap_or("<unnamed test>")
        .to_owned();
    let limit = limit();
    let (done, finished) = mpsc::channel::<()>();
    thread::spawn(move || {
        // Disconnected (the guard was dropped, also on panic) ends the watch.
        if let Err(mpsc::RecvTimeoutError::Timeout) = finished.recv_timeout(limit) {
            eprintln!(
                "watchdog: test `{name}` still running after {limit:?}; ending the test process"
            );
            std::process::exit(124);
        }
    });
    Watchdog { _done: done }
}

/// Moves the mock clock forward until the thread finishes: the waiter may
/// compute its deadline at any point, so one jump is not enough.
pub(crate) fn advance_until_done<T>(mock: &quanta::Mock, handle: thread::JoinHandle<T>) -> T {
    while !handle.is_finished() {
        mock.increment(Duration::from_secs(1));
        thread::sleep(Duration::from_millis(1));
    }
    handle.join().unwrap()
}

/// Joins `handle` if it finishes within `limit` of real time; `None` if it is
/// still running (the caller then unblocks it and fails).
pub(crate) fn join_within<T>(
    handle: &mut Option<thread::JoinHandle<T>>,
    limit: Duration,
) -> Option<T> {
    let step = Duration::from_millis(1);
    let mut waited = Duration::ZERO;
    while waited < limit {
        if handle.as_ref().is_some_and(thread::JoinHandle::is_finished) {
            return handle.take().map(|h| h.join().unwrap());
        }
        thread::sleep(step);
        waited += step;
    }
    None
}

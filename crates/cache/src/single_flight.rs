//! Single-flight: one loader call per key, however many callers miss at once.
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

use core::future::Future;
use core::pin::Pin;
use core::task::{Context, Poll, Waker};
use std::any::Any;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use crate::sync::{AtomicBool, Condvar, Mutex};

use crate::error::LoadError;

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

//! Async push and pop: futures that park the *task* (its `Waker`) in the same
//! wait lists as blocked threads, so sync and async code share one queue.
//!
//! A future registers its waker, then retries once before returning `Pending`:
//! the registration fence pairs with the notifier's fence (see `waiters.rs`),
//! so either the retry sees the change or the notifier sees the waker.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use crate::error::{PopError, PushError};
use crate::policy::Backpressure;
use crate::queue::Shared;

/// The future returned by [`Sender::push_async`](crate::Sender::push_async).
#[must_use = "futures do nothing unless awaited"]
pub struct PushFuture<'a, T> {
    shared: &'a Shared<T>,
    item: Option<T>,
    waiter: Option<u64>,
    blocked_since: Option<quanta::Instant>,
}

impl<T> std::fmt::Debug for PushFuture<'_, T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PushFuture")
            .field("pending", &self.item.is_some())
            .finish()
    }
}

// The item is moved in and out by value, never pinned.
impl<T> Unpin for PushFuture<'_, T> {}

impl<'a, T> PushFuture<'a, T> {
    pub(crate) fn new(shared: &'a Shared<T>, item: T) -> Self {
        Self {
            shared,
            item: Some(item),
            waiter: None,
            blocked_since: None,
        }
    }

    fn finish(&mut self, result: Result<(), PushError<T>>) -> Poll<Result<(), PushError<T>>> {
        self.shared
            .waiters
            .producers
            .unregister_waker(&mut self.waiter, false);
        if let Some(started) = self.blocked_since.take() {
            self.shared.record_blocked(started);
        }
        Poll::Ready(result)
    }
}

impl<T> Future for PushFuture<'_, T> {
    type Output = Result<(), PushError<T>>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.get_mut();
        loop {
            // Polled again after completion: nothing left to do.
            let Some(item) = this.item.take() else {
                return Poll::Ready(Ok(()));
            };
            let item = match this.shared.push_attempt(item) {
                Err(PushError::Full(item)) if this.shared.policy() == Backpressure::Block => item,
                other => return this.finish(other),
            };
            if this
                .shared
                .waiters
                .producers
                .register_waker(&mut this.waiter, cx.waker())
            {
                // A notification picked us since the last poll: retry.
                this.item = Some(item);
                continue;
            }
            match this.shared.push_attempt(item) {
                Err(PushError::Full(item)) if this.shared.policy() == Backpressure::Block => {
                    this.item = Some(item);
                    this.blocked_since
                        .get_or_insert_with(|| this.shared.clock.now());
                    return Poll::Pending;
                }
                other => return this.finish(other),
            }
        }
    }
}

impl<T> Drop for PushFuture<'_, T> {
    fn drop(&mut self) {
        self.shared
            .waiters
            .producers
            .unregister_waker(&mut self.waiter, true);
    }
}

/// The future returned by [`Receiver::pop_async`](crate::Receiver::pop_async).
#[must_use = "futures do nothing unless awaited"]
pub struct PopFuture<'a, T> {
    shared: &'a Shared<T>,
    waiter: Option<u64>,
}

impl<T> std::fmt::Debug for PopFuture<'_, T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PopFuture").finish_non_exhaustive()
    }
}

impl<'a, T> PopFuture<'a, T> {
    pub(crate) fn new(shared: &'a Shared<T>) -> Self {
        Self {
            shared,
            waiter: None,
        }
    }

    fn finish(&mut self, result: Result<T, PopError>) -> Poll<Result<T, PopError>> {
        self.shared
            .waiters
            .consumers
            .unregister_waker(&mut self.waiter, false);
        Poll::Ready(result)
    }
}

impl<T> Future for PopFuture<'_, T> {
    type Output = Result<T, PopError>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.get_mut();
        loop {
            match this.shared.try_pop() {
                Err(PopError::Empty) => {}
                other => return this.finish(other),
            }
            if this
                .shared
                .waiters
                .consumers
                .register_waker(&mut this.waiter, cx.waker())
            {
                continue;
            }
            return match this.shared.try_pop() {
                Err(PopError::Empty) => {
                    if this.shared.head_is_busy() {
                        // A producer claimed the head slot and has not
                        // published it; its publish may not see our waker,
                        // so ask to be polled again instead of sleeping.
                        crate::sync::spin_hint();
                        cx.waker().wake_by_ref();
                    }
                    Poll::Pending
                }
                other => this.finish(other),
            };
        }
    }
}

impl<T> Drop for PopFuture<'_, T> {
    fn drop(&mut self) {
        self.shared
            .waiters
            .consumers
            .unregister_waker(&mut self.waiter, true);
    }
}

//! The GCRA limiter's batcher: decisions that wait while a call is in flight go to the
//! server together, in one multi-key `FCALL` (feature `redis`).
//!
//! # How
//!
//! A caller pushes `(key, cost, reply sender)` onto the queue. If no call is in flight it
//! also spawns the *driver*, a task that loops: take up to `max` queued decisions, send
//! them in one call (one decision: the single-key function, exactly the unbatched
//! command; more: `<function>_batch`), hand every caller its integer, and stop when the
//! queue is empty. The driver is a task of its own, not one of the callers, so a caller
//! that is dropped or times out never strands the others' decisions.
//!
//! # Latency
//!
//! Nothing waits for a batch to fill: there is no timer. A decision that finds no call in
//! flight is sent at once (plus one task wake-up); one that arrives while a call is in
//! flight would have queued behind it on the connection anyway, and now shares the next
//! call instead of paying its own function-call overhead (≈ 17 000 server instructions)
//! and reply. One call in flight per limiter (connection) is the trade-off: the server
//! sees fewer, larger commands instead of a pipeline of small ones.
//!
//! # Guarantees
//!
//! * Each caller waits at most the limiter's timeout for its result, then gets the
//!   failure policy; a driver that ends abnormally (its runtime shut down) drops the
//!   pending senders, and every caller gets an error at once.
//! * A caller that stopped waiting (dropped or timed out) before its decision was taken
//!   is not sent: nobody would see the answer, and a decision must not be applied twice.
//! * Decisions for the same key in one batch are applied in queue order by the script.

use std::collections::VecDeque;

use parking_lot::Mutex;
use tokio::sync::oneshot;

/// Why a batched decision has no reply integer.
#[derive(Debug, Clone)]
pub(super) enum Failure {
    /// The call failed or timed out (the failure policy applies).
    Redis(::redis::RedisError),
    /// The script answered something else than one integer per decision.
    BadReply(String),
}

/// One queued decision.
#[derive(Debug)]
pub(super) struct Pending {
    pub(super) key: String,
    pub(super) cost: u32,
    pub(super) reply: oneshot::Sender<Result<i64, Failure>>,
}

#[derive(Debug, Default)]
struct State {
    queue: VecDeque<Pending>,
    /// A driver task is running: it will take what is queued.
    in_flight: bool,
}

/// The queue of decisions and whether a driver is running.
#[derive(Debug)]
pub(super) struct Batcher {
    state: Mutex<State>,
    max: usize,
}

impl Batcher {
    /// A batcher sending at most `max` (≥ 2) decisions per call.
    pub(super) fn new(max: usize) -> Self {
        Self {
            state: Mutex::new(State::default()),
            max,
        }
    }

    /// The largest batch.
    pub(super) fn max(&self) -> usize {
        self.max
    }

    /// Queues `pending`; `true` when no driver is running, so the caller must start one
    /// (it is then counted as running).
    pub(super) fn push(&self, pending: Pending) -> bool {
        let mut state = self.state.lock();
        state.queue.push_back(pending);
        !std::mem::replace(&mut state.in_flight, true)
    }

    /// Moves up to `max` decisions whose callers still wait into `batch`; when there are
    /// none, the driver stops (`false`) and the next `push` starts another.
    pub(super) fn take(&self, batch: &mut Vec<Pending>) -> bool {
        let mut state = self.state.lock();
        while batch.len() < self.max {
            let Some(pending) = state.queue.pop_front() else {
                break;
            };
            if !pending.reply.is_closed() {
                batch.push(pending);
            }
        }
        if batch.is_empty() {
            state.in_flight = false;
        }
        !batch.is_empty()
    }

    /// The driver ended without emptying the queue (its task was cancelled): the queued
    /// callers get a closed channel (an error) now, and the next `push` starts a driver.
    pub(super) fn abandon(&self) {
        let dropped = {
            let mut state = self.state.lock();
            state.in_flight = false;
            std::mem::take(&mut state.queue)
        };
        drop(dropped);
    }
}

/// Held by a running driver: if the driver's task is dropped mid-way, the batcher is
/// reset instead of believing a driver still runs (which would strand every caller).
pub(super) struct DriverGuard<'a> {
    batcher: &'a Batcher,
    finished: bool,
}

impl<'a> DriverGuard<'a> {
    pub(super) fn new(batcher: &'a Batcher) -> Self {
        Self {
            batcher,
            finished: false,
        }
    }

    /// The driver found the queue empty and stopped normally.
    pub(super) fn finish(mut self) {
        self.finished = true;
    }
}

impl Drop for DriverGuard<'_> {
    fn drop(&mut self) {
        if !self.finished {
            self.batcher.abandon();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pending(key: &str) -> (Pending, oneshot::Receiver<Result<i64, Failure>>) {
        let (reply, rx) = oneshot::channel();
        (
            Pending {
                key: key.to_owned(),
                cost: 1,
                reply,
            },
            rx,
        )
    }

    #[test]
    fn only_the_first_push_starts_a_driver_until_the_queue_is_drained() {
        let batcher = Batcher::new(2);
        let (a, _ra) = pending("a");
        let (b, _rb) = pending("b");
        let (c, _rc) = pending("c");
        assert!(batcher.push(a));
        assert!(!batcher.push(b));
        assert!(!batcher.push(c));
        let mut batch = Vec::new();
        assert!(batcher.take(&mut batch));
        let keys: Vec<_> = batch.iter().map(|p| p.key.as_str()).collect();
        assert_eq!(keys, ["a", "b"], "at most max, in queue order");
        batch.clear();
        assert!(batcher.take(&mut batch));
        assert_eq!(batch.len(), 1);
        batch.clear();
        assert!(!batcher.take(&mut batch), "empty: the driver stops");
        let (d, _rd) = pending("d");
        assert!(batcher.push(d), "and the next push starts another");
    }

    #[test]
    fn callers_that_stopped_waiting_are_not_sent() {
        let batcher = Batcher::new(8);
        let (a, ra) = pending("a");
        let (b, _rb) = pending("b");
        batcher.push(a);
        batcher.push(b);
        drop(ra);
        let mut batch = Vec::new();
        assert!(batcher.take(&mut batch));
        assert_eq!(batch.len(), 1);
        assert_eq!(batch[0].key, "b");
    }

    #[test]
    fn a_dropped_driver_fails_the_queued_callers_and_lets_the_next_push_start_one() {
        let batcher = Batcher::new(8);
        let (a, mut ra) = pending("a");
        assert!(batcher.push(a));
        drop(DriverGuard::new(&batcher));
        assert!(
            matches!(ra.try_recv(), Err(oneshot::error::TryRecvError::Closed)),
            "the queued caller learns at once"
        );
        let (b, _rb) = pending("b");
        assert!(batcher.push(b));
        let mut batch = Vec::new();
        assert!(batcher.take(&mut batch));
        batch.clear();
        assert!(!batcher.take(&mut batch));
        DriverGuard::new(&batcher).finish();
        let (c, _rc) = pending("c");
        assert!(batcher.push(c), "a finished driver leaves nothing running");
    }
}

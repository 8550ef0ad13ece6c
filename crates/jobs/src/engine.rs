//! The in-process store core: [`State`] behind a mutex, the injected clock, counters, a
//! wake-up for idle workers, and — for the embedded store — the group committer that
//! every change must reach before the call returns.
//!
//! Why apply first and persist after, under one lock order: a change is applied to memory
//! and queued for commit while the state lock is held, so the commit queue is in exactly
//! the order the state changed. A caller then waits for *its* commit sequence number; the
//! committer writes in order, so by the time a fetch returns, the enqueue it observed is
//! durable too. Readers may see a change a few milliseconds before it is durable — but
//! only readers in this process, which a crash takes down together with the change.

use std::sync::Arc;

use parking_lot::Mutex;

use crate::clock::Clock;
use crate::embedded::Committer;
use crate::metrics::StoreMetrics;
use crate::state::{Effects, State};
use crate::{JobsError, Timestamp};

#[derive(Debug)]
pub(crate) struct Engine {
    pub(crate) state: Mutex<State>,
    pub(crate) clock: Arc<dyn Clock>,
    pub(crate) metrics: Arc<StoreMetrics>,
    pub(crate) notify: tokio::sync::Notify,
    pub(crate) committer: Option<Committer>,
}

impl Engine {
    /// Applies `f` to the state and waits until its changes are durable.
    pub(crate) async fn mutate<R>(
        &self,
        f: impl FnOnce(&mut State, Timestamp, &mut Effects) -> Result<R, JobsError>,
    ) -> Result<R, JobsError> {
        let (result, ticket, wake) = {
            let mut state = self.state.lock();
            if let Some(committer) = &self.committer {
                committer.check()?;
            }
            let now = self.clock.now();
            let mut fx = Effects::default();
            let result = f(&mut state, now, &mut fx);
            self.metrics.record(&fx.events);
            let e = fx.events;
            let wake = e.enqueued + e.released + e.retried + e.lease_recoveries > 0;
            let ticket = self
                .committer
                .as_ref()
                .map(|c| c.submit(fx.changes, state.meta()));
            (result, ticket, wake)
        };
        if let (Some(committer), Some(ticket)) = (&self.committer, ticket) {
            committer.wait(ticket).await?;
        }
        if wake {
            self.notify.notify_waiters();
        }
        result
    }

    /// Reads the state (no commit to wait for).
    pub(crate) fn read<R>(
        &self,
        f: impl FnOnce(&mut State, Timestamp) -> R,
    ) -> Result<R, JobsError> {
        let mut state = self.state.lock();
        if let Some(committer) = &self.committer {
            committer.check()?;
        }
        let now = self.clock.now();
        Ok(f(&mut state, now))
    }
}

/// Implements [`Store`](crate::Store) for a type with an `engine: Engine` field.
macro_rules! store_via_engine {
    ($ty:ty) => {
        impl $crate::Store for $ty {
            async fn enqueue(
                &self,
                job: $crate::NewJob,
            ) -> Result<$crate::Enqueued, $crate::JobsError> {
                self.engine
                    .mutate(move |s, now, fx| s.enqueue(job, now, fx))
                    .await
            }

            async fn enqueue_many(
                &self,
                jobs: Vec<$crate::NewJob>,
            ) -> Result<Vec<$crate::Enqueued>, $crate::JobsError> {
                self.engine
                    .mutate(move |s, now, fx| s.enqueue_many(jobs, now, fx))
                    .await
            }

            async fn fetch(
                &self,
                queue: &str,
                limit: usize,
                lease: std::time::Duration,
            ) -> Result<Vec<$crate::Lease>, $crate::JobsError> {
                self.engine
                    .mutate(move |s, now, fx| s.fetch(queue, limit, lease, now, fx))
                    .await
            }

            async fn heartbeat(
                &self,
                id: $crate::JobId,
                token: $crate::FencingToken,
                extend: std::time::Duration,
            ) -> Result<$crate::Timestamp, $crate::JobsError> {
                self.engine
                    .mutate(move |s, now, fx| s.heartbeat(id, token, extend, now, fx))
                    .await
            }

            async fn complete(
                &self,
                id: $crate::JobId,
                token: $crate::FencingToken,
            ) -> Result<(), $crate::JobsError> {
                self.engine
                    .mutate(move |s, now, fx| s.complete(id, token, now, fx))
                    .await
            }

            async fn fail(
                &self,
                id: $crate::JobId,
                token: $crate::FencingToken,
                failure: $crate::Failure,
            ) -> Result<$crate::FailOutcome, $crate::JobsError> {
                self.engine
                    .mutate(move |s, now, fx| s.fail(id, token, failure, now, fx))
                    .await
            }

            async fn release(
                &self,
                id: $crate::JobId,
                token: $crate::FencingToken,
            ) -> Result<(), $crate::JobsError> {
                self.engine
                    .mutate(move |s, now, fx| s.release(id, token, now, fx))
                    .await
            }

            async fn reap_expired(&self) -> Result<usize, $crate::JobsError> {
                self.engine.mutate(|s, now, fx| Ok(s.reap(now, fx))).await
            }

            async fn cancel(
                &self,
                id: $crate::JobId,
            ) -> Result<$crate::CancelOutcome, $crate::JobsError> {
                self.engine
                    .mutate(move |s, now, fx| Ok(s.cancel(id, now, fx)))
                    .await
            }

            async fn retry_dead(&self, id: $crate::JobId) -> Result<(), $crate::JobsError> {
                self.engine
                    .mutate(move |s, now, fx| s.retry_dead(id, now, fx))
                    .await
            }

            async fn delete(&self, id: $crate::JobId) -> Result<(), $crate::JobsError> {
                self.engine
                    .mutate(move |s, now, fx| s.delete(id, now, fx))
                    .await
            }

            async fn get(
                &self,
                id: $crate::JobId,
            ) -> Result<Option<$crate::JobRecord>, $crate::JobsError> {
                self.engine.read(|s, _| s.get(id))
            }

            async fn counts(
                &self,
            ) -> Result<std::collections::BTreeMap<String, $crate::QueueCounts>, $crate::JobsError>
            {
                self.engine.read(|s, now| s.counts(now))
            }

            async fn list(
                &self,
                filter: $crate::ListFilter,
            ) -> Result<Vec<$crate::JobRecord>, $crate::JobsError> {
                self.engine.read(|s, now| s.list(&filter, now))
            }

            async fn pause(&self, queue: &str) -> Result<(), $crate::JobsError> {
                self.engine
                    .mutate(move |s, _, fx| s.set_paused(queue, true, fx))
                    .await
            }

            async fn resume(&self, queue: &str) -> Result<(), $crate::JobsError> {
                self.engine
                    .mutate(move |s, _, fx| s.set_paused(queue, false, fx))
                    .await?;
                self.engine.notify.notify_waiters();
                Ok(())
            }

            async fn enqueue_periodic(
                &self,
                schedule: &str,
                tick: $crate::Timestamp,
                job: $crate::NewJob,
            ) -> Result<Option<$crate::Enqueued>, $crate::JobsError> {
                self.engine
                    .mutate(move |s, now, fx| s.enqueue_periodic(schedule, tick, job, now, fx))
                    .await
            }

            async fn retry_all_dead(&self, queue: &str) -> Result<usize, $crate::JobsError> {
                self.engine
                    .mutate(move |s, now, fx| Ok(s.retry_all_dead(queue, now, fx)))
                    .await
            }

            async fn delete_all_dead(&self, queue: &str) -> Result<usize, $crate::JobsError> {
                self.engine
                    .mutate(move |s, now, fx| Ok(s.delete_all_dead(queue, now, fx)))
                    .await
            }

            async fn dead_by_error(
                &self,
                queue: Option<&str>,
            ) -> Result<Vec<$crate::FailureGroup>, $crate::JobsError> {
                self.engine.read(|s, _| s.dead_by_error(queue))
            }

            async fn enqueue_batch(
                &self,
                jobs: Vec<$crate::NewJob>,
                callbacks: $crate::BatchCallbacks,
            ) -> Result<$crate::Batch, $crate::JobsError> {
                self.engine
                    .mutate(move |s, now, fx| s.enqueue_batch(jobs, callbacks, now, fx))
                    .await
            }

            async fn batch(
                &self,
                id: $crate::BatchId,
            ) -> Result<Option<$crate::BatchStatus>, $crate::JobsError> {
                self.engine.read(|s, _| s.batch(id))
            }

            async fn wait_for_work(&self, _queue: &str, max_wait: std::time::Duration) {
                let _ = tokio::time::timeout(max_wait, self.engine.notify.notified()).await;
            }

            fn now(&self) -> $crate::Timestamp {
                self.engine.clock.now()
            }

            fn stats(&self) -> $crate::JobsStats {
                let total = self.engine.state.lock().succeeded_total();
                self.engine.metrics.snapshot(total)
            }
        }
    };
}
pub(crate) use store_via_engine;

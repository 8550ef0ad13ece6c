//! The storage contract every backend implements, and the values it speaks.
//!
//! A backend is correct when it passes the conformance suite (`tests/conformance.rs`),
//! which runs the same tests against every implementation.

use std::collections::BTreeMap;
use std::future::Future;
use std::time::Duration;

use crate::batch::{Batch, BatchCallbacks, BatchId, BatchStatus};
use crate::job::{FailureKind, JobRecord, JobState, NewJob};
use crate::{FencingToken, JobId, JobsError, JobsStats, Timestamp};

/// The result of an enqueue.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Enqueued {
    /// The job's id (the existing job's id when `created` is false).
    pub id: JobId,
    /// False when an unfinished job with the same unique key already existed.
    pub created: bool,
}

/// A job handed to a worker, with the lease that entitles it to finish the job.
#[derive(Clone, Debug, PartialEq)]
pub struct Lease {
    /// The job, with `attempt` already counting this run.
    pub job: JobRecord,
    /// The fencing token every later call for this run must present.
    pub token: FencingToken,
    /// When the lease runs out unless extended by a heartbeat.
    pub deadline: Timestamp,
}

/// A failed run, as reported by a worker.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Failure {
    /// What kind of failure.
    pub kind: FailureKind,
    /// The message kept in the error history.
    pub message: String,
    /// When to try again; `None` dead-letters the job now (a permanent failure). Ignored
    /// (the job dies) when the job has used all its attempts.
    pub retry_at: Option<Timestamp>,
}

/// What a failure did to the job.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FailOutcome {
    /// Scheduled for another attempt.
    Retrying {
        /// When.
        at: Timestamp,
    },
    /// Dead-lettered.
    Dead,
}

/// What a cancel did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CancelOutcome {
    /// The job was pending and is gone (its unique key is free again).
    Cancelled,
    /// The job is running; a worker holds it. Nothing changed.
    Running,
    /// The job is dead or finished. Nothing changed.
    Finished,
    /// No such job.
    NotFound,
}

/// Jobs per state in one queue.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct QueueCounts {
    /// Not yet due, never failed.
    pub scheduled: u64,
    /// Due, never failed, waiting for a worker.
    pub available: u64,
    /// Leased.
    pub running: u64,
    /// Failed at least once, waiting for the next attempt.
    pub retrying: u64,
    /// Dead-lettered.
    pub dead: u64,
    /// Finished and retained.
    pub succeeded: u64,
    /// The queue is paused: fetches return nothing until it is resumed.
    pub paused: bool,
}

impl QueueCounts {
    /// Jobs that will still run (scheduled + available + running + retrying).
    pub fn unfinished(&self) -> u64 {
        self.scheduled + self.available + self.running + self.retrying
    }

    pub(crate) fn add(&mut self, state: JobState, n: i64) {
        let slot = match state {
            JobState::Scheduled => &mut self.scheduled,
            JobState::Available => &mut self.available,
            JobState::Running => &mut self.running,
            JobState::Retrying => &mut self.retrying,
            JobState::Dead => &mut self.dead,
            JobState::Succeeded => &mut self.succeeded,
        };
        *slot = slot.saturating_add_signed(n);
    }
}

/// Dead jobs that share their last error (see [`Store::dead_by_error`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FailureGroup {
    /// The kind of the last failure.
    pub kind: FailureKind,
    /// The message of the last failure.
    pub message: String,
    /// Dead jobs in the group.
    pub count: u64,
    /// The most recent failure in the group.
    pub latest: Timestamp,
    /// The job that failed most recently.
    pub example: JobId,
}

/// Which jobs [`Store::list`] returns: ascending id, starting after `after`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ListFilter {
    /// Only this queue.
    pub queue: Option<String>,
    /// Only this state.
    pub state: Option<JobState>,
    /// Only jobs of this kind.
    pub kind: Option<String>,
    /// Page cursor: ids greater than this.
    pub after: Option<JobId>,
    /// Page size (0 is treated as 1; at most 10 000).
    pub limit: usize,
}

/// A job storage backend: the contract the worker pool and producers rely on.
///
/// Every method is atomic. Methods that change jobs return only once the change is as
/// durable as the backend promises (the embedded store: fsynced).
///
/// # Leases and fencing
///
/// [`fetch`](Store::fetch) leases jobs: the job is `Running`, its attempt counts, and it
/// carries a new [`FencingToken`] larger than every earlier one. [`heartbeat`],
/// [`complete`], [`fail`] and [`release`] must present the current token *and* arrive
/// before the deadline; otherwise they fail with [`JobsError::StaleLease`] /
/// [`JobsError::LeaseExpired`], change nothing, and are counted in
/// [`JobsStats::stale_rejected`]. A lease whose deadline passed is given back (the job is
/// available again at once, or dead when out of attempts) by the next fetch or
/// [`reap_expired`](Store::reap_expired).
///
/// [`heartbeat`]: Store::heartbeat
/// [`complete`]: Store::complete
/// [`fail`]: Store::fail
/// [`release`]: Store::release
pub trait Store: Send + Sync + 'static {
    /// Adds a job. With a unique key already held by an unfinished job, returns that job's
    /// id with `created: false` and adds nothing.
    fn enqueue(&self, job: NewJob) -> impl Future<Output = Result<Enqueued, JobsError>> + Send;

    /// Adds many jobs atomically (all or none) in one commit.
    fn enqueue_many(
        &self,
        jobs: Vec<NewJob>,
    ) -> impl Future<Output = Result<Vec<Enqueued>, JobsError>> + Send;

    /// Leases up to `limit` due jobs of `queue`, highest priority first, FIFO within a
    /// priority. Gives back expired leases first.
    fn fetch(
        &self,
        queue: &str,
        limit: usize,
        lease: Duration,
    ) -> impl Future<Output = Result<Vec<Lease>, JobsError>> + Send;

    /// Extends a lease to `now + extend`; returns the new deadline.
    fn heartbeat(
        &self,
        id: JobId,
        token: FencingToken,
        extend: Duration,
    ) -> impl Future<Output = Result<Timestamp, JobsError>> + Send;

    /// Acknowledges a successful run.
    fn complete(
        &self,
        id: JobId,
        token: FencingToken,
    ) -> impl Future<Output = Result<(), JobsError>> + Send;

    /// Records a failed run: schedules a retry or dead-letters the job.
    fn fail(
        &self,
        id: JobId,
        token: FencingToken,
        failure: Failure,
    ) -> impl Future<Output = Result<FailOutcome, JobsError>> + Send;

    /// Gives a leased job back unrun (graceful shutdown): available at once, and this
    /// run's attempt does not count.
    fn release(
        &self,
        id: JobId,
        token: FencingToken,
    ) -> impl Future<Output = Result<(), JobsError>> + Send;

    /// Gives back every expired lease now; returns how many.
    fn reap_expired(&self) -> impl Future<Output = Result<usize, JobsError>> + Send;

    /// Removes a pending job.
    fn cancel(&self, id: JobId) -> impl Future<Output = Result<CancelOutcome, JobsError>> + Send;

    /// Puts a dead job back to available with a fresh set of attempts (history kept).
    fn retry_dead(&self, id: JobId) -> impl Future<Output = Result<(), JobsError>> + Send;

    /// Retries every dead job of `queue` (a job whose unique key is held again by an
    /// unfinished job is skipped); returns how many were revived.
    fn retry_all_dead(&self, queue: &str) -> impl Future<Output = Result<usize, JobsError>> + Send;

    /// Deletes every dead job of `queue`; returns how many.
    fn delete_all_dead(&self, queue: &str)
    -> impl Future<Output = Result<usize, JobsError>> + Send;

    /// Dead jobs (of `queue`, or all) grouped by their last error, largest group first.
    fn dead_by_error(
        &self,
        queue: Option<&str>,
    ) -> impl Future<Output = Result<Vec<FailureGroup>, JobsError>> + Send;

    /// Deletes a job that is not running.
    fn delete(&self, id: JobId) -> impl Future<Output = Result<(), JobsError>> + Send;

    /// One job.
    fn get(&self, id: JobId) -> impl Future<Output = Result<Option<JobRecord>, JobsError>> + Send;

    /// Jobs per state, per queue. A queue that holds no job (and is not paused) is absent.
    fn counts(
        &self,
    ) -> impl Future<Output = Result<BTreeMap<String, QueueCounts>, JobsError>> + Send;

    /// A page of jobs.
    fn list(
        &self,
        filter: ListFilter,
    ) -> impl Future<Output = Result<Vec<JobRecord>, JobsError>> + Send;

    /// Pauses a queue: fetches return nothing (running jobs finish; enqueues still
    /// succeed) until [`resume`](Store::resume). Persisted.
    fn pause(&self, queue: &str) -> impl Future<Output = Result<(), JobsError>> + Send;

    /// Resumes a paused queue.
    fn resume(&self, queue: &str) -> impl Future<Output = Result<(), JobsError>> + Send;

    /// Enqueues `job` for tick `tick` of the periodic schedule `schedule`, unless that
    /// tick or a later one was already enqueued by anyone sharing this store; then
    /// returns `None`. This is what makes a cron job fire once per tick however many
    /// schedulers run.
    fn enqueue_periodic(
        &self,
        schedule: &str,
        tick: Timestamp,
        job: NewJob,
    ) -> impl Future<Output = Result<Option<Enqueued>, JobsError>> + Send;

    /// Adds `jobs` as one batch, atomically: when the last member finishes, the matching
    /// callback of `callbacks` is enqueued exactly once (in the same commit as that
    /// member's final transition). Members cannot have unique keys.
    fn enqueue_batch(
        &self,
        jobs: Vec<NewJob>,
        callbacks: BatchCallbacks,
    ) -> impl Future<Output = Result<Batch, JobsError>> + Send;

    /// An open batch's progress (`None` once it has fired, or if it never existed).
    fn batch(
        &self,
        id: BatchId,
    ) -> impl Future<Output = Result<Option<BatchStatus>, JobsError>> + Send;

    /// Waits until work may be available on `queue`, at most `max_wait`. The default
    /// sleeps `max_wait`; in-process stores wake on enqueue.
    fn wait_for_work(&self, queue: &str, max_wait: Duration) -> impl Future<Output = ()> + Send {
        let _ = queue;
        tokio::time::sleep(max_wait)
    }

    /// The store's clock.
    fn now(&self) -> Timestamp;

    /// A snapshot of the store's counters.
    fn stats(&self) -> JobsStats;
}

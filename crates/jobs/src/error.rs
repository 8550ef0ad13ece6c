//! Typed errors: [`BuildError`] for construction, [`InvalidJob`] for a job that can never
//! be stored, [`JobsError`] for everything a store or producer call can return.

use crate::{FencingToken, JobId};

/// A builder was given settings that cannot work.
#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    /// A queue was configured with zero concurrency: it would never run a job.
    #[error("queue `{0}` has zero concurrency")]
    ZeroConcurrency(String),
    /// A worker pool without any queue would never fetch.
    #[error("a worker pool needs at least one queue")]
    NoQueues,
    /// Two handlers were registered for one job kind.
    #[error("job kind `{0}` has two handlers")]
    DuplicateHandler(String),
    /// A duration that must be positive was zero.
    #[error("{0} must be longer than zero")]
    ZeroDuration(&'static str),
    /// The heartbeat must come well before the lease runs out.
    #[error("heartbeat interval must be shorter than half the lease")]
    HeartbeatTooSlow,
    /// A duration is too long to add to a timestamp.
    #[error("{0} is too long")]
    DurationTooLong(&'static str),
    /// A required setting was not given.
    #[error("missing setting: {0}")]
    Missing(&'static str),
    /// The embedded store could not be opened or loaded.
    #[error("cannot open the job store")]
    Open(#[source] Box<dyn std::error::Error + Send + Sync>),
    /// A cron expression did not parse.
    #[error("bad cron expression `{expression}`")]
    Cron {
        /// The expression.
        expression: String,
        /// Why.
        #[source]
        source: croner::errors::CronError,
    },
    /// Two periodic schedules share a name (the name keys the once-per-tick record).
    #[error("schedule `{0}` is defined twice")]
    DuplicateSchedule(String),
    /// A periodic job was refused (see [`InvalidJob`]).
    #[error("periodic job `{schedule}` is invalid")]
    InvalidPeriodicJob {
        /// The schedule.
        schedule: String,
        /// Why.
        #[source]
        source: InvalidJob,
    },
    /// A queue's rate limiter could not be built.
    #[error("rate limit of queue `{queue}` is invalid")]
    RateLimit {
        /// The queue.
        queue: String,
        /// Why.
        #[source]
        source: keel_ratelimit::BuildError,
    },
    /// The embedded store's committer thread could not be started.
    #[error("cannot start the commit thread")]
    Spawn(#[source] std::io::Error),
}

/// Why a job was refused at enqueue.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InvalidJob {
    /// The queue name was empty.
    #[error("queue name is empty")]
    EmptyQueue,
    /// The kind was empty.
    #[error("job kind is empty")]
    EmptyKind,
    /// A name (queue, kind, unique key, tag) was longer than [`MAX_NAME_LEN`](crate::job::MAX_NAME_LEN).
    #[error("{0} is too long")]
    NameTooLong(&'static str),
    /// `max_attempts` was zero: the job could never run.
    #[error("max_attempts must be at least 1")]
    ZeroMaxAttempts,
    /// `max_attempts` was above [`MAX_ATTEMPTS_LIMIT`](crate::job::MAX_ATTEMPTS_LIMIT).
    #[error("max_attempts {0} is too large")]
    TooManyAttempts(u32),
    /// A zero per-job timeout would fail every run.
    #[error("timeout must be longer than zero")]
    ZeroTimeout,
    /// The delay (or timeout) does not fit in 64-bit milliseconds after now.
    #[error("delay is too long")]
    DelayTooLong,
    /// `enqueue_at` was given a time already in the past.
    #[error("run_at {run_at} is before now ({now})")]
    RunAtInPast {
        /// The requested time.
        run_at: crate::Timestamp,
        /// The store's clock when the job arrived.
        now: crate::Timestamp,
    },
    /// The payload is larger than [`MAX_PAYLOAD_BYTES`](crate::job::MAX_PAYLOAD_BYTES).
    #[error("payload of {0} bytes is too large")]
    PayloadTooLarge(usize),
    /// More tags than [`MAX_TAGS`](crate::job::MAX_TAGS).
    #[error("too many tags ({0})")]
    TooManyTags(usize),
    /// The typed job could not be serialized.
    #[error("payload does not serialize: {0}")]
    Serialize(String),
}

/// Errors of store and producer calls.
#[derive(Debug, thiserror::Error)]
pub enum JobsError {
    /// The job was refused (see [`InvalidJob`]).
    #[error(transparent)]
    Invalid(#[from] InvalidJob),
    /// The caller's lease is not the job's current lease: the job was finished, re-leased
    /// (a newer fencing token exists) or released. The call changed nothing.
    #[error("job {id}: lease {token} is no longer held")]
    StaleLease {
        /// The job.
        id: JobId,
        /// The caller's (stale) token.
        token: FencingToken,
    },
    /// The caller still held the latest token, but its lease deadline had passed: the
    /// job was given back (the attempt counts) and the call changed nothing else.
    #[error("job {id}: lease {token} expired")]
    LeaseExpired {
        /// The job.
        id: JobId,
        /// The caller's token.
        token: FencingToken,
    },
    /// No job with this id.
    #[error("job {0} not found")]
    NotFound(JobId),
    /// The operation needs a job that is not running (e.g. delete, retry).
    #[error("job {0} is running")]
    Running(JobId),
    /// The operation needs a dead job.
    #[error("job {0} is not dead")]
    NotDead(JobId),
    /// A fetch asked for zero jobs, or a lease/extension of zero length.
    #[error("invalid argument: {0}")]
    InvalidArgument(&'static str),
    /// The storage engine failed; the operation may not have happened.
    #[error("storage failed")]
    Storage(#[source] Box<dyn std::error::Error + Send + Sync>),
    /// An earlier group commit failed; the store refuses all writes until reopened
    /// (its memory may be ahead of its disk).
    #[error("store is failed after a commit error: {0}")]
    CommitFailed(String),
    /// The store was closed.
    #[error("store is closed")]
    Closed,
}

impl JobsError {
    /// True for the fencing rejections ([`JobsError::StaleLease`], [`JobsError::LeaseExpired`]).
    pub fn is_fenced(&self) -> bool {
        matches!(
            self,
            JobsError::StaleLease { .. } | JobsError::LeaseExpired { .. }
        )
    }
}

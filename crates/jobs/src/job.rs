//! The job model: what a producer submits ([`NewJob`]), what a store keeps ([`JobRecord`]),
//! and the [`Job`] trait that makes enqueue and handle type-safe.

use std::fmt;
use std::time::Duration;

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use crate::Timestamp;
use crate::backoff::Backoff;
use crate::error::InvalidJob;

/// Longest queue name, kind, unique key or tag, in bytes.
pub const MAX_NAME_LEN: usize = 256;
/// Largest `max_attempts`.
pub const MAX_ATTEMPTS_LIMIT: u32 = 10_000;
/// Largest serialized payload, in bytes.
pub const MAX_PAYLOAD_BYTES: usize = 1 << 20;
/// Most tags on one job.
pub const MAX_TAGS: usize = 32;
/// Error history kept per job: the most recent entries (the count of all attempts stays in
/// `attempt`), so a job retried 10 000 times does not grow without bound.
pub const MAX_ERROR_HISTORY: usize = 32;
/// Longest error message kept, in bytes (longer ones are cut at a char boundary).
pub const MAX_ERROR_LEN: usize = 4096;

/// A job's id: unique within a store, increasing in enqueue order.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct JobId(pub u64);

impl fmt::Display for JobId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// The fencing token of one lease. Every lease a store hands out gets a larger token than
/// any before it, so a job's current holder is exactly the caller with its latest token.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct FencingToken(pub u64);

impl fmt::Display for FencingToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "#{}", self.0)
    }
}

/// Defaults a [`Job`] type gives every job of its kind.
#[derive(Clone, Debug, PartialEq)]
pub struct JobOptions {
    /// Queue the kind runs on.
    pub queue: String,
    /// Higher runs first; FIFO (by `run_at`, then id) within a priority.
    pub priority: i16,
    /// Runs allowed before the job is dead-lettered (≥ 1).
    pub max_attempts: u32,
    /// Per-run timeout; `None` uses the worker pool's default.
    pub timeout: Option<Duration>,
    /// Delay before the next attempt after a failure.
    pub backoff: Backoff,
}

impl Default for JobOptions {
    fn default() -> Self {
        Self {
            queue: "default".to_owned(),
            priority: 0,
            max_attempts: 5,
            timeout: None,
            backoff: Backoff::default(),
        }
    }
}

/// A typed job: a serde payload plus its kind name and defaults.
///
/// ```
/// use keel_jobs::{Job, JobOptions};
/// use serde::{Deserialize, Serialize};
///
/// #[derive(Serialize, Deserialize)]
/// struct SendEmail { to: String }
///
/// impl Job for SendEmail {
///     const KIND: &'static str = "send_email";
///     fn options() -> JobOptions {
///         JobOptions { queue: "emails".into(), max_attempts: 3, ..JobOptions::default() }
///     }
///     fn unique_key(&self) -> Option<String> { Some(format!("welcome:{}", self.to)) }
/// }
///
/// let job = keel_jobs::NewJob::from_job(&SendEmail { to: "a@example.com".into() })?;
/// assert_eq!((job.queue.as_str(), job.kind.as_str(), job.max_attempts), ("emails", "send_email", 3));
/// assert_eq!(job.unique_key.as_deref(), Some("welcome:a@example.com"));
/// # Ok::<(), keel_jobs::InvalidJob>(())
/// ```
pub trait Job: Serialize + DeserializeOwned + Send + 'static {
    /// The kind name stored with the job and used to find its handler.
    const KIND: &'static str;

    /// Queue, priority, attempts, timeout and backoff for this kind.
    fn options() -> JobOptions {
        JobOptions::default()
    }

    /// A key that makes the job unique while one with the same key is unfinished.
    fn unique_key(&self) -> Option<String> {
        None
    }
}

/// A job as submitted to [`Store::enqueue`](crate::Store::enqueue).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct NewJob {
    /// Queue name.
    pub queue: String,
    /// Kind name (selects the handler).
    pub kind: String,
    /// The job's data.
    pub payload: serde_json::Value,
    /// Higher runs first.
    pub priority: i16,
    /// Runs allowed before dead-lettering (≥ 1).
    pub max_attempts: u32,
    /// Earliest time to run; `None` means now (the store's clock).
    pub run_at: Option<Timestamp>,
    /// Delay from the store's now; applied when `run_at` is `None`.
    pub delay: Option<Duration>,
    /// Per-run timeout; `None` uses the worker pool's default.
    pub timeout: Option<Duration>,
    /// At most one unfinished job per unique key.
    pub unique_key: Option<String>,
    /// Free-form labels (for listing and the dashboard).
    pub tags: Vec<String>,
}

impl NewJob {
    /// A job of `kind` on `queue` with default options.
    ///
    /// ```
    /// # use keel_jobs::NewJob;
    /// let job = NewJob::new("default", "ping", serde_json::json!({"n": 1})).with_priority(5);
    /// assert_eq!(job.priority, 5);
    /// ```
    pub fn new(
        queue: impl Into<String>,
        kind: impl Into<String>,
        payload: serde_json::Value,
    ) -> Self {
        let defaults = JobOptions::default();
        Self {
            queue: queue.into(),
            kind: kind.into(),
            payload,
            priority: defaults.priority,
            max_attempts: defaults.max_attempts,
            run_at: None,
            delay: None,
            timeout: defaults.timeout,
            unique_key: None,
            tags: Vec::new(),
        }
    }

    /// The submission for a typed job, with its kind's [`JobOptions`].
    ///
    /// # Errors
    ///
    /// [`InvalidJob::Serialize`] when the payload does not serialize to JSON.
    pub fn from_job<J: Job>(job: &J) -> Result<Self, InvalidJob> {
        let options = J::options();
        let payload =
            serde_json::to_value(job).map_err(|e| InvalidJob::Serialize(e.to_string()))?;
        Ok(Self {
            queue: options.queue,
            kind: J::KIND.to_owned(),
            payload,
            priority: options.priority,
            max_attempts: options.max_attempts,
            run_at: None,
            delay: None,
            timeout: options.timeout,
            unique_key: job.unique_key(),
            tags: Vec::new(),
        })
    }

    /// Sets the priority.
    pub fn with_priority(mut self, priority: i16) -> Self {
        self.priority = priority;
        self
    }

    /// Sets `max_attempts`.
    pub fn with_max_attempts(mut self, max_attempts: u32) -> Self {
        self.max_attempts = max_attempts;
        self
    }

    /// Runs no earlier than `delay` after the store's now.
    pub fn with_delay(mut self, delay: Duration) -> Self {
        self.delay = Some(delay);
        self
    }

    /// Runs no earlier than `run_at` (must not be in the past).
    pub fn with_run_at(mut self, run_at: Timestamp) -> Self {
        self.run_at = Some(run_at);
        self
    }

    /// Sets the unique key.
    pub fn with_unique_key(mut self, key: impl Into<String>) -> Self {
        self.unique_key = Some(key.into());
        self
    }

    /// Sets the per-run timeout.
    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = Some(timeout);
        self
    }

    /// Adds a tag.
    pub fn with_tag(mut self, tag: impl Into<String>) -> Self {
        self.tags.push(tag.into());
        self
    }

    /// Checks the job and resolves its `run_at` against `now`.
    pub(crate) fn validate(&self, now: Timestamp) -> Result<Timestamp, InvalidJob> {
        check_name(&self.queue, "queue name", InvalidJob::EmptyQueue)?;
        check_name(&self.kind, "job kind", InvalidJob::EmptyKind)?;
        if let Some(key) = &self.unique_key
            && key.len() > MAX_NAME_LEN
        {
            return Err(InvalidJob::NameTooLong("unique key"));
        }
        if self.tags.len() > MAX_TAGS {
            return Err(InvalidJob::TooManyTags(self.tags.len()));
        }
        if self.tags.iter().any(|t| t.len() > MAX_NAME_LEN) {
            return Err(InvalidJob::NameTooLong("tag"));
        }
        if self.max_attempts == 0 {
            return Err(InvalidJob::ZeroMaxAttempts);
        }
        if self.max_attempts > MAX_ATTEMPTS_LIMIT {
            return Err(InvalidJob::TooManyAttempts(self.max_attempts));
        }
        match self.timeout {
            Some(t) if t.is_zero() => return Err(InvalidJob::ZeroTimeout),
            Some(t) if Timestamp(0).checked_add(t).is_none() => {
                return Err(InvalidJob::DelayTooLong);
            }
            _ => {}
        }
        let size = serde_json::to_vec(&self.payload)
            .map(|v| v.len())
            .unwrap_or(usize::MAX);
        if size > MAX_PAYLOAD_BYTES {
            return Err(InvalidJob::PayloadTooLarge(size));
        }
        match (self.run_at, self.delay) {
            (Some(run_at), _) if run_at < now => Err(InvalidJob::RunAtInPast { run_at, now }),
            (Some(run_at), _) => Ok(run_at),
            (None, Some(delay)) => now.checked_add(delay).ok_or(InvalidJob::DelayTooLong),
            (None, None) => Ok(now),
        }
    }
}

fn check_name(name: &str, what: &'static str, empty: InvalidJob) -> Result<(), InvalidJob> {
    if name.is_empty() {
        Err(empty)
    } else if name.len() > MAX_NAME_LEN {
        Err(InvalidJob::NameTooLong(what))
    } else {
        Ok(())
    }
}

/// Where a job is in its life.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum JobState {
    /// Waiting for its `run_at`, never run and never failed.
    Scheduled,
    /// Due and waiting for a worker.
    Available,
    /// Leased by a worker.
    Running,
    /// Failed at least once and waiting for its next attempt (due or not).
    Retrying,
    /// Out of attempts (or failed permanently): kept with its error history.
    Dead,
    /// Finished successfully (kept only when the store retains completed jobs).
    Succeeded,
}

impl JobState {
    /// Every state, in display order.
    pub const ALL: [JobState; 6] = [
        JobState::Scheduled,
        JobState::Available,
        JobState::Running,
        JobState::Retrying,
        JobState::Dead,
        JobState::Succeeded,
    ];
}

/// Why an attempt failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum FailureKind {
    /// The handler returned an error.
    Error,
    /// The handler panicked (contained; the worker lives on).
    Panic,
    /// The run exceeded its timeout.
    Timeout,
    /// The worker lost its lease (crashed, hung or partitioned); found by the reaper.
    LeaseExpired,
    /// No handler is registered for the job's kind (dead-lettered, not retried).
    UnknownKind,
    /// The payload does not deserialize into the kind's type (dead-lettered, not retried).
    BadPayload,
}

/// One entry of a job's error history.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AttemptError {
    /// The attempt that failed (1-based).
    pub attempt: u32,
    /// When the failure was recorded.
    pub at: Timestamp,
    /// What kind of failure.
    pub kind: FailureKind,
    /// The message.
    pub message: String,
}

/// The stored status of a job (the persisted part of [`JobState`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Status {
    /// Waiting to run at `run_at`.
    Pending,
    /// Leased.
    Running {
        /// The lease's fencing token.
        token: FencingToken,
        /// When the lease runs out unless extended.
        deadline: Timestamp,
        /// When this run was leased.
        started_at: Timestamp,
    },
    /// Dead-lettered.
    Dead {
        /// When.
        at: Timestamp,
    },
    /// Completed.
    Succeeded {
        /// When.
        at: Timestamp,
    },
}

/// A job as a store keeps it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct JobRecord {
    /// Id.
    pub id: JobId,
    /// Queue name.
    pub queue: String,
    /// Kind name.
    pub kind: String,
    /// The job's data.
    pub payload: serde_json::Value,
    /// Higher runs first.
    pub priority: i16,
    /// Runs started so far (the current run's number while running).
    pub attempt: u32,
    /// Runs allowed.
    pub max_attempts: u32,
    /// Earliest time of the next run.
    pub run_at: Timestamp,
    /// When it was enqueued.
    pub enqueued_at: Timestamp,
    /// Per-run timeout.
    pub timeout: Option<Duration>,
    /// Unique key, released when the job finishes.
    pub unique_key: Option<String>,
    /// Tags.
    pub tags: Vec<String>,
    /// Stored status.
    pub status: Status,
    /// The most recent failures (at most [`MAX_ERROR_HISTORY`]).
    pub errors: Vec<AttemptError>,
    /// How many times a lease on this job expired (its worker was lost).
    pub lease_recoveries: u32,
    /// The batch this job belongs to, if any.
    #[serde(default)]
    pub batch: Option<crate::BatchId>,
}

impl JobRecord {
    /// The job's state at time `now`.
    ///
    /// ```
    /// # use keel_jobs::{JobState, NewJob, Store, MemoryStore, MockClock, Timestamp};
    /// # use std::time::Duration;
    /// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
    /// let clock = MockClock::new(Timestamp(0));
    /// let store = MemoryStore::builder().clock(clock.clone()).build();
    /// let id = store.enqueue(NewJob::new("q", "k", serde_json::Value::Null).with_delay(Duration::from_secs(1))).await?.id;
    /// let job = store.get(id).await?.unwrap();
    /// assert_eq!(job.state(Timestamp(0)), JobState::Scheduled);
    /// assert_eq!(job.state(Timestamp(1_000)), JobState::Available);
    /// # Ok::<(), keel_jobs::JobsError>(()) }).unwrap();
    /// ```
    pub fn state(&self, now: Timestamp) -> JobState {
        match self.status {
            Status::Running { .. } => JobState::Running,
            Status::Dead { .. } => JobState::Dead,
            Status::Succeeded { .. } => JobState::Succeeded,
            Status::Pending if !self.errors.is_empty() => JobState::Retrying,
            Status::Pending if self.run_at > now => JobState::Scheduled,
            Status::Pending => JobState::Available,
        }
    }

    /// The current lease's token, if running.
    pub fn token(&self) -> Option<FencingToken> {
        match self.status {
            Status::Running { token, .. } => Some(token),
            _ => None,
        }
    }

    pub(crate) fn push_error(&mut self, kind: FailureKind, message: &str, at: Timestamp) {
        let mut message = message.to_owned();
        if message.len() > MAX_ERROR_LEN {
            let mut cut = MAX_ERROR_LEN;
            while !message.is_char_boundary(cut) {
                cut -= 1;
            }
            message.truncate(cut);
        }
        if self.errors.len() >= MAX_ERROR_HISTORY {
            self.errors.remove(0);
        }
        self.errors.push(AttemptError {
            attempt: self.attempt,
            at,
            kind,
            message,
        });
    }
}

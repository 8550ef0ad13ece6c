//! [`Producer`]: type-safe enqueue of [`Job`]s onto any [`Store`].

use std::sync::Arc;
use std::time::Duration;

use crate::batch::{Batch, BatchCallbacks};
use crate::job::{Job, NewJob};
use crate::store::{CancelOutcome, Enqueued, Store};
use crate::{InvalidJob, JobId, JobsError, Timestamp};

/// Enqueues typed jobs with their kind's defaults.
///
/// ```
/// use std::sync::Arc;
/// use std::time::Duration;
/// use keel_jobs::{Job, JobState, MemoryStore, MockClock, Producer, Store, Timestamp};
/// use serde::{Deserialize, Serialize};
///
/// #[derive(Serialize, Deserialize)]
/// struct Reminder { user: u64 }
/// impl Job for Reminder {
///     const KIND: &'static str = "reminder";
///     fn unique_key(&self) -> Option<String> { Some(format!("reminder:{}", self.user)) }
/// }
///
/// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
/// let clock = MockClock::new(Timestamp(0));
/// let store = Arc::new(MemoryStore::builder().clock(clock.clone()).build());
/// let producer = Producer::new(Arc::clone(&store));
/// let first = producer.enqueue_in(&Reminder { user: 1 }, Duration::from_secs(60)).await?;
/// let again = producer.enqueue(&Reminder { user: 1 }).await?;   // same unique key
/// assert_eq!((first.id, first.created, again.created), (again.id, true, false));
/// assert_eq!(store.get(first.id).await?.unwrap().state(clock.now()), JobState::Scheduled);
/// # Ok::<(), keel_jobs::JobsError>(()) }).unwrap();
/// # use keel_jobs::Clock;
/// ```
#[derive(Debug)]
pub struct Producer<S> {
    store: Arc<S>,
}

impl<S> Clone for Producer<S> {
    fn clone(&self) -> Self {
        Self {
            store: Arc::clone(&self.store),
        }
    }
}

impl<S: Store> Producer<S> {
    /// A producer on `store`.
    pub fn new(store: Arc<S>) -> Self {
        Self { store }
    }

    /// Enqueues `job` to run now.
    ///
    /// # Errors
    ///
    /// [`JobsError::Invalid`] for a job that can never run; store errors.
    pub async fn enqueue<J: Job>(&self, job: &J) -> Result<Enqueued, JobsError> {
        self.store.enqueue(NewJob::from_job(job)?).await
    }

    /// Enqueues `job` to run no earlier than `delay` from now.
    ///
    /// # Errors
    ///
    /// [`InvalidJob::DelayTooLong`] when now + `delay` overflows; as [`Producer::enqueue`].
    pub async fn enqueue_in<J: Job>(
        &self,
        job: &J,
        delay: Duration,
    ) -> Result<Enqueued, JobsError> {
        self.store
            .enqueue(NewJob::from_job(job)?.with_delay(delay))
            .await
    }

    /// Enqueues `job` to run no earlier than `at`.
    ///
    /// # Errors
    ///
    /// [`InvalidJob::RunAtInPast`] when `at` is before the store's now; as [`Producer::enqueue`].
    pub async fn enqueue_at<J: Job>(&self, job: &J, at: Timestamp) -> Result<Enqueued, JobsError> {
        self.store
            .enqueue(NewJob::from_job(job)?.with_run_at(at))
            .await
    }

    /// Enqueues many jobs atomically in one store call (one commit).
    ///
    /// # Errors
    ///
    /// As [`Producer::enqueue`]; nothing is enqueued when any job is invalid.
    pub async fn enqueue_many<'a, J: Job>(
        &self,
        jobs: impl IntoIterator<Item = &'a J>,
    ) -> Result<Vec<Enqueued>, JobsError> {
        let jobs = jobs
            .into_iter()
            .map(NewJob::from_job)
            .collect::<Result<Vec<_>, InvalidJob>>()?;
        self.store.enqueue_many(jobs).await
    }

    /// Enqueues typed jobs as one batch whose callback runs exactly once when the last
    /// member finishes (see [`Store::enqueue_batch`]).
    ///
    /// ```
    /// use std::sync::Arc;
    /// use keel_jobs::{BatchCallbacks, Job, MemoryStore, NewJob, Producer, Store};
    /// use serde::{Deserialize, Serialize};
    ///
    /// #[derive(Serialize, Deserialize)]
    /// struct Resize { image: u32 }
    /// impl Job for Resize { const KIND: &'static str = "resize"; }
    ///
    /// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
    /// let store = Arc::new(MemoryStore::builder().build());
    /// let done = NewJob::new("default", "album_ready", serde_json::json!({"album": 1}));
    /// let callbacks = BatchCallbacks { on_success: Some(done), on_failure: None };
    /// let batch = Producer::new(Arc::clone(&store))
    ///     .enqueue_batch(&[Resize { image: 1 }, Resize { image: 2 }], callbacks)
    ///     .await?;
    /// assert_eq!(store.batch(batch.id).await?.unwrap().pending, 2);
    /// # Ok::<(), keel_jobs::JobsError>(()) }).unwrap();
    /// ```
    ///
    /// # Errors
    ///
    /// As [`Store::enqueue_batch`].
    pub async fn enqueue_batch<'a, J: Job>(
        &self,
        jobs: impl IntoIterator<Item = &'a J>,
        callbacks: BatchCallbacks,
    ) -> Result<Batch, JobsError> {
        let jobs = jobs
            .into_iter()
            .map(NewJob::from_job)
            .collect::<Result<Vec<_>, InvalidJob>>()?;
        self.store.enqueue_batch(jobs, callbacks).await
    }

    /// Cancels a pending job.
    ///
    /// # Errors
    ///
    /// Store errors.
    pub async fn cancel(&self, id: JobId) -> Result<CancelOutcome, JobsError> {
        self.store.cancel(id).await
    }
}

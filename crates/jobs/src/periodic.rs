//! Periodic (cron) jobs that fire **once per tick** however many schedulers run.
//!
//! Each scheduler computes, for every schedule, the latest tick at or before now (cron
//! expressions via the `croner` crate, UTC, optional seconds field). If that tick is newer
//! than the last one it saw, it calls [`Store::enqueue_periodic`] with the schedule's name
//! and the tick: the store enqueues the job only if no one has enqueued that tick (or a
//! later one) yet, atomically with recording it. So three schedulers racing on one store
//! produce one job per tick, and a scheduler restarted mid-tick does not enqueue it again
//! (the record is persisted with the jobs).
//!
//! Missed ticks (the scheduler was down for an hour) are not replayed one by one: the
//! latest due tick fires once — the usual choice for "refresh the cache every minute".

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use croner::Cron;
use croner::parser::{CronParser, Seconds};

use crate::job::{Job, NewJob};
use crate::store::{Enqueued, Store};
use crate::{BuildError, JobsError, Timestamp};

struct Schedule {
    name: String,
    cron: Cron,
    job: NewJob,
    /// Ticks at or before this were already handled by this scheduler.
    seen: Timestamp,
}

impl fmt::Debug for Schedule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Schedule")
            .field("name", &self.name)
            .field("cron", &self.cron.pattern.to_string())
            .finish()
    }
}

/// Builds a [`Periodic`] scheduler.
#[must_use]
pub struct PeriodicBuilder<S> {
    store: Arc<S>,
    schedules: Vec<(String, String, Result<NewJob, crate::InvalidJob>)>,
}

impl<S> fmt::Debug for PeriodicBuilder<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PeriodicBuilder")
            .field("schedules", &self.schedules.len())
            .finish()
    }
}

impl<S: Store> PeriodicBuilder<S> {
    /// Enqueues `job` (a typed [`Job`]) on every tick of `cron` (5 fields, or 6 with
    /// seconds first; UTC). `name` identifies the schedule across schedulers and restarts.
    pub fn schedule<J: Job>(
        self,
        name: impl Into<String>,
        cron: impl Into<String>,
        job: &J,
    ) -> Self {
        let job = NewJob::from_job(job);
        self.push(name.into(), cron.into(), job)
    }

    /// As [`schedule`](Self::schedule), with an untyped job.
    pub fn schedule_job(
        self,
        name: impl Into<String>,
        cron: impl Into<String>,
        job: NewJob,
    ) -> Self {
        self.push(name.into(), cron.into(), Ok(job))
    }

    fn push(mut self, name: String, cron: String, job: Result<NewJob, crate::InvalidJob>) -> Self {
        self.schedules.push((name, cron, job));
        self
    }

    /// The scheduler. Ticks at or before the store's current time are not fired.
    ///
    /// # Errors
    ///
    /// [`BuildError::Cron`] for an expression that does not parse,
    /// [`BuildError::DuplicateSchedule`], [`BuildError::InvalidPeriodicJob`] for a job
    /// that could never be enqueued (e.g. zero attempts, a fixed `run_at`).
    pub fn build(self) -> Result<Periodic<S>, BuildError> {
        let parser = CronParser::builder().seconds(Seconds::Optional).build();
        let now = self.store.now();
        let mut schedules: Vec<Schedule> = Vec::new();
        for (name, expression, job) in self.schedules {
            if schedules.iter().any(|s| s.name == name) {
                return Err(BuildError::DuplicateSchedule(name));
            }
            let invalid = |source| BuildError::InvalidPeriodicJob {
                schedule: name.clone(),
                source,
            };
            let job = job.map_err(invalid)?;
            if job.run_at.is_some() {
                return Err(invalid(crate::InvalidJob::RunAtInPast {
                    run_at: job.run_at.unwrap_or_default(),
                    now,
                }));
            }
            job.validate(now).map_err(invalid)?;
            let cron = parser
                .parse(&expression)
                .map_err(|source| BuildError::Cron {
                    expression: expression.clone(),
                    source,
                })?;
            schedules.push(Schedule {
                name,
                cron,
                job,
                seen: now,
            });
        }
        Ok(Periodic {
            store: self.store,
            schedules,
        })
    }
}

/// A cron scheduler on a store: call [`tick`](Periodic::tick) periodically, or
/// [`start`](Periodic::start) a task that does.
///
/// ```
/// use std::sync::Arc;
/// use std::time::Duration;
/// use keel_jobs::{MemoryStore, MockClock, NewJob, Periodic, Store, Timestamp};
/// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
/// let clock = MockClock::new(Timestamp(1_700_000_000_000)); // 22:13:20 UTC
/// let store = Arc::new(MemoryStore::builder().clock(clock.clone()).build());
/// let mut cron = Periodic::builder(Arc::clone(&store))
///     .schedule_job("report", "*/10 * * * * *", NewJob::new("default", "report", serde_json::Value::Null))
///     .build()?;
/// assert_eq!(cron.tick().await?, 0);                  // 22:13:20 is "now": not fired
/// clock.advance(Duration::from_secs(25));             // ticks :30 and :40 passed
/// assert_eq!(cron.tick().await?, 1);                  // the latest one fires once
/// assert_eq!(cron.tick().await?, 0);
/// # Ok::<(), Box<dyn std::error::Error>>(()) }).unwrap();
/// ```
#[derive(Debug)]
pub struct Periodic<S> {
    store: Arc<S>,
    schedules: Vec<Schedule>,
}

impl<S: Store> Periodic<S> {
    /// A builder on `store`.
    pub fn builder(store: Arc<S>) -> PeriodicBuilder<S> {
        PeriodicBuilder {
            store,
            schedules: Vec::new(),
        }
    }

    /// Fires every schedule whose latest tick is new to this scheduler; returns how many
    /// jobs this call enqueued (ticks another scheduler already enqueued count 0).
    ///
    /// # Errors
    ///
    /// Store errors (the tick is retried on the next call).
    pub async fn tick(&mut self) -> Result<usize, JobsError> {
        let now = self.store.now();
        let mut fired = 0;
        for s in &mut self.schedules {
            let Some(tick) = latest_tick(&s.cron, now) else {
                continue;
            };
            if tick <= s.seen {
                continue;
            }
            let enqueued: Option<Enqueued> = self
                .store
                .enqueue_periodic(&s.name, tick, s.job.clone())
                .await?;
            s.seen = tick;
            fired += usize::from(enqueued.is_some());
        }
        Ok(fired)
    }

    /// Runs [`tick`](Periodic::tick) every `every` on the current tokio runtime until the
    /// handle is dropped or stopped. Store errors are retried on the next round.
    pub fn start(mut self, every: Duration) -> PeriodicHandle {
        let task = tokio::spawn(async move {
            loop {
                let _ = self.tick().await;
                tokio::time::sleep(every).await;
            }
        });
        PeriodicHandle { task }
    }
}

/// A running scheduler; dropping it stops it.
#[derive(Debug)]
pub struct PeriodicHandle {
    task: tokio::task::JoinHandle<()>,
}

impl PeriodicHandle {
    /// Stops the scheduler.
    pub fn stop(self) {}
}

impl Drop for PeriodicHandle {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// The latest tick of `cron` at or before `now` (whole seconds, UTC).
fn latest_tick(cron: &Cron, now: Timestamp) -> Option<Timestamp> {
    let millis = i64::try_from(now.0).ok()?;
    let at: DateTime<Utc> = DateTime::from_timestamp_millis(millis)?;
    let tick = cron.find_previous_occurrence(&at, true).ok()?;
    u64::try_from(tick.timestamp_millis()).ok().map(Timestamp)
}

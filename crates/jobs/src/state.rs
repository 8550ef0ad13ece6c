//! The queue engine shared by the in-process stores: every job record plus the indexes
//! that make each operation O(log n), with no I/O. [`MemoryStore`](crate::MemoryStore)
//! wraps it in a mutex; [`RedbStore`](crate::RedbStore) also ships every change it makes
//! to the group committer and waits for the commit.
//!
//! Indexes per queue: `ready` ordered by (priority descending, run_at, id) — the fetch
//! order; `scheduled` ordered by (run_at, id) — promoted into `ready` when due. One global
//! `leases` index ordered by (deadline, id) finds expired leases from its front.
//! `failures` indexes dead jobs by (queue, kind, last error message), each group ordered by
//! (failure time, id): the dashboard's failures page and the per-queue dead-letter actions
//! read it instead of scanning every job (200,000 dead jobs: one `dead_by_error` went from
//! ~200 ms under the state lock to the number of groups).

use std::cmp::Reverse;
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::time::Duration;

use crate::batch::{Batch, BatchCallbacks, BatchId, BatchStatus};
use crate::job::{FailureKind, JobRecord, JobState, NewJob, Status};
use crate::store::{
    CancelOutcome, Enqueued, FailOutcome, Failure, FailureGroup, Lease, ListFilter, QueueCounts,
};
use crate::{FencingToken, InvalidJob, JobId, JobsError, Timestamp};

/// One change to persist, in order.
#[derive(Debug, Clone)]
pub(crate) enum Change {
    Put(Box<JobRecord>),
    Delete(JobId),
    /// A queue was paused (`true`) or resumed.
    Paused(String, bool),
    /// The latest tick a periodic schedule enqueued.
    CronTick(String, Timestamp),
    /// A batch was created or progressed.
    Batch(Box<BatchStatus>),
    /// A batch finished (its callback, if any, is in the same commit).
    BatchDone(BatchId),
}

/// Counters that are persisted with the jobs.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Meta {
    pub(crate) next_id: u64,
    pub(crate) next_token: u64,
    pub(crate) succeeded_total: u64,
}

/// What happened in one call, for the store's counters.
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct Events {
    pub(crate) enqueued: u64,
    pub(crate) duplicates: u64,
    pub(crate) leased: u64,
    pub(crate) completed: u64,
    pub(crate) failed: u64,
    pub(crate) retried: u64,
    pub(crate) dead: u64,
    pub(crate) lease_recoveries: u64,
    pub(crate) released: u64,
    pub(crate) cancelled: u64,
    pub(crate) stale_rejected: u64,
}

#[derive(Debug, Default)]
struct QueueIndex {
    ready: BTreeSet<(Reverse<i16>, Timestamp, JobId)>,
    scheduled: BTreeSet<(Timestamp, JobId)>,
    counts: QueueCounts,
}

/// A dead job's group: its queue, and the kind and message of its last failure.
/// (`None` for a job dead without any recorded failure: counted by the dead-letter
/// actions, left out of [`State::dead_by_error`].)
type FailureKey = (String, Option<(FailureKind, String)>);

fn failure_entry(record: &JobRecord) -> (FailureKey, (Timestamp, JobId)) {
    let last = record.errors.last();
    (
        (
            record.queue.clone(),
            last.map(|e| (e.kind, e.message.clone())),
        ),
        (last.map_or(Timestamp(0), |e| e.at), record.id),
    )
}

/// All jobs and their indexes.
#[derive(Debug, Default)]
pub(crate) struct State {
    jobs: BTreeMap<JobId, JobRecord>,
    queues: HashMap<String, QueueIndex>,
    leases: BTreeSet<(Timestamp, JobId)>,
    failures: HashMap<FailureKey, BTreeSet<(Timestamp, JobId)>>,
    unique: HashMap<String, JobId>,
    paused: BTreeSet<String>,
    cron_ticks: HashMap<String, Timestamp>,
    batches: BTreeMap<BatchId, BatchStatus>,
    meta: Meta,
    keep_completed: bool,
}

/// A batch of changes plus the counters they produced.
#[derive(Debug, Default)]
pub(crate) struct Effects {
    pub(crate) changes: Vec<Change>,
    pub(crate) events: Events,
}

impl Effects {
    fn put(&mut self, record: &JobRecord) {
        self.changes.push(Change::Put(Box::new(record.clone())));
    }
}

impl State {
    pub(crate) fn new(keep_completed: bool) -> Self {
        Self {
            keep_completed,
            meta: Meta {
                next_id: 1,
                next_token: 1,
                succeeded_total: 0,
            },
            ..Self::default()
        }
    }

    pub(crate) fn meta(&self) -> Meta {
        self.meta
    }

    /// Rebuilds the indexes from stored records (the embedded store's open).
    pub(crate) fn load(
        keep_completed: bool,
        meta: Meta,
        records: impl IntoIterator<Item = JobRecord>,
        paused: impl IntoIterator<Item = String>,
        cron_ticks: impl IntoIterator<Item = (String, Timestamp)>,
        batches: impl IntoIterator<Item = BatchStatus>,
        now: Timestamp,
    ) -> Self {
        let mut state = Self::new(keep_completed);
        for batch in batches {
            state.meta.next_id = state.meta.next_id.max(batch.id.0 + 1);
            state.batches.insert(batch.id, batch);
        }
        state.paused = paused.into_iter().collect();
        state.cron_ticks = cron_ticks.into_iter().collect();
        state.meta.next_id = meta.next_id.max(1);
        state.meta.next_token = meta.next_token.max(1);
        state.meta.succeeded_total = meta.succeeded_total;
        for record in records {
            state.meta.next_id = state.meta.next_id.max(record.id.0 + 1);
            if let Some(token) = record.token() {
                state.meta.next_token = state.meta.next_token.max(token.0 + 1);
            }
            state.index(record, now);
        }
        state
    }

    fn index(&mut self, record: JobRecord, now: Timestamp) {
        let id = record.id;
        match record.status {
            Status::Pending => {
                if let Some(key) = &record.unique_key {
                    self.unique.insert(key.clone(), id);
                }
                self.insert_pending(&record, now);
            }
            Status::Running { deadline, .. } => {
                if let Some(key) = &record.unique_key {
                    self.unique.insert(key.clone(), id);
                }
                self.leases.insert((deadline, id));
                self.queue(&record.queue).counts.running += 1;
            }
            Status::Dead { .. } => {
                self.queue(&record.queue).counts.dead += 1;
                self.index_dead(&record);
            }
            Status::Succeeded { .. } => self.queue(&record.queue).counts.succeeded += 1,
        }
        self.jobs.insert(id, record);
    }

    fn queue(&mut self, name: &str) -> &mut QueueIndex {
        if !self.queues.contains_key(name) {
            self.queues.insert(name.to_owned(), QueueIndex::default());
        }
        self.queues.get_mut(name).expect("inserted above")
    }

    /// Drops a queue's index once it holds no job, so state does not grow with every
    /// queue name ever used.
    fn prune_queue(&mut self, name: &str) {
        if self.queues.get(name).is_some_and(|q| {
            q.ready.is_empty() && q.scheduled.is_empty() && q.counts == QueueCounts::default()
        }) {
            self.queues.remove(name);
        }
    }

    fn insert_pending(&mut self, record: &JobRecord, now: Timestamp) {
        let retrying = !record.errors.is_empty();
        let q = self.queue(&record.queue);
        if record.run_at <= now {
            q.ready
                .insert((Reverse(record.priority), record.run_at, record.id));
            q.counts.add(
                if retrying {
                    JobState::Retrying
                } else {
                    JobState::Available
                },
                1,
            );
        } else {
            q.scheduled.insert((record.run_at, record.id));
            q.counts.add(
                if retrying {
                    JobState::Retrying
                } else {
                    JobState::Scheduled
                },
                1,
            );
        }
    }

    fn remove_pending(&mut self, record: &JobRecord) {
        let retrying = !record.errors.is_empty();
        let q = self.queue(&record.queue);
        let state = if q.scheduled.remove(&(record.run_at, record.id)) {
            JobState::Scheduled
        } else {
            q.ready
                .remove(&(Reverse(record.priority), record.run_at, record.id));
            JobState::Available
        };
        q.counts
            .add(if retrying { JobState::Retrying } else { state }, -1);
    }

    /// Moves due scheduled jobs of `queue` into its ready index.
    fn promote(&mut self, queue: &str, now: Timestamp) {
        let Some(q) = self.queues.get_mut(queue) else {
            return;
        };
        while let Some(&(run_at, id)) = q.scheduled.first() {
            if run_at > now {
                break;
            }
            q.scheduled.pop_first();
            let record = &self.jobs[&id];
            q.ready.insert((Reverse(record.priority), run_at, id));
            if record.errors.is_empty() {
                q.counts.scheduled -= 1;
                q.counts.available += 1;
            }
        }
    }

    pub(crate) fn enqueue(
        &mut self,
        job: NewJob,
        now: Timestamp,
        fx: &mut Effects,
    ) -> Result<Enqueued, JobsError> {
        let run_at = job.validate(now)?;
        Ok(self.insert_new(job, run_at, now, None, fx))
    }

    /// All-or-nothing: validates every job before inserting any.
    pub(crate) fn enqueue_many(
        &mut self,
        jobs: Vec<NewJob>,
        now: Timestamp,
        fx: &mut Effects,
    ) -> Result<Vec<Enqueued>, JobsError> {
        let run_ats = jobs
            .iter()
            .map(|j| j.validate(now))
            .collect::<Result<Vec<_>, InvalidJob>>()?;
        Ok(jobs
            .into_iter()
            .zip(run_ats)
            .map(|(job, run_at)| self.insert_new(job, run_at, now, None, fx))
            .collect())
    }

    fn insert_new(
        &mut self,
        job: NewJob,
        run_at: Timestamp,
        now: Timestamp,
        batch: Option<BatchId>,
        fx: &mut Effects,
    ) -> Enqueued {
        if let Some(key) = &job.unique_key
            && let Some(&id) = self.unique.get(key)
        {
            fx.events.duplicates += 1;
            return Enqueued { id, created: false };
        }
        let id = JobId(self.meta.next_id);
        self.meta.next_id += 1;
        if let Some(key) = &job.unique_key {
            self.unique.insert(key.clone(), id);
        }
        let record = JobRecord {
            id,
            queue: job.queue,
            kind: job.kind,
            payload: job.payload,
            priority: job.priority,
            attempt: 0,
            max_attempts: job.max_attempts,
            run_at,
            enqueued_at: now,
            timeout: job.timeout,
            unique_key: job.unique_key,
            tags: job.tags,
            status: Status::Pending,
            errors: Vec::new(),
            lease_recoveries: 0,
            batch,
        };
        self.insert_pending(&record, now);
        fx.put(&record);
        fx.events.enqueued += 1;
        self.jobs.insert(id, record);
        Enqueued { id, created: true }
    }

    pub(crate) fn fetch(
        &mut self,
        queue: &str,
        limit: usize,
        lease: Duration,
        now: Timestamp,
        fx: &mut Effects,
    ) -> Result<Vec<Lease>, JobsError> {
        if limit == 0 {
            return Err(JobsError::InvalidArgument("fetch limit must be at least 1"));
        }
        let deadline = lease_deadline(now, lease)?;
        self.reap(now, fx);
        if self.paused.contains(queue) {
            return Ok(Vec::new());
        }
        self.promote(queue, now);
        let mut out = Vec::new();
        while out.len() < limit {
            let Some(q) = self.queues.get_mut(queue) else {
                break;
            };
            let Some((_, _, id)) = q.ready.pop_first() else {
                break;
            };
            let record = self.jobs.get_mut(&id).expect("indexed job exists");
            let was = if record.errors.is_empty() {
                JobState::Available
            } else {
                JobState::Retrying
            };
            q.counts.add(was, -1);
            q.counts.running += 1;
            let token = FencingToken(self.meta.next_token);
            self.meta.next_token += 1;
            record.attempt += 1;
            record.status = Status::Running {
                token,
                deadline,
                started_at: now,
            };
            self.leases.insert((deadline, id));
            fx.put(record);
            fx.events.leased += 1;
            out.push(Lease {
                job: record.clone(),
                token,
                deadline,
            });
        }
        Ok(out)
    }

    /// Gives back every lease whose deadline is at or before `now`.
    pub(crate) fn reap(&mut self, now: Timestamp, fx: &mut Effects) -> usize {
        let mut n = 0;
        while let Some(&(deadline, id)) = self.leases.first() {
            if deadline > now {
                break;
            }
            self.expire(id, now, fx);
            n += 1;
        }
        n
    }

    /// Gives back every lease regardless of its deadline: at open of an exclusively
    /// owned store, every lease belonged to a process that is gone.
    pub(crate) fn reap_all(&mut self, now: Timestamp, fx: &mut Effects) -> usize {
        let ids: Vec<JobId> = self.leases.iter().map(|&(_, id)| id).collect();
        for &id in &ids {
            self.expire(id, now, fx);
        }
        ids.len()
    }

    fn expire(&mut self, id: JobId, now: Timestamp, fx: &mut Effects) {
        let mut record = self.jobs.remove(&id).expect("leased job exists");
        let Status::Running { deadline, .. } = record.status else {
            unreachable!("leased job runs")
        };
        self.leases.remove(&(deadline, id));
        self.queue(&record.queue).counts.running -= 1;
        record.lease_recoveries += 1;
        fx.events.lease_recoveries += 1;
        let message = format!(
            "lease expired: worker lost during attempt {}",
            record.attempt
        );
        record.push_error(FailureKind::LeaseExpired, &message, now);
        if record.attempt >= record.max_attempts {
            self.bury(&mut record, now, fx);
        } else {
            record.status = Status::Pending;
            record.run_at = now;
            self.insert_pending(&record, now);
        }
        fx.put(&record);
        self.jobs.insert(id, record);
    }

    fn index_dead(&mut self, record: &JobRecord) {
        let (key, entry) = failure_entry(record);
        self.failures.entry(key).or_default().insert(entry);
    }

    fn unindex_dead(&mut self, record: &JobRecord) {
        let (key, entry) = failure_entry(record);
        if let Some(group) = self.failures.get_mut(&key) {
            group.remove(&entry);
            if group.is_empty() {
                self.failures.remove(&key);
            }
        }
    }

    fn bury(&mut self, record: &mut JobRecord, now: Timestamp, fx: &mut Effects) {
        record.status = Status::Dead { at: now };
        self.release_unique(record);
        self.queue(&record.queue).counts.dead += 1;
        self.index_dead(record);
        fx.events.dead += 1;
        if let Some(batch) = record.batch {
            self.batch_member_done(batch, false, now, fx);
        }
    }

    /// A batch member finished; the last one enqueues the callback in the same change.
    fn batch_member_done(
        &mut self,
        id: BatchId,
        succeeded: bool,
        now: Timestamp,
        fx: &mut Effects,
    ) {
        let Some(batch) = self.batches.get_mut(&id) else {
            return;
        };
        batch.pending = batch.pending.saturating_sub(1);
        if succeeded {
            batch.succeeded += 1;
        } else {
            batch.failed += 1;
        }
        if batch.pending > 0 {
            fx.changes.push(Change::Batch(Box::new(batch.clone())));
            return;
        }
        let batch = self.batches.remove(&id).expect("present");
        fx.changes.push(Change::BatchDone(id));
        let callback = if batch.failed == 0 {
            batch.callbacks.on_success
        } else {
            batch.callbacks.on_failure
        };
        if let Some(job) = callback {
            // Validated at batch creation; only a delay that overflows from a later now
            // could fail here, and then it runs now rather than never.
            let run_at = job.validate(now).unwrap_or(now);
            let job = job.with_tag(format!("batch:{}", id.0));
            self.insert_new(job, run_at, now, None, fx);
        }
    }

    pub(crate) fn enqueue_batch(
        &mut self,
        jobs: Vec<NewJob>,
        callbacks: BatchCallbacks,
        now: Timestamp,
        fx: &mut Effects,
    ) -> Result<Batch, JobsError> {
        if jobs.is_empty() {
            return Err(JobsError::InvalidArgument("a batch needs at least one job"));
        }
        if jobs.iter().any(|j| j.unique_key.is_some()) {
            return Err(JobsError::InvalidArgument(
                "batch members cannot have unique keys",
            ));
        }
        for callback in [&callbacks.on_success, &callbacks.on_failure]
            .into_iter()
            .flatten()
        {
            if callback.run_at.is_some() {
                return Err(JobsError::InvalidArgument(
                    "a batch callback takes a delay, not a fixed run_at",
                ));
            }
            callback.validate(now)?;
        }
        let run_ats = jobs
            .iter()
            .map(|j| j.validate(now))
            .collect::<Result<Vec<_>, InvalidJob>>()?;
        let id = BatchId(self.meta.next_id);
        self.meta.next_id += 1;
        let total = jobs.len() as u64;
        let status = BatchStatus {
            id,
            total,
            pending: total,
            succeeded: 0,
            failed: 0,
            callbacks,
            created_at: now,
        };
        fx.changes.push(Change::Batch(Box::new(status.clone())));
        self.batches.insert(id, status);
        let ids = jobs
            .into_iter()
            .zip(run_ats)
            .map(|(job, run_at)| self.insert_new(job, run_at, now, Some(id), fx).id)
            .collect();
        Ok(Batch { id, jobs: ids })
    }

    pub(crate) fn batch(&self, id: BatchId) -> Option<BatchStatus> {
        self.batches.get(&id).cloned()
    }

    fn release_unique(&mut self, record: &JobRecord) {
        if let Some(key) = &record.unique_key
            && self.unique.get(key) == Some(&record.id)
        {
            self.unique.remove(key);
        }
    }

    /// Checks that `token` is the job's current, unexpired lease; an expired one is reaped.
    fn check_lease(
        &mut self,
        id: JobId,
        token: FencingToken,
        now: Timestamp,
        fx: &mut Effects,
    ) -> Result<Timestamp, JobsError> {
        match self.jobs.get(&id).map(|r| r.status) {
            Some(Status::Running {
                token: current,
                deadline,
                ..
            }) if current == token => {
                if deadline <= now {
                    self.expire(id, now, fx);
                    fx.events.stale_rejected += 1;
                    Err(JobsError::LeaseExpired { id, token })
                } else {
                    Ok(deadline)
                }
            }
            _ => {
                fx.events.stale_rejected += 1;
                Err(JobsError::StaleLease { id, token })
            }
        }
    }

    pub(crate) fn heartbeat(
        &mut self,
        id: JobId,
        token: FencingToken,
        extend: Duration,
        now: Timestamp,
        fx: &mut Effects,
    ) -> Result<Timestamp, JobsError> {
        let new_deadline = lease_deadline(now, extend)?;
        let old = self.check_lease(id, token, now, fx)?;
        let record = self.jobs.get_mut(&id).expect("checked");
        if let Status::Running { deadline, .. } = &mut record.status {
            *deadline = new_deadline;
        }
        self.leases.remove(&(old, id));
        self.leases.insert((new_deadline, id));
        fx.put(record);
        Ok(new_deadline)
    }

    /// Removes a running job from the lease index; returns it.
    fn take_running(&mut self, id: JobId, deadline: Timestamp) -> JobRecord {
        self.leases.remove(&(deadline, id));
        let record = self.jobs.remove(&id).expect("checked");
        self.queue(&record.queue).counts.running -= 1;
        record
    }

    pub(crate) fn complete(
        &mut self,
        id: JobId,
        token: FencingToken,
        now: Timestamp,
        fx: &mut Effects,
    ) -> Result<(), JobsError> {
        let deadline = self.check_lease(id, token, now, fx)?;
        let mut record = self.take_running(id, deadline);
        self.release_unique(&record);
        self.meta.succeeded_total += 1;
        fx.events.completed += 1;
        if let Some(batch) = record.batch {
            self.batch_member_done(batch, true, now, fx);
        }
        if self.keep_completed {
            record.status = Status::Succeeded { at: now };
            self.queue(&record.queue).counts.succeeded += 1;
            fx.put(&record);
            self.jobs.insert(id, record);
        } else {
            fx.changes.push(Change::Delete(id));
            self.prune_queue(&record.queue);
        }
        Ok(())
    }

    pub(crate) fn fail(
        &mut self,
        id: JobId,
        token: FencingToken,
        failure: Failure,
        now: Timestamp,
        fx: &mut Effects,
    ) -> Result<FailOutcome, JobsError> {
        let deadline = self.check_lease(id, token, now, fx)?;
        let mut record = self.take_running(id, deadline);
        record.push_error(failure.kind, &failure.message, now);
        fx.events.failed += 1;
        let outcome = match failure.retry_at {
            Some(at) if record.attempt < record.max_attempts => {
                record.status = Status::Pending;
                record.run_at = at.max(now);
                self.insert_pending(&record, now);
                fx.events.retried += 1;
                FailOutcome::Retrying { at: record.run_at }
            }
            _ => {
                self.bury(&mut record, now, fx);
                FailOutcome::Dead
            }
        };
        fx.put(&record);
        self.jobs.insert(id, record);
        Ok(outcome)
    }

    pub(crate) fn release(
        &mut self,
        id: JobId,
        token: FencingToken,
        now: Timestamp,
        fx: &mut Effects,
    ) -> Result<(), JobsError> {
        let deadline = self.check_lease(id, token, now, fx)?;
        let mut record = self.take_running(id, deadline);
        record.attempt = record.attempt.saturating_sub(1);
        record.status = Status::Pending;
        record.run_at = record.run_at.min(now);
        self.insert_pending(&record, now);
        fx.events.released += 1;
        fx.put(&record);
        self.jobs.insert(id, record);
        Ok(())
    }

    pub(crate) fn cancel(&mut self, id: JobId, now: Timestamp, fx: &mut Effects) -> CancelOutcome {
        let Some(status) = self.jobs.get(&id).map(|r| r.status) else {
            return CancelOutcome::NotFound;
        };
        match status {
            Status::Running { .. } => CancelOutcome::Running,
            Status::Dead { .. } | Status::Succeeded { .. } => CancelOutcome::Finished,
            Status::Pending => {
                let record = self.jobs.remove(&id).expect("present");
                self.remove_pending(&record);
                self.release_unique(&record);
                fx.changes.push(Change::Delete(id));
                fx.events.cancelled += 1;
                if let Some(batch) = record.batch {
                    self.batch_member_done(batch, false, now, fx);
                }
                self.prune_queue(&record.queue);
                CancelOutcome::Cancelled
            }
        }
    }

    pub(crate) fn retry_dead(
        &mut self,
        id: JobId,
        now: Timestamp,
        fx: &mut Effects,
    ) -> Result<(), JobsError> {
        let record = self.jobs.get(&id).ok_or(JobsError::NotFound(id))?;
        if !matches!(record.status, Status::Dead { .. }) {
            return Err(JobsError::NotDead(id));
        }
        if let Some(key) = &record.unique_key
            && self.unique.contains_key(key)
        {
            // Another unfinished job holds the key now: reviving this one would break
            // uniqueness.
            return Err(JobsError::InvalidArgument(
                "another unfinished job holds this unique key",
            ));
        }
        let mut record = self.jobs.remove(&id).expect("present");
        self.queue(&record.queue).counts.dead -= 1;
        self.unindex_dead(&record);
        if let Some(batch_id) = record.batch {
            match self.batches.get_mut(&batch_id) {
                // Still open: the member counts as pending again.
                Some(batch) => {
                    batch.failed = batch.failed.saturating_sub(1);
                    batch.pending += 1;
                    fx.changes.push(Change::Batch(Box::new(batch.clone())));
                }
                // The batch already fired: the revived job runs on its own.
                None => record.batch = None,
            }
        }
        record.status = Status::Pending;
        record.attempt = 0;
        record.run_at = now;
        if let Some(key) = &record.unique_key {
            self.unique.insert(key.clone(), id);
        }
        self.insert_pending(&record, now);
        fx.put(&record);
        self.jobs.insert(id, record);
        Ok(())
    }

    pub(crate) fn delete(
        &mut self,
        id: JobId,
        now: Timestamp,
        fx: &mut Effects,
    ) -> Result<(), JobsError> {
        let status = self
            .jobs
            .get(&id)
            .map(|r| r.status)
            .ok_or(JobsError::NotFound(id))?;
        let record = match status {
            Status::Running { .. } => return Err(JobsError::Running(id)),
            Status::Pending => {
                let record = self.jobs.remove(&id).expect("present");
                self.remove_pending(&record);
                if let Some(batch) = record.batch {
                    self.batch_member_done(batch, false, now, fx);
                }
                record
            }
            Status::Dead { .. } => {
                let record = self.jobs.remove(&id).expect("present");
                self.queue(&record.queue).counts.dead -= 1;
                self.unindex_dead(&record);
                record
            }
            Status::Succeeded { .. } => {
                let record = self.jobs.remove(&id).expect("present");
                self.queue(&record.queue).counts.succeeded -= 1;
                record
            }
        };
        self.release_unique(&record);
        fx.changes.push(Change::Delete(id));
        self.prune_queue(&record.queue);
        Ok(())
    }

    /// The dead jobs of `queue`, in id order: O(groups + dead jobs of the queue).
    fn dead_ids(&self, queue: &str) -> Vec<JobId> {
        let mut ids: Vec<JobId> = self
            .failures
            .iter()
            .filter(|((q, _), _)| q == queue)
            .flat_map(|(_, group)| group.iter().map(|&(_, id)| id))
            .collect();
        ids.sort_unstable();
        ids
    }

    /// Retries every dead job of `queue` (skipping any whose unique key is taken again);
    /// returns how many.
    pub(crate) fn retry_all_dead(
        &mut self,
        queue: &str,
        now: Timestamp,
        fx: &mut Effects,
    ) -> usize {
        let ids = self.dead_ids(queue);
        ids.into_iter()
            .filter(|&id| self.retry_dead(id, now, fx).is_ok())
            .count()
    }

    /// Deletes every dead job of `queue`; returns how many.
    pub(crate) fn delete_all_dead(
        &mut self,
        queue: &str,
        now: Timestamp,
        fx: &mut Effects,
    ) -> usize {
        let ids = self.dead_ids(queue);
        ids.into_iter()
            .filter(|&id| self.delete(id, now, fx).is_ok())
            .count()
    }

    /// Dead jobs grouped by their last error (kind + message), largest group first:
    /// O(groups), read from the `failures` index.
    pub(crate) fn dead_by_error(&self, queue: Option<&str>) -> Vec<FailureGroup> {
        let mut groups: HashMap<(FailureKind, &str), FailureGroup> = HashMap::new();
        for ((q, last), dead) in &self.failures {
            if queue.is_some_and(|want| want != q) {
                continue;
            }
            let (Some((kind, message)), Some(&(latest, example))) = (last, dead.last()) else {
                continue;
            };
            let g = groups
                .entry((*kind, message.as_str()))
                .or_insert_with(|| FailureGroup {
                    kind: *kind,
                    message: message.clone(),
                    count: 0,
                    latest,
                    example,
                });
            g.count += dead.len() as u64;
            if (latest, example) >= (g.latest, g.example) {
                g.latest = latest;
                g.example = example;
            }
        }
        let mut out: Vec<FailureGroup> = groups.into_values().collect();
        out.sort_by(|a, b| {
            b.count
                .cmp(&a.count)
                .then_with(|| a.message.cmp(&b.message))
        });
        out
    }

    pub(crate) fn get(&self, id: JobId) -> Option<JobRecord> {
        self.jobs.get(&id).cloned()
    }

    pub(crate) fn counts(&mut self, now: Timestamp) -> BTreeMap<String, QueueCounts> {
        let names: Vec<String> = self.queues.keys().cloned().collect();
        for name in &names {
            self.promote(name, now);
        }
        let mut out: BTreeMap<String, QueueCounts> = self
            .queues
            .iter()
            .map(|(name, q)| (name.clone(), q.counts))
            .collect();
        for name in &self.paused {
            out.entry(name.clone()).or_default().paused = true;
        }
        out
    }

    /// Pauses (`true`) or resumes a queue: a paused queue's fetches return nothing; its
    /// jobs keep their places and enqueues still succeed.
    pub(crate) fn set_paused(
        &mut self,
        queue: &str,
        paused: bool,
        fx: &mut Effects,
    ) -> Result<(), JobsError> {
        if queue.is_empty() {
            return Err(InvalidJob::EmptyQueue.into());
        }
        if queue.len() > crate::job::MAX_NAME_LEN {
            return Err(InvalidJob::NameTooLong("queue name").into());
        }
        let changed = if paused {
            self.paused.insert(queue.to_owned())
        } else {
            self.paused.remove(queue)
        };
        if changed {
            fx.changes.push(Change::Paused(queue.to_owned(), paused));
        }
        Ok(())
    }

    /// Enqueues `job` for `schedule`'s `tick` unless that tick (or a later one) was
    /// already enqueued — by any scheduler sharing this store.
    pub(crate) fn enqueue_periodic(
        &mut self,
        schedule: &str,
        tick: Timestamp,
        job: NewJob,
        now: Timestamp,
        fx: &mut Effects,
    ) -> Result<Option<Enqueued>, JobsError> {
        if schedule.is_empty() || schedule.len() > crate::job::MAX_NAME_LEN {
            return Err(JobsError::InvalidArgument(
                "schedule name must be 1 to 256 bytes",
            ));
        }
        if self
            .cron_ticks
            .get(schedule)
            .is_some_and(|&last| last >= tick)
        {
            return Ok(None);
        }
        let run_at = job.validate(now)?;
        self.cron_ticks.insert(schedule.to_owned(), tick);
        fx.changes.push(Change::CronTick(schedule.to_owned(), tick));
        Ok(Some(self.insert_new(job, run_at, now, None, fx)))
    }

    pub(crate) fn list(&self, filter: &ListFilter, now: Timestamp) -> Vec<JobRecord> {
        let start = filter.after.map_or(0, |id| id.0.saturating_add(1));
        let limit = filter.limit.clamp(1, 10_000);
        self.jobs
            .range(JobId(start)..)
            .map(|(_, r)| r)
            .filter(|r| filter.queue.as_ref().is_none_or(|q| *q == r.queue))
            .filter(|r| filter.kind.as_ref().is_none_or(|k| *k == r.kind))
            .filter(|r| filter.state.is_none_or(|s| r.state(now) == s))
            .take(limit)
            .cloned()
            .collect()
    }

    /// Jobs completed over the store's life (persisted).
    pub(crate) fn succeeded_total(&self) -> u64 {
        self.meta.succeeded_total
    }
}

fn lease_deadline(now: Timestamp, lease: Duration) -> Result<Timestamp, JobsError> {
    if lease.is_zero() {
        return Err(JobsError::InvalidArgument("lease must be longer than zero"));
    }
    now.checked_add(lease)
        .ok_or(JobsError::InvalidArgument("lease is too long"))
}

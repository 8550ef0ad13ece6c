//! The [`Store`] operations of [`PostgresStore`]: each one transaction (or one statement).

use std::collections::BTreeMap;
use std::time::Duration;

use super::{
    After, COLS, DEAD, PENDING, PostgresStore, RUNNING, SUCCEEDED, check_queue, decode, id_param,
    insert_job, insert_jobs, kind_from, lease_deadline, limits, ms, notify, storage, ts,
    write_back,
};
use crate::batch::{Batch, BatchCallbacks, BatchId, BatchStatus};
use crate::job::{JobRecord, JobState, NewJob, Status};
use crate::store::{
    CancelOutcome, Enqueued, FailOutcome, Failure, FailureGroup, Lease, ListFilter, QueueCounts,
};
use crate::{FencingToken, InvalidJob, JobId, JobsError, JobsStats, Store, Timestamp};

fn batch_param(id: BatchId) -> i64 {
    i64::try_from(id.0).unwrap_or(i64::MAX)
}

/// Runs `$body` (an async block returning `Result<R, JobsError>`) in a transaction after
/// checking the lease; a rejected lease returns its error (an expiry found is committed).
macro_rules! lease_op {
    ($store:expr, $id:expr, $token:expr, |$txn:ident, $r:ident, $now:ident, $after:ident| $body:expr) => {{
        let store = $store;
        let $now = store.clock.now();
        let mut conn = store.conn().await?;
        let $txn = tokio_postgres::Client::transaction(&mut conn)
            .await
            .map_err(storage)?;
        let mut after_value = After::default();
        let result = {
            let $after = &mut after_value;
            match store.check_lease(&$txn, $id, $token, $now, $after).await {
                Err(e) => Err(e),
                Ok(Err(rejected)) => Ok(Err(rejected)),
                Ok(Ok(record)) => {
                    #[allow(unused_mut)]
                    let mut $r = record;
                    let out: Result<_, JobsError> = $body.await;
                    out.map(Ok)
                }
            }
        };
        store.settle($txn, after_value, result).await
    }};
}

impl PostgresStore {
    async fn enqueue_all(
        &self,
        jobs: Vec<NewJob>,
        batch: Option<(BatchId, BatchCallbacks)>,
    ) -> Result<(Option<BatchId>, Vec<Enqueued>), JobsError> {
        let now = self.clock.now();
        let run_ats = jobs
            .iter()
            .map(|j| j.validate(now))
            .collect::<Result<Vec<_>, InvalidJob>>()?;
        let mut conn = self.conn().await?;
        let txn = tokio_postgres::Client::transaction(&mut conn)
            .await
            .map_err(storage)?;
        let mut after = After::default();
        let result = async {
            let batch_id = match &batch {
                Some((_, callbacks)) => {
                    let id: i64 = txn
                        .query_one("SELECT nextval('keel_jobs_id_seq')", &[])
                        .await
                        .map_err(storage)?
                        .get(0);
                    let total = i64::try_from(jobs.len()).unwrap_or(i64::MAX);
                    let callbacks = serde_json::to_value(callbacks).map_err(storage)?;
                    txn.execute(
                        "INSERT INTO keel_jobs_batches (id, total, pending, callbacks, created_at)
                         VALUES ($1, $2, $2, $3, $4)",
                        &[&id, &total, &callbacks, &ms(now)],
                    )
                    .await
                    .map_err(storage)?;
                    Some(BatchId(u64::try_from(id).unwrap_or(0)))
                }
                None => None,
            };
            let out = insert_jobs(&txn, &jobs, &run_ats, now, batch_id, &mut after.events).await?;
            let due: Vec<&str> = jobs
                .iter()
                .zip(&run_ats)
                .filter(|(_, r)| **r <= now)
                .map(|(j, _)| j.queue.as_str())
                .collect();
            notify(&txn, due.iter().copied()).await?;
            after.wake.extend(due.iter().map(|q| (*q).to_owned()));
            Ok(Ok((batch_id, out)))
        }
        .await;
        self.settle(txn, after, result).await
    }

    async fn locked(
        txn: &tokio_postgres::Transaction<'_>,
        id: JobId,
    ) -> Result<Option<JobRecord>, JobsError> {
        let row = txn
            .query_opt(
                &format!("SELECT {COLS} FROM keel_jobs WHERE id = $1 FOR UPDATE"),
                &[&id_param(id)],
            )
            .await
            .map_err(storage)?;
        row.as_ref().map(decode).transpose()
    }

    /// Revives one locked dead record (see [`Store::retry_dead`]).
    async fn revive(
        &self,
        txn: &tokio_postgres::Transaction<'_>,
        mut r: JobRecord,
        now: Timestamp,
    ) -> Result<Result<(), JobsError>, JobsError> {
        if !matches!(r.status, Status::Dead { .. }) {
            return Ok(Err(JobsError::NotDead(r.id)));
        }
        if let Some(key) = &r.unique_key {
            let held = txn
                .query_opt(
                    "SELECT 1 FROM keel_jobs WHERE unique_key = $1 AND state < 2",
                    &[key],
                )
                .await
                .map_err(storage)?;
            if held.is_some() {
                return Ok(Err(JobsError::InvalidArgument(
                    "another unfinished job holds this unique key",
                )));
            }
        }
        if let Some(batch) = r.batch {
            let n = txn
                .execute(
                    "UPDATE keel_jobs_batches SET failed = greatest(failed - 1, 0),
                         pending = pending + 1 WHERE id = $1",
                    &[&batch_param(batch)],
                )
                .await
                .map_err(storage)?;
            if n == 0 {
                // The batch already fired: the revived job runs on its own.
                r.batch = None;
            }
        }
        r.status = Status::Pending;
        r.attempt = 0;
        r.run_at = now;
        write_back(txn, &r).await?;
        notify(txn, [r.queue.as_str()]).await?;
        Ok(Ok(()))
    }

    async fn dead_ids(&self, queue: &str) -> Result<Vec<JobId>, JobsError> {
        let rows = self
            .conn()
            .await?
            .query(
                "SELECT id FROM keel_jobs WHERE queue = $1 AND state = 2 ORDER BY id",
                &[&queue],
            )
            .await
            .map_err(storage)?;
        Ok(rows
            .iter()
            .map(|r| JobId(u64::try_from(r.get::<_, i64>(0)).unwrap_or(0)))
            .collect())
    }
}

/// The leases of a fetch's returned rows, in fetch order (priority desc, FIFO); rows
/// without a job (the fast path's guard row when nothing was leased) are skipped.
fn leases_of(rows: &[tokio_postgres::Row], deadline: Timestamp) -> Result<Vec<Lease>, JobsError> {
    let mut leases = Vec::with_capacity(rows.len());
    for row in rows {
        if row.get::<_, Option<i64>>("id").is_none() {
            continue;
        }
        let job = decode(row)?;
        let Status::Running { token, .. } = job.status else {
            return Err(JobsError::Storage("leased row is not running".into()));
        };
        leases.push(Lease {
            job,
            token,
            deadline,
        });
    }
    leases.sort_by(|a, b| {
        b.job
            .priority
            .cmp(&a.job.priority)
            .then(a.job.run_at.cmp(&b.job.run_at))
            .then(a.job.id.cmp(&b.job.id))
    });
    Ok(leases)
}

impl Store for PostgresStore {
    async fn enqueue(&self, job: NewJob) -> Result<Enqueued, JobsError> {
        let (_, mut out) = self.enqueue_all(vec![job], None).await?;
        Ok(out.remove(0))
    }

    async fn enqueue_many(&self, jobs: Vec<NewJob>) -> Result<Vec<Enqueued>, JobsError> {
        if jobs.is_empty() {
            return Ok(Vec::new());
        }
        Ok(self.enqueue_all(jobs, None).await?.1)
    }

    async fn fetch(
        &self,
        queue: &str,
        limit: usize,
        lease: Duration,
    ) -> Result<Vec<Lease>, JobsError> {
        if limit == 0 {
            return Err(JobsError::InvalidArgument("fetch limit must be at least 1"));
        }
        let now = self.clock.now();
        let deadline = lease_deadline(now, lease)?;
        let n = i64::try_from(limit).unwrap_or(i64::MAX);
        let mut conn = self.conn().await?;
        // The common case — nothing to reap, the queue neither paused nor limited — is one
        // autocommitted prepared statement; otherwise the transaction below decides.
        let fast = conn
            .prepare_cached(&super::FETCH_FAST)
            .await
            .map_err(storage)?;
        let rows = conn
            .query(&fast, &[&queue, &ms(now), &n, &ms(deadline)])
            .await
            .map_err(storage)?;
        if rows.first().is_some_and(|r| r.get::<_, bool>("clear")) {
            let leases = leases_of(&rows, deadline)?;
            self.metrics.record(&crate::state::Events {
                leased: leases.len() as u64,
                ..Default::default()
            });
            return Ok(leases);
        }
        let txn = tokio_postgres::Client::transaction(&mut conn)
            .await
            .map_err(storage)?;
        let mut after = After::default();
        let result = async {
            self.reap(&txn, now, &mut after).await?;
            let Some(allowed) = limits::admit(&txn, queue, limit, now).await? else {
                return Ok(Ok(Vec::new()));
            };
            if allowed == 0 {
                return Ok(Ok(Vec::new()));
            }
            let n = i64::try_from(allowed).unwrap_or(i64::MAX);
            let rows = txn
                .query(
                    &format!(
                        "UPDATE keel_jobs j SET state = 1, attempt = j.attempt + 1,
                             token = nextval('keel_jobs_token_seq'), deadline = $4,
                             started_at = $2
                         WHERE j.id = ANY(ARRAY(
                             SELECT id FROM keel_jobs
                             WHERE queue = $1 AND state = 0 AND run_at <= $2
                             ORDER BY priority DESC, run_at, id
                             LIMIT $3 FOR UPDATE SKIP LOCKED))
                         RETURNING {}",
                        COLS.split(", ")
                            .map(|c| format!("j.{c}"))
                            .collect::<Vec<_>>()
                            .join(", ")
                    ),
                    &[&queue, &ms(now), &n, &ms(deadline)],
                )
                .await
                .map_err(storage)?;
            let leases = leases_of(&rows, deadline)?;
            limits::consume(&txn, queue, leases.len(), now).await?;
            after.events.leased += leases.len() as u64;
            Ok(Ok(leases))
        }
        .await;
        self.settle(txn, after, result).await
    }

    async fn heartbeat(
        &self,
        id: JobId,
        token: FencingToken,
        extend: Duration,
    ) -> Result<Timestamp, JobsError> {
        let new_deadline = lease_deadline(self.clock.now(), extend)?;
        lease_op!(self, id, token, |txn, _r, _now, _after| async {
            txn.execute(
                "UPDATE keel_jobs SET deadline = $2 WHERE id = $1",
                &[&id_param(id), &ms(new_deadline)],
            )
            .await
            .map_err(storage)?;
            Ok(new_deadline)
        })
    }

    async fn complete(&self, id: JobId, token: FencingToken) -> Result<(), JobsError> {
        let keep = self.keep_completed;
        // The common case goes with a group of concurrent acks in one statement
        // (`ack.rs`); anything that group call did not settle takes the full path.
        if !keep && self.acks.complete(id, token).await? == crate::ack_group::AckAnswer::Done {
            return Ok(());
        }
        lease_op!(self, id, token, |txn, r, now, after| async {
            let total: i64 = if keep {
                r.status = Status::Succeeded { at: now };
                write_back(&txn, &r).await?;
                txn.query_one("SELECT nextval('keel_jobs_succeeded_seq')", &[])
                    .await
                    .map_err(storage)?
                    .get(0)
            } else {
                txn.query_one(
                    "DELETE FROM keel_jobs WHERE id = $1 RETURNING nextval('keel_jobs_succeeded_seq')",
                    &[&id_param(id)],
                )
                .await
                .map_err(storage)?
                .get(0)
            };
            after.succeeded_seen = Some(total);
            after.events.completed += 1;
            if let Some(batch) = r.batch {
                self.batch_member_done(&txn, batch, true, now, after)
                    .await?;
            }
            Ok(())
        })
    }

    async fn fail(
        &self,
        id: JobId,
        token: FencingToken,
        failure: Failure,
    ) -> Result<FailOutcome, JobsError> {
        lease_op!(self, id, token, |txn, r, now, after| async {
            r.push_error(failure.kind, &failure.message, now);
            after.events.failed += 1;
            let outcome = match failure.retry_at {
                Some(at) if r.attempt < r.max_attempts => {
                    r.status = Status::Pending;
                    r.run_at = at.max(now);
                    after.events.retried += 1;
                    if r.run_at <= now {
                        notify(&txn, [r.queue.as_str()]).await?;
                        after.wake.push(r.queue.clone());
                    }
                    FailOutcome::Retrying { at: r.run_at }
                }
                _ => {
                    self.bury(&txn, &mut r, now, after).await?;
                    FailOutcome::Dead
                }
            };
            write_back(&txn, &r).await?;
            Ok(outcome)
        })
    }

    async fn release(&self, id: JobId, token: FencingToken) -> Result<(), JobsError> {
        lease_op!(self, id, token, |txn, r, now, after| async {
            r.attempt = r.attempt.saturating_sub(1);
            r.status = Status::Pending;
            r.run_at = r.run_at.min(now);
            after.events.released += 1;
            write_back(&txn, &r).await?;
            notify(&txn, [r.queue.as_str()]).await?;
            after.wake.push(r.queue.clone());
            Ok(())
        })
    }

    async fn reap_expired(&self) -> Result<usize, JobsError> {
        let now = self.clock.now();
        let mut total = 0;
        loop {
            let mut conn = self.conn().await?;
            let txn = tokio_postgres::Client::transaction(&mut conn)
                .await
                .map_err(storage)?;
            let mut after = After::default();
            let result = self.reap(&txn, now, &mut after).await.map(Ok);
            let n = self.settle(txn, after, result).await?;
            total += n;
            if n < usize::try_from(super::REAP_BATCH).unwrap_or(usize::MAX) {
                return Ok(total);
            }
        }
    }

    async fn cancel(&self, id: JobId) -> Result<CancelOutcome, JobsError> {
        let now = self.clock.now();
        let mut conn = self.conn().await?;
        let txn = tokio_postgres::Client::transaction(&mut conn)
            .await
            .map_err(storage)?;
        let mut after = After::default();
        let result = async {
            let Some(r) = Self::locked(&txn, id).await? else {
                return Ok(Ok(CancelOutcome::NotFound));
            };
            Ok(Ok(match r.status {
                Status::Running { .. } => CancelOutcome::Running,
                Status::Dead { .. } | Status::Succeeded { .. } => CancelOutcome::Finished,
                Status::Pending => {
                    txn.execute("DELETE FROM keel_jobs WHERE id = $1", &[&id_param(id)])
                        .await
                        .map_err(storage)?;
                    after.events.cancelled += 1;
                    if let Some(batch) = r.batch {
                        self.batch_member_done(&txn, batch, false, now, &mut after)
                            .await?;
                    }
                    CancelOutcome::Cancelled
                }
            }))
        }
        .await;
        self.settle(txn, after, result).await
    }

    async fn retry_dead(&self, id: JobId) -> Result<(), JobsError> {
        let now = self.clock.now();
        let mut conn = self.conn().await?;
        let txn = tokio_postgres::Client::transaction(&mut conn)
            .await
            .map_err(storage)?;
        let mut after = After::default();
        let result = async {
            let Some(r) = Self::locked(&txn, id).await? else {
                return Ok(Err(JobsError::NotFound(id)));
            };
            let queue = r.queue.clone();
            let outcome = self.revive(&txn, r, now).await?;
            if outcome.is_ok() {
                after.wake.push(queue);
            }
            Ok(outcome)
        }
        .await;
        self.settle(txn, after, result).await
    }

    async fn retry_all_dead(&self, queue: &str) -> Result<usize, JobsError> {
        let now = self.clock.now();
        let ids = self.dead_ids(queue).await?;
        let mut conn = self.conn().await?;
        let txn = tokio_postgres::Client::transaction(&mut conn)
            .await
            .map_err(storage)?;
        let mut after = After::default();
        let result = async {
            let mut revived = 0;
            for id in ids {
                let Some(r) = Self::locked(&txn, id).await? else {
                    continue;
                };
                if self.revive(&txn, r, now).await?.is_ok() {
                    revived += 1;
                }
            }
            if revived > 0 {
                after.wake.push(queue.to_owned());
            }
            Ok(Ok(revived))
        }
        .await;
        self.settle(txn, after, result).await
    }

    async fn delete_all_dead(&self, queue: &str) -> Result<usize, JobsError> {
        let n = self
            .conn()
            .await?
            .execute(
                "DELETE FROM keel_jobs WHERE queue = $1 AND state = 2",
                &[&queue],
            )
            .await
            .map_err(storage)?;
        Ok(usize::try_from(n).unwrap_or(usize::MAX))
    }

    async fn dead_by_error(&self, queue: Option<&str>) -> Result<Vec<FailureGroup>, JobsError> {
        let rows = self
            .conn()
            .await?
            .query(
                "SELECT last_error_kind, last_error_message, count(*),
                        max(last_error_at),
                        (array_agg(id ORDER BY last_error_at DESC, id DESC))[1]
                 FROM keel_jobs
                 WHERE state = 2 AND last_error_kind IS NOT NULL
                   AND ($1::text IS NULL OR queue = $1)
                 GROUP BY last_error_kind, last_error_message
                 ORDER BY count(*) DESC, last_error_message",
                &[&queue],
            )
            .await
            .map_err(storage)?;
        Ok(rows
            .iter()
            .map(|r| FailureGroup {
                kind: kind_from(r.get::<_, &str>(0)),
                message: r.get(1),
                count: u64::try_from(r.get::<_, i64>(2)).unwrap_or(0),
                latest: ts(r.get(3)),
                example: JobId(u64::try_from(r.get::<_, i64>(4)).unwrap_or(0)),
            })
            .collect())
    }

    async fn delete(&self, id: JobId) -> Result<(), JobsError> {
        let now = self.clock.now();
        let mut conn = self.conn().await?;
        let txn = tokio_postgres::Client::transaction(&mut conn)
            .await
            .map_err(storage)?;
        let mut after = After::default();
        let result = async {
            let Some(r) = Self::locked(&txn, id).await? else {
                return Ok(Err(JobsError::NotFound(id)));
            };
            if matches!(r.status, Status::Running { .. }) {
                return Ok(Err(JobsError::Running(id)));
            }
            txn.execute("DELETE FROM keel_jobs WHERE id = $1", &[&id_param(id)])
                .await
                .map_err(storage)?;
            if let (Status::Pending, Some(batch)) = (r.status, r.batch) {
                self.batch_member_done(&txn, batch, false, now, &mut after)
                    .await?;
            }
            Ok(Ok(()))
        }
        .await;
        self.settle(txn, after, result).await
    }

    async fn get(&self, id: JobId) -> Result<Option<JobRecord>, JobsError> {
        let row = self
            .conn()
            .await?
            .query_opt(
                &format!("SELECT {COLS} FROM keel_jobs WHERE id = $1"),
                &[&id_param(id)],
            )
            .await
            .map_err(storage)?;
        row.as_ref().map(decode).transpose()
    }

    async fn counts(&self) -> Result<BTreeMap<String, QueueCounts>, JobsError> {
        let now = self.clock.now();
        let conn = self.conn().await?;
        let rows = conn
            .query(
                "SELECT queue, state, failed, run_at > $1 AS later, count(*)
                 FROM keel_jobs GROUP BY 1, 2, 3, 4",
                &[&ms(now)],
            )
            .await
            .map_err(storage)?;
        let mut out: BTreeMap<String, QueueCounts> = BTreeMap::new();
        for row in &rows {
            let state: i16 = row.get(1);
            let failed: bool = row.get(2);
            let later: bool = row.get(3);
            let n: i64 = row.get(4);
            let s = match state {
                RUNNING => JobState::Running,
                DEAD => JobState::Dead,
                SUCCEEDED => JobState::Succeeded,
                PENDING if failed => JobState::Retrying,
                PENDING if later => JobState::Scheduled,
                _ => JobState::Available,
            };
            out.entry(row.get(0)).or_default().add(s, n);
        }
        let paused = conn
            .query("SELECT queue FROM keel_jobs_queues WHERE paused", &[])
            .await
            .map_err(storage)?;
        for row in &paused {
            out.entry(row.get(0)).or_default().paused = true;
        }
        Ok(out)
    }

    async fn list(&self, filter: ListFilter) -> Result<Vec<JobRecord>, JobsError> {
        let now = self.clock.now();
        let after = filter.after.map_or(0, id_param);
        let limit = i64::try_from(filter.limit.clamp(1, 10_000)).unwrap_or(10_000);
        // state filter: (state, failed, later) conditions; NULL means "any".
        let (state, failed, later): (Option<i16>, Option<bool>, Option<bool>) = match filter.state {
            None => (None, None, None),
            Some(JobState::Scheduled) => (Some(PENDING), Some(false), Some(true)),
            Some(JobState::Available) => (Some(PENDING), Some(false), Some(false)),
            Some(JobState::Retrying) => (Some(PENDING), Some(true), None),
            Some(JobState::Running) => (Some(RUNNING), None, None),
            Some(JobState::Dead) => (Some(DEAD), None, None),
            Some(JobState::Succeeded) => (Some(SUCCEEDED), None, None),
        };
        let rows = self
            .conn()
            .await?
            .query(
                &format!(
                    "SELECT {COLS} FROM keel_jobs
                     WHERE id > $1
                       AND ($2::text IS NULL OR queue = $2)
                       AND ($3::text IS NULL OR kind = $3)
                       AND ($4::smallint IS NULL OR state = $4)
                       AND ($5::boolean IS NULL OR failed = $5)
                       AND ($6::boolean IS NULL OR (run_at > $7) = $6)
                     ORDER BY id LIMIT $8"
                ),
                &[
                    &after,
                    &filter.queue,
                    &filter.kind,
                    &state,
                    &failed,
                    &later,
                    &ms(now),
                    &limit,
                ],
            )
            .await
            .map_err(storage)?;
        rows.iter().map(decode).collect()
    }

    async fn pause(&self, queue: &str) -> Result<(), JobsError> {
        check_queue(queue)?;
        self.conn()
            .await?
            .execute(
                "INSERT INTO keel_jobs_queues (queue, paused) VALUES ($1, true)
                 ON CONFLICT (queue) DO UPDATE SET paused = true",
                &[&queue],
            )
            .await
            .map_err(storage)?;
        Ok(())
    }

    async fn resume(&self, queue: &str) -> Result<(), JobsError> {
        check_queue(queue)?;
        let conn = self.conn().await?;
        conn.execute(
            "UPDATE keel_jobs_queues SET paused = false WHERE queue = $1",
            &[&queue],
        )
        .await
        .map_err(storage)?;
        notify(&**conn, [queue]).await?;
        self.wakeups.wake(queue);
        Ok(())
    }

    async fn enqueue_periodic(
        &self,
        schedule: &str,
        tick: Timestamp,
        job: NewJob,
    ) -> Result<Option<Enqueued>, JobsError> {
        if schedule.is_empty() || schedule.len() > crate::job::MAX_NAME_LEN {
            return Err(JobsError::InvalidArgument(
                "schedule name must be 1 to 256 bytes",
            ));
        }
        let now = self.clock.now();
        let mut conn = self.conn().await?;
        let txn = tokio_postgres::Client::transaction(&mut conn)
            .await
            .map_err(storage)?;
        let mut after = After::default();
        let result = async {
            // Claim the tick: the row lock orders racing schedulers; only a strictly later
            // tick moves it, so each tick is claimed once and an older one never again.
            let claimed = txn
                .query_opt(
                    "INSERT INTO keel_jobs_cron (schedule, last_tick) VALUES ($1, $2)
                     ON CONFLICT (schedule) DO UPDATE SET last_tick = EXCLUDED.last_tick
                     WHERE keel_jobs_cron.last_tick < EXCLUDED.last_tick
                     RETURNING 1",
                    &[&schedule, &ms(tick)],
                )
                .await
                .map_err(storage)?;
            if claimed.is_none() {
                return Ok(Ok(None));
            }
            let run_at = job.validate(now)?;
            let e = insert_job(&txn, &job, run_at, now, None, &mut after.events).await?;
            if run_at <= now {
                notify(&txn, [job.queue.as_str()]).await?;
                after.wake.push(job.queue.clone());
            }
            Ok(Ok(Some(e)))
        }
        .await;
        self.settle(txn, after, result).await
    }

    async fn enqueue_batch(
        &self,
        jobs: Vec<NewJob>,
        callbacks: BatchCallbacks,
    ) -> Result<Batch, JobsError> {
        if jobs.is_empty() {
            return Err(JobsError::InvalidArgument("a batch needs at least one job"));
        }
        if jobs.iter().any(|j| j.unique_key.is_some()) {
            return Err(JobsError::InvalidArgument(
                "batch members cannot have unique keys",
            ));
        }
        let now = self.clock.now();
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
        let (id, out) = self
            .enqueue_all(jobs, Some((BatchId(0), callbacks)))
            .await?;
        Ok(Batch {
            id: id.unwrap_or(BatchId(0)),
            jobs: out.into_iter().map(|e| e.id).collect(),
        })
    }

    async fn batch(&self, id: BatchId) -> Result<Option<BatchStatus>, JobsError> {
        let row = self
            .conn()
            .await?
            .query_opt(
                "SELECT total, pending, succeeded, failed, callbacks, created_at
                 FROM keel_jobs_batches WHERE id = $1",
                &[&batch_param(id)],
            )
            .await
            .map_err(storage)?;
        let Some(row) = row else { return Ok(None) };
        let n = |i: usize| u64::try_from(row.get::<_, i64>(i)).unwrap_or(0);
        Ok(Some(BatchStatus {
            id,
            total: n(0),
            pending: n(1),
            succeeded: n(2),
            failed: n(3),
            callbacks: serde_json::from_value(row.get(4)).map_err(storage)?,
            created_at: ts(row.get(5)),
        }))
    }

    async fn wait_for_work(&self, queue: &str, max_wait: Duration) {
        let notified = self.wakeups.notify_for(queue);
        let _ = tokio::time::timeout(max_wait, notified.notified()).await;
    }

    fn now(&self) -> Timestamp {
        self.clock.now()
    }

    fn stats(&self) -> JobsStats {
        self.metrics.snapshot(
            self.succeeded_total
                .load(std::sync::atomic::Ordering::Relaxed),
        )
    }
}

//! Per-queue limits that hold across every process sharing the database: a global
//! concurrency limit (running leases of the queue) and a global rate limit (job starts per
//! window, GCRA).
//!
//! Both live in the queue's `keel_jobs_queues` row. A fetch on a limited queue locks that
//! row (`SELECT … FOR UPDATE`) for the rest of its transaction, counts the queue's running
//! leases, computes how many starts the GCRA allows, leases at most that many and advances
//! the GCRA's theoretical arrival time (TAT) — all before commit. Limited fetches of one
//! queue therefore run one at a time, which is the price of a limit nobody can race past;
//! unlimited queues never take the lock.
//!
//! The rate arithmetic is keel-ratelimit's GCRA (`Quota::emission_interval`, burst as
//! capacity), applied to `n` starts at once: with emission interval `T`, capacity `B` and
//! `tat' = max(tat, now)`, the starts allowed now are `⌊(now + B·T − tat') / T⌋`, and
//! leasing `k` of them moves the TAT to `tat' + k·T`. keel-ratelimit's `Gcra` keeps its state
//! in process memory (an atomic), so the same formula is evaluated here on the row's TAT;
//! times are microseconds of the store's clock.

use keel_ratelimit::Quota;
use tokio_postgres::GenericClient;

use super::storage;
use crate::{JobsError, Timestamp};

/// Global limits of one queue (see [`PostgresStore::set_queue_limits`](super::PostgresStore::set_queue_limits)).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct QueueLimits {
    /// At most this many jobs of the queue running at once, across all processes.
    pub max_running: Option<u32>,
    /// At most this many job starts per window (with its burst), across all processes.
    pub rate: Option<Quota>,
}

pub(crate) async fn set<C: GenericClient + Sync>(
    client: &C,
    queue: &str,
    limits: &QueueLimits,
) -> Result<(), JobsError> {
    if limits.max_running == Some(0) {
        return Err(JobsError::InvalidArgument(
            "a global concurrency limit must be at least 1",
        ));
    }
    let max_running = limits
        .max_running
        .map(|m| i32::try_from(m).unwrap_or(i32::MAX));
    let rate = limits
        .rate
        .map(|q| i32::try_from(q.limit()).unwrap_or(i32::MAX));
    let window_ms = limits.rate.map(|q| {
        i64::try_from(q.window().as_millis())
            .unwrap_or(i64::MAX)
            .max(1)
    });
    let burst = limits
        .rate
        .map(|q| i32::try_from(q.burst()).unwrap_or(i32::MAX));
    client
        .execute(
            "INSERT INTO keel_jobs_queues (queue, max_running, rate_limit, rate_window_ms, rate_burst)
             VALUES ($1, $2, $3, $4, $5)
             ON CONFLICT (queue) DO UPDATE SET max_running = $2, rate_limit = $3,
                 rate_window_ms = $4, rate_burst = $5",
            &[&queue, &max_running, &rate, &window_ms, &burst],
        )
        .await
        .map_err(storage)?;
    Ok(())
}

pub(crate) async fn get<C: GenericClient + Sync>(
    client: &C,
    queue: &str,
) -> Result<QueueLimits, JobsError> {
    let row = client
        .query_opt(
            "SELECT max_running, rate_limit, rate_window_ms, rate_burst
             FROM keel_jobs_queues WHERE queue = $1",
            &[&queue],
        )
        .await
        .map_err(storage)?;
    let Some(row) = row else {
        return Ok(QueueLimits::default());
    };
    Ok(QueueLimits {
        max_running: row
            .get::<_, Option<i32>>(0)
            .and_then(|m| u32::try_from(m).ok()),
        rate: quota(row.get(1), row.get(2), row.get(3)),
    })
}

fn quota(limit: Option<i32>, window_ms: Option<i64>, burst: Option<i32>) -> Option<Quota> {
    let limit = u32::try_from(limit?).ok()?;
    let window = std::time::Duration::from_millis(u64::try_from(window_ms?).ok()?);
    let q = Quota::new(limit, window).ok()?;
    match burst.and_then(|b| u32::try_from(b).ok()) {
        Some(b) => q.with_burst(b).ok(),
        None => Some(q),
    }
}

fn micros(now: Timestamp) -> i64 {
    i64::try_from(now.0.saturating_mul(1_000)).unwrap_or(i64::MAX)
}

/// How many jobs a fetch of up to `want` may lease now: `None` when the queue is paused.
/// For a limited queue this locks its row until the transaction ends.
pub(crate) async fn admit<C: GenericClient + Sync>(
    txn: &C,
    queue: &str,
    want: usize,
    now: Timestamp,
) -> Result<Option<usize>, JobsError> {
    let row = txn
        .query_opt(
            "SELECT paused, max_running IS NOT NULL OR rate_limit IS NOT NULL
             FROM keel_jobs_queues WHERE queue = $1",
            &[&queue],
        )
        .await
        .map_err(storage)?;
    let Some(row) = row else {
        return Ok(Some(want));
    };
    let (paused, limited): (bool, bool) = (row.get(0), row.get(1));
    if paused {
        return Ok(None);
    }
    if !limited {
        return Ok(Some(want));
    }
    let row = txn
        .query_one(
            "SELECT paused, max_running, rate_limit, rate_window_ms, rate_burst, rate_tat_us
             FROM keel_jobs_queues WHERE queue = $1 FOR UPDATE",
            &[&queue],
        )
        .await
        .map_err(storage)?;
    if row.get::<_, bool>(0) {
        return Ok(None);
    }
    let mut allowed = want;
    if let Some(max) = row.get::<_, Option<i32>>(1) {
        let running: i64 = txn
            .query_one(
                "SELECT count(*) FROM keel_jobs WHERE queue = $1 AND state = 1",
                &[&queue],
            )
            .await
            .map_err(storage)?
            .get(0);
        let free = i64::from(max).saturating_sub(running).max(0);
        allowed = allowed.min(usize::try_from(free).unwrap_or(0));
    }
    if let Some(q) = quota(row.get(2), row.get(3), row.get(4)) {
        let t = emission_us(&q);
        let capacity = t.saturating_mul(i64::from(q.burst()));
        let now_us = micros(now);
        let tat = row.get::<_, i64>(5).max(now_us);
        let starts = (now_us.saturating_add(capacity) - tat).max(0) / t;
        allowed = allowed.min(usize::try_from(starts).unwrap_or(0));
    }
    Ok(Some(allowed))
}

fn emission_us(q: &Quota) -> i64 {
    i64::try_from(q.emission_interval_ns() / 1_000)
        .unwrap_or(i64::MAX)
        .max(1)
}

/// Advances the queue's GCRA by `leased` starts (a no-op for a queue without a rate limit).
pub(crate) async fn consume<C: GenericClient + Sync>(
    txn: &C,
    queue: &str,
    leased: usize,
    now: Timestamp,
) -> Result<(), JobsError> {
    if leased == 0 {
        return Ok(());
    }
    let n = i64::try_from(leased).unwrap_or(i64::MAX);
    // Only rows with a rate limit change; the emission interval is recomputed from the row
    // as admit() did (window in ms → µs, divided by the limit, at least 1 µs).
    txn.execute(
        "UPDATE keel_jobs_queues
         SET rate_tat_us = greatest(rate_tat_us, $2)
             + $3 * greatest((rate_window_ms * 1000) / rate_limit, 1)
         WHERE queue = $1 AND rate_limit IS NOT NULL",
        &[&queue, &micros(now), &n],
    )
    .await
    .map_err(storage)?;
    Ok(())
}

//! apalis rounds (`apalis-peer` feature): the peer, on its Redis, Postgres and
//! SQLite backends, written as its READMEs show — a `WorkerBuilder` with `.concurrency(n)`
//! and `.parallelize(tokio::spawn)`, a no-op `async fn` handler, `push_bulk` for batched
//! enqueue. Same backlog, batch size and concurrency as the Keel rounds; Redis and Postgres
//! rounds use the same private server as Keel's rounds of the scenario.
//!
//! Each apalis round is timed from its worker's first finished job (start-up excluded, in
//! apalis's favour; Keel's rounds include their pool's start).
//!
//! Settings changed from apalis's defaults, each in its favour: `batch_size(100)` (default
//! 10: fewer fetch round trips) and `persist_results(false)` (Keel deletes finished jobs
//! too).

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use apalis::prelude::*;
use hdrhistogram::Histogram;
use keel_testkit::{PostgresServer, RedisServer};
use parking_lot::Mutex;
use serde::{Deserialize, Serialize};

use super::idle::{self, IdleProbe};
use super::{BACKLOG, BATCH, KEEL_CONCURRENCY, flush_redis, fresh_database, runtime, temp_path};
use crate::harness::{Measurement, new_histogram, record};

/// Jobs apalis fetches per poll (its default is 10).
const APALIS_BATCH: usize = 100;

/// The job: its enqueue time rides in the payload (µs since the Unix epoch), as apalis's
/// handler sees no enqueue timestamp of its own without extra features.
#[derive(Debug, Serialize, Deserialize)]
struct ApalisNoop {
    n: u64,
    enqueued_us: u64,
}

fn now_us() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_micros() as u64)
}

/// What the handler reports to the round.
#[derive(Debug)]
struct Probe {
    done: AtomicU64,
    latency: Mutex<Histogram<u64>>,
    /// The idle-latency rounds' samples.
    idle: Arc<IdleProbe>,
}

async fn noop(job: ApalisNoop, probe: Data<Arc<Probe>>) -> Result<(), BoxDynError> {
    probe.idle.started();
    let waited = now_us().saturating_sub(job.enqueued_us).max(1);
    record(&mut probe.latency.lock(), Duration::from_micros(waited));
    probe.done.fetch_add(1, Ordering::Relaxed);
    Ok(())
}

fn probe() -> Arc<Probe> {
    Arc::new(Probe {
        done: AtomicU64::new(0),
        latency: Mutex::new(new_histogram()),
        idle: IdleProbe::new(),
    })
}

/// What an apalis round measures: throughput under a backlog, or idle enqueue → start.
#[derive(Clone, Copy, Debug)]
pub(super) enum Mode {
    Throughput,
    Idle,
}

/// Runs the round's producer side in `mode`; `push` enqueues a batch.
async fn run_mode(
    mode: Mode,
    duration: Duration,
    probe: &Probe,
    mut push: impl AsyncFnMut(Vec<ApalisNoop>),
) -> Measurement {
    match mode {
        Mode::Throughput => drive(duration, probe, push).await,
        Mode::Idle => {
            idle::drive(duration, &probe.idle, async |n| {
                push(vec![ApalisNoop {
                    n,
                    enqueued_us: now_us(),
                }])
                .await;
            })
            .await
        }
    }
}

/// The producer side of every apalis round: batches of `BATCH` while the backlog is
/// short, for `duration`; the worker (already spawned) counts into `probe`.
async fn drive(
    duration: Duration,
    probe: &Probe,
    mut push: impl AsyncFnMut(Vec<ApalisNoop>),
) -> Measurement {
    let mut n = 0u64;
    // Timed from the worker's first finished job: apalis's start-up (worker registration,
    // the first poll interval) can take longer than a quick round, so it is not counted.
    let warm = Instant::now();
    while probe.done.load(Ordering::Relaxed) == 0 && warm.elapsed() < Duration::from_secs(20) {
        if n == 0 {
            let at = now_us();
            push(
                (0..BATCH)
                    .map(|n| ApalisNoop { n, enqueued_us: at })
                    .collect(),
            )
            .await;
            n = BATCH;
        }
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    let base = probe.done.load(Ordering::Relaxed);
    let start = Instant::now();
    while start.elapsed() < duration {
        if n - probe.done.load(Ordering::Relaxed) < BACKLOG {
            let at = now_us();
            let batch = (n..n + BATCH)
                .map(|n| ApalisNoop { n, enqueued_us: at })
                .collect();
            push(batch).await;
            n += BATCH;
        } else {
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
    }
    let elapsed = start.elapsed();
    Measurement {
        ops: probe.done.load(Ordering::Relaxed) - base,
        elapsed,
        latency: probe.latency.lock().clone(),
        ..Measurement::new()
    }
}

pub(super) fn redis_round(server: &RedisServer, duration: Duration, mode: Mode) -> Measurement {
    flush_redis(server);
    let rt = runtime();
    let m = rt.block_on(async {
        let conn = apalis_redis::connect(server.url()).await.expect("connect");
        let config = apalis_redis::Config::default()
            .queue("noop")
            .batch_size(APALIS_BATCH)
            .persist_results(false);
        let mut storage = apalis_redis::RedisStorage::new(conn).with_config(config);
        let probe = probe();
        let worker = WorkerBuilder::new("keel-bench-redis")
            // Wake every 10 ms, as apalis-sqlite: without a poll strategy an idle apalis
            // worker sleeps until its next heartbeat (30 s by default). (Its pubsub
            // wake-up, `RedisStorageFactory`, needs a RESP3 push connection; polling is
            // the configuration its README examples show.)
            .backend(
                storage
                    .clone()
                    .poll_with_interval(Duration::from_millis(10)),
            )
            .concurrency(KEEL_CONCURRENCY)
            .parallelize(tokio::spawn)
            .data(Arc::clone(&probe))
            .build(noop);
        let running = tokio::spawn(worker.run());
        let m = run_mode(mode, duration, &probe, async |batch| {
            storage.push_bulk(batch).await.expect("apalis push");
        })
        .await;
        running.abort();
        m
    });
    drop(rt);
    m
}

pub(super) fn postgres_round(
    server: &PostgresServer,
    duration: Duration,
    mode: Mode,
) -> Measurement {
    let url = fresh_database(server);
    let rt = runtime();
    let m = rt.block_on(async {
        let pool = apalis_postgres::PgPool::connect(&url)
            .await
            .expect("connect");
        apalis_postgres::PostgresStorage::setup(&pool)
            .await
            .expect("apalis migrations");
        let config = apalis_postgres::Config::default()
            .queue("noop")
            .batch_size(APALIS_BATCH)
            .persist_results(false);
        let mut storage = apalis_postgres::PostgresStorage::new(&pool).with_config(config);
        let probe = probe();
        let worker = WorkerBuilder::new("keel-bench-postgres")
            // LISTEN/NOTIFY wake-ups, as Keel's PostgresStore: without a poll strategy an
            // idle apalis worker sleeps until its next heartbeat (30 s by default).
            .backend(storage.clone().with_pubsub())
            .concurrency(KEEL_CONCURRENCY)
            .parallelize(tokio::spawn)
            .data(Arc::clone(&probe))
            .build(noop);
        let running = tokio::spawn(worker.run());
        let m = run_mode(mode, duration, &probe, async |batch| {
            storage.push_bulk(batch).await.expect("apalis push");
        })
        .await;
        running.abort();
        pool.close().await;
        m
    });
    drop(rt);
    m
}

pub(super) fn sqlite_round(duration: Duration, mode: Mode) -> Measurement {
    let path = temp_path("apalis", "sqlite");
    let rt = runtime();
    let m = rt.block_on(async {
        let url = format!("sqlite://{}?mode=rwc", path.display());
        let pool = apalis_sqlite::SqlitePool::connect(&url)
            .await
            .expect("open sqlite");
        apalis_sqlite::SqliteStorage::setup(&pool)
            .await
            .expect("apalis migrations");
        let config = apalis_sqlite::Config::default()
            .queue("noop")
            .batch_size(APALIS_BATCH)
            .persist_results(false);
        let mut storage = apalis_sqlite::SqliteStorage::new(&pool).with_config(config);
        let probe = probe();
        let worker = WorkerBuilder::new("keel-bench-sqlite")
            // Wake every 10 ms: without a poll strategy an idle apalis worker sleeps until
            // its next heartbeat (30 s by default), which is what a quick round measured.
            .backend(
                storage
                    .clone()
                    .poll_with_interval(Duration::from_millis(10)),
            )
            .concurrency(KEEL_CONCURRENCY)
            .parallelize(tokio::spawn)
            .data(Arc::clone(&probe))
            .build(noop);
        let running = tokio::spawn(worker.run());
        let m = run_mode(mode, duration, &probe, async |batch| {
            storage.push_bulk(batch).await.expect("apalis push");
        })
        .await;
        running.abort();
        pool.close().await;
        m
    });
    drop(rt);
    for suffix in ["", "-wal", "-shm"] {
        let _ = std::fs::remove_file(format!("{}{suffix}", path.display()));
    }
    m
}

//! `keel-bench jobs`: durable job throughput — enqueue + process no-op jobs — on every
//! keel-jobs backend, beside apalis on the same backend and server (`apalis-peer` feature).
//!
//! # Workload
//!
//! A producer keeps a backlog of up to 20 000 jobs, enqueuing batches of 1 000 (one call,
//! one commit / one script); workers lease, "run" (no-op) and acknowledge each job. Ops are
//! jobs acknowledged per second; latency is enqueue → handler start (Keel: the store's
//! millisecond timestamps; apalis: µs, stamped into the payload at enqueue). Keel runs its
//! worker pool with 256 concurrent jobs, apalis a worker with `.concurrency(256)`; every
//! round gets a 2-thread tokio runtime.
//!
//! | scenario | Keel | peers |
//! |---|---|---|
//! | redb durable | `RedbStore` (group commit, fsync per commit) | redb with one durable commit per lease and per ack (4 threads) |
//! | embedded vs SQLite | `RedbStore` | apalis-sqlite (WAL, its `setup()` pragmas) — different engines, labelled so |
//! | Redis | `RedisStore` | a hand-written list queue (`RPUSH`, `BLMOVE`, `LREM`; 32 workers — no leases, fencing, retries: the floor of a Redis queue), apalis-redis |
//! | Postgres | `PostgresStore` (tokio-postgres, SKIP LOCKED batches, LISTEN/NOTIFY) | apalis-postgres (sqlx) |
//! | idle enqueue→start (redb, Redis, Postgres) | one job at a time into an idle queue (`idle.rs`) | apalis on the same backend |
//!
//! Redis and Postgres are private servers from `keel-testkit`, one per scenario, shared by
//! every contender of that scenario (Redis: persistence off and `FLUSHALL` before each
//! round; Postgres: `fsync` off, a fresh database per round).
//!
//! Files: `embedded.rs`, `redis.rs`, `postgres.rs` (Keel's rounds and the hand-written
//! peers), `idle.rs` (the idle-latency rounds), `apalis.rs` (the apalis rounds).

#[cfg(feature = "apalis-peer")]
mod apalis;
mod embedded;
mod idle;
mod postgres;
mod redis;

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use keel_jobs::{Clock, Job, JobContext, NewJob, Store, SystemClock, WorkerPool};
use keel_testkit::{PostgresServer, RedisServer};
use parking_lot::Mutex;
use serde::{Deserialize, Serialize};

use crate::harness::{Contender, Measurement, new_histogram, record};
use crate::{Config, Report};

const BACKLOG: u64 = 20_000;
const BATCH: u64 = 1_000;
const KEEL_CONCURRENCY: usize = 256;
const NAIVE_WORKERS: usize = 4;

const EMBEDDED: &str = "enqueue+process no-op, redb durable";
const EMBEDDED_VS_SQLITE: &str = "no-op, embedded: redb vs apalis SQLite";
const REDIS: &str = "enqueue+process no-op, Redis (persistence off)";
const POSTGRES: &str = "enqueue+process no-op, Postgres (fsync off)";
const IDLE_EMBEDDED: &str = "idle enqueue->start, embedded (redb / apalis SQLite)";
const IDLE_REDIS: &str = "idle enqueue->start, Redis";
const IDLE_POSTGRES: &str = "idle enqueue->start, Postgres";

/// Runs the jobs benchmarks.
///
/// # Errors
/// None today (a failing round panics with its cause).
pub fn run(cfg: &Config, report: &mut Report) -> anyhow::Result<()> {
    let cfg = &rounds(cfg);
    if cfg!(feature = "apalis-peer") {
        report.note("jobs: apalis 1.0 (apalis-redis, apalis-postgres, apalis-sqlite) runs on the same server as Keel in each scenario; its settings: concurrency 256, parallelize(tokio::spawn), batch_size 100, persist_results off");
    } else {
        report.note("jobs: apalis is not in this build; run with `--features apalis-peer` for the apalis rows (Redis, Postgres, SQLite)");
    }
    report.note("jobs: public figures for scale — Sidekiq 7: 23.5k jobs/s on Redis; River: 46k jobs/s on Postgres (8 cores); graphile-worker: 184k jobs/s batched (Postgres)");
    report.compare(
        cfg,
        EMBEDDED,
        1,
        &mut [
            Contender::keel("keel-jobs RedbStore", |_, d| embedded::keel_round(d)),
            Contender::peer("redb, commit per op", |_, d| embedded::naive_round(d)),
        ],
    );
    #[cfg(feature = "apalis-peer")]
    {
        report.note("jobs: the embedded-vs-SQLite row compares different engines: Keel's redb store fsyncs every group commit; apalis-sqlite runs SQLite in WAL mode with the pragmas its setup() sets");
        report.compare(
            cfg,
            EMBEDDED_VS_SQLITE,
            1,
            &mut [
                Contender::keel("keel-jobs RedbStore", |_, d| embedded::keel_round(d)),
                Contender::peer("apalis-sqlite", |_, d| {
                    apalis::sqlite_round(d, apalis::Mode::Throughput)
                }),
            ],
        );
    }
    #[cfg(not(feature = "apalis-peer"))]
    let _ = EMBEDDED_VS_SQLITE;
    #[allow(unused_mut)]
    let mut idle_embedded = vec![Contender::keel("keel-jobs RedbStore", |_, d| {
        idle::keel_redb(d)
    })];
    #[cfg(feature = "apalis-peer")]
    idle_embedded.push(Contender::peer("apalis-sqlite (poll 10 ms)", |_, d| {
        apalis::sqlite_round(d, apalis::Mode::Idle)
    }));
    report.compare(cfg, IDLE_EMBEDDED, 1, &mut idle_embedded);
    if cfg.selected(REDIS) || cfg.selected(IDLE_REDIS) {
        match RedisServer::start() {
            Ok(server) => {
                let server = &server;
                let mut contenders = vec![
                    Contender::keel("keel-jobs RedisStore", |_, d| redis::keel_round(server, d)),
                    Contender::peer("Redis list queue (BLMOVE+LREM)", |_, d| {
                        redis::list_round(server, d)
                    }),
                ];
                #[cfg(feature = "apalis-peer")]
                contenders.push(Contender::peer("apalis-redis", |_, d| {
                    apalis::redis_round(server, d, apalis::Mode::Throughput)
                }));
                report.compare(cfg, REDIS, 1, &mut contenders);
                #[allow(unused_mut)]
                let mut idle = vec![Contender::keel("keel-jobs RedisStore", |_, d| {
                    idle::keel_redis(server, d)
                })];
                #[cfg(feature = "apalis-peer")]
                idle.push(Contender::peer("apalis-redis (poll 10 ms)", |_, d| {
                    apalis::redis_round(server, d, apalis::Mode::Idle)
                }));
                report.compare(cfg, IDLE_REDIS, 1, &mut idle);
            }
            Err(e) => report.note(format!("jobs: Redis scenario skipped: {e}")),
        }
    }
    if cfg.selected(POSTGRES) || cfg.selected(IDLE_POSTGRES) {
        match PostgresServer::start() {
            Ok(server) => {
                let server = &server;
                #[allow(unused_mut)]
                let mut contenders = vec![Contender::keel("keel-jobs PostgresStore", |_, d| {
                    postgres::keel_round(server, d)
                })];
                #[cfg(feature = "apalis-peer")]
                contenders.push(Contender::peer("apalis-postgres", |_, d| {
                    apalis::postgres_round(server, d, apalis::Mode::Throughput)
                }));
                report.compare(cfg, POSTGRES, 1, &mut contenders);
                #[allow(unused_mut)]
                let mut idle = vec![Contender::keel("keel-jobs PostgresStore", |_, d| {
                    idle::keel_postgres(server, d)
                })];
                #[cfg(feature = "apalis-peer")]
                idle.push(Contender::peer("apalis-postgres (pubsub)", |_, d| {
                    apalis::postgres_round(server, d, apalis::Mode::Idle)
                }));
                report.compare(cfg, IDLE_POSTGRES, 1, &mut idle);
            }
            Err(e) => report.note(format!("jobs: Postgres scenario skipped: {e}")),
        }
    }
    Ok(())
}

/// Job rounds run longer than the harness default: a round includes a worker's first
/// polls and the backlog filling up, so 200 ms rounds measure start-up, not throughput.
fn rounds(cfg: &Config) -> Config {
    let mut cfg = cfg.clone();
    if cfg.quick {
        cfg.round_time = Duration::from_secs(2);
    } else {
        cfg.rounds = 5;
        cfg.round_time = Duration::from_secs(6);
    }
    cfg
}

/// A 2-worker-thread tokio runtime (the machine's size), one per round.
fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("tokio runtime")
}

/// Keel's side of a server round: the worker pool (`KEEL_CONCURRENCY` concurrent jobs)
/// on `store`, a producer keeping up to `BACKLOG` jobs queued in `enqueue_many` batches
/// of `BATCH`, for `duration`. Latency is enqueue → handler start.
async fn keel_drive<S: Store>(store: Arc<S>, duration: Duration) -> Measurement {
    let latency = Arc::new(Mutex::new(new_histogram()));
    let lat = Arc::clone(&latency);
    let pool = WorkerPool::builder(Arc::clone(&store))
        .queue("default", KEEL_CONCURRENCY)
        .poll_interval(Duration::from_millis(50))
        .handler(move |_: Noop, ctx: JobContext| {
            let waited = SystemClock.now().saturating_since(ctx.enqueued_at());
            record(&mut lat.lock(), waited.max(Duration::from_nanos(1)));
            async { Ok(()) }
        })
        .build()
        .expect("pool")
        .start();
    let start = Instant::now();
    let mut n = 0;
    while start.elapsed() < duration {
        if n - store.stats().completed < BACKLOG {
            let batch = (n..n + BATCH)
                .map(|n| NewJob::from_job(&Noop { n }))
                .collect::<Result<Vec<_>, _>>()
                .expect("job");
            store.enqueue_many(batch).await.expect("enqueue");
            n += BATCH;
        } else {
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
    }
    let ops = store.stats().completed;
    let elapsed = start.elapsed();
    pool.shutdown(Duration::from_secs(5)).await;
    let latency = latency.lock().clone();
    Measurement {
        ops,
        elapsed,
        latency,
        ..Measurement::new()
    }
}

/// Empties the scenario's Redis before a round (the previous round's backlog stays
/// behind when its workers stop).
fn flush_redis(server: &RedisServer) {
    let client = ::redis::Client::open(server.url()).expect("redis url");
    let mut conn = client.get_connection().expect("connect");
    let () = ::redis::cmd("FLUSHALL").query(&mut conn).expect("FLUSHALL");
}

/// A new empty database on the scenario's Postgres; returns its URL.
fn fresh_database(server: &PostgresServer) -> String {
    static ROUND: AtomicU64 = AtomicU64::new(0);
    let n = ROUND.fetch_add(1, Ordering::Relaxed);
    server
        .create_database(&format!("bench_jobs_{n}"))
        .expect("CREATE DATABASE")
}

fn temp_path(tag: &str, ext: &str) -> PathBuf {
    static ROUND: AtomicU64 = AtomicU64::new(0);
    let n = ROUND.fetch_add(1, Ordering::Relaxed);
    std::env::temp_dir().join(format!(
        "keel-bench-jobs-{}-{tag}-{n}.{ext}",
        std::process::id()
    ))
}

#[derive(Serialize, Deserialize)]
struct Noop {
    n: u64,
}

impl Job for Noop {
    const KIND: &'static str = "noop";
}

//! `keel-bench jobs`: durable job throughput — enqueue + process no-op jobs on the embedded
//! store.
//!
//! # Workload
//!
//! A producer keeps a backlog of up to 20 000 jobs, enqueuing batches of 1 000 (one call,
//! one commit); workers lease, "run" (no-op) and acknowledge each job. Ops are jobs
//! acknowledged per second; latency is enqueue → start (millisecond resolution: the
//! stores keep wall-clock milliseconds). Every contender writes durably (an fsync per commit)
//! to a fresh file in the system temp directory, removed after the round.
//!
//! - **keel-jobs `RedbStore`**: the worker pool (256 concurrent jobs on a 2-thread tokio
//!   runtime) on the group-committed redb store: every lease and ack is durable before it
//!   returns, and concurrent ones share commits.
//! - **redb, one commit per operation** (peer): the queue a user would write on redb
//!   without group commit — 4 worker threads, each `lease` (pop from `ready`, insert into
//!   `leased`) and each `ack` its own durable transaction.
//!
//! apalis (the peer: its SQLite, Redis and Postgres backends) is not in this
//! comparison yet.

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use keel_jobs::{Clock, Job, JobContext, NewJob, RedbStore, Store, SystemClock, WorkerPool};
use parking_lot::Mutex;
use redb::{Database, TableDefinition};
use serde::{Deserialize, Serialize};

use crate::harness::{Contender, Measurement, new_histogram, record};
use crate::{Config, Report};

const BACKLOG: u64 = 20_000;
const BATCH: u64 = 1_000;
const KEEL_CONCURRENCY: usize = 256;
const NAIVE_WORKERS: usize = 4;

/// Runs the jobs benchmarks.
///
/// # Errors
/// None today (a failing round panics with its cause).
pub fn run(cfg: &Config, report: &mut Report) -> anyhow::Result<()> {
    report.note("jobs: apalis (SQLite/Redis/Postgres) is not in the comparison yet; the peer is a plain redb queue with one commit per operation");
    let scenario = "enqueue+process no-op, redb durable";
    report.compare(
        cfg,
        scenario,
        1,
        &mut [
            Contender::keel("keel-jobs RedbStore", |_, d| keel_round(d)),
            Contender::peer("redb, commit per op", |_, d| naive_round(d)),
        ],
    );
    Ok(())
}

fn temp_path(tag: &str) -> PathBuf {
    static ROUND: AtomicU64 = AtomicU64::new(0);
    let n = ROUND.fetch_add(1, Ordering::Relaxed);
    std::env::temp_dir().join(format!(
        "keel-bench-jobs-{}-{tag}-{n}.redb",
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

fn keel_round(duration: Duration) -> Measurement {
    let path = temp_path("keel");
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("tokio runtime");
    let m = rt.block_on(async {
        let store = Arc::new(
            RedbStore::builder()
                .path(&path)
                .build()
                .expect("open store"),
        );
        let latency = Arc::new(Mutex::new(new_histogram()));
        let lat = Arc::clone(&latency);
        let pool = WorkerPool::builder(Arc::clone(&store))
            .queue("default", KEEL_CONCURRENCY)
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
            let backlog: u64 = store
                .counts()
                .await
                .expect("counts")
                .values()
                .map(|c| c.available)
                .sum();
            if backlog < BACKLOG {
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
        let stats = store.stats();
        Measurement {
            ops,
            elapsed,
            latency,
            ..Measurement::new()
        }
        .with_extra(
            "changes_per_commit",
            stats.committed_changes as f64 / stats.commits.max(1) as f64,
        )
    });
    let _ = std::fs::remove_file(&path);
    m
}

const READY: TableDefinition<u64, u64> = TableDefinition::new("ready");
const LEASED: TableDefinition<u64, u64> = TableDefinition::new("leased");

fn naive_round(duration: Duration) -> Measurement {
    let path = temp_path("naive");
    let db = Database::create(&path).expect("open redb");
    let epoch = Instant::now();
    let stop = AtomicBool::new(false);
    let done = AtomicU64::new(0);
    let latency = Mutex::new(new_histogram());
    std::thread::scope(|s| {
        // Producer: batches of 1 000 in one commit while the backlog is short.
        s.spawn(|| {
            let mut n = 0u64;
            while !stop.load(Ordering::Relaxed) {
                if n - done.load(Ordering::Relaxed) >= BACKLOG {
                    std::thread::sleep(Duration::from_millis(1));
                    continue;
                }
                let txn = db.begin_write().expect("begin");
                {
                    let mut ready = txn.open_table(READY).expect("table");
                    let now = epoch.elapsed().as_nanos() as u64;
                    for id in n..n + BATCH {
                        ready.insert(id, now).expect("insert");
                    }
                }
                txn.commit().expect("commit");
                n += BATCH;
            }
        });
        for _ in 0..NAIVE_WORKERS {
            s.spawn(|| {
                while !stop.load(Ordering::Relaxed) {
                    // Lease: pop the oldest ready job into `leased`, durably.
                    let txn = db.begin_write().expect("begin");
                    let leased = {
                        let mut ready = txn.open_table(READY).expect("table");
                        let first = ready
                            .pop_first()
                            .expect("pop")
                            .map(|(k, v)| (k.value(), v.value()));
                        if let Some((id, at)) = first {
                            txn.open_table(LEASED)
                                .expect("table")
                                .insert(id, at)
                                .expect("insert");
                        }
                        first
                    };
                    txn.commit().expect("commit");
                    let Some((id, enqueued)) = leased else {
                        std::thread::sleep(Duration::from_millis(1));
                        continue;
                    };
                    let waited = epoch.elapsed().as_nanos() as u64 - enqueued;
                    record(&mut latency.lock(), Duration::from_nanos(waited.max(1)));
                    // Ack: remove it, durably.
                    let txn = db.begin_write().expect("begin");
                    txn.open_table(LEASED)
                        .expect("table")
                        .remove(id)
                        .expect("remove");
                    txn.commit().expect("commit");
                    done.fetch_add(1, Ordering::Relaxed);
                }
            });
        }
        std::thread::sleep(duration);
        stop.store(true, Ordering::Relaxed);
    });
    let elapsed = epoch.elapsed();
    drop(db);
    let _ = std::fs::remove_file(&path);
    let latency = latency.into_inner();
    Measurement {
        ops: done.load(Ordering::Relaxed),
        elapsed,
        latency,
        ..Measurement::new()
    }
}

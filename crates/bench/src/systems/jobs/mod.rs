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
//! - **keel-jobs `RedisStore`** (`redis.rs`): the same pool on a private `redis-server`
//!   (keel-testkit, persistence off): one Lua script per enqueue batch, fetch batch and ack.
//! - **Redis list queue** (peer): what people write by hand — `RPUSH` batches, `BLMOVE`
//!   into a processing list, `LREM` on ack (32 workers); no leases, fencing, retries,
//!   priorities or delays, so it is the floor of what a Redis queue costs.
//!
//! Files: `embedded.rs` (redb rounds), `redis.rs` (Redis rounds); a Postgres round goes in
//! its own file. apalis (the peer: its SQLite, Redis and Postgres backends) is not
//! in this comparison yet.

mod embedded;
mod redis;

use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};

use keel_jobs::Job;
use serde::{Deserialize, Serialize};

use crate::harness::Contender;
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
    report.note("jobs: apalis (SQLite/Redis/Postgres) is not in the comparison yet; the peers are a plain redb queue with one commit per operation and a hand-written Redis list queue (BLMOVE + LREM)");
    report.note("jobs: public figures for scale — Sidekiq 7: 23.5k jobs/s on Redis; River: 46k jobs/s on Postgres (8 cores); graphile-worker: 184k jobs/s batched (Postgres)");
    let scenario = "enqueue+process no-op, redb durable";
    report.compare(
        cfg,
        scenario,
        1,
        &mut [
            Contender::keel("keel-jobs RedbStore", |_, d| embedded::keel_round(d)),
            Contender::peer("redb, commit per op", |_, d| embedded::naive_round(d)),
        ],
    );
    if keel_testkit::redis_server_available() {
        report.compare(
            cfg,
            "enqueue+process no-op, Redis (persistence off)",
            1,
            &mut [
                Contender::keel("keel-jobs RedisStore", |_, d| redis::keel_round(d)),
                Contender::peer("Redis list queue (BLMOVE+LREM)", |_, d| {
                    redis::list_round(d)
                }),
            ],
        );
    } else {
        report.note("jobs: redis-server not found; the Redis scenario was skipped");
    }
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

//! Idle-queue latency: one job at a time into an idle queue, timed from just before the
//! enqueue call to its handler's start (`Instant`s in this process, so µs-precise), with
//! [`IDLE_GAP`] between jobs so the worker is back waiting for work each time. This is
//! the wake-up path (`LISTEN/NOTIFY` on Postgres, a blocking pop on Redis, an in-process
//! notify on redb; apalis: its pubsub on Postgres, a 10 ms poll on Redis and SQLite), not
//! throughput: the row's ops/s counts samples and mostly reflects the gap, so read p50/p99.

use std::sync::Arc;
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;
use keel_jobs::{JobContext, NewJob, PostgresStore, RedbStore, RedisStore, Store, WorkerPool};
use keel_testkit::{PostgresServer, RedisServer};
use parking_lot::Mutex;
use tokio::sync::Notify;

use super::{KEEL_CONCURRENCY, Noop, flush_redis, fresh_database, runtime, temp_path};
use crate::harness::{Measurement, new_histogram, record};

/// Pause between two samples: long enough for a worker to finish its fetch and wait again.
pub(super) const IDLE_GAP: Duration = Duration::from_millis(20);

/// The handler's side of an idle round: when the current sample's job started.
#[derive(Debug)]
pub(super) struct IdleProbe {
    sent: Mutex<Option<Instant>>,
    started: Notify,
    latency: Mutex<Histogram<u64>>,
}

impl IdleProbe {
    pub(super) fn new() -> Arc<Self> {
        Arc::new(Self {
            sent: Mutex::new(None),
            started: Notify::new(),
            latency: Mutex::new(new_histogram()),
        })
    }

    /// Called at a handler's start: records the sample whose job this is.
    pub(super) fn started(&self) {
        if let Some(sent) = self.sent.lock().take() {
            record(
                &mut self.latency.lock(),
                sent.elapsed().max(Duration::from_nanos(1)),
            );
            self.started.notify_one();
        }
    }
}

/// Enqueues one job at a time with `push` and waits for its start, for `duration` (after
/// a first job that warms the worker up and is not counted).
pub(super) async fn drive(
    duration: Duration,
    probe: &IdleProbe,
    mut push: impl AsyncFnMut(u64),
) -> Measurement {
    let bound = Duration::from_secs(20);
    *probe.sent.lock() = Some(Instant::now());
    push(0).await;
    let _ = tokio::time::timeout(bound, probe.started.notified()).await;
    *probe.latency.lock() = new_histogram();
    let start = Instant::now();
    let mut n = 1;
    while start.elapsed() < duration {
        tokio::time::sleep(IDLE_GAP).await;
        *probe.sent.lock() = Some(Instant::now());
        push(n).await;
        n += 1;
        if tokio::time::timeout(bound, probe.started.notified())
            .await
            .is_err()
        {
            break;
        }
    }
    let ops = probe.latency.lock().len();
    Measurement {
        ops,
        elapsed: start.elapsed(),
        latency: probe.latency.lock().clone(),
        ..Measurement::new()
    }
}

/// Keel's idle round on `store`: a pool with the library's default poll interval.
async fn keel<S: Store>(store: Arc<S>, duration: Duration) -> Measurement {
    let probe = IdleProbe::new();
    let p = Arc::clone(&probe);
    let pool = WorkerPool::builder(Arc::clone(&store))
        .queue("default", KEEL_CONCURRENCY)
        .handler(move |_: Noop, _: JobContext| {
            p.started();
            async { Ok(()) }
        })
        .build()
        .expect("pool")
        .start();
    let m = drive(duration, &probe, async |n| {
        let job = NewJob::from_job(&Noop { n }).expect("job");
        store.enqueue(job).await.expect("enqueue");
    })
    .await;
    pool.shutdown(Duration::from_secs(5)).await;
    m
}

pub(super) fn keel_redb(duration: Duration) -> Measurement {
    let path = temp_path("keel-idle", "redb");
    let m = runtime().block_on(async {
        let store = RedbStore::builder()
            .path(&path)
            .build()
            .expect("open store");
        keel(Arc::new(store), duration).await
    });
    let _ = std::fs::remove_file(&path);
    m
}

pub(super) fn keel_redis(server: &RedisServer, duration: Duration) -> Measurement {
    flush_redis(server);
    runtime().block_on(async {
        let store = RedisStore::builder()
            .url(server.url())
            .build()
            .await
            .expect("connect");
        keel(Arc::new(store), duration).await
    })
}

pub(super) fn keel_postgres(server: &PostgresServer, duration: Duration) -> Measurement {
    let url = fresh_database(server);
    runtime().block_on(async {
        let store = PostgresStore::builder()
            .url(url)
            .pool_size(8)
            .build()
            .await
            .expect("connect");
        keel(Arc::new(store), duration).await
    })
}

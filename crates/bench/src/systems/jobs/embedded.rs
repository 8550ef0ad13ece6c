//! Embedded store rounds: keel-jobs `RedbStore` and a plain redb queue with one durable
//! commit per operation.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use keel_jobs::{Clock, JobContext, NewJob, RedbStore, Store, SystemClock, WorkerPool};
use parking_lot::Mutex;
use redb::{Database, TableDefinition};

use super::{BACKLOG, BATCH, KEEL_CONCURRENCY, NAIVE_WORKERS, Noop, temp_path};
use crate::harness::{Measurement, new_histogram, record};

pub(super) fn keel_round(duration: Duration) -> Measurement {
    let path = temp_path("keel", "redb");
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

pub(super) fn naive_round(duration: Duration) -> Measurement {
    let path = temp_path("naive", "redb");
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

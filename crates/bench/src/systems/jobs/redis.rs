//! Redis rounds on the scenario's private `redis-server` from `keel-testkit` (persistence
//! off for every contender, so the comparison is the queue's own cost; `FLUSHALL` before
//! each round): keel-jobs `RedisStore` and the reliable-list queue a user would write by
//! hand. apalis-redis is in `apalis.rs`.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use keel_jobs::RedisStore;
use keel_testkit::RedisServer;
use parking_lot::Mutex;

use super::{BACKLOG, BATCH, flush_redis, keel_drive, runtime};
use crate::harness::{Measurement, new_histogram, record};

/// Workers of the hand-written list queue (each one blocking pop in flight).
const LIST_WORKERS: usize = 32;

pub(super) fn keel_round(server: &RedisServer, duration: Duration) -> Measurement {
    flush_redis(server);
    runtime().block_on(async {
        let store = RedisStore::builder()
            .url(server.url())
            .build()
            .await
            .expect("connect");
        keel_drive(Arc::new(store), duration).await
    })
}

/// The queue people write on Redis lists: `RPUSH` a batch, each worker `BLMOVE`s a job
/// into a processing list (so a crash leaves it there) and `LREM`s it on ack — two round
/// trips per job, no leases, fencing, retries or priorities.
pub(super) fn list_round(server: &RedisServer, duration: Duration) -> Measurement {
    flush_redis(server);
    let rt = runtime();
    rt.block_on(async {
        let client = ::redis::Client::open(server.url()).expect("client");
        let epoch = Instant::now();
        let stop = Arc::new(AtomicBool::new(false));
        let done = Arc::new(AtomicU64::new(0));
        let latency = Arc::new(Mutex::new(new_histogram()));
        let mut workers = Vec::new();
        for _ in 0..LIST_WORKERS {
            let mut conn = client
                .get_multiplexed_async_connection()
                .await
                .expect("connect");
            let (stop, done, latency) =
                (Arc::clone(&stop), Arc::clone(&done), Arc::clone(&latency));
            workers.push(tokio::spawn(async move {
                while !stop.load(Ordering::Relaxed) {
                    let job: Option<String> = ::redis::cmd("BLMOVE")
                        .arg("ready")
                        .arg("processing")
                        .arg("LEFT")
                        .arg("RIGHT")
                        .arg(0.05)
                        .query_async(&mut conn)
                        .await
                        .expect("blmove");
                    let Some(job) = job else { continue };
                    let enqueued: u64 = job
                        .split(':')
                        .nth(1)
                        .and_then(|t| t.parse().ok())
                        .unwrap_or(0);
                    let waited = (epoch.elapsed().as_nanos() as u64).saturating_sub(enqueued);
                    record(&mut latency.lock(), Duration::from_nanos(waited.max(1)));
                    let _: i64 = ::redis::cmd("LREM")
                        .arg("processing")
                        .arg(1)
                        .arg(&job)
                        .query_async(&mut conn)
                        .await
                        .expect("lrem");
                    done.fetch_add(1, Ordering::Relaxed);
                }
            }));
        }
        let mut producer = client
            .get_multiplexed_async_connection()
            .await
            .expect("connect");
        let start = Instant::now();
        let mut n = 0u64;
        while start.elapsed() < duration {
            if n - done.load(Ordering::Relaxed) < BACKLOG {
                let now = epoch.elapsed().as_nanos() as u64;
                let batch: Vec<String> = (n..n + BATCH)
                    .map(|i| format!("{i}:{now}:{{\"n\":{i}}}"))
                    .collect();
                let _: i64 = ::redis::cmd("RPUSH")
                    .arg("ready")
                    .arg(batch)
                    .query_async(&mut producer)
                    .await
                    .expect("rpush");
                n += BATCH;
            } else {
                tokio::time::sleep(Duration::from_millis(1)).await;
            }
        }
        let ops = done.load(Ordering::Relaxed);
        let elapsed = start.elapsed();
        stop.store(true, Ordering::Relaxed);
        for w in workers {
            let _ = w.await;
        }
        let latency = latency.lock().clone();
        Measurement {
            ops,
            elapsed,
            latency,
            ..Measurement::new()
        }
    })
}

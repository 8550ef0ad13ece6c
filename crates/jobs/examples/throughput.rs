//! Smoke throughput of the embedded store: enqueue N no-op jobs in batches, process them
//! with a worker pool, print jobs/s. Not a benchmark (that is `keel-bench`); a quick look.
//!
//! `cargo run --release -p keel-jobs --example throughput -- [JOBS] [CONCURRENCY]`

use std::sync::Arc;
use std::time::{Duration, Instant};

use keel_jobs::{Job, JobContext, NewJob, RedbStore, Store, WorkerPool};
use serde::{Deserialize, Serialize};

#[derive(Serialize, Deserialize)]
struct Noop {
    n: u64,
}

impl Job for Noop {
    const KIND: &'static str = "noop";
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let jobs: u64 = args.next().map_or(Ok(100_000), |s| s.parse())?;
    let concurrency: usize = args.next().map_or(Ok(64), |s| s.parse())?;
    let dir = tempfile::tempdir()?;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    rt.block_on(async {
        let store = Arc::new(RedbStore::builder().path(dir.path().join("jobs.redb")).build()?);
        let start = Instant::now();
        for chunk in (0..jobs).collect::<Vec<_>>().chunks(1_000) {
            let batch = chunk.iter().map(|&n| NewJob::from_job(&Noop { n })).collect::<Result<Vec<_>, _>>()?;
            store.enqueue_many(batch).await?;
        }
        let enqueued = start.elapsed();
        let pool = WorkerPool::builder(Arc::clone(&store))
            .queue("default", concurrency)
            .handler(|_: Noop, _: JobContext| async { Ok(()) })
            .build()?
            .start();
        while store.stats().completed < jobs {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        let total = start.elapsed();
        pool.shutdown(Duration::from_secs(5)).await;
        let s = store.stats();
        println!(
            "{jobs} jobs: enqueue {:.0} jobs/s ({enqueued:.2?}), enqueue+process {:.0} jobs/s ({total:.2?}); {} commits carried {} changes",
            jobs as f64 / enqueued.as_secs_f64(),
            jobs as f64 / total.as_secs_f64(),
            s.commits,
            s.committed_changes
        );
        Ok::<(), Box<dyn std::error::Error>>(())
    })
}

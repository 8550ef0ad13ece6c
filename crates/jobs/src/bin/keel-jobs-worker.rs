//! A worker *process* on the embedded store (or on Redis), for the kill -9 tests
//! (`tests/kill9.rs`, `tests/redis_kill9.rs`) and for trying the crate by hand.
//!
//! ```text
//! keel-jobs-worker enqueue STORE COUNT BATCH    enqueue jobs {"n": 0..COUNT} in batches;
//!                                               prints "ok END" after each batch returned Ok
//! keel-jobs-worker work STORE LOG CONCURRENCY   run jobs until none is unfinished; every run
//!                                               appends "n id attempt token" to LOG first
//! ```
//!
//! STORE is a redb file path, or `--redis URL` (with the `redis` feature; key prefix
//! `$KEEL_JOBS_PREFIX`, default `keel:jobs:`; leases of 2 s so a killed worker's jobs come
//! back quickly), or `--postgres URL` (with the `postgres` feature; 2 s leases too).

use std::io::Write;
use std::sync::Arc;
use std::time::Duration;

use keel_jobs::{Job, JobContext, JobOptions, NewJob, RedbStore, Store, WorkerPool};
use serde::{Deserialize, Serialize};

#[derive(Serialize, Deserialize)]
struct Numbered {
    n: u64,
}

impl Job for Numbered {
    const KIND: &'static str = "numbered";
    fn options() -> JobOptions {
        // Enough attempts that repeated kills never dead-letter a job in the test.
        JobOptions {
            max_attempts: 1_000,
            ..JobOptions::default()
        }
    }
}

fn main() {
    let mut args: Vec<String> = std::env::args().collect();
    if args.get(2).map(String::as_str) == Some("--redis") && args.len() > 3 {
        let url = args.remove(3);
        args[2] = url;
        let result = redis_main(&args);
        if let Err(e) = result {
            eprintln!("keel-jobs-worker: {e}");
            std::process::exit(1);
        }
        return;
    }
    if args.get(2).map(String::as_str) == Some("--postgres") && args.len() > 3 {
        let url = args.remove(3);
        args[2] = url;
        if let Err(e) = postgres_main(&args) {
            eprintln!("keel-jobs-worker: {e}");
            std::process::exit(1);
        }
        return;
    }
    let result = match args.get(1).map(String::as_str) {
        Some("enqueue") if args.len() == 5 => enqueue(&args[2], parse(&args[3]), parse(&args[4])),
        Some("work") if args.len() == 5 => work(&args[2], &args[3], parse(&args[4])),
        _ => Err(
            "usage: keel-jobs-worker enqueue STORE COUNT BATCH | work STORE LOG CONCURRENCY".into(),
        ),
    };
    if let Err(e) = result {
        eprintln!("keel-jobs-worker: {e}");
        std::process::exit(1);
    }
}

fn parse<T: std::str::FromStr>(s: &str) -> T {
    s.parse().unwrap_or_else(|_| {
        eprintln!("keel-jobs-worker: not a number: {s}");
        std::process::exit(2)
    })
}

type Result<T> = std::result::Result<T, Box<dyn std::error::Error>>;

fn runtime() -> Result<tokio::runtime::Runtime> {
    Ok(tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?)
}

fn open(path: &str) -> Result<Arc<RedbStore>> {
    Ok(Arc::new(
        RedbStore::builder()
            .path(path)
            .keep_completed(true)
            .build()?,
    ))
}

#[cfg(feature = "redis")]
fn redis_main(args: &[String]) -> Result<()> {
    let url = args[2].clone();
    let rt = runtime()?;
    let prefix = std::env::var("KEEL_JOBS_PREFIX").unwrap_or_else(|_| "keel:jobs:".to_owned());
    let store = Arc::new(
        rt.block_on(
            keel_jobs::RedisStore::builder()
                .url(url)
                .prefix(prefix)
                .keep_completed(true)
                .build(),
        )?,
    );
    let lease = Duration::from_secs(2);
    match args.get(1).map(String::as_str) {
        Some("enqueue") if args.len() == 5 => {
            enqueue_into(&rt, &store, parse(&args[3]), parse(&args[4]))
        }
        Some("work") if args.len() == 5 => work_on(&rt, store, &args[3], parse(&args[4]), lease),
        _ => Err("usage: keel-jobs-worker enqueue|work --redis URL ...".into()),
    }
}

#[cfg(not(feature = "redis"))]
fn redis_main(_args: &[String]) -> Result<()> {
    Err("built without the `redis` feature".into())
}

#[cfg(feature = "postgres")]
fn postgres_main(args: &[String]) -> Result<()> {
    let url = args[2].clone();
    let rt = runtime()?;
    let store = Arc::new(
        rt.block_on(
            keel_jobs::PostgresStore::builder()
                .url(url)
                .keep_completed(true)
                .build(),
        )?,
    );
    let lease = Duration::from_secs(2);
    match args.get(1).map(String::as_str) {
        Some("enqueue") if args.len() == 5 => {
            enqueue_into(&rt, &store, parse(&args[3]), parse(&args[4]))
        }
        Some("work") if args.len() == 5 => work_on(&rt, store, &args[3], parse(&args[4]), lease),
        _ => Err("usage: keel-jobs-worker enqueue|work --postgres URL ...".into()),
    }
}

#[cfg(not(feature = "postgres"))]
fn postgres_main(_args: &[String]) -> Result<()> {
    Err("built without the `postgres` feature".into())
}

fn enqueue(path: &str, count: u64, batch: u64) -> Result<()> {
    enqueue_into(&runtime()?, &open(path)?, count, batch)
}

fn enqueue_into<S: Store>(
    rt: &tokio::runtime::Runtime,
    store: &Arc<S>,
    count: u64,
    batch: u64,
) -> Result<()> {
    let batch = batch.max(1);
    rt.block_on(async {
        let mut stdout = std::io::stdout().lock();
        let mut start = 0;
        while start < count {
            let end = (start + batch).min(count);
            let jobs = (start..end)
                .map(|n| NewJob::from_job(&Numbered { n }))
                .collect::<std::result::Result<Vec<_>, _>>()?;
            store.enqueue_many(jobs).await?;
            writeln!(stdout, "ok {end}")?;
            stdout.flush()?;
            start = end;
        }
        Ok(())
    })
}

fn work(path: &str, log: &str, concurrency: usize) -> Result<()> {
    work_on(
        &runtime()?,
        open(path)?,
        log,
        concurrency,
        Duration::from_secs(30),
    )
}

fn work_on<S: Store>(
    rt: &tokio::runtime::Runtime,
    store: Arc<S>,
    log: &str,
    concurrency: usize,
    lease: Duration,
) -> Result<()> {
    let log = Arc::new(
        std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(log)?,
    );
    rt.block_on(async {
        let pool = WorkerPool::builder(Arc::clone(&store))
            .queue("default", concurrency)
            .lease(lease)
            .heartbeat(lease / 6)
            .poll_interval(Duration::from_millis(20))
            .handler(move |job: Numbered, ctx: JobContext| {
                let log = Arc::clone(&log);
                async move {
                    // "Work", then record the side effect (one append, one write(2) call),
                    // then return: a kill between the record and the ack is a duplicate.
                    tokio::time::sleep(Duration::from_micros(job.n % 7 * 300)).await;
                    let line = format!(
                        "{} {} {} {}\n",
                        job.n,
                        ctx.id(),
                        ctx.attempt(),
                        ctx.token().0
                    );
                    (&*log).write_all(line.as_bytes())?;
                    Ok(())
                }
            })
            .build()?
            .start();
        loop {
            let counts = store.counts().await?;
            if counts.values().all(|c| c.unfinished() == 0) {
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let report = pool.shutdown(Duration::from_secs(10)).await;
        println!("done {}", report.stats.succeeded);
        Ok(())
    })
}

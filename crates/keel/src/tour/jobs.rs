//! Tour scenario for `keel-jobs` on the embedded (redb) store: a thumbnail workload with
//! transient failures and poison jobs, a worker "process" that crashes mid-run, retries and
//! the dead-letter state; then delayed and periodic jobs; then a rate-limited queue.

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use keel_jobs::{
    Backoff, Clock, HandlerError, Job, JobContext, JobOptions, Periodic, Producer, Quota,
    RedbStore, Store, SystemClock, Timestamp, WorkerPool,
};
use parking_lot::Mutex;
use serde::{Deserialize, Serialize};

use super::{Chart, SummaryRow, SystemReport, Table, Tour, latency_histogram};
use crate::report::charts::{Series, line_chart};

/// What the parts share: a temporary directory for their store files.
struct Shared {
    dir: PathBuf,
}

impl Drop for Shared {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

pub(crate) fn run(tour: &Tour) -> anyhow::Result<SystemReport> {
    let mut report = SystemReport::for_system(
        "jobs",
        "An image service makes thumbnails in the background on the embedded durable store \
         (redb, group commit). 1 in 20 thumbnails fails once (a flaky download) and is retried \
         with backoff; 10 poison images fail every time and end dead-lettered with their error \
         history. Halfway through, the worker process crashes (its runtime is dropped with jobs \
         in flight, no ack, no release); a new worker takes the jobs over when their leases \
         expire. Then delayed jobs (must never run early), a cron job driven by three \
         schedulers (must fire once per tick), and an email queue limited to 50 starts/s.",
    );
    let dir = std::env::temp_dir().join(format!("keel-tour-jobs-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let mut shared = Shared { dir };
    tour.run_parts(
        &mut report,
        &mut shared,
        &[
            ("thumbnails with a crash", thumbnails),
            ("delayed and periodic jobs", scheduling),
            ("rate-limited queue", rate_limited),
        ],
    )?;
    Ok(report)
}

fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    Ok(tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?)
}

#[derive(Serialize, Deserialize)]
struct Thumbnail {
    image: u64,
    poison: bool,
}

impl Job for Thumbnail {
    const KIND: &'static str = "thumbnail";
    fn options() -> JobOptions {
        JobOptions {
            queue: "thumbnails".into(),
            max_attempts: 3,
            backoff: Backoff {
                base: Duration::from_millis(20),
                max: Duration::from_millis(200),
                jitter: true,
            },
            ..JobOptions::default()
        }
    }
}

const POISON: u64 = 10;
const LEASE: Duration = Duration::from_secs(2);

/// Per-image success counts and the enqueue → start latency.
struct Observed {
    succeeded: Vec<AtomicU32>,
    latency: Mutex<hdrhistogram::Histogram<u64>>,
}

fn thumbnail_pool(
    store: &Arc<RedbStore>,
    observed: &Arc<Observed>,
) -> anyhow::Result<WorkerPool<RedbStore>> {
    let observed = Arc::clone(observed);
    Ok(WorkerPool::builder(Arc::clone(store))
        .queue("thumbnails", 64)
        .lease(LEASE)
        .heartbeat(Duration::from_millis(500))
        .poll_interval(Duration::from_millis(20))
        .handler(move |job: Thumbnail, ctx: JobContext| {
            let observed = Arc::clone(&observed);
            async move {
                let waited = SystemClock.now().saturating_since(ctx.enqueued_at());
                let _ = observed
                    .latency
                    .lock()
                    .record((waited.as_nanos() as u64).max(1));
                // "Resize": a little async I/O time.
                tokio::time::sleep(Duration::from_micros(200 + job.image % 5 * 100)).await;
                if job.poison {
                    return Err(HandlerError::new(format!(
                        "image {}: unsupported colour profile",
                        job.image
                    )));
                }
                if job.image % 20 == 7 && ctx.attempt() == 1 {
                    return Err(HandlerError::new("download timed out"));
                }
                observed.succeeded[job.image as usize].fetch_add(1, Ordering::Relaxed);
                Ok(())
            }
        })
        .build()?)
}

fn thumbnails(tour: &Tour, shared: &mut Shared, report: &mut SystemReport) -> anyhow::Result<()> {
    let n = tour.size(2_000u64, 10_000);
    let store = Arc::new(
        RedbStore::builder()
            .path(shared.dir.join("thumbnails.redb"))
            .build()?,
    );
    let observed = Arc::new(Observed {
        succeeded: (0..n).map(|_| AtomicU32::new(0)).collect(),
        latency: Mutex::new(latency_histogram()),
    });
    let bar = tour.progress("jobs: thumbnails", n);
    let rt = runtime()?;
    let start = Instant::now();
    // Enqueue in batches of 500 (one commit each); poison images spread through the run.
    rt.block_on(async {
        let producer = Producer::new(Arc::clone(&store));
        let stride = n / POISON;
        let jobs: Vec<Thumbnail> = (0..n)
            .map(|image| Thumbnail {
                image,
                poison: image % stride == stride / 2,
            })
            .collect();
        for chunk in jobs.chunks(500) {
            producer.enqueue_many(chunk).await?;
        }
        anyhow::Ok(())
    })?;
    // Depth by state, sampled every 50 ms on its own thread.
    let sampling = Arc::new(AtomicU32::new(1));
    let sampler = {
        let (store, sampling) = (Arc::clone(&store), Arc::clone(&sampling));
        std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .ok()?;
            let mut points: Vec<(f64, [u64; 4])> = Vec::new();
            while sampling.load(Ordering::Relaxed) == 1 {
                if let Ok(counts) = rt.block_on(store.counts()) {
                    let c = counts.get("thumbnails").copied().unwrap_or_default();
                    points.push((
                        start.elapsed().as_secs_f64() * 1e3,
                        [c.available + c.scheduled, c.running, c.retrying, c.dead],
                    ));
                }
                std::thread::sleep(Duration::from_millis(50));
            }
            Some(points)
        })
    };
    // Worker "process" 1: its own runtime, dropped mid-run like a killed process.
    let crashed_rt = runtime()?;
    let first =
        crashed_rt.block_on(async { thumbnail_pool(&store, &observed).map(WorkerPool::start) })?;
    let crash_at = n / 2;
    while store.stats().completed < crash_at && start.elapsed() < Duration::from_secs(120) {
        bar.set_position(store.stats().completed);
        std::thread::sleep(Duration::from_millis(5));
    }
    std::mem::forget(first); // no graceful shutdown: the "process" just dies
    crashed_rt.shutdown_background();
    let crashed_at = start.elapsed();
    std::thread::sleep(Duration::from_millis(50)); // let its last poll finish
    // Leases the dead worker still holds: nothing else can be running now.
    let held = rt
        .block_on(store.counts())?
        .get("thumbnails")
        .map_or(0, |q| q.running);
    // Worker 2 takes over; the crashed worker's leases expire after LEASE.
    let second = rt.block_on(async { thumbnail_pool(&store, &observed).map(WorkerPool::start) })?;
    let unfinished = |store: &RedbStore| {
        rt.block_on(store.counts())
            .map(|c| c.get("thumbnails").map_or(0, |q| q.unfinished()))
    };
    while unfinished(&store)? > 0 && start.elapsed() < Duration::from_secs(300) {
        bar.set_position(store.stats().completed);
        std::thread::sleep(Duration::from_millis(10));
    }
    let elapsed = start.elapsed();
    let shutdown = rt.block_on(second.shutdown(Duration::from_secs(5)));
    bar.finish_and_clear();
    sampling.store(0, Ordering::Relaxed);
    let points = sampler
        .join()
        .map_err(|_| anyhow::anyhow!("sampler panicked"))?
        .unwrap_or_default();

    let stats = store.stats();
    let counts = rt.block_on(store.counts())?;
    let q = counts.get("thumbnails").copied().unwrap_or_default();
    let succeeded_once = observed
        .succeeded
        .iter()
        .filter(|c| c.load(Ordering::Relaxed) >= 1)
        .count() as u64;
    let ran_twice: u64 = observed
        .succeeded
        .iter()
        .map(|c| u64::from(c.load(Ordering::Relaxed).saturating_sub(1)))
        .sum();
    let lost = n - stats.succeeded_total - q.dead;
    report.summary.push(SummaryRow::from_histogram(
        format!("{n} thumbnails, 64 concurrent, crash mid-run (enqueue → start)"),
        "jobs/s",
        stats.succeeded_total,
        elapsed,
        &observed.latency.lock(),
    ));
    report.check(
        format!("{n} enqueued = succeeded + dead, 0 lost"),
        lost == 0 && q.unfinished() == 0,
        format!(
            "{n} enqueued = {} succeeded + {} dead; {} unfinished",
            stats.succeeded_total,
            q.dead,
            q.unfinished()
        ),
    );
    report.check(
        "the 10 poison jobs are dead-lettered, nothing else",
        q.dead == POISON && succeeded_once == n - POISON,
        format!("{} dead, {succeeded_once} images made", q.dead),
    );
    let dead = rt.block_on(store.list(keel_jobs::ListFilter {
        state: Some(keel_jobs::JobState::Dead),
        limit: 100,
        ..keel_jobs::ListFilter::default()
    }))?;
    // One entry per attempt (1, 2, 3): the handler's error, or a lease that expired when
    // the crash took the worker (that attempt counts too).
    let histories_ok = dead.iter().all(|j| {
        j.errors.iter().map(|e| e.attempt).collect::<Vec<_>>() == [1, 2, 3]
            && j.errors.iter().all(|e| {
                e.message.contains("colour profile")
                    || e.kind == keel_jobs::FailureKind::LeaseExpired
            })
    });
    let crash_entries = dead
        .iter()
        .flat_map(|j| &j.errors)
        .filter(|e| e.kind == keel_jobs::FailureKind::LeaseExpired)
        .count();
    report.check(
        "dead jobs keep their error history (attempts 1, 2, 3)",
        histories_ok && dead.len() as u64 == POISON,
        format!(
            "{} dead jobs, 3 entries each ({crash_entries} of them \"lease expired\" from the crash)",
            dead.len()
        ),
    );
    report.check(
        "leases recovered after the crash",
        held >= 1 && stats.lease_recoveries == held,
        format!(
            "the worker died at {:.1} s holding {held} leases; {} were recovered after {LEASE:?} and re-run",
            crashed_at.as_secs_f64(),
            stats.lease_recoveries
        ),
    );
    report.check(
        "every re-run is explained by a recovered lease",
        ran_twice <= stats.lease_recoveries,
        format!(
            "{ran_twice} images made twice (handler finished, ack lost in the crash) ≤ {} recovered leases",
            stats.lease_recoveries
        ),
    );
    let mut table = Table::new(
        "Thumbnail run",
        &[
            "enqueued",
            "succeeded",
            "dead",
            "retries",
            "lease recoveries",
            "group commits",
            "changes / commit",
            "released at shutdown",
        ],
    );
    table.row(vec![
        n.to_string(),
        stats.succeeded_total.to_string(),
        q.dead.to_string(),
        stats.retried.to_string(),
        stats.lease_recoveries.to_string(),
        stats.commits.to_string(),
        format!(
            "{:.1}",
            stats.committed_changes as f64 / stats.commits.max(1) as f64
        ),
        shutdown.released.to_string(),
    ]);
    report.tables.push(table);
    let names = ["waiting", "running", "retrying", "dead"];
    let series: Vec<Series> = names
        .iter()
        .enumerate()
        .map(|(i, name)| {
            Series::new(
                *name,
                points.iter().map(|(t, v)| (*t, v[i] as f64)).collect(),
            )
        })
        .collect();
    report.charts.push(Chart::new(
        "Jobs by state over time",
        format!(
            "Sampled every 50 ms. The worker crashed at {:.1} s: running drops to zero while its \
             leases are still held, then the jobs come back when the leases expire ({LEASE:?}) and \
             the new worker drains the queue. Dead grows as the poison jobs use up their 3 attempts.",
            crashed_at.as_secs_f64()
        ),
        line_chart("Thumbnail queue by state", "time (ms)", "jobs", &series)?,
    ));
    Ok(())
}

#[derive(Serialize, Deserialize)]
struct Reminder {
    due_ms: u64,
}

impl Job for Reminder {
    const KIND: &'static str = "reminder";
    fn options() -> JobOptions {
        JobOptions {
            queue: "reminders".into(),
            ..JobOptions::default()
        }
    }
}

fn scheduling(tour: &Tour, shared: &mut Shared, report: &mut SystemReport) -> anyhow::Result<()> {
    let delayed = tour.size(200u64, 1_000);
    let store = Arc::new(
        RedbStore::builder()
            .path(shared.dir.join("scheduling.redb"))
            .build()?,
    );
    let rt = runtime()?;
    let early = Arc::new(AtomicU64::new(0));
    let ran = Arc::new(AtomicU64::new(0));
    let lateness = Arc::new(Mutex::new(latency_histogram()));
    let (e2, r2, l2) = (Arc::clone(&early), Arc::clone(&ran), Arc::clone(&lateness));
    let cron_runs = Arc::new(Mutex::new(Vec::<u64>::new()));
    let c2 = Arc::clone(&cron_runs);
    let cron_seconds = tour.size(3u64, 5);
    let (fired, wall, ticks) = rt.block_on(async {
        // One enqueue_many (one commit); each job's delay is from the store's now.
        let now = store.now();
        let jobs = (0..delayed)
            .map(|i| {
                let delay = Duration::from_millis(i * 997 % 1_500);
                let due = now.saturating_add(delay);
                keel_jobs::NewJob::from_job(&Reminder {
                    due_ms: due.as_millis(),
                })
                .map(|j| j.with_delay(delay))
            })
            .collect::<Result<Vec<_>, _>>()?;
        store.enqueue_many(jobs).await?;
        let pool = WorkerPool::builder(Arc::clone(&store))
            .queue("reminders", 16)
            .queue("cron", 2)
            .poll_interval(Duration::from_millis(5))
            .handler(move |job: Reminder, _ctx: JobContext| {
                let (e2, r2, l2) = (Arc::clone(&e2), Arc::clone(&r2), Arc::clone(&l2));
                async move {
                    let now = SystemClock.now();
                    if now < Timestamp(job.due_ms) {
                        e2.fetch_add(1, Ordering::Relaxed);
                    }
                    let late = now.saturating_since(Timestamp(job.due_ms));
                    let _ = l2.lock().record((late.as_nanos() as u64).max(1));
                    r2.fetch_add(1, Ordering::Relaxed);
                    Ok(())
                }
            })
            .handler(move |_: CronReport, ctx: JobContext| {
                let c2 = Arc::clone(&c2);
                async move {
                    c2.lock().push(ctx.id().0);
                    Ok(())
                }
            })
            .build()?
            .start();
        // Three schedulers (as three processes would) on one schedule: every second.
        let started = Instant::now();
        let first_second = store.now().as_millis() / 1_000;
        let schedulers: Vec<_> = (0..3)
            .map(|_| {
                Periodic::builder(Arc::clone(&store))
                    .schedule("report", "* * * * * *", &CronReport)
                    .build()
                    .map(|p| p.start(Duration::from_millis(50)))
            })
            .collect::<Result<_, _>>()?;
        tokio::time::sleep(Duration::from_secs(cron_seconds) + Duration::from_millis(100)).await;
        drop(schedulers);
        // Whole-second ticks strictly after the schedulers started, up to now.
        let ticks = store.now().as_millis() / 1_000 - first_second;
        let wall = started.elapsed();
        let fired = store.stats().enqueued - delayed;
        let deadline = Instant::now() + Duration::from_secs(30);
        while (ran.load(Ordering::Relaxed) < delayed || (cron_runs.lock().len() as u64) < fired)
            && Instant::now() < deadline
        {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        pool.shutdown(Duration::from_secs(5)).await;
        anyhow::Ok((fired, wall, ticks))
    })?;
    let early = early.load(Ordering::Relaxed);
    let ran = ran.load(Ordering::Relaxed);
    report.check(
        "delayed jobs: 0 ran early",
        early == 0 && ran == delayed,
        format!("{ran} of {delayed} delayed jobs ran, {early} before their time"),
    );
    let lateness = lateness.lock();
    report.summary.push(SummaryRow::from_histogram(
        format!("{delayed} delayed jobs over 1.5 s (due → start lateness)"),
        "jobs/s",
        ran,
        Duration::from_millis(1_500),
        &lateness,
    ));
    let runs = cron_runs.lock().clone();
    // At most one job per tick (never 3); the tick that passed while the schedulers were
    // being stopped may be missing.
    report.check(
        "cron: 3 schedulers, one job per tick",
        fired <= ticks && fired + 1 >= ticks && runs.len() as u64 == fired,
        format!(
            "{ticks} ticks of a once-a-second schedule in {:.1} s with 3 schedulers: {fired} jobs enqueued, {} run",
            wall.as_secs_f64(),
            runs.len()
        ),
    );
    Ok(())
}

#[derive(Serialize, Deserialize)]
struct CronReport;

impl Job for CronReport {
    const KIND: &'static str = "cron_report";
    fn options() -> JobOptions {
        JobOptions {
            queue: "cron".into(),
            ..JobOptions::default()
        }
    }
}

#[derive(Serialize, Deserialize)]
struct Email {
    n: u64,
}

impl Job for Email {
    const KIND: &'static str = "email";
    fn options() -> JobOptions {
        JobOptions {
            queue: "emails".into(),
            ..JobOptions::default()
        }
    }
}

fn rate_limited(tour: &Tour, shared: &mut Shared, report: &mut SystemReport) -> anyhow::Result<()> {
    const RATE: u64 = 50;
    const BURST: u64 = 5;
    let n = tour.size(100u64, 200);
    let store = Arc::new(
        RedbStore::builder()
            .path(shared.dir.join("emails.redb"))
            .build()?,
    );
    let rt = runtime()?;
    let starts = Arc::new(Mutex::new(Vec::<Instant>::new()));
    let s2 = Arc::clone(&starts);
    let begin = Instant::now();
    let opened = begin; // no admission can precede this
    rt.block_on(async {
        Producer::new(Arc::clone(&store))
            .enqueue_many(&(0..n).map(|n| Email { n }).collect::<Vec<_>>())
            .await?;
        let pool = WorkerPool::builder(Arc::clone(&store))
            .queue("emails", 16)
            .rate_limit(
                "emails",
                Quota::per_second(RATE as u32)?.with_burst(BURST as u32)?,
            )
            .poll_interval(Duration::from_millis(5))
            .handler(move |job: Email, _| {
                s2.lock().push(Instant::now());
                async move {
                    let _ = job.n;
                    Ok(())
                }
            })
            .build()?
            .start();
        let deadline = Instant::now() + Duration::from_secs(60);
        while store.stats().completed < n && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        pool.shutdown(Duration::from_secs(5)).await;
        anyhow::Ok(())
    })?;
    let elapsed = begin.elapsed();
    let mut starts = starts.lock().clone();
    starts.sort();
    // The most starts in any 1-second window.
    let mut max_in_window = 0;
    let mut j = 0;
    for i in 0..starts.len() {
        while starts[i] - starts[j] >= Duration::from_secs(1) {
            j += 1;
        }
        max_in_window = max_in_window.max(i - j + 1);
    }
    // The limiter admits at most burst + rate·t jobs in the first t after the queue opened
    // (a start can lag its admission, never precede it), so the i-th start must satisfy
    // i ≤ burst + rate·(start_i − opened) + 1.
    let over = starts
        .iter()
        .enumerate()
        .filter(|(i, s)| {
            let t = s.saturating_duration_since(opened).as_secs_f64();
            (*i as f64 + 1.0) > BURST as f64 + RATE as f64 * t + 1.0
        })
        .count();
    report.check(
        "rate-limited queue never above its limit",
        over == 0 && starts.len() as u64 == n,
        format!(
            "{} emails at {RATE}/s (burst {BURST}): {over} starts above burst + rate·t; at most {max_in_window} in any 1 s window",
            starts.len()
        ),
    );
    let mut gaps = latency_histogram();
    for w in starts.windows(2) {
        let _ = gaps.record(((w[1] - w[0]).as_nanos() as u64).max(1));
    }
    report.summary.push(SummaryRow::from_histogram(
        format!("rate-limited queue, {RATE}/s burst {BURST} (gap between starts)"),
        "jobs/s",
        starts.len() as u64,
        elapsed,
        &gaps,
    ));
    Ok(())
}

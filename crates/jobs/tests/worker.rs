//! Worker pool behaviour on the in-memory store, with tokio's paused clock driving both
//! the pool's timers and (through `TokioClock`) the store's: no test waits in real time.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use keel_jobs::{
    BuildError, Clock, FailureKind, HandlerError, Job, JobContext, JobOptions, JobState,
    ListFilter, MemoryStore, NewJob, Producer, Status, Store, Timestamp, WorkerPool,
};
use serde::{Deserialize, Serialize};

/// Store time that follows tokio's (paused, auto-advancing) clock.
#[derive(Debug, Clone)]
struct TokioClock {
    base: tokio::time::Instant,
}

impl TokioClock {
    fn new() -> Self {
        Self {
            base: tokio::time::Instant::now(),
        }
    }
}

impl Clock for TokioClock {
    fn now(&self) -> Timestamp {
        Timestamp(1_700_000_000_000 + self.base.elapsed().as_millis() as u64)
    }
}

#[derive(Serialize, Deserialize)]
struct Work {
    n: u64,
    sleep_ms: u64,
    fail_times: u32,
}

impl Job for Work {
    const KIND: &'static str = "work";
    fn options() -> JobOptions {
        JobOptions {
            max_attempts: 3,
            backoff: keel_jobs::Backoff {
                base: Duration::from_millis(100),
                max: Duration::from_secs(1),
                jitter: true,
            },
            ..JobOptions::default()
        }
    }
}

#[derive(Serialize, Deserialize)]
struct Crash;

impl Job for Crash {
    const KIND: &'static str = "crash";
    fn options() -> JobOptions {
        JobOptions {
            max_attempts: 2,
            ..JobOptions::default()
        }
    }
}

fn store() -> Arc<MemoryStore> {
    Arc::new(
        MemoryStore::builder()
            .clock(TokioClock::new())
            .keep_completed(true)
            .build(),
    )
}

async fn wait_until(what: &str, mut done: impl FnMut() -> bool) {
    for _ in 0..100_000 {
        if done() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("timed out waiting for {what}");
}

async fn all_finished(store: &MemoryStore) -> bool {
    store
        .counts()
        .await
        .unwrap()
        .values()
        .all(|c| c.unfinished() == 0)
}

#[tokio::test(start_paused = true)]
async fn jobs_run_with_context_and_concurrency_never_exceeds_the_limit() {
    let store = store();
    let producer = Producer::new(Arc::clone(&store));
    producer
        .enqueue_many(
            &(0..40)
                .map(|n| Work {
                    n,
                    sleep_ms: 50,
                    fail_times: 0,
                })
                .collect::<Vec<_>>(),
        )
        .await
        .unwrap();
    let running = Arc::new(AtomicUsize::new(0));
    let peak = Arc::new(AtomicUsize::new(0));
    let (r, p) = (Arc::clone(&running), Arc::clone(&peak));
    let pool = WorkerPool::builder(Arc::clone(&store))
        .queue("default", 3)
        .handler(move |job: Work, ctx: JobContext| {
            let (r, p) = (Arc::clone(&r), Arc::clone(&p));
            async move {
                assert_eq!(
                    (ctx.attempt(), ctx.kind(), ctx.queue()),
                    (1, "work", "default")
                );
                let now = r.fetch_add(1, Ordering::SeqCst) + 1;
                p.fetch_max(now, Ordering::SeqCst);
                tokio::time::sleep(Duration::from_millis(job.sleep_ms)).await;
                r.fetch_sub(1, Ordering::SeqCst);
                Ok(())
            }
        })
        .build()
        .unwrap()
        .start();
    wait_until("40 jobs", || store.stats().completed == 40).await;
    let report = pool.shutdown(Duration::from_secs(1)).await;
    assert_eq!(
        peak.load(Ordering::SeqCst),
        3,
        "ran 3 at a time, never more"
    );
    assert_eq!(
        (
            report.stats.succeeded,
            report.stats.fetched,
            report.released
        ),
        (40, 40, 0)
    );
}

#[tokio::test(start_paused = true)]
async fn failures_retry_with_backoff_then_dead_letter() {
    let store = store();
    let producer = Producer::new(Arc::clone(&store));
    let ok = producer
        .enqueue(&Work {
            n: 1,
            sleep_ms: 0,
            fail_times: 2,
        })
        .await
        .unwrap()
        .id;
    let dead = producer
        .enqueue(&Work {
            n: 2,
            sleep_ms: 0,
            fail_times: 99,
        })
        .await
        .unwrap()
        .id;
    let pool = WorkerPool::builder(Arc::clone(&store))
        .queue("default", 2)
        .seed(42)
        .poll_interval(Duration::from_millis(10))
        .handler(|job: Work, ctx: JobContext| async move {
            if ctx.attempt() <= job.fail_times {
                Err(HandlerError::new(format!(
                    "attempt {} failed",
                    ctx.attempt()
                )))
            } else {
                Ok(())
            }
        })
        .build()
        .unwrap()
        .start();
    wait_until("both finished", || {
        let s = store.stats();
        s.completed + s.dead == 2
    })
    .await;
    let report = pool.shutdown(Duration::from_secs(1)).await;
    let ok = store.get(ok).await.unwrap().unwrap();
    assert_eq!((ok.attempt, ok.errors.len()), (3, 2));
    assert!(matches!(ok.status, Status::Succeeded { .. }));
    // Backoff: the retry ran no earlier than the failure time, and within its window
    // (100 ms after the 1st failure, 200 ms after the 2nd), measured on the store clock.
    let dead = store.get(dead).await.unwrap().unwrap();
    assert!(matches!(dead.status, Status::Dead { .. }));
    assert_eq!(
        dead.errors.iter().map(|e| e.attempt).collect::<Vec<_>>(),
        vec![1, 2, 3]
    );
    assert_eq!(dead.errors[2].message, "attempt 3 failed");
    let gaps: Vec<u64> = dead
        .errors
        .windows(2)
        .map(|w| w[1].at.0 - w[0].at.0)
        .collect();
    assert!(
        gaps[0] <= 100 + 20 && gaps[1] <= 200 + 20,
        "gaps {gaps:?} exceed the backoff windows"
    );
    assert_eq!(
        (report.stats.retried, report.stats.dead, report.stats.failed),
        (4, 1, 5)
    );
}

#[tokio::test(start_paused = true)]
async fn unknown_kind_and_bad_payload_are_dead_lettered_once_with_a_clear_error() {
    let store = store();
    let unknown = store
        .enqueue(NewJob::new(
            "default",
            "nobody_handles_me",
            serde_json::json!({}),
        ))
        .await
        .unwrap()
        .id;
    let bad = store
        .enqueue(
            NewJob::new("default", "work", serde_json::json!({"n": "not a number"}))
                .with_max_attempts(5),
        )
        .await
        .unwrap()
        .id;
    let pool = WorkerPool::builder(Arc::clone(&store))
        .queue("default", 1)
        .handler(|_: Work, _| async { Ok(()) })
        .build()
        .unwrap()
        .start();
    wait_until("both dead", || store.stats().dead == 2).await;
    let report = pool.shutdown(Duration::from_secs(1)).await;
    let unknown = store.get(unknown).await.unwrap().unwrap();
    assert_eq!(
        (unknown.attempt, unknown.errors[0].kind),
        (1, FailureKind::UnknownKind),
        "not retried"
    );
    assert!(unknown.errors[0].message.contains("nobody_handles_me"));
    let bad = store.get(bad).await.unwrap().unwrap();
    assert_eq!(
        (bad.attempt, bad.errors[0].kind),
        (1, FailureKind::BadPayload)
    );
    assert!(
        bad.errors[0].message.contains("does not deserialize"),
        "{}",
        bad.errors[0].message
    );
    assert_eq!(
        (
            report.stats.unknown_kind,
            report.stats.bad_payload,
            report.stats.retried
        ),
        (1, 1, 0)
    );
}

#[tokio::test(start_paused = true)]
async fn a_panicking_handler_is_contained_and_recorded_and_the_pool_keeps_working() {
    let store = store();
    let crash = store
        .enqueue(NewJob::from_job(&Crash).unwrap())
        .await
        .unwrap()
        .id;
    Producer::new(Arc::clone(&store))
        .enqueue(&Work {
            n: 1,
            sleep_ms: 0,
            fail_times: 0,
        })
        .await
        .unwrap();
    let pool = WorkerPool::builder(Arc::clone(&store))
        .queue("default", 1)
        .seed(1)
        .handler(|_: Crash, _| async { panic!("handler exploded") })
        .blocking_handler(|_: Work, _| Ok(()))
        .build()
        .unwrap()
        .start();
    wait_until("settled", || {
        let s = store.stats();
        s.completed == 1 && s.dead == 1
    })
    .await;
    let report = pool.shutdown(Duration::from_secs(1)).await;
    let crash = store.get(crash).await.unwrap().unwrap();
    assert_eq!(crash.errors.len(), 2);
    assert!(
        crash
            .errors
            .iter()
            .all(|e| e.kind == FailureKind::Panic && e.message.contains("handler exploded"))
    );
    assert_eq!(report.stats.panicked, 2);
}

#[tokio::test(start_paused = true)]
async fn blocking_handler_panics_are_contained_too() {
    let store = store();
    store
        .enqueue(NewJob::from_job(&Crash).unwrap())
        .await
        .unwrap();
    let pool = WorkerPool::builder(Arc::clone(&store))
        .queue("default", 1)
        .blocking_handler(|_: Crash, _| panic!("blocking boom"))
        .build()
        .unwrap()
        .start();
    wait_until("dead", || store.stats().dead == 1).await;
    let report = pool.shutdown(Duration::from_secs(1)).await;
    assert_eq!(report.stats.panicked, 2);
}

/// A handler closure that panics *before* returning its future (e.g. an `unwrap` on a
/// field in the closure body) used to unwind the job's supervisor task: the panic was
/// not recorded, the job sat `Running` until its lease expired, and its entry in the
/// pool's in-flight map leaked (so `running()` never went back to 0).
#[tokio::test(start_paused = true)]
async fn a_handler_that_panics_before_returning_its_future_is_recorded_as_a_panic() {
    let store = store();
    let id = store
        .enqueue(NewJob::from_job(&Crash).unwrap())
        .await
        .unwrap()
        .id;
    #[allow(unreachable_code)]
    let pool = WorkerPool::builder(Arc::clone(&store))
        .queue("default", 1)
        .handler(
            |_: Crash, _| -> std::future::Ready<Result<(), HandlerError>> {
                panic!("sync part exploded")
            },
        )
        .build()
        .unwrap()
        .start();
    wait_until("dead", || store.stats().dead == 1).await;
    let job = store.get(id).await.unwrap().unwrap();
    assert_eq!(job.errors.len(), 2);
    assert!(
        job.errors
            .iter()
            .all(|e| e.kind == FailureKind::Panic && e.message.contains("sync part exploded"))
    );
    wait_until("in-flight map empty", || pool.running() == 0).await;
    let report = pool.shutdown(Duration::from_secs(1)).await;
    assert_eq!(report.stats.panicked, 2);
    assert_eq!(report.released, 0);
}

#[tokio::test(start_paused = true)]
async fn a_run_past_its_timeout_fails_with_timeout() {
    let store = store();
    let id = store
        .enqueue(
            NewJob::from_job(&Work {
                n: 1,
                sleep_ms: 10_000,
                fail_times: 0,
            })
            .unwrap()
            .with_timeout(Duration::from_secs(1))
            .with_max_attempts(1),
        )
        .await
        .unwrap()
        .id;
    let pool = WorkerPool::builder(Arc::clone(&store))
        .queue("default", 1)
        .handler(|job: Work, _| async move {
            tokio::time::sleep(Duration::from_millis(job.sleep_ms)).await;
            Ok(())
        })
        .build()
        .unwrap()
        .start();
    wait_until("dead", || store.stats().dead == 1).await;
    pool.shutdown(Duration::from_secs(1)).await;
    let job = store.get(id).await.unwrap().unwrap();
    assert_eq!(job.errors[0].kind, FailureKind::Timeout);
    assert_eq!(store.stats().completed, 0, "the timed-out run never acked");
}

#[tokio::test(start_paused = true)]
async fn heartbeats_keep_a_long_job_leased_past_its_lease() {
    let store = store();
    Producer::new(Arc::clone(&store))
        .enqueue(&Work {
            n: 1,
            sleep_ms: 20_000,
            fail_times: 0,
        })
        .await
        .unwrap();
    let pool = WorkerPool::builder(Arc::clone(&store))
        .queue("default", 1)
        .lease(Duration::from_secs(2))
        .heartbeat(Duration::from_millis(500))
        .handler(|job: Work, _| async move {
            tokio::time::sleep(Duration::from_millis(job.sleep_ms)).await;
            Ok(())
        })
        .build()
        .unwrap()
        .start();
    wait_until("done", || store.stats().completed == 1).await;
    let report = pool.shutdown(Duration::from_secs(1)).await;
    assert_eq!(
        store.stats().lease_recoveries,
        0,
        "20 s job on a 2 s lease was never lost"
    );
    assert_eq!(report.stats.lost_leases, 0);
}

/// A blocking run cannot be stopped: shutdown used to release its lease anyway, so
/// another worker could start the job while this one was still executing it — two runs
/// at once with no expired lease. Shutdown must leave such a lease to run out instead.
///
/// Real time (tokio does not auto-advance a paused clock while a blocking task runs); the
/// only wait is the 200 ms shutdown deadline.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_does_not_release_a_blocking_run_that_is_still_executing() {
    let store = store();
    let id = Producer::new(Arc::clone(&store))
        .enqueue(&Work {
            n: 1,
            sleep_ms: 0,
            fail_times: 0,
        })
        .await
        .unwrap()
        .id;
    let (started_tx, started_rx) = std::sync::mpsc::channel::<()>();
    let (finish_tx, finish_rx) = std::sync::mpsc::channel::<()>();
    let finish_rx = parking_lot::Mutex::new(finish_rx);
    let started_tx = parking_lot::Mutex::new(started_tx);
    let pool = WorkerPool::builder(Arc::clone(&store))
        .queue("default", 1)
        .blocking_handler(move |_: Work, _| {
            let _ = started_tx.lock().send(());
            // Bounded: the test releases it right after shutdown.
            let _ = finish_rx
                .lock()
                .recv_timeout(std::time::Duration::from_secs(30));
            Ok(())
        })
        .build()
        .unwrap()
        .start();
    tokio::task::spawn_blocking(move || started_rx.recv_timeout(Duration::from_secs(30)))
        .await
        .unwrap()
        .expect("handler started");
    let report = pool.shutdown(Duration::from_millis(200)).await;
    let job = store.get(id).await.unwrap().unwrap();
    let _ = finish_tx.send(());
    assert_eq!(report.released, 0);
    assert_eq!(job.state(store.now()), JobState::Running);
}

/// An abort of an async handler only takes effect at its next await: one stuck in
/// synchronous work (a sync client call inside `async`) keeps running. Shutdown used to
/// release its lease right after requesting the abort, so another worker could start the
/// job while it still ran.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_does_not_release_an_async_run_that_has_not_stopped() {
    let store = store();
    let id = Producer::new(Arc::clone(&store))
        .enqueue(&Work {
            n: 1,
            sleep_ms: 0,
            fail_times: 0,
        })
        .await
        .unwrap()
        .id;
    let (started_tx, started_rx) = std::sync::mpsc::channel::<()>();
    let (finish_tx, finish_rx) = std::sync::mpsc::channel::<()>();
    let finish_rx = Arc::new(parking_lot::Mutex::new(finish_rx));
    let started_tx = parking_lot::Mutex::new(started_tx);
    let pool = WorkerPool::builder(Arc::clone(&store))
        .queue("default", 1)
        .handler(move |_: Work, _| {
            let _ = started_tx.lock().send(());
            let finish_rx = Arc::clone(&finish_rx);
            async move {
                // Blocks this runtime thread; bounded, the test ends it after shutdown.
                let _ = finish_rx.lock().recv_timeout(Duration::from_secs(30));
                Ok(())
            }
        })
        .build()
        .unwrap()
        .start();
    tokio::task::spawn_blocking(move || started_rx.recv_timeout(Duration::from_secs(30)))
        .await
        .unwrap()
        .expect("handler started");
    let report = pool.shutdown(Duration::from_millis(200)).await;
    let job = store.get(id).await.unwrap().unwrap();
    let _ = finish_tx.send(());
    assert_eq!(report.released, 0);
    assert_eq!(job.state(store.now()), JobState::Running);
}

#[tokio::test(start_paused = true)]
async fn graceful_shutdown_finishes_short_jobs_and_releases_long_ones_for_another_worker() {
    let store = store();
    let producer = Producer::new(Arc::clone(&store));
    producer
        .enqueue(&Work {
            n: 1,
            sleep_ms: 100,
            fail_times: 0,
        })
        .await
        .unwrap();
    let long = producer
        .enqueue(&Work {
            n: 2,
            sleep_ms: 60_000,
            fail_times: 0,
        })
        .await
        .unwrap()
        .id;
    let started = Arc::new(AtomicUsize::new(0));
    let s2 = Arc::clone(&started);
    let pool = WorkerPool::builder(Arc::clone(&store))
        .queue("default", 2)
        .handler(move |job: Work, _| {
            s2.fetch_add(1, Ordering::SeqCst);
            async move {
                tokio::time::sleep(Duration::from_millis(job.sleep_ms)).await;
                Ok(())
            }
        })
        .build()
        .unwrap()
        .start();
    wait_until("both started", || started.load(Ordering::SeqCst) == 2).await;
    let report = pool.shutdown(Duration::from_secs(5)).await;
    assert_eq!((report.stats.succeeded, report.released), (1, 1));
    // Released at once: available now, attempt not counted, no lease to wait out.
    let job = store.get(long).await.unwrap().unwrap();
    assert_eq!(
        (job.state(store.now()), job.attempt),
        (JobState::Available, 0)
    );
    let next = WorkerPool::builder(Arc::clone(&store))
        .queue("default", 1)
        .handler(|_: Work, ctx: JobContext| async move {
            assert_eq!(ctx.attempt(), 1);
            Ok(())
        })
        .build()
        .unwrap()
        .start();
    wait_until("taken over", || store.stats().completed == 2).await;
    next.shutdown(Duration::from_secs(1)).await;
    assert!(all_finished(&store).await);
}

#[tokio::test(start_paused = true)]
async fn shutdown_with_nothing_running_returns_at_once() {
    let store = store();
    let pool = WorkerPool::builder(Arc::clone(&store))
        .queue("default", 4)
        .build()
        .unwrap()
        .start();
    let before = tokio::time::Instant::now();
    let report = pool.shutdown(Duration::from_secs(3600)).await;
    assert_eq!(report.released, 0);
    assert!(before.elapsed() < Duration::from_secs(1));
    let _ = store.list(ListFilter::default()).await.unwrap();
}

#[test]
fn bad_pool_settings_are_typed_errors() {
    let store = store();
    let b = || WorkerPool::builder(Arc::clone(&store));
    assert!(matches!(b().build(), Err(BuildError::NoQueues)));
    assert!(matches!(b().queue("q", 0).build(), Err(BuildError::ZeroConcurrency(q)) if q == "q"));
    assert!(matches!(
        b().queue("q", 1).lease(Duration::ZERO).build(),
        Err(BuildError::ZeroDuration("lease"))
    ));
    assert!(matches!(
        b().queue("q", 1).lease(Duration::MAX).build(),
        Err(BuildError::DurationTooLong("lease"))
    ));
    assert!(matches!(
        b().queue("q", 1)
            .lease(Duration::from_secs(10))
            .heartbeat(Duration::from_secs(6))
            .build(),
        Err(BuildError::HeartbeatTooSlow)
    ));
    assert!(matches!(
        b().queue("q", 1).handler(|_: Work, _| async { Ok(()) }).blocking_handler(|_: Work, _| Ok(())).build(),
        Err(BuildError::DuplicateHandler(k)) if k == "work"
    ));
}

#[tokio::test(start_paused = true)]
async fn a_rate_limited_queue_never_starts_more_than_its_quota() {
    use keel_jobs::{Quota, quanta};
    let store = store();
    let producer = Producer::new(Arc::clone(&store));
    producer
        .enqueue_many(
            &(0..60)
                .map(|n| Work {
                    n,
                    sleep_ms: 0,
                    fail_times: 0,
                })
                .collect::<Vec<_>>(),
        )
        .await
        .unwrap();
    // The limiter's clock follows tokio's paused clock in 1 ms steps.
    let (clock, mock) = quanta::Clock::mock();
    let bridge = tokio::spawn(async move {
        loop {
            tokio::time::sleep(Duration::from_millis(1)).await;
            mock.increment(Duration::from_millis(1));
        }
    });
    let starts = Arc::new(parking_lot::Mutex::new(Vec::<u64>::new()));
    let (s2, c2) = (Arc::clone(&starts), clock.clone());
    let pool = WorkerPool::builder(Arc::clone(&store))
        .queue("default", 8)
        .rate_limit(
            "default",
            Quota::per_second(20).unwrap().with_burst(5).unwrap(),
        )
        .clock(clock.clone())
        .poll_interval(Duration::from_millis(5))
        .handler(move |_: Work, _| {
            s2.lock().push(c2.delta_as_nanos(0, c2.raw()) / 1_000_000);
            async { Ok(()) }
        })
        .build()
        .unwrap()
        .start();
    wait_until("60 jobs", || store.stats().completed == 60).await;
    pool.shutdown(Duration::from_secs(1)).await;
    bridge.abort();
    let starts = starts.lock().clone();
    assert_eq!(starts.len(), 60);
    // GCRA bound: in any interval of t ms, at most burst + rate·t starts (+1 for the edge).
    for i in 0..starts.len() {
        for j in i..starts.len() {
            let t = starts[j] - starts[i];
            let allowed = 5 + t * 20 / 1000 + 1;
            assert!(
                (j - i + 1) as u64 <= allowed,
                "{} starts in {t} ms",
                j - i + 1
            );
        }
    }
    // And it did not just crawl: 60 jobs at 20/s after a burst of 5 take about 2.75 s.
    let span = starts[59] - starts[0];
    assert!((2_500..=4_000).contains(&span), "span {span} ms");
}

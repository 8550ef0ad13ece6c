//! Postgres-only behaviour, on a private server from keel-testkit (skipped with a printed
//! line when Postgres is not installed, unless `KEEL_REQUIRE_POSTGRES=1`): transactional
//! enqueue, concurrent migrations, LISTEN/NOTIFY wake-ups, global concurrency and rate
//! limits across independent stores (separate pools = separate sessions, as separate
//! processes would be), cron once per tick with 3 schedulers, and the server stopped
//! mid-run.
#![cfg(feature = "postgres")]

use std::collections::BTreeSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::Duration;

use keel_jobs::postgres::tokio_postgres::{self, NoTls};
use keel_jobs::{
    HandlerError, Job, JobContext, JobOptions, MockClock, NewJob, Periodic, PostgresStore,
    QueueLimits, Quota, Store, Timestamp, WorkerPool,
};
use serde_json::json;

#[derive(serde::Serialize, serde::Deserialize)]
struct Numbered {
    n: u64,
}

impl Job for Numbered {
    const KIND: &'static str = "numbered";
    fn options() -> JobOptions {
        JobOptions {
            max_attempts: 100,
            ..JobOptions::default()
        }
    }
}

const T0: Timestamp = Timestamp(1_700_000_000_000);
const LEASE: Duration = Duration::from_secs(30);

fn database(test: &str) -> Option<String> {
    keel_testkit::shared_postgres_database_or_skip(test)
}

async fn store(url: &str, clock: &MockClock) -> Arc<PostgresStore> {
    Arc::new(
        PostgresStore::builder()
            .url(url)
            .clock(clock.clone())
            .build()
            .await
            .expect("open store"),
    )
}

async fn client(url: &str) -> tokio_postgres::Client {
    let (client, conn) = tokio_postgres::connect(url, NoTls).await.expect("connect");
    tokio::spawn(conn);
    client
}

fn job(queue: &str, n: u64) -> NewJob {
    NewJob::new(queue, "test", json!({ "n": n }))
}

async fn bounded<F: std::future::Future>(f: F) -> F::Output {
    tokio::time::timeout(Duration::from_secs(120), f)
        .await
        .expect("finished within its bound")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn enqueue_in_the_callers_transaction_exists_iff_it_commits() {
    let Some(url) = tokio::task::block_in_place(|| database("transactional enqueue")) else {
        return;
    };
    bounded(async {
        let clock = MockClock::new(T0);
        let s = store(&url, &clock).await;
        let mut c = client(&url).await;
        c.batch_execute("CREATE TABLE orders (id int PRIMARY KEY)")
            .await
            .unwrap();

        // Rolled back: neither the order nor its job.
        let txn = c.transaction().await.unwrap();
        txn.execute("INSERT INTO orders VALUES (1)", &[])
            .await
            .unwrap();
        let lost = s.enqueue_in(&txn, job("mail", 1)).await.unwrap();
        assert!(lost.created);
        // Invisible to everyone else before commit.
        assert!(s.get(lost.id).await.unwrap().is_none());
        txn.rollback().await.unwrap();
        assert!(s.get(lost.id).await.unwrap().is_none());
        assert!(s.fetch("mail", 10, LEASE).await.unwrap().is_empty());

        // Committed: both, and the job runs.
        let txn = c.transaction().await.unwrap();
        txn.execute("INSERT INTO orders VALUES (2)", &[])
            .await
            .unwrap();
        let kept = s
            .enqueue_many_in(&txn, vec![job("mail", 2), job("mail", 3)])
            .await
            .unwrap();
        txn.commit().await.unwrap();
        let leased = s.fetch("mail", 10, LEASE).await.unwrap();
        let ids: Vec<_> = leased.iter().map(|l| l.job.id).collect();
        assert_eq!(ids, vec![kept[0].id, kept[1].id]);
        let orders: i64 = c
            .query_one("SELECT count(*) FROM orders", &[])
            .await
            .unwrap()
            .get(0);
        assert_eq!(orders, 1);

        // A unique key inside a transaction sees committed holders.
        let txn = c.transaction().await.unwrap();
        let a = s
            .enqueue_in(&txn, job("mail", 4).with_unique_key("u"))
            .await
            .unwrap();
        let b = s
            .enqueue_in(&txn, job("mail", 5).with_unique_key("u"))
            .await
            .unwrap();
        assert!(a.created && !b.created && a.id == b.id);
        txn.commit().await.unwrap();
        assert!(
            !s.enqueue(job("mail", 6).with_unique_key("u"))
                .await
                .unwrap()
                .created
        );
        // Bad input is refused before touching the transaction.
        let txn = c.transaction().await.unwrap();
        assert!(s.enqueue_in(&txn, job("", 7)).await.is_err());
        txn.commit().await.unwrap();
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_starters_migrate_once() {
    let Some(url) = tokio::task::block_in_place(|| database("concurrent migrations")) else {
        return;
    };
    bounded(async {
        let clock = MockClock::new(T0);
        let mut tasks = Vec::new();
        for _ in 0..6 {
            let (url, clock) = (url.clone(), clock.clone());
            tasks.push(tokio::spawn(async move { store(&url, &clock).await }));
        }
        for t in tasks {
            t.await.unwrap();
        }
        let c = client(&url).await;
        let versions: Vec<i32> = c
            .query("SELECT version FROM keel_jobs_migrations ORDER BY 1", &[])
            .await
            .unwrap()
            .iter()
            .map(|r| r.get(0))
            .collect();
        assert_eq!(versions, vec![1, 2]);
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn notify_wakes_an_idle_worker_of_another_store_before_its_poll_bound() {
    let Some(url) = tokio::task::block_in_place(|| database("listen/notify wake-up")) else {
        return;
    };
    bounded(async {
        let clock = MockClock::new(T0);
        let producer = store(&url, &clock).await;
        let worker = store(&url, &clock).await;
        // Let the listener connect (it wakes everyone once when it does).
        for _ in 0..200 {
            worker.wait_for_work("q", Duration::from_millis(10)).await;
        }
        let waiter = {
            let worker = Arc::clone(&worker);
            tokio::spawn(async move {
                // A 10-minute poll bound: only a notification ends this wait in time.
                worker.wait_for_work("q", Duration::from_secs(600)).await;
                worker.fetch("q", 1, LEASE).await.unwrap()
            })
        };
        tokio::time::sleep(Duration::from_millis(200)).await;
        producer.enqueue(job("q", 1)).await.unwrap();
        let leased = tokio::time::timeout(Duration::from_secs(60), waiter)
            .await
            .expect("woken by NOTIFY, not by the 600 s bound")
            .unwrap();
        assert_eq!(leased.len(), 1);
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn global_concurrency_limit_holds_across_independent_stores() {
    let Some(url) = tokio::task::block_in_place(|| database("global concurrency limit")) else {
        return;
    };
    bounded(async {
        const MAX: usize = 3;
        const JOBS: u64 = 120;
        let clock = MockClock::new(T0);
        let stores = [
            store(&url, &clock).await,
            store(&url, &clock).await,
            store(&url, &clock).await,
        ];
        stores[0]
            .set_queue_limits(
                "limited",
                QueueLimits {
                    max_running: Some(MAX as u32),
                    rate: None,
                },
            )
            .await
            .unwrap();
        assert_eq!(
            stores[1].queue_limits("limited").await.unwrap().max_running,
            Some(MAX as u32)
        );
        stores[0]
            .enqueue_many((0..JOBS).map(|n| job("limited", n)).collect())
            .await
            .unwrap();
        // Each store runs 4 fetch loops asking for 2 jobs at a time: 24 slots wanted, 3 allowed.
        let running = Arc::new(AtomicUsize::new(0));
        let peak = Arc::new(AtomicUsize::new(0));
        let done = Arc::new(AtomicU64::new(0));
        let mut tasks = Vec::new();
        for s in &stores {
            for _ in 0..4 {
                let (s, running, peak, done) = (
                    Arc::clone(s),
                    Arc::clone(&running),
                    Arc::clone(&peak),
                    Arc::clone(&done),
                );
                tasks.push(tokio::spawn(async move {
                    while done.load(Ordering::SeqCst) < JOBS {
                        let leases = s.fetch("limited", 2, LEASE).await.unwrap();
                        if leases.is_empty() {
                            tokio::task::yield_now().await;
                            continue;
                        }
                        // Counted between the fetch (lease taken) and the ack (lease gone).
                        let now = running.fetch_add(leases.len(), Ordering::SeqCst) + leases.len();
                        peak.fetch_max(now, Ordering::SeqCst);
                        // Hold the leases a little so the 12 fetch loops overlap.
                        tokio::time::sleep(Duration::from_millis(10)).await;
                        for l in leases {
                            running.fetch_sub(1, Ordering::SeqCst);
                            s.complete(l.job.id, l.token).await.unwrap();
                            done.fetch_add(1, Ordering::SeqCst);
                        }
                    }
                }));
            }
        }
        for t in tasks {
            t.await.unwrap();
        }
        let peak = peak.load(Ordering::SeqCst);
        println!("global concurrency limit {MAX}: peak {peak} running across 3 stores");
        assert!(peak <= MAX, "peak {peak} > limit {MAX}");
        assert_eq!(done.load(Ordering::SeqCst), JOBS);
        assert!(!stores[0].counts().await.unwrap().contains_key("limited"));
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn global_rate_limit_holds_across_independent_stores() {
    let Some(url) = tokio::task::block_in_place(|| database("global rate limit")) else {
        return;
    };
    bounded(async {
        let clock = MockClock::new(T0);
        let stores = [
            store(&url, &clock).await,
            store(&url, &clock).await,
            store(&url, &clock).await,
        ];
        // 10 starts per second, burst 5.
        let quota = Quota::per_second(10).unwrap().with_burst(5).unwrap();
        stores[2]
            .set_queue_limits(
                "rated",
                QueueLimits {
                    max_running: None,
                    rate: Some(quota),
                },
            )
            .await
            .unwrap();
        stores[0]
            .enqueue_many((0..500).map(|n| job("rated", n)).collect())
            .await
            .unwrap();
        let mut total = 0usize;
        let mut per_step = Vec::new();
        // 40 steps of 100 ms = 4 s of mock time; every store fetches greedily each step.
        for _ in 0..40 {
            let mut step = 0;
            for round in 0..3 {
                let mut tasks = Vec::new();
                for s in &stores {
                    let s = Arc::clone(s);
                    tasks.push(tokio::spawn(async move {
                        let leases = s.fetch("rated", 50, LEASE).await.unwrap();
                        for l in &leases {
                            s.complete(l.job.id, l.token).await.unwrap();
                        }
                        leases.len()
                    }));
                }
                for t in tasks {
                    step += t.await.unwrap();
                }
                let _ = round;
            }
            per_step.push(step);
            total += step;
            clock.advance(Duration::from_millis(100));
        }
        // GCRA bound over any span: burst + rate × elapsed.
        println!(
            "global rate limit 10/s burst 5: {total} starts in 4 s of mock time: {per_step:?}"
        );
        assert!(total <= 5 + 10 * 4, "{total} starts");
        assert!(total >= 40, "the limit admits its rate ({total})");
        assert!(per_step[0] <= 5, "first step is the burst: {per_step:?}");
        for w in per_step.windows(10) {
            let sum: usize = w.iter().sum();
            assert!(sum <= 5 + 10, "1 s window with {sum} starts: {per_step:?}");
        }
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cron_fires_once_per_tick_with_three_schedulers() {
    let Some(url) = tokio::task::block_in_place(|| database("cron with 3 schedulers")) else {
        return;
    };
    bounded(async {
        let clock = MockClock::new(T0);
        let mut schedulers = Vec::new();
        for _ in 0..3 {
            let s = store(&url, &clock).await;
            schedulers.push(
                Periodic::builder(s)
                    .schedule_job(
                        "every-10s",
                        "*/10 * * * * *",
                        NewJob::new("cron", "report", json!(null)),
                    )
                    .build()
                    .unwrap(),
            );
        }
        let mut fired = 0;
        for _ in 0..30 {
            clock.advance(Duration::from_secs(10));
            let mut tasks = Vec::new();
            for mut p in schedulers.drain(..) {
                tasks.push(tokio::spawn(async move {
                    let n = p.tick().await.unwrap();
                    (p, n)
                }));
            }
            for t in tasks {
                let (p, n) = t.await.unwrap();
                fired += n;
                schedulers.push(p);
            }
        }
        assert_eq!(fired, 30, "exactly one job per tick");
        let checker = store(&url, &clock).await;
        let leased = checker.fetch("cron", 1_000, LEASE).await.unwrap();
        assert_eq!(leased.len(), 30);
        let times: BTreeSet<Timestamp> = leased.iter().map(|l| l.job.enqueued_at).collect();
        assert_eq!(times.len(), 30, "one job per tick time");
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_stopped_mid_run_producers_get_errors_workers_resume_nothing_acked_lost() {
    let Some(mut pg) =
        tokio::task::block_in_place(|| keel_testkit::postgres_or_skip("postgres stopped mid-run"))
    else {
        return;
    };
    let url = tokio::task::block_in_place(|| pg.create_database("outage")).unwrap();
    let store = Arc::new(
        PostgresStore::builder()
            .url(&url)
            .timeout(Duration::from_secs(2))
            .build()
            .await
            .unwrap(),
    );
    let ran = Arc::new(parking_lot::Mutex::new(BTreeSet::new()));
    let pool = {
        let ran = Arc::clone(&ran);
        WorkerPool::builder(Arc::clone(&store))
            .queue("default", 8)
            .poll_interval(Duration::from_millis(50))
            .handler(move |job: Numbered, _ctx: JobContext| {
                let ran = Arc::clone(&ran);
                async move {
                    ran.lock().insert(job.n);
                    Ok::<(), HandlerError>(())
                }
            })
            .build()
            .unwrap()
            .start()
    };
    let _ = &pool;
    let mut acked = BTreeSet::new();
    let mut errors = 0u64;
    let mut n = 0u64;
    let mut enqueue_some = async |count: u64, acked: &mut BTreeSet<u64>, errors: &mut u64| {
        for _ in 0..count {
            match store
                .enqueue(NewJob::from_job(&Numbered { n }).unwrap())
                .await
            {
                Ok(_) => {
                    acked.insert(n);
                }
                Err(_) => *errors += 1,
            }
            n += 1;
        }
    };
    bounded(enqueue_some(200, &mut acked, &mut errors)).await;
    assert_eq!(errors, 0);
    tokio::task::block_in_place(|| pg.stop());
    bounded(enqueue_some(20, &mut acked, &mut errors)).await;
    assert_eq!(
        errors, 20,
        "every enqueue during the outage is an error, none silently dropped"
    );
    // The 20 failed enqueues take milliseconds; keep the server down until a worker's
    // poll (every 50 ms) has run into the outage too, so the run always covers "workers
    // see errors, back off and resume" (before, a quick run could restart the server
    // between two polls and fail the `store_errors > 0` check below).
    bounded(async {
        while pool.stats().store_errors == 0 {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await;
    tokio::task::block_in_place(|| pg.start_again()).unwrap();
    bounded(enqueue_some(200, &mut acked, &mut errors)).await;
    // Workers resume: every acknowledged job runs.
    bounded(async {
        loop {
            if acked.iter().all(|n| ran.lock().contains(n)) {
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    })
    .await;
    let report = bounded(pool.shutdown(Duration::from_secs(10))).await;
    println!(
        "postgres outage: {} acked, {errors} enqueue errors during the outage, {} store errors seen by workers, all acked jobs ran",
        acked.len(),
        report.stats.store_errors
    );
    assert_eq!(acked.len(), 400);
    assert!(report.stats.store_errors > 0, "workers saw the outage");
}

// A current-thread runtime: the `complete` futures all queue their ack before the flusher
// task first runs, so the grouping is deterministic (one statement for all of them).
#[tokio::test(flavor = "current_thread")]
async fn concurrent_acks_share_one_statement_and_each_gets_its_own_answer() {
    let Some(url) = database("pg_concurrent_acks") else {
        return;
    };
    bounded(async {
        let clock = MockClock::new(T0);
        let s = store(&url, &clock).await;
        let queue = "pg_concurrent_acks";
        s.enqueue_many((0..300).map(|n| job(queue, n)).collect())
            .await
            .unwrap();
        let leases = s.fetch(queue, 300, LEASE).await.unwrap();
        assert_eq!(leases.len(), 300);
        let before = s.stats();
        // Every third ack presents a wrong token; every fifth good one is sent twice.
        let mut calls = Vec::new();
        for (i, l) in leases.iter().enumerate() {
            let token = if i % 3 == 0 {
                keel_jobs::FencingToken(l.token.0 + 1_000_000)
            } else {
                l.token
            };
            calls.push((l.job.id, token, i % 3 != 0));
            if i % 3 != 0 && i % 5 == 0 {
                calls.push((l.job.id, token, false));
            }
        }
        let answers =
            futures::future::join_all(calls.iter().map(|&(id, token, _)| s.complete(id, token)))
                .await;
        for (&(id, token, ok), answer) in calls.iter().zip(&answers) {
            if ok {
                assert!(answer.is_ok(), "{id:?}: {answer:?}");
            } else {
                assert!(
                    matches!(answer, Err(keel_jobs::JobsError::StaleLease { id: i, token: t }) if *i == id && *t == token),
                    "{id:?}: {answer:?}"
                );
            }
        }
        let good = calls.iter().filter(|c| c.2).count() as u64;
        let after = s.stats();
        assert_eq!(good, 200);
        assert_eq!(after.completed - before.completed, good);
        assert_eq!(
            after.stale_rejected - before.stale_rejected,
            calls.len() as u64 - good
        );
        assert_eq!(after.commits - before.commits, 1, "one statement for the group");
        assert_eq!(
            after.committed_changes - before.committed_changes,
            calls.len() as u64
        );
        assert_eq!(s.counts().await.unwrap()[queue].running, 100);
        // The fenced-out jobs are still leased to their real holders, who can ack them;
        // an ack after the deadline is refused as expired, group or not.
        let fenced: Vec<_> = leases.iter().step_by(3).collect();
        let (late, rest) = fenced.split_at(1);
        for l in rest {
            s.complete(l.job.id, l.token).await.unwrap();
        }
        clock.advance(LEASE);
        assert!(matches!(
            s.complete(late[0].job.id, late[0].token).await,
            Err(keel_jobs::JobsError::LeaseExpired { .. })
        ));
        assert_eq!(s.counts().await.unwrap()[queue].running, 0);
    })
    .await;
}

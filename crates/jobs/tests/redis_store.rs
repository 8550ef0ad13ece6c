//! The Redis backend beyond the conformance suite: limits that hold across independent
//! stores (processes) sharing one server, cron once per tick with three schedulers,
//! prefixes that isolate stores, and a Redis server killed and restarted (AOF on) under
//! producers and workers. Each test starts a private `redis-server` (skipped with a printed
//! line when it is not installed, unless `KEEL_REQUIRE_REDIS=1`).
#![cfg(feature = "redis")]

use std::collections::BTreeSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::Duration;

use keel_jobs::{
    GlobalLimits, HandlerError, JobContext, JobsError, ListFilter, MockClock, NewJob, Periodic,
    Quota, RedisStore, Status, Store, Timestamp, WorkerPool,
};
use keel_testkit::RedisServer;
use serde_json::json;

const T0: Timestamp = Timestamp(1_700_000_000_000);

/// A job whose payload is its number.
#[derive(serde::Serialize, serde::Deserialize)]
struct Work(u64);

impl keel_jobs::Job for Work {
    const KIND: &'static str = "work";
}

#[derive(serde::Serialize, serde::Deserialize)]
struct K(u64);

impl keel_jobs::Job for K {
    const KIND: &'static str = "k";
}

async fn store(url: &str, prefix: &str, clock: Option<MockClock>) -> RedisStore {
    let mut b = RedisStore::builder()
        .url(url)
        .prefix(prefix)
        .keep_completed(true)
        .timeout(Duration::from_secs(2));
    if let Some(clock) = clock {
        b = b.clock(clock);
    }
    tokio::time::timeout(Duration::from_secs(20), b.build())
        .await
        .expect("bounded")
        .expect("connect")
}

fn server(test: &str) -> Option<RedisServer> {
    keel_testkit::redis_or_skip(test)
}

async fn bounded<F: std::future::Future>(f: F) -> F::Output {
    tokio::time::timeout(Duration::from_secs(120), f)
        .await
        .expect("finished within its bound")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn global_concurrency_limit_holds_across_four_independent_pools() {
    let Some(server) = server("global_concurrency_limit") else {
        return;
    };
    bounded(async {
        const LIMIT: u32 = 3;
        const JOBS: u64 = 200;
        let producer = store(&server.url(), "conc:", None).await;
        producer
            .set_queue_limits(
                "q",
                GlobalLimits {
                    concurrency: Some(LIMIT),
                    rate: None,
                },
            )
            .await
            .unwrap();
        let jobs = (0..JOBS)
            .map(|n| NewJob::new("q", "work", json!(n)))
            .collect();
        producer.enqueue_many(jobs).await.unwrap();
        let running = Arc::new(AtomicUsize::new(0));
        let max_seen = Arc::new(AtomicUsize::new(0));
        let done = Arc::new(AtomicU64::new(0));
        let mut pools = Vec::new();
        for _ in 0..4 {
            // Each pool alone would run 8 at once; together they may run only LIMIT.
            let s = Arc::new(store(&server.url(), "conc:", None).await);
            let (running, max_seen, done) = (
                Arc::clone(&running),
                Arc::clone(&max_seen),
                Arc::clone(&done),
            );
            let pool = WorkerPool::builder(s)
                .queue("q", 8)
                .poll_interval(Duration::from_millis(5))
                .handler(move |_job: Work, _ctx: JobContext| {
                    let (running, max_seen, done) = (
                        Arc::clone(&running),
                        Arc::clone(&max_seen),
                        Arc::clone(&done),
                    );
                    async move {
                        let now = running.fetch_add(1, Ordering::SeqCst) + 1;
                        max_seen.fetch_max(now, Ordering::SeqCst);
                        tokio::time::sleep(Duration::from_millis(2)).await;
                        running.fetch_sub(1, Ordering::SeqCst);
                        done.fetch_add(1, Ordering::SeqCst);
                        Ok::<(), HandlerError>(())
                    }
                })
                .build()
                .unwrap()
                .start();
            pools.push(pool);
        }
        while done.load(Ordering::SeqCst) < JOBS {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        for pool in pools {
            pool.shutdown(Duration::from_secs(10)).await;
        }
        let max = max_seen.load(Ordering::SeqCst);
        println!("global concurrency {LIMIT}: {JOBS} jobs over 4 pools of 8, max running {max}");
        assert!(max <= LIMIT as usize, "ran {max} at once, limit {LIMIT}");
        assert!(
            max >= 2,
            "the pools did run in parallel up to the limit ({max})"
        );
        let c = producer.counts().await.unwrap()["q"];
        assert_eq!((c.succeeded, c.unfinished()), (JOBS, 0));
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn global_rate_limit_holds_across_three_stores_at_every_instant() {
    let Some(server) = server("global_rate_limit") else {
        return;
    };
    bounded(async {
        let clock = MockClock::new(T0);
        // 10 jobs/s with a burst of 5.
        let quota = Quota::per_second(10).unwrap().with_burst(5).unwrap();
        let stores: Vec<Arc<RedisStore>> = {
            let mut v = Vec::new();
            for _ in 0..3 {
                v.push(Arc::new(
                    store(&server.url(), "rate:", Some(clock.clone())).await,
                ));
            }
            v
        };
        stores[0]
            .set_queue_limits(
                "q",
                GlobalLimits {
                    concurrency: None,
                    rate: Some(quota),
                },
            )
            .await
            .unwrap();
        let jobs = (0..1_000)
            .map(|n| NewJob::new("q", "k", json!(n)))
            .collect();
        stores[0].enqueue_many(jobs).await.unwrap();
        let mut started = 0u64;
        for step in 0..=50u64 {
            // Every store fetches greedily and concurrently at this instant.
            let mut tasks = Vec::new();
            for s in &stores {
                let s = Arc::clone(s);
                tasks.push(tokio::spawn(async move {
                    let mut n = 0;
                    for _ in 0..4 {
                        n += s
                            .fetch("q", 7, Duration::from_secs(600))
                            .await
                            .unwrap()
                            .len() as u64;
                    }
                    n
                }));
            }
            for t in tasks {
                started += t.await.unwrap();
            }
            let elapsed_ms = step * 100;
            let allowed = 5 + elapsed_ms / 100; // burst + rate · t
            assert!(
                started <= allowed,
                "{started} started by t = {elapsed_ms} ms, allowed {allowed}"
            );
            assert!(
                started + 1 >= allowed,
                "the limiter let too few through: {started} < {allowed}"
            );
            clock.advance(Duration::from_millis(100));
        }
        println!("global rate 10/s burst 5 over 3 stores: {started} started in 5 s");
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cron_fires_once_per_tick_with_three_schedulers_on_separate_connections() {
    let Some(server) = server("cron_three_schedulers") else {
        return;
    };
    bounded(async {
        let clock = MockClock::new(T0);
        let mut schedulers = Vec::new();
        let mut stores = Vec::new();
        for _ in 0..3 {
            let s = Arc::new(store(&server.url(), "cron:", Some(clock.clone())).await);
            schedulers.push(
                Periodic::builder(Arc::clone(&s))
                    .schedule_job(
                        "every-5s",
                        "*/5 * * * * *",
                        NewJob::new("cron", "report", json!(null)),
                    )
                    .build()
                    .unwrap(),
            );
            stores.push(s);
        }
        let mut fired = 0;
        for _ in 0..60 {
            clock.advance(Duration::from_secs(1));
            let mut tasks = Vec::new();
            for mut sch in schedulers.drain(..) {
                tasks.push(tokio::spawn(async move {
                    let n = sch.tick().await.unwrap();
                    (sch, n)
                }));
            }
            for t in tasks {
                let (sch, n) = t.await.unwrap();
                fired += n;
                schedulers.push(sch);
            }
        }
        assert_eq!(
            fired, 12,
            "one job per 5 s tick over 60 s, not one per scheduler"
        );
        assert_eq!(stores[1].counts().await.unwrap()["cron"].available, 12);
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn prefixes_isolate_stores_on_one_server() {
    let Some(server) = server("prefixes_isolate") else {
        return;
    };
    bounded(async {
        let a = store(&server.url(), "app-a:", None).await;
        let b = store(&server.url(), "app-b:", None).await;
        a.enqueue(NewJob::new("q", "k", json!(1))).await.unwrap();
        assert!(
            b.fetch("q", 10, Duration::from_secs(5))
                .await
                .unwrap()
                .is_empty()
        );
        assert!(b.counts().await.unwrap().is_empty());
        assert_eq!(
            a.fetch("q", 10, Duration::from_secs(5))
                .await
                .unwrap()
                .len(),
            1
        );
    })
    .await;
}

// A current-thread runtime: the 300 `complete` futures all queue their ack before the
// flusher task first runs, so the grouping is deterministic (one call for all of them).
#[tokio::test(flavor = "current_thread")]
async fn concurrent_acks_share_one_call_and_each_gets_its_own_answer() {
    let Some(server) = server("concurrent_acks") else {
        return;
    };
    bounded(async {
        let s = store(&server.url(), "acks:", None).await;
        let jobs = (0..300).map(|i| NewJob::new("q", "k", json!(i))).collect();
        s.enqueue_many(jobs).await.unwrap();
        let leases = s.fetch("q", 300, Duration::from_secs(60)).await.unwrap();
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
                    matches!(answer, Err(JobsError::StaleLease { id: i, token: t }) if *i == id && *t == token),
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
        assert_eq!(after.commits - before.commits, 1, "one call for the group");
        assert_eq!(after.committed_changes - before.committed_changes, calls.len() as u64);
        let counts = s.counts().await.unwrap()["q"];
        assert_eq!((counts.running, counts.succeeded), (100, 200));
        // The fenced-out jobs are still leased to their real holders, who can ack them.
        for l in leases.iter().step_by(3) {
            s.complete(l.job.id, l.token).await.unwrap();
        }
        let counts = s.counts().await.unwrap()["q"];
        assert_eq!((counts.running, counts.succeeded), (0, 300));
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn payloads_round_trip_exactly_and_limits_reject_bad_values() {
    let Some(server) = server("payload_round_trip") else {
        return;
    };
    bounded(async {
        let s = store(&server.url(), "rt:", None).await;
        // Numbers Lua's doubles would mangle, unicode, nesting: the payload is never
        // parsed by the scripts.
        let payload =
            json!({"big": u64::MAX, "neg": i64::MIN, "f": 0.1, "s": "é\"\\/\n", "a": [], "o": {}});
        let id = s
            .enqueue(
                NewJob::new("q", "k", payload.clone())
                    .with_tag("t/1")
                    .with_unique_key("ü"),
            )
            .await
            .unwrap()
            .id;
        let job = s.get(id).await.unwrap().unwrap();
        assert_eq!(job.payload, payload);
        assert_eq!(job.tags, vec!["t/1".to_owned()]);
        assert_eq!(job.unique_key.as_deref(), Some("ü"));
        let lease = s
            .fetch("q", 1, Duration::from_secs(5))
            .await
            .unwrap()
            .remove(0);
        let msg = "ошибка \"quoted\" \u{0}";
        s.fail(
            id,
            lease.token,
            keel_jobs::Failure {
                kind: keel_jobs::FailureKind::Panic,
                message: msg.into(),
                retry_at: None,
            },
        )
        .await
        .unwrap();
        let dead = s.get(id).await.unwrap().unwrap();
        assert_eq!(dead.errors[0].message, msg);
        assert_eq!(s.dead_by_error(None).await.unwrap()[0].message, msg);
        assert!(matches!(
            s.set_queue_limits(
                "q",
                GlobalLimits {
                    concurrency: Some(0),
                    rate: None
                }
            )
            .await,
            Err(JobsError::InvalidArgument(_))
        ));
        assert!(RedisStore::builder().build().await.is_err(), "no url");
        assert!(
            RedisStore::builder()
                .url("redis://127.0.0.1:1/")
                .timeout(Duration::from_millis(500))
                .build()
                .await
                .is_err(),
            "nothing listens on port 1"
        );
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dead_letter_views_stay_fast_with_many_dead_jobs() {
    let Some(server) = server("many_dead") else {
        return;
    };
    bounded(async {
        let s = store(&server.url(), "dead:", None).await;
        const N: u64 = 20_000;
        for chunk in 0..N / 1_000 {
            let jobs = (0..1_000)
                .map(|n| NewJob::new("q", "k", json!(chunk * 1_000 + n)).with_max_attempts(1))
                .collect();
            s.enqueue_many(jobs).await.unwrap();
        }
        // Fail them all, in two error groups.
        loop {
            let leases = s.fetch("q", 1_000, Duration::from_secs(60)).await.unwrap();
            if leases.is_empty() {
                break;
            }
            for l in leases {
                let message = if l.job.id.0 % 2 == 0 { "even" } else { "odd" };
                s.fail(
                    l.job.id,
                    l.token,
                    keel_jobs::Failure {
                        kind: keel_jobs::FailureKind::Error,
                        message: message.into(),
                        retry_at: None,
                    },
                )
                .await
                .unwrap();
            }
        }
        let groups = s.dead_by_error(Some("q")).await.unwrap();
        assert_eq!(groups.iter().map(|g| g.count).sum::<u64>(), N);
        assert_eq!(groups.len(), 2);
        // A page deep in the dead list comes from the dead index, not a scan.
        let page = s
            .list(ListFilter {
                queue: Some("q".into()),
                state: Some(keel_jobs::JobState::Dead),
                after: Some(keel_jobs::JobId(N - 100)),
                limit: 50,
                ..ListFilter::default()
            })
            .await
            .unwrap();
        assert_eq!(page.len(), 50);
        assert!(page.iter().all(|r| matches!(r.status, Status::Dead { .. })));
        assert_eq!(s.delete_all_dead("q").await.unwrap(), N as usize);
        assert!(s.counts().await.unwrap().is_empty());
    })
    .await;
}

/// Redis is SIGKILLed mid-run and restarted with its AOF (`appendfsync always`):
/// producers see errors while it is down (never a silent drop), workers back off and
/// resume, and every enqueue that returned Ok is completed in the end.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_killed_and_restarted_with_aof_loses_nothing_acknowledged() {
    if !keel_testkit::redis_server_available() {
        let _ = server("redis_restart_with_aof");
        return;
    }
    let mut server =
        RedisServer::start_with_args(["--appendonly", "yes", "--appendfsync", "always"])
            .expect("start redis-server with AOF");
    let url = server.url();
    let producer = Arc::new(store(&url, "aof:", None).await);
    let worker_store = Arc::new(store(&url, "aof:", None).await);
    let ran = Arc::new(parking_lot::Mutex::new(BTreeSet::new()));
    let ran_in = Arc::clone(&ran);
    let pool = WorkerPool::builder(Arc::clone(&worker_store))
        .queue("q", 4)
        .poll_interval(Duration::from_millis(20))
        .lease(Duration::from_secs(3))
        .heartbeat(Duration::from_millis(500))
        .handler(move |job: K, _ctx: JobContext| {
            let ran = Arc::clone(&ran_in);
            async move {
                ran.lock().insert(job.0);
                Ok::<(), HandlerError>(())
            }
        })
        .build()
        .unwrap()
        .start();
    let mut acked = BTreeSet::new();
    let mut errors = 0;
    let mut n = 0u64;
    for round in 0..3 {
        for _ in 0..100 {
            match producer.enqueue(NewJob::new("q", "k", json!(n))).await {
                Ok(_) => {
                    acked.insert(n);
                }
                Err(JobsError::Storage(_)) => errors += 1,
                Err(e) => panic!("unexpected error {e}"),
            }
            n += 1;
        }
        if round < 2 {
            server.stop(); // SIGKILL
            for _ in 0..20 {
                match producer.enqueue(NewJob::new("q", "k", json!(n))).await {
                    Ok(_) => {
                        acked.insert(n);
                    }
                    Err(JobsError::Storage(_)) => errors += 1,
                    Err(e) => panic!("unexpected error {e}"),
                }
                n += 1;
            }
            server.restart().expect("restart redis-server on its AOF");
        }
    }
    assert!(
        errors >= 20,
        "a down server must surface as errors ({errors})"
    );
    // Workers resume after the restarts and finish every acknowledged job.
    bounded(async {
        loop {
            let all_done = {
                let ran = ran.lock();
                acked.iter().all(|n| ran.contains(n))
            };
            if all_done {
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    })
    .await;
    pool.shutdown(Duration::from_secs(10)).await;
    let mut stored = Vec::new();
    let mut after = None;
    loop {
        let page = producer
            .list(ListFilter {
                after,
                limit: 1_000,
                ..ListFilter::default()
            })
            .await
            .unwrap();
        let Some(last) = page.last() else { break };
        after = Some(last.id);
        stored.extend(page);
    }
    let stored_n: BTreeSet<u64> = stored.iter().map(|r| r.payload.as_u64().unwrap()).collect();
    assert!(
        acked.is_subset(&stored_n),
        "an acknowledged enqueue was lost"
    );
    println!(
        "redis killed twice: {} enqueues acknowledged, {errors} refused with errors, {} stored, all acknowledged ran",
        acked.len(),
        stored_n.len()
    );
}

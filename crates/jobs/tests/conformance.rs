//! The storage conformance suite: one set of behaviour tests, run against every backend
//! (`memory`, `redb`, `redis` with the `redis` feature, `postgres` with the `postgres`
//! feature — a private server from keel-testkit, one database per test). A new backend adds
//! one `conformance!` line.

use std::sync::Arc;
use std::time::Duration;

use keel_jobs::{
    BatchCallbacks, CancelOutcome, Clock, FailOutcome, Failure, FailureKind, InvalidJob, JobId,
    JobState, JobsError, ListFilter, MemoryStore, MockClock, NewJob, RedbStore, Status, Store,
    Timestamp,
};
use serde_json::json;

const T0: Timestamp = Timestamp(1_700_000_000_000);
const LEASE: Duration = Duration::from_secs(30);

/// A store under test plus whatever must outlive it (a temp dir).
struct Harness<S> {
    store: Arc<S>,
    clock: MockClock,
    _guard: Option<tempfile::TempDir>,
}

fn memory(keep_completed: bool) -> Harness<MemoryStore> {
    let clock = MockClock::new(T0);
    let store = MemoryStore::builder()
        .clock(clock.clone())
        .keep_completed(keep_completed)
        .build();
    Harness {
        store: Arc::new(store),
        clock,
        _guard: None,
    }
}

fn redb(keep_completed: bool) -> Harness<RedbStore> {
    let clock = MockClock::new(T0);
    let dir = tempfile::tempdir().expect("temp dir");
    let store = RedbStore::builder()
        .path(dir.path().join("jobs.redb"))
        .clock(clock.clone())
        .keep_completed(keep_completed)
        .build()
        .expect("open store");
    Harness {
        store: Arc::new(store),
        clock,
        _guard: Some(dir),
    }
}

/// One private redis-server for the whole test binary (killed with it); every harness gets
/// its own key prefix on it, which is also what lets stores share a server in production.
#[cfg(feature = "redis")]
fn redis(keep_completed: bool) -> Option<Harness<keel_jobs::RedisStore>> {
    use std::sync::OnceLock;
    use std::sync::atomic::{AtomicU64, Ordering};
    static SERVER: OnceLock<Option<keel_testkit::RedisServer>> = OnceLock::new();
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let server = SERVER
        .get_or_init(|| keel_testkit::redis_or_skip("conformance (redis)"))
        .as_ref()?;
    let clock = MockClock::new(T0);
    let build = keel_jobs::RedisStore::builder()
        .url(server.url())
        .prefix(format!(
            "conformance:{}:",
            NEXT.fetch_add(1, Ordering::Relaxed)
        ))
        .clock(clock.clone())
        .keep_completed(keep_completed)
        .build();
    let store = tokio::task::block_in_place(|| tokio::runtime::Handle::current().block_on(build))
        .expect("connect to the private redis-server");
    Some(Harness {
        store: Arc::new(store),
        clock,
        _guard: None,
    })
}

/// A backend constructor returns a harness, or `None` when its server is not installed
/// (the skip was printed).
trait IntoHarness<S> {
    fn into_harness(self) -> Option<Harness<S>>;
}

impl<S> IntoHarness<S> for Harness<S> {
    fn into_harness(self) -> Option<Harness<S>> {
        Some(self)
    }
}

impl<S> IntoHarness<S> for Option<Harness<S>> {
    fn into_harness(self) -> Option<Harness<S>> {
        self
    }
}

/// A fresh database on this process's private Postgres (keel-testkit), or a skip.
#[cfg(feature = "postgres")]
fn postgres(keep_completed: bool) -> Option<Harness<keel_jobs::PostgresStore>> {
    tokio::task::block_in_place(|| {
        let url = keel_testkit::shared_postgres_database_or_skip("conformance on postgres")?;
        let clock = MockClock::new(T0);
        let build = keel_jobs::PostgresStore::builder()
            .url(url)
            .clock(clock.clone())
            .keep_completed(keep_completed)
            .build();
        let store = tokio::runtime::Handle::current()
            .block_on(build)
            .expect("open postgres store");
        Some(Harness {
            store: Arc::new(store),
            clock,
            _guard: None,
        })
    })
}

fn job(queue: &str, n: u64) -> NewJob {
    NewJob::new(queue, "test", json!({ "n": n }))
}

async fn fetch_ids<S: Store>(store: &S, queue: &str, limit: usize) -> Vec<u64> {
    let leases = store.fetch(queue, limit, LEASE).await.expect("fetch");
    leases
        .iter()
        .map(|l| l.job.payload["n"].as_u64().expect("n"))
        .collect()
}

async fn priority_higher_first_fifo_within_priority<S: Store>(h: Harness<S>) {
    let s = &h.store;
    for (n, prio) in [(1, 0), (2, 5), (3, 0), (4, 5), (5, -3), (6, 10)] {
        s.enqueue(job("q", n).with_priority(prio)).await.unwrap();
        h.clock.advance(Duration::from_millis(1));
    }
    assert_eq!(fetch_ids(&**s, "q", 10).await, vec![6, 2, 4, 1, 3, 5]);
    assert!(
        fetch_ids(&**s, "other", 10).await.is_empty(),
        "queues are separate"
    );
}

async fn fetch_respects_the_limit_and_queues<S: Store>(h: Harness<S>) {
    let s = &h.store;
    for n in 0..5 {
        s.enqueue(job("a", n)).await.unwrap();
    }
    s.enqueue(job("b", 99)).await.unwrap();
    assert_eq!(fetch_ids(&**s, "a", 2).await, vec![0, 1]);
    assert_eq!(fetch_ids(&**s, "a", 10).await, vec![2, 3, 4]);
    assert_eq!(fetch_ids(&**s, "b", 10).await, vec![99]);
}

async fn delayed_job_never_runs_early<S: Store>(h: Harness<S>) {
    let s = &h.store;
    s.enqueue(job("q", 1).with_delay(Duration::from_secs(10)))
        .await
        .unwrap();
    s.enqueue(job("q", 2).with_run_at(T0.checked_add(Duration::from_secs(5)).unwrap()))
        .await
        .unwrap();
    for _ in 0..4_999 {
        assert!(
            fetch_ids(&**s, "q", 10).await.is_empty(),
            "ran early at {}",
            h.clock.now()
        );
        h.clock.advance(Duration::from_millis(1));
    }
    assert!(fetch_ids(&**s, "q", 10).await.is_empty());
    h.clock.advance(Duration::from_millis(1)); // exactly T0 + 5 s
    assert_eq!(fetch_ids(&**s, "q", 10).await, vec![2]);
    h.clock.advance(Duration::from_millis(4_999));
    assert!(fetch_ids(&**s, "q", 10).await.is_empty());
    h.clock.advance(Duration::from_millis(1)); // exactly T0 + 10 s
    assert_eq!(fetch_ids(&**s, "q", 10).await, vec![1]);
}

async fn unique_key_with_8_concurrent_enqueuers_creates_exactly_one<S: Store>(h: Harness<S>) {
    let mut tasks = Vec::new();
    for t in 0..8u64 {
        let store = Arc::clone(&h.store);
        tasks.push(tokio::spawn(async move {
            let mut out = Vec::new();
            for i in 0..25u64 {
                let key = format!("key-{}", i % 5);
                out.push(
                    store
                        .enqueue(job("q", t * 100 + i).with_unique_key(key.clone()))
                        .await
                        .unwrap(),
                );
            }
            out
        }));
    }
    let mut results = Vec::new();
    for t in tasks {
        results.extend(
            tokio::time::timeout(Duration::from_secs(60), t)
                .await
                .expect("bounded")
                .unwrap(),
        );
    }
    assert_eq!(
        results.iter().filter(|e| e.created).count(),
        5,
        "one job per key"
    );
    let ids: std::collections::BTreeSet<JobId> = results.iter().map(|e| e.id).collect();
    assert_eq!(ids.len(), 5, "every duplicate got the existing id");
    assert_eq!(h.store.counts().await.unwrap()["q"].available, 5);
    assert_eq!(h.store.stats().duplicates, 8 * 25 - 5);
}

async fn unique_key_is_free_again_once_the_job_finishes<S: Store>(h: Harness<S>) {
    let s = &h.store;
    let first = s.enqueue(job("q", 1).with_unique_key("k")).await.unwrap();
    let lease = s.fetch("q", 1, LEASE).await.unwrap().remove(0);
    // Running still holds the key.
    assert!(
        !s.enqueue(job("q", 2).with_unique_key("k"))
            .await
            .unwrap()
            .created
    );
    s.complete(lease.job.id, lease.token).await.unwrap();
    let second = s.enqueue(job("q", 3).with_unique_key("k")).await.unwrap();
    assert!(second.created);
    assert_ne!(second.id, first.id);
    assert_eq!(s.cancel(second.id).await.unwrap(), CancelOutcome::Cancelled);
    assert!(
        s.enqueue(job("q", 4).with_unique_key("k"))
            .await
            .unwrap()
            .created,
        "cancel frees the key"
    );
}

async fn expired_lease_is_recovered_stale_worker_is_fenced_and_second_run_wins<S: Store>(
    h: Harness<S>,
) {
    let s = &h.store;
    let id = s.enqueue(job("q", 1)).await.unwrap().id;
    let first = s.fetch("q", 1, LEASE).await.unwrap().remove(0);
    assert_eq!(first.job.attempt, 1);
    assert_eq!(first.deadline, T0.checked_add(LEASE).unwrap());
    // Not expired yet: nothing to take.
    h.clock.advance(LEASE - Duration::from_millis(1));
    assert!(s.fetch("q", 1, LEASE).await.unwrap().is_empty());
    h.clock.advance(Duration::from_millis(1));
    let second = s.fetch("q", 1, LEASE).await.unwrap().remove(0);
    assert_eq!(second.job.id, id);
    assert_eq!(second.job.attempt, 2, "the crashed attempt counts");
    assert_eq!(second.job.lease_recoveries, 1);
    assert_eq!(second.job.errors[0].kind, FailureKind::LeaseExpired);
    assert!(second.token > first.token, "fencing tokens increase");
    // The first worker wakes up: every call with its token is rejected and changes nothing.
    assert!(matches!(
        s.complete(id, first.token).await,
        Err(JobsError::StaleLease { .. })
    ));
    assert!(matches!(
        s.heartbeat(id, first.token, LEASE).await,
        Err(JobsError::StaleLease { .. })
    ));
    let failure = Failure {
        kind: FailureKind::Error,
        message: "late".into(),
        retry_at: None,
    };
    assert!(matches!(
        s.fail(id, first.token, failure).await,
        Err(JobsError::StaleLease { .. })
    ));
    assert!(matches!(
        s.release(id, first.token).await,
        Err(JobsError::StaleLease { .. })
    ));
    assert_eq!(
        s.get(id).await.unwrap().unwrap().token(),
        Some(second.token)
    );
    assert_eq!(s.stats().stale_rejected, 4);
    // The second run wins.
    s.complete(id, second.token).await.unwrap();
    assert!(s.get(id).await.unwrap().is_none());
    assert!(
        matches!(
            s.complete(id, second.token).await,
            Err(JobsError::StaleLease { .. })
        ),
        "no double ack"
    );
    assert_eq!(s.stats().completed, 1);
    assert_eq!(s.stats().lease_recoveries, 1);
}

async fn ack_after_the_deadline_is_rejected_even_before_any_reap<S: Store>(h: Harness<S>) {
    let s = &h.store;
    let id = s.enqueue(job("q", 1)).await.unwrap().id;
    let lease = s.fetch("q", 1, LEASE).await.unwrap().remove(0);
    h.clock.advance(LEASE);
    assert!(matches!(
        s.complete(id, lease.token).await,
        Err(JobsError::LeaseExpired { .. })
    ));
    let job = s.get(id).await.unwrap().unwrap();
    assert_eq!(job.state(h.clock.now()), JobState::Retrying);
    assert_eq!((job.attempt, job.lease_recoveries), (1, 1));
    assert_eq!(s.fetch("q", 1, LEASE).await.unwrap()[0].job.attempt, 2);
}

async fn heartbeat_extends_the_lease<S: Store>(h: Harness<S>) {
    let s = &h.store;
    let id = s.enqueue(job("q", 1)).await.unwrap().id;
    let lease = s.fetch("q", 1, LEASE).await.unwrap().remove(0);
    for _ in 0..10 {
        h.clock.advance(LEASE / 2);
        let deadline = s.heartbeat(id, lease.token, LEASE).await.unwrap();
        assert_eq!(deadline, h.clock.now().checked_add(LEASE).unwrap());
        assert_eq!(s.reap_expired().await.unwrap(), 0);
    }
    h.clock.advance(LEASE);
    assert_eq!(s.reap_expired().await.unwrap(), 1);
    assert!(matches!(
        s.heartbeat(id, lease.token, LEASE).await,
        Err(JobsError::StaleLease { .. })
    ));
}

async fn retries_wait_for_retry_at_then_dead_letter_with_error_history<S: Store>(h: Harness<S>) {
    let s = &h.store;
    let id = s
        .enqueue(job("q", 1).with_max_attempts(3))
        .await
        .unwrap()
        .id;
    for attempt in 1..=3u32 {
        let lease = s.fetch("q", 1, LEASE).await.unwrap().remove(0);
        assert_eq!(lease.job.attempt, attempt);
        let retry_at = h
            .clock
            .now()
            .checked_add(Duration::from_secs(u64::from(attempt) * 10))
            .unwrap();
        let failure = Failure {
            kind: FailureKind::Error,
            message: format!("boom {attempt}"),
            retry_at: Some(retry_at),
        };
        let outcome = s.fail(id, lease.token, failure).await.unwrap();
        if attempt < 3 {
            assert_eq!(outcome, FailOutcome::Retrying { at: retry_at });
            assert_eq!(
                s.get(id).await.unwrap().unwrap().state(h.clock.now()),
                JobState::Retrying
            );
            h.clock
                .advance(Duration::from_secs(u64::from(attempt) * 10) - Duration::from_millis(1));
            assert!(
                s.fetch("q", 1, LEASE).await.unwrap().is_empty(),
                "retried before retry_at"
            );
            h.clock.advance(Duration::from_millis(1));
        } else {
            assert_eq!(outcome, FailOutcome::Dead);
        }
    }
    let dead = s.get(id).await.unwrap().unwrap();
    assert!(matches!(dead.status, Status::Dead { .. }));
    let history: Vec<(u32, &str)> = dead
        .errors
        .iter()
        .map(|e| (e.attempt, e.message.as_str()))
        .collect();
    assert_eq!(history, vec![(1, "boom 1"), (2, "boom 2"), (3, "boom 3")]);
    assert!(
        dead.errors.windows(2).all(|w| w[0].at < w[1].at),
        "each entry has its time"
    );
    assert!(
        s.fetch("q", 1, LEASE).await.unwrap().is_empty(),
        "dead jobs never run"
    );
    assert_eq!(s.counts().await.unwrap()["q"].dead, 1);
    // Dead-letter operations: retry with fresh attempts, then delete.
    s.retry_dead(id).await.unwrap();
    let lease = s.fetch("q", 1, LEASE).await.unwrap().remove(0);
    assert_eq!((lease.job.attempt, lease.job.errors.len()), (1, 3));
    assert!(matches!(s.delete(id).await, Err(JobsError::Running(_))));
    s.fail(
        id,
        lease.token,
        Failure {
            kind: FailureKind::Error,
            message: "x".into(),
            retry_at: None,
        },
    )
    .await
    .unwrap();
    s.delete(id).await.unwrap();
    assert!(s.get(id).await.unwrap().is_none());
    assert!(matches!(
        s.retry_dead(id).await,
        Err(JobsError::NotFound(_))
    ));
}

async fn permanent_failure_dead_letters_at_once<S: Store>(h: Harness<S>) {
    let s = &h.store;
    let id = s
        .enqueue(job("q", 1).with_max_attempts(10))
        .await
        .unwrap()
        .id;
    let lease = s.fetch("q", 1, LEASE).await.unwrap().remove(0);
    let failure = Failure {
        kind: FailureKind::UnknownKind,
        message: "no handler".into(),
        retry_at: None,
    };
    assert_eq!(
        s.fail(id, lease.token, failure).await.unwrap(),
        FailOutcome::Dead
    );
    let dead = s.get(id).await.unwrap().unwrap();
    assert_eq!(
        (dead.attempt, dead.errors[0].kind),
        (1, FailureKind::UnknownKind)
    );
}

async fn job_that_keeps_killing_its_worker_is_quarantined<S: Store>(h: Harness<S>) {
    let s = &h.store;
    let id = s
        .enqueue(job("q", 1).with_max_attempts(3))
        .await
        .unwrap()
        .id;
    for _ in 0..3 {
        assert_eq!(s.fetch("q", 1, LEASE).await.unwrap().len(), 1);
        h.clock.advance(LEASE);
    }
    assert_eq!(s.reap_expired().await.unwrap(), 1);
    let dead = s.get(id).await.unwrap().unwrap();
    assert!(matches!(dead.status, Status::Dead { .. }));
    assert_eq!(dead.lease_recoveries, 3);
    assert!(
        dead.errors
            .iter()
            .all(|e| e.kind == FailureKind::LeaseExpired)
    );
}

async fn release_gives_the_job_back_at_once_without_counting_the_attempt<S: Store>(h: Harness<S>) {
    let s = &h.store;
    let id = s.enqueue(job("q", 1)).await.unwrap().id;
    let lease = s.fetch("q", 1, LEASE).await.unwrap().remove(0);
    s.release(id, lease.token).await.unwrap();
    let again = s.fetch("q", 1, LEASE).await.unwrap().remove(0);
    assert_eq!(again.job.attempt, 1);
    assert!(again.job.errors.is_empty());
    assert_eq!(s.stats().released, 1);
}

async fn cancel_removes_only_pending_jobs<S: Store>(h: Harness<S>) {
    let s = &h.store;
    let pending = s
        .enqueue(job("q", 1).with_delay(Duration::from_secs(60)))
        .await
        .unwrap()
        .id;
    let running = s.enqueue(job("q", 2).with_priority(1)).await.unwrap().id;
    let lease = s.fetch("q", 1, LEASE).await.unwrap().remove(0);
    assert_eq!(lease.job.id, running);
    assert_eq!(s.cancel(pending).await.unwrap(), CancelOutcome::Cancelled);
    assert_eq!(s.cancel(pending).await.unwrap(), CancelOutcome::NotFound);
    assert_eq!(s.cancel(running).await.unwrap(), CancelOutcome::Running);
    s.fail(
        running,
        lease.token,
        Failure {
            kind: FailureKind::Error,
            message: "x".into(),
            retry_at: None,
        },
    )
    .await
    .unwrap();
    assert_eq!(s.cancel(running).await.unwrap(), CancelOutcome::Finished);
    h.clock.advance(Duration::from_secs(60));
    assert!(
        s.fetch("q", 1, LEASE).await.unwrap().is_empty(),
        "cancelled job never runs"
    );
    assert_eq!(s.stats().cancelled, 1);
}

async fn bad_input_is_a_typed_error_and_changes_nothing<S: Store>(h: Harness<S>) {
    let s = &h.store;
    let invalid = |r: Result<keel_jobs::Enqueued, JobsError>| match r {
        Err(JobsError::Invalid(e)) => e,
        other => panic!("expected an invalid-job error, got {other:?}"),
    };
    assert_eq!(
        invalid(s.enqueue(job("q", 1).with_max_attempts(0)).await),
        InvalidJob::ZeroMaxAttempts
    );
    assert_eq!(invalid(s.enqueue(job("", 1)).await), InvalidJob::EmptyQueue);
    assert_eq!(
        invalid(s.enqueue(NewJob::new("q", "", json!(null))).await),
        InvalidJob::EmptyKind
    );
    assert_eq!(
        invalid(s.enqueue(job("q", 1).with_delay(Duration::MAX)).await),
        InvalidJob::DelayTooLong
    );
    assert_eq!(
        invalid(s.enqueue(job("q", 1).with_timeout(Duration::ZERO)).await),
        InvalidJob::ZeroTimeout
    );
    assert!(matches!(
        invalid(
            s.enqueue(job("q", 1).with_run_at(Timestamp(T0.0 - 1)))
                .await
        ),
        InvalidJob::RunAtInPast { .. }
    ));
    assert_eq!(
        invalid(s.enqueue(job("q", 1).with_max_attempts(u32::MAX)).await),
        InvalidJob::TooManyAttempts(u32::MAX)
    );
    let big = NewJob::new("q", "k", json!("x".repeat(2 << 20)));
    assert!(matches!(
        invalid(s.enqueue(big).await),
        InvalidJob::PayloadTooLarge(_)
    ));
    // enqueue_many is all-or-nothing.
    let batch = vec![job("q", 1), job("q", 2).with_max_attempts(0), job("q", 3)];
    assert!(matches!(
        s.enqueue_many(batch).await,
        Err(JobsError::Invalid(InvalidJob::ZeroMaxAttempts))
    ));
    assert!(
        s.counts()
            .await
            .unwrap()
            .values()
            .all(|c| c.unfinished() == 0)
    );
    assert!(matches!(
        s.fetch("q", 0, LEASE).await,
        Err(JobsError::InvalidArgument(_))
    ));
    assert!(matches!(
        s.fetch("q", 1, Duration::ZERO).await,
        Err(JobsError::InvalidArgument(_))
    ));
    assert!(matches!(
        s.fetch("q", 1, Duration::MAX).await,
        Err(JobsError::InvalidArgument(_))
    ));
    assert_eq!(s.stats().enqueued, 0);
}

async fn enqueue_many_is_one_atomic_call_in_order<S: Store>(h: Harness<S>) {
    let s = &h.store;
    let jobs: Vec<NewJob> = (0..100).map(|n| job("q", n)).collect();
    let out = s.enqueue_many(jobs).await.unwrap();
    assert!(out.windows(2).all(|w| w[0].id < w[1].id));
    assert_eq!(
        fetch_ids(&**s, "q", 1000).await,
        (0..100).collect::<Vec<_>>()
    );
}

async fn counts_and_list_follow_states<S: Store>(h: Harness<S>) {
    let s = &h.store;
    let scheduled = s
        .enqueue(job("q", 1).with_delay(Duration::from_secs(5)))
        .await
        .unwrap()
        .id;
    for n in 2..=6 {
        s.enqueue(job("q", n)).await.unwrap();
    }
    let leases = s.fetch("q", 2, LEASE).await.unwrap();
    let retry_at = Some(h.clock.now().checked_add(Duration::from_secs(100)).unwrap());
    s.fail(
        leases[0].job.id,
        leases[0].token,
        Failure {
            kind: FailureKind::Error,
            message: "r".into(),
            retry_at,
        },
    )
    .await
    .unwrap();
    let c = s.counts().await.unwrap()["q"];
    assert_eq!(
        (c.scheduled, c.available, c.running, c.retrying, c.dead),
        (1, 3, 1, 1, 0)
    );
    h.clock.advance(Duration::from_secs(5));
    let c = s.counts().await.unwrap()["q"];
    assert_eq!(
        (c.scheduled, c.available),
        (0, 4),
        "due jobs count as available"
    );
    let page1 = s
        .list(ListFilter {
            limit: 2,
            ..ListFilter::default()
        })
        .await
        .unwrap();
    assert_eq!(page1.iter().map(|r| r.id).collect::<Vec<_>>()[0], scheduled);
    let page2 = s
        .list(ListFilter {
            limit: 10,
            after: Some(page1[1].id),
            ..ListFilter::default()
        })
        .await
        .unwrap();
    assert_eq!(page1.len() + page2.len(), 6);
    let running = s
        .list(ListFilter {
            state: Some(JobState::Running),
            limit: 10,
            ..ListFilter::default()
        })
        .await
        .unwrap();
    assert_eq!(
        running.iter().map(|r| r.id).collect::<Vec<_>>(),
        vec![leases[1].job.id]
    );
}

async fn kept_completed_jobs_are_listed_as_succeeded<S: Store>(h: Harness<S>) {
    let s = &h.store;
    let id = s.enqueue(job("q", 1)).await.unwrap().id;
    let lease = s.fetch("q", 1, LEASE).await.unwrap().remove(0);
    s.complete(id, lease.token).await.unwrap();
    let done = s.get(id).await.unwrap().unwrap();
    assert!(matches!(done.status, Status::Succeeded { .. }));
    assert_eq!(s.counts().await.unwrap()["q"].succeeded, 1);
    assert_eq!(s.stats().succeeded_total, 1);
}

async fn paused_queue_hands_out_nothing_until_resumed<S: Store>(h: Harness<S>) {
    let s = &h.store;
    s.enqueue(job("q", 1)).await.unwrap();
    s.pause("q").await.unwrap();
    s.enqueue(job("q", 2)).await.unwrap();
    assert!(s.fetch("q", 10, LEASE).await.unwrap().is_empty());
    let c = s.counts().await.unwrap()["q"];
    assert!(c.paused);
    assert_eq!(c.available, 2, "enqueues still land");
    s.pause("idle").await.unwrap();
    assert!(
        s.counts().await.unwrap()["idle"].paused,
        "an empty queue can be paused"
    );
    s.resume("q").await.unwrap();
    assert_eq!(fetch_ids(&**s, "q", 10).await, vec![1, 2]);
    assert!(!s.counts().await.unwrap()["q"].paused);
    assert!(matches!(
        s.pause("").await,
        Err(JobsError::Invalid(InvalidJob::EmptyQueue))
    ));
}

async fn periodic_tick_is_enqueued_once_across_8_racing_schedulers<S: Store>(h: Harness<S>) {
    let mut tasks = Vec::new();
    for _ in 0..8 {
        let store = Arc::clone(&h.store);
        tasks.push(tokio::spawn(async move {
            let mut created = 0;
            for tick in 1..=50u64 {
                let t = Timestamp(T0.0 - 100_000 + tick * 1_000);
                if store
                    .enqueue_periodic("every-second", t, job("cron", tick))
                    .await
                    .unwrap()
                    .is_some()
                {
                    created += 1;
                }
            }
            created
        }));
    }
    let mut total = 0;
    for t in tasks {
        total += tokio::time::timeout(Duration::from_secs(60), t)
            .await
            .expect("bounded")
            .unwrap();
    }
    // Each tick once; a scheduler that is behind never re-enqueues an older tick.
    assert!((1..=50).contains(&total), "{total}");
    let ids = fetch_ids(&*h.store, "cron", 1_000).await;
    assert_eq!(ids.len(), total);
    let mut sorted = ids.clone();
    sorted.dedup();
    assert_eq!(sorted.len(), ids.len(), "no tick enqueued twice: {ids:?}");
    assert!(
        h.store
            .enqueue_periodic(
                "every-second",
                Timestamp(T0.0 - 100_000 + 50_000),
                job("cron", 50)
            )
            .await
            .unwrap()
            .is_none()
    );
    assert!(
        h.store
            .enqueue_periodic("other", T0, job("cron", 0))
            .await
            .unwrap()
            .is_some(),
        "schedules are independent"
    );
}

async fn dead_jobs_group_by_error_and_bulk_retry_or_delete_per_queue<S: Store>(h: Harness<S>) {
    let s = &h.store;
    let mut ids = Vec::new();
    for (n, queue, msg) in [
        (1, "q", "smtp down"),
        (2, "q", "smtp down"),
        (3, "q", "bad address"),
        (4, "other", "smtp down"),
    ] {
        let id = s
            .enqueue(job(queue, n).with_max_attempts(1))
            .await
            .unwrap()
            .id;
        let lease = s.fetch(queue, 1, LEASE).await.unwrap().remove(0);
        h.clock.advance(Duration::from_millis(10));
        let failure = Failure {
            kind: FailureKind::Error,
            message: msg.into(),
            retry_at: None,
        };
        s.fail(id, lease.token, failure).await.unwrap();
        ids.push(id);
    }
    let groups = s.dead_by_error(Some("q")).await.unwrap();
    let summary: Vec<(&str, u64, JobId)> = groups
        .iter()
        .map(|g| (g.message.as_str(), g.count, g.example))
        .collect();
    assert_eq!(
        summary,
        vec![("smtp down", 2, ids[1]), ("bad address", 1, ids[2])]
    );
    assert_eq!(
        s.dead_by_error(None).await.unwrap()[0].count,
        3,
        "all queues"
    );
    assert_eq!(s.retry_all_dead("q").await.unwrap(), 3);
    let c = s.counts().await.unwrap();
    assert_eq!(
        (c["q"].dead, c["q"].retrying, c["other"].dead),
        (0, 3, 1),
        "only that queue"
    );
    assert_eq!(s.delete_all_dead("other").await.unwrap(), 1);
    assert!(s.get(ids[3]).await.unwrap().is_none());
    assert_eq!(
        s.delete_all_dead("q").await.unwrap(),
        0,
        "nothing dead left there"
    );
}

fn callbacks() -> BatchCallbacks {
    BatchCallbacks {
        on_success: Some(NewJob::new("callbacks", "batch_done", json!("ok"))),
        on_failure: Some(NewJob::new("callbacks", "batch_failed", json!("failed"))),
    }
}

async fn batch_callback_fires_exactly_once_under_8_concurrent_finishers<S: Store>(h: Harness<S>) {
    let s = &h.store;
    let members: Vec<NewJob> = (0..200).map(|n| job("q", n)).collect();
    let batch = s.enqueue_batch(members, callbacks()).await.unwrap();
    assert_eq!(batch.jobs.len(), 200);
    let leases = s.fetch("q", 200, LEASE).await.unwrap();
    let mut tasks = Vec::new();
    for chunk in leases.chunks(25) {
        let (store, chunk) = (Arc::clone(&h.store), chunk.to_vec());
        tasks.push(tokio::spawn(async move {
            for l in chunk {
                store.complete(l.job.id, l.token).await.unwrap();
            }
        }));
    }
    for t in tasks {
        tokio::time::timeout(Duration::from_secs(60), t)
            .await
            .expect("bounded")
            .unwrap();
    }
    let done = s.fetch("callbacks", 10, LEASE).await.unwrap();
    assert_eq!(done.len(), 1, "exactly one callback");
    assert_eq!(done[0].job.kind, "batch_done");
    assert_eq!(done[0].job.tags, vec![format!("batch:{}", batch.id.0)]);
    assert!(
        s.batch(batch.id).await.unwrap().is_none(),
        "a fired batch is forgotten"
    );
}

async fn batch_with_a_dead_member_fires_on_failure_when_the_last_finishes<S: Store>(h: Harness<S>) {
    let s = &h.store;
    let batch = s
        .enqueue_batch(
            (0..3).map(|n| job("q", n).with_max_attempts(1)).collect(),
            callbacks(),
        )
        .await
        .unwrap();
    let leases = s.fetch("q", 3, LEASE).await.unwrap();
    let failure = Failure {
        kind: FailureKind::Error,
        message: "bad".into(),
        retry_at: None,
    };
    s.fail(leases[0].job.id, leases[0].token, failure)
        .await
        .unwrap();
    s.complete(leases[1].job.id, leases[1].token).await.unwrap();
    let open = s.batch(batch.id).await.unwrap().unwrap();
    assert_eq!(
        (open.total, open.pending, open.succeeded, open.failed),
        (3, 1, 1, 1)
    );
    assert!(
        s.fetch("callbacks", 10, LEASE).await.unwrap().is_empty(),
        "not before the last member"
    );
    s.complete(leases[2].job.id, leases[2].token).await.unwrap();
    let fired = s.fetch("callbacks", 10, LEASE).await.unwrap();
    assert_eq!(
        fired
            .iter()
            .map(|l| l.job.kind.as_str())
            .collect::<Vec<_>>(),
        vec!["batch_failed"]
    );
}

async fn batch_members_cancelled_or_retried_keep_the_count_right<S: Store>(h: Harness<S>) {
    let s = &h.store;
    let batch = s
        .enqueue_batch(
            (0..2).map(|n| job("q", n).with_max_attempts(1)).collect(),
            callbacks(),
        )
        .await
        .unwrap();
    // A dead member revived while the batch is open counts as pending again.
    let first = s.fetch("q", 1, LEASE).await.unwrap().remove(0);
    let failure = Failure {
        kind: FailureKind::Error,
        message: "bad".into(),
        retry_at: None,
    };
    s.fail(first.job.id, first.token, failure).await.unwrap();
    s.retry_dead(first.job.id).await.unwrap();
    assert_eq!(s.batch(batch.id).await.unwrap().unwrap().pending, 2);
    let again = s.fetch("q", 1, LEASE).await.unwrap().remove(0);
    s.complete(again.job.id, again.token).await.unwrap();
    // Cancelling the other (pending) member finishes the batch as failed.
    assert_eq!(
        s.cancel(batch.jobs[1]).await.unwrap(),
        CancelOutcome::Cancelled
    );
    let fired = s.fetch("callbacks", 10, LEASE).await.unwrap();
    assert_eq!(
        fired
            .iter()
            .map(|l| l.job.kind.as_str())
            .collect::<Vec<_>>(),
        vec!["batch_failed"]
    );
    // Bad batches.
    assert!(matches!(
        s.enqueue_batch(Vec::new(), callbacks()).await,
        Err(JobsError::InvalidArgument(_))
    ));
    let unique = vec![job("q", 9).with_unique_key("u")];
    assert!(matches!(
        s.enqueue_batch(unique, callbacks()).await,
        Err(JobsError::InvalidArgument(_))
    ));
    let bad = vec![job("q", 9), job("q", 10).with_max_attempts(0)];
    assert!(matches!(
        s.enqueue_batch(bad, callbacks()).await,
        Err(JobsError::Invalid(InvalidJob::ZeroMaxAttempts))
    ));
}

/// Per-queue index state must not outlive the queue's last job: with queue names chosen
/// at run time (one per tenant, per import, ...) the store's memory and `counts()` used to
/// grow by one entry per name ever used, forever.
async fn a_queue_whose_jobs_are_all_gone_leaves_no_state_behind<S: Store>(h: Harness<S>) {
    let s = &h.store;
    for n in 0..50 {
        let queue = format!("tenant-{n}");
        let done = s.enqueue(job(&queue, n)).await.expect("enqueue").id;
        let cancelled = s.enqueue(job(&queue, n)).await.expect("enqueue").id;
        let dead = s
            .enqueue(job(&queue, n).with_max_attempts(1))
            .await
            .expect("enqueue")
            .id;
        let mut leases = s.fetch(&queue, 2, LEASE).await.expect("fetch");
        assert_eq!(
            s.cancel(cancelled).await.expect("cancel"),
            CancelOutcome::Running
        );
        for lease in leases.drain(..) {
            if lease.job.id == done {
                s.complete(lease.job.id, lease.token)
                    .await
                    .expect("complete");
            } else {
                s.release(lease.job.id, lease.token).await.expect("release");
            }
        }
        assert_eq!(
            s.cancel(cancelled).await.expect("cancel"),
            CancelOutcome::Cancelled
        );
        let lease = s.fetch(&queue, 1, LEASE).await.expect("fetch").remove(0);
        assert_eq!(lease.job.id, dead);
        let failure = Failure {
            kind: FailureKind::Error,
            message: "boom".into(),
            retry_at: None,
        };
        s.fail(dead, lease.token, failure).await.expect("fail");
        assert_eq!(s.counts().await.expect("counts")[&queue].dead, 1);
        s.delete(dead).await.expect("delete");
    }
    let counts = s.counts().await.expect("counts");
    assert!(
        counts.is_empty(),
        "{} queues left: {counts:?}",
        counts.len()
    );
}

macro_rules! conformance {
    ($backend:ident) => {
        mod $backend {
            macro_rules! case {
                ($name:ident) => {
                    case!($name, false);
                };
                ($name:ident, $keep:expr) => {
                    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                    async fn $name() {
                        let Some(harness) =
                            super::IntoHarness::into_harness(super::$backend($keep))
                        else {
                            return;
                        };
                        tokio::time::timeout(
                            std::time::Duration::from_secs(120),
                            super::$name(harness),
                        )
                        .await
                        .expect("test finished within its bound");
                    }
                };
            }
            case!(priority_higher_first_fifo_within_priority);
            case!(fetch_respects_the_limit_and_queues);
            case!(delayed_job_never_runs_early);
            case!(unique_key_with_8_concurrent_enqueuers_creates_exactly_one);
            case!(unique_key_is_free_again_once_the_job_finishes);
            case!(expired_lease_is_recovered_stale_worker_is_fenced_and_second_run_wins);
            case!(ack_after_the_deadline_is_rejected_even_before_any_reap);
            case!(heartbeat_extends_the_lease);
            case!(retries_wait_for_retry_at_then_dead_letter_with_error_history);
            case!(permanent_failure_dead_letters_at_once);
            case!(job_that_keeps_killing_its_worker_is_quarantined);
            case!(release_gives_the_job_back_at_once_without_counting_the_attempt);
            case!(cancel_removes_only_pending_jobs);
            case!(bad_input_is_a_typed_error_and_changes_nothing);
            case!(enqueue_many_is_one_atomic_call_in_order);
            case!(counts_and_list_follow_states);
            case!(kept_completed_jobs_are_listed_as_succeeded, true);
            case!(paused_queue_hands_out_nothing_until_resumed);
            case!(periodic_tick_is_enqueued_once_across_8_racing_schedulers);
            case!(batch_callback_fires_exactly_once_under_8_concurrent_finishers);
            case!(batch_with_a_dead_member_fires_on_failure_when_the_last_finishes);
            case!(batch_members_cancelled_or_retried_keep_the_count_right);
            case!(dead_jobs_group_by_error_and_bulk_retry_or_delete_per_queue);
            case!(a_queue_whose_jobs_are_all_gone_leaves_no_state_behind);
        }
    };
}

conformance!(memory);
conformance!(redb);
#[cfg(feature = "redis")]
conformance!(redis);
#[cfg(feature = "postgres")]
conformance!(postgres);

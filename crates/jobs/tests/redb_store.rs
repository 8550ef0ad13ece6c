//! What only the embedded store does: survive a reopen, give back a dead owner's leases at
//! open, refuse a second owner, and group concurrent commits.

use std::sync::Arc;
use std::time::Duration;

use keel_jobs::{BuildError, FailureKind, MockClock, NewJob, RedbStore, Store, Timestamp};
use serde_json::json;

const LEASE: Duration = Duration::from_secs(30);

fn open(path: &std::path::Path, clock: &MockClock) -> RedbStore {
    RedbStore::builder()
        .path(path)
        .clock(clock.clone())
        .build()
        .expect("open")
}

#[tokio::test]
async fn everything_survives_a_reopen_and_leases_of_the_dead_owner_come_back_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("jobs.redb");
    let clock = MockClock::new(Timestamp(1_000_000));
    let (leased, first_token) = {
        let s = open(&path, &clock);
        s.enqueue(
            NewJob::new("q", "k", json!(1))
                .with_priority(9)
                .with_unique_key("u"),
        )
        .await
        .unwrap();
        s.enqueue(NewJob::new("q", "k", json!(2)).with_delay(Duration::from_secs(60)))
            .await
            .unwrap();
        let dead = s
            .enqueue(NewJob::new("q", "k", json!(3)).with_max_attempts(1))
            .await
            .unwrap()
            .id;
        let lease = s.fetch("q", 1, LEASE).await.unwrap().remove(0); // job 1 (priority 9)
        let d = s.fetch("q", 1, LEASE).await.unwrap().remove(0);
        assert_eq!(d.job.id, dead);
        let failure = keel_jobs::Failure {
            kind: FailureKind::Error,
            message: "x".into(),
            retry_at: None,
        };
        s.fail(dead, d.token, failure).await.unwrap();
        (lease.job.id, lease.token)
    }; // the "process" ends with job 1 leased
    let s = open(&path, &clock);
    // Not a second of waiting for the 30 s lease: the previous owner is gone.
    let c = s.counts().await.unwrap()["q"];
    assert_eq!((c.scheduled, c.retrying, c.running, c.dead), (1, 1, 0, 1));
    assert_eq!(s.stats().lease_recoveries, 1);
    let again = s.fetch("q", 10, LEASE).await.unwrap();
    assert_eq!(again.len(), 1);
    assert_eq!(
        (
            again[0].job.id,
            again[0].job.attempt,
            again[0].job.lease_recoveries
        ),
        (leased, 2, 1)
    );
    assert!(
        again[0].token > first_token,
        "tokens keep increasing across reopen"
    );
    assert!(
        !s.enqueue(NewJob::new("q", "k", json!(4)).with_unique_key("u"))
            .await
            .unwrap()
            .created,
        "unique index rebuilt"
    );
    let next = s.enqueue(NewJob::new("q", "k", json!(5))).await.unwrap().id;
    assert!(next.0 > 3, "ids keep increasing across reopen");
}

#[tokio::test]
async fn a_second_owner_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("jobs.redb");
    let clock = MockClock::new(Timestamp(0));
    let _first = open(&path, &clock);
    let second = RedbStore::builder().path(&path).build();
    assert!(matches!(second, Err(BuildError::Open(_))), "{second:?}");
    assert!(matches!(
        RedbStore::builder().build(),
        Err(BuildError::Missing("path"))
    ));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_enqueues_share_commits() {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(
        RedbStore::builder()
            .path(dir.path().join("jobs.redb"))
            .build()
            .unwrap(),
    );
    let mut tasks = Vec::new();
    for t in 0..64u64 {
        let store = Arc::clone(&store);
        tasks.push(tokio::spawn(async move {
            for i in 0..20u64 {
                store
                    .enqueue(NewJob::new("q", "k", json!(t * 100 + i)))
                    .await
                    .unwrap();
            }
        }));
    }
    for t in tasks {
        tokio::time::timeout(Duration::from_secs(120), t)
            .await
            .expect("bounded")
            .unwrap();
    }
    let stats = store.stats();
    assert_eq!(stats.enqueued, 1_280);
    assert_eq!(stats.committed_changes, 1_280);
    // 1 280 enqueues each returned only after a durable commit, yet far fewer commits
    // (fsyncs) ran: each commit carried every enqueue that arrived while the previous
    // one was being written.
    assert!(
        stats.commits < 1_280 / 2,
        "{} commits for 1 280 enqueues",
        stats.commits
    );
    println!("group commit: 1280 enqueues in {} commits", stats.commits);
}

#[tokio::test]
async fn pause_survives_a_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("jobs.redb");
    let clock = MockClock::new(Timestamp(0));
    {
        let s = open(&path, &clock);
        s.enqueue(NewJob::new("q", "k", json!(1))).await.unwrap();
        s.pause("q").await.unwrap();
    }
    let s = open(&path, &clock);
    assert!(s.counts().await.unwrap()["q"].paused);
    assert!(s.fetch("q", 1, LEASE).await.unwrap().is_empty());
    s.resume("q").await.unwrap();
    drop(s);
    let s = open(&path, &clock);
    assert_eq!(s.fetch("q", 1, LEASE).await.unwrap().len(), 1);
}

#[tokio::test]
async fn an_open_batch_survives_a_reopen_and_fires_once() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("jobs.redb");
    let clock = MockClock::new(Timestamp(0));
    let callbacks = keel_jobs::BatchCallbacks {
        on_success: Some(NewJob::new("cb", "done", json!(null))),
        on_failure: None,
    };
    let id = {
        let s = open(&path, &clock);
        let batch = s
            .enqueue_batch(
                vec![
                    NewJob::new("q", "k", json!(1)),
                    NewJob::new("q", "k", json!(2)),
                ],
                callbacks,
            )
            .await
            .unwrap();
        let l = s.fetch("q", 1, LEASE).await.unwrap().remove(0);
        s.complete(l.job.id, l.token).await.unwrap();
        batch.id
    };
    let s = open(&path, &clock);
    assert_eq!(s.batch(id).await.unwrap().unwrap().pending, 1);
    let l = s.fetch("q", 1, LEASE).await.unwrap().remove(0);
    s.complete(l.job.id, l.token).await.unwrap();
    drop(s);
    let s = open(&path, &clock);
    assert!(s.batch(id).await.unwrap().is_none());
    assert_eq!(
        s.fetch("cb", 10, LEASE).await.unwrap().len(),
        1,
        "the callback is durable with the last ack"
    );
    assert!(
        s.enqueue(NewJob::new("q", "k", json!(3)))
            .await
            .unwrap()
            .id
            .0
            > id.0,
        "ids stay unique"
    );
}

/// Rewrites the stored record of job `id` with `edit` applied to its JSON, directly in
/// the redb file (what a corrupted or hand-edited file looks like to the next open).
fn corrupt_job(path: &std::path::Path, id: u64, edit: impl FnOnce(&mut serde_json::Value)) {
    use redb::ReadableTable;
    const JOBS: redb::TableDefinition<u64, &[u8]> = redb::TableDefinition::new("jobs");
    let db = redb::Database::create(path).unwrap();
    let txn = db.begin_write().unwrap();
    {
        let mut jobs = txn.open_table(JOBS).unwrap();
        let bytes = jobs.get(id).unwrap().unwrap().value().to_vec();
        let mut record: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
        edit(&mut record);
        jobs.insert(id, serde_json::to_vec(&record).unwrap().as_slice())
            .unwrap();
    }
    txn.commit().unwrap();
}

/// A record whose id is at the top of the u64 range used to panic the open with an
/// arithmetic overflow (`id + 1` when computing the next id); the open must refuse the
/// file with a typed error instead.
#[tokio::test]
async fn a_stored_job_id_out_of_range_is_a_typed_open_error_not_a_panic() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("jobs.redb");
    let clock = MockClock::new(Timestamp(1_000_000));
    let id = {
        let s = open(&path, &clock);
        s.enqueue(NewJob::new("q", "k", json!(1))).await.unwrap().id
    };
    corrupt_job(&path, id.0, |r| r["id"] = json!(u64::MAX));
    let err = RedbStore::builder()
        .path(&path)
        .clock(clock.clone())
        .build()
        .expect_err("an out-of-range id is refused");
    assert!(matches!(err, BuildError::Open(_)), "{err:?}");
}

/// A record stored under a key that is not its id would be indexed under the wrong id
/// (two records could claim one id); the open refuses it.
#[tokio::test]
async fn a_stored_job_under_the_wrong_key_is_a_typed_open_error() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("jobs.redb");
    let clock = MockClock::new(Timestamp(1_000_000));
    let id = {
        let s = open(&path, &clock);
        s.enqueue(NewJob::new("q", "k", json!(1))).await.unwrap();
        s.enqueue(NewJob::new("q", "k", json!(2))).await.unwrap().id
    };
    corrupt_job(&path, id.0, |r| r["id"] = json!(id.0 - 1));
    let err = RedbStore::builder()
        .path(&path)
        .clock(clock.clone())
        .build()
        .expect_err("a mismatched key is refused");
    assert!(matches!(err, BuildError::Open(_)), "{err:?}");
}

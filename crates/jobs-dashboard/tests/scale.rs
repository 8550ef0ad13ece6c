//! 200,000 dead jobs in an embedded (redb) store: the overview, the dead list's first and
//! a later page, a job's detail and the failures page, each fetched over HTTP. Prints how
//! long filling and each page took (no timed assertion: the machine's load decides
//! those numbers). `KEEL_DASHBOARD_SCALE_JOBS` changes the count.

mod common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use common::Server;
use futures::future::join_all;
use keel_jobs::{Failure, FailureKind, NewJob, RedbStore, Store};
use serde_json::json;

const ERRORS: [&str; 8] = [
    "smtp: connection refused (10.0.0.7:25)",
    "thumbnail: unsupported image format",
    "http 503 from payments upstream",
    "timeout after 30 s",
    "s3: access denied",
    "decode: expected value at line 1 column 1",
    "db: deadlock detected",
    "rate limited by provider",
];

fn job_count() -> usize {
    std::env::var("KEEL_DASHBOARD_SCALE_JOBS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(200_000)
}

/// Fills `store` with `n` dead jobs over two queues and eight errors: enqueue_many in
/// chunks of 10,000 (one commit each), one fetch per chunk (one commit), and the chunk's
/// fails issued together so the group committer writes them in a few commits.
async fn fill(store: &Arc<RedbStore>, n: usize) {
    const CHUNK: usize = 10_000;
    let mut done = 0;
    while done < n {
        let size = CHUNK.min(n - done);
        let queue = if (done / CHUNK).is_multiple_of(4) {
            "emails"
        } else {
            "thumbnails"
        };
        let jobs = (done..done + size)
            .map(|i| {
                NewJob::new(
                    queue,
                    "process",
                    json!({"n": i, "user": format!("user-{}", i % 977)}),
                )
                .with_max_attempts(1)
            })
            .collect();
        store.enqueue_many(jobs).await.unwrap();
        let leases = store
            .fetch(queue, size, Duration::from_secs(600))
            .await
            .unwrap();
        assert_eq!(leases.len(), size);
        join_all(leases.into_iter().map(|l| {
            let store = Arc::clone(store);
            async move {
                let message = ERRORS[l.job.id.0 as usize % ERRORS.len()].to_owned();
                store
                    .fail(
                        l.job.id,
                        l.token,
                        Failure {
                            kind: FailureKind::Error,
                            message,
                            retry_at: None,
                        },
                    )
                    .await
                    .unwrap()
            }
        }))
        .await;
        done += size;
    }
}

async fn timed_get<S: Store>(s: &Server<S>, path: &str) -> (Duration, common::Response) {
    let start = Instant::now();
    let r = s.get(path).await;
    (start.elapsed(), r)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pages_stay_fast_with_200k_dead_jobs() {
    let n = job_count();
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(
        RedbStore::builder()
            .path(dir.path().join("jobs.redb"))
            .build()
            .unwrap(),
    );
    let start = Instant::now();
    fill(&store, n).await;
    let fill_time = start.elapsed();
    let counts = store.counts().await.unwrap();
    let dead: u64 = counts.values().map(|c| c.dead).sum();
    assert_eq!(dead, n as u64);
    println!(
        "filled {n} dead jobs in {fill_time:.2?} ({:.0} jobs/s)",
        n as f64 / fill_time.as_secs_f64()
    );

    let s = Server::start(Arc::clone(&store)).await;
    // A later page: the cursor in the middle of the id range.
    let middle = n as u64 / 2;
    let pages = [
        ("overview", "/".to_owned()),
        ("dead, first page", "/jobs?state=dead".to_owned()),
        (
            "dead, a later page",
            format!("/jobs?state=dead&after={middle}"),
        ),
        (
            "dead in one queue, later page",
            format!("/jobs?state=dead&queue=emails&after={middle}"),
        ),
        ("job detail", format!("/jobs/{middle}")),
        ("failures", "/failures".to_owned()),
        (
            "failures of one queue",
            "/failures?queue=thumbnails".to_owned(),
        ),
        ("api: queues", "/api/queues".to_owned()),
        (
            "api: dead page",
            format!("/api/jobs?state=dead&after={middle}&limit=100"),
        ),
        ("api: failures", "/api/failures".to_owned()),
    ];
    for (what, path) in &pages {
        // Twice: the first may pay for connection set-up and a cold cache.
        let (first, r) = timed_get(&s, path).await;
        assert_eq!(r.status, 200, "{path}: {}", r.body);
        let (second, _) = timed_get(&s, path).await;
        println!(
            "{what:<32} {path:<52} {first:>10.2?} then {second:>10.2?} ({} bytes)",
            r.body.len()
        );
    }
    let overview = s.get("/").await.body;
    assert!(
        overview.contains(&n.to_string()),
        "the overview shows the total dead count"
    );
    let later = s
        .get(&format!("/api/jobs?state=dead&after={middle}&limit=100"))
        .await
        .json();
    let ids: Vec<u64> = later["jobs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|j| j["id"].as_u64().unwrap())
        .collect();
    assert_eq!(ids, (middle + 1..=middle + 100).collect::<Vec<_>>());
    let failures = s.get("/api/failures").await.json();
    let groups = failures["groups"].as_array().unwrap();
    assert_eq!(groups.len(), ERRORS.len());
    assert_eq!(
        groups
            .iter()
            .map(|g| g["count"].as_u64().unwrap())
            .sum::<u64>(),
        n as u64
    );
    s.stop().await;
}

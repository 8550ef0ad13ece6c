//! kill -9 on the Redis backend: three worker *processes* (`keel-jobs-worker work --redis
//! URL`) share one private redis-server while they are SIGKILLed mid-job, repeatedly, and
//! replaced; 10 000 jobs by default (`KEEL_JOBS_KILL9_JOBS`). Every job completes at
//! least once, none is lost, and every duplicate run is explained by a lease that expired
//! with its killed worker (2 s leases in the worker binary).
#![cfg(feature = "redis")]

use std::process::{Child, Command, Stdio};
use std::time::Duration;

mod kill9_common;

use keel_jobs::RedisStore;

const BIN: &str = env!("CARGO_BIN_EXE_keel-jobs-worker");

fn jobs() -> u64 {
    std::env::var("KEEL_JOBS_KILL9_JOBS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(10_000)
}

fn worker(url: &str, log: &std::path::Path) -> Child {
    Command::new(BIN)
        .args(["work", "--redis", url, log.to_str().unwrap(), "16"])
        .env("KEEL_JOBS_PREFIX", "kill9:")
        .stdout(Stdio::null())
        .spawn()
        .expect("spawn worker")
}

#[test]
fn redis_workers_killed_mid_job_lose_nothing_and_every_duplicate_is_a_recovered_lease() {
    let Some(server) = keel_testkit::redis_or_skip("redis kill -9") else {
        return;
    };
    let url = server.url();
    let n = jobs();
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("runs.log");
    let status = Command::new(BIN)
        .args(["enqueue", "--redis", &url, &n.to_string(), "1000"])
        .env("KEEL_JOBS_PREFIX", "kill9:")
        .stdout(Stdio::null())
        .status()
        .expect("run enqueue");
    assert!(status.success());

    // Three workers at a time; one is killed and replaced every so often.
    let mut workers: Vec<Child> = (0..3).map(|_| worker(&url, &log)).collect();
    let mut kills = 0;
    for round in 0..8u64 {
        std::thread::sleep(Duration::from_millis(120 + round * 53 % 150));
        let victim = (round % 3) as usize;
        if workers[victim].try_wait().unwrap().is_none() {
            workers[victim].kill().expect("SIGKILL");
            kill9_common::wait_bounded(&mut workers[victim], Duration::from_secs(10));
            kills += 1;
        }
        workers[victim] = worker(&url, &log);
    }
    for w in &mut workers {
        let status = kill9_common::wait_bounded(w, Duration::from_secs(300));
        assert!(status.success(), "a worker failed: {status}");
    }

    let runs = kill9_common::read_runs(&log);
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let records = rt.block_on(async {
        let store = RedisStore::builder()
            .url(&url)
            .prefix("kill9:")
            .build()
            .await
            .expect("connect");
        kill9_common::list_all(&store).await
    });
    kill9_common::verify_runs("redis kill -9", n, kills, &records, &runs);
}

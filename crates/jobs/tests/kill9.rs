//! kill -9 on the embedded store: worker *processes* (`keel-jobs-worker`) are killed with
//! SIGKILL mid-run, repeatedly, while 10 000 jobs run (`KEEL_JOBS_KILL9_JOBS` for more):
//! every job completes at least once, none is lost, and every duplicate run is explained
//! by a lease the store recovered. A producer killed mid-`enqueue_many` loses nothing
//! whose call returned Ok.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

mod kill9_common;

use keel_jobs::RedbStore;

const BIN: &str = env!("CARGO_BIN_EXE_keel-jobs-worker");

fn jobs() -> u64 {
    std::env::var("KEEL_JOBS_KILL9_JOBS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(10_000)
}

fn kill9(child: &mut Child) {
    child.kill().expect("SIGKILL"); // std's kill() is SIGKILL on Unix
    kill9_common::wait_bounded(child, Duration::from_secs(10));
}

fn read_all(path: &Path) -> Vec<keel_jobs::JobRecord> {
    let store = RedbStore::builder()
        .path(path)
        .keep_completed(true)
        .build()
        .expect("reopen");
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(kill9_common::list_all(&store))
}

#[test]
fn workers_killed_mid_job_lose_nothing_and_every_duplicate_is_a_recovered_lease() {
    let n = jobs();
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("jobs.redb");
    let log = dir.path().join("runs.log");
    let status = Command::new(BIN)
        .args(["enqueue", store.to_str().unwrap(), &n.to_string(), "1000"])
        .stdout(Stdio::null())
        .status()
        .expect("run enqueue");
    assert!(status.success());

    let mut kills = 0;
    let mut rounds = 0;
    loop {
        rounds += 1;
        assert!(rounds < 100, "workers never finished");
        let mut child = Command::new(BIN)
            .args(["work", store.to_str().unwrap(), log.to_str().unwrap(), "16"])
            .stdout(Stdio::null())
            .spawn()
            .expect("spawn worker");
        if kills < 8 {
            // Kill it somewhere in the middle of its work (pseudo-random, reproducible).
            std::thread::sleep(Duration::from_millis(150 + (rounds * 97 % 250)));
            if child.try_wait().unwrap().is_none() {
                kill9(&mut child);
                kills += 1;
                continue;
            }
        }
        let status = kill9_common::wait_bounded(&mut child, Duration::from_secs(300));
        assert!(status.success(), "last worker failed: {status}");
        break;
    }

    // Runs recorded by handlers (a run is recorded before its ack).
    let runs = kill9_common::read_runs(&log);
    let records = read_all(&store);
    kill9_common::verify_runs("kill -9", n, kills, &records, &runs);
}

#[test]
fn producer_killed_mid_enqueue_many_loses_nothing_that_returned_ok() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("jobs.redb");
    let mut child = Command::new(BIN)
        .args(["enqueue", store.to_str().unwrap(), "100000000", "50"])
        .stdout(Stdio::piped())
        .spawn()
        .expect("spawn producer");
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let mut acked = 0u64;
    for _ in 0..40 {
        let line = rx
            .recv_timeout(Duration::from_secs(60))
            .expect("producer answered")
            .unwrap();
        acked = line.strip_prefix("ok ").unwrap().parse().unwrap();
    }
    kill9(&mut child);
    // Lines printed before the kill but not yet read are acknowledged too.
    while let Ok(Ok(line)) = rx.recv_timeout(Duration::from_secs(5)) {
        acked = line.strip_prefix("ok ").unwrap().parse().unwrap();
    }
    let records = read_all(&store);
    let mut present: Vec<u64> = records
        .iter()
        .map(|r| r.payload["n"].as_u64().unwrap())
        .collect();
    present.sort_unstable();
    assert!(
        present.len() as u64 >= acked,
        "{} jobs stored, {acked} acknowledged",
        present.len()
    );
    assert_eq!(
        present[..acked as usize],
        (0..acked).collect::<Vec<_>>()[..],
        "an acknowledged enqueue is missing"
    );
    assert_eq!(present.len() % 50, 0, "enqueue_many is all-or-nothing");
    println!(
        "kill -9 mid-enqueue_many: {acked} acknowledged, {} stored",
        present.len()
    );
}

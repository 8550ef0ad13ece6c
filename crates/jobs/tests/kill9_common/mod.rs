//! What every kill -9 test (embedded, Redis, Postgres) checks once its workers are done:
//! the store's records against the runs the workers logged.

use std::collections::HashMap;
use std::path::Path;
use std::process::{Child, ExitStatus};
use std::time::{Duration, Instant};

use keel_jobs::{JobRecord, ListFilter, Status, Store};

/// Every job in the store, in id order (keyset pages of 10 000).
pub(crate) async fn list_all<S: Store>(store: &S) -> Vec<JobRecord> {
    let mut all = Vec::new();
    let mut after = None;
    loop {
        let page = store
            .list(ListFilter {
                after,
                limit: 10_000,
                ..ListFilter::default()
            })
            .await
            .unwrap();
        let Some(last) = page.last() else { break };
        after = Some(last.id);
        all.extend(page);
    }
    all
}

/// Asserts that all `n` jobs (payload `{"n": i}`) completed, that each ran at least once,
/// and that every extra run is explained by a lease recovered after a kill. `runs` maps a
/// job's `n` to the attempt numbers its runs logged. Prints the counts under `label`.
pub(crate) fn verify_runs(
    label: &str,
    n: u64,
    kills: u32,
    records: &[JobRecord],
    runs: &HashMap<u64, Vec<u32>>,
) {
    assert_eq!(records.len() as u64, n);
    let (mut duplicates, mut recovered) = (0u64, 0u64);
    for r in records {
        let job_n = r.payload["n"].as_u64().unwrap();
        assert!(
            matches!(r.status, Status::Succeeded { .. }),
            "job {job_n} not completed: {:?}",
            r.status
        );
        let attempts = runs
            .get(&job_n)
            .unwrap_or_else(|| panic!("job {job_n} completed but never ran"));
        let dup = attempts.len() as u32 - 1;
        duplicates += u64::from(dup);
        recovered += u64::from(r.lease_recoveries);
        // Every extra run is explained by a lease that expired with its worker.
        assert!(
            dup <= r.lease_recoveries,
            "job {job_n}: {dup} duplicate runs, {} recovered leases",
            r.lease_recoveries
        );
        // No handler failed, so every attempt beyond the first was a recovered lease.
        assert_eq!(r.attempt, 1 + r.lease_recoveries, "job {job_n}");
        // Distinct runs have distinct attempt numbers (fencing: one holder per attempt).
        let mut sorted = attempts.clone();
        sorted.sort_unstable();
        sorted.dedup();
        assert_eq!(
            sorted.len(),
            attempts.len(),
            "job {job_n} ran twice in one attempt"
        );
    }
    assert_eq!(runs.len() as u64, n, "every job ran");
    println!(
        "{label}: {n} jobs, {kills} workers killed, {} runs, {duplicates} duplicates, {recovered} leases recovered, 0 lost",
        n + duplicates
    );
    assert!(kills >= 1);
}

/// Waits for a child with a bound; kills it and fails the test when the bound passes.
pub(crate) fn wait_bounded(child: &mut Child, bound: Duration) -> ExitStatus {
    let start = Instant::now();
    loop {
        if let Some(status) = child.try_wait().expect("try_wait") {
            return status;
        }
        if start.elapsed() > bound {
            let _ = child.kill();
            let _ = child.wait();
            panic!("child did not finish within {bound:?}");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// The runs the workers' handlers logged (`n worker attempt token`, one line per run, written
/// before the ack): job `n` → the attempt number of each run.
pub(crate) fn read_runs(log: &Path) -> HashMap<u64, Vec<u32>> {
    let mut runs: HashMap<u64, Vec<u32>> = HashMap::new();
    for line in std::fs::read_to_string(log).unwrap().lines() {
        let f: Vec<&str> = line.split(' ').collect();
        if f.len() == 4 {
            runs.entry(f[0].parse().unwrap())
                .or_default()
                .push(f[2].parse().unwrap());
        }
    }
    runs
}

//! Cron jobs: once per tick with three schedulers on one store, never before the tick,
//! not again after a restart, and bad expressions rejected.

use std::sync::Arc;
use std::time::Duration;

use keel_jobs::{BuildError, MockClock, NewJob, Periodic, RedbStore, Store, Timestamp};
use serde_json::json;

/// 2023-11-14 22:13:20 UTC.
const T0: Timestamp = Timestamp(1_700_000_000_000);

fn report() -> NewJob {
    NewJob::new("cron", "report", json!(null))
}

#[tokio::test]
async fn three_schedulers_fire_each_tick_exactly_once_and_a_restart_does_not_refire() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("jobs.redb");
    let clock = MockClock::new(T0);
    let mut fired_total = 0;
    {
        let store = Arc::new(
            RedbStore::builder()
                .path(&path)
                .clock(clock.clone())
                .build()
                .unwrap(),
        );
        let mut schedulers: Vec<_> = (0..3)
            .map(|_| {
                Periodic::builder(Arc::clone(&store))
                    .schedule_job("every-5s", "*/5 * * * * *", report())
                    .build()
                    .unwrap()
            })
            .collect();
        // 60 s in 1 s steps; the schedulers take turns in a different order each second.
        for second in 0..60usize {
            clock.advance(Duration::from_secs(1));
            for i in 0..3 {
                fired_total += schedulers[(second + i) % 3].tick().await.unwrap();
            }
        }
        assert_eq!(
            fired_total, 12,
            "one job per 5 s tick in 60 s, not 3 per tick"
        );
        assert_eq!(store.counts().await.unwrap()["cron"].available, 12);
    }
    // Restart within the same tick window: a fresh scheduler must not enqueue the
    // last tick again, and the next tick fires once.
    let store = Arc::new(
        RedbStore::builder()
            .path(&path)
            .clock(clock.clone())
            .build()
            .unwrap(),
    );
    let mut again = Periodic::builder(Arc::clone(&store))
        .schedule_job("every-5s", "*/5 * * * * *", report())
        .build()
        .unwrap();
    assert_eq!(again.tick().await.unwrap(), 0);
    clock.advance(Duration::from_secs(5));
    assert_eq!(again.tick().await.unwrap(), 1);
    assert_eq!(store.counts().await.unwrap()["cron"].available, 13);
}

#[tokio::test]
async fn a_periodic_job_never_fires_before_its_tick() {
    let clock = MockClock::new(T0); // 22:13:20
    let store = Arc::new(
        keel_jobs::MemoryStore::builder()
            .clock(clock.clone())
            .build(),
    );
    let mut cron = Periodic::builder(Arc::clone(&store))
        .schedule_job("hourly", "0 * * * *", report())
        .build()
        .unwrap();
    // Until 23:00:00 nothing; at 23:00:00 exactly one.
    let until_hour = 46 * 60 + 40; // seconds from 22:13:20 to 23:00:00
    for _ in 0..until_hour - 1 {
        clock.advance(Duration::from_secs(1));
        assert_eq!(
            cron.tick().await.unwrap(),
            0,
            "fired early at {}",
            keel_jobs::Clock::now(&clock)
        );
    }
    clock.advance(Duration::from_secs(1));
    assert_eq!(cron.tick().await.unwrap(), 1);
    assert_eq!(cron.tick().await.unwrap(), 0);
    // Down for three hours: the missed ticks collapse into one run.
    clock.advance(Duration::from_secs(3 * 3600));
    assert_eq!(cron.tick().await.unwrap(), 1);
}

#[test]
fn bad_schedules_are_typed_errors() {
    let store = Arc::new(keel_jobs::MemoryStore::builder().build());
    let b = || Periodic::builder(Arc::clone(&store));
    assert!(matches!(
        b().schedule_job("x", "not cron", report()).build(),
        Err(BuildError::Cron { .. })
    ));
    assert!(matches!(
        b().schedule_job("x", "61 * * * *", report()).build(),
        Err(BuildError::Cron { .. })
    ));
    assert!(matches!(
        b().schedule_job("x", "* * * * *", report()).schedule_job("x", "0 * * * *", report()).build(),
        Err(BuildError::DuplicateSchedule(n)) if n == "x"
    ));
    assert!(matches!(
        b().schedule_job("x", "* * * * *", report().with_max_attempts(0))
            .build(),
        Err(BuildError::InvalidPeriodicJob { .. })
    ));
}

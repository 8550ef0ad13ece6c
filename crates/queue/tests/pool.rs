//! The work-stealing pool: exactly-once execution, nested spawns, contained
//! panics, stealing, graceful and immediate shutdown.

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::mpsc;

use keel_queue::{BuildError, Pool, Spawner, TaskError};

#[test]
fn zero_threads_is_a_typed_error() {
    let _watchdog = common::watchdog();
    assert_eq!(Pool::new(0).unwrap_err(), BuildError::ZeroThreads);
}

#[test]
fn hundred_thousand_tasks_each_run_exactly_once() {
    let _watchdog = common::watchdog();
    let pool = Pool::new(4).unwrap();
    let n = 100_000;
    let hits: Arc<Vec<AtomicU64>> = Arc::new((0..n).map(|_| AtomicU64::new(0)).collect());
    let handles: Vec<_> = (0..n)
        .map(|i| {
            let hits = hits.clone();
            pool.spawn(move || {
                hits[i].fetch_add(1, Ordering::Relaxed);
                i
            })
        })
        .collect();
    for (i, handle) in handles.into_iter().enumerate() {
        assert_eq!(handle.join(), Ok(i));
    }
    assert!(hits.iter().all(|h| h.load(Ordering::Relaxed) == 1));
    let stats = pool.shutdown();
    assert_eq!(stats.tasks_run(), n as u64);
    assert_eq!(stats.spawned(), n as u64);
    assert_eq!(stats.pending, 0);
}

fn tree(spawner: Spawner, depth: u32, leaves: Arc<AtomicUsize>) {
    if depth == 0 {
        leaves.fetch_add(1, Ordering::Relaxed);
        return;
    }
    for _ in 0..2 {
        let (s, l) = (spawner.clone(), leaves.clone());
        spawner.spawn(move || tree(s, depth - 1, l));
    }
}

#[test]
fn nested_spawns_all_run() {
    let _watchdog = common::watchdog();
    let pool = Pool::new(3).unwrap();
    let leaves = Arc::new(AtomicUsize::new(0));
    let (s, l) = (pool.spawner(), leaves.clone());
    pool.spawn(move || tree(s, 12, l));
    pool.wait_idle();
    assert_eq!(leaves.load(Ordering::Relaxed), 1 << 12);
    assert_eq!(pool.stats().tasks_run(), (1 << 13) - 1);
}

fn fib(spawner: &Spawner, n: u64) -> u64 {
    if n < 2 {
        return n;
    }
    let s = spawner.clone();
    let left = spawner.spawn(move || fib(&s, n - 1));
    let right = fib(spawner, n - 2);
    left.join().unwrap() + right
}

#[test]
fn nested_join_inside_tasks_does_not_deadlock() {
    let _watchdog = common::watchdog();
    // Joining inside a task helps run other tasks, so even one worker finishes.
    for threads in [1, 2] {
        let pool = Pool::new(threads).unwrap();
        let s = pool.spawner();
        assert_eq!(pool.spawn(move || fib(&s, 18)).join(), Ok(2584));
    }
}

#[test]
fn panics_are_contained_and_reported() {
    let _watchdog = common::watchdog();
    let pool = Pool::new(2).unwrap();
    let handles: Vec<_> = (0..100)
        .map(|i| {
            pool.spawn(move || {
                if i % 10 == 0 {
                    panic!("task {i} failed");
                }
                i
            })
        })
        .collect();
    for (i, handle) in handles.into_iter().enumerate() {
        match handle.join() {
            Ok(v) => assert_eq!(v, i),
            Err(TaskError::Panicked(message)) => {
                assert_eq!(i % 10, 0);
                assert_eq!(message, format!("task {i} failed"));
            }
            Err(other) => panic!("unexpected {other:?}"),
        }
    }
    // Workers survived: the pool still runs tasks on every worker.
    assert_eq!(pool.spawn(|| 7).join(), Ok(7));
    // Counters are bumped just after a task's result is published.
    pool.wait_idle();
    let stats = pool.stats();
    assert_eq!(stats.tasks_run(), 101);
    assert_eq!(stats.workers.iter().map(|w| w.panicked).sum::<u64>(), 10);
}

#[test]
fn skewed_workload_is_stolen() {
    let _watchdog = common::watchdog();
    let pool = Pool::new(2).unwrap();
    let done = Arc::new(AtomicUsize::new(0));
    let (s, d) = (pool.spawner(), done.clone());
    // One task spawns all the work onto its own worker's deque; the other,
    // idle worker must steal to help.
    pool.spawn(move || {
        for _ in 0..2_000 {
            let d = d.clone();
            s.spawn(move || {
                let mut x = 0u64;
                for i in 0..20_000u64 {
                    x = x.wrapping_mul(31).wrapping_add(i);
                }
                std::hint::black_box(x);
                d.fetch_add(1, Ordering::Relaxed);
            });
        }
    });
    pool.wait_idle();
    assert_eq!(done.load(Ordering::Relaxed), 2_000);
    let stats = pool.stats();
    assert!(stats.steals() > 0, "no steals: {stats:?}");
}

#[test]
fn graceful_shutdown_runs_everything_queued() {
    let _watchdog = common::watchdog();
    let pool = Pool::new(2).unwrap();
    let ran = Arc::new(AtomicUsize::new(0));
    let handles: Vec<_> = (0..10_000)
        .map(|_| {
            let ran = ran.clone();
            pool.spawn(move || {
                ran.fetch_add(1, Ordering::Relaxed);
            })
        })
        .collect();
    let stats = pool.shutdown();
    assert_eq!(ran.load(Ordering::Relaxed), 10_000);
    assert_eq!(stats.tasks_run(), 10_000);
    assert_eq!(stats.never_started, 0);
    assert!(handles.into_iter().all(|h| h.join() == Ok(())));
}

#[test]
fn immediate_shutdown_counts_tasks_that_never_started() {
    let _watchdog = common::watchdog();
    let pool = Pool::new(1).unwrap();
    // Occupy the only worker until shutdown has been requested.
    let (started_tx, started_rx) = mpsc::channel();
    let spawner = pool.spawner();
    let blocker = pool.spawn(move || {
        started_tx.send(()).unwrap();
        while !spawner.is_shut_down() {
            std::thread::yield_now();
        }
    });
    started_rx.recv().unwrap();
    let ran = Arc::new(AtomicUsize::new(0));
    let handles: Vec<_> = (0..500)
        .map(|_| {
            let ran = ran.clone();
            pool.spawn(move || {
                ran.fetch_add(1, Ordering::Relaxed);
            })
        })
        .collect();
    let never_started = pool.shutdown_now();
    assert_eq!(blocker.join(), Ok(()), "the running task finished");
    assert_eq!(never_started, 500);
    assert_eq!(ran.load(Ordering::Relaxed), 0);
    assert!(
        handles
            .into_iter()
            .all(|h| h.join() == Err(TaskError::Cancelled))
    );
}

#[test]
fn spawning_after_shutdown_reports_cancelled() {
    let _watchdog = common::watchdog();
    let pool = Pool::new(1).unwrap();
    let spawner = pool.spawner();
    pool.shutdown();
    assert_eq!(spawner.spawn(|| 1).join(), Err(TaskError::Cancelled));
}

#[test]
fn execute_runs_fire_and_forget_tasks_and_counts_panics() {
    let _watchdog = common::watchdog();
    let pool = Pool::new(2).unwrap();
    let ran = Arc::new(AtomicUsize::new(0));
    for i in 0..1_000 {
        let ran = ran.clone();
        pool.execute(move || {
            if i % 100 == 0 {
                panic!("detached {i}");
            }
            ran.fetch_add(1, Ordering::Relaxed);
        });
    }
    pool.wait_idle();
    assert_eq!(ran.load(Ordering::Relaxed), 990);
    let stats = pool.stats();
    assert_eq!(stats.workers.iter().map(|w| w.panicked).sum::<u64>(), 10);
    assert_eq!(stats.tasks_run(), 1_000);
}

#[test]
fn join_from_many_threads_while_tasks_complete() {
    let _watchdog = common::watchdog();
    // Handles joined from outside threads at the same time as completion
    // (the WAITING handshake in the task state).
    let pool = Pool::new(2).unwrap();
    let handles: Vec<_> = (0..2_000u64).map(|i| pool.spawn(move || i * 2)).collect();
    let mut joiners = Vec::new();
    for chunk in handles.into_iter().collect::<Vec<_>>().chunks_mut(500) {
        let mine: Vec<_> = chunk
            .iter_mut()
            .map(|h| std::mem::replace(h, pool.spawn(|| 0)))
            .collect();
        joiners.push(std::thread::spawn(move || {
            mine.into_iter().map(|h| h.join().unwrap()).sum::<u64>()
        }));
    }
    let total: u64 = joiners.into_iter().map(|j| j.join().unwrap()).sum();
    assert_eq!(total, (0..2_000u64).map(|i| i * 2).sum());
    pool.wait_idle();
}

#[test]
fn a_spawn_failure_keeps_the_io_error_as_its_source() {
    use std::error::Error as _;
    let _watchdog = common::watchdog();
    let error = BuildError::Spawn(Arc::new(std::io::Error::new(
        std::io::ErrorKind::OutOfMemory,
        "no more threads",
    )));
    assert_eq!(error.to_string(), "could not start a worker thread");
    let source = error.source().expect("the io::Error is kept");
    assert_eq!(source.to_string(), "no more threads");
}

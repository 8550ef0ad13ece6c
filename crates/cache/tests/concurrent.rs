//! `Cache`: many-thread stress with invariants, single-flight loading from 64
//! threads (value, shared error, panic), async cancellation, TTL sweeping,
//! metrics.

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant};

use keel_cache::{BuildError, Cache, LoadError, Policy, RemovalCause};

/// Spins until `cond` holds or 10 s pass (a generous bound for a broken
/// implementation, never a pass/fail decision for a correct one).
fn wait_until(mut cond: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + Duration::from_secs(10);
    while Instant::now() < deadline {
        if cond() {
            return true;
        }
        std::thread::yield_now();
    }
    cond()
}

#[derive(Debug, thiserror::Error)]
#[error("database is down")]
struct DbDown;

#[test]
fn rejects_bad_configuration() {
    assert!(matches!(
        Cache::<u64, u64>::new(0).unwrap_err(),
        BuildError::ZeroCapacity
    ));
    assert!(matches!(
        Cache::<u64, u64>::builder()
            .max_capacity(64)
            .shards(3)
            .build()
            .unwrap_err(),
        BuildError::InvalidShards(3)
    ));
    assert!(matches!(
        Cache::<u64, u64>::builder()
            .max_capacity(64)
            .sweep_interval(Duration::ZERO)
            .build()
            .unwrap_err(),
        BuildError::ZeroSweepInterval
    ));
    assert!(matches!(
        Cache::<u64, u64>::builder()
            .max_capacity(64)
            .default_ttl(Duration::ZERO)
            .build()
            .unwrap_err(),
        BuildError::ZeroTimeToLive
    ));
}

#[test]
fn is_send_sync_and_clones_share_state() {
    fn assert_send_sync<T: Send + Sync>() {}
    assert_send_sync::<Cache<String, Vec<u8>>>();
    let a: Cache<u64, u64> = Cache::new(100).unwrap();
    let b = a.clone();
    a.insert(1, 1);
    assert_eq!(b.get(&1), Some(1));
}

#[test]
fn get_or_load_from_64_threads_calls_the_loader_once() {
    const THREADS: usize = 64;
    let cache: Cache<&'static str, u64> = Cache::new(1_000).unwrap();
    let calls = Arc::new(AtomicUsize::new(0));
    let barrier = Arc::new(Barrier::new(THREADS));
    let handles: Vec<_> = (0..THREADS)
        .map(|_| {
            let (cache, calls, barrier) = (cache.clone(), Arc::clone(&calls), Arc::clone(&barrier));
            std::thread::spawn(move || {
                barrier.wait();
                let probe = cache.clone();
                cache.get_or_load("cold", move || {
                    calls.fetch_add(1, Ordering::SeqCst);
                    // Hold the load open until every caller has missed and
                    // joined, so all 63 others really are waiters.
                    assert!(wait_until(|| probe.stats().misses == THREADS as u64));
                    42
                })
            })
        })
        .collect();
    for h in handles {
        assert_eq!(h.join().unwrap().unwrap(), 42);
    }
    assert_eq!(calls.load(Ordering::SeqCst), 1);
    let stats = cache.stats();
    assert_eq!(stats.loads_ok, 1);
    assert_eq!(stats.misses, THREADS as u64);
    assert_eq!(cache.pending_loads(), 0, "in-flight state is cleaned up");
    assert_eq!(cache.get(&"cold"), Some(42));
}

#[test]
fn waiters_share_the_same_error_and_errors_are_not_cached() {
    const THREADS: usize = 64;
    let cache: Cache<u64, u64> = Cache::new(1_000).unwrap();
    let calls = Arc::new(AtomicUsize::new(0));
    let barrier = Arc::new(Barrier::new(THREADS));
    let handles: Vec<_> = (0..THREADS)
        .map(|_| {
            let (cache, calls, barrier) = (cache.clone(), Arc::clone(&calls), Arc::clone(&barrier));
            std::thread::spawn(move || {
                barrier.wait();
                let probe = cache.clone();
                cache.try_get_or_load(7, move || {
                    calls.fetch_add(1, Ordering::SeqCst);
                    assert!(wait_until(|| probe.stats().misses == THREADS as u64));
                    Err::<u64, _>(DbDown)
                })
            })
        })
        .collect();
    let errors: Vec<LoadError> = handles
        .into_iter()
        .map(|h| h.join().unwrap().unwrap_err())
        .collect();
    assert_eq!(calls.load(Ordering::SeqCst), 1);
    let LoadError::Failed(first) = &errors[0] else {
        panic!("expected Failed, got {:?}", errors[0])
    };
    for err in &errors {
        let LoadError::Failed(e) = err else {
            panic!("expected Failed, got {err:?}")
        };
        assert!(Arc::ptr_eq(first, e), "every waiter gets the same error");
        assert!(err.downcast_ref::<DbDown>().is_some());
    }
    assert_eq!(cache.stats().loads_failed, 1);
    assert_eq!(cache.pending_loads(), 0);
    // The error was not cached: the next call loads again.
    assert_eq!(cache.get_or_load(7, || 8).unwrap(), 8);
}

#[test]
fn panicking_loader_gives_everyone_an_error_not_a_hang() {
    const THREADS: usize = 64;
    let cache: Cache<u64, u64> = Cache::new(1_000).unwrap();
    let barrier = Arc::new(Barrier::new(THREADS));
    let handles: Vec<_> = (0..THREADS)
        .map(|_| {
            let (cache, barrier) = (cache.clone(), Arc::clone(&barrier));
            std::thread::spawn(move || {
                barrier.wait();
                let probe = cache.clone();
                cache.get_or_load(1, move || {
                    assert!(wait_until(|| probe.stats().misses == THREADS as u64));
                    panic!("loader exploded")
                })
            })
        })
        .collect();
    for h in handles {
        match h
            .join()
            .expect("the panic is contained, the thread does not die")
        {
            Err(LoadError::Panicked(msg)) => assert!(msg.contains("loader exploded")),
            other => panic!("expected Panicked, got {other:?}"),
        }
    }
    assert_eq!(cache.pending_loads(), 0);
    assert_eq!(cache.stats().loads_failed, 1);
    assert_eq!(cache.get_or_load(1, || 2).unwrap(), 2);
}

#[test]
fn a_weigher_panic_while_storing_a_load_does_not_hang_the_waiters() {
    let cache: Cache<u64, u64> = Cache::builder()
        .max_capacity(1_000)
        .weigher(|_, v| if *v == 13 { panic!("bad weight") } else { 1 })
        .build()
        .unwrap();
    let barrier = Arc::new(Barrier::new(2));
    let handles: Vec<_> = (0..2)
        .map(|_| {
            let (cache, barrier) = (cache.clone(), Arc::clone(&barrier));
            std::thread::spawn(move || {
                barrier.wait();
                let probe = cache.clone();
                let (tx, rx) = std::sync::mpsc::channel();
                let caller = std::thread::spawn(move || {
                    let _ = tx.send(cache.get_or_load(1, move || {
                        assert!(wait_until(|| probe.stats().misses == 2));
                        13
                    }));
                });
                // The leader's own thread unwinds (the weigher is its caller's
                // code); a waiter gets an error within the bound, never a hang.
                let got = rx.recv_timeout(Duration::from_secs(10));
                if got.is_ok() || caller.is_finished() {
                    let _ = caller.join();
                }
                got
            })
        })
        .collect();
    let results: Vec<_> = handles.into_iter().map(|h| h.join().unwrap()).collect();
    let waiter_errors = results
        .iter()
        .filter(|r| matches!(r, Ok(Err(LoadError::Panicked(_)))))
        .count();
    let leader_unwound = results
        .iter()
        .filter(|r| matches!(r, Err(std::sync::mpsc::RecvTimeoutError::Disconnected)))
        .count();
    assert_eq!((waiter_errors, leader_unwound), (1, 1), "{results:?}");
    assert_eq!(cache.pending_loads(), 0);
    assert_eq!(cache.get_or_load(1, || 2).unwrap(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn async_waiters_get_cancelled_when_the_leader_is_dropped() {
    let cache: Cache<u64, u64> = Cache::new(100).unwrap();
    let (started_tx, started_rx) = tokio::sync::oneshot::channel::<()>();
    let leader = {
        let cache = cache.clone();
        tokio::spawn(async move {
            cache
                .try_get_or_load_async(5, || async move {
                    let _ = started_tx.send(());
                    std::future::pending::<Result<u64, DbDown>>().await
                })
                .await
        })
    };
    started_rx.await.unwrap();
    let waiters: Vec<_> = (0..32)
        .map(|_| {
            let cache = cache.clone();
            tokio::spawn(async move {
                cache
                    .try_get_or_load_async(5, || async { Ok::<_, DbDown>(0) })
                    .await
            })
        })
        .collect();
    let probe = cache.clone();
    tokio::time::timeout(Duration::from_secs(10), async {
        while probe.stats().misses < 33 {
            tokio::task::yield_now().await;
        }
    })
    .await
    .expect("waiters joined");
    leader.abort();
    for w in waiters {
        assert!(matches!(w.await.unwrap(), Err(LoadError::Cancelled)));
    }
    assert_eq!(cache.pending_loads(), 0);
    assert_eq!(
        cache
            .try_get_or_load_async(5, || async { Ok::<_, DbDown>(9) })
            .await
            .unwrap(),
        9
    );
}

#[test]
fn insert_during_a_load_wins_over_the_loaded_value() {
    let cache: Cache<u64, u64> = Cache::new(100).unwrap();
    let writer = cache.clone();
    let loaded = cache.get_or_load(1, || {
        writer.insert(1, 100); // a newer write lands while the load runs
        1
    });
    assert_eq!(loaded.unwrap(), 1, "the caller still gets what it loaded");
    assert_eq!(
        cache.get(&1),
        Some(100),
        "but the stale load did not overwrite the write"
    );
}

#[test]
fn a_miss_after_a_superseding_insert_starts_a_fresh_load() {
    // One shard of one entry, so a second insert evicts the first.
    let cache: Cache<u64, u64> = Cache::builder().max_capacity(1).shards(1).build().unwrap();
    let writer = cache.clone();
    let (mut pending, mut fresh) = (None, None);
    let loaded = cache.get_or_load(1, || {
        writer.insert(1, 100); // supersedes this load
        pending = Some(writer.pending_loads());
        writer.insert(2, 200); // evicts key 1
        // A new miss on key 1 must start its own load, not join the
        // superseded one (it would get the stale value, after waiting for it).
        let (tx, rx) = std::sync::mpsc::channel();
        let other = writer.clone();
        std::thread::spawn(move || {
            let _ = tx.send(other.get_or_load(1, || 300).ok());
        });
        fresh = rx.recv_timeout(Duration::from_secs(10)).ok().flatten();
        1
    });
    assert_eq!(loaded.unwrap(), 1, "the leader still gets what it loaded");
    assert_eq!(pending, Some(0), "the insert dropped the superseded flight");
    assert_eq!(fresh, Some(300), "the next miss ran its own loader");
    assert_eq!(cache.get(&1), Some(300), "the stale load was not stored");
    assert_eq!(cache.pending_loads(), 0);
}

#[test]
fn stress_many_threads_keep_invariants() {
    const THREADS: u64 = 8;
    const OPS: u64 = 40_000;
    const CAPACITY: u64 = 256;
    for policy in [Policy::Lru, Policy::Sieve, Policy::S3Fifo, Policy::TinyLfu] {
        let evicted = Arc::new(AtomicU64::new(0));
        let removed = Arc::new(AtomicU64::new(0));
        let replaced = Arc::new(AtomicU64::new(0));
        let (e, r, p) = (
            Arc::clone(&evicted),
            Arc::clone(&removed),
            Arc::clone(&replaced),
        );
        let cache: Cache<u64, u64> = Cache::builder()
            .max_capacity(CAPACITY)
            .policy(policy)
            .shards(4)
            .eviction_listener(move |k, v, cause| {
                assert_eq!(v / 1_000_000, *k, "a value never crosses keys");
                match cause {
                    RemovalCause::Evicted => e.fetch_add(1, Ordering::Relaxed),
                    RemovalCause::Removed => r.fetch_add(1, Ordering::Relaxed),
                    RemovalCause::Replaced => p.fetch_add(1, Ordering::Relaxed),
                    RemovalCause::Expired => 0,
                };
            })
            .build()
            .unwrap();
        let lookups = Arc::new(AtomicU64::new(0));
        let handles: Vec<_> = (0..THREADS)
            .map(|t| {
                let (cache, lookups) = (cache.clone(), Arc::clone(&lookups));
                std::thread::spawn(move || {
                    let mut x = t.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
                    let mut removes = 0;
                    for i in 0..OPS {
                        x ^= x << 13;
                        x ^= x >> 7;
                        x ^= x << 17;
                        let key = x % 1_024;
                        let value = key * 1_000_000 + (i % 1_000);
                        match x % 10 {
                            0..=4 => {
                                lookups.fetch_add(1, Ordering::Relaxed);
                                if let Some(v) = cache.get(&key) {
                                    assert_eq!(v / 1_000_000, key);
                                }
                            }
                            5..=7 => cache.insert(key, value),
                            8 => {
                                lookups.fetch_add(1, Ordering::Relaxed);
                                let v = cache.get_or_load(key, || value).unwrap();
                                assert_eq!(v / 1_000_000, key);
                            }
                            _ => {
                                if cache.remove(&key).is_some() {
                                    removes += 1;
                                }
                            }
                        }
                        if i % 997 == 0 {
                            assert!(cache.len() <= CAPACITY);
                        }
                    }
                    removes
                })
            })
            .collect();
        let removes: u64 = handles.into_iter().map(|h| h.join().unwrap()).sum();
        let stats = cache.stats();
        assert!(cache.len() <= CAPACITY);
        assert_eq!(
            stats.hits + stats.misses,
            lookups.load(Ordering::Relaxed),
            "{policy:?}: every lookup counted once"
        );
        assert_eq!(removed.load(Ordering::Relaxed), removes);
        assert_eq!(stats.evictions, evicted.load(Ordering::Relaxed));
        // Conservation: everything inserted is still there or left exactly once.
        assert_eq!(
            stats.inserts,
            cache.len()
                + evicted.load(Ordering::Relaxed)
                + removes
                + replaced.load(Ordering::Relaxed),
            "{policy:?}"
        );
        assert_eq!(cache.pending_loads(), 0);
    }
}

#[test]
fn operations_expire_their_shard_and_run_pending_tasks_expires_all() {
    let (clock, mock) = quanta::Clock::mock();
    let expired = Arc::new(AtomicU64::new(0));
    let counter = Arc::clone(&expired);
    let cache: Cache<u64, u64> = Cache::builder()
        .max_capacity(10_000)
        .shards(8)
        .default_ttl(Duration::from_secs(60))
        .clock(clock)
        .eviction_listener(move |_, _, cause| {
            if cause == RemovalCause::Expired {
                counter.fetch_add(1, Ordering::Relaxed);
            }
        })
        .build()
        .unwrap();
    for i in 0..5_000 {
        cache.insert(i, i);
    }
    cache.insert_with_ttl(999_999, 1, Duration::from_secs(3_600));
    mock.increment(Duration::from_secs(61));
    assert_eq!(cache.get(&1), None, "expired entries are never returned");
    cache.run_pending_tasks();
    assert_eq!(expired.load(Ordering::Relaxed), 5_000);
    assert_eq!(cache.len(), 1);
    assert_eq!(cache.stats().expirations, 5_000);
}

#[test]
fn background_sweeper_expires_idle_entries() {
    let (clock, mock) = quanta::Clock::mock();
    let (tx, rx) = std::sync::mpsc::channel();
    let cache: Cache<u64, u64> = Cache::builder()
        .max_capacity(1_000)
        .default_ttl(Duration::from_secs(1))
        .clock(clock)
        .sweep_interval(Duration::from_millis(5))
        .eviction_listener(move |k, _, cause| {
            let _ = tx.send((*k, cause));
        })
        .build()
        .unwrap();
    for i in 0..100 {
        cache.insert(i, i);
    }
    mock.increment(Duration::from_secs(2));
    // Nobody touches the cache: the sweeper must find all 100.
    let mut seen = 0;
    while seen < 100 {
        let (_, cause) = rx
            .recv_timeout(Duration::from_secs(10))
            .expect("sweeper expired the entries");
        assert_eq!(cause, RemovalCause::Expired);
        seen += 1;
    }
    assert_eq!(cache.len(), 0);
}

#[test]
fn counters_reach_the_metrics_facade() {
    use metrics_util::debugging::{DebugValue, DebuggingRecorder};
    let recorder = DebuggingRecorder::new();
    let snapshotter = recorder.snapshotter();
    metrics::with_local_recorder(&recorder, || {
        let cache: Cache<u64, u64> = Cache::builder()
            .max_capacity(10)
            .name("users")
            .build()
            .unwrap();
        cache.insert(1, 1);
        for _ in 0..3 {
            cache.get(&1);
        }
        cache.get(&2);
        cache.stats();
    });
    let counters: Vec<(String, u64)> = snapshotter
        .snapshot()
        .into_vec()
        .into_iter()
        .filter_map(|(key, _, _, value)| match value {
            DebugValue::Counter(n) => Some((key.key().name().to_string(), n)),
            _ => None,
        })
        .collect();
    assert!(
        counters.contains(&("keel_cache_hits_total".to_string(), 3)),
        "{counters:?}"
    );
    assert!(
        counters.contains(&("keel_cache_misses_total".to_string(), 1)),
        "{counters:?}"
    );
    assert!(
        counters.contains(&("keel_cache_inserts_total".to_string(), 1)),
        "{counters:?}"
    );
}

#[test]
fn stress_with_ttls_and_a_moving_clock_conserves_entries() {
    const THREADS: u64 = 4;
    const OPS: u64 = 30_000;
    let (clock, mock) = quanta::Clock::mock();
    let counts: Arc<[AtomicU64; 4]> = Arc::new(Default::default());
    let sink = Arc::clone(&counts);
    let cache: Cache<u64, u64> = Cache::builder()
        .max_capacity(200)
        .shards(4)
        .default_ttl(Duration::from_millis(20))
        .clock(clock)
        .eviction_listener(move |_, _, cause| {
            let i = match cause {
                RemovalCause::Evicted => 0,
                RemovalCause::Expired => 1,
                RemovalCause::Replaced => 2,
                RemovalCause::Removed => 3,
            };
            sink[i].fetch_add(1, Ordering::Relaxed);
        })
        .build()
        .unwrap();
    let handles: Vec<_> = (0..THREADS)
        .map(|t| {
            let (cache, mock) = (cache.clone(), Arc::clone(&mock));
            std::thread::spawn(move || {
                let mut x = (t + 1).wrapping_mul(0x2545_F491_4F6C_DD1D);
                for i in 0..OPS {
                    x ^= x << 13;
                    x ^= x >> 7;
                    x ^= x << 17;
                    let key = x % 512;
                    match x % 8 {
                        0 => mock.increment(Duration::from_micros(x % 700)),
                        1 => cache.insert_with_ttl(key, key, Duration::from_millis(x % 50)),
                        2 | 3 => cache.insert(key, key),
                        4 => {
                            cache.remove(&key);
                        }
                        _ => {
                            if let Some(v) = cache.get(&key) {
                                assert_eq!(v, key);
                            }
                        }
                    }
                    if i % 1_000 == 0 {
                        assert!(cache.len() <= 200);
                    }
                }
            })
        })
        .collect();
    for h in handles {
        h.join().unwrap();
    }
    mock.increment(Duration::from_secs(1));
    cache.run_pending_tasks();
    let stats = cache.stats();
    let [evicted, expired, replaced, removed] =
        [0, 1, 2, 3].map(|i| counts[i].load(Ordering::Relaxed));
    assert_eq!(cache.len(), 0, "everything expired after a second");
    assert_eq!(stats.expirations, expired);
    assert_eq!(stats.evictions, evicted);
    assert_eq!(
        stats.inserts,
        evicted + expired + replaced + removed,
        "every insert left exactly once"
    );
}

/// Issue 10 item 1, through the concurrent cache: growing an entry that
/// still fits its shard keeps it; the listener sees only `Replaced`.
#[test]
fn growing_an_entry_that_still_fits_keeps_it() {
    for policy in [Policy::Lru, Policy::Sieve, Policy::S3Fifo, Policy::TinyLfu] {
        let events = Arc::new(parking_lot::Mutex::new(Vec::new()));
        let sink = Arc::clone(&events);
        let cache: Cache<u32, u32> = Cache::builder()
            .max_capacity(10)
            .shards(1)
            .policy(policy)
            .weigher(|_: &u32, v: &u32| *v)
            .eviction_listener(move |k: &u32, v: &u32, cause| sink.lock().push((*k, *v, cause)))
            .build()
            .unwrap();
        cache.insert(1, 1);
        cache.insert(2, 5);
        cache.insert(3, 4);
        for k in 1..=3 {
            assert!(cache.get(&k).is_some());
        }
        cache.insert(1, 6);
        assert_eq!(cache.get(&1), Some(6), "{policy:?}");
        if policy == Policy::TinyLfu {
            // Its victims depend on the sketch's per-process hashes: other
            // entries go (3 alone does not make room, so then 2 as well),
            // never the one being grown.
            let events = events.lock();
            assert!(events.contains(&(1, 1, RemovalCause::Replaced)));
            assert!(
                events
                    .iter()
                    .all(|e| e.2 == RemovalCause::Replaced
                        || (e.0 != 1 && e.2 == RemovalCause::Evicted)),
                "{events:?}"
            );
            assert!((6..=10).contains(&cache.weighted_size()), "{events:?}");
            continue;
        }
        // Room is made by evicting 2 (LRU: the least recent; SIEVE: the
        // hand skips the entry being updated and clears 2's and 3's bits).
        assert_eq!(
            *events.lock(),
            vec![
                (2, 5, RemovalCause::Evicted),
                (1, 1, RemovalCause::Replaced)
            ],
            "{policy:?}"
        );
    }
}

/// Issue 10 item 9: a listener that panics once must not kill the sweeper
/// thread; later expirations are still reclaimed in the background.
#[test]
fn a_panicking_listener_does_not_stop_the_sweeper() {
    let (clock, mock) = quanta::Clock::mock();
    let calls = Arc::new(AtomicUsize::new(0));
    let seen = Arc::clone(&calls);
    let cache: Cache<u64, u64> = Cache::builder()
        .max_capacity(1_000)
        .shards(1)
        .clock(clock)
        .sweep_interval(Duration::from_millis(1))
        .eviction_listener(move |_, _, _| {
            if seen.fetch_add(1, Ordering::SeqCst) == 0 {
                panic!("listener exploded");
            }
        })
        .build()
        .unwrap();
    cache.insert_with_ttl(1, 1, Duration::from_secs(1));
    mock.increment(Duration::from_secs(2));
    assert!(wait_until(|| calls.load(Ordering::SeqCst) >= 1));
    // The sweeper survived the panic: a later expiry is reclaimed too,
    // without any foreground operation.
    cache.insert_with_ttl(2, 2, Duration::from_secs(1));
    mock.increment(Duration::from_secs(2));
    assert!(
        wait_until(|| calls.load(Ordering::SeqCst) >= 2),
        "the sweeper stopped after the listener panicked"
    );
    assert!(wait_until(|| cache.is_empty()));
    assert_eq!(cache.stats().listener_panics, 1);
}

/// Issue 10 item 9: `invalidate_all` removes every entry even if the
/// listener panics on one of them.
#[test]
fn a_panicking_listener_does_not_stop_invalidate_all() {
    let cache: Cache<u64, u64> = Cache::builder()
        .max_capacity(1_000)
        .shards(8)
        .eviction_listener(|k, _, _| {
            if *k == 100 {
                panic!("listener exploded");
            }
        })
        .build()
        .unwrap();
    for k in 0..800 {
        cache.insert(k, k);
    }
    let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| cache.invalidate_all()));
    assert!(
        outcome.is_ok(),
        "the listener's panic escaped invalidate_all"
    );
    assert_eq!(cache.len(), 0);
    assert_eq!(cache.stats().listener_panics, 1);
}

/// Issue 10 item 14: the shard count is bounded with a typed error (2^16
/// shards used to allocate ≈ 129 MiB empty; huge counts aborted).
#[test]
fn shard_count_is_bounded() {
    let max = keel_cache::CacheBuilder::<u64, u64>::MAX_SHARDS;
    for shards in [max * 2, 1 << 16, 1 << 40] {
        let err = Cache::<u64, u64>::builder()
            .max_capacity(u64::MAX)
            .weigher(|_, _| 1)
            .shards(shards)
            .build()
            .unwrap_err();
        assert!(
            matches!(err, BuildError::TooManyShards { requested, max: m } if requested == shards && m == max),
            "{shards}: {err:?}"
        );
    }
    let cache: Cache<u64, u64> = Cache::builder()
        .max_capacity(1 << 20)
        .shards(max)
        .build()
        .unwrap();
    assert_eq!(cache.shard_count(), max);
}

/// Issue 10 item 14: a tiny sweep interval is raised to the documented
/// minimum instead of spinning a core; zero stays an error.
#[test]
fn sweep_interval_is_clamped_to_the_minimum() {
    let min = keel_cache::CacheBuilder::<u64, u64>::MIN_SWEEP_INTERVAL;
    let cache: Cache<u64, u64> = Cache::builder()
        .max_capacity(64)
        .sweep_interval(Duration::from_nanos(1))
        .build()
        .unwrap();
    assert_eq!(cache.sweep_interval(), Some(min));
    let cache: Cache<u64, u64> = Cache::builder()
        .max_capacity(64)
        .sweep_interval(Duration::from_secs(5))
        .build()
        .unwrap();
    assert_eq!(cache.sweep_interval(), Some(Duration::from_secs(5)));
    assert_eq!(Cache::<u64, u64>::new(64).unwrap().sweep_interval(), None);
}

/// Issue 10 item 12, swept: `Duration::MAX` TTLs saturate in `Cache` too.
#[test]
fn a_duration_max_ttl_saturates() {
    let (clock, mock) = quanta::Clock::mock();
    let cache: Cache<u64, u64> = Cache::builder()
        .max_capacity(64)
        .default_ttl(Duration::MAX)
        .clock(clock)
        .sweep_interval(Duration::MAX)
        .build()
        .unwrap();
    cache.insert(1, 1);
    cache.insert_with_ttl(2, 2, Duration::MAX);
    assert_eq!(cache.get_or_load(3, || 3).unwrap(), 3);
    mock.increment(Duration::from_secs(200 * 365 * 24 * 3600));
    cache.run_pending_tasks();
    assert_eq!(
        (cache.get(&1), cache.get(&2), cache.get(&3)),
        (Some(1), Some(2), Some(3))
    );
}

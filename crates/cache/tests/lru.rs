//! `LruCache` behaviour: capacity and weight bounds, TTL, proactive expiry,
//! listener causes, build errors.

use std::cell::RefCell;
use std::rc::Rc;
use std::time::Duration;

use keel_cache::{BuildError, LruCache, Policy, RemovalCause};
use proptest::prelude::*;

type Events = Rc<RefCell<Vec<(u32, RemovalCause)>>>;

fn recording() -> (Events, impl FnMut(&u32, &u32, RemovalCause)) {
    let events: Events = Rc::default();
    let sink = Rc::clone(&events);
    (events, move |k: &u32, _: &u32, cause| {
        sink.borrow_mut().push((*k, cause))
    })
}

#[test]
fn rejects_bad_configuration() {
    assert!(matches!(
        LruCache::<u32, u32>::new(0).unwrap_err(),
        BuildError::ZeroCapacity
    ));
    let err = LruCache::<u32, u32>::builder()
        .max_capacity(4)
        .default_ttl(Duration::ZERO)
        .build()
        .unwrap_err();
    assert!(matches!(err, BuildError::ZeroTimeToLive));
    assert!(matches!(
        LruCache::<u32, u32>::builder()
            .max_capacity(u64::MAX)
            .build(),
        Err(BuildError::CapacityTooLarge { .. })
    ));
}

#[test]
fn listener_reports_every_cause() {
    let (clock, mock) = quanta::Clock::mock();
    let (events, listener) = recording();
    let mut cache = LruCache::builder()
        .max_capacity(2)
        .clock(clock)
        .eviction_listener(listener)
        .build()
        .unwrap();
    cache.put(1, 10);
    cache.put(1, 11); // replaced
    cache.put(2, 20);
    cache.put(3, 30); // evicts 1
    assert_eq!(cache.remove(&2), Some(20)); // removed
    cache.put_with_ttl(4, 40, Duration::from_millis(5));
    mock.increment(Duration::from_millis(10));
    assert_eq!(cache.get(&3), Some(&30)); // this operation expires 4
    assert_eq!(
        *events.borrow(),
        vec![
            (1, RemovalCause::Replaced),
            (1, RemovalCause::Evicted),
            (2, RemovalCause::Removed),
            (4, RemovalCause::Expired)
        ]
    );
}

#[test]
fn expired_entries_are_never_returned() {
    let (clock, mock) = quanta::Clock::mock();
    let mut cache = LruCache::builder()
        .max_capacity(10)
        .default_ttl(Duration::from_secs(1))
        .clock(clock)
        .build()
        .unwrap();
    cache.put("k", 1);
    mock.increment(Duration::from_millis(999));
    assert_eq!(cache.peek(&"k"), Some(&1));
    assert_eq!(cache.get(&"k"), Some(&1));
    // Resolution is one tick (2^20 ns) past the deadline.
    mock.increment(Duration::from_millis(3));
    assert_eq!(cache.peek(&"k"), None, "peek through &self hides it");
    assert!(!cache.contains_key(&"k"));
    assert_eq!(cache.iter().count(), 0);
    assert_eq!(cache.get(&"k"), None);
    assert_eq!(cache.len(), 0);
}

#[test]
fn proactive_cleanup_frees_untouched_entries() {
    let (clock, mock) = quanta::Clock::mock();
    let (events, listener) = recording();
    let mut cache = LruCache::builder()
        .max_capacity(20_000)
        .clock(clock)
        .eviction_listener(listener)
        .build()
        .unwrap();
    for i in 0..10_000u32 {
        // Deadlines spread over ~3 hours, across several wheel levels.
        cache.put_with_ttl(i, i, Duration::from_millis(u64::from(i) * 1_000 + 1));
    }
    cache.put(1_000_000, 0); // no TTL: must survive
    mock.increment(Duration::from_secs(5_000));
    // Nobody reads the 10,000 keys; one unrelated operation reclaims them.
    cache.run_pending_expirations();
    assert_eq!(cache.len(), 5_001);
    mock.increment(Duration::from_secs(6_000));
    assert_eq!(cache.get(&1_000_000), Some(&0));
    assert_eq!(cache.len(), 1);
    assert_eq!(
        events
            .borrow()
            .iter()
            .filter(|(_, c)| *c == RemovalCause::Expired)
            .count(),
        10_000
    );
    assert_eq!(cache.stats().expirations, 10_000);
}

#[test]
fn per_entry_ttl_overrides_default() {
    let (clock, mock) = quanta::Clock::mock();
    let mut cache = LruCache::builder()
        .max_capacity(10)
        .default_ttl(Duration::from_secs(10))
        .clock(clock)
        .build()
        .unwrap();
    cache.put("default", 1);
    cache.put_with_ttl("short", 2, Duration::from_secs(1));
    assert!(
        cache
            .time_to_live(&"short")
            .flatten()
            .is_some_and(|d| d <= Duration::from_millis(1_002))
    );
    mock.increment(Duration::from_secs(2));
    assert_eq!(cache.get(&"short"), None);
    assert_eq!(cache.get(&"default"), Some(&1));
    mock.increment(Duration::from_secs(9));
    assert_eq!(cache.get(&"default"), None);
}

#[test]
fn heavier_than_capacity_is_rejected_as_evicted() {
    let (events, listener) = recording();
    let mut cache = LruCache::builder()
        .max_capacity(10)
        .weigher(|_: &u32, v: &u32| *v)
        .eviction_listener(listener)
        .build()
        .unwrap();
    cache.put(1, 4);
    cache.put(2, 11);
    assert_eq!(cache.weight(), 4);
    assert_eq!(cache.peek(&2), None);
    assert_eq!(*events.borrow(), vec![(2, RemovalCause::Evicted)]);
}

#[test]
fn zero_weight_entries_are_still_bounded_by_the_capacity() {
    let mut cache = LruCache::builder()
        .max_capacity(10)
        .weigher(|_: &u32, _: &u32| 0)
        .build()
        .unwrap();
    for k in 0..1_000 {
        cache.put(k, k);
    }
    assert_eq!(cache.len(), 10);
    assert_eq!(cache.weight(), 10);
}

#[test]
fn sieve_keeps_a_visited_entry_that_lru_would_evict() {
    for (policy, survivor) in [(Policy::Lru, false), (Policy::Sieve, true)] {
        let mut cache = LruCache::builder()
            .max_capacity(3)
            .policy(policy)
            .build()
            .unwrap();
        cache.put(1, 1);
        cache.get(&1); // 1 was useful once, then two new keys arrive
        cache.put(2, 2);
        cache.put(3, 3);
        // LRU: 1 is least recently used and goes. SIEVE: the hand clears
        // 1's visited bit and evicts 2, the unvisited newcomer.
        cache.put(4, 4);
        assert_eq!(cache.peek(&1).is_some(), survivor, "{policy:?}");
        assert_eq!(cache.len(), 3);
    }
}

/// Issue 10 item 1: growing an entry that still fits must keep it, and the
/// listener sees only the old value as replaced.
#[test]
fn growing_an_entry_that_still_fits_keeps_it() {
    for policy in [Policy::Lru, Policy::Sieve, Policy::S3Fifo, Policy::TinyLfu] {
        let (events, listener) = recording();
        let mut cache = LruCache::builder()
            .max_capacity(10)
            .policy(policy)
            .weigher(|_: &u32, v: &u32| *v)
            .eviction_listener(listener)
            .build()
            .unwrap();
        cache.put(1, 1);
        cache.put(2, 5);
        cache.put(3, 4);
        for k in 1..=3 {
            assert!(cache.get(&k).is_some());
        }
        assert_eq!(cache.put(1, 6), Some(1), "{policy:?}");
        assert_eq!(cache.peek(&1), Some(&6), "{policy:?}");
        assert!(cache.weight() <= 10);
        let events = events.borrow();
        assert!(
            !events.contains(&(1, RemovalCause::Evicted)),
            "{policy:?}: {events:?}"
        );
        assert_eq!(
            events.iter().filter(|(k, _)| *k == 1).count(),
            1,
            "{policy:?}: {events:?}"
        );
    }
}

/// Issue 10 item 9: a listener that panics on an expiry must not leave the
/// other expired entries in the cache (visible in `len`, never reclaimed),
/// nor escape the operation that happened to advance the clock.
#[test]
fn a_panicking_listener_does_not_leave_expired_entries_behind() {
    let (clock, mock) = quanta::Clock::mock();
    let mut calls = 0;
    let mut cache = LruCache::builder()
        .max_capacity(100)
        .default_ttl(Duration::from_secs(1))
        .clock(clock)
        .eviction_listener(move |_: &u32, _: &u32, _| {
            calls += 1;
            if calls == 3 {
                panic!("listener exploded");
            }
        })
        .build()
        .unwrap();
    for k in 0..10 {
        cache.put(k, k);
    }
    mock.increment(Duration::from_secs(2));
    let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| cache.get(&0).copied()));
    assert_eq!(outcome.ok(), Some(None), "the listener's panic escaped get");
    cache.run_pending_expirations();
    assert_eq!(cache.len(), 0);
    assert_eq!(cache.iter().count(), 0);
    let stats = cache.stats();
    assert_eq!((stats.expirations, stats.listener_panics), (10, 1));
    // The cache keeps working.
    cache.put(1, 1);
    assert_eq!(cache.get(&1), Some(&1));
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]

    /// Whatever the weights and operations, the stored weight never exceeds
    /// the capacity, and the reported weight equals the sum of live weights.
    #[test]
    fn weight_never_exceeds_capacity(
        policy in prop_oneof![Just(Policy::Lru), Just(Policy::Sieve)],
        capacity in 1u64..100,
        ops in prop::collection::vec((0u32..40, 0u32..60, any::<bool>()), 1..300),
    ) {
        let mut cache = LruCache::builder()
            .max_capacity(capacity)
            .policy(policy)
            .weigher(|_: &u32, v: &u32| *v)
            .build()
            .unwrap();
        for (key, weight, remove) in ops {
            if remove {
                cache.remove(&key);
            } else {
                cache.put(key, weight);
            }
            prop_assert!(cache.weight() <= capacity);
            // A weight of 0 counts as 1.
            let sum: u64 = cache.iter().map(|(_, v)| u64::from((*v).max(1))).sum();
            prop_assert_eq!(sum, cache.weight());
        }
    }

    /// Whatever came before, a `put` whose weight fits the capacity is
    /// readable right after it (no policy may pick the entry just written).
    #[test]
    fn an_accepted_put_is_readable_right_after(
        policy in prop_oneof![Just(Policy::Lru), Just(Policy::Sieve)],
        capacity in 1u64..100,
        ops in prop::collection::vec((0u32..40, 0u32..60, any::<bool>()), 1..300),
    ) {
        let mut cache = LruCache::builder()
            .max_capacity(capacity)
            .policy(policy)
            .weigher(|_: &u32, v: &u32| *v)
            .build()
            .unwrap();
        for (key, weight, read) in ops {
            if read {
                cache.get(&key);
                continue;
            }
            cache.put(key, weight);
            if u64::from(weight.max(1)) <= capacity {
                prop_assert_eq!(cache.peek(&key), Some(&weight));
            } else {
                prop_assert_eq!(cache.peek(&key), None);
            }
        }
    }
}

/// Issue 10 item 12, swept to the in-process caches: `Duration::MAX` as a
/// TTL saturates (the entry lives practically forever) — no panic, no
/// instant expiry — and the clock can run far ahead of it without harm.
#[test]
fn a_duration_max_ttl_saturates() {
    let (clock, mock) = quanta::Clock::mock();
    let mut cache = LruCache::builder()
        .max_capacity(10)
        .default_ttl(Duration::MAX)
        .clock(clock)
        .build()
        .unwrap();
    cache.put(1, 1);
    cache.put_with_ttl(2, 2, Duration::MAX);
    mock.increment(Duration::from_secs(200 * 365 * 24 * 3600));
    assert_eq!(cache.get(&1), Some(&1));
    assert_eq!(cache.get(&2), Some(&2));
    assert!(cache.time_to_live(&1).flatten().is_some());
}

//! Keyed limiter behaviour: memory bound, per-key quotas, runtime changes, peek, metrics.

use std::time::Duration;

use keel_ratelimit::{
    BuildError, CheckError, CleanupPolicy, Gcra, KeyedLimiter, MAX_SHARDS, Quota, SlidingLog,
    TokenBucket,
};

#[test]
fn a_million_distinct_keys_stay_bounded_by_automatic_cleanup() {
    let (clock, mock) = quanta::Clock::mock();
    // 10 per millisecond per key; a new key every microsecond, each used once: at any
    // moment only ~1 000 keys are not idle.
    let quota = Quota::new(10, Duration::from_millis(1)).unwrap();
    let limiter = KeyedLimiter::<u64, Gcra>::with_clock(quota, clock);
    let bound = 64 * 512; // shards × default sweep threshold
    let mut max_len = 0;
    for key in 0..1_000_000u64 {
        assert!(limiter.check(&key).allowed);
        mock.increment(Duration::from_micros(1));
        if key % 10_000 == 0 {
            max_len = max_len.max(limiter.len());
        }
    }
    assert!(max_len <= bound, "len reached {max_len}");
    assert!(limiter.len() <= bound);
    assert!(limiter.stats().keys_removed >= 1_000_000 - bound as u64);
    assert_eq!(limiter.stats().keys_evicted_active, 0);
    mock.increment(Duration::from_millis(1));
    limiter.retain_recent();
    limiter.shrink_to_fit();
    assert_eq!(limiter.len(), 0);
}

#[test]
fn a_million_keys_on_a_frozen_clock_are_capped_by_max_keys() {
    let (clock, _mock) = quanta::Clock::mock();
    let limiter = KeyedLimiter::<u64, TokenBucket>::builder()
        .quota(Quota::per_minute(5).unwrap())
        .clock(clock)
        .cleanup(CleanupPolicy::with_max_keys(10_000))
        .build()
        .unwrap();
    for key in 0..1_000_000u64 {
        limiter.check(&key);
        if key % 50_000 == 0 {
            assert!(limiter.len() <= 10_000, "len {}", limiter.len());
        }
    }
    assert!(limiter.len() <= 10_000);
    // Nothing was idle (frozen clock), so the cap had to evict active keys, and says so.
    let m = limiter.stats();
    assert!(m.keys_evicted_active >= 990_000);
    assert_eq!(m.allowed, 1_000_000);
}

#[test]
fn hard_key_cap_holds_even_when_smaller_than_the_shard_count() {
    // Before: the cap was split per shard and rounded up to one key each, so `max_keys(1)`
    // with 65 536 shards held thousands of keys.
    for (max_keys, shards) in [(1, 64), (3, 2), (5, 64), (100, 4096), (1_000, 64), (1, 1)] {
        let (clock, _mock) = quanta::Clock::mock(); // frozen: no key ever becomes idle
        let limiter = KeyedLimiter::<u64, Gcra>::builder()
            .quota(Quota::per_minute(5).unwrap())
            .clock(clock)
            .shards(shards)
            .cleanup(CleanupPolicy::with_max_keys(max_keys))
            .build()
            .unwrap();
        for key in 0..20_000u64 {
            assert!(limiter.check(&key).allowed);
            assert!(
                limiter.len() <= max_keys,
                "max_keys {max_keys}, shards {shards}: {} keys",
                limiter.len()
            );
        }
        assert!(limiter.stats().keys_evicted_active >= 20_000 - max_keys as u64);
    }
}

#[test]
fn key_cap_and_shard_count_out_of_range_are_typed_errors() {
    let quota = Quota::per_minute(5).unwrap();
    let build = |shards: usize, cleanup: CleanupPolicy| {
        KeyedLimiter::<u64, Gcra>::builder()
            .quota(quota)
            .shards(shards)
            .cleanup(cleanup)
            .build()
            .map(|_| ())
    };
    assert!(matches!(
        build(64, CleanupPolicy::with_max_keys(0)),
        Err(BuildError::ZeroMaxKeys)
    ));
    assert!(matches!(
        build(0, CleanupPolicy::default()),
        Err(BuildError::ZeroShards)
    ));
    assert!(matches!(
        build(MAX_SHARDS + 1, CleanupPolicy::default()),
        Err(BuildError::TooManyShards { requested, max: MAX_SHARDS }) if requested == MAX_SHARDS + 1
    ));
    assert!(matches!(
        build(usize::MAX, CleanupPolicy::default()),
        Err(BuildError::TooManyShards { .. })
    ));
    assert!(build(MAX_SHARDS, CleanupPolicy::default()).is_ok());
    assert!(matches!(
        KeyedLimiter::<u64, Gcra>::builder().build().map(|_| ()),
        Err(BuildError::MissingQuota)
    ));
}

#[test]
fn manual_policy_keeps_everything_until_retain_recent() {
    let (clock, mock) = quanta::Clock::mock();
    let limiter = KeyedLimiter::<u32, SlidingLog>::builder()
        .quota(Quota::per_second(3).unwrap())
        .clock(clock)
        .cleanup(CleanupPolicy::manual())
        .build()
        .unwrap();
    for key in 0..5_000 {
        limiter.check(&key);
    }
    assert_eq!(limiter.len(), 5_000);
    mock.increment(Duration::from_millis(999));
    assert_eq!(limiter.retain_recent(), 0, "still inside the window");
    mock.increment(Duration::from_millis(1));
    assert_eq!(limiter.retain_recent(), 5_000);
    assert!(limiter.is_empty());
}

#[test]
fn per_key_overrides_resolver_and_runtime_changes() {
    let (clock, mock) = quanta::Clock::mock();
    let limiter = KeyedLimiter::<String, Gcra>::builder()
        .quota(Quota::per_second(2).unwrap())
        .clock(clock)
        .quota_resolver(|key: &String| {
            key.starts_with("pro:")
                .then(|| Quota::per_second(10).unwrap())
        })
        .build()
        .unwrap();

    // Resolver: a plan tier picked when the key first appears.
    assert_eq!(limiter.check("pro:acme").limit, 10);
    assert_eq!(limiter.check("free:bob").limit, 2);

    // Explicit override wins over the resolver, keeps the state (1 already used).
    limiter.set_quota_for("pro:acme".to_string(), Quota::per_second(3).unwrap());
    let d = limiter.check("pro:acme");
    assert_eq!((d.limit, d.remaining), (3, 1));

    // Runtime change of the default applies to live default keys, not to pinned ones.
    limiter.set_quota(Quota::per_second(5).unwrap());
    assert_eq!(limiter.default_quota(), Quota::per_second(5).unwrap());
    // GCRA's state is a time debt: bob's one request at 2/s left 500 ms of debt, which at
    // 5/s (200 ms per request) plus this request (200 ms) leaves room for 1 more of 5.
    let d = limiter.check("free:bob");
    assert_eq!((d.limit, d.remaining), (5, 1));
    assert_eq!(limiter.quota_for("pro:acme"), Quota::per_second(3).unwrap());
    assert_eq!(limiter.quota_for("pro:new"), Quota::per_second(10).unwrap());
    assert_eq!(limiter.quota_for("someone"), Quota::per_second(5).unwrap());

    // Overrides survive their key's cleanup.
    limiter.set_quota_for("vip".to_string(), Quota::per_second(100).unwrap());
    limiter.check("vip");
    mock.increment(Duration::from_secs(1));
    limiter.retain_recent();
    assert_eq!(limiter.len(), 0);
    assert_eq!(limiter.check("vip").limit, 100);

    // Clearing the override falls back to the resolver/default.
    assert_eq!(
        limiter.clear_quota_for("pro:acme"),
        Some(Quota::per_second(3).unwrap())
    );
    assert_eq!(limiter.check("pro:acme").limit, 10);
    limiter.clear_quota_for("vip");
    assert_eq!(limiter.check("vip").limit, 5);
}

/// Default-quota keys and keys with their own quota live in two tables of a shard (the
/// default keys store no parameters): an override moves a live key across and back with
/// its state, and it is counted once throughout.
#[test]
fn an_override_moves_a_live_key_between_tables_keeping_its_state() {
    let (clock, _mock) = quanta::Clock::mock();
    let limiter = KeyedLimiter::<String, Gcra>::with_clock(Quota::per_second(2).unwrap(), clock);
    assert_eq!(limiter.check("bob").remaining, 1); // 500 ms of debt
    limiter.set_quota_for("bob".to_string(), Quota::per_second(4).unwrap());
    assert_eq!(limiter.len(), 1);
    // 250 ms per request on top of the kept 500 ms: 750 of 1 000 ms, one more fits.
    let d = limiter.check("bob");
    assert_eq!((d.allowed, d.limit, d.remaining), (true, 4, 1));
    assert_eq!(
        limiter.clear_quota_for("bob"),
        Some(Quota::per_second(4).unwrap())
    );
    assert_eq!(limiter.len(), 1);
    // Back on 2/s with 750 ms of debt: 500 more would exceed the 1 000 ms tolerance.
    let d = limiter.check("bob");
    assert_eq!((d.allowed, d.limit, d.remaining), (false, 2, 0));
    assert_eq!(d.retry_after, Some(Duration::from_millis(250)));
    assert_eq!(limiter.stats().decisions(), 3);
}

#[test]
fn peek_consumes_nothing_and_creates_nothing() {
    let (clock, _mock) = quanta::Clock::mock();
    let limiter =
        KeyedLimiter::<String, TokenBucket>::with_clock(Quota::per_minute(3).unwrap(), clock);
    let fresh = limiter.peek("nobody");
    assert!(fresh.allowed);
    assert_eq!(fresh.remaining, 2);
    assert!(limiter.is_empty());
    limiter.check("a");
    for _ in 0..10 {
        assert_eq!(limiter.peek("a").remaining, 1);
    }
    assert_eq!(limiter.check_n("a", 0).unwrap().remaining, 1);
    assert_eq!(limiter.stats().decisions(), 1);
}

#[test]
fn impossible_cost_is_an_error_and_creates_no_key() {
    let (clock, _mock) = quanta::Clock::mock();
    let limiter = KeyedLimiter::<String, Gcra>::with_clock(
        Quota::per_second(10).unwrap().with_burst(4).unwrap(),
        clock,
    );
    assert_eq!(
        limiter.check_n("k", 5),
        Err(CheckError::InsufficientCapacity {
            cost: 5,
            capacity: 4
        })
    );
    assert!(limiter.is_empty());
    assert!(limiter.check_n("k", 4).unwrap().allowed);
    assert_eq!(
        limiter.check_n("k", 5),
        Err(CheckError::InsufficientCapacity {
            cost: 5,
            capacity: 4
        })
    );
}

#[test]
fn counters_reach_the_metrics_facade() {
    use metrics_util::debugging::{DebugValue, DebuggingRecorder};

    let recorder = DebuggingRecorder::new();
    let snapshotter = recorder.snapshotter();
    let (clock, _mock) = quanta::Clock::mock();
    let limiter = metrics::with_local_recorder(&recorder, || {
        KeyedLimiter::<u8, Gcra>::builder()
            .quota(Quota::per_second(2).unwrap())
            .clock(clock)
            .name("api")
            .build()
            .unwrap()
    });
    for _ in 0..5 {
        limiter.check(&1);
    }
    let snapshot = limiter.stats();
    assert_eq!((snapshot.allowed, snapshot.denied), (2, 3));
    let mut seen = Vec::new();
    for (key, _, _, value) in snapshotter.snapshot().into_vec() {
        let labels: Vec<String> = key
            .key()
            .labels()
            .map(|l| format!("{}={}", l.key(), l.value()))
            .collect();
        if key.key().name() == "keel_ratelimit_decisions_total" {
            if let DebugValue::Counter(n) = value {
                seen.push((labels.join(","), n));
            }
        }
    }
    seen.sort();
    assert_eq!(
        seen,
        vec![
            ("limiter=api,outcome=allowed".to_string(), 2),
            ("limiter=api,outcome=denied".to_string(), 3),
        ]
    );
}

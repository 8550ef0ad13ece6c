//! Property tests over random arrival sequences, on a mock clock.

use std::collections::HashMap;
use std::time::Duration;

use keel_ratelimit::{
    Algorithm, CleanupPolicy, FixedWindow, Gcra, KeyedLimiter, Quota, RateLimiter, SlidingCounter,
    SlidingLog, TokenBucket,
};
use proptest::prelude::*;

/// Arrivals: (gap before the request in µs, cost).
fn arrivals() -> impl Strategy<Value = Vec<(u64, u32)>> {
    prop::collection::vec((0u64..400_000, 1u32..4), 1..300)
}

fn quota() -> impl Strategy<Value = Quota> {
    (1u32..12, 1u64..2_000, 1u32..12).prop_map(|(limit, window_ms, burst)| {
        Quota::new(limit, Duration::from_millis(window_ms))
            .unwrap()
            .with_burst(burst)
            .unwrap()
    })
}

/// Runs the arrivals through a direct limiter; returns (time ns, cost) of the allowed ones.
fn run<A: Algorithm>(quota: Quota, arrivals: &[(u64, u32)]) -> Vec<(u64, u32)> {
    let (clock, mock) = quanta::Clock::mock();
    let limiter = RateLimiter::<A>::with_clock(quota, clock);
    let mut now = 0;
    let mut allowed = Vec::new();
    for &(gap_us, cost) in arrivals {
        mock.increment(Duration::from_micros(gap_us));
        now += gap_us * 1_000;
        if let Ok(d) = limiter.check_n(cost) {
            if d.allowed {
                allowed.push((now, cost));
            }
        }
    }
    allowed
}

/// Total cost allowed in `(end - window, end]`, for every allowed request's time as `end`.
fn max_in_any_window(allowed: &[(u64, u32)], window: u64) -> u64 {
    allowed
        .iter()
        .map(|&(end, _)| {
            allowed
                .iter()
                .filter(|&&(t, _)| t <= end && t + window > end)
                .map(|&(_, c)| u64::from(c))
                .sum()
        })
        .max()
        .unwrap_or(0)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn sliding_log_never_exceeds_limit_in_any_window(q in quota(), a in arrivals()) {
        let allowed = run::<SlidingLog>(q, &a);
        prop_assert!(max_in_any_window(&allowed, q.window_ns()) <= u64::from(q.limit()));
    }

    #[test]
    fn fixed_and_sliding_counter_respect_aligned_windows_and_twice_the_limit(q in quota(), a in arrivals()) {
        for allowed in [run::<FixedWindow>(q, &a), run::<SlidingCounter>(q, &a)] {
            let mut per_window: HashMap<u64, u64> = HashMap::new();
            for &(t, c) in &allowed {
                *per_window.entry(t / q.window_ns()).or_default() += u64::from(c);
            }
            prop_assert!(per_window.values().all(|&n| n <= u64::from(q.limit())));
            prop_assert!(max_in_any_window(&allowed, q.window_ns()) <= 2 * u64::from(q.limit()));
        }
    }

    #[test]
    fn token_bucket_and_gcra_never_exceed_burst_plus_rate_times_t(q in quota(), a in arrivals()) {
        let interval = q.emission_interval_ns();
        for allowed in [run::<TokenBucket>(q, &a), run::<Gcra>(q, &a)] {
            for (i, &(start, _)) in allowed.iter().enumerate() {
                let mut total = 0u64;
                for &(t, c) in &allowed[i..] {
                    total += u64::from(c);
                    let bound = u64::from(q.burst()) + (t - start) / interval;
                    prop_assert!(total <= bound, "{total} > {bound} over {}ns", t - start);
                }
            }
        }
    }

    #[test]
    fn token_bucket_and_gcra_are_the_same_policy(q in quota(), a in arrivals()) {
        prop_assert_eq!(run::<TokenBucket>(q, &a), run::<Gcra>(q, &a));
    }

    #[test]
    fn retry_after_is_exact_for_every_algorithm(q in quota(), a in arrivals()) {
        retry_after_exact::<FixedWindow>(q, &a)?;
        retry_after_exact::<SlidingLog>(q, &a)?;
        retry_after_exact::<SlidingCounter>(q, &a)?;
        retry_after_exact::<TokenBucket>(q, &a)?;
        retry_after_exact::<Gcra>(q, &a)?;
    }

    #[test]
    fn keyed_limiter_with_cleanup_matches_one_limiter_per_key(
        q in quota(),
        ops in prop::collection::vec((0u64..300_000, 0u8..6, 1u32..3, any::<bool>()), 1..400),
    ) {
        keyed_matches_model::<Gcra>(q, &ops)?;
        keyed_matches_model::<TokenBucket>(q, &ops)?;
        keyed_matches_model::<SlidingLog>(q, &ops)?;
        keyed_matches_model::<SlidingCounter>(q, &ops)?;
        keyed_matches_model::<FixedWindow>(q, &ops)?;
    }
}

/// For each denied request: the same request `retry_after` later is allowed, and one
/// nanosecond earlier it is still denied (so `retry_after` is the minimum). Each probe
/// replays the history into a fresh limiter, since states are not clonable.
fn retry_after_exact<A: Algorithm>(q: Quota, arrivals: &[(u64, u32)]) -> Result<(), TestCaseError> {
    let (clock, mock) = quanta::Clock::mock();
    let limiter = RateLimiter::<A>::with_clock(q, clock);
    for (i, &(gap_us, cost)) in arrivals.iter().enumerate() {
        mock.increment(Duration::from_micros(gap_us));
        let Ok(d) = limiter.check_n(cost) else {
            continue;
        };
        if let Some(retry) = d.retry_after {
            let probe = |extra: Duration| {
                replay_then_check::<A>(
                    q,
                    &arrivals[..i],
                    Duration::from_micros(gap_us) + extra,
                    cost,
                )
            };
            prop_assert!(probe(retry), "{}: denied at retry_after {retry:?}", A::NAME);
            if !retry.is_zero() {
                prop_assert!(
                    !probe(retry - Duration::from_nanos(1)),
                    "{}: allowed before retry_after {retry:?}",
                    A::NAME
                );
            }
        }
    }
    Ok(())
}

/// Replays `history`, waits `gap of the denied request + extra`, then checks `cost`.
fn replay_then_check<A: Algorithm>(
    q: Quota,
    history: &[(u64, u32)],
    extra: Duration,
    cost: u32,
) -> bool {
    let (clock, mock) = quanta::Clock::mock();
    let limiter = RateLimiter::<A>::with_clock(q, clock);
    for &(gap_us, c) in history {
        mock.increment(Duration::from_micros(gap_us));
        let _ = limiter.check_n(c);
    }
    mock.increment(extra);
    limiter.check_n(cost).is_ok_and(|d| d.allowed)
}

fn keyed_matches_model<A: Algorithm>(
    q: Quota,
    ops: &[(u64, u8, u32, bool)],
) -> Result<(), TestCaseError> {
    let (clock, mock) = quanta::Clock::mock();
    let keyed = KeyedLimiter::<u8, A>::builder()
        .quota(q)
        .clock(clock.clone())
        .shards(2)
        .cleanup(CleanupPolicy {
            sweep_at_shard_len: Some(1),
            max_keys: None,
        })
        .build()
        .unwrap();
    // One direct limiter per key, all created now so their windows align with the keyed one's.
    let model: HashMap<u8, RateLimiter<A>> = (0..6)
        .map(|key| (key, RateLimiter::with_clock(q, clock.clone())))
        .collect();
    for &(gap_us, key, cost, sweep) in ops {
        mock.increment(Duration::from_micros(gap_us));
        if sweep {
            keyed.retain_recent();
        }
        let expected = model[&key].check_n(cost);
        prop_assert_eq!(keyed.check_n(&key, cost), expected, "{}", A::NAME);
    }
    Ok(())
}

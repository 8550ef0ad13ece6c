//! A clock that steps backwards (TSC skew between cores, a mock driven by hand, a
//! client-side time source): every algorithm must read it as "no time passed" — never a
//! panic, never a reset window, never more allowed than the limit.

use std::collections::HashMap;
use std::time::Duration;

use keel_ratelimit::{
    Algorithm, FixedWindow, Gcra, KeyedLimiter, Quota, RateLimiter, SlidingCounter, SlidingLog,
    TokenBucket,
};
use proptest::prelude::*;

fn ns(n: u64) -> Duration {
    Duration::from_nanos(n)
}

/// Limit 1 per 1 000 ns: checks at t = 1 500, then 900 (a step back), then 1 600. Only the
/// first may pass: a reset window (fixed window) or an overflowing subtraction (sliding
/// counter) would let the others through or panic.
fn one_per_window_with_a_step_back<A: Algorithm>() {
    let quota = Quota::new(1, ns(1_000)).unwrap();
    let (clock, mock) = quanta::Clock::mock();
    let direct = RateLimiter::<A>::with_clock(quota, clock.clone());
    let keyed = KeyedLimiter::<u8, A>::with_clock(quota, clock);

    mock.increment(ns(1_500));
    assert!(direct.check().allowed, "{} at 1500", A::NAME);
    assert!(keyed.check(&1).allowed, "{} keyed at 1500", A::NAME);

    mock.decrement(ns(600)); // 900
    let d = direct.check();
    assert!(!d.allowed, "{} at 900 after 1500: {d:?}", A::NAME);
    assert!(d.retry_after.is_some());
    assert!(!direct.peek().allowed, "{} peek at 900", A::NAME);
    assert!(!keyed.check(&1).allowed, "{} keyed at 900", A::NAME);
    // The key's state is not idle: forgetting it would hand out a fresh allowance.
    assert_eq!(keyed.retain_recent(), 0, "{} swept an active key", A::NAME);

    mock.increment(ns(700)); // 1 600
    assert!(!direct.check().allowed, "{} at 1600", A::NAME);
    assert!(!keyed.check(&1).allowed, "{} keyed at 1600", A::NAME);

    // Nothing is stuck: well past the window everything is allowed again.
    mock.increment(ns(10_000));
    assert!(direct.check().allowed, "{} later", A::NAME);
    assert!(keyed.check(&1).allowed, "{} keyed later", A::NAME);
}

#[test]
fn every_algorithm_denies_after_a_clock_step_back_instead_of_resetting_or_panicking() {
    one_per_window_with_a_step_back::<FixedWindow>();
    one_per_window_with_a_step_back::<SlidingLog>();
    one_per_window_with_a_step_back::<SlidingCounter>();
    one_per_window_with_a_step_back::<TokenBucket>();
    one_per_window_with_a_step_back::<Gcra>();
}

/// Limit 2 per 1 000 ns: one request at 1 500, then one at 900. "No time passed" means the
/// second request sees the state as it was at 1 500: one left, so it is allowed (and the
/// one after it is not).
fn second_request_after_step_back<A: Algorithm>() -> keel_ratelimit::Decision {
    let quota = Quota::new(2, ns(1_000)).unwrap();
    let (clock, mock) = quanta::Clock::mock();
    let limiter = RateLimiter::<A>::with_clock(quota, clock);
    mock.increment(ns(1_500));
    assert!(limiter.check().allowed);
    mock.decrement(ns(600));
    let second = limiter.check();
    if second.allowed {
        assert!(!limiter.check().allowed, "{}: third allowed", A::NAME);
    }
    second
}

#[test]
fn window_and_bucket_algorithms_read_a_step_back_as_no_time_passed() {
    for (name, d) in [
        (
            "fixed_window",
            second_request_after_step_back::<FixedWindow>(),
        ),
        (
            "sliding_log",
            second_request_after_step_back::<SlidingLog>(),
        ),
        (
            "sliding_counter",
            second_request_after_step_back::<SlidingCounter>(),
        ),
    ] {
        assert!(d.allowed, "{name}: {d:?}");
        assert_eq!(d.remaining, 0, "{name}");
    }
}

/// GCRA's whole state is one timestamp (TAT), and so is the token bucket's since it became
/// lock-free (`full_at`, see `token_bucket.rs`): neither can know the last reading, so a
/// step back of 600 ns adds exactly 600 ns to the wait (documented in `gcra.rs` and
/// `token_bucket.rs`); it never allows more, and once the clock is back the decision is the
/// undisturbed one.
fn single_timestamp_reads_a_step_back_as_time_still_to_wait<A: Algorithm>() {
    let d = second_request_after_step_back::<A>();
    assert!(!d.allowed, "{}", A::NAME);
    assert_eq!(d.retry_after, Some(ns(600)), "{}", A::NAME);
    let quota = Quota::new(2, ns(1_000)).unwrap();
    let (clock, mock) = quanta::Clock::mock();
    let limiter = RateLimiter::<A>::with_clock(quota, clock);
    mock.increment(ns(1_500));
    assert!(limiter.check().allowed);
    mock.decrement(ns(600));
    assert!(!limiter.check().allowed);
    mock.increment(ns(600)); // back at 1 500
    let d = limiter.check();
    assert!(d.allowed, "{}", A::NAME);
    assert_eq!(d.remaining, 0, "{}", A::NAME);
}

#[test]
fn gcra_and_token_bucket_read_a_step_back_as_time_still_to_wait_and_recover_exactly() {
    single_timestamp_reads_a_step_back_as_time_still_to_wait::<Gcra>();
    single_timestamp_reads_a_step_back_as_time_still_to_wait::<TokenBucket>();
}

/// Steps: (signed gap in ns, cost). Negative gaps step the clock back.
fn steps() -> impl Strategy<Value = Vec<(i64, u32)>> {
    prop::collection::vec((-3_000i64..4_000, 1u32..3), 1..200)
}

fn small_quota() -> impl Strategy<Value = Quota> {
    (1u32..5, 1_000u64..5_000, 1u32..5).prop_map(|(limit, window, burst)| {
        Quota::new(limit, ns(window))
            .unwrap()
            .with_burst(burst)
            .unwrap()
    })
}

/// Runs the steps on a mock clock that may step back; returns the allowed requests stamped
/// with the latest time the limiter has decided at (the time that really passed, as far
/// as the limiter can know: a request rejected as too big never reaches the state).
fn run_with_steps<A: Algorithm>(q: Quota, steps: &[(i64, u32)]) -> Vec<(u64, u32)> {
    let (clock, mock) = quanta::Clock::mock();
    let limiter = RateLimiter::<A>::with_clock(q, clock);
    // Start far from zero so steps back never reach the epoch.
    let start = 1_000_000u64;
    mock.increment(ns(start));
    let (mut now, mut latest) = (start, 0);
    let mut allowed = Vec::new();
    for &(gap, cost) in steps {
        if gap >= 0 {
            mock.increment(ns(gap as u64));
            now += gap as u64;
        } else {
            let back = gap.unsigned_abs().min(now - 1);
            mock.decrement(ns(back));
            now -= back;
        }
        if let Ok(d) = limiter.check_n(cost) {
            latest = latest.max(now);
            if d.allowed {
                allowed.push((latest, cost));
            }
        }
    }
    allowed
}

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

    /// With the clock stepping back at random, each algorithm's bound still holds over the
    /// time that really passed (and nothing panics).
    #[test]
    fn bounds_hold_over_real_time_when_the_clock_steps_back(q in small_quota(), s in steps()) {
        let limit = u64::from(q.limit());
        let window = q.window_ns();
        let log = run_with_steps::<SlidingLog>(q, &s);
        prop_assert!(max_in_any_window(&log, window) <= limit);
        for allowed in [run_with_steps::<FixedWindow>(q, &s), run_with_steps::<SlidingCounter>(q, &s)] {
            let mut per_window: HashMap<u64, u64> = HashMap::new();
            for &(t, c) in &allowed {
                *per_window.entry(t / window).or_default() += u64::from(c);
            }
            prop_assert!(per_window.values().all(|&n| n <= limit), "{per_window:?}");
            prop_assert!(max_in_any_window(&allowed, window) <= 2 * limit);
        }
        let interval = q.emission_interval_ns();
        for allowed in [run_with_steps::<TokenBucket>(q, &s), run_with_steps::<Gcra>(q, &s)] {
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
}

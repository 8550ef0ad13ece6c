//! 8 threads × 10 000 attempts on one key with the clock frozen: exactly `limit` allowed,
//! for every algorithm, direct and keyed. Without the per-state synchronisation (CAS loop
//! or per-key mutex) lost updates would let more through.

use std::sync::Barrier;
use std::time::Duration;

use keel_ratelimit::{
    Algorithm, FixedWindow, Gcra, KeyedLimiter, Quota, RateLimiter, SlidingCounter, SlidingLog,
    TokenBucket,
};

const THREADS: usize = 8;
const ATTEMPTS: usize = 10_000;
const LIMIT: u32 = 5_000;

fn hammer(check: impl Fn() -> bool + Sync) -> u64 {
    let barrier = Barrier::new(THREADS);
    std::thread::scope(|scope| {
        let handles: Vec<_> = (0..THREADS)
            .map(|_| {
                scope.spawn(|| {
                    barrier.wait();
                    (0..ATTEMPTS).filter(|_| check()).count() as u64
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).sum()
    })
}

fn direct_exactly_limit<A: Algorithm>() {
    let (clock, _mock) = quanta::Clock::mock();
    let quota = Quota::new(LIMIT, Duration::from_secs(60)).unwrap();
    let limiter = RateLimiter::<A>::with_clock(quota, clock);
    let allowed = hammer(|| limiter.check().allowed);
    assert_eq!(allowed, u64::from(LIMIT), "{}", A::NAME);
    let m = limiter.stats();
    assert_eq!(m.allowed, u64::from(LIMIT));
    assert_eq!(m.decisions(), (THREADS * ATTEMPTS) as u64);
}

fn keyed_exactly_limit<A: Algorithm>() {
    let (clock, _mock) = quanta::Clock::mock();
    let quota = Quota::new(LIMIT, Duration::from_secs(60)).unwrap();
    let limiter = KeyedLimiter::<String, A>::with_clock(quota, clock);
    // Every thread also races to create the key: only one slot may win.
    let allowed = hammer(|| limiter.check("hot-key").allowed);
    assert_eq!(allowed, u64::from(LIMIT), "{}", A::NAME);
    assert_eq!(limiter.len(), 1);
}

fn keyed_cost_n_exactly_limit<A: Algorithm>() {
    let (clock, _mock) = quanta::Clock::mock();
    let quota = Quota::new(LIMIT, Duration::from_secs(60)).unwrap();
    let limiter = KeyedLimiter::<u64, A>::with_clock(quota, clock);
    // Costs of 3: at most floor(5000 / 3) = 1666 requests, 4998 units.
    let allowed = hammer(|| limiter.check_n(&7, 3).unwrap().allowed);
    assert_eq!(allowed, u64::from(LIMIT / 3), "{}", A::NAME);
}

macro_rules! every_algorithm {
    ($($name:ident: $alg:ty),* $(,)?) => {$(
        mod $name {
            use super::*;
            #[test]
            fn direct() { direct_exactly_limit::<$alg>() }
            #[test]
            fn keyed() { keyed_exactly_limit::<$alg>() }
            #[test]
            fn keyed_cost_n() { keyed_cost_n_exactly_limit::<$alg>() }
        }
    )*};
}

every_algorithm! {
    fixed_window: FixedWindow,
    sliding_log: SlidingLog,
    sliding_counter: SlidingCounter,
    token_bucket: TokenBucket,
    gcra: Gcra,
}

#[test]
fn many_keys_many_threads_each_key_gets_its_limit() {
    let (clock, _mock) = quanta::Clock::mock();
    let limiter = KeyedLimiter::<u32, Gcra>::with_clock(Quota::per_minute(10).unwrap(), clock);
    let allowed = hammer(|| {
        // 100 keys, each thread walks all of them many times.
        thread_local!(static I: std::cell::Cell<u32> = const { std::cell::Cell::new(0) });
        let key = I.with(|i| {
            i.set(i.get().wrapping_add(1));
            i.get() % 100
        });
        limiter.check(&key).allowed
    });
    assert_eq!(allowed, 100 * 10);
    assert_eq!(limiter.len(), 100);
}

//! The Redis limiter against a private `redis-server` (through `keel-testkit`).
#![cfg(feature = "redis")]

use std::time::Duration;

use keel_ratelimit::error::RedisLimitError;
use keel_ratelimit::redis::{FailurePolicy, RedisAlgorithm, RedisLimiter, ServerCall, TimeSource};
use keel_ratelimit::{CheckError, Quota};
use redis::AsyncCommands;

/// Server-time tests use a three-day window: fixed and sliding-counter windows are aligned
/// to the server's clock, so a test straddling a boundary would see a reset. With three
/// days that happens about once in 250 000 runs of a one-second test.
fn long_quota(limit: u32) -> Quota {
    Quota::new(limit, Duration::from_secs(3 * 86_400)).unwrap()
}

/// A limiter that sends every decision to the server: these tests count the server's
/// calls, and GCRA's local denial memory (tested on its own) answers some without one.
async fn limiter(url: &str, algorithm: RedisAlgorithm, quota: Quota) -> RedisLimiter {
    RedisLimiter::builder()
        .algorithm(algorithm)
        .quota(quota)
        .prefix("test:rl")
        .local_denials(0)
        .url(url)
        .build()
        .await
        .unwrap()
}

async fn raw_connection(url: &str) -> redis::aio::MultiplexedConnection {
    redis::Client::open(url)
        .unwrap()
        .get_multiplexed_async_connection()
        .await
        .unwrap()
}

#[tokio::test]
async fn every_algorithm_allows_the_limit_then_denies_with_retry_after_and_ttl() {
    let Some(redis) = keel_testkit::redis_or_skip("every_algorithm_allows_the_limit") else {
        return;
    };
    let mut raw = raw_connection(&redis.url()).await;
    let quota = long_quota(5);
    let window = quota.window();
    for algorithm in RedisAlgorithm::ALL {
        let limiter = limiter(&redis.url(), algorithm, quota).await;
        for remaining in (0..5).rev() {
            let d = limiter.check("alice").await.unwrap();
            assert!(d.allowed, "{algorithm:?}");
            assert_eq!(d.remaining, remaining, "{algorithm:?}");
            assert_eq!(d.limit, 5);
        }
        let d = limiter.check("alice").await.unwrap();
        assert!(!d.allowed, "{algorithm:?}");
        let retry = d.retry_after.unwrap();
        // At most one window, except for the sliding counter: a full current window must
        // first become the *previous* one and then decay by its weight, so early in a
        // window its retry is up to (window - elapsed) + window * cost / limit. Windows are
        // aligned to the epoch, so which case a run sees depends on the date (this 3-day
        // window failed a `<= window` bound for the first 20 % of each window).
        let bound = if algorithm == RedisAlgorithm::SlidingCounter {
            window + window / 5
        } else {
            window
        };
        assert!(
            retry > Duration::ZERO && retry <= bound,
            "{algorithm:?} {retry:?}"
        );
        assert!(d.reset_after <= 2 * window);
        // Another key is independent.
        assert!(limiter.check("bob").await.unwrap().allowed);
        // Namespaced key with a TTL: Redis memory stays bounded.
        let key = limiter.redis_key("alice");
        assert!(key.starts_with("test:rl:{alice}:"));
        let ttl: i64 = raw.pttl(&key).await.unwrap();
        assert!(
            ttl > 0 && ttl as u128 <= 2 * window.as_millis(),
            "{algorithm:?} ttl {ttl}"
        );
        // A cost that can never fit is an error, not an eternal deny.
        assert!(matches!(
            limiter.check_n("alice", 6).await,
            Err(RedisLimitError::Check(CheckError::InsufficientCapacity {
                cost: 6,
                capacity: 5
            }))
        ));
        assert_eq!(limiter.stats().allowed, 6);
        assert_eq!(limiter.stats().denied, 1);
    }
}

/// Calls per command since the last `CONFIG RESETSTAT`, from `INFO commandstats`.
async fn command_calls(raw: &mut redis::aio::MultiplexedConnection) -> impl Fn(&str) -> u64 {
    let info: String = redis::cmd("INFO")
        .arg("commandstats")
        .query_async(raw)
        .await
        .unwrap();
    move |cmd: &str| -> u64 {
        info.lines()
            .find(|l| l.starts_with(&format!("cmdstat_{cmd}:")))
            .and_then(|l| l.split("calls=").nth(1))
            .and_then(|v| v.split(',').next())
            .and_then(|v| v.parse().ok())
            .unwrap_or(0)
    }
}

async fn reset_stats(raw: &mut redis::aio::MultiplexedConnection) {
    let _: () = redis::cmd("CONFIG")
        .arg("RESETSTAT")
        .query_async(raw)
        .await
        .unwrap();
}

/// Redis 7: every algorithm is one `FCALL` per decision, the library loaded at build time.
#[tokio::test]
async fn one_round_trip_per_decision() {
    let Some(redis) = keel_testkit::redis_or_skip("one_round_trip_per_decision") else {
        return;
    };
    let mut raw = raw_connection(&redis.url()).await;
    for algorithm in RedisAlgorithm::ALL {
        let limiter = limiter(&redis.url(), algorithm, Quota::per_second(1000).unwrap()).await;
        assert_eq!(limiter.server_call(), ServerCall::Fcall, "{algorithm:?}");
        reset_stats(&mut raw).await;
        for i in 0..100 {
            limiter.check(&format!("k{i}")).await.unwrap();
        }
        let calls = command_calls(&mut raw).await;
        assert_eq!(calls("fcall"), 100, "{algorithm:?}");
        for other in [
            "evalsha",
            "eval",
            "function|load",
            "script|load",
            "multi",
            "exec",
        ] {
            assert_eq!(calls(other), 0, "{algorithm:?}: {other}");
        }
    }
}

/// GCRA remembers a denied key's TAT: until the client's clock reaches it, requests that
/// cannot fit are denied locally — the decision the server gives, with no `FCALL` — and
/// the first one that fits goes to the server again. `.local_denials(0)` turns it off.
#[tokio::test]
async fn a_denied_key_is_denied_locally_until_its_tat_without_a_round_trip() {
    let Some(redis) = keel_testkit::redis_or_skip("a_denied_key_is_denied_locally") else {
        return;
    };
    let mut raw = raw_connection(&redis.url()).await;
    // 10/s, burst 2: the interval is 100 ms.
    let quota = Quota::per_second(10).unwrap().with_burst(2).unwrap();
    for slots in [keel_ratelimit::redis::DEFAULT_LOCAL_DENIALS, 0] {
        let (clock, mock) = quanta::Clock::mock();
        mock.increment(Duration::from_secs(1));
        let limiter = RedisLimiter::builder()
            .quota(quota)
            .prefix(format!("test:local:{slots}"))
            .clock(clock)
            .local_denials(slots)
            .url(redis.url())
            .build()
            .await
            .unwrap();
        assert_eq!(limiter.local_denial_slots(), slots);
        reset_stats(&mut raw).await;
        assert!(limiter.check("k").await.unwrap().allowed);
        assert!(limiter.check("k").await.unwrap().allowed);
        let first = limiter.check("k").await.unwrap();
        assert!(!first.allowed);
        assert_eq!(first.retry_after, Some(Duration::from_millis(100)));
        mock.increment(Duration::from_millis(60));
        let again = limiter.check("k").await.unwrap();
        assert!(!again.allowed);
        assert_eq!(again.retry_after, Some(Duration::from_millis(40)));
        assert_eq!(again.remaining, 0);
        // Another key is not affected.
        assert!(limiter.check("other").await.unwrap().allowed);
        let calls = command_calls(&mut raw).await;
        // With the memory on, the allow that filled the burst already told the client the
        // TAT: both denials are local.
        let (fcalls, local) = if slots == 0 { (5, 0) } else { (3, 2) };
        assert_eq!(calls("fcall"), fcalls, "slots {slots}");
        assert_eq!(limiter.stats().local_denials, local);
        assert_eq!(limiter.stats().denied, 2);
        // Once the TAT is reached, the request goes to the server and is allowed.
        mock.increment(Duration::from_millis(40));
        assert!(limiter.check("k").await.unwrap().allowed, "slots {slots}");
    }
}

/// Limiters with different quotas get different libraries (named by the code's SHA-1),
/// and both keep working side by side.
#[tokio::test]
async fn each_quota_has_its_own_function_library() {
    let Some(redis) = keel_testkit::redis_or_skip("each_quota_has_its_own_function_library") else {
        return;
    };
    let a = limiter(&redis.url(), RedisAlgorithm::Gcra, long_quota(2)).await;
    let b = limiter(&redis.url(), RedisAlgorithm::Gcra, long_quota(3)).await;
    assert_ne!(a.function_name(), b.function_name());
    assert_eq!(a.function_name(), format!("keel_rl_{}", a.script_hash()));
    let allowed = |l: &RedisLimiter, key: &'static str| {
        let l = l.clone();
        async move {
            let mut n = 0;
            for _ in 0..5 {
                n += u32::from(l.check(key).await.unwrap().allowed);
            }
            n
        }
    };
    assert_eq!(allowed(&a, "a").await, 2);
    assert_eq!(allowed(&b, "b").await, 3);
    let mut raw = raw_connection(&redis.url()).await;
    let list: redis::Value = redis::cmd("FUNCTION")
        .arg("LIST")
        .query_async(&mut raw)
        .await
        .unwrap();
    let text = format!("{list:?}");
    assert!(
        text.contains(a.function_name()) && text.contains(b.function_name()),
        "{text}"
    );
}

/// After `FUNCTION FLUSH` (or a restart without persistence) the next call gets
/// `Function not found`, re-loads the library and decides within the same call, with the
/// state it had: nothing is allowed twice.
#[tokio::test]
async fn a_flushed_function_library_is_reloaded_on_the_next_call() {
    let Some(redis) = keel_testkit::redis_or_skip("a_flushed_function_library_is_reloaded") else {
        return;
    };
    let mut raw = raw_connection(&redis.url()).await;
    for algorithm in RedisAlgorithm::ALL {
        let limiter = limiter(&redis.url(), algorithm, long_quota(3)).await;
        assert!(limiter.check("k").await.unwrap().allowed);
        let _: () = redis::cmd("FUNCTION")
            .arg("FLUSH")
            .query_async(&mut raw)
            .await
            .unwrap();
        reset_stats(&mut raw).await;
        let allowed = [
            limiter.check("k").await.unwrap().allowed,
            limiter.check("k").await.unwrap().allowed,
            limiter.check("k").await.unwrap().allowed,
        ];
        assert_eq!(allowed, [true, true, false], "{algorithm:?}");
        let calls = command_calls(&mut raw).await;
        // The first FCALL fails, one FUNCTION LOAD, then it and the other two succeed.
        assert_eq!(calls("fcall"), 4, "{algorithm:?}");
        assert_eq!(calls("function|load"), 1, "{algorithm:?}");
        assert_eq!(calls("evalsha"), 0, "{algorithm:?}");
        assert_eq!(limiter.server_call(), ServerCall::Fcall);
        assert_eq!(limiter.stats().backend_errors, 0, "{algorithm:?}");
    }
}

/// A server without functions (Redis < 7; here `FUNCTION` and `FCALL` renamed away) gets
/// one `EVALSHA` per decision; `SCRIPT FLUSH` costs one `SCRIPT LOAD` and no decision.
#[tokio::test]
async fn without_functions_the_limiter_falls_back_to_evalsha_and_reloads_flushed_scripts() {
    let Some(probe) = keel_testkit::redis_or_skip("falls_back_to_evalsha") else {
        return;
    };
    drop(probe);
    let redis = keel_testkit::RedisServer::start_with_args([
        "--rename-command",
        "FUNCTION",
        "keel-test-hidden-function",
        "--rename-command",
        "FCALL",
        "keel-test-hidden-fcall",
    ])
    .unwrap();
    let mut raw = raw_connection(&redis.url()).await;
    for algorithm in RedisAlgorithm::ALL {
        let limiter = limiter(&redis.url(), algorithm, long_quota(3)).await;
        assert_eq!(limiter.server_call(), ServerCall::Evalsha, "{algorithm:?}");
        evalsha_and_reload_after_script_flush(&mut raw, &limiter, algorithm).await;
    }
}

/// `.functions(false)` sends EVALSHA on a server that offers functions, and installs no
/// library.
#[tokio::test]
async fn functions_can_be_turned_off() {
    let Some(redis) = keel_testkit::redis_or_skip("functions_can_be_turned_off") else {
        return;
    };
    let mut raw = raw_connection(&redis.url()).await;
    for algorithm in RedisAlgorithm::ALL {
        let limiter = RedisLimiter::builder()
            .algorithm(algorithm)
            .quota(long_quota(3))
            .functions(false)
            .local_denials(0)
            .url(redis.url())
            .build()
            .await
            .unwrap();
        assert_eq!(limiter.server_call(), ServerCall::Evalsha, "{algorithm:?}");
        evalsha_and_reload_after_script_flush(&mut raw, &limiter, algorithm).await;
    }
    let list: Vec<redis::Value> = redis::cmd("FUNCTION")
        .arg("LIST")
        .query_async(&mut raw)
        .await
        .unwrap();
    assert!(list.is_empty(), "{list:?}");
}

async fn evalsha_and_reload_after_script_flush(
    raw: &mut redis::aio::MultiplexedConnection,
    limiter: &RedisLimiter,
    algorithm: RedisAlgorithm,
) {
    let _: () = redis::cmd("SCRIPT")
        .arg("FLUSH")
        .query_async(raw)
        .await
        .unwrap();
    {
        let raw = &mut *raw;
        reset_stats(raw).await;
        assert!(limiter.check("k").await.unwrap().allowed);
        let _: () = redis::cmd("SCRIPT")
            .arg("FLUSH")
            .query_async(&mut *raw)
            .await
            .unwrap();
        let allowed = [
            limiter.check("k").await.unwrap().allowed,
            limiter.check("k").await.unwrap().allowed,
            limiter.check("k").await.unwrap().allowed,
        ];
        assert_eq!(allowed, [true, true, false], "{algorithm:?}");
        let calls = command_calls(raw).await;
        // The first call and the one after the flush each get NOSCRIPT once.
        assert_eq!(calls("evalsha"), 6, "{algorithm:?}");
        assert_eq!(calls("script|load"), 2, "{algorithm:?}");
        assert_eq!(calls("eval"), 0, "{algorithm:?}");
        assert_eq!(limiter.stats().backend_errors, 0, "{algorithm:?}");
    }
}

/// A limiter built against Redis 7 whose server later refuses `FCALL` (replaced by an
/// older server behind the same address) switches to `EVALSHA` within the call.
#[tokio::test]
async fn a_server_that_stops_offering_functions_gets_evalsha_within_the_call() {
    let Some(probe) = keel_testkit::redis_or_skip("stops_offering_functions") else {
        return;
    };
    drop(probe);
    let mut redis = keel_testkit::RedisServer::start_with_args([
        "--rename-command",
        "FCALL",
        "keel-test-hidden-fcall",
    ])
    .unwrap();
    let limiter = limiter(&redis.url(), RedisAlgorithm::Gcra, long_quota(3)).await;
    // FUNCTION LOAD worked, so the limiter starts on FCALL, which the server refuses.
    assert_eq!(limiter.server_call(), ServerCall::Fcall);
    let allowed = [
        limiter.check("k").await.unwrap().allowed,
        limiter.check("k").await.unwrap().allowed,
        limiter.check("k").await.unwrap().allowed,
        limiter.check("k").await.unwrap().allowed,
    ];
    assert_eq!(allowed, [true, true, true, false]);
    assert_eq!(limiter.server_call(), ServerCall::Evalsha);
    assert_eq!(limiter.stats().backend_errors, 0);
    redis.stop();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_instances_sharing_one_redis_allow_exactly_the_global_limit() {
    let Some(redis) = keel_testkit::redis_or_skip("two_instances_sharing_one_redis") else {
        return;
    };
    let quota = long_quota(300);
    for algorithm in RedisAlgorithm::ALL {
        // Two limiters with their own connections, as two processes would have.
        let a = limiter(&redis.url(), algorithm, quota).await;
        let b = limiter(&redis.url(), algorithm, quota).await;
        let mut tasks = Vec::new();
        for i in 0..16 {
            let l = if i % 2 == 0 { a.clone() } else { b.clone() };
            tasks.push(tokio::spawn(async move {
                let mut allowed = 0u32;
                for _ in 0..50 {
                    if l.check("shared").await.unwrap().allowed {
                        allowed += 1;
                    }
                }
                allowed
            }));
        }
        let mut total = 0;
        for t in tasks {
            total += t.await.unwrap();
        }
        assert_eq!(
            total, 300,
            "{algorithm:?}: 800 attempts against a global limit of 300"
        );
        assert_eq!(a.stats().allowed + b.stats().allowed, 300);
    }
}

#[tokio::test]
async fn skewed_client_clocks_do_not_matter_because_server_time_is_used() {
    let Some(redis) = keel_testkit::redis_or_skip("skewed_client_clocks") else {
        return;
    };
    let quota = Quota::per_minute(10).unwrap();
    let three_hours = Duration::from_secs(3 * 3600);
    for algorithm in RedisAlgorithm::ALL {
        // Client-side time (what we do NOT do by default): client B's clock runs three
        // hours ahead, so it sees client A's window as long expired and allows again.
        let (clock_a, _) = quanta::Clock::mock();
        let (clock_b, _) = quanta::Clock::mock();
        let url = redis.url();
        let skewed = |clock, offset| {
            RedisLimiter::builder()
                .algorithm(algorithm)
                .quota(quota)
                .prefix("skew:client")
                .time_source(TimeSource::Client { clock, offset })
                .url(&url)
                .build()
        };
        let a = skewed(clock_a, Duration::from_secs(1_000_000))
            .await
            .unwrap();
        let b = skewed(clock_b, Duration::from_secs(1_000_000) + three_hours)
            .await
            .unwrap();
        let mut client_time_allowed = 0;
        for _ in 0..15 {
            client_time_allowed += u32::from(a.check("k").await.unwrap().allowed);
            client_time_allowed += u32::from(b.check("k").await.unwrap().allowed);
        }
        assert!(
            client_time_allowed > 10,
            "{algorithm:?}: skew should break client time"
        );

        // Server time (the default): the same two clients agree and decide identically.
        let a = limiter(&redis.url(), algorithm, long_quota(10)).await;
        let b = limiter(&redis.url(), algorithm, long_quota(10)).await;
        let mut decisions = Vec::new();
        for _ in 0..15 {
            decisions.push(a.check("k").await.unwrap().allowed);
            decisions.push(b.check("k").await.unwrap().allowed);
        }
        assert_eq!(
            decisions.iter().filter(|&&d| d).count(),
            10,
            "{algorithm:?}"
        );
        // The first ten (alternating a, b) allowed, every later one denied.
        assert!(decisions[..10].iter().all(|&d| d) && decisions[10..].iter().all(|&d| !d));
    }
}

/// Calls until Redis answers for real (no new backend error), bounded to ~10 s.
async fn until_recovered(limiter: &RedisLimiter, key: &str) -> keel_ratelimit::Decision {
    for _ in 0..100 {
        let errors = limiter.stats().backend_errors;
        let result = limiter.check(key).await;
        if limiter.stats().backend_errors == errors {
            if let Ok(d) = result {
                return d;
            }
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("the limiter did not recover after Redis restarted");
}

#[tokio::test]
async fn redis_outage_applies_the_policy_counts_it_and_recovers() {
    let Some(mut redis) = keel_testkit::redis_or_skip("redis_outage") else {
        return;
    };
    let quota = long_quota(3);
    // Without the local denial memory: a remembered denial needs no server, so it would
    // still be answered (correctly) during the outage instead of the policy.
    let open = RedisLimiter::builder()
        .algorithm(RedisAlgorithm::Gcra)
        .quota(quota)
        .failure_policy(FailurePolicy::FailOpen)
        .local_denials(0)
        .url(redis.url())
        .build()
        .await
        .unwrap();
    let closed = RedisLimiter::builder()
        .algorithm(RedisAlgorithm::SlidingLog)
        .quota(quota)
        .failure_policy(FailurePolicy::FailClosed {
            retry_after: Duration::from_secs(2),
        })
        .url(redis.url())
        .build()
        .await
        .unwrap();
    let erroring = RedisLimiter::builder()
        .algorithm(RedisAlgorithm::TokenBucket)
        .quota(quota)
        .failure_policy(FailurePolicy::Error)
        .url(redis.url())
        .build()
        .await
        .unwrap();
    for l in [&open, &closed, &erroring] {
        for _ in 0..3 {
            assert!(l.check("user").await.unwrap().allowed);
        }
        assert!(!l.check("user").await.unwrap().allowed);
    }

    redis.stop();
    for _ in 0..5 {
        assert!(
            open.check("user").await.unwrap().allowed,
            "fail open allows"
        );
        let d = closed.check("user").await.unwrap();
        assert!(!d.allowed, "fail closed denies");
        assert_eq!(d.retry_after, Some(Duration::from_secs(2)));
        assert!(matches!(
            erroring.check("user").await,
            Err(RedisLimitError::Redis(_))
        ));
    }
    let (o, c, e) = (open.stats(), closed.stats(), erroring.stats());
    assert_eq!((o.failed_open, o.backend_errors), (5, 5));
    assert_eq!((c.failed_closed, c.backend_errors), (5, 5));
    assert_eq!(
        (e.backend_errors, e.failed_open, e.failed_closed),
        (5, 0, 0)
    );

    // Restarted (empty, scripts gone): the same limiters make correct decisions again.
    redis.restart().unwrap();
    for l in [&open, &closed, &erroring] {
        assert!(until_recovered(l, "fresh").await.allowed);
        assert!(l.check("fresh").await.unwrap().allowed);
        assert!(l.check("fresh").await.unwrap().allowed);
        let d = l.check("fresh").await.unwrap();
        assert!(
            !d.allowed,
            "{:?}: exact again after recovery",
            l.algorithm()
        );
    }
}

/// Drives the Lua scripts with a client-side mock clock (so time is exact) and compares
/// every decision with the in-process algorithm on the same arrivals.
#[tokio::test]
async fn lua_scripts_decide_exactly_like_the_in_process_algorithms() {
    use keel_ratelimit::{
        Algorithm, FixedWindow, Gcra, RateLimiter, SlidingCounter, SlidingLog, TokenBucket,
    };

    let Some(redis) = keel_testkit::redis_or_skip("lua_scripts_decide_exactly") else {
        return;
    };
    async fn compare<A: Algorithm>(url: &str, algorithm: RedisAlgorithm) {
        // Seconds, not milliseconds: the keys' PEXPIRE runs on the server's real clock, so
        // a millisecond window let a stall of the loaded test machine expire a key the
        // mock clock still counted (FixedWindow once allowed where it should deny).
        let quota = Quota::new(7, Duration::from_secs(7))
            .unwrap()
            .with_burst(4)
            .unwrap();
        let (clock, mock) = quanta::Clock::mock();
        let local = RateLimiter::<A>::with_clock(quota, clock.clone());
        let remote = RedisLimiter::builder()
            .algorithm(algorithm)
            .quota(quota)
            .prefix("equivalence")
            // A slow call on a loaded machine must fail loudly, not fail open into a mismatch.
            .failure_policy(FailurePolicy::Error)
            .timeout(Duration::from_secs(10))
            .time_source(TimeSource::Client {
                clock,
                offset: Duration::ZERO,
            })
            .url(url)
            .build()
            .await
            .unwrap();
        let mut seed = 0x2545_f491_4f6c_dd1d_u64;
        for step in 0..600 {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            mock.increment(Duration::from_micros(seed % 900_000));
            let cost = 1 + (seed >> 20) as u32 % 3;
            let mut expected = local.check_n(cost).unwrap();
            // Redis works in microseconds: a nanosecond-exact wait rounds up to the next µs.
            expected.retry_after = expected
                .retry_after
                .map(|r| Duration::from_micros(r.as_nanos().div_ceil(1_000) as u64));
            let actual = remote.check_n("k", cost).await.unwrap();
            assert_eq!(actual, expected, "{algorithm:?} step {step}");
        }
        // GCRA answered some of those from its memory of denied keys (and still agreed
        // with the in-process algorithm on every one); the others have none.
        let local = remote.stats().local_denials;
        if algorithm == RedisAlgorithm::Gcra {
            assert!(local > 0, "the denial memory was never used");
        } else {
            assert_eq!(local, 0, "{algorithm:?}");
        }
    }
    let url = redis.url();
    compare::<FixedWindow>(&url, RedisAlgorithm::FixedWindow).await;
    compare::<SlidingLog>(&url, RedisAlgorithm::SlidingLog).await;
    compare::<SlidingCounter>(&url, RedisAlgorithm::SlidingCounter).await;
    compare::<TokenBucket>(&url, RedisAlgorithm::TokenBucket).await;
    compare::<Gcra>(&url, RedisAlgorithm::Gcra).await;
}

/// The scripts read a clock that steps back (a client time source, or the server's clock
/// after an NTP step) as "no time passed": the fixed window keeps its count instead of
/// resetting, and the sliding counter keeps its window instead of going back.
#[tokio::test]
async fn every_script_denies_after_a_clock_step_back() {
    let Some(redis) = keel_testkit::redis_or_skip("every_script_denies_after_a_clock_step_back")
    else {
        return;
    };
    let quota = Quota::new(1, Duration::from_millis(1)).unwrap();
    for algorithm in RedisAlgorithm::ALL {
        let (clock, mock) = quanta::Clock::mock();
        let limiter = RedisLimiter::builder()
            .algorithm(algorithm)
            .quota(quota)
            .prefix("test:backwards")
            .clock(clock)
            .url(redis.url())
            .build()
            .await
            .unwrap();
        mock.increment(Duration::from_micros(1_500));
        assert!(limiter.check("k").await.unwrap().allowed, "{algorithm:?}");
        mock.decrement(Duration::from_micros(600)); // 900 µs
        let d = limiter.check("k").await.unwrap();
        assert!(!d.allowed, "{algorithm:?} at 900 µs: {d:?}");
        mock.increment(Duration::from_micros(700)); // 1 600 µs
        let d = limiter.check("k").await.unwrap();
        assert!(!d.allowed, "{algorithm:?} at 1600 µs: {d:?}");
        mock.increment(Duration::from_millis(10));
        assert!(
            limiter.check("k").await.unwrap().allowed,
            "{algorithm:?} later"
        );
    }
}

#[tokio::test]
async fn builder_rejects_missing_settings_and_a_zero_timeout_before_connecting() {
    use keel_ratelimit::BuildError;
    let quota = Quota::per_second(10).unwrap();
    // Nothing listens here: each error must come from validation, not from connecting.
    let url = "redis://127.0.0.1:1/";
    let build = |b: keel_ratelimit::redis::RedisLimiterBuilder| async move { b.build().await };
    assert!(matches!(
        build(RedisLimiter::builder().url(url)).await,
        Err(BuildError::MissingQuota)
    ));
    assert!(matches!(
        build(RedisLimiter::builder().quota(quota)).await,
        Err(BuildError::MissingRedis)
    ));
    assert!(matches!(
        build(
            RedisLimiter::builder()
                .quota(quota)
                .url(url)
                .timeout(Duration::ZERO)
        )
        .await,
        Err(BuildError::ZeroTimeout)
    ));
    // Finer than the scripts' microsecond clock.
    let fine = Quota::new(1_000, Duration::from_micros(10)).unwrap();
    let error = build(RedisLimiter::builder().quota(fine).url(url))
        .await
        .unwrap_err();
    assert!(matches!(error, BuildError::Quota(_)));
    assert!(
        std::error::Error::source(&error).is_some(),
        "the cause is kept"
    );
    let error = build(RedisLimiter::builder().quota(quota).url(url))
        .await
        .unwrap_err();
    assert!(matches!(error, BuildError::Redis(_)));
    assert!(
        std::error::Error::source(&error).is_some(),
        "the cause is kept"
    );
}

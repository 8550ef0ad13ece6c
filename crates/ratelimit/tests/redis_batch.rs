//! The Redis GCRA limiter's batcher: decisions queued while a call is in flight go to the
//! server in one multi-key `FCALL`, and each must be exactly the decision sequential
//! calls would give.
#![cfg(feature = "redis")]

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use keel_ratelimit::redis::{FailurePolicy, RedisLimiter};
use keel_ratelimit::{Decision, Gcra, Quota, RateLimiter};
use proptest::prelude::*;
use proptest::test_runner::{Config, TestRunner};

/// One step of the model test: time passes, or several callers decide at once.
#[derive(Debug, Clone)]
enum Step {
    Advance(u64),
    /// `(key index, cost)` per caller, in the order they queue.
    Burst(Vec<(usize, u32)>),
}

fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        (0u64..30_000_000).prop_map(Step::Advance),
        // Three keys: a burst of up to 12 often holds the same key several times.
        prop::collection::vec((0usize..3, 1u32..=3), 1..12).prop_map(Step::Burst),
    ]
}

/// Redis works in microseconds: the in-process limiter's nanosecond-exact wait rounds up.
fn in_microseconds(mut d: Decision) -> Decision {
    d.retry_after = d
        .retry_after
        .map(|r| Duration::from_micros(r.as_nanos().div_ceil(1_000) as u64));
    d
}

/// A burst of concurrent callers, spawned in order on a current-thread runtime: they
/// queue in that order and the driver (spawned by the first) finds them all queued, so
/// the burst is one batch. Each decision must equal the in-process GCRA applying the
/// same requests one after the other on the same (mock) clock. With the local denial
/// memory on, a local denial may know an older TAT than the one an earlier request of
/// the same batch leaves: `allowed` is still exact and `retry_after` at most the server's.
#[test]
fn a_batch_of_mixed_keys_decides_exactly_like_sequential_in_process_gcra() {
    let Some(redis) = keel_testkit::redis_or_skip("a_batch_of_mixed_keys_decides_exactly") else {
        return;
    };
    let url = redis.url();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    // A 10 s interval: every key's TTL (≥ one interval of backlog) runs on the server's
    // real clock and must outlast the test case, whatever the mock clock says.
    let quota = Quota::new(7, Duration::from_secs(70))
        .unwrap()
        .with_burst(4)
        .unwrap();
    let case = std::cell::Cell::new(0u64);
    let mut runner = TestRunner::new(Config {
        cases: 48,
        failure_persistence: None,
        ..Config::default()
    });
    let strategy = (prop::collection::vec(step(), 1..24), any::<bool>());
    let result = runner.run(&strategy, |(steps, local_denials)| {
        case.set(case.get() + 1);
        let (clock, mock) = quanta::Clock::mock();
        let remote = runtime
            .block_on(
                RedisLimiter::builder()
                    .quota(quota)
                    .prefix(format!("batch-model:{}", case.get()))
                    .failure_policy(FailurePolicy::Error)
                    .timeout(Duration::from_secs(10))
                    .local_denials(if local_denials { 64 } else { 0 })
                    .clock(clock.clone())
                    .url(url.as_str())
                    .build(),
            )
            .unwrap();
        let mut model: HashMap<usize, RateLimiter<Gcra>> = HashMap::new();
        let mut expected_batched = 0u64;
        for step in steps {
            let burst = match step {
                Step::Advance(us) => {
                    mock.increment(Duration::from_micros(us));
                    continue;
                }
                Step::Burst(burst) => burst,
            };
            let actual: Vec<Decision> = runtime.block_on(async {
                let handles: Vec<_> = burst
                    .iter()
                    .map(|&(key, cost)| {
                        let remote = remote.clone();
                        tokio::spawn(async move { remote.check_n(&format!("k{key}"), cost).await })
                    })
                    .collect();
                let mut out = Vec::new();
                for handle in handles {
                    out.push(handle.await.unwrap().unwrap());
                }
                out
            });
            if !local_denials && burst.len() > 1 {
                expected_batched += burst.len() as u64;
            }
            for (i, (&(key, cost), actual)) in burst.iter().zip(actual).enumerate() {
                let local = model
                    .entry(key)
                    .or_insert_with(|| RateLimiter::<Gcra>::with_clock(quota, clock.clone()));
                let expected = in_microseconds(local.check_n(cost).unwrap());
                if local_denials {
                    prop_assert_eq!(
                        actual.allowed,
                        expected.allowed,
                        "caller {} of {:?}",
                        i,
                        burst
                    );
                    prop_assert!(
                        actual.retry_after <= expected.retry_after,
                        "caller {} of {:?}: {:?} > {:?}",
                        i,
                        burst,
                        actual,
                        expected
                    );
                } else {
                    prop_assert_eq!(actual, expected, "caller {} of {:?}", i, burst);
                }
            }
        }
        if !local_denials {
            // Every burst of several callers went to the server as one batch.
            prop_assert_eq!(remote.batch_stats().1, expected_batched);
        }
        Ok(())
    });
    if let Err(error) = result {
        panic!("{error}");
    }
}

/// 8 tasks × 200 decisions on one key whose quota refills once in 4 320 s: exactly the
/// burst (100) is allowed, whether the decisions go in batches or one by one, with or
/// without the local denial memory.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_callers_on_one_key_get_exactly_the_burst() {
    let Some(redis) = keel_testkit::redis_or_skip("concurrent_callers_on_one_key") else {
        return;
    };
    let quota = Quota::new(100, Duration::from_secs(5 * 86_400)).unwrap();
    for (name, batch, local_denials) in [
        ("batched", 64, 0),
        ("batched, local denials", 64, 4096),
        ("unbatched", 1, 0),
    ] {
        let limiter = RedisLimiter::builder()
            .quota(quota)
            .prefix(format!("batch-count:{name}"))
            .failure_policy(FailurePolicy::Error)
            .timeout(Duration::from_secs(10))
            .batch(batch)
            .local_denials(local_denials)
            .url(redis.url())
            .build()
            .await
            .unwrap();
        let limiter = Arc::new(limiter);
        let tasks: Vec<_> = (0..8)
            .map(|_| {
                let limiter = limiter.clone();
                tokio::spawn(async move {
                    let mut allowed = 0u32;
                    for _ in 0..200 {
                        if limiter.check("hot").await.unwrap().allowed {
                            allowed += 1;
                        }
                    }
                    allowed
                })
            })
            .collect();
        let mut allowed = 0;
        for task in tasks {
            allowed += tokio::time::timeout(Duration::from_secs(60), task)
                .await
                .expect("callers hung")
                .unwrap();
        }
        assert_eq!(allowed, 100, "{name}");
        let stats = limiter.stats();
        assert_eq!((stats.allowed, stats.denied), (100, 1_500), "{name}");
        let (calls, decisions) = limiter.batch_stats();
        if batch == 1 {
            assert_eq!((calls, decisions), (0, 0), "{name}");
        } else if local_denials == 0 {
            assert!(
                calls > 0 && decisions > calls,
                "{name}: 8 concurrent callers never shared a call ({calls}, {decisions})"
            );
        }
    }
}

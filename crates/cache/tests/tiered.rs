//! `TieredCache` against a private `redis-server` (through keel-testkit):
//! cross-instance invalidation, Redis outage and recovery.
#![cfg(feature = "redis")]

use std::time::Duration;

use keel_cache::{TieredCache, TieredError};

const WAIT: Duration = Duration::from_secs(10);

#[derive(Debug, thiserror::Error)]
#[error("the loader must not be called here")]
struct Unexpected;

async fn instance(url: &str, namespace: &str) -> TieredCache<String> {
    TieredCache::builder()
        .redis_url(url)
        .namespace(namespace)
        .ttl(Duration::from_secs(60))
        .l2_timeout(Duration::from_millis(300))
        .build()
        .await
        .expect("tiered cache builds")
}

async fn wait_for(
    rx: &mut tokio::sync::watch::Receiver<keel_cache::SyncState>,
    what: impl FnMut(&keel_cache::SyncState) -> bool,
) {
    tokio::time::timeout(WAIT, rx.wait_for(what))
        .await
        .expect("event arrived in time")
        .expect("subscriber alive");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invalidation_on_a_stops_b_serving_stale_values() {
    let Some(redis) = keel_testkit::redis_or_skip("invalidation_on_a_stops_b_serving_stale_values")
    else {
        return;
    };
    let a = instance(&redis.url(), "inval").await;
    let b = instance(&redis.url(), "inval").await;
    let mut b_events = b.sync_events();
    wait_for(&mut b_events, |s| s.subscribed).await;
    wait_for(&mut a.sync_events(), |s| s.subscribed).await;

    let v = a
        .get_or_load("user:1", || async { Ok::<_, Unexpected>("v1".to_string()) })
        .await
        .unwrap();
    assert_eq!(v, "v1");
    // B misses L1, finds L2 (written through by A), promotes into its L1.
    let v = b
        .get_or_load("user:1", || async { Err::<String, _>(Unexpected) })
        .await
        .unwrap();
    assert_eq!(v, "v1");
    assert!(b.in_l1("user:1"));
    assert_eq!(b.stats().l2_hits, 1);
    assert_eq!(a.stats().loader_calls + b.stats().loader_calls, 1);

    // A writes a new value: B must drop its copy when the message arrives.
    a.set("user:1", "v2".to_string()).await.unwrap();
    wait_for(&mut b_events, |s| s.invalidations_received >= 1).await;
    assert!(!b.in_l1("user:1"), "B dropped its stale L1 copy");
    assert_eq!(b.get("user:1").await.as_deref(), Some("v2"));
    assert_eq!(
        a.get("user:1").await.as_deref(),
        Some("v2"),
        "the writer kept its own fresh copy"
    );

    // A invalidates: gone from L2 and from B's L1.
    a.invalidate("user:1").await.unwrap();
    wait_for(&mut b_events, |s| s.invalidations_received >= 2).await;
    assert!(!b.in_l1("user:1"));
    assert_eq!(b.get("user:1").await, None);
    assert_eq!(
        a.stats().invalidations_published,
        3,
        "two writes through + one invalidate"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_down_keeps_serving_and_recovers() {
    let Some(mut redis) = keel_testkit::redis_or_skip("redis_down_keeps_serving_and_recovers")
    else {
        return;
    };
    let a = instance(&redis.url(), "outage").await;
    let mut a_events = a.sync_events();
    wait_for(&mut a_events, |s| s.subscribed).await;
    assert_eq!(
        a.get_or_load("k1", || async { Ok::<_, Unexpected>("one".to_string()) })
            .await
            .unwrap(),
        "one"
    );

    redis.stop();
    // L1 still serves.
    assert_eq!(a.get("k1").await.as_deref(), Some("one"));
    // L1 miss: L2 fails (counted), the loader serves.
    let before = a.stats().l2_errors;
    assert_eq!(
        a.get_or_load("k2", || async { Ok::<_, Unexpected>("two".to_string()) })
            .await
            .unwrap(),
        "two"
    );
    assert!(a.stats().l2_errors > before, "L2 errors are counted");
    assert!(matches!(
        a.set("k3", "three".to_string()).await,
        Err(TieredError::Redis(_))
    ));
    assert_eq!(
        a.get("k3").await.as_deref(),
        Some("three"),
        "a failed write-through still updates L1"
    );

    redis.restart().expect("redis restarts");
    // The subscriber reconnects by itself and clears L1 (it may have missed
    // invalidations while Redis was away).
    wait_for(&mut a_events, |s| s.resyncs >= 1 && s.subscribed).await;
    assert!(!a.in_l1("k1"));
    // The connection manager reconnects on demand; retry a bounded number of times.
    let mut written = false;
    for _ in 0..50 {
        if a.set("k4", "four".to_string()).await.is_ok() {
            written = true;
            break;
        }
    }
    assert!(written, "L2 writes resume after Redis restarts");
    // A fresh instance (empty L1) gets the value from L2 again.
    let b = instance(&redis.url(), "outage").await;
    let v = b
        .get_or_load("k4", || async { Err::<String, _>(Unexpected) })
        .await
        .unwrap();
    assert_eq!(v, "four");
    assert_eq!(b.stats().l2_hits, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn promoted_entries_keep_the_remaining_ttl() {
    let Some(redis) = keel_testkit::redis_or_skip("promoted_entries_keep_the_remaining_ttl") else {
        return;
    };
    let a = instance(&redis.url(), "ttl").await;
    a.set("short", "x".to_string()).await.unwrap();
    // Shorten the L2 TTL behind the cache's back; a fresh instance promotes
    // with what is left, not with its own 60 s.
    let client = redis::Client::open(redis.url()).unwrap();
    let mut conn = client.get_multiplexed_async_connection().await.unwrap();
    let _: () = redis::cmd("PEXPIRE")
        .arg("ttl:short")
        .arg(5_000u64)
        .query_async(&mut conn)
        .await
        .unwrap();
    let (clock, mock) = quanta::Clock::mock();
    let b: TieredCache<String> = TieredCache::builder()
        .redis_url(redis.url())
        .namespace("ttl")
        .ttl(Duration::from_secs(60))
        .clock(clock)
        .build()
        .await
        .unwrap();
    assert_eq!(b.get("short").await.as_deref(), Some("x"));
    assert!(b.in_l1("short"));
    mock.increment(Duration::from_secs(6));
    assert!(
        !b.in_l1("short"),
        "L1 copy expired with the L2 key's remaining TTL"
    );
}

//! `TieredCache` against a private `redis-server` (through keel-testkit):
//! cross-instance invalidation, Redis outage and recovery, a connection
//! that goes silent (through a small proxy that swallows bytes), stale
//! write-backs, key encoding, deadlines (in paused Tokio time against a
//! server that never answers), bad durations.
#![cfg(feature = "redis")]

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use keel_cache::{BuildError, TieredCache, TieredCacheBuilder, TieredError};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

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
    // The write-back runs off A's path and publishes like a write; wait
    // until B has heard of it, so it cannot drop what it promotes below.
    a.flush_write_backs().await;
    wait_for(&mut b_events, |s| s.invalidations_received >= 1).await;
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
    wait_for(&mut b_events, |s| s.invalidations_received >= 2).await;
    assert!(!b.in_l1("user:1"), "B dropped its stale L1 copy");
    assert_eq!(b.get("user:1").await.as_deref(), Some("v2"));
    assert_eq!(
        a.get("user:1").await.as_deref(),
        Some("v2"),
        "the writer kept its own fresh copy"
    );

    // A invalidates: gone from L2 and from B's L1.
    a.invalidate("user:1").await.unwrap();
    wait_for(&mut b_events, |s| s.invalidations_received >= 3).await;
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
        .arg(a.redis_key("short"))
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

/// A TCP proxy to Redis that misbehaves on demand, as networks do:
/// - `silence_open_flows`: every flow open so far goes silent in both
///   directions — bytes are read and dropped, nothing is closed — as a NAT
///   or load balancer does when it forgets an idle flow. New flows work.
/// - `hold_replies_of_new_flows` + `close_gate`/`open_gate`: replies on
///   flows opened after the call wait at a gate (a slow network), so a test
///   can interleave other events with a request in flight.
struct MisbehavingProxy {
    addr: SocketAddr,
    state: Arc<ProxyState>,
}

struct ProxyState {
    epoch: AtomicU64,
    hold_new_flows: std::sync::atomic::AtomicBool,
    gate: tokio::sync::watch::Sender<bool>,
    /// Reply chunks waiting at the closed gate right now.
    held: tokio::sync::watch::Sender<u64>,
}

impl MisbehavingProxy {
    async fn start(upstream: SocketAddr) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let state = Arc::new(ProxyState {
            epoch: AtomicU64::new(0),
            hold_new_flows: false.into(),
            gate: tokio::sync::watch::channel(true).0,
            held: tokio::sync::watch::channel(0).0,
        });
        let shared = Arc::clone(&state);
        tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                let born = shared.epoch.load(Ordering::SeqCst);
                let gated = shared.hold_new_flows.load(Ordering::SeqCst);
                let Ok(server) = tokio::net::TcpStream::connect(upstream).await else {
                    continue;
                };
                let (client_rx, client_tx) = client.into_split();
                let (server_rx, server_tx) = server.into_split();
                let flow = |gated| Flow {
                    state: Arc::clone(&shared),
                    born,
                    gated,
                };
                tokio::spawn(pump(client_rx, server_tx, flow(false)));
                tokio::spawn(pump(server_rx, client_tx, flow(gated)));
            }
        });
        Self { addr, state }
    }

    fn url(&self) -> String {
        format!("redis://{}/", self.addr)
    }

    /// Every flow opened before now swallows its bytes from here on.
    fn silence_open_flows(&self) {
        self.state.epoch.fetch_add(1, Ordering::SeqCst);
    }

    /// Replies on flows opened from now on pass the gate.
    fn hold_replies_of_new_flows(&self) {
        self.state.hold_new_flows.store(true, Ordering::SeqCst);
    }

    fn close_gate(&self) {
        self.state.gate.send_replace(false);
    }

    fn open_gate(&self) {
        self.state.gate.send_replace(true);
    }

    /// Waits until a reply is waiting at the closed gate.
    async fn reply_held(&self) {
        let mut held = self.state.held.subscribe();
        tokio::time::timeout(WAIT, held.wait_for(|n| *n > 0))
            .await
            .expect("a reply reached the gate")
            .expect("proxy alive");
    }
}

/// One direction of one proxied flow.
struct Flow {
    state: Arc<ProxyState>,
    born: u64,
    gated: bool,
}

async fn pump(
    mut from: tokio::net::tcp::OwnedReadHalf,
    mut to: tokio::net::tcp::OwnedWriteHalf,
    flow: Flow,
) {
    let mut buf = vec![0u8; 16 * 1024];
    let mut gate = flow.state.gate.subscribe();
    loop {
        let n = match from.read(&mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(n) => n,
        };
        if flow.state.epoch.load(Ordering::SeqCst) != flow.born {
            continue; // silenced: drop the bytes, keep the socket open
        }
        if flow.gated && !*gate.borrow() {
            flow.state.held.send_modify(|n| *n += 1);
            let opened = gate.wait_for(|open| *open).await.is_ok();
            flow.state.held.send_modify(|n| *n -= 1);
            if !opened {
                return;
            }
        }
        if to.write_all(&buf[..n]).await.is_err() {
            return;
        }
    }
}

async fn through_proxy(proxy: &MisbehavingProxy, namespace: &str) -> TieredCache<String> {
    through_proxy_with(proxy, namespace, Duration::from_millis(200)).await
}

async fn through_proxy_with(
    proxy: &MisbehavingProxy,
    namespace: &str,
    l2_timeout: Duration,
) -> TieredCache<String> {
    TieredCache::builder()
        .redis_url(proxy.url())
        .namespace(namespace)
        .ttl(Duration::from_secs(60))
        .l2_timeout(l2_timeout)
        .liveness_interval(Duration::from_millis(100))
        .build()
        .await
        .expect("tiered cache builds")
}

/// Issue 10 item 10: a subscriber whose connection goes silent notices it
/// (an unanswered PING), reconnects and clears L1, so an invalidation it
/// never received cannot keep a stale copy alive.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_silent_subscriber_connection_is_noticed_and_l1_resynced() {
    let Some(redis) =
        keel_testkit::redis_or_skip("a_silent_subscriber_connection_is_noticed_and_l1_resynced")
    else {
        return;
    };
    let proxy = MisbehavingProxy::start(redis.addr()).await;
    let a = instance(&redis.url(), "silent-sub").await;
    let b = through_proxy(&proxy, "silent-sub").await;
    let mut b_events = b.sync_events();
    wait_for(&mut b_events, |s| s.subscribed).await;
    let v = b
        .get_or_load("k", || async { Ok::<_, Unexpected>("v1".to_string()) })
        .await
        .unwrap();
    assert_eq!(v, "v1");
    assert!(b.in_l1("k"));

    proxy.silence_open_flows();
    a.invalidate("k").await.unwrap(); // B never hears of it
    wait_for(&mut b_events, |s| s.resyncs >= 1 && s.subscribed).await;
    assert!(
        !b.in_l1("k"),
        "the resync dropped the copy B was never told about"
    );
    assert!(b.stats().subscriber_losses >= 1);
}

/// Issue 10 item 10, swept: the command connection through a silenced flow
/// times out without an I/O error; after a few timeouts in a row the cache
/// replaces it instead of failing every call forever.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_silent_command_connection_is_replaced() {
    let Some(redis) = keel_testkit::redis_or_skip("a_silent_command_connection_is_replaced") else {
        return;
    };
    let proxy = MisbehavingProxy::start(redis.addr()).await;
    let b = through_proxy(&proxy, "silent-cmd").await;
    b.set("k", "v1".to_string()).await.unwrap();
    proxy.silence_open_flows();
    let mut recovered = false;
    for _ in 0..10 {
        if b.set("k", "v2".to_string()).await.is_ok() {
            recovered = true;
            break;
        }
    }
    assert!(recovered, "writes resume on a fresh connection");
    let stats = b.stats();
    assert!(stats.reconnects >= 1 && stats.l2_errors >= 1, "{stats:?}");
}

/// Starts `cache.get_or_load(key)` with a loader that returns `value` only
/// once released; returns after the loader has started.
async fn start_a_held_load(
    cache: &TieredCache<String>,
    key: &'static str,
    value: &'static str,
) -> (
    tokio::sync::oneshot::Sender<()>,
    tokio::task::JoinHandle<Result<String, TieredError>>,
) {
    let (started_tx, started_rx) = tokio::sync::oneshot::channel();
    let (release_tx, release_rx) = tokio::sync::oneshot::channel::<()>();
    let cache = cache.clone();
    let loading = tokio::spawn(async move {
        cache
            .get_or_load(key, || async move {
                let _ = started_tx.send(());
                let _ = release_rx.await;
                Ok::<_, Unexpected>(value.to_string())
            })
            .await
    });
    tokio::time::timeout(WAIT, started_rx)
        .await
        .unwrap()
        .unwrap();
    (release_tx, loading)
}

/// Issue 10 item 2: an `invalidate` that returned `Ok` is not undone by a
/// load that started before it and finished after.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_invalidate_that_returned_ok_is_not_undone_by_an_older_load() {
    let Some(redis) = keel_testkit::redis_or_skip(
        "an_invalidate_that_returned_ok_is_not_undone_by_an_older_load",
    ) else {
        return;
    };
    let a = instance(&redis.url(), "stale-load").await;
    let b = instance(&redis.url(), "stale-load").await;
    let (release, loading) = start_a_held_load(&b, "k", "old").await;
    a.invalidate("k").await.expect("invalidate returned Ok");
    let _ = release.send(());
    let loaded = tokio::time::timeout(WAIT, loading).await.unwrap().unwrap();
    assert_eq!(
        loaded.unwrap(),
        "old",
        "the caller still gets what it loaded"
    );
    tokio::time::timeout(WAIT, b.flush_write_backs())
        .await
        .unwrap();
    let fresh = instance(&redis.url(), "stale-load").await;
    assert_eq!(
        fresh.get("k").await,
        None,
        "the stale load was written back"
    );
    assert_eq!(b.stats().write_backs, 0);
    assert_eq!(b.stats().write_backs_skipped, 1);
}

/// Issue 10 item 2, swept to `set`: a write-through is not overwritten by a
/// load that started before it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_set_is_not_overwritten_by_an_older_load() {
    let Some(redis) = keel_testkit::redis_or_skip("a_set_is_not_overwritten_by_an_older_load")
    else {
        return;
    };
    let a = instance(&redis.url(), "stale-set").await;
    let b = instance(&redis.url(), "stale-set").await;
    let (release, loading) = start_a_held_load(&b, "k", "old").await;
    a.set("k", "new".to_string()).await.unwrap();
    let _ = release.send(());
    let _ = tokio::time::timeout(WAIT, loading).await.unwrap().unwrap();
    tokio::time::timeout(WAIT, b.flush_write_backs())
        .await
        .unwrap();
    let fresh = instance(&redis.url(), "stale-set").await;
    assert_eq!(fresh.get("k").await.as_deref(), Some("new"));
}

/// Issue 10 item 2, swept to `get`: a plain read of L2 that was in flight
/// when an invalidation arrived serves what it read to its caller, but does
/// not keep the (possibly) old value in L1.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_get_racing_an_invalidation_does_not_keep_the_old_value() {
    let Some(redis) =
        keel_testkit::redis_or_skip("a_get_racing_an_invalidation_does_not_keep_the_old_value")
    else {
        return;
    };
    let proxy = MisbehavingProxy::start(redis.addr()).await;
    let a = instance(&redis.url(), "racing-get").await;
    // B's subscriber connects during build, before any gating.
    let b = through_proxy_with(&proxy, "racing-get", WAIT).await;
    let mut b_events = b.sync_events();
    wait_for(&mut b_events, |s| s.subscribed).await;
    proxy.hold_replies_of_new_flows();
    b.set("warm-up", "x".to_string()).await.unwrap(); // B's command flow: gated, gate open
    a.set("k", "old".to_string()).await.unwrap();
    wait_for(&mut b_events, |s| s.invalidations_received >= 1).await;

    proxy.close_gate();
    let reading = {
        let b = b.clone();
        tokio::spawn(async move { b.get("k").await })
    };
    proxy.reply_held().await; // B has read "old"; the reply waits at the gate
    a.set("k", "new".to_string()).await.unwrap();
    wait_for(&mut b_events, |s| s.invalidations_received >= 2).await;
    proxy.open_gate();
    let read = tokio::time::timeout(WAIT, reading).await.unwrap().unwrap();
    assert_eq!(read.as_deref(), Some("old"), "the caller gets what it read");
    assert!(
        !b.in_l1("k"),
        "the read that raced the invalidation was kept in L1"
    );
    assert_eq!(b.get("k").await.as_deref(), Some("new"));
}

/// Issue 10 item 12: namespace `app` + key `x:y` and namespace `app:x` +
/// key `y` are different Redis keys.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn namespace_and_key_do_not_collide_in_redis() {
    let Some(redis) = keel_testkit::redis_or_skip("namespace_and_key_do_not_collide_in_redis")
    else {
        return;
    };
    let app = instance(&redis.url(), "app").await;
    let app_x = instance(&redis.url(), "app:x").await;
    assert_ne!(app.redis_key("x:y"), app_x.redis_key("y"));
    app.set("x:y", "from app".to_string()).await.unwrap();
    assert_eq!(app_x.get("y").await, None);
    app_x.set("y", "from app:x".to_string()).await.unwrap();
    let fresh = instance(&redis.url(), "app").await;
    assert_eq!(fresh.get("x:y").await.as_deref(), Some("from app"));
}

/// Issue 10 item 12: durations that cannot work get typed errors with
/// their own message; `Duration::MAX` as a timeout is lowered, not a panic.
#[tokio::test(start_paused = true)]
async fn bad_durations_get_typed_errors() {
    // A port nobody listens on: building is lazy, nothing needs to answer.
    let url = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        format!("redis://{}/", l.local_addr().unwrap())
    };
    let build = |b: TieredCacheBuilder| async move { b.build::<String>().await };
    let err = build(TieredCache::builder().redis_url(&url).ttl(Duration::MAX))
        .await
        .unwrap_err();
    assert!(
        matches!(err, BuildError::TimeToLiveTooLarge { requested, max }
            if requested == Duration::MAX && max == TieredCacheBuilder::MAX_TTL),
        "{err:?}"
    );
    let err = build(
        TieredCache::builder()
            .redis_url(&url)
            .l2_timeout(Duration::ZERO),
    )
    .await
    .unwrap_err();
    assert!(matches!(err, BuildError::ZeroTimeout), "{err:?}");
    assert_eq!(err.to_string(), "l2 timeout must be greater than zero");
    let err = build(
        TieredCache::builder()
            .redis_url(&url)
            .liveness_interval(Duration::ZERO),
    )
    .await
    .unwrap_err();
    assert!(matches!(err, BuildError::ZeroLivenessInterval), "{err:?}");
    let err = build(TieredCache::builder()).await.unwrap_err();
    assert!(matches!(err, BuildError::MissingRedisUrl), "{err:?}");

    let cache = build(
        TieredCache::builder()
            .redis_url(&url)
            .l2_timeout(Duration::MAX),
    )
    .await
    .expect("Duration::MAX is lowered, not a panic");
    assert_eq!(cache.l2_timeout(), TieredCacheBuilder::MAX_L2_TIMEOUT);
}

/// Issue 10 item 11: against a Redis that accepts connections and never
/// answers, a miss costs one `l2_timeout` of Redis time (the write-back is
/// off the caller's path). Paused Tokio time: the figure is virtual time,
/// exact and independent of machine load.
#[tokio::test(start_paused = true)]
async fn a_miss_under_a_hung_redis_costs_one_l2_timeout() {
    let hung = std::net::TcpListener::bind("127.0.0.1:0").unwrap(); // never accepts
    let timeout = Duration::from_millis(250);
    let cache: TieredCache<String> = TieredCache::builder()
        .redis_url(format!("redis://{}/", hung.local_addr().unwrap()))
        .namespace("hung")
        .l2_timeout(timeout)
        .build()
        .await
        .unwrap();
    let start = tokio::time::Instant::now();
    let v = cache
        .get_or_load("k", || async { Ok::<_, Unexpected>("db".to_string()) })
        .await
        .unwrap();
    let spent = start.elapsed();
    assert_eq!(v, "db");
    assert!(
        spent <= timeout + Duration::from_millis(1),
        "a miss took {spent:?} of (virtual) time against a {timeout:?} deadline"
    );
    let start = tokio::time::Instant::now();
    assert!(cache.set("k2", "x".to_string()).await.is_err());
    assert!(start.elapsed() <= timeout + Duration::from_millis(1));
}

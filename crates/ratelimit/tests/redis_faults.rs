//! The Redis limiter under faults a network produces: a connection that silently drops
//! every byte (a NAT or load balancer forgetting an idle flow) and a server that is gone.
//! Each call must end within the limiter's one documented timeout, and a black-holed
//! connection must be replaced.
#![cfg(feature = "redis")]

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use keel_ratelimit::Quota;
use keel_ratelimit::error::RedisLimitError;
use keel_ratelimit::redis::{FailurePolicy, RedisLimiter};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

const TIMEOUT: Duration = Duration::from_millis(200);
/// How late a call may return past its timeout on a loaded 2-core machine (timer and
/// scheduling delay only; the defect this guards against was ~300 ms over a 250 ms budget
/// per call, and unbounded for a black-holed connection).
const SLACK: Duration = Duration::from_millis(250);

/// A TCP proxy to Redis that can turn every connection open at that moment into a black
/// hole: bytes in both directions are read and dropped, nothing is closed. Connections
/// opened later pass through.
struct BlackHoleProxy {
    addr: SocketAddr,
    /// Connections with an id below this swallow everything.
    swallow_below: Arc<AtomicU64>,
    next_id: Arc<AtomicU64>,
    task: tokio::task::JoinHandle<()>,
}

impl BlackHoleProxy {
    async fn start(upstream: SocketAddr) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let swallow_below = Arc::new(AtomicU64::new(0));
        let next_id = Arc::new(AtomicU64::new(0));
        let task = {
            let (swallow_below, next_id) = (swallow_below.clone(), next_id.clone());
            tokio::spawn(async move {
                while let Ok((client, _)) = listener.accept().await {
                    let id = next_id.fetch_add(1, Ordering::SeqCst);
                    let Ok(server) = TcpStream::connect(upstream).await else {
                        continue;
                    };
                    let (client_read, client_write) = client.into_split();
                    let (server_read, server_write) = server.into_split();
                    tokio::spawn(pipe(client_read, server_write, id, swallow_below.clone()));
                    tokio::spawn(pipe(server_read, client_write, id, swallow_below.clone()));
                }
            })
        };
        Self {
            addr,
            swallow_below,
            next_id,
            task,
        }
    }

    fn url(&self) -> String {
        format!("redis://{}/", self.addr)
    }

    /// Every connection open now silently drops all traffic from here on.
    fn black_hole_open_connections(&self) {
        self.swallow_below
            .store(self.next_id.load(Ordering::SeqCst), Ordering::SeqCst);
    }

    fn connections_opened(&self) -> u64 {
        self.next_id.load(Ordering::SeqCst)
    }
}

impl Drop for BlackHoleProxy {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn pipe(
    mut from: tokio::net::tcp::OwnedReadHalf,
    mut to: tokio::net::tcp::OwnedWriteHalf,
    id: u64,
    swallow_below: Arc<AtomicU64>,
) {
    let mut buf = vec![0u8; 16 * 1024];
    loop {
        let n = match from.read(&mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(n) => n,
        };
        if id < swallow_below.load(Ordering::SeqCst) {
            continue; // the black hole: read, drop, never answer, never close
        }
        if to.write_all(&buf[..n]).await.is_err() {
            return;
        }
    }
}

/// Runs one call and returns its result and how long it took.
async fn timed(
    limiter: &RedisLimiter,
) -> (Result<keel_ratelimit::Decision, RedisLimitError>, Duration) {
    let started = Instant::now();
    // The outer bound only keeps a regression from hanging the test.
    let result = tokio::time::timeout(Duration::from_secs(30), limiter.check("user"))
        .await
        .expect("a rate-limit call hung for 30 s");
    (result, started.elapsed())
}

#[tokio::test]
async fn a_black_holed_connection_is_replaced_after_repeated_timeouts() {
    let Some(redis) = keel_testkit::redis_or_skip("a_black_holed_connection_is_replaced") else {
        return;
    };
    let proxy = BlackHoleProxy::start(redis.addr()).await;
    let limiter = RedisLimiter::builder()
        .quota(Quota::per_minute(1_000).unwrap())
        .url(proxy.url())
        .timeout(TIMEOUT)
        .failure_policy(FailurePolicy::Error)
        .build()
        .await
        .unwrap();
    assert!(limiter.check("user").await.unwrap().allowed);
    let before = proxy.connections_opened();

    proxy.black_hole_open_connections();
    let mut failures = 0;
    let mut recovered = false;
    for _ in 0..10 {
        let (result, took) = timed(&limiter).await;
        assert!(took < TIMEOUT + SLACK, "a call took {took:?}");
        match result {
            Ok(decision) => {
                assert!(decision.allowed);
                recovered = true;
                break;
            }
            Err(RedisLimitError::Redis(_)) => failures += 1,
            Err(other) => panic!("unexpected error {other}"),
        }
    }
    assert!(
        recovered,
        "still failing after {failures} timeouts: never reconnected"
    );
    assert!(failures >= 1, "the black hole was never noticed");
    assert!(proxy.connections_opened() > before, "no new connection");
    let stats = limiter.stats();
    assert!(stats.reconnects >= 1, "{stats:?}");
    assert_eq!(stats.backend_errors, failures);
}

#[tokio::test]
async fn each_call_ends_within_its_timeout_while_redis_is_down() {
    let Some(mut redis) = keel_testkit::redis_or_skip("each_call_ends_within_its_timeout") else {
        return;
    };
    let limiter = RedisLimiter::builder()
        .quota(Quota::per_minute(1_000).unwrap())
        .url(redis.url())
        .timeout(TIMEOUT)
        .failure_policy(FailurePolicy::FailOpen)
        .build()
        .await
        .unwrap();
    assert!(limiter.check("user").await.unwrap().allowed);
    redis.stop();
    let mut slowest = Duration::ZERO;
    for _ in 0..8 {
        let (result, took) = timed(&limiter).await;
        assert!(result.unwrap().allowed, "fail open");
        slowest = slowest.max(took);
    }
    assert!(
        slowest < TIMEOUT + SLACK,
        "slowest call {slowest:?} against a timeout of {TIMEOUT:?}"
    );
    assert_eq!(limiter.stats().failed_open, 8);
}

#[tokio::test]
async fn a_black_holed_connection_under_fail_closed_denies_within_the_timeout() {
    let Some(redis) = keel_testkit::redis_or_skip("black_hole_fail_closed") else {
        return;
    };
    let proxy = BlackHoleProxy::start(redis.addr()).await;
    let limiter = RedisLimiter::builder()
        .quota(Quota::per_minute(1_000).unwrap())
        .url(proxy.url())
        .timeout(TIMEOUT)
        .failure_policy(FailurePolicy::FailClosed {
            retry_after: Duration::MAX,
        })
        .build()
        .await
        .unwrap();
    assert!(limiter.check("user").await.unwrap().allowed);
    proxy.black_hole_open_connections();
    let (result, took) = timed(&limiter).await;
    let decision = result.unwrap();
    assert!(!decision.allowed);
    // "Until further notice" saturates instead of wrapping around.
    assert_eq!(decision.retry_after, Some(Duration::from_nanos(u64::MAX)));
    assert!(took < TIMEOUT + SLACK, "took {took:?}");
}

/// A batch of 16 decisions (queued together on a current-thread runtime, so one call
/// carries them all) is in flight when the connection turns into a black hole: every
/// caller gets the error within its timeout, none waits for the others or hangs.
#[tokio::test]
async fn a_black_holed_batch_fails_every_caller_within_the_timeout() {
    let Some(redis) = keel_testkit::redis_or_skip("a_black_holed_batch_fails_every_caller") else {
        return;
    };
    let proxy = BlackHoleProxy::start(redis.addr()).await;
    let limiter = RedisLimiter::builder()
        .quota(Quota::per_minute(1_000).unwrap())
        .url(proxy.url())
        .timeout(TIMEOUT)
        .failure_policy(FailurePolicy::Error)
        .build()
        .await
        .unwrap();
    assert!(limiter.check("user").await.unwrap().allowed);
    proxy.black_hole_open_connections();
    let callers: Vec<_> = (0..16)
        .map(|i| {
            let limiter = limiter.clone();
            tokio::spawn(async move {
                let started = Instant::now();
                let result = tokio::time::timeout(
                    Duration::from_secs(30),
                    limiter.check(&format!("user:{i}")),
                )
                .await
                .expect("a batched call hung for 30 s");
                (result, started.elapsed())
            })
        })
        .collect();
    for caller in callers {
        let (result, took) = caller.await.unwrap();
        assert!(
            matches!(result, Err(RedisLimitError::Redis(_))),
            "{result:?}"
        );
        assert!(took < TIMEOUT + SLACK, "a batched call took {took:?}");
    }
    assert_eq!(limiter.batch_stats(), (1, 16), "the 16 went as one batch");
    assert_eq!(limiter.stats().backend_errors, 16);
}

/// Redis is killed while 16 callers keep batches in flight: every caller's next calls
/// end with an error within the timeout (the batch in flight and those queued behind it
/// included), and none hangs.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_killed_under_batched_load_errors_every_caller_without_hanging() {
    let Some(mut redis) = keel_testkit::redis_or_skip("redis_killed_under_batched_load") else {
        return;
    };
    let limiter = RedisLimiter::builder()
        .quota(Quota::per_second(1_000_000).unwrap())
        .url(redis.url())
        .timeout(TIMEOUT)
        .failure_policy(FailurePolicy::Error)
        .build()
        .await
        .unwrap();
    let callers: Vec<_> = (0..16)
        .map(|i| {
            let limiter = limiter.clone();
            tokio::spawn(async move {
                let mut slowest = Duration::ZERO;
                let mut answered = 0u64;
                loop {
                    let started = Instant::now();
                    let result = limiter.check(&format!("user:{}", i % 4)).await;
                    slowest = slowest.max(started.elapsed());
                    match result {
                        Ok(_) => answered += 1,
                        Err(RedisLimitError::Redis(_)) => return (answered, slowest),
                        Err(other) => panic!("unexpected error {other}"),
                    }
                }
            })
        })
        .collect();
    // Kill the server once batches are going (bounded: a hang here is a failure too).
    let deadline = Instant::now() + Duration::from_secs(30);
    while limiter.batch_stats().0 < 10 {
        assert!(Instant::now() < deadline, "no batch was ever sent");
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    redis.stop();
    for caller in callers {
        let (answered, slowest) = tokio::time::timeout(Duration::from_secs(30), caller)
            .await
            .expect("a caller hung after Redis was killed")
            .unwrap();
        assert!(answered > 0);
        // Before the kill a call on the loaded 2-core box is fast; after it, each ends
        // within its timeout.
        assert!(slowest < TIMEOUT + SLACK, "slowest call {slowest:?}");
    }
}

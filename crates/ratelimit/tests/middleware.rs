//! The tower middleware, driven with `tower::ServiceExt::oneshot`.
#![cfg(feature = "tower")]

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use http::{HeaderName, Request, Response, StatusCode};
use keel_ratelimit::middleware::{
    HeaderKey, HeaderStyle, HttpLimiter, MAX_KEY_LEN, MissingKey, PeerIp, RateLimitLayer,
};
use keel_ratelimit::{BuildError, Gcra, KeyedLimiter, Quota, SlidingLog};
use tower::{Layer, Service, ServiceExt, service_fn};

fn ok_service()
-> impl Service<Request<String>, Response = Response<String>, Error = Infallible> + Clone {
    service_fn(|_req: Request<String>| async {
        Ok::<_, Infallible>(Response::new("ok".to_string()))
    })
}

fn request_from(ip: [u8; 4]) -> Request<String> {
    let mut req = Request::new(String::new());
    req.extensions_mut().insert(SocketAddr::from((ip, 4000)));
    req
}

fn header<'a>(r: &'a Response<String>, name: &str) -> &'a str {
    r.headers()
        .get(name)
        .map(|v| v.to_str().unwrap())
        .unwrap_or("<missing>")
}

#[tokio::test]
async fn draft_headers_then_429_with_retry_after() {
    let (clock, mock) = quanta::Clock::mock();
    let limiter = Arc::new(KeyedLimiter::<String, Gcra>::with_clock(
        Quota::new(2, Duration::from_secs(10)).unwrap(),
        clock,
    ));
    let layer = RateLimitLayer::new(limiter);
    let svc = layer.layer(ok_service());

    let r = svc
        .clone()
        .oneshot(request_from([10, 0, 0, 1]))
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(r.body(), "ok");
    assert_eq!(header(&r, "ratelimit-limit"), "2");
    assert_eq!(header(&r, "ratelimit-remaining"), "1");
    assert_eq!(header(&r, "ratelimit-reset"), "5");
    assert_eq!(header(&r, "retry-after"), "<missing>");

    let r = svc
        .clone()
        .oneshot(request_from([10, 0, 0, 1]))
        .await
        .unwrap();
    assert_eq!(
        (r.status(), header(&r, "ratelimit-remaining")),
        (StatusCode::OK, "0")
    );

    let r = svc
        .clone()
        .oneshot(request_from([10, 0, 0, 1]))
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(r.body(), "", "the inner service was not called");
    assert_eq!(header(&r, "retry-after"), "5");
    assert_eq!(header(&r, "ratelimit-remaining"), "0");
    assert_eq!(header(&r, "ratelimit-reset"), "10");

    // Another IP is a different key; the first one recovers after Retry-After.
    let r = svc
        .clone()
        .oneshot(request_from([10, 0, 0, 2]))
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    mock.increment(Duration::from_millis(4_999));
    let r = svc
        .clone()
        .oneshot(request_from([10, 0, 0, 1]))
        .await
        .unwrap();
    assert_eq!(
        (r.status(), header(&r, "retry-after")),
        (StatusCode::TOO_MANY_REQUESTS, "1")
    );
    mock.increment(Duration::from_millis(1));
    let r = svc.oneshot(request_from([10, 0, 0, 1])).await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);
}

#[tokio::test]
async fn structured_headers_by_configuration() {
    let (clock, _mock) = quanta::Clock::mock();
    let limiter = Arc::new(KeyedLimiter::<String, SlidingLog>::with_clock(
        Quota::per_minute(3).unwrap(),
        clock,
    ));
    let svc = RateLimitLayer::builder()
        .limiter(limiter)
        .key(HeaderKey::new(HeaderName::from_static("x-api-key")))
        .header_style(HeaderStyle::Structured {
            policy: "api".into(),
        })
        .build()
        .unwrap()
        .layer(ok_service());
    let req = || {
        Request::builder()
            .header("x-api-key", "key-123")
            .body(String::new())
            .unwrap()
    };
    let r = svc.clone().oneshot(req()).await.unwrap();
    assert_eq!(header(&r, "ratelimit-policy"), "\"api\";q=3;w=60");
    assert_eq!(header(&r, "ratelimit"), "\"api\";r=2;t=60");
    assert_eq!(header(&r, "ratelimit-limit"), "<missing>");
    svc.clone().oneshot(req()).await.unwrap();
    svc.clone().oneshot(req()).await.unwrap();
    let r = svc.clone().oneshot(req()).await.unwrap();
    assert_eq!(r.status(), StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(header(&r, "ratelimit"), "\"api\";r=0;t=60");
    assert_eq!(header(&r, "retry-after"), "60");

    // No API key: the client's error (400 unless configured otherwise).
    let r = svc.oneshot(Request::new(String::new())).await.unwrap();
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn missing_key_policies_and_closure_keys() {
    let (clock, _mock) = quanta::Clock::mock();
    let limiter = Arc::new(KeyedLimiter::<String, Gcra>::with_clock(
        Quota::per_minute(1).unwrap(),
        clock,
    ));
    let svc = RateLimitLayer::builder()
        .limiter(limiter.clone())
        .key_fn(|r| r.uri.path().strip_prefix("/tenant/").map(str::to_owned))
        .missing_key(MissingKey::Shared("anonymous".into()))
        .build()
        .unwrap()
        .layer(ok_service());
    let status_of = |path: &'static str| {
        let svc = svc.clone();
        async move {
            let request = Request::get(path).body(String::new()).unwrap();
            svc.oneshot(request).await.unwrap().status()
        }
    };
    assert_eq!(status_of("/tenant/a").await, StatusCode::OK);
    assert_eq!(status_of("/tenant/a").await, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(status_of("/tenant/b").await, StatusCode::OK);
    assert_eq!(status_of("/other").await, StatusCode::OK);
    assert_eq!(status_of("/else").await, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(limiter.len(), 3);

    let rejecting = RateLimitLayer::builder()
        .limiter(limiter)
        .missing_key(MissingKey::Reject(StatusCode::BAD_REQUEST))
        .build()
        .unwrap()
        .layer(ok_service());
    let r = rejecting
        .oneshot(Request::new(String::new()))
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn clones_share_one_limit() {
    // hyper/axum make one service per connection (clones of the layered service). A limit
    // of 10 must stay 10 in total, not 10 per clone as with a per-instance state.
    let (clock, _mock) = quanta::Clock::mock();
    let limiter = Arc::new(KeyedLimiter::<String, Gcra>::with_clock(
        Quota::per_minute(10).unwrap(),
        clock,
    ));
    let layer = RateLimitLayer::new(limiter);
    let mut allowed = 0;
    for connection in 0..8 {
        // A fresh service from the layer and clones of it, like per-connection services.
        let svc = layer.layer(ok_service());
        for _ in 0..5 {
            let r = svc
                .clone()
                .oneshot(request_from([192, 168, 1, 7]))
                .await
                .unwrap();
            if r.status() == StatusCode::OK {
                allowed += 1;
            }
        }
        assert!(allowed <= 10, "connection {connection}");
    }
    assert_eq!(allowed, 10);
}

#[cfg(feature = "axum")]
#[tokio::test]
async fn peer_ip_from_axum_connect_info() {
    let (clock, _mock) = quanta::Clock::mock();
    let limiter = Arc::new(KeyedLimiter::<String, Gcra>::with_clock(
        Quota::per_minute(1).unwrap(),
        clock,
    ));
    let svc = RateLimitLayer::new(limiter.clone()).layer(ok_service());
    let req = || {
        let mut r = Request::new(String::new());
        r.extensions_mut()
            .insert(axum::extract::ConnectInfo(SocketAddr::from((
                [127, 0, 0, 9],
                1234,
            ))));
        r
    };
    assert_eq!(
        svc.clone().oneshot(req()).await.unwrap().status(),
        StatusCode::OK
    );
    assert_eq!(
        svc.oneshot(req()).await.unwrap().status(),
        StatusCode::TOO_MANY_REQUESTS
    );
    assert_eq!(limiter.peek("127.0.0.9").remaining, 0);
}

#[cfg(feature = "redis")]
#[tokio::test]
async fn redis_limiter_behind_the_middleware_and_503_when_it_cannot_decide() {
    use keel_ratelimit::redis::{FailurePolicy, RedisAlgorithm, RedisLimiter};

    let Some(mut redis) = keel_testkit::redis_or_skip("redis_limiter_behind_the_middleware") else {
        return;
    };
    let limiter = RedisLimiter::builder()
        .algorithm(RedisAlgorithm::Gcra)
        .quota(Quota::per_minute(2).unwrap())
        .failure_policy(FailurePolicy::Error)
        .url(redis.url())
        .build()
        .await
        .unwrap();
    let svc = RateLimitLayer::new(Arc::new(limiter)).layer(ok_service());
    for expected in [
        StatusCode::OK,
        StatusCode::OK,
        StatusCode::TOO_MANY_REQUESTS,
    ] {
        let r = svc
            .clone()
            .oneshot(request_from([10, 1, 1, 1]))
            .await
            .unwrap();
        assert_eq!(r.status(), expected);
    }
    redis.stop();
    // The denied client is remembered (GCRA's local denial memory): still 429, no server
    // needed. Anyone else cannot be decided: 503.
    let r = svc
        .clone()
        .oneshot(request_from([10, 1, 1, 1]))
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::TOO_MANY_REQUESTS);
    let r = svc.oneshot(request_from([10, 1, 1, 2])).await.unwrap();
    assert_eq!(r.status(), StatusCode::SERVICE_UNAVAILABLE);
}

fn request_from_addr(ip: std::net::IpAddr) -> Request<String> {
    let mut req = Request::new(String::new());
    req.extensions_mut().insert(SocketAddr::new(ip, 4000));
    req
}

#[tokio::test]
async fn ipv6_is_keyed_by_its_64_prefix_and_mapped_ipv4_by_the_ipv4_address() {
    let (clock, _mock) = quanta::Clock::mock();
    let limiter = Arc::new(KeyedLimiter::<String, Gcra>::with_clock(
        Quota::per_minute(1).unwrap(),
        clock,
    ));
    let svc = RateLimitLayer::new(limiter.clone()).layer(ok_service());
    let status = |ip: &str| {
        let svc = svc.clone();
        let ip: std::net::IpAddr = ip.parse().unwrap();
        async move { svc.oneshot(request_from_addr(ip)).await.unwrap().status() }
    };
    // Five addresses of one /64 (one host's privacy addresses): one bucket.
    assert_eq!(status("2001:db8:1:2::1").await, StatusCode::OK);
    for ip in [
        "2001:db8:1:2::2",
        "2001:db8:1:2:aaaa::1",
        "2001:db8:1:2:ffff:ffff:ffff:ffff",
    ] {
        assert_eq!(status(ip).await, StatusCode::TOO_MANY_REQUESTS, "{ip}");
    }
    assert_eq!(status("2001:db8:1:3::1").await, StatusCode::OK); // another /64
    // An IPv4-mapped IPv6 address is the IPv4 client.
    assert_eq!(status("::ffff:192.0.2.1").await, StatusCode::OK);
    assert_eq!(status("192.0.2.1").await, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(limiter.len(), 3);

    // The prefix is configurable, and checked.
    let per_address = RateLimitLayer::builder()
        .limiter(limiter.clone())
        .key(PeerIp::with_ipv6_prefix(128).unwrap())
        .build()
        .unwrap()
        .layer(ok_service());
    let r = per_address
        .oneshot(request_from_addr("2001:db8:9::1".parse().unwrap()))
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert!(matches!(
        PeerIp::with_ipv6_prefix(129),
        Err(BuildError::InvalidIpv6Prefix(129))
    ));
    assert!(matches!(
        PeerIp::with_ipv6_prefix(0),
        Err(BuildError::InvalidIpv6Prefix(0))
    ));
}

#[tokio::test]
async fn header_key_missing_or_not_ascii_is_a_400_or_the_configured_fallback() {
    let (clock, _mock) = quanta::Clock::mock();
    let limiter = Arc::new(KeyedLimiter::<String, Gcra>::with_clock(
        Quota::per_minute(1).unwrap(),
        clock,
    ));
    let api_key = HeaderName::from_static("x-api-key");
    let svc = RateLimitLayer::builder()
        .limiter(limiter.clone())
        .key(HeaderKey::new(api_key.clone()))
        .build()
        .unwrap()
        .layer(ok_service());
    let missing = Request::new(String::new());
    assert_eq!(
        svc.clone().oneshot(missing).await.unwrap().status(),
        StatusCode::BAD_REQUEST
    );
    let mut non_ascii = Request::new(String::new());
    non_ascii.headers_mut().insert(
        api_key.clone(),
        http::HeaderValue::from_bytes(b"caf\xc3\xa9").unwrap(),
    );
    assert_eq!(
        svc.oneshot(non_ascii).await.unwrap().status(),
        StatusCode::BAD_REQUEST
    );
    assert_eq!(limiter.len(), 0);

    // Configured fallback: one shared bucket for requests without a key.
    let shared = RateLimitLayer::builder()
        .limiter(limiter.clone())
        .key(HeaderKey::new(api_key))
        .missing_key(MissingKey::Shared("anonymous".into()))
        .build()
        .unwrap()
        .layer(ok_service());
    assert_eq!(
        shared
            .clone()
            .oneshot(Request::new(String::new()))
            .await
            .unwrap()
            .status(),
        StatusCode::OK
    );
    assert_eq!(
        shared
            .oneshot(Request::new(String::new()))
            .await
            .unwrap()
            .status(),
        StatusCode::TOO_MANY_REQUESTS
    );
}

/// Records the longest key the middleware hands to the limiter.
struct Recording {
    inner: KeyedLimiter<String, Gcra>,
    longest: std::sync::atomic::AtomicUsize,
}

impl HttpLimiter for Recording {
    type Future = std::future::Ready<Option<keel_ratelimit::Decision>>;

    fn check_key(&self, key: String) -> Self::Future {
        self.longest
            .fetch_max(key.len(), std::sync::atomic::Ordering::Relaxed);
        self.inner.check_key(key)
    }

    fn default_quota(&self) -> Quota {
        self.inner.default_quota()
    }
}

#[tokio::test]
async fn long_header_keys_are_hashed_and_distinct_values_stay_distinct() {
    let (clock, _mock) = quanta::Clock::mock();
    let limiter = Arc::new(Recording {
        inner: KeyedLimiter::with_clock(Quota::per_minute(1).unwrap(), clock),
        longest: Default::default(),
    });
    let svc = RateLimitLayer::builder()
        .limiter(limiter.clone())
        .key(HeaderKey::new(HeaderName::from_static("x-api-key")))
        .build()
        .unwrap()
        .layer(ok_service());
    let with_key = |value: String| {
        let mut r = Request::new(String::new());
        r.headers_mut().insert("x-api-key", value.parse().unwrap());
        r
    };
    let long_a = "a".repeat(64 * 1024);
    let long_b = format!("{}b", "a".repeat(64 * 1024 - 1));
    for (value, expected) in [
        (long_a.clone(), StatusCode::OK),
        (long_a, StatusCode::TOO_MANY_REQUESTS),
        (long_b, StatusCode::OK),
        ("short-key".to_string(), StatusCode::OK),
    ] {
        let r = svc.clone().oneshot(with_key(value)).await.unwrap();
        assert_eq!(r.status(), expected);
    }
    let longest = limiter.longest.load(std::sync::atomic::Ordering::Relaxed);
    assert!(
        longest <= MAX_KEY_LEN,
        "a {longest}-byte key reached the limiter"
    );
    assert_eq!(limiter.inner.len(), 3);
    // And the keyed limiter caps its key count by default.
    assert_eq!(
        limiter.inner.cleanup_policy().max_keys,
        Some(keel_ratelimit::DEFAULT_MAX_KEYS)
    );
}

#[tokio::test]
async fn structured_policy_names_are_validated_at_build_and_quotes_escaped() {
    let (clock, _mock) = quanta::Clock::mock();
    let limiter = Arc::new(KeyedLimiter::<String, Gcra>::with_clock(
        Quota::per_minute(3).unwrap(),
        clock,
    ));
    for bad in ["line\nbreak", "", "caf\u{e9}", "tab\there"] {
        let built = RateLimitLayer::builder()
            .limiter(limiter.clone())
            .header_style(HeaderStyle::Structured { policy: bad.into() })
            .build();
        assert!(
            matches!(built, Err(BuildError::InvalidPolicyName(ref name)) if name == bad),
            "{bad:?}"
        );
    }
    let svc = RateLimitLayer::builder()
        .limiter(limiter)
        .header_style(HeaderStyle::Structured {
            policy: r#"say "hi" \ bye"#.into(),
        })
        .build()
        .unwrap()
        .layer(ok_service());
    let r = svc.oneshot(request_from([10, 0, 0, 1])).await.unwrap();
    assert_eq!(
        header(&r, "ratelimit-policy"),
        r#""say \"hi\" \\ bye";q=3;w=60"#
    );
    assert_eq!(header(&r, "ratelimit"), r#""say \"hi\" \\ bye";r=2;t=20"#);
}

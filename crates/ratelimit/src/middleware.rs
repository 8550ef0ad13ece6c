//! tower middleware (feature `tower`): [`RateLimitLayer`] → [`RateLimit`] service.
//!
//! * The key comes from a [`KeyExtractor`]: the peer IP ([`PeerIp`]: axum's
//!   `ConnectInfo<SocketAddr>` with feature `axum`, or a `SocketAddr` request extension), a
//!   header ([`HeaderKey`], e.g. an API key) or a closure ([`KeyFn`]).
//! * **IPv6 by prefix.** One IPv6 host holds a whole /64 (privacy addresses rotate within
//!   it), so [`PeerIp`] keys IPv6 clients by their /64 network (configurable); an
//!   IPv4-mapped address (`::ffff:a.b.c.d`, dual-stack sockets) is keyed as the IPv4 client.
//! * **Missing keys.** A request without a key gets [`MissingKey`]'s answer; by default the
//!   extractor's [`KeyExtractor::missing_status`]: `400 Bad Request` for a missing or
//!   non-ASCII header (the client's error), `500` when the server records no peer address
//!   (its own misconfiguration).
//! * **Bounded keys.** A key longer than [`MAX_KEY_LEN`] bytes is replaced by a 128-bit
//!   keyed hash (`#` + 32 hex digits, seeded per layer), so a client sending 64 KiB header
//!   values stores 33 bytes per key; the [`KeyedLimiter`]'s default
//!   [`CleanupPolicy`](crate::CleanupPolicy) caps the key count at
//!   [`DEFAULT_MAX_KEYS`](crate::DEFAULT_MAX_KEYS).
//! * Denied → `429 Too Many Requests` with `Retry-After` (whole seconds, rounded up).
//! * Every response carries the rate-limit fields, as [`HeaderStyle`] selects: the early
//!   IETF draft's `RateLimit-Limit` / `RateLimit-Remaining` / `RateLimit-Reset`, or the
//!   newer structured `RateLimit-Policy: "name";q=…;w=…` and `RateLimit: "name";r=…;t=…`.
//! * **One state for all clones.** The layer holds the limiter in an [`Arc`], and every
//!   service it makes (one per connection in hyper/axum) and every clone of those shares
//!   it. `tower::limit::RateLimit` keeps its state per service instance, so N connections
//!   get N × the limit — the pitfall the `clones_share_one_limit` test rules out here.
//! * A limiter that cannot decide (Redis down under [`FailurePolicy::Error`](crate::redis::FailurePolicy::Error))
//!   yields `503 Service Unavailable`.

use std::fmt;
use std::future::Future;
use std::hash::{BuildHasher, Hash};
use std::net::{IpAddr, Ipv6Addr, SocketAddr};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, ready};
use std::time::Duration;

use foldhash::fast::RandomState;
use http::header::{HeaderName, HeaderValue, RETRY_AFTER};
use http::{Extensions, HeaderMap, Method, Request, Response, StatusCode, Uri};
use pin_project_lite::pin_project;
use tower_layer::Layer;
use tower_service::Service;

use crate::error::BuildError;
use crate::{Algorithm, Decision, KeyedLimiter, Quota};

/// A limiter the middleware can ask: keyed in process, or on Redis.
pub trait HttpLimiter: Send + Sync + 'static {
    /// The pending decision; `None` means the limiter could not decide (→ 503).
    type Future: Future<Output = Option<Decision>> + Send + 'static;

    /// Decides one request for `key`.
    fn check_key(&self, key: String) -> Self::Future;

    /// The default quota, for the `w=` (window) parameter of the structured headers.
    fn default_quota(&self) -> Quota;
}

impl<K, A> HttpLimiter for KeyedLimiter<K, A>
where
    K: Hash + Eq + Send + Sync + 'static + std::borrow::Borrow<str> + From<String>,
    str: ToOwned<Owned = K>,
    A: Algorithm,
{
    type Future = std::future::Ready<Option<Decision>>;

    fn check_key(&self, key: String) -> Self::Future {
        std::future::ready(Some(self.check(key.as_str())))
    }

    fn default_quota(&self) -> Quota {
        KeyedLimiter::default_quota(self)
    }
}

#[cfg(feature = "redis")]
impl HttpLimiter for crate::redis::RedisLimiter {
    type Future = Pin<Box<dyn Future<Output = Option<Decision>> + Send>>;

    fn check_key(&self, key: String) -> Self::Future {
        let limiter = self.clone();
        Box::pin(async move { limiter.check(&key).await.ok() })
    }

    fn default_quota(&self) -> Quota {
        self.quota()
    }
}

/// What the key extractor sees of a request.
#[derive(Debug)]
pub struct RequestInfo<'a> {
    /// The method.
    pub method: &'a Method,
    /// The URI.
    pub uri: &'a Uri,
    /// The headers.
    pub headers: &'a HeaderMap,
    /// The extensions (where servers put the peer address).
    pub extensions: &'a Extensions,
}

/// Keys longer than this many bytes reach the limiter as a 128-bit hash of themselves
/// (`#` + 32 hex digits): the state per key stays small however long the header.
pub const MAX_KEY_LEN: usize = 64;

/// Picks the rate-limit key of a request; `None` → [`MissingKey`] applies.
pub trait KeyExtractor: Clone + Send + Sync + 'static {
    /// The key, if the request has one.
    fn extract(&self, request: &RequestInfo<'_>) -> Option<String>;

    /// The status for a request without a key when the layer has no [`MissingKey`] policy:
    /// `500` by default (the server should always provide the key).
    fn missing_status(&self) -> StatusCode {
        StatusCode::INTERNAL_SERVER_ERROR
    }
}

/// The peer's IP address: axum's `ConnectInfo<SocketAddr>` (feature `axum`), else a
/// `SocketAddr` extension. Behind a proxy use [`HeaderKey`] on the proxy's header instead.
///
/// IPv4 clients are keyed by their address; IPv6 clients by their network of
/// `ipv6_prefix` bits (default 64: one host's privacy addresses share one bucket);
/// IPv4-mapped IPv6 addresses (`::ffff:a.b.c.d`) by the IPv4 address.
///
/// ```
/// use keel_ratelimit::middleware::PeerIp;
///
/// let ip = PeerIp::default();
/// assert_eq!(ip.key_for("2001:db8:1:2:aaaa::1".parse().unwrap()), "2001:db8:1:2::/64");
/// assert_eq!(ip.key_for("::ffff:192.0.2.1".parse().unwrap()), "192.0.2.1");
/// assert_eq!(PeerIp::with_ipv6_prefix(48)?.key_for("2001:db8:1:2::1".parse().unwrap()), "2001:db8:1::/48");
/// # Ok::<(), keel_ratelimit::BuildError>(())
/// ```
#[derive(Debug, Clone, Copy)]
pub struct PeerIp {
    ipv6_prefix: u8,
}

impl Default for PeerIp {
    /// IPv6 keyed by /64.
    fn default() -> Self {
        Self { ipv6_prefix: 64 }
    }
}

impl PeerIp {
    /// IPv6 clients keyed by their network of `bits` (1..=128; 128: every address apart).
    ///
    /// # Errors
    /// [`BuildError::InvalidIpv6Prefix`] for 0 or more than 128 bits.
    pub fn with_ipv6_prefix(bits: u8) -> Result<Self, BuildError> {
        if bits == 0 || bits > 128 {
            return Err(BuildError::InvalidIpv6Prefix(bits));
        }
        Ok(Self { ipv6_prefix: bits })
    }

    /// The rate-limit key for a client address.
    pub fn key_for(&self, ip: IpAddr) -> String {
        match ip {
            IpAddr::V4(v4) => v4.to_string(),
            IpAddr::V6(v6) => {
                if let Some(v4) = v6.to_ipv4_mapped() {
                    return v4.to_string();
                }
                if self.ipv6_prefix >= 128 {
                    return v6.to_string();
                }
                let network = u128::from(v6) & !(u128::MAX >> self.ipv6_prefix);
                format!("{}/{}", Ipv6Addr::from(network), self.ipv6_prefix)
            }
        }
    }
}

impl KeyExtractor for PeerIp {
    fn extract(&self, request: &RequestInfo<'_>) -> Option<String> {
        #[cfg(feature = "axum")]
        if let Some(axum::extract::ConnectInfo(addr)) = request
            .extensions
            .get::<axum::extract::ConnectInfo<SocketAddr>>()
        {
            return Some(self.key_for(addr.ip()));
        }
        request
            .extensions
            .get::<SocketAddr>()
            .map(|addr| self.key_for(addr.ip()))
    }
}

/// The value of a header (e.g. `x-api-key`). A request without the header, or whose value
/// is empty or not visible ASCII, has no key: `400 Bad Request` unless the layer's
/// [`MissingKey`] says otherwise.
#[derive(Debug, Clone)]
pub struct HeaderKey {
    name: HeaderName,
}

impl HeaderKey {
    /// Keys requests by the value of header `name`.
    pub fn new(name: HeaderName) -> Self {
        Self { name }
    }
}

impl KeyExtractor for HeaderKey {
    fn extract(&self, request: &RequestInfo<'_>) -> Option<String> {
        request
            .headers
            .get(&self.name)
            .and_then(|v| v.to_str().ok())
            .filter(|v| !v.is_empty())
            .map(str::to_owned)
    }

    fn missing_status(&self) -> StatusCode {
        StatusCode::BAD_REQUEST
    }
}

/// A closure over [`RequestInfo`].
#[derive(Clone)]
pub struct KeyFn<F>(pub F);

impl<F> fmt::Debug for KeyFn<F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("KeyFn")
    }
}

impl<F> KeyExtractor for KeyFn<F>
where
    F: Fn(&RequestInfo<'_>) -> Option<String> + Clone + Send + Sync + 'static,
{
    fn extract(&self, request: &RequestInfo<'_>) -> Option<String> {
        (self.0)(request)
    }
}

/// Which rate-limit header fields responses carry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HeaderStyle {
    /// `RateLimit-Limit`, `RateLimit-Remaining`, `RateLimit-Reset` (early IETF drafts; what
    /// most clients parse today).
    Draft,
    /// `RateLimit-Policy: "<name>";q=<limit>;w=<window s>` and
    /// `RateLimit: "<name>";r=<remaining>;t=<reset s>` (draft-ietf-httpapi-ratelimit-headers-08+).
    Structured {
        /// The policy name quoted in both fields.
        policy: String,
    },
    /// No rate-limit fields (429 still carries `Retry-After`).
    None,
}

/// What to do with a request whose key cannot be extracted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MissingKey {
    /// Respond with this status without calling the service.
    Reject(StatusCode),
    /// Count it under this shared key.
    Shared(String),
}

#[derive(Debug)]
struct Config {
    headers: HeaderStyle,
    /// The structured style's policy name as a quoted, escaped sf-string (validated).
    quoted_policy: String,
    missing: MissingKey,
    window_secs: u64,
    /// Two independent seeds: long keys become a 128-bit hash.
    long_keys: (RandomState, RandomState),
}

impl Config {
    /// `key`, or its hash when longer than [`MAX_KEY_LEN`].
    fn bounded(&self, key: String) -> String {
        if key.len() <= MAX_KEY_LEN {
            return key;
        }
        let (a, b) = &self.long_keys;
        format!("#{:016x}{:016x}", a.hash_one(&key), b.hash_one(&key))
    }
}

/// The policy name as an RFC 8941 sf-string: printable ASCII, `"` and `\` escaped.
fn quote_policy(name: &str) -> Result<String, BuildError> {
    if name.is_empty() || !name.bytes().all(|b| (0x20..=0x7e).contains(&b)) {
        return Err(BuildError::InvalidPolicyName(name.to_owned()));
    }
    let mut quoted = String::with_capacity(name.len() + 2);
    quoted.push('"');
    for c in name.chars() {
        if c == '"' || c == '\\' {
            quoted.push('\\');
        }
        quoted.push(c);
    }
    quoted.push('"');
    Ok(quoted)
}

/// Adds rate limiting to a service. Build it with [`RateLimitLayer::builder`], or
/// [`RateLimitLayer::new`] for the defaults (peer IP, draft headers).
///
/// ```
/// use std::sync::Arc;
/// use keel_ratelimit::{Gcra, KeyedLimiter, Quota};
/// use keel_ratelimit::middleware::{HeaderKey, HeaderStyle, MissingKey, RateLimitLayer};
///
/// let limiter = Arc::new(KeyedLimiter::<String, Gcra>::new(Quota::per_second(10)?));
/// let layer = RateLimitLayer::builder()
///     .limiter(limiter)
///     .key(HeaderKey::new(http::HeaderName::from_static("x-api-key")))
///     .missing_key(MissingKey::Reject(http::StatusCode::UNAUTHORIZED))
///     .header_style(HeaderStyle::Structured { policy: "api".into() })
///     .build()?;
/// # let _ = layer;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug)]
pub struct RateLimitLayer<L, E = PeerIp> {
    limiter: Arc<L>,
    extractor: E,
    config: Arc<Config>,
}

impl<L, E: Clone> Clone for RateLimitLayer<L, E> {
    fn clone(&self) -> Self {
        Self {
            limiter: self.limiter.clone(),
            extractor: self.extractor.clone(),
            config: self.config.clone(),
        }
    }
}

impl<L: HttpLimiter> RateLimitLayer<L, PeerIp> {
    /// A builder: `.limiter(..)` (required), `.key(..)` / `.key_fn(..)` (default
    /// [`PeerIp`]), `.header_style(..)` (default [`HeaderStyle::Draft`]), `.missing_key(..)`
    /// (default: 500, see [`new`](Self::new)), then `.build()`.
    pub fn builder() -> RateLimitLayerBuilder<L, PeerIp> {
        RateLimitLayerBuilder {
            limiter: None,
            extractor: PeerIp::default(),
            headers: HeaderStyle::Draft,
            missing: None,
        }
    }

    /// Shorthand for `builder().limiter(limiter).build()`: limits by peer IP (IPv6 by
    /// /64), draft headers, missing key → 500 (a server that does not record peer
    /// addresses is misconfigured). Infallible: the defaults are valid.
    pub fn new(limiter: Arc<L>) -> Self {
        let builder = Self::builder();
        let config = builder.config(String::new(), &limiter);
        RateLimitLayer {
            limiter,
            extractor: builder.extractor,
            config: Arc::new(config),
        }
    }
}

/// Builder for [`RateLimitLayer`]. It has no `.clock(..)`: the layer reads no time, every
/// decision is the limiter's, on the limiter's clock.
#[must_use]
#[derive(Debug)]
pub struct RateLimitLayerBuilder<L, E> {
    limiter: Option<Arc<L>>,
    extractor: E,
    headers: HeaderStyle,
    missing: Option<MissingKey>,
}

impl<L: HttpLimiter, E: KeyExtractor> RateLimitLayerBuilder<L, E> {
    /// The limiter every service made by the layer shares (required).
    pub fn limiter(mut self, limiter: Arc<L>) -> Self {
        self.limiter = Some(limiter);
        self
    }

    /// The key extractor (default [`PeerIp`]).
    pub fn key<E2: KeyExtractor>(self, extractor: E2) -> RateLimitLayerBuilder<L, E2> {
        RateLimitLayerBuilder {
            limiter: self.limiter,
            extractor,
            headers: self.headers,
            missing: self.missing,
        }
    }

    /// A closure as the key extractor.
    pub fn key_fn<F>(self, f: F) -> RateLimitLayerBuilder<L, KeyFn<F>>
    where
        F: Fn(&RequestInfo<'_>) -> Option<String> + Clone + Send + Sync + 'static,
    {
        self.key(KeyFn(f))
    }

    /// The rate-limit header fields (default [`HeaderStyle::Draft`]).
    pub fn header_style(mut self, headers: HeaderStyle) -> Self {
        self.headers = headers;
        self
    }

    /// What to do when the key is missing (default: reject with the extractor's
    /// [`missing_status`](KeyExtractor::missing_status) — 400 for a header, 500 for the
    /// peer IP).
    pub fn missing_key(mut self, missing: MissingKey) -> Self {
        self.missing = Some(missing);
        self
    }

    /// Builds the layer.
    ///
    /// # Errors
    /// [`BuildError::MissingLimiter`] when no limiter was given;
    /// [`BuildError::InvalidPolicyName`] when the structured header style's policy name is
    /// empty or not printable ASCII (it would make the header invalid).
    pub fn build(self) -> Result<RateLimitLayer<L, E>, BuildError> {
        let limiter = self.limiter.clone().ok_or(BuildError::MissingLimiter)?;
        let quoted_policy = match &self.headers {
            HeaderStyle::Structured { policy } => quote_policy(policy)?,
            HeaderStyle::Draft | HeaderStyle::None => String::new(),
        };
        let config = self.config(quoted_policy, &limiter);
        Ok(RateLimitLayer {
            limiter,
            extractor: self.extractor,
            config: Arc::new(config),
        })
    }

    fn config(&self, quoted_policy: String, limiter: &L) -> Config {
        Config {
            headers: self.headers.clone(),
            quoted_policy,
            missing: self
                .missing
                .clone()
                .unwrap_or_else(|| MissingKey::Reject(self.extractor.missing_status())),
            window_secs: ceil_secs(limiter.default_quota().window()),
            long_keys: (RandomState::default(), RandomState::default()),
        }
    }
}

impl<S, L, E: Clone> Layer<S> for RateLimitLayer<L, E> {
    type Service = RateLimit<S, L, E>;

    fn layer(&self, inner: S) -> Self::Service {
        RateLimit {
            inner,
            limiter: self.limiter.clone(),
            extractor: self.extractor.clone(),
            config: self.config.clone(),
        }
    }
}

/// The rate-limiting service made by [`RateLimitLayer`].
#[derive(Debug)]
pub struct RateLimit<S, L, E> {
    inner: S,
    limiter: Arc<L>,
    extractor: E,
    config: Arc<Config>,
}

impl<S: Clone, L, E: Clone> Clone for RateLimit<S, L, E> {
    fn clone(&self) -> Self {
        Self {
            inner: self.inner.clone(),
            limiter: self.limiter.clone(),
            extractor: self.extractor.clone(),
            config: self.config.clone(),
        }
    }
}

impl<S, L, E, ReqBody, ResBody> Service<Request<ReqBody>> for RateLimit<S, L, E>
where
    S: Service<Request<ReqBody>, Response = Response<ResBody>> + Clone,
    L: HttpLimiter,
    E: KeyExtractor,
    ResBody: Default,
{
    type Response = Response<ResBody>;
    type Error = S::Error;
    type Future = ResponseFuture<L::Future, S, S::Future, ReqBody, ResBody>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request<ReqBody>) -> Self::Future {
        let info = RequestInfo {
            method: request.method(),
            uri: request.uri(),
            headers: request.headers(),
            extensions: request.extensions(),
        };
        let key = match (self.extractor.extract(&info), &self.config.missing) {
            (Some(key), _) => self.config.bounded(key),
            (None, MissingKey::Shared(key)) => key.clone(),
            (None, MissingKey::Reject(status)) => {
                return ResponseFuture::immediate(status_response(*status), self.config.clone());
            }
        };
        // The ready service goes into the future; a fresh clone stays for the next call.
        let clone = self.inner.clone();
        let inner = std::mem::replace(&mut self.inner, clone);
        ResponseFuture {
            state: State::Checking {
                future: self.limiter.check_key(key),
            },
            pending: Some((inner, request)),
            immediate: None,
            decision: None,
            config: self.config.clone(),
        }
    }
}

pin_project! {
    /// The response future of [`RateLimit`].
    pub struct ResponseFuture<LF, S, SF, ReqBody, ResBody> {
        #[pin]
        state: State<LF, SF>,
        pending: Option<(S, Request<ReqBody>)>,
        immediate: Option<Response<ResBody>>,
        decision: Option<Decision>,
        config: Arc<Config>,
    }
}

impl<LF, S, SF, ReqBody, ResBody> fmt::Debug for ResponseFuture<LF, S, SF, ReqBody, ResBody> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ResponseFuture")
            .field("decision", &self.decision)
            .finish_non_exhaustive()
    }
}

pin_project! {
    #[project = StateProjection]
    enum State<LF, SF> {
        Checking { #[pin] future: LF },
        Calling { #[pin] future: SF },
        Done,
    }
}

impl<LF, S, SF, ReqBody, ResBody> ResponseFuture<LF, S, SF, ReqBody, ResBody> {
    fn immediate(response: Response<ResBody>, config: Arc<Config>) -> Self {
        Self {
            state: State::Done,
            pending: None,
            immediate: Some(response),
            decision: None,
            config,
        }
    }
}

impl<LF, S, ReqBody, ResBody> Future for ResponseFuture<LF, S, S::Future, ReqBody, ResBody>
where
    LF: Future<Output = Option<Decision>>,
    S: Service<Request<ReqBody>, Response = Response<ResBody>>,
    ResBody: Default,
{
    type Output = Result<Response<ResBody>, S::Error>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let mut this = self.project();
        loop {
            match this.state.as_mut().project() {
                StateProjection::Checking { future } => {
                    let Some(decision) = ready!(future.poll(cx)) else {
                        this.state.set(State::Done);
                        return Poll::Ready(Ok(status_response(StatusCode::SERVICE_UNAVAILABLE)));
                    };
                    if !decision.allowed {
                        this.state.set(State::Done);
                        let mut response = status_response(StatusCode::TOO_MANY_REQUESTS);
                        add_headers(response.headers_mut(), &decision, this.config);
                        return Poll::Ready(Ok(response));
                    }
                    let Some((mut inner, request)) = this.pending.take() else {
                        this.state.set(State::Done);
                        return Poll::Ready(Ok(status_response(StatusCode::INTERNAL_SERVER_ERROR)));
                    };
                    *this.decision = Some(decision);
                    this.state.set(State::Calling {
                        future: inner.call(request),
                    });
                }
                StateProjection::Calling { future } => {
                    let mut response = ready!(future.poll(cx))?;
                    if let Some(decision) = this.decision.as_ref() {
                        add_headers(response.headers_mut(), decision, this.config);
                    }
                    this.state.set(State::Done);
                    return Poll::Ready(Ok(response));
                }
                StateProjection::Done => {
                    let response = this
                        .immediate
                        .take()
                        .unwrap_or_else(|| status_response(StatusCode::INTERNAL_SERVER_ERROR));
                    return Poll::Ready(Ok(response));
                }
            }
        }
    }
}

fn status_response<B: Default>(status: StatusCode) -> Response<B> {
    let mut response = Response::new(B::default());
    *response.status_mut() = status;
    response
}

/// Whole seconds, rounded up (a client told "0" would retry at once and be denied again).
fn ceil_secs(d: Duration) -> u64 {
    d.as_secs() + u64::from(d.subsec_nanos() > 0)
}

fn add_headers(headers: &mut HeaderMap, decision: &Decision, config: &Config) {
    let number = |n: u64| HeaderValue::from(n);
    if let Some(retry) = decision.retry_after {
        headers.insert(RETRY_AFTER, number(ceil_secs(retry).max(1)));
    }
    let reset = ceil_secs(decision.reset_after);
    match &config.headers {
        HeaderStyle::Draft => {
            headers.insert(LIMIT, number(u64::from(decision.limit)));
            headers.insert(REMAINING, number(u64::from(decision.remaining)));
            headers.insert(RESET, number(reset));
        }
        HeaderStyle::Structured { .. } => {
            let policy = &config.quoted_policy;
            let policy_value = format!("{policy};q={};w={}", decision.limit, config.window_secs);
            let state_value = format!("{policy};r={};t={reset}", decision.remaining);
            if let (Ok(p), Ok(s)) = (
                HeaderValue::from_str(&policy_value),
                HeaderValue::from_str(&state_value),
            ) {
                headers.insert(POLICY, p);
                headers.insert(RATELIMIT, s);
            }
        }
        HeaderStyle::None => {}
    }
}

/// `RateLimit-Limit`.
pub const LIMIT: HeaderName = HeaderName::from_static("ratelimit-limit");
/// `RateLimit-Remaining`.
pub const REMAINING: HeaderName = HeaderName::from_static("ratelimit-remaining");
/// `RateLimit-Reset`.
pub const RESET: HeaderName = HeaderName::from_static("ratelimit-reset");
/// `RateLimit-Policy`.
pub const POLICY: HeaderName = HeaderName::from_static("ratelimit-policy");
/// `RateLimit`.
pub const RATELIMIT: HeaderName = HeaderName::from_static("ratelimit");

//! Who may change state: the CSRF token and the Host / Origin checks.
//!
//! # Why these three checks
//!
//! - **CSRF token.** A page on another site can make the browser POST a form to
//!   `http://127.0.0.1:8080/queues/delete-dead` — the browser happily sends it. It cannot
//!   *read* our pages (same-origin policy), so it cannot learn the token that every form
//!   of ours carries. The token is a per-process secret of 32 random bytes from the
//!   operating system, compared in constant time; a restart invalidates old forms (they
//!   get a 403 and a reload fixes it). The JSON API takes it in the `X-Keel-Csrf` header,
//!   which a cross-site form cannot set at all.
//! - **Origin.** Browsers send `Origin` on POST; when it is present it must name this
//!   very host (`Origin: http://127.0.0.1:8080` with `Host: 127.0.0.1:8080`).
//!   `Sec-Fetch-Site: cross-site` is refused as well. This is defence in depth behind
//!   the token.
//! - **Host (DNS rebinding).** An attacker's domain can resolve to 127.0.0.1 after the
//!   page loaded; the browser then treats our server as *their* origin and could read the
//!   token. Such requests carry `Host: attacker.example`, so a loopback-bound dashboard
//!   answers only requests whose Host is `localhost`, a loopback IP, or a name given to
//!   [`DashboardBuilder::allow_host`](crate::DashboardBuilder::allow_host) — every
//!   request, GET included.

use std::net::IpAddr;

use axum::http::HeaderMap;
use axum::http::header::{HOST, ORIGIN};

use crate::error::RequestError;

/// The name of the form field that carries the token.
pub const CSRF_FIELD: &str = "csrf";
/// The header that carries the token on JSON API calls.
pub const CSRF_HEADER: &str = "x-keel-csrf";

/// Which Host headers are answered.
#[derive(Clone, Debug)]
pub(crate) enum HostPolicy {
    /// Loopback names and addresses, plus these names (lowercase, without port).
    Loopback(Vec<String>),
    /// Any (the operator chose to expose the dashboard).
    Any,
}

impl HostPolicy {
    pub(crate) fn check(&self, headers: &HeaderMap) -> Result<(), RequestError> {
        let extra = match self {
            HostPolicy::Any => return Ok(()),
            HostPolicy::Loopback(extra) => extra,
        };
        let host = headers
            .get(HOST)
            .and_then(|h| h.to_str().ok())
            .ok_or(RequestError::Forbidden("missing Host header"))?;
        let name = host_without_port(host);
        if is_loopback_name(name) || extra.iter().any(|e| e.eq_ignore_ascii_case(name)) {
            Ok(())
        } else {
            Err(RequestError::Forbidden(
                "Host header is not a loopback name: this dashboard answers only local requests (DNS rebinding protection)",
            ))
        }
    }
}

/// `host:port`, `[v6]:port`, `host` → the host part.
fn host_without_port(host: &str) -> &str {
    if let Some(rest) = host.strip_prefix('[') {
        return rest.split(']').next().unwrap_or(rest);
    }
    match host.rsplit_once(':') {
        Some((h, port)) if port.bytes().all(|b| b.is_ascii_digit()) => h,
        _ => host,
    }
}

fn is_loopback_name(name: &str) -> bool {
    name.eq_ignore_ascii_case("localhost")
        || name.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

/// The per-process CSRF secret.
#[derive(Clone)]
pub(crate) struct CsrfToken(String);

impl std::fmt::Debug for CsrfToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("CsrfToken(..)")
    }
}

impl CsrfToken {
    pub(crate) fn from_bytes(bytes: [u8; 32]) -> Self {
        Self(bytes.iter().map(|b| format!("{b:02x}")).collect())
    }

    pub(crate) fn as_str(&self) -> &str {
        &self.0
    }

    /// Constant-time comparison: the time taken does not tell how many leading
    /// characters of a guess were right.
    fn matches(&self, candidate: &str) -> bool {
        let (a, b) = (self.0.as_bytes(), candidate.as_bytes());
        if a.len() != b.len() {
            return false;
        }
        a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
    }
}

/// Checks a state-changing request: same origin, and the token from the form field or
/// the header.
pub(crate) fn check_post(
    token: &CsrfToken,
    headers: &HeaderMap,
    form_token: Option<&str>,
) -> Result<(), RequestError> {
    if headers
        .get("sec-fetch-site")
        .is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"cross-site"))
    {
        return Err(RequestError::Forbidden("cross-site request refused"));
    }
    if let Some(origin) = headers.get(ORIGIN) {
        let origin = origin.to_str().unwrap_or("null");
        let authority = origin
            .strip_prefix("http://")
            .or_else(|| origin.strip_prefix("https://"));
        let host = headers.get(HOST).and_then(|h| h.to_str().ok());
        match (authority, host) {
            (Some(a), Some(h)) if a.eq_ignore_ascii_case(h) => {}
            _ => return Err(RequestError::Forbidden("Origin does not match this host")),
        }
    }
    let header_token = headers.get(CSRF_HEADER).and_then(|v| v.to_str().ok());
    match form_token.or(header_token) {
        Some(t) if token.matches(t) => Ok(()),
        Some(_) => Err(RequestError::Forbidden(
            "wrong CSRF token (the dashboard was restarted? reload the page)",
        )),
        None => Err(RequestError::Forbidden("missing CSRF token")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.insert(*k, HeaderValue::from_static(v));
        }
        h
    }

    #[test]
    fn loopback_hosts_pass_and_others_are_refused() {
        let policy = HostPolicy::Loopback(vec!["dash.internal".into()]);
        for ok in [
            "127.0.0.1:8080",
            "localhost",
            "LOCALHOST:1",
            "[::1]:8080",
            "127.1.2.3",
            "dash.internal:80",
        ] {
            let mut h = HeaderMap::new();
            h.insert(HOST, HeaderValue::from_str(ok).unwrap());
            assert!(policy.check(&h).is_ok(), "{ok}");
        }
        for bad in [
            "evil.example:8080",
            "10.0.0.1",
            "localhost.evil.example",
            "[::2]",
        ] {
            let mut h = HeaderMap::new();
            h.insert(HOST, HeaderValue::from_str(bad).unwrap());
            assert!(policy.check(&h).is_err(), "{bad}");
        }
        assert!(policy.check(&HeaderMap::new()).is_err());
        assert!(HostPolicy::Any.check(&headers(&[("host", "x")])).is_ok());
    }

    #[test]
    fn post_needs_the_token_and_a_matching_origin() {
        let t = CsrfToken::from_bytes([7; 32]);
        let good = t.as_str().to_owned();
        let h = headers(&[("host", "127.0.0.1:8080")]);
        assert!(check_post(&t, &h, None).is_err());
        assert!(check_post(&t, &h, Some("nope")).is_err());
        assert!(check_post(&t, &h, Some(&good)).is_ok());
        let same = headers(&[
            ("host", "127.0.0.1:8080"),
            ("origin", "http://127.0.0.1:8080"),
        ]);
        assert!(check_post(&t, &same, Some(&good)).is_ok());
        let other = headers(&[
            ("host", "127.0.0.1:8080"),
            ("origin", "http://evil.example"),
        ]);
        assert!(check_post(&t, &other, Some(&good)).is_err());
        let null = headers(&[("host", "127.0.0.1:8080"), ("origin", "null")]);
        assert!(check_post(&t, &null, Some(&good)).is_err());
        let cross = headers(&[("host", "127.0.0.1:8080"), ("sec-fetch-site", "cross-site")]);
        assert!(check_post(&t, &cross, Some(&good)).is_err());
    }
}

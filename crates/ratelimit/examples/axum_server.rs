//! An axum server limited per client IP with GCRA, plus a stricter per-API-key limit on
//! `/expensive`.
//!
//! ```text
//! cargo run -p keel-ratelimit --features axum --example axum_server
//! for i in $(seq 7); do curl -si localhost:3000/ | grep -iE '^(HTTP|ratelimit|retry)'; done
//! ```
//! Set `PORT` to change the port and `DEMO_REQUESTS=n` to make the example send `n`
//! requests to itself, print the statuses and exit (used to check that it runs).

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::routing::get;
use keel_ratelimit::middleware::{HeaderKey, HeaderStyle, MissingKey, RateLimitLayer};
use keel_ratelimit::{Gcra, KeyedLimiter, Quota, SlidingLog};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    // 5 requests per 10 s per IP, bursts of 5.
    let per_ip = Arc::new(KeyedLimiter::<String, Gcra>::new(Quota::new(
        5,
        Duration::from_secs(10),
    )?));
    // 2 per minute per API key, exact sliding window, structured headers.
    let per_key = Arc::new(KeyedLimiter::<String, SlidingLog>::new(Quota::per_minute(
        2,
    )?));

    let app = Router::new()
        .route(
            "/expensive",
            get(|| async { "expensive\n" }).layer(
                RateLimitLayer::builder()
                    .limiter(per_key)
                    .key(HeaderKey::new(http::HeaderName::from_static("x-api-key")))
                    .missing_key(MissingKey::Reject(http::StatusCode::UNAUTHORIZED))
                    .header_style(HeaderStyle::Structured {
                        policy: "expensive".into(),
                    })
                    .build()?,
            ),
        )
        .route("/", get(|| async { "hello\n" }))
        .layer(RateLimitLayer::new(per_ip.clone()));

    let port: u16 = std::env::var("PORT")
        .ok()
        .and_then(|p| p.parse().ok())
        .unwrap_or(3000);
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port)).await?;
    let addr = listener.local_addr()?;
    println!("listening on http://{addr}");

    let server = axum::serve(
        listener,
        app.into_make_service_with_connect_info::<SocketAddr>(),
    );
    match std::env::var("DEMO_REQUESTS")
        .ok()
        .and_then(|n| n.parse::<usize>().ok())
    {
        None => server.await?,
        Some(n) => {
            let handle = tokio::spawn(async move { server.await });
            for i in 0..n {
                let status = demo_request(addr).await?;
                println!("request {i}: {status}");
            }
            println!("keys tracked: {}", per_ip.len());
            handle.abort();
        }
    }
    Ok(())
}

/// A bare HTTP/1.1 GET over TCP, so the example needs no HTTP client dependency.
async fn demo_request(addr: SocketAddr) -> anyhow::Result<String> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut stream = tokio::net::TcpStream::connect(addr).await?;
    stream
        .write_all(b"GET / HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
        .await?;
    let mut response = String::new();
    stream.read_to_string(&mut response).await?;
    let status = response.lines().next().unwrap_or_default().to_string();
    let limits: Vec<&str> = response
        .lines()
        .filter(|l| {
            l.to_ascii_lowercase().starts_with("ratelimit")
                || l.to_ascii_lowercase().starts_with("retry-after")
        })
        .collect();
    Ok(format!("{status} {limits:?}"))
}

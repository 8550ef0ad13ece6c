//! Shared test helpers: free loopback ports, in-process nodes, raw RESP exchanges.
#![allow(dead_code, unreachable_pub)]

use std::sync::mpsc;
use std::time::Duration;

use keel_dht::{Node, NodeHandle};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// A port that was free a moment ago.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A single node on a free port with its own temporary directory.
pub async fn single_node(builder: keel_dht::NodeBuilder) -> (NodeHandle, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let node = builder.data_dir(dir.path()).build().unwrap();
    (node.start().await.unwrap(), dir)
}

/// Default single node.
pub async fn default_node() -> (NodeHandle, tempfile::TempDir) {
    single_node(Node::builder()).await
}

/// Sends raw bytes and reads until `expected` bytes arrived or the peer closed
/// (bounded by 5 s).
pub async fn exchange(addr: std::net::SocketAddr, send: &[u8], expected: usize) -> Vec<u8> {
    let mut s = TcpStream::connect(addr).await.unwrap();
    s.write_all(send).await.unwrap();
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    while got.len() < expected {
        match tokio::time::timeout_at(deadline, s.read(&mut buf)).await {
            Ok(Ok(0)) | Ok(Err(_)) | Err(_) => break,
            Ok(Ok(n)) => got.extend_from_slice(&buf[..n]),
        }
    }
    got
}

/// A `redis` crate async connection to `addr` (bounded).
pub async fn client(addr: impl std::fmt::Display) -> redis::aio::MultiplexedConnection {
    let c = redis::Client::open(format!("redis://{addr}/")).unwrap();
    let cfg = redis::AsyncConnectionConfig::new()
        .set_connection_timeout(Some(Duration::from_secs(5)))
        .set_response_timeout(Some(Duration::from_secs(5)));
    c.get_multiplexed_async_connection_with_config(&cfg)
        .await
        .unwrap()
}

/// How long one test may run before [`watchdog`] ends the test process (real time;
/// `KEEL_TEST_TIMEOUT_SECS` overrides it).
fn limit() -> Duration {
    let secs = std::env::var("KEEL_TEST_TIMEOUT_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(180);
    Duration::from_secs(secs)
}

/// Ends the whole test process if the test that created it is still running after the
/// limit. Every wait in these suites has its own bound, but a bound is only as good as
/// the runtime that enforces it: if a runtime worker were ever blocked, a `tokio` timeout
/// would not fire. This watchdog runs on its own OS thread, so a hang fails the run in
/// bounded time and names the test. Keep it alive for the test's duration:
/// `let _watchdog = common::watchdog();`.
#[must_use = "the watchdog stops watching when dropped"]
pub struct Watchdog {
    _done: mpsc::Sender<()>,
}

pub fn watchdog() -> Watchdog {
    let name = std::thread::current()
        .name()
        .unwrap_or("<unnamed test>")
        .to_owned();
    let limit = limit();
    let (done, finished) = mpsc::channel::<()>();
    std::thread::spawn(move || {
        // Disconnected (the guard was dropped, also on panic) ends the watch.
        if let Err(mpsc::RecvTimeoutError::Timeout) = finished.recv_timeout(limit) {
            eprintln!(
                "watchdog: test `{name}` still running after {limit:?}; ending the test process"
            );
            std::process::exit(124);
        }
    });
    Watchdog { _done: done }
}

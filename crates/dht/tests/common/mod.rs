//! Shared test helpers: free loopback ports, in-process nodes, raw RESP exchanges.
#![allow(dead_code, unreachable_pub)]

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

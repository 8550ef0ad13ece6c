//! A client that pipelines requests and never reads its replies must not make the node
//! buffer every reply: the connection writes once about 1 MiB is pending and stops
//! parsing until the socket drains. Alone in its test binary because it measures the
//! process's resident memory.

mod common;

use std::time::Duration;

use common::{default_node, exchange};
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;

/// Resident set size of this process in bytes (Linux), `None` elsewhere.
fn rss_bytes() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb * 1024)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_never_reads_does_not_grow_the_reply_buffer() {
    let _watchdog = common::watchdog();
    let Some(before) = rss_bytes() else {
        eprintln!("skipping: no /proc/self/status on this platform");
        return;
    };
    let (node, _dir) = default_node().await;
    let value = vec![b'x'; 128 << 10];
    let mut set = format!("*3\r\n$3\r\nSET\r\n$1\r\nk\r\n${}\r\n", value.len()).into_bytes();
    set.extend_from_slice(&value);
    set.extend_from_slice(b"\r\n");
    assert_eq!(exchange(node.addr(), &set, 5).await, b"+OK\r\n");

    // 2,000 pipelined GETs of a 128 KiB value = 256 MiB of replies, never read.
    let mut s = TcpStream::connect(node.addr()).await.unwrap();
    let gets = b"GET k\r\n".repeat(2000);
    tokio::time::timeout(Duration::from_secs(5), s.write_all(&gets))
        .await
        .expect("14 KB of requests fit in the socket buffers")
        .unwrap();
    // Bounded observation window: the node would build the whole buffer well within it.
    let mut peak = before;
    for _ in 0..50 {
        tokio::time::sleep(Duration::from_millis(20)).await;
        peak = peak.max(rss_bytes().unwrap_or(0));
    }
    let grown = peak.saturating_sub(before);
    assert!(
        grown < 64 << 20,
        "resident memory grew by {} MiB for one non-reading client",
        grown >> 20
    );
    drop(s);
    node.shutdown().await;
}

#[tokio::test]
async fn pipelined_replies_past_the_write_threshold_all_arrive_in_order() {
    let _watchdog = common::watchdog();
    let (node, _dir) = default_node().await;
    let value = vec![b'y'; 128 << 10];
    let mut set = format!("*3\r\n$3\r\nSET\r\n$1\r\nk\r\n${}\r\n", value.len()).into_bytes();
    set.extend_from_slice(&value);
    set.extend_from_slice(b"\r\n");
    assert_eq!(exchange(node.addr(), &set, 5).await, b"+OK\r\n");
    // 20 × 128 KiB = 2.5 MiB of replies: the connection writes mid-batch, then must go
    // on with the requests still buffered (no further bytes arrive from the client).
    let mut send = b"GET k\r\n".repeat(20);
    send.extend_from_slice(b"PING\r\n");
    let mut want = Vec::new();
    for _ in 0..20 {
        want.extend_from_slice(format!("${}\r\n", value.len()).as_bytes());
        want.extend_from_slice(&value);
        want.extend_from_slice(b"\r\n");
    }
    want.extend_from_slice(b"+PONG\r\n");
    let got = exchange(node.addr(), &send, want.len()).await;
    assert_eq!(got.len(), want.len());
    assert!(got == want, "replies differ");
    node.shutdown().await;
}

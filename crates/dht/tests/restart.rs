//! A node restarted in the same process on the same data directory, right after
//! `shutdown()` returned: the store must already be released (no retry loop).

mod common;

use common::exchange;
use keel_dht::Node;
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restart_on_same_dir_right_after_shutdown_sees_acknowledged_write() {
    let _watchdog = common::watchdog();
    let dir = tempfile::tempdir().unwrap();
    for round in 0..5u32 {
        let node = Node::builder()
            .data_dir(dir.path())
            .build()
            .unwrap()
            .start()
            .await
            .unwrap_or_else(|e| panic!("round {round}: restart failed: {e}"));
        if round > 0 {
            let want = format!("${}\r\nv{}\r\n", format!("v{}", round - 1).len(), round - 1);
            let got = exchange(node.addr(), b"GET k\r\n", want.len()).await;
            assert_eq!(String::from_utf8_lossy(&got), want, "round {round}");
        }
        let set = format!("SET k v{round}\r\n");
        assert_eq!(exchange(node.addr(), set.as_bytes(), 5).await, b"+OK\r\n");
        // A client still connected during shutdown must not keep the store open.
        let mut idle = TcpStream::connect(node.addr()).await.unwrap();
        idle.write_all(b"PING\r\n").await.unwrap();
        node.shutdown().await;
    }
}

//! Bad configuration and bad peers: typed build errors, and a peer that accepts
//! connections but never answers (every wait is bounded by the RPC timeout).

mod common;

use std::net::SocketAddr;
use std::time::Duration;

use common::{client, free_port};
use keel_dht::{BuildError, Node};
use redis::AsyncCommands;

#[test]
fn bad_settings_are_typed_errors() {
    let _watchdog = common::watchdog();
    let dir = tempfile::tempdir().unwrap();
    let b = || Node::builder().data_dir(dir.path());
    assert!(matches!(
        b().replication(0, 1, 1).build(),
        Err(BuildError::Replication { .. })
    ));
    assert!(matches!(
        b().replication(3, 4, 2).build(),
        Err(BuildError::Replication { .. })
    ));
    assert!(matches!(
        b().replication(3, 2, 0).build(),
        Err(BuildError::Replication { .. })
    ));
    assert!(matches!(
        b().partitions(0).build(),
        Err(BuildError::Partitions(0))
    ));
    assert!(matches!(
        b().partitions(70_000).build(),
        Err(BuildError::Partitions(_))
    ));
    assert!(matches!(
        b().vnodes(0).build(),
        Err(BuildError::VirtualNodes)
    ));
    assert!(matches!(
        b().rpc_timeout(Duration::ZERO).build(),
        Err(BuildError::Duration { .. })
    ));
    assert!(matches!(
        b().rpc_timeout(Duration::MAX).build(),
        Err(BuildError::Duration { .. })
    ));
    assert!(matches!(
        Node::builder().build(),
        Err(BuildError::NoDataDir)
    ));
    let e = b().replication(3, 4, 2).build().unwrap_err();
    assert_eq!(
        e.to_string(),
        "invalid replication n=3 r=4 w=2: need 1 <= r, w <= n"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_silent_peer_costs_a_timeout_not_a_hang() {
    let _watchdog = common::watchdog();
    // Node 3 is a socket that accepts and never answers.
    let silent = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let silent_addr = silent.local_addr().unwrap();
    let hold = tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((s, _)) = silent.accept().await {
            held.push(s);
        }
    });
    let addrs: Vec<SocketAddr> = vec![
        SocketAddr::from(([127, 0, 0, 1], free_port())),
        SocketAddr::from(([127, 0, 0, 1], free_port())),
        silent_addr,
    ];
    let dirs: Vec<_> = (0..2).map(|_| tempfile::tempdir().unwrap()).collect();
    let mut nodes = Vec::new();
    for i in 0..2 {
        let node = Node::builder()
            .listen(addrs[i])
            .seeds(addrs.iter().map(ToString::to_string))
            .data_dir(dirs[i].path())
            .rpc_timeout(Duration::from_millis(200))
            .retry_after(Duration::from_secs(60))
            .build()
            .unwrap();
        nodes.push(node.start().await.unwrap());
    }
    let mut c = client(addrs[0]).await;
    let all = tokio::time::timeout(Duration::from_secs(30), async {
        for i in 0..100 {
            let _: () = c.set(format!("s{i}"), i).await.unwrap();
        }
        for i in 0..100 {
            assert_eq!(c.get::<_, i64>(format!("s{i}")).await.unwrap(), i);
        }
    })
    .await;
    assert!(
        all.is_ok(),
        "writes and reads with a silent replica did not finish in 30 s"
    );
    let s = nodes[0].stats();
    assert!(
        s.hints_stored > 0,
        "the silent replica's copies wait as hints: {s:?}"
    );
    let nodes_view: Vec<(String, String)> =
        redis::cmd("DHT.NODES").query_async(&mut c).await.unwrap();
    assert!(
        nodes_view.contains(&(silent_addr.to_string(), "down".to_owned())),
        "{nodes_view:?}"
    );
    for n in nodes {
        n.shutdown().await;
    }
    hold.abort();
}

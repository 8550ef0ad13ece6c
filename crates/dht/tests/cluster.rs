//! Three in-process nodes on loopback: any node coordinates any key, concurrent writes
//! become siblings that a context-carrying write resolves, consistency levels, and read
//! repair of a replica that missed writes.

mod common;

use std::net::SocketAddr;
use std::time::Duration;

use common::{client, free_port};
use keel_dht::{Node, NodeHandle, SiblingSet};
use redis::AsyncCommands;
use redis::aio::MultiplexedConnection;

fn addrs() -> Vec<SocketAddr> {
    (0..3)
        .map(|_| SocketAddr::from(([127, 0, 0, 1], free_port())))
        .collect()
}

const OFF: Duration = Duration::from_secs(3600);

async fn start(
    addr: SocketAddr,
    all: &[SocketAddr],
    dir: &std::path::Path,
    handoff: Duration,
) -> NodeHandle {
    start_with(addr, all, dir, handoff, OFF).await
}

async fn start_with(
    addr: SocketAddr,
    all: &[SocketAddr],
    dir: &std::path::Path,
    handoff: Duration,
    anti_entropy: Duration,
) -> NodeHandle {
    Node::builder()
        .anti_entropy_interval(anti_entropy)
        .listen(addr)
        .seeds(all.iter().map(ToString::to_string))
        .data_dir(dir)
        .handoff_interval(handoff)
        .rpc_timeout(Duration::from_millis(500))
        .build()
        .unwrap()
        .start()
        .await
        .unwrap()
}

async fn cluster(handoff: Duration) -> (Vec<SocketAddr>, Vec<NodeHandle>, Vec<tempfile::TempDir>) {
    let addrs = addrs();
    let dirs: Vec<_> = (0..3).map(|_| tempfile::tempdir().unwrap()).collect();
    let mut nodes = Vec::new();
    for (a, d) in addrs.iter().zip(&dirs) {
        nodes.push(start(*a, &addrs, d.path(), handoff).await);
    }
    (addrs, nodes, dirs)
}

async fn siblings(c: &mut MultiplexedConnection, key: &str) -> (String, Vec<Option<String>>) {
    let v: redis::Value = redis::cmd("DHT.SIBLINGS")
        .arg(key)
        .query_async(c)
        .await
        .unwrap();
    let redis::Value::Array(top) = v else {
        panic!("{v:?}")
    };
    let context: String = redis::from_redis_value(top[1].clone()).unwrap();
    let redis::Value::Array(items) = top[3].clone() else {
        panic!()
    };
    let values = items
        .into_iter()
        .map(|s| {
            let redis::Value::Array(fields) = s else {
                panic!()
            };
            redis::from_redis_value::<Option<String>>(fields[1].clone()).unwrap()
        })
        .collect();
    (context, values)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn any_node_serves_any_key() {
    let _watchdog = common::watchdog();
    let (addrs, nodes, _dirs) = cluster(Duration::from_millis(100)).await;
    let mut a = client(addrs[0]).await;
    let mut b = client(addrs[1]).await;
    let mut c = client(addrs[2]).await;
    for i in 0..200 {
        let _: () = a.set(format!("k{i}"), i).await.unwrap();
    }
    for conn in [&mut b, &mut c] {
        for i in 0..200 {
            assert_eq!(conn.get::<_, i64>(format!("k{i}")).await.unwrap(), i);
        }
    }
    assert_eq!(
        redis::cmd("DBSIZE")
            .query_async::<i64>(&mut c)
            .await
            .unwrap(),
        200
    );
    let (_, owners): (i64, Vec<String>) = redis::cmd("DHT.OWNERS")
        .arg("k1")
        .query_async(&mut b)
        .await
        .unwrap();
    assert_eq!(owners.len(), 3);
    // Every write was coordinated exactly once, somewhere: forwarded ones elsewhere.
    let writes: u64 = nodes.iter().map(|n| n.stats().writes).sum();
    assert_eq!(writes, 200);
    assert!(
        nodes[0].stats().forwarded > 0,
        "some keys are coordinated by other nodes"
    );
    // INCR from all three nodes at once: serialised by each key's coordinator, none lost.
    let mut tasks = Vec::new();
    for addr in addrs.clone() {
        tasks.push(tokio::spawn(async move {
            let mut conn = client(addr).await;
            for _ in 0..50 {
                let _: i64 = conn.incr("counter", 1).await.unwrap();
            }
        }));
    }
    for t in tasks {
        tokio::time::timeout(Duration::from_secs(30), t)
            .await
            .unwrap()
            .unwrap();
    }
    assert_eq!(a.get::<_, i64>("counter").await.unwrap(), 150);
    for n in nodes {
        n.shutdown().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_writes_are_siblings_until_a_write_that_saw_them() {
    let _watchdog = common::watchdog();
    let (addrs, nodes, _dirs) = cluster(Duration::from_millis(100)).await;
    let mut a = client(addrs[0]).await;
    let mut b = client(addrs[1]).await;
    let _: () = a.set("doc", "v0").await.unwrap();
    let (ctx0, values) = siblings(&mut a, "doc").await;
    assert_eq!(values, vec![Some("v0".to_owned())]);
    // Two clients both read v0, then write with that context: concurrent.
    let _: () = redis::cmd("DHT.PUT")
        .arg("doc")
        .arg("x")
        .arg(&ctx0)
        .query_async(&mut a)
        .await
        .unwrap();
    let _: () = redis::cmd("DHT.PUT")
        .arg("doc")
        .arg("y")
        .arg(&ctx0)
        .query_async(&mut b)
        .await
        .unwrap();
    let (ctx1, mut values) = siblings(&mut b, "doc").await;
    values.sort();
    assert_eq!(values, vec![Some("x".to_owned()), Some("y".to_owned())]);
    // Plain GET picks one by the documented rule, the same on every node.
    let ga: String = a.get("doc").await.unwrap();
    let gb: String = b.get("doc").await.unwrap();
    assert_eq!(ga, gb);
    // A write carrying the merged context supersedes both.
    let _: () = redis::cmd("DHT.PUT")
        .arg("doc")
        .arg("merged")
        .arg(&ctx1)
        .query_async(&mut a)
        .await
        .unwrap();
    let (_, values) = siblings(&mut b, "doc").await;
    assert_eq!(values, vec![Some("merged".to_owned())]);
    // A delete is a tombstone that hides the value everywhere.
    assert_eq!(b.del::<_, i64>("doc").await.unwrap(), 1);
    assert_eq!(a.get::<_, Option<String>>("doc").await.unwrap(), None);
    let (_, values) = siblings(&mut a, "doc").await;
    assert_eq!(values, vec![None]);
    for n in nodes {
        n.shutdown().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn consistency_levels_and_read_repair() {
    let _watchdog = common::watchdog();
    // Handoff effectively off, so only read repair can fix the empty replica.
    let (addrs, mut nodes, _dirs) = cluster(Duration::from_secs(3600)).await;
    let mut a = client(addrs[0]).await;
    nodes.pop().unwrap().shutdown().await; // node 3 is gone
    for i in 0..50 {
        let _: () = a.set(format!("r{i}"), i).await.unwrap(); // W=2 of the two left
    }
    let level: String = redis::cmd("DHT.CONSISTENCY")
        .arg("ALL")
        .query_async(&mut a)
        .await
        .unwrap();
    assert_eq!(level, "ALL r=3 w=3 n=3");
    let err = a
        .set::<_, _, ()>("needs-all", 1)
        .await
        .unwrap_err()
        .to_string();
    assert!(err.contains("of w=3"), "{err}");
    let _: String = redis::cmd("DHT.CONSISTENCY")
        .arg("ONE")
        .query_async(&mut a)
        .await
        .unwrap();
    let _: () = a.set("one", 1).await.unwrap();

    // A replacement node with an empty disk at the same address.
    let fresh = tempfile::tempdir().unwrap();
    let c_node = start(addrs[2], &addrs, fresh.path(), Duration::from_secs(3600)).await;
    let mut c = client(addrs[2]).await;
    let _: String = redis::cmd("DHT.CONSISTENCY")
        .arg("ALL")
        .query_async(&mut c)
        .await
        .unwrap();
    for i in 0..50 {
        assert_eq!(c.get::<_, i64>(format!("r{i}")).await.unwrap(), i);
    }
    // Repairs run after the reply: wait (bounded) until the new node holds every key.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let mut missing = 0;
        for i in 0..50 {
            let raw: Vec<u8> = redis::cmd("DHT.R.GET")
                .arg(format!("r{i}"))
                .query_async(&mut c)
                .await
                .unwrap();
            missing += usize::from(SiblingSet::decode(&raw).unwrap().current(0).is_none());
        }
        if missing == 0 {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{missing} keys not repaired"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(c_node.stats().read_repairs >= 50);
    c_node.shutdown().await;
    for n in nodes {
        n.shutdown().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn anti_entropy_refills_a_replacement_node_without_reads() {
    let _watchdog = common::watchdog();
    let (addrs, mut nodes, _dirs) = cluster(OFF).await;
    let mut a = client(addrs[0]).await;
    nodes.pop().unwrap().shutdown().await;
    for i in 0..100 {
        let _: () = a.set(format!("ae{i}"), i).await.unwrap();
    }
    assert_eq!(a.del::<_, i64>("ae0").await.unwrap(), 1); // the tombstone travels too
    // A replacement with an empty disk; no handoff, no reads: only anti-entropy.
    let fresh = tempfile::tempdir().unwrap();
    let c_node = start_with(
        addrs[2],
        &addrs,
        fresh.path(),
        OFF,
        Duration::from_millis(10),
    )
    .await;
    let mut c = client(addrs[2]).await;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        let mut missing = 0;
        for i in 0..100 {
            let raw: Vec<u8> = redis::cmd("DHT.R.GET")
                .arg(format!("ae{i}"))
                .query_async(&mut c)
                .await
                .unwrap();
            let set = SiblingSet::decode(&raw).unwrap();
            let ok = if i == 0 {
                !set.is_empty() && set.current(0).is_none()
            } else {
                set.current(0).is_some()
            };
            missing += usize::from(!ok);
        }
        if missing == 0 {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{missing} keys not synced"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let s = c_node.stats();
    assert!(s.anti_entropy_keys >= 100, "{s:?}");
    assert_eq!(s.read_repairs, 0);
    assert_eq!(s.hints_delivered, 0);
    c_node.shutdown().await;
    for n in nodes {
        n.shutdown().await;
    }
}

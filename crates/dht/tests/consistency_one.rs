//! Reads at consistency `ONE` (R = 1) and the causal context they hand out: a write made
//! with that context must supersede exactly the siblings the read returned, even when
//! the one replica asked lacks a sibling the others hold. Every wait is bounded.

mod common;

use std::net::SocketAddr;
use std::time::Duration;

use common::{client, free_port};
use keel_dht::{Node, NodeHandle, SiblingSet, VersionVector};
use redis::Value;
use redis::aio::MultiplexedConnection;

async fn start(addr: SocketAddr, seeds: &[SocketAddr], dir: &std::path::Path) -> NodeHandle {
    Node::builder()
        .listen(addr)
        .seeds(seeds.iter().map(ToString::to_string))
        .data_dir(dir)
        // No background repair during the test: what each replica holds is set by hand.
        .anti_entropy_interval(Duration::from_secs(3_600))
        .handoff_interval(Duration::from_secs(3_600))
        .build()
        .unwrap()
        .start()
        .await
        .unwrap()
}

fn text(v: &Value) -> String {
    match v {
        Value::BulkString(b) => String::from_utf8_lossy(b).into_owned(),
        Value::SimpleString(s) => s.clone(),
        other => panic!("not text: {other:?}"),
    }
}

/// `DHT.SIBLINGS key`: the context and the values (tombstones left out). Retried for
/// up to 10 s: right after a restart, peers may still fail their first calls to it.
async fn siblings(c: &mut MultiplexedConnection, key: &str) -> (String, Vec<String>) {
    let mut attempts = 0;
    let v: Value = loop {
        match redis::cmd("DHT.SIBLINGS").arg(key).query_async(c).await {
            Ok(v) => break v,
            Err(e) => {
                attempts += 1;
                assert!(attempts < 100, "DHT.SIBLINGS {key}: {e}");
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    };
    let pairs: Vec<(Value, Value)> = match v {
        Value::Map(m) => m,
        Value::Array(a) => a.chunks(2).map(|c| (c[0].clone(), c[1].clone())).collect(),
        other => panic!("{other:?}"),
    };
    let field = |name: &str| {
        pairs
            .iter()
            .find(|(k, _)| text(k) == name)
            .unwrap()
            .1
            .clone()
    };
    let Value::Array(items) = field("siblings") else {
        panic!("no siblings array")
    };
    let mut values = Vec::new();
    for item in items {
        let fields: Vec<(Value, Value)> = match item {
            Value::Map(m) => m,
            Value::Array(a) => a.chunks(2).map(|c| (c[0].clone(), c[1].clone())).collect(),
            other => panic!("{other:?}"),
        };
        if let Some((_, v)) = fields.iter().find(|(k, _)| text(k) == "value") {
            if !matches!(v, Value::Nil) {
                values.push(text(v));
            }
        }
    }
    values.sort();
    (text(&field("context")), values)
}

async fn consistency(c: &mut MultiplexedConnection, level: &str) {
    let _: Value = redis::cmd("DHT.CONSISTENCY")
        .arg(level)
        .query_async(c)
        .await
        .unwrap();
}

async fn put_replica(at: SocketAddr, key: &str, set: &SiblingSet) {
    let _: () = redis::cmd("DHT.R.PUT")
        .arg(key)
        .arg(set.encode())
        .query_async(&mut client(at).await)
        .await
        .unwrap();
}

/// The dots of `key`'s siblings on the replica at `at` (`DHT.R.GET`).
async fn stored(at: SocketAddr, key: &str) -> SiblingSet {
    let raw: Vec<u8> = redis::cmd("DHT.R.GET")
        .arg(key)
        .query_async(&mut client(at).await)
        .await
        .unwrap();
    SiblingSet::decode(&raw).unwrap()
}

/// What a crash leaves behind: node A coordinated `x`, which B and C acknowledged (W = 2)
/// before A's own fsync; A was killed, lost `x`, restarted and coordinated `y` with a
/// context that did not see `x`. B and C hold `x` and `y`; A holds its older `w0` and
/// `y` until repair reaches it. A client reading at `ONE` from A sees `w0` and `y`; its
/// write must replace those and keep `x`, which it never saw.
///
/// Before dots named the node's run (`mutation::run_actor`), A's first dot after the
/// restart jumped to its new floor and the context `A = floor + 1` covered `x`: this
/// test failed with `["z"]`, the acknowledged `x` dropped on every replica.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_write_with_a_context_read_at_one_keeps_the_siblings_that_read_missed() {
    let _watchdog = common::watchdog();
    let addrs: Vec<SocketAddr> = (0..3)
        .map(|_| SocketAddr::from(([127, 0, 0, 1], free_port())))
        .collect();
    let dirs: Vec<_> = (0..3).map(|_| tempfile::tempdir().unwrap()).collect();
    let mut nodes = Vec::new();
    for (a, d) in addrs.iter().zip(&dirs) {
        nodes.push(start(*a, &addrs, d.path()).await);
    }
    let a_name = addrs[0].to_string();
    // A key whose write coordinator is A (the first owner).
    let mut a = client(addrs[0]).await;
    let mut key = String::new();
    for i in 0..1_000 {
        let k = format!("k{i}");
        let (_, owners): (i64, Vec<String>) = redis::cmd("DHT.OWNERS")
            .arg(&k)
            .query_async(&mut a)
            .await
            .unwrap();
        if owners[0] == a_name {
            key = k;
            break;
        }
    }
    assert!(!key.is_empty(), "no key coordinated by A");
    consistency(&mut a, "ALL").await;
    let _: () = redis::cmd("SET")
        .arg(&key)
        .arg("w0")
        .query_async(&mut a)
        .await
        .unwrap();
    let w0 = stored(addrs[0], &key).await.siblings()[0].clone();
    // A's next write `x`, as A would have made it, reached B and C only.
    let mut x = w0.clone();
    x.dot.1 += 1;
    x.vv = VersionVector::from_entries([(w0.dot.0.clone(), w0.dot.1)]);
    x.value = Some(b"x".to_vec());
    x.written_at_ms += 1;
    let mut only_x = SiblingSet::new();
    only_x.insert(x);
    put_replica(addrs[1], &key, &only_x).await;
    put_replica(addrs[2], &key, &only_x).await;

    // A restarts on its data (a new run of its store) and coordinates `y` blind to `x`.
    nodes.remove(0).shutdown().await;
    nodes.insert(0, start(addrs[0], &addrs, dirs[0].path()).await);
    let mut a = client(addrs[0]).await;
    consistency(&mut a, "ALL").await;
    let _: () = redis::cmd("DHT.PUT")
        .arg(&key)
        .arg("y")
        .arg("")
        .query_async(&mut a)
        .await
        .unwrap();
    let values = |set: SiblingSet| -> Vec<String> {
        let mut v: Vec<String> = set
            .siblings()
            .iter()
            .filter_map(|s| s.value.as_ref())
            .map(|v| String::from_utf8_lossy(v).into_owned())
            .collect();
        v.sort();
        v
    };
    assert_eq!(values(stored(addrs[0], &key).await), ["w0", "y"]);
    assert_eq!(values(stored(addrs[1], &key).await), ["x", "y"]);

    // A client at ONE reads A alone and writes with that context.
    consistency(&mut a, "ONE").await;
    let (context, seen) = siblings(&mut a, &key).await;
    assert_eq!(seen, ["w0", "y"], "the read at ONE asked A alone");
    let _: () = redis::cmd("DHT.PUT")
        .arg(&key)
        .arg("z")
        .arg(&context)
        .query_async(&mut a)
        .await
        .unwrap();

    let mut all = client(addrs[1]).await;
    consistency(&mut all, "ALL").await;
    let (_, values) = siblings(&mut all, &key).await;
    assert_eq!(
        values,
        ["x", "z"],
        "z supersedes w0 and y (seen) and must keep x (acknowledged, never seen)"
    );
    for n in nodes {
        n.shutdown().await;
    }
}

//! The Redis command set through the `redis` crate, TTLs on an injected clock, and a
//! `redis-cli` smoke run when the binary is installed.

mod common;

use common::{client, default_node, single_node};
use keel_dht::{ManualClock, Node};
use redis::AsyncCommands;

#[tokio::test]
async fn strings_counters_and_keyspace() {
    let _watchdog = common::watchdog();
    let (node, _dir) = default_node().await;
    let mut c = client(node.addr()).await;
    let _: () = c.set("a", "1").await.unwrap();
    assert_eq!(c.get::<_, String>("a").await.unwrap(), "1");
    let nx: Option<String> = redis::cmd("SET")
        .arg("a")
        .arg("2")
        .arg("NX")
        .query_async(&mut c)
        .await
        .unwrap();
    assert_eq!(nx, None);
    let xx: Option<String> = redis::cmd("SET")
        .arg("new")
        .arg("2")
        .arg("XX")
        .query_async(&mut c)
        .await
        .unwrap();
    assert_eq!(xx, None);
    let old: Option<String> = redis::cmd("SET")
        .arg("a")
        .arg("5")
        .arg("GET")
        .query_async(&mut c)
        .await
        .unwrap();
    assert_eq!(old.as_deref(), Some("1"));
    assert_eq!(c.incr::<_, _, i64>("a", 10).await.unwrap(), 15);
    assert_eq!(
        redis::cmd("DECR")
            .arg("a")
            .query_async::<i64>(&mut c)
            .await
            .unwrap(),
        14
    );
    let _: () = c.set("s", "abc").await.unwrap();
    assert!(
        c.incr::<_, _, i64>("s", 1)
            .await
            .unwrap_err()
            .to_string()
            .contains("not an integer")
    );
    assert_eq!(c.append::<_, _, i64>("s", "de").await.unwrap(), 5);
    assert_eq!(c.strlen::<_, i64>("s").await.unwrap(), 5);
    let _: () = c.mset(&[("m1", "x"), ("m2", "y")]).await.unwrap();
    let got: Vec<Option<String>> = c.mget(&["m1", "nope", "m2"]).await.unwrap();
    assert_eq!(got, vec![Some("x".into()), None, Some("y".into())]);
    assert_eq!(c.exists::<_, i64>(&["m1", "m2", "nope"]).await.unwrap(), 2);
    assert_eq!(c.del::<_, i64>(&["m1", "nope"]).await.unwrap(), 1);
    assert_eq!(
        c.get_del::<_, Option<String>>("m2")
            .await
            .unwrap()
            .as_deref(),
        Some("y")
    );
    assert_eq!(c.get::<_, Option<String>>("m2").await.unwrap(), None);
    // a, s remain.
    assert_eq!(
        redis::cmd("DBSIZE")
            .query_async::<i64>(&mut c)
            .await
            .unwrap(),
        2
    );
    let mut cursor = 0u64;
    let mut seen = Vec::new();
    loop {
        let (next, keys): (u64, Vec<String>) = redis::cmd("SCAN")
            .arg(cursor)
            .arg("COUNT")
            .arg(1)
            .query_async(&mut c)
            .await
            .unwrap();
        seen.extend(keys);
        if next == 0 {
            break;
        }
        cursor = next;
    }
    seen.sort();
    assert_eq!(seen, vec!["a", "s"]);
    let _: () = redis::cmd("FLUSHALL").query_async(&mut c).await.unwrap();
    assert_eq!(
        redis::cmd("DBSIZE")
            .query_async::<i64>(&mut c)
            .await
            .unwrap(),
        0
    );
    node.shutdown().await;
}

#[tokio::test]
async fn ttls_follow_the_injected_clock() {
    let _watchdog = common::watchdog();
    let clock = ManualClock::new(1_000_000);
    let (node, _dir) = single_node(Node::builder().clock(clock.clone())).await;
    let mut c = client(node.addr()).await;
    let _: () = redis::cmd("SET")
        .arg("k")
        .arg("v")
        .arg("EX")
        .arg(10)
        .query_async(&mut c)
        .await
        .unwrap();
    assert_eq!(c.ttl::<_, i64>("k").await.unwrap(), 10);
    clock.advance_ms(4_000);
    assert_eq!(c.pttl::<_, i64>("k").await.unwrap(), 6_000);
    // INCR-free value; APPEND keeps the TTL like Redis.
    assert_eq!(c.append::<_, _, i64>("k", "w").await.unwrap(), 2);
    assert_eq!(c.ttl::<_, i64>("k").await.unwrap(), 6);
    clock.advance_ms(6_000);
    assert_eq!(c.get::<_, Option<String>>("k").await.unwrap(), None);
    assert_eq!(c.ttl::<_, i64>("k").await.unwrap(), -2);
    let _: () = c.set("p", "v").await.unwrap();
    assert_eq!(c.ttl::<_, i64>("p").await.unwrap(), -1);
    assert!(c.expire::<_, bool>("p", 5).await.unwrap());
    assert!(c.persist::<_, bool>("p").await.unwrap());
    assert_eq!(c.ttl::<_, i64>("p").await.unwrap(), -1);
    let at = 1_010_000 / 1000 + 3;
    let _: () = redis::cmd("SET")
        .arg("q")
        .arg("v")
        .arg("EXAT")
        .arg(at)
        .query_async(&mut c)
        .await
        .unwrap();
    assert_eq!(c.ttl::<_, i64>("q").await.unwrap(), 3);
    // An expiry in the past deletes.
    assert!(c.pexpire::<_, bool>("q", -1).await.unwrap());
    assert_eq!(c.exists::<_, i64>("q").await.unwrap(), 0);
    assert!(!c.expire::<_, bool>("missing", 5).await.unwrap());
    node.shutdown().await;
}

#[tokio::test]
async fn connection_and_server_commands() {
    let _watchdog = common::watchdog();
    let (node, _dir) = default_node().await;
    let mut c = client(node.addr()).await;
    let _: () = redis::cmd("CLIENT")
        .arg("SETNAME")
        .arg("tester")
        .query_async(&mut c)
        .await
        .unwrap();
    let name: String = redis::cmd("CLIENT")
        .arg("GETNAME")
        .query_async(&mut c)
        .await
        .unwrap();
    assert_eq!(name, "tester");
    assert!(
        redis::cmd("CLIENT")
            .arg("ID")
            .query_async::<i64>(&mut c)
            .await
            .unwrap()
            >= 1
    );
    let _: () = redis::cmd("SELECT")
        .arg(0)
        .query_async(&mut c)
        .await
        .unwrap();
    let info: String = redis::cmd("INFO").query_async(&mut c).await.unwrap();
    assert!(info.contains("redis_version:"), "{info}");
    assert!(
        redis::cmd("COMMAND")
            .arg("COUNT")
            .query_async::<i64>(&mut c)
            .await
            .unwrap()
            > 30
    );
    let owners: (i64, Vec<String>) = redis::cmd("DHT.OWNERS")
        .arg("k")
        .query_async(&mut c)
        .await
        .unwrap();
    assert_eq!(owners.1, vec![node.name().to_owned()]);
    let level: String = redis::cmd("DHT.CONSISTENCY")
        .arg("ALL")
        .query_async(&mut c)
        .await
        .unwrap();
    assert_eq!(level, "ALL r=3 w=3 n=3");
    node.shutdown().await;
}

#[tokio::test]
async fn redis_cli_smoke() {
    let _watchdog = common::watchdog();
    let Ok(out) = std::process::Command::new("redis-cli")
        .arg("--version")
        .output()
    else {
        println!("SKIP redis_cli_smoke: redis-cli is not installed");
        return;
    };
    assert!(out.status.success());
    let (node, _dir) = default_node().await;
    let port = node.addr().port().to_string();
    let run = move |args: &[&str]| {
        let out = std::process::Command::new("timeout")
            .arg("10")
            .arg("redis-cli")
            .args(["-h", "127.0.0.1", "-p", &port])
            .args(args)
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout).trim().to_owned()
    };
    let (set, get, incr) = tokio::task::spawn_blocking(move || {
        (
            run(&["SET", "cli", "41"]),
            run(&["GET", "cli"]),
            run(&["INCR", "cli"]),
        )
    })
    .await
    .unwrap();
    assert_eq!(
        (set.as_str(), get.as_str(), incr.as_str()),
        ("OK", "41", "42")
    );
    node.shutdown().await;
}

//! Reclaiming disk: tombstones and expired values are collected only when every owner
//! holds them and the grace period (on the injected clock) has passed — a deleted key
//! stays deleted, also when a replica that missed the delete comes back — and a node that
//! lost partitions in a join or leave drops its copies once the new owners have them.
//! Every wait is bounded.

mod common;

use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::time::Duration;

use common::{client, free_port};
use keel_dht::{ManualClock, Node, NodeHandle};
use redis::AsyncCommands;
use redis::aio::MultiplexedConnection;

const GRACE: Duration = Duration::from_secs(3600);

fn addr() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], free_port()))
}

async fn start(
    addr: SocketAddr,
    seeds: &[SocketAddr],
    dir: &std::path::Path,
    clock: &ManualClock,
) -> NodeHandle {
    Node::builder()
        .listen(addr)
        .seeds(seeds.iter().map(ToString::to_string))
        .data_dir(dir)
        .rpc_timeout(Duration::from_millis(500))
        .retry_after(Duration::from_millis(200))
        .gossip_interval(Duration::from_millis(50))
        .fail_after(Duration::from_millis(1_000))
        .handoff_interval(Duration::from_millis(50))
        .anti_entropy_interval(Duration::from_millis(100))
        .tombstone_grace(GRACE)
        .clock(clock.clone())
        .build()
        .unwrap()
        .start()
        .await
        .unwrap()
}

async fn wait_until<F, Fut>(what: &str, mut f: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while !f().await {
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting: {what}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn all_up(at: SocketAddr) {
    wait_until("all up", || async {
        let view: Vec<(String, String)> = redis::cmd("DHT.NODES")
            .query_async(&mut client(at).await)
            .await
            .unwrap();
        view.iter().all(|(_, s)| s == "up" || s == "self")
    })
    .await;
}

/// Every sibling of `key` as `DHT.SIBLINGS` sees it through `c` (values; `None` =
/// tombstone).
async fn sibling_count(c: &mut MultiplexedConnection, key: &str) -> usize {
    let v: redis::Value = redis::cmd("DHT.SIBLINGS")
        .arg(key)
        .query_async(c)
        .await
        .unwrap();
    let redis::Value::Array(top) = v else {
        panic!("{v:?}")
    };
    match &top[3] {
        redis::Value::Array(items) => items.len(),
        other => panic!("{other:?}"),
    }
}

const KEYS: usize = 40;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deleted_keys_stay_deleted_through_gc_and_a_replica_that_missed_the_delete() {
    let _watchdog = common::watchdog();
    let clock = ManualClock::new(1_700_000_000_000);
    let addrs: Vec<SocketAddr> = (0..3).map(|_| addr()).collect();
    let dirs: Vec<_> = (0..3).map(|_| tempfile::tempdir().unwrap()).collect();
    let mut nodes = Vec::new();
    for (a, d) in addrs.iter().zip(&dirs) {
        nodes.push(start(*a, &addrs, d.path(), &clock).await);
    }
    all_up(addrs[0]).await;
    let mut a = client(addrs[0]).await;
    for i in 0..KEYS {
        let _: () = a.set(format!("k{i}"), "old").await.unwrap();
    }
    let _: () = a.set("kept", "live").await.unwrap();
    wait_until("every replica holds every key", || {
        let counts: Vec<u64> = nodes.iter().map(|n| n.stats().keys_stored).collect();
        async move { counts.iter().all(|&c| c == KEYS as u64 + 1) }
    })
    .await;

    // The third replica goes down and misses the deletes (it keeps "old" on disk).
    let down = nodes.pop().unwrap();
    down.shutdown().await;
    for i in 0..KEYS {
        assert_eq!(a.del::<_, i64>(format!("k{i}")).await.unwrap(), 1);
    }
    clock.advance_ms(2 * GRACE.as_millis() as u64);
    // Rounds go by past the grace period, but one owner is down: nothing is collected.
    let rounds = nodes[0].stats().anti_entropy_rounds;
    wait_until("several GC rounds", || {
        let r = nodes[0].stats().anti_entropy_rounds;
        async move { r >= rounds + 20 }
    })
    .await;
    for n in &nodes {
        let s = n.stats();
        assert_eq!(s.tombstones_collected, 0, "collected with an owner down");
        assert_eq!(s.keys_stored, KEYS as u64 + 1, "tombstones kept");
    }

    // The replica returns with the old values; it must learn the deletes, not spread
    // its values, and then every owner drops the tombstones.
    nodes.push(start(addrs[2], &addrs, dirs[2].path(), &clock).await);
    // Time passes on the returning node too (its heartbeats restart on its clock).
    wait_until("tombstones collected on every owner", || {
        let counts: Vec<u64> = nodes.iter().map(|n| n.stats().keys_stored).collect();
        async move { counts.iter().all(|&c| c == 1) }
    })
    .await;
    let collected: u64 = nodes.iter().map(|n| n.stats().tombstones_collected).sum();
    // At least once per owner; a tombstone can come back *as a tombstone* (a hint for the
    // returning replica delivered after the GC, or an exchange racing the reap) and be
    // collected again — never the value it deleted (checked below).
    assert!(
        collected >= 3 * KEYS as u64,
        "every owner collected each: {collected}"
    );
    // Rounds keep running after the GC: nothing comes back, on any node.
    let rounds = nodes[0].stats().anti_entropy_rounds;
    wait_until("more rounds after the GC", || {
        let r = nodes[0].stats().anti_entropy_rounds;
        async move { r >= rounds + 10 }
    })
    .await;
    for at in &addrs {
        let mut c = client(at).await;
        for i in 0..KEYS {
            let key = format!("k{i}");
            assert_eq!(c.get::<_, Option<String>>(&key).await.unwrap(), None);
            assert_eq!(sibling_count(&mut c, &key).await, 0, "{key} at {at}");
        }
        assert_eq!(c.get::<_, String>("kept").await.unwrap(), "live");
    }
    for n in &nodes {
        assert_eq!(n.stats().keys_stored, 1, "nothing resurrected");
    }
    for n in nodes {
        n.shutdown().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tombstone_younger_than_the_grace_period_is_kept() {
    let _watchdog = common::watchdog();
    let clock = ManualClock::new(1_700_000_000_000);
    let addrs: Vec<SocketAddr> = (0..3).map(|_| addr()).collect();
    let dirs: Vec<_> = (0..3).map(|_| tempfile::tempdir().unwrap()).collect();
    let mut nodes = Vec::new();
    for (a, d) in addrs.iter().zip(&dirs) {
        nodes.push(start(*a, &addrs, d.path(), &clock).await);
    }
    all_up(addrs[0]).await;
    let mut a = client(addrs[0]).await;
    for i in 0..KEYS {
        let _: () = a.set(format!("k{i}"), "v").await.unwrap();
        assert_eq!(a.del::<_, i64>(format!("k{i}")).await.unwrap(), 1);
    }
    clock.advance_ms(GRACE.as_millis() as u64 - 1_000);
    let rounds = nodes[0].stats().anti_entropy_rounds;
    wait_until("several GC rounds", || {
        let r: u64 = nodes
            .iter()
            .map(|n| n.stats().anti_entropy_rounds)
            .min()
            .unwrap();
        async move { r >= rounds + 20 }
    })
    .await;
    for n in &nodes {
        assert_eq!(n.stats().tombstones_collected, 0);
        assert_eq!(n.stats().keys_stored, KEYS as u64);
    }
    clock.advance_ms(2_000);
    wait_until("collected once past the grace period", || {
        let counts: Vec<u64> = nodes.iter().map(|n| n.stats().keys_stored).collect();
        async move { counts.iter().all(|&c| c == 0) }
    })
    .await;
    for n in nodes {
        n.shutdown().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn expired_values_are_collected_after_the_grace_period_on_every_owner() {
    let _watchdog = common::watchdog();
    let clock = ManualClock::new(1_700_000_000_000);
    let addrs: Vec<SocketAddr> = (0..3).map(|_| addr()).collect();
    let dirs: Vec<_> = (0..3).map(|_| tempfile::tempdir().unwrap()).collect();
    let mut nodes = Vec::new();
    for (a, d) in addrs.iter().zip(&dirs) {
        nodes.push(start(*a, &addrs, d.path(), &clock).await);
    }
    all_up(addrs[0]).await;
    let mut a = client(addrs[0]).await;
    // Expiring keys, one of them first written without a TTL (the expired version then
    // superseded a live one), and a key that never expires.
    let _: () = a.set("t0", "first, no ttl").await.unwrap();
    for i in 0..KEYS {
        let _: () = redis::cmd("SET")
            .arg(format!("t{i}"))
            .arg("v")
            .arg("PX")
            .arg(1_000)
            .query_async(&mut a)
            .await
            .unwrap();
    }
    let _: () = a.set("kept", "live").await.unwrap();
    wait_until("every replica holds every key", || {
        let counts: Vec<u64> = nodes.iter().map(|n| n.stats().keys_stored).collect();
        async move { counts.iter().all(|&c| c == KEYS as u64 + 1) }
    })
    .await;

    // Expired: absent to readers at once, but kept on disk through the grace period.
    clock.advance_ms(1_001);
    assert_eq!(a.get::<_, Option<String>>("t0").await.unwrap(), None);
    assert_eq!(a.exists::<_, i64>("t1").await.unwrap(), 0);
    let rounds = nodes[0].stats().anti_entropy_rounds;
    wait_until("several GC rounds", || {
        let r: u64 = nodes
            .iter()
            .map(|n| n.stats().anti_entropy_rounds)
            .min()
            .unwrap();
        async move { r >= rounds + 20 }
    })
    .await;
    for n in &nodes {
        assert_eq!(
            n.stats().keys_stored,
            KEYS as u64 + 1,
            "kept within the grace"
        );
    }

    // Past the grace period every owner drops them; the live key stays.
    clock.advance_ms(GRACE.as_millis() as u64);
    wait_until("expired values collected on every owner", || {
        let counts: Vec<u64> = nodes.iter().map(|n| n.stats().keys_stored).collect();
        async move { counts.iter().all(|&c| c == 1) }
    })
    .await;
    for at in &addrs {
        let mut c = client(at).await;
        assert_eq!(
            c.get::<_, Option<String>>("t0").await.unwrap(),
            None,
            "{at}"
        );
        assert_eq!(sibling_count(&mut c, "t0").await, 0, "{at}");
        assert_eq!(c.get::<_, String>("kept").await.unwrap(), "live");
    }
    for n in nodes {
        n.shutdown().await;
    }
}

/// Partition numbers `node` owns according to `DHT.RING` asked at `at`.
async fn owned(at: SocketAddr, node: &str) -> BTreeSet<u16> {
    let rows: Vec<Vec<redis::Value>> = redis::cmd("DHT.RING")
        .query_async(&mut client(at).await)
        .await
        .unwrap();
    rows.into_iter()
        .filter_map(|r| {
            let p: u16 = redis::from_redis_value(r[0].clone()).ok()?;
            let owners: Vec<String> = r[1..]
                .iter()
                .map(|v| redis::from_redis_value::<String>(v.clone()).unwrap())
                .collect();
            owners.iter().any(|o| o == node).then_some(p)
        })
        .collect()
}

/// Partitions (of `0..256`) of which `at` stores at least one key.
async fn stored_partitions(at: SocketAddr) -> BTreeSet<u16> {
    let mut c = client(at).await;
    let mut out = BTreeSet::new();
    for p in 0..256u16 {
        let dump: Vec<Vec<u8>> = redis::cmd("DHT.R.DUMP")
            .arg(p)
            .query_async(&mut c)
            .await
            .unwrap();
        if !dump.is_empty() {
            out.insert(p);
        }
    }
    out
}

async fn slow_client(addr: SocketAddr) -> MultiplexedConnection {
    let c = redis::Client::open(format!("redis://{addr}/")).unwrap();
    let cfg = redis::AsyncConnectionConfig::new()
        .set_connection_timeout(Some(Duration::from_secs(5)))
        .set_response_timeout(Some(Duration::from_secs(60)));
    c.get_multiplexed_async_connection_with_config(&cfg)
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn after_a_join_and_a_leave_no_node_keeps_keys_of_partitions_it_lost() {
    let _watchdog = common::watchdog();
    let clock = ManualClock::new(1_700_000_000_000);
    let addrs: Vec<SocketAddr> = (0..3).map(|_| addr()).collect();
    let dirs: Vec<_> = (0..4).map(|_| tempfile::tempdir().unwrap()).collect();
    let mut nodes = Vec::new();
    for (a, d) in addrs.iter().zip(&dirs) {
        nodes.push(start(*a, &addrs, d.path(), &clock).await);
    }
    all_up(addrs[0]).await;
    let mut a = client(addrs[0]).await;
    let keys = 600;
    for i in 0..keys {
        let _: () = a.set(format!("k{i}"), i).await.unwrap();
    }
    // Three nodes at N = 3: every node owns (and stores) every partition with a key.
    let fourth = addr();
    nodes.push(start(fourth, &addrs[..1], dirs[3].path(), &clock).await);
    let all: Vec<SocketAddr> = addrs.iter().copied().chain([fourth]).collect();
    for at in &all {
        wait_until("no copies of lost partitions after the join", || async {
            let mine = owned(all[0], &at.to_string()).await;
            mine.len() < 256 && stored_partitions(*at).await.is_subset(&mine)
        })
        .await;
    }
    let dropped: u64 = nodes.iter().map(|n| n.stats().old_copies_dropped).sum();
    assert!(dropped > 0, "old owners dropped nothing");
    for at in &all {
        let mut c = client(at).await;
        for i in (0..keys).step_by(7) {
            assert_eq!(c.get::<_, i64>(format!("k{i}")).await.unwrap(), i);
        }
    }

    // One of the original nodes leaves: it ends up holding nothing at all.
    let leaver = addrs[1];
    let reply: String = redis::cmd("DHT.LEAVE")
        .query_async(&mut slow_client(leaver).await)
        .await
        .unwrap();
    assert!(reply.contains("partitions_moved="), "{reply}");
    wait_until("the leaver holds no keys", || {
        let n = nodes[1].stats().keys_stored;
        async move { n == 0 }
    })
    .await;
    let stay: Vec<SocketAddr> = all.iter().copied().filter(|a| *a != leaver).collect();
    nodes.remove(1).shutdown().await;
    for at in &stay {
        wait_until("no copies of lost partitions after the leave", || async {
            let mine = owned(stay[0], &at.to_string()).await;
            stored_partitions(*at).await.is_subset(&mine)
        })
        .await;
    }
    for at in &stay {
        let mut c = client(at).await;
        for i in 0..keys {
            assert_eq!(c.get::<_, i64>(format!("k{i}")).await.unwrap(), i, "k{i}");
        }
    }
    for n in nodes {
        n.shutdown().await;
    }
}

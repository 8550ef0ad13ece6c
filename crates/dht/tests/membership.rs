//! Membership on loopback with the `redis` crate: a 4th node joins under write load and a
//! node leaves under write load — every acknowledged write is readable afterwards (lost =
//! 0) and `DHT.NODES` / `DHT.RING` show the change; gossip marks a stopped node down and
//! a restarted one up; sloppy quorum acknowledges `ALL` writes with an owner down and
//! hands the hints over when it returns. Every wait is bounded.

mod common;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use common::{client, free_port};
use keel_dht::{Node, NodeHandle};
use redis::AsyncCommands;
use redis::aio::MultiplexedConnection;

fn addr() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], free_port()))
}

async fn start(addr: SocketAddr, seeds: &[SocketAddr], dir: &std::path::Path) -> NodeHandle {
    Node::builder()
        .listen(addr)
        .seeds(seeds.iter().map(ToString::to_string))
        .data_dir(dir)
        // Generous against a loaded CI box: a peer call that merely ran slow must not mark
        // a live peer down and fail the partition stream of a join or leave.
        .rpc_timeout(Duration::from_millis(2_000))
        .retry_after(Duration::from_millis(300))
        .gossip_interval(Duration::from_millis(50))
        .fail_after(Duration::from_millis(3_000))
        .anti_entropy_interval(Duration::from_secs(3600))
        .build()
        .unwrap()
        .start()
        .await
        .unwrap()
}

async fn nodes_view(c: &mut MultiplexedConnection) -> Vec<(String, String)> {
    redis::cmd("DHT.NODES").query_async(c).await.unwrap()
}

async fn ring_members(c: &mut MultiplexedConnection) -> std::collections::BTreeSet<String> {
    let rows: Vec<Vec<redis::Value>> = redis::cmd("DHT.RING").query_async(c).await.unwrap();
    rows.into_iter()
        .flat_map(|r| r.into_iter().skip(1))
        .map(|v| redis::from_redis_value::<String>(v).unwrap())
        .collect()
}

/// Writers that SET distinct keys through every given node until stopped; returns the
/// acknowledged `key → value`s and the count of failed writes.
struct Load {
    stop: Arc<AtomicBool>,
    tasks: Vec<tokio::task::JoinHandle<(BTreeMap<String, String>, u64)>>,
}

impl Load {
    async fn start(targets: &[SocketAddr]) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let mut tasks = Vec::new();
        for (w, t) in targets.iter().enumerate() {
            let mut c = client(t).await;
            let stop = Arc::clone(&stop);
            tasks.push(tokio::spawn(async move {
                let mut acked = BTreeMap::new();
                let mut failed = 0;
                let mut i = 0u64;
                while !stop.load(Ordering::Relaxed) {
                    let (k, v) = (format!("w{w}:k{i}"), format!("v{i}"));
                    match c.set::<_, _, ()>(&k, &v).await {
                        Ok(()) => {
                            acked.insert(k, v);
                        }
                        Err(e) => {
                            if failed == 0 {
                                eprintln!("first failed write through {w}: {e}");
                            }
                            failed += 1;
                        }
                    }
                    i += 1;
                }
                (acked, failed)
            }));
        }
        Self { stop, tasks }
    }

    async fn finish(self) -> (BTreeMap<String, String>, u64) {
        self.stop.store(true, Ordering::Relaxed);
        let mut all = BTreeMap::new();
        let mut failed = 0;
        for t in self.tasks {
            let (a, f) = tokio::time::timeout(Duration::from_secs(30), t)
                .await
                .expect("writer did not stop")
                .unwrap();
            all.extend(a);
            failed += f;
        }
        (all, failed)
    }
}

/// Every acknowledged key read back through `at` (a quorum read); returns how many are
/// missing or wrong.
async fn lost(at: SocketAddr, acked: &BTreeMap<String, String>) -> usize {
    let mut c = client(at).await;
    let mut lost = 0;
    for chunk in acked.iter().collect::<Vec<_>>().chunks(200) {
        let keys: Vec<&String> = chunk.iter().map(|(k, _)| *k).collect();
        let got: Vec<Option<String>> = redis::cmd("MGET")
            .arg(&keys)
            .query_async(&mut c)
            .await
            .unwrap();
        lost += chunk
            .iter()
            .zip(got)
            .filter(|((_, v), g)| g.as_deref() != Some(v.as_str()))
            .count();
    }
    lost
}

async fn wait_until<F, Fut>(what: &str, mut f: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    while !f().await {
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting: {what}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Start-up order leaves early peer calls refused (down for `retry_after`): waits until
/// `at` sees every node up.
async fn all_up(at: SocketAddr) {
    wait_until("all up", || async {
        nodes_view(&mut client(at).await)
            .await
            .iter()
            .all(|(_, s)| s == "up" || s == "self")
    })
    .await;
}

/// A connection for commands that stream partitions (bounded at 60 s).
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
async fn a_fourth_node_joins_under_write_load_and_nothing_acknowledged_is_lost() {
    let _watchdog = common::watchdog();
    let addrs: Vec<SocketAddr> = (0..3).map(|_| addr()).collect();
    let dirs: Vec<_> = (0..4).map(|_| tempfile::tempdir().unwrap()).collect();
    let mut nodes = Vec::new();
    for (a, d) in addrs.iter().zip(&dirs) {
        nodes.push(start(*a, &addrs, d.path()).await);
    }
    all_up(addrs[0]).await;
    let load = Load::start(&addrs).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let fourth = addr();
    // `--seed` with one member: the node joins (partitions streamed before it owns them).
    nodes.push(start(fourth, &addrs[..1], dirs[3].path()).await);
    tokio::time::sleep(Duration::from_millis(300)).await;
    let (acked, failed) = load.finish().await;
    assert!(
        acked.len() > 100,
        "too few writes to mean anything: {}",
        acked.len()
    );

    let mut c = client(addrs[1]).await;
    wait_until("every node lists 4 members", || {
        let addrs = addrs.clone();
        async move {
            for a in &addrs {
                if nodes_view(&mut client(a).await).await.len() != 4 {
                    return false;
                }
            }
            true
        }
    })
    .await;
    assert!(ring_members(&mut c).await.contains(&fourth.to_string()));
    let moved = nodes[3].stats().partitions_moved;
    assert!(moved > 0, "the joiner streamed no partitions");
    // Read through every node, the new one included, and with the old owners gone quiet:
    // the new owner must hold its partitions.
    for a in addrs.iter().chain([&fourth]) {
        assert_eq!(
            lost(*a, &acked).await,
            0,
            "acknowledged writes lost (read at {a})"
        );
    }
    println!(
        "join under load: acknowledged={} failed={failed} partitions_moved={moved} lost=0",
        acked.len()
    );
    for n in nodes {
        n.shutdown().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_leaves_under_write_load_and_nothing_acknowledged_is_lost() {
    let _watchdog = common::watchdog();
    let addrs: Vec<SocketAddr> = (0..4).map(|_| addr()).collect();
    let dirs: Vec<_> = (0..4).map(|_| tempfile::tempdir().unwrap()).collect();
    let mut nodes = Vec::new();
    for (a, d) in addrs.iter().zip(&dirs) {
        nodes.push(start(*a, &addrs, d.path()).await);
    }
    all_up(addrs[0]).await;
    let stay = &addrs[..3];
    let leaver = addrs[3];
    let load = Load::start(&addrs).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let reply: String = redis::cmd("DHT.LEAVE")
        .query_async(&mut slow_client(leaver).await)
        .await
        .unwrap();
    assert!(reply.contains("partitions_moved="), "{reply}");
    tokio::time::sleep(Duration::from_millis(300)).await;
    let (acked, failed) = load.finish().await;
    assert!(acked.len() > 100, "too few writes: {}", acked.len());

    wait_until("the remaining nodes list 3 members", || {
        let stay = stay.to_vec();
        async move {
            for a in &stay {
                if nodes_view(&mut client(a).await).await.len() != 3 {
                    return false;
                }
            }
            true
        }
    })
    .await;
    let mut c = client(addrs[0]).await;
    assert!(!ring_members(&mut c).await.contains(&leaver.to_string()));
    // The leaver is gone for good: its data must live on the others.
    nodes.pop().unwrap().shutdown().await;
    for a in stay {
        assert_eq!(
            lost(*a, &acked).await,
            0,
            "acknowledged writes lost (read at {a})"
        );
    }
    println!(
        "leave under load: acknowledged={} failed={failed} lost=0",
        acked.len()
    );
    for n in nodes {
        n.shutdown().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gossip_marks_a_stopped_node_down_and_a_restarted_one_up() {
    let _watchdog = common::watchdog();
    let addrs: Vec<SocketAddr> = (0..3).map(|_| addr()).collect();
    let dirs: Vec<_> = (0..3).map(|_| tempfile::tempdir().unwrap()).collect();
    let mut nodes = Vec::new();
    for (a, d) in addrs.iter().zip(&dirs) {
        nodes.push(start(*a, &addrs, d.path()).await);
    }
    let victim = addrs[2].to_string();
    let state = |a: SocketAddr, of: String| async move {
        nodes_view(&mut client(a).await)
            .await
            .into_iter()
            .find(|(n, _)| *n == of)
            .map(|(_, s)| s)
    };
    wait_until("all up", || async {
        state(addrs[0], victim.clone()).await.as_deref() == Some("up")
    })
    .await;
    nodes.pop().unwrap().shutdown().await;
    // Node 1 never calls the victim itself here: it learns from silence in gossip.
    wait_until("victim down on both", || async {
        state(addrs[0], victim.clone()).await.as_deref() == Some("down")
            && state(addrs[1], victim.clone()).await.as_deref() == Some("down")
    })
    .await;
    nodes.push(start(addrs[2], &addrs, dirs[2].path()).await);
    wait_until("victim up again", || async {
        state(addrs[0], victim.clone()).await.as_deref() == Some("up")
            && state(addrs[1], victim.clone()).await.as_deref() == Some("up")
    })
    .await;
    for n in nodes {
        n.shutdown().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sloppy_quorum_acknowledges_writes_on_a_fallback_and_hands_them_over() {
    let _watchdog = common::watchdog();
    let addrs: Vec<SocketAddr> = (0..4).map(|_| addr()).collect();
    let dirs: Vec<_> = (0..4).map(|_| tempfile::tempdir().unwrap()).collect();
    let mut nodes = Vec::new();
    for (a, d) in addrs.iter().zip(&dirs) {
        nodes.push(start(*a, &addrs, d.path()).await);
    }
    let down = addrs[3];
    all_up(addrs[0]).await;
    nodes.pop().unwrap().shutdown().await;
    let mut c = client(addrs[0]).await;
    // W = N = 3: without sloppy quorum, every key the down node owns would fail.
    let _: String = redis::cmd("DHT.CONSISTENCY")
        .arg("ALL")
        .query_async(&mut c)
        .await
        .unwrap();
    let mut owned_by_down = 0;
    for i in 0..200 {
        let k = format!("s{i}");
        let owners: (i64, Vec<String>) = redis::cmd("DHT.OWNERS")
            .arg(&k)
            .query_async(&mut c)
            .await
            .unwrap();
        owned_by_down += usize::from(owners.1.contains(&down.to_string()));
        if let Err(e) = c.set::<_, _, ()>(&k, i).await {
            let stats: Vec<_> = nodes.iter().map(|n| n.stats()).collect();
            panic!("W=3 write {k} (owners {owners:?}): {e}; {stats:#?}");
        }
    }
    assert!(owned_by_down > 0);
    let sloppy: u64 = nodes.iter().map(|n| n.stats().sloppy_hints).sum();
    assert!(sloppy >= owned_by_down as u64, "{sloppy} < {owned_by_down}");
    // The owner returns; fallbacks hand their hints over; R = 3 reads see every write.
    nodes.push(start(down, &addrs, dirs[3].path()).await);
    wait_until("hints delivered", || {
        let pending: u64 = nodes.iter().map(|n| n.stats().hints_pending).sum();
        async move { pending == 0 }
    })
    .await;
    let mut on_down = client(down).await;
    for i in 0..200 {
        let k = format!("s{i}");
        let owners: (i64, Vec<String>) = redis::cmd("DHT.OWNERS")
            .arg(&k)
            .query_async(&mut c)
            .await
            .unwrap();
        if owners.1.contains(&down.to_string()) {
            // Its own replica, read with R = 1 there (this node first).
            let _: String = redis::cmd("DHT.CONSISTENCY")
                .arg("ONE")
                .query_async(&mut on_down)
                .await
                .unwrap();
            let v: Option<i64> = on_down.get(&k).await.unwrap();
            assert_eq!(v, Some(i), "{k} not handed to the returning owner");
        }
    }
    for n in nodes {
        n.shutdown().await;
    }
}

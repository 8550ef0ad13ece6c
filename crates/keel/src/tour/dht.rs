//! Tour scenario for `keel-dht`: a 3-node cluster (N=3, R=2, W=2) written through the
//! `redis` crate, a node stopped under load, restarted on its own disk, and hinted handoff
//! plus Merkle anti-entropy bringing its replica back (divergent keys over time, to 0).
//!
//! Parts: write through a Redis client, a node down under load, restart and converge.
//! They share the running cluster and every acknowledged write ([`Shared`]).

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use keel_dht::{Node, NodeHandle, SiblingSet};
use parking_lot::Mutex;
use redis::aio::MultiplexedConnection;

use super::{Chart, SummaryRow, SystemReport, Tour, latency_histogram};
use crate::report::charts::{Series, line_chart};

/// Concurrent writers (each its own task on one multiplexed connection).
const WRITERS: usize = 32;
const WAIT: Duration = Duration::from_secs(60);

pub(crate) fn run(tour: &Tour) -> anyhow::Result<SystemReport> {
    let mut report = SystemReport::for_system(
        "dht",
        "Three keel-dht nodes on loopback (N=3, R=2, W=2, 256 partitions, fsync on every \
         replica) take writes from a Redis client. One node is stopped while writes and reads \
         go on, then restarted on its own disk: hinted handoff and Merkle anti-entropy bring \
         its replica back. Then a 4th node joins through one seed while writes go on: the \
         partitions it will own are streamed to it before ownership switches.",
    );
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    let dir = std::env::temp_dir().join(format!("keel-tour-dht-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let mut shared = Shared {
        keys: tour.size(2_000, 100_000),
        addrs: Vec::new(),
        dirs: (0..3).map(|i| dir.join(format!("node{i}"))).collect(),
        nodes: Vec::new(),
        acked: BTreeMap::new(),
        rt,
    };
    let result = tour.run_parts(
        &mut report,
        &mut shared,
        &[
            ("write through a Redis client", write_phase),
            ("a node down under load", node_down),
            ("restart and converge", restart_and_converge),
            ("a 4th node joins under load", add_fourth_node),
        ],
    );
    for node in std::mem::take(&mut shared.nodes).into_iter().flatten() {
        shared.rt.block_on(node.shutdown());
    }
    let _ = std::fs::remove_dir_all(&dir);
    result?;
    Ok(report)
}

/// The running cluster and what it acknowledged.
struct Shared {
    keys: u64,
    addrs: Vec<SocketAddr>,
    dirs: Vec<PathBuf>,
    nodes: Vec<Option<NodeHandle>>,
    /// Key → the value of its last acknowledged write.
    acked: BTreeMap<String, String>,
    rt: tokio::runtime::Runtime,
}

fn node_builder(shared: &Shared, i: usize) -> keel_dht::NodeBuilder {
    Node::builder()
        .listen(shared.addrs[i])
        .seeds(shared.addrs.iter().map(ToString::to_string))
        .data_dir(&shared.dirs[i])
        .replication(3, 2, 2)
        .rpc_timeout(Duration::from_millis(500))
        .anti_entropy_interval(Duration::from_millis(100))
}

/// Starts node `i`, retrying while its previous incarnation still holds the store open.
fn start_node(shared: &Shared, i: usize) -> anyhow::Result<NodeHandle> {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        match shared.rt.block_on(node_builder(shared, i).build()?.start()) {
            Ok(h) => return Ok(h),
            Err(e) if Instant::now() < deadline => {
                let _ = e;
                std::thread::sleep(Duration::from_millis(50));
            }
            Err(e) => return Err(e.into()),
        }
    }
}

async fn connect(addr: SocketAddr) -> anyhow::Result<MultiplexedConnection> {
    let client = redis::Client::open(format!("redis://{addr}/"))?;
    let cfg = redis::AsyncConnectionConfig::new()
        .set_connection_timeout(Some(Duration::from_secs(5)))
        .set_response_timeout(Some(Duration::from_secs(10)));
    Ok(client
        .get_multiplexed_async_connection_with_config(&cfg)
        .await?)
}

/// Writes keys `from..to` through node 0 with [`WRITERS`] concurrent tasks; returns
/// (acknowledged, failed, elapsed, latency).
fn write_keys(
    shared: &mut Shared,
    from: u64,
    to: u64,
    round: &str,
) -> anyhow::Result<(u64, u64, Duration, hdrhistogram::Histogram<u64>)> {
    let addr = shared.addrs[0];
    let start = Instant::now();
    let (acked, failed, hist) =
        shared
            .rt
            .block_on(write_range(addr, from, to, round.to_owned()))?;
    let elapsed = start.elapsed();
    let n = acked.len() as u64;
    shared.acked.extend(acked);
    Ok((n, failed, elapsed, hist))
}

/// The writers of [`write_keys`]: acknowledged `(key, value)`s, failures, latencies.
async fn write_range(
    addr: SocketAddr,
    from: u64,
    to: u64,
    round: String,
) -> anyhow::Result<(Vec<(String, String)>, u64, hdrhistogram::Histogram<u64>)> {
    let acked = Arc::new(Mutex::new(Vec::new()));
    let hist = Arc::new(Mutex::new(latency_histogram()));
    let failed = Arc::new(std::sync::atomic::AtomicU64::new(0));
    let conn = connect(addr).await?;
    let mut tasks = Vec::new();
    for w in 0..WRITERS as u64 {
        let mut conn = conn.clone();
        let (acked, hist, failed, round) =
            (acked.clone(), hist.clone(), failed.clone(), round.clone());
        tasks.push(tokio::spawn(async move {
            let mut i = from + w;
            while i < to {
                let (key, value) = (format!("user:{i}"), format!("{round}:{i}"));
                let t = Instant::now();
                let r: redis::RedisResult<()> = redis::cmd("SET")
                    .arg(&key)
                    .arg(&value)
                    .query_async(&mut conn)
                    .await;
                let ns = t.elapsed().as_nanos().clamp(1, u128::from(u64::MAX)) as u64;
                match r {
                    Ok(()) => {
                        let _ = hist.lock().record(ns);
                        acked.lock().push((key, value));
                    }
                    Err(_) => {
                        failed.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    }
                }
                i += WRITERS as u64;
            }
        }));
    }
    for t in tasks {
        tokio::time::timeout(WAIT * 5, t).await??;
    }
    let acked = std::mem::take(&mut *acked.lock());
    let hist = hist.lock().clone();
    Ok((
        acked,
        failed.load(std::sync::atomic::Ordering::Relaxed),
        hist,
    ))
}

fn write_phase(tour: &Tour, shared: &mut Shared, report: &mut SystemReport) -> anyhow::Result<()> {
    shared.addrs = (0..3)
        .map(|_| -> anyhow::Result<SocketAddr> {
            Ok(std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?)
        })
        .collect::<anyhow::Result<_>>()?;
    for i in 0..3 {
        let node = start_node(shared, i)?;
        shared.nodes.push(Some(node));
    }
    let spinner = tour.spinner("dht: writing");
    let keys = shared.keys;
    let (ok, failed, elapsed, hist) = write_keys(shared, 0, keys, "v1")?;
    spinner.finish_and_clear();
    report.summary.push(SummaryRow::from_histogram(
        "SET, 3 nodes up (W=2)",
        "writes/s",
        ok,
        elapsed,
        &hist,
    ));
    report.check(
        "every write acknowledged with 3 nodes up",
        failed == 0 && ok == keys,
        format!("{ok} acknowledged, {failed} failed"),
    );
    Ok(())
}

fn node_down(tour: &Tour, shared: &mut Shared, report: &mut SystemReport) -> anyhow::Result<()> {
    let node = shared.nodes[2].take();
    if let Some(n) = node {
        shared.rt.block_on(n.shutdown());
    }
    let spinner = tour.spinner("dht: one node down");
    let keys = shared.keys;
    let (ok, failed, elapsed, hist) = write_keys(shared, keys / 2, keys + keys / 2, "v2")?;
    // Reads at R=2 while the node is down.
    let addr = shared.addrs[1];
    let sample: Vec<(String, String)> = shared
        .acked
        .iter()
        .step_by(10)
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    let (read_ok, read_wrong) = shared.rt.block_on(async {
        let mut conn = connect(addr).await?;
        let (mut ok, mut wrong) = (0u64, 0u64);
        for (k, v) in &sample {
            let got: Option<String> = redis::cmd("GET").arg(k).query_async(&mut conn).await?;
            if got.as_deref() == Some(v.as_str()) {
                ok += 1
            } else {
                wrong += 1
            }
        }
        anyhow::Ok((ok, wrong))
    })?;
    spinner.finish_and_clear();
    report.summary.push(SummaryRow::from_histogram(
        "SET, 1 of 3 nodes down (W=2)",
        "writes/s",
        ok,
        elapsed,
        &hist,
    ));
    report.check(
        "writes at W=2 succeed with a node down",
        failed == 0,
        format!("{ok} acknowledged, {failed} failed"),
    );
    report.check(
        "reads at R=2 see the latest acknowledged write",
        read_wrong == 0,
        format!("{read_ok} of {} sampled keys", sample.len()),
    );
    Ok(())
}

/// Keys whose copy on node 2 is not the last acknowledged value.
async fn divergent(
    conn: &mut MultiplexedConnection,
    acked: &BTreeMap<String, String>,
) -> anyhow::Result<u64> {
    let mut n = 0;
    let entries: Vec<_> = acked.iter().collect();
    for chunk in entries.chunks(1000) {
        let mut pipe = redis::pipe();
        for (k, _) in chunk {
            pipe.cmd("DHT.R.GET").arg(k.as_str());
        }
        let raws: Vec<Vec<u8>> = pipe.query_async(conn).await?;
        for ((_, v), raw) in chunk.iter().zip(raws) {
            let same = SiblingSet::decode(&raw)
                .ok()
                .and_then(|s| s.current(0).and_then(|c| c.value.clone()))
                .is_some_and(|got| got == v.as_bytes());
            n += u64::from(!same);
        }
    }
    Ok(n)
}

fn restart_and_converge(
    tour: &Tour,
    shared: &mut Shared,
    report: &mut SystemReport,
) -> anyhow::Result<()> {
    let node = start_node(shared, 2)?;
    shared.nodes[2] = Some(node);
    let spinner = tour.spinner("dht: converging");
    let addr = shared.addrs[2];
    let start = Instant::now();
    let mut points = Vec::new();
    let last = shared.rt.block_on(async {
        let mut conn = connect(addr).await?;
        loop {
            let d = divergent(&mut conn, &shared.acked).await?;
            points.push((start.elapsed().as_secs_f64() * 1000.0, d as f64));
            if d == 0 || start.elapsed() > WAIT {
                return anyhow::Ok(d);
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    })?;
    spinner.finish_and_clear();
    report.check(
        "restarted replica converged",
        last == 0,
        format!(
            "{last} divergent keys after {:.1} s",
            start.elapsed().as_secs_f64()
        ),
    );
    // Every acknowledged write, read back through every node.
    let mut lost = 0u64;
    for i in 0..3 {
        let addr = shared.addrs[i];
        lost += shared.rt.block_on(async {
            let mut conn = connect(addr).await?;
            let mut lost = 0u64;
            let entries: Vec<_> = shared.acked.iter().collect();
            for chunk in entries.chunks(1000) {
                let mut pipe = redis::pipe();
                for (k, _) in chunk {
                    pipe.cmd("GET").arg(k.as_str());
                }
                let got: Vec<Option<String>> = pipe.query_async(&mut conn).await?;
                lost += chunk
                    .iter()
                    .zip(got)
                    .filter(|((_, v), g)| g.as_deref() != Some(v.as_str()))
                    .count() as u64;
            }
            anyhow::Ok(lost)
        })?;
    }
    report.check(
        "0 acknowledged writes lost",
        lost == 0,
        format!(
            "{} acknowledged keys read through 3 nodes, {lost} wrong or missing",
            shared.acked.len()
        ),
    );
    let stats: Vec<_> = shared.nodes.iter().flatten().map(|n| n.stats()).collect();
    let delivered: u64 = stats.iter().map(|s| s.hints_delivered).sum();
    let ae: u64 = stats.iter().map(|s| s.anti_entropy_keys).sum();
    report.notes.push(format!(
        "hints delivered: {delivered}; keys exchanged by anti-entropy: {ae}"
    ));
    report.charts.push(Chart::new(
        "Divergent keys on the restarted node",
        "Keys whose copy on the restarted node is not the last acknowledged value, sampled every 100 ms after the restart: hinted handoff and anti-entropy bring it to 0.",
        line_chart("Divergent keys after restart", "time since restart (ms)", "divergent keys", &[Series::new("node 3", points)])?,
    ));
    Ok(())
}

/// Replicas of partitions each node holds, from `DHT.RING` at `addr`.
async fn ring_counts(addr: SocketAddr) -> anyhow::Result<BTreeMap<String, usize>> {
    let mut conn = connect(addr).await?;
    let rows: Vec<Vec<redis::Value>> = redis::cmd("DHT.RING").query_async(&mut conn).await?;
    let mut counts = BTreeMap::new();
    for row in rows {
        for v in row.into_iter().skip(1) {
            *counts
                .entry(redis::from_redis_value::<String>(v)?)
                .or_insert(0) += 1;
        }
    }
    Ok(counts)
}

fn show_counts(counts: &BTreeMap<String, usize>) -> String {
    counts
        .iter()
        .map(|(n, c)| format!("{n}: {c}"))
        .collect::<Vec<_>>()
        .join(", ")
}

fn add_fourth_node(
    tour: &Tour,
    shared: &mut Shared,
    report: &mut SystemReport,
) -> anyhow::Result<()> {
    let addr0 = shared.addrs[0];
    let before = shared.rt.block_on(ring_counts(addr0))?;
    let addr = std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?;
    let dir = shared.dirs[0].with_file_name("node3");
    let builder = Node::builder()
        .listen(addr)
        .seeds([addr0.to_string()])
        .data_dir(&dir)
        .replication(3, 2, 2)
        .rpc_timeout(Duration::from_millis(500))
        .anti_entropy_interval(Duration::from_millis(100));
    let spinner = tour.spinner("dht: a 4th node joins");
    let keys = shared.keys;
    let start = Instant::now();
    let (joined, writes, join_time) = shared.rt.block_on(async {
        let writers = tokio::spawn(write_range(addr0, keys / 2, keys * 2, "v3".to_owned()));
        // Let the writers get going, then join through one seed while they write.
        tokio::time::sleep(Duration::from_millis(200)).await;
        let t = Instant::now();
        let joined = builder.build()?.start().await?;
        let join_time = t.elapsed();
        let writes = writers.await??;
        anyhow::Ok((joined, writes, join_time))
    })?;
    let elapsed = start.elapsed();
    spinner.finish_and_clear();
    let (acked, failed, hist) = writes;
    let ok = acked.len() as u64;
    shared.acked.extend(acked);
    let moved = joined.stats().partitions_moved;
    shared.addrs.push(addr);
    shared.dirs.push(dir);
    shared.nodes.push(Some(joined));
    let after = shared.rt.block_on(ring_counts(addr0))?;
    report.summary.push(SummaryRow::from_histogram(
        "SET while a 4th node joins (W=2)",
        "writes/s",
        ok,
        elapsed,
        &hist,
    ));
    report.check(
        "writes go on while a node joins",
        failed == 0,
        format!("{ok} acknowledged, {failed} failed"),
    );
    report.check(
        "partitions moved to the new node",
        moved > 0 && after.get(&addr.to_string()).copied().unwrap_or(0) > 0,
        format!(
            "{moved} partition replicas streamed in {:.1} s; replicas per node before: {}; after: {}",
            join_time.as_secs_f64(),
            show_counts(&before),
            show_counts(&after)
        ),
    );
    let mut lost = 0u64;
    for &node in &shared.addrs {
        lost += shared.rt.block_on(async {
            let mut conn = connect(node).await?;
            let mut lost = 0u64;
            let entries: Vec<_> = shared.acked.iter().collect();
            for chunk in entries.chunks(1000) {
                let mut pipe = redis::pipe();
                for (k, _) in chunk {
                    pipe.cmd("GET").arg(k.as_str());
                }
                let got: Vec<Option<String>> = pipe.query_async(&mut conn).await?;
                lost += chunk
                    .iter()
                    .zip(got)
                    .filter(|((_, v), g)| g.as_deref() != Some(v.as_str()))
                    .count() as u64;
            }
            anyhow::Ok(lost)
        })?;
    }
    report.check(
        "0 acknowledged writes lost after the join",
        lost == 0,
        format!(
            "{} acknowledged keys read through 4 nodes after the join, {lost} wrong or missing",
            shared.acked.len()
        ),
    );
    Ok(())
}

//! `keel-bench dht`: `redis-benchmark` against a 3-node Keel cluster and against one real
//! `redis-server`, in the same run.
//!
//! # Workload
//!
//! `redis-benchmark -t set|get -c 50 -r 100000 [-P 16] -n N --csv` (random keys over
//! 100 000, so writes spread over every partition). Each contender's round is one
//! `redis-benchmark` run; the row's ops/s is its reported requests/s and the latency
//! histogram is rebuilt from its reported p50 / p95 / p99 / max (`redis-benchmark` does not
//! expose samples), so p50 and p99 in the table are `redis-benchmark`'s own.
//!
//! - **keel-dht 3 nodes**: three nodes in this process on loopback (N=3, R=2, W=2, 256
//!   partitions), every write fsynced on each replica (redb, group commit); the client talks
//!   to node 1, which forwards each write to its key's coordinator.
//! - **keel-dht 3 nodes fsync everysec**: the same with `Fsync::EverySecond` on every
//!   node (writes acknowledged before their fsync; a crashed node loses up to its last
//!   second — see `keel_dht::Fsync`). Compare it with the no-persistence redis-server.
//! - **redis-server appendfsync always** (peer, like for like on durability): a private
//!   server with `appendonly yes` + `appendfsync always`, so it too acknowledges a write
//!   only after an fsync (of its AOF) — the fair pairing for Keel's default, which
//!   acknowledges after W fsyncs.
//! - **redis-server default config** (peer): a private server with Redis's default
//!   persistence — RDB snapshots on its default schedule (`save 3600 1 300 100 60 10000`,
//!   a background fork at most once a minute under this load), no AOF, so a write is
//!   acknowledged from memory. The issue's bar (≥ 0.3× SET and GET against "one real
//!   redis-server") is read against **this** row. Redis does far less work per write (no
//!   replication, no fsync on the request path).
//!
//! Every ratio is printed; for SET only the pairing with equal durability says something
//! about the implementation, the other one about the price of durability.
//!
//! Needs `redis-benchmark` (Debian's redis-tools) and `redis-server`; without them the run
//! is skipped with a note.

use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

use keel_dht::{Fsync, Node, NodeHandle};

use crate::harness::{Contender, Measurement, new_histogram, record};
use crate::{Config, Report};

const CLIENTS: usize = 50;
const KEYSPACE: u32 = 100_000;

/// A scratch directory removed on drop.
struct Scratch(PathBuf);

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn free_port() -> anyhow::Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
}

/// Starts `n` nodes on loopback, each knowing all the others.
fn start_cluster(
    rt: &tokio::runtime::Runtime,
    dir: &std::path::Path,
    n: usize,
    fsync: Fsync,
) -> anyhow::Result<Vec<NodeHandle>> {
    let ports = (0..n)
        .map(|_| free_port())
        .collect::<anyhow::Result<Vec<_>>>()?;
    let addrs: Vec<String> = ports.iter().map(|p| format!("127.0.0.1:{p}")).collect();
    let mut nodes = Vec::new();
    for (i, addr) in addrs.iter().enumerate() {
        let node = Node::builder()
            .listen(addr.parse()?)
            .seeds(addrs.clone())
            .data_dir(dir.join(format!("node{i}")))
            .replication(3, 2, 2)
            .fsync(fsync)
            .build()?;
        nodes.push(rt.block_on(node.start())?);
    }
    Ok(nodes)
}

/// One `redis-benchmark` run, as a [`Measurement`].
fn redis_benchmark(
    bin: &std::path::Path,
    port: u16,
    test: &str,
    pipeline: usize,
    requests: u64,
) -> Measurement {
    let out = Command::new(bin)
        .args([
            "-h",
            "127.0.0.1",
            "-p",
            &port.to_string(),
            "-t",
            test,
            "--csv",
            "-q",
        ])
        .args(["-c", &CLIENTS.to_string(), "-r", &KEYSPACE.to_string()])
        .args(["-P", &pipeline.to_string(), "-n", &requests.to_string()])
        .output();
    let mut m = Measurement::new();
    let Ok(out) = out else { return m };
    let text = String::from_utf8_lossy(&out.stdout);
    // "SET","rps","avg","min","p50","p95","p99","max" (milliseconds)
    let Some(line) = text
        .lines()
        .find(|l| l.starts_with(&format!("\"{}\"", test.to_uppercase())))
    else {
        return m;
    };
    let f: Vec<f64> = line
        .split(',')
        .skip(1)
        .map(|v| v.trim_matches('"').parse().unwrap_or(0.0))
        .collect();
    if f.len() < 7 || f[0] <= 0.0 {
        return m;
    }
    m.ops = requests;
    m.elapsed = Duration::from_secs_f64(requests as f64 / f[0]);
    let mut hist = new_histogram();
    let ms = |v: f64| Duration::from_secs_f64(v / 1000.0);
    for (value, count) in [(f[3], 50), (f[4], 45), (f[5], 4), (f[6], 1)] {
        for _ in 0..count {
            record(&mut hist, ms(value));
        }
    }
    m.latency = hist;
    m
}

/// Runs the DHT benchmarks.
///
/// # Errors
/// When the Keel cluster cannot start (a missing tool is a note, not an error).
pub fn run(cfg: &Config, report: &mut Report) -> anyhow::Result<()> {
    let lookup = keel_testkit::Lookup::find("redis-benchmark", "KEEL_REDIS_BENCHMARK", &[]);
    let Some(bench_bin) = lookup.found.clone() else {
        report.note(format!("dht skipped: {}", lookup.not_found()));
        return Ok(());
    };
    // The harness starts redis-server with `--save ""`; later arguments win, so this
    // restores the default snapshot schedule.
    let redis =
        match keel_testkit::RedisServer::start_with_args(["--save", "3600 1 300 100 60 10000"]) {
            Ok(r) => Some(r),
            Err(e) => {
                report.note(format!("dht: redis-server rows skipped: {e}"));
                None
            }
        };
    let redis_fsync = match keel_testkit::RedisServer::start_with_args([
        "--appendonly",
        "yes",
        "--appendfsync",
        "always",
    ]) {
        Ok(r) => Some(r),
        Err(e) => {
            report.note(format!(
                "dht: redis-server appendfsync-always rows skipped: {e}"
            ));
            None
        }
    };
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    let scratch =
        Scratch(std::env::temp_dir().join(format!("keel-bench-dht-{}", std::process::id())));
    let _ = std::fs::remove_dir_all(&scratch.0);
    let nodes = start_cluster(&rt, &scratch.0.join("always"), 3, Fsync::Always)?;
    let relaxed = start_cluster(&rt, &scratch.0.join("everysec"), 3, Fsync::EverySecond)?;
    let keel_port = nodes[0].addr().port();
    let relaxed_port = relaxed[0].addr().port();
    let requests: u64 = if cfg.quick { 2_000 } else { 20_000 };
    for (test, pipeline) in [("set", 1), ("get", 1), ("set", 16), ("get", 16)] {
        let scenario = format!(
            "{} {CLIENTS} clients{}",
            test.to_uppercase(),
            if pipeline > 1 { " -P 16" } else { "" }
        );
        if !cfg.selected(&scenario) {
            continue;
        }
        let n = requests * pipeline as u64 / 4 + requests;
        let mut contenders = vec![
            Contender::keel("keel-dht 3 nodes N3 R2 W2", |_, _| {
                redis_benchmark(&bench_bin, keel_port, test, pipeline, n)
            }),
            Contender::keel("keel-dht 3 nodes fsync everysec", |_, _| {
                redis_benchmark(&bench_bin, relaxed_port, test, pipeline, n)
            }),
        ];
        if let Some(r) = &redis_fsync {
            let port = r.port();
            let bin = bench_bin.clone();
            contenders.push(Contender::peer(
                "redis-server appendfsync always",
                move |_, _| redis_benchmark(&bin, port, test, pipeline, n),
            ));
        }
        if let Some(r) = &redis {
            let port = r.port();
            let bin = bench_bin.clone();
            contenders.push(Contender::peer(
                "redis-server default config",
                move |_, _| redis_benchmark(&bin, port, test, pipeline, n),
            ));
        }
        report.compare(cfg, &scenario, CLIENTS, &mut contenders);
    }
    for node in nodes.into_iter().chain(relaxed) {
        rt.block_on(node.shutdown());
    }
    Ok(())
}

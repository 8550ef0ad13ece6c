//! `keel dht node --listen 127.0.0.1:7001 --data DIR [--seed ADDR]...` runs one keel-dht
//! node in the foreground; `keel dht cluster --nodes 3 --base-port 7001 --data DIR` starts
//! a local cluster of node *processes* (this binary re-executed as `keel dht node`), prints
//! their addresses and stops them all on Ctrl-C. Nodes bind 127.0.0.1, never 6379.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Child, Command};
use std::time::{Duration, Instant};

use anyhow::Context as _;
use clap::Subcommand;

/// `keel dht …`
#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    #[command(subcommand)]
    command: DhtCommand,
}

#[derive(Debug, Clone, Copy, clap::Args)]
struct Replication {
    /// Replicas per key (N).
    #[arg(long, default_value_t = 3)]
    n: usize,
    /// Default read quorum (R).
    #[arg(long, default_value_t = 2)]
    r: usize,
    /// Default write quorum (W).
    #[arg(long, default_value_t = 2)]
    w: usize,
}

#[derive(Debug, Subcommand)]
enum DhtCommand {
    /// Run one node (RESP on the listen address) until Ctrl-C.
    Node {
        /// Address to listen on; also the node's name in the cluster.
        #[arg(long, default_value = "127.0.0.1:7001")]
        listen: SocketAddr,
        /// Data directory (redb file).
        #[arg(long)]
        data: PathBuf,
        /// Nodes to contact on start (repeat). A seed whose cluster does not list this
        /// node makes it join that cluster (`--seed` of any one member is enough);
        /// with none reachable, the node starts a cluster of itself and its seeds.
        #[arg(long = "seed")]
        seeds: Vec<String>,
        #[command(flatten)]
        replication: Replication,
    },
    /// Start a local cluster of node processes on consecutive loopback ports.
    Cluster {
        /// Number of nodes.
        #[arg(long, default_value_t = 3)]
        nodes: u16,
        /// Port of the first node; node i listens on base-port + i.
        #[arg(long, default_value_t = 7001)]
        base_port: u16,
        /// Parent data directory (node i uses DIR/node<i>).
        #[arg(long)]
        data: PathBuf,
        #[command(flatten)]
        replication: Replication,
    },
}

pub(crate) fn run(args: Args) -> anyhow::Result<()> {
    match args.command {
        DhtCommand::Node {
            listen,
            data,
            seeds,
            replication,
        } => node(listen, data, seeds, replication),
        DhtCommand::Cluster {
            nodes,
            base_port,
            data,
            replication,
        } => cluster(nodes, base_port, data, replication),
    }
}

fn node(
    listen: SocketAddr,
    data: PathBuf,
    seeds: Vec<String>,
    r: Replication,
) -> anyhow::Result<()> {
    let node = keel_dht::Node::builder()
        .listen(listen)
        .data_dir(data)
        .seeds(seeds)
        .replication(r.n, r.r, r.w)
        .build()?;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    rt.block_on(async {
        let handle = node.start().await?;
        println!(
            "keel-dht node {} listening on {}",
            handle.name(),
            handle.addr()
        );
        tokio::signal::ctrl_c()
            .await
            .context("waiting for Ctrl-C")?;
        handle.shutdown().await;
        anyhow::Ok(())
    })
}

/// Children killed (after a bounded wait) when the cluster command ends for any reason.
struct Children(Vec<Child>);

impl Drop for Children {
    fn drop(&mut self) {
        for c in &mut self.0 {
            // Ask nicely first (SIGINT, as Ctrl-C in a terminal does), then insist.
            let _ = Command::new("kill")
                .arg("-INT")
                .arg(c.id().to_string())
                .status();
        }
        let deadline = Instant::now() + Duration::from_secs(5);
        for c in &mut self.0 {
            while Instant::now() < deadline && matches!(c.try_wait(), Ok(None)) {
                std::thread::sleep(Duration::from_millis(50));
            }
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

fn cluster(nodes: u16, base_port: u16, data: PathBuf, r: Replication) -> anyhow::Result<()> {
    anyhow::ensure!(
        (1..=64).contains(&nodes),
        "--nodes must be between 1 and 64"
    );
    let last = base_port
        .checked_add(nodes - 1)
        .filter(|_| base_port > 0)
        .context("--base-port + --nodes must stay within 1..=65535")?;
    anyhow::ensure!(
        !(base_port..=last).contains(&6379),
        "the port range includes 6379 (Redis's port); pick another --base-port"
    );
    let addrs: Vec<String> = (base_port..=last)
        .map(|p| format!("127.0.0.1:{p}"))
        .collect();
    let exe = std::env::current_exe().context("locating the keel binary")?;
    let mut children = Children(Vec::new());
    for (i, addr) in addrs.iter().enumerate() {
        let mut cmd = Command::new(&exe);
        cmd.args(["dht", "node", "--listen", addr])
            .arg("--data")
            .arg(data.join(format!("node{i}")))
            .args([
                "--n",
                &r.n.to_string(),
                "--r",
                &r.r.to_string(),
                "--w",
                &r.w.to_string(),
            ]);
        for seed in &addrs {
            cmd.args(["--seed", seed]);
        }
        children.0.push(
            cmd.spawn()
                .with_context(|| format!("starting node {addr}"))?,
        );
    }
    println!(
        "keel-dht cluster: {} nodes (N={} R={} W={}); Ctrl-C stops all",
        addrs.len(),
        r.n,
        r.r,
        r.w
    );
    for a in &addrs {
        println!(
            "  redis-cli -h 127.0.0.1 -p {}",
            a.rsplit(':').next().unwrap_or_default()
        );
    }
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    rt.block_on(async {
        loop {
            tokio::select! {
                r = tokio::signal::ctrl_c() => return r.context("waiting for Ctrl-C"),
                () = tokio::time::sleep(Duration::from_millis(500)) => {
                    for (c, addr) in children.0.iter_mut().zip(&addrs) {
                        if let Ok(Some(status)) = c.try_wait() {
                            anyhow::bail!("node {addr} exited ({status}); stopping the cluster");
                        }
                    }
                }
            }
        }
    })
}

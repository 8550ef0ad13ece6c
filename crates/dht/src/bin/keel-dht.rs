//! `keel-dht node --listen ADDR --data DIR [--seed ADDR]...`: runs one node until
//! Ctrl-C or SIGTERM.

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::{Parser, Subcommand};

#[derive(Debug, Parser)]
#[command(
    name = "keel-dht",
    about = "A Dynamo-style key-value node that speaks RESP"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run one node.
    Node {
        /// Address to listen on (loopback by default; never 6379 unless asked).
        #[arg(long, default_value = "127.0.0.1:7001")]
        listen: SocketAddr,
        /// Data directory.
        #[arg(long)]
        data: PathBuf,
        /// Nodes to contact on start (repeat): a seed whose cluster does not list this node
        /// makes it join (partitions streamed to it first); with none reachable, the node
        /// starts a cluster of itself and its seeds.
        #[arg(long = "seed")]
        seeds: Vec<String>,
        /// Replicas per key.
        #[arg(long, default_value_t = 3)]
        n: usize,
        /// Default read quorum.
        #[arg(long, default_value_t = 2)]
        r: usize,
        /// Default write quorum.
        #[arg(long, default_value_t = 2)]
        w: usize,
        /// Fixed partitions.
        #[arg(long, default_value_t = 256)]
        partitions: usize,
        /// When writes reach the disk: `always` (fsync before acknowledging; survives
        /// kill -9) or `everysec` (fsync at most once a second; a crash of this node
        /// loses up to the last second of writes it acknowledged).
        #[arg(long, default_value = "always", value_parser = ["always", "everysec"])]
        fsync: String,
    },
}

/// Ctrl-C (SIGINT) or, on Unix, SIGTERM (what `kill` and service managers send).
async fn wait_for_stop_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        if let Ok(mut term) = signal(SignalKind::terminate()) {
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {}
                _ = term.recv() => {}
            }
            return;
        }
    }
    let _ = tokio::signal::ctrl_c().await;
}

fn main() -> std::process::ExitCode {
    let Command::Node {
        listen,
        data,
        seeds,
        n,
        r,
        w,
        partitions,
        fsync,
    } = Cli::parse().command;
    let fsync = if fsync == "everysec" {
        keel_dht::Fsync::EverySecond
    } else {
        keel_dht::Fsync::Always
    };
    let node = match keel_dht::Node::builder()
        .listen(listen)
        .data_dir(data)
        .seeds(seeds)
        .replication(n, r, w)
        .partitions(partitions)
        .fsync(fsync)
        .build()
    {
        Ok(node) => node,
        Err(e) => {
            eprintln!("keel-dht: {e}");
            return std::process::ExitCode::FAILURE;
        }
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("keel-dht: cannot start runtime: {e}");
            return std::process::ExitCode::FAILURE;
        }
    };
    runtime.block_on(async move {
        let handle = match node.start().await {
            Ok(h) => h,
            Err(e) => {
                let mut msg = e.to_string();
                let mut src = std::error::Error::source(&e);
                while let Some(s) = src {
                    msg.push_str(&format!(": {s}"));
                    src = s.source();
                }
                eprintln!("keel-dht: {msg}");
                return std::process::ExitCode::FAILURE;
            }
        };
        println!(
            "keel-dht node {} listening on {}",
            handle.name(),
            handle.addr()
        );
        wait_for_stop_signal().await;
        handle.shutdown().await;
        std::process::ExitCode::SUCCESS
    })
}

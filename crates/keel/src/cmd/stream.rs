//! `keel stream broker --listen 127.0.0.1:9092 --data DIR`: the Kafka-protocol broker
//! (keel-stream-broker) in the foreground until Ctrl-C.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context as _;
use clap::Subcommand;
use keel_stream::Durability;

/// `keel stream …`
#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    #[command(subcommand)]
    command: StreamCommand,
}

#[derive(Debug, Subcommand)]
enum StreamCommand {
    /// Serve the Kafka protocol over keel-stream's logs (single node; kcat, kafka-python and
    /// librdkafka clients work unchanged).
    Broker {
        /// Address to listen on (127.0.0.1 and not Kafka's 9092 unless asked).
        #[arg(long, default_value = "127.0.0.1:19092")]
        listen: SocketAddr,
        /// Data directory (topics, committed offsets, producer ids).
        #[arg(long)]
        data: PathBuf,
        /// Create unknown topics on first use (off: a typo is an error, not a topic).
        #[arg(long)]
        auto_create_topics: bool,
        /// Partitions of auto-created topics.
        #[arg(long, default_value_t = 1)]
        partitions: u32,
        /// fsync policy of new topics: every-batch, never, or a number of milliseconds.
        #[arg(long, default_value = "every-batch", value_parser = durability)]
        fsync: Durability,
    },
}

fn durability(s: &str) -> Result<Durability, String> {
    match s {
        "every-batch" => Ok(Durability::EveryBatch),
        "never" => Ok(Durability::Never),
        ms => ms
            .parse::<u64>()
            .ok()
            .filter(|&m| m > 0)
            .map(|m| Durability::Interval(Duration::from_millis(m)))
            .ok_or_else(|| "expected every-batch, never or milliseconds > 0".to_string()),
    }
}

pub(crate) fn run(args: Args) -> anyhow::Result<()> {
    let StreamCommand::Broker {
        listen,
        data,
        auto_create_topics,
        partitions,
        fsync,
    } = args.command;
    keel_stream_broker::log_to_stderr();
    let broker = keel_stream_broker::Broker::builder()
        .listen(listen)
        .data_dir(&data)
        .auto_create_topics(auto_create_topics)
        .default_partitions(partitions)
        .durability(fsync)
        .build()
        .with_context(|| format!("opening {}", data.display()))?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async move {
        let handle = broker.start().await?;
        println!(
            "keel stream broker listening on {} (Ctrl-C stops it)",
            handle.local_addr()
        );
        tokio::signal::ctrl_c().await?;
        handle.shutdown().await;
        Ok(())
    })
}

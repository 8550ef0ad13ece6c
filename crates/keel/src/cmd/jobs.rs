//! `keel jobs …`: look at and operate an embedded (redb) job store from the shell — jobs
//! per queue and state, dead jobs grouped by error, retry or delete a queue's dead jobs,
//! pause and resume a queue. The store file has one owner at a time (redb's file lock):
//! run these while no worker process has it open. (`keel jobs dashboard`, the web UI of
//! issue 12, is not built yet.)

use std::path::PathBuf;

use anyhow::Context as _;
use clap::Subcommand;
use keel_jobs::{RedbStore, Store};

/// `keel jobs …`
#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    /// The store file (redb).
    #[arg(long, global = true, default_value = "jobs.redb")]
    store: PathBuf,
    #[command(subcommand)]
    command: JobsCommand,
}

#[derive(Debug, Subcommand)]
enum JobsCommand {
    /// Jobs per queue and state.
    Status,
    /// Dead jobs grouped by their last error.
    Dead {
        /// Only this queue.
        #[arg(long)]
        queue: Option<String>,
    },
    /// Put every dead job of a queue back, with fresh attempts.
    RetryDead {
        /// The queue.
        queue: String,
    },
    /// Delete every dead job of a queue.
    DeleteDead {
        /// The queue.
        queue: String,
    },
    /// Stop handing out a queue's jobs (persisted).
    Pause {
        /// The queue.
        queue: String,
    },
    /// Resume a paused queue.
    Resume {
        /// The queue.
        queue: String,
    },
}

pub(crate) fn run(args: Args) -> anyhow::Result<()> {
    if !args.store.exists() {
        anyhow::bail!("no job store at {}", args.store.display());
    }
    let store = RedbStore::builder()
        .path(&args.store)
        .build()
        .with_context(|| {
            format!(
                "opening {} (is a worker running on it?)",
                args.store.display()
            )
        })?;
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    rt.block_on(async {
        match args.command {
            JobsCommand::Status => {
                println!(
                    "{:<24} {:>10} {:>10} {:>10} {:>10} {:>10}  paused",
                    "queue", "scheduled", "available", "running", "retrying", "dead"
                );
                for (queue, c) in store.counts().await? {
                    println!(
                        "{queue:<24} {:>10} {:>10} {:>10} {:>10} {:>10}  {}",
                        c.scheduled,
                        c.available,
                        c.running,
                        c.retrying,
                        c.dead,
                        if c.paused { "yes" } else { "no" }
                    );
                }
            }
            JobsCommand::Dead { queue } => {
                for g in store.dead_by_error(queue.as_deref()).await? {
                    println!(
                        "{:>8}  {:?}  {}  (latest: job {})",
                        g.count, g.kind, g.message, g.example
                    );
                }
            }
            JobsCommand::RetryDead { queue } => {
                println!(
                    "{} dead jobs of {queue} retried",
                    store.retry_all_dead(&queue).await?
                );
            }
            JobsCommand::DeleteDead { queue } => {
                println!(
                    "{} dead jobs of {queue} deleted",
                    store.delete_all_dead(&queue).await?
                );
            }
            JobsCommand::Pause { queue } => {
                store.pause(&queue).await?;
                println!("{queue} paused");
            }
            JobsCommand::Resume { queue } => {
                store.resume(&queue).await?;
                println!("{queue} resumed");
            }
        }
        anyhow::Ok(())
    })
}

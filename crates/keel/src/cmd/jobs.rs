//! `keel jobs …`: look at and operate a job store from the shell — jobs per queue and
//! state, dead jobs grouped by error, retry or delete a queue's dead jobs, pause and resume a
//! queue — and `keel jobs dashboard`, the web UI (crate `keel-jobs-dashboard`).
//!
//! Every subcommand works on one store: the embedded redb file (`--store PATH`, the
//! default), a Redis store (`--redis URL [--redis-prefix P]`) or a Postgres store
//! (`--postgres URL`). The redb file has one owner at a time (redb's file lock): run these
//! while no worker process has it open. Redis and Postgres stores are shared with running
//! workers.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use anyhow::Context as _;
use clap::Subcommand;
use keel_jobs::{PostgresStore, RedbStore, RedisStore, Store};

/// `keel jobs …`
#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    /// The store file (redb), used unless --redis or --postgres is given.
    #[arg(long, global = true, default_value = "jobs.redb")]
    store: PathBuf,
    /// Use a Redis store instead of --store, e.g. `redis://127.0.0.1:6379/`.
    #[arg(long, global = true, value_name = "URL", conflicts_with = "postgres")]
    redis: Option<String>,
    /// The Redis store's key prefix (as given to its workers).
    #[arg(long, global = true, default_value = "keel:jobs:")]
    redis_prefix: String,
    /// Use a Postgres store instead of --store, e.g. `postgres://user@127.0.0.1:5432/db`.
    #[arg(long, global = true, value_name = "URL")]
    postgres: Option<String>,
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
    /// Serve the web dashboard: queues, job lists, failures by error, actions, JSON API.
    Dashboard(DashboardArgs),
}

/// `keel jobs dashboard …`
#[derive(Debug, clap::Args)]
struct DashboardArgs {
    /// Address to listen on. Loopback unless --allow-remote: the dashboard has no login.
    #[arg(long, default_value = "127.0.0.1:8080")]
    listen: SocketAddr,
    /// Serve a non-loopback address and answer any Host header (put it behind a proxy
    /// with authentication).
    #[arg(long)]
    allow_remote: bool,
}

pub(crate) fn run(args: Args) -> anyhow::Result<()> {
    if let JobsCommand::Dashboard(dash) = &args.command {
        let loopback = dash.listen.ip().is_loopback();
        if !loopback && !dash.allow_remote {
            anyhow::bail!(
                "refusing to serve the dashboard on {}: it has no login and its actions delete jobs. \
                 Listen on 127.0.0.1 (and tunnel), or pass --allow-remote to expose it anyway",
                dash.listen
            );
        }
    }
    // The dashboard serves pages on two threads; the one-shot commands need one.
    let rt = match args.command {
        JobsCommand::Dashboard(_) => tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()?,
        _ => tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?,
    };
    rt.block_on(async {
        if let Some(url) = &args.redis {
            let store = RedisStore::builder()
                .url(url.as_str())
                .prefix(args.redis_prefix.as_str())
                .build()
                .await
                .with_context(|| format!("connecting to the Redis store at {url}"))?;
            let what = format!("redis {url}, prefix {}", args.redis_prefix);
            return command(Arc::new(store), args.command, &what).await;
        }
        if let Some(url) = &args.postgres {
            let store = PostgresStore::builder()
                .url(url.as_str())
                .build()
                .await
                .with_context(|| format!("connecting to the Postgres store at {url}"))?;
            return command(Arc::new(store), args.command, &format!("postgres {url}")).await;
        }
        if !args.store.exists() {
            anyhow::bail!("no job store at {}", args.store.display());
        }
        let store = RedbStore::builder()
            .path(&args.store)
            .build()
            .with_context(|| {
                format!(
                    "opening {} (is a worker running on it? the embedded store has one owner)",
                    args.store.display()
                )
            })?;
        let what = args.store.display().to_string();
        command(Arc::new(store), args.command, &what).await
    })
}

/// Runs one subcommand against an open store, whichever backend it is.
async fn command<S: Store>(store: Arc<S>, cmd: JobsCommand, what: &str) -> anyhow::Result<()> {
    match cmd {
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
        JobsCommand::Dashboard(dash) => serve_dashboard(store, &dash, what).await?,
    }
    Ok(())
}

async fn serve_dashboard<S: Store>(
    store: Arc<S>,
    args: &DashboardArgs,
    what: &str,
) -> anyhow::Result<()> {
    let dashboard = keel_jobs_dashboard::Dashboard::builder()
        .store(store)
        .allow_any_host(args.allow_remote)
        .build()?;
    let listener = tokio::net::TcpListener::bind(args.listen)
        .await
        .with_context(|| format!("listening on {}", args.listen))?;
    let addr = listener.local_addr()?;
    if !addr.ip().is_loopback() {
        eprintln!(
            "WARNING: the dashboard is reachable from the network on {addr} with no login; \
             anyone who can reach it can retry, delete and cancel jobs"
        );
    }
    println!("keel jobs dashboard: http://{addr}/  (store: {what}; Ctrl-C stops)");
    dashboard
        .serve(listener, async {
            let _ = tokio::signal::ctrl_c().await;
        })
        .await?;
    println!("dashboard stopped");
    Ok(())
}

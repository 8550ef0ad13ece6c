//! `keel`: the tour of every system, and the benchmarks.

mod cmd;

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context as _;
use clap::{Parser, Subcommand};
use keel::report::{html, text};
use keel::tour::{self, Tour};

/// Keel: the systems senior backend interviews ask for, built to production quality.
#[derive(Debug, Parser)]
#[command(name = "keel", version)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run every system in a realistic scenario and write an HTML report.
    Tour {
        /// Smaller scenarios (a smoke run: well under a minute).
        #[arg(long)]
        quick: bool,
        /// Where to write index.html and the charts.
        #[arg(long, default_value = "target/keel-report")]
        out: PathBuf,
        /// Run only this system's scenario (one of this build's systems).
        #[arg(long, value_parser = tour_name)]
        only: Option<String>,
    },
    /// Run the side-by-side benchmarks against peer crates (see keel-bench).
    Bench(keel_bench::cli::BenchArgs),
    /// The key-value cluster: `keel dht node --listen … --data …`, `keel dht cluster --nodes 3 …`.
    #[cfg(feature = "dht")]
    Dht(cmd::dht::Args),
    /// Inspect and operate an embedded job store: `keel jobs --store jobs.redb status`, or
    /// serve its web dashboard: `keel jobs dashboard --store jobs.redb --listen 127.0.0.1:8080`.
    #[cfg(feature = "jobs")]
    Jobs(cmd::jobs::Args),
    /// The event log over the network: `keel stream broker --listen … --data …`.
    #[cfg(feature = "stream")]
    Stream(cmd::stream::Args),
}

fn main() -> ExitCode {
    match run(Cli::parse()) {
        Ok(code) => code,
        Err(e) => keel_bench::cli::report_error("keel", &e),
    }
}

/// Accepts a system whose tour this build includes; the error lists them.
fn tour_name(name: &str) -> Result<String, String> {
    let names = tour::scenario_names();
    if names.contains(&name) {
        Ok(name.to_owned())
    } else {
        Err(format!(
            "unknown system; this build has: {}",
            names.join(", ")
        ))
    }
}

fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    match cli.command {
        Command::Tour { quick, out, only } => {
            // A typo in --out should cost nothing, not a whole tour.
            keel_bench::cli::check_writable_dir(&out).context("--out")?;
            println!(
                "keel tour{} — {} system(s): {}",
                if quick { " --quick" } else { "" },
                tour::scenario_names().len(),
                tour::scenario_names().join(", ")
            );
            let t = Tour::new(quick);
            let outcome = tour::run_all(&t, only.as_deref());
            print!("{}", text::closing(&outcome));
            let page = html::write(&outcome, &out)?;
            println!("report: {}", page.display());
            Ok(if outcome.passed() {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            })
        }
        Command::Bench(args) => {
            keel_bench::cli::run(args)?;
            Ok(ExitCode::SUCCESS)
        }
        #[cfg(feature = "dht")]
        Command::Dht(args) => {
            cmd::dht::run(args)?;
            Ok(ExitCode::SUCCESS)
        }
        #[cfg(feature = "jobs")]
        Command::Jobs(args) => {
            cmd::jobs::run(args)?;
            Ok(ExitCode::SUCCESS)
        }
        #[cfg(feature = "stream")]
        Command::Stream(args) => {
            cmd::stream::run(args)?;
            Ok(ExitCode::SUCCESS)
        }
    }
}

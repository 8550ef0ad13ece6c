//! `keel`: the tour of every system, and the benchmarks.

use std::path::PathBuf;
use std::process::ExitCode;

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
        /// Run only this system's scenario (ratelimit, cache, queue, ring).
        #[arg(long)]
        only: Option<String>,
    },
    /// Run the side-by-side benchmarks against peer crates (see keel-bench).
    Bench(keel_bench::cli::BenchArgs),
}

fn main() -> ExitCode {
    match run(Cli::parse()) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("keel: {e:#}");
            ExitCode::from(2)
        }
    }
}

fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    match cli.command {
        Command::Tour { quick, out, only } => {
            if let Some(o) = &only {
                let names = tour::scenario_names();
                if !names.contains(&o.as_str()) {
                    anyhow::bail!(
                        "--only {o:?}: this build's systems are {}",
                        names.join(", ")
                    );
                }
            }
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
    }
}

//! The command-line arguments, shared by `keel-bench` and `keel bench`.

use std::path::PathBuf;

use crate::{Config, systems};

/// `<system> [--quick] [--threads 1,2] [--json PATH]`.
#[derive(Debug, Clone, clap::Args)]
pub struct BenchArgs {
    /// The system to benchmark: ratelimit, cache, queue, ring, or all.
    pub system: String,
    /// Fewer, shorter rounds: about a minute per system.
    #[arg(long)]
    pub quick: bool,
    /// Thread counts for multi-threaded scenarios.
    #[arg(long, value_delimiter = ',', default_value = "1,2")]
    pub threads: Vec<usize>,
    /// Also write the results as JSON to this path.
    #[arg(long)]
    pub json: Option<PathBuf>,
}

/// Runs the benchmark the arguments describe, prints its tables and writes the JSON.
///
/// # Errors
/// A thread count of 0, an unknown system, a failing benchmark, or an unwritable JSON path.
pub fn run(args: BenchArgs) -> anyhow::Result<()> {
    if args.threads.contains(&0) {
        anyhow::bail!("--threads: thread counts must be at least 1");
    }
    let cfg = Config::new(args.quick, args.threads);
    let report = systems::run_and_print(&args.system, &cfg)?;
    if let Some(path) = args.json {
        report.write_json(&path)?;
        println!("wrote {}", path.display());
    }
    Ok(())
}

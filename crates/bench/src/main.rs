//! `keel-bench <system> [--quick] [--threads 1,2] [--json PATH]`.

use std::path::PathBuf;

use clap::Parser;
use keel_bench::{Config, systems};

/// Side-by-side benchmarks of Keel against peer crates.
#[derive(Debug, Parser)]
#[command(name = "keel-bench", version)]
struct Args {
    /// The system to benchmark: ratelimit, cache, queue, ring, or all.
    system: String,
    /// Fewer, shorter rounds: about a minute per system.
    #[arg(long)]
    quick: bool,
    /// Thread counts for multi-threaded scenarios.
    #[arg(long, value_delimiter = ',', default_value = "1,2")]
    threads: Vec<usize>,
    /// Also write the results as JSON to this path.
    #[arg(long)]
    json: Option<PathBuf>,
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
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

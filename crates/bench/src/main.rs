//! `keel-bench <system> [--quick] [--threads 1,2] [--json PATH]`.

use clap::Parser;
use keel_bench::cli::{self, BenchArgs};

/// Side-by-side benchmarks of Keel against peer crates.
#[derive(Debug, Parser)]
#[command(name = "keel-bench", version)]
struct Args {
    #[command(flatten)]
    bench: BenchArgs,
}

fn main() -> anyhow::Result<()> {
    cli::run(Args::parse().bench)
}

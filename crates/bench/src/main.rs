//! `keel-bench <system> [--quick] [--threads 1,2] [--scenario REGEX] [--json PATH]`.

use std::process::ExitCode;

use clap::Parser;
use keel_bench::cli::{self, BenchArgs};

/// Side-by-side benchmarks of Keel against peer crates.
#[derive(Debug, Parser)]
#[command(name = "keel-bench", version)]
struct Args {
    #[command(flatten)]
    bench: BenchArgs,
}

fn main() -> ExitCode {
    match cli::run(Args::parse().bench) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => cli::report_error("keel-bench", &e),
    }
}

//! Prints the comparison table: `cargo run --release -p keel-ring --example compare [-- quick]`.

use keel_ring::analysis::{AnalysisConfig, analyze, markdown_table};

fn main() {
    let quick = std::env::args().any(|a| a == "quick");
    let config = if quick {
        AnalysisConfig::quick()
    } else {
        AnalysisConfig::full()
    };
    let start = std::time::Instant::now();
    let reports = analyze(&config, |r| eprintln!("{} N={} done", r.algorithm, r.nodes))
        .expect("valid configuration");
    println!("{}", markdown_table(&reports));
    eprintln!("total {:?}", start.elapsed());
}

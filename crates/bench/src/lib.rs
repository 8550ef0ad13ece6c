//! Side-by-side benchmarks: each Keel system against the best peer crate, same process,
//! same workload, interleaved rounds, ratio printed.
//!
//! ```text
//! cargo run --release -p keel-bench -- <system> [--quick] [--threads 1,2] [--json PATH]
//! cargo run --release -p keel-bench -- ratelimit --quick --json target/bench/ratelimit.json
//! ```
//!
//! `<system>` is `ratelimit`, `cache`, `queue`, `ring` or `all`. Each system is also a cargo
//! feature, so one system's benchmark builds alone:
//! `cargo run --release -p keel-bench --no-default-features --features ring -- ring`.
//!
//! # Method
//!
//! - **Same workload.** Contenders get the same seeded key streams ([`workload`]) and the
//!   same thread counts.
//! - **Interleaved rounds.** [`Report::compare`] runs one warm-up per contender, then
//!   `rounds` rounds in rotating order (A B, B A, A B, …) so drift hits everyone alike.
//!   Throughput is the **median** round; min and max are kept beside it.
//! - **Latency** comes from an HDR histogram. In closed-loop scenarios
//!   ([`harness::run_threads`]) one operation in [`harness::LATENCY_SAMPLE_EVERY`] is timed
//!   on its own, so clock reads do not distort throughput; producer/consumer scenarios
//!   record hand-off latency (send → receive) instead.
//! - **Ratio** = Keel ops/s ÷ peer ops/s for every (Keel, peer) pair in a scenario;
//!   above 1 means Keel is faster.
//!
//! # JSON (`--json PATH`)
//!
//! ```json
//! {
//!   "system": "ratelimit",
//!   "machine": { "cores": 2 },
//!   "results": [
//!     { "scenario": "one key", "impl": "keel-gcra", "keel": true, "threads": 1,
//!       "ops_per_sec": 41000000.0, "ops_per_sec_min": 40000000.0, "ops_per_sec_max": 42000000.0,
//!       "p50_ns": 30, "p99_ns": 60, "p999_ns": 200, "rounds": 7 }
//!   ],
//!   "ratios": [
//!     { "scenario": "one key", "threads": 1, "keel": "keel-gcra", "peer": "governor", "ratio": 1.12 }
//!   ],
//!   "notes": []
//! }
//! ```
//!
//! The numbers above show the shape only. Contender-specific figures (`hit_ratio`,
//! `bytes_per_entry`, …) appear as extra fields in a result row.
//!
//! # Layout
//!
//! - [`cli`]: the arguments and entry point shared by `keel-bench` and `keel bench`.
//! - [`harness`]: [`Config`], [`Measurement`], [`Contender`], [`harness::run_threads`].
//! - [`report`]: [`Report`] — interleaving, medians, ratios, the table and the JSON.
//! - [`workload`]: seeded Zipf and uniform key streams.
//! - [`heap`]: heap bytes in use, for the per-entry / per-key memory figures.
//! - [`systems`]: one module per system, behind its cargo feature.

pub mod cli;
pub mod harness;
pub mod heap;
pub mod report;
pub mod systems;
pub mod workload;

pub use harness::{Config, Contender, Measurement};
pub use report::Report;

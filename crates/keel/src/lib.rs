//! The `keel` command line, as a library so its pieces are tested.
//!
//! - `keel tour [--quick] [--out DIR]` runs every system in a realistic scenario
//!   ([`tour`]), prints a summary per system and writes an HTML report
//!   ([`report::html`]) to `target/keel-report/` by default. It exits non-zero when a
//!   correctness check fails.
//! - `keel bench <system> [--quick] [--threads 1,2] [--json PATH]` runs the side-by-side
//!   benchmarks of `keel-bench`.
//!
//! # Layout
//!
//! - [`tour`]: the shared [`tour::Tour`] context, the report types, one private module per
//!   system's scenario.
//! - [`report`]: the terminal summary, SVG charts and the HTML page.

pub mod report;
pub mod tour;

/// The README's Rust examples, compiled and run as doctests.
#[cfg(all(
    doctest,
    feature = "ratelimit",
    feature = "cache",
    feature = "queue",
    feature = "ring"
))]
#[doc = include_str!("../../../README.md")]
pub struct ReadmeDoctests;

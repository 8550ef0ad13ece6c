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
//! - [`tour`]: the shared [`tour::Tour`] context, [`tour::Part`] (the one shape of a tour
//!   part), one private module per system's scenario.
//! - [`report`]: the report's data ([`report::model`]), the terminal summary, SVG charts
//!   and the HTML page. It does not depend on [`tour`].
//!
//! The systems themselves are listed once, in `keel_bench::systems::SYSTEMS`; the README's
//! "Adding a system" section is the recipe for a new one.

pub mod report;
pub mod tour;

/// The README's Rust examples, compiled and run as doctests.
#[cfg(all(
    doctest,
    feature = "ratelimit",
    feature = "cache",
    feature = "queue",
    feature = "ring",
    feature = "jobs",
    feature = "stream"
))]
#[doc = include_str!("../../../README.md")]
pub struct ReadmeDoctests;

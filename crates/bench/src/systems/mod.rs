//! One module per system, each behind the cargo feature of the same name.
//!
//! Every module exposes `pub fn run(cfg: &Config, report: &mut Report) -> anyhow::Result<()>`.

#[cfg(feature = "cache")]
pub mod cache;
#[cfg(feature = "queue")]
pub mod queue;
#[cfg(feature = "ratelimit")]
pub mod ratelimit;
#[cfg(feature = "ring")]
pub mod ring;

use crate::{Config, Report};

/// A system's benchmark entry point.
type Runner = fn(&Config, &mut Report) -> anyhow::Result<()>;

/// The systems this build can benchmark, in study-plan order.
const RUNNERS: &[(&str, Runner)] = &[
    #[cfg(feature = "ratelimit")]
    ("ratelimit", ratelimit::run),
    #[cfg(feature = "cache")]
    ("cache", cache::run),
    #[cfg(feature = "queue")]
    ("queue", queue::run),
    #[cfg(feature = "ring")]
    ("ring", ring::run),
];

/// Names of the systems this build can benchmark, in study-plan order.
pub fn systems() -> Vec<&'static str> {
    RUNNERS.iter().map(|(n, _)| *n).collect()
}

/// Runs one system's benchmark into a fresh report.
///
/// # Errors
/// An unknown system name (or one whose feature is off in this build), or whatever the
/// system's benchmark reports.
pub fn run(system: &str, cfg: &Config) -> anyhow::Result<Report> {
    let Some((_, runner)) = RUNNERS.iter().find(|(n, _)| *n == system) else {
        anyhow::bail!(
            "unknown system {system:?}; this build has: {}",
            systems().join(", ")
        );
    };
    let mut report = Report::new(system);
    runner(cfg, &mut report)?;
    Ok(report)
}

/// Runs `system` (or every system for `"all"`), printing each system's table as it
/// finishes, and returns one combined report.
///
/// # Errors
/// As [`run`].
pub fn run_and_print(system: &str, cfg: &Config) -> anyhow::Result<Report> {
    let names: Vec<&str> = if system == "all" {
        systems()
    } else {
        vec![system]
    };
    let mut all: Option<Report> = None;
    for name in names {
        println!(
            "keel-bench {name}{}",
            if cfg.quick { " (quick)" } else { "" }
        );
        let report = run(name, cfg)?;
        println!("{}", report.table());
        match &mut all {
            None => all = Some(report),
            Some(a) => {
                a.system = "all".into();
                a.extend(report);
            }
        }
    }
    all.ok_or_else(|| anyhow::anyhow!("this build has no systems to benchmark"))
}

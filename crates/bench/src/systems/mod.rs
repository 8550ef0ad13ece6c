//! The study plan's systems — [`SYSTEMS`], the one list that `keel-bench`, `keel tour` and
//! both `--help` texts read — and one benchmark module per system, each behind the cargo
//! feature of the same name.
//!
//! Every module exposes `pub fn run(cfg: &Config, report: &mut Report) -> anyhow::Result<()>`
//! and names its scenarios so that `--scenario REGEX` can pick them
//! ([`Config::selected`]).

#[cfg(feature = "cache")]
pub mod cache;
#[cfg(feature = "dht")]
pub mod dht;
#[cfg(feature = "jobs")]
pub mod jobs;
#[cfg(feature = "queue")]
pub mod queue;
#[cfg(feature = "ratelimit")]
pub mod ratelimit;
#[cfg(feature = "ring")]
pub mod ring;
#[cfg(feature = "stream")]
pub mod stream;

use crate::{Config, Report};

/// A system's benchmark entry point.
pub type Runner = fn(&Config, &mut Report) -> anyhow::Result<()>;

/// One system of the study plan, as this build knows it.
#[derive(Debug, Clone, Copy)]
pub struct System {
    /// The short name used on the command line and as the cargo feature: `ratelimit`.
    pub name: &'static str,
    /// The title shown in reports: `Rate limiting`.
    pub title: &'static str,
    /// The library crate: `keel-ratelimit`.
    pub crate_name: &'static str,
    /// Its side-by-side benchmark.
    pub bench: Runner,
}

/// The systems this build includes, in study-plan order. Adding a system starts here
/// (see "Adding a system" in the README).
pub const SYSTEMS: &[System] = &[
    #[cfg(feature = "ratelimit")]
    System {
        name: "ratelimit",
        title: "Rate limiting",
        crate_name: "keel-ratelimit",
        bench: ratelimit::run,
    },
    #[cfg(feature = "cache")]
    System {
        name: "cache",
        title: "LRU cache with TTL",
        crate_name: "keel-cache",
        bench: cache::run,
    },
    #[cfg(feature = "queue")]
    System {
        name: "queue",
        title: "Producer-consumer",
        crate_name: "keel-queue",
        bench: queue::run,
    },
    #[cfg(feature = "jobs")]
    System {
        name: "jobs",
        title: "Background jobs",
        crate_name: "keel-jobs",
        bench: jobs::run,
    },
    #[cfg(feature = "dht")]
    System {
        name: "dht",
        title: "Distributed hash table",
        crate_name: "keel-dht",
        bench: dht::run,
    },
    #[cfg(feature = "ring")]
    System {
        name: "ring",
        title: "Consistent hashing",
        crate_name: "keel-ring",
        bench: ring::run,
    },
    #[cfg(feature = "stream")]
    System {
        name: "stream",
        title: "Event streaming",
        crate_name: "keel-stream",
        bench: stream::run,
    },
];

/// The system called `name`, if this build has it.
pub fn find(name: &str) -> Option<&'static System> {
    SYSTEMS.iter().find(|s| s.name == name)
}

/// Names of the systems this build includes, in study-plan order.
pub fn names() -> Vec<&'static str> {
    SYSTEMS.iter().map(|s| s.name).collect()
}

/// Runs one system's benchmark into a fresh report.
///
/// # Errors
/// An unknown system name (or one whose feature is off in this build), or whatever the
/// system's benchmark reports.
pub fn run(system: &str, cfg: &Config) -> anyhow::Result<Report> {
    let Some(found) = find(system) else {
        anyhow::bail!(
            "unknown system {system:?}; this build has: {}",
            names().join(", ")
        );
    };
    let mut report = Report::new(system);
    (found.bench)(cfg, &mut report)?;
    Ok(report)
}

/// Runs `system` (or every system for `"all"`), printing each system's table as it
/// finishes, and returns one combined report.
///
/// # Errors
/// As [`run`].
pub fn run_and_print(system: &str, cfg: &Config) -> anyhow::Result<Report> {
    let names: Vec<&str> = if system == "all" {
        names()
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn system_names_are_unique_and_match_their_crates() {
        let mut seen = std::collections::BTreeSet::new();
        for s in SYSTEMS {
            assert!(seen.insert(s.name), "{} listed twice", s.name);
            assert_eq!(s.crate_name, format!("keel-{}", s.name));
        }
    }

    #[test]
    fn unknown_system_is_an_error_naming_the_known_ones() {
        let cfg = Config::new(true, vec![1]);
        let err = run("nope", &cfg).unwrap_err().to_string();
        assert!(err.contains("unknown system \"nope\""), "{err}");
    }
}

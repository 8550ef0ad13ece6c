//! `keel tour`: every system in a realistic scenario, a summary per system, an HTML report.
//!
//! # Shape of a system's tour
//!
//! Each system has one module here, `tour/<system>.rs`, whose `run` lists the scenario's
//! parts and nothing else:
//!
//! ```text
//! pub(crate) fn run(tour: &Tour) -> anyhow::Result<SystemReport> {
//!     let mut report = SystemReport::for_system("cache", "An API reads users from …");
//!     tour.run_parts(&mut report, &mut (), &[
//!         ("cache-aside", cache_aside),
//!         ("stampede", stampede),
//!         ("tiered L1 + Redis L2", tiered),
//!     ])?;
//!     Ok(report)
//! }
//! ```
//!
//! A part is a [`Part`]: `fn(&Tour, &mut C, &mut SystemReport) -> anyhow::Result<()>`,
//! where `C` is whatever the parts of one system share (`()` when nothing). A part adds
//! summary rows, checks computed from what it observed, tables and charts. Parts run on
//! embedded defaults; a part that needs a server asks for it with [`Tour::redis_for`] (or
//! the helper for its server), which starts a private one on a free port the first time,
//! or notes in the report that the part was skipped and why. Long traffic generators live
//! in their own files next to the system's module (`tour/<system>/traffic.rs`).

#[cfg(feature = "cache")]
mod cache;
#[cfg(feature = "dht")]
mod dht;
#[cfg(feature = "jobs")]
mod jobs;
#[cfg(feature = "queue")]
mod queue;
#[cfg(feature = "ratelimit")]
mod ratelimit;
#[cfg(feature = "ring")]
mod ring;
#[cfg(feature = "stream")]
mod stream;
#[cfg(feature = "stream")]
mod stream_broker;

use std::sync::OnceLock;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use hdrhistogram::Histogram;
use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};
use keel_testkit::RedisServer;

pub use crate::report::model::{Chart, Check, SummaryRow, SystemReport, Table, TourOutcome};

/// One part of a system's tour: it runs one piece of the scenario and adds what it saw to
/// the report. `C` is the state the parts of one system share (`()` when none).
pub type Part<C> = fn(&Tour, &mut C, &mut SystemReport) -> anyhow::Result<()>;

/// The shared context handed to every system's scenario.
#[derive(Debug)]
pub struct Tour {
    quick: bool,
    progress: MultiProgress,
    redis: OnceLock<Result<RedisServer, String>>,
}

impl Tour {
    /// A tour; `quick` shrinks every scenario (used by CI's smoke run).
    pub fn new(quick: bool) -> Self {
        Self {
            quick,
            progress: MultiProgress::with_draw_target(ProgressDrawTarget::stderr()),
            redis: OnceLock::new(),
        }
    }

    /// Whether this is a `--quick` run.
    pub fn quick(&self) -> bool {
        self.quick
    }

    /// Picks the quick or the full value of a scenario parameter.
    pub fn size<T>(&self, quick: T, full: T) -> T {
        if self.quick { quick } else { full }
    }

    /// A progress bar of `len` steps labelled `label` (hidden when stderr is not a terminal).
    pub fn progress(&self, label: &str, len: u64) -> ProgressBar {
        let bar = self.progress.add(ProgressBar::new(len));
        bar.set_style(
            ProgressStyle::with_template("  {prefix:<28} [{bar:32.cyan/blue}] {pos}/{len} {msg}")
                .expect("static template is valid")
                .progress_chars("=> "),
        );
        bar.set_prefix(label.to_owned());
        bar
    }

    /// A spinner for a step without a known length.
    pub fn spinner(&self, label: &str) -> ProgressBar {
        let bar = self.progress.add(ProgressBar::new_spinner());
        bar.set_style(
            ProgressStyle::with_template("  {spinner} {prefix:<28} {msg} ({elapsed})")
                .expect("static template is valid"),
        );
        bar.set_prefix(label.to_owned());
        bar.enable_steady_tick(Duration::from_millis(120));
        bar
    }

    /// A private `redis-server` for the Redis parts of the tour, started on first use.
    ///
    /// `None` when `redis-server` is not installed or does not start; the reason is in
    /// [`Tour::redis_unavailable_reason`].
    pub fn redis(&self) -> Option<&RedisServer> {
        self.redis
            .get_or_init(|| RedisServer::start().map_err(|e| e.to_string()))
            .as_ref()
            .ok()
    }

    /// Why [`Tour::redis`] returned `None` (or `None` if it did not).
    pub fn redis_unavailable_reason(&self) -> Option<String> {
        match self.redis.get() {
            Some(Err(e)) => Some(e.clone()),
            _ => None,
        }
    }

    /// The private `redis-server` for `part`, or `None` after noting in `report` that the
    /// part was skipped and why.
    pub fn redis_for(&self, report: &mut SystemReport, part: &str) -> Option<&RedisServer> {
        let server = self.redis();
        if server.is_none() {
            let why = self
                .redis_unavailable_reason()
                .unwrap_or_else(|| "redis-server not available".to_owned());
            skipped(report, part, "redis-server", &why);
        }
        server
    }

    /// Runs a system's parts in order with a shared state `shared`. The first part that
    /// fails ends the system's tour with an error naming the part.
    ///
    /// # Errors
    /// The failing part's error, with the part's name as context.
    pub fn run_parts<C>(
        &self,
        report: &mut SystemReport,
        shared: &mut C,
        parts: &[(&str, Part<C>)],
    ) -> anyhow::Result<()> {
        for (name, part) in parts {
            part(self, shared, report).with_context(|| format!("part {name:?}"))?;
        }
        Ok(())
    }
}

/// Notes in `report` that `part` did not run because `needs` is unavailable (`why`).
/// Every skip in the tour goes through here, so the page says it the same way each time.
pub fn skipped(report: &mut SystemReport, part: &str, needs: &str, why: &str) {
    report
        .notes
        .push(format!("{part} skipped: it needs {needs} ({why})"));
}

/// A latency histogram in nanoseconds (1 ns – 60 s, 3 significant digits).
pub fn latency_histogram() -> Histogram<u64> {
    keel_bench::harness::new_histogram()
}

/// A system's whole tour.
type Scenario = fn(&Tour) -> anyhow::Result<SystemReport>;

/// The tour of the system called `name` (a name from [`keel_bench::systems::SYSTEMS`]).
fn scenario(name: &str) -> Option<Scenario> {
    match name {
        #[cfg(feature = "ratelimit")]
        "ratelimit" => Some(ratelimit::run),
        #[cfg(feature = "cache")]
        "cache" => Some(cache::run),
        #[cfg(feature = "queue")]
        "queue" => Some(queue::run),
        #[cfg(feature = "jobs")]
        "jobs" => Some(jobs::run),
        #[cfg(feature = "dht")]
        "dht" => Some(dht::run),
        #[cfg(feature = "ring")]
        "ring" => Some(ring::run),
        #[cfg(feature = "stream")]
        "stream" => Some(stream::run),
        _ => None,
    }
}

/// Runs every scenario in this build, printing each system's summary as it finishes.
pub fn run_all(tour: &Tour, only: Option<&str>) -> TourOutcome {
    let start = Instant::now();
    let mut systems = Vec::new();
    let mut errors = Vec::new();
    for name in scenario_names()
        .into_iter()
        .filter(|n| only.is_none_or(|o| o == *n))
    {
        let Some(run) = scenario(name) else { continue };
        println!("\n▶ {name}");
        let t = Instant::now();
        match run(tour) {
            Ok(report) => {
                print!("{}", crate::report::text::system_summary(&report));
                println!("  ({:.1}s)", t.elapsed().as_secs_f64());
                systems.push(report);
            }
            Err(e) => {
                println!("  ✘ {name} failed: {e:#}");
                errors.push((name.to_owned(), format!("{e:#}")));
            }
        }
    }
    TourOutcome {
        quick: tour.quick(),
        elapsed_secs: start.elapsed().as_secs_f64(),
        systems,
        errors,
    }
}

/// Names of the systems this build's tour includes, in study-plan order.
pub fn scenario_names() -> Vec<&'static str> {
    keel_bench::systems::names()
        .into_iter()
        .filter(|n| scenario(n).is_some())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_system_in_the_list_has_a_tour() {
        for system in keel_bench::systems::SYSTEMS {
            assert!(
                scenario(system.name).is_some(),
                "{} is in SYSTEMS but has no tour module",
                system.name
            );
        }
    }

    #[test]
    fn a_failing_part_is_named_and_stops_the_system() {
        fn ok(_: &Tour, ran: &mut Vec<&'static str>, _: &mut SystemReport) -> anyhow::Result<()> {
            ran.push("ok");
            Ok(())
        }
        fn fails(_: &Tour, _: &mut Vec<&'static str>, _: &mut SystemReport) -> anyhow::Result<()> {
            anyhow::bail!("boom")
        }
        let tour = Tour::new(true);
        let mut report = SystemReport::new("keel-x", "X", "x");
        let mut ran = Vec::new();
        let err = tour
            .run_parts(
                &mut report,
                &mut ran,
                &[("first", ok), ("second", fails), ("third", ok)],
            )
            .unwrap_err();
        assert_eq!(format!("{err:#}"), "part \"second\": boom");
        assert_eq!(ran, ["ok"]);
    }

    #[test]
    fn a_skipped_part_says_what_it_needs_and_why() {
        let mut report = SystemReport::new("keel-x", "X", "x");
        skipped(&mut report, "Redis L2", "redis-server", "not found");
        assert_eq!(
            report.notes,
            ["Redis L2 skipped: it needs redis-server (not found)"]
        );
    }
}

//! `keel tour`: every system in a realistic scenario, a summary per system, an HTML report.
//!
//! Each system contributes one module with `pub(crate) fn run(tour: &Tour) ->
//! anyhow::Result<SystemReport>`. A scenario runs on embedded defaults (no server needed);
//! parts that need Redis ask [`Tour::redis`], which starts a private `redis-server` on a
//! free port the first time it is asked, or returns `None` (and the part says it was
//! skipped) when none can be started.

#[cfg(feature = "cache")]
mod cache;
#[cfg(feature = "queue")]
mod queue;
#[cfg(feature = "ratelimit")]
mod ratelimit;
#[cfg(feature = "ring")]
mod ring;

use std::sync::OnceLock;
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;
use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};
use keel_testkit::RedisServer;
use serde::Serialize;

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
}

/// What one system's scenario showed.
#[derive(Debug, Clone, Serialize)]
pub struct SystemReport {
    /// Crate name, e.g. `keel-ratelimit`.
    pub crate_name: String,
    /// Human title, e.g. `Rate limiting`.
    pub title: String,
    /// Two or three sentences: what the scenario simulates.
    pub scenario: String,
    /// Headline rows: throughput and latency of each part of the scenario.
    pub summary: Vec<SummaryRow>,
    /// Correctness checks computed from what happened.
    pub checks: Vec<Check>,
    /// Further tables.
    pub tables: Vec<Table>,
    /// Charts (SVG).
    pub charts: Vec<Chart>,
    /// Remarks, e.g. "Redis part skipped: redis-server not found".
    pub notes: Vec<String>,
}

impl SystemReport {
    /// An empty report to fill.
    pub fn new(crate_name: &str, title: &str, scenario: &str) -> Self {
        Self {
            crate_name: crate_name.to_owned(),
            title: title.to_owned(),
            scenario: scenario.to_owned(),
            summary: Vec::new(),
            checks: Vec::new(),
            tables: Vec::new(),
            charts: Vec::new(),
            notes: Vec::new(),
        }
    }

    /// Adds a check; `passed` must come from what the scenario observed.
    pub fn check(&mut self, name: impl Into<String>, passed: bool, detail: impl Into<String>) {
        self.checks.push(Check {
            name: name.into(),
            passed,
            detail: detail.into(),
        });
    }

    /// Whether every check passed.
    pub fn passed(&self) -> bool {
        self.checks.iter().all(|c| c.passed)
    }
}

/// A headline row: one part of a scenario, its throughput and latency.
#[derive(Debug, Clone, Serialize)]
pub struct SummaryRow {
    /// What was run, e.g. `keyed GCRA, 2 threads`.
    pub name: String,
    /// Operations per second.
    pub throughput: f64,
    /// What an operation is, e.g. `decisions/s`.
    pub unit: String,
    /// Median latency.
    pub p50_ns: u64,
    /// 99th percentile latency.
    pub p99_ns: u64,
}

impl SummaryRow {
    /// A row from an operation count, the wall time and a latency histogram (ns).
    pub fn from_histogram(
        name: impl Into<String>,
        unit: impl Into<String>,
        ops: u64,
        elapsed: Duration,
        latency: &Histogram<u64>,
    ) -> Self {
        let q = |q| {
            if latency.is_empty() {
                0
            } else {
                latency.value_at_quantile(q)
            }
        };
        Self {
            name: name.into(),
            throughput: if elapsed.is_zero() {
                0.0
            } else {
                ops as f64 / elapsed.as_secs_f64()
            },
            unit: unit.into(),
            p50_ns: q(0.5),
            p99_ns: q(0.99),
        }
    }
}

/// A correctness check, e.g. `0 lost` — passed or not, with what was seen.
#[derive(Debug, Clone, Serialize)]
pub struct Check {
    /// What is checked.
    pub name: String,
    /// Whether it held.
    pub passed: bool,
    /// The observed figures behind it.
    pub detail: String,
}

/// A plain table.
#[derive(Debug, Clone, Serialize)]
pub struct Table {
    /// Caption.
    pub title: String,
    /// Column names.
    pub header: Vec<String>,
    /// Cells, row by row.
    pub rows: Vec<Vec<String>>,
}

impl Table {
    /// A table with a caption and column names.
    pub fn new(title: impl Into<String>, header: &[&str]) -> Self {
        Self {
            title: title.into(),
            header: header.iter().map(|h| (*h).to_owned()).collect(),
            rows: Vec::new(),
        }
    }

    /// Appends a row.
    pub fn row(&mut self, cells: Vec<String>) {
        self.rows.push(cells);
    }
}

/// A chart: SVG markup with a caption saying what to look for.
#[derive(Debug, Clone, Serialize)]
pub struct Chart {
    /// Short title.
    pub title: String,
    /// What the chart shows and what to notice.
    pub caption: String,
    /// The SVG document.
    #[serde(skip)]
    pub svg: String,
}

impl Chart {
    /// A chart from rendered SVG.
    pub fn new(title: impl Into<String>, caption: impl Into<String>, svg: String) -> Self {
        Self {
            title: title.into(),
            caption: caption.into(),
            svg,
        }
    }
}

/// A latency histogram in nanoseconds (1 ns – 60 s, 3 significant digits).
pub fn latency_histogram() -> Histogram<u64> {
    keel_bench::harness::new_histogram()
}

/// One scenario of the tour: its name and the function that runs it.
type Scenario = (&'static str, fn(&Tour) -> anyhow::Result<SystemReport>);

/// The scenarios this build includes, in study-plan order.
const SCENARIOS: &[Scenario] = &[
    #[cfg(feature = "ratelimit")]
    ("ratelimit", ratelimit::run),
    #[cfg(feature = "cache")]
    ("cache", cache::run),
    #[cfg(feature = "queue")]
    ("queue", queue::run),
    #[cfg(feature = "ring")]
    ("ring", ring::run),
];

/// The outcome of a whole tour.
#[derive(Debug, Serialize)]
pub struct TourOutcome {
    /// Whether `--quick` was used.
    pub quick: bool,
    /// Wall time of the whole tour.
    pub elapsed_secs: f64,
    /// One report per system that ran.
    pub systems: Vec<SystemReport>,
    /// Systems whose scenario returned an error, with the error.
    pub errors: Vec<(String, String)>,
}

impl TourOutcome {
    /// True when every scenario ran and every check passed.
    pub fn passed(&self) -> bool {
        self.errors.is_empty() && self.systems.iter().all(SystemReport::passed)
    }
}

/// Runs every scenario in this build, printing each system's summary as it finishes.
pub fn run_all(tour: &Tour, only: Option<&str>) -> TourOutcome {
    let start = Instant::now();
    let mut systems = Vec::new();
    let mut errors = Vec::new();
    for (name, run) in SCENARIOS
        .iter()
        .filter(|(n, _)| only.is_none_or(|o| o == *n))
    {
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
                errors.push(((*name).to_owned(), format!("{e:#}")));
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

/// Names of the systems this build's tour includes.
pub fn scenario_names() -> Vec<&'static str> {
    SCENARIOS.iter().map(|(n, _)| *n).collect()
}

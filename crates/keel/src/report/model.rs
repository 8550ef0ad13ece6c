//! The report's data: what a system's tour part produced ([`SystemReport`]: summary rows,
//! checks, tables, charts, notes) and the whole run ([`TourOutcome`]). The tour fills these;
//! [`text`](super::text) and [`html`](super::html) render them. Plain data, no behaviour
//! beyond small constructors, so the renderers and the tour do not depend on each other.

use std::time::Duration;

use hdrhistogram::Histogram;
use serde::Serialize;

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
    /// An empty report for the system called `name` in [`keel_bench::systems::SYSTEMS`],
    /// whose crate and title come from that list.
    ///
    /// # Panics
    /// If `name` is not in the list: a programming error caught by the tour's tests.
    pub fn for_system(name: &str, scenario: &str) -> Self {
        let system = keel_bench::systems::find(name)
            .unwrap_or_else(|| panic!("{name:?} is not in keel_bench::systems::SYSTEMS"));
        Self::new(system.crate_name, system.title, scenario)
    }

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

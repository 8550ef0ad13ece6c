//! Interleaved comparison rounds, the printed table and the JSON file.

use std::collections::BTreeMap;
use std::io::Write as _;
use std::path::Path;

use serde::Serialize;

use crate::harness::{Config, Contender, Measurement, new_histogram};

/// One row of results: one contender in one scenario at one thread count.
#[derive(Debug, Clone, Serialize)]
pub struct ResultRow {
    /// Scenario name, e.g. `"keyed zipf 10k keys"`.
    pub scenario: String,
    /// Implementation name, e.g. `"keel-gcra"` or `"governor"`.
    #[serde(rename = "impl")]
    pub implementation: String,
    /// Whether this is a Keel implementation.
    pub keel: bool,
    /// Thread count.
    pub threads: usize,
    /// Median throughput over the rounds.
    pub ops_per_sec: f64,
    /// Slowest and fastest round, to show the spread behind the median.
    pub ops_per_sec_min: f64,
    /// See `ops_per_sec_min`.
    pub ops_per_sec_max: f64,
    /// Latency percentiles over all rounds' samples.
    pub p50_ns: u64,
    /// 99th percentile latency.
    pub p99_ns: u64,
    /// 99.9th percentile latency.
    pub p999_ns: u64,
    /// Rounds run.
    pub rounds: usize,
    /// Contender-specific figures (hit ratio, bytes per entry, …), median over rounds.
    #[serde(flatten)]
    pub extra: BTreeMap<String, f64>,
}

/// Keel throughput divided by a peer's, per scenario and thread count.
#[derive(Debug, Clone, Serialize)]
pub struct Ratio {
    /// Scenario name.
    pub scenario: String,
    /// Thread count.
    pub threads: usize,
    /// The Keel implementation in the numerator.
    pub keel: String,
    /// The peer in the denominator.
    pub peer: String,
    /// `keel ops/s / peer ops/s`: above 1 means Keel is faster.
    pub ratio: f64,
}

/// The machine a report was measured on.
#[derive(Debug, Clone, Serialize)]
pub struct Machine {
    /// Logical cores available to the process.
    pub cores: usize,
}

/// Everything one `keel-bench <system>` run measured.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    /// The system benchmarked (`ratelimit`, `cache`, `queue`, `ring`).
    pub system: String,
    /// Where it ran.
    pub machine: Machine,
    /// Every contender's row.
    pub results: Vec<ResultRow>,
    /// Keel against each peer.
    pub ratios: Vec<Ratio>,
    /// Free-form lines (skipped scenarios, caveats) printed under the table.
    pub notes: Vec<String>,
}

impl Report {
    /// An empty report for `system`.
    pub fn new(system: &str) -> Self {
        Self {
            system: system.to_owned(),
            machine: Machine {
                cores: std::thread::available_parallelism().map_or(1, |n| n.get()),
            },
            results: Vec::new(),
            ratios: Vec::new(),
            notes: Vec::new(),
        }
    }

    /// Records a note (e.g. "redis scenario skipped: redis-server not found").
    pub fn note(&mut self, line: impl Into<String>) {
        let line = line.into();
        eprintln!("note: {line}");
        self.notes.push(line);
    }

    /// Runs `contenders` on the same scenario in interleaved rounds and records the result.
    ///
    /// Round `r` runs every contender once, in an order that rotates with `r`
    /// (A B C, B C A, C A B, …), so slow drift of the machine — thermal, another process —
    /// lands on all of them alike. One untimed warm-up round per contender comes first.
    /// Prints one line per contender as it finishes. A scenario that `--scenario` does not
    /// select is skipped without running anything.
    pub fn compare(
        &mut self,
        cfg: &Config,
        scenario: &str,
        threads: usize,
        contenders: &mut [Contender<'_>],
    ) {
        let n = contenders.len();
        if n == 0 || !cfg.selected(scenario) {
            return;
        }
        let warmup = cfg.round_time / 4;
        for c in contenders.iter_mut() {
            let _ = (c.run)(threads, warmup);
        }
        let mut rounds: Vec<Vec<Measurement>> = vec![Vec::with_capacity(cfg.rounds); n];
        for r in 0..cfg.rounds {
            for k in 0..n {
                let i = (r + k) % n;
                let m = (contenders[i].run)(threads, cfg.round_time);
                rounds[i].push(m);
            }
        }
        let first_new = self.results.len();
        for (c, ms) in contenders.iter().zip(rounds) {
            let row = summarise(scenario, c, threads, &ms);
            println!(
                "  {:<34} {:<26} {:>2}t {:>14} ops/s  p50 {:>9}  p99 {:>9}  p99.9 {:>9}{}",
                scenario,
                row.implementation,
                threads,
                fmt_rate(row.ops_per_sec),
                fmt_ns(row.p50_ns),
                fmt_ns(row.p99_ns),
                fmt_ns(row.p999_ns),
                fmt_extra(&row.extra),
            );
            self.results.push(row);
        }
        let new_rows = &self.results[first_new..];
        for k in new_rows.iter().filter(|r| r.keel) {
            for p in new_rows.iter().filter(|r| !r.keel) {
                let ratio = if p.ops_per_sec > 0.0 {
                    k.ops_per_sec / p.ops_per_sec
                } else {
                    f64::INFINITY
                };
                println!(
                    "  {:<34} {:<26} {:>2}t   ratio {:.2}x vs {}",
                    scenario, k.implementation, threads, ratio, p.implementation
                );
                self.ratios.push(Ratio {
                    scenario: scenario.to_owned(),
                    threads,
                    keel: k.implementation.clone(),
                    peer: p.implementation.clone(),
                    ratio,
                });
            }
        }
    }

    /// The table printed at the end of a run: every row, then every ratio.
    pub fn table(&self) -> String {
        let mut out = String::new();
        out.push_str(&format!(
            "\n== keel-bench {} ({} cores) ==\n{:<34} {:<26} {:>3} {:>14} {:>9} {:>9} {:>9}  extra\n",
            self.system, self.machine.cores, "scenario", "impl", "thr", "ops/s", "p50", "p99", "p99.9"
        ));
        for r in &self.results {
            out.push_str(&format!(
                "{:<34} {:<26} {:>3} {:>14} {:>9} {:>9} {:>9} {}\n",
                r.scenario,
                r.implementation,
                r.threads,
                fmt_rate(r.ops_per_sec),
                fmt_ns(r.p50_ns),
                fmt_ns(r.p99_ns),
                fmt_ns(r.p999_ns),
                fmt_extra(&r.extra),
            ));
        }
        if !self.ratios.is_empty() {
            out.push_str(&format!(
                "\n{:<34} {:>3} {:<26} {:<26} {:>7}\n",
                "scenario", "thr", "keel", "peer", "ratio"
            ));
            for r in &self.ratios {
                out.push_str(&format!(
                    "{:<34} {:>3} {:<26} {:<26} {:>6.2}x\n",
                    r.scenario, r.threads, r.keel, r.peer, r.ratio
                ));
            }
        }
        for n in &self.notes {
            out.push_str(&format!("note: {n}\n"));
        }
        out
    }

    /// Writes the report as JSON (see the crate docs for the schema).
    pub fn write_json(&self, path: &Path) -> anyhow::Result<()> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir)?;
        }
        let mut f = std::fs::File::create(path)?;
        serde_json::to_writer_pretty(&mut f, self)?;
        f.write_all(b"\n")?;
        Ok(())
    }

    /// Appends another report's rows (used by `keel-bench all`).
    pub fn extend(&mut self, other: Report) {
        self.results.extend(other.results);
        self.ratios.extend(other.ratios);
        self.notes.extend(other.notes);
    }
}

fn summarise(scenario: &str, c: &Contender<'_>, threads: usize, ms: &[Measurement]) -> ResultRow {
    let mut rates: Vec<f64> = ms.iter().map(Measurement::ops_per_sec).collect();
    rates.sort_by(f64::total_cmp);
    let mut hist = new_histogram();
    for m in ms {
        hist.add(&m.latency).expect("histograms share bounds");
    }
    let mut extra = BTreeMap::new();
    let names: std::collections::BTreeSet<&String> =
        ms.iter().flat_map(|m| m.extra.keys()).collect();
    for name in names {
        let mut vals: Vec<f64> = ms
            .iter()
            .filter_map(|m| m.extra.get(name).copied())
            .collect();
        vals.sort_by(f64::total_cmp);
        extra.insert(name.clone(), median(&vals));
    }
    let pct = |q: f64| {
        if hist.is_empty() {
            0
        } else {
            hist.value_at_quantile(q)
        }
    };
    ResultRow {
        scenario: scenario.to_owned(),
        implementation: c.name.clone(),
        keel: c.keel,
        threads,
        ops_per_sec: median(&rates),
        ops_per_sec_min: rates.first().copied().unwrap_or(0.0),
        ops_per_sec_max: rates.last().copied().unwrap_or(0.0),
        p50_ns: pct(0.50),
        p99_ns: pct(0.99),
        p999_ns: pct(0.999),
        rounds: ms.len(),
        extra,
    }
}

/// Median of sorted values (mean of the middle two for an even count).
fn median(sorted: &[f64]) -> f64 {
    match sorted.len() {
        0 => 0.0,
        n if n % 2 == 1 => sorted[n / 2],
        n => (sorted[n / 2 - 1] + sorted[n / 2]) / 2.0,
    }
}

/// `12.3M`, `456.7k`, `89`.
pub fn fmt_rate(v: f64) -> String {
    if v >= 1e9 {
        format!("{:.2}G", v / 1e9)
    } else if v >= 1e6 {
        format!("{:.2}M", v / 1e6)
    } else if v >= 1e3 {
        format!("{:.1}k", v / 1e3)
    } else {
        format!("{v:.0}")
    }
}

/// `35ns`, `1.2µs`, `3.4ms`.
pub fn fmt_ns(ns: u64) -> String {
    let v = ns as f64;
    if v >= 1e9 {
        format!("{:.2}s", v / 1e9)
    } else if v >= 1e6 {
        format!("{:.2}ms", v / 1e6)
    } else if v >= 1e3 {
        format!("{:.1}µs", v / 1e3)
    } else {
        format!("{ns}ns")
    }
}

fn fmt_extra(extra: &BTreeMap<String, f64>) -> String {
    extra
        .iter()
        .map(|(k, v)| format!("  {k}={v:.3}"))
        .collect::<String>()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::harness::record;
    use std::time::Duration;

    fn fixed(ops: u64, extra: f64) -> impl FnMut(usize, Duration) -> Measurement {
        move |_, _| {
            let mut m = Measurement::new().with_extra("hit_ratio", extra);
            m.ops = ops;
            m.elapsed = Duration::from_secs(1);
            record(&mut m.latency, Duration::from_nanos(100));
            m
        }
    }

    #[test]
    fn compare_interleaves_and_computes_ratios() {
        let cfg = Config::new(true, vec![1]);
        let mut order = Vec::new();
        let mut report = Report::new("test");
        {
            let order = std::cell::RefCell::new(&mut order);
            let mut a = fixed(2000, 0.5);
            let mut b = fixed(1000, 0.25);
            report.compare(
                &cfg,
                "s",
                1,
                &mut [
                    Contender::keel("keel", |t, d| {
                        order.borrow_mut().push('k');
                        a(t, d)
                    }),
                    Contender::peer("peer", |t, d| {
                        order.borrow_mut().push('p');
                        b(t, d)
                    }),
                ],
            );
        }
        // warm-up k p, then rounds k p / p k / k p
        assert_eq!(order.iter().collect::<String>(), "kpkppkkp");
        assert_eq!(report.results.len(), 2);
        assert_eq!(report.results[0].ops_per_sec, 2000.0);
        assert_eq!(report.results[1].extra["hit_ratio"], 0.25);
        assert_eq!(report.ratios.len(), 1);
        assert_eq!(report.ratios[0].ratio, 2.0);
        let json = serde_json::to_value(&report).unwrap();
        assert_eq!(json["results"][0]["impl"], "keel");
        assert_eq!(json["results"][0]["hit_ratio"], 0.5);
        assert_eq!(json["ratios"][0]["peer"], "peer");
        assert!(json["machine"]["cores"].as_u64().unwrap() >= 1);
    }

    #[test]
    fn median_handles_odd_even_and_empty() {
        assert_eq!(median(&[]), 0.0);
        assert_eq!(median(&[1.0, 5.0, 9.0]), 5.0);
        assert_eq!(median(&[1.0, 3.0]), 2.0);
    }
}

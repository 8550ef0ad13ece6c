//! The terminal summary printed after each system's scenario.

use std::fmt::Write as _;

use keel_bench::report::{fmt_ns, fmt_rate};

use crate::report::model::{SystemReport, Table, TourOutcome};

/// A fixed-width text table.
pub fn table(t: &Table) -> String {
    let cols = t
        .header
        .len()
        .max(t.rows.iter().map(Vec::len).max().unwrap_or(0));
    let mut widths = vec![0usize; cols];
    for row in std::iter::once(&t.header).chain(&t.rows) {
        for (i, c) in row.iter().enumerate() {
            widths[i] = widths[i].max(c.chars().count());
        }
    }
    let line = |row: &[String]| {
        let mut s = String::from("  │");
        for (i, w) in widths.iter().enumerate() {
            let c = row.get(i).map_or("", String::as_str);
            let pad = w - c.chars().count();
            if i == 0 {
                let _ = write!(s, " {c}{} │", " ".repeat(pad));
            } else {
                let _ = write!(s, " {}{c} │", " ".repeat(pad));
            }
        }
        s.push('\n');
        s
    };
    let rule = |l: &str, m: &str, r: &str| {
        let parts: Vec<String> = widths.iter().map(|w| "─".repeat(w + 2)).collect();
        format!("  {l}{}{r}\n", parts.join(m))
    };
    let mut out = String::new();
    if !t.title.is_empty() {
        let _ = writeln!(out, "  {}", t.title);
    }
    out.push_str(&rule("┌", "┬", "┐"));
    out.push_str(&line(&t.header));
    out.push_str(&rule("├", "┼", "┤"));
    for r in &t.rows {
        out.push_str(&line(r));
    }
    out.push_str(&rule("└", "┴", "┘"));
    out
}

/// The summary table of a system's headline rows.
pub fn summary_table(r: &SystemReport) -> Table {
    let mut t = Table::new(
        format!("{} — {}", r.title, r.crate_name),
        &["scenario", "throughput", "p50", "p99"],
    );
    for s in &r.summary {
        t.row(vec![
            s.name.clone(),
            format!("{} {}", fmt_rate(s.throughput), s.unit),
            fmt_ns(s.p50_ns),
            fmt_ns(s.p99_ns),
        ]);
    }
    t
}

/// Summary, checks and notes of one system, as printed by `keel tour`.
pub fn system_summary(r: &SystemReport) -> String {
    let mut out = table(&summary_table(r));
    for c in &r.checks {
        let _ = writeln!(
            out,
            "  {} {} — {}",
            if c.passed { "✔" } else { "✘" },
            c.name,
            c.detail
        );
    }
    for n in &r.notes {
        let _ = writeln!(out, "  · {n}");
    }
    out
}

/// The closing lines: checks passed, failures, where the report is.
pub fn closing(outcome: &TourOutcome) -> String {
    let total: usize = outcome.systems.iter().map(|s| s.checks.len()).sum();
    let failed: Vec<String> = outcome
        .systems
        .iter()
        .flat_map(|s| {
            s.checks
                .iter()
                .filter(|c| !c.passed)
                .map(move |c| format!("{}: {}", s.crate_name, c.name))
        })
        .collect();
    let mut out = format!(
        "\n{} systems, {} checks passed, {} failed, {} scenario errors, {:.1}s\n",
        outcome.systems.len(),
        total - failed.len(),
        failed.len(),
        outcome.errors.len(),
        outcome.elapsed_secs
    );
    for f in failed {
        let _ = writeln!(out, "  ✘ {f}");
    }
    for (name, e) in &outcome.errors {
        let _ = writeln!(out, "  ✘ {name}: {e}");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_aligns_columns() {
        let mut t = Table::new("t", &["a", "bb"]);
        t.row(vec!["xyz".into(), "1".into()]);
        let s = table(&t);
        let lines: Vec<&str> = s.lines().collect();
        assert_eq!(lines[2].chars().count(), lines[4].chars().count());
        assert!(lines[4].contains("│ xyz │  1 │"), "{s}");
    }
}

//! The HTML report: one self-contained page (inline CSS and SVG, no scripts, no network).

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use keel_bench::report::fmt_rate;

use crate::report::model::{Table, TourOutcome};
use crate::report::text::summary_table;

/// Escapes text for HTML element content and attribute values.
pub fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// Removes an XML declaration so the SVG can be inlined in HTML.
fn inline_svg(svg: &str) -> &str {
    match svg.find("<svg") {
        Some(i) => &svg[i..],
        None => svg,
    }
}

fn table_html(t: &Table) -> String {
    let mut s = String::from("<table>");
    if !t.title.is_empty() {
        let _ = write!(s, "<caption>{}</caption>", escape(&t.title));
    }
    s.push_str("<thead><tr>");
    for h in &t.header {
        let _ = write!(s, "<th>{}</th>", escape(h));
    }
    s.push_str("</tr></thead><tbody>");
    for r in &t.rows {
        s.push_str("<tr>");
        for c in r {
            let _ = write!(s, "<td>{}</td>", escape(c));
        }
        s.push_str("</tr>");
    }
    s.push_str("</tbody></table>");
    s
}

const CSS: &str = r#"
:root { --ok:#0a7d4f; --bad:#b3261e; --ink:#1d2330; --mute:#5b6472; --line:#e3e6ea; --bg:#f6f7f9; }
* { box-sizing: border-box; }
body { margin:0; font: 15px/1.5 system-ui, -apple-system, "Segoe UI", sans-serif; color:var(--ink); background:var(--bg); }
header { background:#14213d; color:#fff; padding:28px 40px; }
header h1 { margin:0 0 4px; font-size:26px; }
header p { margin:0; color:#c9d2e3; }
main { max-width:1180px; margin:0 auto; padding:24px 40px 60px; }
nav { display:flex; gap:12px; flex-wrap:wrap; margin:0 0 24px; }
nav a { text-decoration:none; color:var(--ink); background:#fff; border:1px solid var(--line); border-radius:8px; padding:10px 14px; min-width:170px; }
nav a b { display:block; }
nav a span { font-size:13px; color:var(--mute); }
.badge { display:inline-block; font-size:12px; font-weight:600; padding:2px 8px; border-radius:10px; color:#fff; }
.ok { background:var(--ok); } .bad { background:var(--bad); }
section.system { background:#fff; border:1px solid var(--line); border-radius:12px; padding:22px 28px; margin:0 0 28px; }
section.system h2 { margin:0 0 6px; font-size:21px; }
.scenario { color:var(--mute); margin:0 0 16px; }
table { border-collapse:collapse; margin:10px 0 18px; font-variant-numeric:tabular-nums; }
caption { text-align:left; font-weight:600; padding:0 0 6px; }
th, td { border-bottom:1px solid var(--line); padding:6px 14px 6px 0; text-align:right; }
th:first-child, td:first-child { text-align:left; }
th { font-size:13px; color:var(--mute); font-weight:600; }
ul.checks { list-style:none; padding:0; margin:8px 0 18px; }
ul.checks li { padding:3px 0; }
ul.checks .mark { display:inline-block; width:22px; font-weight:700; }
ul.checks .pass .mark { color:var(--ok); } ul.checks .fail .mark { color:var(--bad); }
ul.checks .detail { color:var(--mute); }
.charts { display:grid; grid-template-columns: repeat(auto-fill, minmax(460px, 1fr)); gap:18px; }
figure { margin:0; border:1px solid var(--line); border-radius:8px; padding:8px; background:#fff; }
figure svg { width:100%; height:auto; }
figcaption { font-size:13px; color:var(--mute); padding:4px 6px 2px; }
.notes { color:var(--mute); font-size:14px; }
.errors { background:#fdecea; border:1px solid #f5c2bf; padding:12px 18px; border-radius:8px; }
footer { color:var(--mute); font-size:13px; }
"#;

/// Renders the whole page.
pub fn render(outcome: &TourOutcome) -> String {
    let mut h = String::new();
    let checks: usize = outcome.systems.iter().map(|s| s.checks.len()).sum();
    let failed: usize = outcome
        .systems
        .iter()
        .map(|s| s.checks.iter().filter(|c| !c.passed).count())
        .sum();
    let _ = write!(
        h,
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <title>Keel tour</title><style>{CSS}</style></head><body>\
         <header><h1>Keel tour</h1><p>{} systems · {} of {} checks passed · {:.1}s{}</p></header><main>",
        outcome.systems.len(),
        checks - failed,
        checks,
        outcome.elapsed_secs,
        if outcome.quick { " · quick run" } else { "" }
    );
    if !outcome.errors.is_empty() {
        h.push_str("<div class=\"errors\"><b>Scenarios that failed to run</b><ul>");
        for (name, e) in &outcome.errors {
            let _ = write!(h, "<li><b>{}</b>: {}</li>", escape(name), escape(e));
        }
        h.push_str("</ul></div>");
    }
    h.push_str("<nav>");
    for s in &outcome.systems {
        let head = s
            .summary
            .first()
            .map(|r| format!("{} {}", fmt_rate(r.throughput), r.unit))
            .unwrap_or_default();
        let _ = write!(
            h,
            "<a href=\"#{id}\"><b>{title}</b><span>{head}</span><br><span class=\"badge {cls}\">{state}</span></a>",
            id = escape(&s.crate_name),
            title = escape(&s.title),
            head = escape(&head),
            cls = if s.passed() { "ok" } else { "bad" },
            state = if s.passed() {
                "all checks pass"
            } else {
                "check failed"
            },
        );
    }
    h.push_str("</nav>");
    for s in &outcome.systems {
        let _ = write!(
            h,
            "<section class=\"system\" id=\"{}\"><h2>{} <small><code>{}</code></small></h2><p class=\"scenario\">{}</p>",
            escape(&s.crate_name),
            escape(&s.title),
            escape(&s.crate_name),
            escape(&s.scenario)
        );
        h.push_str(&table_html(&summary_table(s)));
        h.push_str("<ul class=\"checks\">");
        for c in &s.checks {
            let _ = write!(
                h,
                "<li class=\"{}\"><span class=\"mark\">{}</span>{} <span class=\"detail\">— {}</span></li>",
                if c.passed { "pass" } else { "fail" },
                if c.passed { "✔" } else { "✘" },
                escape(&c.name),
                escape(&c.detail)
            );
        }
        h.push_str("</ul><div class=\"charts\">");
        for c in &s.charts {
            let _ = write!(
                h,
                "<figure>{}<figcaption><b>{}</b> — {}</figcaption></figure>",
                inline_svg(&c.svg),
                escape(&c.title),
                escape(&c.caption)
            );
        }
        h.push_str("</div>");
        for t in &s.tables {
            h.push_str(&table_html(t));
        }
        if !s.notes.is_empty() {
            h.push_str("<div class=\"notes\"><ul>");
            for n in &s.notes {
                let _ = write!(h, "<li>{}</li>", escape(n));
            }
            h.push_str("</ul></div>");
        }
        h.push_str("</section>");
    }
    h.push_str(
        "<footer>Generated by <code>keel tour</code>. Throughput is operations per second of wall time; \
         p50/p99 come from HDR histograms of sampled operations. Each crate's docs explain its method.\
         </footer></main></body></html>\n",
    );
    h
}

/// Writes `index.html` (and `tour.json`) into `dir`, creating it; returns the page's path.
///
/// # Errors
/// If the directory or files cannot be written.
pub fn write(outcome: &TourOutcome, dir: &Path) -> anyhow::Result<PathBuf> {
    std::fs::create_dir_all(dir)?;
    let index = dir.join("index.html");
    std::fs::write(&index, render(outcome))?;
    std::fs::write(
        dir.join("tour.json"),
        serde_json::to_string_pretty(outcome)?,
    )?;
    for s in &outcome.systems {
        for (i, c) in s.charts.iter().enumerate() {
            std::fs::write(dir.join(format!("{}-{}.svg", s.crate_name, i + 1)), &c.svg)?;
        }
    }
    Ok(index)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::model::{Chart, SummaryRow, SystemReport};

    #[test]
    fn page_escapes_text_and_inlines_charts() {
        let mut r = SystemReport::new("keel-x", "X <&>", "a scenario");
        r.summary.push(SummaryRow {
            name: "ops".into(),
            throughput: 1.5e6,
            unit: "ops/s".into(),
            p50_ns: 40,
            p99_ns: 900,
        });
        r.check("0 lost", true, "100 of 100");
        r.check("bounded", false, "grew");
        r.charts.push(Chart::new(
            "c",
            "what to see",
            "<?xml version=\"1.0\"?><svg id=\"z\"></svg>".into(),
        ));
        let o = TourOutcome {
            quick: true,
            elapsed_secs: 1.0,
            systems: vec![r],
            errors: vec![],
        };
        let page = render(&o);
        assert!(page.contains("X &lt;&amp;&gt;"));
        assert!(page.contains("<svg id=\"z\">") && !page.contains("<?xml"));
        assert!(page.contains("1 of 2 checks passed"));
        assert!(page.contains("1.50M ops/s"));
    }
}

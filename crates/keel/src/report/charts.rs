//! SVG charts for the tour report, drawn with plotters into strings.
//!
//! Two shapes cover the tour: [`line_chart`] (something over time, one line per series)
//! and [`bar_chart`] (categories side by side, one bar per series in each group).

use plotters::prelude::*;

/// One named line (or one bar colour): `(x, y)` points for a line chart, or one value
/// per category for a bar chart (`x` ignored).
#[derive(Debug, Clone)]
pub struct Series {
    /// Legend label.
    pub name: String,
    /// The data.
    pub points: Vec<(f64, f64)>,
}

impl Series {
    /// A series from `(x, y)` points.
    pub fn new(name: impl Into<String>, points: Vec<(f64, f64)>) -> Self {
        Self {
            name: name.into(),
            points,
        }
    }

    /// A bar series: one value per category, in category order.
    pub fn bars(name: impl Into<String>, values: impl IntoIterator<Item = f64>) -> Self {
        Self::new(
            name,
            values
                .into_iter()
                .enumerate()
                .map(|(i, v)| (i as f64, v))
                .collect(),
        )
    }
}

const WIDTH: u32 = 760;
const HEIGHT: u32 = 360;

/// Colour-blind-friendly palette (Okabe–Ito).
const PALETTE: [RGBColor; 8] = [
    RGBColor(0, 114, 178),
    RGBColor(213, 94, 0),
    RGBColor(0, 158, 115),
    RGBColor(204, 121, 167),
    RGBColor(230, 159, 0),
    RGBColor(86, 180, 233),
    RGBColor(120, 120, 120),
    RGBColor(240, 228, 66),
];

fn colour(i: usize) -> RGBColor {
    PALETTE[i % PALETTE.len()]
}

fn padded_range(lo: f64, hi: f64, from_zero: bool) -> std::ops::Range<f64> {
    let lo = if from_zero { lo.min(0.0) } else { lo };
    if hi.partial_cmp(&lo) != Some(std::cmp::Ordering::Greater) {
        return lo..lo + 1.0;
    }
    lo..hi + (hi - lo) * 0.08
}

/// A line chart, one line per series, y axis from zero.
///
/// # Errors
/// If plotters fails to draw (it does not for finite data).
pub fn line_chart(
    title: &str,
    x_label: &str,
    y_label: &str,
    series: &[Series],
) -> anyhow::Result<String> {
    let pts = series
        .iter()
        .flat_map(|s| s.points.iter())
        .filter(|(x, y)| x.is_finite() && y.is_finite());
    let (mut x0, mut x1, mut y1) = (f64::INFINITY, f64::NEG_INFINITY, 0.0f64);
    for &(x, y) in pts {
        x0 = x0.min(x);
        x1 = x1.max(x);
        y1 = y1.max(y);
    }
    if !x0.is_finite() {
        (x0, x1) = (0.0, 1.0);
    }
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (WIDTH, HEIGHT)).into_drawing_area();
        root.fill(&WHITE)?;
        let mut chart = ChartBuilder::on(&root)
            .caption(title, ("sans-serif", 18))
            .margin(12)
            .x_label_area_size(36)
            .y_label_area_size(64)
            .build_cartesian_2d(x0..x1.max(x0 + f64::EPSILON), padded_range(0.0, y1, true))?;
        chart
            .configure_mesh()
            .x_desc(x_label)
            .y_desc(y_label)
            .light_line_style(RGBColor(235, 235, 235))
            .y_label_formatter(&|v| short_number(*v))
            .x_label_formatter(&|v| short_number(*v))
            .draw()?;
        for (i, s) in series.iter().enumerate() {
            let c = colour(i);
            chart
                .draw_series(LineSeries::new(s.points.iter().copied(), c.stroke_width(2)))?
                .label(s.name.clone())
                .legend(move |(x, y)| {
                    PathElement::new(vec![(x, y), (x + 18, y)], c.stroke_width(3))
                });
        }
        if series.len() > 1 || series.first().is_some_and(|s| !s.name.is_empty()) {
            chart
                .configure_series_labels()
                .background_style(WHITE.mix(0.85))
                .border_style(RGBColor(200, 200, 200))
                .position(SeriesLabelPosition::UpperRight)
                .draw()?;
        }
        root.present()?;
    }
    Ok(svg)
}

/// A grouped bar chart: one group per category, one bar per series inside each group.
///
/// # Errors
/// If plotters fails to draw (it does not for finite data).
pub fn bar_chart(
    title: &str,
    y_label: &str,
    categories: &[String],
    series: &[Series],
) -> anyhow::Result<String> {
    let y1 = series
        .iter()
        .flat_map(|s| s.points.iter().map(|p| p.1))
        .filter(|v| v.is_finite())
        .fold(0.0f64, f64::max);
    let n_cat = categories.len().max(1);
    let n_ser = series.len().max(1);
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (WIDTH, HEIGHT)).into_drawing_area();
        root.fill(&WHITE)?;
        let mut chart = ChartBuilder::on(&root)
            .caption(title, ("sans-serif", 18))
            .margin(12)
            .x_label_area_size(40)
            .y_label_area_size(64)
            .build_cartesian_2d(0.0..n_cat as f64, padded_range(0.0, y1, true))?;
        let cats = categories.to_vec();
        chart
            .configure_mesh()
            .disable_x_mesh()
            .y_desc(y_label)
            .light_line_style(RGBColor(235, 235, 235))
            .x_labels(n_cat * 2 + 1)
            .x_label_formatter(&move |v| {
                let i = v.floor() as usize;
                let centre = (v - v.floor() - 0.5).abs() < 1e-6;
                if centre {
                    cats.get(i).cloned().unwrap_or_default()
                } else {
                    String::new()
                }
            })
            .y_label_formatter(&|v| short_number(*v))
            .draw()?;
        let group = 0.8;
        let w = group / n_ser as f64;
        for (si, s) in series.iter().enumerate() {
            let c = colour(si);
            chart
                .draw_series(s.points.iter().map(|&(ci, v)| {
                    let x = ci + 0.1 + w * si as f64;
                    Rectangle::new([(x, 0.0), (x + w * 0.92, v)], c.filled())
                }))?
                .label(s.name.clone())
                .legend(move |(x, y)| Rectangle::new([(x, y - 5), (x + 12, y + 5)], c.filled()));
        }
        if series.len() > 1 {
            chart
                .configure_series_labels()
                .background_style(WHITE.mix(0.85))
                .border_style(RGBColor(200, 200, 200))
                .position(SeriesLabelPosition::UpperRight)
                .draw()?;
        }
        root.present()?;
    }
    Ok(svg)
}

/// `1.2M`, `35k`, `0.25`: axis labels that fit.
pub fn short_number(v: f64) -> String {
    let a = v.abs();
    if a >= 1e9 {
        format!("{:.1}G", v / 1e9)
    } else if a >= 1e6 {
        format!("{:.1}M", v / 1e6)
    } else if a >= 1e4 {
        format!("{:.0}k", v / 1e3)
    } else if a >= 100.0 || v == v.trunc() {
        format!("{v:.0}")
    } else {
        format!("{v:.2}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn line_chart_renders_svg_with_title_and_legend() {
        let svg = line_chart(
            "allowed over time",
            "seconds",
            "requests",
            &[
                Series::new("gcra", vec![(0.0, 1.0), (1.0, 3.0)]),
                Series::new("fixed window", vec![(0.0, 2.0), (1.0, 0.0)]),
            ],
        )
        .unwrap();
        assert!(svg.starts_with("<svg"));
        assert!(svg.contains("allowed over time"));
        assert!(svg.contains("fixed window"));
    }

    #[test]
    fn bar_chart_renders_each_category() {
        let cats = vec!["node-a".to_string(), "node-b".to_string()];
        let svg = bar_chart("load", "keys", &cats, &[Series::bars("ring", [10.0, 12.0])]).unwrap();
        assert!(svg.contains("node-a") && svg.contains("node-b"));
        assert!(svg.matches("<rect").count() >= 2);
    }

    #[test]
    fn empty_and_flat_data_do_not_fail() {
        line_chart("empty", "x", "y", &[]).unwrap();
        line_chart(
            "flat",
            "x",
            "y",
            &[Series::new("z", vec![(1.0, 0.0), (1.0, 0.0)])],
        )
        .unwrap();
        bar_chart("none", "y", &[], &[]).unwrap();
    }
}

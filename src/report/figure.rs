//! Figures of a matrix's results (`[[figures]]` in the matrix), one SVG per column plus the CSV
//! of the numbers drawn (fixed decimals, so both are checked like the tables):
//!
//! - `marginal-likelihood`: p(y), the test-set mean of the softmax probability of each class,
//!   classes ordered by training count (the paper's Figures 1 and 2), with the uniform 1/k.
//! - `meta-rates`: the Meta Sampler's learned per-class rates at the end of stage 2 (Figure 3).
//! - `per-class-accuracy`: test accuracy of each class, ordered by training count.
//!
//! Every curve is the mean over the finished seeds of a cell.

use std::fmt::Write as _;

use super::{CellResults, MatrixReport};
use crate::store::Metrics;
use crate::vocab::{FigureKind, FigureSpec};

/// The values a figure of `kind` draws from one run's record (`None`: the run has none).
fn values(kind: FigureKind, m: &Metrics) -> Option<Vec<f64>> {
    match kind {
        FigureKind::MarginalLikelihood => Some(m.evaluation.marginal_likelihood.clone()),
        FigureKind::MetaRates => m.meta_rates.as_ref().and_then(|h| h.last().cloned()),
        FigureKind::PerClassAccuracy => Some(m.evaluation.per_class_accuracy.clone()),
    }
}

/// A drawn figure: its file stem, SVG and data.
#[derive(Clone, Debug)]
pub struct Figure {
    /// `<matrix>.<name or kind>.<dataset>-if<IF>`.
    pub stem: String,
    /// The line chart as a standalone SVG document (classes from head to tail, one polyline per
    /// method), written to `<paper>/figures/<stem>.svg`.
    pub svg: String,
    /// The CSV of the curves.
    pub csv: String,
}

/// Mean over a cell's runs of a per-class vector, when every run has it.
fn mean_curve(cell: &CellResults, kind: FigureKind) -> Option<Vec<f64>> {
    let curves: Vec<Vec<f64>> = cell.runs.iter().filter_map(|m| values(kind, m)).collect();
    if curves.is_empty() || curves.len() < cell.runs.len() {
        return None;
    }
    let n = curves.len() as f64;
    Some((0..curves[0].len()).map(|j| curves.iter().map(|c| c[j]).sum::<f64>() / n).collect())
}

/// The figures of `report` for `specs`.
#[must_use]
pub fn draw(report: &MatrixReport, specs: &[FigureSpec]) -> Vec<Figure> {
    let mut out = Vec::new();
    for spec in specs {
        for column in &report.columns {
            let series: Vec<(String, Vec<f64>)> = report
                .cells
                .iter()
                .filter(|c| &c.cell.column.id() == column)
                .filter(|c| spec.methods.is_empty() || spec.methods.contains(&c.cell.method.name))
                .filter_map(|c| mean_curve(c, spec.kind).map(|v| (c.cell.method.name.clone(), v)))
                .collect();
            if series.is_empty() {
                continue;
            }
            let title = format!(
                "{} {}: {}",
                report.name,
                column.replace("/if", " IF "),
                spec.kind.y_label()
            );
            let reference = (spec.kind == FigureKind::MarginalLikelihood).then(|| {
                let k = series[0].1.len() as f64;
                1.0 / k
            });
            out.push(Figure {
                stem: format!(
                    "{}.{}.{}",
                    report.name,
                    spec.name.as_deref().unwrap_or(spec.kind.label()),
                    column.replace('/', "-")
                ),
                svg: svg(&title, spec.kind.y_label(), &series, reference),
                csv: csv(&series),
            });
        }
    }
    out
}

fn csv(series: &[(String, Vec<f64>)]) -> String {
    let mut out = String::from("class");
    for (name, _) in series {
        let _ = write!(out, ",{name}");
    }
    out.push('\n');
    for j in 0..series[0].1.len() {
        let _ = write!(out, "{j}");
        for (_, values) in series {
            let _ = write!(out, ",{:.5}", values[j]);
        }
        out.push('\n');
    }
    out
}

const COLORS: [&str; 10] = [
    "#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f",
    "#bcbd22", "#17becf",
];

/// A line chart: x = class (training count decreasing), one polyline per series.
fn svg(
    title: &str,
    y_label: &str,
    series: &[(String, Vec<f64>)],
    reference: Option<f64>,
) -> String {
    let (width, height) = (700.0, 400.0);
    let (left, right, top, bottom) = (70.0, 250.0, 40.0, 50.0);
    let (plot_w, plot_h) = (width - left - right, height - top - bottom);
    let values = series.iter().flat_map(|(_, v)| v.iter().copied()).chain(reference);
    let (lo, hi) =
        values.fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), v| (a.min(v), b.max(v)));
    let pad = ((hi - lo) * 0.05).max(1e-6);
    let (lo, hi) = (lo - pad, hi + pad);
    let classes = series[0].1.len();
    let x =
        |j: usize| left + plot_w * if classes > 1 { j as f64 / (classes - 1) as f64 } else { 0.5 };
    let y = |v: f64| top + plot_h * (hi - v) / (hi - lo);
    let mut out = format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{width}\" height=\"{height}\" font-family=\"sans-serif\" font-size=\"11\">\n<rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n<text x=\"{left}\" y=\"20\" font-size=\"13\">{}</text>\n",
        escape(title)
    );
    let _ = writeln!(
        out,
        "<rect x=\"{left}\" y=\"{top}\" width=\"{plot_w}\" height=\"{plot_h}\" fill=\"none\" stroke=\"#333\"/>"
    );
    for i in 0..=4 {
        let v = lo + (hi - lo) * f64::from(i) / 4.0;
        let _ = writeln!(
            out,
            "<text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"end\">{v:.3}</text>",
            left - 5.0,
            y(v) + 4.0
        );
    }
    let step = classes.div_ceil(10).max(1);
    for j in (0..classes).step_by(step) {
        let _ = writeln!(
            out,
            "<text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"middle\">{j}</text>",
            x(j),
            top + plot_h + 14.0
        );
    }
    let _ = writeln!(
        out,
        "<text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"middle\">class, by decreasing training count (0 = head)</text>",
        left + plot_w / 2.0,
        height - 15.0
    );
    let _ = writeln!(
        out,
        "<text transform=\"translate(15,{:.1}) rotate(-90)\" text-anchor=\"middle\">{}</text>",
        top + plot_h / 2.0,
        escape(y_label)
    );
    if let Some(r) = reference {
        let _ = writeln!(
            out,
            "<line x1=\"{left}\" x2=\"{:.1}\" y1=\"{:.1}\" y2=\"{:.1}\" stroke=\"#999\" stroke-dasharray=\"4 3\"/>",
            left + plot_w,
            y(r),
            y(r)
        );
    }
    for (i, (name, values)) in series.iter().enumerate() {
        let color = COLORS[i % COLORS.len()];
        let points: Vec<String> =
            values.iter().enumerate().map(|(j, v)| format!("{:.1},{:.1}", x(j), y(*v))).collect();
        let _ = writeln!(
            out,
            "<polyline points=\"{}\" fill=\"none\" stroke=\"{color}\" stroke-width=\"1.8\"/>",
            points.join(" ")
        );
        let ly = top + 14.0 * i as f64 + 8.0;
        let lx = left + plot_w + 12.0;
        let _ = writeln!(
            out,
            "<line x1=\"{lx}\" x2=\"{:.1}\" y1=\"{ly:.1}\" y2=\"{ly:.1}\" stroke=\"{color}\" stroke-width=\"2\"/><text x=\"{:.1}\" y=\"{:.1}\">{}</text>",
            lx + 18.0,
            lx + 22.0,
            ly + 4.0,
            escape(name)
        );
    }
    out.push_str("</svg>\n");
    out
}

fn escape(text: &str) -> String {
    text.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;")
}

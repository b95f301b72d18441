//! Figures of a matrix's results (`[[figures]]` in the matrix), one SVG per column plus the CSV
//! of the numbers drawn (fixed decimals, so both are checked like the tables), drawn with
//! `plotters`:
//!
//! - `marginal-likelihood`: p(y), the test-set mean of the softmax probability of each class,
//!   classes ordered by training count (the paper's Figures 1 and 2), with the uniform 1/k.
//! - `meta-rates`: the Meta Sampler's learned per-class rates at the end of stage 2 (Figure 3).
//! - `per-class-accuracy`: test accuracy of each class, ordered by training count.
//!
//! Every curve is the mean over the finished seeds of a cell, with its 95% band: per class, the
//! interval of [`Estimate::with_test_noise`] (Student's t over the seeds; for per-class accuracy
//! also the class's test images, Agresti-Coull), drawn shaded and written to the CSV.

use std::fmt::Write as _;

use plotters::prelude::*;

use super::estimate::{self, Estimate, Sample};
use super::{CellResults, MatrixReport, LEVEL};
use crate::store::Metrics;
use crate::vocab::{FigureKind, FigureSpec};

/// The values a figure of `kind` draws from one run's record (`None`: the run has none).
fn values(kind: FigureKind, m: &Metrics) -> Option<Vec<f64>> {
    match kind {
        FigureKind::MarginalLikelihood => {
            m.evaluation.as_ref().map(|e| e.marginal_likelihood.clone())
        }
        FigureKind::MetaRates => m.meta_rates.as_ref().and_then(|h| h.last().cloned()),
        FigureKind::PerClassAccuracy => m.evaluation.as_ref().map(|e| e.per_class_accuracy.clone()),
    }
}

/// A drawn figure: its file stem, SVG and data.
#[derive(Clone, Debug)]
pub struct Figure {
    /// `<matrix>.<name or kind>.<dataset>-if<IF>`.
    pub stem: String,
    /// The line chart as a standalone SVG document (classes from head to tail, one line and band
    /// per method), written to `<paper>/figures/<stem>.svg`.
    pub svg: String,
    /// The CSV of the curves and their bands.
    pub csv: String,
}

/// One method's curve: per class, the mean over seeds and its 95% band (none from one run, or
/// where the seeds tie on a class and nothing else carries noise).
#[derive(Clone, Debug)]
struct Curve {
    name: String,
    mean: Vec<f64>,
    band: Option<Vec<(f64, f64)>>,
    /// Index into [`COLORS`] (modulo its length).
    colour: usize,
}

/// The curve of a cell, when every run has the values.
fn curve(cell: &CellResults, kind: FigureKind, report: &MatrixReport) -> Option<Curve> {
    let curves: Vec<Vec<f64>> = cell.runs.iter().filter_map(|m| values(kind, m)).collect();
    if curves.is_empty() || curves.len() < cell.runs.len() {
        return None;
    }
    let n = curves.len() as f64;
    let classes = curves[0].len();
    let mean: Vec<f64> =
        (0..classes).map(|j| curves.iter().map(|c| c[j]).sum::<f64>() / n).collect();
    let z = estimate::normal_quantile(LEVEL);
    let band = (0..classes)
        .map(|j| {
            let sample = Sample::new(curves.iter().map(|c| c[j]).collect()).ok()?;
            let test = match kind {
                FigureKind::PerClassAccuracy => {
                    let images = cell.test.per_class.get(j).copied().unwrap_or(0);
                    estimate::agresti_coull_variance(mean[j], images, z)
                }
                FigureKind::MarginalLikelihood | FigureKind::MetaRates => 0.0,
            };
            let e = Estimate::with_test_noise(&sample, test, LEVEL, (0.0, 1.0)).ok()?;
            // Tied seeds with no test term give no band rather than one of zero width.
            (e.upper > e.lower).then_some((e.lower, e.upper))
        })
        .collect();
    // A cell with failed runs is drawn over those that finished, and says so.
    let name = match cell.failures.len() {
        0 => cell.cell.method.name.clone(),
        k => format!("{} ({k} failed)", cell.cell.method.name),
    };
    // One colour per method in every figure of the matrix, by its place in the matrix.
    let colour = report.methods.iter().position(|m| m == &cell.cell.method.name).unwrap_or(0);
    Some(Curve { name, mean, band, colour })
}

/// The figures of `report` for `specs`: one per column, or, for a spec with `paper`, one with
/// every column a panel, in the layout of the paper's figure.
#[must_use]
pub fn draw(report: &MatrixReport, specs: &[FigureSpec]) -> Vec<Figure> {
    let mut out = Vec::new();
    for spec in specs {
        let name = spec.name.as_deref().unwrap_or(spec.kind.label());
        let mut panels = Vec::new();
        for column in &report.columns {
            let cells: Vec<&CellResults> =
                report.cells.iter().filter(|c| &c.cell.column.id() == column).collect();
            let wanted = |f: f64| spec.imbalance.as_ref().is_none_or(|list| list.contains(&f));
            if cells.first().is_none_or(|c| !wanted(c.cell.column.imbalance)) {
                continue;
            }
            let curves: Vec<Curve> = cells
                .iter()
                .filter(|c| spec.methods.is_empty() || spec.methods.contains(&c.cell.method.name))
                .filter_map(|c| curve(c, spec.kind, report))
                .collect();
            if curves.is_empty() {
                continue;
            }
            let classes = curves[0].mean.len();
            let heading = column.replace("/if", " IF ");
            let reference =
                (spec.kind == FigureKind::MarginalLikelihood).then(|| 1.0 / classes as f64);
            let single = Panel {
                title: format!("{} {heading}: {}", report.name, spec.kind.y_label()),
                curves,
                reference,
                y_range: None,
            };
            if spec.paper.is_none() {
                out.push(Figure {
                    stem: format!("{}.{name}.{}", report.name, column.replace('/', "-")),
                    svg: svg(None, spec.kind.y_label(), std::slice::from_ref(&single)),
                    csv: csv(&single.curves),
                });
            }
            panels.push(Panel {
                title: heading,
                y_range: spec.paper.and_then(|p| p.y_range(classes)),
                ..single
            });
        }
        if let (Some(paper), false) = (spec.paper, panels.is_empty()) {
            let heading = format!(
                "{}: {}, in the layout of the paper's Figure {}",
                report.name,
                spec.kind.y_label(),
                paper.number()
            );
            let mut data = String::new();
            for p in &panels {
                let _ = write!(data, "# {}\n{}", p.title, csv(&p.curves));
            }
            out.push(Figure {
                stem: format!("{}.{name}.figure{}", report.name, paper.number()),
                svg: svg(Some(&heading), spec.kind.y_label(), &panels),
                csv: data,
            });
        }
    }
    out
}

/// One panel of a figure: its title, curves, the dashed reference level and a fixed y range
/// (widened to hold the data).
struct Panel {
    title: String,
    curves: Vec<Curve>,
    reference: Option<f64>,
    y_range: Option<(f64, f64)>,
}

/// Per class: each method's mean, then its band's ends (empty from one run).
fn csv(curves: &[Curve]) -> String {
    let mut out = String::from("class");
    for c in curves {
        let _ = write!(out, ",{0},{0}_lower,{0}_upper", c.name);
    }
    out.push('\n');
    for j in 0..curves[0].mean.len() {
        let _ = write!(out, "{j}");
        for c in curves {
            let _ = write!(out, ",{:.5}", c.mean[j]);
            match &c.band {
                Some(band) => {
                    let _ = write!(out, ",{:.5},{:.5}", band[j].0, band[j].1);
                }
                None => out.push_str(",,"),
            }
        }
        out.push('\n');
    }
    out
}

/// The line colours, matplotlib's `tab10`.
const COLORS: [RGBColor; 10] = [
    RGBColor(0x1f, 0x77, 0xb4),
    RGBColor(0xff, 0x7f, 0x0e),
    RGBColor(0x2c, 0xa0, 0x2c),
    RGBColor(0xd6, 0x27, 0x28),
    RGBColor(0x94, 0x67, 0xbd),
    RGBColor(0x8c, 0x56, 0x4b),
    RGBColor(0xe3, 0x77, 0xc2),
    RGBColor(0x7f, 0x7f, 0x7f),
    RGBColor(0xbc, 0xbd, 0x22),
    RGBColor(0x17, 0xbe, 0xcf),
];

/// Line charts side by side, one per panel: x = class (training count decreasing), one line
/// and shaded band per curve, the reference level dashed; one legend beside them.
fn svg(heading: Option<&str>, y_label: &str, panels: &[Panel]) -> String {
    let mut out = String::new();
    let drawn = draw_svg(&mut out, heading, y_label, panels);
    drawn.expect("plotters draws into a String without I/O");
    out
}

/// Width of one panel and of the legend, in pixels.
const PANEL: u32 = 660;
const LEGEND: u32 = 200;

fn draw_svg<'a>(
    out: &'a mut String,
    heading: Option<&str>,
    y_label: &str,
    panels: &[Panel],
) -> Result<(), Box<dyn std::error::Error + 'a>> {
    let count = u32::try_from(panels.len()).unwrap_or(1).max(1);
    let height = if heading.is_some() { 470 } else { 440 };
    let root = SVGBackend::with_string(out, (PANEL * count + LEGEND, height)).into_drawing_area();
    root.fill(&WHITE)?;
    let body = match heading {
        Some(text) => root.titled(text, ("sans-serif", 20))?,
        None => root.clone(),
    };
    let (plots, legend) = body.split_horizontally(PANEL * count);
    let mut entries: Vec<(String, ShapeStyle)> = Vec::new();
    for (panel, area) in panels.iter().zip(plots.split_evenly((1, panels.len().max(1)))) {
        for entry in draw_panel(&area, panel, y_label)? {
            if !entries.iter().any(|(name, _)| name == &entry.0) {
                entries.push(entry);
            }
        }
    }
    for (k, (name, style)) in entries.iter().enumerate() {
        let y = 60 + 24 * i32::try_from(k).unwrap_or(0);
        legend.draw(&PathElement::new([(8, y), (34, y)], *style))?;
        legend.draw(&Text::new(name.as_str(), (42, y - 8), ("sans-serif", 14)))?;
    }
    let banded = panels.iter().flat_map(|p| &p.curves).any(|c| c.band.is_some());
    let note = if banded { "shaded: 95% band over seeds" } else { "" };
    let y = 60 + 24 * i32::try_from(entries.len()).unwrap_or(0);
    legend.draw(&Text::new(note, (8, y), ("sans-serif", 13)))?;
    root.present()?;
    Ok(())
}

/// One panel; returns its legend entries.
fn draw_panel<'a, DB: DrawingBackend + 'a>(
    area: &DrawingArea<DB, plotters::coord::Shift>,
    panel: &Panel,
    y_label: &str,
) -> Result<Vec<(String, ShapeStyle)>, Box<dyn std::error::Error + 'a>>
where
    DB::ErrorType: 'static,
{
    let curves = &panel.curves;
    let ends = curves
        .iter()
        .flat_map(|c| {
            c.mean.iter().copied().chain(c.band.iter().flatten().flat_map(|(lo, hi)| [*lo, *hi]))
        })
        .chain(panel.reference);
    let (lo, hi) = ends.fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), v| (a.min(v), b.max(v)));
    // The paper's range, widened where the data fall outside it; else the data's, padded.
    let pad = ((hi - lo) * 0.05).max(1e-6);
    let (lo, hi) = panel.y_range.map_or((lo - pad, hi + pad), |(a, b)| (lo.min(a), hi.max(b)));
    let classes = curves[0].mean.len();
    let last = classes.saturating_sub(1) as f64;
    let mut chart = ChartBuilder::on(area)
        .caption(&panel.title, ("sans-serif", 18))
        .margin(12)
        .x_label_area_size(50)
        .y_label_area_size(70)
        .build_cartesian_2d(-0.5..last + 0.5, lo..hi)?;
    chart
        .configure_mesh()
        .disable_x_mesh()
        .light_line_style(WHITE)
        .x_labels(classes.min(20))
        .y_labels(8)
        .label_style(("sans-serif", 14))
        .axis_desc_style(("sans-serif", 15))
        .x_label_formatter(&|x| format!("{x:.0}"))
        .y_label_formatter(&|y| format!("{y:.3}"))
        .x_desc("class, by decreasing training count (0 = head)")
        .y_desc(y_label)
        .draw()?;
    let mut entries = Vec::new();
    if let Some(r) = panel.reference {
        let grey = RGBColor(0x99, 0x99, 0x99);
        chart.draw_series(DashedLineSeries::new(
            [(-0.5, r), (last + 0.5, r)],
            4,
            3,
            ShapeStyle::from(&grey).stroke_width(1),
        ))?;
        entries.push((format!("uniform 1/{classes}"), ShapeStyle::from(&grey).stroke_width(1)));
    }
    for c in curves {
        let color = COLORS[c.colour % COLORS.len()];
        if let Some(band) = &c.band {
            let outline: Vec<(f64, f64)> = band
                .iter()
                .enumerate()
                .map(|(j, b)| (j as f64, b.1))
                .chain(band.iter().enumerate().rev().map(|(j, b)| (j as f64, b.0)))
                .collect();
            chart.draw_series([Polygon::new(outline, color.mix(0.18).filled())])?;
        }
        chart.draw_series(LineSeries::new(
            c.mean.iter().enumerate().map(|(j, v)| (j as f64, *v)),
            color.stroke_width(2),
        ))?;
        entries.push((c.name.clone(), color.stroke_width(2)));
    }
    Ok(entries)
}

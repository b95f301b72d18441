//! A matrix's results in the layout of the paper table it regenerates (`[paper]` in the
//! matrix): the paper's rows in the paper's order, the matrix's columns, and in each cell our
//! mean ± standard error with its 95% interval and n beside the paper's value and a verdict.
//! Written as Markdown, LaTeX (booktabs) and CSV.

use std::fmt::Write as _;

use super::estimate::Estimate;
use super::{estimate_of, MatrixReport};
use crate::config::PaperWire;
use crate::reference::{Table, Value};

/// How our interval relates to the paper's value.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// The paper's value lies inside our 95% interval.
    Consistent,
    /// Our whole interval lies above the paper's value.
    Above,
    /// Our whole interval lies below it.
    Below,
    /// No finished run.
    NotRun,
    /// One run: no interval.
    OneRun,
    /// The paper has no value here (another dataset, or a row it does not report).
    NoPaperValue,
}

impl Verdict {
    /// Label in tables.
    #[must_use]
    pub fn label(self) -> &'static str {
        match self {
            Verdict::Consistent => "consistent",
            Verdict::Above => "above",
            Verdict::Below => "below",
            Verdict::NotRun => "not run",
            Verdict::OneRun => "one run",
            Verdict::NoPaperValue => "-",
        }
    }
}

/// One cell of the layout.
#[derive(Clone, Debug)]
pub struct LayoutCell {
    /// Our estimate (top-1 %), when at least two runs finished.
    pub ours: Option<Estimate>,
    /// The value of a single finished run.
    pub single: Option<f64>,
    /// Percentile bootstrap interval of the mean over the seeds (the alternative to `ours`'s
    /// Student-t interval).
    pub bootstrap: Option<(f64, f64)>,
    /// Finished runs and runs asked for.
    pub runs: (usize, usize),
    /// The paper's value.
    pub paper: Option<Value>,
    /// How the paper's value relates to our 95% interval (inside, above, below), or why there is no
    /// comparison (not run, one run, no paper value).
    pub verdict: Verdict,
}

/// The table: rows (paper row, our method) and cells per column.
#[derive(Clone, Debug)]
pub struct Layout {
    /// The reference table's name.
    pub table: String,
    /// Column ids.
    pub columns: Vec<String>,
    /// Per row: the paper's row name (or our method's, for rows the paper lacks), our method.
    pub rows: Vec<(String, Option<String>)>,
    /// `cells[row][column]`.
    pub cells: Vec<Vec<LayoutCell>>,
}

/// Builds the layout of `report` for `paper`.
///
/// # Errors
/// An unknown reference table (the plan validates it, so only a stale plan).
pub fn build(report: &MatrixReport, paper: &PaperWire) -> Result<Layout, String> {
    let table = Table::named(&paper.table)?;
    let mut rows: Vec<(String, Option<String>)> = table
        .rows()
        .into_iter()
        .map(|row| {
            let method = paper.rows.iter().find(|(_, r)| r.as_str() == row).map(|(m, _)| m.clone());
            (row.to_string(), method)
        })
        .collect();
    for method in &report.methods {
        if !paper.rows.contains_key(method) {
            rows.push((format!("{method} (not in the paper's table)"), Some(method.clone())));
        }
    }
    let columns = layout_columns(report, &table);
    let cells = rows
        .iter()
        .map(|(row, method)| {
            columns
                .iter()
                .map(|column| cell(report, &table, row, method.as_deref(), column))
                .collect()
        })
        .collect();
    let columns = columns.into_iter().map(|c| c.label).collect();
    Ok(Layout { table: paper.table.clone(), columns, rows, cells })
}

/// A metric of a run shown in a layout column.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Metric {
    Top1,
    Many,
    Medium,
    Few,
}

impl Metric {
    fn of(self, e: &crate::train::evaluate::Evaluation) -> Option<f64> {
        match self {
            Metric::Top1 => Some(e.top1),
            Metric::Many => e.many,
            Metric::Medium => e.medium,
            Metric::Few => e.few,
        }
    }
}

/// A layout column: its label (the reference table's column key), the matrix column it reads
/// and the metric.
struct LayoutColumn {
    label: String,
    column: String,
    metric: Metric,
}

/// The matrix's columns; when the reference table reports shot groups (Table 3's
/// `imagenet-lt/many`, …), each dataset gets many, medium, few and overall columns.
fn layout_columns(report: &MatrixReport, table: &Table) -> Vec<LayoutColumn> {
    let mut out = Vec::new();
    for column in &report.columns {
        let dataset = column.split('/').next().unwrap_or(column);
        if table.has_groups() {
            for (group, metric) in [
                ("many", Metric::Many),
                ("medium", Metric::Medium),
                ("few", Metric::Few),
                ("overall", Metric::Top1),
            ] {
                let label = format!("{dataset}/{group}");
                out.push(LayoutColumn { label, column: column.clone(), metric });
            }
        } else {
            out.push(LayoutColumn {
                label: column.clone(),
                column: column.clone(),
                metric: Metric::Top1,
            });
        }
    }
    out
}

fn cell(
    report: &MatrixReport,
    table: &Table,
    row: &str,
    method: Option<&str>,
    column: &LayoutColumn,
) -> LayoutCell {
    let results = method.and_then(|m| {
        report.cells.iter().find(|c| c.cell.method.name == m && c.cell.column.id() == column.column)
    });
    let runs = results.map_or((0, 0), |c| (c.runs.len(), c.expected));
    let metric = column.metric;
    let estimate = results.and_then(|c| estimate_of(&c.runs, |m| metric.of(&m.evaluation)));
    let paper = table.get(row, &column.label).cloned();
    let ours = estimate.as_ref().and_then(|e| e.as_ref().ok().copied());
    let single = estimate.as_ref().and_then(|e| e.as_ref().err().copied());
    let bootstrap = results.and_then(|c| {
        let values: Vec<f64> =
            c.runs.iter().filter_map(|m| metric.of(&m.evaluation)).map(|v| 100.0 * v).collect();
        let stream = match metric {
            Metric::Top1 => format!("report/{}/{}/bootstrap", report.name, c.cell.id()),
            Metric::Many | Metric::Medium | Metric::Few => {
                format!("report/{}/{}/{}/bootstrap", report.name, c.cell.id(), column.label)
            }
        };
        let mut rng = crate::seed::Seed(0).rng(&stream);
        super::bootstrap::mean_interval(&values, super::LEVEL, &mut rng).ok()
    });
    let verdict = match (&estimate, &paper) {
        (None, _) => Verdict::NotRun,
        (Some(Err(_)), _) => Verdict::OneRun,
        (Some(Ok(_)), None) => Verdict::NoPaperValue,
        (Some(Ok(e)), Some(p)) if p.value < e.lower => Verdict::Above,
        (Some(Ok(e)), Some(p)) if p.value > e.upper => Verdict::Below,
        (Some(Ok(_)), Some(_)) => Verdict::Consistent,
    };
    LayoutCell { ours, single, bootstrap, runs, paper, verdict }
}

fn paper_text(v: Option<&Value>) -> String {
    v.map_or_else(|| "-".to_string(), |v| v.text.clone())
}

/// `Table 5 of the paper` or `the official README's numbers`.
fn title(table: &str) -> String {
    table.strip_prefix("table").map_or_else(
        || "the official README's numbers".to_string(),
        |n| format!("Table {n} of the paper"),
    )
}

fn ours_text(c: &LayoutCell) -> String {
    match (&c.ours, c.runs) {
        (Some(e), (n, expected)) => {
            let of = if n < expected { format!(" of {expected}") } else { String::new() };
            format!("{:.2} ± {:.2} [{:.2}, {:.2}] n={n}{of}", e.mean, e.std_err, e.lower, e.upper)
        }
        (None, _) => c.single.map_or_else(|| "not run".to_string(), |v| format!("{v:.2} (n=1)")),
    }
}

fn heading(column: &str) -> String {
    column.replace("/if", " IF ")
}

/// Markdown: per cell, ours / the paper's / verdict.
#[must_use]
pub fn markdown(layout: &Layout, caption: &str) -> String {
    let mut out = format!(
        "# In the layout of {}\n\n{}: ours as mean ± standard error [95% Student-t interval] n; the paper's value (± its standard error over 3 runs, where given); verdict: consistent when the paper's value lies in our interval, above or below otherwise.{}\n\n| Method |",
        title(&layout.table),
        if layout.columns.iter().any(|c| c.ends_with("/many")) {
            "Accuracy (%; many/medium/few: the mean of the group's per-class accuracies, overall: top-1)"
        } else {
            "Top-1 (%)"
        },
        if layout.cells.iter().flatten().all(|c| c.paper.is_none()) {
            " The paper reports no values for these datasets (a stand-in): the rows follow its table, and the claims in the matrix's report test its conclusions."
        } else {
            ""
        }
    );
    for column in &layout.columns {
        let _ = write!(out, " {} (ours) | paper | verdict |", heading(column));
    }
    out.push_str("\n|---|");
    out.push_str(&"---|---:|---|".repeat(layout.columns.len()));
    out.push('\n');
    for ((row, _), cells) in layout.rows.iter().zip(&layout.cells) {
        let _ = write!(out, "| {row} |");
        for c in cells {
            let _ = write!(
                out,
                " {} | {} | {} |",
                ours_text(c),
                paper_text(c.paper.as_ref()),
                c.verdict.label()
            );
        }
        out.push('\n');
    }
    let _ = writeln!(out, "\n{caption}");
    out
}

/// LaTeX with booktabs: ours as `mean ± s.e.` with the paper's value in parentheses.
#[must_use]
pub fn latex(layout: &Layout, caption: &str) -> String {
    let mut out = format!(
        "% Generated by `balms report`; needs \\usepackage{{booktabs}}.\n\\begin{{table}}[t]\n\\centering\n\\small\n\\begin{{tabular}}{{l{}}}\n\\toprule\nMethod",
        "c".repeat(layout.columns.len())
    );
    for column in &layout.columns {
        let _ = write!(out, " & {}", heading(column).replace('_', "\\_"));
    }
    out.push_str(" \\\\\n\\midrule\n");
    for ((row, _), cells) in layout.rows.iter().zip(&layout.cells) {
        out.push_str(&row.replace('&', "\\&").replace('_', "\\_"));
        for c in cells {
            let ours = c.ours.as_ref().map_or_else(
                || "--".to_string(),
                |e| format!("${:.1} \\pm {:.1}$", e.mean, e.std_err),
            );
            let paper = c.paper.as_ref().map_or_else(String::new, |p| {
                format!(" ({})", p.text.split(' ').next().unwrap_or(""))
            });
            let _ = write!(out, " & {ours}{paper}");
        }
        out.push_str(" \\\\\n");
    }
    let _ = write!(
        out,
        "\\bottomrule\n\\end{{tabular}}\n\\caption{{{}}}\n\\end{{table}}\n",
        caption.replace('%', "\\%").replace('_', "\\_").replace('#', "\\#")
    );
    out
}

/// CSV, one line per cell.
#[must_use]
pub fn csv(layout: &Layout) -> String {
    let mut out = String::from(
        "row,method,column,mean,std_err,lower,upper,bootstrap_lower,bootstrap_upper,n,expected,paper_value,paper_std_err,verdict\n",
    );
    for ((row, method), cells) in layout.rows.iter().zip(&layout.cells) {
        for (column, c) in layout.columns.iter().zip(cells) {
            let e = |f: fn(&Estimate) -> f64| {
                c.ours.as_ref().map_or_else(String::new, |e| format!("{:.4}", f(e)))
            };
            let _ = writeln!(
                out,
                "{row},{},{column},{},{},{},{},{},{},{},{},{},{},{}",
                method.as_deref().unwrap_or(""),
                e(|e| e.mean),
                e(|e| e.std_err),
                e(|e| e.lower),
                e(|e| e.upper),
                c.bootstrap.map_or_else(String::new, |b| format!("{:.4}", b.0)),
                c.bootstrap.map_or_else(String::new, |b| format!("{:.4}", b.1)),
                c.runs.0,
                c.runs.1,
                c.paper.as_ref().map_or_else(String::new, |p| p.value.to_string()),
                c.paper
                    .as_ref()
                    .and_then(|p| p.std_err)
                    .map_or_else(String::new, |s| s.to_string()),
                c.verdict.label()
            );
        }
    }
    out
}

//! A matrix's results in the layout of the paper table it regenerates (`[paper]` in the
//! matrix): the paper's rows in the paper's order, the matrix's columns, and in each cell our
//! mean ± standard error with its 95% interval and n beside the paper's value and a verdict.
//! Written as Markdown, LaTeX (booktabs) and CSV.

use std::fmt::Write as _;

use super::estimate::Estimate;
use super::{MatrixReport, Metric, MIN_RUNS};
use crate::config::PaperWire;
use crate::data::longtail::Shot;
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
    /// Fewer runs than [`MIN_RUNS`] finished (the count), or some failed: too little to judge.
    Inconclusive(Shortfall),
    /// Every run that ran failed.
    Failed,
    /// No finished run.
    NotRun,
    /// One run: no interval.
    OneRun,
    /// The paper has no value here (another dataset, or a row it does not report).
    NoPaperValue,
}

/// Why a verdict is withheld.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Shortfall {
    /// Only this many runs finished.
    FewRuns(usize),
    /// This many runs failed; the finished ones need not be a fair sample.
    FailedRuns(usize),
    /// Every finished run gives the same value: the seeds' interval has no width.
    SeedsTie,
}

impl Verdict {
    /// Label in tables.
    #[must_use]
    pub fn label(self) -> String {
        match self {
            Verdict::Consistent => "consistent".to_string(),
            Verdict::Above => "above".to_string(),
            Verdict::Below => "below".to_string(),
            Verdict::Inconclusive(Shortfall::FewRuns(n)) => {
                format!("inconclusive ({n} runs; a verdict needs {MIN_RUNS})")
            }
            Verdict::Inconclusive(Shortfall::FailedRuns(n)) => {
                format!("inconclusive ({n} failed)")
            }
            Verdict::Inconclusive(Shortfall::SeedsTie) => "inconclusive (seeds tie)".to_string(),
            Verdict::Failed => "failed".to_string(),
            Verdict::NotRun => "not run".to_string(),
            Verdict::OneRun => "one run".to_string(),
            Verdict::NoPaperValue => "-".to_string(),
        }
    }
}

/// One cell of the layout.
#[derive(Clone, Debug)]
pub struct LayoutCell {
    /// Our estimate (top-1 %, or AP in points), when at least two runs finished.
    pub ours: Option<Estimate>,
    /// The value of a single finished run.
    pub single: Option<f64>,
    /// Percentile bootstrap interval of the mean over the seeds (the alternative to `ours`'s
    /// Student-t interval).
    pub bootstrap: Option<(f64, f64)>,
    /// Finished runs and runs asked for.
    pub runs: (usize, usize),
    /// Runs that failed.
    pub failed: usize,
    /// When every run that ran failed: `failed: <error> (k/n runs)`.
    pub failure: Option<String>,
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
        let detection = report
            .cells
            .iter()
            .any(|c| &c.cell.column.id() == column && c.cell.column.dataset.is_detection());
        if detection {
            for name in super::TABLE4_METRICS {
                let label = format!("{dataset}/{name}");
                out.push(LayoutColumn {
                    label,
                    column: column.clone(),
                    metric: Metric::Named(name),
                });
            }
        } else if table.has_groups() {
            for (group, metric) in [
                ("many", Metric::Group(Shot::Many)),
                ("medium", Metric::Group(Shot::Medium)),
                ("few", Metric::Group(Shot::Few)),
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
    // "Overall" is the cell's headline: top-1, or the mean per-class accuracy on an unbalanced
    // test set.
    let metric = match (column.metric, results) {
        (Metric::Top1, Some(c)) => c.headline(),
        (metric, _) => metric,
    };
    let estimate = results.and_then(|c| c.estimate(metric));
    let paper = table.get(row, &column.label).cloned();
    let ours = estimate.as_ref().and_then(|e| e.as_ref().ok().copied());
    let single = estimate.as_ref().and_then(|e| e.as_ref().err().copied());
    let values = results.map(|c| c.values(metric)).unwrap_or_default();
    let bootstrap = results.and_then(|c| {
        let stream = match metric {
            Metric::Top1 | Metric::MeanPerClass => {
                format!("report/{}/{}/bootstrap", report.name, c.cell.id())
            }
            Metric::Group(_) | Metric::Named(_) => {
                format!("report/{}/{}/{}/bootstrap", report.name, c.cell.id(), column.label)
            }
        };
        let mut rng = crate::seed::Seed(0).rng(&stream);
        let enough = values.len() >= super::claims::BOOTSTRAP_MIN_SEEDS;
        enough
            .then(|| super::bootstrap::mean_interval(&values, super::LEVEL, &mut rng).ok())
            .flatten()
    });
    // The verdict reads the seeds' own Student-t interval: the paper measured on the same test
    // images, so their sampling noise is shared and does not separate the two.
    let seeds_only = super::estimate::Sample::new(values)
        .ok()
        .and_then(|sample| Estimate::t_interval(&sample, super::LEVEL).ok());
    let failed = results.map_or(0, |c| c.failures.len());
    let verdict = match (&estimate, &paper, seeds_only) {
        (None, _, _) if failed > 0 && runs.0 == 0 => Verdict::Failed,
        (None, _, _) => Verdict::NotRun,
        (Some(_), Some(_), _) if failed > 0 => Verdict::Inconclusive(Shortfall::FailedRuns(failed)),
        (Some(Err(_)), _, _) => Verdict::OneRun,
        (Some(Ok(_)), None, _) => Verdict::NoPaperValue,
        (Some(Ok(e)), Some(_), _) if e.n < MIN_RUNS => {
            Verdict::Inconclusive(Shortfall::FewRuns(e.n))
        }
        (Some(Ok(_)), Some(_), Some(s)) if s.upper <= s.lower => {
            Verdict::Inconclusive(Shortfall::SeedsTie)
        }
        (Some(Ok(_)), Some(p), Some(s)) if p.value < s.lower => Verdict::Above,
        (Some(Ok(_)), Some(p), Some(s)) if p.value > s.upper => Verdict::Below,
        (Some(Ok(_)), Some(_), _) => Verdict::Consistent,
    };
    let failure = results.and_then(super::CellResults::all_failed);
    LayoutCell { ours, single, bootstrap, runs, failed, failure, paper, verdict }
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
    let failed = if c.failed > 0 { format!(", {} failed", c.failed) } else { String::new() };
    match (&c.ours, c.runs) {
        (Some(e), (n, expected)) => {
            let of = if n < expected { format!(" of {expected}") } else { String::new() };
            format!(
                "{:.2} ± {:.2} [{:.2}, {:.2}] n={n}{of}{failed}",
                e.mean, e.std_err, e.lower, e.upper
            )
        }
        (None, _) if c.single.is_none() && c.failure.is_some() => {
            c.failure.clone().unwrap_or_default()
        }
        (None, _) => {
            c.single.map_or_else(|| "not run".to_string(), |v| format!("{v:.2} (n=1){failed}"))
        }
    }
}

fn heading(column: &str) -> String {
    column.replace("/if", " IF ")
}

/// Markdown: per cell, ours / the paper's / verdict.
#[must_use]
pub fn markdown(layout: &Layout, caption: &str) -> String {
    let ap = layout.columns.iter().any(|c| c.ends_with("/APm"));
    let mut out = format!(
        "# In the layout of {}\n\n{}: ours as mean ± standard error [95% interval] n{}; the paper's value (± its standard error over 3 runs, where given); verdict: the paper's value against the seeds' own 95% Student-t interval (the paper used the same test images, so their noise is shared and is left out): consistent inside it, above or below otherwise, inconclusive with fewer than {MIN_RUNS} finished runs, tied seeds or failed runs.{}\n\n| Method |",
        title(&layout.table),
        if ap {
            "AP (points; APm: mask AP, APf / APc / APr: mask AP on LVIS's frequent / common / rare categories, APb: box AP; scored by balms's evaluator, the official LVIS API, on lvis_v0.5_val)"
        } else if layout.columns.iter().any(|c| c.ends_with("/many")) {
            "Accuracy (%; many/medium/few: the mean of the group's per-class accuracies, overall: top-1, or the mean per-class accuracy where the test set is unbalanced)"
        } else {
            "Top-1 (%; the mean per-class accuracy where the test set is unbalanced)"
        },
        if ap {
            " (the seeds' Student-t interval: AP has no binomial test-set term)"
        } else {
            " (the interval carries the seeds' spread and the test set's sampling noise; see the caption)"
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
        let _ = write!(out, " & {}", tex(&heading(column)));
    }
    out.push_str(" \\\\\n\\midrule\n");
    for ((row, _), cells) in layout.rows.iter().zip(&layout.cells) {
        out.push_str(&tex(row));
        for c in cells {
            let failed =
                if c.failed > 0 { format!(" ({} failed)", c.failed) } else { String::new() };
            let ours = c.ours.as_ref().map_or_else(
                || {
                    if c.failed > 0 && c.runs.0 == 0 {
                        format!("failed ({}/{})", c.failed, c.runs.1)
                    } else {
                        "--".to_string()
                    }
                },
                |e| format!("${:.1} \\pm {:.1}${failed}", e.mean, e.std_err),
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
        tex(&caption.replace("**", "").replace('`', ""))
    );
    out
}

/// Text with LaTeX's special characters escaped (errors and captions come from records).
fn tex(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for ch in text.chars() {
        match ch {
            '\\' => out.push_str("\\textbackslash{}"),
            '&' | '%' | '$' | '#' | '_' | '{' | '}' => {
                out.push('\\');
                out.push(ch);
            }
            '~' => out.push_str("\\textasciitilde{}"),
            '^' => out.push_str("\\textasciicircum{}"),
            _ => out.push(ch),
        }
    }
    out
}

/// CSV, one line per cell.
#[must_use]
pub fn csv(layout: &Layout) -> String {
    let mut out = String::from(
        "row,method,column,mean,std_err,lower,upper,bootstrap_lower,bootstrap_upper,n,expected,failed,paper_value,paper_std_err,verdict,failure\n",
    );
    for ((row, method), cells) in layout.rows.iter().zip(&layout.cells) {
        for (column, c) in layout.columns.iter().zip(cells) {
            let e = |f: fn(&Estimate) -> f64| {
                c.ours.as_ref().map_or_else(String::new, |e| format!("{:.4}", f(e)))
            };
            let _ = writeln!(
                out,
                "{row},{},{column},{},{},{},{},{},{},{},{},{},{},{},{},{}",
                method.as_deref().unwrap_or(""),
                e(|e| e.mean),
                e(|e| e.std_err),
                e(|e| e.lower),
                e(|e| e.upper),
                c.bootstrap.map_or_else(String::new, |b| format!("{:.4}", b.0)),
                c.bootstrap.map_or_else(String::new, |b| format!("{:.4}", b.1)),
                c.runs.0,
                c.runs.1,
                c.failed,
                c.paper.as_ref().map_or_else(String::new, |p| p.value.to_string()),
                c.paper
                    .as_ref()
                    .and_then(|p| p.std_err)
                    .map_or_else(String::new, |s| s.to_string()),
                c.verdict.label(),
                quoted(c.failure.as_deref().unwrap_or(""))
            );
        }
    }
    out
}

/// A CSV field, quoted when it holds a comma, a quote or a line break (RFC 4180).
fn quoted(field: &str) -> String {
    if field.contains([',', '"', '\n']) {
        format!("\"{}\"", field.replace('"', "\"\""))
    } else {
        field.to_string()
    }
}

//! The reporter: aggregates the seeds of each cell into means with Student-t intervals and
//! renders Markdown tables under `paper/`. It reads `metrics.json` (and provenance from
//! `config.json`) only; rendering is a pure function of the collected results.

pub mod bootstrap;
pub mod claims;
pub mod compare;
pub mod estimate;
pub mod figure;
pub mod layout;

use std::collections::BTreeSet;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use serde::Deserialize;
use tabled::builder::Builder;
use tabled::settings::Style;

use crate::data::longtail::Shot;
use crate::matrix::{Cell, Plan};
use crate::store::{self, Metrics, Provenance, RunStatus, Store};
use estimate::{Estimate, Sample};

/// Confidence level of every interval.
pub const LEVEL: f64 = 0.95;

/// The finished runs of one cell.
#[derive(Clone, Debug)]
pub struct CellResults {
    /// The cell (a method on a column) these runs belong to.
    pub cell: Cell,
    /// Finished runs with the current configuration, in seed order.
    pub runs: Vec<Metrics>,
    /// Runs the plan asks for.
    pub expected: usize,
}

/// Everything a matrix's report shows.
#[derive(Clone, Debug)]
pub struct MatrixReport {
    /// Matrix name (the file's `name`): the report's stem, `<paper>/<name>.md`.
    pub name: String,
    /// The matrix's one-line description, printed under the report's title and in table captions.
    pub description: String,
    /// Seeds of the plan.
    pub seeds: Vec<u64>,
    /// Column ids, in order.
    pub columns: Vec<String>,
    /// Method names, in order.
    pub methods: Vec<String>,
    /// Each method's model-selection rule, in method order.
    pub selections: Vec<String>,
    /// Methods whose model is chosen on the test set (marked optimistic).
    pub optimistic: Vec<String>,
    /// Results per cell, column-major as [`Plan::cells`].
    pub cells: Vec<CellResults>,
    /// Distinct provenance lines of the runs (device, threads, libtorch, revision).
    pub provenance: Vec<String>,
    /// Whether all methods of a column at a seed trained on the same subset.
    pub subsets_agree: bool,
    /// The matrix's claims, tested.
    pub claims: Vec<claims::ClaimResult>,
    /// The paper table the matrix regenerates.
    pub paper: Option<crate::config::PaperWire>,
    /// The figures to draw.
    pub figures: Vec<crate::vocab::FigureSpec>,
}

impl MatrixReport {
    /// Whether every run of the plan has finished.
    #[must_use]
    pub fn is_complete(&self) -> bool {
        self.cells.iter().all(|c| c.runs.len() == c.expected)
    }
}

#[derive(Deserialize)]
struct ConfigRecord {
    provenance: Provenance,
}

/// Collects a plan's finished runs from the store.
///
/// # Errors
/// Unreadable records, naming the file.
pub fn collect(plan: &Plan, store: &Store) -> anyhow::Result<MatrixReport> {
    let mut cells = Vec::new();
    let mut provenance = BTreeSet::new();
    for cell in plan.cells() {
        let mut runs = Vec::new();
        for &seed in &plan.seeds {
            let dir = store.run_dir(&plan.name, &cell, seed.0);
            if let RunStatus::Finished(metrics) =
                Store::status(&dir, &plan.config_hash(&cell, seed))?
            {
                let config: ConfigRecord = store::read_json(&dir.join("config.json"))?;
                provenance.insert(describe(&config.provenance));
                runs.push(*metrics);
            }
        }
        cells.push(CellResults { cell, runs, expected: plan.seeds.len() });
    }
    Ok(MatrixReport {
        name: plan.name.clone(),
        description: plan.description.clone(),
        seeds: plan.seeds.iter().map(|s| s.0).collect(),
        columns: plan.columns.iter().map(crate::matrix::Column::id).collect(),
        methods: plan.methods.iter().map(|m| m.name.clone()).collect(),
        selections: plan.methods.iter().map(|m| m.selection_label().to_string()).collect(),
        optimistic: plan
            .methods
            .iter()
            .filter(|m| m.selects_on_test())
            .map(|m| m.name.clone())
            .collect(),
        subsets_agree: subsets_agree(&cells),
        claims: claims::evaluate(
            &plan.claims,
            &cells,
            &plan
                .columns
                .iter()
                .map(|c| (c.dataset.name().to_string(), c.imbalance, c.id()))
                .collect::<Vec<_>>(),
        ),
        cells,
        provenance: provenance.into_iter().collect(),
        paper: plan.paper.clone(),
        figures: plan.figures.clone(),
    })
}

fn describe(p: &Provenance) -> String {
    let dirty = if p.git_dirty { " (built with uncommitted changes)" } else { "" };
    let revision: String = p.git_revision.chars().take(12).collect();
    format!(
        "{}, {} threads, libtorch {}, balms {} at {revision}{dirty}",
        p.device, p.threads, p.libtorch, p.balms_version
    )
}

/// Whether, for every column and seed, all methods' runs share one training-subset hash.
fn subsets_agree(cells: &[CellResults]) -> bool {
    let mut seen = std::collections::HashMap::new();
    cells
        .iter()
        .flat_map(|c| {
            c.runs.iter().map(move |m| ((c.cell.column.id(), m.seed), &m.train_indices_sha256))
        })
        .all(|(key, hash)| seen.entry(key).or_insert(hash) == &hash)
}

/// Summary of one metric over a cell's runs: `None` when no run has it (`Err` holds a single value).
/// Where the validation split comes from: the `val` list for image-list datasets, else images
/// the long-tailed subset leaves unused.
fn validation_source(report: &MatrixReport) -> &'static str {
    let lists = report.cells.iter().any(|c| c.cell.column.dataset.list().is_some());
    let drawn = report.cells.iter().any(|c| c.cell.column.dataset.list().is_none());
    match (lists, drawn) {
        (true, false) => "the dataset's `val` list",
        (true, true) => "the `val` list for image-list datasets; elsewhere 20 images per class the long-tailed subset leaves unused",
        _ => "20 images per class the long-tailed subset leaves unused",
    }
}

fn estimate_of(
    runs: &[Metrics],
    metric: impl Fn(&Metrics) -> Option<f64>,
) -> Option<Result<Estimate, f64>> {
    let values: Vec<f64> = runs.iter().filter_map(&metric).map(|v| 100.0 * v).collect();
    match values.len() {
        0 => None,
        1 => Some(Err(values[0])),
        _ => Some(Ok(Estimate::t_interval(&Sample::new(values).ok()?, LEVEL).ok()?)),
    }
}

fn format_estimate(estimate: Option<Result<Estimate, f64>>, expected: usize, long: bool) -> String {
    match estimate {
        None if long => "not run".to_string(),
        None => "-".to_string(),
        Some(Err(single)) => format!("{single:.2} (n=1)"),
        Some(Ok(e)) if long => {
            let partial = if e.n < expected { format!(" of {expected}") } else { String::new() };
            format!(
                "{:.2} ± {:.2} [{:.2}, {:.2}] n={}{partial}",
                e.mean, e.std_err, e.lower, e.upper, e.n
            )
        }
        Some(Ok(e)) => format!("{:.2} ± {:.2}", e.mean, e.std_err),
    }
}

/// Renders the report as Markdown: the main top-1 table, one many/medium/few table per column,
/// and a caption stating the protocol.
#[must_use]
pub fn render_markdown(report: &MatrixReport) -> String {
    let mut out = format!("# {}\n\n", report.name);
    if !report.description.is_empty() {
        let _ = writeln!(out, "{}\n", report.description);
    }
    let _ = writeln!(out, "Top-1 accuracy (%) on the balanced test set: mean ± standard error over seeds, [95% Student-t interval], n runs.\n");
    let mut main = Builder::default();
    main.push_record(
        std::iter::once("Method".to_string())
            .chain(report.columns.iter().map(|c| c.replace("/if", " IF "))),
    );
    for method in &report.methods {
        let row = report.cells.iter().filter(|c| &c.cell.method.name == method);
        main.push_record(std::iter::once(report.row_name(method)).chain(row.map(|c| {
            format_estimate(estimate_of(&c.runs, |m| Some(m.evaluation.top1)), c.expected, true)
        })));
    }
    let _ = writeln!(out, "{}\n", main.build().with(Style::markdown()));
    out.push_str(&claims::render(&report.claims));
    for column in &report.columns {
        render_groups(&mut out, report, column);
    }
    render_caption(&mut out, report);
    out
}

fn render_groups(out: &mut String, report: &MatrixReport, column: &str) {
    let _ = writeln!(
        out,
        "## {}: many / medium / few-shot accuracy (%)\n",
        column.replace("/if", " IF ")
    );
    let mut table = Builder::default();
    table.push_record([
        "Method",
        "Overall",
        "Many (>100)",
        "Medium (20-100)",
        "Few (<20)",
        "Validation",
    ]);
    for cell in report.cells.iter().filter(|c| c.cell.column.id() == column) {
        let short = |f: fn(&Metrics) -> Option<f64>| {
            format_estimate(estimate_of(&cell.runs, f), cell.expected, false)
        };
        let group = |shot: Shot, f: fn(&Metrics) -> Option<f64>| {
            let text = short(f);
            match test_image_interval(&report.name, cell, shot) {
                Some((lo, hi)) => format!("{text} [{:.1}, {:.1}]", 100.0 * lo, 100.0 * hi),
                None => text,
            }
        };
        table.push_record([
            report.row_name(&cell.cell.method.name),
            short(|m| Some(m.evaluation.top1)),
            group(Shot::Many, |m| m.evaluation.many),
            group(Shot::Medium, |m| m.evaluation.medium),
            group(Shot::Few, |m| m.evaluation.few),
            short(|m| Some(m.validation_top1)),
        ]);
    }
    let _ = writeln!(out, "{}\n", table.build().with(Style::markdown()));
}

/// The class-stratified test-image interval of a cell's `shot` group accuracy (see
/// [`bootstrap::test_image_interval`]); none without runs, without classes in the group, or
/// when the test set is not balanced (every dataset here has a balanced one).
fn test_image_interval(matrix: &str, cell: &CellResults, shot: Shot) -> Option<(f64, f64)> {
    let first = cell.runs.first()?;
    let k = first.class_counts.len();
    let group: Vec<usize> = (0..k).filter(|&c| Shot::of(first.class_counts[c]) == shot).collect();
    let (size, k64) = (first.evaluation.test_size, u64::try_from(k).ok()?);
    if group.is_empty() || size % k64 != 0 {
        return None;
    }
    let images = size / k64;
    let runs: Vec<bootstrap::RunClasses<'_>> = cell
        .runs
        .iter()
        .map(|m| bootstrap::RunClasses { accuracy: &m.evaluation.per_class_accuracy, images })
        .collect();
    let mut rng = crate::seed::Seed(0).rng(&format!("report/{matrix}/{}/{shot:?}", cell.cell.id()));
    bootstrap::test_image_interval(&runs, &group, LEVEL, &mut rng).ok()
}

fn render_caption(out: &mut String, report: &MatrixReport) {
    let seeds: Vec<String> = report.seeds.iter().map(ToString::to_string).collect();
    if report.selections.iter().all(|s| s == "last" || s.starts_with("post hoc")) {
        let _ = writeln!(out, "**Protocol.** Model selection: the last iteration (the test set selects nothing). Seeds: {}.", seeds.join(", "));
    } else {
        let rules: Vec<String> = report
            .methods
            .iter()
            .zip(&report.selections)
            .map(|(m, s)| format!("{m}: {s}"))
            .collect();
        let _ = writeln!(
            out,
            "**Protocol.** Model selection per method: {}. Seeds: {}.",
            rules.join("; "),
            seeds.join(", ")
        );
    }
    if !report.optimistic.is_empty() {
        let _ = writeln!(out, "† Chosen on the test set (the reference code's CIFAR rule): optimistic, shown only to measure that optimism.");
    }
    render_taus(out, report);
    let agree = if report.subsets_agree { "yes" } else { "NO: methods saw different data" };
    let _ = writeln!(out, "Every method of a column at a seed trained on the same long-tailed subset (hash agreement): {agree}.");
    let _ = writeln!(out, "Groups by training count: many > 100, medium 20-100, few < 20 images; a group's accuracy is the unweighted mean of its classes' (\"-\": no class in the group, or no finished run); in brackets, the 95% interval of the seeds' mean group accuracy when each class's test images are resampled ({} class-stratified bootstrap resamples), the part of a gap that test-set noise alone explains. Validation: top-1 on the validation split ({}).", bootstrap::REPLICATES, validation_source(report));
    let _ = writeln!(
        out,
        "Runs: {}.",
        if report.provenance.is_empty() {
            "none".to_string()
        } else {
            report.provenance.join("; ")
        }
    );
}

/// Per-run values worth a line: the tau of post-hoc runs, the variance of learned meta rates.
fn render_taus(out: &mut String, report: &MatrixReport) {
    for cell in &report.cells {
        let line = |what: &str, values: Vec<String>| {
            (!values.is_empty()).then(|| {
                format!(
                    "`{}` on {}: {what} per seed {}.",
                    cell.cell.method.name,
                    cell.cell.column.id(),
                    values.join(", ")
                )
            })
        };
        let taus = cell.runs.iter().filter_map(|m| m.tau).map(|t| format!("{t}")).collect();
        let variances = cell
            .runs
            .iter()
            .filter_map(|m| m.meta_rates_variance)
            .map(|v| format!("{v:.4}"))
            .collect();
        for text in [line("tau", taus), line("variance of the learned rates", variances)]
            .into_iter()
            .flatten()
        {
            let _ = writeln!(out, "{text}");
        }
    }
}

impl MatrixReport {
    /// A method's name as a table row, marked † when chosen on the test set.
    fn row_name(&self, method: &str) -> String {
        if self.optimistic.iter().any(|m| m == method) {
            format!("{method} †")
        } else {
            method.to_string()
        }
    }
}

/// Collects, renders and writes `paper/<matrix>.md`; returns the path.
///
/// # Errors
/// Store or write errors, naming the file.
pub fn write_report(plan: &Plan, store: &Store, paper: &Path) -> anyhow::Result<PathBuf> {
    write_collected(&collect(plan, store)?, paper)
}

/// Renders and writes an already collected report to `paper/<matrix>.md`.
///
/// # Errors
/// Write errors, naming the file.
pub fn write_collected(report: &MatrixReport, paper: &Path) -> anyhow::Result<PathBuf> {
    let path = paper.join(format!("{}.md", report.name));
    store::write_atomic(&path, render_markdown(report).as_bytes())?;
    if let Some(spec) = &report.paper {
        let table = layout::build(report, spec)
            .map_err(|e| anyhow::anyhow!("matrix `{}`: {e}", report.name))?;
        let mut caption = format!("{} ", report.description);
        render_caption(&mut caption, report);
        let file = |extension: &str| paper.join(format!("{}.table.{extension}", report.name));
        store::write_atomic(&file("md"), layout::markdown(&table, &caption).as_bytes())?;
        store::write_atomic(&file("tex"), layout::latex(&table, caption.trim()).as_bytes())?;
        store::write_atomic(&file("csv"), layout::csv(&table).as_bytes())?;
    }
    for drawn in figure::draw(report, &report.figures) {
        let file =
            |extension: &str| paper.join("figures").join(format!("{}.{extension}", drawn.stem));
        store::write_atomic(&file("svg"), drawn.svg.as_bytes())?;
        store::write_atomic(&file("csv"), drawn.csv.as_bytes())?;
    }
    Ok(path)
}

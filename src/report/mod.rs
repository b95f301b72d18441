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
use crate::data::ValidationInfo;
use crate::matrix::{Cell, Plan};
use crate::store::{self, Metrics, Provenance, RunStatus, Store};
use estimate::{Estimate, Sample};

/// Confidence level of every interval.
pub const LEVEL: f64 = 0.95;

/// Finished runs a verdict needs by default (a paper-layout verdict; a claim's, unless it sets
/// `min-seeds`): two seeds give a Student-t interval with one degree of freedom, too little to
/// call a method above or below anything.
pub const MIN_RUNS: usize = 3;

/// The runs of one cell: those that finished, and those that failed.
#[derive(Clone, Debug)]
pub struct CellResults {
    /// The cell (a method on a column) these runs belong to.
    pub cell: Cell,
    /// Finished runs with the current configuration, in seed order.
    pub runs: Vec<Metrics>,
    /// How each finished run's validation split was formed (from its `config.json`), in the
    /// order of `runs` (empty for detectron2 runs).
    pub validation: Vec<ValidationInfo>,
    /// Runs that failed with the current configuration (`failed.json`), in seed order.
    pub failures: Vec<FailedRun>,
    /// Runs the plan asks for.
    pub expected: usize,
    /// The test set the runs were evaluated on.
    pub test: TestSet,
}

/// A run that failed: its seed and the error chain of its `failed.json`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FailedRun {
    /// Matrix seed.
    pub seed: u64,
    /// The recorded error.
    pub error: String,
}

/// Test images per class of a cell's test set.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TestSet {
    /// Images of each class.
    pub per_class: Vec<u64>,
    /// Whether the counts are an assumption (a balanced split of the recorded test size) rather
    /// than the dataset's known split: `image-list` datasets, or a recorded size that disagrees
    /// with the known split.
    pub assumed: bool,
}

impl TestSet {
    /// The dataset's known split when the recorded test size agrees with it, else a balanced
    /// split of the recorded size (marked assumed).
    fn of(cell: &Cell, runs: &[Metrics]) -> TestSet {
        let kind = &cell.column.dataset;
        let classes = kind.classes();
        let known = kind.descriptor().test_images.counts(classes);
        match (known, runs.first().and_then(|m| m.evaluation.as_ref()).map(|e| e.test_size)) {
            (Some(counts), None) => TestSet { per_class: counts, assumed: false },
            (Some(counts), Some(size)) if counts.iter().sum::<u64>() == size => {
                TestSet { per_class: counts, assumed: false }
            }
            (_, size) => {
                let each = size.unwrap_or(0) / u64::try_from(classes.max(1)).expect("fits");
                TestSet { per_class: vec![each; classes], assumed: true }
            }
        }
    }

    /// Whether every class has the same number of test images (top-1 is then the mean
    /// per-class accuracy).
    #[must_use]
    pub fn balanced(&self) -> bool {
        self.per_class.windows(2).all(|w| w[0] == w[1])
    }

    /// Test images in all.
    #[must_use]
    pub fn size(&self) -> u64 {
        self.per_class.iter().sum()
    }
}

/// What a table cell summarises over a cell's runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Metric {
    /// Top-1 accuracy over the test set.
    Top1,
    /// The unweighted mean of the per-class accuracies (balanced accuracy); equal to top-1 on a
    /// balanced test set.
    MeanPerClass,
    /// The unweighted mean of the per-class accuracies of one shot group.
    Group(Shot),
    /// A named metric a detectron2 run records in points (Table 4's `APm`, ...), as a fraction
    /// here like the others.
    Named(&'static str),
}

/// Table 4's columns, in the paper's order: mask AP, mask AP on frequent, common and rare
/// categories, box AP (the named metrics of every detectron2 run, in points).
pub const TABLE4_METRICS: [&str; 5] = ["APm", "APf", "APc", "APr", "APb"];

impl Metric {
    /// The metric of one run (a fraction), when the run has it.
    #[must_use]
    pub fn of(self, m: &Metrics) -> Option<f64> {
        if let Metric::Named(name) = self {
            return m.named_metrics.get(name).map(|v| v / 100.0);
        }
        let e = m.evaluation.as_ref()?;
        match self {
            Metric::Top1 => Some(e.top1),
            Metric::MeanPerClass => {
                let k = e.per_class_accuracy.len();
                (k > 0).then(|| e.per_class_accuracy.iter().sum::<f64>() / k as f64)
            }
            Metric::Group(Shot::Many) => e.many,
            Metric::Group(Shot::Medium) => e.medium,
            Metric::Group(Shot::Few) => e.few,
            Metric::Named(_) => unreachable!("returned above"),
        }
    }

    /// Each class's weight in the metric (summing to 1 over the classes it covers), from the
    /// training counts (shot groups) and the test set (top-1).
    fn weights(self, class_counts: &[usize], test: &TestSet) -> Vec<f64> {
        let k = class_counts.len();
        match self {
            Metric::Top1 => {
                let size = test.size().max(1) as f64;
                (0..k).map(|c| test.per_class.get(c).map_or(0.0, |&m| m as f64 / size)).collect()
            }
            Metric::MeanPerClass => vec![1.0 / k.max(1) as f64; k],
            // AP has no per-class binomial noise term: its interval is the seeds'.
            Metric::Named(_) => Vec::new(),
            Metric::Group(shot) => {
                let members = class_counts.iter().filter(|&&n| Shot::of(n) == shot).count();
                class_counts
                    .iter()
                    .map(|&n| if Shot::of(n) == shot { 1.0 / members as f64 } else { 0.0 })
                    .collect()
            }
        }
    }
}

impl CellResults {
    /// The metric a table leads with: top-1 on a balanced test set, else the mean per-class
    /// accuracy (the long-tailed literature's balanced accuracy).
    #[must_use]
    pub fn headline(&self) -> Metric {
        if self.test.balanced() {
            Metric::Top1
        } else {
            Metric::MeanPerClass
        }
    }

    /// The test set's sampling variance of `metric` (a fraction squared): per class, the
    /// Agresti-Coull variance of its mean accuracy over the runs on its test images, weighted
    /// as the metric weighs the class. Zero without runs.
    #[must_use]
    pub fn test_variance(&self, metric: Metric) -> f64 {
        let Some(first) = self.runs.first() else { return 0.0 };
        let z = estimate::normal_quantile(LEVEL);
        let n = self.runs.len() as f64;
        metric
            .weights(&first.class_counts, &self.test)
            .iter()
            .enumerate()
            .filter(|(_, w)| **w > 0.0)
            .map(|(c, w)| {
                let p = self
                    .runs
                    .iter()
                    .map(|m| m.per_class_accuracy().get(c).copied().unwrap_or(0.0))
                    .sum::<f64>()
                    / n;
                let images = self.test.per_class.get(c).copied().unwrap_or(0);
                w * w * estimate::agresti_coull_variance(p, images, z)
            })
            .sum()
    }

    /// `metric` in points over the finished runs: `None` without a run that has it, `Err` with
    /// the value of a single run, else the mean with the interval of
    /// [`Estimate::with_test_noise`].
    #[must_use]
    pub fn estimate(&self, metric: Metric) -> Option<Result<Estimate, f64>> {
        points(self.values(metric), 1e4 * self.test_variance(metric))
    }

    /// `metric` of each finished run that has it, in points, in seed order.
    #[must_use]
    pub fn values(&self, metric: Metric) -> Vec<f64> {
        self.runs.iter().filter_map(|m| metric.of(m)).map(|v| 100.0 * v).collect()
    }

    /// Validation top-1 in points, with the validation split's binomial noise (its images in
    /// all, from the runs' records).
    #[must_use]
    pub fn validation_estimate(&self) -> Option<Result<Estimate, f64>> {
        let values: Vec<f64> =
            self.runs.iter().filter_map(|m| m.validation_top1).map(|v| 100.0 * v).collect();
        let images =
            self.validation.first().map_or(0, |v| v.per_class * self.cell.column.dataset.classes());
        let mean = values.iter().sum::<f64>() / values.len().max(1) as f64 / 100.0;
        let z = estimate::normal_quantile(LEVEL);
        let variance = if images == 0 {
            0.0
        } else {
            1e4 * estimate::agresti_coull_variance(mean, images as u64, z)
        };
        points(values, variance)
    }

    /// When no run finished and some failed: "failed: <error> (k/n runs)".
    pub(crate) fn all_failed(&self) -> Option<String> {
        (self.runs.is_empty() && !self.failures.is_empty()).then(|| {
            format!(
                "failed: {} ({}/{} runs)",
                self.failure_summary(),
                self.failures.len(),
                self.expected
            )
        })
    }

    /// The failures' error when they share one, shortened; else a pointer to the caption.
    fn failure_summary(&self) -> String {
        let first = &self.failures[0].error;
        if self.failures.iter().all(|f| &f.error == first) {
            short_error(first)
        } else {
            "errors listed below".to_string()
        }
    }

    /// The text of one table cell: the estimate, partial and failed counts, or the failure.
    fn text(&self, estimate: Option<Result<Estimate, f64>>, long: bool) -> String {
        if let Some(failed) = self.all_failed() {
            return if long {
                failed
            } else {
                format!("failed ({}/{})", self.failures.len(), self.expected)
            };
        }
        let finished = estimate.is_some();
        let mut text = match estimate {
            None if long => "not run".to_string(),
            None => "-".to_string(),
            Some(Err(single)) => format!("{single:.2} (n=1)"),
            Some(Ok(e)) if long => {
                let partial = if e.n < self.expected {
                    format!(" of {}", self.expected)
                } else {
                    String::new()
                };
                format!(
                    "{:.2} ± {:.2} [{:.2}, {:.2}] n={}{partial}",
                    e.mean, e.std_err, e.lower, e.upper, e.n
                )
            }
            Some(Ok(e)) => {
                format!("{:.2} ± {:.2} [{:.1}, {:.1}]", e.mean, e.std_err, e.lower, e.upper)
            }
        };
        if finished && !self.failures.is_empty() {
            let _ = write!(text, ", {} failed", self.failures.len());
        }
        text
    }
}

/// A failure's error, at most 80 characters.
fn short_error(error: &str) -> String {
    let line = error.lines().next().unwrap_or("");
    if line.chars().count() <= 80 {
        line.to_string()
    } else {
        format!("{}…", line.chars().take(79).collect::<String>())
    }
}

/// Values in points: none, one, or the interval with `variance` (points squared) of test noise.
fn points(values: Vec<f64>, variance: f64) -> Option<Result<Estimate, f64>> {
    match values.len() {
        0 => None,
        1 => Some(Err(values[0])),
        _ => Estimate::with_test_noise(&Sample::new(values).ok()?, variance, LEVEL, (0.0, 100.0))
            .ok()
            .map(Ok),
    }
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
    /// The scaled protocol's factor (`Plan::scale_by`), stated in every caption.
    pub scale: Option<f64>,
    /// The official protocol the matrix follows and where balms differs from it.
    pub differences: Option<(crate::vocab::Protocol, Vec<crate::matrix::official::Difference>)>,
}

impl MatrixReport {
    /// Whether every run of the plan has finished.
    #[must_use]
    pub fn is_complete(&self) -> bool {
        self.cells.iter().all(|c| c.runs.len() == c.expected)
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "kebab-case")]
struct ConfigRecord {
    provenance: Provenance,
    /// Absent for detectron2 runs, which have no validation split.
    #[serde(default)]
    validation: Option<ValidationInfo>,
}

/// Collects a plan's finished and failed runs from the store.
///
/// # Errors
/// Unreadable records, naming the file.
pub fn collect(plan: &Plan, store: &Store) -> anyhow::Result<MatrixReport> {
    let mut cells = Vec::new();
    let mut provenance = BTreeSet::new();
    for cell in plan.cells() {
        let (mut runs, mut validation, mut failures) = (Vec::new(), Vec::new(), Vec::new());
        for &seed in &plan.seeds {
            let dir = store.run_dir(&plan.name, &cell, seed.0);
            match Store::status(&dir, &plan.config_hash(&cell, seed))? {
                RunStatus::Finished(metrics)
                    if store.started_elsewhere(plan, &cell, seed, &metrics)? =>
                {
                    failures.push(FailedRun {
                        seed: seed.0,
                        error: "fine-tuned from a stage-1 model its stage-1 record no longer names (stage 1 was trained again): not counted; `balms run` redoes it".to_string(),
                    });
                }
                RunStatus::Finished(metrics) => {
                    let path = dir.join("config.json");
                    let config: ConfigRecord = store::read_json(&path)?;
                    provenance.insert(describe(&config.provenance));
                    match config.validation {
                        Some(info) => validation.push(info),
                        None if cell.column.dataset.is_detection() => {}
                        None => anyhow::bail!(
                            "malformed record `{}`: a classification run's `validation` is missing",
                            path.display()
                        ),
                    }
                    runs.push(*metrics);
                }
                RunStatus::Failed(failure) => {
                    failures.push(FailedRun { seed: seed.0, error: failure.error });
                }
                RunStatus::Stale | RunStatus::Absent => {}
            }
        }
        let test = TestSet::of(&cell, &runs);
        cells.push(CellResults {
            cell,
            runs,
            validation,
            failures,
            expected: plan.seeds.len(),
            test,
        });
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
        scale: plan.scale,
        differences: plan.follows.map(|p| (p, crate::matrix::official::differences(plan, p))),
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

/// Where each column's validation split came from, as the runs' records say: the `val` list of
/// an image-list dataset, or images drawn from the training pool (and how many of them are also
/// training images, where the images the subset leaves unused ran short).
fn validation_sources(report: &MatrixReport) -> String {
    let mut texts: Vec<(String, Vec<String>)> = Vec::new();
    for column in &report.columns {
        let cells: Vec<&CellResults> =
            report.cells.iter().filter(|c| &c.cell.column.id() == column).collect();
        let infos: Vec<&ValidationInfo> = cells.iter().flat_map(|c| &c.validation).collect();
        let Some(first) = infos.first() else { continue };
        let classes = cells[0].cell.column.dataset.classes();
        let text = if cells[0].cell.column.dataset.list().is_some() {
            format!("the dataset's `val` list (at least {} images per class)", first.per_class)
        } else {
            let total = first.per_class * classes;
            let (low, high) = infos.iter().fold((usize::MAX, 0), |(l, h), v| {
                (l.min(v.from_training), h.max(v.from_training))
            });
            let overlap = match (low, high) {
                (0, 0) => "none of them training images".to_string(),
                (l, h) if l == h => format!("{h} of its {total} images also training images in every run, where the images the subset leaves unused ran short"),
                (l, h) => format!("{l} to {h} of its {total} images also training images, by run, where the images the subset leaves unused ran short"),
            };
            format!("{} images per class drawn from the training images the long-tailed subset leaves unused, {overlap}", first.per_class)
        };
        match texts.iter_mut().find(|(t, _)| t == &text) {
            Some((_, columns)) => columns.push(column.replace("/if", " IF ")),
            None => texts.push((text, vec![column.replace("/if", " IF ")])),
        }
    }
    match texts.as_slice() {
        [] => "no finished run".to_string(),
        [(text, _)] => text.clone(),
        _ => texts
            .iter()
            .map(|(t, c)| format!("{}: {t}", c.join(", ")))
            .collect::<Vec<_>>()
            .join("; "),
    }
}

/// The test sets, per dataset: images per class, and whether balms assumed them.
fn test_sets(report: &MatrixReport) -> String {
    let mut seen: Vec<String> = Vec::new();
    for cell in &report.cells {
        let name = cell.cell.column.dataset.name().to_string();
        let t = &cell.test;
        let text = if t.per_class.is_empty() || cell.runs.is_empty() {
            continue;
        } else if t.assumed {
            format!("{name}, {} images, assumed balanced ({} per class) because balms does not know its per-class counts", t.size(), t.per_class[0])
        } else if t.balanced() {
            format!("{name}, {} images per class", t.per_class[0])
        } else {
            let (min, max) =
                (t.per_class.iter().min().unwrap_or(&0), t.per_class.iter().max().unwrap_or(&0));
            format!("{name}, {min} to {max} images per class (unbalanced: the headline is the mean per-class accuracy, top-1 beside it)")
        };
        if !seen.contains(&text) {
            seen.push(text);
        }
    }
    seen.join("; ")
}

/// The main table's columns: per matrix column, its headline metric, and top-1 beside it where
/// the test set is unbalanced.
fn main_columns(report: &MatrixReport) -> Vec<(String, String, Metric)> {
    let mut out = Vec::new();
    for column in &report.columns {
        let heading = column.replace("/if", " IF ");
        let balanced = report
            .cells
            .iter()
            .filter(|c| &c.cell.column.id() == column)
            .all(|c| c.test.balanced());
        if balanced {
            out.push((column.clone(), heading, Metric::Top1));
        } else {
            out.push((column.clone(), format!("{heading} mean per-class"), Metric::MeanPerClass));
            out.push((column.clone(), format!("{heading} top-1"), Metric::Top1));
        }
    }
    out
}

/// Renders the report as Markdown: the main accuracy table, the claims, one many/medium/few
/// table per column, and a caption stating the protocol as the records show it.
#[must_use]
pub fn render_markdown(report: &MatrixReport) -> String {
    if is_detection(report) {
        return render_detection(report);
    }
    let mut out = format!("# {}\n\n", report.name);
    if !report.description.is_empty() {
        let _ = writeln!(out, "{}\n", report.description);
    }
    let all_balanced = report.cells.iter().all(|c| c.test.balanced());
    let what = if all_balanced {
        "Top-1 accuracy (%) on the balanced test set (equal to the mean per-class accuracy)"
    } else {
        "Accuracy (%): the mean per-class accuracy where the test set is unbalanced, with top-1 beside it; top-1 elsewhere"
    };
    let _ = writeln!(out, "{what}: mean ± standard error [95% interval], n runs; the interval carries the seeds' spread and the test set's sampling noise (see the caption).\n");
    let columns = main_columns(report);
    let mut main = Builder::default();
    main.push_record(
        std::iter::once("Method".to_string()).chain(columns.iter().map(|c| c.1.clone())),
    );
    for method in &report.methods {
        main.push_record(std::iter::once(report.row_name(method)).chain(columns.iter().map(
            |(column, _, metric)| {
                report
                    .cells
                    .iter()
                    .find(|c| &c.cell.method.name == method && &c.cell.column.id() == column)
                    .map_or_else(String::new, |c| c.text(c.estimate(*metric), true))
            },
        )));
    }
    let _ = writeln!(out, "{}\n", main.build().with(Style::markdown()));
    for column in &report.columns {
        render_named(&mut out, report, column);
    }
    out.push_str(&claims::render(&report.claims));
    for column in &report.columns {
        render_groups(&mut out, report, column);
    }
    render_caption(&mut out, report);
    if let Some((protocol, differences)) = &report.differences {
        let _ = writeln!(
            out,
            "\n## Differences from the official code\n\nThe matrix follows {}; balms differs in:\n\n{}",
            protocol.label(),
            crate::matrix::official::markdown(differences)
        );
    }
    out
}

/// A detection matrix's report (LVIS, Table 4): AP per method and column, the claims, and a
/// caption of the protocol; no accuracy, shot groups or validation split, which it has none of.
fn render_detection(report: &MatrixReport) -> String {
    let mut out = format!("# {}\n\n", report.name);
    if !report.description.is_empty() {
        let _ = writeln!(out, "{}\n", report.description);
    }
    let _ = writeln!(out, "AP (points; APm: mask AP, APf / APc / APr: mask AP on LVIS's frequent / common / rare categories, APb: box AP), scored by balms's evaluator (`external/lvis_eval.py`: the official LVIS API, 300 detections per image) on lvis_v0.5_val from the detections each run wrote: mean ± standard error [95% Student-t interval over seeds], n runs.\n");
    for column in &report.columns {
        let _ = writeln!(out, "## {column}\n");
        let mut table = Builder::default();
        table.push_record(
            std::iter::once("Method".to_string()).chain(TABLE4_METRICS.map(String::from)),
        );
        for method in &report.methods {
            let Some(cell) = report
                .cells
                .iter()
                .find(|c| &c.cell.method.name == method && &c.cell.column.id() == column)
            else {
                continue;
            };
            table.push_record(std::iter::once(report.row_name(method)).chain(
                TABLE4_METRICS.map(|name| cell.text(cell.estimate(Metric::Named(name)), true)),
            ));
        }
        let _ = writeln!(out, "{}\n", table.build().with(Style::markdown()));
    }
    out.push_str(&claims::render(&report.claims));
    render_detection_caption(&mut out, report);
    out
}

/// The caption of a detection matrix's tables: scale, protocol, failures and runs.
fn render_detection_caption(out: &mut String, report: &MatrixReport) {
    if let Some(factor) = report.scale {
        let _ = writeln!(out, "**Scaled protocol.** Every iteration count is {factor} times the matrix's own: a smoke run, not comparable with the paper's numbers.");
    }
    let seeds: Vec<String> = report.seeds.iter().map(ToString::to_string).collect();
    let _ = writeln!(out, "**Protocol.** Each method is the detectron2 project's own training at its config (the plan lists configs and overrides); the model of the last iteration is scored, the validation set selecting nothing. detectron2's `SEED` comes from each run's seed; detectron2 does not promise bit-identical training on GPUs even with a fixed seed, so repeats measure the spread that remains. Seeds: {}.", seeds.join(", "));
    render_failures(out, report);
    render_runs(out, report);
}

/// Where the runs ran, as their `config.json` say.
fn render_runs(out: &mut String, report: &MatrixReport) {
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

/// Whether every cell is on a detection dataset (LVIS): AP, not accuracy.
fn is_detection(report: &MatrixReport) -> bool {
    !report.cells.is_empty() && report.cells.iter().all(|c| c.cell.column.dataset.is_detection())
}

/// The named metrics external methods reported in `column` (Table 4's `APm` ... `APb`, say), one
/// column each, over the seeds that reported them; nothing where none did.
fn render_named(out: &mut String, report: &MatrixReport, column: &str) {
    let cells: Vec<&CellResults> =
        report.cells.iter().filter(|c| c.cell.column.id() == column).collect();
    let names: BTreeSet<&String> =
        cells.iter().flat_map(|c| c.runs.iter()).flat_map(|m| m.named_metrics.keys()).collect();
    if names.is_empty() {
        return;
    }
    let _ = writeln!(
        out,
        "## {}: named metrics (as the commands report them)\n\nMean ± standard error [95% Student-t interval over seeds], n runs.\n",
        column.replace("/if", " IF ")
    );
    let mut table = Builder::default();
    table.push_record(
        std::iter::once("Method".to_string()).chain(names.iter().map(|n| format!("`{n}`"))),
    );
    for method in &report.methods {
        let Some(cell) = cells.iter().find(|c| &c.cell.method.name == method) else { continue };
        if !cell.runs.iter().any(|m| !m.named_metrics.is_empty()) {
            continue;
        }
        table.push_record(std::iter::once(report.row_name(method)).chain(names.iter().map(
            |name| {
                let values: Vec<f64> =
                    cell.runs.iter().filter_map(|m| m.named_metrics.get(*name).copied()).collect();
                match Sample::new(values.clone()).and_then(|s| Estimate::t_interval(&s, LEVEL)) {
                    Ok(e) => format!(
                        "{:.4} ± {:.4} [{:.4}, {:.4}], {}",
                        e.mean, e.std_err, e.lower, e.upper, e.n
                    ),
                    Err(_) => match values.as_slice() {
                        [] => "not reported".to_string(),
                        [one] => format!("{one:.4}, 1 (no interval)"),
                        _ => "not finite".to_string(),
                    },
                }
            },
        )));
    }
    let _ = writeln!(out, "{}\n", table.build().with(Style::markdown()));
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
        let short = |metric: Metric| cell.text(cell.estimate(metric), false);
        table.push_record([
            report.row_name(&cell.cell.method.name),
            short(cell.headline()),
            short(Metric::Group(Shot::Many)),
            short(Metric::Group(Shot::Medium)),
            short(Metric::Group(Shot::Few)),
            cell.text(cell.validation_estimate(), false),
        ]);
    }
    let _ = writeln!(out, "{}\n", table.build().with(Style::markdown()));
}

fn render_caption(out: &mut String, report: &MatrixReport) {
    if let Some(factor) = report.scale {
        let _ = writeln!(out, "**Scaled protocol.** Every iteration count is {factor} times the matrix's own (`--scale` or the matrix's `scale`): a smoke run, not the protocol the paper ran, and not comparable with its numbers.");
    }
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
    render_failures(out, report);
    render_taus(out, report);
    let agree = if report.subsets_agree { "yes" } else { "NO: methods saw different data" };
    let _ = writeln!(out, "Every method of a column at a seed trained on the same long-tailed subset (hash agreement): {agree}.");
    let _ = writeln!(out, "Intervals: the standard error combines the seeds' spread (s²/n) with the test set's binomial sampling noise, each class's mean accuracy over the runs at its number of test images (Agresti-Coull, so it stays positive at 0% and 100%), and the 95% interval uses Student's t with Satterthwaite's degrees of freedom, never narrower than the seeds' own Student-t interval, clipped to [0, 100]: it is for the method's expected accuracy over seeds and over test sets drawn like this one. Test sets: {}.", test_sets(report));
    let _ = writeln!(out, "Groups by training count: many > 100, medium 20-100, few < 20 images; a group's accuracy is the unweighted mean of its classes' (\"-\": no class in the group, or no finished run). Validation: top-1 on the validation split ({}), its noise term at the split's size.", validation_sources(report));
    render_runs(out, report);
}

/// Every failed run with its error: its cell's mean, if any, is over the runs that finished,
/// which need not be a fair sample of the seeds.
fn render_failures(out: &mut String, report: &MatrixReport) {
    let failed: Vec<String> = report
        .cells
        .iter()
        .flat_map(|c| {
            c.failures.iter().map(move |f| {
                format!("`{}` seed {}: {}", c.cell.id(), f.seed, short_error(&f.error))
            })
        })
        .collect();
    if !failed.is_empty() {
        let _ = writeln!(out, "**Failed runs ({}).** {}. A cell with failed runs is averaged over the runs that finished, which need not be a fair sample of its seeds; its comparisons are inconclusive.", failed.len(), failed.join("; "));
    }
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
        if is_detection(report) {
            let absent: Vec<&str> = table
                .rows
                .iter()
                .filter(|(_, method)| method.is_none())
                .map(|(row, _)| row.as_str())
                .collect();
            if !absent.is_empty() {
                let _ = writeln!(caption, "Rows without a method in the matrix (no detectron2 code for them in the projects it runs): {}.", absent.join(", "));
            }
            render_detection_caption(&mut caption, report);
        } else {
            render_caption(&mut caption, report);
        }
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

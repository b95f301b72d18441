//! The paper's claims, tested as paired comparisons over the seeds two methods share.
//!
//! A claim (matrix `[[claims]]`) says that one method's top-1 (or a named metric external
//! methods report, `metric = { named = "APr" }`, compared over the seeds alone) is higher than
//! another's, or that this gain in top-1 grows with the imbalance factor. Per seed, the difference is taken between runs of
//! the same seed, which trained on the same long-tailed subset; its mean gets the interval of
//! [`Estimate::with_test_noise`], whose variance also carries a lower bound of the test set's
//! sampling noise (see [`test_variance`]) and which is never narrower than the seeds' own
//! Student-t interval. The verdict: supported
//! when the interval lies above 0, contradicted when below, inconclusive otherwise, not run with
//! fewer than two shared seeds.
//!
//! A verdict needs evidence that can carry it. The claim is inconclusive, with the reason, when
//! a run of either method failed in its columns (the seeds that finished need not be a fair
//! sample), when fewer seeds than `min-seeds` (default [`MIN_RUNS`]) are paired, when every
//! seed gives the same difference, or when the mean difference is smaller than one test image
//! can move the metric.
//!
//! An equivalence claim (`equivalence-margin = m`) says that two methods agree within `m`, on
//! top-1, on each class's learned meta rate, or on a named metric external methods report
//! (`metric = { named = "APr" }`; no test-set term: the command's metric has no known noise). It is tested by two one-sided t-tests at 5%
//! (Schuirmann 1987), that is, by the 90% Student-t interval of the paired mean difference:
//! equivalent when that interval lies inside `(-m, m)`, different when it lies entirely beyond
//! `m` or `-m`, inconclusive otherwise.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use super::estimate::{self, Estimate, Sample};
use super::{CellResults, LEVEL, MIN_RUNS};
use crate::config::{ClaimMetric, ClaimWire};

/// Seeds a percentile bootstrap interval needs before it is shown beside a claim.
pub const BOOTSTRAP_MIN_SEEDS: usize = 5;

/// Level of the interval of an equivalence claim: two one-sided tests at 5% each.
const EQUIVALENCE_LEVEL: f64 = 0.90;

/// What the comparison says of the claim.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// The interval lies above 0.
    Supported,
    /// The interval lies below 0.
    Contradicted,
    /// The interval contains 0.
    Inconclusive,
    /// Fewer than two shared seeds.
    NotRun,
    /// Equivalence claims: the 90% interval lies inside the margin.
    Equivalent,
    /// Equivalence claims: the 90% interval lies entirely beyond the margin.
    Different,
    /// The evidence cannot carry a verdict, whatever the interval says.
    Withheld(Shortfall),
}

/// Why a claim's verdict is withheld.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Shortfall {
    /// This many runs of the two methods failed in the claim's columns.
    FailedRuns(usize),
    /// Only `pairs` seeds are paired; the claim needs `needed`.
    FewSeeds {
        /// Paired seeds.
        pairs: usize,
        /// The claim's `min-seeds`.
        needed: usize,
    },
    /// Every paired seed gives the same difference: no spread to judge by.
    SeedsTie,
    /// The mean difference is smaller than one test image can move the metric.
    BelowResolution,
    /// This many finished runs of the two methods in the claim's columns do not report the
    /// named metric it compares (a misspelt name: all of them).
    Unreported(usize),
}

impl Verdict {
    /// Label in the claims tables.
    #[must_use]
    pub fn label(self) -> String {
        match self {
            Verdict::Supported => "supported".to_string(),
            Verdict::Contradicted => "**contradicted**".to_string(),
            Verdict::Inconclusive => "inconclusive".to_string(),
            Verdict::NotRun => "not run".to_string(),
            Verdict::Equivalent => "equivalent".to_string(),
            Verdict::Different => "**different**".to_string(),
            Verdict::Withheld(Shortfall::FailedRuns(n)) => {
                format!("inconclusive ({n} runs failed)")
            }
            Verdict::Withheld(Shortfall::FewSeeds { pairs, needed }) => {
                format!("inconclusive ({pairs} paired seeds; needs {needed})")
            }
            Verdict::Withheld(Shortfall::SeedsTie) => "inconclusive (seeds tie)".to_string(),
            Verdict::Withheld(Shortfall::BelowResolution) => {
                "inconclusive (below one test image)".to_string()
            }
            Verdict::Withheld(Shortfall::Unreported(n)) => {
                format!("inconclusive ({n} finished runs do not report it)")
            }
        }
    }

    fn of(estimate: Option<&Estimate>) -> Verdict {
        match estimate {
            None => Verdict::NotRun,
            Some(e) if e.lower > 0.0 => Verdict::Supported,
            Some(e) if e.upper < 0.0 => Verdict::Contradicted,
            Some(_) => Verdict::Inconclusive,
        }
    }

    /// The verdict of an equivalence claim from the 90% interval and the margin.
    fn of_equivalence(estimate: Option<&Estimate>, margin: f64) -> Verdict {
        match estimate {
            None => Verdict::NotRun,
            Some(e) if e.lower > -margin && e.upper < margin => Verdict::Equivalent,
            Some(e) if e.lower > margin || e.upper < -margin => Verdict::Different,
            Some(_) => Verdict::Inconclusive,
        }
    }
}

/// One claim tested on one column (or one dataset's range of imbalance factors).
#[derive(Clone, Debug)]
pub struct ClaimResult {
    /// The claim as the matrix states it (`[[claims]]`).
    pub claim: ClaimWire,
    /// Where: `fashion-mnist-lt IF 200`, or `fashion-mnist-lt IF 200 vs IF 10`.
    pub scope: String,
    /// What is compared: `top-1`, or `rate of class 3` for a `meta-rates` claim.
    pub what: String,
    /// The paired difference in points (better minus than; for trends, the gain's growth; for
    /// rates, in rates), with its 95% interval (90% for equivalence claims); for top-1, the
    /// interval also carries the test set's sampling noise.
    pub estimate: Option<Estimate>,
    /// Percentile bootstrap interval of the mean difference, resampling the paired seeds
    /// (difference claims only).
    pub bootstrap: Option<(f64, f64)>,
    /// P(better's run > than's run) over all pairs of their runs (rliable's probability of
    /// improvement); none for trends and equivalence claims.
    pub improvement: Option<f64>,
    /// Seeds paired.
    pub pairs: usize,
    /// Supported, contradicted or inconclusive by where `estimate`'s interval lies relative to 0
    /// (equivalence claims: equivalent, different or inconclusive by where it lies relative to
    /// the margin); not run with fewer than two shared seeds; withheld, with the reason, when
    /// the evidence cannot carry a verdict (see the module doc).
    pub verdict: Verdict,
}

/// What a claim compares, per run: top-1 in points, the final rate of class `c`, or a named
/// metric an external method reported; `NoRates` stands for a rates claim none of whose runs has
/// finished (one "not run" row).
#[derive(Clone, Copy)]
enum Value<'a> {
    Top1,
    Rate(usize),
    NoRates,
    Named(&'a str),
}

impl Value<'_> {
    fn label(self) -> String {
        match self {
            Value::Top1 => "top-1".to_string(),
            Value::Rate(c) => format!("rate of class {c}"),
            Value::NoRates => "learned rates".to_string(),
            Value::Named(name) => format!("`{name}`"),
        }
    }
}

/// One run of a claim: the value compared and the run's per-class test accuracies.
type Run<'a> = (f64, &'a [f64]);

/// What a claim compares in `column`: top-1, or the mean per-class accuracy where the column's
/// test set is unbalanced (the headline there), or a class's rate.
fn label(cells: &[CellResults], column: &str, value: Value<'_>) -> String {
    let unbalanced = cells.iter().any(|c| c.cell.column.id() == column && !c.test.balanced());
    match value {
        Value::Top1 if unbalanced => "mean per-class accuracy".to_string(),
        Value::Top1 | Value::Rate(_) | Value::NoRates | Value::Named(_) => value.label(),
    }
}

/// `value` per seed of `method` in column `column` (runs without it are left out); top-1 is the
/// cell's headline metric (the mean per-class accuracy on an unbalanced test set), in points.
fn by_seed<'a>(
    cells: &'a [CellResults],
    column: &str,
    method: &str,
    value: Value<'_>,
) -> BTreeMap<u64, Run<'a>> {
    cells
        .iter()
        .filter(|c| c.cell.column.id() == column && c.cell.method.name == method)
        .flat_map(|c| c.runs.iter().map(move |m| (c, m)))
        .filter_map(|(c, m)| {
            let v = match value {
                Value::Top1 => c.headline().of(m).map(|v| 100.0 * v),
                Value::Rate(class) => {
                    m.meta_rates.as_ref().and_then(|r| r.last()).and_then(|r| r.get(class)).copied()
                }
                Value::NoRates => None,
                Value::Named(name) => m.named_metrics.get(name).copied(),
            };
            v.map(|v| (m.seed, (v, m.per_class_accuracy())))
        })
        .collect()
}

/// `(better, than)` per shared seed in `column`.
fn paired<'a>(
    cells: &'a [CellResults],
    column: &str,
    claim: &ClaimWire,
    value: Value<'_>,
) -> BTreeMap<u64, (Run<'a>, Run<'a>)> {
    let than = by_seed(cells, column, &claim.than, value);
    by_seed(cells, column, &claim.better, value)
        .into_iter()
        .filter_map(|(seed, b)| than.get(&seed).map(|t| (seed, (b, *t))))
        .collect()
}

/// Runs of the claim's two methods that failed in `column`.
fn failed(cells: &[CellResults], column: &str, claim: &ClaimWire) -> usize {
    cells
        .iter()
        .filter(|c| {
            c.cell.column.id() == column
                && (c.cell.method.name == claim.better || c.cell.method.name == claim.than)
        })
        .map(|c| c.failures.len())
        .sum()
}

/// The test set's sampling variance (points squared) of a mean paired top-1 difference in
/// `column`, and the metric's resolution (points one test image moves it by).
///
/// Per class, the fraction of test images on which the two methods disagree is taken as
/// `|d_c|`, `d_c` the mean difference of their class accuracies over the paired seeds (one run
/// of each disagrees on at least that many: `b + c >= |b - c|` for discordant pairs); that
/// fraction, as an Agresti-Coull proportion on the class's test images, gives the class's
/// variance, weighted as the headline metric weighs the class. The records keep no per-image
/// predictions, so this is an estimate from the per-class accuracies, not an exact term: it
/// keeps a difference from looking exact when the seeds agree, and adds little where they
/// spread.
fn test_variance(
    cells: &[CellResults],
    column: &str,
    claim: &ClaimWire,
    pairs: &[(Run<'_>, Run<'_>)],
) -> (f64, f64) {
    let Some(cell) =
        cells.iter().find(|c| c.cell.column.id() == column && c.cell.method.name == claim.better)
    else {
        return (0.0, 0.0);
    };
    let Some(first) = cell.runs.first() else { return (0.0, 0.0) };
    let weights = cell.headline().weights(&first.class_counts, &cell.test);
    let z = estimate::normal_quantile(LEVEL);
    let n = pairs.len().max(1) as f64;
    let (mut variance, mut resolution) = (0.0, f64::INFINITY);
    for (c, w) in weights.iter().enumerate().filter(|(_, w)| **w > 0.0) {
        let images = cell.test.per_class.get(c).copied().unwrap_or(0);
        let d = pairs
            .iter()
            .map(|((_, b), (_, t))| b.get(c).unwrap_or(&0.0) - t.get(c).unwrap_or(&0.0))
            .sum::<f64>()
            / n;
        variance += w * w * estimate::agresti_coull_variance(d.abs(), images, z);
        if images > 0 {
            resolution = resolution.min(100.0 * w / images as f64);
        }
    }
    (1e4 * variance, if resolution.is_finite() { resolution } else { 0.0 })
}

/// Finished runs of the claim's two methods in `column` that do not report the named metric
/// `value` compares (0 for other values).
fn unreported(cells: &[CellResults], column: &str, claim: &ClaimWire, value: Value<'_>) -> usize {
    let Value::Named(name) = value else { return 0 };
    cells
        .iter()
        .filter(|c| c.cell.column.id() == column)
        .filter(|c| c.cell.method.name == claim.better || c.cell.method.name == claim.than)
        .flat_map(|c| &c.runs)
        .filter(|m| !m.named_metrics.contains_key(name))
        .count()
}

/// The values a claim compares in `column`: top-1, each class's rate (as many classes as the
/// runs of `better` have rates for; a single "not run" row before any has finished), or a named
/// metric.
fn values<'a>(cells: &[CellResults], column: &str, claim: &'a ClaimWire) -> Vec<Value<'a>> {
    match &claim.metric {
        ClaimMetric::Named(name) => vec![Value::Named(name)],
        ClaimMetric::Top1 => vec![Value::Top1],
        ClaimMetric::MetaRates => {
            let classes = cells
                .iter()
                .filter(|c| c.cell.column.id() == column && c.cell.method.name == claim.better)
                .flat_map(|c| c.runs.iter())
                .find_map(|m| m.meta_rates.as_ref().and_then(|r| r.last()).map(Vec::len))
                .unwrap_or(0);
            if classes == 0 {
                vec![Value::NoRates]
            } else {
                (0..classes).map(Value::Rate).collect()
            }
        }
    }
}

/// What besides the paired differences a verdict rests on.
#[derive(Clone, Copy, Default)]
struct Evidence {
    /// The test set's variance of the mean difference (points squared; top-1 claims only).
    test_variance: Option<f64>,
    /// Points one test image moves the metric by (top-1 claims only).
    resolution: Option<f64>,
    /// Failed runs of the two methods in the claim's columns.
    failed: usize,
    /// Finished runs of the two methods that lack the named metric compared.
    unreported: usize,
}

fn result(
    claim: &ClaimWire,
    (scope, what): (String, String),
    differences: Vec<f64>,
    improvement: Option<f64>,
    evidence: Evidence,
) -> ClaimResult {
    let pairs = differences.len();
    let equivalence = claim.equivalence_margin.is_some();
    // The bootstrap and P(improvement) accompany difference claims only.
    let stream = format!("report/claims/{}/{}/{scope}", claim.better, claim.than);
    // With fewer than 5 seeds a percentile bootstrap has a handful of distinct resamples and
    // under-covers: none is shown.
    let bootstrap = (!equivalence && differences.len() >= BOOTSTRAP_MIN_SEEDS)
        .then(|| {
            let rng = &mut crate::seed::Seed(0).rng(&stream);
            super::bootstrap::mean_interval(&differences, LEVEL, rng).ok()
        })
        .flatten();
    let level = if equivalence { EQUIVALENCE_LEVEL } else { LEVEL };
    let tie = differences.iter().all(|d| d.to_bits() == differences[0].to_bits());
    let estimate = Sample::new(differences).ok().and_then(|s| match evidence.test_variance {
        Some(v) => Estimate::with_test_noise(&s, v, level, (f64::NEG_INFINITY, f64::INFINITY)).ok(),
        None => Estimate::t_interval(&s, level).ok(),
    });
    let needed = claim.min_seeds.unwrap_or(MIN_RUNS);
    let verdict = match (&estimate, claim.equivalence_margin) {
        _ if evidence.failed > 0 => Verdict::Withheld(Shortfall::FailedRuns(evidence.failed)),
        _ if evidence.unreported > 0 => {
            Verdict::Withheld(Shortfall::Unreported(evidence.unreported))
        }
        (None, _) => Verdict::NotRun,
        (Some(_), _) if pairs < needed => Verdict::Withheld(Shortfall::FewSeeds { pairs, needed }),
        // Tied seeds carry no spread; a top-1 equivalence keeps its test-set term, so identical
        // runs (the strongest evidence of equivalence) can still be judged.
        (Some(_), margin) if tie && !(margin.is_some() && evidence.test_variance.is_some()) => {
            Verdict::Withheld(Shortfall::SeedsTie)
        }
        (Some(e), None) if evidence.resolution.is_some_and(|r| e.mean.abs() < r) => {
            Verdict::Withheld(Shortfall::BelowResolution)
        }
        (Some(_), Some(margin)) => Verdict::of_equivalence(estimate.as_ref(), margin),
        (Some(_), None) => Verdict::of(estimate.as_ref()),
    };
    ClaimResult {
        claim: claim.clone(),
        scope,
        what,
        verdict,
        estimate,
        bootstrap,
        improvement: improvement.filter(|_| pairs >= 2 && !equivalence),
        pairs,
    }
}

/// Tests every claim on the collected cells; `columns` are `(dataset, imbalance, id)` in order.
#[must_use]
pub fn evaluate(
    claims: &[ClaimWire],
    cells: &[CellResults],
    columns: &[(String, f64, String)],
) -> Vec<ClaimResult> {
    let mut out = Vec::new();
    for claim in claims {
        let wanted = |f: f64| claim.imbalance.as_ref().is_none_or(|list| list.contains(&f));
        let chosen: Vec<&(String, f64, String)> = columns.iter().filter(|c| wanted(c.1)).collect();
        if !claim.grows_with_imbalance {
            for (dataset, imbalance, id) in chosen {
                for value in values(cells, id, claim) {
                    let pairs: Vec<(Run<'_>, Run<'_>)> =
                        paired(cells, id, claim, value).into_values().collect();
                    let (x, y): (Vec<f64>, Vec<f64>) =
                        pairs.iter().map(|(b, t)| (b.0, t.0)).unzip();
                    let d = pairs.iter().map(|(b, t)| b.0 - t.0).collect();
                    let improvement = super::bootstrap::probability_of_improvement(&x, &y);
                    let mut evidence = Evidence {
                        failed: failed(cells, id, claim),
                        unreported: unreported(cells, id, claim, value),
                        ..Evidence::default()
                    };
                    if let Value::Top1 = value {
                        let (variance, resolution) = test_variance(cells, id, claim, &pairs);
                        evidence.test_variance = Some(variance);
                        evidence.resolution = Some(resolution);
                    }
                    let scope = (format!("{dataset} IF {imbalance}"), label(cells, id, value));
                    out.push(result(claim, scope, d, Some(improvement), evidence));
                }
            }
            continue;
        }
        let mut datasets: Vec<&String> = chosen.iter().map(|c| &c.0).collect();
        datasets.dedup();
        for dataset in datasets {
            let mine: Vec<&&(String, f64, String)> =
                chosen.iter().filter(|c| &c.0 == dataset).collect();
            let high = mine.iter().max_by(|a, b| a.1.total_cmp(&b.1)).expect("a column");
            let low = mine.iter().min_by(|a, b| a.1.total_cmp(&b.1)).expect("a column");
            let at_low = paired(cells, &low.2, claim, Value::Top1);
            let at_high = paired(cells, &high.2, claim, Value::Top1);
            let shared: Vec<u64> =
                at_high.keys().filter(|s| at_low.contains_key(s)).copied().collect();
            let d = shared
                .iter()
                .map(|s| {
                    let ((hb, ht), (lb, lt)) = (at_high[s], at_low[s]);
                    (hb.0 - ht.0) - (lb.0 - lt.0)
                })
                .collect();
            // The gain's growth is a difference of two columns' gains: their test terms add.
            let (v_high, r_high) = test_variance(
                cells,
                &high.2,
                claim,
                &shared.iter().map(|s| at_high[s]).collect::<Vec<_>>(),
            );
            let (v_low, r_low) = test_variance(
                cells,
                &low.2,
                claim,
                &shared.iter().map(|s| at_low[s]).collect::<Vec<_>>(),
            );
            let evidence = Evidence {
                test_variance: Some(v_high + v_low),
                resolution: Some(r_high.max(r_low)),
                failed: failed(cells, &high.2, claim) + failed(cells, &low.2, claim),
                unreported: 0,
            };
            let scope = format!("{dataset} IF {} vs IF {}", high.1, low.1);
            let what = label(cells, &high.2, Value::Top1);
            out.push(result(claim, (scope, what), d, None, evidence));
        }
    }
    out
}

/// The paragraph above the claims table: the top-1 test, or the named-metric test where every
/// claim compares a named metric.
fn differences_header(differences: &[&ClaimResult]) -> String {
    let mut text = String::new();
    let named = |r: &&ClaimResult| r.what.starts_with('`');
    if differences.iter().all(named) {
        text.push_str(
            "## The paper's claims, paired over shared seeds\n\nPer seed, the difference of the \
             named metric beside where, in its own units, between two methods' runs of that seed. \
             Mean and the seeds' 95% Student-t interval (a command's metric has no known test-set \
             noise). Supported when the interval lies above 0, contradicted when below, \
             inconclusive otherwise, and inconclusive with the reason when a run of either method \
             failed, finished runs do not report the metric, fewer seeds are paired than the \
             claim's `min-seeds` (default 3), or the seeds tie. Beside it, with at least 5 seeds, \
             a percentile bootstrap interval over the seeds, and the probability of improvement \
             (the chance that a run of the first method beats a run of the second, over all pairs \
             of their runs).",
        );
    } else {
        text.push_str(
            "## The paper's claims, paired over shared seeds\n\nPer seed, the top-1 difference in points \
             (of the mean per-class accuracy where the test set is unbalanced) between two methods' \
             runs of that seed, which trained on the same long-tailed subset; \
             for a trend, the difference of that gain between the highest and the lowest imbalance \
             factor. Mean and 95% interval: the seeds' spread plus the test set's sampling noise (per \
             class, the share of test images on which the two methods' class accuracies say they \
             disagree, as an Agresti-Coull proportion: an estimate, as no per-image predictions are \
             kept), Student's t with Satterthwaite's degrees of freedom, never narrower than the \
             seeds' own Student-t interval. Supported when the interval lies above 0, contradicted when below, \
             inconclusive otherwise, and inconclusive with the reason when a run of either method \
             failed, fewer seeds are paired than the claim's `min-seeds` (default 3), the seeds \
             tie, or the difference is smaller than one test image. Beside it, with at least 5 \
             seeds, a percentile bootstrap interval over the seeds, and the probability of improvement (the chance that a \
             run of the first method beats a run of the second, over all pairs of their runs).",
        );
        if differences.iter().any(named) {
            text.push_str(
                " A claim on a named metric (its name beside where) compares it in its own units \
                 over the seeds' Student-t interval alone: a command's metric has no known \
                 test-set noise.",
            );
        }
    }
    text
}

/// The claims tables in Markdown: differences, then equivalences (empty without claims).
#[must_use]
pub fn render(results: &[ClaimResult]) -> String {
    let (equivalences, differences): (Vec<&ClaimResult>, Vec<&ClaimResult>) =
        results.iter().partition(|r| r.claim.equivalence_margin.is_some());
    let mut out = String::new();
    if !differences.is_empty() {
        out.push_str(&differences_header(&differences));
    }
    if !differences.is_empty() {
        out.push_str(
            "\n\n\
             | claim | source | where | difference | 95% interval | bootstrap 95% | P(improvement) | n | verdict |\n|---|---|---|---:|---|---|---:|---:|---|\n",
        );
        for r in differences {
            let (mean, interval) = mean_and_interval(r, 2);
            let bootstrap = r
                .bootstrap
                .map_or_else(|| "-".to_string(), |(lo, hi)| format!("[{lo:+.2}, {hi:+.2}]"));
            let improvement = r.improvement.map_or_else(|| "-".to_string(), |p| format!("{p:.2}"));
            let _ = writeln!(
                out,
                "| {} (`{}` vs `{}`) | {} | {} | {mean} | {interval} | {bootstrap} | {improvement} | {} | {} |",
                r.claim.claim,
                r.claim.better,
                r.claim.than,
                r.claim.source,
                if r.what.starts_with('`') {
                    format!("{}, {}", r.scope, r.what)
                } else {
                    r.scope.clone()
                },
                r.pairs,
                r.verdict.label()
            );
        }
        out.push('\n');
    }
    if !equivalences.is_empty() {
        out.push_str(
            "## Equivalence, paired over shared seeds\n\nPer seed, the difference between two methods' \
             runs of that seed (top-1 in points, a class's final learned meta rate, or a named metric in its command's units), which trained on \
             the same long-tailed subset. Mean and 90% interval over the seeds (for top-1 with the test set's \
             noise, as above): two one-sided tests at 5% (Schuirmann 1987), withheld for the same \
             reasons as a difference. Equivalent when the interval lies inside the margin, \
             different when it lies entirely beyond it, inconclusive otherwise.\n\n\
             | claim | source | where | what | difference | 90% interval | margin | n | verdict |\n|---|---|---|---|---:|---|---:|---:|---|\n",
        );
        for (r, margin) in
            equivalences.iter().filter_map(|r| Some((r, r.claim.equivalence_margin?)))
        {
            let digits = if r.claim.metric == ClaimMetric::Top1 { 2 } else { 4 };
            let (mean, interval) = mean_and_interval(r, digits);
            let _ = writeln!(
                out,
                "| {} (`{}` vs `{}`) | {} | {} | {} | {mean} | {interval} | ±{margin} | {} | {} |",
                r.claim.claim,
                r.claim.better,
                r.claim.than,
                r.claim.source,
                r.scope,
                r.what,
                r.pairs,
                r.verdict.label()
            );
        }
        out.push('\n');
    }
    out
}

/// The mean difference and its interval, signed, with `digits` decimals (`-` when not run).
fn mean_and_interval(r: &ClaimResult, digits: usize) -> (String, String) {
    r.estimate.as_ref().map_or_else(
        || ("-".to_string(), "-".to_string()),
        |e| {
            (
                format!("{:+.digits$}", e.mean),
                format!("[{:+.digits$}, {:+.digits$}]", e.lower, e.upper),
            )
        },
    )
}

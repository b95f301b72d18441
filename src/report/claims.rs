//! The paper's claims, tested as paired comparisons over the seeds two methods share.
//!
//! A claim (matrix `[[claims]]`) says that one method's top-1 is higher than another's, or that
//! this gain grows with the imbalance factor. Per seed, the difference is taken between runs of
//! the same seed, which trained on the same long-tailed subset; its mean gets a Student-t
//! interval. The verdict: supported when the interval lies above 0, contradicted when below,
//! inconclusive otherwise, not run with fewer than two shared seeds.
//!
//! An equivalence claim (`equivalence-margin = m`) says that two methods agree within `m`, on
//! top-1 or on each class's learned meta rate. It is tested by two one-sided t-tests at 5%
//! (Schuirmann 1987), that is, by the 90% Student-t interval of the paired mean difference:
//! equivalent when that interval lies inside `(-m, m)`, different when it lies entirely beyond
//! `m` or `-m`, inconclusive otherwise.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use super::estimate::{Estimate, Sample};
use super::{CellResults, LEVEL};
use crate::config::{ClaimMetric, ClaimWire};

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
}

impl Verdict {
    fn label(self) -> &'static str {
        match self {
            Verdict::Supported => "supported",
            Verdict::Contradicted => "**contradicted**",
            Verdict::Inconclusive => "inconclusive",
            Verdict::NotRun => "not run",
            Verdict::Equivalent => "equivalent",
            Verdict::Different => "**different**",
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
    /// rates, in rates), with its 95% interval (90% for equivalence claims).
    pub estimate: Option<Estimate>,
    /// Percentile bootstrap interval of the mean difference, resampling the paired seeds
    /// (difference claims only).
    pub bootstrap: Option<(f64, f64)>,
    /// P(better's run > than's run) over all pairs of their runs (rliable's probability of
    /// improvement); none for trends and equivalence claims.
    pub improvement: Option<f64>,
    /// Seeds paired.
    pub pairs: usize,
    /// Supported, contradicted or inconclusive by where `estimate`'s Student-t interval lies
    /// relative to 0 (equivalence claims: equivalent, different or inconclusive by where it
    /// lies relative to the margin); not run with fewer than two shared seeds.
    pub verdict: Verdict,
}

/// What a claim compares, per run: top-1 in points, or the final rate of class `c`; `NoRates`
/// stands for a rates claim none of whose runs has finished (one "not run" row).
#[derive(Clone, Copy)]
enum Value {
    Top1,
    Rate(usize),
    NoRates,
}

impl Value {
    fn label(self) -> String {
        match self {
            Value::Top1 => "top-1".to_string(),
            Value::Rate(c) => format!("rate of class {c}"),
            Value::NoRates => "learned rates".to_string(),
        }
    }
}

/// `value` per seed of `method` in column `column` (runs without it are left out).
fn by_seed(cells: &[CellResults], column: &str, method: &str, value: Value) -> BTreeMap<u64, f64> {
    cells
        .iter()
        .filter(|c| c.cell.column.id() == column && c.cell.method.name == method)
        .flat_map(|c| c.runs.iter())
        .filter_map(|m| {
            let v = match value {
                Value::Top1 => Some(m.evaluation.top1 * 100.0),
                Value::Rate(class) => {
                    m.meta_rates.as_ref().and_then(|r| r.last()).and_then(|r| r.get(class)).copied()
                }
                Value::NoRates => None,
            };
            v.map(|v| (m.seed, v))
        })
        .collect()
}

/// `(better, than)` per shared seed in `column`.
fn paired(
    cells: &[CellResults],
    column: &str,
    claim: &ClaimWire,
    value: Value,
) -> BTreeMap<u64, (f64, f64)> {
    let than = by_seed(cells, column, &claim.than, value);
    by_seed(cells, column, &claim.better, value)
        .into_iter()
        .filter_map(|(seed, b)| than.get(&seed).map(|t| (seed, (b, *t))))
        .collect()
}

/// The values a claim compares in `column`: top-1, or each class's rate (as many classes as
/// the runs of `better` have rates for; a single "not run" row before any has finished).
fn values(cells: &[CellResults], column: &str, claim: &ClaimWire) -> Vec<Value> {
    match claim.metric {
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

fn result(
    claim: &ClaimWire,
    (scope, what): (String, String),
    differences: Vec<f64>,
    improvement: Option<f64>,
) -> ClaimResult {
    let pairs = differences.len();
    let equivalence = claim.equivalence_margin.is_some();
    // The bootstrap and P(improvement) accompany difference claims only.
    let stream = format!("report/claims/{}/{}/{scope}", claim.better, claim.than);
    let bootstrap = (!equivalence)
        .then(|| {
            let rng = &mut crate::seed::Seed(0).rng(&stream);
            super::bootstrap::mean_interval(&differences, LEVEL, rng).ok()
        })
        .flatten();
    let level = if equivalence { EQUIVALENCE_LEVEL } else { LEVEL };
    let estimate = Sample::new(differences).ok().and_then(|s| Estimate::t_interval(&s, level).ok());
    let verdict = match claim.equivalence_margin {
        Some(margin) => Verdict::of_equivalence(estimate.as_ref(), margin),
        None => Verdict::of(estimate.as_ref()),
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
                    let pairs: Vec<(f64, f64)> =
                        paired(cells, id, claim, value).into_values().collect();
                    let (x, y): (Vec<f64>, Vec<f64>) = pairs.iter().copied().unzip();
                    let d = pairs.iter().map(|(b, t)| b - t).collect();
                    let improvement = super::bootstrap::probability_of_improvement(&x, &y);
                    let scope = (format!("{dataset} IF {imbalance}"), value.label());
                    out.push(result(claim, scope, d, Some(improvement)));
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
            let d = paired(cells, &high.2, claim, Value::Top1)
                .into_iter()
                .filter_map(|(seed, (b, t))| at_low.get(&seed).map(|(lb, lt)| (b - t) - (lb - lt)))
                .collect();
            let scope = format!("{dataset} IF {} vs IF {}", high.1, low.1);
            out.push(result(claim, (scope, Value::Top1.label()), d, None));
        }
    }
    out
}

/// The claims tables in Markdown: differences, then equivalences (empty without claims).
#[must_use]
pub fn render(results: &[ClaimResult]) -> String {
    let (equivalences, differences): (Vec<&ClaimResult>, Vec<&ClaimResult>) =
        results.iter().partition(|r| r.claim.equivalence_margin.is_some());
    let mut out = String::new();
    if !differences.is_empty() {
        out.push_str(
            "## The paper's claims, paired over shared seeds\n\nPer seed, the top-1 difference (points) \
             between two methods' runs of that seed, which trained on the same long-tailed subset; \
             for a trend, the difference of that gain between the highest and the lowest imbalance \
             factor. Mean and 95% Student-t interval over the seeds; supported when the interval lies \
             above 0, contradicted when below, inconclusive otherwise. Beside it, a percentile \
             bootstrap interval over the seeds and the probability of improvement (the chance that a \
             run of the first method beats a run of the second, over all pairs of their runs).\n\n\
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
                r.scope,
                r.pairs,
                r.verdict.label()
            );
        }
        out.push('\n');
    }
    if !equivalences.is_empty() {
        out.push_str(
            "## Equivalence, paired over shared seeds\n\nPer seed, the difference between two methods' \
             runs of that seed (top-1 in points, or a class's final learned meta rate), which trained on \
             the same long-tailed subset. Mean and 90% Student-t interval over the seeds: two one-sided \
             t-tests at 5% (Schuirmann 1987). Equivalent when the interval lies inside the margin, \
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

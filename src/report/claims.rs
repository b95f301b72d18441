//! The paper's claims, tested as paired comparisons over the seeds two methods share.
//!
//! A claim (matrix `[[claims]]`) says that one method's top-1 is higher than another's, or that
//! this gain grows with the imbalance factor. Per seed, the difference is taken between runs of
//! the same seed, which trained on the same long-tailed subset; its mean gets a Student-t
//! interval. The verdict: supported when the interval lies above 0, contradicted when below,
//! inconclusive otherwise, not run with fewer than two shared seeds.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use super::estimate::{Estimate, Sample};
use super::{CellResults, LEVEL};
use crate::config::ClaimWire;

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
}

impl Verdict {
    fn label(self) -> &'static str {
        match self {
            Verdict::Supported => "supported",
            Verdict::Contradicted => "**contradicted**",
            Verdict::Inconclusive => "inconclusive",
            Verdict::NotRun => "not run",
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
}

/// One claim tested on one column (or one dataset's range of imbalance factors).
#[derive(Clone, Debug)]
pub struct ClaimResult {
    /// The claim as the matrix states it (`[[claims]]`).
    pub claim: ClaimWire,
    /// Where: `fashion-mnist-lt IF 200`, or `fashion-mnist-lt IF 200 vs IF 10`.
    pub scope: String,
    /// The paired difference in points (better minus than; for trends, the gain's growth).
    pub estimate: Option<Estimate>,
    /// Percentile bootstrap interval of the mean difference, resampling the paired seeds.
    pub bootstrap: Option<(f64, f64)>,
    /// P(better's run > than's run) over all pairs of their runs (rliable's probability of
    /// improvement); none for trends.
    pub improvement: Option<f64>,
    /// Seeds paired.
    pub pairs: usize,
    /// Supported, contradicted or inconclusive by where `estimate`'s Student-t interval lies
    /// relative to 0; not run with fewer than two shared seeds.
    pub verdict: Verdict,
}

/// Top-1 in points per seed of `method` in column `column`.
fn top1_by_seed(cells: &[CellResults], column: &str, method: &str) -> BTreeMap<u64, f64> {
    cells
        .iter()
        .filter(|c| c.cell.column.id() == column && c.cell.method.name == method)
        .flat_map(|c| c.runs.iter().map(|m| (m.seed, m.evaluation.top1 * 100.0)))
        .collect()
}

/// `(better, than)` per shared seed in `column`.
fn paired(cells: &[CellResults], column: &str, claim: &ClaimWire) -> BTreeMap<u64, (f64, f64)> {
    let than = top1_by_seed(cells, column, &claim.than);
    top1_by_seed(cells, column, &claim.better)
        .into_iter()
        .filter_map(|(seed, b)| than.get(&seed).map(|t| (seed, (b, *t))))
        .collect()
}

fn result(
    claim: &ClaimWire,
    scope: String,
    differences: Vec<f64>,
    improvement: Option<f64>,
) -> ClaimResult {
    let pairs = differences.len();
    let stream = format!("report/claims/{}/{}/{scope}", claim.better, claim.than);
    let bootstrap = super::bootstrap::mean_interval(
        &differences,
        LEVEL,
        &mut crate::seed::Seed(0).rng(&stream),
    )
    .ok();
    let estimate = Sample::new(differences).ok().and_then(|s| Estimate::t_interval(&s, LEVEL).ok());
    ClaimResult {
        claim: claim.clone(),
        scope,
        verdict: Verdict::of(estimate.as_ref()),
        estimate,
        bootstrap,
        improvement: improvement.filter(|_| pairs >= 2),
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
                let pairs: Vec<(f64, f64)> = paired(cells, id, claim).into_values().collect();
                let (x, y): (Vec<f64>, Vec<f64>) = pairs.iter().copied().unzip();
                let d = pairs.iter().map(|(b, t)| b - t).collect();
                let improvement = super::bootstrap::probability_of_improvement(&x, &y);
                out.push(result(claim, format!("{dataset} IF {imbalance}"), d, Some(improvement)));
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
            let at_low = paired(cells, &low.2, claim);
            let d = paired(cells, &high.2, claim)
                .into_iter()
                .filter_map(|(seed, (b, t))| at_low.get(&seed).map(|(lb, lt)| (b - t) - (lb - lt)))
                .collect();
            out.push(result(claim, format!("{dataset} IF {} vs IF {}", high.1, low.1), d, None));
        }
    }
    out
}

/// The claims table in Markdown (empty without claims).
#[must_use]
pub fn render(results: &[ClaimResult]) -> String {
    if results.is_empty() {
        return String::new();
    }
    let mut out = String::from(
        "## The paper's claims, paired over shared seeds\n\nPer seed, the top-1 difference (points) \
         between two methods' runs of that seed, which trained on the same long-tailed subset; \
         for a trend, the difference of that gain between the highest and the lowest imbalance \
         factor. Mean and 95% Student-t interval over the seeds; supported when the interval lies \
         above 0, contradicted when below, inconclusive otherwise. Beside it, a percentile \
         bootstrap interval over the seeds and the probability of improvement (the chance that a \
         run of the first method beats a run of the second, over all pairs of their runs).\n\n\
         | claim | source | where | difference | 95% interval | bootstrap 95% | P(improvement) | n | verdict |\n|---|---|---|---:|---|---|---:|---:|---|\n",
    );
    for r in results {
        let (mean, interval) = r.estimate.as_ref().map_or_else(
            || ("-".to_string(), "-".to_string()),
            |e| (format!("{:+.2}", e.mean), format!("[{:+.2}, {:+.2}]", e.lower, e.upper)),
        );
        let bootstrap =
            r.bootstrap.map_or_else(|| "-".to_string(), |(lo, hi)| format!("[{lo:+.2}, {hi:+.2}]"));
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
    out
}

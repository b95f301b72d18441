//! Comparing two stores run by run: how a from-scratch reproduction differs from committed results.

use std::fmt::Write as _;

use crate::matrix::Plan;
use crate::store::{RunStatus, Store};

/// One run whose records differ (or exist in one store only).
#[derive(Clone, Debug, PartialEq)]
pub struct Difference {
    /// `cell seed k`.
    pub run: String,
    /// Top-1 in the new store, if finished there.
    pub new_top1: Option<f64>,
    /// Top-1 in the reference store, if finished there.
    pub reference_top1: Option<f64>,
}

/// Runs of `plan` whose `metrics.json` differ between `new` and `reference`.
///
/// # Errors
/// Unreadable records, naming the file.
pub fn compare(plan: &Plan, new: &Store, reference: &Store) -> anyhow::Result<Vec<Difference>> {
    compare_within(plan, new, reference, None)
}

/// As [`compare`]; with `tolerance` (top-1 percentage points), a run counts as different only
/// when it is missing from one store or its top-1 moved by more than the tolerance.
///
/// # Errors
/// Unreadable records, naming the file.
pub fn compare_within(
    plan: &Plan,
    new: &Store,
    reference: &Store,
    tolerance: Option<f64>,
) -> anyhow::Result<Vec<Difference>> {
    let mut differences = Vec::new();
    for cell in plan.cells() {
        for &seed in &plan.seeds {
            let hash = plan.config_hash(&cell, seed);
            let finished = |store: &Store| -> anyhow::Result<Option<_>> {
                Ok(match Store::status(&store.run_dir(&plan.name, &cell, seed.0), &hash)? {
                    RunStatus::Finished(m) => Some(m),
                    RunStatus::Failed(_) | RunStatus::Stale | RunStatus::Absent => None,
                })
            };
            let (a, b) = (finished(new)?, finished(reference)?);
            let differs = match (&a, &b, tolerance) {
                (Some(x), Some(y), Some(points)) => match (x.top1(), y.top1()) {
                    (Some(a), Some(b)) => (a - b).abs() * 100.0 > points,
                    // Runs without top-1 (detectron2's): their named metrics, as reported.
                    _ => {
                        x.named_metrics.len() != y.named_metrics.len()
                            || x.named_metrics.iter().any(|(name, a)| {
                                y.named_metrics.get(name).is_none_or(|b| (a - b).abs() > points)
                            })
                    }
                },
                _ => a != b,
            };
            if differs {
                differences.push(Difference {
                    run: format!("{} seed {seed}", cell.id()),
                    new_top1: a.and_then(|m| m.top1()),
                    reference_top1: b.and_then(|m| m.top1()),
                });
            }
        }
    }
    Ok(differences)
}

/// A readable summary of the differences.
#[must_use]
pub fn render(matrix: &str, differences: &[Difference]) -> String {
    if differences.is_empty() {
        return format!("`{matrix}`: every run matches the committed results exactly");
    }
    let mut out =
        format!("`{matrix}`: {} run(s) differ from the committed results:", differences.len());
    let show = |v: Option<f64>| v.map_or_else(|| "missing".to_string(), |v| format!("{v:.4}"));
    for d in differences {
        let _ = write!(
            out,
            "\n  {}: top-1 {} (new) vs {} (reference)",
            d.run,
            show(d.new_top1),
            show(d.reference_top1)
        );
    }
    out
}

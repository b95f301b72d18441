//! Comparing two stores run by run: how a from-scratch reproduction differs from committed results.

use std::fmt::Write as _;

use crate::matrix::Plan;
use crate::store::{RunStatus, Store};

/// One run whose records differ (or exist in one store only).
#[derive(Clone, Debug, PartialEq)]
pub struct Difference {
    /// `cell seed k`.
    pub run: String,
    /// The run's headline in the new store (`top-1 0.8123`, or a detectron2 run's named
    /// metrics; [`crate::store::Metrics::headline`]), if finished there.
    pub new: Option<String>,
    /// The same in the reference store.
    pub reference: Option<String>,
}

/// Runs of `plan` whose `metrics.json` differ between `new` and `reference`.
///
/// # Errors
/// Unreadable records, naming the file.
pub fn compare(plan: &Plan, new: &Store, reference: &Store) -> anyhow::Result<Vec<Difference>> {
    compare_within(plan, new, reference, None)
}

/// As [`compare`]; with `tolerance` (percentage points), a run counts as different only when it
/// is missing from one store or its top-1 (a detectron2 run: any of its named metrics, in
/// points) moved by more than the tolerance.
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
                    // Runs without top-1 (detectron2's): their named metrics, in points.
                    (None, None) => {
                        x.named_metrics.len() != y.named_metrics.len()
                            || x.named_metrics.iter().any(|(name, a)| {
                                y.named_metrics.get(name).is_none_or(|b| (a - b).abs() > points)
                            })
                    }
                    // One with top-1, one without: not the same kind of run.
                    _ => true,
                },
                _ => a != b,
            };
            if differs {
                differences.push(Difference {
                    run: format!("{} seed {seed}", cell.id()),
                    new: a.map(|m| m.headline()),
                    reference: b.map(|m| m.headline()),
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
    let show = |v: &Option<String>| v.clone().unwrap_or_else(|| "missing".to_string());
    for d in differences {
        let _ = write!(
            out,
            "\n  {}: {} (new) vs {} (reference)",
            d.run,
            show(&d.new),
            show(&d.reference)
        );
    }
    out
}

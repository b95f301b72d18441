//! Check 2, Theorem 2 and Corollary 2.1: per-class margins of trained models against the bound's
//! optimal margins `gamma*_j = beta n_j^(-1/4) / sum_i n_i^(-1/4)`.
//!
//! The models are check 1's at IF 100. For each class, `s_j` is the largest standard softmax
//! cross-entropy over its training samples (Eqn 7) or, since a maximum is fragile, its 90%
//! quantile. The margins are `gamma_j = t - s_j` for one threshold `t` shared by the models
//! (`1 + ` the largest `s_j` of any of them, so every margin is positive). The bound's value is
//! `(1/k) sum_j [ (1/gamma_j) sqrt(C / n_j) + log(n) / sqrt(n_j) ]` with C = 1 (its constant is not
//! given), set beside its value at the optimal margins with the same total `beta = sum_j gamma_j`.
//! The shape of the margins, free of `t`, is the slope `c` of the least-squares fit
//! `s_j = a - c n_j^(-1/4)`: `c > 0` means larger margins for rarer classes, as the optimum wants.

use super::label_shift::{self, Model, Trained, IMBALANCE, K, RADIUS};
use super::linear::{least_squares, log_softmax, Mixture};
use super::{mean_and_se, Verdict};
use crate::seed::Seed;

/// The models compared.
const MODELS: [Model; 3] = [Model::Softmax, Model::BalancedQuarter, Model::Balanced];
/// The bound's complexity constant.
const C: f64 = 1.0;
/// The quantile variant's level.
const QUANTILE: f64 = 0.9;

/// The per-class loss statistic.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Statistic {
    Max,
    Quantile,
}

impl Statistic {
    fn label(self) -> String {
        match self {
            Statistic::Max => "max (Eqn 7)".to_string(),
            Statistic::Quantile => format!("{:.0}% quantile", QUANTILE * 100.0),
        }
    }

    fn of(self, mut losses: Vec<f64>) -> f64 {
        losses.sort_by(f64::total_cmp);
        match self {
            Statistic::Max => *losses.last().expect("a class has samples"),
            Statistic::Quantile => {
                #[expect(
                    clippy::cast_possible_truncation,
                    clippy::cast_sign_loss,
                    reason = "a rank in 0..len, since QUANTILE is in [0, 1]"
                )]
                let at = ((losses.len() - 1) as f64 * QUANTILE).round() as usize;
                losses[at]
            }
        }
    }
}

/// Per-class statistic `s_j` of the standard softmax cross-entropy of `model` on its training set.
fn class_statistics(trained: &Trained, model: Model, statistic: Statistic) -> Vec<f64> {
    let linear = trained.get(model);
    trained
        .train
        .by_class(K)
        .iter()
        .map(|rows| {
            let losses = rows
                .iter()
                .map(|&i| -log_softmax(&linear.logits(trained.train.row(i)))[trained.train.y[i]])
                .collect();
            statistic.of(losses)
        })
        .collect()
}

/// The bound's value for margins `gamma` and counts `n`.
#[must_use]
pub fn bound(gamma: &[f64], counts: &[usize]) -> f64 {
    let total = counts.iter().sum::<usize>() as f64;
    let k = counts.len() as f64;
    gamma
        .iter()
        .zip(counts)
        .map(|(g, &n)| {
            let n = n as f64;
            (C / n).sqrt() / g + total.ln() / n.sqrt()
        })
        .sum::<f64>()
        / k
}

/// The optimal margins (Eqn 8) with total `beta`.
#[must_use]
pub fn optimal(beta: f64, counts: &[usize]) -> Vec<f64> {
    let w: Vec<f64> = counts.iter().map(|&n| (n as f64).powf(-0.25)).collect();
    let sum: f64 = w.iter().sum();
    w.iter().map(|v| beta * v / sum).collect()
}

/// Least-squares `c` and R^2 of `s_j = a - c x_j`.
fn fit(x: &[f64], s: &[f64]) -> (f64, f64) {
    let (slope, r2) = least_squares(x, s);
    (-slope, r2)
}

/// One model's numbers for one seed.
struct Margins {
    c: f64,
    r2: f64,
    ratio: f64,
    bound: f64,
    shares: Vec<f64>,
}

fn margins(trained: &Trained, statistic: Statistic) -> Vec<Margins> {
    let stats: Vec<Vec<f64>> =
        MODELS.iter().map(|&m| class_statistics(trained, m, statistic)).collect();
    let t = 1.0 + stats.iter().flatten().copied().fold(f64::NEG_INFINITY, f64::max);
    let x: Vec<f64> = trained.counts.iter().map(|&n| (n as f64).powf(-0.25)).collect();
    stats
        .iter()
        .map(|s| {
            let gamma: Vec<f64> = s.iter().map(|v| t - v).collect();
            let beta: f64 = gamma.iter().sum();
            let value = bound(&gamma, &trained.counts);
            let (c, r2) = fit(&x, s);
            Margins {
                c,
                r2,
                ratio: value / bound(&optimal(beta, &trained.counts), &trained.counts),
                bound: value,
                shares: gamma.iter().map(|g| g / beta).collect(),
            }
        })
        .collect()
}

/// Runs the check over `seeds` and renders it.
#[must_use]
pub fn run(seeds: &[Seed]) -> (String, Vec<Verdict>) {
    use std::fmt::Write as _;
    let imbalance = IMBALANCE[1];
    let mixture = Mixture::on_circle(K, 2, RADIUS);
    let trained: Vec<Trained> =
        seeds.iter().map(|&s| label_shift::train(&mixture, imbalance, s)).collect();
    let counts = &trained[0].counts;
    let optimal_shares = optimal(1.0, counts);
    let mut out = format!(
        "## 2. Theorem 2 and Corollary 2.1: margins\n\nCheck 1's models at IF {imbalance} (counts \
         {counts:?}), {} seeds. s_j: a statistic of the standard cross-entropy over class j's \
         training samples; margins gamma_j = t - s_j with t = 1 + the largest s_j of the three \
         models; bound = (1/k) sum_j [(1/gamma_j) sqrt(C/n_j) + log(n)/sqrt(n_j)] with C = {C}; \
         \"bound / optimum\": against the optimal margins gamma*_j proportional to n_j^(-1/4) with \
         the same total. c: slope of the fit s_j = a - c n_j^(-1/4) (c > 0: rarer classes get \
         larger margins, the optimum's shape). Margin shares gamma_j / sum gamma, head to tail; \
         the optimum's: {}.\n\n**Prediction** (Corollary 2.1): a Balanced Softmax loss gives the \
         rarer classes larger margins (c > 0) and a lower bound than Softmax, whose tail margins \
         are the smallest.\n\n",
        seeds.len(),
        shares(&optimal_shares)
    );
    let mut verdicts = Vec::new();
    for statistic in [Statistic::Max, Statistic::Quantile] {
        let per_seed: Vec<Vec<Margins>> = trained.iter().map(|t| margins(t, statistic)).collect();
        let _ = writeln!(
            out,
            "s_j = {}:\n\n| model | c | R^2 | bound | bound / optimum | margin shares (seed 1) |\n|---|---:|---:|---:|---:|---|",
            statistic.label()
        );
        let mut summary = Vec::new();
        for (i, model) in MODELS.iter().enumerate() {
            let col = |f: fn(&Margins) -> f64| {
                mean_and_se(&per_seed.iter().map(|m| f(&m[i])).collect::<Vec<_>>())
            };
            let (c, r2, b, ratio) =
                (col(|m| m.c), col(|m| m.r2), col(|m| m.bound), col(|m| m.ratio));
            let _ = writeln!(
                out,
                "| {} | {:.3} +- {:.3} | {:.2} | {:.3} +- {:.3} | {:.3} +- {:.3} | {} |",
                model.label(),
                c.0,
                c.1,
                r2.0,
                b.0,
                b.1,
                ratio.0,
                ratio.1,
                shares(&per_seed[0][i].shares)
            );
            summary.push((c.0, b.0));
        }
        out.push('\n');
        let (softmax, quarter, balanced) = (summary[0], summary[1], summary[2]);
        verdicts.push(Verdict {
            check: format!("Corollary 2.1, margins from the {}", statistic.label()),
            predicted: "c < 0 for Softmax, c > 0 for Balanced Softmax (1/4 and 1); bound lower than Softmax's".to_string(),
            measured: format!(
                "c = {:.3} / {:.3} / {:.3}; bound {:.3} / {:.3} / {:.3} (Softmax / BS 1/4 / BS)",
                softmax.0, quarter.0, balanced.0, softmax.1, quarter.1, balanced.1
            ),
            agree: softmax.0 < 0.0
                && quarter.0 > 0.0
                && balanced.0 > 0.0
                && quarter.1 < softmax.1
                && balanced.1 < softmax.1,
        });
    }
    (out, verdicts)
}

fn shares(values: &[f64]) -> String {
    values.iter().map(|v| format!("{v:.3}")).collect::<Vec<_>>().join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn optimal_margins_minimise_the_bound_for_their_total() {
        let counts = [2000, 431, 92, 20];
        let star = optimal(2.0, &counts);
        assert!((star.iter().sum::<f64>() - 2.0).abs() < 1e-12);
        let best = bound(&star, &counts);
        for shift in [0.05, -0.05, 0.2] {
            let mut other = star.clone();
            other[0] += shift;
            other[3] -= shift;
            assert!(bound(&other, &counts) > best);
        }
        let uniform = [0.5; 4];
        assert!(bound(&uniform, &counts) > best);
    }

    #[test]
    fn fit_recovers_a_known_slope() {
        let x = [1.0, 0.5, 0.25, 0.1];
        let s: Vec<f64> = x.iter().map(|v| 3.0 - 0.7 * v).collect();
        let (c, r2) = fit(&x, &s);
        assert!((c - 0.7).abs() < 1e-12 && (r2 - 1.0).abs() < 1e-12);
    }
}

//! Check 1, Theorem 1 (label shift): trained on a long-tailed sample, Softmax estimates the
//! long-tailed posterior and Balanced Softmax the balanced one.
//!
//! A 4-class Gaussian mixture in 2-d with identity covariance (means on a circle of radius 2),
//! long-tailed training sets (the paper's profile, 2,000 images in the head) at IF 10 and 100,
//! linear models trained to convergence by full-batch gradient descent, and a balanced test set
//! of 2,000 points per class. For each model: balanced accuracy and the mean KL divergence from
//! the exact balanced Bayes posterior (a) and from the exact long-tailed one (b).

use super::linear::{kl, log_softmax, Linear, Mixture, Objective, Points};
use super::{mean_and_se, Verdict};
use crate::seed::Seed;

/// Number of classes of the check's Gaussian mixture.
pub const K: usize = 4;
/// Dimension of the points.
const D: usize = 2;
/// Head-class training count, `n_max` of the long-tail profile.
const N_MAX: usize = 2000;
/// Balanced test points per class.
const TEST_PER_CLASS: usize = 2000;
/// Distance of the means from the origin.
pub const RADIUS: f64 = 2.0;
/// Full-batch gradient descent.
const LR: f64 = 0.5;
const ITERATIONS: usize = 3000;
/// Imbalance factors (`n_max / n_min`) of the training sets the check draws.
pub const IMBALANCE: [f64; 2] = [10.0, 100.0];

/// A row of the label-shift table: a linear model trained with Softmax or Balanced Softmax
/// (exponent 1/4 or 1), or the Softmax model corrected post hoc.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Model {
    /// Softmax cross-entropy.
    Softmax,
    /// The Softmax model with `log n_j` subtracted from its logits after training.
    SoftmaxPostHoc,
    /// Balanced Softmax with exponent 1/4 (Eqn 10).
    BalancedQuarter,
    /// Balanced Softmax (Eqn 4).
    Balanced,
}

impl Model {
    /// All, in table order.
    pub const ALL: [Model; 4] =
        [Model::Softmax, Model::SoftmaxPostHoc, Model::BalancedQuarter, Model::Balanced];

    /// The model's row name in the rendered table (e.g. `Softmax - log n_j (post hoc)`).
    #[must_use]
    pub fn label(self) -> &'static str {
        match self {
            Model::Softmax => "Softmax",
            Model::SoftmaxPostHoc => "Softmax - log n_j (post hoc)",
            Model::BalancedQuarter => "Balanced Softmax 1/4",
            Model::Balanced => "Balanced Softmax",
        }
    }
}

/// Models trained on one long-tailed sample.
pub struct Trained {
    /// Per-class training counts `n_j` (`K` of them): the long-tail profile with `n_max` 2,000 at
    /// the trained imbalance factor.
    pub counts: Vec<usize>,
    /// The training sample.
    pub train: Points,
    /// Softmax, Balanced Softmax 1/4 and Balanced Softmax, with their final gradient norms.
    pub models: Vec<(Model, Linear, f64)>,
}

impl Trained {
    /// The trained model of `model` (the post-hoc model is the Softmax one).
    #[must_use]
    pub fn get(&self, model: Model) -> &Linear {
        let wanted = if model == Model::SoftmaxPostHoc { Model::Softmax } else { model };
        &self.models.iter().find(|(m, _, _)| *m == wanted).expect("trained").1
    }
}

/// Trains the check's models at `imbalance` for `seed`.
#[must_use]
pub fn train(mixture: &Mixture, imbalance: f64, seed: Seed) -> Trained {
    let counts = crate::data::longtail::profile(N_MAX, imbalance, K);
    let train =
        mixture.sample(&counts, &mut seed.rng(&format!("theory/label-shift/if{imbalance}")));
    let models = [(Model::Softmax, 0.0), (Model::BalancedQuarter, 0.25), (Model::Balanced, 1.0)]
        .into_iter()
        .map(|(model, q)| {
            let (linear, norm) =
                Linear::fit(&train, K, &Objective::balanced(&counts, q), LR, ITERATIONS);
            (model, linear, norm)
        })
        .collect();
    Trained { counts, train, models }
}

/// One model's measurements on the balanced test set.
#[derive(Clone, Copy, Debug, Default)]
pub struct Measured {
    /// Balanced top-1.
    pub accuracy: f64,
    /// Mean KL(balanced Bayes posterior || model).
    pub kl_balanced: f64,
    /// Mean KL(long-tailed Bayes posterior || model).
    pub kl_long_tailed: f64,
}

/// Measures `model` of `trained` on `test`.
#[must_use]
pub fn measure(mixture: &Mixture, trained: &Trained, model: Model, test: &Points) -> Measured {
    let linear = trained.get(model);
    let adjust: Vec<f64> = trained
        .counts
        .iter()
        .map(|&n| if model == Model::SoftmaxPostHoc { -(n as f64).ln() } else { 0.0 })
        .collect();
    let mut out = Measured::default();
    for i in 0..test.len() {
        let x = test.row(i);
        let z: Vec<f64> = linear.logits(x).iter().zip(&adjust).map(|(a, b)| a + b).collect();
        let log_q = log_softmax(&z);
        out.accuracy += f64::from(u8::from(super::linear::argmax(&z) == test.y[i]));
        out.kl_balanced += kl(&log_softmax(&mixture.bayes_logits(x, None)), &log_q);
        out.kl_long_tailed +=
            kl(&log_softmax(&mixture.bayes_logits(x, Some(&trained.counts))), &log_q);
    }
    let n = test.len() as f64;
    Measured {
        accuracy: out.accuracy / n,
        kl_balanced: out.kl_balanced / n,
        kl_long_tailed: out.kl_long_tailed / n,
    }
}

/// The balanced test set for `seed`.
#[must_use]
pub fn test_set(mixture: &Mixture, seed: Seed) -> Points {
    mixture.sample(&[TEST_PER_CLASS; K], &mut seed.rng("theory/label-shift/test"))
}

/// Runs the check over `seeds` and renders it.
#[must_use]
pub fn run(seeds: &[Seed]) -> (String, Vec<Verdict>) {
    use std::fmt::Write as _;
    let mixture = Mixture::on_circle(K, D, RADIUS);
    let mut out = format!(
        "## 1. Theorem 1: label shift\n\n{K} Gaussian classes N(mu_j, I) in {D}-d, means on a circle of \
         radius {RADIUS}; long-tailed training sets with n_max = {N_MAX}; linear models trained by \
         full-batch gradient descent ({ITERATIONS} steps of {LR}); a balanced test set of \
         {TEST_PER_CLASS} points per class; {} seeds (mean +- standard error). KL(a): mean KL from \
         the exact balanced Bayes posterior; KL(b): from the exact long-tailed one (priors n_j / n).\n\n\
         **Prediction** (Theorem 1): Balanced Softmax and Softmax with log n_j subtracted approach \
         (a); Softmax approaches (b). With a bias term, Balanced Softmax is Softmax with its bias \
         shifted by log n_j, so at convergence the two rows coincide; Balanced Softmax 1/4 corrects \
         a quarter of the shift and lands between.\n\n",
        seeds.len()
    );
    let mut verdicts = Vec::new();
    for imbalance in IMBALANCE {
        let mut rows: Vec<Vec<Measured>> = vec![Vec::new(); Model::ALL.len()];
        let mut worst_norm: f64 = 0.0;
        for &seed in seeds {
            let trained = train(&mixture, imbalance, seed);
            worst_norm = trained.models.iter().map(|m| m.2).fold(worst_norm, f64::max);
            let test = test_set(&mixture, seed);
            for (row, model) in rows.iter_mut().zip(Model::ALL) {
                row.push(measure(&mixture, &trained, model, &test));
            }
        }
        let counts = crate::data::longtail::profile(N_MAX, imbalance, K);
        let _ = writeln!(
            out,
            "IF {imbalance} (counts {counts:?}; largest final gradient norm {worst_norm:.1e}):\n\n\
             | model | balanced top-1 % | KL(a) balanced | KL(b) long-tailed | closer to |\n|---|---:|---:|---:|---|"
        );
        let mut closer = Vec::new();
        for (model, row) in Model::ALL.iter().zip(&rows) {
            let stat =
                |f: fn(&Measured) -> f64| mean_and_se(&row.iter().map(f).collect::<Vec<_>>());
            let (acc, kla, klb) =
                (stat(|m| m.accuracy * 100.0), stat(|m| m.kl_balanced), stat(|m| m.kl_long_tailed));
            let side = if kla.0 < klb.0 { "(a) balanced" } else { "(b) long-tailed" };
            closer.push((*model, kla.0 < klb.0));
            let _ = writeln!(
                out,
                "| {} | {:.2} +- {:.2} | {:.4} +- {:.4} | {:.4} +- {:.4} | {side} |",
                model.label(),
                acc.0,
                acc.1,
                kla.0,
                kla.1,
                klb.0,
                klb.1
            );
        }
        let balanced = |m: Model| closer.iter().any(|(c, a)| *c == m && *a);
        let agree = !balanced(Model::Softmax)
            && balanced(Model::SoftmaxPostHoc)
            && balanced(Model::Balanced);
        verdicts.push(Verdict {
            check: format!("Theorem 1 at IF {imbalance}"),
            predicted: "Balanced Softmax and post-hoc Softmax closer to (a), Softmax closer to (b)"
                .to_string(),
            measured: closer
                .iter()
                .map(|(m, a)| format!("{}: {}", m.label(), if *a { "(a)" } else { "(b)" }))
                .collect::<Vec<_>>()
                .join("; "),
            agree,
        });
        out.push('\n');
    }
    (out, verdicts)
}

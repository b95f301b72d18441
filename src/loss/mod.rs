//! Losses. [`LossSpec`] is the registry: a matrix names a variant, [`LossSpec::build`] turns it
//! into a [`Loss`] with what it needs from the data ([`BuildContext`]).
//!
//! Every loss reports per-sample [`Terms`] and the weights its mean divides by, so class weights
//! (its own, or deferred re-weighting's) follow `F.cross_entropy(weight=w)`: the mean divides by
//! the sum of the targets' weights, not by the batch size.
//!
//! To add a loss: write `src/loss/<name>.rs` with a type implementing [`Loss`] and its tests,
//! add a variant to [`LossSpec`] with its `#[strum(message)]` (its line in `balms list`) and its
//! arms in `label`, `check` and `build` (no match on a spec enum has a `_ =>` arm, so the compiler
//! lists every place to touch); then `just readme-listing`. The README shows a worked example.

mod equalization;
mod focal;
mod ldam;
mod shifted_softmax;
mod softmax;
mod weights;

pub use equalization::Equalization;
pub use focal::Focal;
pub use ldam::{ldam_margins, Ldam};
pub use shifted_softmax::ShiftedSoftmax;
pub use softmax::Softmax;
pub use weights::{class_balanced_weights, inverse_frequency_weights};

use serde::{Deserialize, Serialize};
use tch::{Device, Kind, Reduction, Tensor};

/// Per-sample loss values and the weights their mean divides by.
#[derive(Debug)]
pub struct Terms {
    /// Loss of each sample, class weight included, shape `[B]`.
    pub values: Tensor,
    /// Weight of each sample for the mean (`None`: the mean is over the batch).
    pub weights: Option<Tensor>,
}

impl Terms {
    /// The batch loss: `sum(values) / sum(weights)`, or the plain mean without weights.
    pub fn mean(&self) -> Tensor {
        match &self.weights {
            None => self.values.mean(None),
            Some(w) => self.values.sum(None) / w.sum(None),
        }
    }
}

/// A training loss over a batch.
pub trait Loss: std::fmt::Debug + Send {
    /// Per-sample terms of the batch.
    ///
    /// # Shapes
    /// `logits`: `[B, C]` float; `targets`: `[B]` int64.
    fn terms(&self, logits: &Tensor, targets: &Tensor) -> Terms;

    /// Mean loss of the batch (a scalar).
    fn forward(&self, logits: &Tensor, targets: &Tensor) -> Tensor {
        self.terms(logits, targets).mean()
    }
}

/// What losses may need from the training data.
#[derive(Clone, Debug)]
pub struct BuildContext {
    /// Per-class training counts `n_j`.
    pub class_counts: Vec<usize>,
    /// Device of the logits.
    pub device: Device,
    /// Extra class weights multiplied into the loss's own (deferred re-weighting), if any.
    pub class_weights: Option<Vec<f64>>,
}

impl BuildContext {
    /// A context without extra class weights.
    #[must_use]
    pub fn new(class_counts: Vec<usize>, device: Device) -> BuildContext {
        BuildContext { class_counts, device, class_weights: None }
    }

    /// The loss's `own` class weights times the context's, as an f64 tensor on the device.
    #[must_use]
    pub fn weights(&self, own: Option<Vec<f64>>) -> Option<Tensor> {
        let combined = match (own, &self.class_weights) {
            (None, None) => return None,
            (Some(w), None) => w,
            (None, Some(c)) => c.clone(),
            (Some(w), Some(c)) => w.iter().zip(c).map(|(a, b)| a * b).collect(),
        };
        Some(Tensor::from_slice(&combined).to_device(self.device))
    }

    fn check_counts(&self, loss: &LossSpec) -> Result<(), LossError> {
        match self.class_counts.iter().position(|&n| n == 0) {
            Some(class) => Err(LossError::EmptyClass { loss: loss.label(), class }),
            None => Ok(()),
        }
    }
}

/// Cross-entropy terms as `F.cross_entropy(z, y, weight=w, reduction='none')` plus the weights
/// of the targets, so that [`Terms::mean`] equals the weighted mean reduction.
#[must_use]
pub fn cross_entropy_terms(logits: &Tensor, targets: &Tensor, weights: Option<&Tensor>) -> Terms {
    let ce = logits.cross_entropy_loss::<Tensor>(targets, None, Reduction::None, -100, 0.0);
    class_weighted(ce, targets, weights)
}

/// Per-sample `values` with class `weights` (`[C]`, any kind) applied to each target, as
/// `reduction='none'` does with `weight=`; the targets' weights become the mean's normaliser.
#[must_use]
pub fn class_weighted(values: Tensor, targets: &Tensor, weights: Option<&Tensor>) -> Terms {
    match weights {
        None => Terms { values, weights: None },
        Some(w) => {
            let wy = w.to_kind(values.kind()).index_select(0, targets);
            Terms { values: values * &wy, weights: Some(wy) }
        }
    }
}

/// Which loss the class-balanced loss weights.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum CbBase {
    /// Weighted softmax cross-entropy (default).
    #[default]
    Softmax,
    /// Weighted focal loss (LDAM-DRW's form: the weight inside the cross-entropy).
    Focal,
}

/// A loss as named in a matrix: `loss = "softmax"`, or a table with parameters,
/// `loss = { focal = { gamma = 2.0 } }`; omitted parameters take the defaults below.
#[derive(strum::VariantNames, strum::EnumIter, strum::EnumMessage)]
#[strum(serialize_all = "kebab-case")]
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", rename_all_fields = "kebab-case", deny_unknown_fields)]
pub enum LossSpec {
    /// Softmax cross-entropy (`nn.CrossEntropyLoss()`).
    #[strum(message = "softmax cross-entropy")]
    Softmax,
    /// Balanced Softmax (Ren et al., Eqn 4): cross-entropy of `logits + exponent * log n_j`;
    /// prediction uses the raw logits. `exponent` 1 (default) is Balanced Softmax, 1/4 is the
    /// paper's "Balanced Softmax 1/4" (Eqn 10, Table 5 rows 2, 4, 5), 0 is Softmax.
    #[strum(message = "CE(logits + q log n_j) (Ren et al., Eqn 4; q = 1/4: Eqn 10)")]
    BalancedSoftmax {
        /// `q` in `CE(logits + q log n_j)` (default 1).
        #[serde(default = "one")]
        exponent: f64,
    },
    /// Logit-adjusted loss (Menon et al., 2007.07314): cross-entropy of
    /// `logits + tau * log(n_j / n)`; tau = 1 (default, their recommendation) equals Balanced
    /// Softmax. Computed in f64 without the reference's `+ 1e-12` inside the log.
    #[strum(message = "CE(logits + tau log prior) (Menon et al.)")]
    LogitAdjusted {
        /// Temperature (default 1).
        #[serde(default = "one")]
        tau: f64,
    },
    /// Class-balanced weighting (the paper's "CBW"): cross-entropy with class weights
    /// proportional to `1/n_j` (the paper's §3.2 "inverse loss weight"), normalised to sum to C.
    #[strum(message = "CE with class weights 1/n_j, summing to C")]
    Cbw,
    /// Focal loss (Lin et al.), as LDAM-DRW's `FocalLoss`: mean of `(1 - exp(-CE))^gamma * CE`.
    /// Default gamma = 1, LDAM-DRW's CIFAR setting (the detection paper used 2).
    #[strum(message = "(1 - p_t)^gamma CE (LDAM-DRW's form)")]
    Focal {
        /// Focusing parameter (default 1).
        #[serde(default = "one")]
        gamma: f64,
    },
    /// Class-Balanced loss (Cui et al., 1901.05555): class weights `(1 - beta)/(1 - beta^n_j)`
    /// normalised to sum to C (LDAM-DRW's `Reweight` rule, beta 0.9999 by default), over softmax
    /// cross-entropy (default) or the focal loss (LDAM-DRW's form, weight inside the CE).
    #[strum(
        message = "class weights (1 - beta)/(1 - beta^n_j) over softmax or focal (Cui et al.)",
        detailed_message = "class-balanced-loss { base = \"focal\", gamma = 2.0 }"
    )]
    ClassBalancedLoss {
        /// beta of the effective number (default 0.9999).
        #[serde(default = "cb_beta")]
        beta: f64,
        /// The weighted loss (default `softmax`).
        #[serde(default)]
        base: CbBase,
        /// gamma when `base = "focal"` (default 1).
        #[serde(default = "one")]
        gamma: f64,
    },
    /// LDAM (Cao et al., LDAM-DRW's `LDAMLoss`): margins proportional to `n_j^(-1/4)`, the largest
    /// `max-margin` (default 0.5), subtracted from the true logit, then CE of `scale * logits`
    /// (default s = 30). Pair it with `classifier = "cosine"` as LDAM-DRW does.
    #[strum(message = "margins n_j^(-1/4) on the true logit (Cao et al.)")]
    Ldam {
        /// Largest margin (default 0.5).
        #[serde(default = "half")]
        max_margin: f64,
        /// Logit scale s (default 30).
        #[serde(default = "thirty")]
        scale: f64,
    },
    /// Softmax Equalization loss (Tan et al.; BagofTricks-LT's `SEQL`): for each sample, the
    /// logits of tail classes (training frequency below `lambda`) other than the target are
    /// dropped from the softmax denominator with probability `gamma`. Defaults gamma 0.9,
    /// lambda 0.005 (BagofTricks-LT). The mask comes from libtorch's generator, seeded by the
    /// run's init stream.
    #[strum(message = "softmax EQL (Tan et al.; BagofTricks-LT)")]
    Equalization {
        /// Drop probability (default 0.9).
        #[serde(default = "eql_gamma")]
        gamma: f64,
        /// Tail threshold on the class frequency `n_j / n` (default 0.005).
        #[serde(default = "eql_lambda")]
        lambda: f64,
    },
}

fn one() -> f64 {
    1.0
}
fn half() -> f64 {
    0.5
}
fn thirty() -> f64 {
    30.0
}
fn cb_beta() -> f64 {
    0.9999
}
fn eql_gamma() -> f64 {
    0.9
}
fn eql_lambda() -> f64 {
    0.005
}

/// Why a loss cannot be built.
#[derive(Debug, thiserror::Error)]
pub enum LossError {
    /// A class has no training sample, so `log n_j` (or `1/n_j`) is undefined (the author: the
    /// method "is no longer applicable").
    #[error("loss `{loss}` needs every class in training; class {class} has no sample")]
    EmptyClass {
        /// [`LossSpec::label`] of the loss that cannot be built.
        loss: String,
        /// Index of the class with no training sample.
        class: usize,
    },
    /// A parameter is outside its range.
    #[error("loss `{loss}`: {message}")]
    Parameter {
        /// [`LossSpec::label`] of the loss.
        loss: String,
        /// [`LossSpec::check`]'s message naming the parameter and its range.
        message: String,
    },
}

impl LossSpec {
    /// Whether the loss itself corrects for the training label prior (re-weighting classes or
    /// shifting logits by `log n_j`): Balanced Softmax (any exponent above 0), the
    /// logit-adjusted loss, CBW and the Class-Balanced loss. A class-balanced sampler, DRW or a
    /// post-hoc logit adjustment on top of one corrects a second time (the paper's
    /// over-balance, §3.3).
    #[must_use]
    pub fn corrects_prior(&self) -> bool {
        match self {
            LossSpec::BalancedSoftmax { exponent } => *exponent > 0.0,
            LossSpec::LogitAdjusted { tau } => *tau > 0.0,
            LossSpec::Cbw | LossSpec::ClassBalancedLoss { .. } => true,
            LossSpec::Softmax
            | LossSpec::Focal { .. }
            | LossSpec::Ldam { .. }
            | LossSpec::Equalization { .. } => false,
        }
    }

    /// Balanced Softmax with exponent 1.
    pub const BALANCED_SOFTMAX: LossSpec = LossSpec::BalancedSoftmax { exponent: 1.0 };

    /// Stable label used in plans and tables.
    #[must_use]
    pub fn label(&self) -> String {
        match self {
            LossSpec::Softmax => "softmax".to_string(),
            #[expect(
                clippy::float_cmp,
                reason = "only the exact default reads as plain Balanced Softmax"
            )]
            LossSpec::BalancedSoftmax { exponent } if *exponent == 1.0 => {
                "balanced-softmax".to_string()
            }
            LossSpec::BalancedSoftmax { exponent } => format!("balanced-softmax(q={exponent})"),
            LossSpec::LogitAdjusted { tau } => format!("logit-adjusted(tau={tau})"),
            LossSpec::Cbw => "cbw".to_string(),
            LossSpec::Focal { gamma } => format!("focal(gamma={gamma})"),
            LossSpec::ClassBalancedLoss { beta, base: CbBase::Softmax, .. } => {
                format!("class-balanced-loss(beta={beta}, softmax)")
            }
            LossSpec::ClassBalancedLoss { beta, base: CbBase::Focal, gamma } => {
                format!("class-balanced-loss(beta={beta}, focal gamma={gamma})")
            }
            LossSpec::Ldam { max_margin, scale } => format!("ldam(m={max_margin}, s={scale})"),
            LossSpec::Equalization { gamma, lambda } => {
                format!("equalization(gamma={gamma}, lambda={lambda})")
            }
        }
    }

    /// Checks parameter ranges (called when a matrix is validated).
    ///
    /// # Errors
    /// A message naming the parameter.
    pub fn check(&self) -> Result<(), String> {
        let finite_nonneg = |name: &str, v: f64| {
            if v.is_finite() && v >= 0.0 {
                Ok(())
            } else {
                Err(format!("`{name}` = {v} must be finite and non-negative"))
            }
        };
        match self {
            LossSpec::Softmax | LossSpec::Cbw => Ok(()),
            LossSpec::BalancedSoftmax { exponent } => finite_nonneg("exponent", *exponent),
            LossSpec::LogitAdjusted { tau } => finite_nonneg("tau", *tau),
            LossSpec::Focal { gamma } => finite_nonneg("gamma", *gamma),
            LossSpec::ClassBalancedLoss { beta, gamma, .. } => {
                finite_nonneg("gamma", *gamma)?;
                if (0.0..1.0).contains(beta) {
                    Ok(())
                } else {
                    Err(format!("`beta` = {beta} must be in [0, 1)"))
                }
            }
            LossSpec::Ldam { max_margin, scale } => {
                finite_nonneg("max-margin", *max_margin)?;
                finite_nonneg("scale", *scale)
            }
            LossSpec::Equalization { gamma, lambda } => {
                if !(0.0..=1.0).contains(gamma) {
                    return Err(format!("`gamma` = {gamma} must be in [0, 1]"));
                }
                finite_nonneg("lambda", *lambda)
            }
        }
    }

    /// Builds the loss.
    ///
    /// # Errors
    /// [`LossError`] when the data or a parameter does not suit the loss.
    pub fn build(&self, context: &BuildContext) -> Result<Box<dyn Loss>, LossError> {
        self.check().map_err(|message| LossError::Parameter { loss: self.label(), message })?;
        context.check_counts(self)?;
        let counts = &context.class_counts;
        Ok(match self {
            LossSpec::Softmax => Box::new(Softmax::new(context.weights(None))),
            LossSpec::BalancedSoftmax { exponent } => {
                Box::new(ShiftedSoftmax::balanced(context, *exponent))
            }
            LossSpec::LogitAdjusted { tau } => {
                Box::new(ShiftedSoftmax::logit_adjusted(context, *tau))
            }
            LossSpec::Cbw => {
                Box::new(Softmax::new(context.weights(Some(inverse_frequency_weights(counts)))))
            }
            LossSpec::Focal { gamma } => Box::new(Focal::new(*gamma, context.weights(None))),
            LossSpec::ClassBalancedLoss { beta, base, gamma } => {
                let w = context.weights(Some(class_balanced_weights(counts, *beta)));
                match base {
                    CbBase::Softmax => Box::new(Softmax::new(w)),
                    CbBase::Focal => Box::new(Focal::new(*gamma, w)),
                }
            }
            LossSpec::Ldam { max_margin, scale } => {
                Box::new(Ldam::new(context, *max_margin, *scale))
            }
            LossSpec::Equalization { gamma, lambda } => {
                Box::new(Equalization::new(context, *gamma, *lambda))
            }
        })
    }
}

/// `log(n_j / n)` as f64, the log prior of the training set.
#[must_use]
pub fn log_prior(counts: &[usize]) -> Vec<f64> {
    let total = counts.iter().sum::<usize>() as f64;
    counts.iter().map(|&n| (n as f64 / total).ln()).collect()
}

/// `[C]` f64 values as a row `[1, C]` of the logits' kind.
fn row(values: &Tensor, like: &Tensor) -> Tensor {
    values.to_kind(like.kind()).unsqueeze(0)
}

/// An f64 tensor of `values` on `device`.
fn f64_tensor(values: &[f64], device: Device) -> Tensor {
    Tensor::from_slice(values).to_kind(Kind::Double).to_device(device)
}

#[cfg(test)]
pub(crate) mod testing {
    //! An independent f64 cross-entropy for golden checks.

    /// Per row: `logsumexp(z + shift) - (z + shift)[y]`.
    pub fn reference_ce_rows(logits: &[[f64; 3]], targets: &[usize], shift: [f64; 3]) -> Vec<f64> {
        logits
            .iter()
            .zip(targets)
            .map(|(z, &y)| {
                let s: Vec<f64> = z.iter().zip(shift).map(|(a, b)| a + b).collect();
                let m = s.iter().copied().fold(f64::NEG_INFINITY, f64::max);
                let lse = m + s.iter().map(|v| (v - m).exp()).sum::<f64>().ln();
                lse - s[y]
            })
            .collect()
    }

    /// Mean over rows of `logsumexp(z + shift) - (z + shift)[y]`.
    pub fn reference_ce(logits: &[[f64; 3]], targets: &[usize], shift: [f64; 3]) -> f64 {
        reference_ce_rows(logits, targets, shift).iter().sum::<f64>() / logits.len() as f64
    }

    /// The fixed batch of the golden tests.
    pub const LOGITS: [[f64; 3]; 4] =
        [[2.0, -1.0, 0.5], [0.1, 0.2, 0.3], [-3.0, 4.0, 1.0], [1.5, 1.5, -2.0]];
    /// Its targets.
    pub const TARGETS: [usize; 4] = [0, 2, 1, 2];
    /// Long-tailed counts used by the golden tests.
    pub const COUNTS: [usize; 3] = [100, 10, 1];

    /// The batch as tensors (f64).
    pub fn tensors() -> (tch::Tensor, tch::Tensor) {
        let flat: Vec<f64> = LOGITS.iter().flatten().copied().collect();
        let targets: Vec<i64> = TARGETS.iter().map(|&t| i64::try_from(t).unwrap()).collect();
        (tch::Tensor::from_slice(&flat).view([4, 3]), tch::Tensor::from_slice(&targets))
    }

    /// The loss of `spec` on the golden batch with `counts`.
    pub fn value(spec: &super::LossSpec, counts: &[usize]) -> f64 {
        let context = super::BuildContext::new(counts.to_vec(), tch::Device::Cpu);
        let (logits, targets) = tensors();
        spec.build(&context).unwrap().forward(&logits, &targets).double_value(&[])
    }

    /// Whether the gradient of `spec`'s loss on the golden batch is finite.
    pub fn gradient_finite(spec: &super::LossSpec) -> bool {
        let context = super::BuildContext::new(COUNTS.to_vec(), tch::Device::Cpu);
        let (logits, targets) = tensors();
        let logits = logits.set_requires_grad(true);
        spec.build(&context).unwrap().forward(&logits, &targets).backward();
        bool::try_from(logits.grad().isfinite().all()).unwrap()
    }

    /// `|a - b| < 1e-12`, with both in the message.
    pub fn close(a: f64, b: f64) {
        assert!((a - b).abs() < 1e-12, "{a} vs {b}");
    }
}

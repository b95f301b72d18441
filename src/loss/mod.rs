//! Losses. [`LossSpec`] is the registry: a matrix names a variant, [`LossSpec::build`] turns it
//! into a [`Loss`] with what it needs from the data ([`BuildContext`]).
//!
//! To add a loss: write `src/loss/<name>.rs` with a type implementing [`Loss`] and its tests,
//! add a variant to [`LossSpec`] and its arms in `label` and `build` (no `_ =>` arms on spec
//! enums, so the compiler lists every place to touch). The README shows a worked example.

mod balanced_softmax;
mod softmax;

pub use balanced_softmax::BalancedSoftmax;
pub use softmax::Softmax;

use serde::{Deserialize, Serialize};
use tch::{Device, Tensor};

/// A training loss over a batch.
pub trait Loss: std::fmt::Debug + Send {
    /// Mean loss of the batch (a scalar).
    ///
    /// # Shapes
    /// `logits`: `[B, C]` float; `targets`: `[B]` int64.
    fn forward(&self, logits: &Tensor, targets: &Tensor) -> Tensor;
}

/// What losses may need from the training data.
#[derive(Clone, Debug)]
pub struct BuildContext {
    /// Per-class training counts `n_j`.
    pub class_counts: Vec<usize>,
    /// Device of the logits.
    pub device: Device,
}

/// A loss as named in a matrix.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum LossSpec {
    /// Softmax cross-entropy.
    Softmax,
    /// Balanced Softmax (Ren et al., Eqn 4): cross-entropy of `logits + log n_j`; prediction uses
    /// the raw logits.
    BalancedSoftmax,
}

/// Why a loss cannot be built.
#[derive(Debug, thiserror::Error)]
pub enum LossError {
    /// A class has no training sample, so `log n_j` is undefined (the author: the method "is no
    /// longer applicable").
    #[error("loss `{loss}` needs every class in training; class {class} has no sample")]
    EmptyClass {
        /// Loss label.
        loss: String,
        /// The empty class.
        class: usize,
    },
}

impl LossSpec {
    /// Stable label used in plans and tables.
    #[must_use]
    pub fn label(&self) -> String {
        match self {
            LossSpec::Softmax => "softmax".to_string(),
            LossSpec::BalancedSoftmax => "balanced-softmax".to_string(),
        }
    }

    /// Builds the loss.
    ///
    /// # Errors
    /// [`LossError`] when the data does not suit the loss.
    pub fn build(&self, context: &BuildContext) -> Result<Box<dyn Loss>, LossError> {
        match self {
            LossSpec::Softmax => Ok(Box::new(Softmax)),
            LossSpec::BalancedSoftmax => {
                Ok(Box::new(BalancedSoftmax::new(context, 1.0, &self.label())?))
            }
        }
    }
}

#[cfg(test)]
pub(crate) mod testing {
    //! An independent f64 cross-entropy for golden checks.

    /// Mean over rows of `logsumexp(z + shift) - (z + shift)[y]`.
    pub fn reference_ce(logits: &[[f64; 3]], targets: &[usize], shift: [f64; 3]) -> f64 {
        let per_row = logits.iter().zip(targets).map(|(z, &y)| {
            let s: Vec<f64> = z.iter().zip(shift).map(|(a, b)| a + b).collect();
            let m = s.iter().copied().fold(f64::NEG_INFINITY, f64::max);
            let lse = m + s.iter().map(|v| (v - m).exp()).sum::<f64>().ln();
            lse - s[y]
        });
        per_row.sum::<f64>() / logits.len() as f64
    }

    /// The fixed batch of the golden tests.
    pub const LOGITS: [[f64; 3]; 4] =
        [[2.0, -1.0, 0.5], [0.1, 0.2, 0.3], [-3.0, 4.0, 1.0], [1.5, 1.5, -2.0]];
    /// Its targets.
    pub const TARGETS: [usize; 4] = [0, 2, 1, 2];

    /// The batch as tensors (f64).
    pub fn tensors() -> (tch::Tensor, tch::Tensor) {
        let flat: Vec<f64> = LOGITS.iter().flatten().copied().collect();
        let targets: Vec<i64> = TARGETS.iter().map(|&t| t as i64).collect();
        (tch::Tensor::from_slice(&flat).view([4, 3]), tch::Tensor::from_slice(&targets))
    }
}

//! Balanced Softmax (Ren et al., NeurIPS 2020, Eqn 4; official `balanced_softmax_loss`), with an
//! exponent `q` on the counts: `CE(logits + q log n_j, y)`. `q = 1` is Balanced Softmax; `q = 1/4`
//! is Corollary 2.1's form (Eqn 10). Prediction always uses the raw logits.

use tch::{Reduction, Tensor};

use super::{BuildContext, Loss, LossError};

/// Cross-entropy of logits shifted by `q log n_j`.
#[derive(Debug)]
pub struct BalancedSoftmax {
    /// `q log n_j`, shape `[C]`, f64 on the logits' device (cast to the logits' kind at use).
    shift: Tensor,
}

impl BalancedSoftmax {
    /// Builds the loss from the training counts.
    ///
    /// # Errors
    /// [`LossError::EmptyClass`] when a class has no training sample.
    pub fn new(context: &BuildContext, exponent: f64, label: &str) -> Result<Self, LossError> {
        if let Some(class) = context.class_counts.iter().position(|&n| n == 0) {
            return Err(LossError::EmptyClass { loss: label.to_string(), class });
        }
        #[allow(clippy::cast_precision_loss)]
        let shift: Vec<f64> =
            context.class_counts.iter().map(|&n| exponent * (n as f64).ln()).collect();
        Ok(BalancedSoftmax { shift: Tensor::from_slice(&shift).to_device(context.device) })
    }
}

impl Loss for BalancedSoftmax {
    fn forward(&self, logits: &Tensor, targets: &Tensor) -> Tensor {
        let adjusted = logits + self.shift.to_kind(logits.kind()).unsqueeze(0);
        adjusted.cross_entropy_loss::<Tensor>(targets, None, Reduction::Mean, -100, 0.0)
    }
}

#[cfg(test)]
mod tests {
    use super::super::testing::{reference_ce, tensors, LOGITS, TARGETS};
    use super::super::{LossSpec, Softmax};
    use super::*;
    use tch::Device;

    fn build(counts: &[usize], q: f64) -> BalancedSoftmax {
        let context = BuildContext { class_counts: counts.to_vec(), device: Device::Cpu };
        BalancedSoftmax::new(&context, q, "balanced-softmax").unwrap()
    }

    // Golden value of the official loss's PyTorch expression
    //   spc = torch.tensor([100., 10., 1.], dtype=torch.float64)
    //   F.cross_entropy(logits + spc.log(), torch.tensor([0,2,1,2]))
    // for the logits of `testing::LOGITS`, computed in Python floats as
    // mean(logsumexp(z + log n) - (z + log n)[y]) = 3.1857181183320296, and again by `reference_ce`.
    #[test]
    fn golden_value() {
        let (logits, targets) = tensors();
        let got = build(&[100, 10, 1], 1.0).forward(&logits, &targets).double_value(&[]);
        let shift = [100f64.ln(), 10f64.ln(), 0.0];
        let want = reference_ce(&LOGITS, &TARGETS, shift);
        assert!((got - want).abs() < 1e-12, "{got} vs {want}");
        assert!((got - 3.185_718_118_332_029_6).abs() < 1e-12, "{got}");
    }

    #[test]
    fn uniform_counts_and_zero_exponent_give_softmax() {
        let (logits, targets) = tensors();
        let softmax = Softmax.forward(&logits, &targets).double_value(&[]);
        let uniform = build(&[7, 7, 7], 1.0).forward(&logits, &targets).double_value(&[]);
        let q0 = build(&[100, 10, 1], 0.0).forward(&logits, &targets).double_value(&[]);
        assert!((uniform - softmax).abs() < 1e-12);
        assert!((q0 - softmax).abs() < 1e-12);
    }

    #[test]
    fn quarter_exponent_matches_reference() {
        let (logits, targets) = tensors();
        let got = build(&[100, 10, 1], 0.25).forward(&logits, &targets).double_value(&[]);
        let shift = [0.25 * 100f64.ln(), 0.25 * 10f64.ln(), 0.0];
        assert!((got - reference_ce(&LOGITS, &TARGETS, shift)).abs() < 1e-12);
    }

    #[test]
    fn empty_class_is_refused_and_gradient_finite() {
        let context = BuildContext { class_counts: vec![3, 0, 1], device: Device::Cpu };
        let err = LossSpec::BalancedSoftmax.build(&context).unwrap_err().to_string();
        assert!(err.contains("class 1"), "{err}");
        let (logits, targets) = tensors();
        let logits = logits.set_requires_grad(true);
        build(&[100, 10, 1], 1.0).forward(&logits, &targets).backward();
        assert!(bool::try_from(logits.grad().isfinite().all()).unwrap());
    }
}

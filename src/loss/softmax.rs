//! Softmax cross-entropy (`nn.CrossEntropyLoss()`), optionally with class weights: the
//! class-balanced weighting baseline and the class-balanced loss over softmax are this loss with
//! their weights (`F.cross_entropy(weight=w)`, mean divided by the targets' total weight).

use tch::Tensor;

use super::{cross_entropy_terms, Loss, Terms};

/// Softmax cross-entropy with optional per-class weights `[C]`.
#[derive(Debug)]
pub struct Softmax {
    weights: Option<Tensor>,
}

impl Softmax {
    /// The loss with class `weights` (`None`: unweighted).
    #[must_use]
    pub fn new(weights: Option<Tensor>) -> Softmax {
        Softmax { weights }
    }
}

impl Loss for Softmax {
    fn terms(&self, logits: &Tensor, targets: &Tensor) -> Terms {
        cross_entropy_terms(logits, targets, self.weights.as_ref())
    }
}

#[cfg(test)]
mod tests {
    use super::super::testing::{
        close, gradient_finite, reference_ce, value, COUNTS, LOGITS, TARGETS,
    };
    use super::super::{BuildContext, LossSpec};
    use tch::Device;

    // Golden value of the PyTorch expression
    //   F.cross_entropy(torch.tensor([[2.,-1.,.5],[.1,.2,.3],[-3.,4.,1.],[1.5,1.5,-2.]],
    //                   dtype=torch.float64), torch.tensor([0,2,1,2]))
    // computed in numpy f64 as mean(logsumexp(z) - z[y]) = 1.3752106940304665, and again by
    // `reference_ce` (f64 log-sum-exp by hand).
    #[test]
    fn golden_value() {
        let got = value(&LossSpec::Softmax, &COUNTS);
        close(got, reference_ce(&LOGITS, &TARGETS, [0.0; 3]));
        close(got, 1.375_210_694_030_466_5);
        assert!(gradient_finite(&LossSpec::Softmax));
    }

    // Class-balanced weighting: w = (1/n) / sum(1/n) * C = [0.027.., 0.270.., 2.702..] for
    // n = [100, 10, 1]; F.cross_entropy(z, y, weight=w) computed in numpy as
    // sum(w[y] * ce) / sum(w[y]) = 2.472717793225213.
    #[test]
    fn cbw_golden_value_and_uniform_counts() {
        close(value(&LossSpec::Cbw, &COUNTS), 2.472_717_793_225_213);
        close(value(&LossSpec::Cbw, &[7, 7, 7]), value(&LossSpec::Softmax, &[7, 7, 7]));
        assert!(gradient_finite(&LossSpec::Cbw));
    }

    // Deferred re-weighting multiplies the context's weights in: Softmax with the CB(0.9999)
    // weights equals the class-balanced loss over softmax.
    #[test]
    fn context_weights_are_applied() {
        let weights = super::super::class_balanced_weights(&COUNTS, 0.9999);
        let context = BuildContext {
            class_counts: COUNTS.to_vec(),
            device: Device::Cpu,
            class_weights: Some(weights),
        };
        let (logits, targets) = super::super::testing::tensors();
        let got = LossSpec::Softmax.build(&context).unwrap().forward(&logits, &targets);
        close(got.double_value(&[]), 2.472_613_671_185_11);
    }
}

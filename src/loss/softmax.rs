//! Softmax cross-entropy (`nn.CrossEntropyLoss()`, mean reduction).

use tch::{Reduction, Tensor};

use super::Loss;

/// Plain softmax cross-entropy.
#[derive(Clone, Copy, Debug, Default)]
pub struct Softmax;

impl Loss for Softmax {
    fn forward(&self, logits: &Tensor, targets: &Tensor) -> Tensor {
        logits.cross_entropy_loss::<Tensor>(targets, None, Reduction::Mean, -100, 0.0)
    }
}

#[cfg(test)]
mod tests {
    use super::super::testing::{reference_ce, tensors, LOGITS, TARGETS};
    use super::*;

    // Golden value of the PyTorch expression
    //   F.cross_entropy(torch.tensor([[2.,-1.,.5],[.1,.2,.3],[-3.,4.,1.],[1.5,1.5,-2.]],
    //                   dtype=torch.float64), torch.tensor([0,2,1,2]))
    // computed in Python floats as mean(logsumexp(z) - z[y]) = 1.3752106940304665, and again by
    // `reference_ce` (f64 log-sum-exp by hand).
    #[test]
    fn golden_value() {
        let (logits, targets) = tensors();
        let got = Softmax.forward(&logits, &targets).double_value(&[]);
        let want = reference_ce(&LOGITS, &TARGETS, [0.0; 3]);
        assert!((got - want).abs() < 1e-12, "{got} vs {want}");
        assert!((got - 1.375_210_694_030_466_5).abs() < 1e-12, "{got}");
    }

    #[test]
    fn gradient_is_finite() {
        let (logits, targets) = tensors();
        let logits = logits.set_requires_grad(true);
        Softmax.forward(&logits, &targets).backward();
        assert!(bool::try_from(logits.grad().isfinite().all()).unwrap());
    }
}

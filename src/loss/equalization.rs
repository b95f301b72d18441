//! Softmax Equalization loss (Tan et al., CVPR 2020, softmax form as BagofTricks-LT's `SEQL`):
//! `log(sum_k w_ik exp(z_ik)) - z_iy` with `w_ik = 1 - E_ik T_k (1 - [k = y_i])`, where
//! `T_k = [n_k / n < lambda]` marks tail classes and `E_ik ~ Bernoulli(gamma)` is drawn per
//! sample and class. Dropped logits are set to `-inf` before a stable log-sum-exp (the reference
//! exponentiates directly and overflows on large logits).

use tch::{Kind, Tensor};

use super::{class_weighted, f64_tensor, row, BuildContext, Loss, Terms};

/// Softmax Equalization loss (BagofTricks-LT's `SEQL`): per sample, each non-target tail class
/// (`n_j / n < lambda`) is dropped from the softmax with probability `gamma`.
#[derive(Debug)]
pub struct Equalization {
    gamma: f64,
    /// `T_k` as 0/1, shape `[C]`.
    tail: Tensor,
    weights: Option<Tensor>,
}

impl Equalization {
    /// The loss with drop probability `gamma` and frequency threshold `lambda`.
    #[must_use]
    pub fn new(context: &BuildContext, gamma: f64, lambda: f64) -> Equalization {
        let total = context.class_counts.iter().sum::<usize>() as f64;
        let tail: Vec<f64> = context
            .class_counts
            .iter()
            .map(|&n| if (n as f64) / total < lambda { 1.0 } else { 0.0 })
            .collect();
        Equalization {
            gamma,
            tail: f64_tensor(&tail, context.device),
            weights: context.weights(None),
        }
    }
}

impl Loss for Equalization {
    fn terms(&self, logits: &Tensor, targets: &Tensor) -> Terms {
        let classes = logits.size()[1];
        let negatives = targets.one_hot(classes).to_kind(logits.kind()).neg().g_add_scalar(1.0);
        let draw = if self.gamma >= 1.0 {
            logits.ones_like()
        } else {
            logits.rand_like().lt(self.gamma).to_kind(logits.kind())
        };
        let tail = row(&self.tail, logits);
        let dropped = (draw * tail * negatives).to_kind(Kind::Bool);
        let kept = logits.masked_fill(&dropped, f64::NEG_INFINITY);
        let lse = kept.logsumexp([1], false);
        let target_logit = logits.gather(1, &targets.unsqueeze(1), false).squeeze_dim(1);
        class_weighted(lse - target_logit, targets, self.weights.as_ref())
    }
}

#[cfg(test)]
mod tests {
    use super::super::testing::{close, gradient_finite, value, COUNTS};
    use super::super::LossSpec;

    // With gamma = 1 every tail negative is dropped. n = [100, 10, 1] has frequencies
    // [0.90, 0.09, 0.009]; lambda 0.05 makes class 2 the only tail class. numpy:
    //   w = 1 - T[None] * (1 - eye(3)[y]); (log((w * exp(z)).sum(1)) - z[arange(4), y]).mean()
    // = 1.3148936719491446.
    #[test]
    fn golden_value_with_certain_drop() {
        let eql = LossSpec::Equalization { gamma: 1.0, lambda: 0.05 };
        close(value(&eql, &COUNTS), 1.314_893_671_949_144_6);
        assert!(gradient_finite(&eql));
    }

    #[test]
    fn no_drop_or_no_tail_is_softmax() {
        let softmax = value(&LossSpec::Softmax, &COUNTS);
        close(value(&LossSpec::Equalization { gamma: 0.0, lambda: 0.05 }, &COUNTS), softmax);
        close(value(&LossSpec::Equalization { gamma: 1.0, lambda: 0.0 }, &COUNTS), softmax);
    }

    #[test]
    fn random_drop_lies_between_and_is_seeded() {
        let eql = LossSpec::Equalization { gamma: 0.5, lambda: 0.05 };
        tch::manual_seed(3);
        let a = value(&eql, &COUNTS);
        tch::manual_seed(3);
        close(value(&eql, &COUNTS), a);
        let low = value(&LossSpec::Equalization { gamma: 1.0, lambda: 0.05 }, &COUNTS);
        assert!(a >= low - 1e-12 && a <= value(&LossSpec::Softmax, &COUNTS) + 1e-12);
    }
}

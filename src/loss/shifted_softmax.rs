//! Softmax cross-entropy of logits shifted per class: Balanced Softmax (Ren et al., NeurIPS 2020,
//! Eqn 4; official `balanced_softmax_loss`) with an exponent `q` on the counts,
//! `CE(logits + q log n_j, y)`, and the logit-adjusted loss (Menon et al.),
//! `CE(logits + tau log(n_j / n), y)`. The two coincide for `q = tau`, since a constant shift of
//! all logits cancels. Prediction always uses the raw logits.

use tch::Tensor;

use super::{cross_entropy_terms, f64_tensor, log_prior, row, BuildContext, Loss, Terms};

/// Cross-entropy of logits shifted by a per-class constant.
#[derive(Debug)]
pub struct ShiftedSoftmax {
    /// The shift, shape `[C]`, f64 on the logits' device (cast to their kind at use).
    shift: Tensor,
    weights: Option<Tensor>,
}

impl ShiftedSoftmax {
    /// Balanced Softmax with exponent `q`: shift `q log n_j`. Counts must be positive.
    #[must_use]
    pub fn balanced(context: &BuildContext, exponent: f64) -> ShiftedSoftmax {
        let shift: Vec<f64> =
            context.class_counts.iter().map(|&n| exponent * (n as f64).ln()).collect();
        ShiftedSoftmax { shift: f64_tensor(&shift, context.device), weights: context.weights(None) }
    }

    /// Logit adjustment with temperature `tau`: shift `tau log(n_j / n)`.
    #[must_use]
    pub fn logit_adjusted(context: &BuildContext, tau: f64) -> ShiftedSoftmax {
        let shift: Vec<f64> = log_prior(&context.class_counts).iter().map(|l| tau * l).collect();
        ShiftedSoftmax { shift: f64_tensor(&shift, context.device), weights: context.weights(None) }
    }
}

impl Loss for ShiftedSoftmax {
    fn terms(&self, logits: &Tensor, targets: &Tensor) -> Terms {
        cross_entropy_terms(&(logits + row(&self.shift, logits)), targets, self.weights.as_ref())
    }
}

#[cfg(test)]
mod tests {
    use super::super::testing::{
        close, gradient_finite, reference_ce, value, COUNTS, LOGITS, TARGETS,
    };
    use super::super::{BuildContext, LossSpec};
    use tch::Device;

    fn bs(q: f64) -> LossSpec {
        LossSpec::BalancedSoftmax { exponent: q }
    }

    // Golden value of the official loss's PyTorch expression
    //   spc = torch.tensor([100., 10., 1.], dtype=torch.float64)
    //   F.cross_entropy(logits + spc.log(), torch.tensor([0,2,1,2]))
    // for the logits of `testing::LOGITS`, computed in numpy f64 as
    // mean(logsumexp(z + log n) - (z + log n)[y]) = 3.1857181183320296, and again by `reference_ce`.
    #[test]
    fn golden_value() {
        let got = value(&bs(1.0), &COUNTS);
        close(got, reference_ce(&LOGITS, &TARGETS, [100f64.ln(), 10f64.ln(), 0.0]));
        close(got, 3.185_718_118_332_029_6);
        assert!(gradient_finite(&bs(1.0)));
    }

    #[test]
    fn uniform_counts_and_zero_exponent_give_softmax() {
        let softmax = value(&LossSpec::Softmax, &COUNTS);
        close(value(&bs(1.0), &[7, 7, 7]), softmax);
        close(value(&bs(0.0), &COUNTS), softmax);
        close(value(&LossSpec::LogitAdjusted { tau: 1.0 }, &[7, 7, 7]), softmax);
    }

    #[test]
    fn quarter_exponent_matches_reference() {
        let got = value(&bs(0.25), &COUNTS);
        let shift = [0.25 * 100f64.ln(), 0.25 * 10f64.ln(), 0.0];
        close(got, reference_ce(&LOGITS, &TARGETS, shift));
    }

    // Logit adjustment: numpy mean CE of z + tau * log(n / n.sum()) gives 3.1857181183320296 at
    // tau = 1 (equal to Balanced Softmax: the normaliser cancels) and 2.1561016685705776 at 0.5.
    #[test]
    fn logit_adjusted_golden_values() {
        close(value(&LossSpec::LogitAdjusted { tau: 1.0 }, &COUNTS), 3.185_718_118_332_029_6);
        close(value(&LossSpec::LogitAdjusted { tau: 0.5 }, &COUNTS), 2.156_101_668_570_577_6);
        close(value(&LossSpec::LogitAdjusted { tau: 0.5 }, &COUNTS), value(&bs(0.5), &COUNTS));
        assert!(gradient_finite(&LossSpec::LogitAdjusted { tau: 1.0 }));
    }

    #[test]
    fn empty_class_and_bad_exponent_are_refused() {
        let context = BuildContext::new(vec![3, 0, 1], Device::Cpu);
        let err = LossSpec::BALANCED_SOFTMAX.build(&context).unwrap_err().to_string();
        assert!(err.contains("class 1"), "{err}");
        let context = BuildContext::new(COUNTS.to_vec(), Device::Cpu);
        let err = bs(f64::NAN).build(&context).unwrap_err().to_string();
        assert!(err.contains("exponent"), "{err}");
    }
}

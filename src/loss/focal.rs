//! Focal loss (Lin et al.) as LDAM-DRW's `FocalLoss`: per sample `(1 - exp(-CE))^gamma * CE`
//! where `CE` is the (optionally class-weighted) cross-entropy, averaged over the batch. With
//! class weights this puts the weight inside the cross-entropy (LDAM-DRW's form); Cui et al.
//! put it outside the modulating factor, which gives slightly different values.

use tch::Tensor;

use super::{cross_entropy_terms, Loss, Terms};

/// Focal loss with focusing parameter `gamma`.
#[derive(Debug)]
pub struct Focal {
    gamma: f64,
    weights: Option<Tensor>,
}

impl Focal {
    /// The loss with `gamma` and optional class `weights` `[C]`.
    #[must_use]
    pub fn new(gamma: f64, weights: Option<Tensor>) -> Focal {
        Focal { gamma, weights }
    }
}

impl Loss for Focal {
    fn terms(&self, logits: &Tensor, targets: &Tensor) -> Terms {
        let ce = cross_entropy_terms(logits, targets, self.weights.as_ref()).values;
        let p = (-&ce).exp();
        let modulating = p.neg().g_add_scalar(1.0).pow_tensor_scalar(self.gamma);
        Terms { values: modulating * ce, weights: None }
    }
}

#[cfg(test)]
mod tests {
    use super::super::testing::{close, gradient_finite, value, COUNTS};
    use super::super::{CbBase, LossSpec};

    fn focal(gamma: f64) -> LossSpec {
        LossSpec::Focal { gamma }
    }

    // LDAM-DRW's expression
    //   ce = F.cross_entropy(z, y, reduction='none'); ((1 - torch.exp(-ce)) ** gamma * ce).mean()
    // computed in numpy f64 on the golden batch: 1.2084322747183864 (gamma 1),
    // 1.1240862850183202 (gamma 2).
    #[test]
    fn golden_values() {
        close(value(&focal(1.0), &COUNTS), 1.208_432_274_718_386_4);
        close(value(&focal(2.0), &COUNTS), 1.124_086_285_018_320_2);
        assert!(gradient_finite(&focal(1.0)));
    }

    #[test]
    fn gamma_zero_is_cross_entropy() {
        close(value(&focal(0.0), &COUNTS), value(&LossSpec::Softmax, &COUNTS));
    }

    // Class-balanced focal (beta 0.9999, gamma 1), LDAM-DRW's form:
    //   ce = F.cross_entropy(z, y, weight=w, reduction='none'); ((1 - exp(-ce)) * ce).mean()
    // numpy: 3.474900458618856. The softmax base: F.cross_entropy(z, y, weight=w) =
    // 2.47261367118511. beta = 0 gives uniform weights, i.e. the unweighted loss.
    #[test]
    fn class_balanced_loss_golden_values() {
        let cb = |base, beta| LossSpec::ClassBalancedLoss { beta, base, gamma: 1.0 };
        close(value(&cb(CbBase::Focal, 0.9999), &COUNTS), 3.474_900_458_618_856);
        close(value(&cb(CbBase::Softmax, 0.9999), &COUNTS), 2.472_613_671_185_11);
        close(value(&cb(CbBase::Softmax, 0.0), &COUNTS), value(&LossSpec::Softmax, &COUNTS));
        close(value(&cb(CbBase::Focal, 0.0), &COUNTS), value(&focal(1.0), &COUNTS));
        assert!(gradient_finite(&cb(CbBase::Focal, 0.9999)));
    }
}

//! LDAM loss (Cao et al., NeurIPS 2019) as LDAM-DRW's `LDAMLoss`: the true-class logit is lowered
//! by a margin `m_y ∝ n_y^(-1/4)` (the largest margin `max_margin`), then the logits are scaled by
//! `s` and fed to (optionally class-weighted) cross-entropy. Margins are kept in f64.

use tch::Tensor;

use super::{cross_entropy_terms, f64_tensor, BuildContext, Loss, Terms};

/// Margins `m_j = n_j^(-1/4)` rescaled so that the largest is `max_margin`.
#[must_use]
pub fn ldam_margins(counts: &[usize], max_margin: f64) -> Vec<f64> {
    let raw: Vec<f64> = counts.iter().map(|&n| 1.0 / (n as f64).sqrt().sqrt()).collect();
    let largest = raw.iter().copied().fold(0.0, f64::max);
    raw.iter().map(|m| m * max_margin / largest).collect()
}

/// LDAM as LDAM-DRW's `LDAMLoss`: the margin `m_y` ([`ldam_margins`]) subtracted from the
/// true-class logit, then cross-entropy of `scale * logits`, class-weighted when DRW gives weights.
#[derive(Debug)]
pub struct Ldam {
    margins: Tensor,
    scale: f64,
    weights: Option<Tensor>,
}

impl Ldam {
    /// LDAM over the context's counts (class weights from the context: DRW).
    #[must_use]
    pub fn new(context: &BuildContext, max_margin: f64, scale: f64) -> Ldam {
        let margins = ldam_margins(&context.class_counts, max_margin);
        Ldam {
            margins: f64_tensor(&margins, context.device),
            scale,
            weights: context.weights(None),
        }
    }
}

impl Loss for Ldam {
    fn terms(&self, logits: &Tensor, targets: &Tensor) -> Terms {
        let classes = logits.size()[1];
        let one_hot = targets.one_hot(classes).to_kind(logits.kind());
        let margin = self.margins.to_kind(logits.kind()).index_select(0, targets).unsqueeze(1);
        let adjusted = logits - one_hot * margin;
        cross_entropy_terms(&(adjusted * self.scale), targets, self.weights.as_ref())
    }
}

#[cfg(test)]
mod tests {
    use super::super::testing::{close, gradient_finite, tensors, value, COUNTS};
    use super::super::{class_balanced_weights, BuildContext, LossSpec};
    use super::*;
    use tch::Device;

    const LDAM: LossSpec = LossSpec::Ldam { max_margin: 0.5, scale: 30.0 };

    #[test]
    fn margins_scale_as_inverse_fourth_root_with_largest_half() {
        let m = ldam_margins(&[10_000, 16, 1], 0.5);
        assert!((m[2] - 0.5).abs() < 1e-15);
        // n^(-1/4): 16 -> 1/2, 10000 -> 1/10 of the tail's margin.
        assert!((m[1] - 0.25).abs() < 1e-15 && (m[0] - 0.05).abs() < 1e-15, "{m:?}");
    }

    // LDAM-DRW's expression
    //   m = 1/sqrt(sqrt(n)); m = m * (0.5 / m.max()); x_m = z - one_hot(y) * m[y]
    //   F.cross_entropy(30 * x_m, y)
    // computed in numpy f64 on the golden batch (n = [100, 10, 1]): 33.18543509623357; with the
    // DRW weights CB(0.9999) as `weight=`: 62.90795726156283.
    #[test]
    fn golden_values() {
        close(value(&LDAM, &COUNTS), 33.185_435_096_233_57);
        let context = BuildContext {
            class_counts: COUNTS.to_vec(),
            device: Device::Cpu,
            class_weights: Some(class_balanced_weights(&COUNTS, 0.9999)),
        };
        let (logits, targets) = tensors();
        let drw = LDAM.build(&context).unwrap().forward(&logits, &targets).double_value(&[]);
        close(drw, 62.907_957_261_562_83);
        assert!(gradient_finite(&LDAM));
    }

    #[test]
    fn zero_margin_is_scaled_cross_entropy() {
        let (logits, targets) = tensors();
        let context = BuildContext::new(COUNTS.to_vec(), Device::Cpu);
        let ldam = Ldam::new(&context, 0.0, 2.0).forward(&logits, &targets).double_value(&[]);
        let ce = LossSpec::Softmax.build(&context).unwrap().forward(&(logits * 2.0), &targets);
        close(ldam, ce.double_value(&[]));
    }
}

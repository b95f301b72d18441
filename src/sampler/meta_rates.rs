//! The Meta Sampler's and Meta Reweighter's settings and learnable sample rates (Ren et al.,
//! §3.2 and App. B; official `data/MetaSampler.py`). The bi-level training step that uses them is
//! in `train::bilevel`; the draw with them in `sampler::gumbel_draw`.

use serde::{Deserialize, Serialize};

use super::gumbel_draw::NoiseDraw;

/// Where meta batches come from.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum MetaSet {
    /// Class-balanced from the long-tailed training set (the paper; the official CIFAR configs).
    #[default]
    Train,
    /// Class-balanced from the validation split (the official ImageNet-LT and Places-LT configs).
    Validation,
}

/// Settings of the Meta Sampler and Meta Reweighter. Defaults are the official code's (the
/// paper's differing values in brackets): `init-pow` 0 (all rates 0.5), meta Adam lr 0.01,
/// betas (0.9, 0.999) [paper (0.9, 0.99)], meta batch 512 class-balanced from the training set
/// [the paper says the same; the official ImageNet-LT/Places-LT configs use the validation
/// split], Gumbel temperature 1 [paper: unstated], the exact draw of the Gumbel noise.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields, default)]
pub struct MetaSpec {
    /// Initial rates from `s_c = (n_c / n)^(-init-pow)` scaled by `1 / (min s + max s)`
    /// (official `init_learner`; ImageNet-LT 0.1, Places-LT 0.3).
    pub init_pow: f64,
    /// Adam learning rate of the rates' logits.
    pub lr: f64,
    /// Adam `(beta1, beta2)` of the meta optimiser (default `[0.9, 0.999]`, PyTorch's, as the
    /// official code; the paper says (0.9, 0.99)).
    pub betas: [f64; 2],
    /// Meta batch size (one image per class visit).
    pub meta_batch: u32,
    /// Where meta batches come from (default `train`; the official ImageNet-LT and Places-LT
    /// configs use `validation`).
    pub meta_set: MetaSet,
    /// Temperature `tau` of the straight-through Gumbel-softmax (default 1, PyTorch's
    /// `gumbel_softmax` default, which the official code uses; the paper gives no value).
    pub temperature: f64,
    /// How the Meta Sampler draws its `B x N` Gumbel noise (default `exact`; `order-statistics`
    /// costs `O(B x C x TOP)` instead of `O(B x N)`, see [`NoiseDraw`] and
    /// [`TOP`](super::gumbel_draw::TOP)). Omitted from records when
    /// exact. The Meta Reweighter draws no noise and takes only `exact`.
    #[serde(skip_serializing_if = "NoiseDraw::is_exact")]
    pub draw: NoiseDraw,
}

impl Default for MetaSpec {
    fn default() -> MetaSpec {
        MetaSpec {
            init_pow: 0.0,
            lr: 0.01,
            betas: [0.9, 0.999],
            meta_batch: 512,
            meta_set: MetaSet::Train,
            temperature: 1.0,
            draw: NoiseDraw::Exact,
        }
    }
}

impl MetaSpec {
    /// Stable label used in plans.
    #[must_use]
    pub fn label(&self) -> String {
        let set = match self.meta_set {
            MetaSet::Train => "train",
            MetaSet::Validation => "validation",
        };
        let draw = match self.draw {
            NoiseDraw::Exact => "",
            NoiseDraw::OrderStatistics => ", order-statistics draw",
        };
        format!(
            "init-pow {}, adam lr {} betas ({}, {}), meta batch {} class-balanced from {set}, temperature {}{draw}",
            self.init_pow, self.lr, self.betas[0], self.betas[1], self.meta_batch, self.temperature
        )
    }

    /// Checks ranges (called when a matrix is validated).
    ///
    /// # Errors
    /// A message naming the parameter.
    pub fn check(&self) -> Result<(), String> {
        if !(self.init_pow.is_finite() && self.init_pow >= 0.0) {
            return Err(format!("`init-pow` = {} must be non-negative", self.init_pow));
        }
        if !(self.lr.is_finite() && self.lr > 0.0) {
            return Err(format!("`lr` = {} must be positive", self.lr));
        }
        if self.betas.iter().any(|b| !(0.0..1.0).contains(b)) {
            return Err(format!("`betas` = {:?} must be in [0, 1)", self.betas));
        }
        if self.meta_batch == 0 {
            return Err("`meta-batch` must be at least 1".to_string());
        }
        if !(self.temperature.is_finite() && self.temperature > 0.0) {
            return Err(format!("`temperature` = {} must be positive", self.temperature));
        }
        #[expect(clippy::float_cmp, reason = "the tail sum's moments are those of temperature 1")]
        if self.draw == NoiseDraw::OrderStatistics && self.temperature != 1.0 {
            return Err(format!(
                "`draw` = \"order-statistics\" needs `temperature` = 1 (its tail sum uses the moments of 1 / (a + X)), not {}",
                self.temperature
            ));
        }
        Ok(())
    }

    /// Initial logits `phi` of the rates (official `init_learner`): `s_c = p_c^(-init-pow)`,
    /// `s_c /= min s + max s`, `phi_c = logit(s_c)`. `init-pow` 0 gives `phi = 0`, rates 0.5.
    #[must_use]
    pub fn initial_logits(&self, counts: &[usize]) -> Vec<f64> {
        let total = counts.iter().sum::<usize>() as f64;
        let s: Vec<f64> = counts.iter().map(|&n| (n as f64 / total).powf(-self.init_pow)).collect();
        let (min, max) = s.iter().fold((f64::INFINITY, 0.0f64), |(a, b), &v| (a.min(v), b.max(v)));
        s.iter().map(|v| v / (min + max)).map(|v| v.ln() - (1.0 - v).ln()).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn initial_rates_match_the_official_configs() {
        // Derived from the official `init_learner`: ImageNet-LT (init_pow 0.1, counts 1280..5)
        // gives head rate 0.3648 and tail rate 0.6352; Places-LT (0.3, 4980..5) 0.1119 and 0.8881.
        let sigmoid = |x: f64| 1.0 / (1.0 + (-x).exp());
        let spec = |p| MetaSpec { init_pow: p, ..MetaSpec::default() };
        let imagenet = spec(0.1).initial_logits(&[1280, 100, 5]);
        assert!((sigmoid(imagenet[0]) - 0.3648).abs() < 1e-4, "{imagenet:?}");
        assert!((sigmoid(imagenet[2]) - 0.6352).abs() < 1e-4);
        let places = spec(0.3).initial_logits(&[4980, 300, 5]);
        assert!(
            (sigmoid(places[0]) - 0.1119).abs() < 1e-4
                && (sigmoid(places[2]) - 0.8881).abs() < 1e-4
        );
        assert!(spec(0.0).initial_logits(&[100, 3]).iter().all(|&p| p.abs() < 1e-15));
    }
}

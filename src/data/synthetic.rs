//! A seeded k-class Gaussian mixture with shared identity covariance.
//!
//! Class means are drawn once from `N(0, separation^2 I)` with the dataset's own seed, so the
//! pool and the balanced test set are fixed by the matrix; the long-tailed subset is then drawn
//! from the pool with each run's subset seed, as for image datasets. The Bayes posterior of such a
//! mixture is a softmax of linear functions, which the theory checks rely on.

use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, StandardNormal};
use serde::{Deserialize, Serialize};

/// Parameters of the mixture (all have defaults).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct GaussianParams {
    /// Number of classes (default 10).
    #[serde(default = "default_classes")]
    pub classes: usize,
    /// Dimension (default 16).
    #[serde(default = "default_dim")]
    pub dim: usize,
    /// Standard deviation of the class means around the origin (default 1.5).
    #[serde(default = "default_separation")]
    pub separation: f64,
    /// Pool size per class, `n_max` of the profile (default 1000).
    #[serde(default = "default_train")]
    pub train_per_class: usize,
    /// Balanced test samples per class (default 500).
    #[serde(default = "default_test")]
    pub test_per_class: usize,
    /// Seed of the means and of the pool (default 0); runs' seeds only choose the subset.
    #[serde(default)]
    pub data_seed: u64,
}

fn default_classes() -> usize {
    10
}
fn default_dim() -> usize {
    16
}
fn default_separation() -> f64 {
    1.5
}
fn default_train() -> usize {
    1000
}
fn default_test() -> usize {
    500
}

impl Default for GaussianParams {
    fn default() -> Self {
        GaussianParams {
            classes: default_classes(),
            dim: default_dim(),
            separation: default_separation(),
            train_per_class: default_train(),
            test_per_class: default_test(),
            data_seed: 0,
        }
    }
}

/// Samples of the mixture: features row-major `n x dim` (f32) and labels.
#[derive(Clone, Debug)]
pub struct GaussianSamples {
    /// Features, `labels.len() * dim` values.
    pub features: Vec<f32>,
    /// Labels, class-major.
    pub labels: Vec<i64>,
}

impl GaussianParams {
    /// Class means, `classes x dim`.
    #[must_use]
    pub fn means(&self) -> Vec<Vec<f64>> {
        let mut rng = ChaCha8Rng::seed_from_u64(self.data_seed);
        (0..self.classes)
            .map(|_| (0..self.dim).map(|_| self.separation * normal(&mut rng)).collect())
            .collect()
    }

    /// `(pool, test)`, drawn from separate streams of the data seed.
    #[must_use]
    pub fn generate(&self) -> (GaussianSamples, GaussianSamples) {
        let means = self.means();
        let pool = self.sample(&means, self.train_per_class, 1);
        let test = self.sample(&means, self.test_per_class, 2);
        (pool, test)
    }

    fn sample(&self, means: &[Vec<f64>], per_class: usize, stream: u64) -> GaussianSamples {
        let mut rng = ChaCha8Rng::seed_from_u64(self.data_seed);
        rng.set_stream(stream);
        let mut out = GaussianSamples { features: Vec::new(), labels: Vec::new() };
        for (class, mean) in means.iter().enumerate() {
            for _ in 0..per_class {
                #[expect(
                    clippy::cast_possible_truncation,
                    reason = "inputs are f32, the training precision"
                )]
                out.features.extend(mean.iter().map(|m| (m + normal(&mut rng)) as f32));
                out.labels.push(i64::try_from(class).expect("class fits i64"));
            }
        }
        out
    }
}

fn normal(rng: &mut ChaCha8Rng) -> f64 {
    StandardNormal.sample(rng)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generation_is_seeded() {
        let p = GaussianParams {
            classes: 3,
            dim: 2,
            train_per_class: 5,
            test_per_class: 4,
            ..Default::default()
        };
        let (a, t) = p.generate();
        let (b, _) = p.generate();
        assert_eq!(a.features, b.features);
        assert_eq!(a.labels.len(), 15);
        assert_eq!(t.features.len(), 3 * 4 * 2);
        let other = GaussianParams { data_seed: 1, ..p }.generate().0;
        assert_ne!(a.features, other.features);
    }
}

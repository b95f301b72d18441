//! Progressively-balanced sampling (Kang et al., ICLR 2020, Eqn 2): in epoch `t` of `T`, class
//! `j` is drawn with probability `(1 - t/T) n_j / n + (t/T) / C`, moving from instance-balanced
//! to class-balanced, then a uniform image of the class, with replacement. `t` counts from 0, so
//! the first epoch is instance-balanced in distribution and the last is almost class-balanced.

use rand_chacha::ChaCha8Rng;

use super::square_root::ClassThenImage;
use super::{full_batches, Sampler};

/// Progressively-balanced sampling over `epochs` epochs.
#[derive(Debug)]
pub struct ProgressivelyBalanced {
    draw: ClassThenImage,
    n: usize,
    epoch: u64,
    epochs: u64,
}

impl ProgressivelyBalanced {
    /// Over training `labels`, for a training of `epochs` epochs.
    #[must_use]
    pub fn new(labels: &[i64], classes: usize, epochs: u64) -> ProgressivelyBalanced {
        ProgressivelyBalanced {
            draw: ClassThenImage::new(labels, classes),
            n: labels.len(),
            epoch: 0,
            epochs: epochs.max(1),
        }
    }

    /// Class probabilities of epoch `t` (0-based).
    #[must_use]
    pub fn probabilities(&self, t: u64) -> Vec<f64> {
        let sizes = self.draw.sizes();
        let n: f64 = sizes.iter().sum();
        let (a, c) = ((t.min(self.epochs) as f64) / self.epochs as f64, sizes.len() as f64);
        sizes.iter().map(|s| (1.0 - a) * s / n + a / c).collect()
    }
}

impl Sampler for ProgressivelyBalanced {
    fn epoch(&mut self, batch: usize, rng: &mut ChaCha8Rng) -> Vec<Vec<i64>> {
        let p = self.probabilities(self.epoch);
        self.draw.set_weights(&p);
        self.epoch += 1;
        full_batches(self.n, batch, || self.draw.next_index(rng))
    }
}

#[cfg(test)]
mod tests {
    use super::super::testing::labels;
    use super::*;
    use rand::SeedableRng;

    #[test]
    fn moves_from_instance_to_class_balanced() {
        let labels = labels(); // counts 400, 100, 25, 9 (534 images)
        let mut sampler = ProgressivelyBalanced::new(&labels, 4, 4);
        let first = sampler.probabilities(0);
        assert!((first[0] - 400.0 / 534.0).abs() < 1e-12);
        let half = sampler.probabilities(2);
        assert!((half[3] - (0.5 * 9.0 / 534.0 + 0.125)).abs() < 1e-12);
        // Frequencies drawn over 60 repetitions of epoch 3 (a = 3/4): class 3 expects
        // 0.25 * 9/534 + 0.75/4 = 0.19171; 60 x 544 draws give a standard error below 0.0022, the
        // tolerance 0.009 is about four of them.
        let mut rng = ChaCha8Rng::seed_from_u64(11);
        let mut hits = [0usize; 4];
        for _ in 0..60 {
            sampler.epoch = 3;
            for batch in sampler.epoch(32, &mut rng) {
                for i in batch {
                    hits[usize::try_from(labels[usize::try_from(i).unwrap()]).unwrap()] += 1;
                }
            }
        }
        let total: usize = hits.iter().sum();
        let want = sampler.probabilities(3);
        for (h, w) in hits.iter().zip(&want) {
            let f = *h as f64 / total as f64;
            assert!((f - w).abs() < 0.009, "{hits:?} vs {want:?}");
        }
    }
}

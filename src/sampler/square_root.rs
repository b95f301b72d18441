//! Square-root sampling (Mahajan et al.; classifier-balancing's `sqrt` sampling), and the
//! class-then-image draw it shares with progressively-balanced sampling.

use rand::Rng;
use rand_chacha::ChaCha8Rng;

use super::{by_class, full_batches, Sampler};

/// Draws a class with given probabilities, then a uniform image of it, with replacement.
#[derive(Debug)]
pub(crate) struct ClassThenImage {
    members: Vec<Vec<i64>>,
    cumulative: Vec<f64>,
}

impl ClassThenImage {
    pub(crate) fn new(labels: &[i64], classes: usize) -> ClassThenImage {
        ClassThenImage { members: by_class(labels, classes), cumulative: Vec::new() }
    }

    /// Class sizes `n_j`.
    pub(crate) fn sizes(&self) -> Vec<f64> {
        self.members.iter().map(|m| m.len() as f64).collect()
    }

    /// Sets the class probabilities (proportional to `weights`).
    pub(crate) fn set_weights(&mut self, weights: &[f64]) {
        let total: f64 = weights.iter().sum();
        self.cumulative = weights
            .iter()
            .scan(0.0, |acc, w| {
                *acc += w / total;
                Some(*acc)
            })
            .collect();
    }

    pub(crate) fn next_index(&self, rng: &mut ChaCha8Rng) -> i64 {
        let u: f64 = rng.gen();
        let class = self.cumulative.iter().position(|&c| u < c).unwrap_or(self.members.len() - 1);
        let members = &self.members[class];
        members[rng.gen_range(0..members.len())]
    }
}

/// Class `j` with probability proportional to `n_j^power` (`power = 1/2`), then a uniform image of
/// the class, with replacement.
#[derive(Debug)]
pub struct SquareRoot {
    draw: ClassThenImage,
    n: usize,
}

impl SquareRoot {
    /// Over training `labels` (in `0..classes`), class `j` weighted by `n_j^power` (the
    /// `square-root` sampler passes 0.5).
    #[must_use]
    pub fn new(labels: &[i64], classes: usize, power: f64) -> SquareRoot {
        let mut draw = ClassThenImage::new(labels, classes);
        let weights: Vec<f64> = draw.sizes().iter().map(|n| n.powf(power)).collect();
        draw.set_weights(&weights);
        SquareRoot { draw, n: labels.len() }
    }
}

impl Sampler for SquareRoot {
    fn epoch(&mut self, batch: usize, rng: &mut ChaCha8Rng) -> Vec<Vec<i64>> {
        full_batches(self.n, batch, || self.draw.next_index(rng))
    }
}

#[cfg(test)]
mod tests {
    use super::super::{testing, SamplerSpec};

    #[test]
    fn frequencies_follow_square_roots() {
        // sqrt counts 20, 10, 5, 3 -> 20/38, 10/38, 5/38, 3/38. With 40 epochs (27,200 draws) the
        // binomial standard error is below 0.0031; tolerance 0.012 is about four of them.
        let f = testing::frequencies(&SamplerSpec::SquareRoot, 40);
        for (got, want) in f.iter().zip([20.0 / 38.0, 10.0 / 38.0, 5.0 / 38.0, 3.0 / 38.0]) {
            assert!((got - want).abs() < 0.012, "{f:?}");
        }
    }
}

//! Instance-balanced sampling: every image once per epoch, in a fresh random order.

use rand::seq::SliceRandom;
use rand_chacha::ChaCha8Rng;

use super::Sampler;

/// A fresh permutation each epoch, cut into batches (the last may be smaller).
#[derive(Debug)]
pub struct Instance {
    n: usize,
}

impl Instance {
    /// Over `n` training images.
    #[must_use]
    pub fn new(n: usize) -> Instance {
        Instance { n }
    }
}

impl Sampler for Instance {
    fn epoch(&mut self, batch: usize, rng: &mut ChaCha8Rng) -> Vec<Vec<i64>> {
        let mut order: Vec<i64> = (0..i64::try_from(self.n).expect("fits")).collect();
        order.shuffle(rng);
        order.chunks(batch).map(<[i64]>::to_vec).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::super::{testing, SamplerSpec};

    #[test]
    fn frequencies_follow_the_data() {
        // Exactly the data's class frequencies: each epoch visits every image once.
        let f = testing::frequencies(&SamplerSpec::Instance, 3);
        let want = [400.0 / 534.0, 100.0 / 534.0, 25.0 / 534.0, 9.0 / 534.0];
        for (got, want) in f.iter().zip(want) {
            assert!((got - want).abs() < 1e-12, "{f:?}");
        }
    }
}

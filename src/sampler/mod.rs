//! Samplers: how training batches are drawn. [`SamplerSpec`] is the registry.
//!
//! Every sampler produces, per epoch, `ceil(N / B)` batches of training indices from the run's
//! seeded generator, so "epoch" means the same number of iterations whatever the sampler.

mod class_balanced;
pub mod gumbel_draw;
mod instance;
mod meta_rates;
mod progressive;
mod square_root;

use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

pub use class_balanced::ClassBalanced;
pub use instance::Instance;
pub use meta_rates::{MetaSet, MetaSpec};
pub use progressive::ProgressivelyBalanced;
pub use square_root::SquareRoot;

/// Draws batches of indices into the training set.
pub trait Sampler: std::fmt::Debug + Send {
    /// The batches of one epoch: `ceil(N / batch)` batches of indices.
    fn epoch(&mut self, batch: usize, rng: &mut ChaCha8Rng) -> Vec<Vec<i64>>;
}

/// The index batches of `iterations` steps (stage 2 counts iterations, not epochs): whole
/// sampler epochs of `batch` indices in turn, the last one cut where the count is reached.
pub fn batches(
    sampler: &mut dyn Sampler,
    batch: usize,
    iterations: usize,
    rng: &mut ChaCha8Rng,
) -> Vec<Vec<i64>> {
    let mut batches = Vec::with_capacity(iterations);
    while batches.len() < iterations {
        batches.extend(sampler.epoch(batch, rng).into_iter().take(iterations - batches.len()));
    }
    batches
}

/// A sampler as named in a matrix.
#[derive(strum::VariantNames, strum::EnumIter, strum::EnumMessage)]
#[strum(serialize_all = "kebab-case")]
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum SamplerSpec {
    /// Instance-balanced: a fresh permutation each epoch (the last batch may be smaller).
    #[strum(message = "a fresh permutation per epoch")]
    Instance,
    /// Class-balanced (class-aware, classifier-balancing's `ClassAwareSampler`): shuffled cycles
    /// over classes, 4 samples per class visit from a shuffled cycle over the class's images.
    #[strum(message = "class-aware, 4 images per class visit (Kang et al.)")]
    ClassBalanced,
    /// Square-root sampling: class `j` drawn with probability proportional to `sqrt(n_j)`, then an
    /// image of it uniformly, with replacement.
    #[strum(message = "classes with probability proportional to sqrt(n_j)")]
    SquareRoot,
    /// Progressively-balanced (Kang et al.): class probabilities interpolated linearly over the
    /// epochs from instance-balanced to class-balanced, then a uniform image, with replacement.
    #[strum(message = "instance- to class-balanced over the epochs (Kang et al.)")]
    ProgressivelyBalanced,
    /// Meta Sampler (Ren et al. §3.2): per-class rates learned by a one-step look-ahead on a
    /// class-balanced meta batch; batches drawn by a straight-through Gumbel-softmax over all
    /// training instances. Stage 2 of decoupled training only (as the paper).
    #[strum(
        message = "Meta Sampler (Ren et al.), stage 2 only",
        detailed_message = "meta { meta-set = \"validation\", init-pow = 0.1, draw = \"order-statistics\" }"
    )]
    Meta(MetaSpec),
    /// Meta Reweighter (Ren et al. App. B.2): the same bi-level update, but instance-balanced
    /// batches whose per-sample losses are weighted by their class's rate. Stage 2 only.
    #[strum(
        message = "Meta Reweighter (Ren et al., App. B.2), stage 2 only",
        detailed_message = "meta-reweighter { meta-set = \"validation\" }"
    )]
    MetaReweighter(MetaSpec),
}

impl SamplerSpec {
    /// Stable label used in plans and tables.
    #[must_use]
    pub fn label(&self) -> String {
        match self {
            SamplerSpec::Instance => "instance".to_string(),
            SamplerSpec::ClassBalanced => "class-balanced".to_string(),
            SamplerSpec::SquareRoot => "square-root".to_string(),
            SamplerSpec::ProgressivelyBalanced => "progressively-balanced".to_string(),
            SamplerSpec::Meta(m) => format!("meta-sampler ({})", m.label()),
            SamplerSpec::MetaReweighter(m) => format!("meta-reweighter ({})", m.label()),
        }
    }

    /// The meta settings of the Meta Sampler or Reweighter.
    #[must_use]
    pub fn meta(&self) -> Option<&MetaSpec> {
        match self {
            SamplerSpec::Meta(m) | SamplerSpec::MetaReweighter(m) => Some(m),
            SamplerSpec::Instance
            | SamplerSpec::ClassBalanced
            | SamplerSpec::SquareRoot
            | SamplerSpec::ProgressivelyBalanced => None,
        }
    }

    /// Whether this is the Meta Reweighter: instance-balanced batches whose losses its rates
    /// weight, where the Meta Sampler draws the batches by its rates.
    #[must_use]
    pub fn is_reweighter(&self) -> bool {
        match self {
            SamplerSpec::MetaReweighter(_) => true,
            SamplerSpec::Meta(_)
            | SamplerSpec::Instance
            | SamplerSpec::ClassBalanced
            | SamplerSpec::SquareRoot
            | SamplerSpec::ProgressivelyBalanced => false,
        }
    }

    /// Builds the sampler over training `labels` with `classes` classes, for a training of
    /// `epochs` epochs (used by the progressively-balanced schedule). The Meta Reweighter's
    /// batches are instance-balanced; the Meta Sampler draws its own batches (`train::bilevel`) and
    /// has no batch sampler.
    #[must_use]
    pub fn build(&self, labels: &[i64], classes: usize, epochs: u64) -> Box<dyn Sampler> {
        match self {
            SamplerSpec::Instance | SamplerSpec::MetaReweighter(_) => {
                Box::new(Instance::new(labels.len()))
            }
            SamplerSpec::ClassBalanced => Box::new(ClassBalanced::new(labels, classes, 4)),
            SamplerSpec::SquareRoot => Box::new(SquareRoot::new(labels, classes, 0.5)),
            SamplerSpec::ProgressivelyBalanced => {
                Box::new(ProgressivelyBalanced::new(labels, classes, epochs))
            }
            SamplerSpec::Meta(_) => {
                unreachable!("the Meta Sampler draws its batches in train::bilevel (validated)")
            }
        }
    }
}

/// Indices of each class, in order.
pub(crate) fn by_class(labels: &[i64], classes: usize) -> Vec<Vec<i64>> {
    let mut members = vec![Vec::new(); classes];
    for (i, &y) in labels.iter().enumerate() {
        members[usize::try_from(y).expect("label")].push(i64::try_from(i).expect("index"));
    }
    members
}

/// Cuts a stream of indices into `ceil(n / batch)` batches of `batch`.
pub(crate) fn full_batches(n: usize, batch: usize, mut next: impl FnMut() -> i64) -> Vec<Vec<i64>> {
    (0..n.div_ceil(batch)).map(|_| (0..batch).map(|_| next()).collect()).collect()
}

#[cfg(test)]
pub(crate) mod testing {
    use super::*;
    use rand::SeedableRng;

    /// Labels with counts 400, 100, 25, 9 (a long tail).
    pub fn labels() -> Vec<i64> {
        [400usize, 100, 25, 9]
            .iter()
            .enumerate()
            .flat_map(|(c, &n)| std::iter::repeat_n(i64::try_from(c).unwrap(), n))
            .collect()
    }

    /// Class frequencies over `epochs` epochs of batch 32, seed 7.
    pub fn frequencies(spec: &SamplerSpec, epochs: usize) -> Vec<f64> {
        let labels = labels();
        let mut sampler = spec.build(&labels, 4, epochs as u64);
        let mut rng = ChaCha8Rng::seed_from_u64(7);
        let mut hits = [0usize; 4];
        for _ in 0..epochs {
            for batch in sampler.epoch(32, &mut rng) {
                for i in batch {
                    hits[usize::try_from(labels[usize::try_from(i).unwrap()]).unwrap()] += 1;
                }
            }
        }
        let total: usize = hits.iter().sum();
        hits.iter().map(|&h| h as f64 / total as f64).collect()
    }

    /// Two-sample Kolmogorov-Smirnov distance: the largest gap between the two empirical
    /// distribution functions, over every point of either sample.
    pub fn ks_distance(first: &[f64], second: &[f64]) -> f64 {
        let (mut first, mut second) = (first.to_vec(), second.to_vec());
        first.sort_by(f64::total_cmp);
        second.sort_by(f64::total_cmp);
        let (mut below_first, mut below_second, mut distance) = (0, 0, 0.0f64);
        while below_first < first.len() && below_second < second.len() {
            let x = first[below_first].min(second[below_second]);
            while below_first < first.len() && first[below_first] <= x {
                below_first += 1;
            }
            while below_second < second.len() && second[below_second] <= x {
                below_second += 1;
            }
            let gap =
                below_first as f64 / first.len() as f64 - below_second as f64 / second.len() as f64;
            distance = distance.max(gap.abs());
        }
        distance
    }
}

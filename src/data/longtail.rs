//! The long-tail profile and the seeded choice of a long-tailed training subset.

use rand::seq::SliceRandom;
use rand_chacha::ChaCha8Rng;
use sha2::{Digest, Sha256};

/// Per-class training counts `n_i = floor(n_max * (1/IF)^(i/(C-1)))`, class 0 the head.
///
/// Computed in f64 in the reference code's order (`gamma = 1/IF`, then `gamma.powf(i/(C-1))`,
/// then `* n_max`, then truncation); `exp`/`ln` rewrites lose a sample in some CIFAR settings.
///
/// # Panics
/// If `classes < 2`.
#[must_use]
pub fn profile(n_max: usize, imbalance: f64, classes: usize) -> Vec<usize> {
    assert!(classes >= 2, "a long-tail profile needs at least two classes");
    let gamma = 1.0 / imbalance;
    #[expect(
        clippy::cast_possible_truncation,
        clippy::cast_sign_loss,
        reason = "n_max * gamma^t is in [0, n_max]; truncated as the official code's int()"
    )]
    (0..classes)
        .map(|i| (n_max as f64 * gamma.powf(i as f64 / (classes as f64 - 1.0))) as usize)
        .collect()
}

/// A long-tailed training subset and its balanced validation split.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Subset {
    /// Training indices, class by class.
    pub train: Vec<usize>,
    /// Validation indices, class by class (`val_per_class` each).
    pub validation: Vec<usize>,
    /// Validation images that are also training images (classes the subset uses up).
    pub validation_from_training: usize,
}

/// Chooses, for each class `c`, `counts[c]` of the pool's class-`c` indices: the class's indices
/// in pool order are shuffled with `rng` and the first `counts[c]` kept (as LDAM-DRW's seeded
/// `np.random.shuffle`). The validation split takes the next `val_per_class` of the shuffled
/// indices, i.e. images the subset leaves unused; where fewer remain (a head class using the
/// whole pool), the shortfall is taken from the class's training images and counted in
/// [`Subset::validation_from_training`]. The validation draw uses no extra randomness, so the
/// training subset is the same whatever `val_per_class` is.
///
/// # Errors
/// A message naming the class when the pool holds fewer samples than the profile asks for.
pub fn choose_subset(
    labels: &[i64],
    counts: &[usize],
    val_per_class: usize,
    rng: &mut ChaCha8Rng,
) -> Result<Subset, String> {
    let mut subset = Subset {
        train: Vec::with_capacity(counts.iter().sum()),
        validation: Vec::with_capacity(val_per_class * counts.len()),
        validation_from_training: 0,
    };
    for (class, &want) in counts.iter().enumerate() {
        let mut members: Vec<usize> = labels
            .iter()
            .enumerate()
            .filter(|(_, &y)| usize::try_from(y).ok() == Some(class))
            .map(|(i, _)| i)
            .collect();
        if members.len() < want {
            return Err(format!(
                "class {class} has {} training samples, the profile asks for {want}",
                members.len()
            ));
        }
        members.shuffle(rng);
        subset.train.extend_from_slice(&members[..want]);
        let unused = &members[want..];
        let from_unused = val_per_class.min(unused.len());
        subset.validation.extend_from_slice(&unused[..from_unused]);
        let shortfall = (val_per_class - from_unused).min(want);
        subset.validation.extend_from_slice(&members[..shortfall]);
        subset.validation_from_training += shortfall;
    }
    Ok(subset)
}

/// SHA-256 (hex) of the chosen indices as little-endian u64s in order: the data hash of a run.
#[must_use]
pub fn indices_hash(indices: &[usize]) -> String {
    let mut hasher = Sha256::new();
    for &i in indices {
        hasher.update((i as u64).to_le_bytes());
    }
    format!("{:x}", hasher.finalize())
}

/// The paper's shot groups, by training count: many (> 100), medium (20 to 100), few (< 20).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Shot {
    /// More than 100 training images.
    Many,
    /// 20 to 100 training images, inclusive.
    Medium,
    /// Fewer than 20 training images.
    Few,
}

impl Shot {
    /// The group of a class with `count` training images (thresholds of the official `shot_acc`).
    #[must_use]
    pub fn of(count: usize) -> Self {
        if count > 100 {
            Shot::Many
        } else if count < 20 {
            Shot::Few
        } else {
            Shot::Medium
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    #[test]
    fn cifar_totals_match_the_paper() {
        let total = |n, imb, c| profile(n, imb, c).iter().sum::<usize>();
        assert_eq!(total(5000, 200.0, 10), 11_203);
        assert_eq!(total(5000, 100.0, 10), 12_406);
        assert_eq!(total(5000, 10.0, 10), 20_431);
        assert_eq!(total(500, 200.0, 100), 9_502);
        assert_eq!(total(500, 100.0, 100), 10_847);
        assert_eq!(total(500, 10.0, 100), 19_573);
    }

    #[test]
    fn cifar10_per_class_lists() {
        assert_eq!(profile(5000, 200.0, 10), [5000, 2775, 1540, 854, 474, 263, 146, 81, 45, 25]);
        assert_eq!(profile(5000, 100.0, 10), [5000, 2997, 1796, 1077, 645, 387, 232, 139, 83, 50]);
        assert_eq!(
            profile(5000, 10.0, 10),
            [5000, 3871, 2997, 2320, 1796, 1391, 1077, 834, 645, 500]
        );
    }

    #[test]
    fn cifar100_if100_list() {
        let expected = [
            500, 477, 455, 434, 415, 396, 378, 361, 344, 328, 314, 299, 286, 273, 260, 248, 237,
            226, 216, 206, 197, 188, 179, 171, 163, 156, 149, 142, 135, 129, 123, 118, 112, 107,
            102, 98, 93, 89, 85, 81, 77, 74, 70, 67, 64, 61, 58, 56, 53, 51, 48, 46, 44, 42, 40,
            38, 36, 35, 33, 32, 30, 29, 27, 26, 25, 24, 23, 22, 21, 20, 19, 18, 17, 16, 15, 15, 14,
            13, 13, 12, 12, 11, 11, 10, 10, 9, 9, 8, 8, 7, 7, 7, 6, 6, 6, 6, 5, 5, 5, 5,
        ];
        assert_eq!(profile(500, 100.0, 100), expected);
        let tail: Vec<usize> = profile(500, 200.0, 100).into_iter().rev().take(5).collect();
        assert_eq!(tail, [2, 2, 2, 2, 3]);
    }

    #[test]
    fn subset_is_seeded_and_respects_counts() {
        let labels: Vec<i64> = (0..300).map(|i| i % 3).collect();
        let counts = [100, 10, 1];
        let pick =
            |seed, val| choose_subset(&labels, &counts, val, &mut ChaCha8Rng::seed_from_u64(seed));
        let (a, b, c) = (pick(1, 0).unwrap(), pick(1, 0).unwrap(), pick(2, 0).unwrap());
        assert_eq!(a, b);
        assert_ne!(indices_hash(&a.train), indices_hash(&c.train));
        assert_eq!(a.train.len(), 111);
        assert!(a.train[100..110].iter().all(|&i| labels[i] == 1));
        assert!(choose_subset(&labels, &[101, 0, 0], 0, &mut ChaCha8Rng::seed_from_u64(1)).is_err());
    }

    #[test]
    fn validation_uses_unused_images_first_and_leaves_training_unchanged() {
        // 100 images per class; the head class uses all of them.
        let labels: Vec<i64> = (0..300).map(|i| i % 3).collect();
        let counts = [100, 10, 1];
        let with = choose_subset(&labels, &counts, 20, &mut ChaCha8Rng::seed_from_u64(4)).unwrap();
        let without =
            choose_subset(&labels, &counts, 0, &mut ChaCha8Rng::seed_from_u64(4)).unwrap();
        assert_eq!(with.train, without.train);
        assert_eq!(with.validation.len(), 60);
        assert_eq!(with.validation_from_training, 20);
        let train: std::collections::HashSet<_> = with.train.iter().collect();
        let overlap = with.validation.iter().filter(|i| train.contains(i)).count();
        assert_eq!(overlap, 20);
        assert!(with.validation[..20].iter().all(|&i| labels[i] == 0));
        assert!(with.validation[20..].iter().all(|&i| !train.contains(&i)));
    }

    #[test]
    fn shot_thresholds() {
        assert_eq!(Shot::of(101), Shot::Many);
        assert_eq!(Shot::of(100), Shot::Medium);
        assert_eq!(Shot::of(20), Shot::Medium);
        assert_eq!(Shot::of(19), Shot::Few);
    }
}

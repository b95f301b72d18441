//! The learning-rate schedule (linear warm-up, then cosine annealing to zero) and how a training
//! lays out its iterations: per iteration, as the paper words it ("increased from 0.05 to 0.1 in
//! the first 800 iterations", then cosine to 0), or in the official code's epochs
//! ([`Stepping::Epoch`]; ../shared/reference/paper-facts.md section 4.4).

use std::f64::consts::PI;

use crate::matrix::{Length, Stage2};
use rand_chacha::ChaCha8Rng;

use crate::sampler::{Sampler, SamplerSpec};
use crate::vocab::Stepping;

/// Learning rate at iteration `t` (0-based) of `total`, after `warmup` warm-up iterations that
/// rise linearly from `start_factor * peak` to `peak`.
#[must_use]
pub fn learning_rate(peak: f64, t: u64, total: u64, warmup: u64, start_factor: f64) -> f64 {
    if t < warmup {
        peak * (start_factor + (1.0 - start_factor) * t as f64 / warmup as f64)
    } else {
        let progress = (t - warmup) as f64 / (total - warmup).max(1) as f64;
        peak * 0.5 * (1.0 + (PI * progress).cos())
    }
}

/// Learning rate of epoch `e` (1-based) of `epochs` as the official code steps it, once at the
/// start of each epoch: with `warmup` >= 2 warm-up epochs (`CosineAnnealingLRWarmup`), epochs
/// before `warmup` rise linearly from `start_factor * peak` (epoch 1) to just below `peak`, and
/// from epoch `warmup` on the rate is `peak (1 + cos(pi (e - warmup) / (epochs - warmup))) / 2`;
/// without warm-up (`CosineAnnealingLR`) it is `peak (1 + cos(pi e / epochs)) / 2`. Either way
/// the last epoch runs at 0 (unless every epoch is a warm-up epoch). With one warm-up epoch (which the official scheduler refuses: it
/// asserts at least two) the cosine starts at `peak` in epoch 1, as its formula gives.
#[must_use]
pub fn epoch_learning_rate(peak: f64, e: u64, epochs: u64, warmup: u64, start_factor: f64) -> f64 {
    if warmup >= 2 && e < warmup {
        let base = start_factor * peak;
        return base + (peak - base) * (e - 1) as f64 / (warmup - 1) as f64;
    }
    let (done, span) = if warmup >= 2 {
        (e - warmup, epochs.saturating_sub(warmup))
    } else {
        (e.saturating_sub(warmup), epochs.saturating_sub(warmup.min(1)))
    };
    peak * 0.5 * (1.0 + (PI * done as f64 / span.max(1) as f64).cos())
}

/// How a training's iterations fall into epochs and which learning rate each runs at.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Timeline {
    /// Exactly `total` iterations in epochs of `per_epoch` (the sampler's whole epochs, the last
    /// cut where `total` is reached), the rate stepped every iteration.
    PerIteration {
        /// Iterations of an epoch: `ceil(N / batch)`.
        per_epoch: u64,
        /// Iterations in all.
        total: u64,
        /// Warm-up iterations.
        warmup: u64,
    },
    /// The official code's epochs: `epochs` of `steps` batches each, the rate stepped per epoch.
    PerEpoch {
        /// Epochs: `ceil(iterations / loader length)`, or the matrix's epochs rounded up.
        epochs: u64,
        /// Batches of an epoch: `floor(N / batch)`.
        steps: u64,
        /// Warm-up epochs: `ceil(warm-up iterations / loader length)`.
        warmup: u64,
        /// The loader length the conversion used.
        loader: u64,
    },
}

impl Timeline {
    /// The timeline of a training on `counts` (per-class training images) with batches of
    /// `batch` drawn by `sampler`, for `length` and `warmup` as the matrix gives them.
    ///
    /// # Errors
    /// With [`Stepping::Epoch`], fewer training images than one batch (the official loop would
    /// train on nothing), or as many warm-up epochs as epochs, at least 2 (the official
    /// scheduler divides by zero in the last epoch).
    pub fn new(
        stepping: Stepping,
        counts: &[usize],
        batch: usize,
        sampler: &SamplerSpec,
        length: Length,
        warmup: Length,
    ) -> Result<Timeline, String> {
        let n = counts.iter().sum::<usize>() as u64;
        let batch = batch as u64;
        match stepping {
            Stepping::Iteration => {
                let per_epoch = n.div_ceil(batch).max(1);
                Ok(Timeline::PerIteration {
                    per_epoch,
                    total: length.iterations(per_epoch),
                    warmup: warmup.iterations(per_epoch),
                })
            }
            Stepping::Epoch => {
                let steps = n / batch;
                if steps == 0 {
                    return Err(format!(
                        "stepping = \"epoch\" runs floor(N / batch) batches per epoch, and N = {n} training images is below the batch of {batch}"
                    ));
                }
                let loader = loader_length(counts, batch, sampler);
                let epochs_of = |l: Length| match l {
                    Length::Iterations(i) => u64::from(i).div_ceil(loader),
                    #[expect(
                        clippy::cast_possible_truncation,
                        clippy::cast_sign_loss,
                        reason = "epochs are finite and non-negative (checked), far below 2^64"
                    )]
                    Length::Epochs(e) => e.ceil() as u64,
                };
                let (epochs, warmup) = (epochs_of(length), epochs_of(warmup));
                if warmup >= 2 && warmup == epochs {
                    return Err(format!(
                        "stepping = \"epoch\": the warm-up is all {epochs} epochs (loader length {loader}); the official scheduler's cosine divides by zero then: shorten the warm-up or lengthen the training"
                    ));
                }
                Ok(Timeline::PerEpoch { epochs, steps, warmup, loader })
            }
        }
    }

    /// Stage 2's timeline: `stage2.iterations`, or the official code's epochs of them, on a
    /// training subset of `counts` images per class.
    ///
    /// # Errors
    /// As [`Timeline::new`].
    pub fn of_stage2(stage2: &Stage2, counts: &[usize]) -> Result<Timeline, String> {
        Timeline::new(
            stage2.stepping,
            counts,
            stage2.batch_size as usize,
            &stage2.sampler,
            Length::Iterations(stage2.iterations),
            Length::Iterations(0),
        )
    }

    /// Iterations in all.
    #[must_use]
    pub fn iterations(&self) -> u64 {
        match *self {
            Timeline::PerIteration { total, .. } => total,
            Timeline::PerEpoch { epochs, steps, .. } => epochs * steps,
        }
    }

    /// Epochs, the last possibly cut short (per iteration).
    #[must_use]
    pub fn epochs(&self) -> u64 {
        match *self {
            Timeline::PerIteration { per_epoch, total, .. } => total.div_ceil(per_epoch),
            Timeline::PerEpoch { epochs, .. } => epochs,
        }
    }

    /// The batches epoch `e` (1-based) trains on, of the sampler's epoch: per iteration, all of
    /// them up to the total; per epoch, the first `floor(N / batch)`.
    #[must_use]
    pub fn batches_in(&self, e: u64) -> u64 {
        match *self {
            Timeline::PerIteration { per_epoch, total, .. } => {
                per_epoch.min(total.saturating_sub((e - 1) * per_epoch))
            }
            Timeline::PerEpoch { steps, .. } => steps,
        }
    }

    /// The index batches of the whole training, from `sampler`'s epochs of `batch` indices: per
    /// iteration, whole epochs in turn, the last cut where the total is reached (as
    /// [`crate::sampler::batches`]); per epoch, the first `floor(N / batch)` of each epoch.
    pub fn batches(
        &self,
        sampler: &mut dyn Sampler,
        batch: usize,
        rng: &mut ChaCha8Rng,
    ) -> Vec<Vec<i64>> {
        match *self {
            Timeline::PerIteration { total, .. } => {
                let total = usize::try_from(total).expect("iterations fit in memory");
                crate::sampler::batches(sampler, batch, total, rng)
            }
            Timeline::PerEpoch { epochs, steps, .. } => {
                let steps = usize::try_from(steps).expect("fits");
                let mut out = Vec::new();
                for _ in 0..epochs {
                    let mut epoch = sampler.epoch(batch, rng);
                    epoch.truncate(steps);
                    out.extend(epoch);
                }
                out
            }
        }
    }

    /// Learning rate of iteration `t` (0-based) for a peak of `peak` and a warm-up starting at
    /// `start_factor * peak`.
    #[must_use]
    pub fn learning_rate(&self, peak: f64, start_factor: f64, t: u64) -> f64 {
        match *self {
            Timeline::PerIteration { total, warmup, .. } => {
                learning_rate(peak, t, total, warmup, start_factor)
            }
            Timeline::PerEpoch { epochs, steps, warmup, .. } => {
                epoch_learning_rate(peak, t / steps + 1, epochs, warmup, start_factor)
            }
        }
    }
}

/// The official loader's length, in batches: `ceil(N / batch)` (`drop_last` false), the Meta
/// Sampler's `N // batch` (`MetaSampler.__iter__`), class-aware sampling's `ceil(C * max n_j /
/// batch)` (`ClassAwareSampler.num_samples`). The official classification code has no
/// square-root, progressively-balanced or Meta Reweighter loader; they take `ceil(N / batch)`.
fn loader_length(counts: &[usize], batch: u64, sampler: &SamplerSpec) -> u64 {
    let n = counts.iter().sum::<usize>() as u64;
    match sampler {
        SamplerSpec::Meta(_) => n / batch,
        SamplerSpec::ClassBalanced => {
            let largest = counts.iter().copied().max().unwrap_or(0) as u64;
            (largest * counts.len() as u64).div_ceil(batch)
        }
        SamplerSpec::Instance
        | SamplerSpec::SquareRoot
        | SamplerSpec::ProgressivelyBalanced
        | SamplerSpec::MetaReweighter(_) => n.div_ceil(batch),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn warmup_then_cosine() {
        assert!((learning_rate(0.1, 0, 100, 10, 0.5) - 0.05).abs() < 1e-15);
        assert!((learning_rate(0.1, 5, 100, 10, 0.5) - 0.075).abs() < 1e-15);
        assert!((learning_rate(0.1, 10, 100, 10, 0.5) - 0.1).abs() < 1e-15);
        assert!((learning_rate(0.1, 55, 100, 10, 0.5) - 0.05).abs() < 1e-12);
        assert!(learning_rate(0.1, 99, 100, 10, 0.5) < 0.001);
        assert!((learning_rate(0.2, 0, 10, 0, 0.5) - 0.2).abs() < 1e-15);
    }

    /// CIFAR-LT class counts: `floor(max * IF^(-j / (C - 1)))`, as `IMBALANCECIFAR10`.
    fn cifar_counts(max: f64, classes: i32, imbalance: f64) -> Vec<usize> {
        #[expect(clippy::cast_possible_truncation, clippy::cast_sign_loss, reason = "counts")]
        (0..classes)
            .map(|j| (max * imbalance.powf(-f64::from(j) / f64::from(classes - 1))) as usize)
            .collect()
    }

    /// paper-facts.md section 4.4's table, derived there from reading the official code: per
    /// column, N, the loader length, steps per epoch, stage-1 epochs and iterations (13,000),
    /// warm-up epochs (800), DT and BALMS stage-2 iterations (2,000).
    #[test]
    fn the_official_arithmetic_gives_the_cifar_counts_of_the_reference_table() {
        let rows: [(f64, i32, f64, [u64; 8]); 6] = [
            (5000.0, 10, 200.0, [11_203, 22, 21, 591, 12_411, 37, 1_911, 2_016]),
            (5000.0, 10, 100.0, [12_406, 25, 24, 520, 12_480, 32, 1_920, 2_016]),
            (5000.0, 10, 10.0, [20_431, 40, 39, 325, 12_675, 20, 1_950, 2_028]),
            (500.0, 100, 200.0, [9_502, 19, 18, 685, 12_330, 43, 1_908, 2_016]),
            (500.0, 100, 100.0, [10_847, 22, 21, 591, 12_411, 37, 1_911, 2_016]),
            (500.0, 100, 10.0, [19_573, 39, 38, 334, 12_692, 21, 1_976, 2_014]),
        ];
        let meta = SamplerSpec::Meta(crate::sampler::MetaSpec::default());
        for (max, classes, imbalance, expected) in rows {
            let counts = cifar_counts(max, classes, imbalance);
            let n = counts.iter().sum::<usize>() as u64;
            let stage1 = Timeline::new(
                Stepping::Epoch,
                &counts,
                512,
                &SamplerSpec::Instance,
                Length::Iterations(13_000),
                Length::Iterations(800),
            )
            .unwrap();
            let Timeline::PerEpoch { epochs, steps, warmup, loader } = stage1 else { panic!() };
            let length = |s: &SamplerSpec| {
                let t = Timeline::new(
                    Stepping::Epoch,
                    &counts,
                    512,
                    s,
                    Length::Iterations(2_000),
                    Length::Iterations(0),
                );
                t.unwrap().iterations()
            };
            let got = [
                n,
                loader,
                steps,
                epochs,
                stage1.iterations(),
                warmup,
                length(&SamplerSpec::Instance),
                length(&meta),
            ];
            assert_eq!(got, expected, "CIFAR-{classes}-LT IF {imbalance}");
        }
    }

    #[test]
    fn epoch_stepping_holds_the_rate_within_an_epoch_and_ends_at_zero() {
        let counts = [600, 300, 100];
        let t = Timeline::new(
            Stepping::Epoch,
            &counts,
            128,
            &SamplerSpec::Instance,
            Length::Iterations(100),
            Length::Iterations(20),
        )
        .unwrap();
        // loader ceil(1000 / 128) = 8, steps 7: 13 epochs of 7, 3 warm-up epochs.
        assert_eq!(t, Timeline::PerEpoch { epochs: 13, steps: 7, warmup: 3, loader: 8 });
        assert_eq!((t.iterations(), t.epochs(), t.batches_in(13)), (91, 13, 7));
        let lrs: Vec<f64> = (0..91).map(|i| t.learning_rate(0.1, 0.5, i)).collect();
        for e in 0..13 {
            let first = lrs[e * 7].to_bits();
            assert!(lrs[e * 7..e * 7 + 7].iter().all(|l| l.to_bits() == first), "epoch {e}");
        }
        // Warm-up epochs 1 and 2 at 0.05 and 0.075; epoch 3 at the peak; epoch 13 at 0.
        assert!((lrs[0] - 0.05).abs() < 1e-15 && (lrs[7] - 0.075).abs() < 1e-15);
        assert!((lrs[14] - 0.1).abs() < 1e-15 && lrs[90].abs() < 1e-15);
        // With a sampler: class-aware loader ceil(3 * 600 / 128) = 15 (7 epochs), Meta Sampler
        // 1000 // 128 = 7 (15 epochs).
        let epochs = |s: &SamplerSpec| {
            let l = (Length::Iterations(100), Length::Iterations(0));
            Timeline::new(Stepping::Epoch, &counts, 128, s, l.0, l.1).unwrap().epochs()
        };
        assert_eq!(epochs(&SamplerSpec::ClassBalanced), 7);
        assert_eq!(epochs(&SamplerSpec::Meta(crate::sampler::MetaSpec::default())), 15);
        let small = Timeline::new(
            Stepping::Epoch,
            &[10, 5],
            16,
            &SamplerSpec::Instance,
            Length::Iterations(5),
            Length::Iterations(0),
        );
        assert!(small.unwrap_err().contains("N = 15"));
        // As many warm-up epochs as epochs: refused (the official cosine divides by zero).
        let all_warmup = Timeline::new(
            Stepping::Epoch,
            &counts,
            128,
            &SamplerSpec::Instance,
            Length::Iterations(16),
            Length::Iterations(16),
        );
        assert!(all_warmup.unwrap_err().contains("all 2 epochs"));
    }

    #[test]
    fn one_warmup_epoch_starts_the_cosine_at_the_peak_and_class_aware_loaders_are_longer() {
        // W = 1 (refused by the official scheduler's assert): its cosine formula from epoch 1.
        let rates: Vec<f64> = (1..=5).map(|e| epoch_learning_rate(0.1, e, 5, 1, 0.5)).collect();
        assert!((rates[0] - 0.1).abs() < 1e-15 && rates[4].abs() < 1e-15);
        assert!((rates[2] - 0.05).abs() < 1e-15);
        // W = 0 is torch's CosineAnnealingLR: epoch 1 already below the peak.
        assert!(
            (epoch_learning_rate(0.1, 1, 4, 0, 0.5) - 0.05 * (1.0 + (PI / 4.0).cos())).abs()
                < 1e-15
        );
        // CIFAR-10-LT IF 100 with class-aware sampling: 10 x 5,000 = 50,000 samples, 98 batches:
        // 13,000 iterations are 133 epochs of 24 (3,192), 2,000 are 21 (504).
        let counts = cifar_counts(5000.0, 10, 100.0);
        let t = |i: u32| {
            let (s, l) = (&SamplerSpec::ClassBalanced, Length::Iterations(i));
            Timeline::new(Stepping::Epoch, &counts, 512, s, l, Length::Iterations(0)).unwrap()
        };
        assert_eq!(
            (t(13_000).epochs(), t(13_000).iterations(), t(2_000).iterations()),
            (133, 3_192, 504)
        );
    }

    #[test]
    fn per_iteration_timeline_is_the_exact_count() {
        let t = Timeline::new(
            Stepping::Iteration,
            &[600, 300, 100],
            128,
            &SamplerSpec::Instance,
            Length::Iterations(100),
            Length::Epochs(0.5),
        )
        .unwrap();
        assert_eq!(t, Timeline::PerIteration { per_epoch: 8, total: 100, warmup: 4 });
        assert_eq!((t.epochs(), t.batches_in(12), t.batches_in(13)), (13, 8, 4));
        assert!((t.learning_rate(0.1, 0.5, 2) - learning_rate(0.1, 2, 100, 4, 0.5)).abs() == 0.0);
    }
}

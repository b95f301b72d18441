//! Point estimates with confidence intervals over seeds, and the test set's own sampling noise.
//!
//! - [`Estimate::t_interval`]: Student-t over seeds (paired differences, learned rates).
//! - [`Estimate::with_test_noise`]: an accuracy's interval for the method's expected accuracy,
//!   which varies with the seed and with the test images drawn: the seeds' variance of the mean
//!   plus the test set's binomial variance, with Satterthwaite's (1946) degrees of freedom. The
//!   binomial term uses the Agresti-Coull (1998) adjusted proportion, so it stays positive at 0%
//!   and 100%: no interval has zero width because seeds tie or a class is always right.

use serde::Serialize;
use statrs::distribution::{ContinuousCDF, Normal, StudentsT};

/// Why a sample cannot be summarised.
#[derive(Debug, PartialEq, thiserror::Error)]
pub enum EstimateError {
    /// Fewer than two values: no variance, no interval.
    #[error("an interval needs at least 2 values, got {0}")]
    TooFew(usize),
    /// A value is NaN or infinite.
    #[error("value {0} is not finite")]
    NotFinite(f64),
    /// The level is not in (0, 1).
    #[error("confidence level {0} is not in (0, 1)")]
    Level(f64),
    /// Every value is the same: resampling them gives an interval of zero width.
    #[error("all {0} values are equal")]
    NoSpread(usize),
}

/// At least two finite values (checked once, here).
#[derive(Clone, Debug, PartialEq)]
pub struct Sample(Vec<f64>);

impl Sample {
    /// Checks the values.
    ///
    /// # Errors
    /// [`EstimateError`] for fewer than two or non-finite values.
    pub fn new(values: Vec<f64>) -> Result<Sample, EstimateError> {
        if values.len() < 2 {
            return Err(EstimateError::TooFew(values.len()));
        }
        if let Some(&bad) = values.iter().find(|v| !v.is_finite()) {
            return Err(EstimateError::NotFinite(bad));
        }
        Ok(Sample(values))
    }

    /// The values, in the order given (at least two, all finite).
    #[must_use]
    pub fn values(&self) -> &[f64] {
        &self.0
    }

    /// Arithmetic mean of the values.
    #[must_use]
    pub fn mean(&self) -> f64 {
        let n = self.0.len() as f64;
        self.0.iter().sum::<f64>() / n
    }

    /// Sample standard deviation (n - 1 in the denominator).
    #[must_use]
    pub fn std_dev(&self) -> f64 {
        let mean = self.mean();
        let dof = (self.0.len() - 1) as f64;
        (self.0.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / dof).sqrt()
    }
}

/// A mean with its standard error and a two-sided Student-t interval.
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub struct Estimate {
    /// Mean over seeds.
    pub mean: f64,
    /// Standard error of the mean, `s / sqrt(n)`.
    pub std_err: f64,
    /// Confidence level, e.g. 0.95.
    pub level: f64,
    /// Lower end of the interval.
    pub lower: f64,
    /// Upper end of the interval.
    pub upper: f64,
    /// Number of values.
    pub n: usize,
}

impl Estimate {
    /// Mean, standard error and `level` Student-t interval with `n - 1` degrees of freedom.
    ///
    /// # Errors
    /// [`EstimateError::Level`] for a level outside (0, 1).
    pub fn t_interval(sample: &Sample, level: f64) -> Result<Estimate, EstimateError> {
        if !(level > 0.0 && level < 1.0) {
            return Err(EstimateError::Level(level));
        }
        let n = sample.values().len();
        let std_err = sample.std_dev() / (n as f64).sqrt();
        let mean = sample.mean();
        let half = student_quantile(level, (n - 1) as f64) * std_err;
        Ok(Estimate { mean, std_err, level, lower: mean - half, upper: mean + half, n })
    }
}

/// Agresti-Coull variance of a proportion `p` observed on `m` images, at normal quantile `z`:
/// `p~ (1 - p~) / (m + z^2)` with `p~ = (p m + z^2 / 2) / (m + z^2)` (Agresti and Coull 1998).
/// Positive for every `p` in [0, 1] and finite `m`; about `p (1 - p) / m` for large `m`.
#[must_use]
pub fn agresti_coull_variance(p: f64, m: u64, z: f64) -> f64 {
    let total = m as f64 + z * z;
    let adjusted = (p.clamp(0.0, 1.0) * m as f64 + z * z / 2.0) / total;
    adjusted * (1.0 - adjusted) / total
}

/// The two-sided normal quantile of `level` (1.96 at 0.95).
#[must_use]
pub fn normal_quantile(level: f64) -> f64 {
    Normal::standard().inverse_cdf(0.5 + level / 2.0)
}

/// The two-sided Student-t quantile of `level` with `dof` degrees of freedom (the normal one
/// beyond a million).
fn student_quantile(level: f64, dof: f64) -> f64 {
    if dof > 1e6 {
        normal_quantile(level)
    } else {
        StudentsT::new(0.0, 1.0, dof).expect("dof > 0").inverse_cdf(0.5 + level / 2.0)
    }
}

impl Estimate {
    /// Mean over seeds with an interval that also carries the test set's sampling noise.
    ///
    /// The variance of the mean is `V = s^2 / n + test_variance` (`test_variance` in the values'
    /// units squared: the binomial variance of the metric on the test set, which every seed
    /// shares and so does not shrink with `n`). The half-width is Student's t with
    /// Satterthwaite's degrees of freedom `(n - 1) V^2 / (s^2 / n)^2` times `sqrt(V)` (the
    /// normal quantile when the seeds tie), widened where needed to the seeds' own Student-t
    /// half-width, `t(n - 1) s / sqrt(n)`: adding the test term never narrows an interval, so
    /// no verdict is gained from it. `bounds` clip the interval (0 and 100 for a percentage).
    ///
    /// # Errors
    /// [`EstimateError::Level`] for a level outside (0, 1), [`EstimateError::NotFinite`] for a
    /// negative or non-finite `test_variance`.
    pub fn with_test_noise(
        sample: &Sample,
        test_variance: f64,
        level: f64,
        bounds: (f64, f64),
    ) -> Result<Estimate, EstimateError> {
        if !(level > 0.0 && level < 1.0) {
            return Err(EstimateError::Level(level));
        }
        if !(test_variance.is_finite() && test_variance >= 0.0) {
            return Err(EstimateError::NotFinite(test_variance));
        }
        let n = sample.values().len() as f64;
        let seeds = sample.std_dev().powi(2) / n;
        let variance = seeds + test_variance;
        let dof =
            if seeds > 0.0 { (n - 1.0) * variance.powi(2) / seeds.powi(2) } else { f64::INFINITY };
        let (mean, std_err) = (sample.mean(), variance.sqrt());
        let seeds_only = student_quantile(level, n - 1.0) * seeds.sqrt();
        let half = (student_quantile(level, dof) * std_err).max(seeds_only);
        Ok(Estimate {
            mean,
            std_err,
            level,
            lower: (mean - half).max(bounds.0),
            upper: (mean + half).min(bounds.1),
            n: sample.values().len(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn known_interval() {
        // mean 2, s = 1, n = 3: t_{0.975, 2} = 4.302653; half-width 4.302653 / sqrt(3).
        let e = Estimate::t_interval(&Sample::new(vec![1.0, 2.0, 3.0]).unwrap(), 0.95).unwrap();
        assert!((e.mean - 2.0).abs() < 1e-12);
        assert!((e.std_err - 1.0 / 3f64.sqrt()).abs() < 1e-12);
        assert!((e.upper - (2.0 + 4.302_652_729_7 / 3f64.sqrt())).abs() < 1e-6);
    }

    #[test]
    fn test_noise_interval_by_hand() {
        // Goldens from mpmath (t quantile by inverting the regularised incomplete beta):
        // [1, 2, 3] with test variance 5: V = 1/3 + 5, dof = 2 V^2 / (1/3)^2 = 512; Satterthwaite
        // is the wider. With 0.5 (dof 12.5) the seeds' own t(2) s / sqrt(n) is the wider.
        let s = Sample::new(vec![1.0, 2.0, 3.0]).unwrap();
        let open = (f64::NEG_INFINITY, f64::INFINITY);
        let e = Estimate::with_test_noise(&s, 5.0, 0.95, open).unwrap();
        assert!((e.std_err - 2.309_401_077).abs() < 1e-9, "{e:?}");
        assert!((e.lower + 2.537_068_091).abs() < 1e-6 && (e.upper - 6.537_068_091).abs() < 1e-6);
        let e = Estimate::with_test_noise(&s, 0.5, 0.95, open).unwrap();
        assert!((e.std_err - 0.912_870_929_2).abs() < 1e-9, "{e:?}");
        assert!((e.lower + 0.484_137_711_8).abs() < 1e-6 && (e.upper - 4.484_137_712).abs() < 1e-6);
        let seeds = Estimate::t_interval(&s, 0.95).unwrap();
        assert!((e.lower - seeds.lower).abs() < 1e-12, "never narrower than the seeds' interval");
        // Tied seeds: the normal quantile on the test term alone, never zero width.
        let tie = Sample::new(vec![80.0, 80.0]).unwrap();
        let e = Estimate::with_test_noise(&tie, 0.25, 0.95, (0.0, 100.0)).unwrap();
        assert!((e.lower - 79.020_018_01).abs() < 1e-6 && (e.upper - 80.979_981_99).abs() < 1e-6);
        // A perfect class of 50 images: Agresti-Coull gives 0.000 638 934 760 399 (mpmath), the
        // same at 0%; clipped at 100.
        let z = normal_quantile(0.95);
        assert!((z - 1.959_963_984_54).abs() < 1e-9);
        for p in [0.0, 1.0] {
            assert!((agresti_coull_variance(p, 50, z) - 0.000_638_934_760_399).abs() < 1e-15);
        }
        let perfect = Sample::new(vec![100.0, 100.0]).unwrap();
        let v = 1e4 * agresti_coull_variance(1.0, 50, z);
        let e = Estimate::with_test_noise(&perfect, v, 0.95, (0.0, 100.0)).unwrap();
        assert!(e.upper.to_bits() == 100f64.to_bits() && e.lower < 96.0 && e.lower > 94.0, "{e:?}");
        assert_eq!(
            Estimate::with_test_noise(&perfect, -1.0, 0.95, (0.0, 100.0)),
            Err(EstimateError::NotFinite(-1.0))
        );
    }

    /// Coverage of the test-noise interval for a known model of seeds and test images: each
    /// seed's model has population accuracy `p + N(0, sigma^2)` on every class; the test set
    /// (shared by all seeds, drawn anew per replication) has `m` images per class, each with a
    /// difficulty `u ~ U(0, 1)`, right when `u` is below the model's accuracy. The target is
    /// the expected accuracy `p`.
    fn coverage(
        classes: usize,
        images: usize,
        p: f64,
        sigma: f64,
        runs_per_cell: usize,
        seed: u64,
    ) -> f64 {
        use rand::{Rng, SeedableRng};
        use rand_distr::{Distribution, Normal as Gaussian};
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
        let noise = Gaussian::new(0.0, sigma.max(1e-300)).unwrap();
        let quantile = normal_quantile(0.95);
        let replications = 2000;
        let mut covered = 0;
        for _ in 0..replications {
            let difficulty: Vec<Vec<f64>> =
                (0..classes).map(|_| (0..images).map(|_| rng.gen::<f64>()).collect()).collect();
            let runs: Vec<Vec<f64>> = (0..runs_per_cell)
                .map(|_| {
                    let accuracy = if sigma > 0.0 { p + noise.sample(&mut rng) } else { p };
                    difficulty
                        .iter()
                        .map(|class| {
                            class.iter().filter(|&&u| u < accuracy).count() as f64 / images as f64
                        })
                        .collect()
                })
                .collect();
            let values: Vec<f64> =
                runs.iter().map(|r| 100.0 * r.iter().sum::<f64>() / classes as f64).collect();
            let variance: f64 = (0..classes)
                .map(|c| {
                    let mean = runs.iter().map(|r| r[c]).sum::<f64>() / runs_per_cell as f64;
                    agresti_coull_variance(mean, images as u64, quantile)
                        / (classes * classes) as f64
                })
                .sum();
            let estimate = Estimate::with_test_noise(
                &Sample::new(values).unwrap(),
                1e4 * variance,
                0.95,
                (0.0, 100.0),
            )
            .unwrap();
            if estimate.lower <= 100.0 * p && 100.0 * p <= estimate.upper {
                covered += 1;
            }
        }
        f64::from(covered) / f64::from(replications)
    }

    #[test]
    fn the_test_noise_interval_covers_about_95_percent() {
        // Test images dominate; seeds tie; seeds dominate; both alike (where the seeds' own
        // t interval can be the wider, so coverage may exceed 95%).
        for (classes, m, p, sigma, n, low, high) in [
            (10, 50, 0.8, 0.01, 3, 0.93, 0.975),
            (10, 100, 0.7, 0.0, 2, 0.93, 0.975),
            (10, 1000, 0.6, 0.02, 5, 0.92, 0.975),
            (10, 1000, 0.7, 0.012, 3, 0.93, 0.99),
        ] {
            let c = coverage(classes, m, p, sigma, n, 7);
            assert!((low..=high).contains(&c), "{classes} x {m}, p {p}, sigma {sigma}, n {n}: {c}");
        }
        // At the boundary (one class of 50 images, 98% accurate, tied seeds), Agresti-Coull is
        // conservative rather than short.
        let c = coverage(1, 50, 0.98, 0.0, 2, 8);
        assert!((0.93..=1.0).contains(&c), "{c}");
    }

    proptest! {
        #[test]
        fn the_test_noise_interval_has_positive_width_for_any_finite_test_set(
            values in prop::collection::vec(0f64..=100.0, 2..8),
            accuracy in 0f64..=1.0,
            images in 1u64..100_000,
        ) {
            let ties = vec![values[0]; values.len()];
            let v = 1e4 * agresti_coull_variance(accuracy, images, normal_quantile(0.95));
            for sample in [values, ties] {
                let e = Estimate::with_test_noise(&Sample::new(sample).unwrap(), v, 0.95, (0.0, 100.0)).unwrap();
                prop_assert!(e.upper > e.lower && e.lower <= e.mean && e.mean <= e.upper, "{e:?}");
            }
        }
    }

    #[test]
    fn too_few_or_bad_values_are_refused() {
        assert_eq!(Sample::new(vec![1.0]), Err(EstimateError::TooFew(1)));
        assert!(matches!(Sample::new(vec![1.0, f64::NAN]), Err(EstimateError::NotFinite(_))));
        let s = Sample::new(vec![1.0, 2.0]).unwrap();
        assert_eq!(Estimate::t_interval(&s, 1.0), Err(EstimateError::Level(1.0)));
    }

    proptest! {
        #[test]
        fn interval_contains_the_mean(values in prop::collection::vec(-1e3f64..1e3, 2..20), level in 0.5f64..0.999) {
            let e = Estimate::t_interval(&Sample::new(values).unwrap(), level).unwrap();
            prop_assert!(e.lower <= e.mean && e.mean <= e.upper);
        }

        #[test]
        fn higher_level_is_wider(values in prop::collection::vec(-1e3f64..1e3, 2..20), a in 0.5f64..0.98) {
            let s = Sample::new(values).unwrap();
            let narrow = Estimate::t_interval(&s, a).unwrap();
            let wide = Estimate::t_interval(&s, a + 0.01).unwrap();
            prop_assert!(wide.upper - wide.lower >= narrow.upper - narrow.lower);
        }

        #[test]
        fn narrows_with_n_at_fixed_spread(base in prop::collection::vec(-10f64..10.0, 2..6), spread in 0.1f64..5.0) {
            // Repeating a pattern keeps the spread of values but grows n: the interval narrows.
            let pattern: Vec<f64> = base.iter().enumerate().map(|(i, b)| b + if i % 2 == 0 { spread } else { -spread }).collect();
            let once = Estimate::t_interval(&Sample::new(pattern.clone()).unwrap(), 0.95).unwrap();
            let twice = Estimate::t_interval(&Sample::new(pattern.repeat(2)).unwrap(), 0.95).unwrap();
            prop_assert!(twice.upper - twice.lower < once.upper - once.lower);
        }
    }
}

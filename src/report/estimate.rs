//! Point estimates with Student-t confidence intervals over seeds.

use serde::Serialize;
use statrs::distribution::{ContinuousCDF, StudentsT};

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
        let t = StudentsT::new(0.0, 1.0, (n - 1) as f64)
            .expect("n >= 2")
            .inverse_cdf(0.5 + level / 2.0);
        let mean = sample.mean();
        Ok(Estimate {
            mean,
            std_err,
            level,
            lower: mean - t * std_err,
            upper: mean + t * std_err,
            n,
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

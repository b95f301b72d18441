//! Resampling statistics, every one seeded from what it describes (matrix, cell, metric), so
//! a report is the same bytes every time.
//!
//! - [`mean_interval`]: percentile bootstrap of a mean over seeds (a cell, or paired differences).
//! - [`probability_of_improvement`]: P(X > Y) + P(X = Y)/2 over all pairs of runs (as rliable).

use rand::Rng;
use rand_chacha::ChaCha8Rng;

use super::estimate::EstimateError;

/// Resamples per interval.
pub const REPLICATES: usize = 4000;

/// The `level` percentile interval of `statistics` (sorted in place).
fn percentile(statistics: &mut [f64], level: f64) -> (f64, f64) {
    statistics.sort_by(f64::total_cmp);
    let last = statistics.len() - 1;
    #[expect(
        clippy::cast_possible_truncation,
        clippy::cast_sign_loss,
        reason = "a rank in 0..=last, since q is in [0, 1]"
    )]
    let at = |q: f64| statistics[((last as f64) * q).round() as usize];
    (at((1.0 - level) / 2.0), at(f64::midpoint(1.0, level)))
}

fn check(values: &[f64], level: f64) -> Result<(), EstimateError> {
    if values.len() < 2 {
        return Err(EstimateError::TooFew(values.len()));
    }
    if let Some(&bad) = values.iter().find(|v| !v.is_finite()) {
        return Err(EstimateError::NotFinite(bad));
    }
    if !(level > 0.0 && level < 1.0) {
        return Err(EstimateError::Level(level));
    }
    Ok(())
}

/// Percentile bootstrap interval of the mean of `differences` (one value per seed: a cell's
/// top-1, or a paired difference), resampling the seeds with replacement.
///
/// # Errors
/// Fewer than two or non-finite values, a level outside (0, 1), or values that all tie (their
/// resamples would give an interval of zero width, which no report may call an interval).
pub fn mean_interval(
    differences: &[f64],
    level: f64,
    rng: &mut ChaCha8Rng,
) -> Result<(f64, f64), EstimateError> {
    check(differences, level)?;
    if differences.iter().all(|v| v.to_bits() == differences[0].to_bits()) {
        return Err(EstimateError::NoSpread(differences.len()));
    }
    let n = differences.len();
    let mut means: Vec<f64> = (0..REPLICATES)
        .map(|_| (0..n).map(|_| differences[rng.gen_range(0..n)]).sum::<f64>() / n as f64)
        .collect();
    Ok(percentile(&mut means, level))
}

/// `P(X > Y) + P(X = Y) / 2` over every pair of a run of X and a run of Y.
#[must_use]
#[expect(clippy::float_cmp, reason = "a tie is exact equality, and counts a half")]
pub fn probability_of_improvement(x: &[f64], y: &[f64]) -> f64 {
    let score: f64 = x
        .iter()
        .flat_map(|a| {
            y.iter().map(move |b| {
                if a > b {
                    1.0
                } else if a == b {
                    0.5
                } else {
                    0.0
                }
            })
        })
        .sum();
    let pairs = (x.len() * y.len()) as f64;
    score / pairs
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use rand::SeedableRng;

    #[test]
    fn degenerate_and_refused_cases() {
        let mut rng = ChaCha8Rng::seed_from_u64(1);
        assert_eq!(
            mean_interval(&[0.7, 0.7, 0.7], 0.95, &mut rng),
            Err(EstimateError::NoSpread(3))
        );
        assert_eq!(mean_interval(&[1.0], 0.95, &mut rng), Err(EstimateError::TooFew(1)));
        assert!(matches!(
            mean_interval(&[1.0, f64::NAN], 0.95, &mut rng),
            Err(EstimateError::NotFinite(_))
        ));
    }

    #[test]
    #[expect(clippy::float_cmp, reason = "every pair is a win, exactly 1")]
    fn probability_of_improvement_by_hand() {
        assert_eq!(probability_of_improvement(&[3.0, 4.0], &[1.0, 2.0]), 1.0);
        // Pairs: (2,1) win, (2,2) tie, (2,3) loss, (0, *) losses: (1 + 0.5) / 6.
        assert!((probability_of_improvement(&[2.0, 0.0], &[1.0, 2.0, 3.0]) - 0.25).abs() < 1e-15);
    }

    proptest! {
        #[test]
        fn mean_interval_lies_within_the_values_and_widens_with_the_level(
            values in prop::collection::vec(-50f64..50.0, 2..8), seed in 0u64..1000, a in 0.5f64..0.9
        ) {
            let narrow = mean_interval(&values, a, &mut ChaCha8Rng::seed_from_u64(seed)).unwrap();
            let wide = mean_interval(&values, a + 0.09, &mut ChaCha8Rng::seed_from_u64(seed)).unwrap();
            let (min, max) = values.iter().fold((f64::INFINITY, f64::NEG_INFINITY), |(l, h), v| (l.min(*v), h.max(*v)));
            prop_assert!(min - 1e-9 <= wide.0 && wide.0 <= narrow.0 && narrow.0 <= narrow.1);
            prop_assert!(narrow.1 <= wide.1 && wide.1 <= max + 1e-9);
        }

        #[test]
        fn improvement_probabilities_of_the_two_orders_sum_to_one(
            x in prop::collection::vec(0f64..5.0, 1..6), y in prop::collection::vec(0f64..5.0, 1..6)
        ) {
            let sum = probability_of_improvement(&x, &y) + probability_of_improvement(&y, &x);
            prop_assert!((sum - 1.0).abs() < 1e-12);
        }
    }
}

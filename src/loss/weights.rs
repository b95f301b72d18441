//! Class weights of the re-weighting baselines, in f64.

/// Class-balanced weighting ("CBW"): `w_j ∝ 1/n_j`, normalised so that `sum_j w_j = C`.
///
/// # Panics
/// If a count is zero (callers check first).
#[must_use]
pub fn inverse_frequency_weights(counts: &[usize]) -> Vec<f64> {
    assert!(!counts.contains(&0), "every class needs a sample");
    let raw: Vec<f64> = counts.iter().map(|&n| 1.0 / n as f64).collect();
    normalise_to_classes(raw)
}

/// Class-Balanced loss weights (Cui et al.): `w_j = (1 - beta) / (1 - beta^n_j)`, normalised so
/// that `sum_j w_j = C` (LDAM-DRW's `Reweight`/`DRW` rule). The denominator is computed as
/// `-expm1(n ln beta)`, exact for small `n` where `1 - beta^n` loses digits. `beta = 0` gives
/// uniform weights.
#[must_use]
pub fn class_balanced_weights(counts: &[usize], beta: f64) -> Vec<f64> {
    let raw: Vec<f64> = if beta == 0.0 {
        vec![1.0; counts.len()]
    } else {
        counts.iter().map(|&n| (1.0 - beta) / -(n as f64 * beta.ln()).exp_m1()).collect()
    };
    normalise_to_classes(raw)
}

fn normalise_to_classes(raw: Vec<f64>) -> Vec<f64> {
    let sum: f64 = raw.iter().sum();
    let classes = raw.len() as f64;
    raw.into_iter().map(|w| w / sum * classes).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn weights_sum_to_classes_and_favour_the_tail() {
        for w in [
            inverse_frequency_weights(&[100, 10, 1]),
            class_balanced_weights(&[100, 10, 1], 0.9999),
        ] {
            assert!((w.iter().sum::<f64>() - 3.0).abs() < 1e-12);
            assert!(w[0] < w[1] && w[1] < w[2]);
        }
        // numpy: (1-b)/(-expm1(n*log(b))) normalised to sum 3, b = 0.9999, n = [100, 10, 1]
        let cb = class_balanced_weights(&[100, 10, 1], 0.9999);
        for (got, want) in cb.iter().zip([0.027_158_72, 0.270_368_87, 2.702_472_4]) {
            assert!((got - want).abs() < 1e-8, "{got} vs {want}");
        }
        assert_eq!(class_balanced_weights(&[5, 3], 0.0), vec![1.0, 1.0]);
        assert_eq!(inverse_frequency_weights(&[4, 4, 4]), vec![1.0, 1.0, 1.0]);
    }
}

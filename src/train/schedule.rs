//! The learning-rate schedule: linear warm-up, then cosine annealing to zero, per iteration.
//!
//! The official code steps its schedulers once per epoch; per-iteration stepping is the paper's
//! description ("increased from 0.05 to 0.1 in the first 800 iterations", then cosine to 0).

use std::f64::consts::PI;

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
}

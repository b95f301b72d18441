//! Per-class summaries of the Meta Sampler's `B x N` Gumbel noise, computed without
//! materialising it.
//!
//! For each batch row `b` and class `c`, the instance draw and the soft sample need only three
//! numbers of the class's `n_c` i.i.d. Gumbel values `g_i = -ln E_i` (`E_i ~ Exp(1)`): the largest
//! value, its position, and `logsumexp(g_i / tau) = ln sum E_i^(-1/tau)`. They are computed in one
//! fused pass over exponential variates drawn by the ziggurat method from Xoshiro256++, several
//! times cheaper than materialising the noise as tensors (`just bench`). Every row has its own
//! seeded generator, so the result does not depend on the number of threads.

use rand::{Rng, SeedableRng};
use rand_distr::Exp1;
use rand_xoshiro::Xoshiro256PlusPlus;

/// Summaries of one row of noise: per class, the largest Gumbel value, its position within the
/// class, and the log-sum-exp of the values over the temperature.
#[derive(Clone, Debug, PartialEq)]
pub struct RowSummary {
    /// Per class: the largest Gumbel value `max_i g_i`.
    pub max: Vec<f64>,
    /// Per class: where the largest value is, 0-based within the class's instances.
    pub position: Vec<usize>,
    /// Per class: `logsumexp(g_i / tau)` over the class's instances.
    pub lse: Vec<f64>,
}

/// Summarises one class's exponential variates `e` (its Gumbel noise is `-ln e`).
#[expect(clippy::float_cmp, reason = "the default temperature, exactly 1, takes the fast path")]
fn summarise(e: impl Iterator<Item = f64>, tau: f64) -> (f64, usize, f64) {
    let (mut best, mut position, mut sum) = (f64::INFINITY, 0, 0.0);
    for (i, e) in e.enumerate() {
        if e < best {
            best = e;
            position = i;
        }
        sum += if tau == 1.0 { 1.0 / e } else { e.powf(-1.0 / tau) };
    }
    (-best.ln(), position, sum.ln())
}

/// The summaries of `rows` rows of noise over classes of sizes `sizes`, row `b` drawn from
/// Xoshiro256++ seeded by deriving `row/<first_stream + b>` from `seed`, split over up to
/// `threads` threads.
#[must_use]
pub fn summaries(
    sizes: &[usize],
    rows: usize,
    seed: u64,
    first_stream: u64,
    tau: f64,
    threads: usize,
) -> Vec<RowSummary> {
    let row = |b: usize| {
        let stream = format!("row/{}", first_stream + b as u64);
        let mut rng = Xoshiro256PlusPlus::seed_from_u64(crate::seed::Seed(seed).derive(&stream));
        let mut summary = RowSummary { max: Vec::new(), position: Vec::new(), lse: Vec::new() };
        for &n in sizes {
            let (max, position, lse) = summarise((0..n).map(|_| -> f64 { rng.sample(Exp1) }), tau);
            summary.max.push(max);
            summary.position.push(position);
            summary.lse.push(lse);
        }
        summary
    };
    let threads = threads.clamp(1, rows.max(1));
    let chunk = rows.div_ceil(threads);
    std::thread::scope(|scope| {
        let handles: Vec<_> = (0..threads)
            .map(|t| {
                let row = &row;
                scope.spawn(move || {
                    (t * chunk..((t + 1) * chunk).min(rows)).map(row).collect::<Vec<_>>()
                })
            })
            .collect();
        handles.into_iter().flat_map(|h| h.join().expect("noise thread")).collect()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn summary_matches_the_materialised_gumbel_noise() {
        let e = [0.7, 0.05, 2.0, 0.3];
        for tau in [1.0, 0.5] {
            let (max, position, lse) = summarise(e.iter().copied(), tau);
            let g: Vec<f64> = e.iter().map(|v: &f64| -v.ln()).collect();
            assert_eq!(position, 1);
            assert!((max - g[1]).abs() < 1e-15);
            let direct = g.iter().map(|v| (v / tau).exp()).sum::<f64>().ln();
            assert!((lse - direct).abs() < 1e-12, "{lse} vs {direct}");
        }
    }

    #[test]
    fn rows_do_not_depend_on_the_thread_count() {
        let one = summaries(&[50, 7, 3], 9, 42, 100, 1.0, 1);
        let three = summaries(&[50, 7, 3], 9, 42, 100, 1.0, 3);
        assert_eq!(one, three);
        assert_eq!(one.len(), 9);
        assert_ne!(one[0], one[1]);
    }

    #[test]
    fn the_largest_noise_lands_uniformly_within_a_class() {
        // 4,000 rows over one class of 4: each position wins 1/4 of the time; the standard error
        // is 0.0068, the tolerance 0.03 about four of them.
        let rows = summaries(&[4], 4000, 7, 0, 1.0, 2);
        let mut hits = [0usize; 4];
        for r in &rows {
            hits[r.position[0]] += 1;
        }
        for h in hits {
            assert!((h as f64 / 4000.0 - 0.25).abs() < 0.03, "{hits:?}");
        }
    }
}

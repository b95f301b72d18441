//! Per-class summaries of the Meta Sampler's `B x N` Gumbel noise, computed without
//! materialising it.
//!
//! For each batch row `b` and class `c`, the instance draw and the soft sample need only three
//! numbers of the class's `n_c` i.i.d. Gumbel values `g_i = -ln E_i` (`E_i ~ Exp(1)`): the largest
//! value, its position, and `logsumexp(g_i / tau) = ln sum E_i^(-1/tau)`. Two ways to draw them
//! ([`NoiseDraw`]):
//!
//! - **exact** (the default): one fused pass over all `n_c` exponential variates, drawn by the
//!   ziggurat method from Xoshiro256++; cost `O(B x N)`. At temperature 1, four rows at a time in
//!   vector registers, with the bytes of one row at a time (see [`exact_lanes`]).
//! - **order statistics**: the largest value and its position exactly, the log-sum-exp from the
//!   [`TOP`] smallest exponentials drawn exactly (Renyi's representation) plus a draw of the sum
//!   over the rest from a shifted gamma with its exact first three moments; cost `O(B x C x TOP)`
//!   whatever `N` (classes of at most `2 TOP` instances are drawn exactly). See
//!   [`NoiseDraw::OrderStatistics`].
//!
//! Every row has its own seeded generator, so the result does not depend on the number of
//! threads.

use std::sync::OnceLock;

use rand::{Rng, RngCore, SeedableRng};
use rand_distr::{Exp1, Gamma, StandardNormal};
use rand_xoshiro::{SplitMix64, Xoshiro256PlusPlus};
use serde::{Deserialize, Serialize};
use wide::{f64x4, u64x4, CmpLt};

/// How the per-class noise summaries are drawn (`sampler = { meta = { draw = "..." } }`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum NoiseDraw {
    /// Every one of the `B x N` exponentials (the default; the same bytes as before this option
    /// existed).
    #[default]
    Exact,
    /// Per row and class of `n_c > 2 TOP` instances: the position of the largest Gumbel value
    /// uniformly (it is independent of the values), the [`TOP`] smallest exponentials
    /// `E_(1) <= ... <= E_(K)` exactly by Renyi's representation `E_(j) = sum_{i <= j} X_i /
    /// (n_c - i + 1)`, and the sum of `1 / E` over the other `m = n_c - K`, which given `E_(K) =
    /// a` are i.i.d. `a + Exp(1)` (memorylessness) and bounded by `1 / a`, from a shifted gamma
    /// with that sum's exact mean, variance and third cumulant (`m` times those of `1 / (a +
    /// X)`, from `e^a E1(a)`), clamped at 0. The largest value and the chosen instance are
    /// exact; only the log-sum-exp is approximate, through the tail sum's fourth and higher
    /// cumulants (its excess kurtosis is about `1 / (3 K)`). Classes of at most `2 TOP`
    /// instances are drawn exactly. Temperature 1 only.
    OrderStatistics,
}

impl NoiseDraw {
    /// Whether this is the default exact draw (omitted from records, so that the configuration
    /// hashes of runs from before the option are unchanged).
    #[must_use]
    pub fn is_exact(&self) -> bool {
        *self == NoiseDraw::Exact
    }
}

/// How many of a class's smallest exponentials the order-statistics draw takes exactly.
pub const TOP: usize = 16;

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

/// Rows the exact draw steps together at temperature 1: their generators advance in lock-step,
/// so the compiler keeps them in vector registers and the rows' running sums, reciprocals and
/// generator words overlap instead of waiting on one another.
const LANES: usize = 4;

/// Xoshiro256++ for one row, with its state in reach (`rand_xoshiro` keeps it private): the same
/// words as [`Xoshiro256PlusPlus`] seeded by `seed_from_u64` (test `lanes_match_the_library`).
#[derive(Clone, Copy, Debug)]
struct Xoshiro([u64; 4]);

impl Xoshiro {
    /// The state `Xoshiro256PlusPlus::seed_from_u64(seed)` starts from: four words of
    /// `SplitMix64` seeded by `seed`.
    fn seed_from_u64(seed: u64) -> Self {
        let mut splitmix = SplitMix64::seed_from_u64(seed);
        Xoshiro(std::array::from_fn(|_| splitmix.next_u64()))
    }

    /// One step of the state, returning the output word.
    fn step(s: &mut [u64; 4]) -> u64 {
        let out = s[0].wrapping_add(s[3]).rotate_left(23).wrapping_add(s[0]);
        let t = s[1] << 17;
        s[2] ^= s[0];
        s[3] ^= s[1];
        s[1] ^= s[2];
        s[0] ^= s[3];
        s[2] ^= t;
        s[3] = s[3].rotate_left(45);
        out
    }

    /// The inverse of [`Xoshiro::step`]'s state change.
    fn step_back(s: &mut [u64; 4]) {
        let s3 = s[3].rotate_right(45);
        let s0 = s[0] ^ s3;
        // s[1] ^ s[2] is now x ^ (x << 17) for the old s[1]; undo the shifts.
        let y = s[1] ^ s[2];
        let s1 = y ^ (y << 17) ^ (y << 34) ^ (y << 51);
        let s2 = s[2] ^ s0 ^ (s1 << 17);
        *s = [s0, s1, s2, s3 ^ s1];
    }
}

impl RngCore for Xoshiro {
    fn next_u32(&mut self) -> u32 {
        (self.next_u64() >> 32) as u32
    }

    fn next_u64(&mut self) -> u64 {
        Xoshiro::step(&mut self.0)
    }

    fn fill_bytes(&mut self, dest: &mut [u8]) {
        for chunk in dest.chunks_mut(8) {
            let word = self.next_u64().to_le_bytes();
            chunk.copy_from_slice(&word[..chunk.len()]);
        }
    }

    fn try_fill_bytes(&mut self, dest: &mut [u8]) -> Result<(), rand::Error> {
        self.fill_bytes(dest);
        Ok(())
    }
}

/// The `x` table of `rand_distr`'s exponential ziggurat (257 layer edges, decreasing to 0),
/// read through its public sampler: a generator whose first word is `i` (layer `i`, uniform
/// `u = 2^-53`, the smallest there is) makes `Exp1` return `2^-53 x[i]` exactly, accepted on the
/// fast path or, for the last layer, on the slow one. The fast path below then takes the same
/// branch with the same product as `Exp1` for every word. A later `rand_distr` with another table
/// would be read as it is; one that changes the algorithm (the layer's bits, the uniform, the
/// test) fails `lanes_match_the_library` rather than changing bytes silently.
fn ziggurat_x() -> &'static [f64; 257] {
    struct Probe(Option<u64>);
    impl RngCore for Probe {
        fn next_u32(&mut self) -> u32 {
            (self.next_u64() >> 32) as u32
        }
        fn next_u64(&mut self) -> u64 {
            // The slow path's uniform, if asked: 1/2.
            self.0.take().unwrap_or(1 << 63)
        }
        fn fill_bytes(&mut self, dest: &mut [u8]) {
            dest.fill(0);
        }
        fn try_fill_bytes(&mut self, dest: &mut [u8]) -> Result<(), rand::Error> {
            self.fill_bytes(dest);
            Ok(())
        }
    }
    static TABLE: OnceLock<[f64; 257]> = OnceLock::new();
    TABLE.get_or_init(|| {
        std::array::from_fn(|i| {
            if i == 256 {
                0.0
            } else {
                let x: f64 = Probe(Some(i as u64)).sample(Exp1);
                x * 2f64.powi(53)
            }
        })
    })
}

/// The exact draw at temperature 1 for `LANES` rows at once, each from its own generator, in
/// vector registers (`wide`: SSE2 pairs on the default x86-64 build, the only one tested here;
/// wider registers where a build targets them, NEON on ARM): the same summaries, bit for bit, as [`summarise`] over `Exp1` draws from
/// each row's generator, since every operation is the scalar one lane by lane (no fused or
/// reordered arithmetic). Every word is tried on `Exp1`'s fast path, which takes 98% of them; a
/// lane whose word misses it steps its generator back and draws that variate by `Exp1` itself.
fn exact_lanes(sizes: &[usize], rngs: [Xoshiro; LANES]) -> [RowSummary; LANES] {
    let edges = ziggurat_x();
    let mut state: [u64x4; 4] = std::array::from_fn(|k| u64x4::from(rngs.map(|r| r.0[k])));
    let one_bits = u64x4::splat(0x3ff0_0000_0000_0000);
    let open = f64x4::splat(1.0 - f64::EPSILON / 2.0);
    let mut out: [RowSummary; LANES] = std::array::from_fn(|_| RowSummary {
        max: Vec::with_capacity(sizes.len()),
        position: Vec::with_capacity(sizes.len()),
        lse: Vec::with_capacity(sizes.len()),
    });
    for &n in sizes {
        let mut best = f64x4::splat(f64::INFINITY);
        let mut position = f64x4::ZERO;
        let mut sum = f64x4::ZERO;
        for i in 0..n {
            // Xoshiro256++, lane by lane.
            let sum03 = state[0] + state[3];
            let bits = ((sum03 << 23_u32) | (sum03 >> 41_u32)) + state[0];
            let t = state[1] << 17_u32;
            state[2] ^= state[0];
            state[3] ^= state[1];
            state[1] ^= state[2];
            state[0] ^= state[3];
            state[2] ^= t;
            state[3] = (state[3] << 45_u32) | (state[3] >> 19_u32);
            // Exp1's fast path: layer from the low 8 bits, a uniform in (0, 1) from the top 52.
            let layers = bits.to_array().map(|b: u64| usize::from(b.to_le_bytes()[0]));
            let u: f64x4 = bytemuck::cast::<u64x4, f64x4>((bits >> 12_u32) | one_bits) - open;
            let mut e = u * f64x4::from(layers.map(|l| edges[l]));
            let fast = e.cmp_lt(f64x4::from(layers.map(|l| edges[l + 1])));
            if !fast.all() {
                (state, e) = off_the_fast_path(state, e, fast);
            }
            let better = e.cmp_lt(best);
            if better.any() {
                // A new smallest value in some lane: after the first few, rare (about ln n times).
                best = better.blend(e, best);
                position = better.blend(f64x4::splat(i as f64), position);
            }
            sum += f64x4::ONE / e;
        }
        let (best, position, sum) = (best.to_array(), position.to_array(), sum.to_array());
        for (l, row) in out.iter_mut().enumerate() {
            row.max.push(-best[l].ln());
            #[expect(
                clippy::cast_possible_truncation,
                clippy::cast_sign_loss,
                reason = "a position below n, exact in an f64 (n is far below 2^53)"
            )]
            row.position.push(position[l] as usize);
            row.lse.push(sum[l].ln());
        }
    }
    out
}

/// The lanes of a step whose word missed `Exp1`'s fast path (`fast` false): each steps its
/// generator back and draws the variate by `Exp1` itself. Out of line, so that the hot loop keeps
/// its state in registers.
#[cold]
#[inline(never)]
fn off_the_fast_path(mut s: [u64x4; 4], mut e: f64x4, fast: f64x4) -> ([u64x4; 4], f64x4) {
    let fast = fast.move_mask();
    for l in (0..LANES).filter(|&l| fast & (1 << l) == 0) {
        let mut rng = Xoshiro(std::array::from_fn(|k| s[k].as_array_ref()[l]));
        Xoshiro::step_back(&mut rng.0);
        e.as_array_mut()[l] = rng.sample(Exp1);
        for (word, value) in s.iter_mut().zip(rng.0) {
            word.as_array_mut()[l] = value;
        }
    }
    (s, e)
}

/// `e^x E1(x)` for `x > 0`, `E1` the exponential integral: the mean of `1 / (x + X)`, `X ~
/// Exp(1)`. Power series up to 1 (Abramowitz and Stegun 5.1.11, 20 terms in Horner form: the
/// next is below 1e-20), above it the even contraction of the continued fraction 5.1.22
/// (Numerical Recipes 6.3.5) by modified Lentz; relative error below 1e-13 (test against
/// mpmath).
fn scaled_e1(x: f64) -> f64 {
    const EULER: f64 = 0.577_215_664_901_532_9;
    if x <= 1.0 {
        // E1(x) = -gamma - ln x - sum_{k >= 1} (-x)^k / (k k!), the sum as
        // -x (c_1 - x (c_2 - x (c_3 - ...))) with c_k = 1 / (k k!).
        const TERMS: usize = 20;
        const C: [f64; TERMS] = {
            let mut c = [0.0; TERMS];
            let mut factorial = 1.0;
            let mut k = 1;
            while k <= TERMS {
                factorial *= k as f64;
                c[k - 1] = 1.0 / (k as f64 * factorial);
                k += 1;
            }
            c
        };
        let mut series = 0.0;
        for c in C.iter().rev() {
            series = c - x * series;
        }
        x.exp() * (-EULER - x.ln() + x * series)
    } else {
        // Modified Lentz on 1 / (x + 1 - 1 / (x + 3 - 4 / (x + 5 - ...))).
        let tiny = 1e-300;
        let mut denominator = x + 1.0;
        let (mut upper, mut lower) = (1.0 / tiny, 1.0 / denominator);
        let mut fraction = lower;
        for i in 1..200 {
            let numerator = -f64::from(i) * f64::from(i);
            denominator += 2.0;
            lower = 1.0 / (numerator * lower + denominator);
            upper = denominator + numerator / upper;
            let delta = upper * lower;
            fraction *= delta;
            if (delta - 1.0).abs() < 1e-16 {
                break;
            }
        }
        fraction
    }
}

/// Mean, variance and third central moment of `1 / (a + X)`, `X ~ Exp(1)`, `a > 0`, from its
/// raw moments `M1 = e^a E1(a)`, `M2 = 1/a - M1` and `M3 = 1 / (2 a^2) - M2 / 2` (each by parts
/// from the one before).
fn reciprocal_moments(a: f64) -> (f64, f64, f64) {
    let m1 = scaled_e1(a);
    let m2 = 1.0 / a - m1;
    let m3 = 0.5 / (a * a) - 0.5 * m2;
    let variance = (m2 - m1 * m1).max(0.0);
    (m1, variance, m3 - 3.0 * m1 * m2 + 2.0 * m1 * m1 * m1)
}

/// A draw of a sum with mean `mean`, variance `variance` and third cumulant `third`: a shifted
/// gamma matching all three (Pearson type III; mirrored for a negative skewness), a normal when
/// the skewness is below 1e-6 in size. Clamped at 0 (the sum is of positive terms).
fn three_moment_draw(rng: &mut Xoshiro256PlusPlus, mean: f64, variance: f64, third: f64) -> f64 {
    let sd = variance.sqrt();
    let skew = if sd > 0.0 { third / (variance * sd) } else { 0.0 };
    let value = if skew.abs() < 1e-6 {
        let z: f64 = rng.sample(StandardNormal);
        mean + sd * z
    } else {
        // Gamma(k, theta) has mean k theta, variance k theta^2 and skewness 2 / sqrt(k).
        let shape = 4.0 / (skew * skew);
        let scale = sd * skew.abs() / 2.0;
        let g: f64 = rng.sample(Gamma::new(shape, scale).expect("positive shape and scale"));
        mean + (g - shape * scale) * skew.signum()
    };
    value.max(0.0)
}

/// One class's summary by the order-statistics draw ([`NoiseDraw::OrderStatistics`]),
/// temperature 1.
fn order_statistics(rng: &mut Xoshiro256PlusPlus, n: usize) -> (f64, usize, f64) {
    if n <= 2 * TOP {
        return summarise((0..n).map(|_| -> f64 { rng.sample(Exp1) }), 1.0);
    }
    let position = rng.gen_range(0..n);
    // E_(1) = X_1 / n, E_(j+1) = E_(j) + X_(j+1) / (n - j).
    let first: f64 = rng.sample(Exp1);
    let smallest = first / n as f64;
    let (mut e, mut top) = (smallest, 1.0 / smallest);
    for j in 1..TOP {
        let x: f64 = rng.sample(Exp1);
        e += x / (n - j) as f64;
        top += 1.0 / e;
    }
    let rest = (n - TOP) as f64;
    let (mean, variance, third) = reciprocal_moments(e);
    let tail = three_moment_draw(rng, rest * mean, rest * variance, rest * third);
    (-smallest.ln(), position, (top + tail).ln())
}

/// The summaries of `rows` rows of noise over classes of sizes `sizes`, row `b` drawn from
/// Xoshiro256++ seeded by deriving `row/<first_stream + b>` from `seed`, by `draw`, split over up
/// to `threads` threads.
///
/// # Panics
/// If `draw` is the order-statistics draw and `tau` is not 1 (the matrix refuses that).
#[must_use]
pub fn summaries(
    sizes: &[usize],
    rows: usize,
    (seed, first_stream): (u64, u64),
    tau: f64,
    draw: NoiseDraw,
    threads: usize,
) -> Vec<RowSummary> {
    #[expect(clippy::float_cmp, reason = "the tail sum's moments are those of temperature 1")]
    let temperature_one = tau == 1.0;
    assert!(
        draw.is_exact() || temperature_one,
        "the order-statistics draw is for temperature 1 (the matrix checks it), not {tau}"
    );
    let seed_of =
        |b: usize| crate::seed::Seed(seed).derive(&format!("row/{}", first_stream + b as u64));
    let row = |b: usize| {
        let mut rng = Xoshiro256PlusPlus::seed_from_u64(seed_of(b));
        let mut summary = RowSummary { max: Vec::new(), position: Vec::new(), lse: Vec::new() };
        for &n in sizes {
            let (max, position, lse) = match draw {
                NoiseDraw::Exact => summarise((0..n).map(|_| -> f64 { rng.sample(Exp1) }), tau),
                NoiseDraw::OrderStatistics => order_statistics(&mut rng, n),
            };
            summary.max.push(max);
            summary.position.push(position);
            summary.lse.push(lse);
        }
        summary
    };
    // Rows `range`, `LANES` at a time for the exact draw at temperature 1 (the last group padded
    // with copies of its last row, dropped), one by one otherwise.
    let rows_in = |range: std::ops::Range<usize>| -> Vec<RowSummary> {
        if !(draw.is_exact() && temperature_one) {
            return range.map(row).collect();
        }
        let mut out = Vec::with_capacity(range.len());
        for first in range.clone().step_by(LANES) {
            let last = (first + LANES).min(range.end) - 1;
            let rngs =
                std::array::from_fn(|l| Xoshiro::seed_from_u64(seed_of((first + l).min(last))));
            out.extend(exact_lanes(sizes, rngs).into_iter().take(last + 1 - first));
        }
        out
    };
    let threads = threads.clamp(1, rows.max(1));
    // Whole groups of lanes per thread (the last thread takes the rest).
    let chunk = rows.div_ceil(threads).next_multiple_of(LANES);
    std::thread::scope(|scope| {
        let handles: Vec<_> = (0..threads)
            .map(|t| {
                let rows_in = &rows_in;
                scope.spawn(move || rows_in(t * chunk..((t + 1) * chunk).min(rows)))
            })
            .collect();
        handles.into_iter().flat_map(|h| h.join().expect("noise thread")).collect()
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sampler::testing::ks_distance;

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

    /// The exact draw one row at a time, as it was before rows were drawn in lanes: each row's
    /// `Xoshiro256PlusPlus` from the library, `Exp1` per variate, [`summarise`].
    fn one_row_at_a_time(
        sizes: &[usize],
        rows: usize,
        (seed, first): (u64, u64),
    ) -> Vec<RowSummary> {
        (0..rows)
            .map(|b| {
                let stream = format!("row/{}", first + b as u64);
                let mut rng =
                    Xoshiro256PlusPlus::seed_from_u64(crate::seed::Seed(seed).derive(&stream));
                let mut row = RowSummary { max: Vec::new(), position: Vec::new(), lse: Vec::new() };
                for &n in sizes {
                    let (max, position, lse) =
                        summarise((0..n).map(|_| -> f64 { rng.sample(Exp1) }), 1.0);
                    row.max.push(max);
                    row.position.push(position);
                    row.lse.push(lse);
                }
                row
            })
            .collect()
    }

    #[test]
    fn lanes_match_the_library() {
        // The generator: the library's words, seed by seed, and a step back undoes a step.
        for seed in [0, 1, 42, u64::MAX, 0x9e37_79b9_7f4a_7c15] {
            let (mut ours, mut theirs) =
                (Xoshiro::seed_from_u64(seed), Xoshiro256PlusPlus::seed_from_u64(seed));
            for _ in 0..1000 {
                let before = ours.0;
                assert_eq!(ours.next_u64(), theirs.next_u64(), "seed {seed}");
                let mut back = ours.0;
                Xoshiro::step_back(&mut back);
                assert_eq!(back, before);
            }
        }
        // The table's edges decrease from the tail's start to 0.
        let x = ziggurat_x();
        assert!(x.windows(2).all(|w| w[0] > w[1]) && x[256] == 0.0, "{x:?}");
        // The draw: 250 rows (groups of 4 and padded ones) over classes of 1 to 5,000 instances,
        // 1.36M variates, about 30,000 of them off the fast path (2.2%: every word of the last
        // layer, and words past a layer's inner edge), bit for bit the one-row-at-a-time draw on 1 and 3 threads.
        let sizes = [5000, 1, 2, 3, 17, 400, 5];
        let want = one_row_at_a_time(&sizes, 250, (11, 3));
        for threads in [1, 3] {
            assert!(summaries(&sizes, 250, (11, 3), 1.0, NoiseDraw::Exact, threads) == want);
        }
    }

    #[test]
    fn rows_do_not_depend_on_the_thread_count() {
        let one = summaries(&[50, 7, 3], 9, (42, 100), 1.0, NoiseDraw::Exact, 1);
        let three = summaries(&[50, 7, 3], 9, (42, 100), 1.0, NoiseDraw::Exact, 3);
        assert_eq!(one, three);
        assert_eq!(one.len(), 9);
        assert_ne!(one[0], one[1]);
    }

    #[test]
    fn the_largest_noise_lands_uniformly_within_a_class() {
        // 4,000 rows over one class of 4: each position wins 1/4 of the time; the standard error
        // is 0.0068, the tolerance 0.03 about four of them.
        let rows = summaries(&[4], 4000, (7, 0), 1.0, NoiseDraw::Exact, 2);
        let mut hits = [0usize; 4];
        for r in &rows {
            hits[r.position[0]] += 1;
        }
        for h in hits {
            assert!((h as f64 / 4000.0 - 0.25).abs() < 0.03, "{hits:?}");
        }
    }

    #[test]
    fn scaled_e1_matches_mpmath() {
        // mpmath 1.3 at 30 digits: exp(a) * e1(a), equal to quad(exp(-x) / (a + x), [0, inf]).
        for (a, want) in [
            (1e-6, 13.238_309_131_365_003),
            (0.003, 5.250_653_432_880_074),
            (0.1, 2.014_642_544_708_451_6),
            (0.5, 0.922_910_632_483_730_5),
            (1.0, 0.596_347_362_323_194_1),
            (1.000_000_1, 0.596_347_321_957_933_3),
            (2.5, 0.303_525_836_485_984_1),
            (10.0, 0.091_563_333_939_788_08),
            (50.0, 0.019_615_109_930_114_87),
        ] {
            let got = scaled_e1(a);
            assert!(((got - want) / want).abs() < 1e-13, "a = {a}: {got} vs {want}");
        }
    }

    #[test]
    fn reciprocal_moments_match_mpmath_and_simulation() {
        // mpmath 1.3 at 30 digits, from quadratures of exp(-x) / (a + x)^k over [0, inf], k = 1,
        // 2, 3: mean, variance, third central moment (negative at a = 2.5).
        for (a, mean, variance, third) in [
            (0.003, 5.250_653_432_880_074, 300.513_318_428_237_95, 50_513.083_192_054_7),
            (0.1, 2.014_642_544_708_451_6, 3.926_572_872_342_202, 14.098_398_881_181_714),
            (0.5, 0.922_910_632_483_730_5, 0.225_325_331_964_750_1, 0.051_487_797_549_535_58),
            (
                2.5,
                0.303_525_836_485_984_1,
                0.004_346_230_099_499_545,
                -0.000_157_869_189_907_556_23,
            ),
        ] {
            let (m, v, t) = reciprocal_moments(a);
            assert!(((m - mean) / mean).abs() < 1e-13, "a = {a}: mean {m}");
            assert!(((v - variance) / variance).abs() < 1e-11, "a = {a}: variance {v}");
            assert!(((t - third) / third).abs() < 1e-8, "a = {a}: third moment {t}");
        }
        // Sums of 1 / (a + X) over 200 draws, 20,000 times, at a = 0.01, against the shifted
        // gamma with the moments of such a sum: the two samples have the same distribution
        // (two-sample Kolmogorov-Smirnov distance below its 0.1% critical value 0.0195).
        let shift = 0.01;
        let (mean, variance, third) = reciprocal_moments(shift);
        let mut rng = Xoshiro256PlusPlus::seed_from_u64(3);
        let direct: Vec<f64> = (0..20_000)
            .map(|_| (0..200).map(|_| 1.0 / (shift + rng.sample::<f64, _>(Exp1))).sum())
            .collect();
        let distance_to = |other: Vec<f64>| ks_distance(&direct, &other);
        let (sum_mean, sum_variance) = (200.0 * mean, 200.0 * variance);
        let gamma: Vec<f64> = (0..20_000)
            .map(|_| three_moment_draw(&mut rng, sum_mean, sum_variance, 200.0 * third))
            .collect();
        let distance = distance_to(gamma);
        assert!(distance < 0.0195, "KS distance {distance}");
        // A normal with the same mean and variance is told apart: the gamma adds the sum's
        // skewness, third / sqrt(200 variance^3), 0.39 here.
        let normal: Vec<f64> = (0..20_000)
            .map(|_| sum_mean + sum_variance.sqrt() * rng.sample::<f64, _>(StandardNormal))
            .collect();
        let distance = distance_to(normal);
        assert!(distance > 0.0195, "KS distance {distance}");
    }

    #[test]
    fn order_statistics_draws_small_classes_exactly_and_large_ones_uniformly() {
        // Classes of at most 2 TOP instances take the exact path, on the same generator.
        let small = [2 * TOP, 5, 1];
        assert_eq!(
            summaries(&small, 6, (5, 0), 1.0, NoiseDraw::Exact, 2),
            summaries(&small, 6, (5, 0), 1.0, NoiseDraw::OrderStatistics, 2)
        );
        // A class of 1,000: the position is uniform (deciles within 0.012 of 0.1, about three
        // standard errors at 6,000 rows) and the largest value's mean is ln 1000 + Euler's
        // constant (standard error 1.28 / sqrt(6000) = 0.017).
        let rows = summaries(&[1000], 6000, (9, 0), 1.0, NoiseDraw::OrderStatistics, 2);
        let mut deciles = [0usize; 10];
        for r in &rows {
            deciles[r.position[0] / 100] += 1;
        }
        for d in deciles {
            assert!((d as f64 / 6000.0 - 0.1).abs() < 0.012, "{deciles:?}");
        }
        let mean = rows.iter().map(|r| r.max[0]).sum::<f64>() / 6000.0;
        assert!((mean - (1000f64.ln() + 0.577_215_664_9)).abs() < 0.07, "{mean}");
        assert!(rows.iter().all(|r| r.lse[0].is_finite() && r.lse[0] >= r.max[0]));
        // Rows do not depend on the thread count.
        let sizes = [1000, 40, 3];
        assert_eq!(
            summaries(&sizes, 7, (2, 9), 1.0, NoiseDraw::OrderStatistics, 1),
            summaries(&sizes, 7, (2, 9), 1.0, NoiseDraw::OrderStatistics, 3)
        );
    }
}

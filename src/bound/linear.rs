//! Linear softmax regression in plain f64, and seeded Gaussian mixtures with a shared identity
//! covariance, whose Bayes posterior is a softmax of linear functions known in closed form.
//!
//! The theory checks train many small convex models for up to 125,000 steps; plain Rust keeps
//! them fast and bit-reproducible on any machine and thread count. A unit test checks the
//! gradient against libtorch's autograd of the harness's own Balanced Softmax loss.

use rand::Rng;
use rand_chacha::ChaCha8Rng;
use rand_distr::StandardNormal;

/// Points `x` (`n x d`, row-major) with labels `y`.
#[derive(Clone, Debug, Default)]
pub struct Points {
    /// Dimension of each point (the row length of `x`).
    pub d: usize,
    /// Coordinates, row-major.
    pub x: Vec<f64>,
    /// Class of each point, in `0..k` for `k` classes; its length is the number of points.
    pub y: Vec<usize>,
}

impl Points {
    /// Number of points.
    #[must_use]
    pub fn len(&self) -> usize {
        self.y.len()
    }

    /// Whether there are none.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.y.is_empty()
    }

    /// Coordinates of point `i` (`d` values); panics if `i >= len()`.
    #[must_use]
    pub fn row(&self, i: usize) -> &[f64] {
        &self.x[i * self.d..(i + 1) * self.d]
    }

    /// Indices of each class's points.
    #[must_use]
    pub fn by_class(&self, k: usize) -> Vec<Vec<usize>> {
        let mut out = vec![Vec::new(); k];
        for (i, &y) in self.y.iter().enumerate() {
            out[y].push(i);
        }
        out
    }
}

/// A mixture of `k` Gaussians `N(mu_j, I)`.
#[derive(Clone, Debug)]
pub struct Mixture {
    /// Class means `mu_j`: one vector of dimension `d` per class (`k` vectors).
    pub means: Vec<Vec<f64>>,
}

impl Mixture {
    /// `k` means evenly spaced on a circle of `radius` in the first two of `d` dimensions.
    #[must_use]
    pub fn on_circle(k: usize, d: usize, radius: f64) -> Mixture {
        let means = (0..k)
            .map(|j| {
                let angle = 2.0 * std::f64::consts::PI * j as f64 / k as f64;
                let mut m = vec![0.0; d];
                m[0] = radius * angle.cos();
                m[1] = radius * angle.sin();
                m
            })
            .collect();
        Mixture { means }
    }

    /// Number of classes.
    #[must_use]
    pub fn k(&self) -> usize {
        self.means.len()
    }

    /// `counts[j]` points of class `j`, class by class.
    pub fn sample(&self, counts: &[usize], rng: &mut ChaCha8Rng) -> Points {
        let d = self.means[0].len();
        let mut points = Points { d, ..Points::default() };
        for (j, &n) in counts.iter().enumerate() {
            for _ in 0..n {
                points
                    .x
                    .extend(self.means[j].iter().map(|m| m + rng.sample::<f64, _>(StandardNormal)));
                points.y.push(j);
            }
        }
        points
    }

    /// The Bayes posterior's logits under class priors proportional to `prior` (none: uniform):
    /// `mu_j . x - |mu_j|^2 / 2 + log prior_j`.
    #[must_use]
    pub fn bayes_logits(&self, x: &[f64], prior: Option<&[usize]>) -> Vec<f64> {
        self.means
            .iter()
            .enumerate()
            .map(|(j, m)| {
                let dot: f64 = m.iter().zip(x).map(|(a, b)| a * b).sum();
                let norm: f64 = m.iter().map(|a| a * a).sum();
                let log_prior = prior.map_or(0.0, |p| (p[j] as f64).ln());
                dot - norm / 2.0 + log_prior
            })
            .collect()
    }
}

/// `log softmax(z)`.
#[must_use]
pub fn log_softmax(z: &[f64]) -> Vec<f64> {
    let max = z.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    let lse = max + z.iter().map(|v| (v - max).exp()).sum::<f64>().ln();
    z.iter().map(|v| v - lse).collect()
}

/// `KL(p || q)` from log-probabilities.
#[must_use]
pub fn kl(log_p: &[f64], log_q: &[f64]) -> f64 {
    log_p.iter().zip(log_q).map(|(lp, lq)| lp.exp() * (lp - lq)).sum()
}

/// A linear classifier `eta = W x + b` (`W` is `k x d`, row-major).
#[derive(Clone, Debug, PartialEq)]
pub struct Linear {
    /// Number of classes: the rows of `w` and the length of `b`.
    pub k: usize,
    /// Input dimension.
    pub d: usize,
    /// Weights, `k x d` row-major.
    pub w: Vec<f64>,
    /// One bias per class (length `k`).
    pub b: Vec<f64>,
}

/// How a training loss treats the logits and the samples.
#[derive(Clone, Debug, Default)]
pub struct Objective {
    /// Added to logit `j` inside the loss (Balanced Softmax: `q log n_j`); empty: none.
    pub shift: Vec<f64>,
}

impl Objective {
    /// Balanced Softmax with exponent `q` for training counts `counts` (q = 0: Softmax).
    #[must_use]
    pub fn balanced(counts: &[usize], q: f64) -> Objective {
        let shift = counts.iter().map(|&n| q * (n as f64).ln()).collect();
        Objective { shift }
    }
}

impl Linear {
    /// All zeros.
    #[must_use]
    pub fn zeros(k: usize, d: usize) -> Linear {
        Linear { k, d, w: vec![0.0; k * d], b: vec![0.0; k] }
    }

    /// The `k` logits `W x + b` of one point `x` (length `d`).
    #[must_use]
    pub fn logits(&self, x: &[f64]) -> Vec<f64> {
        (0..self.k)
            .map(|j| {
                self.b[j]
                    + self.w[j * self.d..(j + 1) * self.d]
                        .iter()
                        .zip(x)
                        .map(|(w, v)| w * v)
                        .sum::<f64>()
            })
            .collect()
    }

    /// Mean loss of `objective` over the rows `rows` of `points`, and its gradient (`w`, `b`).
    #[must_use]
    pub fn loss_and_gradient(
        &self,
        points: &Points,
        rows: &[usize],
        objective: &Objective,
    ) -> (f64, Vec<f64>, Vec<f64>) {
        let (mut gw, mut gb) = (vec![0.0; self.k * self.d], vec![0.0; self.k]);
        let mut loss = 0.0;
        for &i in rows {
            let x = points.row(i);
            let mut z = self.logits(x);
            for (zj, s) in z.iter_mut().zip(&objective.shift) {
                *zj += s;
            }
            let log_p = log_softmax(&z);
            loss -= log_p[points.y[i]];
            for j in 0..self.k {
                let g = log_p[j].exp() - f64::from(u8::from(j == points.y[i]));
                gb[j] += g;
                for (gwj, v) in gw[j * self.d..(j + 1) * self.d].iter_mut().zip(x) {
                    *gwj += g * v;
                }
            }
        }
        let scale = 1.0 / rows.len() as f64;
        gw.iter_mut().chain(gb.iter_mut()).for_each(|g| *g *= scale);
        (loss * scale, gw, gb)
    }

    /// One gradient step of size `lr`; returns the loss before it and the gradient's norm.
    pub fn step(
        &mut self,
        points: &Points,
        rows: &[usize],
        objective: &Objective,
        lr: f64,
    ) -> (f64, f64) {
        let (loss, gw, gb) = self.loss_and_gradient(points, rows, objective);
        let norm = gw.iter().chain(&gb).map(|g| g * g).sum::<f64>().sqrt();
        self.w.iter_mut().zip(&gw).for_each(|(w, g)| *w -= lr * g);
        self.b.iter_mut().zip(&gb).for_each(|(b, g)| *b -= lr * g);
        (loss, norm)
    }

    /// Full-batch gradient descent from zeros: `iterations` steps of size `lr`. Returns the
    /// model and the final gradient norm.
    #[must_use]
    pub fn fit(
        points: &Points,
        k: usize,
        objective: &Objective,
        lr: f64,
        iterations: usize,
    ) -> (Linear, f64) {
        let rows: Vec<usize> = (0..points.len()).collect();
        let mut model = Linear::zeros(k, points.d);
        let mut norm = f64::INFINITY;
        for _ in 0..iterations {
            norm = model.step(points, &rows, objective, lr).1;
        }
        (model, norm)
    }

    /// Top-1 accuracy on `points` (argmax of the raw logits).
    #[must_use]
    pub fn accuracy(&self, points: &Points) -> f64 {
        let hits = (0..points.len())
            .filter(|&i| argmax(&self.logits(points.row(i))) == points.y[i])
            .count();
        hits as f64 / points.len() as f64
    }
}

/// Least-squares slope of `y` on `x`, and the fit's R^2 (1 when `y` is constant).
#[must_use]
pub fn least_squares(x: &[f64], y: &[f64]) -> (f64, f64) {
    let n = x.len() as f64;
    let (mx, my) = (x.iter().sum::<f64>() / n, y.iter().sum::<f64>() / n);
    let sxy: f64 = x.iter().zip(y).map(|(a, b)| (a - mx) * (b - my)).sum();
    let sxx: f64 = x.iter().map(|a| (a - mx).powi(2)).sum();
    let syy: f64 = y.iter().map(|b| (b - my).powi(2)).sum();
    (sxy / sxx, if syy > 0.0 { sxy * sxy / (sxx * syy) } else { 1.0 })
}

/// Index of the largest value (the first on ties).
#[must_use]
pub fn argmax(z: &[f64]) -> usize {
    let mut best = 0;
    for (i, v) in z.iter().enumerate() {
        if *v > z[best] {
            best = i;
        }
    }
    best
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::loss::{BuildContext, LossSpec};
    use rand::SeedableRng;
    use tch::{Device, Kind, Tensor};

    #[test]
    fn gradient_matches_autograd_of_the_harness_balanced_softmax() {
        let mixture = Mixture::on_circle(3, 2, 1.5);
        let counts = [40, 9, 3];
        let points = mixture.sample(&counts, &mut ChaCha8Rng::seed_from_u64(7));
        let mut model = Linear::zeros(3, 2);
        model.w = vec![0.3, -0.2, 0.1, 0.5, -0.4, 0.2];
        model.b = vec![0.1, 0.0, -0.1];
        let rows: Vec<usize> = (0..points.len()).collect();
        let (loss, gw, gb) =
            model.loss_and_gradient(&points, &rows, &Objective::balanced(&counts, 1.0));

        let x = Tensor::from_slice(&points.x).view([-1, 2]);
        let y = Tensor::from_slice(
            &points.y.iter().map(|&v| i64::try_from(v).unwrap()).collect::<Vec<_>>(),
        );
        let w = Tensor::from_slice(&model.w).view([3, 2]).set_requires_grad(true);
        let b = Tensor::from_slice(&model.b).set_requires_grad(true);
        let context = BuildContext::new(counts.to_vec(), Device::Cpu);
        let harness = LossSpec::BalancedSoftmax { exponent: 1.0 }.build(&context).unwrap();
        let value = harness.forward(&(x.matmul(&w.tr()) + &b), &y);
        value.backward();
        assert!((value.double_value(&[]) - loss).abs() < 1e-12);
        let close = |t: &Tensor, v: &[f64]| {
            t.to_kind(Kind::Double).allclose(
                &Tensor::from_slice(v).view(t.size().as_slice()),
                1e-10,
                1e-12,
                false,
            )
        };
        assert!(close(&w.grad(), &gw));
        assert!(close(&b.grad(), &gb));
    }

    #[test]
    fn bayes_logits_are_the_exact_posterior() {
        // Two classes at +-1 on a line: p(1|x) = sigmoid(2x) under equal priors.
        let mixture = Mixture { means: vec![vec![-1.0], vec![1.0]] };
        let lp = log_softmax(&mixture.bayes_logits(&[0.3], None));
        assert!((lp[1].exp() - 1.0 / (1.0 + (-0.6f64).exp())).abs() < 1e-12);
        let shifted = log_softmax(&mixture.bayes_logits(&[0.3], Some(&[1, 3])));
        assert!((shifted[1].exp() - 1.0 / (1.0 + (-0.6 - 3f64.ln()).exp())).abs() < 1e-12);
        assert!(kl(&lp, &lp).abs() < 1e-15 && kl(&lp, &shifted) > 0.0);
    }
}

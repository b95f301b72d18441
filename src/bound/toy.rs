//! Check 4, the toy of Figure 5: two dimensions, three classes of 10,000 / 100 / 1 samples;
//! decision regions of Softmax, Softmax + CBS, Balanced Softmax and Balanced Softmax + CBS after
//! 1,000 / 5,000 / 25,000 / 125,000 iterations.
//!
//! The paper gives no model or optimiser for the toy; here: a linear classifier (so each region is
//! a convex polygon, computed exactly by clipping the plotted square), SGD with batch 64 and a
//! constant learning rate of 0.05 from zeros, classes `N(mu_j, I)` with means on a circle of radius
//! 2. Instance sampling draws rows uniformly; CBS draws a class uniformly, then a row of it. The
//! summary is each region's share of the square [-6, 6]^2, beside the balanced Bayes rule's
//! (equal priors: the Voronoi cells of the means).

use rand::Rng;
use rand_chacha::ChaCha8Rng;

use super::linear::{Linear, Mixture, Objective, Points};
use super::Verdict;
use crate::seed::Seed;

/// Samples per class.
pub const COUNTS: [usize; 3] = [10_000, 100, 1];
/// Iterations after which the regions are recorded.
pub const CHECKPOINTS: [usize; 4] = [1_000, 5_000, 25_000, 125_000];
const BATCH: usize = 64;
const LR: f64 = 0.05;
const RADIUS: f64 = 2.0;
/// Half-width of the plotted square.
const HALF: f64 = 6.0;

/// The four trainings.
const METHODS: [(&str, f64, bool); 4] = [
    ("Softmax", 0.0, false),
    ("Softmax + CBS", 0.0, true),
    ("Balanced Softmax", 1.0, false),
    ("Balanced Softmax + CBS", 1.0, true),
];

/// A method's models at each checkpoint.
struct Trajectory {
    name: &'static str,
    models: Vec<Linear>,
}

fn train(points: &Points, q: f64, cbs: bool, rng: &mut ChaCha8Rng) -> Vec<Linear> {
    let objective = Objective::balanced(&COUNTS, q);
    let members = points.by_class(COUNTS.len());
    let mut model = Linear::zeros(COUNTS.len(), 2);
    let mut out = Vec::new();
    let mut rows = vec![0; BATCH];
    for iteration in 1..=CHECKPOINTS[CHECKPOINTS.len() - 1] {
        for row in &mut rows {
            *row = if cbs {
                let class = &members[rng.gen_range(0..members.len())];
                class[rng.gen_range(0..class.len())]
            } else {
                rng.gen_range(0..points.len())
            };
        }
        model.step(points, &rows, &objective, LR);
        if CHECKPOINTS.contains(&iteration) {
            out.push(model.clone());
        }
    }
    out
}

/// The region of class `c` of `model` inside the square, as a polygon.
fn region(model: &Linear, c: usize) -> Vec<(f64, f64)> {
    let mut polygon = vec![(-HALF, -HALF), (HALF, -HALF), (HALF, HALF), (-HALF, HALF)];
    for j in (0..model.k).filter(|&j| j != c) {
        // eta_c - eta_j = a x + b y + e >= 0.
        let (a, b) = (model.w[2 * c] - model.w[2 * j], model.w[2 * c + 1] - model.w[2 * j + 1]);
        let e = model.b[c] - model.b[j];
        polygon = clip(&polygon, |(x, y)| a * x + b * y + e);
    }
    polygon
}

/// Sutherland-Hodgman: the part of `polygon` where `f >= 0` (`f` affine).
fn clip(polygon: &[(f64, f64)], f: impl Fn((f64, f64)) -> f64) -> Vec<(f64, f64)> {
    let mut out = Vec::new();
    for (i, &p) in polygon.iter().enumerate() {
        let q = polygon[(i + 1) % polygon.len()];
        let (fp, fq) = (f(p), f(q));
        if fp >= 0.0 {
            out.push(p);
        }
        if (fp >= 0.0) != (fq >= 0.0) {
            let t = fp / (fp - fq);
            out.push((p.0 + t * (q.0 - p.0), p.1 + t * (q.1 - p.1)));
        }
    }
    out
}

/// Shoelace area.
fn area(polygon: &[(f64, f64)]) -> f64 {
    (0..polygon.len())
        .map(|i| {
            let (p, q) = (polygon[i], polygon[(i + 1) % polygon.len()]);
            p.0 * q.1 - q.0 * p.1
        })
        .sum::<f64>()
        .abs()
        / 2.0
}

/// Each class's share of the square.
fn shares(model: &Linear) -> Vec<f64> {
    (0..model.k).map(|c| area(&region(model, c)) / (2.0 * HALF).powi(2)).collect()
}

/// The balanced Bayes rule as a linear model.
fn bayes(mixture: &Mixture) -> Linear {
    let mut model = Linear::zeros(mixture.k(), 2);
    for (j, m) in mixture.means.iter().enumerate() {
        model.w[2 * j] = m[0];
        model.w[2 * j + 1] = m[1];
        model.b[j] = -(m[0] * m[0] + m[1] * m[1]) / 2.0;
    }
    model
}

/// Runs the toy for `seed`: the rendered summary, the verdicts and the SVG figure.
#[must_use]
pub fn run(seed: Seed) -> (String, Vec<Verdict>, String) {
    use std::fmt::Write as _;
    let mixture = Mixture::on_circle(3, 2, RADIUS);
    let points = mixture.sample(&COUNTS, &mut seed.rng("theory/toy/data"));
    let trajectories: Vec<Trajectory> = METHODS
        .iter()
        .map(|&(name, q, cbs)| Trajectory {
            name,
            models: train(&points, q, cbs, &mut seed.rng(&format!("theory/toy/{name}"))),
        })
        .collect();
    let reference = shares(&bayes(&mixture));
    let mut out = format!(
        "## 4. The toy of Figure 5\n\nThree classes N(mu_j, I), means on a circle of radius \
         {RADIUS}, {} / {} / {} training samples (seed {seed}); a linear classifier trained by SGD \
         (batch {BATCH}, learning rate {LR}, from zeros). Share of the square [-{HALF}, {HALF}]^2 \
         predicted as each class (head / medium / one-sample class); the balanced Bayes rule gives \
         {}. Figure: [toy.svg](toy.svg).\n\n**Prediction** (Figure 5): Softmax leaves the rare \
         classes too little room; Balanced Softmax + CBS gives them too much (over-balance).\n\n\
         | method | {} |\n|---|{}\n",
        COUNTS[0],
        COUNTS[1],
        COUNTS[2],
        fmt_shares(&reference),
        CHECKPOINTS.iter().map(|c| format!("{c} iterations")).collect::<Vec<_>>().join(" | "),
        "---|".repeat(CHECKPOINTS.len())
    );
    let mut final_tail = Vec::new();
    for t in &trajectories {
        let cells: Vec<String> = t.models.iter().map(|m| fmt_shares(&shares(m))).collect();
        let _ = writeln!(out, "| {} | {} |", t.name, cells.join(" | "));
        final_tail.push(shares(t.models.last().expect("checkpoints"))[2]);
    }
    out.push('\n');
    let (softmax, bs_cbs) = (final_tail[0], final_tail[3]);
    let verdicts = vec![
        Verdict {
            check: "Figure 5: Softmax starves the one-sample class".to_string(),
            predicted: format!("Softmax's share for it below the balanced Bayes rule's ({:.3})", reference[2]),
            measured: format!("{softmax:.3} after {} iterations", CHECKPOINTS[3]),
            agree: softmax < reference[2],
        },
        Verdict {
            check: "Figure 5: Balanced Softmax + CBS over-balances".to_string(),
            predicted: format!(
                "its share for the one-sample class above the Bayes rule's ({:.3}) and the largest of the four",
                reference[2]
            ),
            measured: format!(
                "{bs_cbs:.3} (others {})",
                final_tail[..3].iter().map(|v| format!("{v:.3}")).collect::<Vec<_>>().join(", ")
            ),
            agree: bs_cbs > reference[2] && final_tail[..3].iter().all(|&v| v < bs_cbs),
        },
    ];
    (out, verdicts, figure(&points, &trajectories, &mixture))
}

fn fmt_shares(s: &[f64]) -> String {
    s.iter().map(|v| format!("{v:.3}")).collect::<Vec<_>>().join(" / ")
}

/// The SVG: one row per method, one column per checkpoint, plus the Bayes rule.
fn figure(points: &Points, trajectories: &[Trajectory], mixture: &Mixture) -> String {
    use std::fmt::Write as _;
    const PANEL: f64 = 180.0;
    const GAP: f64 = 20.0;
    const LEFT: f64 = 175.0;
    const TOP: f64 = 30.0;
    const FILL: [&str; 3] = ["#c6dbef", "#fdd0a2", "#c7e9c0"];
    const DOT: [&str; 3] = ["#2171b5", "#d94801", "#238b45"];
    let columns = CHECKPOINTS.len() + 1;
    let width = LEFT + columns as f64 * (PANEL + GAP);
    let height = TOP + trajectories.len() as f64 * (PANEL + GAP);
    let mut svg = format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{width}\" height=\"{height}\" font-family=\"sans-serif\" font-size=\"12\">\n<rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n"
    );
    let scale = PANEL / (2.0 * HALF);
    let to_px =
        |(x, y): (f64, f64), ox: f64, oy: f64| (ox + (x + HALF) * scale, oy + (HALF - y) * scale);
    let bayes_model = bayes(mixture);
    for (row, t) in trajectories.iter().enumerate() {
        let oy = TOP + row as f64 * (PANEL + GAP);
        let _ = writeln!(svg, "<text x=\"5\" y=\"{:.1}\">{}</text>", oy + PANEL / 2.0, t.name);
        let panels = t.models.iter().chain(std::iter::once(&bayes_model));
        for (col, model) in panels.enumerate() {
            let ox = LEFT + col as f64 * (PANEL + GAP);
            if row == 0 {
                let title = CHECKPOINTS.get(col).map_or_else(
                    || "balanced Bayes rule".to_string(),
                    |c| format!("{c} iterations"),
                );
                let _ = writeln!(svg, "<text x=\"{ox:.1}\" y=\"{:.1}\">{title}</text>", TOP - 10.0);
            }
            for (c, fill) in FILL.iter().enumerate().take(model.k) {
                let poly = region(model, c);
                if poly.len() < 3 {
                    continue;
                }
                let path: Vec<String> = poly
                    .iter()
                    .map(|&p| {
                        let (x, y) = to_px(p, ox, oy);
                        format!("{x:.1},{y:.1}")
                    })
                    .collect();
                let _ = writeln!(
                    svg,
                    "<polygon points=\"{}\" fill=\"{}\" stroke=\"#444\" stroke-width=\"0.5\"/>",
                    path.join(" "),
                    fill
                );
            }
            // Every tail point and a fixed thinning of the head (1 in 50).
            for i in (0..points.len()).filter(|&i| points.y[i] != 0 || i % 50 == 0) {
                let p = points.row(i);
                let (x, y) = to_px((p[0], p[1]), ox, oy);
                let r = if points.y[i] == 2 { 4.0 } else { 1.5 };
                let _ = writeln!(
                    svg,
                    "<circle cx=\"{x:.1}\" cy=\"{y:.1}\" r=\"{r}\" fill=\"{}\"/>",
                    DOT[points.y[i]]
                );
            }
        }
    }
    svg.push_str("</svg>\n");
    svg
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn regions_tile_the_square() {
        let mixture = Mixture::on_circle(3, 2, RADIUS);
        let s = shares(&bayes(&mixture));
        assert!((s.iter().sum::<f64>() - 1.0).abs() < 1e-12);
        // Means at 0, 120 and 240 degrees: the two cells mirrored in the x-axis are equal, and
        // the head's cell is the larger one, as the square is wider than the triangle's cells.
        assert!((s[1] - s[2]).abs() < 1e-9 && s[0] > s[1], "{s:?}");
        // By hand: the Voronoi boundaries are the rays at 60, 180 and 300 degrees. The ray at
        // 180 degrees halves the left half; the 60-degree ray leaves class 1 the part of the
        // upper half left of it: 6 * 6 (upper-left quarter) + the triangle between the y-axis
        // and the ray, 6 * (6 / tan 60) / 2.
        let upper = 36.0 + 6.0 * (6.0 / 3f64.sqrt()) / 2.0;
        assert!((s[1] - upper / 144.0).abs() < 1e-9, "{s:?}");
        let mut tilted = bayes(&mixture);
        tilted.b[0] += 2.0;
        let t = shares(&tilted);
        assert!((t.iter().sum::<f64>() - 1.0).abs() < 1e-12 && t[0] > s[0] + 0.05, "{t:?}");
    }
}

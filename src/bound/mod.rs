//! `balms theory`: numerical checks of the paper's theory (§3.1-3.2, App. A), each stating what
//! the paper predicts, what was measured and whether they agree.
//!
//! 1. [`label_shift`]: Theorem 1 on a Gaussian mixture whose Bayes posterior is known exactly.
//! 2. [`margins`]: Theorem 2 / Corollary 2.1, learned per-class margins against the optimal
//!    `n_j^(-1/4)` shape and the bound's value.
//! 3. [`overbalance`]: Eqns 11-12, the `1/n` against `1/n^2` effective class weights.
//! 4. [`toy`]: Figure 5's decision regions, with an SVG figure.
//!
//! Everything is plain f64 arithmetic on seeded data ([`linear`]), so the outputs are identical
//! on every machine for the same seeds, and `paper/theory/` is checked like the tables.

pub mod label_shift;
pub mod linear;
pub mod margins;
pub mod overbalance;
pub mod toy;

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use clap::ValueEnum;

use crate::seed::Seed;

/// One check's conclusion.
#[derive(Clone, Debug, PartialEq)]
pub struct Verdict {
    /// What was checked.
    pub check: String,
    /// What the paper predicts.
    pub predicted: String,
    /// What was measured.
    pub measured: String,
    /// Whether they agree.
    pub agree: bool,
}

/// A check, as named on the command line.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Check {
    /// Theorem 1 (label shift).
    LabelShift,
    /// Theorem 2 and Corollary 2.1 (margins and the bound).
    Margins,
    /// Eqns 11-12 (over-balance).
    OverBalance,
    /// Figure 5 (the 2-d toy).
    Toy,
}

impl Check {
    /// All checks, in order.
    pub const ALL: [Check; 4] = [Check::LabelShift, Check::Margins, Check::OverBalance, Check::Toy];

    /// File stem under the output folder.
    #[must_use]
    pub fn stem(self) -> &'static str {
        match self {
            Check::LabelShift => "label-shift",
            Check::Margins => "margins",
            Check::OverBalance => "over-balance",
            Check::Toy => "toy",
        }
    }
}

/// Mean and standard error (the sample standard deviation over sqrt(n)), as the reporter's
/// [`Sample`](crate::report::estimate::Sample) computes them.
///
/// # Panics
/// With fewer than two values (the CLI refuses fewer than two seeds).
#[must_use]
pub fn mean_and_se(values: &[f64]) -> (f64, f64) {
    let sample = crate::report::estimate::Sample::new(values.to_vec())
        .expect("a standard error needs at least two finite values");
    let n = values.len() as f64;
    (sample.mean(), sample.std_dev() / n.sqrt())
}

/// Runs `checks` for `seeds` (the toy uses the first), writes `<stem>.md` per check (and
/// `toy.svg`) under `out`, and `summary.md` when every check ran; returns the summary.
///
/// # Errors
/// Fewer than two seeds, or a file that cannot be written.
pub fn run(checks: &[Check], seeds: &[Seed], out: &Path) -> anyhow::Result<(String, Vec<PathBuf>)> {
    anyhow::ensure!(
        seeds.len() >= 2,
        "the theory checks need at least two seeds (for standard errors)"
    );
    let mut verdicts = Vec::new();
    let mut written = Vec::new();
    let mut write = |name: String, text: &str| -> anyhow::Result<()> {
        let path = out.join(name);
        crate::store::write_atomic(&path, text.as_bytes())?;
        written.push(path);
        Ok(())
    };
    for &check in checks {
        let (text, found) = match check {
            Check::LabelShift => label_shift::run(seeds),
            Check::Margins => margins::run(seeds),
            Check::OverBalance => overbalance::run(seeds),
            Check::Toy => {
                let (text, found, svg) = toy::run(seeds[0]);
                write("toy.svg".to_string(), &svg)?;
                (text, found)
            }
        };
        write(format!("{}.md", check.stem()), &format!("{text}{}", render_verdicts(&found)))?;
        verdicts.extend(found);
    }
    let summary = format!(
        "# The paper's theory, checked numerically\n\n`balms theory` (seeds {}); details in the \
         files beside this one.\n\n{}",
        seeds.iter().map(ToString::to_string).collect::<Vec<_>>().join(", "),
        render_verdicts(&verdicts)
    );
    // A partial run leaves the summary of the full one alone.
    if Check::ALL.iter().all(|c| checks.contains(c)) {
        write("summary.md".to_string(), &summary)?;
    }
    Ok((summary, written))
}

/// `verdicts` as a Markdown table (check, the paper predicts, measured, agrees), a disagreement
/// shown as a bold `no`.
#[must_use]
pub fn render_verdicts(verdicts: &[Verdict]) -> String {
    let mut out =
        String::from("| check | the paper predicts | measured | agrees |\n|---|---|---|---|\n");
    for v in verdicts {
        let _ = writeln!(
            out,
            "| {} | {} | {} | {} |",
            v.check,
            v.predicted,
            v.measured,
            if v.agree { "yes" } else { "**no**" }
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn standard_error_of_known_values() {
        let (m, se) = mean_and_se(&[1.0, 2.0, 3.0, 4.0]);
        assert!((m - 2.5).abs() < 1e-15);
        assert!((se - (5.0f64 / 3.0 / 4.0).sqrt()).abs() < 1e-15);
    }
}

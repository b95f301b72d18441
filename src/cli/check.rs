//! `balms check`: rerun matrices from scratch and compare every run with the stored results.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;

use super::run::{held_elsewhere, interrupted, run_matrix, RunArgs};
use crate::matrix::Plan;
use crate::report::compare;
use crate::runner::interrupt;
use crate::store::Store;

/// Arguments of `balms check`.
#[derive(Debug, clap::Args)]
pub struct CheckArgs {
    /// Matrix files.
    #[arg(required = true)]
    files: Vec<PathBuf>,
    /// Allowed top-1 difference per run, in percentage points (default: records must be
    /// identical, as on the machine kind and thread count that made them).
    #[arg(long)]
    tolerance: Option<f64>,
    /// Scratch folder for the reruns (emptied first).
    #[arg(long, default_value = "scratch/check")]
    scratch: PathBuf,
    /// Run options (`--results` holds the committed results to compare with).
    #[command(flatten)]
    options: RunArgs,
}

/// Reruns each matrix in `--scratch` and compares it with `--results`: exit 1 when any run
/// differs, with a per-run list.
///
/// # Errors
/// A scratch folder that cannot be emptied, a bad matrix file, or a runner failure.
#[expect(clippy::print_stdout, reason = "the command's output")]
pub fn run(args: &CheckArgs) -> anyhow::Result<ExitCode> {
    let scratch = &args.scratch;
    if scratch.exists() {
        std::fs::remove_dir_all(scratch)
            .with_context(|| format!("emptying `{}`", scratch.display()))?;
    }
    interrupt::install()?;
    let options = args.options.options(scratch)?;
    let reference = Store::new(&args.options.results);
    let mut failed = false;
    let mut held = Vec::new();
    for file in &args.files {
        let plan = Plan::load(file)?;
        let summary = run_matrix(&plan, &options)?;
        if let Some(code) = interrupted(&plan, &summary) {
            return Ok(code);
        }
        if summary.busy > 0 {
            // Another process reruns into the same scratch folder: nothing to compare yet.
            held.push((plan.name.clone(), summary.busy));
            continue;
        }
        let differences =
            compare::compare_within(&plan, &options.store, &reference, args.tolerance)?;
        match args.tolerance {
            Some(points) if differences.is_empty() => println!(
                "`{}`: every run matches the committed results within {points} top-1 points",
                plan.name
            ),
            _ => println!("{}", compare::render(&plan.name, &differences)),
        }
        failed |= !differences.is_empty();
    }
    Ok(if failed { ExitCode::FAILURE } else { held_elsewhere(&held) })
}

//! `balms reproduce`: run and report every matrix in a folder whose data is present; name those
//! skipped and why.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context;

use super::run::{held_elsewhere, interrupted, run_matrix, RunArgs};
use crate::matrix::Plan;
use crate::report::compare;
use crate::runner::interrupt;
use crate::store::Store;

/// Arguments of `balms reproduce`.
#[derive(Debug, clap::Args)]
pub struct ReproduceArgs {
    /// Folder of matrix files.
    #[arg(long, default_value = "experiments")]
    experiments: PathBuf,
    /// Output folder of the tables.
    #[arg(long, default_value = "paper")]
    paper: PathBuf,
    /// Recompute everything in this scratch folder and compare with `--results`.
    #[arg(long)]
    scratch: Option<PathBuf>,
    /// Run options.
    #[command(flatten)]
    options: RunArgs,
}

/// Every matrix whose data is present, then its report.
///
/// # Errors
/// An unreadable folder or matrix file, a runner failure, or a report that cannot be written.
#[expect(clippy::print_stdout, reason = "the command's output")]
pub fn run(args: &ReproduceArgs) -> anyhow::Result<ExitCode> {
    let scratch = args.scratch.as_deref();
    let results = scratch.map_or_else(|| args.options.results.clone(), |s| s.join("results"));
    let paper = scratch.map_or_else(|| args.paper.clone(), |s| s.join("paper"));
    interrupt::install()?;
    let options = args.options.options(&results)?;
    let mut skipped = Vec::new();
    let mut held = Vec::new();
    for file in matrix_files(&args.experiments)? {
        let plan = Plan::load(&file)?;
        if let Some(column) = plan.columns.iter().find(|c| c.dataset.is_detection()) {
            // The detectron2 project, its configs, LVIS and COCO, and an interpreter with
            // detectron2, `higher` (the Meta Reweighter's) and the LVIS API.
            let root = options.locator.locate(&column.dataset).ok().flatten();
            let mut missing = crate::runner::detectron2::missing(&plan, root.as_deref());
            let python = crate::runner::external::python(plan.python.as_deref());
            let imports = std::process::Command::new(&python)
                .args(["-c", "import detectron2, higher"])
                .output();
            if !imports.is_ok_and(|o| o.status.success()) {
                missing.push(format!(
                    "detectron2 and higher importable by `{}` (BALMS_PYTHON)",
                    python.display()
                ));
            }
            // Methods with an interpreter of their own (another project's detectron2).
            let own = plan.methods.iter().filter_map(|m| {
                let d = m.external.as_ref()?.detectron2.as_ref()?;
                Some((m, d.python.as_ref()?))
            });
            for (method, python) in own {
                let imports = std::process::Command::new(python)
                    .args(["-c", "import detectron2, lvis"])
                    .output();
                if !imports.is_ok_and(|o| o.status.success()) {
                    missing.push(format!(
                        "detectron2 and lvis importable by `{}` (method `{}`'s interpreter)",
                        python.display(),
                        method.name
                    ));
                }
            }
            if !missing.is_empty() {
                skipped.push(format!(
                    "{} ({}): what is missing: {}",
                    plan.name,
                    file.display(),
                    missing.join("; ")
                ));
                continue;
            }
        }
        if let Some(missing) =
            plan.columns.iter().find_map(|c| options.locator.locate(&c.dataset).err())
        {
            skipped.push(format!("{} ({}): {missing}", plan.name, file.display()));
            continue;
        }
        let needs_python = plan.methods.iter().any(|m| {
            m.external.as_ref().is_some_and(|e| e.command.iter().any(|a| a.contains("{python}")))
        });
        let python = crate::runner::external::python(plan.python.as_deref());
        let runs = std::process::Command::new(&python).arg("--version").output();
        if needs_python && !runs.is_ok_and(|o| o.status.success()) {
            skipped.push(format!(
                "{} ({}): its external methods run `{}`, which is missing (`just bench-setup` makes .venv-ref)",
                plan.name,
                file.display(),
                python.display()
            ));
            continue;
        }
        let summary = run_matrix(&plan, &options)?;
        if let Some(code) = interrupted(&plan, &summary) {
            return Ok(code);
        }
        if summary.busy > 0 {
            held.push((plan.name.clone(), summary.busy));
        }
        let path = crate::report::write_report(&plan, &options.store, &paper)?;
        println!("wrote {}", path.display());
        if scratch.is_some() {
            let committed = Store::new(&args.options.results);
            let differences = compare::compare(&plan, &options.store, &committed)?;
            println!("{}", compare::render(&plan.name, &differences));
        }
    }
    for line in &skipped {
        println!("skipped {line}");
    }
    Ok(held_elsewhere(&held))
}

/// The `.toml` files of `dir`, sorted.
fn matrix_files(dir: &Path) -> anyhow::Result<Vec<PathBuf>> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .with_context(|| format!("cannot read `{}`", dir.display()))?
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|e| e == "toml"))
        .collect();
    files.sort();
    Ok(files)
}

//! `balms plan`: the resolved plan of matrix files, and image-list datasets' class statistics.

use std::fmt::Write as _;
use std::path::PathBuf;
use std::process::ExitCode;

use crate::data::lists::{self, Lists};
use crate::data::DataLocator;
use crate::matrix::Plan;

/// Arguments of `balms plan`.
#[derive(Debug, clap::Args)]
pub struct PlanArgs {
    /// Matrix files.
    #[arg(required = true)]
    files: Vec<PathBuf>,
    /// Data folder (also `BALMS_DATA`), for image-list datasets' class statistics.
    #[arg(long)]
    data_dir: Option<PathBuf>,
    /// The scaled protocol of `balms run --scale F` (every iteration count times F).
    #[arg(long, value_name = "F")]
    scale: Option<f64>,
    /// Also project the matrix's wall time on this machine: each distinct workload is trained
    /// for a few iterations on random data of its dataset's shape through the real training
    /// paths, and every run priced from those timings (`bench::cost`; takes seconds to minutes).
    #[arg(long)]
    cost: bool,
    /// Device the projection is measured on.
    #[arg(long, value_enum, default_value = "auto")]
    device: crate::device::DeviceChoice,
    /// Intra-op CPU threads the projection is measured with (as `balms run --threads`).
    #[arg(long, default_value_t = 2)]
    threads: i32,
}

/// Prints each file's plan, then its image-list statistics.
///
/// # Errors
/// A matrix file that cannot be read or resolved, naming the file and field.
#[expect(clippy::print_stdout, reason = "the command's output")]
pub fn run(args: PlanArgs) -> anyhow::Result<ExitCode> {
    let locator = DataLocator { data_dir: args.data_dir };
    for file in args.files {
        let plan = super::run::load_scaled(&file, args.scale)?;
        print!("{}", plan.render());
        print!("{}", list_statistics(&plan, &locator));
        if args.cost {
            anyhow::ensure!(args.threads >= 1, "`--threads` must be at least 1");
            tch::set_num_threads(args.threads);
            let device = crate::device::resolve(args.device)?;
            print!("{}", crate::bench::cost::project(&plan, device, args.threads)?.render());
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// Class statistics of a plan's image-list datasets, from their train lists where found.
fn list_statistics(plan: &Plan, locator: &DataLocator) -> String {
    let mut out = String::new();
    for column in plan.columns.iter().filter(|c| c.dataset.list().is_some()) {
        let (prefix, _) = column.dataset.list().expect("list");
        let line = match locator.locate(&column.dataset) {
            Ok(Some(dir)) => match Lists::read(&dir, prefix, column.dataset.classes()) {
                Ok(found) => lists::describe(&found, column.dataset.classes()),
                Err(e) => format!("lists unreadable: {e}"),
            },
            Ok(None) => unreachable!("lists are files"),
            Err(_) => format!("lists not found ({})", column.dataset.hint()),
        };
        let _ = writeln!(out, "\n{}: {line}", column.id());
    }
    out
}

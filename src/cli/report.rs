//! `balms report`: aggregate finished runs into tables under the paper folder.

use std::path::PathBuf;
use std::process::ExitCode;

use crate::store::Store;

/// Arguments of `balms report`.
#[derive(Debug, clap::Args)]
pub struct ReportArgs {
    /// Matrix files.
    #[arg(required = true)]
    files: Vec<PathBuf>,
    /// Results folder.
    #[arg(long, default_value = "results")]
    results: PathBuf,
    /// Output folder.
    #[arg(long, default_value = "paper")]
    paper: PathBuf,
    /// The scaled protocol of `balms run --scale F` (every iteration count times F).
    #[arg(long, value_name = "F")]
    scale: Option<f64>,
}

/// Writes each file's report and says where.
///
/// # Errors
/// A bad matrix file, an unreadable record, or a report that cannot be written.
#[expect(clippy::print_stdout, reason = "the command's output")]
pub fn run(args: ReportArgs) -> anyhow::Result<ExitCode> {
    for file in args.files {
        let plan = super::run::load_scaled(&file, args.scale)?;
        let path = crate::report::write_report(&plan, &Store::new(&args.results), &args.paper)?;
        println!("wrote {}", path.display());
    }
    Ok(ExitCode::SUCCESS)
}

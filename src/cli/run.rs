//! `balms run` and its hidden `worker`: train every unfinished run of matrix files; the options
//! shared by every command that trains ([`RunArgs`]).

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use crate::data::DataLocator;
use crate::device::{self, DeviceChoice};
use crate::matrix::Plan;
use crate::runner::{self, RunOptions};
use crate::store::Store;

/// Arguments of `balms run`.
#[derive(Debug, clap::Args)]
pub struct RunCommandArgs {
    /// Matrix files.
    #[arg(required = true)]
    files: Vec<PathBuf>,
    /// Run options.
    #[command(flatten)]
    options: RunArgs,
}

/// Arguments of the hidden `balms worker`.
#[derive(Debug, clap::Args)]
pub struct WorkerArgs {
    /// The matrix file.
    file: PathBuf,
    /// Run options.
    #[command(flatten)]
    options: RunArgs,
}

/// Options of commands that train.
#[derive(Debug, clap::Args)]
pub struct RunArgs {
    /// Results folder.
    #[arg(long, default_value = "results")]
    pub results: PathBuf,
    /// Data folder (then `BALMS_DATA`, then well-known places).
    #[arg(long)]
    pub data_dir: Option<PathBuf>,
    /// Training device; `auto` says which it picked.
    #[arg(long, value_enum, default_value = "auto")]
    pub device: DeviceChoice,
    /// Intra-op CPU threads (recorded with every result; same seed and threads, same bytes).
    #[arg(long, default_value_t = 2)]
    pub threads: i32,
    /// Hide progress bars.
    #[arg(long)]
    pub no_progress: bool,
    /// Runs trained at once, each in a worker process with `--threads` threads (results are the
    /// same whatever the number).
    #[arg(long, default_value_t = 1)]
    pub jobs: usize,
    /// Only share I of N (0-based, `I/N`): N processes, e.g. Slurm array tasks, cover the matrix
    /// exactly once; a stage-2 run goes with its stage-1 run.
    #[arg(long)]
    pub shard: Option<runner::Shard>,
}

impl RunArgs {
    /// The runner's options with records under `results`; sets libtorch's thread count and says
    /// which device `auto` picked.
    ///
    /// # Errors
    /// `--threads` or `--jobs` below 1, or a device that cannot be used.
    pub fn options(&self, results: &Path) -> anyhow::Result<RunOptions> {
        anyhow::ensure!(self.threads >= 1, "`--threads` must be at least 1");
        anyhow::ensure!(self.jobs >= 1, "`--jobs` must be at least 1");
        tch::set_num_threads(self.threads);
        let device = device::resolve(self.device)?;
        if self.device == DeviceChoice::Auto {
            eprintln!("device: {} (auto)", device::label(device));
        }
        Ok(RunOptions {
            store: Store::new(results),
            device,
            threads: self.threads,
            locator: DataLocator { data_dir: self.data_dir.clone() },
            progress: !self.no_progress,
            jobs: self.jobs,
            worker_exe: None,
            shard: self.shard,
        })
    }
}

/// Trains every unfinished run of each file.
///
/// # Errors
/// A bad option or matrix file, or a failure of the runner itself (a failed run is recorded and
/// the matrix goes on).
pub fn run(args: RunCommandArgs) -> anyhow::Result<ExitCode> {
    let options = args.options.options(&args.options.results)?;
    for file in args.files {
        run_matrix(&Plan::load(&file)?, &options)?;
    }
    Ok(ExitCode::SUCCESS)
}

/// A `--jobs` worker: trains the runs named on standard input.
///
/// # Errors
/// As [`run`].
pub fn worker(args: &WorkerArgs) -> anyhow::Result<ExitCode> {
    let options = args.options.options(&args.options.results)?;
    runner::serve_worker(&Plan::load(&args.file)?, &options)?;
    Ok(ExitCode::SUCCESS)
}

/// Runs one matrix and says how many runs it trained, found finished and left to others.
///
/// # Errors
/// As [`runner::run_plan`].
pub fn run_matrix(plan: &Plan, options: &RunOptions) -> anyhow::Result<()> {
    let summary = runner::run_plan(plan, options)?;
    let busy = if summary.busy > 0 {
        format!(", {} held by other workers", summary.busy)
    } else {
        String::new()
    };
    eprintln!(
        "matrix `{}`: {} trained, {} already finished{busy}",
        plan.name, summary.trained, summary.skipped
    );
    Ok(())
}

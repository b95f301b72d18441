//! `balms run` and its hidden `worker`: train every unfinished run of matrix files; the options
//! shared by every command that trains ([`RunArgs`]).

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use crate::data::DataLocator;
use crate::device::{self, DeviceChoice};
use crate::matrix::Plan;
use crate::runner::{self, interrupt, RunOptions, RunSummary};
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
    /// A scaled protocol: every iteration count multiplied by F (e.g. 0.01), for a smoke run of
    /// a paper-scale matrix; its runs go to `<matrix>-scaled-<F>` and never count as runs of the
    /// matrix itself (`balms report --scale F` reports them).
    #[arg(long, value_name = "F")]
    pub scale: Option<f64>,
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
            scale: self.scale,
        })
    }

    /// The matrix file's plan, scaled by `--scale` when given.
    ///
    /// # Errors
    /// As [`Plan::load`], or a factor that is not positive.
    pub fn plan(&self, file: &Path) -> anyhow::Result<Plan> {
        load_scaled(file, self.scale)
    }
}

/// The plan of `file`, scaled by `scale` when given ([`Plan::scale_by`]).
///
/// # Errors
/// As [`Plan::load`], or a factor that is not positive (naming the option).
pub fn load_scaled(file: &Path, scale: Option<f64>) -> anyhow::Result<Plan> {
    let mut plan = Plan::load(file)?;
    if let Some(factor) = scale {
        plan.scale_by(factor).map_err(|e| anyhow::anyhow!("`--scale`: {e}"))?;
    }
    Ok(plan)
}

/// Exit status of an invocation that ends with runs held by other workers: `EX_TEMPFAIL`
/// (sysexits.h), "try again later", so a script or a job array does not take it for done.
pub const UNFINISHED: u8 = 75;

/// Trains every unfinished run of each file. Exits 130 (SIGINT) or 143 (SIGTERM) when a signal
/// stopped it, [`UNFINISHED`] when other workers still hold runs; the last line says which.
///
/// # Errors
/// A bad option or matrix file, or a failure of the runner itself (a failed run is recorded and
/// the matrix goes on).
pub fn run(args: RunCommandArgs) -> anyhow::Result<ExitCode> {
    interrupt::install()?;
    let options = args.options.options(&args.options.results)?;
    let mut held = Vec::new();
    for file in args.files {
        let plan = args.options.plan(&file)?;
        let summary = run_matrix(&plan, &options)?;
        if let Some(code) = interrupted(&plan, &summary) {
            return Ok(code);
        }
        if summary.busy > 0 {
            held.push((plan.name.clone(), summary.busy));
        }
    }
    Ok(held_elsewhere(&held))
}

/// After a signal: the last line, saying what is unfinished, and the exit status.
#[must_use]
pub fn interrupted(plan: &Plan, summary: &RunSummary) -> Option<ExitCode> {
    let (signal, runs) = summary.interrupted?;
    let name = if signal == signal_hook::consts::SIGINT { "SIGINT" } else { "SIGTERM" };
    eprintln!(
        "interrupted by {name}: {runs} run(s) of `{}` unfinished, nothing of them recorded; run the \
         same command again to finish them",
        plan.name
    );
    Some(ExitCode::from(interrupt::exit_status(signal)))
}

/// The end of an invocation: success, or the last line counting the runs other workers hold,
/// by matrix (`held`: matrix name and count).
#[must_use]
pub fn held_elsewhere(held: &[(String, usize)]) -> ExitCode {
    if held.is_empty() {
        return ExitCode::SUCCESS;
    }
    let total: usize = held.iter().map(|(_, n)| n).sum();
    let by_matrix: Vec<String> = held.iter().map(|(name, n)| format!("{n} of `{name}`")).collect();
    eprintln!(
        "unfinished: {total} run(s) held by other workers ({}); when they are done, run the same \
         command again to check",
        by_matrix.join(", ")
    );
    ExitCode::from(UNFINISHED)
}

/// A `--jobs` worker: trains the runs named on standard input.
///
/// # Errors
/// As [`run`].
pub fn worker(args: &WorkerArgs) -> anyhow::Result<ExitCode> {
    interrupt::install()?;
    let options = args.options.options(&args.options.results)?;
    runner::serve_worker(&args.options.plan(&args.file)?, &options)?;
    Ok(interrupt::received()
        .map_or(ExitCode::SUCCESS, |s| ExitCode::from(interrupt::exit_status(s))))
}

/// Runs one matrix and says how many runs this process trained, found finished, left to others
/// and left unfinished after a signal.
///
/// # Errors
/// As [`runner::run_plan`].
pub fn run_matrix(plan: &Plan, options: &RunOptions) -> anyhow::Result<RunSummary> {
    let summary = runner::run_plan(plan, options)?;
    let busy = if summary.busy > 0 {
        format!(", {} held by other workers", summary.busy)
    } else {
        String::new()
    };
    let stopped =
        summary.interrupted.map_or_else(String::new, |(_, n)| format!(", {n} interrupted"));
    eprintln!(
        "matrix `{}`: {} trained, {} already finished{busy}{stopped}",
        plan.name, summary.trained, summary.skipped
    );
    Ok(summary)
}

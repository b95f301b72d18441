//! `balms slurm`: a Slurm submit script, a job array of `--shard` tasks and a report job.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context;

use crate::matrix::Plan;
use crate::runner::{self, slurm::SlurmOptions};

/// Arguments of `balms slurm`.
#[derive(Debug, clap::Args)]
pub struct SlurmArgs {
    /// The matrix file.
    file: PathBuf,
    /// Array tasks (default: one per unit, a stage-1 run with the stage-2 runs on it).
    #[arg(long)]
    shards: Option<usize>,
    /// Tasks running at once.
    #[arg(long, default_value_t = 4)]
    max_running: usize,
    /// CPUs per task (and `--threads`) [default: the matrix's `[slurm] cpus-per-task`, else 2].
    #[arg(long)]
    cpus: Option<usize>,
    /// Memory per task [default: the matrix's `[slurm] mem`, else 8G].
    #[arg(long)]
    mem: Option<String>,
    /// Time limit per task [default: the matrix's `[slurm] time`, else 12:00:00].
    #[arg(long)]
    time: Option<String>,
    /// Partition.
    #[arg(long)]
    partition: Option<String>,
    /// GPUs per task (the tasks then train with `--device cuda`) [default: the matrix's `[slurm]
    /// gpus-per-task`, else 0].
    #[arg(long)]
    gpus: Option<usize>,
    /// Results folder (relative to the current folder, which the jobs run in).
    #[arg(long, default_value = "results")]
    results: PathBuf,
    /// Tables folder of the report job.
    #[arg(long, default_value = "paper")]
    paper: PathBuf,
    /// Folder of the jobs' logs.
    #[arg(long, default_value = "slurm-logs")]
    logs: PathBuf,
    /// Write the script here instead of standard output.
    #[arg(long)]
    out: Option<PathBuf>,
}

/// Writes the script (to `--out` or standard output), paths made absolute.
///
/// # Errors
/// A bad matrix file, counts below 1, or a script that cannot be written.
#[expect(clippy::print_stdout, reason = "the command's output")]
pub fn run(args: SlurmArgs) -> anyhow::Result<ExitCode> {
    let plan = Plan::load(&args.file)?;
    // Flags, then the matrix's `[slurm]`, then the defaults.
    let wanted = &plan.slurm;
    let cpus = args.cpus.or(wanted.cpus_per_task.map(|c| c as usize)).unwrap_or(2);
    let gpus = args.gpus.or(wanted.gpus_per_task.map(|g| g as usize)).unwrap_or(0);
    let time = args.time.clone().or(wanted.time.clone()).unwrap_or_else(|| "12:00:00".into());
    let units = runner::unit_count(&plan);
    let shards = args.shards.unwrap_or(units);
    anyhow::ensure!(
        shards >= 1 && args.max_running >= 1 && cpus >= 1,
        "`--shards`, `--max-running` and `--cpus` must be at least 1"
    );
    let workdir = std::env::current_dir().context("the current folder")?;
    let absolute = |p: &Path| if p.is_absolute() { p.to_path_buf() } else { workdir.join(p) };
    let script = runner::slurm::script(&SlurmOptions {
        balms: std::env::current_exe().context("locating balms")?,
        matrix: absolute(&args.file),
        name: plan.name.clone(),
        shards,
        max_running: args.max_running,
        cpus,
        memory: args.mem.clone().or(wanted.mem.clone()).unwrap_or_else(|| "8G".into()),
        time,
        partition: args.partition,
        gpus,
        commands_use_gpus: plan.columns.iter().all(|c| c.dataset.is_detection()),
        results: absolute(&args.results),
        paper: absolute(&args.paper),
        logs: absolute(&args.logs),
        workdir: workdir.clone(),
    });
    match args.out {
        Some(path) => {
            crate::store::write_atomic(&path, script.as_bytes())?;
            eprintln!(
                "wrote {} ({shards} shards of {units} units); submit it with `bash {}`",
                path.display(),
                path.display()
            );
        }
        None => print!("{script}"),
    }
    Ok(ExitCode::SUCCESS)
}

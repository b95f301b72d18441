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
    /// CPUs per task (and `--threads`).
    #[arg(long, default_value_t = 2)]
    cpus: usize,
    /// Memory per task.
    #[arg(long, default_value = "8G")]
    mem: String,
    /// Time limit per task.
    #[arg(long, default_value = "12:00:00")]
    time: String,
    /// Partition.
    #[arg(long)]
    partition: Option<String>,
    /// GPUs per task (the tasks then train with `--device cuda`).
    #[arg(long, default_value_t = 0)]
    gpus: usize,
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
    let units = runner::unit_count(&plan);
    let shards = args.shards.unwrap_or(units);
    anyhow::ensure!(
        shards >= 1 && args.max_running >= 1 && args.cpus >= 1,
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
        cpus: args.cpus,
        memory: args.mem,
        time: args.time,
        partition: args.partition,
        gpus: args.gpus,
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

//! `balms slurm FILE`: a submit script for a Slurm cluster. It submits the matrix as a job array,
//! one task per shard (`balms run --shard $SLURM_ARRAY_TASK_ID/N`), with a cap on the tasks
//! running at once, and a report job that runs after every task succeeded (`afterok`). Every
//! value is passed on `sbatch`'s command line and single-quoted, so paths with spaces or quotes
//! survive; the task scripts are quoted heredocs, expanded only on the compute node.

use std::fmt::Write as _;
use std::path::PathBuf;

/// What the script asks Slurm for.
#[derive(Clone, Debug)]
pub struct SlurmOptions {
    /// The `balms` executable on the cluster.
    pub balms: PathBuf,
    /// Matrix file the tasks run and the report job reports (`balms slurm` passes an absolute
    /// path).
    pub matrix: PathBuf,
    /// Matrix name (job names).
    pub name: String,
    /// Array tasks (shards).
    pub shards: usize,
    /// Tasks running at once.
    pub max_running: usize,
    /// CPUs per task (also `--threads`).
    pub cpus: usize,
    /// Memory per task (`8G`).
    pub memory: String,
    /// Time limit per task (`12:00:00`).
    pub time: String,
    /// Slurm partition of the array and of the report job (`--partition`); none: the cluster's
    /// default.
    pub partition: Option<String>,
    /// GPUs per task (then `--device cuda`, unless `commands_use_gpus`).
    pub gpus: usize,
    /// The GPUs are the commands' (detectron2 methods), not balms's: balms itself runs on the
    /// CPU (`--device cpu`), so its libtorch need not have CUDA.
    pub commands_use_gpus: bool,
    /// Working directory of the jobs.
    pub workdir: PathBuf,
    /// `--results` of every task and of the report job (`balms slurm` passes an absolute path).
    pub results: PathBuf,
    /// Tables folder for the report job.
    pub paper: PathBuf,
    /// Folder of the jobs' logs.
    pub logs: PathBuf,
}

/// `text` single-quoted for a POSIX shell.
#[must_use]
pub fn quote(text: &str) -> String {
    format!("'{}'", text.replace('\'', "'\\''"))
}

fn path(p: &std::path::Path) -> String {
    quote(&p.to_string_lossy())
}

/// A bash script that `sbatch`es the matrix as an array of `o.shards` tasks (`balms run --shard`,
/// at most `o.max_running` at once), then a report job (`afterok`); `o.shards` must be at least 1.
#[must_use]
pub fn script(o: &SlurmOptions) -> String {
    let mut common = format!(
        "--chdir={} --cpus-per-task={} --mem={} --time={}",
        path(&o.workdir),
        quote(&o.cpus.to_string()),
        quote(&o.memory),
        quote(&o.time)
    );
    // The report job reads records and writes tables: one CPU, no GPU.
    let mut report =
        format!("--chdir={} --cpus-per-task=1 --mem=2G --time=1:00:00", path(&o.workdir));
    if let Some(p) = &o.partition {
        let _ = write!(common, " --partition={}", quote(p));
        let _ = write!(report, " --partition={}", quote(p));
    }
    let device = if o.gpus > 0 {
        let _ = write!(common, " --gres={}", quote(&format!("gpu:{}", o.gpus)));
        if o.commands_use_gpus {
            "cpu"
        } else {
            "cuda"
        }
    } else {
        "cpu"
    };
    let last = o.shards - 1;
    format!(
        r#"#!/usr/bin/env bash
# Submits matrix `{name}` as a Slurm job array of {shards} shards (at most {max} at once) and a
# report job that runs once every shard succeeded. Written by `balms slurm`; run it with bash.
set -euo pipefail
mkdir -p {logs}
array=$(sbatch --parsable --job-name={job} --array={array} {common} \
    --output={out} <<'BALMS_SHARD'
#!/usr/bin/env bash
set -euo pipefail
exec {balms} run {matrix} --shard "$SLURM_ARRAY_TASK_ID/{shards}" --results {results} \
    --threads {cpus} --device {device} --no-progress
BALMS_SHARD
)
report=$(sbatch --parsable --job-name={report_job} --dependency="afterok:${{array%%;*}}" {report} \
    --output={report_out} <<'BALMS_REPORT'
#!/usr/bin/env bash
set -euo pipefail
exec {balms} report {matrix} --results {results} --paper {paper}
BALMS_REPORT
)
echo "submitted job array ${{array%%;*}} ({shards} shards) and report job ${{report%%;*}}"
"#,
        name = o.name,
        shards = o.shards,
        max = o.max_running,
        logs = path(&o.logs),
        job = quote(&format!("balms-{}", o.name)),
        array = quote(&format!("0-{last}%{}", o.max_running)),
        out = quote(&format!("{}/%x-%A_%a.out", o.logs.to_string_lossy())),
        balms = path(&o.balms),
        matrix = path(&o.matrix),
        results = path(&o.results),
        cpus = quote(&o.cpus.to_string()),
        report_job = quote(&format!("balms-{}-report", o.name)),
        report_out = quote(&format!("{}/%x-%j.out", o.logs.to_string_lossy())),
        paper = path(&o.paper),
        report = report,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quoting_survives_quotes_and_spaces() {
        assert_eq!(quote("a b"), "'a b'");
        assert_eq!(quote("it's"), "'it'\\''s'");
    }
}

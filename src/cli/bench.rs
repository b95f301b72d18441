//! `balms bench`: training throughput against the PyTorch reference on identical data, or a
//! matrix's runs per hour at 1 and N jobs (`--throughput`), as ratios.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context;

use crate::data::DataLocator;
use crate::device::{self, DeviceChoice};

/// Options of `balms bench`.
#[derive(Debug, clap::Args)]
pub struct BenchArgs {
    /// Workloads (comma-separated).
    #[arg(
        long,
        value_enum,
        value_delimiter = ',',
        default_value = "mlp-digits,cnn-fashion,resnet32-cifar"
    )]
    pub workloads: Vec<crate::bench::Workload>,
    /// Device for balms and the reference.
    #[arg(long, value_enum, default_value = "cpu")]
    pub device: DeviceChoice,
    /// Intra-op threads for both.
    #[arg(long, default_value_t = 2)]
    pub threads: i32,
    /// Warm-up iterations (default: each workload's).
    #[arg(long)]
    pub warmup: Option<u64>,
    /// Timed iterations (default: each workload's).
    #[arg(long)]
    pub steps: Option<u64>,
    /// Batch size.
    #[arg(long, default_value_t = 128)]
    pub batch: u32,
    /// Python with PyTorch and torchvision for the reference (omit to time balms alone).
    #[arg(long)]
    pub python: Option<PathBuf>,
    /// The reference script.
    #[arg(long, default_value = "bench/reference.py")]
    pub script: PathBuf,
    /// The reference `DataLoader`'s `num_workers`.
    #[arg(long, default_value_t = 0)]
    pub workers: u32,
    /// Forward precision of both.
    #[arg(long, value_enum, default_value = "f32")]
    pub precision: crate::device::Precision,
    /// Channels-last convolutions in both.
    #[arg(long)]
    pub channels_last: bool,
    /// Data folder (then `BALMS_DATA`, then well-known places).
    #[arg(long)]
    pub data_dir: Option<PathBuf>,
    /// Scratch folder for exchanged data and checkpoints.
    #[arg(long, default_value = "target/bench-scratch")]
    pub scratch: PathBuf,
    /// Output path without extension: `.json` and `.md` are written.
    #[arg(long, default_value = "results/bench/cpu")]
    pub out: PathBuf,
    /// Instead of the workloads: time this matrix from scratch with 1 job x `--threads` threads
    /// and with `--threads` jobs x 1 thread (runs per hour).
    #[arg(long)]
    pub throughput: Option<PathBuf>,
}

impl BenchArgs {
    /// `--throughput`: a matrix timed at 1 job x N threads and N jobs x 1 thread.
    fn throughput(&self, matrix: &Path) -> anyhow::Result<()> {
        let jobs = usize::try_from(self.threads).context("threads")?;
        let settings = [(1, self.threads), (jobs, 1)];
        let rows =
            crate::bench::throughput(matrix, &settings, self.data_dir.as_deref(), &self.scratch)?;
        let markdown = crate::bench::throughput_markdown(matrix, &rows, &crate::bench::utc_date());
        write_results(&self.out, &rows, &markdown)
    }

    /// The workloads timed in balms and the reference.
    fn workloads(&self) -> anyhow::Result<()> {
        let options = crate::bench::BenchOptions {
            workloads: self.workloads.clone(),
            device: device::resolve(self.device)?,
            threads: self.threads,
            warmup: self.warmup,
            steps: self.steps,
            batch: self.batch,
            python: self.python.clone(),
            script: self.script.clone(),
            workers: self.workers,
            precision: self.precision,
            channels_last: self.channels_last,
            locator: DataLocator { data_dir: self.data_dir.clone() },
            scratch: self.scratch.clone(),
        };
        let report = crate::bench::run(&options)?;
        let markdown = report.markdown(&crate::bench::utc_date());
        write_results(&self.out, &report, &markdown)
    }
}

/// A benchmark's results: `<out>.json` and `<out>.md` written atomically, the Markdown printed.
///
/// # Errors
/// A file that cannot be written, naming it.
#[expect(clippy::print_stdout, reason = "the command's output")]
pub(super) fn write_results(
    out: &Path,
    json: &impl serde::Serialize,
    markdown: &str,
) -> anyhow::Result<()> {
    crate::store::write_json(&out.with_extension("json"), json)?;
    crate::store::write_atomic(&out.with_extension("md"), markdown.as_bytes())?;
    print!("{markdown}");
    Ok(())
}

/// Runs the benchmark asked for, writes `<out>.json` and `<out>.md`, prints the table.
///
/// # Errors
/// Bad counts, a device that cannot be used, data missing, a failing reference, or a file that
/// cannot be written.
pub fn run(args: &BenchArgs) -> anyhow::Result<ExitCode> {
    anyhow::ensure!(args.threads >= 1, "`--threads` must be at least 1");
    anyhow::ensure!(args.steps != Some(0), "`--steps` must be at least 1");
    tch::set_num_threads(args.threads);
    match &args.throughput {
        Some(matrix) => args.throughput(matrix)?,
        None => args.workloads()?,
    }
    Ok(ExitCode::SUCCESS)
}

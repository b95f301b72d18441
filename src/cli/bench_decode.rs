//! `balms bench-decode`: JPEG decoding and the ImageNet-LT transforms against torchvision's on
//! the same files, as ratios.

use std::path::PathBuf;
use std::process::ExitCode;

use crate::bench::decode::{self, DecodeOptions};
use crate::data::DataLocator;

/// Arguments of `balms bench-decode`.
#[derive(Debug, clap::Args)]
pub struct BenchDecodeArgs {
    /// Python with torch and torchvision for the reference (none: balms alone).
    #[arg(long)]
    python: Option<PathBuf>,
    /// The reference script.
    #[arg(long, default_value = "bench/decode_reference.py")]
    script: PathBuf,
    /// Number of JPEG files.
    #[arg(long, default_value_t = 256)]
    images: usize,
    /// Passes over the files (the fastest counts).
    #[arg(long, default_value_t = 3)]
    passes: usize,
    /// Threads (and DataLoader workers) of the all-cores row.
    #[expect(clippy::doc_markdown, reason = "--help text, where backticks would show")]
    #[arg(long, default_value_t = 2)]
    threads: usize,
    /// Data folder holding Fashion-MNIST (also `BALMS_DATA`).
    #[arg(long)]
    data_dir: Option<PathBuf>,
    /// Folder for the files.
    #[arg(long, default_value = "target/bench-decode")]
    scratch: PathBuf,
    /// Output stem: writes `<out>.json` and `<out>.md`.
    #[arg(long, default_value = "results/bench/decode")]
    out: PathBuf,
}

/// Times both, writes `<out>.json` and `<out>.md`, prints the table.
///
/// # Errors
/// Fashion-MNIST missing, a failing reference, or a file that cannot be written.
pub fn run(args: BenchDecodeArgs) -> anyhow::Result<ExitCode> {
    let BenchDecodeArgs { python, script, images, passes, threads, data_dir, scratch, out } = args;
    let locator = DataLocator { data_dir };
    let options = DecodeOptions { images, passes, threads, python, script, scratch, locator };
    let rows = decode::run(&options)?;
    let text = decode::markdown(&rows, &crate::bench::machine(), images);
    super::bench::write_results(&out, &rows, &text)?;
    Ok(ExitCode::SUCCESS)
}

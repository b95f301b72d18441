//! `balms bench-augment`: the official CIFAR training transform against torchvision + PIL on the
//! same images, as ratios.

use std::path::PathBuf;
use std::process::ExitCode;

use crate::bench::augment::{self, AugmentOptions};
use crate::data::DataLocator;

/// Arguments of `balms bench-augment`.
#[derive(Debug, clap::Args)]
pub struct BenchAugmentArgs {
    /// Python with torch, torchvision and PIL for the reference (none: balms alone).
    #[arg(long)]
    python: Option<PathBuf>,
    /// The reference script.
    #[arg(long, default_value = "bench/augment_reference.py")]
    script: PathBuf,
    /// Images per pass.
    #[arg(long, default_value_t = 4096)]
    images: usize,
    /// Passes over the images (the fastest counts).
    #[arg(long, default_value_t = 3)]
    passes: usize,
    /// Threads (and DataLoader workers) of the all-cores row.
    #[expect(clippy::doc_markdown, reason = "--help text, where backticks would show")]
    #[arg(long, default_value_t = 2)]
    threads: usize,
    /// Data folder holding Fashion-MNIST (also `BALMS_DATA`).
    #[arg(long)]
    data_dir: Option<PathBuf>,
    /// Folder for the images file.
    #[arg(long, default_value = "target/bench-augment")]
    scratch: PathBuf,
    /// Output stem: writes `<out>.json` and `<out>.md`.
    #[arg(long, default_value = "results/bench/augment")]
    out: PathBuf,
}

/// Times both, writes `<out>.json` and `<out>.md`, prints the table.
///
/// # Errors
/// Fashion-MNIST missing, a failing reference, or a file that cannot be written.
pub fn run(args: BenchAugmentArgs) -> anyhow::Result<ExitCode> {
    let BenchAugmentArgs { python, script, images, passes, threads, data_dir, scratch, out } = args;
    let locator = DataLocator { data_dir };
    let options = AugmentOptions { images, passes, threads, python, script, scratch, locator };
    let rows = augment::run(&options)?;
    let text = augment::markdown(&rows, &crate::bench::machine(), images);
    super::bench::write_results(&out, &rows, &text)?;
    Ok(ExitCode::SUCCESS)
}

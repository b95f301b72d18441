//! `balms cifar-tree`: Fashion-MNIST written in CIFAR-10's binary layout.

use std::path::PathBuf;
use std::process::ExitCode;

use crate::data::{cifar_tree, DataLocator};

/// Arguments of `balms cifar-tree`.
#[derive(Debug, clap::Args)]
pub struct CifarTreeArgs {
    /// Output folder: `cifar-10-batches-bin/` is written in it; point `--data-dir` at it.
    #[arg(long, default_value = "data/fashion-mnist-cifar")]
    out: PathBuf,
    /// Data folder holding Fashion-MNIST (also `BALMS_DATA`).
    #[arg(long)]
    data_dir: Option<PathBuf>,
}

/// Writes the folder and says how to use it.
///
/// # Errors
/// Fashion-MNIST missing or malformed, or a file that cannot be written.
#[expect(clippy::print_stdout, reason = "the command's output")]
pub fn run(args: CifarTreeArgs) -> anyhow::Result<ExitCode> {
    let (train, test) = cifar_tree::write(&DataLocator { data_dir: args.data_dir }, &args.out)?;
    println!(
        "wrote {} ({train} training and {test} test records of Fashion-MNIST in CIFAR-10's binary layout); the `fashion-mnist-cifar-lt` dataset reads them from there (or a `cifar10-lt` matrix with `--data-dir {}`)",
        args.out.join(cifar_tree::FOLDER).display(),
        args.out.display()
    );
    Ok(ExitCode::SUCCESS)
}

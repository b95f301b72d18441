//! Command-line interface: argument parsing and dispatch. Each command is one module holding its
//! arguments (`<Verb>Args`) and its body (`run`), a thin wrapper over the library.

mod bench;
mod bench_augment;
mod bench_decode;
mod check;
mod cifar_tree;
mod data;
mod jpeg_tree;
mod list;
mod plan;
mod report;
mod reproduce;
mod run;
mod slurm;
mod theory;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

pub use data::data_listing;
pub use list::registry_listing;

/// Reproducibility harness for Balanced Meta-Softmax (Ren et al., NeurIPS 2020).
#[derive(Debug, Parser)]
#[command(name = "balms", version, about)]
pub struct Cli {
    /// The command.
    #[command(subcommand)]
    pub command: Command,
}

/// Subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Print the resolved plan of matrix files: cells, every setting, seeds, class counts.
    Plan(plan::PlanArgs),
    /// Run every unfinished run of matrix files (resumable).
    Run(run::RunCommandArgs),
    /// Aggregate finished runs into tables under the paper folder.
    Report(report::ReportArgs),
    /// Run and report every matrix in a folder whose data is present; name those skipped.
    Reproduce(reproduce::ReproduceArgs),
    /// Rerun matrices from scratch and compare every run with the stored results: exits 1 with
    /// a per-run list when any differs (CI's check that committed results still reproduce).
    Check(check::CheckArgs),
    /// List the datasets and where they were found.
    Data(data::DataArgs),
    /// List the registered losses, samplers, models and datasets.
    List,
    /// Write Fashion-MNIST-LT as a JPEG tree with ImageNet-LT-format lists
    /// (`FashionMNIST_LT_{train,val,test}.txt`), for the `image-list` dataset.
    JpegTree(jpeg_tree::JpegTreeArgs),
    /// Write Fashion-MNIST in CIFAR-10's binary layout (`cifar-10-batches-bin/`), so that
    /// `cifar10-lt` matrices run on real images through the CIFAR loader.
    CifarTree(cifar_tree::CifarTreeArgs),
    /// Training throughput against the PyTorch reference on identical data, as ratios.
    Bench(bench::BenchArgs),
    /// JPEG decoding + ImageNet-LT transforms against torchvision's on the same files, as ratios
    /// (per core and with every core).
    BenchDecode(bench_decode::BenchDecodeArgs),
    /// The official CIFAR training transform (AutoAugment policy, Cutout) against torchvision +
    /// PIL on the same images, as ratios.
    BenchAugment(bench_augment::BenchAugmentArgs),
    /// Check the paper's theory numerically (Theorem 1, the bound's margins, over-balance, the
    /// toy of Figure 5); writes paper/theory/.
    Theory(theory::TheoryArgs),
    /// Write a Slurm submit script: a job array of `--shard` tasks and a report job after them.
    Slurm(slurm::SlurmArgs),
    /// Internal: a `--jobs` worker; trains the runs named on standard input.
    #[command(hide = true)]
    Worker(run::WorkerArgs),
}

/// Parses arguments and runs the command.
///
/// # Errors
/// Any failure, with context naming the file, cell or field.
pub fn main() -> anyhow::Result<ExitCode> {
    match Cli::parse().command {
        Command::Plan(args) => plan::run(args),
        Command::Run(args) => run::run(args),
        Command::Report(args) => report::run(args),
        Command::Reproduce(args) => reproduce::run(&args),
        Command::Check(args) => check::run(&args),
        Command::Data(args) => Ok(data::run(args)),
        Command::List => Ok(list::run()),
        Command::JpegTree(args) => jpeg_tree::run(args),
        Command::CifarTree(args) => cifar_tree::run(args),
        Command::Bench(args) => bench::run(&args),
        Command::BenchDecode(args) => bench_decode::run(args),
        Command::BenchAugment(args) => bench_augment::run(args),
        Command::Theory(args) => theory::run(args),
        Command::Slurm(args) => slurm::run(args),
        Command::Worker(args) => run::worker(&args),
    }
}

//! `balms jpeg-tree`: Fashion-MNIST-LT written as a JPEG tree with ImageNet-LT-format lists.

use std::path::PathBuf;
use std::process::ExitCode;

use crate::data::jpeg_tree::{self, TreeOptions};
use crate::data::DataLocator;

/// Arguments of `balms jpeg-tree`.
#[derive(Debug, clap::Args)]
pub struct JpegTreeArgs {
    /// Output folder.
    #[arg(long, default_value = "data/fashion-mnist-lt-jpeg")]
    out: PathBuf,
    /// Imbalance factor.
    #[arg(long, default_value_t = 100.0)]
    imbalance: f64,
    /// Head-class count (6000: the whole class; 500 with IF 100 gives ImageNet-LT-like
    /// groups: 4 many-, 3 medium-, 3 few-shot classes).
    #[arg(long, default_value_t = 500)]
    n_max: usize,
    /// Subset seed (the in-memory dataset draws the same subset with this matrix seed).
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Test images per class.
    #[arg(long, default_value_t = 1000)]
    test_per_class: usize,
    /// JPEG quality.
    #[arg(long, default_value_t = 95)]
    quality: u8,
    /// Data folder holding Fashion-MNIST (also `BALMS_DATA`).
    #[arg(long)]
    data_dir: Option<PathBuf>,
}

/// Writes the tree and says how many images each list has.
///
/// # Errors
/// Fashion-MNIST missing, or a file that cannot be written.
#[expect(clippy::print_stdout, reason = "the command's output")]
pub fn run(args: JpegTreeArgs) -> anyhow::Result<ExitCode> {
    let JpegTreeArgs { out, imbalance, n_max, seed, test_per_class, quality, data_dir } = args;
    let options = TreeOptions { out, imbalance, n_max, seed, test_per_class, quality };
    let [train, val, test] = jpeg_tree::write(&DataLocator { data_dir }, &options)?;
    println!(
        "wrote {} (train {train}, val {val}, test {test} images; lists {}_{{train,val,test}}.txt)",
        options.out.display(),
        jpeg_tree::PREFIX
    );
    Ok(ExitCode::SUCCESS)
}

//! `balms bench-augment`: images per second of the official CIFAR training transform (black-padded
//! crop, flip, the AutoAugment CIFAR-10 policy, Cutout, normalisation; `augment = { cifar = {} }`)
//! against the official code's torchvision + PIL transform (`bench/augment_reference.py`) on the
//! same images, with one thread and with every thread, as ratios measured in one invocation.
//!
//! The images: Fashion-MNIST training images padded to 32 x 32, three per image as its red, green
//! and blue planes.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use anyhow::{bail, Context};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};
use tch::Tensor;

use crate::data::augment::AugmentSpec;
use crate::data::autoaugment::Policy;
use crate::data::{cifar, cifar_tree, idx, DataLocator, DatasetKind};

/// How to run the augmentation benchmark.
#[derive(Clone, Debug)]
pub struct AugmentOptions {
    /// Images per pass (CLI `--images`, default 4,096: 8 batches of 512).
    pub images: usize,
    /// Passes; the fastest counts.
    pub passes: usize,
    /// Threads (and `DataLoader` workers) of the all-cores measurement.
    pub threads: usize,
    /// Python with torch, torchvision and PIL; none: balms alone.
    pub python: Option<PathBuf>,
    /// The reference script (CLI default `bench/augment_reference.py`).
    pub script: PathBuf,
    /// Folder for the images file.
    pub scratch: PathBuf,
    /// Where Fashion-MNIST is.
    pub locator: DataLocator,
}

/// One measurement.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct AugmentRow {
    /// Threads (balms's rayon pool) and `DataLoader` workers (0: the main process).
    pub threads: usize,
    /// balms, images per second.
    pub balms: f64,
    /// The official transform in torchvision + PIL, images per second.
    pub reference: Option<f64>,
}

/// The benchmark's images, `[N, 32, 32, 3]` bytes (interleaved).
fn images(options: &AugmentOptions) -> anyhow::Result<Vec<u8>> {
    let dir = options.locator.locate(&DatasetKind::FashionMnistLt)?.context("Fashion-MNIST")?;
    let pool = idx::read_split(&dir, "train")?;
    let plane = |k: usize| {
        let row = k % pool.len();
        cifar_tree::padded_rgb(&pool.pixels[row * 784..(row + 1) * 784])[..1024].to_vec()
    };
    let mut out = Vec::with_capacity(options.images * 3072);
    for image in 0..options.images {
        let planes = [plane(3 * image), plane(3 * image + 1), plane(3 * image + 2)];
        out.extend((0..1024).flat_map(|i| planes.iter().map(move |p| p[i])));
    }
    Ok(out)
}

/// balms's images per second: batches of 512 normalised as CIFAR's, through the `cifar`
/// augmentation in a pool of `threads` threads; fastest of `passes`.
fn balms_rate(bytes: &[u8], count: usize, threads: usize, passes: usize) -> anyhow::Result<f64> {
    let n = i64::try_from(count).expect("fits");
    let x = Tensor::from_slice(bytes).view([n, 32, 32, 3]).permute([0, 3, 1, 2]);
    let x = cifar::normalised(&x).contiguous();
    let batches: Vec<Tensor> = x.split(512, 0);
    let spec = AugmentSpec::Cifar { padding: 4, policy: Policy::AutoaugmentCifar10, cutout: 16 };
    let pool = rayon::ThreadPoolBuilder::new().num_threads(threads).build()?;
    // libtorch's intra-op threads too (the conversions to and from normalised floats).
    tch::set_num_threads(i32::try_from(threads)?);
    let mut rng = ChaCha8Rng::seed_from_u64(1);
    let mut best = f64::INFINITY;
    for _ in 0..passes {
        let start = Instant::now();
        for batch in &batches {
            let batch = batch.shallow_clone();
            let rng = &mut rng;
            let spec = &spec;
            let out = pool.install(move || spec.apply(&batch, rng));
            assert_eq!(out.size()[1..], [3, 32, 32]);
        }
        best = best.min(start.elapsed().as_secs_f64());
    }
    Ok(count as f64 / best)
}

#[derive(Deserialize)]
struct ReferenceRate {
    images_per_second: f64,
}

fn reference_rate(
    options: &AugmentOptions,
    python: &Path,
    file: &Path,
    workers: usize,
) -> anyhow::Result<f64> {
    let output = Command::new(python)
        .arg(&options.script)
        .args(["--images", &file.display().to_string(), "--count", &options.images.to_string()])
        .args(["--workers", &workers.to_string(), "--passes", &options.passes.to_string()])
        .output()
        .with_context(|| format!("running `{}`", python.display()))?;
    if !output.status.success() {
        bail!("the torchvision reference failed:\n{}", String::from_utf8_lossy(&output.stderr));
    }
    let rate: ReferenceRate =
        serde_json::from_slice(&output.stdout).context("reading the reference's JSON")?;
    Ok(rate.images_per_second)
}

/// Measures balms and the reference with one thread (the main-process loader) and with
/// `options.threads` threads (as many `DataLoader` workers).
///
/// # Errors
/// Missing Fashion-MNIST, a failing reference, or a file that cannot be written.
pub fn run(options: &AugmentOptions) -> anyhow::Result<Vec<AugmentRow>> {
    let bytes = images(options)?;
    std::fs::create_dir_all(&options.scratch)
        .with_context(|| format!("creating `{}`", options.scratch.display()))?;
    let file = options.scratch.join("images.u8");
    std::fs::write(&file, &bytes).with_context(|| format!("writing `{}`", file.display()))?;
    let mut rows = Vec::new();
    for (threads, workers) in [(1, 0), (options.threads, options.threads)] {
        let reference = match &options.python {
            Some(python) => Some(reference_rate(options, python, &file, workers)?),
            None => None,
        };
        let balms = balms_rate(&bytes, options.images, threads, options.passes)?;
        eprintln!("augment, {threads} thread(s): balms {balms:.0} img/s, reference {reference:?}");
        rows.push(AugmentRow { threads, balms, reference });
    }
    Ok(rows)
}

/// The rows as a Markdown table with ratios.
#[must_use]
pub fn markdown(rows: &[AugmentRow], machine: &str, images: usize) -> String {
    let mut out = format!(
        "# The official CIFAR training transform: balms vs torchvision + PIL\n\n{images} 32 x 32 \
         RGB images (Fashion-MNIST, padded, three per image as its planes); the whole training \
         transform: crop after 4 pixels of padding, flip, the AutoAugment CIFAR-10 policy, Cutout \
         16, normalisation; fastest of the passes. Reference: the official code's transform \
         (torchvision's `RandomCrop`, `RandomHorizontalFlip`, `ToTensor`, `Normalize`; the policy \
         and Cutout as the official code, on PIL), a `DataLoader` (batch 512) with 0 workers for \
         one thread, N workers for N. balms: `augment = {{ cifar = {{}} }}` on normalised batches \
         of 512 in a pool of N threads, libtorch with N intra-op threads.\n\nMachine: {machine}.\n\n\
         | threads | balms img/s | reference img/s | ratio |\n|---:|---:|---:|---:|\n"
    );
    for r in rows {
        let (reference, ratio) = r.reference.map_or_else(
            || ("-".to_string(), "-".to_string()),
            |v| (format!("{v:.0}"), format!("{:.2}x", r.balms / v)),
        );
        let _ = writeln!(out, "| {} | {:.0} | {reference} | {ratio} |", r.threads, r.balms);
    }
    out
}

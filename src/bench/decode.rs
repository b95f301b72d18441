//! `balms bench-decode`: images per second of the ImageNet-LT input pipeline (JPEG decoding and
//! the training or test transform) against torchvision's on the same files, per core and with
//! every core, reported as ratios measured in one invocation.
//!
//! The files: JPEGs of ImageNet's typical sizes (500 x 375, 375 x 500, 500 x 333; quality 90)
//! made from Fashion-MNIST images, three per file as the red, green and blue channels, enlarged.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::time::Instant;

use anyhow::{bail, Context};
use image::imageops::{self, FilterType};
use image::{GrayImage, RgbImage};
use serde::{Deserialize, Serialize};

use crate::data::images::{self, ImageFiles, ImageSize, Transform};
use crate::data::{idx, DataLocator, DatasetKind};

/// How to run the decoding benchmark.
#[derive(Clone, Debug)]
pub struct DecodeOptions {
    /// Number of JPEG files written under `scratch` and decoded in each pass (CLI `--images`,
    /// default 256).
    pub images: usize,
    /// Passes over the files; the fastest counts.
    pub passes: usize,
    /// Threads (and `DataLoader` workers) of the all-cores measurement.
    pub threads: usize,
    /// Python with torch and torchvision; none: balms alone.
    pub python: Option<PathBuf>,
    /// Path of the torchvision reference script, run with `python` (CLI default
    /// `bench/decode_reference.py`); unused when `python` is `None`.
    pub script: PathBuf,
    /// Folder for the files.
    pub scratch: PathBuf,
    /// Where Fashion-MNIST is.
    pub locator: DataLocator,
}

/// One measurement: images per second of balms and of torchvision.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct DecodeRow {
    /// `train` or `test` transform.
    pub transform: String,
    /// Threads (balms's decoding pool) and `DataLoader` workers (0: the main process).
    pub threads: usize,
    /// balms, images per second.
    pub balms: f64,
    /// torchvision, images per second.
    pub reference: Option<f64>,
}

/// Writes the benchmark's files; returns their paths.
///
/// # Errors
/// Missing Fashion-MNIST, or write errors.
#[expect(clippy::many_single_char_names, reason = "pixels and sides as image libraries name them")]
pub fn prepare(options: &DecodeOptions) -> anyhow::Result<Vec<PathBuf>> {
    let dir = options.locator.locate(&DatasetKind::FashionMnistLt)?.context("Fashion-MNIST")?;
    let pool = idx::read_split(&dir, "train")?;
    std::fs::create_dir_all(&options.scratch)
        .with_context(|| format!("creating `{}`", options.scratch.display()))?;
    let sizes = [(500, 375), (375, 500), (500, 333)];
    let mut paths = Vec::with_capacity(options.images);
    for file in 0..options.images {
        let (w, h) = sizes[file % sizes.len()];
        let channel = |i: usize| {
            let row = (3 * file + i) % pool.len();
            let gray =
                GrayImage::from_raw(28, 28, pool.pixels[row * 784..(row + 1) * 784].to_vec())
                    .expect("28 x 28");
            imageops::resize(&gray, w, h, FilterType::Triangle)
        };
        let (r, g, b) = (channel(0), channel(1), channel(2));
        let rgb = RgbImage::from_fn(w, h, |x, y| {
            image::Rgb([r.get_pixel(x, y)[0], g.get_pixel(x, y)[0], b.get_pixel(x, y)[0]])
        });
        let path = options.scratch.join(format!("{file:04}.jpg"));
        let mut bytes = Vec::new();
        image::codecs::jpeg::JpegEncoder::new_with_quality(&mut bytes, 90)
            .encode_image(&rgb)
            .context("encoding")?;
        std::fs::write(&path, bytes).with_context(|| format!("writing `{}`", path.display()))?;
        paths.push(path);
    }
    Ok(paths)
}

/// balms's images per second on `paths` with `threads` decoding threads: batches of 32 through
/// [`ImageFiles::prefetch`], as training and evaluation consume them; fastest of `passes`.
#[must_use]
pub fn balms_rate(paths: &[PathBuf], transform: Transform, threads: usize, passes: usize) -> f64 {
    let files = Arc::new(ImageFiles::new(
        paths.to_vec(),
        ImageSize::default(),
        images::decode_pool(threads),
    ));
    let rows: Vec<i64> = (0..i64::try_from(paths.len()).expect("fits")).collect();
    let jobs: Vec<(Vec<i64>, u64)> =
        rows.chunks(32).zip(0u64..).map(|(c, seed)| (c.to_vec(), seed)).collect();
    let mut best = f64::INFINITY;
    for _ in 0..passes {
        let start = Instant::now();
        for batch in files.prefetch(jobs.clone(), transform, 4) {
            batch.expect("benchmark files decode");
        }
        best = best.min(start.elapsed().as_secs_f64());
    }
    paths.len() as f64 / best
}

#[derive(Deserialize)]
struct ReferenceRates {
    train: f64,
    test: f64,
}

fn reference_rates(
    options: &DecodeOptions,
    python: &Path,
    list: &Path,
    workers: usize,
) -> anyhow::Result<ReferenceRates> {
    let output = Command::new(python)
        .arg(&options.script)
        .args(["--list", &list.display().to_string()])
        .args(["--workers", &workers.to_string(), "--passes", &options.passes.to_string()])
        .output()
        .with_context(|| format!("running `{}`", python.display()))?;
    if !output.status.success() {
        bail!("the torchvision reference failed:\n{}", String::from_utf8_lossy(&output.stderr));
    }
    serde_json::from_slice(&output.stdout).context("reading the reference's JSON")
}

/// Measures balms and torchvision with one thread (one main-process loader) and with
/// `options.threads` threads (as many `DataLoader` workers).
///
/// # Errors
/// Missing data or a failing reference.
pub fn run(options: &DecodeOptions) -> anyhow::Result<Vec<DecodeRow>> {
    let paths = prepare(options)?;
    let list = options.scratch.join("files.txt");
    let text: String = paths.iter().fold(String::new(), |mut text, p| {
        let _ = writeln!(text, "{}", p.display());
        text
    });
    std::fs::write(&list, text).with_context(|| format!("writing `{}`", list.display()))?;
    let mut rows = Vec::new();
    for (threads, workers) in [(1, 0), (options.threads, options.threads)] {
        let reference = match &options.python {
            Some(python) => Some(reference_rates(options, python, &list, workers)?),
            None => None,
        };
        for (name, transform) in
            [("train", Transform::Train { jitter: 0.4 }), ("test", Transform::Test)]
        {
            let balms = balms_rate(&paths, transform, threads, options.passes);
            let reference =
                reference.as_ref().map(|r| if name == "train" { r.train } else { r.test });
            eprintln!("decode {name}, {threads} thread(s): balms {balms:.0} img/s, torchvision {reference:?}");
            rows.push(DecodeRow { transform: name.to_string(), threads, balms, reference });
        }
    }
    Ok(rows)
}

/// The rows as a Markdown table with ratios.
#[must_use]
pub fn markdown(rows: &[DecodeRow], machine: &str, images: usize) -> String {
    let mut out = format!(
        "# JPEG decoding and ImageNet-LT transforms: balms vs torchvision\n\n{images} JPEGs of \
         ImageNet's typical sizes (500x375, 375x500, 500x333), 224 x 224 outputs; fastest of the \
         passes. torchvision: PIL decoding + `convert('RGB')`, the official transforms, a \
         `DataLoader` (batch 32) with 0 workers for one thread, N workers for N. balms: its \
         decoding pool of N threads with the bounded prefetch the runs use.\n\nMachine: \
         {machine}.\n\n| transform | threads | balms img/s | torchvision img/s | ratio |\n\
         |---|---:|---:|---:|---:|\n"
    );
    for r in rows {
        let (reference, ratio) = r.reference.map_or_else(
            || ("-".to_string(), "-".to_string()),
            |v| (format!("{v:.0}"), format!("{:.2}x", r.balms / v)),
        );
        let _ = writeln!(
            out,
            "| {} | {} | {:.0} | {reference} | {ratio} |",
            r.transform, r.threads, r.balms
        );
    }
    out
}

//! `balms bench`: training throughput of balms against an idiomatic PyTorch reference
//! (`bench/reference.py`) on identical data, in one invocation, reported as ratios.
//!
//! Each workload's training data is built once, written as `.npy` for the reference, and trained
//! by both for the same iterations, batch size and thread count. balms is timed through its real
//! training path ([`crate::train::end_to_end`]): the steady-state seconds per iteration are
//! `(t(W + K) - t(W)) / K` for runs of `W` and `W + K` iterations, so start-up, the (tiny)
//! evaluation and the checkpoint cancel. The reference times `K` iterations of its `DataLoader`
//! loop after `W` warm-up iterations. Both take a scalar loss every step (balms checks it for
//! divergence; the official CIFAR code logs `loss.item()`), so both synchronise with the device
//! once per iteration.

pub mod augment;
pub mod cost;
pub mod decode;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use anyhow::{bail, Context};
use clap::ValueEnum;
use rand::Rng;
use serde::{Deserialize, Serialize};
use tch::{Device, Kind, Tensor};

use crate::data::augment::AugmentSpec;
use crate::data::inputs::Inputs;
use crate::data::{DataLocator, DatasetKind, Pool, RunData, ValidationInfo};
use crate::device::Precision;
use crate::loss::LossSpec;
use crate::matrix::{Length, Optimizer, Schedule, Settings};
use crate::model::{ClassifierSpec, ModelSpec};
use crate::sampler::SamplerSpec;
use crate::seed::Seed;
use crate::train::{self, Progress};
use crate::vocab::Selection;

/// A training workload that `balms bench` times on both sides (`--workloads`, spelled as
/// [`Workload::name`]); each has default warm-up and timed iterations and a target ratio.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Workload {
    /// MLP 64-256-256 on the embedded UCI digits (LT, IF 10), no augmentation.
    MlpDigits,
    /// The small CNN on Fashion-MNIST-LT (IF 100), no augmentation.
    CnnFashion,
    /// ResNet-32 on CIFAR-shaped data (seeded random 32x32x3 bytes, CIFAR-10-LT IF 100 counts),
    /// random crop (padding 4) and flip, as the official CIFAR recipe.
    Resnet32Cifar,
}

impl Workload {
    /// Name used on the command line and in reports.
    #[must_use]
    pub fn name(self) -> &'static str {
        match self {
            Workload::MlpDigits => "mlp-digits",
            Workload::CnnFashion => "cnn-fashion",
            Workload::Resnet32Cifar => "resnet32-cifar",
        }
    }

    /// The ratio of balms's images per second to the reference's that counts as on target; the
    /// report marks a lower ratio `(below target)`.
    #[must_use]
    pub fn target(self) -> f64 {
        match self {
            // Kernels dominate: at least the reference's speed.
            Workload::Resnet32Cifar => 1.0,
            // The reference pays Python and data-loading overhead.
            Workload::MlpDigits | Workload::CnnFashion => 1.5,
        }
    }

    /// Warm-up and timed iterations: the options' where given, else the workload's defaults
    /// (on a GPU, the ResNet-32 timing covers one CIFAR-10-LT epoch, 97 iterations).
    fn iterations(self, options: &BenchOptions) -> (u64, u64) {
        let (warmup, steps) = match (self, options.device.is_cuda()) {
            (Workload::MlpDigits, _) => (20, 400),
            (Workload::CnnFashion, false) => (5, 40),
            (Workload::Resnet32Cifar, false) => (3, 12),
            (Workload::CnnFashion, true) => (20, 200),
            (Workload::Resnet32Cifar, true) => (20, 97),
        };
        (options.warmup.unwrap_or(warmup), options.steps.unwrap_or(steps))
    }

    fn model(self) -> ModelSpec {
        match self {
            Workload::MlpDigits => ModelSpec::Mlp { hidden: vec![256, 256] },
            Workload::CnnFashion => ModelSpec::SmallCnn,
            Workload::Resnet32Cifar => ModelSpec::Resnet32,
        }
    }

    fn augment(self) -> AugmentSpec {
        match self {
            Workload::Resnet32Cifar => AugmentSpec::CropFlip { padding: 4 },
            Workload::MlpDigits | Workload::CnnFashion => AugmentSpec::None,
        }
    }
}

/// Settings of one `balms bench` invocation (from its command line); the reference is given the
/// same device, threads, batch, precision and memory format.
#[derive(Clone, Debug)]
pub struct BenchOptions {
    /// Workloads to time, in the order they are measured and reported (CLI default
    /// `mlp-digits,cnn-fashion,resnet32-cifar`).
    pub workloads: Vec<Workload>,
    /// Device for both sides.
    pub device: Device,
    /// Intra-op threads for both sides.
    pub threads: i32,
    /// Warm-up iterations `W` (default: the workload's).
    pub warmup: Option<u64>,
    /// Timed iterations `K` (default: the workload's).
    pub steps: Option<u64>,
    /// Training batch size of both sides, in images (CLI `--batch`, default 128); the speeds count
    /// `steps * batch` images.
    pub batch: u32,
    /// Python with PyTorch (and torchvision) for the reference; none: balms alone.
    pub python: Option<PathBuf>,
    /// Path of the PyTorch reference script, run with `python` (CLI default `bench/reference.py`);
    /// unused when `python` is `None`.
    pub script: PathBuf,
    /// The reference `DataLoader`'s `num_workers`.
    pub workers: u32,
    /// balms's forward precision (the reference uses the same).
    pub precision: Precision,
    /// Channels-last convolutions on both sides.
    pub channels_last: bool,
    /// Where Fashion-MNIST is looked for (the `cnn-fashion` workload); the digits are embedded and
    /// the CIFAR-shaped data is generated.
    pub locator: DataLocator,
    /// Folder for the exchanged data and checkpoints.
    pub scratch: PathBuf,
}

/// One workload's numbers.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Measurement {
    /// [`Workload::name`] of the measured workload (`mlp-digits`, `cnn-fashion` or
    /// `resnet32-cifar`).
    pub workload: String,
    /// Images in the workload's long-tailed training set (503 for `mlp-digits`, 12,406 for
    /// `resnet32-cifar`), not the number of images timed.
    pub images: usize,
    /// Warm-up and timed iterations.
    pub iterations: (u64, u64),
    /// balms: images per second in steady-state training.
    pub balms_images_per_second: f64,
    /// The reference's images per second, when it ran.
    pub reference_images_per_second: Option<f64>,
    /// balms over the reference.
    pub ratio: Option<f64>,
    /// The ratio asked for.
    pub target: f64,
    /// What the reference said of itself (torch version, device name, workers).
    pub reference: Option<serde_json::Value>,
}

/// A benchmark report, written as JSON and Markdown.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct BenchReport {
    /// balms version and git revision.
    pub balms: String,
    /// Version of the libtorch balms was built against (`BALMS_LIBTORCH_VERSION`, set by
    /// `build.rs`; `unknown` when it could not be read).
    pub libtorch: String,
    /// `cpu` or `cuda:N`.
    pub device: String,
    /// CPU model and logical cores of the machine.
    pub machine: String,
    /// Intra-op CPU threads of both sides (`--threads`: `tch::set_num_threads` for balms, passed on
    /// as `--threads` to the reference).
    pub threads: i32,
    /// Training batch size of both sides, in images (`--batch`).
    pub batch: u32,
    /// Forward precision of both sides, as [`Precision::label`] spells it: `f32` or
    /// `bf16-autocast`.
    pub precision: String,
    /// Whether both sides ran convolutions in the channels-last (NHWC) memory format
    /// (`--channels-last`).
    pub channels_last: bool,
    /// One [`Measurement`] per workload, in `--workloads` order.
    pub measurements: Vec<Measurement>,
}

/// Runs the benchmarks.
///
/// # Errors
/// Missing data, a failed training or a failed reference run (its output is quoted).
pub fn run(options: &BenchOptions) -> anyhow::Result<BenchReport> {
    std::fs::create_dir_all(&options.scratch)
        .with_context(|| format!("creating `{}`", options.scratch.display()))?;
    let mut measurements = Vec::new();
    for &workload in &options.workloads {
        eprintln!("bench {}: preparing data", workload.name());
        let (data, x) = workload_data(workload, options)?;
        let exchange = options.scratch.join(workload.name());
        write_exchange(&x, &data, &exchange)?;
        let balms = balms_images_per_second(workload, &data, options)?;
        eprintln!("bench {}: balms {balms:.0} img/s", workload.name());
        let reference = match &options.python {
            Some(python) => Some(fastest_reference(python, workload, &exchange, options)?),
            None => None,
        };
        let reference_speed = reference.as_ref().and_then(|r| r["images_per_second"].as_f64());
        if let Some(speed) = reference_speed {
            eprintln!("bench {}: reference {speed:.0} img/s", workload.name());
        }
        measurements.push(Measurement {
            workload: workload.name().to_string(),
            images: data.train_labels.len(),
            iterations: workload.iterations(options),
            balms_images_per_second: balms,
            reference_images_per_second: reference_speed,
            ratio: reference_speed.map(|r| balms / r),
            target: workload.target(),
            reference,
        });
    }
    Ok(BenchReport {
        balms: build_label(),
        libtorch: env!("BALMS_LIBTORCH_VERSION").to_string(),
        device: crate::device::label(options.device),
        machine: machine(),
        threads: options.threads,
        batch: options.batch,
        precision: options.precision.label().to_string(),
        channels_last: options.channels_last,
        measurements,
    })
}

/// The workload's training data on the device, with a two-image test and validation set so that
/// evaluation costs next to nothing, and the inputs the reference reads (float32 NCHW inputs, or
/// uint8 NHWC images for the CIFAR-shaped workload, on the CPU).
fn workload_data(workload: Workload, options: &BenchOptions) -> anyhow::Result<(RunData, Tensor)> {
    let (mut data, exchange) = match workload {
        Workload::MlpDigits | Workload::CnnFashion => {
            let (kind, imbalance) = if workload == Workload::MlpDigits {
                (DatasetKind::DigitsLt, 10.0)
            } else {
                (DatasetKind::FashionMnistLt, 100.0)
            };
            let data = Pool::load(&kind, &options.locator)?.long_tailed(
                imbalance,
                Seed(1),
                options.device,
            )?;
            let inputs = data.train_x.tensor().expect("in memory").to_device(Device::Cpu);
            (data, inputs)
        }
        Workload::Resnet32Cifar => cifar_shaped(options.device),
    };
    let head = data.train_x.tensor().expect("in memory").narrow(0, 0, 2);
    data.test_x = Inputs::Memory(head.shallow_clone());
    data.test_y = data.train_y.narrow(0, 0, 2);
    data.val_x = Inputs::Memory(head);
    data.val_y = data.test_y.shallow_clone();
    Ok((data, exchange))
}

/// balms's timings are the fastest of this many runs of each length.
const REPEATS: usize = 3;

/// CIFAR-10 channel means and standard deviations (the official code's `Normalize`).
const CIFAR_MEAN: [f64; 3] = [0.4914, 0.4822, 0.4465];
const CIFAR_STD: [f64; 3] = [0.2023, 0.1994, 0.2010];

/// Seeded random bytes in CIFAR's shape with CIFAR-10-LT IF 100 class counts: the run data
/// (normalised, NCHW; its test and validation sets are set by the caller) and the raw bytes
/// (NHWC) the reference reads.
fn cifar_shaped(device: Device) -> (RunData, Tensor) {
    let counts = crate::data::longtail::profile(5000, 100.0, 10);
    let labels: Vec<i64> = counts
        .iter()
        .enumerate()
        .flat_map(|(c, &n)| std::iter::repeat_n(i64::try_from(c).expect("fits"), n))
        .collect();
    let n = i64::try_from(labels.len()).expect("fits");
    let mut rng = Seed(1).rng("bench/cifar-shaped");
    let bytes: Vec<u8> = (0..n * 32 * 32 * 3).map(|_| rng.gen()).collect();
    let raw = Tensor::from_slice(&bytes).view([n, 32, 32, 3]);
    let mean = Tensor::from_slice(&CIFAR_MEAN).view([1, 3, 1, 1]);
    let std = Tensor::from_slice(&CIFAR_STD).view([1, 3, 1, 1]);
    let train_x = ((raw.permute([0, 3, 1, 2]).to_kind(Kind::Double) / 255.0 - mean) / std)
        .to_kind(Kind::Float)
        .contiguous()
        .to_device(device);
    let data = RunData {
        train_x: Inputs::Memory(train_x),
        train_y: Tensor::from_slice(&labels).to_device(device),
        train_labels: labels,
        val_x: Inputs::Memory(Tensor::zeros([0], (Kind::Float, device))),
        val_y: Tensor::zeros([0], (Kind::Int64, device)),
        test_x: Inputs::Memory(Tensor::zeros([0], (Kind::Float, device))),
        test_y: Tensor::zeros([0], (Kind::Int64, device)),
        class_counts: counts,
        indices_sha256: String::new(),
        validation: ValidationInfo {
            per_class: 0,
            from_training: 0,
            indices_sha256: String::new(),
        },
        pool_indices: None,
    };
    (data, raw)
}

/// Writes the reference's inputs `x.npy` and labels `y.npy` (int64) under `dir`.
fn write_exchange(x: &Tensor, data: &RunData, dir: &Path) -> anyhow::Result<()> {
    std::fs::create_dir_all(dir).with_context(|| format!("creating `{}`", dir.display()))?;
    x.write_npy(dir.join("x.npy")).context("writing x.npy")?;
    data.train_y.to_device(Device::Cpu).write_npy(dir.join("y.npy")).context("writing y.npy")?;
    Ok(())
}

/// Steady-state images per second of balms's training loop.
fn balms_images_per_second(
    workload: Workload,
    data: &RunData,
    options: &BenchOptions,
) -> anyhow::Result<f64> {
    let time = |iterations: u64| -> anyhow::Result<f64> {
        let settings = settings(workload, options, iterations);
        let checkpoint = options.scratch.join(format!("{}.ot", workload.name()));
        let seeds =
            crate::matrix::RunSeeds { seed: Seed(1), subset: 1, init: 2, order: 3, augment: 4 };
        let started = Instant::now();
        train::end_to_end(&settings, data, &seeds, options.device, &checkpoint, &mut Silent)?;
        Ok(started.elapsed().as_secs_f64())
    };
    let (warmup, steps) = workload.iterations(options);
    let (mut short, mut long) = (f64::INFINITY, f64::INFINITY);
    for _ in 0..REPEATS {
        short = short.min(time(warmup)?);
        long = long.min(time(warmup + steps)?);
    }
    if long <= short {
        bail!(
            "{}: timing did not grow with iterations ({short} s, {long} s); raise --steps",
            workload.name()
        );
    }
    Ok((steps * u64::from(options.batch)) as f64 / (long - short))
}

fn settings(workload: Workload, options: &BenchOptions, iterations: u64) -> Settings {
    Settings {
        model: workload.model(),
        classifier: ClassifierSpec::Linear,
        loss: LossSpec::Softmax,
        drw: None,
        sampler: SamplerSpec::Instance,
        length: Length::Iterations(u32::try_from(iterations).expect("fits")),
        batch_size: options.batch,
        optimizer: Optimizer { lr: 0.1, momentum: 0.9, weight_decay: 5e-4, nesterov: false },
        schedule: Schedule {
            warmup: Length::Iterations(0),
            warmup_start_factor: 1.0,
            stepping: crate::vocab::Stepping::Iteration,
        },
        augment: workload.augment(),
        selection: Selection::Last,
        precision: options.precision,
        channels_last: options.channels_last,
    }
}

/// No progress output.
struct Silent;

impl Progress for Silent {
    fn epoch(&mut self, _: u64, _: u64, _: f64, _: f64) {}
}

/// The fastest of [`REPEATS`] runs of the reference, as balms's timings are the fastest of its.
fn fastest_reference(
    python: &Path,
    workload: Workload,
    exchange: &Path,
    options: &BenchOptions,
) -> anyhow::Result<serde_json::Value> {
    let speed = |v: &serde_json::Value| v["images_per_second"].as_f64().unwrap_or(0.0);
    let mut best = reference(python, workload, exchange, options)?;
    for _ in 1..REPEATS {
        let next = reference(python, workload, exchange, options)?;
        if speed(&next) > speed(&best) {
            best = next;
        }
    }
    Ok(best)
}

/// Runs the reference script once and parses the JSON object it prints last.
fn reference(
    python: &Path,
    workload: Workload,
    exchange: &Path,
    options: &BenchOptions,
) -> anyhow::Result<serde_json::Value> {
    let device = if options.device.is_cuda() { "cuda" } else { "cpu" };
    let (warmup, steps) = workload.iterations(options);
    let output = Command::new(python)
        .arg(&options.script)
        .args(["--workload", workload.name(), "--device", device])
        .arg("--data")
        .arg(exchange)
        .args(["--threads", &options.threads.to_string()])
        .args(["--batch", &options.batch.to_string()])
        .args(["--warmup", &warmup.to_string()])
        .args(["--steps", &steps.to_string()])
        .args(["--workers", &options.workers.to_string()])
        .args(["--precision", options.precision.label()])
        .args(if options.channels_last { &["--channels-last"][..] } else { &[] })
        .output()
        .with_context(|| format!("starting the reference `{}`", python.display()))?;
    let stdout = String::from_utf8_lossy(&output.stdout);
    if !output.status.success() {
        bail!(
            "reference `{}` failed on {} ({}):\n{}",
            options.script.display(),
            workload.name(),
            output.status,
            String::from_utf8_lossy(&output.stderr)
        );
    }
    let last = stdout.lines().last().unwrap_or_default();
    serde_json::from_str(last)
        .with_context(|| format!("the reference printed no JSON result: `{last}`"))
}

/// balms's version and the git revision it was built from (`+dirty` when its sources differed).
fn build_label() -> String {
    let dirty = if env!("BALMS_GIT_DIRTY") == "true" { "+dirty" } else { "" };
    format!("{} ({}{dirty})", env!("CARGO_PKG_VERSION"), env!("BALMS_GIT_REVISION"))
}

/// CPU model and logical cores, from `/proc/cpuinfo`.
pub(crate) fn machine() -> String {
    let info = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let model = info
        .lines()
        .find_map(|l| l.strip_prefix("model name").map(|r| r.trim_start_matches([' ', '\t', ':'])))
        .unwrap_or("unknown CPU");
    let cores = std::thread::available_parallelism().map_or(0, std::num::NonZero::get);
    format!("{model}, {cores} logical cores")
}

impl BenchReport {
    /// Markdown: one row per workload.
    #[must_use]
    pub fn markdown(&self, date: &str) -> String {
        use std::fmt::Write as _;
        let mut out = format!(
            "# balms vs PyTorch reference ({date})\n\nbalms {}, libtorch {}, device {}, {}; {} \
             threads, batch {}, precision {}, channels-last {}. each side's \
             fastest of {REPEATS} runs (balms: runs of W and of W + K iterations; the reference: K \
             iterations after W).\n\n",
            self.balms,
            self.libtorch,
            self.device,
            self.machine,
            self.threads,
            self.batch,
            self.precision,
            self.channels_last
        );
        out.push_str(
            "| workload | images | W + K | balms img/s | reference img/s | ratio | target |\n",
        );
        out.push_str("|---|---:|---:|---:|---:|---:|---:|\n");
        for m in &self.measurements {
            let reference = m
                .reference_images_per_second
                .map_or_else(|| "-".to_string(), |r| format!("{r:.0}"));
            let ratio = m.ratio.map_or_else(
                || "-".to_string(),
                |r| format!("{r:.2}x{}", if r >= m.target { "" } else { " (below target)" }),
            );
            let _ = writeln!(
                out,
                "| {} | {} | {} + {} | {:.0} | {reference} | {ratio} | {:.1}x |",
                m.workload,
                m.images,
                m.iterations.0,
                m.iterations.1,
                m.balms_images_per_second,
                m.target
            );
        }
        out
    }
}

/// Today's date in UTC, `YYYY-MM-DD` (civil-from-days, H. Hinnant).
#[must_use]
pub fn utc_date() -> String {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let days = i64::try_from(secs / 86_400).expect("fits");
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!("{year:04}-{month:02}-{day:02}")
}

/// Matrix throughput at one (jobs, threads-per-run) setting.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Throughput {
    /// Worker processes (`--jobs`).
    pub jobs: usize,
    /// Threads per run.
    pub threads: i32,
    /// Runs of the matrix (cells x seeds), all trained from scratch at this setting.
    pub runs: usize,
    /// Wall seconds of the whole matrix.
    pub seconds: f64,
    /// `runs * 3600 / seconds`: the matrix's throughput at this setting.
    pub runs_per_hour: f64,
}

/// Runs `matrix` from scratch (under `scratch`) once per `(jobs, threads)` setting with this
/// executable, timing each whole invocation.
///
/// # Errors
/// A matrix that does not load, or a run that fails.
pub fn throughput(
    matrix: &Path,
    settings: &[(usize, i32)],
    data_dir: Option<&Path>,
    scratch: &Path,
) -> anyhow::Result<Vec<Throughput>> {
    let plan = crate::matrix::Plan::load(matrix)?;
    let runs = plan.cells().len() * plan.seeds.len();
    let exe = std::env::current_exe().context("locating the balms executable")?;
    let mut rows = Vec::new();
    for &(jobs, threads) in settings {
        let results = scratch.join(format!("throughput-j{jobs}-t{threads}"));
        if results.exists() {
            std::fs::remove_dir_all(&results)
                .with_context(|| format!("clearing `{}`", results.display()))?;
        }
        let mut command = Command::new(&exe);
        command
            .arg("run")
            .arg(matrix)
            .arg("--results")
            .arg(&results)
            .args(["--jobs", &jobs.to_string(), "--threads", &threads.to_string()])
            .args(["--device", "cpu", "--no-progress"]);
        if let Some(dir) = data_dir {
            command.arg("--data-dir").arg(dir);
        }
        eprintln!("bench throughput: {jobs} job(s) x {threads} thread(s)");
        let started = Instant::now();
        let output = command.output().context("starting `balms run`")?;
        let seconds = started.elapsed().as_secs_f64();
        if !output.status.success() {
            bail!("`balms run --jobs {jobs}` failed:\n{}", String::from_utf8_lossy(&output.stderr));
        }
        let runs_per_hour = runs as f64 * 3600.0 / seconds;
        rows.push(Throughput { jobs, threads, runs, seconds, runs_per_hour });
    }
    Ok(rows)
}

/// A Markdown page for `rows`: a header naming `matrix`, the machine and the balms build, then one
/// table row per setting with its runs per hour relative to the first row.
#[must_use]
pub fn throughput_markdown(matrix: &Path, rows: &[Throughput], date: &str) -> String {
    use std::fmt::Write as _;
    let mut out = format!(
        "# Matrix throughput ({date})\n\n`{}` from scratch on {}, CPU, balms {}.\n\n\
         | jobs | threads per run | runs | seconds | runs per hour | vs first row |\n\
         |---:|---:|---:|---:|---:|---:|\n",
        matrix.display(),
        machine(),
        build_label(),
    );
    let first = rows.first().map_or(1.0, |r| r.runs_per_hour);
    for r in rows {
        let _ = writeln!(
            out,
            "| {} | {} | {} | {:.1} | {:.0} | {:.2}x |",
            r.jobs,
            r.threads,
            r.runs,
            r.seconds,
            r.runs_per_hour,
            r.runs_per_hour / first
        );
    }
    out
}

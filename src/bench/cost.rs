//! `balms plan --cost`: a matrix's projected wall time on this machine, from its own training
//! paths timed now.
//!
//! Each distinct workload of the plan (a dataset's input shape and training size, with the model,
//! batch, augmentation and precision of an end-to-end method; for stage 2 also its features mode
//! and whether it runs the Meta Sampler; losses and other samplers cost little and are not told
//! apart) is trained on seeded random data of the dataset's shape through the real trainers, for
//! `W` and for `W + K` iterations, after one untimed run that warms the process up: the slope is the
//! seconds per iteration, the intercept the fixed cost (building the model, caching features, the
//! test evaluation on a test set of the dataset's size). A run is priced at `intercept + iterations
//! x slope` (a stage-2 run reuses its stage-1 run, priced as a cell of its own). Workloads are timed at
//! a dataset's first imbalance factor and priced at the others with the same numbers. Image-list
//! datasets are not priced (their cost is decoding; `just bench` measures it).

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::Path;
use std::time::Instant;

use rand::Rng;
use tch::{Device, Tensor};

use crate::data::inputs::Inputs;
use crate::data::{RunData, ValidationInfo, VAL_PER_CLASS};
use crate::loss::LossSpec;
use crate::matrix::{Cell, Length, Plan, RunSeeds, Scheme};
use crate::sampler::SamplerSpec;
use crate::seed::Seed;
use crate::train::schedule::Timeline;
use crate::train::{self, Progress};
use crate::vocab::Stepping;

/// Iterations of the short calibration runs: `W`, then `W + K` (on 2 CPU cores, 2 and 6
/// iterations of ResNet-32 took the same time, their difference lost in the fixed cost's noise).
const WARMUP: u32 = 4;
const TIMED: u32 = 12;

/// A workload's measured cost.
#[derive(Clone, Copy, Debug)]
struct Timing {
    /// Seconds per iteration.
    slope: f64,
    /// Seconds of a run that trains nothing.
    intercept: f64,
}

impl Timing {
    fn of(&self, iterations: u64) -> f64 {
        self.intercept + self.slope * iterations as f64
    }
}

/// One priced run of the plan.
#[derive(Debug)]
pub struct RunCost {
    /// Cell id.
    pub cell: String,
    /// Iterations it trains.
    pub iterations: u64,
    /// Projected seconds.
    pub seconds: f64,
}

/// The projection for a plan.
#[derive(Debug)]
pub struct PlanCost {
    /// Every priced run, in plan order (each of the plan's seeds costs the same).
    pub runs: Vec<RunCost>,
    /// Seeds per cell.
    pub seeds: usize,
    /// Cells not priced, with why.
    pub skipped: Vec<String>,
    /// The device and threads it was measured on.
    pub measured_on: String,
}

impl PlanCost {
    /// Total projected seconds of the whole plan, one run at a time.
    #[must_use]
    pub fn total_seconds(&self) -> f64 {
        self.runs.iter().map(|r| r.seconds).sum::<f64>() * self.seeds as f64
    }

    /// The projection as text.
    #[must_use]
    pub fn render(&self) -> String {
        let mut out = format!(
            "\ncost, measured now on {} (a projection from short runs of the real training paths, not a promise):\n",
            self.measured_on
        );
        for run in &self.runs {
            let _ = writeln!(
                out,
                "  {}: {} iterations, {} per run",
                run.cell,
                run.iterations,
                duration(run.seconds)
            );
        }
        for why in &self.skipped {
            let _ = writeln!(out, "  not priced: {why}");
        }
        let _ = writeln!(
            out,
            "  total: {} runs ({} seeds), {} one run at a time (--jobs N shares the machine, not the work)",
            self.runs.len() * self.seeds,
            self.seeds,
            duration(self.total_seconds())
        );
        out
    }
}

/// Seconds as `1 h 05 min`, `3 min 20 s` or `12.3 s`.
#[must_use]
pub fn duration(seconds: f64) -> String {
    #[expect(clippy::cast_possible_truncation, clippy::cast_sign_loss, reason = "a duration")]
    let s = seconds.round() as u64;
    if s >= 3600 {
        format!("{} h {:02} min", s / 3600, (s % 3600) / 60)
    } else if s >= 60 {
        format!("{} min {:02} s", s / 60, s % 60)
    } else {
        format!("{seconds:.1} s")
    }
}

/// Quiet progress for calibration runs.
struct Silent;

impl Progress for Silent {
    fn epoch(&mut self, _: u64, _: u64, _: f64, _: f64) {}
}

/// Seeded random run data in the shape of `cell`'s dataset: its training counts at the cell's
/// imbalance factor, [`VAL_PER_CLASS`] validation images per class, and a test set of its size.
fn synthetic(cell: &Cell, counts: &[usize], device: Device) -> RunData {
    let dataset = &cell.column.dataset;
    let shape = dataset.input_shape();
    let classes = counts.len();
    let test: usize = dataset
        .descriptor()
        .test_images
        .counts(classes)
        .map_or(classes * 100, |c| c.iter().map(|&n| usize::try_from(n).expect("fits")).sum());
    let mut rng = Seed(1).rng("cost/synthetic");
    let mut inputs = |n: usize| -> Tensor {
        let per = usize::try_from(shape.iter().product::<i64>()).expect("fits");
        let mut full = vec![i64::try_from(n).expect("fits")];
        full.extend_from_slice(&shape);
        let x = if shape.first() == Some(&3) && shape.len() == 3 {
            // RGB image bytes normalised as CIFAR's (the `cifar` augmentation recovers them).
            let bytes: Vec<u8> = (0..n * per).map(|_| rng.gen()).collect();
            crate::data::cifar::normalised(&Tensor::from_slice(&bytes).view(&full[..]))
        } else {
            let values: Vec<f32> = (0..n * per).map(|_| rng.gen::<f32>() - 0.5).collect();
            Tensor::from_slice(&values).view(&full[..])
        };
        x.to_device(device)
    };
    let labels = |per_class: &[usize]| -> Vec<i64> {
        per_class
            .iter()
            .enumerate()
            .flat_map(|(c, &n)| std::iter::repeat_n(i64::try_from(c).expect("fits"), n))
            .collect()
    };
    let train_labels = labels(counts);
    let val_labels = labels(&vec![VAL_PER_CLASS; classes]);
    let test_labels: Vec<i64> =
        (0..test).map(|i| i64::try_from(i % classes).expect("fits")).collect();
    let n = train_labels.len();
    RunData {
        train_x: Inputs::Memory(inputs(n)),
        train_y: Tensor::from_slice(&train_labels).to_device(device),
        train_labels,
        val_x: Inputs::Memory(inputs(val_labels.len())),
        val_y: Tensor::from_slice(&val_labels).to_device(device),
        test_x: Inputs::Memory(inputs(test)),
        test_y: Tensor::from_slice(&test_labels).to_device(device),
        class_counts: counts.to_vec(),
        indices_sha256: String::new(),
        validation: ValidationInfo {
            per_class: VAL_PER_CLASS,
            from_training: 0,
            indices_sha256: String::new(),
        },
        pool_indices: None,
    }
}

/// A calibration cell: `cell` with its training length set to exactly `iterations` (stepped per
/// iteration: the official epochs would round a few iterations up to an epoch).
fn with_iterations(cell: &Cell, iterations: u32) -> Cell {
    let mut cell = cell.clone();
    match &mut cell.method.scheme {
        Scheme::EndToEnd(s) => {
            s.length = Length::Iterations(iterations);
            s.schedule.stepping = Stepping::Iteration;
            s.selection = crate::vocab::Selection::Last;
        }
        Scheme::Decoupled(s) => {
            s.iterations = iterations;
            s.stepping = Stepping::Iteration;
            s.selection = crate::vocab::Selection::Last;
        }
    }
    cell
}

/// What a cell's time per iteration depends on, as a map key: its settings without the length,
/// and without the loss and the sampler, which cost little beside the backbone (the Meta Sampler
/// and Reweighter excepted).
fn workload_key(plan: &Plan, cell: &Cell) -> String {
    let dataset = cell.column.dataset.name().to_string();
    let strip = |c: &Cell| {
        let mut c = with_iterations(c, 0);
        match &mut c.method.scheme {
            Scheme::EndToEnd(s) => {
                s.loss = LossSpec::Softmax;
                s.sampler = SamplerSpec::Instance;
                s.drw = None;
            }
            Scheme::Decoupled(s) => {
                s.loss = LossSpec::Softmax;
                if s.sampler.meta().is_none() {
                    s.sampler = SamplerSpec::Instance;
                }
            }
        }
        serde_json::to_string(&c.method.scheme).expect("serialises")
    };
    match &cell.method.scheme {
        Scheme::EndToEnd(_) => format!("{dataset} {}", strip(cell)),
        Scheme::Decoupled(_) => {
            let stage1 = plan.stage1_cell(cell).expect("decoupled");
            format!("{dataset} {} after {}", strip(cell), strip(&stage1))
        }
    }
}

/// Times `cell` (and, for stage 2, its stage 1 once for the checkpoint) on `data`.
fn calibrate(
    plan: &Plan,
    cell: &Cell,
    data: &RunData,
    device: Device,
    dir: &Path,
) -> anyhow::Result<Timing> {
    let seeds = RunSeeds::new(cell, Seed(1));
    let time = |iterations: u32| -> anyhow::Result<f64> {
        let short = with_iterations(cell, iterations);
        let started = Instant::now();
        match &short.method.scheme {
            Scheme::EndToEnd(settings) => {
                train::end_to_end(
                    settings,
                    data,
                    &seeds,
                    device,
                    &dir.join("e2e.ot"),
                    &mut Silent,
                )?;
            }
            Scheme::Decoupled(stage2) => {
                let stage1 = with_iterations(&plan.stage1_cell(cell).expect("decoupled"), 1);
                let Scheme::EndToEnd(settings) = &stage1.method.scheme else {
                    unreachable!("validated: stage 1 is end to end")
                };
                let checkpoint = dir.join("stage1.ot");
                if !checkpoint.exists() {
                    let s1 = RunSeeds::new(&stage1, Seed(1));
                    train::end_to_end(settings, data, &s1, device, &checkpoint, &mut Silent)?;
                }
                let started = Instant::now();
                train::stage2(stage2, settings, data, &seeds, device, &checkpoint, &mut Silent)?;
                return Ok(started.elapsed().as_secs_f64());
            }
        }
        Ok(started.elapsed().as_secs_f64())
    };
    let short = time(WARMUP)?;
    let long = time(WARMUP + TIMED)?;
    eprintln!("  {WARMUP} iterations {short:.1} s, {} iterations {long:.1} s", WARMUP + TIMED);
    let slope = ((long - short) / f64::from(TIMED)).max(0.0);
    Ok(Timing { slope, intercept: (short - slope * f64::from(WARMUP)).max(0.0) })
}

/// Iterations `cell` trains on a training subset of `counts` images per class (the official
/// epochs' count where the cell steps per epoch; 0 where it cannot train).
fn iterations(cell: &Cell, counts: &[usize]) -> u64 {
    let timeline = match &cell.method.scheme {
        Scheme::EndToEnd(s) => Timeline::new(
            s.schedule.stepping,
            counts,
            s.batch_size as usize,
            &s.sampler,
            s.length,
            s.schedule.warmup,
        ),
        Scheme::Decoupled(s) if s.classifier.is_post_hoc() => return 0,
        Scheme::Decoupled(s) => Timeline::of_stage2(s, counts),
    };
    timeline.map_or(0, |t| t.iterations())
}

/// Measures and prices every cell of `plan` on `device` (threads as set by the caller), saying on
/// standard error which workload it is timing.
///
/// # Errors
/// A calibration run that fails (it trains the real code on random data), or a scratch folder
/// that cannot be made.
pub fn project(plan: &Plan, device: Device, threads: i32) -> anyhow::Result<PlanCost> {
    let scratch = tempfile_dir()?;
    let mut timings: BTreeMap<String, Timing> = BTreeMap::new();
    let mut data_of: BTreeMap<String, RunData> = BTreeMap::new();
    let mut runs = Vec::new();
    let mut skipped = Vec::new();
    for cell in plan.cells() {
        if cell.method.external.is_some() {
            skipped.push(format!("{} (an external command: not timed)", cell.id()));
            continue;
        }
        let dataset = cell.column.dataset.name().to_string();
        let Some(counts) = cell.column.dataset.class_counts(cell.column.imbalance) else {
            skipped.push(format!("{} (image lists: decoding-bound, see `just bench`)", cell.id()));
            continue;
        };
        let key = workload_key(plan, &cell);
        if !timings.contains_key(&key) {
            let data = data_of.entry(dataset).or_insert_with(|| synthetic(&cell, &counts, device));
            if timings.is_empty() {
                // The process's first training run pays for warming libtorch up: untimed.
                let dir = scratch.join("warm-up");
                std::fs::create_dir_all(&dir)?;
                let first = plan.stage1_cell(&cell).unwrap_or_else(|| cell.clone());
                let Scheme::EndToEnd(settings) = &with_iterations(&first, 1).method.scheme else {
                    unreachable!("a stage 1 is end to end")
                };
                let seeds = RunSeeds::new(&first, Seed(1));
                train::end_to_end(settings, data, &seeds, device, &dir.join("m.ot"), &mut Silent)?;
            }
            eprintln!("cost: timing {}", cell.id());
            let dir = scratch.join(format!("w{}", timings.len()));
            std::fs::create_dir_all(&dir)?;
            timings.insert(key.clone(), calibrate(plan, &cell, data, device, &dir)?);
        }
        let timing = timings[&key];
        let iterations = iterations(&cell, &counts);
        runs.push(RunCost { cell: cell.id(), iterations, seconds: timing.of(iterations) });
    }
    let _ = std::fs::remove_dir_all(&scratch);
    Ok(PlanCost {
        runs,
        seeds: plan.seeds.len(),
        skipped,
        measured_on: format!("{}, {threads} threads", crate::device::label(device)),
    })
}

/// A fresh scratch folder under the system's temporary folder.
fn tempfile_dir() -> anyhow::Result<std::path::PathBuf> {
    let dir = std::env::temp_dir().join(format!("balms-cost-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    Ok(dir)
}

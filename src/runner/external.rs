//! External methods: a run trained by a command (a PyTorch script, say) instead of balms's
//! trainer, on the same data, seeds and settings, recorded like any other run.
//!
//! The contract (version [`CONTRACT`]; README, "External methods"):
//!
//! ```text
//! <run>/external/
//!   run.json       what balms gives: run id, seeds, dataset (name, classes, imbalance factor,
//!                  class counts, source, input shape, the training and validation rows' positions
//!                  in the dataset's training pool), the arrays file, the method's settings, the
//!                  stage-1 run's output folder for a decoupled method, device, threads
//!   data.npz       train_x, train_y, val_x, val_y, test_x, test_y: the run's rows, normalised as
//!                  balms normalises them (float32 [N, C, H, W]; labels int64); removed afterwards
//!   out/           the command's folder: its models, and its metrics.json
//!   stdout.log, stderr.log
//! ```
//!
//! The command runs as `<command> --run <run.json> --out <out>` with `OMP_NUM_THREADS` set to the
//! run's threads, and must write `out/metrics.json`: `test-predictions` and
//! `validation-predictions` (the predicted class of every test and validation row, in order),
//! `marginal-likelihood` (p(y): the mean softmax probability of each class over the test set,
//! summing to 1) and `iterations` (the optimiser steps it took), and optionally
//! `final-train-loss`, `meta-rates` (rows of per-class rates in [0, 1]), `environment` (names to
//! versions, e.g. `torch`) and `sources` (the files it ran beyond those on its command line, e.g.
//! modules it imports, hashed into the record) and `metrics` (named scalars, e.g. Table 4's
//! `APm`, recorded and aggregated by the reporter). balms scores the predictions with its own
//! evaluation, test and validation alike, so every method is scored by one evaluator.
//! Contract 1 took `validation-top1` as reported and left `iterations` and `sources` out. A command that fails, times out or
//! writes a malformed file fails the run, with the tail of its stderr or the field at fault.

use std::collections::BTreeMap;
use std::io::Read as _;
use std::os::unix::process::CommandExt as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use serde::{Deserialize, Serialize};
use tch::Tensor;
use wait_timeout::ChildExt;

use crate::data::inputs::Inputs;
use crate::data::RunData;
use crate::matrix::{Cell, External, Plan};
use crate::store::ExternalRecord;
use crate::train::evaluate;
use crate::train::{TrainError, Trained};

/// Version of the contract `run.json` states and this module reads.
pub const CONTRACT: u32 = 2;

/// Lines of the command's stderr quoted when it fails.
const STDERR_TAIL: usize = 20;

/// `run.json`.
#[derive(Serialize)]
#[serde(rename_all = "kebab-case")]
struct RunFile<'a> {
    contract: u32,
    run: String,
    seed: u64,
    seeds: Seeds,
    dataset: DatasetFile<'a>,
    /// The arrays, absolute path.
    data: PathBuf,
    method: &'a crate::matrix::Method,
    stage1: Option<Stage1File<'a>>,
    device: String,
    threads: i32,
    /// The command's output folder, absolute path.
    out: PathBuf,
}

#[derive(Serialize)]
struct Seeds {
    init: u64,
    order: u64,
    augment: u64,
}

#[derive(Serialize)]
#[serde(rename_all = "kebab-case")]
struct DatasetFile<'a> {
    name: &'a str,
    classes: usize,
    imbalance: f64,
    class_counts: &'a [usize],
    source: &'a str,
    input_shape: Vec<i64>,
    train_indices: &'a [usize],
    validation_indices: &'a [usize],
}

#[derive(Serialize)]
struct Stage1File<'a> {
    method: &'a crate::matrix::Method,
    /// The stage-1 run's output folder (its models), absolute path.
    out: PathBuf,
}

/// `out/metrics.json` as the command writes it.
#[derive(Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
struct Reported {
    test_predictions: Vec<i64>,
    validation_predictions: Vec<i64>,
    marginal_likelihood: Vec<f64>,
    iterations: u64,
    #[serde(default)]
    final_train_loss: Option<f64>,
    #[serde(default)]
    meta_rates: Option<Vec<Vec<f64>>>,
    #[serde(default)]
    environment: BTreeMap<String, serde_json::Value>,
    #[serde(default)]
    sources: Vec<PathBuf>,
    #[serde(default)]
    metrics: BTreeMap<String, f64>,
}

/// What a command's run gives: the run scored by balms, the record of what ran, and the named
/// metrics it reported.
pub(super) type Outcome = (Trained, ExternalRecord, BTreeMap<String, f64>);

/// Where a run's external files are.
pub(super) fn folder(run_dir: &Path) -> PathBuf {
    run_dir.join("external")
}

/// Whether the run in `run_dir` has its command's outputs (`external/out/metrics.json`; not
/// committed, so absent in a fresh clone).
pub(super) fn outputs_present(run_dir: &Path) -> bool {
    folder(run_dir).join("out/metrics.json").is_file()
}

/// Everything a command needs from the runner.
#[derive(Clone)]
pub(super) struct ExternalRun<'a> {
    pub plan: &'a Plan,
    pub cell: &'a Cell,
    pub seed: u64,
    pub seeds: &'a crate::matrix::RunSeeds,
    pub run_dir: &'a Path,
    /// The stage-1 cell and its run folder, for a decoupled method.
    pub stage1: Option<(&'a Cell, PathBuf)>,
    pub device: String,
    pub threads: i32,
    /// Where the data came from (the provenance's `data_source`).
    pub source: &'a str,
    /// Rerunning a finished run for its outputs alone: its logs go to `out/`, leaving the
    /// recorded ones as they are.
    pub outputs_only: bool,
}

/// Runs `external` for one run: writes its data and `run.json`, runs the command and reads what
/// it reports back, as a [`Trained`] and the record of what ran.
///
/// # Errors
/// A dataset not held in memory, files that cannot be written, a command that cannot start,
/// fails, times out (or is interrupted: [`TrainError::Interrupted`]) or writes a malformed
/// `metrics.json`.
pub(super) fn run(
    external: &External,
    context: &ExternalRun<'_>,
    data: &RunData,
    stop_requested: &dyn Fn() -> bool,
) -> anyhow::Result<Outcome> {
    let dir = folder(context.run_dir);
    let out = dir.join("out");
    let stage1 = match &context.stage1 {
        None => None,
        Some((cell, run_dir)) => {
            let out = absolute(&folder(run_dir).join("out"))?;
            if !outputs_present(run_dir) {
                bail!(
                    "the external stage-1 run `{}` seed {} has no outputs in `{}`",
                    cell.id(),
                    context.seed,
                    out.display()
                );
            }
            Some(Stage1File { method: &cell.method, out })
        }
    };
    if out.exists() {
        std::fs::remove_dir_all(&out).with_context(|| format!("clearing `{}`", out.display()))?;
    }
    std::fs::create_dir_all(&out).with_context(|| format!("creating `{}`", out.display()))?;
    let arrays = dir.join("data.npz");
    let run_json = dir.join("run.json");
    let outcome = write_arrays(data, &arrays).and_then(|()| {
        run_command(external, context, data, stage1, (&arrays, &run_json, &out), stop_requested)
    });
    // The arrays are the run's data again: not worth keeping, whatever happened.
    let _ = std::fs::remove_file(&arrays);
    outcome?;
    let reported = read_reported(&out.join("metrics.json"), data)?;
    let record = ExternalRecord {
        command: external.command.clone(),
        files_sha256: file_hashes(&external.command, &reported.sources)?,
        environment: reported.environment.clone(),
        model_sha256: None,
        start_sha256: None,
    };
    let named = reported.metrics.clone();
    Ok((trained(reported, data), record, named))
}

/// Writes `run.json` and runs the command, logging what ran.
fn run_command(
    external: &External,
    context: &ExternalRun<'_>,
    data: &RunData,
    stage1: Option<Stage1File<'_>>,
    (arrays, run_json, out): (&Path, &Path, &Path),
    stop_requested: &dyn Fn() -> bool,
) -> anyhow::Result<()> {
    let dir = folder(context.run_dir);
    let indices = data.pool_indices.as_ref().expect("checked by write_arrays");
    let file = RunFile {
        contract: CONTRACT,
        run: context.cell.id(),
        seed: context.seed,
        seeds: Seeds {
            init: context.seeds.init,
            order: context.seeds.order,
            augment: context.seeds.augment,
        },
        dataset: DatasetFile {
            name: context.cell.column.dataset.name(),
            classes: data.class_counts.len(),
            imbalance: context.cell.column.imbalance,
            class_counts: &data.class_counts,
            source: context.source,
            input_shape: data.train_x.sample_shape(),
            train_indices: &indices.train,
            validation_indices: &indices.validation,
        },
        data: absolute(arrays)?,
        method: &context.cell.method,
        stage1,
        device: context.device.clone(),
        threads: context.threads,
        out: absolute(out)?,
    };
    crate::store::write_json(run_json, &file)?;
    let command = resolve(&external.command, context.plan.python.as_deref());
    let started = Instant::now();
    let logs = if context.outputs_only { out.to_path_buf() } else { dir };
    let outcome = execute(&command, run_json, out, &logs, context, external, stop_requested);
    if context.outputs_only {
        return outcome;
    }
    let logged = crate::store::Store::log(
        context.run_dir,
        &serde_json::json!({"type": "external", "command": command, "seconds": started.elapsed().as_secs_f64(), "ok": outcome.is_ok()}),
    );
    outcome?;
    Ok(logged?)
}

/// The interpreter `{python}` stands for: `BALMS_PYTHON`, else the matrix's `python`, else
/// `.venv-ref/bin/python` (`just bench-setup` makes it).
#[must_use]
pub fn python(matrix_python: Option<&Path>) -> PathBuf {
    std::env::var_os("BALMS_PYTHON").map_or_else(
        || matrix_python.map_or_else(|| PathBuf::from(".venv-ref/bin/python"), Path::to_path_buf),
        PathBuf::from,
    )
}

/// The command with `{python}` replaced by [`python`].
fn resolve(command: &[String], matrix_python: Option<&Path>) -> Vec<String> {
    let python = python(matrix_python).display().to_string();
    command.iter().map(|a| a.replace("{python}", &python)).collect()
}

pub(super) fn absolute(path: &Path) -> anyhow::Result<PathBuf> {
    std::path::absolute(path).with_context(|| format!("resolving `{}`", path.display()))
}

/// The run's rows, normalised, as `data.npz`.
fn write_arrays(data: &RunData, path: &Path) -> anyhow::Result<()> {
    let memory = |inputs: &Inputs| {
        match inputs {
        Inputs::Memory(x) => Ok(x.to_device(tch::Device::Cpu)),
        Inputs::Files { .. } => Err(anyhow::anyhow!(
            "external methods need a dataset held in memory; image-list datasets are not supported yet"
        )),
    }
    };
    if data.pool_indices.is_none() {
        bail!("external methods need a dataset drawn from a pool held in memory");
    }
    let cpu = |t: &Tensor| t.to_device(tch::Device::Cpu);
    let arrays = [
        ("train_x", memory(&data.train_x)?),
        ("train_y", cpu(&data.train_y)),
        ("val_x", memory(&data.val_x)?),
        ("val_y", cpu(&data.val_y)),
        ("test_x", memory(&data.test_x)?),
        ("test_y", cpu(&data.test_y)),
    ];
    write_npz(&arrays, path).with_context(|| format!("writing `{}`", path.display()))
}

/// `arrays` as an uncompressed `.npz`, every write checked: each array through tch's `.npy`
/// writer into a file beside `path`, copied into the archive, whose directory (written last, by
/// `finish`) is checked too, then synced.
fn write_npz(arrays: &[(&str, Tensor)], path: &Path) -> anyhow::Result<()> {
    crate::files::before_write(path)?;
    let file = std::fs::File::create(path)?;
    let mut zip = zip::ZipWriter::new(file);
    let options =
        zip::write::FileOptions::default().compression_method(zip::CompressionMethod::Stored);
    let npy = path.with_extension("npy.tmp");
    let copied = arrays.iter().try_for_each(|(name, tensor)| -> anyhow::Result<()> {
        tensor.write_npy(&npy)?;
        zip.start_file(format!("{name}.npy"), options)?;
        std::io::copy(&mut std::fs::File::open(&npy)?, &mut zip)?;
        Ok(())
    });
    let _ = std::fs::remove_file(&npy);
    copied?;
    zip.finish()?.sync_all()?;
    Ok(())
}

/// Runs the command to its end, its time limit or a stop request.
fn execute(
    command: &[String],
    run_json: &Path,
    out: &Path,
    dir: &Path,
    context: &ExternalRun<'_>,
    external: &External,
    stop_requested: &dyn Fn() -> bool,
) -> anyhow::Result<()> {
    let mut process = Command::new(&command[0]);
    process
        .args(&command[1..])
        .arg("--run")
        .arg(run_json)
        .arg("--out")
        .arg(out)
        .env("OMP_NUM_THREADS", context.threads.to_string())
        .env("MKL_NUM_THREADS", context.threads.to_string());
    run_logged(process, &command.join(" "), dir, external.timeout_seconds, stop_requested)
}

/// Runs `process` (shown in messages as `shown`) to its end, its time limit of `timeout_seconds`
/// or a stop request, its stdout and stderr in `dir`'s `stdout.log` and `stderr.log`, in a
/// process group of its own (a stop or a time-out kills the group: wrappers' children too).
///
/// # Errors
/// A command that cannot start, fails (the tail of its stderr quoted), runs past its time limit,
/// or is stopped ([`TrainError::Interrupted`]).
pub(super) fn run_logged(
    mut process: Command,
    shown: &str,
    dir: &Path,
    timeout_seconds: u64,
    stop_requested: &dyn Fn() -> bool,
) -> anyhow::Result<()> {
    let log = |name: &str| {
        let path = dir.join(name);
        std::fs::File::create(&path).with_context(|| format!("creating `{}`", path.display()))
    };
    let mut child = process
        .stdin(Stdio::null())
        .stdout(log("stdout.log")?)
        .stderr(log("stderr.log")?)
        // Its own process group: a terminal's Ctrl-C reaches balms, which stops the whole
        // group (wrappers' children too), not the command alone.
        .process_group(0)
        .spawn()
        .with_context(|| format!("cannot start `{shown}`"))?;
    let started = Instant::now();
    let limit = Duration::from_secs(timeout_seconds);
    let group = nix::unistd::Pid::from_raw(i32::try_from(child.id()).expect("a pid"));
    let status = loop {
        let waited = child.wait_timeout(Duration::from_millis(100));
        let stop = stop_requested();
        if stop {
            let _ = nix::sys::signal::killpg(group, nix::sys::signal::Signal::SIGKILL);
            let _ = child.wait();
            return Err(TrainError::Interrupted.into());
        }
        match waited {
            Ok(Some(status)) => break status,
            Ok(None) => {}
            Err(err) => {
                let _ = nix::sys::signal::killpg(group, nix::sys::signal::Signal::SIGKILL);
                let _ = child.wait();
                return Err(anyhow::Error::from(err).context(format!("waiting for `{shown}`")));
            }
        }
        if started.elapsed() >= limit {
            let _ = nix::sys::signal::killpg(group, nix::sys::signal::Signal::SIGKILL);
            let _ = child.wait();
            bail!(
                "`{shown}` ran past its time limit of {timeout_seconds} s and was stopped{}",
                stderr_tail(dir)
            );
        }
    };
    if !status.success() {
        bail!("`{shown}` failed ({status}){}", stderr_tail(dir));
    }
    Ok(())
}

/// The last lines of the command's stderr, as a suffix of an error message.
pub(super) fn stderr_tail(dir: &Path) -> String {
    let mut text = String::new();
    let _ =
        std::fs::File::open(dir.join("stderr.log")).and_then(|mut f| f.read_to_string(&mut text));
    let lines: Vec<&str> = text.lines().collect();
    if lines.is_empty() {
        return "; its stderr is empty".to_string();
    }
    let tail = &lines[lines.len().saturating_sub(STDERR_TAIL)..];
    format!("; its stderr ends:\n{}", tail.join("\n"))
}

/// Reads and checks the command's `metrics.json` against the run's data.
fn read_reported(path: &Path, data: &RunData) -> anyhow::Result<Reported> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("the command wrote no `{}`", path.display()))?;
    let reported: Reported =
        serde_json::from_str(&text).with_context(|| format!("malformed `{}`", path.display()))?;
    let fail = |field: &str, why: String| anyhow::anyhow!("`{}`: `{field}` {why}", path.display());
    let classes = data.class_counts.len();
    let predictions = [
        ("test-predictions", &reported.test_predictions, &data.test_y),
        ("validation-predictions", &reported.validation_predictions, &data.val_y),
    ];
    for (field, predicted, labels) in predictions {
        let rows = usize::try_from(labels.size()[0]).expect("a size");
        if predicted.len() != rows {
            return Err(fail(field, format!("has {} entries for {rows} rows", predicted.len())));
        }
        if let Some(bad) =
            predicted.iter().find(|&&p| usize::try_from(p).map_or(true, |p| p >= classes))
        {
            return Err(fail(field, format!("holds {bad}, not a class of 0..{classes}")));
        }
    }
    if reported.iterations == 0 {
        return Err(fail("iterations", "is 0: a trained run takes at least one step".to_string()));
    }
    let p = &reported.marginal_likelihood;
    if p.len() != classes || p.iter().any(|v| !v.is_finite() || *v < 0.0) {
        return Err(fail(
            "marginal-likelihood",
            format!("needs {classes} finite non-negative values"),
        ));
    }
    let sum: f64 = p.iter().sum();
    if (sum - 1.0).abs() > 1e-4 {
        return Err(fail("marginal-likelihood", format!("sums to {sum}, not 1")));
    }
    for (name, value) in &reported.metrics {
        if !crate::config::is_metric_name(name) {
            return Err(fail(
                "metrics",
                format!("names `{name}`: use letters, digits, `-`, `_` and `.`"),
            ));
        }
        if !value.is_finite() {
            return Err(fail("metrics", format!("`{name}` = {value} is not finite")));
        }
    }
    if let Some(loss) = reported.final_train_loss.filter(|l| !l.is_finite()) {
        return Err(fail("final-train-loss", format!("= {loss} is not finite")));
    }
    if let Some(rates) = &reported.meta_rates {
        let bad = rates
            .iter()
            .any(|row| row.len() != classes || row.iter().any(|r| !(0.0..=1.0).contains(r)));
        if bad {
            return Err(fail("meta-rates", format!("needs rows of {classes} rates in [0, 1]")));
        }
    }
    Ok(reported)
}

/// What the command reported, scored by balms's evaluation.
fn trained(reported: Reported, data: &RunData) -> Trained {
    let labels = |y: &Tensor| Vec::<i64>::try_from(&y.to_device(tch::Device::Cpu)).expect("int64");
    let evaluation = evaluate::from_predictions(
        &reported.test_predictions,
        &labels(&data.test_y),
        reported.marginal_likelihood,
        &data.class_counts,
    );
    Trained {
        evaluation,
        validation_top1: evaluate::top1_of_predictions(
            &reported.validation_predictions,
            &labels(&data.val_y),
        ),
        iterations: reported.iterations,
        selected_iteration: reported.iterations,
        final_train_loss: reported.final_train_loss,
        tau: None,
        meta_rates: reported.meta_rates,
        checkpoint_sha256: None,
    }
}

/// SHA-256 of every argument of the command that names a file (the script) and of every file the
/// command reported in `sources` (modules it imports), keyed by path: relative to the working
/// directory when inside it, so that records do not depend on where the repository lives.
fn file_hashes(
    command: &[String],
    sources: &[PathBuf],
) -> anyhow::Result<BTreeMap<String, String>> {
    let here = std::env::current_dir()
        .and_then(std::fs::canonicalize)
        .context("reading the working directory")?;
    let named = command
        .iter()
        .filter(|arg| !arg.contains("{python}") && Path::new(arg).is_file())
        .map(PathBuf::from);
    let mut hashes = BTreeMap::new();
    for path in named.chain(sources.iter().cloned()) {
        let bytes = std::fs::read(&path).with_context(|| {
            format!("reading `{}` (named by the command or its `sources`)", path.display())
        })?;
        // Canonical (`./a.py`, a symlink and the absolute path are one file), then relative to
        // the working folder where inside it; absolute only for files outside it.
        let canonical = std::fs::canonicalize(&path).unwrap_or_else(|_| path.clone());
        let key = canonical.strip_prefix(&here).unwrap_or(&canonical).display().to_string();
        hashes.insert(key, crate::files::sha256(&bytes));
    }
    Ok(hashes)
}

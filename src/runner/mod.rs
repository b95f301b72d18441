//! Walks a plan: skips finished runs, trains the rest, records each as finished or failed.
//!
//! End-to-end runs go first, so each stage-1 backbone exists before the decoupled methods that
//! reuse it: a stage-1 run is trained once per dataset, imbalance factor and seed. A run that
//! fails (or diverges) is recorded in `failed.json` and the matrix goes on; the command then
//! exits non-zero naming the failed runs.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{bail, Context};
use indicatif::{HumanDuration, MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};
use tch::Device;

use crate::data::{DataLocator, Pool, RunData};
use crate::matrix::{Cell, Plan, RunSeeds, Scheme};
use crate::seed::Seed;
use crate::store::{
    self, CheckpointState, Failure, Metrics, Provenance, RunConfig, RunStatus, Store,
};
use crate::train::{self, Progress, Trained};

pub mod detectron2;
mod eta;
pub mod external;
pub mod interrupt;
pub mod slurm;
mod workers;
pub use workers::serve_worker;

/// How to run a plan.
#[derive(Clone, Debug)]
pub struct RunOptions {
    /// Where results go.
    pub store: Store,
    /// Device every run trains on (the resolved `--device`); `--jobs` workers are started with the
    /// same.
    pub device: Device,
    /// Intra-op threads (recorded; set by the caller).
    pub threads: i32,
    /// Where datasets are looked for; its `--data-dir` is passed on to `--jobs` workers.
    pub locator: DataLocator,
    /// Show progress bars (they hide themselves when stderr is not a terminal).
    pub progress: bool,
    /// Runs trained at once, each in its own worker process with `threads` threads (1: in this
    /// process).
    pub jobs: usize,
    /// The `balms` executable that workers run (default: this one).
    pub worker_exe: Option<PathBuf>,
    /// Only this share of the plan's runs (`--shard I/N`).
    pub shard: Option<Shard>,
    /// `--scale F`, applied to the plan by the caller and passed on to `--jobs` workers, which
    /// load the plan from its file again.
    pub scale: Option<f64>,
}

/// `--shard I/N`: share `index` (0-based) of `count`.
///
/// The plan's runs are grouped into units: an end-to-end method's run at a column and seed,
/// together with every decoupled run that reuses its backbone. Units, in plan order, go to shards
/// round-robin, so N processes cover the plan exactly once and a stage-2 run is always trained
/// where its stage-1 model is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Shard {
    /// 0-based share.
    pub index: usize,
    /// Number of shares.
    pub count: usize,
}

impl std::str::FromStr for Shard {
    type Err = String;

    fn from_str(text: &str) -> Result<Shard, String> {
        let bad = || format!("`{text}` is not I/N with 0 <= I < N (e.g. 0/4)");
        let (i, n) = text.split_once('/').ok_or_else(bad)?;
        let (index, count) =
            (i.trim().parse().map_err(|_| bad())?, n.trim().parse().map_err(|_| bad())?);
        if count == 0 || index >= count {
            return Err(bad());
        }
        Ok(Shard { index, count })
    }
}

/// The unit of a job: its column, seed and the end-to-end method at its root.
fn unit(job: &Job) -> (String, u64, String) {
    let root = job.stage1.as_ref().unwrap_or(&job.cell);
    (job.cell.column.id(), job.seed.0, root.method.name.clone())
}

/// The distinct units of `jobs`, in plan order.
fn units(jobs: &[Job]) -> Vec<(String, u64, String)> {
    let mut units = Vec::new();
    for key in jobs.iter().map(unit) {
        if !units.contains(&key) {
            units.push(key);
        }
    }
    units
}

/// Number of units of `plan` (the most shards that can all have work).
#[must_use]
pub fn unit_count(plan: &Plan) -> usize {
    units(&jobs(plan, &Store::new(""))).len()
}

/// The jobs of `shard`: units numbered in plan order, unit `u` to shard `u mod N`.
fn in_shard(all: Vec<Job>, shard: Option<Shard>) -> Vec<Job> {
    let Some(shard) = shard else { return all };
    let units = units(&all);
    all.into_iter()
        .filter(|job| {
            units.iter().position(|u| *u == unit(job)).expect("listed") % shard.count == shard.index
        })
        .collect()
}

/// What a matrix run did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RunSummary {
    /// Runs already finished and skipped.
    pub skipped: usize,
    /// Runs trained now.
    pub trained: usize,
    /// Runs that failed, with their ids.
    pub failed: Vec<String>,
    /// Runs another live worker was training (left to it).
    pub busy: usize,
    /// Runs left unfinished because a SIGINT or SIGTERM arrived (the one in training stopped,
    /// the rest not started), and the signal.
    pub interrupted: Option<(i32, usize)>,
}

/// One run of the plan: a cell at a seed.
struct Job {
    cell: Cell,
    seed: Seed,
    seeds: RunSeeds,
    stage1: Option<Cell>,
    hash: String,
    dir: PathBuf,
}

impl Job {
    fn id(&self) -> String {
        format!("{} seed {}", self.cell.id(), self.seed)
    }
}

/// Runs every unfinished run of `plan`.
///
/// # Errors
/// Missing data (before anything trains), store errors, or failed runs (after all others ran).
pub fn run_plan(plan: &Plan, options: &RunOptions) -> anyhow::Result<RunSummary> {
    let plan_file = options.store.matrix_dir(&plan.name).join("plan.txt");
    if let Err(err) = store::write_atomic(&plan_file, plan.render().as_bytes()) {
        let err = anyhow::Error::new(err);
        if crate::files::is_storage_full(err.as_ref()) {
            return Err(disk_full(plan, options, "none yet", &err));
        }
        return Err(err);
    }
    let mut summary = RunSummary::default();
    let mut pending = Vec::new();
    for job in in_shard(jobs(plan, &options.store), options.shard) {
        match Store::status(&job.dir, &job.hash)? {
            RunStatus::Finished(m)
                if options.store.started_elsewhere(plan, &job.cell, job.seed, &m)? =>
            {
                eprintln!("{}: fine-tuned from a stage-1 model its stage-1 record no longer names (stage 1 trained again); rerunning", job.id());
                pending.push(job);
            }
            RunStatus::Finished(_) => summary.skipped += 1,
            RunStatus::Stale => {
                eprintln!("{}: stored result is from another configuration; rerunning", job.id());
                pending.push(job);
            }
            RunStatus::Failed(_) | RunStatus::Absent => pending.push(job),
        }
    }
    if pending.is_empty() {
        return Ok(summary);
    }
    // Every dataset is read (and its format checked) before anything trains.
    let mut pools = Pools::default();
    let mut costs = Vec::new();
    let mut detection_checked = false;
    for job in &pending {
        if let Some(signal) = interrupt::received() {
            summary.interrupted = Some((signal, pending.len()));
            return Ok(summary);
        }
        if job.cell.column.dataset.is_detection() {
            // Once for the matrix: what it checks is the matrix's, not the run's.
            if !detection_checked {
                detectron2_ready(plan, options, job)?;
                detection_checked = true;
            }
            costs.push(eta::Cost::of(&job.cell, None));
            continue;
        }
        let train_images =
            pools.get(plan, job, &options.locator)?.lists().map(|l| l.train.paths.len());
        costs.push(eta::Cost::of(&job.cell, train_images));
    }
    let bars = Bars::new(costs, options.jobs.min(pending.len()).max(1), options.progress);
    if options.jobs > 1 && pending.len() > 1 {
        drop(pools);
        workers::run_parallel(plan, &pending, options, &bars, &mut summary)?;
    } else {
        for (done, job) in pending.iter().enumerate() {
            bars.started(done);
            let outcome = run_job(plan, job, &mut pools, options, &bars);
            let trained = matches!(outcome, Ok(Done::Trained(_)));
            match outcome {
                Ok(Done::Interrupted) => {
                    let signal = interrupt::received().unwrap_or(signal_hook::consts::SIGTERM);
                    summary.interrupted = Some((signal, pending.len() - done));
                    bars.println(&format!("{}: interrupted; nothing recorded", job.id()));
                    break;
                }
                Ok(Done::Trained(headline)) => {
                    summary.trained += 1;
                    bars.println(&format!("{}: {headline}", job.id()));
                }
                Ok(Done::Busy(holder)) => {
                    summary.busy += 1;
                    bars.println(&format!("{}: being trained by {holder}; left to it", job.id()));
                }
                Ok(Done::AlreadyFinished) => summary.skipped += 1,
                Err(err) => {
                    bars.println(&format!("{}: FAILED: {err:#}", job.id()));
                    summary.failed.push(job.id());
                    if crate::files::is_storage_full(err.as_ref()) {
                        bars.matrix.finish_and_clear();
                        return Err(disk_full(plan, options, &job.id(), &err));
                    }
                }
            }
            bars.finished(done, trained);
        }
    }
    bars.matrix.finish_and_clear();
    if summary.interrupted.is_some() {
        return Ok(summary);
    }
    if !summary.failed.is_empty() {
        bail!(
            "{} run(s) of `{}` failed (see their failed.json): {}",
            summary.failed.len(),
            plan.name,
            summary.failed.join(", ")
        );
    }
    Ok(summary)
}

/// The error that stops a matrix when the disk is full: what to free, and that a rerun resumes.
fn disk_full(plan: &Plan, options: &RunOptions, run: &str, err: &anyhow::Error) -> anyhow::Error {
    anyhow::anyhow!(
        "the disk holding `{}` is full (run {run}: {err:#}); matrix `{}` stopped. Free space there \
         (a run's `model.ot` checkpoints are the largest files), then run the same command again: \
         finished runs are kept, and the interrupted ones start over",
        options.store.root().display(),
        plan.name,
    )
}

/// The plan's runs, end-to-end cells first.
fn jobs(plan: &Plan, store: &Store) -> Vec<Job> {
    let mut cells = plan.cells();
    cells.sort_by_key(|c| matches!(c.method.scheme, Scheme::Decoupled(_)));
    cells
        .into_iter()
        .flat_map(|cell| plan.seeds.iter().map(move |&seed| (cell.clone(), seed)))
        .map(|(cell, seed)| {
            let stage1 = plan.stage1_cell(&cell);
            let seeds = RunSeeds::new(&cell, seed);
            let hash = plan.config_hash(&cell, seed);
            let dir = store.run_dir(&plan.name, &cell, seed.0);
            Job { cell, seed, seeds, stage1, hash, dir }
        })
        .collect()
}

/// Datasets loaded by this process, each once, shared by every run that uses it.
#[derive(Default)]
struct Pools(HashMap<String, Pool>);

impl Pools {
    fn get(&mut self, plan: &Plan, job: &Job, locator: &DataLocator) -> anyhow::Result<&Pool> {
        let dataset = &job.cell.column.dataset;
        if !self.0.contains_key(dataset.name()) {
            let pool =
                Pool::load(dataset, locator).with_context(|| format!("matrix `{}`", plan.name))?;
            self.0.insert(dataset.name().to_string(), pool);
        }
        Ok(&self.0[dataset.name()])
    }
}

/// What [`run_job`] did with a run.
pub(crate) enum Done {
    /// Trained and recorded, with its headline ([`Metrics::headline`]).
    Trained(String),
    /// Another live worker holds the run (`host pid N`).
    Busy(String),
    /// Another process finished it while this one waited for its lease: nothing trained here.
    AlreadyFinished,
    /// A SIGINT or SIGTERM stopped it (or came before it started): nothing recorded, lease
    /// released.
    Interrupted,
}

/// Whether `err` is a training stopped by a signal.
fn is_interrupted(err: &anyhow::Error) -> bool {
    err.chain().any(|e| {
        matches!(e.downcast_ref::<train::TrainError>(), Some(train::TrainError::Interrupted))
    })
}

/// Takes one run's lease, trains it in this process and records it: its top-1, or the error (also
/// written to its `failed.json`); a run another worker holds is left to it.
fn run_job(
    plan: &Plan,
    job: &Job,
    pools: &mut Pools,
    options: &RunOptions,
    bars: &Bars,
) -> anyhow::Result<Done> {
    if interrupt::received().is_some() {
        return Ok(Done::Interrupted);
    }
    if let Some(stage1) = &job.stage1 {
        let dir = options.store.run_dir(&plan.name, stage1, job.seed.0);
        let finished = matches!(
            Store::status(&dir, &plan.config_hash(stage1, job.seed))?,
            RunStatus::Finished(_)
        );
        if let (false, Some(h)) = (finished, store::lease::live_holder(&dir)) {
            return Ok(Done::Busy(format!("its stage-1 run's holder, {} pid {}", h.host, h.pid)));
        }
    }
    let lease = match store::lease::acquire(&job.dir)? {
        store::lease::Outcome::Held(lease) => lease,
        store::lease::Outcome::Busy(h) => {
            return Ok(Done::Busy(format!("{} pid {}", h.host, h.pid)))
        }
    };
    // Another process finished it while we waited for the lease.
    if let RunStatus::Finished(m) = Store::status(&job.dir, &job.hash)? {
        if !options.store.started_elsewhere(plan, &job.cell, job.seed, &m)? {
            return Ok(Done::AlreadyFinished);
        }
    }
    // A signal while the lease was taken: stop before `Store::begin` clears anything.
    if interrupt::received().is_some() {
        return Ok(Done::Interrupted);
    }
    let outcome = if job.cell.column.dataset.is_detection() {
        // detectron2 reads the data itself: no pool. The lease is kept fresh while it runs.
        let keep_fresh = touch_every_minute(&lease);
        let stop = || {
            keep_fresh();
            interrupt::received().is_some()
        };
        detectron2::execute(plan, job, options, &lease, &stop)
    } else {
        pools.get(plan, job, &options.locator).and_then(|pool| {
            let provenance = Provenance { data_source: pool.source.clone(), ..provenance(options) };
            execute(plan, job, pool, options, provenance, bars, &lease)
        })
    };
    match outcome {
        Ok(metrics) => Ok(Done::Trained(metrics.headline())),
        Err(err) if is_interrupted(&err) => Ok(Done::Interrupted),
        Err(err) => match record_failure(job, &err) {
            Ok(()) => Err(err),
            // A full disk may refuse `failed.json` too: keep the first error, say both.
            Err(also) => {
                Err(err.context(format!("(its failed.json could not be written: {also:#})")))
            }
        },
    }
}

/// Trains one run and writes its records.
fn execute(
    plan: &Plan,
    job: &Job,
    pool: &Pool,
    options: &RunOptions,
    provenance: Provenance,
    bars: &Bars,
    lease: &store::lease::Lease,
) -> anyhow::Result<Metrics> {
    let data = pool.long_tailed(job.cell.column.imbalance, job.seed, options.device)?;
    let model = match (&job.cell.method.scheme, &job.stage1) {
        (Scheme::EndToEnd(settings), _) => Some(&settings.model),
        (Scheme::Decoupled(_), Some(stage1)) => match &stage1.method.scheme {
            Scheme::EndToEnd(settings) => Some(&settings.model),
            Scheme::Decoupled(_) => None,
        },
        (Scheme::Decoupled(_), None) => None,
    };
    let pretrained = model.map(crate::model::pretrained::fingerprint).transpose()?.flatten();
    let config = RunConfig {
        class_counts: data.class_counts.clone(),
        train_indices_sha256: data.indices_sha256.clone(),
        validation: Some(data.validation.clone()),
        pretrained,
        ..run_config(plan, job, provenance)
    };
    Store::begin(&job.dir, &config)?;
    let started = Instant::now();
    let mut progress = RunProgress {
        bar: bars.run(&job.id()),
        log: Some(job.dir.clone()),
        lease: Some(lease),
        disk_full: None,
    };
    let mut external_record = None;
    let mut named_metrics = std::collections::BTreeMap::new();
    let trained = match (&job.cell.method.scheme, &job.cell.method.external) {
        (_, Some(external)) => {
            let source = config.provenance.data_source.clone();
            let (trained, record, named) = run_external(
                external,
                plan,
                job,
                options,
                (&data, &source),
                (&progress, bars),
                lease,
            )?;
            external_record = Some(record);
            named_metrics = named;
            trained
        }
        (Scheme::EndToEnd(settings), None) => {
            let trained = train::end_to_end(
                settings,
                &data,
                &job.seeds,
                options.device,
                &job.dir.join("model.ot"),
                &mut progress,
            );
            let trained = progress.outcome(trained)?;
            Store::record_checkpoint(&job.dir, checkpoint_hash(&trained))?;
            trained
        }
        (Scheme::Decoupled(stage2), None) => {
            let stage1 = job.stage1.as_ref().expect("decoupled cells have a stage 1");
            let (checkpoint, settings) =
                stage1_checkpoint(plan, stage1, job.seed, &data, options, bars, lease)?;
            let trained = train::stage2(
                stage2,
                &settings,
                &data,
                &job.seeds,
                options.device,
                &checkpoint,
                &mut progress,
            );
            progress.outcome(trained)?
        }
    };
    progress.bar.finish_and_clear();
    let mut metrics = to_metrics(job, &data, trained);
    metrics.external = external_record;
    metrics.named_metrics = named_metrics;
    Store::log(
        &job.dir,
        &serde_json::json!({"type": "end", "seconds": started.elapsed().as_secs_f64(), "top1": metrics.top1()}),
    )?;
    store::write_json(&job.dir.join("metrics.json"), &metrics)?;
    Ok(metrics)
}

/// A detection matrix's check before anything trains: detectron2 reads the data itself, so its
/// files, the projects, their configs and the evaluator's interpreter are checked, every missing
/// one named.
fn detectron2_ready(plan: &Plan, options: &RunOptions, job: &Job) -> anyhow::Result<()> {
    let root = options.locator.locate(&job.cell.column.dataset);
    let missing = detectron2::missing(plan, root.as_ref().ok().and_then(|r| r.as_deref()));
    if !missing.is_empty() {
        bail!(
            "matrix `{}` cannot run; what is missing:{}",
            plan.name,
            missing.iter().fold(String::new(), |all, m| all + "\n  - " + m)
        );
    }
    Ok(())
}

/// A run's `config.json` without its data (class counts, data hash, validation split, pretrained
/// weights), which the caller fills in.
fn run_config(plan: &Plan, job: &Job, provenance: Provenance) -> RunConfig {
    RunConfig {
        schema: store::SCHEMA,
        matrix: plan.name.clone(),
        run: job.cell.id(),
        cell: job.cell.clone(),
        stage1: job.stage1.as_ref().map(|c| c.method.clone()),
        seeds: job.seeds.clone(),
        config_sha256: job.hash.clone(),
        class_counts: Vec::new(),
        train_indices_sha256: String::new(),
        validation: None,
        pretrained: None,
        scale: plan.scale,
        provenance,
    }
}

/// An external method's run: its stage 1 finished (its outputs rerun when only its records were
/// kept), the command run with the lease kept fresh.
fn run_external(
    external: &crate::matrix::External,
    plan: &Plan,
    job: &Job,
    options: &RunOptions,
    (data, source): (&RunData, &str),
    (progress, bars): (&RunProgress<'_>, &Bars),
    lease: &store::lease::Lease,
) -> anyhow::Result<external::Outcome> {
    // Polled every 100 ms while a command runs: a stop request, and the lease kept fresh (about
    // once a minute) so that no other worker takes the run over.
    let keep_fresh = touch_every_minute(lease);
    let stop = || {
        keep_fresh();
        progress.stop_requested()
    };
    let mut run = external::ExternalRun {
        plan,
        cell: &job.cell,
        seed: job.seed.0,
        seeds: &job.seeds,
        run_dir: &job.dir,
        stage1: None,
        device: crate::device::label(options.device),
        threads: options.threads,
        source,
        outputs_only: false,
    };
    if let Some(cell) = &job.stage1 {
        let (dir, stored) =
            finished_stage1(plan, cell, job.seed, options, "its outputs are unavailable")?;
        if !external::outputs_present(&dir) {
            // Its records were kept, its command's outputs (models) were not, e.g. in a fresh
            // clone: rerun its command for them, as balms retrains a missing checkpoint, holding
            // the stage-1 run's lease so that another process's stage 2 waits rather than
            // rerunning it into the same folder at the same time.
            let stage1_lease = loop {
                match store::lease::acquire(&dir)? {
                    store::lease::Outcome::Held(held) => break held,
                    store::lease::Outcome::Busy(_) if stop() => {
                        return Err(train::TrainError::Interrupted.into())
                    }
                    store::lease::Outcome::Busy(_) => {
                        std::thread::sleep(std::time::Duration::from_millis(500));
                    }
                }
            };
            if !external::outputs_present(&dir) {
                // Both leases kept fresh while the stage-1 command runs (a stage 1 may run for
                // hours; an untouched lease is taken over after one).
                let keep_stage1_fresh = touch_every_minute(&stage1_lease);
                let stop_both = || {
                    keep_stage1_fresh();
                    stop()
                };
                rerun_external_stage1(cell, job, &dir, &stored, (&run, data, &stop_both), bars)?;
            }
        }
        run.stage1 = Some((cell, dir));
    }
    external::run(external, &run, data, &stop)
}

/// A call that touches `lease` when a minute has passed since it last did (polled while a
/// command runs, so that no other worker takes a live run over).
fn touch_every_minute(lease: &store::lease::Lease) -> impl Fn() + '_ {
    let touched = std::cell::Cell::new(Instant::now());
    move || {
        if touched.get().elapsed() >= std::time::Duration::from_secs(60) {
            lease.touch();
            touched.set(Instant::now());
        }
    }
}

/// Reruns an external stage 1's command for its outputs alone (its records stay as they are),
/// warning where the rerun scores differently or ran different files than the record says.
fn rerun_external_stage1(
    cell: &Cell,
    job: &Job,
    dir: &Path,
    stored: &Metrics,
    (stage2, data, stop): (&external::ExternalRun<'_>, &RunData, &dyn Fn() -> bool),
    bars: &Bars,
) -> anyhow::Result<()> {
    let what = format!("stage 1 `{} seed {}`", cell.id(), job.seed);
    bars.println(&format!(
        "{} seed {}: stage-1 outputs missing; rerunning its command for them (same seeds)",
        cell.id(),
        job.seed
    ));
    let command = cell.method.external.as_ref().expect("validated: stage 1 is external");
    let seeds = RunSeeds::new(cell, job.seed);
    let run = external::ExternalRun {
        cell,
        seeds: &seeds,
        run_dir: dir,
        stage1: None,
        outputs_only: true,
        ..stage2.clone()
    };
    let (rerun, record, _) = external::run(command, &run, data, stop)
        .with_context(|| format!("rerunning {what} for its outputs"))?;
    if stored.evaluation.as_ref() != Some(&rerun.evaluation) {
        bars.println(&format!(
            "warning: the rerun of {what} differs from its stored metrics (top-1 {} vs {})",
            rerun.evaluation.top1,
            stored.headline()
        ));
    }
    let recorded = stored.external.as_ref().map(|r| &r.files_sha256);
    if recorded != Some(&record.files_sha256) {
        bars.println(&format!(
            "warning: the rerun of {what} ran files other than its record names (edited since?)"
        ));
    }
    Ok(())
}

/// A decoupled run's stage-1 run folder and its stored metrics; an error ending in `what` (what
/// is unavailable) when that run has not finished.
fn finished_stage1(
    plan: &Plan,
    stage1: &Cell,
    seed: Seed,
    options: &RunOptions,
    what: &str,
) -> anyhow::Result<(PathBuf, Box<Metrics>)> {
    let dir = options.store.run_dir(&plan.name, stage1, seed.0);
    let RunStatus::Finished(stored) = Store::status(&dir, &plan.config_hash(stage1, seed))? else {
        bail!("stage-1 run `{} seed {seed}` has not finished, so {what}", stage1.id())
    };
    Ok((dir, stored))
}

/// The stage-1 checkpoint for a decoupled run, retraining the stage-1 model (deterministically,
/// without touching its records) when only its records were kept, e.g. in a fresh clone.
fn stage1_checkpoint(
    plan: &Plan,
    stage1: &Cell,
    seed: Seed,
    data: &RunData,
    options: &RunOptions,
    bars: &Bars,
    lease: &store::lease::Lease,
) -> anyhow::Result<(PathBuf, crate::matrix::Settings)> {
    let Scheme::EndToEnd(settings) = &stage1.method.scheme else {
        unreachable!("validated: stage 1 is end-to-end")
    };
    let (dir, stored) =
        finished_stage1(plan, stage1, seed, options, "its backbone is unavailable")?;
    let checkpoint = dir.join("model.ot");
    let seeds = RunSeeds::new(stage1, seed);
    let state = Store::checkpoint_state(&dir);
    if state != CheckpointState::Intact {
        let why = match state {
            CheckpointState::Mismatch(why) => {
                format!("`{}` is not the one recorded ({why})", checkpoint.display())
            }
            CheckpointState::Missing | CheckpointState::Intact => "missing".to_string(),
        };
        bars.println(&format!(
            "{} seed {seed}: stage-1 checkpoint {why}; retraining it (deterministic: same seeds)",
            stage1.id()
        ));
        let mut progress = RunProgress {
            bar: bars.run(&format!("{} seed {seed} (stage 1)", stage1.id())),
            log: None,
            lease: Some(lease),
            disk_full: None,
        };
        let retrained =
            train::end_to_end(settings, data, &seeds, options.device, &checkpoint, &mut progress)?;
        Store::record_checkpoint(&dir, checkpoint_hash(&retrained))?;
        progress.bar.finish_and_clear();
        if stored.evaluation.as_ref() != Some(&retrained.evaluation) {
            bars.println(&format!("warning: retrained stage 1 `{} seed {seed}` differs from its stored metrics (top-1 {} vs {})", stage1.id(), retrained.evaluation.top1, stored.headline()));
        }
    }
    Ok((checkpoint, settings.clone()))
}

/// The SHA-256 of the checkpoint an end-to-end training wrote.
fn checkpoint_hash(trained: &Trained) -> &str {
    trained.checkpoint_sha256.as_deref().expect("end-to-end training saves a checkpoint")
}

fn to_metrics(job: &Job, data: &RunData, trained: Trained) -> Metrics {
    let selection = job.cell.method.selection_label();
    Metrics {
        schema: store::SCHEMA,
        run: job.cell.id(),
        seed: job.seed.0,
        config_sha256: job.hash.clone(),
        selection: selection.to_string(),
        iterations: trained.iterations,
        selected_iteration: trained.selected_iteration,
        final_train_loss: trained.final_train_loss,
        validation_top1: Some(trained.validation_top1),
        tau: trained.tau,
        meta_rates_variance: trained
            .meta_rates
            .as_ref()
            .and_then(|h| h.last())
            .map(|r| variance(r)),
        meta_rates: trained.meta_rates,
        class_counts: data.class_counts.clone(),
        train_indices_sha256: data.indices_sha256.clone(),
        external: None,
        named_metrics: std::collections::BTreeMap::new(),
        evaluation: Some(trained.evaluation),
    }
}

/// Population variance.
fn variance(values: &[f64]) -> f64 {
    let n = values.len() as f64;
    let mean = values.iter().sum::<f64>() / n;
    values.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / n
}

fn record_failure(job: &Job, err: &anyhow::Error) -> anyhow::Result<()> {
    let failure = Failure {
        schema: store::SCHEMA,
        run: job.cell.id(),
        seed: job.seed.0,
        config_sha256: job.hash.clone(),
        error: format!("{err:#}"),
    };
    std::fs::create_dir_all(&job.dir)
        .with_context(|| format!("creating `{}`", job.dir.display()))?;
    store::write_json(&job.dir.join("failed.json"), &failure)?;
    Ok(())
}

/// The git revision the binary was built from and whether its sources differed from it (both
/// recorded at build time), libtorch, device and threads.
fn provenance(options: &RunOptions) -> Provenance {
    Provenance {
        git_revision: env!("BALMS_GIT_REVISION").to_string(),
        git_dirty: env!("BALMS_GIT_DIRTY") == "true",
        balms_version: env!("CARGO_PKG_VERSION").to_string(),
        libtorch: env!("BALMS_LIBTORCH_VERSION").to_string(),
        device: crate::device::label(options.device),
        threads: options.threads,
        data_source: String::new(),
    }
}

/// The matrix bar and the per-run bars.
struct Bars {
    multi: MultiProgress,
    matrix: ProgressBar,
    /// The matrix bar's time estimate, from each pending run's planned cost.
    eta: std::cell::RefCell<eta::Eta>,
}

impl Bars {
    /// Bars for pending runs of these costs, trained `workers` at a time.
    fn new(costs: Vec<eta::Cost>, workers: usize, show: bool) -> Bars {
        let target = if show { ProgressDrawTarget::stderr() } else { ProgressDrawTarget::hidden() };
        let multi = MultiProgress::with_draw_target(target);
        let style = ProgressStyle::with_template("{prefix} [{bar:30}] {pos}/{len} runs, {msg}")
            .expect("template")
            .progress_chars("=> ");
        let matrix = multi.add(
            ProgressBar::new(costs.len() as u64)
                .with_style(style)
                .with_prefix("matrix")
                .with_message("ETA after the first run"),
        );
        matrix.tick();
        Bars { multi, matrix, eta: std::cell::RefCell::new(eta::Eta::new(costs, workers)) }
    }

    /// Run `index` of the pending runs starts.
    fn started(&self, index: usize) {
        self.eta.borrow_mut().start(index);
    }

    /// Run `index` is over: the matrix bar advances and its estimate is priced again.
    fn finished(&self, index: usize, trained: bool) {
        let mut eta = self.eta.borrow_mut();
        eta.finish(index, trained);
        if let Some(seconds) = eta.remaining() {
            let left = std::time::Duration::from_secs_f64(seconds.max(0.0));
            self.matrix.set_message(format!("ETA {} (by planned run cost)", HumanDuration(left)));
        }
        self.matrix.inc(1);
    }

    fn run(&self, name: &str) -> ProgressBar {
        let style =
            ProgressStyle::with_template("  {prefix}: epoch {pos}/{len} {msg}").expect("template");
        self.multi.add(ProgressBar::new(0).with_style(style).with_prefix(name.to_string()))
    }

    /// A line above the bars, or on stderr when the bars are hidden.
    fn println(&self, line: &str) {
        if self.multi.is_hidden() {
            eprintln!("{line}");
        } else {
            let _ = self.multi.println(line);
        }
    }
}

/// Progress of one run: its bar, and the run folder whose `log.jsonl` records each epoch.
struct RunProgress<'a> {
    bar: ProgressBar,
    log: Option<PathBuf>,
    /// The run's lease, kept fresh at every epoch.
    lease: Option<&'a store::lease::Lease>,
    /// A log line the full disk refused: the run stops at its next batch and fails with it.
    disk_full: Option<store::StoreError>,
}

impl RunProgress<'_> {
    /// The training's outcome, or the full disk that refused one of its log lines (which
    /// stopped it, or came with its last epoch).
    fn outcome<T>(&mut self, trained: Result<T, train::TrainError>) -> anyhow::Result<T> {
        match self.disk_full.take() {
            Some(full) => Err(full.into()),
            None => Ok(trained?),
        }
    }
}

impl Progress for RunProgress<'_> {
    fn stop_requested(&self) -> bool {
        interrupt::received().is_some() || self.disk_full.is_some()
    }

    fn epoch(&mut self, epoch: u64, epochs: u64, mean_loss: f64, lr: f64) {
        if let Some(lease) = self.lease {
            lease.touch();
        }
        self.bar.set_length(epochs);
        self.bar.set_position(epoch);
        self.bar.set_message(format!("loss {mean_loss:.4}"));
        if let Some(dir) = &self.log {
            let line = serde_json::json!({"type": "epoch", "epoch": epoch, "epochs": epochs, "loss": mean_loss, "lr": lr});
            if let Err(err) = Store::log(dir, &line) {
                if crate::files::is_storage_full(&err) {
                    self.disk_full = Some(err);
                    return;
                }
                // The log is not a result: the run goes on, but says so (on stderr when the
                // bars are hidden, where a bar's println would print nothing).
                let warning = format!("warning: {:#}", anyhow::Error::new(err));
                if self.bar.is_hidden() {
                    eprintln!("{warning}");
                } else {
                    self.bar.println(warning);
                }
            }
        }
    }
}

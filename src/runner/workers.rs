//! `balms run --jobs N`: the plan's runs trained by N worker processes at once.
//!
//! Each worker is this executable's hidden `worker` command on the same matrix file, results
//! folder, device and per-run thread count. It loads each dataset once and keeps it for the runs
//! it is given; it reads one run per line on standard input and answers one line on standard
//! output when the run has been recorded. Processes rather than threads, because libtorch's
//! generator (weight initialisation) and thread pools are process-wide: a run's numbers depend
//! only on its seeds and `--threads`, never on N or on what else runs.
//!
//! The parent hands out end-to-end runs first and a decoupled run only once its stage-1 run has
//! finished. When the stage-1 checkpoint has to be retrained (records kept, checkpoint gone),
//! only one run of that backbone is in flight until the checkpoint exists again.

use std::collections::{HashMap, HashSet};
use std::io::{BufRead, BufReader, Write};
use std::os::unix::process::CommandExt as _;
use std::path::PathBuf;
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use anyhow::Context;

use super::{jobs, record_failure, run_job, Bars, Job, Pools, RunOptions, RunSummary};
use crate::matrix::{Plan, Scheme};
use crate::store::{CheckpointState, RunStatus, Store};

/// A run's name on the wire: cell id, seed and configuration hash, tab-separated.
fn key(job: &Job) -> String {
    format!("{}\t{}\t{}", job.cell.id(), job.seed.0, job.hash)
}

/// A worker's answer for its current run.
enum Answer {
    /// Trained, with its headline ([`crate::store::Metrics::headline`]).
    Trained(String),
    /// Held by another worker (who).
    Busy(String),
    /// Failed (the error's one-line text).
    Failed(String),
    /// Failed because the disk is full (the error's one-line text): the matrix stops.
    DiskFull(String),
    /// Finished by another process while the worker waited for its lease.
    AlreadyFinished,
    /// Stopped by a signal: nothing recorded.
    Interrupted,
}

struct Worker {
    child: Child,
    stdin: ChildStdin,
    /// Index of the run in flight.
    busy: Option<usize>,
    /// False once the process has closed its output.
    alive: bool,
}

/// Trains `pending` with `options.jobs` worker processes, adding to `summary`.
pub(super) fn run_parallel(
    plan: &Plan,
    pending: &[Job],
    options: &RunOptions,
    bars: &Bars,
    summary: &mut RunSummary,
) -> anyhow::Result<()> {
    let (tx, rx) = mpsc::channel::<(usize, Option<Answer>)>();
    let mut workers = Vec::new();
    for index in 0..options.jobs.min(pending.len()) {
        workers.push(spawn(plan, options, index, tx.clone())?);
    }
    drop(tx);
    let mut state = Schedule::new(plan, pending, &options.store);
    let mut stops = Stops::default();
    loop {
        if let (Some(signal), None) = (super::interrupt::received(), stops.signal) {
            // Start nothing more, and pass the signal on once (workers have their own group).
            stops.signal = Some(signal);
            state.stop();
            for worker in workers.iter().filter(|w| w.alive) {
                super::interrupt::terminate(worker.child.id());
            }
        }
        for worker in workers.iter_mut().filter(|w| w.alive && w.busy.is_none()) {
            let Some(next) = state.next() else { break };
            let sent = writeln!(worker.stdin, "{}", key(&pending[next]))
                .and_then(|()| worker.stdin.flush());
            if sent.is_ok() {
                worker.busy = Some(next);
                bars.started(next);
            } else {
                // The worker has exited (its answers will say why): the run waits for another.
                worker.alive = false;
                state.requeue(next);
            }
        }
        if workers.iter().all(|w| w.busy.is_none()) {
            break;
        }
        let (index, answer) = match rx.recv_timeout(Duration::from_millis(100)) {
            Ok(message) => message,
            Err(mpsc::RecvTimeoutError::Timeout) => continue,
            Err(mpsc::RecvTimeoutError::Disconnected) => break,
        };
        if answer.is_none() {
            workers[index].alive = false;
        }
        let Some(done) = workers[index].busy.take() else { continue };
        let exited = if stops.signal.is_some() {
            Answer::Interrupted
        } else {
            Answer::Failed("its worker process exited".to_string())
        };
        let answer = answer.unwrap_or(exited);
        let trained = matches!(answer, Answer::Trained(_));
        book(answer, (&pending[done], done), &mut state, &mut stops, summary, bars);
        bars.finished(done, trained);
    }
    if let Some(signal) = stops.signal {
        wait_all(workers);
        summary.interrupted = Some((signal, stops.interrupted + state.unreachable().len()));
        return Ok(());
    }
    if let Some((run, err)) = stops.full {
        wait_all(workers);
        return Err(super::disk_full(plan, options, &run, &anyhow::anyhow!(err)));
    }
    for i in state.unreachable() {
        let job = &pending[i];
        if state.waits_on_busy(i) {
            summary.busy += 1;
            bars.println(&format!(
                "{}: its stage-1 run is being trained elsewhere; left",
                job.id()
            ));
            continue;
        }
        let why = anyhow::anyhow!("not run: its stage-1 run failed, or every worker exited");
        record_failure(job, &why)?;
        bars.println(&format!("{}: NOT RUN: {why}", job.id()));
        summary.failed.push(job.id());
    }
    wait_all(workers);
    Ok(())
}

/// What ended a `--jobs` matrix early, if anything.
#[derive(Default)]
struct Stops {
    /// The first run that found the disk full, and its error: no run starts after it.
    full: Option<(String, String)>,
    /// The signal that stopped the matrix.
    signal: Option<i32>,
    /// Runs a signal stopped in their workers.
    interrupted: usize,
}

/// Books worker's `answer` for pending run `job` (index `done`) in the schedule, the early stops
/// and the summary, and says it.
fn book(
    answer: Answer,
    (job, done): (&Job, usize),
    state: &mut Schedule,
    stops: &mut Stops,
    summary: &mut RunSummary,
    bars: &Bars,
) {
    match answer {
        Answer::Interrupted => {
            // A signal to the worker alone (a scheduler signalling every process) stops the
            // matrix as one to this process would.
            stops.signal.get_or_insert(signal_hook::consts::SIGTERM);
            state.stop();
            stops.interrupted += 1;
            bars.println(&format!("{}: interrupted; nothing recorded", job.id()));
            state.release(done);
        }
        Answer::Trained(headline) => {
            summary.trained += 1;
            bars.println(&format!("{}: {headline}", job.id()));
            state.finished(done);
        }
        Answer::Busy(holder) => {
            summary.busy += 1;
            bars.println(&format!("{}: being trained by {holder}; left to it", job.id()));
            state.busy(done);
        }
        Answer::Failed(err) => {
            bars.println(&format!("{}: FAILED: {err}", job.id()));
            summary.failed.push(job.id());
            state.failed(done);
        }
        Answer::DiskFull(err) => {
            bars.println(&format!("{}: FAILED: {err}", job.id()));
            summary.failed.push(job.id());
            state.failed(done);
            stops.full.get_or_insert((job.id(), err));
            state.stop();
        }
        Answer::AlreadyFinished => {
            summary.skipped += 1;
            state.finished(done);
        }
    }
}

/// Closes every worker's input and waits for it to end.
fn wait_all(workers: Vec<Worker>) {
    for mut worker in workers {
        drop(worker.stdin);
        let _ = worker.child.wait();
    }
}

/// Starts worker `index` and a thread forwarding its answers to `tx`.
fn spawn(
    plan: &Plan,
    options: &RunOptions,
    index: usize,
    tx: mpsc::Sender<(usize, Option<Answer>)>,
) -> anyhow::Result<Worker> {
    let exe = match &options.worker_exe {
        Some(exe) => exe.clone(),
        None => std::env::current_exe().context("locating the balms executable")?,
    };
    let mut command = Command::new(&exe);
    command
        .arg("worker")
        .arg(&plan.path)
        .arg("--results")
        .arg(options.store.root())
        .args(["--threads", &options.threads.to_string()])
        .args(["--device", if options.device.is_cuda() { "cuda" } else { "cpu" }])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        // Its own process group: a terminal's Ctrl-C reaches the parent, which passes it on.
        .process_group(0)
        .env(PARENT_ENV, std::process::id().to_string());
    if let Some(dir) = &options.locator.data_dir {
        command.arg("--data-dir").arg(dir);
    }
    if let Some(factor) = options.scale {
        command.args(["--scale", &factor.to_string()]);
    }
    let mut child =
        command.spawn().with_context(|| format!("starting worker `{}`", exe.display()))?;
    let stdin = child.stdin.take().expect("piped");
    let stdout = child.stdout.take().expect("piped");
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            let answer = match line.split_once('\t') {
                Some(("ok", headline)) => Answer::Trained(headline.to_string()),
                Some(("busy", holder)) => Answer::Busy(holder.to_string()),
                Some(("failed", message)) => Answer::Failed(message.to_string()),
                Some(("full", message)) => Answer::DiskFull(message.to_string()),
                Some(("finished", _)) => Answer::AlreadyFinished,
                Some(("interrupted", _)) => Answer::Interrupted,
                _ => continue,
            };
            if tx.send((index, Some(answer))).is_err() {
                return;
            }
        }
        let _ = tx.send((index, None));
    });
    Ok(Worker { child, stdin, busy: None, alive: true })
}

/// Which pending runs may start: end-to-end runs at once; a decoupled run once its stage-1 run
/// is finished, and alone among its backbone's runs while that checkpoint (an external stage 1:
/// its command's outputs) is missing.
struct Schedule {
    waiting: Vec<usize>,
    /// Per pending run: its stage-1 run folder, if decoupled.
    stage1: Vec<Option<PathBuf>>,
    /// Per pending run: whether it is an external method (its stage 1's outputs are the
    /// command's files, not a `model.ot`).
    external: Vec<bool>,
    /// Stage-1 run folders whose records are finished.
    finished: HashSet<PathBuf>,
    /// Stage-1 folders with a run in flight that may be rewriting the checkpoint.
    exclusive: HashSet<PathBuf>,
    /// Folder of each pending run.
    dirs: Vec<PathBuf>,
    /// Run folders another worker holds.
    busy: HashSet<PathBuf>,
    in_flight: HashMap<usize, PathBuf>,
    /// Stage-1 folders whose checkpoint was found intact (it changes only under `exclusive`).
    intact: HashSet<PathBuf>,
    /// Set by a full disk or a signal: nothing more starts.
    stopped: bool,
}

impl Schedule {
    fn new(plan: &Plan, pending: &[Job], store: &Store) -> Schedule {
        let stage1 = pending
            .iter()
            .map(|job| match &job.cell.method.scheme {
                Scheme::Decoupled(_) => {
                    job.stage1.as_ref().map(|cell| store.run_dir(&plan.name, cell, job.seed.0))
                }
                Scheme::EndToEnd(_) => None,
            })
            .collect();
        let finished = jobs(plan, store)
            .into_iter()
            .filter(|j| matches!(Store::status(&j.dir, &j.hash), Ok(RunStatus::Finished(_))))
            .map(|j| j.dir)
            .collect();
        Schedule {
            waiting: (0..pending.len()).collect(),
            stage1,
            external: pending.iter().map(|job| job.cell.method.external.is_some()).collect(),
            finished,
            exclusive: HashSet::new(),
            dirs: pending.iter().map(|j| j.dir.clone()).collect(),
            busy: HashSet::new(),
            in_flight: HashMap::new(),
            intact: HashSet::new(),
            stopped: false,
        }
    }

    /// The next run that may start, removed from the waiting list.
    fn next(&mut self) -> Option<usize> {
        if self.stopped {
            return None;
        }
        let position = self.waiting.iter().position(|&i| match &self.stage1[i] {
            None => true,
            Some(dir) => self.finished.contains(dir) && !self.exclusive.contains(dir),
        })?;
        let job = self.waiting.remove(position);
        if let Some(dir) = self.stage1[job].clone() {
            // Hashing a checkpoint reads it whole (230 MB for a ResNet-152): once per backbone.
            if !self.intact.contains(&dir) {
                let intact = if self.external[job] {
                    super::external::outputs_present(&dir)
                } else {
                    Store::checkpoint_state(&dir) == CheckpointState::Intact
                };
                if intact {
                    self.intact.insert(dir);
                } else {
                    self.exclusive.insert(dir.clone());
                    self.in_flight.insert(job, dir);
                }
            }
        }
        Some(job)
    }

    fn finished(&mut self, job: usize) {
        self.finished.insert(self.dirs[job].clone());
        self.release(job);
    }

    fn failed(&mut self, job: usize) {
        self.release(job);
    }

    fn busy(&mut self, job: usize) {
        self.busy.insert(self.dirs[job].clone());
        self.release(job);
    }

    /// Whether waiting run `job` waits for a stage-1 run another worker holds.
    fn waits_on_busy(&self, job: usize) -> bool {
        self.stage1[job].as_ref().is_some_and(|dir| self.busy.contains(dir))
    }

    fn release(&mut self, job: usize) {
        if let Some(dir) = self.in_flight.remove(&job) {
            self.exclusive.remove(&dir);
        }
    }

    /// Puts run `job` back in the waiting list (its worker could not be given it).
    fn requeue(&mut self, job: usize) {
        self.release(job);
        self.waiting.insert(0, job);
    }

    /// Starts nothing more: the runs still waiting stay unfinished ([`Schedule::unreachable`]).
    fn stop(&mut self) {
        self.stopped = true;
    }

    /// Runs still waiting when nothing is in flight: their stage-1 run failed, or no worker is
    /// left.
    fn unreachable(&self) -> Vec<usize> {
        self.waiting.clone()
    }
}

/// The environment variable that tells a worker its parent's process id.
const PARENT_ENV: &str = "BALMS_WORKER_PARENT";

/// The hidden `balms worker` command: trains the runs named on standard input, one per line,
/// answering `ok<TAB>top-1` or `failed<TAB>message` on standard output.
///
/// # Errors
/// Reading standard input, or a run the plan does not have (the matrix file changed).
pub fn serve_worker(plan: &Plan, options: &RunOptions) -> anyhow::Result<()> {
    let parent =
        std::env::var(PARENT_ENV).ok().and_then(|p| p.parse().ok()).with_context(|| {
            format!("`balms worker` is started by `balms run --jobs N`, which sets `{PARENT_ENV}`")
        })?;
    super::interrupt::die_with_parent(parent)?;
    let by_key: HashMap<String, Job> =
        jobs(plan, &options.store).into_iter().map(|j| (key(&j), j)).collect();
    let bars = Bars::new(Vec::new(), 1, false);
    let mut pools = Pools::default();
    for line in std::io::stdin().lock().lines() {
        let line = line.context("reading the run to do")?;
        let job = by_key.get(&line).with_context(|| {
            format!("`{}` has no run `{line}` (was it edited?)", plan.path.display())
        })?;
        let answer = match run_job(plan, job, &mut pools, options, &bars) {
            Ok(super::Done::Trained(headline)) => format!("ok\t{headline}"),
            Ok(super::Done::Busy(holder)) => format!("busy\t{holder}"),
            Ok(super::Done::AlreadyFinished) => "finished\t-".to_string(),
            Ok(super::Done::Interrupted) => "interrupted\t-".to_string(),
            Err(err) => {
                let kind =
                    if crate::files::is_storage_full(err.as_ref()) { "full" } else { "failed" };
                format!("{kind}\t{}", format!("{err:#}").replace(['\n', '\t'], " "))
            }
        };
        let mut stdout = std::io::stdout().lock();
        writeln!(stdout, "{answer}")?;
        stdout.flush()?;
        if super::interrupt::received().is_some() {
            break;
        }
    }
    Ok(())
}

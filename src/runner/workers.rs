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
use std::path::PathBuf;
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc;

use anyhow::Context;

use super::{jobs, record_failure, run_job, Bars, Job, Pools, RunOptions, RunSummary};
use crate::matrix::{Plan, Scheme};
use crate::store::{RunStatus, Store};

/// A run's name on the wire: cell id, seed and configuration hash, tab-separated.
fn key(job: &Job) -> String {
    format!("{}\t{}\t{}", job.cell.id(), job.seed.0, job.hash)
}

/// A worker's answer for its current run.
enum Answer {
    /// Trained, with its top-1.
    Trained(f64),
    /// Held by another worker (who).
    Busy(String),
    /// Failed (the error's one-line text).
    Failed(String),
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
    loop {
        for (index, worker) in workers.iter_mut().enumerate() {
            if worker.alive && worker.busy.is_none() {
                if let Some(next) = state.next() {
                    writeln!(worker.stdin, "{}", key(&pending[next]))
                        .and_then(|()| worker.stdin.flush())
                        .with_context(|| format!("writing to worker {index}"))?;
                    worker.busy = Some(next);
                }
            }
        }
        if workers.iter().all(|w| w.busy.is_none()) {
            break;
        }
        let Ok((index, answer)) = rx.recv() else { break };
        if answer.is_none() {
            workers[index].alive = false;
        }
        let Some(done) = workers[index].busy.take() else { continue };
        let job = &pending[done];
        match answer.unwrap_or_else(|| Answer::Failed("its worker process exited".to_string())) {
            Answer::Trained(top1) => {
                summary.trained += 1;
                bars.println(&format!("{}: top-1 {top1:.4}", job.id()));
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
        }
        bars.matrix.inc(1);
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
    for mut worker in workers {
        drop(worker.stdin);
        let _ = worker.child.wait();
    }
    Ok(())
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
        .stdout(Stdio::piped());
    if let Some(dir) = &options.locator.data_dir {
        command.arg("--data-dir").arg(dir);
    }
    let mut child =
        command.spawn().with_context(|| format!("starting worker `{}`", exe.display()))?;
    let stdin = child.stdin.take().expect("piped");
    let stdout = child.stdout.take().expect("piped");
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            let answer = match line.split_once('\t') {
                Some(("ok", top1)) => top1.parse().map_or_else(
                    |_| Answer::Failed(format!("bad answer `{line}`")),
                    Answer::Trained,
                ),
                Some(("busy", holder)) => Answer::Busy(holder.to_string()),
                Some(("failed", message)) => Answer::Failed(message.to_string()),
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
/// is finished, and alone among its backbone's runs while that checkpoint is missing.
struct Schedule {
    waiting: Vec<usize>,
    /// Per pending run: its stage-1 run folder, if decoupled.
    stage1: Vec<Option<PathBuf>>,
    /// Stage-1 run folders whose records are finished.
    finished: HashSet<PathBuf>,
    /// Stage-1 folders with a run in flight that may be rewriting the checkpoint.
    exclusive: HashSet<PathBuf>,
    /// Folder of each pending run.
    dirs: Vec<PathBuf>,
    /// Run folders another worker holds.
    busy: HashSet<PathBuf>,
    in_flight: HashMap<usize, PathBuf>,
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
            finished,
            exclusive: HashSet::new(),
            dirs: pending.iter().map(|j| j.dir.clone()).collect(),
            busy: HashSet::new(),
            in_flight: HashMap::new(),
        }
    }

    /// The next run that may start, removed from the waiting list.
    fn next(&mut self) -> Option<usize> {
        let position = self.waiting.iter().position(|&i| match &self.stage1[i] {
            None => true,
            Some(dir) => self.finished.contains(dir) && !self.exclusive.contains(dir),
        })?;
        let job = self.waiting.remove(position);
        if let Some(dir) = &self.stage1[job] {
            if !dir.join("model.ot").is_file() {
                self.exclusive.insert(dir.clone());
                self.in_flight.insert(job, dir.clone());
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

    /// Runs still waiting when nothing is in flight: their stage-1 run failed, or no worker is
    /// left.
    fn unreachable(&self) -> Vec<usize> {
        self.waiting.clone()
    }
}

/// The hidden `balms worker` command: trains the runs named on standard input, one per line,
/// answering `ok<TAB>top-1` or `failed<TAB>message` on standard output.
///
/// # Errors
/// Reading standard input, or a run the plan does not have (the matrix file changed).
pub fn serve_worker(plan: &Plan, options: &RunOptions) -> anyhow::Result<()> {
    let by_key: HashMap<String, Job> =
        jobs(plan, &options.store).into_iter().map(|j| (key(&j), j)).collect();
    let bars = Bars::new(0, false);
    let mut pools = Pools::default();
    for line in std::io::stdin().lock().lines() {
        let line = line.context("reading the run to do")?;
        let job = by_key.get(&line).with_context(|| {
            format!("`{}` has no run `{line}` (was it edited?)", plan.path.display())
        })?;
        let answer = match run_job(plan, job, &mut pools, options, &bars) {
            Ok(super::Done::Trained(top1)) => format!("ok\t{top1}"),
            Ok(super::Done::Busy(holder)) => format!("busy\t{holder}"),
            Err(err) => format!("failed\t{}", format!("{err:#}").replace(['\n', '\t'], " ")),
        };
        let mut stdout = std::io::stdout().lock();
        writeln!(stdout, "{answer}")?;
        stdout.flush()?;
    }
    Ok(())
}

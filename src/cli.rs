//! Command-line interface: thin wrappers over the library, one subcommand per pipeline verb.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context;
use clap::{Args, Parser, Subcommand};

use crate::data::{DataLocator, DatasetKind};
use crate::device::{self, DeviceChoice};
use crate::matrix::Plan;
use crate::runner::{self, RunOptions};
use crate::store::Store;

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
    Plan {
        /// Matrix files.
        #[arg(required = true)]
        files: Vec<PathBuf>,
        /// Data folder (also `BALMS_DATA`), for image-list datasets' class statistics.
        #[arg(long)]
        data_dir: Option<PathBuf>,
    },
    /// Run every unfinished run of matrix files (resumable).
    Run {
        /// Matrix files.
        #[arg(required = true)]
        files: Vec<PathBuf>,
        /// Run options.
        #[command(flatten)]
        options: RunArgs,
    },
    /// Aggregate finished runs into tables under the paper folder.
    Report {
        /// Matrix files.
        #[arg(required = true)]
        files: Vec<PathBuf>,
        /// Results folder.
        #[arg(long, default_value = "results")]
        results: PathBuf,
        /// Output folder.
        #[arg(long, default_value = "paper")]
        paper: PathBuf,
    },
    /// Run and report every matrix in a folder whose data is present; name those skipped.
    Reproduce {
        /// Folder of matrix files.
        #[arg(long, default_value = "experiments")]
        experiments: PathBuf,
        /// Output folder of the tables.
        #[arg(long, default_value = "paper")]
        paper: PathBuf,
        /// Recompute everything in this scratch folder and compare with `--results`.
        #[arg(long)]
        scratch: Option<PathBuf>,
        /// Run options.
        #[command(flatten)]
        options: RunArgs,
    },
    /// Rerun matrices from scratch and compare every run with the stored results: exits 1 with
    /// a per-run list when any differs (CI's check that committed results still reproduce).
    Check {
        /// Matrix files.
        #[arg(required = true)]
        files: Vec<PathBuf>,
        /// Allowed top-1 difference per run, in percentage points (default: records must be
        /// identical, as on the machine kind and thread count that made them).
        #[arg(long)]
        tolerance: Option<f64>,
        /// Scratch folder for the reruns (emptied first).
        #[arg(long, default_value = "scratch/check")]
        scratch: PathBuf,
        /// Run options (`--results` is the reference).
        #[command(flatten)]
        options: RunArgs,
    },
    /// List the datasets and where they were found.
    Data {
        /// Data folder (also `BALMS_DATA`).
        #[arg(long)]
        data_dir: Option<PathBuf>,
    },
    /// List the registered losses, samplers, models and datasets.
    List,
    /// Write Fashion-MNIST-LT as a JPEG tree with ImageNet-LT-format lists
    /// (`FashionMNIST_LT_{train,val,test}.txt`), for the `image-list` dataset.
    JpegTree {
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
    },
    /// Training throughput against the PyTorch reference on identical data, as ratios.
    Bench(BenchArgs),
    /// JPEG decoding + ImageNet-LT transforms against torchvision's on the same files, as ratios
    /// (per core and with every core).
    BenchDecode {
        /// Python with torch and torchvision for the reference (none: balms alone).
        #[arg(long)]
        python: Option<PathBuf>,
        /// The reference script.
        #[arg(long, default_value = "bench/decode_reference.py")]
        script: PathBuf,
        /// Number of JPEG files.
        #[arg(long, default_value_t = 256)]
        images: usize,
        /// Passes over the files (the fastest counts).
        #[arg(long, default_value_t = 3)]
        passes: usize,
        /// Threads (and DataLoader workers) of the all-cores row.
        #[arg(long, default_value_t = 2)]
        threads: usize,
        /// Data folder holding Fashion-MNIST (also `BALMS_DATA`).
        #[arg(long)]
        data_dir: Option<PathBuf>,
        /// Folder for the files.
        #[arg(long, default_value = "target/bench-decode")]
        scratch: PathBuf,
        /// Output stem: writes `<out>.json` and `<out>.md`.
        #[arg(long, default_value = "results/bench/decode")]
        out: PathBuf,
    },
    /// Check the paper's theory numerically (Theorem 1, the bound's margins, over-balance, the
    /// toy of Figure 5); writes paper/theory/.
    Theory {
        /// Checks (comma-separated; default all).
        #[arg(long, value_enum, value_delimiter = ',')]
        only: Vec<crate::bound::Check>,
        /// Seeds (at least two; the toy uses the first).
        #[arg(long, value_delimiter = ',', default_value = "1,2,3")]
        seeds: Vec<u64>,
        /// Output folder.
        #[arg(long, default_value = "paper/theory")]
        out: PathBuf,
    },
    /// Write a Slurm submit script: a job array of `--shard` tasks and a report job after them.
    Slurm {
        /// The matrix file.
        file: PathBuf,
        /// Array tasks (default: one per unit, a stage-1 run with the stage-2 runs on it).
        #[arg(long)]
        shards: Option<usize>,
        /// Tasks running at once.
        #[arg(long, default_value_t = 4)]
        max_running: usize,
        /// CPUs per task (and `--threads`).
        #[arg(long, default_value_t = 2)]
        cpus: usize,
        /// Memory per task.
        #[arg(long, default_value = "8G")]
        mem: String,
        /// Time limit per task.
        #[arg(long, default_value = "12:00:00")]
        time: String,
        /// Partition.
        #[arg(long)]
        partition: Option<String>,
        /// GPUs per task (the tasks then train with `--device cuda`).
        #[arg(long, default_value_t = 0)]
        gpus: usize,
        /// Results folder (relative to the current folder, which the jobs run in).
        #[arg(long, default_value = "results")]
        results: PathBuf,
        /// Tables folder of the report job.
        #[arg(long, default_value = "paper")]
        paper: PathBuf,
        /// Folder of the jobs' logs.
        #[arg(long, default_value = "slurm-logs")]
        logs: PathBuf,
        /// Write the script here instead of standard output.
        #[arg(long)]
        out: Option<PathBuf>,
    },
    /// Internal: a `--jobs` worker; trains the runs named on standard input.
    #[command(hide = true)]
    Worker {
        /// The matrix file.
        file: PathBuf,
        /// Run options.
        #[command(flatten)]
        options: RunArgs,
    },
}

/// Options of `balms bench`.
#[derive(Debug, Args)]
pub struct BenchArgs {
    /// Workloads (comma-separated).
    #[arg(
        long,
        value_enum,
        value_delimiter = ',',
        default_value = "mlp-digits,cnn-fashion,resnet32-cifar"
    )]
    pub workloads: Vec<crate::bench::Workload>,
    /// Device for balms and the reference.
    #[arg(long, value_enum, default_value = "cpu")]
    pub device: DeviceChoice,
    /// Intra-op threads for both.
    #[arg(long, default_value_t = 2)]
    pub threads: i32,
    /// Warm-up iterations (default: each workload's).
    #[arg(long)]
    pub warmup: Option<u64>,
    /// Timed iterations (default: each workload's).
    #[arg(long)]
    pub steps: Option<u64>,
    /// Batch size.
    #[arg(long, default_value_t = 128)]
    pub batch: u32,
    /// Python with PyTorch and torchvision for the reference (omit to time balms alone).
    #[arg(long)]
    pub python: Option<PathBuf>,
    /// The reference script.
    #[arg(long, default_value = "bench/reference.py")]
    pub script: PathBuf,
    /// The reference `DataLoader`'s `num_workers`.
    #[arg(long, default_value_t = 0)]
    pub workers: u32,
    /// Forward precision of both.
    #[arg(long, value_enum, default_value = "f32")]
    pub precision: crate::device::Precision,
    /// Channels-last convolutions in both.
    #[arg(long)]
    pub channels_last: bool,
    /// Data folder (then `BALMS_DATA`, then well-known places).
    #[arg(long)]
    pub data_dir: Option<PathBuf>,
    /// Scratch folder for exchanged data and checkpoints.
    #[arg(long, default_value = "target/bench-scratch")]
    pub scratch: PathBuf,
    /// Output path without extension: `.json` and `.md` are written.
    #[arg(long, default_value = "results/bench/cpu")]
    pub out: PathBuf,
    /// Instead of the workloads: time this matrix from scratch with 1 job x `--threads` threads
    /// and with `--threads` jobs x 1 thread (runs per hour).
    #[arg(long)]
    pub throughput: Option<PathBuf>,
}

impl BenchArgs {
    #[allow(clippy::print_stdout)]
    fn throughput(&self, matrix: &Path) -> anyhow::Result<()> {
        let jobs = usize::try_from(self.threads).context("threads")?;
        let settings = [(1, self.threads), (jobs, 1)];
        let rows =
            crate::bench::throughput(matrix, &settings, self.data_dir.as_deref(), &self.scratch)?;
        let markdown = crate::bench::throughput_markdown(matrix, &rows, &crate::bench::utc_date());
        crate::store::write_json(&self.out.with_extension("json"), &rows)?;
        crate::store::write_atomic(&self.out.with_extension("md"), markdown.as_bytes())?;
        print!("{markdown}");
        Ok(())
    }

    #[allow(clippy::print_stdout)]
    fn run(&self) -> anyhow::Result<()> {
        anyhow::ensure!(self.threads >= 1, "`--threads` must be at least 1");
        anyhow::ensure!(self.steps != Some(0), "`--steps` must be at least 1");
        tch::set_num_threads(self.threads);
        if let Some(matrix) = &self.throughput {
            return self.throughput(matrix);
        }
        let options = crate::bench::BenchOptions {
            workloads: self.workloads.clone(),
            device: device::resolve(self.device)?,
            threads: self.threads,
            warmup: self.warmup,
            steps: self.steps,
            batch: self.batch,
            python: self.python.clone(),
            script: self.script.clone(),
            workers: self.workers,
            precision: self.precision,
            channels_last: self.channels_last,
            locator: DataLocator { data_dir: self.data_dir.clone() },
            scratch: self.scratch.clone(),
        };
        let report = crate::bench::run(&options)?;
        let markdown = report.markdown(&crate::bench::utc_date());
        crate::store::write_json(&self.out.with_extension("json"), &report)?;
        crate::store::write_atomic(&self.out.with_extension("md"), markdown.as_bytes())?;
        print!("{markdown}");
        Ok(())
    }
}

/// Options of commands that train.
#[derive(Debug, Args)]
pub struct RunArgs {
    /// Results folder.
    #[arg(long, default_value = "results")]
    pub results: PathBuf,
    /// Data folder (then `BALMS_DATA`, then well-known places).
    #[arg(long)]
    pub data_dir: Option<PathBuf>,
    /// Training device; `auto` says which it picked.
    #[arg(long, value_enum, default_value = "auto")]
    pub device: DeviceChoice,
    /// Intra-op CPU threads (recorded with every result; same seed and threads, same bytes).
    #[arg(long, default_value_t = 2)]
    pub threads: i32,
    /// Hide progress bars.
    #[arg(long)]
    pub no_progress: bool,
    /// Runs trained at once, each in a worker process with `--threads` threads (results are the
    /// same whatever the number).
    #[arg(long, default_value_t = 1)]
    pub jobs: usize,
    /// Only share I of N (0-based, `I/N`): N processes, e.g. Slurm array tasks, cover the matrix
    /// exactly once; a stage-2 run goes with its stage-1 run.
    #[arg(long)]
    pub shard: Option<runner::Shard>,
}

impl RunArgs {
    fn options(&self, results: &Path) -> anyhow::Result<RunOptions> {
        anyhow::ensure!(self.threads >= 1, "`--threads` must be at least 1");
        anyhow::ensure!(self.jobs >= 1, "`--jobs` must be at least 1");
        tch::set_num_threads(self.threads);
        let device = device::resolve(self.device)?;
        if self.device == DeviceChoice::Auto {
            eprintln!("device: {} (auto)", device::label(device));
        }
        Ok(RunOptions {
            store: Store::new(results),
            device,
            threads: self.threads,
            locator: DataLocator { data_dir: self.data_dir.clone() },
            progress: !self.no_progress,
            jobs: self.jobs,
            worker_exe: None,
            shard: self.shard,
        })
    }
}

/// Parses arguments and runs the command.
///
/// # Errors
/// Any failure, with context naming the file, cell or field.
#[allow(clippy::print_stdout)]
pub fn main() -> anyhow::Result<ExitCode> {
    let cli = Cli::parse();
    match cli.command {
        Command::Plan { files, data_dir } => {
            let locator = DataLocator { data_dir };
            for file in files {
                let plan = Plan::load(&file)?;
                print!("{}", plan.render());
                print!("{}", list_statistics(&plan, &locator));
            }
        }
        Command::Run { files, options } => {
            let run_options = options.options(&options.results)?;
            for file in files {
                run_matrix(&Plan::load(&file)?, &run_options)?;
            }
        }
        Command::Report { files, results, paper } => {
            for file in files {
                let path = crate::report::write_report(
                    &Plan::load(&file)?,
                    &Store::new(&results),
                    &paper,
                )?;
                println!("wrote {}", path.display());
            }
        }
        Command::Reproduce { experiments, paper, scratch, options } => {
            return reproduce(&experiments, &paper, scratch.as_deref(), &options)
        }
        Command::Check { files, tolerance, scratch, options } => {
            return check(&files, tolerance, &scratch, &options);
        }
        Command::Data { data_dir } => print!("{}", data_listing(&DataLocator { data_dir })),
        Command::List => print!("{}", registry_listing()),
        Command::JpegTree { out, imbalance, n_max, seed, test_per_class, quality, data_dir } => {
            let options = crate::data::jpeg_tree::TreeOptions {
                out,
                imbalance,
                n_max,
                seed,
                test_per_class,
                quality,
            };
            let [train, val, test] =
                crate::data::jpeg_tree::write(&DataLocator { data_dir }, &options)?;
            println!(
                "wrote {} (train {train}, val {val}, test {test} images; lists {}_{{train,val,test}}.txt)",
                options.out.display(),
                crate::data::jpeg_tree::PREFIX
            );
        }
        Command::Bench(args) => args.run()?,
        Command::BenchDecode {
            python,
            script,
            images,
            passes,
            threads,
            data_dir,
            scratch,
            out,
        } => {
            let options = crate::bench::decode::DecodeOptions {
                images,
                passes,
                threads,
                python,
                script,
                scratch,
                locator: DataLocator { data_dir },
            };
            let rows = crate::bench::decode::run(&options)?;
            let json = serde_json::to_string_pretty(&rows)? + "\n";
            crate::store::write_atomic(&out.with_extension("json"), json.as_bytes())?;
            let text = crate::bench::decode::markdown(&rows, &crate::bench::machine(), images);
            crate::store::write_atomic(&out.with_extension("md"), text.as_bytes())?;
            print!("{text}");
        }
        Command::Theory { only, seeds, out } => {
            let checks = if only.is_empty() { crate::bound::Check::ALL.to_vec() } else { only };
            let seeds: Vec<crate::seed::Seed> = seeds.into_iter().map(crate::seed::Seed).collect();
            let (summary, written) = crate::bound::run(&checks, &seeds, &out)?;
            print!("{summary}");
            for path in written {
                println!("wrote {}", path.display());
            }
        }
        Command::Slurm {
            file,
            shards,
            max_running,
            cpus,
            mem,
            time,
            partition,
            gpus,
            results,
            paper,
            logs,
            out,
        } => {
            let plan = Plan::load(&file)?;
            let units = runner::unit_count(&plan);
            let shards = shards.unwrap_or(units);
            anyhow::ensure!(
                shards >= 1 && max_running >= 1 && cpus >= 1,
                "`--shards`, `--max-running` and `--cpus` must be at least 1"
            );
            let workdir = std::env::current_dir().context("the current folder")?;
            let absolute =
                |p: &Path| if p.is_absolute() { p.to_path_buf() } else { workdir.join(p) };
            let script = runner::slurm::script(&runner::slurm::SlurmOptions {
                balms: std::env::current_exe().context("locating balms")?,
                matrix: absolute(&file),
                name: plan.name.clone(),
                shards,
                max_running,
                cpus,
                memory: mem,
                time,
                partition,
                gpus,
                results: absolute(&results),
                paper: absolute(&paper),
                logs: absolute(&logs),
                workdir: workdir.clone(),
            });
            match out {
                Some(path) => {
                    crate::store::write_atomic(&path, script.as_bytes())?;
                    eprintln!(
                        "wrote {} ({shards} shards of {units} units); submit it with `bash {}`",
                        path.display(),
                        path.display()
                    );
                }
                None => print!("{script}"),
            }
        }
        Command::Worker { file, options } => {
            let run_options = options.options(&options.results)?;
            runner::serve_worker(&Plan::load(&file)?, &run_options)?;
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn run_matrix(plan: &Plan, options: &RunOptions) -> anyhow::Result<()> {
    let summary = runner::run_plan(plan, options)?;
    let busy = if summary.busy > 0 {
        format!(", {} held by other workers", summary.busy)
    } else {
        String::new()
    };
    eprintln!(
        "matrix `{}`: {} trained, {} already finished{busy}",
        plan.name, summary.trained, summary.skipped
    );
    Ok(())
}

/// `balms reproduce`: every matrix whose data is present, then its report.
#[allow(clippy::print_stdout)]
fn reproduce(
    experiments: &Path,
    paper: &Path,
    scratch: Option<&Path>,
    args: &RunArgs,
) -> anyhow::Result<ExitCode> {
    let results = scratch.map_or_else(|| args.results.clone(), |s| s.join("results"));
    let paper = scratch.map_or_else(|| paper.to_path_buf(), |s| s.join("paper"));
    let options = args.options(&results)?;
    let mut skipped = Vec::new();
    for file in matrix_files(experiments)? {
        let plan = Plan::load(&file)?;
        if let Some(missing) =
            plan.columns.iter().find_map(|c| options.locator.locate(&c.dataset).err())
        {
            skipped.push(format!("{} ({}): {missing}", plan.name, file.display()));
            continue;
        }
        run_matrix(&plan, &options)?;
        let path = crate::report::write_report(&plan, &options.store, &paper)?;
        println!("wrote {}", path.display());
        if scratch.is_some() {
            let differences =
                crate::report::compare::compare(&plan, &options.store, &Store::new(&args.results))?;
            println!("{}", crate::report::compare::render(&plan.name, &differences));
        }
    }
    for line in &skipped {
        println!("skipped {line}");
    }
    Ok(ExitCode::SUCCESS)
}

/// `balms check`: reruns each matrix in `scratch` and compares it with `--results`.
#[allow(clippy::print_stdout)]
fn check(
    files: &[PathBuf],
    tolerance: Option<f64>,
    scratch: &Path,
    args: &RunArgs,
) -> anyhow::Result<ExitCode> {
    if scratch.exists() {
        std::fs::remove_dir_all(scratch)
            .with_context(|| format!("emptying `{}`", scratch.display()))?;
    }
    let options = args.options(scratch)?;
    let reference = Store::new(&args.results);
    let mut failed = false;
    for file in files {
        let plan = Plan::load(file)?;
        run_matrix(&plan, &options)?;
        let differences =
            crate::report::compare::compare_within(&plan, &options.store, &reference, tolerance)?;
        match tolerance {
            Some(points) if differences.is_empty() => println!(
                "`{}`: every run matches the reference results within {points} top-1 points",
                plan.name
            ),
            _ => println!("{}", crate::report::compare::render(&plan.name, &differences)),
        }
        failed |= !differences.is_empty();
    }
    Ok(if failed { ExitCode::FAILURE } else { ExitCode::SUCCESS })
}

fn matrix_files(dir: &Path) -> anyhow::Result<Vec<PathBuf>> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .with_context(|| format!("cannot read `{}`", dir.display()))?
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|e| e == "toml"))
        .collect();
    files.sort();
    Ok(files)
}

/// Class statistics of a plan's image-list datasets, from their train lists where found.
fn list_statistics(plan: &Plan, locator: &DataLocator) -> String {
    let mut out = String::new();
    for column in plan.columns.iter().filter(|c| c.dataset.list().is_some()) {
        let (prefix, _) = column.dataset.list().expect("list");
        let line = match locator.locate(&column.dataset) {
            Ok(Some(dir)) => {
                match crate::data::lists::Lists::read(&dir, prefix, column.dataset.classes()) {
                    Ok(lists) => crate::data::lists::describe(&lists, column.dataset.classes()),
                    Err(e) => format!("lists unreadable: {e}"),
                }
            }
            Ok(None) => unreachable!("lists are files"),
            Err(_) => format!("lists not found ({})", column.dataset.hint()),
        };
        out.push_str(&format!("\n{}: {line}\n", column.id()));
    }
    out
}

/// What `balms data` prints.
#[must_use]
pub fn data_listing(locator: &DataLocator) -> String {
    let kinds = [
        DatasetKind::DigitsLt,
        DatasetKind::GaussianLt(Default::default()),
        DatasetKind::FashionMnistLt,
        DatasetKind::MnistLt,
        DatasetKind::Cifar10Lt,
        DatasetKind::Cifar100Lt,
        DatasetKind::ImagenetLt(Default::default()),
        DatasetKind::PlacesLt(Default::default()),
    ];
    let mut out = String::new();
    for kind in kinds {
        let line = match locator.locate(&kind) {
            Ok(None) => "embedded".to_string(),
            Ok(Some(dir)) => format!("found in {}", dir.display()),
            Err(_) => format!("missing; {}", kind.hint()),
        };
        out.push_str(&format!("{:<18} {line}\n", kind.name()));
    }
    out
}

/// What `balms list` prints.
#[must_use]
pub fn registry_listing() -> String {
    const LISTING: &str = r#"losses (loss = "name" or loss = { name = { param = value } }):
  softmax                                   softmax cross-entropy
  balanced-softmax { exponent = 1 }         CE(logits + q log n_j) (Ren et al., Eqn 4; q = 1/4: Eqn 10)
  logit-adjusted { tau = 1 }                CE(logits + tau log prior) (Menon et al.)
  cbw                                       CE with class weights 1/n_j, summing to C
  focal { gamma = 1 }                       (1 - p_t)^gamma CE (LDAM-DRW's form)
  class-balanced-loss { beta = 0.9999, base = "softmax" | "focal", gamma = 1 }   (Cui et al.)
  ldam { max-margin = 0.5, scale = 30 }     margins n_j^(-1/4) on the true logit (Cao et al.)
  equalization { gamma = 0.9, lambda = 0.005 }   softmax EQL (Tan et al.; BagofTricks-LT)
samplers:
  instance                  a fresh permutation per epoch
  class-balanced            class-aware, 4 images per class visit (Kang et al.)
  square-root               classes with probability proportional to sqrt(n_j)
  progressively-balanced    instance- to class-balanced over the epochs (Kang et al.)
  meta { init-pow = 0, lr = 0.01, betas = [0.9, 0.999], meta-batch = 512, meta-set = "train" | "validation", temperature = 1 }
                            Meta Sampler (Ren et al.), stage 2 only
  meta-reweighter { same }  Meta Reweighter (Ren et al., App. B.2), stage 2 only
classifiers (end-to-end):   linear | cosine (LDAM-DRW's NormedLinear)
deferred re-weighting:      drw = { start = 0.8, beta = 0.9999 }
stage-2 classifiers:        retrain (cRT) | lws | { tau-norm = { tau = 1.0 } } | { logit-adjust = { tau = 1 } }
stage-2 features:           cached (default) | per-batch (through the backbone) | augmented (per batch, stage 1's augmentation, as the official code)
selection:                  last | best-val | best-test (optimistic, labelled)
precision:                  f32 | bf16-autocast        channels-last = true | false (end-to-end)
models:
  mlp = { hidden = [...] }  multi-layer perceptron
  small-cnn                 two conv blocks + 128-unit layer, 1x28x28
  resnet32                  CIFAR ResNet-32, option-A shortcuts
  resnet = { depth = 10 | 18 | 34 | 50 | 101 | 152, pretrained = "file.safetensors", frozen = ["layer1", ...] }
                            ImageNet ResNet, torchvision layer names
augment:                    none | { crop-flip = { padding = 4 } } | { random-resized-crop = { jitter = 0.4 } } (image lists)
datasets:
  cifar10-lt  cifar100-lt  fashion-mnist-lt  mnist-lt  digits-lt (embedded)  gaussian-lt (synthetic)
  imagenet-lt = { crop = 224, resize = 256 }  places-lt = { ... }   (OLTR's list files over JPEGs)
  image-list = { name, prefix, classes, imbalance, crop, resize }   (lists in the ImageNet-LT format)
"#;
    LISTING.to_string()
}

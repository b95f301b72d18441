//! A validated plan: the matrix file with defaults applied, checked, and expanded into cells
//! (dataset x imbalance factor x method) and runs (cell x seed).
//!
//! After [`Plan::from_file`] nothing is optional "because the file might not say": every
//! hyper-parameter has its value, and `balms plan` prints them all ([`Plan::render`]).

pub mod official;

use std::collections::BTreeSet;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::config::DrwWire;
use crate::config::{MatrixFile, OptimizerWire, ScheduleWire, SettingsWire, Stage2Wire};
use crate::data::augment::AugmentSpec;
use crate::data::longtail::Shot;
use crate::data::{DatasetKind, Folder, Format, Source};
use crate::device::Precision;
use crate::loss::LossSpec;
use crate::model::{ClassifierSpec, ModelSpec};
use crate::sampler::SamplerSpec;
use crate::seed::Seed;
use crate::vocab::{Features, Selection, Stage2Classifier, Stepping};

/// A semantic error in a matrix, naming the file and the field or method.
#[derive(Debug, thiserror::Error)]
#[error("invalid matrix `{path}`: {message}")]
pub struct MatrixError {
    /// The matrix file.
    pub path: PathBuf,
    /// What is wrong, naming the field.
    pub message: String,
}

/// SGD settings, resolved.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub struct Optimizer {
    /// Peak learning rate.
    pub lr: f64,
    /// SGD momentum coefficient, in [0, 1) (`optimizer.momentum`; default 0.9).
    pub momentum: f64,
    /// Weight decay (applied to every parameter, as `torch.optim.SGD`).
    pub weight_decay: f64,
    /// Whether SGD uses Nesterov momentum (default false: the official code's plain momentum; the
    /// paper says Nesterov); needs a positive momentum.
    pub nesterov: bool,
}

/// A length of training or warm-up, in epochs (`ceil(N / batch)` iterations each) or iterations.
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Length {
    /// Epochs (fractions allowed for warm-up).
    Epochs(f64),
    /// A fixed number of optimiser steps (as a training length, 0 only with pretrained weights: the
    /// model is then evaluated as it is).
    Iterations(u32),
}

impl Length {
    /// Iterations, given the iterations of one epoch.
    #[must_use]
    #[expect(
        clippy::cast_possible_truncation,
        clippy::cast_sign_loss,
        reason = "epochs (positive, checked) times iterations per epoch, far below 2^64"
    )]
    pub fn iterations(self, per_epoch: u64) -> u64 {
        match self {
            Length::Epochs(e) => (e * per_epoch as f64).round() as u64,
            Length::Iterations(i) => u64::from(i),
        }
    }

    fn label(self) -> String {
        match self {
            Length::Epochs(e) => format!("{e} epochs"),
            Length::Iterations(0) => "0 iterations (the pretrained model as it is)".to_string(),
            Length::Iterations(i) => format!("{i} iterations"),
        }
    }
}

/// Cosine-to-zero schedule with linear warm-up, stepped every iteration or, as the official
/// code, every epoch.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub struct Schedule {
    /// Length of the linear warm-up, in epochs or iterations (`schedule.warmup-epochs` or
    /// `warmup-iterations`; default 0 epochs).
    pub warmup: Length,
    /// Learning rate at the start of warm-up, as a fraction of the peak.
    pub warmup_start_factor: f64,
    /// Per iteration (default; omitted from records, so hashes do not move) or the official
    /// code's epoch arithmetic (`schedule.stepping`).
    #[serde(skip_serializing_if = "Stepping::is_iteration")]
    pub stepping: Stepping,
}

/// Deferred re-weighting (Cao et al., LDAM-DRW): the loss takes class-balanced weights with
/// `beta` from epoch `round(start * epochs)` (0-based) on; before, it is unweighted.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub struct Drw {
    /// Fraction of the epochs after which the weights apply (LDAM-DRW: 160 of 200 = 0.8).
    pub start: f64,
    /// beta of the class-balanced weights (LDAM-DRW: 0.9999).
    pub beta: f64,
}

impl Default for Drw {
    /// LDAM-DRW's CIFAR setting: weights from epoch 160 of 200, beta 0.9999.
    fn default() -> Drw {
        Drw { start: 0.8, beta: 0.9999 }
    }
}

impl Drw {
    /// The first (0-based) epoch with weights, of `epochs`.
    #[must_use]
    #[expect(
        clippy::cast_possible_truncation,
        clippy::cast_sign_loss,
        reason = "start is a fraction in [0, 1] (checked), so the epoch is in 0..=epochs"
    )]
    pub fn first_epoch(&self, epochs: u64) -> u64 {
        (self.start * epochs as f64).round() as u64
    }
}

/// Settings of an end-to-end training (or of a decoupled method's stage 1).
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub struct Settings {
    /// Backbone (`model`; default `mlp` with hidden widths `[256, 256]`).
    pub model: ModelSpec,
    /// Classifier on the backbone's features.
    pub classifier: ClassifierSpec,
    /// Training loss (`loss`; default `softmax`).
    pub loss: LossSpec,
    /// Deferred re-weighting of the loss, if any.
    pub drw: Option<Drw>,
    /// How training batches are drawn (`sampler`; default `instance`).
    pub sampler: SamplerSpec,
    /// Training length: epochs (at least 1) of `ceil(N / batch-size)` iterations, or iterations
    /// (default 10 epochs).
    pub length: Length,
    /// Training batch size, in images (`batch-size`; default 128, at least 1).
    pub batch_size: u32,
    /// SGD settings (defaults: lr 0.1, momentum 0.9, weight decay 5e-4, no Nesterov).
    pub optimizer: Optimizer,
    /// Linear warm-up then cosine to 0, stepped every iteration (defaults: no warm-up, start factor
    /// 0.5).
    pub schedule: Schedule,
    /// Training augmentation (`augment`; default `none`).
    pub augment: AugmentSpec,
    /// Which checkpoint is reported (`selection`; default `last`).
    pub selection: Selection,
    /// Forward-pass precision (default float32; omitted from records when default, so the
    /// configuration hashes of float32 runs are unchanged).
    #[serde(default, skip_serializing_if = "Precision::is_default")]
    pub precision: Precision,
    /// Convolutions in the channels-last memory format (default off; omitted when off).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub channels_last: bool,
}

/// Stage 2 of decoupled training on the frozen stage-1 backbone, whose features are computed in
/// evaluation mode (once by default; see [`Features`] and README, "Decoupled training"): a
/// classifier trained on them, or a post-hoc adjustment of the stage-1 classifier.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub struct Stage2 {
    /// The end-to-end method whose backbone is reused.
    pub stage1: String,
    /// What is trained or adjusted.
    pub classifier: Stage2Classifier,
    /// Which stage-2 checkpoint is reported (`stage2.selection`; default `last`; candidates are
    /// taken after each tenth of stage 2).
    pub selection: Selection,
    /// Where training features come from (omitted from the record when cached, the default).
    #[serde(skip_serializing_if = "Features::is_cached")]
    pub features: Features,
    /// Loss of the classifier.
    pub loss: LossSpec,
    /// Sampler of the classifier's batches.
    pub sampler: SamplerSpec,
    /// Stage-2 length in iterations (`stage2.iterations`; default 2,000, as the official CIFAR
    /// configs; at least 1).
    pub iterations: u32,
    /// Stage-2 batch size, in images (`stage2.batch-size`; default 512; at least 1).
    pub batch_size: u32,
    /// SGD (cosine to zero, no warm-up, as the official stage-2 configs).
    pub optimizer: Optimizer,
    /// Per iteration (default; omitted from records) or the official code's epoch arithmetic
    /// (`stage2.stepping`: 2,000 iterations become 1,920 at CIFAR-10-LT IF 100).
    #[serde(skip_serializing_if = "Stepping::is_iteration")]
    pub stepping: Stepping,
    /// With the Meta Sampler and `features = "augmented-train-bn"`: after the meta step, pass each
    /// training batch through the frozen backbone a second time (the same augmented images), as
    /// the official code's `meta_forward` then `batch_forward` do, so batch norm's running
    /// statistics move twice per batch (`stage2.double-forward`; default false, omitted from
    /// records).
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub double_forward: bool,
}

/// How a method trains.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Scheme {
    /// End-to-end training.
    EndToEnd(Settings),
    /// Decoupled training on another method's backbone.
    Decoupled(Stage2),
}

/// A row of a table.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Method {
    /// Method name, unique in the matrix: the table row, and the last part of cell ids and run
    /// folders.
    pub name: String,
    /// How it trains.
    pub scheme: Scheme,
    /// Run by a command instead of balms's trainer, with `scheme`'s settings (omitted from
    /// records when absent, so no hash moves).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub external: Option<External>,
}

/// A method run by a command (`external = { command = [...] }`): balms writes the run's data and
/// `run.json`, runs the command with `--run <run.json> --out <folder>`, and validates and records
/// the `metrics.json` it writes (README, "External methods": the contract).
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct External {
    /// The program and its arguments; `{python}` stands for the interpreter.
    pub command: Vec<String>,
    /// Seconds before the command is stopped and the run recorded as failed (default 86,400;
    /// not part of the configuration hash: it changes no result).
    #[serde(skip)]
    pub timeout_seconds: u64,
    /// A detectron2 method's config, overrides and GPUs (absent from the records of other
    /// external methods, so no hash moves).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub detectron2: Option<Detectron2>,
}

/// A detectron2 method (`external = { detectron2 = { config = "..." } }`): the command, from the
/// matrix's `[detectron2] project` (or the method's own), runs in its run's folder as `<command>
/// --config-file <config> --num-gpus <gpus> SEED <seed> OUTPUT_DIR <out> [MODEL.WEIGHTS <stage
/// 1's model_final.pth>] <overrides>`, and its detections are scored by `external/lvis_eval.py`
/// (README, "LVIS and detectron2").
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub struct Detectron2 {
    /// Config file, relative to the project.
    pub config: String,
    /// `KEY VALUE` pairs: the matrix's `[detectron2] overrides`, then the method's own.
    pub overrides: Vec<String>,
    /// GPUs per run (`--num-gpus`; default 8, the paper's App. C.1 and the authors' README).
    pub gpus: u32,
    /// The method's own checkout, when not the matrix's (not part of any hash: where a checkout
    /// lives changes no result).
    #[serde(skip)]
    pub project: Option<PathBuf>,
    /// The method's own interpreter, when not the matrix's (not part of any hash either).
    #[serde(skip)]
    pub python: Option<PathBuf>,
}

/// The entry point of the authors' LVIS code (`BalancedMetaSoftmax-InstanceSeg`), relative to its
/// checkout: a detectron2 method's default command.
pub const DETECTRON2_TRAIN: &str = "projects/BALMS/train_net.py";

/// GPUs per detectron2 run unless `[detectron2] gpus` says otherwise (paper App. C.1: 8 GPUs
/// for LVIS; the authors' README trains with `--num-gpus 8`).
pub const DETECTRON2_GPUS: u32 = 8;

/// detectron2 keys balms sets on every run's command line, refused as overrides.
const RESERVED_OVERRIDES: [&str; 3] = ["SEED", "OUTPUT_DIR", "MODEL.WEIGHTS"];

/// The default time limit of an external method's command: a day.
pub const EXTERNAL_TIMEOUT_SECONDS: u64 = 86_400;

impl Method {
    /// The model-selection rule its results record.
    #[must_use]
    pub fn selection_label(&self) -> &'static str {
        match &self.scheme {
            Scheme::EndToEnd(s) => s.selection.label(),
            Scheme::Decoupled(s) if s.classifier.is_post_hoc() => "post hoc (no training)",
            Scheme::Decoupled(s) => s.selection.label(),
        }
    }

    /// Whether its reported model was chosen on the test set.
    #[must_use]
    pub fn selects_on_test(&self) -> bool {
        match &self.scheme {
            Scheme::EndToEnd(s) => s.selection == Selection::BestTest,
            Scheme::Decoupled(s) => {
                !s.classifier.is_post_hoc() && s.selection == Selection::BestTest
            }
        }
    }
}

/// A column of a table: a dataset at an imbalance factor.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Column {
    /// The dataset, resolved with its parameters.
    pub dataset: DatasetKind,
    /// Imbalance factor `n_max / n_min` of the column (image lists: the nominal one, checked
    /// against the train list).
    pub imbalance: f64,
}

impl Column {
    /// `fashion-mnist-lt/if100`.
    #[must_use]
    pub fn id(&self) -> String {
        format!("{}/if{}", self.dataset.name(), self.imbalance)
    }
}

/// One cell: a method on a column.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Cell {
    /// Dataset and imbalance factor of the cell.
    pub column: Column,
    /// The method (table row) trained on that column.
    pub method: Method,
}

impl Cell {
    /// Display id, `fashion-mnist-lt/if100/softmax`.
    #[must_use]
    pub fn id(&self) -> String {
        format!("{}/{}", self.column.id(), self.method.name)
    }

    /// Folder name under the matrix's results, `fashion-mnist-lt.if100.softmax`.
    #[must_use]
    pub fn dir_name(&self) -> String {
        self.id().replace('/', ".")
    }
}

/// The seeds of every random stream of one run.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub struct RunSeeds {
    /// The matrix seed.
    pub seed: Seed,
    /// Long-tailed subset (shared by all methods of a column at this seed).
    pub subset: u64,
    /// Weight initialisation (`tch::manual_seed`).
    pub init: u64,
    /// Batch order and sampler.
    pub order: u64,
    /// Seed of the augmentation stream (`augment`, the same stream name for end-to-end and stage-2
    /// runs).
    pub augment: u64,
}

/// A scale factor as a name part, to 6 significant digits: `0.02` as `0p02`.
#[must_use]
pub fn scale_label(factor: f64) -> String {
    let digits: f64 = format!("{factor:.5e}").parse().expect("a number");
    format!("{digits}").replace('.', "p")
}

/// Stream names, so the plan and the trainer cannot disagree.
pub mod streams {
    /// Initialisation of end-to-end networks.
    pub const INIT: &str = "init";
    /// Sampler and order.
    pub const ORDER: &str = "order";
    /// Stream of the training augmentation (crop and flip draws, per-batch image seeds), for every
    /// scheme.
    pub const AUGMENT: &str = "augment";
    /// Initialisation of a stage-2 classifier.
    pub const STAGE2_INIT: &str = "stage2/init";
    /// Sampler of stage 2.
    pub const STAGE2_ORDER: &str = "stage2/order";
}

impl RunSeeds {
    /// detectron2's `SEED` for a run, from which it draws everything: the run's `init` seed,
    /// folded below 2^31 (detectron2 adds the process's rank and seeds `NumPy`, which takes 32
    /// bits).
    #[must_use]
    pub fn detectron2(&self) -> u64 {
        self.init % (1 << 31)
    }

    /// The streams of `cell` at `seed`.
    #[must_use]
    pub fn new(cell: &Cell, seed: Seed) -> RunSeeds {
        let subset =
            seed.derive(&crate::data::subset_stream(&cell.column.dataset, cell.column.imbalance));
        let (init, order) = match cell.method.scheme {
            Scheme::EndToEnd(_) => (streams::INIT, streams::ORDER),
            Scheme::Decoupled(_) => (streams::STAGE2_INIT, streams::STAGE2_ORDER),
        };
        RunSeeds {
            seed,
            subset,
            init: seed.derive(init),
            order: seed.derive(order),
            augment: seed.derive(streams::AUGMENT),
        }
    }
}

/// A validated, expanded matrix.
#[derive(Clone, Debug, Serialize)]
pub struct Plan {
    /// Matrix name (the file's `name`): its folder in the results folder and the report's stem in
    /// the paper folder.
    pub name: String,
    /// The file's one-line description (empty when absent).
    pub description: String,
    /// The file it came from.
    #[serde(skip)]
    pub path: PathBuf,
    /// Matrix seeds in file order: `seeds`, or `base-seed` (default 1) to
    /// `base-seed + repeats - 1`; none twice.
    pub seeds: Vec<Seed>,
    /// Columns, in file order.
    pub columns: Vec<Column>,
    /// Methods, in file order.
    pub methods: Vec<Method>,
    /// The paper's claims the matrix tests (validated: both methods exist, the factors too).
    #[serde(skip)]
    pub claims: Vec<crate::config::ClaimWire>,
    /// The paper table the matrix regenerates (validated against the reference data).
    #[serde(skip)]
    pub paper: Option<crate::config::PaperWire>,
    /// Figures the report draws (validated: the methods exist).
    #[serde(skip)]
    pub figures: Vec<crate::vocab::FigureSpec>,
    /// The official protocol the matrix declares it follows, if any.
    #[serde(skip)]
    pub follows: Option<crate::vocab::Protocol>,
    /// The factor every iteration count was multiplied by (`scale` in the file times `--scale`),
    /// `None` for the matrix's own protocol.
    #[serde(skip)]
    pub scale: Option<f64>,
    /// The interpreter external commands' `{python}` stands for, from the matrix's `python`
    /// (the `BALMS_PYTHON` environment variable overrides it when the run starts).
    pub python: Option<PathBuf>,
    /// The checkout detectron2 methods run in, as the matrix gives it (`[detectron2] project`;
    /// the `BALMS_INSTANCESEG` environment variable overrides it when the run starts; not part of
    /// any hash: where a checkout lives changes no result).
    #[serde(skip)]
    pub detectron2_project: Option<PathBuf>,
    /// Slurm resources per array task (`[slurm]`).
    #[serde(skip)]
    pub slurm: crate::config::SlurmWire,
}

impl Plan {
    /// Reads, validates and expands a matrix file.
    ///
    /// # Errors
    /// Syntax errors (with line and column) and semantic errors, naming the file.
    pub fn load(path: &Path) -> anyhow::Result<Plan> {
        let file = MatrixFile::load(path)?;
        Ok(Plan::from_file(file, path)?)
    }

    /// Validates and expands a parsed matrix.
    ///
    /// # Errors
    /// [`MatrixError`] naming the file and field.
    pub fn from_file(file: MatrixFile, path: &Path) -> Result<Plan, MatrixError> {
        let fail = |message: String| MatrixError { path: path.to_path_buf(), message };
        check_name("name", &file.name).map_err(fail)?;
        let seeds = resolve_seeds(&file).map_err(fail)?;
        let columns = resolve_columns(&file).map_err(fail)?;
        let methods = resolve_methods(&file).map_err(fail)?;
        check_models(&methods, &columns).map_err(fail)?;
        check_claims(&file.claims, &methods, &columns, seeds.len()).map_err(fail)?;
        if let Some(paper) = &file.paper {
            check_paper(paper, &methods).map_err(fail)?;
        }
        for (i, figure) in file.figures.iter().enumerate() {
            if let Some(m) = figure.methods.iter().find(|m| !methods.iter().any(|x| &x.name == *m))
            {
                return Err(fail(format!("figures[{i}]: no method `{m}`")));
            }
            if let Some(paper) = figure.paper.filter(|p| p.kind() != figure.kind) {
                return Err(fail(format!(
                    "figures[{i}]: the paper's Figure {} plots `{}`, not `{}`",
                    paper.number(),
                    paper.kind().label(),
                    figure.kind.label()
                )));
            }
            if let Some(f) = figure
                .imbalance
                .iter()
                .flatten()
                .find(|f| !columns.iter().any(|c| c.imbalance.to_bits() == f.to_bits()))
            {
                return Err(fail(format!("figures[{i}]: the matrix has no imbalance factor {f}")));
            }
        }
        Ok(Plan {
            name: file.name,
            description: file.description.unwrap_or_default(),
            path: path.to_path_buf(),
            seeds,
            columns,
            methods,
            claims: file.claims,
            paper: file.paper,
            figures: file.figures,
            follows: file.follows,
            scale: None,
            python: file.python.clone(),
            detectron2_project: file.detectron2.as_ref().map(|d| d.project.clone()),
            slurm: file.slurm.clone().unwrap_or_default(),
        })
        .and_then(|mut plan| match file.scale {
            Some(factor) => plan.scale_by(factor).map(|()| plan).map_err(fail),
            None => Ok(plan),
        })
    }

    /// A scaled protocol: every training length, warm-up and stage-2 iteration count multiplied by
    /// `factor` (iterations rounded, at least 1; epochs as fractions, a training length at least
    /// 1 epoch), for smoke runs and stand-ins. The name gains `-scaled-<factor>` (`0.02` as
    /// `0p02`), so scaled runs have their own results folder and report and never count as runs
    /// of the unscaled matrix; the factor is recorded in every run's `config.json` and shown in
    /// every report caption.
    ///
    /// # Errors
    /// A factor that is not finite and positive, or a plan already scaled (a matrix's `scale`
    /// and `--scale` together: rounding twice would not give the product's counts).
    pub fn scale_by(&mut self, factor: f64) -> Result<(), String> {
        if !(factor.is_finite() && factor > 0.0) {
            return Err(format!("`scale` = {factor} must be a positive number"));
        }
        if let Some(earlier) = self.scale {
            return Err(format!(
                "the matrix is already scaled by {earlier} (its `scale`); scale it once: change its `scale` or remove it and pass `--scale`"
            ));
        }
        if let Some(m) = self
            .methods
            .iter()
            .find(|m| m.external.as_ref().is_some_and(|e| e.detectron2.is_some()))
        {
            return Err(format!(
                "method `{}` takes its lengths from its detectron2 config, which balms does not read: shorten it with `[detectron2] overrides` (`SOLVER.MAX_ITER`, `SOLVER.STEPS`) instead of a scale",
                m.name
            ));
        }
        #[expect(
            clippy::cast_possible_truncation,
            clippy::cast_sign_loss,
            reason = "a positive factor times a u32 count, clamped to u32"
        )]
        let times = |n: u32| -> u32 {
            if n == 0 {
                return 0;
            }
            (f64::from(n) * factor).round().clamp(1.0, f64::from(u32::MAX)) as u32
        };
        let length = |l: Length, at_least: f64| match l {
            Length::Epochs(e) => Length::Epochs((e * factor).max(at_least.min(e))),
            Length::Iterations(i) => Length::Iterations(times(i)),
        };
        for method in &mut self.methods {
            match &mut method.scheme {
                Scheme::EndToEnd(s) => {
                    s.length = length(s.length, 1.0);
                    s.schedule.warmup = length(s.schedule.warmup, 0.0);
                }
                Scheme::Decoupled(s) => s.iterations = times(s.iterations),
            }
        }
        self.name = format!("{}-scaled-{}", self.name, scale_label(factor));
        self.scale = Some(factor);
        Ok(())
    }

    /// Every cell, column-major (all methods of the first column first).
    #[must_use]
    pub fn cells(&self) -> Vec<Cell> {
        self.columns
            .iter()
            .flat_map(|column| {
                self.methods
                    .iter()
                    .map(|method| Cell { column: column.clone(), method: method.clone() })
            })
            .collect()
    }

    /// The method named `name`.
    #[must_use]
    pub fn method(&self, name: &str) -> Option<&Method> {
        self.methods.iter().find(|m| m.name == name)
    }

    /// For a decoupled cell, the cell of its stage-1 method on the same column.
    #[must_use]
    pub fn stage1_cell(&self, cell: &Cell) -> Option<Cell> {
        match &cell.method.scheme {
            Scheme::Decoupled(s) => {
                let method = self.method(&s.stage1).expect("validated: stage 1 exists").clone();
                Some(Cell { column: cell.column.clone(), method })
            }
            Scheme::EndToEnd(_) => None,
        }
    }

    /// SHA-256 (hex) of what determines a run's result: the cell, its stage-1 method and its
    /// seeds (for a detectron2 method: its column, name, command, config, overrides and GPUs,
    /// its stage 1's, and its `SEED`). A stored result counts only while its hash matches.
    #[must_use]
    pub fn config_hash(&self, cell: &Cell, seed: Seed) -> String {
        use sha2::Digest;
        if let Some(external) = cell.method.external.as_ref().filter(|e| e.detectron2.is_some()) {
            // A detectron2 run is its command, config, overrides, GPUs and SEED: balms's
            // training settings play no part in it, so a change of their defaults moves no hash.
            let stage1 = self.stage1_cell(cell).map(|c| (c.method.name, c.method.external));
            let canonical = serde_json::to_string(&(
                &cell.column,
                &cell.method.name,
                external,
                stage1,
                RunSeeds::new(cell, seed).detectron2(),
            ))
            .expect("plan types serialise");
            return format!("{:x}", sha2::Sha256::digest(canonical.as_bytes()));
        }
        let stage1 = self.stage1_cell(cell).map(|c| c.method);
        let seeds = RunSeeds::new(cell, seed);
        let canonical =
            serde_json::to_string(&(cell, stage1, seeds)).expect("plan types serialise");
        format!("{:x}", sha2::Sha256::digest(canonical.as_bytes()))
    }

    /// Methods that correct for the label prior twice: a loss that corrects it (see
    /// [`LossSpec::corrects_prior`]) with a class-balanced sampler or DRW, or a post-hoc logit
    /// adjustment of a stage-1 model trained with one. The paper runs Balanced Softmax with
    /// class-balanced sampling as an ablation (Table 5, the over-balance of §3.3), so these are
    /// planned, with a caution each, rather than refused.
    #[must_use]
    pub fn cautions(&self) -> Vec<String> {
        let twice = "corrects for the label prior twice (the paper's over-balance, §3.3)";
        let mut out = Vec::new();
        for method in &self.methods {
            let (loss, sampler, drw) = match &method.scheme {
                Scheme::EndToEnd(s) => (&s.loss, &s.sampler, s.drw.is_some()),
                Scheme::Decoupled(s) => (&s.loss, &s.sampler, false),
            };
            let trains =
                !matches!(&method.scheme, Scheme::Decoupled(s) if s.classifier.is_post_hoc());
            if trains && loss.corrects_prior() && *sampler == SamplerSpec::ClassBalanced {
                out.push(format!(
                    "`{}`: `{}` with class-balanced sampling {twice}",
                    method.name,
                    loss.label()
                ));
            }
            if loss.corrects_prior() && drw {
                out.push(format!(
                    "`{}`: `{}` with DRW's class-balanced weights {twice}",
                    method.name,
                    loss.label()
                ));
            }
            if let Scheme::Decoupled(s) = &method.scheme {
                let stage1 = self.methods.iter().find(|m| m.name == s.stage1);
                if let (
                    Stage2Classifier::LogitAdjust { .. },
                    Some(Method { scheme: Scheme::EndToEnd(one), .. }),
                ) = (&s.classifier, stage1)
                {
                    let how = if one.loss.corrects_prior() {
                        Some(format!("`{}`", one.loss.label()))
                    } else if one.sampler == SamplerSpec::ClassBalanced {
                        Some("class-balanced sampling".to_string())
                    } else if one.drw.is_some() {
                        Some("DRW".to_string())
                    } else {
                        None
                    };
                    if let Some(how) = how {
                        out.push(format!(
                            "`{}`: a post-hoc logit adjustment of `{}`, trained with {how}, {twice}",
                            method.name, s.stage1
                        ));
                    }
                }
            }
        }
        out
    }

    /// The resolved plan as text: what `balms plan` prints and the snapshot tests pin.
    #[must_use]
    pub fn render(&self) -> String {
        let mut out = String::new();
        let _ = writeln!(out, "matrix `{}`", self.name);
        if let Some(factor) = self.scale {
            let _ = writeln!(
                out,
                "  scaled protocol: every iteration count x {factor} of the matrix's"
            );
        }
        if !self.description.is_empty() {
            let _ = writeln!(out, "  {}", self.description);
        }
        let seeds: Vec<String> = self.seeds.iter().map(ToString::to_string).collect();
        let _ = writeln!(out, "seeds: {}", seeds.join(", "));
        let _ = writeln!(out, "\ncolumns ({}):", self.columns.len());
        for column in &self.columns {
            render_column(&mut out, column);
        }
        let _ = writeln!(out, "\nmethods ({}):", self.methods.len());
        for method in &self.methods {
            render_method(&mut out, method);
        }
        let cautions = self.cautions();
        if !cautions.is_empty() {
            let _ = writeln!(out, "\ncautions ({}):", cautions.len());
            for caution in &cautions {
                let _ = writeln!(out, "  {caution}");
            }
        }
        if let Some(protocol) = self.follows {
            let differences = official::differences(self, protocol);
            let _ = writeln!(
                out,
                "\ndifferences from the official code ({}, {}):",
                protocol.label(),
                differences.len()
            );
            for d in &differences {
                let _ = writeln!(
                    out,
                    "  {}: balms {}; the official code {}",
                    d.setting, d.balms, d.official
                );
            }
        }
        let cells = self.cells();
        let _ =
            writeln!(out, "\ncells ({}), runs ({}):", cells.len(), cells.len() * self.seeds.len());
        for cell in &cells {
            let _ = writeln!(out, "  {}  [{}]", cell.id(), cell.dir_name());
            for &seed in &self.seeds {
                let s = RunSeeds::new(cell, seed);
                if cell.method.external.as_ref().is_some_and(|e| e.detectron2.is_some()) {
                    let _ = writeln!(out, "    seed {}: SEED {}", s.seed, s.detectron2());
                    continue;
                }
                let _ = writeln!(
                    out,
                    "    seed {}: subset {:016x}  init {:016x}  order {:016x}  augment {:016x}",
                    s.seed, s.subset, s.init, s.order, s.augment
                );
            }
        }
        out
    }
}

fn render_column(out: &mut String, column: &Column) {
    if column.dataset.is_detection() {
        let _ = writeln!(
            out,
            "  {}: {} categories, the official train split (693,958 instances, imbalance {} by paper Table 6), read by detectron2 from `<data>/lvis/` and `<data>/coco/`",
            column.id(),
            column.dataset.classes(),
            column.imbalance
        );
        let _ = writeln!(
            out,
            "    evaluation: lvis_v0.5_val (no validation split: detectron2's runs select nothing)"
        );
        return;
    }
    let Some(counts) = column.dataset.class_counts(column.imbalance) else {
        let (prefix, size) = column.dataset.list().expect("a list dataset");
        let _ = writeln!(
            out,
            "  {}: {} classes from the lists `{prefix}_{{train,val,test}}.txt` (class counts: the \
             train list's, shown by `balms plan` when the lists are found); crops {}, test resize {}",
            column.id(),
            column.dataset.classes(),
            size.crop,
            size.resize
        );
        let _ = writeln!(out, "    validation: the `val` list (balanced)");
        return;
    };
    let groups = [Shot::Many, Shot::Medium, Shot::Few]
        .map(|g| counts.iter().filter(|&&n| Shot::of(n) == g).count());
    let _ = writeln!(
        out,
        "  {}: {} classes, {} training images (head {}, tail {}), many/medium/few classes {}/{}/{}",
        column.id(),
        counts.len(),
        counts.iter().sum::<usize>(),
        counts[0],
        counts[counts.len() - 1],
        groups[0],
        groups[1],
        groups[2]
    );
    let list: Vec<String> = counts.iter().map(ToString::to_string).collect();
    let _ = writeln!(out, "    counts: [{}]", list.join(", "));
    let _ = writeln!(
        out,
        "    validation: {} per class from pool images the subset leaves unused (any shortfall from its training images)",
        crate::data::VAL_PER_CLASS
    );
}

fn render_method(out: &mut String, method: &Method) {
    if render_detectron2(out, method) {
        return;
    }
    render_balms_method(out, method);
}

/// A detectron2 method's plan lines (false for any other method).
fn render_detectron2(out: &mut String, method: &Method) -> bool {
    if let Some((external, d)) =
        method.external.as_ref().and_then(|e| e.detectron2.as_ref().map(|d| (e, d)))
    {
        let stage1 = match &method.scheme {
            Scheme::Decoupled(s) => format!(", fine-tuned from `{}`'s model_final.pth", s.stage1),
            Scheme::EndToEnd(_) => String::new(),
        };
        let _ = writeln!(out, "  {}: detectron2{stage1}", method.name);
        let _ = writeln!(
            out,
            "    `{} --config-file {} --num-gpus {} SEED <seed> OUTPUT_DIR <run>/external/out{}{}` from {} (timeout {} s)",
            external.command.join(" "),
            d.config,
            d.gpus,
            if stage1.is_empty() { "" } else { " MODEL.WEIGHTS <stage 1>/model_final.pth" },
            d.overrides.iter().fold(String::new(), |all, o| all + " " + o),
            d.project.as_ref().map_or_else(
                || "the project".to_string(),
                |p| format!("its own project `{}`", p.display())
            ),
            external.timeout_seconds
        );
        let _ = writeln!(out, "    scored by external/lvis_eval.py (LVIS API, segm and bbox, 300 detections per image) on lvis_v0.5_val");
        return true;
    }
    false
}

/// A balms (or classification external) method's plan lines.
fn render_balms_method(out: &mut String, method: &Method) {
    match &method.scheme {
        Scheme::EndToEnd(s) => {
            let _ = writeln!(out, "  {}: end-to-end", method.name);
            let _ = writeln!(
                out,
                "    model {}; classifier {}; loss {}{}; sampler {}; {}; batch {}; augment {}; selection {}",
                s.model.label(),
                s.classifier.label(),
                s.loss.label(),
                s.drw.as_ref().map_or_else(String::new, |d| format!(
                    " with deferred re-weighting (class-balanced beta {} from {} of the epochs)",
                    d.beta, d.start
                )),
                s.sampler.label(),
                s.length.label(),
                s.batch_size,
                s.augment.label(),
                s.selection.label()
            );
            let _ = writeln!(
                out,
                "    {}; cosine to 0 after {} of warm-up from {}x{}",
                render_sgd(&s.optimizer),
                s.schedule.warmup.label(),
                s.schedule.warmup_start_factor,
                stepping_label(s.schedule.stepping)
            );
            if !s.precision.is_default() || s.channels_last {
                let _ = writeln!(
                    out,
                    "    precision {}; memory format {}",
                    s.precision.label(),
                    if s.channels_last { "channels-last" } else { "contiguous" }
                );
            }
        }
        Scheme::Decoupled(s) if s.classifier.is_post_hoc() => {
            let _ = writeln!(out, "  {}: post hoc on the model of `{}`", method.name, s.stage1);
            let _ = writeln!(out, "    {}; no training", s.classifier.label());
        }
        Scheme::Decoupled(s) => {
            let _ = writeln!(out, "  {}: decoupled on the backbone of `{}`", method.name, s.stage1);
            let _ = writeln!(
                out,
                "    stage 2: {}; loss {}; sampler {}; {} iterations; batch {}; selection {}",
                s.classifier.label(),
                s.loss.label(),
                s.sampler.label(),
                s.iterations,
                s.batch_size,
                s.selection.label()
            );
            let features = match s.features {
                Features::Cached => "eval mode, computed once",
                Features::PerBatch => "eval mode, recomputed for every batch",
                Features::Augmented => {
                    "eval mode, recomputed for every batch from stage 1's augmentation"
                }
                Features::AugmentedTrainBn => {
                    "train-mode batch norm as the official code: batch statistics, running statistics move; recomputed for every batch from stage 1's augmentation"
                }
            };
            let _ = writeln!(
                out,
                "    {}; cosine to 0, no warm-up{}; features frozen ({features}{})",
                render_sgd(&s.optimizer),
                stepping_label(s.stepping),
                if s.double_forward {
                    "; each training batch passed twice, after the meta step again, as the official code"
                } else {
                    ""
                }
            );
        }
    }
    if let Some(external) = &method.external {
        let _ = writeln!(
            out,
            "    external: runs `{}` with these settings (timeout {} s)",
            external.command.join(" "),
            external.timeout_seconds
        );
    }
}

/// The schedule's stepping, as a suffix of a plan line (nothing for the default).
fn stepping_label(stepping: Stepping) -> &'static str {
    match stepping {
        Stepping::Iteration => "",
        Stepping::Epoch => {
            "; the official code's epochs (ceil(iterations / loader length) of floor(N / batch) batches, lr stepped per epoch)"
        }
    }
}

fn render_sgd(o: &Optimizer) -> String {
    format!(
        "sgd lr {} momentum {} weight-decay {} nesterov {}",
        o.lr, o.momentum, o.weight_decay, o.nesterov
    )
}

fn check_name(field: &str, name: &str) -> Result<(), String> {
    let ok = !name.is_empty()
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '_');
    if ok {
        Ok(())
    } else {
        Err(format!("`{field}` = {name:?}: use lower-case letters, digits, `-` and `_`"))
    }
}

/// An image-list entry: a name usable in paths and a list prefix without separators.
fn check_list(list: &crate::data::ListParams) -> Result<(), String> {
    check_name("datasets.image-list.name", &list.name)?;
    let prefix_ok = !list.prefix.is_empty()
        && list.prefix.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
    if !prefix_ok {
        return Err(format!(
            "`datasets.image-list.prefix` = {:?}: use letters, digits, `-` and `_`",
            list.prefix
        ));
    }
    Ok(())
}

fn resolve_seeds(file: &MatrixFile) -> Result<Vec<Seed>, String> {
    let seeds: Vec<Seed> = match (&file.seeds, file.repeats) {
        (Some(list), None) => list.iter().copied().map(Seed).collect(),
        (None, Some(repeats)) => {
            let base = file.base_seed.unwrap_or(1);
            (0..repeats).map(|k| Seed(base + k)).collect()
        }
        (Some(_), Some(_)) => return Err("give either `seeds` or `repeats`, not both".to_string()),
        (None, None) => {
            return Err("missing `seeds` (a list) or `repeats` (with `base-seed`)".to_string())
        }
    };
    if file.seeds.is_some() && file.base_seed.is_some() {
        return Err("`base-seed` goes with `repeats`, not with `seeds`".to_string());
    }
    if seeds.is_empty() {
        return Err("`seeds`/`repeats`: at least one seed is needed".to_string());
    }
    let mut sorted = seeds.clone();
    sorted.sort_unstable();
    sorted.dedup();
    if sorted.len() != seeds.len() {
        return Err("`seeds`: a seed is listed twice".to_string());
    }
    Ok(seeds)
}

fn resolve_columns(file: &MatrixFile) -> Result<Vec<Column>, String> {
    if file.datasets.is_empty() {
        return Err("`datasets` is empty".to_string());
    }
    let mut columns: Vec<Column> = Vec::new();
    for spec in &file.datasets {
        let (dataset, imbalances) = spec.split();
        if let DatasetKind::ImageList(list) = &dataset {
            check_list(list)?;
        }
        if let Some((_, size)) = dataset.list() {
            if size.crop < 16 || size.resize < size.crop {
                return Err(format!(
                    "`datasets.{}`: crop {} and resize {}: the crop is at least 16 and at most the resize",
                    dataset.name(),
                    size.crop,
                    size.resize
                ));
            }
        }
        if imbalances.is_empty() {
            return Err(format!("`datasets.{}.imbalance` is empty", dataset.name()));
        }
        if dataset.classes() < 2 {
            return Err(format!("`datasets.{}`: at least two classes are needed", dataset.name()));
        }
        for &imbalance in imbalances {
            let column = Column { dataset: dataset.clone(), imbalance };
            check_imbalance(&column)?;
            if columns.iter().any(|c| c.id() == column.id()) {
                return Err(format!("column `{}` is listed twice", column.id()));
            }
            columns.push(column);
        }
    }
    Ok(columns)
}

fn check_imbalance(column: &Column) -> Result<(), String> {
    let field = format!("`datasets.{}.imbalance`", column.dataset.name());
    if !column.imbalance.is_finite() || column.imbalance < 1.0 {
        return Err(format!("{field} = {}: an imbalance factor is at least 1", column.imbalance));
    }
    let Some(counts) = column.dataset.class_counts(column.imbalance) else { return Ok(()) };
    if counts.contains(&0) {
        return Err(format!(
            "{field} = {}: the tail class would have no image (n_max {})",
            column.imbalance,
            column.dataset.n_max()
        ));
    }
    Ok(())
}

fn resolve_methods(file: &MatrixFile) -> Result<Vec<Method>, String> {
    if file.methods.is_empty() {
        return Err("`methods` is empty".to_string());
    }
    if file.defaults.name.is_some()
        || file.defaults.stage1.is_some()
        || file.defaults.external.is_some()
    {
        return Err(
            "`defaults.name`, `defaults.stage1` and `defaults.external` are a method's fields, not defaults".into()
        );
    }
    let mut methods = Vec::new();
    for (i, wire) in file.methods.iter().enumerate() {
        let name = wire.name.clone().ok_or_else(|| format!("method #{} has no `name`", i + 1))?;
        let field = format!("method `{name}`");
        check_name("methods.name", &name)?;
        if methods.iter().any(|m: &Method| m.name == name) {
            return Err(format!("{field} is defined twice"));
        }
        let scheme = match &wire.stage1 {
            None => Scheme::EndToEnd(
                resolve_settings(&file.defaults, wire).map_err(|e| format!("{field}: {e}"))?,
            ),
            Some(stage1) => Scheme::Decoupled(
                resolve_stage2(file, stage1, wire).map_err(|e| format!("{field}: {e}"))?,
            ),
        };
        let external = resolve_external(file, wire).map_err(|e| format!("{field}: {e}"))?;
        methods.push(Method { name, scheme, external });
    }
    Ok(methods)
}

/// An external method's command; a decoupled external method's stage 1 must be external too
/// (its model is the command's), and balms's own stage 2 cannot load an external stage 1.
fn resolve_external(file: &MatrixFile, wire: &SettingsWire) -> Result<Option<External>, String> {
    let stage1_external = wire
        .stage1
        .as_ref()
        .map(|s| file.methods.iter().any(|m| m.name.as_ref() == Some(s) && m.external.is_some()));
    let Some(external) = &wire.external else {
        if stage1_external == Some(true) {
            return Err("its `stage1` is an external method, whose model balms cannot load: make this method external too".to_string());
        }
        return Ok(None);
    };
    if external.detectron2.is_some() {
        // Its settings are its config's: balms's would be silently ignored.
        let own = crate::config::SettingsWire {
            name: None,
            stage1: None,
            external: None,
            ..wire.clone()
        };
        let empty = crate::config::SettingsWire::default();
        if own != empty || file.defaults != empty {
            return Err("a detectron2 method takes its training settings from its config: give them as `overrides`, not as balms's settings (`[defaults]`, `loss`, `epochs`, ...)".to_string());
        }
    }
    let detectron2 = match (&external.detectron2, &file.detectron2) {
        (None, _) => None,
        (Some(_), None) => {
            return Err(
                "`external.detectron2` needs the matrix's `[detectron2] project`".to_string()
            )
        }
        (Some(own), Some(project)) => {
            let overrides: Vec<String> =
                project.overrides.iter().chain(&own.overrides).cloned().collect();
            if overrides.len() % 2 == 1 {
                return Err(format!(
                    "detectron2 overrides come in `KEY VALUE` pairs; {} given",
                    overrides.join(" ")
                ));
            }
            // A stage 1 may name its starting weights (R-50.pkl offline); a stage 2 starts from
            // its stage-1 run's model, which balms passes.
            let reserved = |k: &&String| {
                RESERVED_OVERRIDES.contains(&k.as_str())
                    && !(k.as_str() == "MODEL.WEIGHTS" && wire.stage1.is_none())
            };
            if let Some(key) = overrides.iter().step_by(2).find(reserved) {
                return Err(format!("detectron2 override `{key}` is balms's to set (the run's seed, output folder and, for a stage 2, its stage-1 run's model)"));
            }
            if own.config.is_empty() {
                return Err("`external.detectron2.config` is empty".to_string());
            }
            let gpus = project.gpus.unwrap_or(DETECTRON2_GPUS);
            if gpus == 0 {
                return Err("`detectron2.gpus` must be at least 1".to_string());
            }
            Some(Detectron2 {
                config: own.config.clone(),
                overrides,
                gpus,
                project: own.project.clone(),
                python: own.python.clone(),
            })
        }
    };
    let stage1_detectron2 = wire.stage1.as_ref().map(|s| {
        file.methods.iter().any(|m| {
            m.name.as_ref() == Some(s)
                && m.external.as_ref().is_some_and(|e| e.detectron2.is_some())
        })
    });
    if stage1_detectron2.is_some_and(|d| d != detectron2.is_some()) {
        return Err(
            "a detectron2 method's `stage1` is a detectron2 method, and only a detectron2 method's"
                .to_string(),
        );
    }
    let command = match (&detectron2, external.command.is_empty()) {
        (Some(_), true) => vec!["{python}".to_string(), DETECTRON2_TRAIN.to_string()],
        _ => external.command.clone(),
    };
    if command.first().is_none_or(String::is_empty) {
        return Err("`external.command` needs a program".to_string());
    }
    if stage1_external == Some(false) {
        return Err("an external stage 2 needs an external `stage1` (balms's checkpoints are libtorch's, not the command's)".to_string());
    }
    if external.timeout_seconds == Some(0) {
        return Err("`external.timeout-seconds` must be at least 1".to_string());
    }
    Ok(Some(External {
        command,
        timeout_seconds: external.timeout_seconds.unwrap_or(EXTERNAL_TIMEOUT_SECONDS),
        detectron2,
    }))
}

/// `[paper]` names a reference table, methods of the matrix and rows of that table.
fn check_paper(paper: &crate::config::PaperWire, methods: &[Method]) -> Result<(), String> {
    let table =
        crate::reference::Table::named(&paper.table).map_err(|e| format!("paper.table: {e}"))?;
    let rows = table.rows();
    for (method, row) in &paper.rows {
        if !methods.iter().any(|m| &m.name == method) {
            return Err(format!("paper.rows: no method `{method}`"));
        }
        if !rows.contains(&row.as_str()) {
            return Err(format!(
                "paper.rows.{method}: `{}` has no row `{row}` (rows: {})",
                paper.table,
                rows.join(", ")
            ));
        }
    }
    Ok(())
}

/// Every claim names two methods of the matrix and imbalance factors it has; a claim about a
/// trend needs two factors.
fn check_claims(
    claims: &[crate::config::ClaimWire],
    methods: &[Method],
    columns: &[Column],
    seeds: usize,
) -> Result<(), String> {
    for (i, claim) in claims.iter().enumerate() {
        let field = format!("claims[{i}]");
        for name in [&claim.better, &claim.than] {
            if !methods.iter().any(|m| &m.name == name) {
                let known: Vec<&str> = methods.iter().map(|m| m.name.as_str()).collect();
                return Err(format!("{field}: no method `{name}` (methods: {})", known.join(", ")));
            }
        }
        if let Some(factors) = &claim.imbalance {
            if let Some(f) = factors
                .iter()
                .find(|f| !columns.iter().any(|c| c.imbalance.to_bits() == f.to_bits()))
            {
                return Err(format!("{field}: the matrix has no imbalance factor {f}"));
            }
        }
        let distinct: BTreeSet<u64> = columns.iter().map(|c| c.imbalance.to_bits()).collect();
        if claim.grows_with_imbalance && distinct.len() < 2 {
            return Err(format!("{field}: `grows-with-imbalance` needs two imbalance factors"));
        }
        if claim.min_seeds.is_some_and(|n| n < 2) {
            return Err(format!(
                "{field}: `min-seeds` must be at least 2 (an interval needs two paired seeds)"
            ));
        }
        if let Some(n) = claim.min_seeds.filter(|&n| n > seeds) {
            return Err(format!(
                "{field}: `min-seeds` = {n} is more than the matrix's {seeds} seeds: the claim could never be judged"
            ));
        }
        if let Some(margin) = claim.equivalence_margin {
            if !(margin.is_finite() && margin > 0.0) {
                return Err(format!("{field}: `equivalence-margin` = {margin} must be positive"));
            }
            if claim.grows_with_imbalance {
                return Err(format!(
                    "{field}: a claim tests either equivalence or a growing gain, not both"
                ));
            }
        }
        let detectron2 = [&claim.better, &claim.than].into_iter().find(|name| {
            methods.iter().any(|m| {
                &&m.name == name && m.external.as_ref().is_some_and(|e| e.detectron2.is_some())
            })
        });
        if let (Some(method), false) =
            (detectron2, matches!(claim.metric, crate::config::ClaimMetric::Named(_)))
        {
            return Err(format!(
                "{field}: `{method}` is a detectron2 method, whose runs have no top-1 or rates: compare a metric it reports, e.g. `metric = {{ named = \"APm\" }}`"
            ));
        }
        if let crate::config::ClaimMetric::Named(name) = &claim.metric {
            // A difference is compared in the metric's own units over the seeds alone (a
            // command's metric has no known test-set noise); a trend is read in top-1.
            if claim.grows_with_imbalance {
                return Err(format!(
                    "{field}: `grows-with-imbalance` compares top-1; `metric = {{ named = {name:?} }}` claims a difference or an equivalence"
                ));
            }
            if !crate::config::is_metric_name(name) {
                return Err(format!(
                    "{field}: `metric.named` = {name:?}: use letters, digits, `-`, `_` and `.`"
                ));
            }
            for method in [&claim.better, &claim.than] {
                if methods.iter().any(|m| &m.name == method && m.external.is_none()) {
                    return Err(format!(
                        "{field}: `metric = {{ named = {name:?} }}` compares a metric external methods report, and `{method}` is balms's own"
                    ));
                }
            }
        }
        if claim.metric == crate::config::ClaimMetric::MetaRates {
            if claim.equivalence_margin.is_none() {
                return Err(format!(
                    "{field}: `metric = \"meta-rates\"` needs `equivalence-margin`"
                ));
            }
            for name in [&claim.better, &claim.than] {
                let learns_rates = methods.iter().any(|m| {
                    &m.name == name
                        && matches!(&m.scheme, Scheme::Decoupled(s) if s.sampler.meta().is_some())
                });
                if !learns_rates {
                    return Err(format!(
                        "{field}: `metric = \"meta-rates\"` compares learned rates, and `{name}` uses neither the Meta Sampler nor the Reweighter"
                    ));
                }
            }
        }
    }
    Ok(())
}

fn resolve_settings(defaults: &SettingsWire, own: &SettingsWire) -> Result<Settings, String> {
    let pick = |a: &Option<u32>, b: &Option<u32>, default: u32| a.or(*b).unwrap_or(default);
    let settings = Settings {
        model: own
            .model
            .clone()
            .or_else(|| defaults.model.clone())
            .unwrap_or(ModelSpec::Mlp { hidden: vec![256, 256] }),
        classifier: own.classifier.or(defaults.classifier).unwrap_or_default(),
        loss: own.loss.clone().or_else(|| defaults.loss.clone()).unwrap_or(LossSpec::Softmax),
        drw: resolve_drw(own.drw.as_ref().or(defaults.drw.as_ref()))?,
        sampler: own
            .sampler
            .clone()
            .or_else(|| defaults.sampler.clone())
            .unwrap_or(SamplerSpec::Instance),
        length: resolve_length(own, defaults)?,
        batch_size: pick(&own.batch_size, &defaults.batch_size, 128),
        optimizer: resolve_optimizer(&own.optimizer, &defaults.optimizer)?,
        schedule: resolve_schedule(&own.schedule, &defaults.schedule)?,
        augment: own
            .augment
            .clone()
            .or_else(|| defaults.augment.clone())
            .unwrap_or(AugmentSpec::None),
        selection: own.selection.or(defaults.selection).unwrap_or(Selection::Last),
        precision: own.precision.or(defaults.precision).unwrap_or_default(),
        channels_last: own.channels_last.or(defaults.channels_last).unwrap_or(false),
    };
    if settings.batch_size == 0 {
        return Err("`batch-size` must be at least 1".to_string());
    }
    let pretrained = match &settings.model {
        ModelSpec::Resnet(r) => r.pretrained.is_some(),
        ModelSpec::Mlp { .. } | ModelSpec::SmallCnn | ModelSpec::Resnet32 => false,
    };
    if settings.length == Length::Iterations(0) && !pretrained {
        return Err(
            "`iterations` = 0 takes a pretrained model as it is: set `model.resnet.pretrained`, or train at least 1 iteration"
                .to_string(),
        );
    }
    settings.loss.check().map_err(|e| format!("`loss` {}: {e}", settings.loss.label()))?;
    if settings.sampler.meta().is_some() {
        return Err(format!(
            "`sampler` {} is applied only in decoupled training (stage 2), as the paper; set `stage1`",
            settings.sampler.label()
        ));
    }
    if let (Length::Epochs(w), Length::Epochs(e)) = (settings.schedule.warmup, settings.length) {
        if w >= e {
            return Err(format!("`schedule.warmup-epochs` = {w} must be below `epochs` = {e}"));
        }
    }
    Ok(settings)
}

fn resolve_drw(wire: Option<&DrwWire>) -> Result<Option<Drw>, String> {
    let Some(wire) = wire else { return Ok(None) };
    let defaults = Drw::default();
    let drw = Drw {
        start: wire.start.unwrap_or(defaults.start),
        beta: wire.beta.unwrap_or(defaults.beta),
    };
    if !(0.0..=1.0).contains(&drw.start) {
        return Err(format!("`drw.start` = {} must be a fraction in [0, 1]", drw.start));
    }
    if !(0.0..1.0).contains(&drw.beta) {
        return Err(format!("`drw.beta` = {} must be in [0, 1)", drw.beta));
    }
    Ok(Some(drw))
}

fn resolve_length(own: &SettingsWire, defaults: &SettingsWire) -> Result<Length, String> {
    let length = pick_length(
        ("epochs", own.epochs.map(f64::from), own.iterations),
        (defaults.epochs.map(f64::from), defaults.iterations),
        Length::Epochs(10.0),
    )?;
    if matches!(length, Length::Epochs(e) if e < 1.0) {
        return Err(
            "`epochs` must be at least 1 (`iterations = 0` takes a pretrained model as it is)"
                .to_string(),
        );
    }
    Ok(length)
}

/// A length given in epochs or iterations: the method's own value wins over the defaults'.
fn pick_length(
    (field, own_epochs, own_iterations): (&str, Option<f64>, Option<u32>),
    (default_epochs, default_iterations): (Option<f64>, Option<u32>),
    fallback: Length,
) -> Result<Length, String> {
    let from = |epochs: Option<f64>, iterations: Option<u32>| match (epochs, iterations) {
        (Some(_), Some(_)) => Err(format!("give `{field}` in epochs or in iterations, not both")),
        (Some(e), None) => Ok(Some(Length::Epochs(e))),
        (None, Some(i)) => Ok(Some(Length::Iterations(i))),
        (None, None) => Ok(None),
    };
    Ok(from(own_epochs, own_iterations)?
        .or(from(default_epochs, default_iterations)?)
        .unwrap_or(fallback))
}

fn resolve_optimizer(own: &OptimizerWire, defaults: &OptimizerWire) -> Result<Optimizer, String> {
    let optimizer = Optimizer {
        lr: own.lr.or(defaults.lr).unwrap_or(0.1),
        momentum: own.momentum.or(defaults.momentum).unwrap_or(0.9),
        weight_decay: own.weight_decay.or(defaults.weight_decay).unwrap_or(5e-4),
        nesterov: own.nesterov.or(defaults.nesterov).unwrap_or(false),
    };
    if !(optimizer.lr > 0.0 && optimizer.lr.is_finite()) {
        return Err(format!("`optimizer.lr` = {} must be positive", optimizer.lr));
    }
    if !(0.0..1.0).contains(&optimizer.momentum) {
        return Err(format!("`optimizer.momentum` = {} must be in [0, 1)", optimizer.momentum));
    }
    if optimizer.weight_decay.is_nan() || optimizer.weight_decay < 0.0 {
        return Err(format!(
            "`optimizer.weight-decay` = {} must be non-negative",
            optimizer.weight_decay
        ));
    }
    if optimizer.nesterov && optimizer.momentum == 0.0 {
        return Err("`optimizer.nesterov` needs a positive momentum".to_string());
    }
    Ok(optimizer)
}

fn resolve_schedule(own: &ScheduleWire, defaults: &ScheduleWire) -> Result<Schedule, String> {
    let schedule = Schedule {
        warmup: pick_length(
            ("schedule.warmup-epochs", own.warmup_epochs, own.warmup_iterations),
            (defaults.warmup_epochs, defaults.warmup_iterations),
            Length::Epochs(0.0),
        )?,
        warmup_start_factor: own
            .warmup_start_factor
            .or(defaults.warmup_start_factor)
            .unwrap_or(0.5),
        stepping: own.stepping.or(defaults.stepping).unwrap_or_default(),
    };
    if matches!(schedule.warmup, Length::Epochs(w) if w.is_nan() || w < 0.0) {
        return Err("`schedule.warmup-epochs` must be non-negative".to_string());
    }
    if !(schedule.warmup_start_factor > 0.0 && schedule.warmup_start_factor <= 1.0) {
        return Err("`schedule.warmup-start-factor` must be in (0, 1]".to_string());
    }
    Ok(schedule)
}

fn resolve_stage2(file: &MatrixFile, stage1: &str, own: &SettingsWire) -> Result<Stage2, String> {
    let target = file.methods.iter().find(|m| m.name.as_deref() == Some(stage1));
    match target {
        None => {
            let names: Vec<&str> = file
                .methods
                .iter()
                .filter(|m| m.stage1.is_none())
                .filter_map(|m| m.name.as_deref())
                .collect();
            return Err(format!(
                "`stage1` = `{stage1}` is not a method of this matrix (end-to-end methods: {})",
                names.join(", ")
            ));
        }
        Some(m) if m.stage1.is_some() => {
            return Err(format!(
                "`stage1` = `{stage1}` is itself decoupled; name an end-to-end method"
            ));
        }
        Some(_) => {}
    }
    let stage1_only = [
        ("model", own.model.is_some()),
        ("classifier", own.classifier.is_some()),
        ("drw", own.drw.is_some()),
        ("epochs", own.epochs.is_some()),
        ("iterations", own.iterations.is_some()),
        ("batch-size", own.batch_size.is_some()),
        ("augment", own.augment.is_some()),
        ("selection", own.selection.is_some()),
        ("precision", own.precision.is_some()),
        ("channels-last", own.channels_last.is_some()),
    ];
    if let Some((field, _)) = stage1_only.iter().find(|(_, set)| *set) {
        return Err(format!("`{field}` belongs to the stage-1 method `{stage1}`; set stage-2 settings under `stage2`"));
    }
    let (d, o): (&Stage2Wire, &Stage2Wire) = (&file.defaults.stage2, &own.stage2);
    let stage2_default_optimizer = OptimizerWire {
        lr: Some(0.1),
        momentum: Some(0.9),
        weight_decay: Some(5e-4),
        nesterov: Some(false),
    };
    let merged_defaults = merge_optimizer(&d.optimizer, &stage2_default_optimizer);
    let classifier =
        o.classifier.clone().or(d.classifier.clone()).unwrap_or(Stage2Classifier::Retrain);
    check_stage2_classifier(file, stage1, own, &classifier)?;
    let stage2 = Stage2 {
        stage1: stage1.to_string(),
        classifier,
        selection: o.selection.or(d.selection).unwrap_or(Selection::Last),
        features: o.features.or(d.features).unwrap_or_default(),
        loss: own.loss.clone().or_else(|| file.defaults.loss.clone()).unwrap_or(LossSpec::Softmax),
        sampler: own
            .sampler
            .clone()
            .or_else(|| file.defaults.sampler.clone())
            .unwrap_or(SamplerSpec::Instance),
        iterations: o.iterations.or(d.iterations).unwrap_or(2000),
        batch_size: o.batch_size.or(d.batch_size).unwrap_or(512),
        optimizer: resolve_optimizer(&o.optimizer, &merged_defaults)?,
        stepping: o.stepping.or(d.stepping).unwrap_or_default(),
        double_forward: o.double_forward.or(d.double_forward).unwrap_or(false),
    };
    stage2.loss.check().map_err(|e| format!("`loss` {}: {e}", stage2.loss.label()))?;
    if let Some(meta) = stage2.sampler.meta() {
        if stage2.sampler.is_reweighter() && !meta.draw.is_exact() {
            return Err("`sampler`: the Meta Reweighter draws no Gumbel noise; `draw` is the Meta Sampler's".to_string());
        }
        meta.check().map_err(|e| format!("`sampler`: {e}"))?;
        if stage2.classifier != Stage2Classifier::Retrain {
            return Err("the Meta Sampler and Reweighter train a fresh classifier (`stage2.classifier = \"retrain\"`)".to_string());
        }
    }
    if stage2.iterations == 0 || stage2.batch_size == 0 {
        return Err("`stage2.iterations` and `stage2.batch-size` must be at least 1".to_string());
    }
    let meta_sampler = stage2.sampler.meta().is_some() && !stage2.sampler.is_reweighter();
    if stage2.double_forward && !(meta_sampler && stage2.features == Features::AugmentedTrainBn) {
        return Err("`stage2.double-forward` repeats the Meta Sampler's training-mode pass: it needs `sampler = \"meta\"` and `stage2.features = \"augmented-train-bn\"`".to_string());
    }
    if own.optimizer.lr.is_some()
        || own.schedule.warmup_epochs.is_some()
        || own.schedule.warmup_iterations.is_some()
        || own.schedule.stepping.is_some()
    {
        return Err("a decoupled method's optimiser and schedule are set under `stage2` (`stage2.optimizer`, `stage2.stepping`)".to_string());
    }
    Ok(stage2)
}

/// LWS and the post-hoc adjustments need the stage-1 linear classifier; post-hoc methods train
/// nothing, so training settings on them are mistakes.
fn check_stage2_classifier(
    file: &MatrixFile,
    stage1: &str,
    own: &SettingsWire,
    classifier: &Stage2Classifier,
) -> Result<(), String> {
    if *classifier == Stage2Classifier::Retrain {
        return Ok(());
    }
    let stage1_wire = file.methods.iter().find(|m| m.name.as_deref() == Some(stage1));
    let stage1_classifier =
        stage1_wire.and_then(|m| m.classifier).or(file.defaults.classifier).unwrap_or_default();
    if stage1_classifier != ClassifierSpec::Linear {
        return Err(format!(
            "`stage2.classifier` {} needs a linear stage-1 classifier; `{stage1}` uses `{}`",
            classifier.label(),
            stage1_classifier.label()
        ));
    }
    if let Stage2Classifier::TauNorm { tau: Some(t) } | Stage2Classifier::LogitAdjust { tau: t } =
        classifier
    {
        if !(t.is_finite() && *t >= 0.0) {
            return Err(format!("`stage2.classifier` tau = {t} must be finite and non-negative"));
        }
    }
    let o = &own.stage2;
    let trains = own.loss.is_some()
        || own.sampler.is_some()
        || o.iterations.is_some()
        || o.batch_size.is_some()
        || o.selection.is_some()
        || o.features.is_some()
        || o.stepping.is_some()
        || o.double_forward.is_some()
        || o.optimizer.lr.is_some();
    if classifier.is_post_hoc() && trains {
        return Err(format!(
            "`stage2.classifier` {} is post hoc and trains nothing; remove `loss`, `sampler` and the `stage2` training settings",
            classifier.label()
        ));
    }
    Ok(())
}

fn merge_optimizer(first: &OptimizerWire, then: &OptimizerWire) -> OptimizerWire {
    OptimizerWire {
        lr: first.lr.or(then.lr),
        momentum: first.momentum.or(then.momentum),
        weight_decay: first.weight_decay.or(then.weight_decay),
        nesterov: first.nesterov.or(then.nesterov),
    }
}

/// A classifier that its loss can train: the cosine classifier's logits lie in [-1, 1], which
/// only a loss with its own scale (LDAM) can fit; `scaled-cosine` brings the scale for the
/// others, and would scale LDAM's logits twice.
fn check_classifier(settings: &Settings) -> Result<(), String> {
    let ldam = matches!(settings.loss, LossSpec::Ldam { .. });
    match settings.classifier {
        ClassifierSpec::Cosine if !ldam => Err(format!(
            "`classifier = \"cosine\"` gives logits in [-1, 1], and `loss = \"{}\"` has no scale to stretch them (LDAM scales by its own s = 30): Softmax cannot fit such logits and Balanced Softmax's log n_j offsets swamp them; write `classifier = \"scaled-cosine\"` (s = 16, OLTR's default) or `classifier = {{ scaled-cosine = {{ scale = 30 }} }}`, or `classifier = \"linear\"`",
            settings.loss.label()
        )),
        ClassifierSpec::ScaledCosine { .. } if ldam => Err(
            "LDAM multiplies the logits by its own `scale` (default 30): `scaled-cosine` would scale them twice; write `classifier = \"cosine\"`".to_string(),
        ),
        ClassifierSpec::ScaledCosine { scale } if !(scale.is_finite() && scale > 0.0) => {
            Err(format!("`scaled-cosine` scale = {scale} must be positive"))
        }
        ClassifierSpec::Linear | ClassifierSpec::Cosine | ClassifierSpec::ScaledCosine { .. } => {
            Ok(())
        }
    }
}

fn check_models(methods: &[Method], columns: &[Column]) -> Result<(), String> {
    // Detection datasets and detectron2 methods go together, and only together.
    for method in methods {
        let detectron2 = method.external.as_ref().is_some_and(|e| e.detectron2.is_some());
        if let Some(column) = columns.iter().find(|c| c.dataset.is_detection() != detectron2) {
            return Err(if detectron2 {
                format!("method `{}` on `{}`: detectron2 methods run on detection datasets (lvis-v0.5) only", method.name, column.id())
            } else {
                format!("method `{}` on `{}`: a detection dataset is run by detectron2 methods only (`external = {{ detectron2 = {{ config = \"...\" }} }}`)", method.name, column.id())
            });
        }
    }
    for method in
        methods.iter().filter(|m| m.external.as_ref().is_none_or(|e| e.detectron2.is_none()))
    {
        if let Scheme::Decoupled(stage2) = &method.scheme {
            let stage1 = methods.iter().find(|m| m.name == stage2.stage1).map(|m| &m.scheme);
            let augmented =
                matches!(stage2.features, Features::Augmented | Features::AugmentedTrainBn);
            if let (true, Some(Scheme::EndToEnd(s))) = (augmented, stage1) {
                if s.augment == AugmentSpec::None {
                    return Err(format!(
                        "method `{}`: `stage2.features` = \"{}\" takes stage 1's augmentation, and `{}` has none",
                        method.name,
                        stage2.features.as_ref(),
                        stage2.stage1
                    ));
                }
            }
            if stage2.features == Features::AugmentedTrainBn && stage2.selection != Selection::Last
            {
                return Err(format!(
                    "method `{}`: `stage2.features` = \"augmented-train-bn\" moves the backbone's batch-norm statistics, which a kept checkpoint would not carry; use `selection = \"last\"` (the CIFAR protocol's) or `features = \"augmented\"`",
                    method.name
                ));
            }
        }
        if let (Some(_), Some(column)) =
            (&method.external, columns.iter().find(|c| c.dataset.list().is_some()))
        {
            // The contract hands the command arrays (`data.npz`), written from memory.
            return Err(format!(
                "method `{}` on `{}`: external methods take datasets held in memory; an image-list dataset (ImageNet-LT, Places-LT, image-list) is read from its files batch by batch, which the contract does not hand over yet",
                method.name,
                column.id()
            ));
        }
        if let Scheme::EndToEnd(settings) = &method.scheme {
            check_classifier(settings).map_err(|why| format!("method `{}`: {why}", method.name))?;
            for column in columns {
                if let Some(why) = settings.model.incompatibility(&column.dataset.input_shape()) {
                    return Err(format!("method `{}` on `{}`: {why}", method.name, column.id()));
                }
                let files = column.dataset.list().is_some();
                let cifar = matches!(
                    column.dataset.descriptor().source,
                    Source::Folder(Folder { format: Format::Cifar(_), .. })
                );
                let why = match (&settings.augment, files) {
                    (AugmentSpec::Cifar { .. }, _) if !cifar => {
                        Some("`cifar` undoes CIFAR's normalisation and works on CIFAR-format datasets only (cifar10-lt, cifar100-lt)")
                    }
                    (AugmentSpec::CropFlip { .. }, true) => {
                        Some("`crop-flip` works on in-memory images; image lists take `random-resized-crop` or `none`")
                    }
                    (AugmentSpec::RandomResizedCrop { .. }, false) => {
                        Some("`random-resized-crop` is for image-list datasets (ImageNet-LT, Places-LT, image-list)")
                    }
                    (AugmentSpec::None | AugmentSpec::Cifar { .. }, _)
                    | (AugmentSpec::CropFlip { .. }, false)
                    | (AugmentSpec::RandomResizedCrop { .. }, true) => None,
                };
                if let Some(why) = why {
                    return Err(format!(
                        "method `{}` on `{}`: `augment`: {why}",
                        method.name,
                        column.id()
                    ));
                }
            }
        }
    }
    Ok(())
}

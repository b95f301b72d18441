//! Wire types of a matrix file: pure syntax, checked by serde.
//!
//! Every struct is `kebab-case` with `deny_unknown_fields`, so a typo fails here with the file,
//! line and column (toml's caret message). Semantic checks and defaults live in [`crate::matrix`].
//! Field docs give the default applied there.

use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::data::DatasetSpec;
use crate::loss::LossSpec;
use crate::model::ModelSpec;
use crate::sampler::SamplerSpec;

/// A whole matrix file (`experiments/*.toml`).
#[derive(Clone, Debug, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct MatrixFile {
    /// Matrix name: the folder under `results/` and the stem of the report under `paper/`.
    pub name: String,
    /// One-line description shown in plans and report captions.
    #[serde(default)]
    pub description: Option<String>,
    /// Explicit seeds. Exactly one of `seeds` or `repeats` is given.
    #[serde(default)]
    pub seeds: Option<Vec<u64>>,
    /// Number of repeats, seeded `base-seed`, `base-seed + 1`, …
    #[serde(default)]
    pub repeats: Option<u64>,
    /// First seed when `repeats` is used (default 1).
    #[serde(default)]
    pub base_seed: Option<u64>,
    /// Datasets and their imbalance factors (the table's columns).
    pub datasets: Vec<DatasetSpec>,
    /// Defaults for every method; each method may override any of them.
    #[serde(default)]
    pub defaults: SettingsWire,
    /// The methods (the table's rows): `name` (required), optional `stage1`, and any setting.
    pub methods: Vec<SettingsWire>,
    /// The paper's claims that this matrix can test, as paired comparisons of two methods.
    #[serde(default)]
    pub claims: Vec<ClaimWire>,
    /// The paper table this matrix regenerates, and which of its methods is which paper row.
    #[serde(default)]
    pub paper: Option<PaperWire>,
    /// Figures drawn from the results (p(y), learned rates, per-class accuracy).
    #[serde(default)]
    pub figures: Vec<crate::vocab::FigureSpec>,
    /// The official protocol the matrix follows (`follows = "official-cifar"`): plans and reports
    /// list every setting where balms differs from it.
    #[serde(default)]
    pub follows: Option<crate::vocab::Protocol>,
    /// Every iteration count (and epoch count) multiplied by this factor: a scaled protocol, for
    /// smoke runs and stand-ins; the matrix's name gains `-scaled-<F>` (see `Plan::scale_by`).
    #[serde(default)]
    pub scale: Option<f64>,
    /// The interpreter `{python}` stands for in external methods' commands (default: the
    /// `BALMS_PYTHON` environment variable, else `.venv-ref/bin/python`); the environment wins.
    #[serde(default)]
    pub python: Option<PathBuf>,
    /// The detectron2 project of the matrix's detectron2 methods.
    #[serde(default)]
    pub detectron2: Option<Detectron2Wire>,
    /// Slurm resources per array task.
    #[serde(default)]
    pub slurm: Option<SlurmWire>,
}

/// A method that runs a command instead of balms's trainer (README, "External methods").
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct ExternalWire {
    /// The program and its arguments; `{python}` stands for the interpreter. balms appends
    /// `--run <run.json> --out <folder>`. For a detectron2 method: its training script, relative
    /// to the project (default `["{python}", "projects/BALMS/train_net.py"]`, the authors'
    /// entry point), which takes detectron2's arguments instead.
    #[serde(default)]
    pub command: Vec<String>,
    /// Seconds before the command is stopped and the run recorded as failed (default 86,400).
    pub timeout_seconds: Option<u64>,
    /// A detectron2 method (on `lvis-v0.5`): its config file and overrides.
    #[serde(default)]
    pub detectron2: Option<Detectron2MethodWire>,
}

/// A detectron2 method: `external = { detectron2 = { config = "...", overrides = [...] } }`.
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct Detectron2MethodWire {
    /// The config file, relative to the project (e.g.
    /// `projects/BALMS/configs/feature/sigmoid_resampling_mask_rcnn_R_50_FPN_1x.yaml`).
    pub config: String,
    /// `KEY VALUE` pairs appended to the command line after the matrix's `[detectron2]`
    /// overrides (detectron2's `opts`), e.g. `["SOLVER.MAX_ITER", "100"]`.
    #[serde(default)]
    pub overrides: Vec<String>,
    /// Another checkout for this method (a baseline's authors' code, e.g.
    /// `../eql.detectron2`), relative to the working folder; default: the matrix's project.
    #[serde(default)]
    pub project: Option<PathBuf>,
    /// The interpreter `{python}` stands for in this method's command (its project's own
    /// environment, e.g. another detectron2 version), relative to the working folder; default:
    /// `BALMS_PYTHON`, else the matrix's `python`.
    #[serde(default)]
    pub python: Option<PathBuf>,
}

/// `[detectron2]`: the project every detectron2 method of the matrix runs in.
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct Detectron2Wire {
    /// The project's checkout (the authors' `BalancedMetaSoftmax-InstanceSeg`), relative to the
    /// working folder; the `BALMS_INSTANCESEG` environment variable wins.
    pub project: PathBuf,
    /// GPUs per run (`--num-gpus`; default 8, the paper's and the authors' README's).
    pub gpus: Option<u32>,
    /// `KEY VALUE` pairs appended to every method's command line (before the method's own).
    #[serde(default)]
    pub overrides: Vec<String>,
}

/// `[slurm]`: what each array task of the matrix asks Slurm for (`balms slurm`'s flags win).
#[derive(Clone, Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct SlurmWire {
    /// GPUs per task (`--gpus-per-task`).
    pub gpus_per_task: Option<u32>,
    /// CPUs per task (`--cpus-per-task`).
    pub cpus_per_task: Option<u32>,
    /// Time limit per task, in Slurm's format (`--time`, e.g. `2-00:00:00`).
    pub time: Option<String>,
    /// Memory per task, in Slurm's format (`--mem`, e.g. `240G`).
    pub mem: Option<String>,
}

/// `[paper]`: a reference table (`paper/reference/<table>.csv`) and the paper's row name of each
/// method, e.g. `rows = { softmax = "Softmax", crt = "cRT" }`.
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct PaperWire {
    /// `table2`, `table5`, `table8`, ...
    pub table: String,
    /// Method name to the paper's row name.
    pub rows: std::collections::BTreeMap<String, String>,
}

/// A claim of the paper as a comparison of two methods of the matrix: `better` has the higher
/// top-1 than `than` (at every imbalance factor, or those listed), or, with
/// `grows-with-imbalance`, its gain over `than` is larger at the highest imbalance factor than at
/// the lowest. With `equivalence-margin`, the claim is instead that the two are equivalent: their
/// paired difference lies within the margin (two one-sided tests; see `report::claims`).
#[derive(Clone, Debug, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct ClaimWire {
    /// The claim, in words.
    pub claim: String,
    /// Where the paper makes it (table, rows, section).
    #[serde(default)]
    pub source: String,
    /// The method claimed better.
    pub better: String,
    /// The method it is compared with.
    pub than: String,
    /// Only these imbalance factors (default: all of the matrix's).
    #[serde(default)]
    pub imbalance: Option<Vec<f64>>,
    /// The claim is about the gain growing with the imbalance factor.
    #[serde(default)]
    pub grows_with_imbalance: bool,
    /// The claim is that `better` and `than` are equivalent within this margin, in the metric's
    /// units (points of top-1; rates for `meta-rates`; the commands' units for a named metric);
    /// positive.
    #[serde(default)]
    pub equivalence_margin: Option<f64>,
    /// What is compared (default `top1`; `meta-rates`; `{ named = "APr" }`, a metric external
    /// methods report).
    #[serde(default)]
    pub metric: ClaimMetric,
    /// Paired seeds a verdict needs (default 3, the reporter's `MIN_RUNS`; at least 2): with
    /// fewer, the claim is inconclusive whatever its interval.
    #[serde(default)]
    pub min_seeds: Option<usize>,
}

/// The per-run value a claim compares.
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ClaimMetric {
    /// Top-1 accuracy on the test set, in points.
    #[default]
    Top1,
    /// The Meta Sampler's or Reweighter's final learned rate of each class (one comparison per
    /// class); equivalence claims only.
    MetaRates,
    /// A named metric external methods report (`metric = { named = "APr" }`), in their units:
    /// a difference (over the seeds' Student-t interval, no test-set term) or an equivalence;
    /// not a trend.
    Named(String),
}

/// Whether `name` can name a metric an external method reports (and a claim compares): letters,
/// digits, `-`, `_` and `.`.
#[must_use]
pub fn is_metric_name(name: &str) -> bool {
    !name.is_empty() && name.chars().all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
}

/// A method's settings, or the defaults: every field optional so that methods override the
/// defaults field by field. `name` and `stage1` belong to methods only (checked in
/// [`crate::matrix`]; one type keeps the two tables' fields from drifting apart).
#[derive(Clone, Debug, Default, Deserialize, PartialEq)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct SettingsWire {
    /// Method name, unique in the matrix (`softmax`, `balanced-softmax-dt`, …); methods only.
    pub name: Option<String>,
    /// For decoupled training: the end-to-end method of this matrix whose backbone is reused;
    /// methods only.
    pub stage1: Option<String>,
    /// Network (default `{ mlp = { hidden = [256, 256] } }`).
    pub model: Option<ModelSpec>,
    /// Loss (default `softmax`): a name, or a table with parameters.
    #[serde(default, deserialize_with = "name_or_table")]
    pub loss: Option<LossSpec>,
    /// Sampler (default `instance`).
    #[serde(default, deserialize_with = "name_or_table")]
    pub sampler: Option<SamplerSpec>,
    /// Classifier on the features (default `linear`; `cosine` is LDAM-DRW's `NormedLinear`, for
    /// LDAM; `scaled-cosine` multiplies its logits by a fixed scale for other losses).
    #[serde(default, deserialize_with = "name_or_table")]
    pub classifier: Option<crate::model::ClassifierSpec>,
    /// Deferred re-weighting (Cao et al.): `drw = {}` for the defaults, or with `start`/`beta`.
    pub drw: Option<DrwWire>,
    /// Training epochs (default 10); one epoch is `ceil(N / batch-size)` iterations whatever the sampler.
    pub epochs: Option<u32>,
    /// Training length in iterations instead of epochs (the paper's CIFAR protocol: 13,000).
    pub iterations: Option<u32>,
    /// Batch size (default 128).
    pub batch_size: Option<u32>,
    /// SGD settings.
    #[serde(default)]
    pub optimizer: OptimizerWire,
    /// Learning-rate schedule.
    #[serde(default)]
    pub schedule: ScheduleWire,
    /// Training augmentation (default `none`).
    pub augment: Option<crate::data::augment::AugmentSpec>,
    /// Model-selection rule (default `last`).
    pub selection: Option<crate::vocab::Selection>,
    /// Forward-pass precision: `f32` (default) or `bf16-autocast`.
    pub precision: Option<crate::device::Precision>,
    /// Convolutions in the channels-last memory format (default false).
    pub channels_last: Option<bool>,
    /// Settings of the decoupled second stage.
    #[serde(default)]
    pub stage2: Stage2Wire,
    /// Run this command instead of balms's trainer, with the settings above (methods only).
    pub external: Option<ExternalWire>,
}

/// SGD with momentum (the paper's optimiser).
#[derive(Clone, Debug, Default, Deserialize, PartialEq)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct OptimizerWire {
    /// Peak learning rate (default 0.1).
    pub lr: Option<f64>,
    /// Momentum (default 0.9).
    pub momentum: Option<f64>,
    /// Weight decay (default 5e-4).
    pub weight_decay: Option<f64>,
    /// Nesterov momentum (default false: the official code's plain momentum; the paper says Nesterov).
    pub nesterov: Option<bool>,
}

/// Cosine schedule to zero with a linear warm-up, stepped every iteration.
#[derive(Clone, Debug, Default, Deserialize, PartialEq)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct ScheduleWire {
    /// Warm-up length in epochs, fractions allowed (default 0).
    pub warmup_epochs: Option<f64>,
    /// Warm-up length in iterations instead (the paper's CIFAR protocol: 800).
    pub warmup_iterations: Option<u32>,
    /// Learning rate at the start of warm-up as a fraction of `lr` (default 0.5: the paper's 0.05 to 0.1).
    pub warmup_start_factor: Option<f64>,
    /// Per-iteration stepping (default) or the official code's epoch arithmetic.
    pub stepping: Option<crate::vocab::Stepping>,
}

/// Settings of stage 2 of decoupled training (a fresh linear classifier on frozen features).
#[derive(Clone, Debug, Default, Deserialize, PartialEq)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct Stage2Wire {
    /// Iterations (default 2000, the paper's CIFAR setting).
    pub iterations: Option<u32>,
    /// Batch size (default 512).
    pub batch_size: Option<u32>,
    /// SGD settings (default lr 0.1, momentum 0.9, weight decay 5e-4).
    #[serde(default)]
    pub optimizer: OptimizerWire,
    /// The classifier stage 2 trains (default `retrain`: cRT-style fresh classifier).
    #[serde(default, deserialize_with = "name_or_table")]
    pub classifier: Option<crate::vocab::Stage2Classifier>,
    /// Model-selection rule of stage 2 (default `last`).
    pub selection: Option<crate::vocab::Selection>,
    /// Training features computed once (`cached`, default) or by the backbone for every batch
    /// (`per-batch`, as the official code; for measuring the cache).
    pub features: Option<crate::vocab::Features>,
    /// Per-iteration stepping (default) or the official code's epoch arithmetic.
    pub stepping: Option<crate::vocab::Stepping>,
    /// With the Meta Sampler and `augmented-train-bn`: a second training-mode pass of each
    /// training batch after the meta step, as the official code (default false).
    pub double_forward: Option<bool>,
}

/// Deferred re-weighting: class-balanced weights switched on late in training.
#[derive(Clone, Debug, Default, Deserialize, PartialEq)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct DrwWire {
    /// Fraction of the epochs after which the weights apply (default 0.8: epoch 160 of 200).
    pub start: Option<f64>,
    /// beta of the class-balanced weights (default 0.9999).
    pub beta: Option<f64>,
}

/// Deserialises a registry enum from a bare name (`"softmax"`) or a table
/// (`{ focal = { gamma = 2.0 } }`); a bare name takes every parameter's default.
fn name_or_table<'de, D, T>(deserializer: D) -> Result<Option<T>, D::Error>
where
    D: serde::Deserializer<'de>,
    T: serde::de::DeserializeOwned,
{
    use serde::de::Error;
    let value = toml::Value::deserialize(deserializer)?;
    parse_name_or_table(value).map(Some).map_err(D::Error::custom)
}

/// A registry value from a bare name or a table, as [`name_or_table`]; the error is toml's message.
fn parse_name_or_table<T: serde::de::DeserializeOwned>(value: toml::Value) -> Result<T, String> {
    let parsed: Result<T, toml::de::Error> = value.clone().try_into();
    match (parsed, value) {
        (Ok(spec), _) => Ok(spec),
        // A bare name of a variant with parameters: the variant with its defaults.
        (Err(first), toml::Value::String(name)) => {
            let mut table = toml::Table::new();
            table.insert(name, toml::Value::Table(toml::Table::new()));
            toml::Value::Table(table).try_into().map_err(|_| first.message().to_string())
        }
        (Err(e), _) => Err(e.message().to_string()),
    }
}

/// The value a bare registry name stands for in a matrix: the variant with every parameter's
/// default (`"focal"` is `{ focal = { gamma = 1.0 } }`).
///
/// # Errors
/// toml's message when the name is not registered or a parameter has no default.
pub fn from_bare_name<T: serde::de::DeserializeOwned>(name: &str) -> Result<T, String> {
    parse_name_or_table(toml::Value::String(name.to_string()))
}

/// A syntax error or unreadable file, naming the file.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("cannot read matrix `{path}`")]
    Read {
        /// The matrix file that could not be read.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// The file is not a valid matrix (toml's message carries line, column and caret).
    #[error("invalid matrix `{path}`")]
    Parse {
        /// The matrix file that failed to parse.
        path: PathBuf,
        /// toml's error, with line, column and caret.
        #[source]
        source: Box<toml::de::Error>,
    },
}

impl MatrixFile {
    /// Reads and parses a matrix file.
    ///
    /// # Errors
    /// [`ConfigError`] naming the file, with line and column for syntax errors.
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path)
            .map_err(|source| ConfigError::Read { path: path.to_path_buf(), source })?;
        Self::parse(&text, path)
    }

    /// Parses matrix text; `path` is used in messages only.
    ///
    /// # Errors
    /// [`ConfigError::Parse`].
    pub fn parse(text: &str, path: &Path) -> Result<Self, ConfigError> {
        toml::from_str(text)
            .map_err(|e| ConfigError::Parse { path: path.to_path_buf(), source: Box::new(e) })
    }
}

//! The results store: one folder per run, JSON records written atomically.
//!
//! ```text
//! results/<matrix>/
//!   plan.txt                       the resolved plan as run (`balms plan` output)
//!   <cell>/seed-<k>/
//!     config.json                  resolved cell, seeds, config hash, provenance (written first)
//!     log.jsonl                    {"type":"epoch",...} per epoch, {"type":"end",...}
//!     metrics.json                 final metrics, written last: its presence means finished
//!     failed.json                  instead of metrics.json when the run failed or diverged
//!     model.ot                     checkpoint (git-ignored), kept for stage-2 reuse
//! ```
//!
//! Every JSON record has `"schema": 2` (see [`SCHEMA`]); a `metrics.json` of another version
//! counts as stale and is rerun. A run counts as finished only when `metrics.json` parses
//! and carries the config hash of the current plan; anything else is rerun. `metrics.json` holds
//! nothing that varies between identical runs (no times, no revision), so it is byte-identical
//! for the same seed and thread count on CPU; provenance lives in `config.json`.

use std::io::Write;
use std::path::{Path, PathBuf};

use serde::{de::DeserializeOwned, Deserialize, Serialize};

use crate::matrix::{Cell, Method, Plan, RunSeeds};
use crate::train::evaluate::Evaluation;

pub mod lease;

/// Version of every record's layout.
/// (2: validation split, selection iteration and post-hoc tau in the records.)
pub const SCHEMA: u32 = 2;

/// I/O and format errors, each naming the file.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// Reading or writing failed.
    #[error("cannot access `{path}`")]
    Io {
        /// The file or folder that could not be read, written or created.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// A record parses but is neither a classification run's nor a detectron2 run's.
    #[error("malformed record `{path}`: {message}")]
    Invalid {
        /// The record.
        path: PathBuf,
        /// What is missing.
        message: String,
    },
    /// A record is not valid JSON of the expected shape.
    #[error("malformed record `{path}`")]
    Json {
        /// The record that does not parse (or could not be serialised).
        path: PathBuf,
        /// `serde_json`'s error (with line and column).
        #[source]
        source: serde_json::Error,
    },
}

/// Where and how a run was executed (kept out of `metrics.json`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct Provenance {
    /// The git revision the binary was built from (`git rev-parse HEAD` at build time), or
    /// `unknown`.
    pub git_revision: String,
    /// Whether the binary's sources (`src/`, `build.rs`, `Cargo.toml`, `Cargo.lock`) differed
    /// from that revision when it was built.
    pub git_dirty: bool,
    /// Version of the balms crate that ran (`CARGO_PKG_VERSION`, e.g. `0.1.0`).
    pub balms_version: String,
    /// libtorch version it was built against.
    pub libtorch: String,
    /// Device, e.g. `cpu` or `cuda:0`.
    pub device: String,
    /// Intra-op CPU threads of the run (`--threads`); CPU records are byte-identical only at equal
    /// counts.
    pub threads: i32,
    /// Where the data was read from.
    pub data_source: String,
}

/// `config.json`: what a run is, written before training.
#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "kebab-case")]
pub struct RunConfig {
    /// Record layout version: [`SCHEMA`] when written.
    pub schema: u32,
    /// Name of the matrix the run belongs to (its folder in the results folder).
    pub matrix: String,
    /// Cell id, `<dataset>/if<IF>/<method>` ([`Cell::id`], e.g. `fashion-mnist-lt/if100/softmax`).
    pub run: String,
    /// The resolved cell.
    pub cell: Cell,
    /// For decoupled cells, the stage-1 method.
    pub stage1: Option<Method>,
    /// Seeds of every stream.
    pub seeds: RunSeeds,
    /// Hash of cell, stage-1 method and seeds.
    pub config_sha256: String,
    /// Per-class training counts (absent for detectron2 runs, whose data balms does not draw).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub class_counts: Vec<usize>,
    /// SHA-256 of the chosen training indices (the data hash; for detectron2 runs, over the
    /// SHA-256 of the training and validation annotation files).
    pub train_indices_sha256: String,
    /// How the validation split was formed (absent for detectron2 runs).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub validation: Option<crate::data::ValidationInfo>,
    /// Pretrained weights the model (or its stage 1) started from.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pretrained: Option<crate::model::pretrained::Fingerprint>,
    /// The scaled protocol's factor (`Plan::scale_by`); absent for the matrix's own protocol.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub scale: Option<f64>,
    /// Where it ran.
    pub provenance: Provenance,
}

/// `metrics.json`: the final result of a finished run.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct Metrics {
    /// Record layout version, [`SCHEMA`] when written; a `metrics.json` of another version is
    /// rerun.
    pub schema: u32,
    /// Cell id ([`Cell::id`], e.g. `fashion-mnist-lt/if100/softmax`).
    pub run: String,
    /// Matrix seed.
    pub seed: u64,
    /// Hash of the configuration that produced it.
    pub config_sha256: String,
    /// Label of the rule that chose the reported model ([`Method::selection_label`]: the selection
    /// rule's label, or `post hoc (no training)`).
    pub selection: String,
    /// Training iterations run.
    pub iterations: u64,
    /// Iterations after which the reported model was taken (the last, unless a selection rule
    /// chose an earlier checkpoint).
    pub selected_iteration: u64,
    /// Mean training loss over the last epoch (or the last 100 stage-2 iterations); absent for
    /// post-hoc methods.
    pub final_train_loss: Option<f64>,
    /// Top-1 of the reported model on the validation split (absent for detectron2 runs, which
    /// have no classification split).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub validation_top1: Option<f64>,
    /// tau used by a post-hoc adjustment (chosen on the validation split unless fixed).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tau: Option<f64>,
    /// Meta Sampler/Reweighter: the learned rates `sigmoid(phi)` after each tenth of stage 2
    /// (the last row is the final rates; the paper's Figure 3).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub meta_rates: Option<Vec<Vec<f64>>>,
    /// Population variance over classes of the final rates (the paper reports 0.13 with Softmax
    /// and 0.03 with Balanced Softmax on CIFAR-100-LT IF 200).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub meta_rates_variance: Option<f64>,
    /// Per-class training counts (absent for detectron2 runs).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub class_counts: Vec<usize>,
    /// SHA-256 of the chosen training indices (detectron2 runs: over the SHA-256 of the
    /// training and validation annotation files).
    pub train_indices_sha256: String,
    /// An external method's command, the SHA-256 of the files it names and the versions it
    /// reported (absent for balms's own methods).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub external: Option<ExternalRecord>,
    /// Named scalar metrics an external method reported beside its predictions (e.g. Table 4's
    /// `APm`, `APr`, in the units the command gives), aggregated over seeds by the reporter and
    /// usable in claims (`metric = { named = "APr" }`); absent for balms's own methods.
    #[serde(default, skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub named_metrics: std::collections::BTreeMap<String, f64>,
    /// Test metrics of a classification run (absent for detectron2 runs, whose metrics are all
    /// in `named_metrics`).
    #[serde(flatten)]
    pub evaluation: Option<Evaluation>,
}

impl Metrics {
    /// What makes the record neither a classification run's (class counts, test metrics and
    /// validation top-1) nor a detectron2 run's (no class counts, named metrics alone). Test
    /// metrics are flattened into the record, so one malformed field there reads as "no test
    /// metrics"; this tells that apart from a detectron2 run.
    #[must_use]
    pub fn shape_problem(&self) -> Option<&'static str> {
        match (self.class_counts.is_empty(), &self.evaluation) {
            (false, None) => Some(
                "a classification run's test metrics (`top1`, `per-class-accuracy`, `marginal-likelihood`, `test-size`) are missing or malformed",
            ),
            (false, Some(_)) if self.validation_top1.is_none() => {
                Some("a classification run's `validation-top1` is missing")
            }
            (true, Some(_)) => Some("a classification run's `class-counts` are missing"),
            (true, None) if self.named_metrics.is_empty() => {
                Some("neither test metrics nor named metrics: no result")
            }
            _ => None,
        }
    }

    /// Whether this stage-2 run started from the model its stage-1 run's record names: false
    /// only when both records carry the hashes (detectron2 runs) and they differ, e.g. after
    /// stage 1 was trained again (detectron2 on GPUs does not repeat bit for bit).
    #[must_use]
    pub fn started_from(&self, stage1: &Metrics) -> bool {
        let start = self.external.as_ref().and_then(|e| e.start_sha256.as_ref());
        let model = stage1.external.as_ref().and_then(|e| e.model_sha256.as_ref());
        match (start, model) {
            (Some(start), Some(model)) => start == model,
            _ => true,
        }
    }

    /// Top-1 on the test set, for a classification run.
    #[must_use]
    pub fn top1(&self) -> Option<f64> {
        self.evaluation.as_ref().map(|e| e.top1)
    }

    /// What a progress line says of a finished run: `top-1 0.8123`, or its named metrics
    /// (`APm 0.2700 APb 0.2760`) for a run without top-1.
    #[must_use]
    pub fn headline(&self) -> String {
        match self.top1() {
            Some(top1) => format!("top-1 {top1:.4}"),
            None => self
                .named_metrics
                .iter()
                .map(|(name, v)| format!("{name} {v:.4}"))
                .collect::<Vec<_>>()
                .join(" "),
        }
    }

    /// The test set's per-class accuracies (empty for a detectron2 run).
    #[must_use]
    pub fn per_class_accuracy(&self) -> &[f64] {
        self.evaluation.as_ref().map_or(&[], |e| e.per_class_accuracy.as_slice())
    }
}

/// What ran an external method (in its `metrics.json`: nothing here varies between identical
/// runs; the resolved interpreter is in `log.jsonl`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct ExternalRecord {
    /// The command as the matrix gives it (`{python}` unresolved).
    pub command: Vec<String>,
    /// SHA-256 of each argument that names a file (the script) and of each file the command
    /// reported in `sources` (modules it imports), keyed by path (relative to the working directory
    /// when inside it).
    pub files_sha256: std::collections::BTreeMap<String, String>,
    /// What the command reported about itself (`python`, `torch`, ...: any JSON values).
    pub environment: std::collections::BTreeMap<String, serde_json::Value>,
    /// A detectron2 run: SHA-256 of the `model_final.pth` it wrote (what its stage-2 runs start
    /// from; absent for other commands).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model_sha256: Option<String>,
    /// A detectron2 stage 2: SHA-256 of the stage-1 `model_final.pth` it started from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start_sha256: Option<String>,
}

/// `failed.json`: a run that failed or diverged. Never counted as a result.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct Failure {
    /// Record layout version: [`SCHEMA`] when written.
    pub schema: u32,
    /// Cell id ([`Cell::id`]) of the failed run.
    pub run: String,
    /// Matrix seed.
    pub seed: u64,
    /// SHA-256 (hex) of cell, stage-1 method and seeds ([`crate::matrix::Plan::config_hash`]); the
    /// failure counts only for this configuration.
    pub config_sha256: String,
    /// The error chain.
    pub error: String,
}

/// Just the layout version of a record.
#[derive(Deserialize)]
struct SchemaOnly {
    schema: u32,
}

/// What the store holds for a run.
#[derive(Debug)]
pub enum RunStatus {
    /// Finished with the current configuration.
    Finished(Box<Metrics>),
    /// Failed with the current configuration (will be retried).
    Failed(Failure),
    /// A result from a different configuration (will be rerun).
    Stale,
    /// Nothing finished.
    Absent,
}

/// `checkpoint.json`: the SHA-256 of the run's `model.ot` as written, so that a decoupled run
/// can tell a whole checkpoint from a truncated or replaced one. It lies beside `model.ot` and,
/// like it, stays out of git (a fresh clone retrains the stage-1 models it needs).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct CheckpointRecord {
    /// The checkpoint's file name in the run folder (`model.ot`).
    pub file: String,
    /// Lower-case hex SHA-256 of its bytes.
    pub sha256: String,
}

/// What a run folder's checkpoint is.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CheckpointState {
    /// `model.ot` is the file `checkpoint.json` records.
    Intact,
    /// No `model.ot`.
    Missing,
    /// `model.ot` is there but not what was recorded (truncated, replaced), or has no record.
    Mismatch(String),
}

/// The results store rooted at a folder (normally `results/`).
#[derive(Clone, Debug)]
pub struct Store {
    root: PathBuf,
}

impl Store {
    /// A store rooted at `root`.
    #[must_use]
    pub fn new(root: impl Into<PathBuf>) -> Store {
        Store { root: root.into() }
    }

    /// The root folder.
    #[must_use]
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Folder of a matrix.
    #[must_use]
    pub fn matrix_dir(&self, matrix: &str) -> PathBuf {
        self.root.join(matrix)
    }

    /// Folder of one run.
    #[must_use]
    pub fn run_dir(&self, matrix: &str, cell: &Cell, seed: u64) -> PathBuf {
        self.matrix_dir(matrix).join(cell.dir_name()).join(format!("seed-{seed}"))
    }

    /// Whether the finished stage-2 run `stored` of `cell` at `seed` was fine-tuned from another
    /// stage-1 model than the one its finished stage-1 run's record names (detectron2 runs, which
    /// record both; [`Metrics::started_from`]): then it does not count and is rerun. No record is
    /// read for a run that recorded no start.
    ///
    /// # Errors
    /// [`StoreError`] when the stage-1 record exists but cannot be read.
    pub fn started_elsewhere(
        &self,
        plan: &Plan,
        cell: &Cell,
        seed: crate::seed::Seed,
        stored: &Metrics,
    ) -> Result<bool, StoreError> {
        let (Some(first), Some(_)) = (
            plan.stage1_cell(cell),
            stored.external.as_ref().and_then(|e| e.start_sha256.as_ref()),
        ) else {
            return Ok(false);
        };
        let dir = self.run_dir(&plan.name, &first, seed.0);
        Ok(match Store::status(&dir, &plan.config_hash(&first, seed))? {
            RunStatus::Finished(stage1) => !stored.started_from(&stage1),
            RunStatus::Failed(_) | RunStatus::Stale | RunStatus::Absent => false,
        })
    }

    /// What the store holds for the run in `dir`, given the expected config hash.
    ///
    /// # Errors
    /// [`StoreError`] when a record exists but cannot be read.
    pub fn status(dir: &Path, config_sha256: &str) -> Result<RunStatus, StoreError> {
        let metrics = dir.join("metrics.json");
        if metrics.is_file() {
            // A record of another layout version is from another configuration: rerun it.
            let version: SchemaOnly = read_json(&metrics)?;
            if version.schema != SCHEMA {
                return Ok(RunStatus::Stale);
            }
            let m: Metrics = read_json(&metrics)?;
            if let Some(problem) = m.shape_problem() {
                return Err(StoreError::Invalid { path: metrics, message: problem.to_string() });
            }
            return Ok(if m.config_sha256 == config_sha256 {
                RunStatus::Finished(Box::new(m))
            } else {
                RunStatus::Stale
            });
        }
        let failed = dir.join("failed.json");
        if failed.is_file() {
            let f: Failure = read_json(&failed)?;
            return Ok(if f.config_sha256 == config_sha256 {
                RunStatus::Failed(f)
            } else {
                RunStatus::Stale
            });
        }
        Ok(RunStatus::Absent)
    }

    /// Clears earlier attempts in `dir` and writes `config.json`.
    ///
    /// # Errors
    /// [`StoreError::Io`] naming the file.
    pub fn begin(dir: &Path, config: &RunConfig) -> Result<(), StoreError> {
        std::fs::create_dir_all(dir)
            .map_err(|source| StoreError::Io { path: dir.to_path_buf(), source })?;
        for name in ["metrics.json", "failed.json", "log.jsonl", "checkpoint.json"] {
            let path = dir.join(name);
            if path.exists() {
                std::fs::remove_file(&path).map_err(|source| StoreError::Io { path, source })?;
            }
        }
        write_json(&dir.join("config.json"), config)
    }

    /// Records in `checkpoint.json` the SHA-256 of the bytes just written to `dir`'s `model.ot`.
    ///
    /// # Errors
    /// [`StoreError::Io`] naming the file that could not be written.
    pub fn record_checkpoint(dir: &Path, sha256: &str) -> Result<(), StoreError> {
        let record = CheckpointRecord { file: "model.ot".to_string(), sha256: sha256.to_string() };
        write_json(&dir.join("checkpoint.json"), &record)
    }

    /// Whether `dir`'s `model.ot` is there and is the file its `checkpoint.json` records.
    #[must_use]
    pub fn checkpoint_state(dir: &Path) -> CheckpointState {
        let checkpoint = dir.join("model.ot");
        if !checkpoint.is_file() {
            return CheckpointState::Missing;
        }
        let recorded = read_json::<CheckpointRecord>(&dir.join("checkpoint.json"));
        match (recorded, crate::files::sha256_file(&checkpoint)) {
            (Ok(record), Ok(found)) if record.sha256 == found => CheckpointState::Intact,
            (Ok(record), Ok(found)) => CheckpointState::Mismatch(format!(
                "its SHA-256 is {found}, `checkpoint.json` records {}",
                record.sha256
            )),
            (Err(_), _) => CheckpointState::Mismatch("it has no `checkpoint.json`".to_string()),
            (_, Err(e)) => CheckpointState::Mismatch(format!("it cannot be read: {e}")),
        }
    }

    /// Appends one JSON line to `log.jsonl`.
    ///
    /// # Errors
    /// [`StoreError::Io`] naming the file.
    pub fn log(dir: &Path, line: &serde_json::Value) -> Result<(), StoreError> {
        let path = dir.join("log.jsonl");
        let io = |source| StoreError::Io { path: path.clone(), source };
        crate::files::before_write(&path).map_err(io)?;
        let mut file =
            std::fs::OpenOptions::new().create(true).append(true).open(&path).map_err(io)?;
        writeln!(file, "{line}").map_err(io)
    }
}

/// Writes `value` as pretty JSON (with a final newline) atomically: a temporary file in the same
/// folder, flushed and synced, then renamed over `path`.
///
/// # Errors
/// [`StoreError::Io`] naming the file.
pub fn write_json<T: Serialize + ?Sized>(path: &Path, value: &T) -> Result<(), StoreError> {
    let mut text = serde_json::to_string_pretty(value)
        .map_err(|source| StoreError::Json { path: path.to_path_buf(), source })?;
    text.push('\n');
    write_atomic(path, text.as_bytes())
}

/// Writes bytes atomically (temporary file, sync, rename).
///
/// # Errors
/// [`StoreError::Io`] naming the file.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), StoreError> {
    crate::files::write_atomic(path, bytes)
        .map_err(|source| StoreError::Io { path: path.to_path_buf(), source })
}

/// Reads a JSON record.
///
/// # Errors
/// [`StoreError`] naming the file.
pub fn read_json<T: DeserializeOwned>(path: &Path) -> Result<T, StoreError> {
    let text = std::fs::read_to_string(path)
        .map_err(|source| StoreError::Io { path: path.to_path_buf(), source })?;
    serde_json::from_str(&text)
        .map_err(|source| StoreError::Json { path: path.to_path_buf(), source })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn atomic_write_leaves_no_temporary_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a/metrics.json");
        write_json(&path, &serde_json::json!({"schema": 1})).unwrap();
        let names: Vec<_> = std::fs::read_dir(path.parent().unwrap())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, ["metrics.json"]);
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "{\n  \"schema\": 1\n}\n");
    }

    #[test]
    fn status_distinguishes_finished_stale_failed_and_partial() {
        let dir = tempfile::tempdir().unwrap();
        assert!(matches!(Store::status(dir.path(), "h").unwrap(), RunStatus::Absent));
        std::fs::write(dir.path().join("config.json"), "{}").unwrap();
        std::fs::write(dir.path().join("metrics.json.123.tmp"), "{").unwrap();
        assert!(
            matches!(Store::status(dir.path(), "h").unwrap(), RunStatus::Absent),
            "a partial write is not a result"
        );
        let failure = Failure {
            schema: SCHEMA,
            run: "r".into(),
            seed: 1,
            config_sha256: "h".into(),
            error: "NaN".into(),
        };
        write_json(&dir.path().join("failed.json"), &failure).unwrap();
        assert!(matches!(Store::status(dir.path(), "h").unwrap(), RunStatus::Failed(_)));
        assert!(matches!(Store::status(dir.path(), "other").unwrap(), RunStatus::Stale));
        std::fs::write(dir.path().join("metrics.json"), "{\"schema\": 1, \"run\": \"old\"}")
            .unwrap();
        assert!(
            matches!(Store::status(dir.path(), "h").unwrap(), RunStatus::Stale),
            "a record of an older layout is rerun"
        );
        std::fs::write(dir.path().join("metrics.json"), "{\"schema\":").unwrap();
        let err = Store::status(dir.path(), "h").unwrap_err().to_string();
        assert!(err.contains("metrics.json"), "{err}");
        std::fs::write(dir.path().join("metrics.json"), "{\"schema\": 2}").unwrap();
        let err = Store::status(dir.path(), "h").unwrap_err().to_string();
        assert!(
            err.contains("metrics.json"),
            "a current-layout record missing fields is malformed: {err}"
        );
    }

    #[test]
    fn a_record_is_a_classification_run_or_a_detectron2_run_and_nothing_in_between() {
        let dir = tempfile::tempdir().unwrap();
        let classification = serde_json::json!({
            "schema": SCHEMA, "run": "r", "seed": 1, "config-sha256": "h", "selection": "last",
            "iterations": 10, "selected-iteration": 10, "final-train-loss": 0.5,
            "validation-top1": 0.5, "class-counts": [3, 1], "train-indices-sha256": "d",
            "top1": 0.75, "many": null, "medium": null, "few": 0.75,
            "per-class-accuracy": [1.0, 0.5], "marginal-likelihood": [0.6, 0.4], "test-size": 4,
        });
        let status = |record: &serde_json::Value| {
            std::fs::write(dir.path().join("metrics.json"), record.to_string()).unwrap();
            Store::status(dir.path(), "h")
        };
        let Ok(RunStatus::Finished(m)) = status(&classification) else { panic!("a valid record") };
        assert_eq!(m.top1(), Some(0.75));
        // One malformed test metric (flattened, so it would read as "no test metrics") or a
        // missing validation top-1 is an error naming the file, not a run without top-1.
        for (field, value) in [
            ("test-size", None),
            ("top1", Some(serde_json::Value::Null)),
            ("validation-top1", None),
        ] {
            let mut broken = classification.clone();
            match value {
                None => broken.as_object_mut().unwrap().remove(field),
                Some(v) => broken.as_object_mut().unwrap().insert(field.into(), v),
            };
            let err = status(&broken).unwrap_err().to_string();
            assert!(
                err.contains("metrics.json") && err.contains("classification"),
                "{field}: {err}"
            );
        }
        // A detectron2 run: no class counts, no test metrics, named metrics alone.
        let mut detection = serde_json::json!({
            "schema": SCHEMA, "run": "r", "seed": 1, "config-sha256": "h",
            "selection": "last iteration (detectron2)", "iterations": 10,
            "selected-iteration": 10, "final-train-loss": 0.5, "train-indices-sha256": "d",
            "named-metrics": {"APm": 27.0},
        });
        let Ok(RunStatus::Finished(m)) = status(&detection) else { panic!("a detectron2 record") };
        assert_eq!((m.top1(), m.headline()), (None, "APm 27.0000".to_string()));
        detection.as_object_mut().unwrap().remove("named-metrics");
        assert!(status(&detection).unwrap_err().to_string().contains("no result"));
    }
}

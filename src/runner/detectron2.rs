//! detectron2 methods: a run of a detectron2 project (the authors' LVIS code,
//! `BalancedMetaSoftmax-InstanceSeg`) under balms's seeds, store and reporter, scored by balms's
//! evaluator.
//!
//! ```text
//! <run>/external/
//!   datasets             a link to the folder holding LVIS v0.5 and COCO 2017
//!   out/                 OUTPUT_DIR: detectron2's log.txt, metrics.json, model_final.pth,
//!                        inference/lvis_instances_results.json
//!   stdout.log, stderr.log
//!   trained.json         the command finished (configuration, stage-1 model, project files)
//!   lvis_eval.py         balms's evaluator (embedded in the binary), as it ran
//!   lvis_eval.json       everything the LVIS API computed, and the evaluator's versions
//!   evaluation/          the evaluator's stdout.log and stderr.log
//! ```
//!
//! The command runs in `<run>/external/` as `<command> --config-file <project>/<config>
//! --num-gpus <gpus> SEED <seed> OUTPUT_DIR <out> [MODEL.WEIGHTS <stage 1's out/model_final.pth>]
//! <overrides>`, the project's files by absolute path, with `DETECTRON2_DATASETS` set to the data
//! folder too (detectron2 0.1.1 reads `./datasets` only). balms then scores
//! `out/inference/lvis_instances_results.json` with the official LVIS API on `lvis_v0.5_val.json`
//! (`external/lvis_eval.py`: segm and bbox, 300 detections per image) and records Table 4's
//! columns, in points (AP x 100), as the run's named metrics.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use anyhow::{bail, Context};
use serde::Deserialize;

use crate::data::LVIS_V05_FILES;
use crate::matrix::{Detectron2, External, Plan, Scheme};
use crate::store::{self, ExternalRecord, Metrics, RunConfig, Store};

use super::external::{absolute, run_logged};
use super::{Job, RunOptions};

/// balms's LVIS evaluator, written beside each run and run there, so that `balms run` works from
/// any folder and the record hashes the script that scored it.
const LVIS_EVAL: &str = include_str!("../../external/lvis_eval.py");

/// The environment variable that names the project's checkout, over the matrix's `[detectron2]
/// project`.
pub const PROJECT_VARIABLE: &str = "BALMS_INSTANCESEG";

/// Where a detectron2 run's stage-2 runs find its weights, under `<run>/external/`.
const WEIGHTS: &str = "out/model_final.pth";

/// A method's checkout: its own `project`, else `BALMS_INSTANCESEG`, else the matrix's
/// `[detectron2] project`.
///
/// # Errors
/// None is set, or the folder does not exist.
pub fn project(plan: &Plan, d: &Detectron2) -> anyhow::Result<PathBuf> {
    let path = d
        .project
        .clone()
        .or_else(|| std::env::var_os(PROJECT_VARIABLE).map(PathBuf::from))
        .or_else(|| plan.detectron2_project.clone())
        .with_context(|| format!("`{}` has no `[detectron2] project`", plan.path.display()))?;
    if !path.is_dir() {
        if d.project.is_some() {
            bail!(
                "its own detectron2 project `{}` is not a folder: clone that method's code there (the matrix's comments say which)",
                path.display()
            );
        }
        bail!(
            "the detectron2 project `{}` is not a folder: clone the authors' code (`git clone https://github.com/Majiker/BalancedMetaSoftmax-InstanceSeg`) there, or point `{PROJECT_VARIABLE}` at a checkout",
            path.display()
        );
    }
    Ok(path)
}

/// What a detection matrix needs that is missing, one line each (empty when all is there): each
/// method's project, own interpreter, script and config with its `_BASE_`s; the LVIS API for
/// balms's evaluator; and LVIS v0.5 and COCO 2017 under `root`.
#[must_use]
pub fn missing(plan: &Plan, root: Option<&Path>) -> Vec<String> {
    let mut missing = Vec::new();
    for method in &plan.methods {
        let Some((external, d)) = as_detectron2(method.external.as_ref()) else { continue };
        match project(plan, d) {
            Err(err) => {
                let err = match d.project {
                    Some(_) => format!("method `{}`: {err:#}", method.name),
                    None => format!("{err:#}"),
                };
                if !missing.contains(&err) {
                    missing.push(err);
                }
            }
            Ok(project) => {
                if let Some(python) = d.python.as_ref().filter(|p| !p.is_file()) {
                    missing.push(format!(
                        "`{}` (method `{}`'s interpreter, with its project's detectron2)",
                        python.display(),
                        method.name
                    ));
                }
                let (_, absent) = project_files(&project, external, d);
                missing.extend(absent.iter().map(|file| {
                    format!(
                        "`{file}` (method `{}`) in the project `{}`",
                        method.name,
                        project.display()
                    )
                }));
            }
        }
    }
    // balms's evaluator runs after training: an interpreter without the LVIS API would fail a
    // run only after its days of training.
    let python = super::external::python(plan.python.as_deref());
    let lvis = Command::new(&python).args(["-c", "import lvis, pycocotools"]).output();
    if !lvis.is_ok_and(|o| o.status.success()) {
        missing.push(format!(
            "the LVIS API (`lvis`, `pycocotools`) importable by `{}` (BALMS_PYTHON; `just bench-setup` installs it into .venv-ref), for balms's evaluator",
            python.display()
        ));
    }
    match root {
        None => missing.push(format!(
            "LVIS v0.5 and COCO 2017 under `--data-dir`, `BALMS_DATA` or `datasets/` ({})",
            crate::data::DatasetKind::LvisV05.hint()
        )),
        Some(root) => missing.extend(
            LVIS_V05_FILES
                .iter()
                .map(|f| root.join(f))
                .filter(|p| !p.exists())
                .map(|p| format!("`{}`", p.display())),
        ),
    }
    missing
}

/// A method's command and detectron2 settings, when it is a detectron2 method.
fn as_detectron2(external: Option<&External>) -> Option<(&External, &Detectron2)> {
    external.and_then(|e| e.detectron2.as_ref().map(|d| (e, d)))
}

/// `lvis_eval.json` as the evaluator writes it (the parts balms records).
#[derive(Deserialize)]
struct Scored {
    /// Table 4's columns as fractions: `APm`, `APf`, `APc`, `APr`, `APb`.
    table4: BTreeMap<String, f64>,
    /// Versions of lvis, pycocotools and numpy.
    evaluator: BTreeMap<String, serde_json::Value>,
}

/// Runs a detectron2 method for `job` and records it.
///
/// # Errors
/// A missing project, config or dataset file; a stage 1 without its weights; a command that
/// fails, times out, is interrupted or writes no detections; an evaluation that fails; files that
/// cannot be written.
pub(super) fn execute(
    plan: &Plan,
    job: &Job,
    options: &RunOptions,
    lease: &store::lease::Lease,
    stop_requested: &dyn Fn() -> bool,
) -> anyhow::Result<Metrics> {
    let (external, d) = as_detectron2(job.cell.method.external.as_ref())
        .expect("detection cells are detectron2 methods (checked by the plan)");
    let project = project(plan, d)?;
    let root = data_root(job, options)?;
    let annotations = root.join(LVIS_V05_FILES[1]);
    let start = stage1_start(plan, job, options)?;
    let (weights, start_sha256) = match start {
        Some((weights, hash)) => (Some(weights), Some(hash)),
        None => (None, None),
    };
    let provenance = store::Provenance {
        data_source: root.display().to_string(),
        // detectron2 trains on its own devices; balms's device and threads play no part.
        device: format!("detectron2 --num-gpus {}", d.gpus),
        ..super::provenance(options)
    };
    let config = RunConfig {
        train_indices_sha256: annotations_hash(&root)?,
        ..super::run_config(plan, job, provenance)
    };
    Store::begin(&job.dir, &config)?;
    let dir = super::external::folder(&job.dir);
    let out = absolute(&dir.join("out"))?;
    let started = Instant::now();
    // A command that finished for this configuration is not rerun (days of GPUs) because what
    // came after it failed, e.g. the evaluation: `trained.json` says it finished.
    let marker = dir.join("trained.json");
    let trained: Option<Trained> =
        store::read_json::<Trained>(&marker).ok().filter(|t| t.config == job.hash);
    let files_sha256 = file_hashes(&project, external, d)?;
    let results = out.join("inference/lvis_instances_results.json");
    let same = |t: &Trained| t.start == start_sha256 && t.files == files_sha256;
    if trained.as_ref().is_some_and(same) && results.is_file() {
        Store::log(
            &job.dir,
            &serde_json::json!({"type": "external", "resumed": "the command finished earlier for this configuration; evaluating its detections"}),
        )?;
    } else {
        let _ = std::fs::remove_file(&marker);
        train(
            plan,
            (job, external, d),
            (&project, &root, &dir, &out),
            weights.as_deref(),
            stop_requested,
        )?;
        lease.touch();
        if !results.is_file() {
            bail!(
                "no detections: the detectron2 run stopped before evaluating on lvis_v0.5_val (no `{}`; command in its log.jsonl){}",
                results.display(),
                super::external::stderr_tail(&dir)
            );
        }
        let done = Trained {
            config: job.hash.clone(),
            start: start_sha256.clone(),
            files: files_sha256.clone(),
        };
        store::write_json(&marker, &done)?;
    }
    let model_sha256 = model_hash(&out.join("model_final.pth"))?;
    let (iterations, final_train_loss) = training_log(&out.join("metrics.json"))?;
    let scored = evaluate(plan, &dir, &annotations, &results, stop_requested)?;
    let mut environment = scored.evaluator;
    if let Some(revision) = git_revision(&project) {
        environment.insert("project-revision".into(), revision.into());
    }
    let metrics = Metrics {
        schema: store::SCHEMA,
        run: job.cell.id(),
        seed: job.seed.0,
        config_sha256: job.hash.clone(),
        selection: "last iteration (detectron2)".to_string(),
        iterations,
        selected_iteration: iterations,
        final_train_loss,
        validation_top1: None,
        tau: None,
        meta_rates: None,
        meta_rates_variance: None,
        class_counts: Vec::new(),
        train_indices_sha256: config.train_indices_sha256.clone(),
        external: Some(ExternalRecord {
            command: external.command.clone(),
            files_sha256,
            environment,
            model_sha256,
            start_sha256,
        }),
        named_metrics: scored.table4.iter().map(|(k, v)| (k.clone(), 100.0 * v)).collect(),
        evaluation: None,
    };
    Store::log(
        &job.dir,
        &serde_json::json!({"type": "end", "seconds": started.elapsed().as_secs_f64(), "named-metrics": metrics.named_metrics}),
    )?;
    store::write_json(&job.dir.join("metrics.json"), &metrics)?;
    Ok(metrics)
}

/// `<run>/external/trained.json`: the command finished for this configuration, this stage-1
/// model and these project files, so a later attempt evaluates its detections without training
/// again.
#[derive(serde::Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
struct Trained {
    /// The run's configuration hash.
    config: String,
    /// SHA-256 of the stage-1 model it started from.
    start: Option<String>,
    /// SHA-256 of the project's files it ran.
    files: BTreeMap<String, String>,
}

/// Runs the detectron2 command: in the run's `external/` folder, where `datasets` links to the
/// data folder (detectron2 0.1.1 reads `./datasets` only; later versions also read
/// `DETECTRON2_DATASETS`, set too), with the project's script and config as absolute paths.
fn train(
    plan: &Plan,
    (job, external, d): (&Job, &External, &Detectron2),
    (project, root, dir, out): (&Path, &Path, &Path, &Path),
    weights: Option<&Path>,
    stop_requested: &dyn Fn() -> bool,
) -> anyhow::Result<()> {
    if out.exists() {
        std::fs::remove_dir_all(out).with_context(|| format!("clearing `{}`", out.display()))?;
    }
    std::fs::create_dir_all(out).with_context(|| format!("creating `{}`", out.display()))?;
    let root = absolute(root)?;
    let link = dir.join("datasets");
    if std::fs::symlink_metadata(&link).is_ok() {
        std::fs::remove_file(&link).with_context(|| format!("replacing `{}`", link.display()))?;
    }
    std::os::unix::fs::symlink(&root, &link)
        .with_context(|| format!("linking `{}` to `{}`", link.display(), root.display()))?;
    let python = match &d.python {
        // The method's own environment (its project's detectron2), over `BALMS_PYTHON`.
        Some(python) => absolute(python)?.display().to_string(),
        None => super::external::python(plan.python.as_deref()).display().to_string(),
    };
    // `{python}` resolved; the project's files as absolute paths, since it runs elsewhere.
    let command: Vec<String> = external
        .command
        .iter()
        .map(|a| a.replace("{python}", &python))
        .map(|a| {
            let inside = project.join(&a);
            if inside.is_file() {
                inside.display().to_string()
            } else {
                a
            }
        })
        .collect();
    let config = project.join(&d.config).display().to_string();
    let args = arguments(d, &config, job.seeds.detectron2(), out, weights);
    let shown = format!("{} {}", command.join(" "), args.join(" "));
    let mut process = Command::new(&command[0]);
    process.args(&command[1..]).args(&args).current_dir(dir).env("DETECTRON2_DATASETS", &root);
    let started = Instant::now();
    let ran = run_logged(process, &shown, dir, external.timeout_seconds, stop_requested);
    Store::log(
        &job.dir,
        &serde_json::json!({"type": "external", "command": shown, "project": project, "seconds": started.elapsed().as_secs_f64(), "ok": ran.is_ok()}),
    )?;
    ran
}

/// SHA-256 of the model a run wrote, if it wrote one.
fn model_hash(model: &Path) -> anyhow::Result<Option<String>> {
    if !model.is_file() {
        return Ok(None);
    }
    let hash = crate::files::sha256_file(model)
        .with_context(|| format!("reading `{}`", model.display()))?;
    Ok(Some(hash))
}

/// The folder holding LVIS v0.5 and COCO 2017 in detectron2's layout, every file checked.
fn data_root(job: &Job, options: &RunOptions) -> anyhow::Result<PathBuf> {
    let root = options.locator.locate(&job.cell.column.dataset)?.expect("a folder dataset");
    // `<data>/` as `<data>` (the locator tries the root itself as `<data>/`).
    let root: PathBuf = root.components().collect();
    if let Some(file) = LVIS_V05_FILES.iter().map(|f| root.join(f)).find(|p| !p.exists()) {
        bail!(
            "`{}` is missing: detectron2 reads LVIS v0.5 and COCO 2017 from `{}` ({})",
            file.display(),
            root.display(),
            job.cell.column.dataset.hint()
        );
    }
    Ok(root)
}

/// detectron2's arguments for a run: config, GPUs, `SEED`, `OUTPUT_DIR`, the stage-1 weights,
/// then the overrides.
fn arguments(
    d: &Detectron2,
    config: &str,
    seed: u64,
    out: &Path,
    weights: Option<&Path>,
) -> Vec<String> {
    let mut args: Vec<String> = vec![
        "--config-file".into(),
        config.to_string(),
        "--num-gpus".into(),
        d.gpus.to_string(),
        "SEED".into(),
        seed.to_string(),
        "OUTPUT_DIR".into(),
        out.display().to_string(),
    ];
    if let Some(weights) = weights {
        args.extend(["MODEL.WEIGHTS".into(), weights.display().to_string()]);
    }
    args.extend(d.overrides.iter().cloned());
    args
}

/// The stage-1 run's `model_final.pth` for a decoupled detectron2 method and its SHA-256,
/// checked against what the stage-1 run's record says it wrote (`None` for a stage 1).
fn stage1_start(
    plan: &Plan,
    job: &Job,
    options: &RunOptions,
) -> anyhow::Result<Option<(PathBuf, String)>> {
    let (Scheme::Decoupled(_), Some(stage1)) = (&job.cell.method.scheme, &job.stage1) else {
        return Ok(None);
    };
    let (dir, stored) = super::finished_stage1(
        plan,
        stage1,
        job.seed,
        options,
        "the model_final.pth it starts from does not exist yet",
    )?;
    let weights = absolute(&super::external::folder(&dir).join(WEIGHTS))?;
    if !weights.is_file() {
        bail!(
            "the stage-1 run `{}` seed {} has no `{}` (detectron2 checkpoints are not committed): train it again, e.g. by removing its `metrics.json` and rerunning the matrix",
            stage1.id(),
            job.seed,
            weights.display()
        );
    }
    let hash = crate::files::sha256_file(&weights)
        .with_context(|| format!("reading `{}`", weights.display()))?;
    let recorded = stored.external.as_ref().and_then(|e| e.model_sha256.as_ref());
    if recorded.is_some_and(|r| *r != hash) {
        bail!(
            "the stage-1 model `{}` is not the one the stage-1 run `{}` seed {} recorded (trained again since?): rerun that stage-1 run first, so that its record matches the model",
            weights.display(),
            stage1.id(),
            job.seed
        );
    }
    Ok(Some((weights, hash)))
}

/// The project's files a detectron2 method runs, as paths in the project: the Python scripts on
/// its command line, its config, and the configs that config inherits (`_BASE_`, relative to the
/// config's folder, followed to the end); and those of them that are missing.
fn project_files(
    project: &Path,
    external: &External,
    d: &Detectron2,
) -> (Vec<String>, Vec<String>) {
    let scripts = external
        .command
        .iter()
        .skip(1)
        .filter(|a| Path::new(a).extension().is_some_and(|e| e.eq_ignore_ascii_case("py")))
        .cloned();
    let mut files: Vec<String> = scripts.collect();
    let mut missing: Vec<String> =
        files.iter().filter(|f| !project.join(f).is_file()).cloned().collect();
    let mut config = Some(d.config.clone());
    while let Some(file) = config.take() {
        if files.contains(&file) {
            break; // a cycle: detectron2 would refuse it; hashed once here
        }
        files.push(file.clone());
        let Ok(text) = std::fs::read_to_string(project.join(&file)) else {
            missing.push(file);
            break;
        };
        config = base_of(&text).map(|base| {
            let folder = Path::new(&file).parent().unwrap_or(Path::new(""));
            normalise(&folder.join(base))
        });
    }
    (files, missing)
}

/// The `_BASE_` a detectron2 config inherits from, as written (quotes removed), if any.
fn base_of(config: &str) -> Option<String> {
    config.lines().find_map(|line| {
        let value = line.strip_prefix("_BASE_:")?.trim();
        let value = value.trim_matches(|c| c == '"' || c == '\'');
        (!value.is_empty()).then(|| value.to_string())
    })
}

/// `path` with `.` and `a/..` removed, lexically (a key, not a lookup).
fn normalise(path: &Path) -> String {
    let mut parts: Vec<&std::ffi::OsStr> = Vec::new();
    for part in path.components() {
        match part {
            std::path::Component::ParentDir if parts.last().is_some_and(|p| *p != "..") => {
                parts.pop();
            }
            std::path::Component::CurDir => {}
            other @ (std::path::Component::Prefix(_)
            | std::path::Component::RootDir
            | std::path::Component::ParentDir
            | std::path::Component::Normal(_)) => parts.push(other.as_os_str()),
        }
    }
    parts.iter().collect::<PathBuf>().display().to_string()
}

/// SHA-256 of the project's files the method runs ([`project_files`]), keyed by their paths in
/// the project, and of balms's evaluator.
fn file_hashes(
    project: &Path,
    external: &External,
    d: &Detectron2,
) -> anyhow::Result<BTreeMap<String, String>> {
    let (files, missing) = project_files(project, external, d);
    if let Some(file) = missing.first() {
        bail!("`{file}` is missing from the project `{}`", project.display());
    }
    let mut files_sha256 = BTreeMap::new();
    for file in files {
        let path = project.join(&file);
        let hash = crate::files::sha256_file(&path)
            .with_context(|| format!("reading `{}`", path.display()))?;
        files_sha256.insert(file, hash);
    }
    files_sha256.insert("external/lvis_eval.py".into(), crate::files::sha256(LVIS_EVAL.as_bytes()));
    Ok(files_sha256)
}

/// The data hash of a detectron2 run: SHA-256 over the SHA-256 of the training and the
/// validation annotations (`lvis_v0.5_train.json`, `lvis_v0.5_val.json`).
fn annotations_hash(root: &Path) -> anyhow::Result<String> {
    let mut both = String::new();
    for file in &LVIS_V05_FILES[..2] {
        let path = root.join(file);
        let hash = crate::files::sha256_file(&path)
            .with_context(|| format!("reading `{}`", path.display()))?;
        both.push_str(&hash);
        both.push('\n');
    }
    Ok(crate::files::sha256(both.as_bytes()))
}

/// The iterations a detectron2 run took and its last total loss, from its `metrics.json`
/// (detectron2's `JSONWriter`: one JSON object per line, with `iteration` and `total_loss`).
fn training_log(path: &Path) -> anyhow::Result<(u64, Option<f64>)> {
    let text = std::fs::read_to_string(path).with_context(|| {
        format!("the detectron2 run wrote no training log `{}`", path.display())
    })?;
    let mut last: Option<(u64, Option<f64>)> = None;
    for (i, line) in text.lines().enumerate().filter(|(_, l)| !l.trim().is_empty()) {
        let value: serde_json::Value = serde_json::from_str(line)
            .with_context(|| format!("`{}` line {}: not JSON", path.display(), i + 1))?;
        let Some(iteration) = value.get("iteration").and_then(serde_json::Value::as_u64) else {
            continue;
        };
        let loss = value.get("total_loss").and_then(serde_json::Value::as_f64);
        if last.is_none_or(|(j, _)| iteration >= j) {
            last = Some((iteration, loss.or(last.and_then(|(_, l)| l))));
        }
    }
    let (iteration, loss) =
        last.with_context(|| format!("`{}` records no iteration", path.display()))?;
    if let Some(loss) = loss.filter(|l| !l.is_finite()) {
        bail!("`{}`: the last total_loss is {loss}", path.display());
    }
    Ok((iteration + 1, loss))
}

/// Scores `results` with balms's evaluator (written to `dir` and run with the matrix's Python).
fn evaluate(
    plan: &Plan,
    dir: &Path,
    annotations: &Path,
    results: &Path,
    stop_requested: &dyn Fn() -> bool,
) -> anyhow::Result<Scored> {
    let script = dir.join("lvis_eval.py");
    crate::files::write_atomic(&script, LVIS_EVAL.as_bytes())
        .with_context(|| format!("writing `{}`", script.display()))?;
    let scores = dir.join("lvis_eval.json");
    // An earlier attempt's scores are not this run's.
    if scores.exists() {
        std::fs::remove_file(&scores)
            .with_context(|| format!("clearing `{}`", scores.display()))?;
    }
    let python = super::external::python(plan.python.as_deref());
    let mut process = Command::new(&python);
    process
        .arg(&script)
        .arg("--annotations")
        .arg(annotations)
        .arg("--results")
        .arg(results)
        .arg("--out")
        .arg(&scores);
    let shown = format!("{} {} (LVIS evaluation)", python.display(), script.display());
    let eval_dir = dir.join("evaluation");
    std::fs::create_dir_all(&eval_dir)
        .with_context(|| format!("creating `{}`", eval_dir.display()))?;
    run_logged(process, &shown, &eval_dir, 86_400, stop_requested)?;
    let text = std::fs::read_to_string(&scores)
        .with_context(|| format!("the evaluator wrote no `{}`", scores.display()))?;
    let evaluated: Scored =
        serde_json::from_str(&text).with_context(|| format!("malformed `{}`", scores.display()))?;
    if let Some((name, v)) = evaluated.table4.iter().find(|(_, v)| !v.is_finite()) {
        bail!("`{}`: {name} = {v} is not finite", scores.display());
    }
    Ok(evaluated)
}

/// The project's git revision, when it is a git checkout.
fn git_revision(project: &Path) -> Option<String> {
    let output =
        Command::new("git").arg("-C").arg(project).args(["rev-parse", "HEAD"]).output().ok()?;
    output.status.success().then(|| String::from_utf8_lossy(&output.stdout).trim().to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_config_is_hashed_with_every_base_it_inherits() {
        assert_eq!(
            base_of("_BASE_: \"../Base-RCNN-FPN.yaml\"\nMODEL:\n"),
            Some("../Base-RCNN-FPN.yaml".into())
        );
        assert_eq!(base_of("MODEL:\n  _BASE_: x\n"), None, "only a top-level key");
        assert_eq!(normalise(Path::new("a/b/../c/./d.yaml")), "a/c/d.yaml");
        let dir = tempfile::tempdir().unwrap();
        let configs = dir.path().join("configs/feature");
        std::fs::create_dir_all(&configs).unwrap();
        std::fs::write(configs.join("run.yaml"), "_BASE_: \"../Base.yaml\"\n").unwrap();
        std::fs::write(dir.path().join("configs/Base.yaml"), "_BASE_: 'Root.yaml'\n").unwrap();
        std::fs::write(dir.path().join("train_net.py"), "").unwrap();
        let external = External {
            command: vec!["{python}".into(), "train_net.py".into(), "-u".into()],
            timeout_seconds: 1,
            detectron2: None,
        };
        let d = Detectron2 {
            config: "configs/feature/run.yaml".into(),
            overrides: vec![],
            gpus: 1,
            project: None,
            python: None,
        };
        let (files, missing) = project_files(dir.path(), &external, &d);
        assert_eq!(
            files,
            ["train_net.py", "configs/feature/run.yaml", "configs/Base.yaml", "configs/Root.yaml"]
        );
        assert_eq!(missing, ["configs/Root.yaml"], "`-u` is not a file; the missing base is named");
        assert!(file_hashes(dir.path(), &external, &d)
            .unwrap_err()
            .to_string()
            .contains("Root.yaml"));
        std::fs::write(dir.path().join("configs/Root.yaml"), "MODEL: {}\n").unwrap();
        assert_eq!(file_hashes(dir.path(), &external, &d).unwrap().len(), 5);
    }
}

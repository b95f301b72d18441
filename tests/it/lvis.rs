//! `external/lvis_eval.py`, Table 4's evaluator: the official LVIS API on a tiny LVIS-format
//! annotation file and detections written here, against AP computed by hand.

use std::path::Path;
use std::process::{Command, Output};

use serde_json::{json, Value};

use crate::util::{root, torch_python};

/// The reference environment's Python when it has the LVIS API (`just bench-setup` installs it;
/// `BALMS_REQUIRE_TORCH` makes its absence fail).
fn lvis_python() -> Option<std::path::PathBuf> {
    let python = torch_python()?;
    let works = Command::new(&python)
        .args(["-c", "import lvis, pycocotools"])
        .output()
        .is_ok_and(|o| o.status.success());
    assert!(
        works || std::env::var_os("BALMS_REQUIRE_TORCH").is_none(),
        "the LVIS API is required here: `just bench-setup`"
    );
    works.then_some(python)
}

/// `[x, y, w, h]` as a rectangle polygon.
fn polygon([left, top, width, height]: [f64; 4]) -> Value {
    let (right, bottom) = (left + width, top + height);
    json!([[left, top, right, top, right, bottom, left, bottom]])
}

/// Three 100 x 100 images; category 1 rare, 2 common, 3 frequent. Image 1 is annotated as
/// holding no category 2 (`neg_category_ids`), so a category-2 detection there is a false
/// positive; elsewhere an unannotated category is not penalised (LVIS's federated rule).
fn annotations() -> (Value, Vec<(u64, u64, [f64; 4])>) {
    let boxes = vec![
        (1, 1, [10.0, 10.0, 30.0, 30.0]),
        (1, 3, [50.0, 50.0, 40.0, 40.0]),
        (2, 2, [20.0, 20.0, 50.0, 30.0]),
        (2, 3, [5.0, 60.0, 30.0, 30.0]),
        (3, 3, [30.0, 30.0, 40.0, 40.0]),
    ];
    let image = |id: u64, neg: Vec<u64>| {
        json!({"id": id, "width": 100, "height": 100, "file_name": format!("{id}.jpg"),
               "neg_category_ids": neg, "not_exhaustive_category_ids": []})
    };
    let category = |id: u64, name: &str, frequency: &str| {
        json!({"id": id, "name": name, "synset": name, "frequency": frequency,
               "image_count": 1, "instance_count": 1})
    };
    let anns: Vec<Value> = boxes
        .iter()
        .enumerate()
        .map(|(i, &(image, category, b))| {
            json!({"id": i + 1, "image_id": image, "category_id": category, "bbox": b,
                   "area": b[2] * b[3], "segmentation": polygon(b)})
        })
        .collect();
    let file = json!({
        "images": [image(1, vec![2]), image(2, vec![]), image(3, vec![])],
        "categories": [category(1, "r1", "r"), category(2, "c1", "c"), category(3, "f1", "f")],
        "annotations": anns,
    });
    (file, boxes)
}

fn detection(image: u64, category: u64, b: [f64; 4], score: f64) -> Value {
    json!({"image_id": image, "category_id": category, "bbox": b, "score": score,
           "segmentation": polygon(b)})
}

/// Every object found but the frequent category's third, and a common-category false positive
/// on image 1 (annotated without it) scored above the true detection.
fn missed_frequent(boxes: &[(u64, u64, [f64; 4])]) -> Vec<Value> {
    let mut missed: Vec<Value> = boxes
        .iter()
        .filter(|&&(i, c, _)| (i, c) != (3, 3))
        .map(|&(i, c, b)| detection(i, c, b, 0.9))
        .collect();
    missed.push(detection(1, 2, [60.0, 5.0, 30.0, 20.0], 0.95));
    missed
}

fn evaluate(python: &Path, dir: &Path, detections: &Value) -> (Output, Value) {
    let (annotations, _) = annotations();
    let gt = dir.join("annotations.json");
    std::fs::write(&gt, annotations.to_string()).unwrap();
    let results = dir.join("results.json");
    std::fs::write(&results, detections.to_string()).unwrap();
    let out = dir.join("scores.json");
    let _ = std::fs::remove_file(&out);
    let output = Command::new(python)
        .arg(root().join("external/lvis_eval.py"))
        .arg("--annotations")
        .arg(&gt)
        .arg("--results")
        .arg(&results)
        .arg("--out")
        .arg(&out)
        .output()
        .unwrap();
    let scores = std::fs::read_to_string(&out)
        .map_or(Value::Null, |text| serde_json::from_str(&text).unwrap());
    (output, scores)
}

fn close(value: &Value, expected: f64) -> bool {
    value.as_f64().is_some_and(|v| (v - expected).abs() < 1e-9)
}

#[test]
fn perfect_detections_score_ap_one_and_known_misses_the_ap_computed_by_hand() {
    let Some(python) = lvis_python() else { return };
    let dir = tempfile::tempdir().unwrap();
    let (_, boxes) = annotations();

    // Every object found, nothing else: AP 1 everywhere, masks and boxes.
    let perfect: Vec<Value> = boxes.iter().map(|&(i, c, b)| detection(i, c, b, 0.9)).collect();
    let (output, scores) = evaluate(&python, dir.path(), &json!(perfect));
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    for column in ["APm", "APf", "APc", "APr", "APb"] {
        assert!(close(&scores["table4"][column], 1.0), "{column}: {scores}");
    }
    assert!(scores["evaluator"]["lvis"].as_str().is_some_and(|v| !v.is_empty()), "{scores}");

    // The frequent category's third object missed: precision 1 up to recall 2/3, nothing after,
    // so 67 of the 101 recall points (0, 0.01, ..., 0.66) at precision 1: AP_f = 67/101 at every
    // IoU threshold. A common-category detection above the true one, on image 1 where category 2
    // is annotated absent: precision 1/2 at every recall point, AP_c = 1/2. The rare category:
    // 1. AP is the mean over the three categories.
    let mut missed = missed_frequent(&boxes);
    // Category 2 on image 3 is neither annotated nor excluded: ignored, not a false positive.
    missed.push(detection(3, 2, [5.0, 5.0, 20.0, 20.0], 0.99));
    let (output, scores) = evaluate(&python, dir.path(), &json!(missed));
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let (f, c, r) = (67.0 / 101.0, 0.5, 1.0);
    for iou in ["segm", "bbox"] {
        let s = &scores[iou];
        assert!(close(&s["APf"], f) && close(&s["APc"], c) && close(&s["APr"], r), "{iou}: {s}");
        assert!(close(&s["AP"], (f + c + r) / 3.0), "{iou}: {s}");
    }
    let t = &scores["table4"];
    assert!(close(&t["APm"], (f + c + r) / 3.0) && close(&t["APb"], (f + c + r) / 3.0), "{t}");
}

#[test]
fn a_malformed_results_file_is_named_with_its_entry() {
    let Some(python) = lvis_python() else { return };
    let dir = tempfile::tempdir().unwrap();
    let cases = [
        (json!({"not": "a list"}), "not a list of detections"),
        (
            json!([detection(1, 1, [1.0, 1.0, 5.0, 5.0], 0.5), {"image_id": 1}]),
            "detection 1: no `category_id`",
        ),
        (
            json!([detection(9, 1, [1.0, 1.0, 5.0, 5.0], 0.5)]),
            "detection 0: image 9 is not in the annotation file",
        ),
        (
            json!([detection(1, 7, [1.0, 1.0, 5.0, 5.0], 0.5)]),
            "detection 0: category 7 is not in the annotation file",
        ),
        (json!([]), "no detections"),
    ];
    for (detections, expected) in cases {
        let (output, scores) = evaluate(&python, dir.path(), &detections);
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(2), "{expected}: {stderr}");
        assert!(
            stderr.contains("results.json") && stderr.contains(expected),
            "{expected}: {stderr}"
        );
        assert!(scores.is_null(), "nothing written");
    }
}

/// A detectron2 project (the stand-in `tests/fixtures/fake_detectron2_train_net.py` as its
/// `projects/BALMS/train_net.py`), LVIS and COCO folders in detectron2's layout holding the tiny
/// annotation file, and a matrix of detectron2 methods on them: `sigmoid` (perfect detections),
/// `balms` fine-tuned from it (the frequent object missed, as above), `oom`, which stops before
/// evaluating, and `eql`, perfect again, in a checkout of its own.
fn detectron2_matrix(dir: &Path, eql_python: &Path) -> std::path::PathBuf {
    let project = dir.join("project");
    let balms_dir = project.join("projects/BALMS");
    std::fs::create_dir_all(balms_dir.join("configs")).unwrap();
    std::fs::create_dir_all(project.join("det")).unwrap();
    std::fs::copy(
        root().join("tests/fixtures/fake_detectron2_train_net.py"),
        balms_dir.join("train_net.py"),
    )
    .unwrap();
    let (gt, boxes) = annotations();
    let perfect: Vec<Value> = boxes.iter().map(|&(i, c, b)| detection(i, c, b, 0.9)).collect();
    let missed = missed_frequent(&boxes);
    std::fs::write(project.join("det/perfect.json"), json!(perfect).to_string()).unwrap();
    std::fs::write(project.join("det/missed.json"), json!(missed).to_string()).unwrap();
    // The second detection names a category the annotation file does not have.
    let mut malformed = perfect.clone();
    malformed[1]["category_id"] = json!(99);
    std::fs::write(project.join("det/malformed.json"), json!(malformed).to_string()).unwrap();
    for (name, text) in [
        ("perfect.yaml", "_BASE_: \"Base.yaml\"\ndetections: det/perfect.json\n"),
        ("Base.yaml", "VERSION: 2\n"),
        ("missed.yaml", "detections: det/missed.json\n"),
        ("oom.yaml", "detections: det/perfect.json\nstop: before-evaluation\n"),
        ("malformed.yaml", "detections: det/malformed.json\n"),
    ] {
        std::fs::write(balms_dir.join("configs").join(name), text).unwrap();
    }
    // The other checkout: the same stand-in as `projects/EQL/train_net.py`.
    let eql = dir.join("eql-project");
    std::fs::create_dir_all(eql.join("projects/EQL/configs")).unwrap();
    std::fs::create_dir_all(eql.join("det")).unwrap();
    std::fs::copy(balms_dir.join("train_net.py"), eql.join("projects/EQL/train_net.py")).unwrap();
    std::fs::copy(project.join("det/perfect.json"), eql.join("det/perfect.json")).unwrap();
    std::fs::write(eql.join("projects/EQL/configs/perfect.yaml"), "detections: det/perfect.json\n")
        .unwrap();
    let data = dir.join("data");
    for folder in ["lvis", "coco/train2017", "coco/val2017"] {
        std::fs::create_dir_all(data.join(folder)).unwrap();
    }
    for split in ["train", "val"] {
        std::fs::write(data.join(format!("lvis/lvis_v0.5_{split}.json")), gt.to_string()).unwrap();
    }
    let text = format!(
        r#"name = "lvis-stand-in"
seeds = [1, 2]
datasets = [{{ "lvis-v0.5" = {{}} }}]

[detectron2]
project = "{}"
gpus = 2
overrides = ["SOLVER.MAX_ITER", "6"]

[[methods]]
name = "sigmoid"
external = {{ detectron2 = {{ config = "projects/BALMS/configs/perfect.yaml" }} }}

[[methods]]
name = "balms"
stage1 = "sigmoid"
external = {{ detectron2 = {{ config = "projects/BALMS/configs/missed.yaml", overrides = ["TEST.DETECTIONS_PER_IMAGE", "300"] }} }}

[[methods]]
name = "oom"
external = {{ detectron2 = {{ config = "projects/BALMS/configs/oom.yaml" }} }}

[[methods]]
name = "malformed"
external = {{ detectron2 = {{ config = "projects/BALMS/configs/malformed.yaml" }} }}

# A baseline in its own authors' checkout.
[[methods]]
name = "eql"
external = {{ command = ["{{python}}", "projects/EQL/train_net.py"], detectron2 = {{ config = "projects/EQL/configs/perfect.yaml", project = "{}", python = "{}" }} }}

[paper]
table = "table4"
rows = {{ sigmoid = "Sigmoid", balms = "BALMS" }}
"#,
        project.display(),
        eql.display(),
        eql_python.display()
    );
    crate::util::matrix(dir, "m.toml", &text)
}

/// `balms run` of the stand-in matrix in `dir` (`m.toml`), into `dir/results`, with `python`.
fn run_stand_in(dir: &Path, python: &Path) -> Output {
    crate::util::balms(&[
        "run",
        dir.join("m.toml").to_str().unwrap(),
        "--no-progress",
        "--results",
        dir.join("results").to_str().unwrap(),
        "--data-dir",
        dir.join("data").to_str().unwrap(),
    ])
    .env("BALMS_PYTHON", python)
    .env_remove("BALMS_INSTANCESEG")
    .output()
    .unwrap()
}

/// `balms report` of the stand-in matrix in `dir` into `dir/paper`: the folder and the report.
fn report_stand_in(dir: &Path) -> (std::path::PathBuf, String) {
    let paper = dir.join("paper");
    let report = crate::util::run(&[
        "report",
        dir.join("m.toml").to_str().unwrap(),
        "--results",
        dir.join("results").to_str().unwrap(),
        "--paper",
        paper.to_str().unwrap(),
    ]);
    assert!(report.status.success(), "{}", crate::util::stderr(&report));
    let text = std::fs::read_to_string(paper.join("lvis-stand-in.md")).unwrap();
    (paper, text)
}

#[test]
#[expect(clippy::too_many_lines, reason = "one run of the matrix, every record it wrote checked")]
fn detectron2_runs_get_their_seed_overrides_and_stage_1_and_are_scored_by_the_lvis_api() {
    let Some(python) = lvis_python() else { return };
    let dir = tempfile::tempdir().unwrap();
    let path = detectron2_matrix(dir.path(), &python);
    let results = dir.path().join("results");
    let output = run_stand_in(dir.path(), &python);
    let err = crate::util::stderr(&output);
    // `oom` failed, so the run as a whole did.
    assert!(!output.status.success(), "{err}");
    let run = |method: &str, seed: u64| {
        results.join(format!("lvis-stand-in/lvis-v0.5.if26148.{method}/seed-{seed}"))
    };
    let read = |path: std::path::PathBuf| -> Value {
        serde_json::from_str(
            &std::fs::read_to_string(&path)
                .unwrap_or_else(|e| panic!("{}: {e}\n{err}", path.display())),
        )
        .unwrap()
    };
    let plan = crate::util::run(&["plan", path.to_str().unwrap()]);
    let plan = String::from_utf8_lossy(&plan.stdout).to_string();
    for seed in [1, 2] {
        // Perfect detections: AP 100 points in every column.
        let sigmoid = read(run("sigmoid", seed).join("metrics.json"));
        for column in ["APm", "APf", "APc", "APr", "APb"] {
            assert!(close(&sigmoid["named-metrics"][column], 100.0), "{column}: {sigmoid}");
        }
        assert_eq!(sigmoid["iterations"], 6, "{sigmoid}");
        let inherited = &sigmoid["external"]["files-sha256"]["projects/BALMS/configs/Base.yaml"];
        assert!(inherited.is_string(), "the config's _BASE_ is hashed: {sigmoid}");
        assert!(sigmoid.get("top1").is_none() && sigmoid.get("validation-top1").is_none());
        // The frequent object missed: APf 67/101, APc 1/2, APr 1 (as computed by hand above).
        let balms = read(run("balms", seed).join("metrics.json"));
        let (f, c, r) = (6700.0 / 101.0, 50.0, 100.0);
        let named = &balms["named-metrics"];
        assert!(close(&named["APf"], f) && close(&named["APc"], c) && close(&named["APr"], r));
        assert!((named["APm"].as_f64().unwrap() - (f + c + r) / 3.0).abs() < 1e-9, "{balms}");
        let hashes = &balms["external"]["files-sha256"];
        for file in ["projects/BALMS/train_net.py", "projects/BALMS/configs/missed.yaml"] {
            assert!(hashes[file].is_string(), "{file} not hashed: {balms}");
        }
        assert!(hashes["external/lvis_eval.py"].is_string(), "{balms}");
        assert!(balms["external"]["environment"]["lvis"].is_string(), "{balms}");
        // What the command got: detectron2's arguments, the plan's SEED, the overrides in
        // order, the stage-1 run of the same seed as its weights, the data folder.
        let args = read(run("balms", seed).join("external/out/args.json"));
        let command: Vec<&str> =
            args["argv"].as_array().unwrap().iter().map(|a| a.as_str().unwrap()).collect();
        let seed_arg = command[command.iter().position(|a| *a == "SEED").unwrap() + 1];
        assert!(plan.contains(&format!("seed {seed}: SEED {seed_arg}")), "{seed_arg}: {plan}");
        // The project's files by absolute path: the command runs in the run's folder.
        assert_eq!(command[0], "--config-file");
        assert!(command[1].ends_with("/project/projects/BALMS/configs/missed.yaml"), "{args}");
        assert!(Path::new(command[1]).is_absolute(), "{args}");
        assert_eq!(&command[2..4], ["--num-gpus", "2"]);
        assert_eq!(
            &command[command.len() - 4..],
            ["SOLVER.MAX_ITER", "6", "TEST.DETECTIONS_PER_IMAGE", "300"]
        );
        let stage1_seed = read(run("sigmoid", seed).join("external/out/args.json"))["argv"]
            .as_array()
            .unwrap()
            .iter()
            .skip_while(|a| *a != "SEED")
            .nth(1)
            .unwrap()
            .clone();
        assert_eq!(
            args["start"].as_str().unwrap(),
            format!("model of SEED {} from None", stage1_seed.as_str().unwrap())
        );
        // The data folder: DETECTRON2_DATASETS, and `datasets` in the folder it runs in (all
        // detectron2 0.1.1 reads).
        assert!(args["datasets"].as_str().unwrap().ends_with("data"), "{args}");
        let cwd = Path::new(args["cwd"].as_str().unwrap());
        assert!(cwd.ends_with(format!("lvis-v0.5.if26148.balms/seed-{seed}/external")), "{args}");
        assert!(cwd.join("datasets/lvis/lvis_v0.5_val.json").is_file(), "{args}");
        assert!(args["script"].as_str().unwrap().ends_with("/project/projects/BALMS/train_net.py"));
        let eql = read(run("eql", seed).join("external/out/args.json"));
        let script = eql["script"].as_str().unwrap();
        assert!(script.ends_with("/eql-project/projects/EQL/train_net.py"), "{eql}");
        let eql = read(run("eql", seed).join("metrics.json"));
        assert!(close(&eql["named-metrics"]["APm"], 100.0), "{eql}");
        assert!(eql["external"]["files-sha256"]["projects/EQL/train_net.py"].is_string(), "{eql}");
        // The run that stopped before evaluating failed, saying so.
        let failed = read(run("oom", seed).join("failed.json"));
        let error = failed["error"].as_str().unwrap();
        assert!(
            error.contains("stopped before evaluating") && error.contains("out of memory"),
            "{error}"
        );
        assert!(!run("oom", seed).join("metrics.json").exists());
        // Detections the evaluator refuses: the run failed, naming the file and the entry.
        let failed = read(run("malformed", seed).join("failed.json"));
        let error = failed["error"].as_str().unwrap();
        assert!(
            error.contains("lvis_instances_results.json`, detection 1: category 99"),
            "{error}"
        );
        assert!(!run("malformed", seed).join("metrics.json").exists());
    }
    // The report: Table 4's columns for each method; the layout beside the paper's numbers.
    let (paper, text) = report_stand_in(dir.path());
    let row = |name: &str| {
        text.lines().find(|l| l.starts_with(&format!("| {name} "))).unwrap_or_default().to_string()
    };
    let header = row("Method");
    let header: Vec<&str> = header.split('|').map(str::trim).collect();
    assert_eq!(header[1..7], ["Method", "APm", "APf", "APc", "APr", "APb"][..], "{text}");
    assert_eq!(row("sigmoid").matches("100.00 ± 0.00 [100.00, 100.00] n=2").count(), 5, "{text}");
    assert!(row("balms").contains("66.34 ± 0.00 [66.34, 66.34] n=2"), "{text}");
    assert!(row("oom").contains("failed"), "{text}");
    assert!(text.contains("stopped before evaluating"), "{text}");
    let layout = std::fs::read_to_string(paper.join("lvis-stand-in.table.md")).unwrap();
    assert!(layout.contains("lvis-v0.5/APr (ours) | paper | verdict"), "{layout}");
    assert!(layout.contains("| Focal Loss | not run | 23.4 |"), "{layout}");
}

#[test]
fn a_detectron2_matrix_names_what_it_lacks() {
    let dir = tempfile::tempdir().unwrap();
    let path = detectron2_matrix(dir.path(), Path::new("/no/such/python"));
    std::fs::remove_file(dir.path().join("data/lvis/lvis_v0.5_train.json")).unwrap();
    std::fs::remove_file(dir.path().join("project/projects/BALMS/configs/oom.yaml")).unwrap();
    let output = crate::util::balms(&[
        "run",
        path.to_str().unwrap(),
        "--no-progress",
        "--results",
        dir.path().join("results").to_str().unwrap(),
        "--data-dir",
        dir.path().join("data").to_str().unwrap(),
    ])
    .env_remove("BALMS_INSTANCESEG")
    .output()
    .unwrap();
    let err = crate::util::stderr(&output);
    assert!(!output.status.success());
    assert!(err.contains("lvis_v0.5_train.json") && err.contains("oom.yaml"), "{err}");
    assert!(err.contains("/no/such/python"), "the method's own interpreter is named: {err}");
    // A scale cannot shorten a detectron2 config balms does not read.
    let scaled = crate::util::run(&["plan", path.to_str().unwrap(), "--scale", "0.1"]);
    assert!(crate::util::stderr(&scaled).contains("SOLVER.MAX_ITER"));
}

/// A detectron2 method's settings are its config's: balms's are refused, and play no part in its
/// configuration hash (a change of balms's defaults must not rerun days of GPU training).
#[test]
fn a_detectron2_method_takes_no_balms_settings_and_its_hash_ignores_them() {
    let dir = tempfile::tempdir().unwrap();
    let path = detectron2_matrix(dir.path(), Path::new("python3"));
    let text = std::fs::read_to_string(&path).unwrap();
    let with_loss = text.replacen("name = \"oom\"\n", "name = \"oom\"\nloss = \"focal\"\n", 1);
    let bad = crate::util::matrix(dir.path(), "bad.toml", &with_loss);
    let output = crate::util::run(&["plan", bad.to_str().unwrap()]);
    let err = crate::util::stderr(&output);
    assert!(
        !output.status.success() && err.contains("takes its training settings from its config"),
        "{err}"
    );
    // A top-1 claim between detectron2 methods could never be judged: refused.
    let top1_claim =
        format!("{text}\n[[claims]]\nclaim = \"x\"\nbetter = \"balms\"\nthan = \"sigmoid\"\n");
    let bad = crate::util::matrix(dir.path(), "claim.toml", &top1_claim);
    let err = crate::util::stderr(&crate::util::run(&["plan", bad.to_str().unwrap()]));
    assert!(err.contains("no top-1 or rates"), "{err}");
    // Its stage 1 may name its starting weights (offline); a stage 2 may not.
    let weights = "overrides = [\"MODEL.WEIGHTS\", \"R-50.pkl\"]";
    let sigmoid = "config = \"projects/BALMS/configs/perfect.yaml\"";
    let balms = "overrides = [\"TEST.DETECTIONS_PER_IMAGE\", \"300\"]";
    for (given, own, refused) in
        [(sigmoid, format!("{weights}, {sigmoid}"), false), (balms, weights.to_string(), true)]
    {
        let changed = text.replacen(given, &own, 1);
        assert_ne!(changed, text, "{given}: the override was placed");
        let file = crate::util::matrix(dir.path(), "weights.toml", &changed);
        let output = crate::util::run(&["plan", file.to_str().unwrap()]);
        let err = crate::util::stderr(&output);
        assert_eq!(!output.status.success(), refused, "{given}: {err}");
        assert_eq!(err.contains("`MODEL.WEIGHTS` is balms's to set"), refused, "{err}");
    }
    let plan = balms::matrix::Plan::load(&path).unwrap();
    let cell = plan.cells().into_iter().find(|c| c.method.name == "sigmoid").unwrap();
    let mut moved = cell.clone();
    let balms::matrix::Scheme::EndToEnd(settings) = &mut moved.method.scheme else {
        panic!("stage 1 is end to end")
    };
    settings.optimizer.lr *= 2.0;
    let seed = plan.seeds[0];
    assert_eq!(plan.config_hash(&cell, seed), plan.config_hash(&moved, seed));
    // What does count: an override.
    let mut overridden = cell.clone();
    overridden.method.external.as_mut().unwrap().detectron2.as_mut().unwrap().overrides.clear();
    assert_ne!(plan.config_hash(&cell, seed), plan.config_hash(&overridden, seed));
}

/// A run whose command finished is not trained again when only its record is redone (its
/// evaluation is), and a stage 2 fine-tuned from a stage-1 model its stage-1 record no longer
/// names (stage 1 trained again: GPUs do not repeat it bit for bit) is not counted and is rerun.
#[test]
fn a_finished_command_is_not_retrained_and_a_retrained_stage_1_reruns_its_stage_2() {
    let Some(python) = lvis_python() else { return };
    let dir = tempfile::tempdir().unwrap();
    detectron2_matrix(dir.path(), &python);
    let results = dir.path().join("results");
    let run_all = || run_stand_in(dir.path(), &python);
    let _ = run_all();
    let run =
        |method: &str| results.join(format!("lvis-stand-in/lvis-v0.5.if26148.{method}/seed-1"));
    // The record alone redone: the detections are evaluated again, nothing retrained.
    let record = std::fs::read(run("sigmoid").join("metrics.json")).unwrap();
    let args = std::fs::read(run("sigmoid").join("external/out/args.json")).unwrap();
    std::fs::remove_file(run("sigmoid").join("metrics.json")).unwrap();
    let _ = run_all();
    let log = std::fs::read_to_string(run("sigmoid").join("log.jsonl")).unwrap();
    assert!(log.contains("resumed"), "{log}");
    assert_eq!(std::fs::read(run("sigmoid").join("metrics.json")).unwrap(), record);
    assert_eq!(std::fs::read(run("sigmoid").join("external/out/args.json")).unwrap(), args);
    // Stage 1 "trained again": another model, and a record naming it.
    let model = run("sigmoid").join("external/out/model_final.pth");
    std::fs::write(&model, "retrained").unwrap();
    let mut first: Value =
        serde_json::from_slice(&std::fs::read(run("sigmoid").join("metrics.json")).unwrap())
            .unwrap();
    first["external"]["model-sha256"] = json!(balms::files::sha256(b"retrained"));
    std::fs::write(run("sigmoid").join("metrics.json"), first.to_string()).unwrap();
    let (_, text) = report_stand_in(dir.path());
    assert!(text.contains("its stage-1 record no longer names"), "not counted: {text}");
    let again = run_all();
    let err = crate::util::stderr(&again);
    assert!(
        err.contains("lvis-v0.5/if26148/balms seed 1: fine-tuned from a stage-1 model"),
        "{err}"
    );
    let args: Value = serde_json::from_slice(
        &std::fs::read(run("balms").join("external/out/args.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(args["start"], "retrained", "the stage 2 starts from the model stage 1 names now");
    let balms_record: Value =
        serde_json::from_slice(&std::fs::read(run("balms").join("metrics.json")).unwrap()).unwrap();
    assert_eq!(balms_record["external"]["start-sha256"], first["external"]["model-sha256"]);
}

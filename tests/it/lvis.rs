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
    let mut missed: Vec<Value> = boxes
        .iter()
        .filter(|&&(i, c, _)| (i, c) != (3, 3))
        .map(|&(i, c, b)| detection(i, c, b, 0.9))
        .collect();
    missed.push(detection(1, 2, [60.0, 5.0, 30.0, 20.0], 0.95));
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

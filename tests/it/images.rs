//! The image-list pipeline end to end on real images: Fashion-MNIST-LT written as a JPEG tree with
//! ImageNet-LT-format lists, trained through the list loader, parallel JPEG decoding, the
//! official transforms and a ResNet-10, reported with many/medium/few columns in Table 3's layout.

use std::path::Path;

use crate::data::fashion_present;
use crate::util::{files_named, matrix, metrics_files, run, run_matrix_with, stderr};

const MATRIX: &str = r#"
name = "jpeg-pipeline"
repeats = 1
base-seed = 1
datasets = [{ image-list = { name = "fashion-mnist-lt-jpeg", prefix = "FashionMNIST_LT", classes = 10, imbalance = 30, crop = 28, resize = 32 } }]

[defaults]
model = { resnet = { depth = 10 } }
epochs = 3
batch-size = 64
optimizer = { lr = 0.1, momentum = 0.9, weight-decay = 5e-4 }
augment = { random-resized-crop = { jitter = 0.4 } }
stage2 = { iterations = 20, batch-size = 64, optimizer = { lr = 0.1 } }

[[methods]]
name = "softmax"
loss = "softmax"

[[methods]]
name = "balms"
stage1 = "softmax"
loss = "balanced-softmax"
sampler = { meta = { meta-set = "validation", meta-batch = 100 } }

[paper]
table = "table3"
rows = { balms = "BALMS" }
"#;

fn tree(dir: &Path) {
    let out = dir.join("fashion-mnist-lt-jpeg");
    let output = run(&[
        "jpeg-tree",
        "--out",
        out.to_str().unwrap(),
        "--imbalance",
        "30",
        "--n-max",
        "150",
        "--test-per-class",
        "30",
    ]);
    assert!(output.status.success(), "{}", stderr(&output));
}

#[test]
fn fashion_jpegs_train_a_resnet10_and_report_many_medium_few() {
    if !fashion_present() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    tree(dir.path());
    let data = dir.path().to_str().unwrap();
    let file = matrix(dir.path(), "m.toml", MATRIX);

    // Class statistics from the train list.
    let plan = run(&["plan", file.to_str().unwrap(), "--data-dir", data]);
    let text = String::from_utf8_lossy(&plan.stdout);
    assert!(
        text.contains("training images in 10 classes (max 150, min 5, imbalance 30), many/medium/few classes 2/4/4"),
        "{text}"
    );

    // Two decoding-thread counts, byte-identical records.
    let mut records = Vec::new();
    for threads in ["1", "3"] {
        let results = dir.path().join(format!("results-{threads}"));
        let output = std::process::Command::new(env!("CARGO_BIN_EXE_balms"))
            .args(["run", file.to_str().unwrap(), "--device", "cpu", "--no-progress", "--threads", "2"])
            .args(["--data-dir", data, "--results", results.to_str().unwrap()])
            .env("BALMS_DECODE_THREADS", threads)
            .output()
            .unwrap();
        assert!(output.status.success(), "{}", stderr(&output));
        records.push(metrics_files(&results));
    }
    assert_eq!(records[0].len(), 2);
    assert_eq!(records[0], records[1], "records depend on the decoding threads");

    let results = dir.path().join("results-1");
    let paper = dir.path().join("paper");
    let output = run(&[
        "report",
        file.to_str().unwrap(),
        "--results",
        results.to_str().unwrap(),
        "--paper",
        paper.to_str().unwrap(),
    ]);
    assert!(output.status.success(), "{}", stderr(&output));
    let report = std::fs::read_to_string(paper.join("jpeg-pipeline.md")).unwrap();
    let groups = report
        .lines()
        .skip_while(|l| !l.contains("many / medium / few-shot accuracy"))
        .find(|l| l.starts_with("| balms"))
        .expect("a many/medium/few row for balms");
    assert_eq!(groups.matches('.').count() >= 4, true, "numbers in {groups}");
    assert!(report.contains("the dataset's `val` list"), "{report}");
    let table = std::fs::read_to_string(paper.join("jpeg-pipeline.table.md")).unwrap();
    for column in ["fashion-mnist-lt-jpeg/many", "fashion-mnist-lt-jpeg/few", "fashion-mnist-lt-jpeg/overall"] {
        assert!(table.contains(column), "{table}");
    }
    let list = std::fs::read(dir.path().join("fashion-mnist-lt-jpeg/FashionMNIST_LT_train.txt")).unwrap();
    let hash = balms::data::longtail::hex(&<sha2::Sha256 as sha2::Digest>::digest(&list));
    let config = std::fs::read_to_string(&files_named(&results, "config.json")[0]).unwrap();
    assert!(config.contains(&hash), "the run records the train list's hash");
}

#[test]
fn missing_and_unreadable_images_stop_the_run_before_training() {
    if !fashion_present() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    tree(dir.path());
    let root = dir.path().join("fashion-mnist-lt-jpeg");
    let list = std::fs::read_to_string(root.join("FashionMNIST_LT_train.txt")).unwrap();
    let mut paths = list.lines().map(|l| l.split(' ').next().unwrap());
    let (gone, broken) = (paths.next().unwrap(), paths.next().unwrap());
    std::fs::remove_file(root.join(gone)).unwrap();
    std::fs::write(root.join(broken), b"not a jpeg").unwrap();
    let file = matrix(dir.path(), "m.toml", MATRIX);
    let results = dir.path().join("results");
    let output = run_matrix_with(&file, &results, &["--data-dir", dir.path().to_str().unwrap()]);
    let err = stderr(&output);
    assert!(!output.status.success());
    assert!(err.contains("2 of 462 images of") && err.contains("FashionMNIST_LT_train.txt"), "{err}");
    assert!(err.contains(gone) && err.contains("missing") && err.contains(broken), "{err}");
    assert!(metrics_files(&results).is_empty(), "nothing recorded");
}

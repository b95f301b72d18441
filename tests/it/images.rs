//! The image-list pipeline end to end on real images: Fashion-MNIST-LT written as a JPEG tree with
//! ImageNet-LT-format lists, trained through the list loader, parallel JPEG decoding, the
//! official transforms and a ResNet-10, reported with many/medium/few columns in Table 3's layout.

use std::fmt::Write as _;
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

[[methods]]
name = "balms-augmented"
stage1 = "softmax"
loss = "balanced-softmax"
sampler = { meta = { meta-set = "validation", meta-batch = 100 } }
stage2 = { features = "augmented" }

[[methods]]
name = "fine-tuned"
loss = "softmax"
model = { resnet = { depth = 10, pretrained = "WEIGHTS", frozen = ["conv1", "bn1", "layer1"] } }

[[methods]]
name = "as-released"
loss = "softmax"
iterations = 0
model = { resnet = { depth = 10, pretrained = "WEIGHTS" } }

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
    let weights = dir.path().join("start.safetensors");
    write_weights(&weights);
    let file = matrix(dir.path(), "m.toml", &MATRIX.replace("WEIGHTS", weights.to_str().unwrap()));

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
            .args([
                "run",
                file.to_str().unwrap(),
                "--device",
                "cpu",
                "--no-progress",
                "--threads",
                "2",
            ])
            .args(["--data-dir", data, "--results", results.to_str().unwrap()])
            .env("BALMS_DECODE_THREADS", threads)
            .output()
            .unwrap();
        assert!(output.status.success(), "{}", stderr(&output));
        records.push(metrics_files(&results));
    }
    assert_eq!(records[0].len(), 5);
    assert_eq!(records[0], records[1], "records depend on the decoding threads");

    let results = dir.path().join("results-1");
    let metrics_of = |method: &str| {
        let text = std::fs::read_to_string(run_file(&results, method, "metrics.json")).unwrap();
        text.lines().find(|l| l.contains("\"top1\"")).unwrap().to_string()
    };
    assert_ne!(metrics_of("balms"), metrics_of("balms-augmented"), "augmented features differ");
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
    let cells: Vec<&str> = groups.split('|').map(str::trim).collect();
    // | balms | overall | many | medium | few | validation |: a number in each.
    assert!(cells[2..7].iter().all(|c| c.contains('.') && !c.starts_with('-')), "{groups}");
    assert!(report.contains("the dataset's `val` list"), "{report}");
    let table = std::fs::read_to_string(paper.join("jpeg-pipeline.table.md")).unwrap();
    for column in
        ["fashion-mnist-lt-jpeg/many", "fashion-mnist-lt-jpeg/few", "fashion-mnist-lt-jpeg/overall"]
    {
        assert!(table.contains(column), "{table}");
    }
    let list =
        std::fs::read(dir.path().join("fashion-mnist-lt-jpeg/FashionMNIST_LT_train.txt")).unwrap();
    let hash = format!("{:x}", <sha2::Sha256 as sha2::Digest>::digest(&list));
    let config = std::fs::read_to_string(&files_named(&results, "config.json")[0]).unwrap();
    assert!(config.contains(&hash), "the run records the train list's hash");
    check_fine_tuning(&results, &weights);
}

/// Seeded ResNet-10 weights for 28 x 28 inputs and 10 classes, in balms's names.
fn write_weights(path: &Path) {
    use balms::model::{ClassifierSpec, ModelSpec, Network, ResnetSpec};
    tch::manual_seed(5);
    let vs = tch::nn::VarStore::new(tch::Device::Cpu);
    let spec = ModelSpec::Resnet(ResnetSpec { depth: 10, pretrained: None, frozen: vec![] });
    let _ = Network::new(&vs.root(), &spec, ClassifierSpec::Linear, &[3, 28, 28], 10);
    vs.save(path).unwrap();
}

/// The file `name` of `method`'s (only) run under `results`.
fn run_file(results: &Path, method: &str, name: &str) -> std::path::PathBuf {
    files_named(results, name)
        .into_iter()
        .find(|p| p.to_string_lossy().contains(&format!(".{method}/")))
        .unwrap()
}

/// The fine-tuned run started from the weights (their hash is recorded), kept the frozen
/// layers as they were and trained the others.
fn check_fine_tuning(results: &Path, weights: &Path) {
    let start: std::collections::HashMap<String, tch::Tensor> =
        tch::Tensor::read_safetensors(weights).unwrap().into_iter().collect();
    let as_is: std::collections::HashMap<String, tch::Tensor> =
        tch::Tensor::load_multi(run_file(results, "as-released", "model.ot"))
            .unwrap()
            .into_iter()
            .collect();
    assert!(
        start.iter().all(|(name, t)| as_is[name].equal(t)),
        "`iterations = 0` keeps the weights"
    );
    let run = run_file(results, "fine-tuned", "config.json");
    let bytes = std::fs::read(weights).unwrap();
    let sha = format!("{:x}", <sha2::Sha256 as sha2::Digest>::digest(&bytes));
    assert!(std::fs::read_to_string(&run).unwrap().contains(&sha), "weights' hash recorded");
    let trained: std::collections::HashMap<String, tch::Tensor> =
        tch::Tensor::load_multi(run.with_file_name("model.ot")).unwrap().into_iter().collect();
    let same = |name: &str| trained[name].equal(&start[name]);
    assert!(same("backbone.conv1.weight") && same("backbone.layer1.0.conv2.weight"), "frozen");
    assert!(!same("backbone.layer4.0.conv2.weight") && !same("classifier.weight"), "trained");
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
    assert!(
        err.contains("2 of 462 images of") && err.contains("FashionMNIST_LT_train.txt"),
        "{err}"
    );
    assert!(err.contains(gone) && err.contains("missing") && err.contains(broken), "{err}");
    assert!(metrics_files(&results).is_empty(), "nothing recorded");
}

/// Writes ImageNet-LT-shaped lists (1,000 classes, 1,280 down to `tail` per class) under `dir`.
fn imagenet_lists(dir: &Path, tail: usize) -> std::path::PathBuf {
    let root = dir.join("ImageNet_LT");
    std::fs::create_dir_all(&root).unwrap();
    let mut counts = balms::data::longtail::profile(1280, 256.0, 1000);
    for n in &mut counts {
        *n = (*n).max(tail);
    }
    let list = |per_class: &dyn Fn(usize) -> usize, split: &str| {
        let mut text = String::new();
        for (c, _) in counts.iter().enumerate() {
            for i in 0..per_class(c) {
                let _ = writeln!(text, "{split}/n{c:08}/n{c:08}_{i}.JPEG {c}");
            }
        }
        std::fs::write(root.join(format!("ImageNet_LT_{split}.txt")), text).unwrap();
    };
    list(&|c| counts[c], "train");
    list(&|_| 20, "val");
    list(&|_| 50, "test");
    root
}

#[test]
fn the_imagenet_lt_matrix_shows_the_train_lists_statistics() {
    let dir = tempfile::tempdir().unwrap();
    imagenet_lists(dir.path(), 5);
    let matrix = crate::util::root().join("experiments/imagenet_lt_table3.toml");
    let output =
        run(&["plan", matrix.to_str().unwrap(), "--data-dir", dir.path().to_str().unwrap()]);
    assert!(output.status.success(), "{}", stderr(&output));
    let text = String::from_utf8_lossy(&output.stdout);
    let line = text.lines().find(|l| l.starts_with("imagenet-lt/if256: ")).expect("statistics");
    assert!(line.contains("in 1000 classes (max 1280, min 5, imbalance 256)"), "{line}");
    assert!(line.contains("val 20000 images, test 50000 images"), "{line}");
    // Without the lists, the plan says where to get them.
    let output = run(&["plan", matrix.to_str().unwrap(), "--data-dir", "/nonexistent"]);
    let text = String::from_utf8_lossy(&output.stdout);
    assert!(text.contains("imagenet-lt/if256: lists not found (get ImageNet-2012"), "{text}");
}

#[test]
fn a_train_list_with_another_imbalance_factor_is_refused_naming_the_list() {
    let dir = tempfile::tempdir().unwrap();
    imagenet_lists(dir.path(), 10);
    let matrix = crate::util::root().join("experiments/imagenet_lt_table3.toml");
    let results = dir.path().join("results");
    let output = run_matrix_with(&matrix, &results, &["--data-dir", dir.path().to_str().unwrap()]);
    assert!(!output.status.success());
    let err = stderr(&output);
    assert!(
        err.contains("ImageNet_LT_train.txt")
            && err.contains("imbalance factor is 128.0")
            && err.contains("the matrix says 256"),
        "{err}"
    );
}

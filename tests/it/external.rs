//! External methods: a command trains the run (`tests/fixtures/external_ncm.py`, nearest class
//! mean on the arrays balms writes), and balms records, resumes, fails and reports it like any
//! other run.

use std::path::Path;

use crate::util::{matrix, root, run, run_matrix_with, stderr, torch_python};

/// A digits matrix with balms's Softmax, an external method and an external stage 2 on it, plus
/// `extra` methods; `python` is the interpreter.
fn external_matrix(python: &Path, extra: &str) -> String {
    let script = root().join("tests/fixtures/external_ncm.py");
    let script = script.display();
    format!(
        r#"name = "x"
seeds = [1, 2]
python = "{python}"
datasets = [{{ digits-lt = {{ imbalance = [10] }} }}]

[defaults]
model = {{ mlp = {{ hidden = [32] }} }}
epochs = 4
batch-size = 32

[[methods]]
name = "softmax"

[[methods]]
name = "ncm"
external = {{ command = ["{{python}}", "{script}"] }}

[[methods]]
name = "ncm-dt"
stage1 = "ncm"
external = {{ command = ["{{python}}", "{script}"] }}
{extra}"#,
        python = python.display()
    )
}

fn read(path: impl AsRef<Path>) -> serde_json::Value {
    let path = path.as_ref();
    serde_json::from_str(&std::fs::read_to_string(path).unwrap_or_else(|e| {
        panic!("{}: {e}", path.display());
    }))
    .unwrap()
}

#[test]
fn an_external_method_runs_records_resumes_and_reports() {
    let Some(python) = torch_python() else { return };
    let dir = tempfile::tempdir().unwrap();
    // A second stage 2 on the same external stage 1.
    let script = root().join("tests/fixtures/external_ncm.py");
    let second = format!(
        "\n[[methods]]\nname = \"ncm-dt2\"\nstage1 = \"ncm\"\nexternal = {{ command = [\"{{python}}\", \"{}\"] }}\n",
        script.display()
    );
    // A claim on a named metric the command reports.
    let claim = "\n[[claims]]\nclaim = \"the stub's named metric\"\nbetter = \"ncm-dt\"\nthan = \"ncm\"\nequivalence-margin = 1.0\nmetric = { named = \"init-fraction\" }\nmin-seeds = 2\n";
    let path = matrix(dir.path(), "x.toml", &external_matrix(&python, &(second + claim)));
    let results = dir.path().join("r");
    let output = run_matrix_with(&path, &results, &["--threads", "1"]);
    assert!(output.status.success(), "{}", stderr(&output));
    let run_dir =
        |method: &str, seed: u64| results.join(format!("x/digits-lt.if10.{method}/seed-{seed}"));
    let metrics = read(run_dir("ncm", 1).join("metrics.json"));
    // Nearest class mean on the digits: far above chance, scored by balms from the predictions.
    let top1 = metrics["top1"].as_f64().unwrap();
    assert!(top1 > 0.8, "{metrics}");
    let external = &metrics["external"];
    assert_eq!(external["environment"]["numpy"].as_str().map(str::is_empty), Some(false));
    // The script and the module it reported in `sources`, keyed relative to the working directory.
    for file in ["tests/fixtures/external_ncm.py", "tests/fixtures/external_ncm_means.py"] {
        let bytes = std::fs::read(root().join(file)).unwrap();
        let expected = format!("{:x}", <sha2::Sha256 as sha2::Digest>::digest(&bytes));
        assert_eq!(external["files-sha256"][file].as_str(), Some(&*expected), "{external}");
    }
    // Validation top-1 scored by balms from the reported predictions.
    let validation = metrics["validation-top1"].as_f64().unwrap();
    assert!(validation > 0.7 && validation <= 1.0, "{metrics}");
    assert_eq!(metrics["iterations"], 1);
    let init = read(run_dir("ncm", 1).join("config.json"))["seeds"]["init"].as_u64().unwrap();
    let expected = (init % 1000) as f64 / 1000.0;
    assert_eq!(metrics["named-metrics"]["init-fraction"].as_f64(), Some(expected), "{metrics}");
    // balms's own runs record none.
    assert!(read(run_dir("softmax", 1).join("metrics.json")).get("named-metrics").is_none());
    assert_eq!(metrics["per-class-accuracy"].as_array().unwrap().len(), 10);
    // The same subset as balms's own methods at the seed.
    let softmax = read(run_dir("softmax", 1).join("metrics.json"));
    assert_eq!(metrics["train-indices-sha256"], softmax["train-indices-sha256"]);
    // run.json gave the seeds and settings; the arrays are gone.
    let contract = read(run_dir("ncm", 1).join("external/run.json"));
    assert_eq!(contract["contract"], 2);
    assert_eq!(contract["method"]["scheme"]["end-to-end"]["batch-size"], 32);
    assert!(contract["stage1"].is_null());
    assert!(!run_dir("ncm", 1).join("external/data.npz").exists());
    // The decoupled external run got its stage 1's outputs: the same means, the same scores.
    let stage2 = read(run_dir("ncm-dt", 2).join("external/run.json"));
    assert!(stage2["stage1"]["out"].as_str().unwrap().ends_with("ncm/seed-2/external/out"));
    let dt = read(run_dir("ncm-dt", 2).join("metrics.json"));
    let ncm = read(run_dir("ncm", 2).join("metrics.json"));
    assert_eq!(dt["per-class-accuracy"], ncm["per-class-accuracy"]);

    // Resumable: nothing reruns.
    let again = run_matrix_with(&path, &results, &["--threads", "1"]);
    assert!(again.status.success(), "{}", stderr(&again));
    assert!(stderr(&again).contains("0 trained, 8 already finished"), "{}", stderr(&again));

    // A fresh clone keeps records, not the commands' outputs: a stage 2 reruns its stage 1's
    // command for them, leaving the stage-1 records and logs as they were.
    let stage1 = run_dir("ncm", 1);
    let kept = ["metrics.json", "log.jsonl", "external/stderr.log", "external/stdout.log"]
        .map(|f| std::fs::read(stage1.join(f)).unwrap());
    std::fs::remove_dir_all(stage1.join("external/out")).unwrap();
    std::fs::remove_file(run_dir("ncm-dt", 1).join("metrics.json")).unwrap();
    std::fs::remove_file(run_dir("ncm-dt2", 1).join("metrics.json")).unwrap();
    // Two workers, two stage-2 runs needing the same outputs: rerun once.
    let again = run_matrix_with(&path, &results, &["--threads", "1", "--jobs", "2"]);
    assert!(again.status.success(), "{}", stderr(&again));
    let said = stderr(&again);
    let reruns = said.matches("ncm seed 1: stage-1 outputs missing; rerunning its command").count();
    assert_eq!(reruns, 1, "{said}");
    assert!(said.contains("2 trained, 6 already finished") && !said.contains("warning"), "{said}");
    assert_eq!(
        read(run_dir("ncm-dt2", 1).join("metrics.json"))["per-class-accuracy"],
        read(stage1.join("metrics.json"))["per-class-accuracy"]
    );
    assert!(stage1.join("external/out/means.npy").exists());
    let after = ["metrics.json", "log.jsonl", "external/stderr.log", "external/stdout.log"]
        .map(|f| std::fs::read(stage1.join(f)).unwrap());
    assert!(kept == after, "the stage-1 records or logs changed");
    let dt = read(run_dir("ncm-dt", 1).join("metrics.json"));
    assert_eq!(dt["per-class-accuracy"], read(stage1.join("metrics.json"))["per-class-accuracy"]);

    // Reported like any run.
    let paper = dir.path().join("paper");
    let (m, r, p) = (path.to_str().unwrap(), results.to_str().unwrap(), paper.to_str().unwrap());
    let output = run(&["report", m, "--results", r, "--paper", p]);
    assert!(output.status.success(), "{}", stderr(&output));
    let report = std::fs::read_to_string(paper.join("x.md")).unwrap();
    assert!(report.contains("ncm-dt2") && !report.contains("not run"), "{report}");
    // The named metric, per method over seeds, and its claim.
    assert!(report.contains("named metrics (as the commands report them)"), "{report}");
    assert!(report.contains("| `init-fraction` |"), "{report}");
    let claim_row = report.lines().find(|l| l.contains("the stub's named metric")).unwrap_or("");
    assert!(claim_row.contains("`init-fraction`"), "{report}");
}

#[test]
fn a_failing_malformed_or_slow_command_fails_its_run_and_the_matrix_goes_on() {
    let Some(python) = torch_python() else { return };
    let script = root().join("tests/fixtures/external_ncm.py");
    let method = |name: &str, args: &str, timeout: &str| {
        format!(
            "\n[[methods]]\nname = \"{name}\"\nexternal = {{ command = [\"{{python}}\", \"{}\"{args}]{timeout} }}\n",
            script.display()
        )
    };
    let extra = [
        method("fails", ", \"--fail\"", ""),
        method("short", ", \"--bad\", \"test-predictions\"", ""),
        method("negative", ", \"--bad\", \"marginal-likelihood\"", ""),
        method("typo", ", \"--bad\", \"validation-top-1\"", ""),
        method("validation", ", \"--bad\", \"validation-predictions\"", ""),
        method("no-iterations", ", \"--bad\", \"iterations\"", ""),
        method("bad-metric", ", \"--bad\", \"metrics\"", ""),
        method("slow", ", \"--sleep\", \"30\"", ", timeout-seconds = 1"),
        // A wrapper whose child outlives it unless the whole process group is stopped.
        "\n[[methods]]\nname = \"wrapped\"\nexternal = { command = [\"sh\", \"-c\", \"sleep 61.25 & wait\"], timeout-seconds = 1 }\n".to_string(),
        // A stage 2 on a stage 1 whose command wrote a metrics.json that balms refused.
        format!("\n[[methods]]\nname = \"typo-dt\"\nstage1 = \"typo\"\nexternal = {{ command = [\"{{python}}\", \"{}\"] }}\n", script.display()),
    ]
    .concat();
    let dir = tempfile::tempdir().unwrap();
    let text = external_matrix(&python, &extra).replace("seeds = [1, 2]", "seeds = [1]");
    let path = matrix(dir.path(), "x.toml", &text);
    let results = dir.path().join("r");
    let started = std::time::Instant::now();
    let output = run_matrix_with(&path, &results, &["--threads", "1"]);
    assert!(!output.status.success());
    assert!(started.elapsed().as_secs() < 25, "the slow command was stopped at its limit");
    let failed = |method: &str| -> String {
        let dir = results.join(format!("x/digits-lt.if10.{method}/seed-1"));
        assert!(!dir.join("metrics.json").exists(), "{method}");
        read(dir.join("failed.json"))["error"].as_str().unwrap().to_string()
    };
    let e = failed("fails");
    assert!(
        e.contains("failed (exit status: 3)")
            && e.contains("RuntimeError: the stub failed on purpose"),
        "{e}"
    );
    let e = failed("short");
    assert!(e.contains("`test-predictions` has") && e.contains("metrics.json"), "{e}");
    let e = failed("negative");
    assert!(e.contains("`marginal-likelihood` needs 10 finite"), "{e}");
    let e = failed("typo");
    assert!(e.contains("malformed") && e.contains("metrics.json"), "{e}");
    let e = failed("validation");
    assert!(e.contains("`validation-predictions` holds 10, not a class of 0..10"), "{e}");
    let e = failed("no-iterations");
    assert!(e.contains("malformed") && e.contains("missing field `iterations`"), "{e:?}");
    let e = failed("bad-metric");
    assert!(e.contains("`metrics` names `bad name!`"), "{e}");
    let e = failed("slow");
    assert!(e.contains("time limit of 1 s"), "{e}");
    let e = failed("wrapped");
    assert!(e.contains("time limit of 1 s"), "{e}");
    let left = std::process::Command::new("pgrep").args(["-f", "sleep 61.25"]).output().unwrap();
    assert!(left.stdout.is_empty(), "the wrapper's child outlived the time limit");
    let e = failed("typo-dt");
    assert!(e.contains("stage-1 run `digits-lt/if10/typo seed 1` has not finished"), "{e}");
    // The others finished.
    for method in ["softmax", "ncm", "ncm-dt"] {
        let dir = results.join(format!("x/digits-lt.if10.{method}/seed-1"));
        assert!(dir.join("metrics.json").exists(), "{method}: {}", stderr(&output));
    }
}

#[test]
fn external_methods_are_planned_and_checked() {
    let script = root().join("tests/fixtures/external_ncm.py");
    let dir = tempfile::tempdir().unwrap();
    let path = matrix(dir.path(), "x.toml", &external_matrix(Path::new("/usr/bin/python3"), ""));
    let output = run(&["plan", path.to_str().unwrap()]);
    assert!(output.status.success(), "{}", stderr(&output));
    let plan = String::from_utf8_lossy(&output.stdout).into_owned();
    assert!(plan.contains(&format!("external: runs `{{python}} {}`", script.display())), "{plan}");
    // A balms stage 2 cannot load an external stage 1, nor the other way round.
    let text =
        external_matrix(Path::new("python3"), "\n[[methods]]\nname = \"bad\"\nstage1 = \"ncm\"\n");
    let path = matrix(dir.path(), "y.toml", &text);
    let e = stderr(&run(&["plan", path.to_str().unwrap()]));
    assert!(e.contains("method `bad`: its `stage1` is an external method"), "{e}");
    let text = external_matrix(Path::new("python3"), "")
        .replace("stage1 = \"ncm\"", "stage1 = \"softmax\"");
    let path = matrix(dir.path(), "z.toml", &text);
    let e = stderr(&run(&["plan", path.to_str().unwrap()]));
    assert!(e.contains("an external stage 2 needs an external `stage1`"), "{e}");
    // A claim on a named metric compares external methods only.
    let text = external_matrix(Path::new("python3"), "\n[[claims]]\nclaim = \"x\"\nbetter = \"ncm\"\nthan = \"softmax\"\nequivalence-margin = 1.0\nmetric = { named = \"APr\" }\n");
    let path = matrix(dir.path(), "u.toml", &text);
    let e = stderr(&run(&["plan", path.to_str().unwrap()]));
    assert!(
        e.contains("compares a metric external methods report, and `softmax` is balms's own"),
        "{e}"
    );
    let text = external_matrix(Path::new("python3"), "\n[[claims]]\nclaim = \"x\"\nbetter = \"ncm-dt\"\nthan = \"ncm\"\nmetric = { named = \"APr\" }\n");
    let path = matrix(dir.path(), "t.toml", &text);
    // A difference on a named metric (no margin) plans: its own units, the seeds' interval.
    let planned = run(&["plan", path.to_str().unwrap()]);
    assert!(planned.status.success(), "{}", stderr(&planned));
    // An image-list dataset is read from its files batch by batch: refused at plan time.
    let text = external_matrix(Path::new("python3"), "").replace(
        "{ digits-lt = { imbalance = [10] } }",
        "{ imagenet-lt = { crop = 32, resize = 36 } }",
    );
    let path = matrix(dir.path(), "v.toml", &text);
    let e = stderr(&run(&["plan", path.to_str().unwrap()]));
    assert!(
        e.contains("method `ncm` on `imagenet-lt")
            && e.contains("external methods take datasets held in memory"),
        "{e}"
    );
    let text = external_matrix(Path::new("python3"), "")
        .replace("command = [\"{python}\"", "commnd = [\"{python}\"");
    let path = matrix(dir.path(), "w.toml", &text);
    let e = stderr(&run(&["plan", path.to_str().unwrap()]));
    assert!(e.contains("commnd"), "{e}");
}

/// The cross-check `just test` runs: balms's methods and their PyTorch twins
/// (`external/lt_torch.py`, and the README's focal-loss recipe) on the digits, 3 seeds, the same
/// subsets. A change that moves balms away from PyTorch (a loss formula, a default, the schedule,
/// the Meta Sampler's step) moves these means; the committed 10-seed cross-check with its
/// equivalence verdicts is `experiments/fashion_mnist_lt_torch.toml`.
#[test]
fn balms_and_its_pytorch_twins_agree_on_the_digits() {
    let Some(python) = torch_python() else { return };
    let torch = "external = { command = [\"{python}\", \"external/lt_torch.py\"] }";
    let focal = "external = { command = [\"{python}\", \"external/examples/focal_torch.py\", \"--gamma\", \"2\"] }";
    let text = format!(
        r#"name = "twins"
seeds = [1, 2, 3]
python = "{python}"
datasets = [{{ digits-lt = {{ imbalance = [10] }} }}]

[defaults]
model = {{ mlp = {{ hidden = [128, 128] }} }}
epochs = 30
batch-size = 32
optimizer = {{ lr = 0.05, momentum = 0.9, weight-decay = 5e-4 }}
schedule = {{ warmup-epochs = 1 }}
stage2 = {{ iterations = 500, batch-size = 128, optimizer = {{ lr = 0.05 }} }}

[[methods]]
name = "softmax"
[[methods]]
name = "softmax-torch"
{torch}
[[methods]]
name = "balanced-softmax"
loss = "balanced-softmax"
[[methods]]
name = "balanced-softmax-torch"
loss = "balanced-softmax"
{torch}
[[methods]]
name = "focal"
loss = {{ focal = {{ gamma = 2.0 }} }}
[[methods]]
name = "focal-torch"
{focal}
[[methods]]
name = "balms"
stage1 = "softmax"
loss = "balanced-softmax"
sampler = "meta"
[[methods]]
name = "balms-torch"
stage1 = "softmax-torch"
loss = "balanced-softmax"
sampler = "meta"
{torch}
"#,
        python = python.display()
    );
    let dir = tempfile::tempdir().unwrap();
    let path = matrix(dir.path(), "twins.toml", &text);
    let results = dir.path().join("r");
    let output = crate::util::run_command(&path, &results, &["--threads", "2"])
        .current_dir(root())
        .output()
        .unwrap();
    assert!(output.status.success(), "{}", stderr(&output));
    let metrics = |method: &str, seed: u64| {
        read(results.join(format!("twins/digits-lt.if10.{method}/seed-{seed}/metrics.json")))
    };
    let mean = |method: &str, field: &str| {
        (1..=3).map(|s| metrics(method, s)[field].as_f64().unwrap()).sum::<f64>() / 3.0
    };
    for method in ["softmax", "balanced-softmax", "focal", "balms"] {
        let twin = format!("{method}-torch");
        for seed in 1..=3 {
            assert_eq!(metrics(method, seed)["iterations"], metrics(&twin, seed)["iterations"]);
        }
        let gap = 100.0 * (mean(&twin, "top1") - mean(method, "top1"));
        assert!(gap.abs() <= 2.0, "{method}: PyTorch - balms = {gap:+.2} points of top-1");
        let (ours, theirs) = (mean(method, "final-train-loss"), mean(&twin, "final-train-loss"));
        assert!((theirs / ours - 1.0).abs() <= 0.3, "{method}: final loss {ours} vs {theirs}");
    }
    // The Meta Sampler learns the same rates (the mean over seeds, class by class).
    let rates = |method: &str| -> Vec<f64> {
        let rows: Vec<Vec<f64>> = (1..=3)
            .map(|s| {
                serde_json::from_value(
                    metrics(method, s)["meta-rates"].as_array().unwrap().last().unwrap().clone(),
                )
                .unwrap()
            })
            .collect();
        (0..10).map(|c| rows.iter().map(|r| r[c]).sum::<f64>() / 3.0).collect()
    };
    for (c, (a, b)) in rates("balms").iter().zip(rates("balms-torch")).enumerate() {
        assert!((a - b).abs() <= 0.04, "class {c}: rate {a} vs {b}");
    }
    // The recipe's row is reported like any other.
    let paper = dir.path().join("paper");
    let (m, r, p) = (path.to_str().unwrap(), results.to_str().unwrap(), paper.to_str().unwrap());
    assert!(run(&["report", m, "--results", r, "--paper", p]).status.success());
    let report = std::fs::read_to_string(paper.join("twins.md")).unwrap();
    assert!(report.contains("| focal-torch "), "{report}");
}

/// Every tensor of a freshly built balms network drawn as torch draws `lt_torch`'s: constants equal
/// (batch norm's weight 1 and bias 0, its running statistics), random ones of the same range and
/// spread (standard deviation within 10% where there are 1,000 or more values, mean within 4
/// standard errors).
fn same_initialisation(
    python: &Path,
    vs: &tch::nn::VarStore,
    json: &str,
    shape: [i64; 3],
    dir: &Path,
) {
    let out = dir.join("init.json");
    let status = std::process::Command::new(python)
        .arg(root().join("tests/fixtures/lt_torch_forward.py"))
        .args([json, &format!("{shape:?}"), "5", "--init"])
        .arg(&out)
        .status()
        .unwrap();
    assert!(status.success(), "{json}: torch's initialisation");
    let torch = read(&out);
    let ours = vs.variables();
    let mut names: Vec<&String> = ours.keys().collect();
    names.sort();
    let theirs: Vec<&String> = torch.as_object().unwrap().keys().collect();
    assert_eq!(names, theirs, "{json}: tensor names");
    for (name, tensor) in &ours {
        let t: Vec<f64> = serde_json::from_value(torch[name].clone()).unwrap();
        let (n, mean, std, min, max) = (t[0], t[1], t[2], t[3], t[4]);
        let values =
            Vec::<f64>::try_from(tensor.to_kind(tch::Kind::Double).flatten(0, -1)).unwrap();
        let our_mean = values.iter().sum::<f64>() / n;
        let our_std = (values.iter().map(|v| (v - our_mean).powi(2)).sum::<f64>()
            / (n - 1.0).max(1.0))
        .sqrt();
        let our_min = values.iter().copied().fold(f64::INFINITY, f64::min);
        let our_max = values.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        let context = format!("{json} `{name}`: ours mean {our_mean} std {our_std} in [{our_min}, {our_max}], torch's mean {mean} std {std} in [{min}, {max}]");
        if std == 0.0 {
            // Constants: every value the same, and torch's (to float precision).
            assert!(our_std == 0.0 && (our_mean - mean).abs() < 1e-7, "{context}");
        } else if n >= 1000.0 {
            assert!((our_std / std - 1.0).abs() < 0.1, "{context}");
            assert!((our_mean - mean).abs() < 4.0 * std / n.sqrt(), "{context}");
        } else {
            // Few values: the same bounds (uniform draws) or spread within a factor of 2.
            assert!(
                our_min >= min.min(-max.abs()) * 1.5 && our_max <= max.max(-min) * 1.5,
                "{context}"
            );
        }
    }
}

/// `lt_torch.py`'s networks are balms's: balms's weights (batch-norm statistics moved by a few
/// training passes) loaded into `lt_torch`'s MLP, small CNN and ResNet-32 give balms's logits, in
/// training mode and in eval mode. Layer names, shapes, the option-A shortcut, pooling and the
/// flattening order all have to agree for that; the training cross-checks then compare only
/// what each implementation does with the same architecture.
#[test]
fn lt_torch_networks_are_balms_networks() {
    use balms::model::{ClassifierSpec, ModelSpec, Network, Phase};
    use tch::{nn, Device, Kind, Tensor};

    let Some(python) = torch_python() else { return };
    let dir = tempfile::tempdir().unwrap();
    let cases: [(ModelSpec, &str, [i64; 3]); 4] = [
        (ModelSpec::Mlp { hidden: vec![16, 8] }, r#"{"mlp": {"hidden": [16, 8]}}"#, [1, 28, 28]),
        (ModelSpec::SmallCnn, r#""small-cnn""#, [1, 28, 28]),
        (ModelSpec::Resnet32, r#""resnet32""#, [3, 32, 32]),
        (ModelSpec::Resnet32, r#""resnet32""#, [1, 28, 28]),
    ];
    for (spec, json, shape) in cases {
        tch::manual_seed(3);
        let vs = nn::VarStore::new(Device::Cpu);
        let network = Network::new(&vs.root(), &spec, ClassifierSpec::Linear, &shape, 5);
        same_initialisation(&python, &vs, json, shape, dir.path());
        let batch = |seed: i64| {
            tch::manual_seed(seed);
            Tensor::randn([6, shape[0], shape[1], shape[2]], (Kind::Float, Device::Cpu))
        };
        tch::no_grad(|| {
            for seed in [10, 11] {
                let _ = network.logits(&batch(seed), Phase::Train);
            }
        });
        let x = batch(12);
        let weights = dir.path().join("weights.npz");
        let variables: Vec<(String, Tensor)> = vs.variables().into_iter().collect();
        Tensor::write_npz(&variables, &weights).unwrap();
        let input = dir.path().join("input.npz");
        Tensor::write_npz(&[("x", &x)], &input).unwrap();
        let out = dir.path().join("out.npz");
        let shape_json = format!("{shape:?}");
        let status = std::process::Command::new(&python)
            .arg(root().join("tests/fixtures/lt_torch_forward.py"))
            .args([json, &shape_json, "5"])
            .args([&weights, &input, &out])
            .status()
            .unwrap();
        assert!(status.success(), "{json} on {shape:?}");
        let theirs: std::collections::HashMap<String, Tensor> =
            Tensor::read_npz(&out).unwrap().into_iter().collect();
        // Eval first: a training-mode pass moves balms's running statistics (lt_torch's runs on
        // a copy).
        for (mode, phase) in [("eval", Phase::Eval), ("train", Phase::Train)] {
            let ours = tch::no_grad(|| network.logits(&x, phase));
            let reference = &theirs[mode];
            let diff = (&ours - reference).abs().max().double_value(&[]);
            let scale = reference.abs().max().double_value(&[]);
            assert!(scale > 0.01, "{json} {mode}: logits trivially small ({scale})");
            assert!(
                diff < 1e-4 * scale.max(1.0),
                "{json} on {shape:?}, {mode}: max |diff| {diff:e}, scale {scale}"
            );
        }
    }
}

//! Cost of the Meta Sampler and Meta Reweighter: the time of a stage-2 iteration relative to a
//! plain stage-2 iteration (Balanced Softmax, instance sampling), measured in one process on the
//! same frozen features. Run with `just bench` (or `cargo bench --bench stage2_meta`).
//!
//! The data is the seeded Gaussian mixture at the size of the Fashion-MNIST-LT stand-in at IF 10
//! (10 classes, 24,516 training instances), behind the stand-in's MLP (256-d features); stage 2
//! uses the official CIFAR batch of 512. Reported: seconds per iteration of each method (wall
//! time of the whole stage-2 run, features included, divided by its iterations) and the ratio to
//! the plain method, and the speed-up of computing the frozen backbone's features once instead of
//! for every batch (`stage2.features = "per-batch"`, the official code's way). A ratio is the
//! result; absolute times depend on the machine.

use std::fmt::Write as _;
use std::path::Path;

use balms::data::DataLocator;
use balms::matrix::Plan;
use balms::runner::{run_plan, RunOptions};
use balms::store::Store;

const MATRIX: &str = r#"
name = "bench"
seeds = [1]
datasets = [{ gaussian-lt = { imbalance = [10], mixture = { classes = 10, dim = 64, train-per-class = 6000, test-per-class = 100 } } }]

[defaults]
model = { mlp = { hidden = [256, 256] } }
epochs = 1
batch-size = 256
stage2 = { iterations = 200, batch-size = 512, optimizer = { lr = 0.1 } }

[[methods]]
name = "softmax"

[[methods]]
name = "plain"
stage1 = "softmax"
loss = "balanced-softmax"

[[methods]]
name = "meta-sampler"
stage1 = "softmax"
loss = "balanced-softmax"
sampler = "meta"

[[methods]]
name = "meta-reweighter"
stage1 = "softmax"
loss = "balanced-softmax"
sampler = "meta-reweighter"

[[methods]]
name = "plain-per-batch"
stage1 = "softmax"
loss = "balanced-softmax"
stage2 = { features = "per-batch" }

[[methods]]
name = "meta-sampler-per-batch"
stage1 = "softmax"
loss = "balanced-softmax"
sampler = "meta"
stage2 = { features = "per-batch" }
"#;

/// Seconds per iteration of a finished run, from its log's end record and metrics.
fn per_iteration(results: &Path, method: &str) -> f64 {
    let dir = results.join(format!("bench/gaussian-lt.if10.{method}/seed-1"));
    let log = std::fs::read_to_string(dir.join("log.jsonl")).expect("log");
    let end: serde_json::Value = log
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .find(|v| v["type"] == "end")
        .expect("end record");
    let metrics: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("metrics.json")).expect("metrics"))
            .expect("json");
    let iterations = metrics["iterations"].as_u64().expect("iterations") as f64;
    end["seconds"].as_f64().expect("seconds") / iterations
}

#[expect(clippy::print_stdout, reason = "a benchmark prints its table")]
fn main() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let path = dir.path().join("bench.toml");
    std::fs::write(&path, MATRIX)?;
    let plan = Plan::load(&path)?;
    let threads = 2;
    tch::set_num_threads(threads);
    let options = RunOptions {
        store: Store::new(dir.path().join("results")),
        device: tch::Device::Cpu,
        threads,
        locator: DataLocator::default(),
        progress: false,
        jobs: 1,
        worker_exe: None,
        shard: None,
    };
    run_plan(&plan, &options)?;
    let results = dir.path().join("results");
    let plain_cost = per_iteration(&results, "plain");
    let mut report = format!(
        "# Stage-2 iteration cost ({})\n\nbatch 512, N = 24,516, 10 classes, 256-d features, {threads} threads, CPU, {}\n\n| method | ms/iteration | vs plain |\n|---|---:|---:|\n",
        balms::bench::utc_date(),
        std::fs::read_to_string("/proc/cpuinfo")
            .ok()
            .and_then(|c| c.lines().find(|l| l.starts_with("model name")).map(|l| l.split(':').nth(1).unwrap_or("").trim().to_string()))
            .unwrap_or_default()
    );
    for method in
        ["plain", "meta-sampler", "meta-reweighter", "plain-per-batch", "meta-sampler-per-batch"]
    {
        let t = per_iteration(&results, method);
        let _ = writeln!(report, "| {method} | {:.2} | {:.2}x |", 1e3 * t, t / plain_cost);
    }
    let cache =
        |m: &str| per_iteration(&results, &format!("{m}-per-batch")) / per_iteration(&results, m);
    let _ = writeln!(
        report,
        "\nFeatures computed once instead of per batch: {:.2}x faster (plain), {:.2}x (meta sampler).",
        cache("plain"),
        cache("meta-sampler")
    );
    print!("{report}");
    let out = Path::new("results/bench/stage2-meta.md");
    balms::store::write_atomic(out, report.as_bytes())?;
    Ok(())
}

//! Cost of the Meta Sampler and Meta Reweighter: the time of a stage-2 iteration relative to a
//! plain stage-2 iteration (Balanced Softmax, instance sampling), measured in one process on the
//! same frozen features. Run with `just bench` (or `cargo bench --bench stage2_meta`); on a GPU
//! with `BALMS_BENCH_DEVICE=cuda` (and `BALMS_BENCH_THREADS`, default 2), writing
//! `stage2-meta-cuda.md` instead of `stage2-meta.md` (`BALMS_BENCH_OUT` overrides the folder).
//!
//! Two sizes, each with its own plain baseline:
//! - the Fashion-MNIST-LT stand-in at IF 10 (seeded Gaussian mixture, 10 classes, N = 24,516,
//!   MLP 256-256, 256-d features), 200 and 400 iterations with the exact draw, 3,000 and 6,000
//!   for the others (so that the plain difference is timed over most of a second); also the speed-up of computing the frozen
//!   backbone's features once instead of for every batch (`stage2.features = "per-batch"`, the
//!   official code's way);
//! - ImageNet-LT-like (1,000 classes and N = 115,740 as ImageNet-LT's 115,846, but from 540 to
//!   5 per class on the Gaussian mixture's exponential profile; MLP 512, 512-d features), 30
//!   and 60 iterations with the exact draw, 200 and 400 for the others.
//!
//! Stage 2 uses the official batch of 512. Reported: milliseconds per iteration of each method
//! (the difference in wall time between its two runs over their difference in iterations: the
//! iterations alone, without what a run pays once, such as computing the features, set-up and
//! evaluation), after an untimed plain warm-up run, and the ratio to the plain method; each draw
//! alone at the small size (the exact one per exponential variate, beside the same bytes drawn one
//! row at a time, the same draw right after a libtorch operation, and one raw 64-bit word of its
//! generator; the order-statistics one per iteration). A ratio is the result; absolute times
//! depend on the machine; one run of the bench against the next, ratios move by up to about 15%.

use std::fmt::Write as _;
use std::path::Path;

use std::time::Instant;

use balms::data::DataLocator;
use balms::device::DeviceChoice;
use balms::matrix::Plan;
use balms::runner::{run_plan, RunOptions};
use balms::sampler::gumbel_draw::{summaries, NoiseDraw, RowSummary};
use balms::store::Store;
use rand::{Rng, RngCore, SeedableRng};

/// A timed stage-2 method: name, sampler (TOML), stage-2 settings besides the iterations (TOML,
/// may be empty) and iterations of its shorter run.
type Timed = (&'static str, &'static str, &'static str, u32);

/// The Meta Sampler with the exact draw (the order-statistics one is added by [`timed`]).
const EXACT: &str = "\"meta\"";

/// The methods both sizes time: plain stage 2, the Meta Sampler with each draw and the Meta
/// Reweighter; the exact draw's shorter run takes `exact` stage-2 iterations, the others `cheap`
/// (more, so that their short iterations are timed over most of a second or more).
fn timed(cheap: u32, exact: u32) -> Vec<Timed> {
    vec![
        ("plain", "\"instance\"", "", cheap),
        ("meta-sampler", EXACT, "", exact),
        ("meta-sampler-order-statistics", "{ meta = { draw = \"order-statistics\" } }", "", cheap),
        ("meta-reweighter", "\"meta-reweighter\"", "", cheap),
    ]
}

/// The end-to-end backbone, a plain stage-2 warm-up run (not timed: the first stage-2 run pays
/// for what warms up), and each timed method twice, at its iterations and at twice as many: the
/// two runs' difference in wall time is the cost of that many iterations alone, without what a
/// run pays once (features, set-up, evaluation), which would otherwise add most to the cheapest
/// iterations, the plain ones that every ratio divides by.
fn methods(timed: &[Timed]) -> String {
    let mut toml = String::from(
        "\n[[methods]]\nname = \"softmax\"\n\n[[methods]]\nname = \"warm-up\"\nstage1 = \"softmax\"\nloss = \"balanced-softmax\"\nstage2 = { iterations = 1000 }\n",
    );
    for &(name, sampler, stage2, iterations) in timed {
        for (suffix, iterations) in [("", iterations), ("-long", 2 * iterations)] {
            let _ = write!(
                toml,
                "\n[[methods]]\nname = \"{name}{suffix}\"\nstage1 = \"softmax\"\nloss = \"balanced-softmax\"\nsampler = {sampler}\nstage2 = {{ iterations = {iterations}{stage2} }}\n"
            );
        }
    }
    toml
}

/// The Fashion-MNIST-LT-sized matrix, before [`methods`] of [`timed`]`(3000, 200)` and the
/// per-batch features.
const SMALL: &str = r#"
name = "bench"
seeds = [1]
datasets = [{ gaussian-lt = { imbalance = [10], mixture = { classes = 10, dim = 64, train-per-class = 6000, test-per-class = 100 } } }]

[defaults]
model = { mlp = { hidden = [256, 256] } }
epochs = 1
batch-size = 256
stage2 = { batch-size = 512, optimizer = { lr = 0.1 } }
"#;

/// The ImageNet-LT-like matrix, before [`methods`] of [`timed`]`(200, 30)`.
const LARGE: &str = r#"
name = "bench-large"
seeds = [1]
datasets = [{ gaussian-lt = { imbalance = [100], mixture = { classes = 1000, dim = 64, train-per-class = 540, test-per-class = 5 } } }]

[defaults]
model = { mlp = { hidden = [512] } }
epochs = 1
batch-size = 512
stage2 = { batch-size = 512, optimizer = { lr = 0.1 } }
"#;

/// Wall seconds and stage-2 iterations of a finished run, from its log's end record and metrics.
fn run_time(results: &Path, cell: &str, method: &str) -> (f64, f64) {
    let dir = results.join(format!("{cell}.{method}/seed-1"));
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
    (end["seconds"].as_f64().expect("seconds"), iterations)
}

/// Runs `matrix` (with [`methods`]`(timed)`) in `dir` and returns the milliseconds per iteration
/// of each timed method: the difference between its two runs over their difference in
/// iterations.
fn iteration_costs(
    dir: &Path,
    matrix: &str,
    cell: &str,
    timed: &[Timed],
    options: &RunOptions,
) -> anyhow::Result<Vec<(String, f64)>> {
    let path = dir.join(format!("{}.toml", cell.replace('/', "-")));
    std::fs::write(&path, format!("{matrix}{}", methods(timed)))?;
    run_plan(&Plan::load(&path)?, options)?;
    let results = dir.join("results");
    Ok(timed
        .iter()
        .map(|&(name, ..)| {
            let (short, short_iterations) = run_time(&results, cell, name);
            let (long, long_iterations) = run_time(&results, cell, &format!("{name}-long"));
            (name.to_string(), 1e3 * (long - short) / (long_iterations - short_iterations))
        })
        .collect())
}

/// Each draw alone at the small size: the exact draw's nanoseconds per exponential variate on 1
/// and on `threads` threads (the best of 3), beside the same draw one row at a time (the
/// reference: `Xoshiro256PlusPlus` and `Exp1` per variate, as balms drew it before rows went four
/// at a time; checked equal) and on `threads` threads each right after a libtorch operation on
/// `threads` threads (the mean of 5: as in a stage-2 iteration, where libtorch's OpenMP threads
/// are still spinning when the draw starts), one iteration's rows and eight iterations' rows at
/// a time (as stage 2 draws them); the order-statistics draw's milliseconds per
/// iteration on `threads` threads; one raw 64-bit word of Xoshiro256++ in nanoseconds.
struct DrawCosts {
    variates: f64,
    exact_one: f64,
    exact_many: f64,
    one_row_at_a_time: f64,
    after_libtorch: f64,
    after_libtorch_eight: f64,
    order_statistics_ms: f64,
    word: f64,
}

impl DrawCosts {
    /// The report's paragraph on each draw alone, on `threads` threads.
    fn sentence(&self, threads: usize) -> String {
        let d = self;
        format!(
            "\nEach draw alone (host, small size). The exact draw, {:.2}M exponentials per iteration: \
             {:.2} ns per exponential on 1 thread and {:.2} ns on {threads} ({:.1} ms per iteration), \
             against {:.2} ns for the same bytes one row at a time on 1 thread ({:.2}x), and {:.2} ns \
             for one raw 64-bit word of its generator (Xoshiro256++). Right after a libtorch operation, \
             as in a stage-2 iteration, on {threads} threads (mean of 5): {:.2} ns ({:.1} ms) drawing one \
             iteration's rows, libtorch's idle OpenMP threads spinning on the same cores, and {:.2} ns \
             ({:.1} ms per iteration) drawing eight iterations' rows at once, as stage 2 does. Per variate the draw reads \
             two edges of a 2 KiB table (in L1 cache) and writes nothing, so the generator and the \
             per-variate work (ziggurat, reciprocal, running sums) bound it, not memory bandwidth. The order-statistics draw: {:.2} ms per iteration on {threads} threads.\n",
            d.variates / 1e6,
            d.exact_one,
            d.exact_many,
            d.exact_many * d.variates / 1e6,
            d.one_row_at_a_time,
            d.one_row_at_a_time / d.exact_one,
            d.word,
            d.after_libtorch,
            d.after_libtorch * d.variates / 1e6,
            d.after_libtorch_eight,
            d.after_libtorch_eight * d.variates / 1e6,
            d.order_statistics_ms
        )
    }
}

/// The exact draw one row at a time (the reference of [`DrawCosts`]): per row and class, the
/// largest Gumbel value, its position and `ln sum 1 / E`.
fn one_row_at_a_time(sizes: &[usize], rows: usize) -> Vec<RowSummary> {
    (0..rows)
        .map(|b| {
            let mut rng = rand_xoshiro::Xoshiro256PlusPlus::seed_from_u64(
                balms::seed::Seed(1).derive(&format!("row/{b}")),
            );
            let mut row = RowSummary { max: Vec::new(), position: Vec::new(), lse: Vec::new() };
            for &n in sizes {
                let (mut best, mut position, mut sum) = (f64::INFINITY, 0, 0.0);
                for i in 0..n {
                    let e: f64 = rng.sample(rand_distr::Exp1);
                    if e < best {
                        (best, position) = (e, i);
                    }
                    sum += 1.0 / e;
                }
                row.max.push(-best.ln());
                row.position.push(position);
                row.lse.push(f64::ln(sum));
            }
            row
        })
        .collect()
}

fn draw_costs(threads: usize) -> DrawCosts {
    let sizes = balms::data::longtail::profile(6000, 10.0, 10);
    let variates = (sizes.iter().sum::<usize>() * 512) as f64;
    let timed = |f: &dyn Fn()| {
        let start = Instant::now();
        f();
        start.elapsed().as_secs_f64()
    };
    let draw_rows = |rows, draw, threads| {
        let drawn = summaries(&sizes, rows, (1, 0), 1.0, draw, threads);
        assert_eq!(drawn.len(), rows);
    };
    let draw = |draw, threads| draw_rows(512, draw, threads);
    let best_of_3 = |f: &dyn Fn()| (0..3).map(|_| timed(f)).fold(f64::INFINITY, f64::min);
    let reference = one_row_at_a_time(&sizes, 512);
    assert!(
        summaries(&sizes, 512, (1, 0), 1.0, NoiseDraw::Exact, threads) == reference,
        "the exact draw differs from one row at a time"
    );
    let one_row_at_a_time = best_of_3(&|| {
        std::hint::black_box(one_row_at_a_time(&sizes, 512));
    });
    let libtorch = || {
        let a = tch::Tensor::ones([512, 512], (tch::Kind::Float, tch::Device::Cpu));
        std::hint::black_box((a.matmul(&a) * 2.0).sum(tch::Kind::Float).double_value(&[]));
    };
    let after_libtorch = |rows| {
        (0..5)
            .map(|_| {
                libtorch();
                timed(&|| draw_rows(rows, NoiseDraw::Exact, threads))
            })
            .sum::<f64>()
            / 5.0
            * 512.0
            / rows as f64
    };
    let mut rng = rand_xoshiro::Xoshiro256PlusPlus::seed_from_u64(1);
    let start = Instant::now();
    let words = 50_000_000u64;
    let mut acc = 0u64;
    for _ in 0..words {
        acc = acc.wrapping_add(rng.next_u64());
    }
    std::hint::black_box(acc);
    let word = start.elapsed().as_secs_f64() * 1e9 / words as f64;
    let per_variate = |seconds: f64| seconds * 1e9 / variates;
    DrawCosts {
        variates,
        exact_one: per_variate(best_of_3(&|| draw(NoiseDraw::Exact, 1))),
        exact_many: per_variate(best_of_3(&|| draw(NoiseDraw::Exact, threads))),
        one_row_at_a_time: per_variate(one_row_at_a_time),
        after_libtorch: per_variate(after_libtorch(512)),
        after_libtorch_eight: per_variate(after_libtorch(8 * 512)),
        order_statistics_ms: best_of_3(&|| draw(NoiseDraw::OrderStatistics, threads)) * 1e3,
        word,
    }
}

#[expect(clippy::print_stdout, reason = "a benchmark prints its table")]
fn main() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let device = std::env::var("BALMS_BENCH_DEVICE").unwrap_or_else(|_| "cpu".to_string());
    let threads: usize =
        std::env::var("BALMS_BENCH_THREADS").ok().and_then(|t| t.parse().ok()).unwrap_or(2);
    tch::set_num_threads(i32::try_from(threads)?);
    balms::device::register_cuda();
    let choice = match device.as_str() {
        "cpu" => DeviceChoice::Cpu,
        "cuda" => DeviceChoice::Cuda,
        other => anyhow::bail!("BALMS_BENCH_DEVICE = `{other}`: expected `cpu` or `cuda`"),
    };
    let options = RunOptions {
        store: Store::new(dir.path().join("results")),
        device: balms::device::resolve(choice)?,
        threads: i32::try_from(threads)?,
        locator: DataLocator::default(),
        progress: false,
        jobs: 1,
        worker_exe: None,
        shard: None,
        scale: None,
    };
    let mut small_timed = timed(3000, 200);
    small_timed.push(("plain-per-batch", "\"instance\"", ", features = \"per-batch\"", 3000));
    small_timed.push(("meta-sampler-per-batch", EXACT, ", features = \"per-batch\"", 200));
    let small =
        iteration_costs(dir.path(), SMALL, "bench/gaussian-lt.if10", &small_timed, &options)?;
    let large = iteration_costs(
        dir.path(),
        LARGE,
        "bench-large/gaussian-lt.if100",
        &timed(200, 30),
        &options,
    )?;
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|c| {
            c.lines()
                .find(|l| l.starts_with("model name"))
                .map(|l| l.split(':').nth(1).unwrap_or("").trim().to_string())
        })
        .unwrap_or_default();
    let mut report = format!(
        "# Stage-2 iteration cost ({}, device {device}, {threads} host threads, host CPU {cpu})\n",
        balms::bench::utc_date()
    );
    for (title, rows) in [
        ("Fashion-MNIST-LT IF 10 size: N = 24,516, 10 classes, 256-d features, batch 512", &small),
        ("ImageNet-LT-like size: N = 115,740 (540 to 5 per class), 1,000 classes, 512-d features, batch 512", &large),
    ] {
        let _ = write!(
            report,
            "\n## {title}\n\n| method | ms/iteration | vs plain |\n|---|---:|---:|\n"
        );
        let plain = rows[0].1;
        for (method, ms) in rows {
            let _ = writeln!(report, "| {method} | {ms:.2} | {:.2}x |", ms / plain);
        }
    }
    let cost = |m: &str| small.iter().find(|(n, _)| n == m).expect("measured").1;
    let _ = writeln!(
        report,
        "\nFeatures computed once instead of per batch: iterations {:.2}x faster (plain), {:.2}x \
         (meta sampler), besides the one pass over the training set that computing them once costs.",
        cost("plain-per-batch") / cost("plain"),
        cost("meta-sampler-per-batch") / cost("meta-sampler")
    );
    report.push_str(&draw_costs(threads).sentence(threads));
    print!("{report}");
    let folder = std::env::var("BALMS_BENCH_OUT").unwrap_or_else(|_| "results/bench".to_string());
    let name = if device == "cpu" { "stage2-meta.md" } else { "stage2-meta-cuda.md" };
    balms::store::write_atomic(&Path::new(&folder).join(name), report.as_bytes())?;
    Ok(())
}

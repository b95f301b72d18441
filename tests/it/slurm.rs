//! Beyond one process: `--shard I/N` covers a matrix exactly once, a killed worker's run is
//! redone with nothing lost or doubled, and a real Slurm job array reproduces a single-process run.

use std::fmt::Write as _;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use crate::util::{
    balms, children, digits_matrix, files_named, matrix, metrics_files, run_matrix_with, stderr,
};

fn run_args(matrix_path: &Path, results: &Path, extra: &[&str]) -> std::process::Output {
    run_matrix_with(matrix_path, results, &[&["--threads", "1"], extra].concat())
}

fn count_files(dir: &Path, name: &str) -> usize {
    files_named(dir, name).len()
}

#[test]
fn shards_cover_the_matrix_exactly_once() {
    let dir = tempfile::tempdir().unwrap();
    let path = matrix(dir.path(), "m.toml", &digits_matrix("shard", "[1, 2]", 0.05));
    let (single, sharded) = (dir.path().join("single"), dir.path().join("sharded"));
    assert!(run_args(&path, &single, &[]).status.success());
    let mut trained = 0;
    for i in 0..3 {
        let output = run_args(&path, &sharded, &["--shard", &format!("{i}/3")]);
        let message = stderr(&output);
        assert!(output.status.success(), "{message}");
        // "matrix `shard`: N trained, ..."
        let n: usize =
            message.split(": ").last().unwrap().split(' ').next().unwrap().parse().unwrap();
        trained += n;
    }
    // 2 seeds x 3 methods, each trained once; the decoupled run found its backbone in its shard.
    assert_eq!(trained, 6);
    assert_eq!(metrics_files(&sharded), metrics_files(&single));
    assert_eq!(count_files(&sharded, "lease.json"), 0);
    let bad = run_args(&path, &sharded, &["--shard", "3/3"]);
    assert!(stderr(&bad).contains("`3/3` is not I/N with 0 <= I < N"), "{}", stderr(&bad));
}

/// The process ids in the `lease.json` files under `dir`.
fn leases(dir: &Path) -> Vec<u32> {
    files_named(dir, "lease.json")
        .iter()
        .filter_map(|path| {
            let holder: serde_json::Value =
                serde_json::from_str(&std::fs::read_to_string(path).ok()?).ok()?;
            u32::try_from(holder["pid"].as_u64()?).ok()
        })
        .collect()
}

#[test]
fn a_killed_worker_leaves_nothing_that_counts_and_the_rerun_completes_once() {
    let dir = tempfile::tempdir().unwrap();
    // Longer runs (60 epochs) so that a worker can be killed in the middle of one.
    let text = digits_matrix("kill", "[1, 2]", 0.05).replace("epochs = 8", "epochs = 60");
    let path = matrix(dir.path(), "m.toml", &text);
    let (reference, results) = (dir.path().join("reference"), dir.path().join("r"));
    assert!(run_args(&path, &reference, &["--jobs", "2"]).status.success());

    let parent = balms(&[
        "run",
        path.to_str().unwrap(),
        "--device",
        "cpu",
        "--threads",
        "1",
        "--jobs",
        "2",
        "--no-progress",
        "--results",
        results.to_str().unwrap(),
    ])
    .stderr(std::process::Stdio::piped())
    .spawn()
    .unwrap();
    // Wait for a first finished run, then kill the worker that holds a run's lease: mid-run.
    let started = Instant::now();
    let victim = loop {
        let workers = children(parent.id());
        let holder = leases(&results).into_iter().find(|pid| workers.contains(pid));
        if let (true, Some(pid)) = (count_files(&results, "metrics.json") >= 1, holder) {
            break pid;
        }
        assert!(started.elapsed() < Duration::from_secs(120), "no worker was seen mid-run");
        std::thread::sleep(Duration::from_millis(10));
    };
    let killed = Command::new("kill").args(["-9", &victim.to_string()]).status().unwrap();
    assert!(killed.success());
    let output = parent.wait_with_output().unwrap();
    let message = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success(), "{message}");
    assert!(message.contains("its worker process exited"), "{message}");
    // The killed run left a lease of a dead process and no result; the rerun takes it over.
    assert!(count_files(&results, "metrics.json") < 6);
    let rerun = run_args(&path, &results, &["--jobs", "2"]);
    assert!(rerun.status.success(), "{}", stderr(&rerun));
    assert_eq!(metrics_files(&results), metrics_files(&reference));
    assert_eq!(count_files(&results, "lease.json"), 0);
    assert_eq!(count_files(&results, "failed.json"), 0);
}

#[test]
fn slurm_script_is_valid_shell_and_quotes_every_value() {
    let dir = tempfile::tempdir().unwrap();
    let odd = dir.path().join("a b's");
    std::fs::create_dir_all(&odd).unwrap();
    let path = matrix(&odd, "m.toml", &digits_matrix("quoted", "[1, 2]", 0.05));
    let script = odd.join("submit.sh");
    let output = balms(&[
        "slurm",
        path.to_str().unwrap(),
        "--out",
        script.to_str().unwrap(),
        "--max-running",
        "2",
        "--partition",
        "gpu; rm -rf /",
        "--results",
        odd.join("r").to_str().unwrap(),
    ])
    .current_dir(&odd)
    .output()
    .unwrap();
    assert!(output.status.success(), "{}", stderr(&output));
    let text = std::fs::read_to_string(&script).unwrap();
    assert!(text.contains("--array='0-3%2'"), "{text}");
    assert!(text.contains("--partition='gpu; rm -rf /'"), "{text}");
    assert!(text.contains("a b'\\''s/r'"), "{text}");
    assert!(text.contains("--dependency=\"afterok:${array%%;*}\""), "{text}");
    let syntax = Command::new("bash").arg("-n").arg(&script).output().unwrap();
    assert!(syntax.status.success(), "{}", String::from_utf8_lossy(&syntax.stderr));
}

/// Whether a Slurm cluster answers here; `BALMS_REQUIRE_SLURM` (set in CI) makes its absence an
/// error instead of a skip.
fn slurm_available() -> bool {
    let up = Command::new("sinfo").arg("-h").output().is_ok_and(|o| o.status.success());
    assert!(
        up || std::env::var_os("BALMS_REQUIRE_SLURM").is_none(),
        "BALMS_REQUIRE_SLURM is set but `sinfo` fails (see scripts/slurm-local.sh)"
    );
    up
}

#[test]
fn a_slurm_job_array_reproduces_a_single_process_run() {
    if !slurm_available() {
        eprintln!("skipping: no Slurm cluster (`sinfo` fails); scripts/slurm-local.sh starts one");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let name = format!("slurm{}", std::process::id());
    let mut text = digits_matrix(&name, "[1, 2]", 0.05);
    // External methods too (the nearest-class-mean stub and a stage 2 on it), where PyTorch's
    // interpreter is here: the array's tasks run their commands like any run.
    let external = crate::util::torch_python().map(|python| {
        let script = crate::util::root().join("tests/fixtures/external_ncm.py");
        let command =
            format!("external = {{ command = [\"{{python}}\", \"{}\"] }}", script.display());
        text = text.replacen(
            "\n[defaults]",
            &format!("python = \"{}\"\n\n[defaults]", python.display()),
            1,
        );
        for (name, stage1) in [("ncm", ""), ("ncm-dt", "stage1 = \"ncm\"\n")] {
            let _ = write!(text, "\n[[methods]]\nname = \"{name}\"\n{stage1}{command}\n");
        }
    });
    let path = matrix(dir.path(), "m.toml", &text);
    let single = dir.path().join("single");
    // From the folder the array's tasks run in: external records key their scripts' hashes by
    // path relative to the working folder.
    let output = crate::util::run_command(&path, &single, &["--threads", "1"])
        .current_dir(dir.path())
        .output()
        .unwrap();
    assert!(output.status.success(), "{}", stderr(&output));
    let script = dir.path().join("submit.sh");
    let output =
        balms(&["slurm", path.to_str().unwrap(), "--cpus", "1", "--out", script.to_str().unwrap()])
            .current_dir(dir.path())
            .output()
            .unwrap();
    assert!(output.status.success(), "{}", stderr(&output));
    let submitted = Command::new("bash").arg(&script).current_dir(dir.path()).output().unwrap();
    assert!(submitted.status.success(), "{}", String::from_utf8_lossy(&submitted.stderr));
    let started = Instant::now();
    loop {
        let queue = Command::new("squeue").args(["-h", "-o", "%j"]).output().unwrap();
        let text = String::from_utf8_lossy(&queue.stdout);
        if !text.lines().any(|l| l.contains(&name)) {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(300),
            "the Slurm jobs did not finish:\n{text}"
        );
        std::thread::sleep(Duration::from_millis(500));
    }
    let logs = std::fs::read_dir(dir.path().join("slurm-logs")).map_or(0, Iterator::count);
    let shards = if external.is_some() { 6 } else { 4 };
    assert_eq!(logs, shards + 1, "{shards} shards and a report job should have logged");
    let results = metrics_files(&dir.path().join("results"));
    assert_eq!(results, metrics_files(&single));
    // Their records (the commands' own out/metrics.json are among the files compared too).
    let externals = results
        .iter()
        .filter(|(p, _)| {
            p.to_string_lossy().contains(".ncm") && !p.to_string_lossy().contains("/out/")
        })
        .count();
    assert_eq!(externals, if external.is_some() { 4 } else { 0 });
    // The report job ran after the array (afterok).
    assert!(dir.path().join(format!("paper/{name}.md")).is_file());
}

#[test]
fn a_matrix_asks_slurm_for_its_resources_and_flags_win() {
    let path = crate::util::root().join("experiments/lvis_table4.toml");
    let script = |extra: &[&str]| {
        let mut args = vec!["slurm", path.to_str().unwrap()];
        args.extend(extra);
        let output = crate::util::run(&args);
        assert!(output.status.success(), "{}", crate::util::stderr(&output));
        let text = String::from_utf8_lossy(&output.stdout).to_string();
        // The GPUs are detectron2's: balms itself runs on the CPU.
        assert!(text.contains("--device cpu"), "{text}");
        text.lines().find(|l| l.contains("--array=")).unwrap().to_string()
    };
    let own = script(&[]);
    for wanted in ["--gres='gpu:8'", "--time='4-00:00:00'", "--mem='240G'", "--cpus-per-task='32'"]
    {
        assert!(own.contains(wanted), "{wanted}: {own}");
    }
    let flagged = script(&["--gpus", "2", "--time", "1:00:00"]);
    assert!(
        flagged.contains("--gres='gpu:2'") && flagged.contains("--time='1:00:00'"),
        "{flagged}"
    );
    assert!(flagged.contains("--mem='240G'"), "{flagged}");
}

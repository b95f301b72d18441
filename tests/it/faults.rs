//! The runner under faults: signals to a real child process, a parent killed under `--jobs`, a
//! full disk (a real tmpfs, as root), a truncated stage-1 checkpoint, two processes on one
//! results folder, and a failure injected at every write. After each, nothing half-written
//! counts as a result, no lease is left, and a rerun gives the uninterrupted run's bytes.

use std::path::Path;
use std::process::{Child, Output, Stdio};
use std::time::{Duration, Instant};

use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;

use crate::util::{
    children, digits_matrix, files_named, files_where, matrix, metrics_files, run_command,
    run_matrix_with, stderr,
};

/// A digits matrix slow enough to be caught training (wide MLP, many epochs): one end-to-end
/// method and one decoupled on it, `seeds`.
fn slow_matrix(name: &str, seeds: &str, epochs: u32) -> String {
    format!(
        r#"name = "{name}"
seeds = {seeds}
datasets = [{{ digits-lt = {{ imbalance = [10] }} }}]

[defaults]
model = {{ mlp = {{ hidden = [512, 512] }} }}
epochs = {epochs}
batch-size = 32
stage2 = {{ iterations = 60, batch-size = 64 }}

[[methods]]
name = "softmax"

[[methods]]
name = "crt"
stage1 = "softmax"
sampler = "class-balanced"
"#
    )
}

/// `balms run` started in the background (CPU, one thread, no bars), `extra` appended.
fn start(matrix_path: &Path, results: &Path, extra: &[&str]) -> Child {
    let mut args = vec!["--threads", "1"];
    args.extend_from_slice(extra);
    run_command(matrix_path, results, &args)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

/// Waits until some run under `results` has logged an epoch (it is training).
fn wait_for_training(results: &Path) {
    let started = Instant::now();
    while started.elapsed() < Duration::from_secs(60) {
        let training = files_named(results, "log.jsonl")
            .iter()
            .any(|log| std::fs::read_to_string(log).is_ok_and(|t| t.contains("\"epoch\"")));
        if training {
            return;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    panic!("no run started training under {}", results.display());
}

fn signal(child: &Child, signal: Signal) {
    kill(Pid::from_raw(i32::try_from(child.id()).unwrap()), signal).unwrap();
}

/// Whether process `pid` still runs (a zombie counts as gone).
fn running(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .is_ok_and(|stat| stat.rsplit_once(')').is_some_and(|(_, rest)| !rest.starts_with(" Z")))
}

/// Waits up to 30 s for every process of `pids` to end.
fn all_gone(pids: &[u32]) -> bool {
    let started = Instant::now();
    while started.elapsed() < Duration::from_secs(30) {
        if !pids.iter().any(|&p| running(p)) {
            return true;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    false
}

/// `balms run` (CPU, one thread) whose `n`-th write fails as on a full disk, in every process.
fn run_failing(matrix_path: &Path, results: &Path, n: usize, extra: &[&str]) -> Output {
    let mut args = vec!["--threads", "1"];
    args.extend_from_slice(extra);
    let mut command = run_command(matrix_path, results, &args);
    command.env("BALMS_FAIL_WRITE", n.to_string()).output().unwrap()
}

/// The reference: the matrix run without faults into its own folder.
fn reference(dir: &Path, matrix_path: &Path) -> Vec<(std::path::PathBuf, Vec<u8>)> {
    let results = dir.join("reference");
    let output = run_matrix_with(matrix_path, &results, &["--threads", "1"]);
    assert!(output.status.success(), "{}", stderr(&output));
    metrics_files(&results)
}

#[test]
fn sigint_and_sigterm_stop_the_run_release_its_lease_and_a_rerun_completes() {
    let dir = tempfile::tempdir().unwrap();
    let path = matrix(dir.path(), "m.toml", &slow_matrix("sig", "[1]", 60));
    let expected = reference(dir.path(), &path);
    for (sig, status, name) in [(Signal::SIGTERM, 143, "SIGTERM"), (Signal::SIGINT, 130, "SIGINT")]
    {
        let results = dir.path().join(name);
        let child = start(&path, &results, &[]);
        wait_for_training(&results);
        signal(&child, sig);
        let output = child.wait_with_output().unwrap();
        let err = stderr(&output);
        assert_eq!(output.status.code(), Some(status), "{err}");
        let last = err.lines().last().unwrap_or_default();
        assert!(last.starts_with(&format!("interrupted by {name}")), "{err}");
        assert!(last.contains("run the same command again"), "{err}");
        assert!(files_named(&results, "lease.json").is_empty(), "a lease was left");
        assert!(files_named(&results, "failed.json").is_empty(), "an interruption is no failure");
        assert!(metrics_files(&results).len() < expected.len());
        let rerun = run_matrix_with(&path, &results, &["--threads", "1"]);
        assert!(rerun.status.success(), "{}", stderr(&rerun));
        assert_eq!(metrics_files(&results), expected, "the rerun after {name} differs");
    }
}

#[test]
fn jobs_workers_end_with_their_parent_however_it_ends() {
    let dir = tempfile::tempdir().unwrap();
    let path = matrix(dir.path(), "m.toml", &slow_matrix("jobs", "[1, 2, 3, 4]", 400));
    for (sig, name) in [(Signal::SIGTERM, "term"), (Signal::SIGKILL, "kill")] {
        let results = dir.path().join(name);
        let child = start(&path, &results, &["--jobs", "2"]);
        wait_for_training(&results);
        let workers = children(child.id());
        assert_eq!(workers.len(), 2, "two workers");
        signal(&child, sig);
        let output = child.wait_with_output().unwrap();
        if sig == Signal::SIGTERM {
            assert_eq!(output.status.code(), Some(143), "{}", stderr(&output));
            assert!(stderr(&output).contains("interrupted by SIGTERM"), "{}", stderr(&output));
        }
        assert!(all_gone(&workers), "{name}: workers outlived their parent");
        assert!(files_named(&results, "lease.json").is_empty(), "{name}: a lease was left");
        assert!(files_named(&results, "failed.json").is_empty(), "{name}: recorded as failed");
    }
}

#[test]
fn runs_held_by_another_host_leave_the_invocation_unfinished() {
    let dir = tempfile::tempdir().unwrap();
    let path = matrix(dir.path(), "m.toml", &slow_matrix("held", "[1]", 2));
    let results = dir.path().join("results");
    let run_dir = results.join("held/digits-lt.if10.softmax/seed-1");
    std::fs::create_dir_all(&run_dir).unwrap();
    let holder = r#"{"host":"another-node","pid":1,"token":7}"#;
    std::fs::write(run_dir.join("lease.json"), holder).unwrap();
    let output = run_matrix_with(&path, &results, &[]);
    let err = stderr(&output);
    assert_eq!(output.status.code(), Some(75), "{err}");
    let last = err.lines().last().unwrap();
    assert!(last.starts_with("unfinished: 2 run(s) held by other workers (2 of `held`)"), "{err}");
    // Its decoupled run waits on it: left too, not failed.
    assert!(files_named(&results, "failed.json").is_empty(), "{err}");
}

#[test]
fn two_processes_on_one_folder_count_only_what_each_trained() {
    let dir = tempfile::tempdir().unwrap();
    let path = matrix(dir.path(), "m.toml", &digits_matrix("both", "[1, 2, 3, 4, 5]", 0.05));
    let results = dir.path().join("results");
    let (a, b) = (start(&path, &results, &[]), start(&path, &results, &[]));
    let trained = |child: Child| {
        let output = child.wait_with_output().unwrap();
        let err = stderr(&output);
        let line = err.lines().find(|l| l.starts_with("matrix `both`: ")).unwrap().to_string();
        let n: usize = line["matrix `both`: ".len()..].split(' ').next().unwrap().parse().unwrap();
        (n, err)
    };
    let ((n_a, err_a), (n_b, err_b)) = (trained(a), trained(b));
    assert_eq!(n_a + n_b, 15, "15 runs in all:\n{err_a}\n{err_b}");
    assert_eq!(metrics_files(&results).len(), 15);
}

#[test]
fn a_truncated_stage1_checkpoint_is_retrained_and_the_decoupled_run_is_unchanged() {
    let dir = tempfile::tempdir().unwrap();
    let path = matrix(dir.path(), "m.toml", &slow_matrix("trunc", "[1]", 3));
    let results = dir.path().join("results");
    let first = run_matrix_with(&path, &results, &[]);
    assert!(first.status.success(), "{}", stderr(&first));
    let expected = metrics_files(&results);
    let stage1 = results.join("trunc/digits-lt.if10.softmax/seed-1");
    let bytes = std::fs::read(stage1.join("model.ot")).unwrap();
    std::fs::write(stage1.join("model.ot"), &bytes[..bytes.len() / 3]).unwrap();
    std::fs::remove_file(results.join("trunc/digits-lt.if10.crt/seed-1/metrics.json")).unwrap();
    let rerun = run_matrix_with(&path, &results, &[]);
    let err = stderr(&rerun);
    assert!(rerun.status.success(), "{err}");
    assert!(err.contains("is not the one recorded") && err.contains("retraining it"), "{err}");
    assert_eq!(metrics_files(&results), expected);
    // The retrained checkpoint is recorded again: a further rerun trusts it.
    std::fs::remove_file(results.join("trunc/digits-lt.if10.crt/seed-1/metrics.json")).unwrap();
    let again = run_matrix_with(&path, &results, &[]);
    assert!(!stderr(&again).contains("retraining"), "{}", stderr(&again));
    assert_eq!(metrics_files(&results), expected);
}

/// Whether this process may mount a tmpfs (root); `BALMS_REQUIRE_ROOT=1` (CI) makes "no" fail.
fn can_mount() -> bool {
    let root = nix::unistd::geteuid().is_root();
    assert!(
        root || std::env::var_os("BALMS_REQUIRE_ROOT").is_none(),
        "BALMS_REQUIRE_ROOT is set but the tests do not run as root"
    );
    if !root {
        eprintln!("skipped: mounting a tmpfs needs root");
    }
    root
}

/// A tmpfs of `size` (`1m`, `64k`) mounted at `<dir>/disk`; the caller unmounts it.
fn tmpfs(dir: &Path, size: &str) -> std::path::PathBuf {
    let disk = dir.join("disk");
    std::fs::create_dir(&disk).unwrap();
    let mounted = std::process::Command::new("mount")
        .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
        .arg(&disk)
        .status()
        .unwrap();
    assert!(mounted.success(), "mount -t tmpfs failed");
    disk
}

#[test]
fn a_full_disk_stops_the_matrix_naming_the_file_and_what_to_do() {
    if !can_mount() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let path = matrix(dir.path(), "m.toml", &slow_matrix("full", "[1, 2]", 2));
    let disk = tmpfs(dir.path(), "1m");
    let results = disk.join("results");
    let output = run_matrix_with(&path, &results, &[]);
    let err = stderr(&output);
    let leases = files_named(&results, "lease.json").len();
    let temporaries = count_temporaries(&disk);
    let failed = files_named(&results, "failed.json").len();
    let _ = std::process::Command::new("umount").arg(&disk).status();
    assert_eq!(output.status.code(), Some(2), "{err}");
    assert!(!err.contains("terminate called") && !err.contains("Aborted"), "{err}");
    assert!(
        err.contains("is full") && err.contains("model.ot") && err.contains("No space"),
        "{err}"
    );
    assert!(
        err.contains("Free space there") && err.contains("run the same command again"),
        "{err}"
    );
    assert_eq!(leases, 0, "a lease was left");
    assert_eq!(temporaries, 0, "a temporary file was left");
    assert_eq!(failed, 1, "the failed run is recorded, and nothing after it ran");
}

#[test]
fn every_write_can_fail_and_the_rerun_gives_the_uninterrupted_bytes() {
    let dir = tempfile::tempdir().unwrap();
    let path = matrix(dir.path(), "m.toml", &slow_matrix("writes", "[1]", 2));
    let expected = reference(dir.path(), &path);
    for n in 1..=200 {
        let results = dir.path().join(format!("fail-{n}"));
        let output = run_failing(&path, &results, n, &[]);
        let err = stderr(&output);
        assert!(!err.contains("panicked") && !err.contains("terminate called"), "write {n}: {err}");
        if !err.contains("BALMS_FAIL_WRITE") {
            // Past the last write: nothing failed, and this run is the reference.
            assert!(output.status.success(), "{err}");
            assert_eq!(metrics_files(&results), expected);
            let failures = n - 1;
            assert!(failures > 10, "only {failures} writes failed: is the hook reached?");
            eprintln!("{failures} writes failed one at a time; every rerun gave the same bytes");
            return;
        }
        assert_eq!(output.status.code(), Some(2), "write {n}: {err}");
        assert!(err.contains("Free space there"), "write {n}: not reported as a full disk: {err}");
        assert!(files_named(&results, "lease.json").is_empty(), "write {n}: a lease was left");
        assert_eq!(count_temporaries(&results), 0, "write {n}: a temporary file was left\n{err}");
        let rerun = run_matrix_with(&path, &results, &["--threads", "1"]);
        assert!(rerun.status.success(), "write {n}: the rerun failed: {}", stderr(&rerun));
        assert_eq!(metrics_files(&results), expected, "write {n}: the rerun differs");
    }
    panic!("200 writes and still failing: the hook counts something unbounded");
}

#[test]
fn a_full_disk_in_a_jobs_worker_stops_the_matrix_and_a_rerun_completes() {
    let dir = tempfile::tempdir().unwrap();
    let path = matrix(dir.path(), "m.toml", &slow_matrix("jobsfull", "[1, 2]", 2));
    let expected = reference(dir.path(), &path);
    let results = dir.path().join("results");
    // Each worker's third write (a log line of its first run) fails; the parent writes one.
    let output = run_failing(&path, &results, 3, &["--jobs", "2"]);
    let err = stderr(&output);
    assert_eq!(output.status.code(), Some(2), "{err}");
    assert!(err.contains("Free space there") && err.contains("BALMS_FAIL_WRITE"), "{err}");
    assert!(files_named(&results, "lease.json").is_empty(), "a lease was left");
    assert_eq!(count_temporaries(&results), 0);
    let rerun = run_matrix_with(&path, &results, &["--threads", "1", "--jobs", "2"]);
    assert!(rerun.status.success(), "{}", stderr(&rerun));
    assert_eq!(metrics_files(&results), expected);
}

/// Temporary files (`*.tmp`) under `dir`.
fn count_temporaries(dir: &Path) -> usize {
    files_where(dir, |path| path.extension().is_some_and(|e| e == "tmp")).len()
}

/// An external method's arrays (`data.npz`) on a full disk: the run stops the matrix as any full
/// disk does, naming the file, and leaves neither the arrays nor a lease.
#[test]
fn a_full_disk_under_an_external_methods_arrays_is_named() {
    let Some(python) = crate::util::torch_python() else { return };
    if !can_mount() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let script = crate::util::root().join("tests/fixtures/external_ncm.py");
    let text = format!(
        "name = \"full-npz\"\nseeds = [1]\npython = \"{}\"\ndatasets = [{{ digits-lt = {{ imbalance = [10] }} }}]\n\n[defaults]\nmodel = {{ mlp = {{ hidden = [8] }} }}\nepochs = 1\nbatch-size = 32\n\n[[methods]]\nname = \"ncm\"\nexternal = {{ command = [\"{{python}}\", \"{}\"] }}\n",
        python.display(),
        script.display()
    );
    let path = matrix(dir.path(), "m.toml", &text);
    // Room for the run's records (a few kB), not for its arrays (about 400 kB).
    let disk = tmpfs(dir.path(), "64k");
    let results = disk.join("results");
    let output = run_matrix_with(&path, &results, &[]);
    let err = stderr(&output);
    let arrays = files_named(&results, "data.npz").len();
    let leases = files_named(&results, "lease.json").len();
    let metrics = files_named(&results, "metrics.json").len();
    let _ = std::process::Command::new("umount").arg(&disk).status();
    assert_eq!(output.status.code(), Some(2), "{err}");
    assert!(err.contains("is full") && err.contains("data.npz"), "{err}");
    assert_eq!((arrays, leases, metrics), (0, 0, 0), "{err}");
}

//! Helpers: the `balms` binary, matrices written to temporary folders.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// The `balms` binary with a fixed thread count and no progress bars.
pub fn balms(args: &[&str]) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_balms"));
    command.args(args);
    command
}

/// Runs `balms` and returns its output.
pub fn run(args: &[&str]) -> Output {
    balms(args).output().expect("balms runs")
}

/// Writes `text` as a matrix file in `dir`.
pub fn matrix(dir: &Path, name: &str, text: &str) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    path
}

/// Standard error as text.
pub fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

/// The repository root.
pub fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// A small digits matrix: two end-to-end methods and one decoupled, `seeds` seeds.
pub fn digits_matrix(name: &str, seeds: &str, lr: f64) -> String {
    format!(
        r#"name = "{name}"
seeds = {seeds}
datasets = [{{ digits-lt = {{ imbalance = [10] }} }}]

[defaults]
model = {{ mlp = {{ hidden = [32] }} }}
epochs = 8
batch-size = 32
optimizer = {{ lr = {lr} }}
stage2 = {{ iterations = 60, batch-size = 64 }}

[[methods]]
name = "softmax"

[[methods]]
name = "balanced-softmax"
loss = "balanced-softmax"

[[methods]]
name = "balanced-softmax-dt"
stage1 = "softmax"
loss = "balanced-softmax"
"#
    )
}

/// The `balms run` command on the CPU without progress bars, with `extra` arguments.
pub fn run_command(matrix_path: &Path, results: &Path, extra: &[&str]) -> Command {
    let (matrix, results) = (matrix_path.to_str().unwrap(), results.to_str().unwrap());
    let mut args = vec!["run", matrix, "--device", "cpu", "--no-progress", "--results", results];
    args.extend_from_slice(extra);
    balms(&args)
}

/// `balms run` on the CPU without progress bars, with `extra` arguments, run to the end.
pub fn run_matrix_with(matrix_path: &Path, results: &Path, extra: &[&str]) -> Output {
    run_command(matrix_path, results, extra).output().expect("balms runs")
}

/// Files under `dir` (at any depth) whose path satisfies `keep`.
pub fn files_where(dir: &Path, keep: impl Fn(&Path) -> bool) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).into_iter().flatten().flatten() {
            let path = entry.path();
            if path.is_dir() {
                stack.push(path);
            } else if keep(&path) {
                out.push(path);
            }
        }
    }
    out
}

/// Files named `name` anywhere under `dir`.
pub fn files_named(dir: &Path, name: &str) -> Vec<PathBuf> {
    files_where(dir, |path| path.file_name().is_some_and(|n| n == name))
}

/// Every `metrics.json` under `dir`, as (path relative to `dir`, bytes), sorted.
pub fn metrics_files(dir: &Path) -> Vec<(PathBuf, Vec<u8>)> {
    let mut out: Vec<(PathBuf, Vec<u8>)> = files_named(dir, "metrics.json")
        .into_iter()
        .map(|path| (path.strip_prefix(dir).unwrap().to_path_buf(), std::fs::read(&path).unwrap()))
        .collect();
    out.sort();
    out
}

/// Process ids whose parent is `parent`.
pub fn children(parent: u32) -> Vec<u32> {
    std::fs::read_dir("/proc")
        .unwrap()
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| {
            std::fs::read_to_string(format!("/proc/{pid}/stat")).ok().is_some_and(|stat| {
                // pid (comm) state ppid ...: comm may hold spaces, so split after the last ')'.
                stat.rsplit_once(')')
                    .and_then(|(_, rest)| rest.split_whitespace().nth(1)?.parse::<u32>().ok())
                    == Some(parent)
            })
        })
        .collect()
}

/// A Python with torch and torchvision: `BALMS_TORCH_PYTHON`, else `.venv-ref` (`just
/// bench-setup`). CI sets `BALMS_REQUIRE_TORCH=1`, so absence fails there.
pub fn torch_python() -> Option<PathBuf> {
    let python = std::env::var_os("BALMS_TORCH_PYTHON")
        .map_or_else(|| root().join(".venv-ref/bin/python"), PathBuf::from);
    let works = Command::new(&python)
        .args(["-c", "import torch, torchvision"])
        .output()
        .is_ok_and(|o| o.status.success());
    assert!(
        works || std::env::var_os("BALMS_REQUIRE_TORCH").is_none(),
        "PyTorch with torchvision is required here: `just bench-setup`, or set BALMS_TORCH_PYTHON"
    );
    if !works {
        eprintln!("skipping: no Python with torch and torchvision (`just bench-setup`)");
    }
    works.then_some(python)
}

//! Embeds libtorch's library folder as an rpath so `balms` and its test binaries run without
//! `LD_LIBRARY_PATH`, and records for provenance the libtorch version and the git revision the
//! binary was built from (with whether its sources differed from that revision).
//! torch-sys's own rpath does not reach downstream binaries: a build script's
//! `cargo:rustc-link-arg` applies only to its own package's targets.

use std::path::Path;
use std::process::Command;

fn main() {
    git_provenance();
    println!("cargo:rerun-if-env-changed=DEP_TCH_LIBTORCH_LIB");
    println!("cargo:rerun-if-env-changed=LIBTORCH");
    if let Ok(lib) = std::env::var("DEP_TCH_LIBTORCH_LIB") {
        println!("cargo:rustc-link-arg=-Wl,-rpath,{lib}");
        let version = Path::new(&lib)
            .parent()
            .map(|torch| torch.join("version.py"))
            .and_then(|p| std::fs::read_to_string(p).ok())
            .and_then(|text| parse_version(&text))
            .unwrap_or_else(|| "unknown".to_string());
        println!("cargo:rustc-env=BALMS_LIBTORCH_VERSION={version}");
    } else {
        println!("cargo:rustc-env=BALMS_LIBTORCH_VERSION=unknown");
    }
}

/// Reads `__version__ = '2.11.0+cu130'` from PyTorch's `version.py`.
fn parse_version(text: &str) -> Option<String> {
    let line = text.lines().find(|l| l.starts_with("__version__"))?;
    let value = line.split('=').nth(1)?.trim();
    Some(value.trim_matches(|c| c == '\'' || c == '"').to_string())
}

/// `git` output, trimmed, when git is there and succeeds.
fn git(args: &[&str]) -> Option<String> {
    let output = Command::new("git").args(args).output().ok()?;
    output.status.success().then(|| String::from_utf8_lossy(&output.stdout).trim().to_string())
}

/// `BALMS_GIT_REVISION` and `BALMS_GIT_DIRTY` (whether the sources that build the binary differ
/// from that revision), recomputed when the sources, the index or the branch move.
fn git_provenance() {
    for path in ["src", "build.rs", "Cargo.toml", "Cargo.lock"] {
        println!("cargo:rerun-if-changed={path}");
    }
    if let Some(dir) = git(&["rev-parse", "--git-dir"]) {
        println!("cargo:rerun-if-changed={dir}/HEAD");
        println!("cargo:rerun-if-changed={dir}/index");
        if let Some(branch) = git(&["symbolic-ref", "-q", "HEAD"]) {
            println!("cargo:rerun-if-changed={dir}/{branch}");
        }
    }
    let revision = git(&["rev-parse", "HEAD"]).unwrap_or_else(|| "unknown".to_string());
    let dirty = git(&[
        "status",
        "--porcelain",
        "--untracked-files=no",
        "--",
        "src",
        "build.rs",
        "Cargo.toml",
        "Cargo.lock",
    ])
    .is_some_and(|s| !s.is_empty());
    println!("cargo:rustc-env=BALMS_GIT_REVISION={revision}");
    println!("cargo:rustc-env=BALMS_GIT_DIRTY={dirty}");
}

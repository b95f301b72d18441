//! Embeds libtorch's library folder as an rpath so `balms` and its test binaries run without
//! `LD_LIBRARY_PATH`, and records the libtorch version for provenance.
//! torch-sys's own rpath does not reach downstream binaries (see shared/reference/libtorch.md).

use std::path::Path;

fn main() {
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

//! Pretrained weights in safetensors (balms names: `backbone.<torchvision name>`,
//! `classifier.weight`/`bias`; `scripts/pth_to_safetensors.py` writes them from PyTorch `.pth`
//! files) and frozen layers.

use std::path::{Path, PathBuf};

use tch::{nn, Tensor};

use super::{ModelSpec, ResnetSpec};

/// Why pretrained weights could not be used.
#[derive(Debug, thiserror::Error)]
pub enum PretrainedError {
    /// No file found.
    #[error("pretrained weights `{name}` not found; looked in:\n{looked}\nhint: convert PyTorch weights with `scripts/pth_to_safetensors.py` and put them under `$BALMS_WEIGHTS` or `weights/`")]
    NotFound {
        /// The name in the matrix.
        name: String,
        /// Paths tried.
        looked: String,
    },
    /// The file could not be read.
    #[error("pretrained weights `{path}`")]
    Read {
        /// The weights file that could not be read.
        path: PathBuf,
        /// tch's error.
        #[source]
        source: tch::TchError,
    },
    /// The file does not fit the model.
    #[error("pretrained weights `{path}`: {message}")]
    Mismatch {
        /// The weights file.
        path: PathBuf,
        /// What does not fit.
        message: String,
    },
}

/// Whether `name` is a ResNet layer `frozen` may name: `conv1`, `bn1`, `layerN` or `layerN.B`.
#[must_use]
pub fn is_layer(name: &str) -> bool {
    if name == "conv1" || name == "bn1" {
        return true;
    }
    let Some(rest) = name.strip_prefix("layer") else { return false };
    let (stage, block) = rest.split_once('.').map_or((rest, None), |(s, b)| (s, Some(b)));
    matches!(stage, "1" | "2" | "3" | "4") && block.is_none_or(|b| b.parse::<u32>().is_ok())
}

/// Where `name` is looked for: as given, then under `$BALMS_WEIGHTS`, then `weights/`.
fn candidates(name: &str) -> Vec<PathBuf> {
    let mut out = vec![PathBuf::from(name)];
    if let Some(dir) = std::env::var_os("BALMS_WEIGHTS") {
        out.push(Path::new(&dir).join(name));
    }
    out.push(Path::new("weights").join(name));
    out
}

/// The file of the model's pretrained weights, if it names one.
///
/// # Errors
/// [`PretrainedError::NotFound`] listing the places looked in.
pub fn locate(spec: &ModelSpec) -> Result<Option<PathBuf>, PretrainedError> {
    let ModelSpec::Resnet(ResnetSpec { pretrained: Some(name), .. }) = spec else {
        return Ok(None);
    };
    let tried = candidates(name);
    if let Some(path) = tried.iter().find(|p| p.is_file()) {
        return Ok(Some(path.clone()));
    }
    let looked = tried.iter().map(|p| format!("  {}", p.display())).collect::<Vec<_>>();
    Err(PretrainedError::NotFound { name: name.clone(), looked: looked.join("\n") })
}

/// The pretrained weights a run used: where they were found and the SHA-256 of their bytes
/// (recorded in `config.json`: the matrix names a file, the record says which bytes).
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Fingerprint {
    /// The file as found.
    pub file: String,
    /// SHA-256 (hex) of its bytes.
    pub sha256: String,
}

/// The fingerprint of the model's pretrained weights, if it names any.
///
/// # Errors
/// [`PretrainedError`] when the file is missing or unreadable.
pub fn fingerprint(spec: &ModelSpec) -> Result<Option<Fingerprint>, PretrainedError> {
    use sha2::Digest;
    let Some(path) = locate(spec)? else { return Ok(None) };
    let bytes = std::fs::read(&path).map_err(|e| PretrainedError::Mismatch {
        path: path.clone(),
        message: format!("cannot read: {e}"),
    })?;
    let sha256 = format!("{:x}", sha2::Sha256::digest(&bytes));
    Ok(Some(Fingerprint { file: path.display().to_string(), sha256 }))
}

/// Loads the model's pretrained weights into `vs` (built with `Network::new` under the root)
/// and freezes its `frozen` layers; returns the file used. Models without either do nothing.
///
/// # Errors
/// [`PretrainedError`] when the file is missing, unreadable, or does not fit.
pub fn apply(vs: &nn::VarStore, spec: &ModelSpec) -> Result<Option<PathBuf>, PretrainedError> {
    let ModelSpec::Resnet(ResnetSpec { frozen, .. }) = spec else { return Ok(None) };
    let used = locate(spec)?;
    if let Some(path) = &used {
        load(vs, path, false)?;
    }
    freeze(vs, frozen);
    Ok(used)
}

/// Copies the tensors of the safetensors file `path` into `vs`. Every backbone variable must be
/// in the file with its shape; the classifier is loaded when its shapes match, else left fresh
/// (or, with `strict`, refused); names `vs` does not have are refused.
///
/// # Errors
/// [`PretrainedError::Read`] or [`PretrainedError::Mismatch`] naming the tensors.
pub fn load(vs: &nn::VarStore, path: &Path, strict: bool) -> Result<(), PretrainedError> {
    let named: std::collections::BTreeMap<String, Tensor> = Tensor::read_safetensors(path)
        .map_err(|source| PretrainedError::Read { path: path.to_path_buf(), source })?
        .into_iter()
        .collect();
    let mismatch =
        |message: String| PretrainedError::Mismatch { path: path.to_path_buf(), message };
    let some = |names: &[&str]| names.iter().take(5).copied().collect::<Vec<_>>().join(", ");
    let mut variables: Vec<(String, Tensor)> = vs.variables().into_iter().collect();
    variables.sort_by(|a, b| a.0.cmp(&b.0));
    let unknown: Vec<&str> = named
        .keys()
        .map(String::as_str)
        .filter(|n| variables.binary_search_by(|(v, _)| v.as_str().cmp(n)).is_err())
        .collect();
    if !unknown.is_empty() {
        let message =
            format!("{} tensors the model does not have, e.g. {}", unknown.len(), some(&unknown));
        return Err(mismatch(message));
    }
    let fits = |name: &str, var: &Tensor| named.get(name).is_some_and(|t| t.size() == var.size());
    let classifier_fits = variables
        .iter()
        .filter(|(n, _)| n.starts_with("classifier.") && named.contains_key(n))
        .all(|(n, v)| fits(n, v));
    if strict && !classifier_fits {
        return Err(mismatch("the classifier's shape differs from the model's".to_string()));
    }
    // Every check before any copy: a refused file leaves the model as it was.
    let mut missing = Vec::new();
    for (name, var) in &variables {
        let skipped = name.starts_with("classifier.") && !strict;
        match named.get(name) {
            Some(t) if t.size() != var.size() && (classifier_fits || !skipped) => {
                return Err(mismatch(format!(
                    "`{name}` has shape {:?} in the file, {:?} in the model",
                    t.size(),
                    var.size()
                )))
            }
            None if !skipped => missing.push(name.as_str()),
            _ => {}
        }
    }
    if !missing.is_empty() {
        let message =
            format!("{} model tensors are not in the file, e.g. {}", missing.len(), some(&missing));
        return Err(mismatch(message));
    }
    let _guard = tch::no_grad_guard();
    for (name, mut var) in variables {
        if fits(&name, &var) {
            var.copy_(&named[&name].to_kind(var.kind()));
        }
    }
    Ok(())
}

/// Stops gradients to the backbone variables under each of `layers`.
fn freeze(vs: &nn::VarStore, layers: &[String]) {
    for (name, var) in vs.variables() {
        let Some(inner) = name.strip_prefix("backbone.") else { continue };
        if layers.iter().any(|l| inner.starts_with(&format!("{l}."))) {
            let _ = var.set_requires_grad(false);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layer_names() {
        for ok in ["conv1", "bn1", "layer1", "layer4.2"] {
            assert!(is_layer(ok), "{ok}");
        }
        for bad in ["fc", "layer5", "layer1.x", "layer", "conv2"] {
            assert!(!is_layer(bad), "{bad}");
        }
    }
}

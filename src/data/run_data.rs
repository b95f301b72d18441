//! One run's data: the long-tailed training subset, the validation split and the test set on the
//! run's device, and how the validation split was formed.

use serde::{Deserialize, Serialize};
use tch::Tensor;

use super::inputs::Inputs;
use super::DatasetKind;

/// Images per class in the validation split (the size of ImageNet-LT's and Places-LT's).
pub const VAL_PER_CLASS: usize = 20;

/// How a run's validation split was formed (recorded in `config.json`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct ValidationInfo {
    /// Images per class, drawn from the training pool: first from images the long-tailed subset
    /// leaves unused, the shortfall from the subset itself.
    pub per_class: usize,
    /// How many validation images are also training images.
    pub from_training: usize,
    /// SHA-256 of the validation indices.
    pub indices_sha256: String,
}

/// The name of the subset stream: shared by every method at one dataset, imbalance and seed, so
/// methods are compared on the same data.
#[must_use]
pub fn subset_stream(kind: &DatasetKind, imbalance: f64) -> String {
    format!("subset/{}/if{}", kind.name(), imbalance)
}

/// One run's data on its device: the long-tailed training subset and the balanced test set.
#[derive(Debug)]
pub struct RunData {
    /// Normalised training inputs (in memory, or image files).
    pub train_x: Inputs,
    /// Training labels (int64).
    pub train_y: Tensor,
    /// Training labels on the host, for samplers.
    pub train_labels: Vec<i64>,
    /// Normalised validation inputs (balanced, [`VAL_PER_CLASS`] per class).
    pub val_x: Inputs,
    /// Validation labels (int64).
    pub val_y: Tensor,
    /// Normalised test inputs.
    pub test_x: Inputs,
    /// Test labels (int64).
    pub test_y: Tensor,
    /// Per-class training counts.
    pub class_counts: Vec<usize>,
    /// SHA-256 of the chosen pool indices.
    pub indices_sha256: String,
    /// How the validation split was formed.
    pub validation: ValidationInfo,
    /// The training and validation images' positions in the dataset's training pool (its files'
    /// order), for datasets held in memory; `None` for image lists and synthetic data.
    pub pool_indices: Option<PoolIndices>,
}

/// Positions in a dataset's training pool, in the order of the run's rows.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct PoolIndices {
    /// The long-tailed training subset's rows.
    pub train: Vec<usize>,
    /// The validation split's rows.
    pub validation: Vec<usize>,
}

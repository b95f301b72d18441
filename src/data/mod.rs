//! Datasets: the registry of names and their descriptors (`registry`), where files are found
//! (`locate`), loaders (`pool` and the format modules), and one run's long-tailed subset
//! (`run_data`).
//!
//! A dataset is read once into a [`Pool`] (the full training pool and the balanced test set as
//! tensors); each run then draws its long-tailed subset from the pool with its own subset seed
//! ([`Pool::long_tailed`]), so the data subset is seeded apart from the training seed.

pub mod augment;
pub mod autoaugment;
pub mod cifar;
pub mod cifar_tree;
pub mod digits;
pub mod idx;
pub mod images;
pub mod inputs;
pub mod jpeg_tree;
pub mod lists;
pub mod longtail;
pub mod raw;
pub mod synthetic;

mod locate;
mod pool;
mod registry;
mod run_data;

use std::path::PathBuf;

pub use locate::DataLocator;
pub use pool::Pool;
pub use registry::{
    DatasetKind, DatasetSpec, Descriptor, Folder, Format, GaussianEntry, Imbalances, ListParams,
    NoParams, Source, LVIS_V05_FILES,
};
pub use run_data::{subset_stream, PoolIndices, RunData, ValidationInfo, VAL_PER_CLASS};

/// Why data could not be had.
#[derive(Debug, thiserror::Error)]
pub enum DataError {
    /// A file is missing.
    #[error("missing data file `{path}`")]
    MissingFile {
        /// The file looked for.
        path: PathBuf,
    },
    /// A file could not be read.
    #[error("cannot read `{path}`")]
    Io {
        /// The file or folder that could not be read or written.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// A file is not in the expected format.
    #[error("`{path}`: {message}")]
    Format {
        /// The malformed file or folder (`embedded` for built-in data).
        path: PathBuf,
        /// What is wrong, e.g. a label outside `0..classes`.
        message: String,
    },
    /// No folder holds the dataset.
    #[error(
        "dataset `{dataset}` not found; looked in:\n{looked}\nhint: {hint}, or point `--data-dir` \
         or `BALMS_DATA` at the folder that holds it"
    )]
    NotFound {
        /// [`DatasetKind::name`] of the dataset not found.
        dataset: String,
        /// The folders looked in, one per line.
        looked: String,
        /// How to get it.
        hint: String,
    },
    /// Listed images are missing or unreadable.
    #[error("{count} listed images are missing or unreadable:\n{details}")]
    Images {
        /// Number of listed images missing or unreadable, over the train, val and test lists.
        count: usize,
        /// Per list: counts and the first few paths with reasons.
        details: String,
    },
    /// The pool cannot supply the profile.
    #[error("dataset `{dataset}`: {message}")]
    Profile {
        /// [`DatasetKind::name`] of the dataset.
        dataset: String,
        /// Which class has fewer pool images than the profile asks for.
        message: String,
    },
}

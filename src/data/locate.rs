//! Finding a dataset's folder: `--data-dir`, then `BALMS_DATA`, then well-known places, each
//! tried with the names its [`super::Descriptor`] gives.

use std::path::PathBuf;

use super::registry::Source;
use super::{DataError, DatasetKind};

/// Where datasets are looked for: `--data-dir`, then `BALMS_DATA`, then well-known places.
#[derive(Clone, Debug, Default)]
pub struct DataLocator {
    /// `--data-dir`, if given.
    pub data_dir: Option<PathBuf>,
}

impl DataLocator {
    /// The folders tried for `kind`, in order.
    #[must_use]
    pub fn candidates(&self, kind: &DatasetKind) -> Vec<PathBuf> {
        let Source::Folder(folder) = kind.descriptor().source else { return Vec::new() };
        let (relative, well_known) = (folder.relative, folder.well_known);
        let roots =
            self.data_dir.iter().cloned().chain(std::env::var_os("BALMS_DATA").map(PathBuf::from));
        roots
            .flat_map(|root| relative.iter().map(move |r| root.join(r)).collect::<Vec<_>>())
            .chain(well_known.iter().map(PathBuf::from))
            .collect()
    }

    /// The folder holding `kind`, if any (`Ok(None)` for embedded datasets).
    ///
    /// # Errors
    /// [`DataError::NotFound`] listing every folder looked in and how to get the data.
    pub fn locate(&self, kind: &DatasetKind) -> Result<Option<PathBuf>, DataError> {
        let Source::Folder(folder) = kind.descriptor().source else { return Ok(None) };
        let candidates = self.candidates(kind);
        let found =
            candidates.iter().find(|dir| folder.markers.iter().any(|m| dir.join(m).is_file()));
        match found {
            Some(dir) => Ok(Some(dir.clone())),
            None => Err(DataError::NotFound {
                dataset: kind.name().to_string(),
                looked: candidates
                    .iter()
                    .map(|p| format!("  {}", p.display()))
                    .collect::<Vec<_>>()
                    .join("\n"),
                hint: kind.hint().to_string(),
            }),
        }
    }
}

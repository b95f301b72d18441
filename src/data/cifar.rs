//! CIFAR-10 and CIFAR-100 in their *binary* versions.
//!
//! CIFAR-10 (`cifar-10-batches-bin/`): `data_batch_1..5.bin` and `test_batch.bin`, each 10,000
//! records of a label byte and 3,072 pixel bytes (1,024 R, 1,024 G, 1,024 B, row-major 32x32).
//! CIFAR-100 (`cifar-100-binary/`): `train.bin` (50,000 records) and `test.bin` (10,000) of a
//! coarse label byte, a fine label byte and 3,072 pixel bytes; the fine label is used.
//! The python (pickle) versions are recognised and refused.

use std::path::Path;

use super::{raw::RawImages, DataError};

/// Per-channel mean (RGB, of pixels in [0, 1]) the official CIFAR code normalises with.
pub const MEAN: [f32; 3] = [0.4914, 0.4822, 0.4465];
/// Per-channel standard deviation the official CIFAR code normalises with.
pub const STD: [f32; 3] = [0.2023, 0.1994, 0.2010];

/// CIFAR images as the pool normalises them: bytes `[N, 3, H, W]` (any integer kind) to
/// `(x * (1 / 255) - MEAN) / STD` in single precision, `[N, 3, H, W]`.
pub fn normalised(bytes: &tch::Tensor) -> tch::Tensor {
    let mean = tch::Tensor::from_slice(&MEAN).view([1, 3, 1, 1]).to_device(bytes.device());
    let std = tch::Tensor::from_slice(&STD).view([1, 3, 1, 1]).to_device(bytes.device());
    (bytes.to_kind(tch::Kind::Float) * (1.0 / 255.0) - mean) / std
}

/// Pixel bytes of one record: the red, green and blue 32 x 32 planes.
pub const PIXELS: usize = 3 * 32 * 32;

/// Which CIFAR binary release to read: CIFAR-10 (`cifar-10-batches-bin/`) or CIFAR-100
/// (`cifar-100-binary/`, fine labels).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Cifar {
    /// CIFAR-10: `data_batch_1..5.bin` and `test_batch.bin`, one label byte per record.
    Ten,
    /// CIFAR-100 (fine labels).
    Hundred,
}

impl Cifar {
    fn label_bytes(self) -> usize {
        match self {
            Cifar::Ten => 1,
            Cifar::Hundred => 2,
        }
    }

    fn files(self, train: bool) -> &'static [&'static str] {
        match (self, train) {
            (Cifar::Ten, true) => &[
                "data_batch_1.bin",
                "data_batch_2.bin",
                "data_batch_3.bin",
                "data_batch_4.bin",
                "data_batch_5.bin",
            ],
            (Cifar::Ten, false) => &["test_batch.bin"],
            (Cifar::Hundred, true) => &["train.bin"],
            (Cifar::Hundred, false) => &["test.bin"],
        }
    }

    fn records_per_file(self, train: bool) -> usize {
        match (self, train) {
            (Cifar::Hundred, true) => 50_000,
            (Cifar::Ten, _) | (Cifar::Hundred, false) => 10_000,
        }
    }
}

/// Reads the train (`train = true`) or test split from `dir`.
///
/// # Errors
/// [`DataError`] naming the file: missing files, the python version, wrong sizes.
pub fn read_split(dir: &Path, which: Cifar, train: bool) -> Result<RawImages, DataError> {
    refuse_python_version(dir)?;
    let record = which.label_bytes() + PIXELS;
    let mut out = RawImages { pixels: Vec::new(), labels: Vec::new(), shape: [3, 32, 32] };
    for name in which.files(train) {
        let path = dir.join(name);
        if !path.is_file() {
            return Err(DataError::MissingFile { path });
        }
        let bytes =
            std::fs::read(&path).map_err(|source| DataError::Io { path: path.clone(), source })?;
        let expected = record * which.records_per_file(train);
        if bytes.len() != expected {
            return Err(DataError::Format {
                path,
                message: format!(
                    "{} bytes, expected {expected} ({} records of {record} bytes)",
                    bytes.len(),
                    which.records_per_file(train)
                ),
            });
        }
        for rec in bytes.chunks_exact(record) {
            out.labels.push(i64::from(rec[which.label_bytes() - 1]));
            out.pixels.extend_from_slice(&rec[which.label_bytes()..]);
        }
    }
    Ok(out)
}

/// The python version has `data_batch_1` (no extension) or `train` pickles and a `batches.meta`/`meta`.
fn refuse_python_version(dir: &Path) -> Result<(), DataError> {
    let pickles = ["data_batch_1", "batches.meta", "train", "meta"];
    if let Some(found) = pickles.iter().map(|p| dir.join(p)).find(|p| p.is_file()) {
        return Err(DataError::Format {
            path: found,
            message: "this is the python (pickle) version of CIFAR; balms reads the binary \
                      version (`cifar-10-binary.tar.gz` / `cifar-100-binary.tar.gz` from the CIFAR \
                      home page)"
                .to_string(),
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write_records(path: &Path, labels: &[&[u8]], n: usize) {
        let mut bytes = Vec::new();
        for i in 0..n {
            bytes.extend_from_slice(labels[i % labels.len()]);
            bytes.extend(std::iter::repeat_n(u8::try_from(i % 251).unwrap(), PIXELS));
        }
        std::fs::write(path, bytes).unwrap();
    }

    #[test]
    fn reads_cifar10_binary() {
        let dir = tempfile::tempdir().unwrap();
        for name in Cifar::Ten.files(false) {
            write_records(&dir.path().join(name), &[&[3], &[7]], 10_000);
        }
        let raw = read_split(dir.path(), Cifar::Ten, false).unwrap();
        assert_eq!(raw.len(), 10_000);
        assert_eq!(&raw.labels[..3], &[3, 7, 3]);
        assert_eq!(raw.pixels[PIXELS], 1);
    }

    #[test]
    fn reads_cifar100_fine_labels() {
        let dir = tempfile::tempdir().unwrap();
        write_records(&dir.path().join("test.bin"), &[&[1, 42], &[2, 99]], 10_000);
        let raw = read_split(dir.path(), Cifar::Hundred, false).unwrap();
        assert_eq!(&raw.labels[..2], &[42, 99]);
    }

    #[test]
    fn wrong_size_and_python_version_are_named() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("test_batch.bin"), [0u8; 100]).unwrap();
        let err = read_split(dir.path(), Cifar::Ten, false).unwrap_err().to_string();
        assert!(err.contains("test_batch.bin") && err.contains("expected 30730000"), "{err}");
        std::fs::write(dir.path().join("batches.meta"), b"pickle").unwrap();
        let err = read_split(dir.path(), Cifar::Ten, false).unwrap_err().to_string();
        assert!(err.contains("python (pickle) version"), "{err}");
        let err = read_split(tempfile::tempdir().unwrap().path(), Cifar::Ten, true).unwrap_err();
        assert!(err.to_string().contains("data_batch_1.bin"));
    }
}

//! IDX files (MNIST, Fashion-MNIST), gzipped or raw.
//!
//! Big-endian: magic `0x00000803` (images) or `0x00000801` (labels), one u32 per dimension, then
//! the u8 payload.

use std::io::Read;
use std::path::{Path, PathBuf};

use super::{raw::RawImages, DataError};

/// Reads a train or test split from `dir`: `{prefix}-images-idx3-ubyte[.gz]` and
/// `{prefix}-labels-idx1-ubyte[.gz]` (`prefix` is `train` or `t10k`).
///
/// # Errors
/// [`DataError`] naming the file for missing files, bad magic numbers or sizes.
pub fn read_split(dir: &Path, prefix: &str) -> Result<RawImages, DataError> {
    let images = read_idx(&find(dir, &format!("{prefix}-images-idx3-ubyte"))?, 3)?;
    let labels = read_idx(&find(dir, &format!("{prefix}-labels-idx1-ubyte"))?, 1)?;
    if images.dims[0] != labels.dims[0] {
        return Err(DataError::Format {
            path: dir.to_path_buf(),
            message: format!("{} images but {} labels", images.dims[0], labels.dims[0]),
        });
    }
    Ok(RawImages {
        pixels: images.payload,
        labels: labels.payload.iter().map(|&b| i64::from(b)).collect(),
        shape: [1, images.dims[1], images.dims[2]],
    })
}

/// The file `stem` or `stem.gz` in `dir`.
fn find(dir: &Path, stem: &str) -> Result<PathBuf, DataError> {
    [dir.join(stem), dir.join(format!("{stem}.gz"))]
        .into_iter()
        .find(|p| p.is_file())
        .ok_or_else(|| DataError::MissingFile { path: dir.join(format!("{stem}[.gz]")) })
}

struct Idx {
    dims: Vec<usize>,
    payload: Vec<u8>,
}

/// Parses one IDX file of `rank` dimensions.
fn read_idx(path: &Path, rank: u8) -> Result<Idx, DataError> {
    let bytes = read_maybe_gz(path)?;
    let format = |message: String| DataError::Format { path: path.to_path_buf(), message };
    let expected_magic = [0, 0, 0x08, rank];
    if bytes.len() < 4 || bytes[..4] != expected_magic {
        return Err(format(format!(
            "magic {:02x?} is not that of a rank-{rank} u8 IDX file ({expected_magic:02x?})",
            &bytes[..bytes.len().min(4)]
        )));
    }
    let header_len = 4 + 4 * usize::from(rank);
    if bytes.len() < header_len {
        return Err(format(format!("{} bytes is shorter than an IDX header", bytes.len())));
    }
    let dims: Vec<usize> = (0..usize::from(rank))
        .map(|d| {
            let b = &bytes[4 + 4 * d..8 + 4 * d];
            u32::from_be_bytes([b[0], b[1], b[2], b[3]]) as usize
        })
        .collect();
    let payload = bytes[header_len..].to_vec();
    if payload.len() != dims.iter().product::<usize>() {
        return Err(format(format!(
            "header says {dims:?} ({} bytes) but the payload has {} bytes",
            dims.iter().product::<usize>(),
            payload.len()
        )));
    }
    Ok(Idx { dims, payload })
}

/// Reads a file, gunzipping it when its name ends in `.gz`.
pub(crate) fn read_maybe_gz(path: &Path) -> Result<Vec<u8>, DataError> {
    let io = |source| DataError::Io { path: path.to_path_buf(), source };
    let bytes = std::fs::read(path).map_err(io)?;
    if path.extension().is_some_and(|e| e == "gz") {
        let mut out = Vec::new();
        flate2::read::GzDecoder::new(&bytes[..]).read_to_end(&mut out).map_err(io)?;
        Ok(out)
    } else {
        Ok(bytes)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    /// Writes an IDX file in the exact format, gzipped when `gz`.
    pub(crate) fn write_idx(path: &Path, dims: &[u32], payload: &[u8], gz: bool) {
        let mut bytes = vec![0, 0, 0x08, u8::try_from(dims.len()).unwrap()];
        for d in dims {
            bytes.extend_from_slice(&d.to_be_bytes());
        }
        bytes.extend_from_slice(payload);
        if gz {
            let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
            enc.write_all(&bytes).unwrap();
            bytes = enc.finish().unwrap();
        }
        std::fs::write(path, bytes).unwrap();
    }

    #[test]
    fn reads_raw_and_gzipped() {
        let dir = tempfile::tempdir().unwrap();
        let pixels: Vec<u8> = (0..3 * 4 * 4).map(|i| u8::try_from(i).unwrap()).collect();
        write_idx(&dir.path().join("train-images-idx3-ubyte.gz"), &[3, 4, 4], &pixels, true);
        write_idx(&dir.path().join("train-labels-idx1-ubyte"), &[3], &[2, 0, 1], false);
        let raw = read_split(dir.path(), "train").unwrap();
        assert_eq!(raw.shape, [1, 4, 4]);
        assert_eq!(raw.labels, [2, 0, 1]);
        assert_eq!(raw.pixels, pixels);
    }

    #[test]
    fn rejects_bad_magic_and_size() {
        let dir = tempfile::tempdir().unwrap();
        write_idx(&dir.path().join("t10k-images-idx3-ubyte"), &[2, 2, 2], &[0; 7], false);
        write_idx(&dir.path().join("t10k-labels-idx1-ubyte"), &[2], &[0, 1], false);
        let err = read_split(dir.path(), "t10k").unwrap_err().to_string();
        assert!(err.contains("t10k-images-idx3-ubyte") && err.contains("payload"), "{err}");
        write_idx(&dir.path().join("t10k-images-idx3-ubyte"), &[2], &[0, 0], false);
        let err = read_split(dir.path(), "t10k").unwrap_err().to_string();
        assert!(err.contains("magic"), "{err}");
        let err = read_split(dir.path(), "train").unwrap_err().to_string();
        assert!(err.contains("train-images-idx3-ubyte[.gz]"), "{err}");
    }
}

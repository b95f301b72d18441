//! Fashion-MNIST in CIFAR-10's binary layout (`balms cifar-tree`), so that `cifar10-lt` matrices
//! run on real images through the real CIFAR loader, unchanged.
//!
//! `<out>/cifar-10-batches-bin/`: `data_batch_1..5.bin` (10,000 records each) and
//! `test_batch.bin` (10,000), a record being one label byte and 3,072 pixel bytes (the red,
//! green and blue 32 x 32 planes, row-major), and `batches.meta.txt` with the class names, as in
//! `cifar-10-binary.tar.gz`. Each 28 x 28 grey image is padded with 2 black pixels on every side
//! and copied to the three planes. CIFAR-10 has 5,000 training images per class; the training
//! batches hold the first 5,000 of each Fashion-MNIST class in file order (Fashion-MNIST has
//! 6,000), and the test batch is its whole test set (1,000 per class, as CIFAR-10's).

use std::path::Path;

use super::{cifar, idx, DataError, DataLocator, DatasetKind};

/// The folder written under `--out`, one of the names the `cifar10-lt` dataset looks for.
pub const FOLDER: &str = "cifar-10-batches-bin";

/// Training images per class, CIFAR-10's.
pub const TRAIN_PER_CLASS: usize = 5000;

/// Records per batch file, CIFAR-10's.
const PER_FILE: usize = 10_000;

/// Fashion-MNIST's class names, in label order (for `batches.meta.txt`).
const NAMES: [&str; 10] = [
    "t-shirt/top",
    "trouser",
    "pullover",
    "dress",
    "coat",
    "sandal",
    "shirt",
    "sneaker",
    "bag",
    "ankle boot",
];

/// Writes `<out>/cifar-10-batches-bin/` from the Fashion-MNIST that `locator` finds; returns the
/// training and test record counts (50,000 and 10,000). The folder appears only once complete.
///
/// # Errors
/// [`DataError`] naming the folder or file: Fashion-MNIST missing or malformed, a class with
/// fewer than 5,000 training images, a file that cannot be written.
pub fn write(locator: &DataLocator, out: &Path) -> Result<(usize, usize), DataError> {
    let dir = locator.locate(&DatasetKind::FashionMnistLt)?.expect("not embedded");
    let train = idx::read_split(&dir, "train")?;
    let test = idx::read_split(&dir, "t10k")?;
    if let Some(images) = [&train, &test].into_iter().find(|i| i.shape != [1, 28, 28]) {
        return Err(DataError::Format {
            path: dir,
            message: format!("images of shape {:?}; Fashion-MNIST's are [1, 28, 28]", images.shape),
        });
    }
    let mut taken = [0usize; 10];
    let rows: Vec<usize> = (0..train.len())
        .filter(|&i| {
            let c = usize::try_from(train.labels[i]).expect("labels are checked");
            taken[c] += 1;
            taken[c] <= TRAIN_PER_CLASS
        })
        .collect();
    if let Some(c) = taken.iter().position(|&n| n < TRAIN_PER_CLASS) {
        return Err(DataError::Format {
            path: dir,
            message: format!(
                "class {c} has {} training images; CIFAR-10's layout needs {TRAIN_PER_CLASS}",
                taken[c]
            ),
        });
    }
    let target = out.join(FOLDER);
    let staging = out.join(format!("{FOLDER}.partial"));
    let io = |path: &Path| {
        let path = path.to_path_buf();
        move |source| DataError::Io { path, source }
    };
    if staging.exists() {
        std::fs::remove_dir_all(&staging).map_err(io(&staging))?;
    }
    std::fs::create_dir_all(&staging).map_err(io(&staging))?;
    let test_rows: Vec<usize> = (0..test.len()).collect();
    let files = rows
        .chunks(PER_FILE)
        .enumerate()
        .map(|(k, chunk)| (format!("data_batch_{}.bin", k + 1), &train, chunk))
        .chain(std::iter::once(("test_batch.bin".to_string(), &test, test_rows.as_slice())));
    for (name, images, chunk) in files {
        let mut bytes = Vec::with_capacity(chunk.len() * (1 + cifar::PIXELS));
        for &row in chunk {
            bytes.push(u8::try_from(images.labels[row]).expect("labels are 0..10"));
            bytes.extend_from_slice(&padded_rgb(&images.pixels[row * 784..(row + 1) * 784]));
        }
        let path = staging.join(&name);
        std::fs::write(&path, bytes).map_err(io(&path))?;
    }
    let meta = staging.join("batches.meta.txt");
    std::fs::write(&meta, format!("{}\n", NAMES.join("\n"))).map_err(io(&meta))?;
    if target.exists() {
        std::fs::remove_dir_all(&target).map_err(io(&target))?;
    }
    std::fs::rename(&staging, &target).map_err(io(&target))?;
    Ok((rows.len(), test.len()))
}

/// A 28 x 28 grey image as CIFAR's 3 x 32 x 32 planes: padded with 2 black pixels on every side,
/// the same plane three times.
#[must_use]
pub fn padded_rgb(grey: &[u8]) -> Vec<u8> {
    let mut plane = vec![0u8; 32 * 32];
    for (y, row) in grey.chunks_exact(28).enumerate() {
        plane[(y + 2) * 32 + 2..(y + 2) * 32 + 30].copy_from_slice(row);
    }
    plane.repeat(3)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn padding_puts_the_image_in_the_middle_of_each_plane() {
        let grey: Vec<u8> = (0..784).map(|i| u8::try_from(i % 251).unwrap()).collect();
        let rgb = padded_rgb(&grey);
        assert_eq!(rgb.len(), 3 * 1024);
        for channel in 0..3 {
            let plane = &rgb[channel * 1024..(channel + 1) * 1024];
            assert_eq!(plane[2 * 32 + 2], grey[0]);
            assert_eq!(plane[29 * 32 + 29], grey[783]);
            assert_eq!(plane[..2 * 32].iter().map(|&p| u32::from(p)).sum::<u32>(), 0);
            assert!((0..32).all(|y| plane[y * 32] == 0 && plane[y * 32 + 31] == 0));
        }
    }
}

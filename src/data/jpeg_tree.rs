//! Fashion-MNIST-LT as a JPEG tree with list files in the ImageNet-LT format: real images through
//! the same pipeline ImageNet-LT and Places-LT take (`balms jpeg-tree`).
//!
//! The long-tailed subset and its 20-per-class validation split are the ones the in-memory
//! `fashion-mnist-lt` dataset draws for the same seed and imbalance factor (same stream), so the
//! two pipelines can be compared on identical images; the test list is the Fashion-MNIST test
//! set (optionally its first `test_per_class` images of each class).

use std::fmt::Write as _;
use std::io::Write;
use std::path::{Path, PathBuf};

use image::codecs::jpeg::JpegEncoder;
use image::ExtendedColorType;

use super::{
    idx, lists, longtail, subset_stream, DataError, DataLocator, DatasetKind, VAL_PER_CLASS,
};
use crate::seed::Seed;

/// The list prefix of the tree (`FashionMNIST_LT_{train,val,test}.txt`).
pub const PREFIX: &str = "FashionMNIST_LT";

/// Settings of `balms jpeg-tree`: which Fashion-MNIST-LT subset to write as JPEGs with
/// ImageNet-LT-format lists, and where.
#[derive(Clone, Debug)]
pub struct TreeOptions {
    /// Output folder (replaced only once the new tree is complete).
    pub out: PathBuf,
    /// Imbalance factor of the train list.
    pub imbalance: f64,
    /// Head-class count (6,000 is the whole class).
    pub n_max: usize,
    /// Seed of the subset (as a matrix seed).
    pub seed: u64,
    /// Test images per class (at most 1,000).
    pub test_per_class: usize,
    /// JPEG encoder quality, 1 (worst) to 100 (best) (CLI `--quality`, default 95).
    pub quality: u8,
}

/// Writes the tree; returns the train, val and test sizes.
///
/// # Errors
/// [`DataError`] naming the folder or file.
pub fn write(locator: &DataLocator, options: &TreeOptions) -> Result<[usize; 3], DataError> {
    let kind = DatasetKind::FashionMnistLt;
    let dir = locator.locate(&kind)?.expect("not embedded");
    let train = idx::read_split(&dir, "train")?;
    let test = idx::read_split(&dir, "t10k")?;
    let counts = longtail::profile(options.n_max, options.imbalance, kind.classes());
    let mut rng = Seed(options.seed).rng(&subset_stream(&kind, options.imbalance));
    let subset = longtail::choose_subset(&train.labels, &counts, VAL_PER_CLASS, &mut rng)
        .map_err(|message| DataError::Profile { dataset: kind.name().to_string(), message })?;
    let mut taken = vec![0; kind.classes()];
    let test_rows: Vec<usize> = (0..test.len())
        .filter(|&i| {
            let c = usize::try_from(test.labels[i]).expect("label");
            taken[c] += 1;
            taken[c] <= options.test_per_class
        })
        .collect();
    let staging = options.out.with_extension("partial");
    let io = |path: &Path| {
        let path = path.to_path_buf();
        move |source| DataError::Io { path, source }
    };
    if staging.exists() {
        std::fs::remove_dir_all(&staging).map_err(io(&staging))?;
    }
    let splits = [
        ("train", &train, &subset.train),
        ("val", &train, &subset.validation),
        ("test", &test, &test_rows),
    ];
    for (split, images, rows) in splits {
        let mut list = String::new();
        for &row in rows {
            let label = images.labels[row];
            let relative = format!("{split}/{label}/{row:05}.jpg");
            let path = staging.join(&relative);
            std::fs::create_dir_all(path.parent().expect("parent")).map_err(io(&staging))?;
            let pixels = &images.pixels[row * 784..(row + 1) * 784];
            let mut bytes = Vec::new();
            JpegEncoder::new_with_quality(&mut bytes, options.quality)
                .encode(pixels, 28, 28, ExtendedColorType::L8)
                .map_err(|e| DataError::Format { path: path.clone(), message: e.to_string() })?;
            std::fs::File::create(&path)
                .and_then(|mut f| f.write_all(&bytes))
                .map_err(io(&path))?;
            let _ = writeln!(list, "{relative} {label}");
        }
        let file = staging.join(lists::file_name(PREFIX, split));
        std::fs::write(&file, list).map_err(io(&file))?;
    }
    if options.out.exists() {
        std::fs::remove_dir_all(&options.out).map_err(io(&options.out))?;
    }
    std::fs::rename(&staging, &options.out).map_err(io(&options.out))?;
    Ok([subset.train.len(), subset.validation.len(), test_rows.len()])
}

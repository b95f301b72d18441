//! A dataset read once: its training pool and test set as tensors (or an image-list dataset's
//! checked lists), from which each run draws its long-tailed subset with its own seed.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use tch::{Device, Kind, Tensor};

use super::images::{self, ImageFiles};
use super::inputs::Inputs;
use super::lists::{self, Lists};
use super::raw::RawImages;
use super::registry::{Folder, Format, Source};
use super::run_data::{subset_stream, PoolIndices, RunData, ValidationInfo, VAL_PER_CLASS};
use super::synthetic::GaussianParams;
use super::{cifar, digits, idx, longtail, DataError, DataLocator, DatasetKind};
use crate::seed::Seed;

/// A dataset as runs draw from it: the full training pool and balanced test set as tensors on the
/// CPU, or an image-list dataset's checked lists.
#[derive(Debug)]
pub struct Pool {
    /// The dataset the pool was loaded for, with its parameters.
    pub kind: DatasetKind,
    /// Where it was read from (`embedded` for built-in data).
    pub source: String,
    content: Content,
}

#[derive(Debug)]
enum Content {
    Tensors(TensorPool),
    Lists(Lists, Arc<rayon::ThreadPool>),
}

/// A pool held as tensors.
#[derive(Debug)]
struct TensorPool {
    /// Raw training pool (bytes for images); runs normalise only the subset they draw.
    train_x: Tensor,
    train_y: Vec<i64>,
    /// The test set, normalised once at load: every run of the dataset uses it as is.
    test_x: Tensor,
    test_y: Vec<i64>,
    normalize: Normalize,
}

/// Per-channel affine normalisation applied to raw inputs: `(x * scale - mean) / std`.
#[derive(Clone, Debug)]
struct Normalize {
    scale: f64,
    mean: Vec<f64>,
    std: Vec<f64>,
}

impl Normalize {
    /// Raw inputs to normalised float inputs.
    fn apply(&self, x: &Tensor) -> Tensor {
        let x = x.to_kind(Kind::Float) * self.scale;
        if x.dim() < 4 {
            return (x - self.mean[0]) / self.std[0];
        }
        let channels = i64::try_from(self.mean.len()).expect("channels fit i64");
        let mean = Tensor::from_slice(&self.mean).to_kind(Kind::Float).view([1, channels, 1, 1]);
        let std = Tensor::from_slice(&self.std).to_kind(Kind::Float).view([1, channels, 1, 1]);
        (x - mean) / std
    }
}

impl Pool {
    /// Reads `kind` from where `locator` finds it.
    ///
    /// # Errors
    /// [`DataError`] naming the folder or file.
    pub fn load(kind: &DatasetKind, locator: &DataLocator) -> Result<Pool, DataError> {
        let dir = locator.locate(kind)?;
        if let Some((prefix, _)) = kind.list() {
            let dir = dir.expect("lists are never embedded");
            let lists = Lists::read(&dir, prefix, kind.classes())?;
            check_list_imbalance(kind, &lists)?;
            lists.check_images()?;
            let source = dir.display().to_string();
            let threads = std::env::var("BALMS_DECODE_THREADS")
                .ok()
                .and_then(|t| t.parse().ok())
                .unwrap_or(0);
            let content = Content::Lists(lists, images::decode_pool(threads));
            return Ok(Pool { kind: kind.clone(), source, content });
        }
        let source =
            dir.as_ref().map_or_else(|| "embedded".to_string(), |d| d.display().to_string());
        let (train, test, normalize) = match kind.descriptor().source {
            Source::Folder(Folder { format: Format::Cifar(which), .. }) => {
                let dir = dir.clone().expect("located");
                let norm = Normalize {
                    scale: 1.0 / 255.0,
                    mean: cifar::MEAN.map(f64::from).to_vec(),
                    std: cifar::STD.map(f64::from).to_vec(),
                };
                (
                    cifar::read_split(&dir, which, true)?,
                    cifar::read_split(&dir, which, false)?,
                    norm,
                )
            }
            Source::Folder(Folder { format: Format::Idx { mean, std }, .. }) => {
                let dir = dir.clone().expect("located");
                let norm = Normalize { scale: 1.0 / 255.0, mean: vec![mean], std: vec![std] };
                (idx::read_split(&dir, "train")?, idx::read_split(&dir, "t10k")?, norm)
            }
            Source::Digits => {
                let (pool, test) = digits::split();
                (pool, test, Normalize { scale: 1.0 / 16.0, mean: vec![0.3], std: vec![0.4] })
            }
            Source::Gaussian(params) => return Ok(Self::gaussian(kind, params)),
            Source::Folder(Folder { format: Format::Lists { .. }, .. }) => {
                unreachable!("list datasets are loaded above")
            }
            Source::Folder(Folder { format: Format::Detectron2, .. }) => {
                return Err(DataError::Format {
                    path: dir.clone().unwrap_or_default(),
                    message: format!(
                        "`{}` is a detection dataset: only detectron2 methods run on it",
                        kind.name()
                    ),
                })
            }
        };
        check_labels(kind, &train, dir.as_deref())?;
        check_labels(kind, &test, dir.as_deref())?;
        let test_x = normalize.apply(&images_tensor(&test));
        let content = Content::Tensors(TensorPool {
            train_x: images_tensor(&train),
            train_y: train.labels,
            test_x,
            test_y: test.labels,
            normalize,
        });
        Ok(Pool { kind: kind.clone(), source, content })
    }

    fn gaussian(kind: &DatasetKind, params: &GaussianParams) -> Pool {
        let (pool, test) = params.generate();
        let dim = i64::try_from(params.dim).expect("dim fits i64");
        let content = Content::Tensors(TensorPool {
            train_x: Tensor::from_slice(&pool.features).view([-1, dim]),
            train_y: pool.labels,
            test_x: Tensor::from_slice(&test.features).view([-1, dim]),
            test_y: test.labels,
            normalize: Normalize { scale: 1.0, mean: vec![0.0], std: vec![1.0] },
        });
        Pool { kind: kind.clone(), source: "embedded".to_string(), content }
    }

    /// Number of test samples.
    #[must_use]
    pub fn test_len(&self) -> usize {
        match &self.content {
            Content::Tensors(t) => t.test_y.len(),
            Content::Lists(lists, _) => lists.test.paths.len(),
        }
    }

    /// The lists of an image-list dataset.
    #[must_use]
    pub fn lists(&self) -> Option<&Lists> {
        match &self.content {
            Content::Lists(lists, _) => Some(lists),
            Content::Tensors(_) => None,
        }
    }

    /// The long-tailed training subset at `imbalance` for one run, on `device`, and the test set.
    ///
    /// # Errors
    /// [`DataError::Profile`] when the pool cannot supply the profile.
    pub fn long_tailed(
        &self,
        imbalance: f64,
        seed: Seed,
        device: Device,
    ) -> Result<RunData, DataError> {
        match &self.content {
            Content::Tensors(pool) => pool.long_tailed(&self.kind, imbalance, seed, device),
            Content::Lists(lists, decode) => Ok(list_data(&self.kind, lists, decode, device)),
        }
    }
}

/// An image-list dataset's run data: its lists as they are (nothing is drawn).
fn list_data(
    kind: &DatasetKind,
    lists: &Lists,
    decode: &Arc<rayon::ThreadPool>,
    device: Device,
) -> RunData {
    let size = kind.list().expect("list dataset").1;
    let files = |list: &lists::ImageList| Inputs::Files {
        files: Arc::new(ImageFiles::new(
            list.paths.iter().map(|p| lists.root.join(p)).collect(),
            size,
            Arc::clone(decode),
        )),
        device,
    };
    let labels = |list: &lists::ImageList| Tensor::from_slice(&list.labels).to_device(device);
    let val_counts = lists.val.counts(kind.classes());
    RunData {
        train_x: files(&lists.train),
        train_y: labels(&lists.train),
        train_labels: lists.train.labels.clone(),
        val_x: files(&lists.val),
        val_y: labels(&lists.val),
        test_x: files(&lists.test),
        test_y: labels(&lists.test),
        class_counts: lists.train.counts(kind.classes()),
        indices_sha256: lists.train.sha256.clone(),
        validation: ValidationInfo {
            per_class: val_counts.iter().min().copied().unwrap_or(0),
            from_training: 0,
            indices_sha256: lists.val.sha256.clone(),
        },
        pool_indices: None,
    }
}

/// The train list's imbalance factor must be the matrix's (so a column names what it ran on).
fn check_list_imbalance(kind: &DatasetKind, lists: &Lists) -> Result<(), DataError> {
    let Source::Folder(Folder { format: Format::Lists { imbalance: imbalances, .. }, .. }) =
        kind.descriptor().source
    else {
        unreachable!("a list dataset")
    };
    let counts = lists.train.counts(kind.classes());
    let (max, min) = (counts.iter().max().copied(), counts.iter().min().copied());
    let found = max.unwrap_or(0) as f64 / min.unwrap_or(1).max(1) as f64;
    if (found - imbalances).abs() > 0.5 {
        return Err(DataError::Format {
            path: lists.train.file.clone(),
            message: format!(
                "the list's imbalance factor is {found:.1} (largest class {}, smallest {}), the \
                 matrix says {imbalances}",
                max.unwrap_or(0),
                min.unwrap_or(0)
            ),
        });
    }
    Ok(())
}

impl TensorPool {
    fn long_tailed(
        &self,
        kind: &DatasetKind,
        imbalance: f64,
        seed: Seed,
        device: Device,
    ) -> Result<RunData, DataError> {
        let counts = kind.class_counts(imbalance).expect("a profile dataset");
        let mut rng = seed.rng(&subset_stream(kind, imbalance));
        let subset = longtail::choose_subset(&self.train_y, &counts, VAL_PER_CLASS, &mut rng)
            .map_err(|message| DataError::Profile { dataset: kind.name().to_string(), message })?;
        let (train_x, train_labels) = self.gather(&subset.train, device);
        let (val_x, val_labels) = self.gather(&subset.validation, device);
        Ok(RunData {
            train_x: Inputs::Memory(train_x),
            train_y: Tensor::from_slice(&train_labels).to_device(device),
            train_labels,
            val_x: Inputs::Memory(val_x),
            val_y: Tensor::from_slice(&val_labels).to_device(device),
            test_x: Inputs::Memory(self.test_x.to_device(device)),
            test_y: Tensor::from_slice(&self.test_y).to_device(device),
            class_counts: counts,
            indices_sha256: longtail::indices_hash(&subset.train),
            validation: ValidationInfo {
                per_class: VAL_PER_CLASS,
                from_training: subset.validation_from_training,
                indices_sha256: longtail::indices_hash(&subset.validation),
            },
            pool_indices: Some(PoolIndices {
                train: subset.train.clone(),
                validation: subset.validation.clone(),
            }),
        })
    }

    /// Normalised pool images at `indices`, on `device`, and their labels.
    fn gather(&self, indices: &[usize], device: Device) -> (Tensor, Vec<i64>) {
        let index: Vec<i64> =
            indices.iter().map(|&i| i64::try_from(i).expect("pool indices fit i64")).collect();
        let index = Tensor::from_slice(&index);
        let labels = indices.iter().map(|&i| self.train_y[i]).collect();
        (self.normalize.apply(&self.train_x.index_select(0, &index)).to_device(device), labels)
    }
}

fn images_tensor(raw: &RawImages) -> Tensor {
    let [c, h, w] = raw.shape.map(|d| i64::try_from(d).expect("dims fit i64"));
    Tensor::from_slice(&raw.pixels).view([-1, c, h, w])
}

fn check_labels(kind: &DatasetKind, raw: &RawImages, dir: Option<&Path>) -> Result<(), DataError> {
    let classes = i64::try_from(kind.classes()).expect("classes fit i64");
    match raw.labels.iter().find(|&&y| y < 0 || y >= classes) {
        Some(bad) => Err(DataError::Format {
            path: dir.map_or_else(|| PathBuf::from("embedded"), Path::to_path_buf),
            message: format!("label {bad} outside 0..{classes} for `{}`", kind.name()),
        }),
        None => Ok(()),
    }
}

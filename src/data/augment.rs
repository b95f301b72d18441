//! Seeded training augmentation as tensor ops on the run's device.
//!
//! tch's own `vision::dataset` augmentation draws from the thread-local generator, which no seed
//! controls; this module takes the run's augmentation generator explicitly.

use rand::Rng;
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};
use tch::Tensor;

/// Training augmentation, as named in a matrix.
#[derive(strum::VariantNames, strum::EnumIter, strum::EnumMessage)]
#[strum(serialize_all = "kebab-case")]
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum AugmentSpec {
    /// No augmentation.
    #[strum(message = "no augmentation")]
    None,
    /// Random crop after zero padding, then a horizontal flip with probability 1/2 (the CIFAR
    /// recipe's first two steps; padding 4 there). Padding is applied to normalised inputs, so it
    /// fills with the dataset mean where torchvision fills with black.
    #[strum(
        message = "random crop after padding, horizontal flip",
        detailed_message = "crop-flip { padding = 4 }"
    )]
    CropFlip {
        /// Pixels of padding on each side.
        padding: i64,
    },
    /// Image-file datasets only (ImageNet-LT, Places-LT, image lists): the official training
    /// transform, `RandomResizedCrop` + flip + `ColorJitter(jitter, jitter, jitter, 0)`, applied
    /// while decoding (`data::images`); `jitter = 0` leaves colours alone.
    #[strum(message = "RandomResizedCrop + flip + ColorJitter (image lists)")]
    RandomResizedCrop {
        /// Colour-jitter strength (0.4 in the official configs).
        #[serde(default = "default_jitter")]
        jitter: f64,
    },
}

fn default_jitter() -> f64 {
    0.4
}

impl AugmentSpec {
    /// Applies the augmentation to a batch `[B, C, H, W]`; vector inputs pass through.
    ///
    /// # Shapes
    /// Input and output `[B, C, H, W]`.
    pub fn apply(&self, batch: &Tensor, rng: &mut ChaCha8Rng) -> Tensor {
        match self {
            AugmentSpec::None => batch.shallow_clone(),
            AugmentSpec::CropFlip { padding } if batch.dim() == 4 => {
                crop_flip(batch, *padding, rng)
            }
            AugmentSpec::CropFlip { .. } | AugmentSpec::RandomResizedCrop { .. } => {
                batch.shallow_clone()
            }
        }
    }

    /// Short label for plans and captions.
    #[must_use]
    pub fn label(&self) -> String {
        match self {
            AugmentSpec::None => "none".to_string(),
            AugmentSpec::CropFlip { padding } => format!("crop(pad {padding})+flip"),
            AugmentSpec::RandomResizedCrop { jitter } => {
                format!("random-resized-crop+flip+color-jitter({jitter})")
            }
        }
    }
}

/// Per sample, draws the crop offsets `dy`, `dx` and the flip (in that order, one sample after
/// another) from `rng` on the CPU, then applies them to the whole batch with two gathers on the
/// batch's device: no per-sample kernels, so it stays cheap on a GPU.
fn crop_flip(batch: &Tensor, padding: i64, rng: &mut ChaCha8Rng) -> Tensor {
    let (b, c, h, w) = batch.size4().expect("image batch");
    let device = batch.device();
    let mut rows = Vec::with_capacity(usize::try_from(b * h).expect("fits"));
    let mut cols = Vec::with_capacity(usize::try_from(b * w).expect("fits"));
    for _ in 0..b {
        let dy = rng.gen_range(0..=2 * padding);
        let dx = rng.gen_range(0..=2 * padding);
        let flip = rng.gen_bool(0.5);
        rows.extend((0..h).map(|i| dy + i));
        cols.extend((0..w).map(|j| dx + if flip { w - 1 - j } else { j }));
    }
    let padded = batch.constant_pad_nd([padding, padding, padding, padding]);
    let rows = Tensor::from_slice(&rows).to_device(device).view([b, 1, h, 1]);
    let cols = Tensor::from_slice(&cols).to_device(device).view([b, 1, 1, w]);
    padded.gather(2, &rows.expand([b, c, h, w + 2 * padding], false), false).gather(
        3,
        &cols.expand([b, c, h, w], false),
        false,
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    /// The per-sample definition: crop a window of the padded image, then maybe flip it.
    fn crop_flip_per_sample(batch: &Tensor, padding: i64, rng: &mut ChaCha8Rng) -> Tensor {
        let (_, _, h, w) = batch.size4().unwrap();
        let padded = batch.constant_pad_nd([padding, padding, padding, padding]);
        let samples: Vec<Tensor> = (0..batch.size()[0])
            .map(|i| {
                let dy = rng.gen_range(0..=2 * padding);
                let dx = rng.gen_range(0..=2 * padding);
                let crop = padded.get(i).narrow(1, dy, h).narrow(2, dx, w);
                if rng.gen_bool(0.5) {
                    crop.flip([2])
                } else {
                    crop
                }
            })
            .collect();
        Tensor::stack(&samples, 0)
    }

    #[test]
    fn batched_crop_flip_equals_the_per_sample_definition() {
        let x = Tensor::randn([16, 3, 7, 9], (tch::Kind::Float, tch::Device::Cpu));
        for seed in 0..5 {
            let fast = crop_flip(&x, 3, &mut ChaCha8Rng::seed_from_u64(seed));
            let slow = crop_flip_per_sample(&x, 3, &mut ChaCha8Rng::seed_from_u64(seed));
            assert!(fast.equal(&slow), "seed {seed}");
        }
    }

    #[test]
    fn crop_flip_is_seeded_and_keeps_shape() {
        let x =
            Tensor::arange(2 * 3 * 5 * 5, (tch::Kind::Float, tch::Device::Cpu)).view([2, 3, 5, 5]);
        let spec = AugmentSpec::CropFlip { padding: 2 };
        let a = spec.apply(&x, &mut ChaCha8Rng::seed_from_u64(3));
        let b = spec.apply(&x, &mut ChaCha8Rng::seed_from_u64(3));
        assert_eq!(a.size(), [2, 3, 5, 5]);
        assert!(a.equal(&b));
        let differs =
            (0..20u64).any(|s| !spec.apply(&x, &mut ChaCha8Rng::seed_from_u64(s)).equal(&a));
        assert!(differs);
        assert!(AugmentSpec::None.apply(&x, &mut ChaCha8Rng::seed_from_u64(0)).equal(&x));
    }
}

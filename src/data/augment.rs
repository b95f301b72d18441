//! Seeded training augmentation as tensor ops on the run's device.
//!
//! tch's own `vision::dataset` augmentation draws from the thread-local generator, which no seed
//! controls; this module takes the run's augmentation generator explicitly.

use rand::{Rng, RngCore, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rayon::prelude::*;
use serde::{Deserialize, Serialize};
use tch::{Device, Kind, Tensor};

use super::autoaugment::{self, Policy, Rgb};
use super::cifar;

/// Training augmentation, as named in a matrix.
#[derive(strum::VariantNames, strum::EnumIter, strum::EnumMessage)]
#[strum(serialize_all = "kebab-case")]
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
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
    /// The official CIFAR-LT training transform (BALMS `data/ImbalanceCIFAR.py`), on the 8-bit
    /// images: random crop after `padding` black pixels, horizontal flip, the AutoAugment
    /// CIFAR-10 `policy` (`data::autoaugment`), then Cutout of one `cutout` x `cutout` hole (0:
    /// none) set to 0 before normalisation. CIFAR-format datasets only (it undoes and redoes
    /// CIFAR's normalisation). Defaults: the official code's (padding 4, the policy, 16).
    #[strum(
        message = "the official CIFAR transform: crop (black padding) + flip + AutoAugment CIFAR-10 policy + Cutout",
        detailed_message = "cifar { padding = 4, policy = \"autoaugment-cifar10\", cutout = 16 }"
    )]
    Cifar {
        /// Pixels of black padding on each side before the 32 x 32 crop.
        #[serde(default = "default_padding")]
        padding: usize,
        /// The augmentation policy after crop and flip.
        #[serde(default)]
        policy: Policy,
        /// Side of Cutout's square hole in pixels (0: no Cutout).
        #[serde(default = "default_cutout")]
        cutout: usize,
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

fn default_padding() -> usize {
    4
}

fn default_cutout() -> usize {
    16
}

impl AugmentSpec {
    /// Applies the augmentation to a batch `[B, C, H, W]`; vector inputs pass through.
    ///
    /// # Shapes
    /// Input and output `[B, C, H, W]`.
    pub fn apply(&self, batch: &Tensor, rng: &mut ChaCha8Rng) -> Tensor {
        match self {
            AugmentSpec::CropFlip { padding } if batch.dim() == 4 => {
                crop_flip(batch, *padding, rng)
            }
            AugmentSpec::Cifar { padding, policy, cutout } if batch.dim() == 4 => {
                cifar_transform(batch, (*padding, *policy, *cutout), rng.next_u64())
            }
            AugmentSpec::None
            | AugmentSpec::CropFlip { .. }
            | AugmentSpec::Cifar { .. }
            | AugmentSpec::RandomResizedCrop { .. } => batch.shallow_clone(),
        }
    }

    /// Short label for plans and captions.
    #[must_use]
    pub fn label(&self) -> String {
        match self {
            AugmentSpec::None => "none".to_string(),
            AugmentSpec::CropFlip { padding } => format!("crop(pad {padding})+flip"),
            AugmentSpec::Cifar { padding, policy, cutout } => {
                let policy = match policy {
                    Policy::AutoaugmentCifar10 => "+autoaugment-cifar10",
                    Policy::None => "",
                };
                let cutout = if *cutout > 0 { format!("+cutout({cutout})") } else { String::new() };
                format!("crop(pad {padding}, black)+flip{policy}{cutout}")
            }
            AugmentSpec::RandomResizedCrop { jitter } => {
                format!("random-resized-crop+flip+color-jitter({jitter})")
            }
        }
    }
}

/// CIFAR's normalised floats back to their bytes: `round((x * std + mean) * 255)`, exact for
/// every byte (the normalisation's float error is far below half a level).
fn cifar_bytes(batch: &Tensor) -> Vec<u8> {
    let mean = Tensor::from_slice(&cifar::MEAN).view([1, 3, 1, 1]);
    let std = Tensor::from_slice(&cifar::STD).view([1, 3, 1, 1]);
    let x = batch.to_device(Device::Cpu).to_kind(Kind::Double);
    let bytes = ((x * std.to_kind(Kind::Double) + mean.to_kind(Kind::Double)) * 255.0)
        .round()
        .clamp(0.0, 255.0)
        .to_kind(Kind::Uint8)
        .permute([0, 2, 3, 1])
        .contiguous();
    Vec::<u8>::try_from(bytes.flatten(0, -1)).expect("bytes")
}

/// One image of the official CIFAR training transform, up to its 8-bit result and Cutout's hole:
/// crop after black padding, flip, policy, drawn from `rng` in that order, then Cutout's centre.
#[must_use]
pub fn cifar_image(
    image: &Rgb,
    (padding, policy, cutout): (usize, Policy, usize),
    rng: &mut ChaCha8Rng,
) -> (Rgb, Option<(usize, usize, usize, usize)>) {
    let (w, h) = (image.width, image.height);
    let dy = rng.gen_range(0..=2 * padding);
    let dx = rng.gen_range(0..=2 * padding);
    let flip = rng.gen_bool(0.5);
    let mut out = Rgb::filled(w, h, [0; 3]);
    for y in 0..h {
        for x in 0..w {
            // Padded coordinates (y + dy, x + dx) back in the image, or the black padding.
            let (sy, sx) = ((y + dy).checked_sub(padding), (x + dx).checked_sub(padding));
            if let (Some(sy), Some(sx)) = (sy, sx) {
                if sy < h && sx < w {
                    let tx = if flip { w - 1 - x } else { x };
                    let i = 3 * (sy * w + sx);
                    let o = 3 * (y * w + tx);
                    out.pixels[o..o + 3].copy_from_slice(&image.pixels[i..i + 3]);
                }
            }
        }
    }
    if policy == Policy::AutoaugmentCifar10 {
        out = autoaugment::apply(&out, &autoaugment::draw(rng));
    }
    let hole = (cutout > 0).then(|| {
        let centre = (rng.gen_range(0..h), rng.gen_range(0..w));
        autoaugment::cutout_hole((h, w), centre, cutout)
    });
    (out, hole)
}

/// The pool the CIFAR transform runs on: as many threads as libtorch's intra-op threads when first
/// used (the run's `--threads`, so `--jobs` workers do not each take every core).
fn pool() -> &'static rayon::ThreadPool {
    static POOL: std::sync::OnceLock<rayon::ThreadPool> = std::sync::OnceLock::new();
    POOL.get_or_init(|| {
        let threads = usize::try_from(tch::get_num_threads()).unwrap_or(1).max(1);
        rayon::ThreadPoolBuilder::new().num_threads(threads).build().expect("a thread pool")
    })
}

/// The official CIFAR training transform of a normalised batch `[B, 3, H, W]`: each image from its
/// own stream (`seed`, stream = position in the batch), in parallel on the CPU (the caller's rayon
/// pool, else [`pool`]), the same bytes whatever the number of threads; the result normalised
/// again on the batch's device.
fn cifar_transform(batch: &Tensor, spec: (usize, Policy, usize), seed: u64) -> Tensor {
    let (images, channels, h, w) = batch.size4().expect("image batch");
    assert_eq!(channels, 3, "the CIFAR transform takes RGB images");
    let (hu, wu) = (usize::try_from(h).expect("fits"), usize::try_from(w).expect("fits"));
    let bytes = cifar_bytes(batch);
    let plane = hu * wu;
    let work = || -> Vec<(Vec<u8>, Vec<u8>)> {
        bytes
            .par_chunks_exact(3 * plane)
            .enumerate()
            .map(|(i, pixels)| {
                let mut rng = ChaCha8Rng::seed_from_u64(seed);
                rng.set_stream(i as u64);
                let image = Rgb { width: wu, height: hu, pixels: pixels.to_vec() };
                let (out, hole) = cifar_image(&image, spec, &mut rng);
                let mut keep = vec![1u8; plane];
                if let Some((y0, y1, x0, x1)) = hole {
                    for y in y0..y1 {
                        keep[y * wu + x0..y * wu + x1].fill(0);
                    }
                }
                (out.pixels, keep)
            })
            .collect()
    };
    // Inside a caller's pool (a benchmark, a test), that pool; else the run's.
    let done = if rayon::current_thread_index().is_some() { work() } else { pool().install(work) };
    let pixels: Vec<u8> = done.iter().flat_map(|(p, _)| p.iter().copied()).collect();
    let keep: Vec<u8> = done.iter().flat_map(|(_, k)| k.iter().copied()).collect();
    let device = batch.device();
    let x =
        Tensor::from_slice(&pixels).view([images, h, w, 3]).permute([0, 3, 1, 2]).to_device(device);
    let keep = Tensor::from_slice(&keep).view([images, 1, h, w]).to_device(device);
    let mean = Tensor::from_slice(&cifar::MEAN).view([1, 3, 1, 1]).to_device(device);
    let std = Tensor::from_slice(&cifar::STD).view([1, 3, 1, 1]).to_device(device);
    // ToTensor, Cutout's zeros, Normalize: as the official code, in single precision.
    let x = x.to_kind(Kind::Float) / 255.0 * keep.to_kind(Kind::Float);
    ((x - mean) / std).contiguous()
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

    #[test]
    fn cifar_bytes_come_back_exactly_from_the_normalised_floats() {
        let all = Tensor::arange(256, (Kind::Int64, Device::Cpu)).to_kind(Kind::Uint8);
        let bytes = Tensor::stack(&[&all, &all.flip([0]), &all], 0).view([1, 3, 16, 16]);
        let back = cifar_bytes(&cifar::normalised(&bytes));
        let expected = Vec::<u8>::try_from(bytes.permute([0, 2, 3, 1]).flatten(0, -1)).unwrap();
        assert_eq!(back, expected);
    }

    /// Six images of seeded random bytes, `[6, 3, 32, 32]`.
    fn cifar_batch_bytes() -> Vec<u8> {
        let mut rng = ChaCha8Rng::seed_from_u64(3);
        (0..6 * 3 * 32 * 32).map(|_| rng.gen()).collect()
    }

    #[test]
    fn the_cifar_transform_is_seeded_and_the_same_on_any_number_of_threads() {
        let bytes = cifar_batch_bytes();
        let spec =
            AugmentSpec::Cifar { padding: 4, policy: Policy::AutoaugmentCifar10, cutout: 16 };
        let run = |spec: &AugmentSpec, threads: usize, seed: u64| {
            let pool = rayon::ThreadPoolBuilder::new().num_threads(threads).build().unwrap();
            pool.install(|| {
                let x = cifar::normalised(&Tensor::from_slice(&bytes).view([6, 3, 32, 32]));
                spec.apply(&x, &mut ChaCha8Rng::seed_from_u64(seed))
            })
        };
        let one = run(&spec, 1, 5);
        assert_eq!(one.size(), [6, 3, 32, 32]);
        assert!(one.equal(&run(&spec, 2, 5)) && one.equal(&run(&spec, 3, 5)));
        assert!(!one.equal(&run(&spec, 1, 6)));
        // Cutout's hole holds -mean/std: 0 before normalisation (without padding, which is
        // black too; random bytes are almost never black in all three channels).
        let cutout_only = AugmentSpec::Cifar { padding: 0, policy: Policy::None, cutout: 16 };
        let one = run(&cutout_only, 1, 5);
        let zero = Tensor::from_slice(&cifar::MEAN).neg() / Tensor::from_slice(&cifar::STD);
        let holes = one.eq_tensor(&zero.view([1, 3, 1, 1])).all_dim(1, false);
        let per_image =
            holes.to_kind(Kind::Int64).sum_dim_intlist(&[1i64, 2][..], false, Kind::Int64);
        for n in Vec::<i64>::try_from(per_image).unwrap() {
            assert!((64..=256).contains(&n), "a hole of {n} pixels");
        }
    }

    #[test]
    fn crop_pads_black_and_flip_mirrors_without_policy_or_cutout() {
        let image = Rgb { width: 4, height: 3, pixels: (1..=36).collect() };
        let mut seen_black = false;
        let mut seen_flip = false;
        for seed in 0..200 {
            let mut rng = ChaCha8Rng::seed_from_u64(seed);
            let (out, hole) = cifar_image(&image, (1, Policy::None, 0), &mut rng);
            assert!(hole.is_none());
            // Every output pixel is black padding or an input pixel; rows keep their order.
            for p in out.pixels.chunks(3) {
                assert!(p == [0, 0, 0] || image.pixels.chunks(3).any(|q| q == p));
            }
            seen_black |= out.pixels.chunks(3).any(|p| p == [0, 0, 0]);
            let mut rng = ChaCha8Rng::seed_from_u64(seed);
            let (dy, dx): (usize, usize) = (rng.gen_range(0..=2), rng.gen_range(0..=2));
            if rng.gen_bool(0.5) && (dy, dx) == (1, 1) {
                // No shift: the image mirrored.
                let mirrored: Vec<u8> = (0..3)
                    .flat_map(|y| {
                        (0..4).rev().flat_map(move |x| [0, 1, 2].map(|c| 3 * (4 * y + x) + c + 1))
                    })
                    .map(|v| u8::try_from(v).unwrap())
                    .collect();
                assert_eq!(out.pixels, mirrored);
                seen_flip = true;
            }
        }
        assert!(seen_black && seen_flip);
    }

    #[test]
    fn cutout_centres_are_uniform_over_the_image() {
        let image = Rgb::filled(32, 32, [200; 3]);
        let mut counts = vec![0.0; 32 * 32];
        let draws = 51_200;
        for seed in 0..draws {
            let mut rng = ChaCha8Rng::seed_from_u64(seed);
            let (_, hole) = cifar_image(&image, (0, Policy::None, 16), &mut rng);
            let (y0, y1, x0, x1) = hole.unwrap();
            // The centre back from the hole: y0 = cy - 8 unless clipped, then y1 = cy + 8.
            let cy = if y0 > 0 { y0 + 8 } else { y1 - 8 };
            let cx = if x0 > 0 { x0 + 8 } else { x1 - 8 };
            counts[cy * 32 + cx] += 1.0;
        }
        let expected = f64::from(u32::try_from(draws).unwrap()) / 1024.0;
        let chi: f64 = counts.iter().map(|c| (c - expected).powi(2) / expected).sum();
        // 1,023 degrees of freedom: the 99.9% quantile is about 1,168.
        assert!(chi < 1168.0, "chi-square {chi}");
    }
}

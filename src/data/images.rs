//! JPEG image files to normalised tensors: decoding in parallel, the official
//! ImageNet-LT/Places-LT transforms with explicit seeds, and a bounded prefetch of training
//! batches.
//!
//! Training transform (Kang et al., BALMS `data/dataloader.py`): `RandomResizedCrop(crop)`
//! (scale 0.08–1, ratio 3/4–4/3, ten tries then a centre crop, as torchvision), horizontal flip
//! with probability 1/2, `ColorJitter(0.4, 0.4, 0.4, 0)` (factors uniform in [0.6, 1.4], applied
//! in a random order), then ImageNet normalisation. Test transform: shorter side resized to
//! `resize`, `CenterCrop(crop)`. Resizing is bilinear with antialiasing (a triangle filter whose
//! support grows when shrinking, as PIL's `BILINEAR`); colour jitter works on floats in [0, 1]
//! (torchvision's tensor path) rather than PIL's 8-bit images.
//!
//! Each training sample draws from its own ChaCha8 stream (the batch's seed, stream = position in
//! the batch), so the augmentation is the same whatever the number of decoding threads.

use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::sync::Arc;

use image::imageops;
use image::RgbImage;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rayon::prelude::*;
use serde::{Deserialize, Serialize};

/// ImageNet channel means (RGB), as the official transforms.
pub const MEAN: [f32; 3] = [0.485, 0.456, 0.406];
/// ImageNet channel standard deviations (RGB).
pub const STD: [f32; 3] = [0.229, 0.224, 0.225];

/// Image sizes of a list dataset: training crops and test resize/crop.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct ImageSize {
    /// Side of the square crops fed to the network (224 in the paper).
    #[serde(default = "ImageSize::default_crop")]
    pub crop: u32,
    /// Test images' shorter side before the centre crop (256 in the paper).
    #[serde(default = "ImageSize::default_resize")]
    pub resize: u32,
}

impl ImageSize {
    /// 224, the paper's crop.
    #[must_use]
    pub fn default_crop() -> u32 {
        224
    }

    /// 256, the paper's test resize.
    #[must_use]
    pub fn default_resize() -> u32 {
        256
    }
}

impl Default for ImageSize {
    fn default() -> Self {
        ImageSize { crop: Self::default_crop(), resize: Self::default_resize() }
    }
}

/// Why an image could not be used.
#[derive(Debug, thiserror::Error)]
#[error("image `{path}`: {message}")]
pub struct ImageError {
    /// The image file.
    pub path: PathBuf,
    /// The reader's or decoder's message.
    pub message: String,
}

/// Decodes `path` to 8-bit RGB (grayscale is replicated, as PIL's `convert('RGB')`).
///
/// # Errors
/// [`ImageError`] naming the file.
pub fn decode(path: &Path) -> Result<RgbImage, ImageError> {
    let error = |message: String| ImageError { path: path.to_path_buf(), message };
    let reader = image::ImageReader::open(path)
        .map_err(|e| error(e.to_string()))?
        .with_guessed_format()
        .map_err(|e| error(e.to_string()))?;
    Ok(reader.decode().map_err(|e| error(e.to_string()))?.to_rgb8())
}

/// The crop `(top, left, height, width)` of torchvision's `RandomResizedCrop.get_params` with
/// scale (0.08, 1) and ratio (3/4, 4/3): up to ten tries of a random area and log-uniform aspect
/// ratio, else a centre crop clamped to the ratio range.
pub fn random_resized_crop(width: u32, height: u32, rng: &mut ChaCha8Rng) -> (u32, u32, u32, u32) {
    let (w, h) = (f64::from(width), f64::from(height));
    let area = w * h;
    let (lo, hi) = ((3.0f64 / 4.0).ln(), (4.0f64 / 3.0).ln());
    for _ in 0..10 {
        let target = area * rng.gen_range(0.08..1.0);
        let aspect = rng.gen_range(lo..hi).exp();
        let cw = (target * aspect).sqrt().round_ties_even();
        let ch = (target / aspect).sqrt().round_ties_even();
        if cw > 0.0 && cw <= w && ch > 0.0 && ch <= h {
            #[expect(
                clippy::cast_possible_truncation,
                clippy::cast_sign_loss,
                reason = "rounded crop sides in 1..=width and 1..=height, checked just above"
            )]
            let (cw, ch) = (cw as u32, ch as u32);
            let top = rng.gen_range(0..=height - ch);
            let left = rng.gen_range(0..=width - cw);
            return (top, left, ch, cw);
        }
    }
    let ratio = w / h;
    #[expect(
        clippy::cast_possible_truncation,
        clippy::cast_sign_loss,
        reason = "a rounded side of the centre crop, no longer than the image's"
    )]
    let (cw, ch) = if ratio < 3.0 / 4.0 {
        (width, (w / (3.0 / 4.0)).round() as u32)
    } else if ratio > 4.0 / 3.0 {
        ((h * (4.0 / 3.0)).round() as u32, height)
    } else {
        (width, height)
    };
    let (cw, ch) = (cw.min(width), ch.min(height));
    ((height - ch) / 2, (width - cw) / 2, ch, cw)
}

/// Colour-jitter factors and their order: brightness, contrast, saturation uniform in
/// `[1 - s, 1 + s]`, applied in a random permutation of the four torchvision operations (hue,
/// strength 0, is skipped).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Jitter {
    order: [u8; 4],
    factors: [f32; 3],
}

impl Jitter {
    /// Draws the permutation, then the three factors, as torchvision's `ColorJitter.get_params`.
    pub fn draw(strength: f64, rng: &mut ChaCha8Rng) -> Jitter {
        let mut order = [0u8, 1, 2, 3];
        for i in (1..4).rev() {
            order.swap(i, rng.gen_range(0..=i));
        }
        #[expect(
            clippy::cast_possible_truncation,
            reason = "a jitter factor near 1, used in f32 as torchvision's tensors are"
        )]
        let mut factor = || rng.gen_range(1.0 - strength..=1.0 + strength) as f32;
        let factors = [factor(), factor(), factor()];
        Jitter { order, factors }
    }

    /// Applies the jitter to interleaved RGB floats in [0, 1].
    pub fn apply(&self, rgb: &mut [f32]) {
        for op in self.order {
            match op {
                0 => rgb.iter_mut().for_each(|v| *v = (*v * self.factors[0]).clamp(0.0, 1.0)),
                1 => {
                    let mean = rgb.chunks(3).map(gray).sum::<f32>() / (rgb.len() / 3) as f32;
                    blend(rgb, self.factors[1], |_| mean);
                }
                2 => {
                    let grays: Vec<f32> = rgb.chunks(3).map(gray).collect();
                    blend(rgb, self.factors[2], |pixel| grays[pixel]);
                }
                _ => {}
            }
        }
    }
}

/// ITU-R 601 luma, as torchvision's `rgb_to_grayscale`.
fn gray(p: &[f32]) -> f32 {
    0.299 * p[0] + 0.587 * p[1] + 0.114 * p[2]
}

/// `x = clamp(f x + (1 - f) other(pixel))`.
fn blend(rgb: &mut [f32], factor: f32, other: impl Fn(usize) -> f32) {
    for (pixel, p) in rgb.chunks_mut(3).enumerate() {
        let o = other(pixel);
        for v in p.iter_mut() {
            *v = (factor * *v + (1.0 - factor) * o).clamp(0.0, 1.0);
        }
    }
}

/// The training transform of one image with its own stream `rng`: crop, resize, flip, jitter,
/// normalise; `[3, crop, crop]` floats, channel-major.
#[must_use]
pub fn train_transform(
    image: &RgbImage,
    size: ImageSize,
    jitter: f64,
    rng: &mut ChaCha8Rng,
) -> Vec<f32> {
    let (top, left, h, w) = random_resized_crop(image.width(), image.height(), rng);
    let mut resized = resize(image, (left, top, w, h), (size.crop, size.crop));
    if rng.gen_bool(0.5) {
        imageops::flip_horizontal_in_place(&mut resized);
    }
    let mut rgb: Vec<f32> = resized.as_raw().iter().map(|&v| f32::from(v) / 255.0).collect();
    if jitter > 0.0 {
        Jitter::draw(jitter, rng).apply(&mut rgb);
    }
    normalise(&rgb, size.crop)
}

/// The test transform: shorter side to `size.resize` (the longer scaled by the same factor,
/// truncated, as torchvision), then the centre `crop` x `crop` (offsets rounded half to even, as
/// Python's `round`).
#[must_use]
pub fn test_transform(image: &RgbImage, size: ImageSize) -> Vec<f32> {
    let (w, h) = (image.width(), image.height());
    #[expect(
        clippy::cast_possible_truncation,
        reason = "JPEG sides are at most 65,535, so resize x longer / shorter fits u32"
    )]
    let (nw, nh) = if w <= h {
        (size.resize, (u64::from(size.resize) * u64::from(h) / u64::from(w)) as u32)
    } else {
        ((u64::from(size.resize) * u64::from(w) / u64::from(h)) as u32, size.resize)
    };
    let resized = resize(image, (0, 0, w, h), (nw, nh));
    let offset = |side: u32| {
        #[expect(
            clippy::cast_possible_truncation,
            clippy::cast_sign_loss,
            reason = "a non-negative offset (clamped at 0) below the resized side"
        )]
        let o = ((f64::from(side) - f64::from(size.crop)) / 2.0).round_ties_even().max(0.0) as u32;
        o
    };
    let crop = size.crop.min(nw).min(nh);
    let cropped = imageops::crop_imm(&resized, offset(nw), offset(nh), crop, crop).to_image();
    let rgb: Vec<f32> = cropped.as_raw().iter().map(|&v| f32::from(v) / 255.0).collect();
    normalise(&rgb, crop)
}

/// The region `(left, top, width, height)` of `image` resized to `(width, height)`: bilinear
/// with antialiasing, as PIL's `BILINEAR` (a convolution whose support grows when shrinking),
/// by `fast_image_resize`'s SIMD kernels.
fn resize(image: &RgbImage, region: (u32, u32, u32, u32), to: (u32, u32)) -> RgbImage {
    use fast_image_resize as fr;
    let source = fr::images::ImageRef::new(
        image.width(),
        image.height(),
        image.as_raw(),
        fr::PixelType::U8x3,
    )
    .expect("an RGB buffer of its size");
    let mut target = fr::images::Image::new(to.0, to.1, fr::PixelType::U8x3);
    let (left, top, width, height) = region;
    let options = fr::ResizeOptions::new()
        .resize_alg(fr::ResizeAlg::Convolution(fr::FilterType::Bilinear))
        .crop(f64::from(left), f64::from(top), f64::from(width), f64::from(height));
    fr::Resizer::new().resize(&source, &mut target, &options).expect("same pixel types");
    RgbImage::from_raw(to.0, to.1, target.into_vec()).expect("an RGB buffer of its size")
}

/// Interleaved RGB in [0, 1] to normalised channel-major floats.
fn normalise(rgb: &[f32], side: u32) -> Vec<f32> {
    let plane = (side * side) as usize;
    let mut out = vec![0.0f32; 3 * plane];
    for (i, p) in rgb.chunks(3).enumerate() {
        for c in 0..3 {
            out[c * plane + i] = (p[c] - MEAN[c]) / STD[c];
        }
    }
    out
}

/// How a set of files is turned into tensors.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Transform {
    /// Deterministic test transform.
    Test,
    /// Training transform with colour-jitter strength (0 turns it off).
    Train {
        /// `ColorJitter` brightness/contrast/saturation strength.
        jitter: f64,
    },
}

/// A list of image files and the thread pool that decodes them.
#[derive(Debug)]
pub struct ImageFiles {
    /// Full paths, in list order.
    pub paths: Vec<PathBuf>,
    /// Crop side of every decoded image and the test transform's shorter-side resize, in pixels
    /// (defaults 224 and 256, the paper's).
    pub size: ImageSize,
    pool: Arc<rayon::ThreadPool>,
}

/// A decoded batch: `[n, 3, crop, crop]` floats, channel-major.
pub type Batch = Result<(Vec<f32>, i64), ImageError>;

impl ImageFiles {
    /// Files `paths` decoded on `pool`.
    #[must_use]
    pub fn new(paths: Vec<PathBuf>, size: ImageSize, pool: Arc<rayon::ThreadPool>) -> ImageFiles {
        ImageFiles { paths, size, pool }
    }

    /// Decodes and transforms rows `rows` in parallel, in order. `seed` gives each training
    /// sample its stream (ignored by the test transform).
    ///
    /// # Errors
    /// The first [`ImageError`] met.
    pub fn load(&self, rows: &[i64], transform: Transform, seed: u64) -> Batch {
        let one = |(k, &row): (usize, &i64)| -> Result<Vec<f32>, ImageError> {
            let path = &self.paths[usize::try_from(row).expect("row index")];
            let image = decode(path)?;
            Ok(match transform {
                Transform::Test => test_transform(&image, self.size),
                Transform::Train { jitter } => {
                    let mut rng = ChaCha8Rng::seed_from_u64(seed);
                    rng.set_stream(k as u64);
                    train_transform(&image, self.size, jitter, &mut rng)
                }
            })
        };
        let samples: Vec<Vec<f32>> =
            self.pool.install(|| rows.par_iter().enumerate().map(one).collect::<Result<_, _>>())?;
        let n = i64::try_from(samples.len()).expect("fits");
        Ok((samples.concat(), n))
    }

    /// Decodes `jobs` (rows and seed per batch) on a background thread, at most `ahead` batches
    /// ahead of the consumer; batches arrive in order. Dropping the receiver stops the work.
    #[must_use]
    pub fn prefetch(
        self: &Arc<Self>,
        jobs: Vec<(Vec<i64>, u64)>,
        transform: Transform,
        ahead: usize,
    ) -> mpsc::Receiver<Batch> {
        let (sender, receiver) = mpsc::sync_channel(ahead.max(1));
        let files = Arc::clone(self);
        std::thread::spawn(move || {
            for (rows, seed) in jobs {
                let batch = files.load(&rows, transform, seed);
                let failed = batch.is_err();
                if sender.send(batch).is_err() || failed {
                    return;
                }
            }
        });
        receiver
    }
}

/// A decoding pool of `threads` threads (0: one per available core).
///
/// # Panics
/// If the operating system refuses the threads.
#[must_use]
pub fn decode_pool(threads: usize) -> Arc<rayon::ThreadPool> {
    let threads = if threads == 0 {
        std::thread::available_parallelism().map_or(1, std::num::NonZeroUsize::get)
    } else {
        threads
    };
    Arc::new(
        rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .thread_name(|i| format!("balms-decode-{i}"))
            .build()
            .expect("decoding threads"),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rng(seed: u64) -> ChaCha8Rng {
        ChaCha8Rng::seed_from_u64(seed)
    }

    #[test]
    fn random_resized_crop_stays_inside_and_respects_area_and_ratio() {
        let mut r = rng(1);
        for (w, h) in [(500, 375), (375, 500), (28, 28), (1000, 40), (40, 1000)] {
            for _ in 0..200 {
                let (top, left, ch, cw) = random_resized_crop(w, h, &mut r);
                assert!(top + ch <= h && left + cw <= w && ch > 0 && cw > 0, "{w}x{h}");
            }
        }
        // A very elongated image takes the fallback centre crop, clamped to ratio 4/3.
        let mut hits = 0;
        for _ in 0..50 {
            let (top, left, ch, cw) = random_resized_crop(1000, 10, &mut r);
            if (ch, cw) == (10, 13) {
                assert_eq!((top, left), (0, (1000 - 13) / 2));
                hits += 1;
            }
        }
        assert!(hits > 40, "fallback taken {hits} of 50 times");
    }

    #[test]
    fn jitter_of_factor_one_is_identity_and_brightness_scales() {
        let pixels = vec![0.2f32, 0.4, 0.6, 0.9, 0.1, 0.5];
        let mut same = pixels.clone();
        Jitter { order: [0, 1, 2, 3], factors: [1.0, 1.0, 1.0] }.apply(&mut same);
        assert_eq!(same, pixels);
        let mut bright = pixels.clone();
        Jitter { order: [3, 0, 2, 1], factors: [1.5, 1.0, 1.0] }.apply(&mut bright);
        let expect: Vec<f32> = pixels.iter().map(|v| (v * 1.5).min(1.0)).collect();
        assert_eq!(bright, expect);
        // Saturation 0 gives gray pixels.
        let mut gray_px = pixels.clone();
        Jitter { order: [2, 3, 0, 1], factors: [1.0, 1.0, 0.0] }.apply(&mut gray_px);
        assert!((gray_px[0] - gray_px[1]).abs() < 1e-6 && (gray_px[1] - gray_px[2]).abs() < 1e-6);
        let g = 0.299 * 0.2 + 0.587 * 0.4 + 0.114 * 0.6;
        assert!((gray_px[0] - g).abs() < 1e-6);
    }

    #[test]
    fn test_transform_resizes_the_shorter_side_and_crops_the_centre() {
        // 40 x 20 image whose left half is black and right half white, resized to shorter side
        // 10 (20 x 10), centre crop 8: columns 6..14 of the resized image.
        let image = RgbImage::from_fn(40, 20, |x, _| {
            if x < 20 {
                image::Rgb([0, 0, 0])
            } else {
                image::Rgb([255, 255, 255])
            }
        });
        let out = test_transform(&image, ImageSize { crop: 8, resize: 10 });
        assert_eq!(out.len(), 3 * 64);
        let black = (0.0 - MEAN[0]) / STD[0];
        let white = (1.0 - MEAN[0]) / STD[0];
        assert!((out[0] - black).abs() < 1e-6, "left edge black");
        assert!((out[7] - white).abs() < 1e-6, "right edge white");
    }

    #[test]
    fn the_same_seed_gives_the_same_training_sample() {
        let image = RgbImage::from_fn(50, 40, |x, y| {
            image::Rgb([u8::try_from(x * 5).unwrap(), u8::try_from(y * 6).unwrap(), 7])
        });
        let size = ImageSize { crop: 16, resize: 18 };
        let a = train_transform(&image, size, 0.4, &mut rng(3));
        let b = train_transform(&image, size, 0.4, &mut rng(3));
        let c = train_transform(&image, size, 0.4, &mut rng(4));
        assert_eq!(a, b);
        assert_ne!(a, c);
        assert_eq!(a.len(), 3 * 16 * 16);
    }
}

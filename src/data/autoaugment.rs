//! The official CIFAR-LT training transform's image operations: the AutoAugment CIFAR-10 policy as
//! the official BALMS code runs it (DeepVoltaire's port of Cubuk et al., `data/autoaugment.py`),
//! and Cutout (`data/ImbalanceCIFAR.py`), on 8-bit RGB images.
//!
//! Each operation reproduces the Pillow function the official code calls, with Pillow's own
//! arithmetic (its rounding, truncation, borders and fill), so that an image and the same draws
//! give the same pixels as the official code; the tests compare every operation at every
//! magnitude with Pillow itself (`tests/fixtures/pil_autoaugment.py`). No Rust image crate
//! reproduces Pillow's rounding, which is why these few operations are written here.
//!
//! The policy is not torchvision's `AutoAugment`: its magnitudes, fill colour (grey 128) and
//! resampling differ (../shared/reference/paper-facts.md section 4.5).

use rand::Rng;
use serde::{Deserialize, Serialize};

/// An 8-bit RGB image, row-major, channels interleaved.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Rgb {
    /// Width in pixels.
    pub width: usize,
    /// Height in pixels.
    pub height: usize,
    /// `height * width * 3` bytes.
    pub pixels: Vec<u8>,
}

impl Rgb {
    /// An image of one colour.
    #[must_use]
    pub fn filled(width: usize, height: usize, colour: [u8; 3]) -> Rgb {
        Rgb { width, height, pixels: colour.repeat(width * height) }
    }

    fn at(&self, x: usize, y: usize) -> [u8; 3] {
        let i = 3 * (y * self.width + x);
        [self.pixels[i], self.pixels[i + 1], self.pixels[i + 2]]
    }

    fn put(&mut self, x: usize, y: usize, value: [u8; 3]) {
        let i = 3 * (y * self.width + x);
        self.pixels[i..i + 3].copy_from_slice(&value);
    }

    /// Each channel byte through its own 256-entry table.
    fn map(&self, luts: &[[u8; 256]; 3]) -> Rgb {
        let pixels =
            self.pixels.iter().enumerate().map(|(i, &v)| luts[i % 3][usize::from(v)]).collect();
        Rgb { pixels, ..*self }
    }

    /// The three channels' histograms.
    fn histograms(&self) -> [[u64; 256]; 3] {
        let mut h = [[0u64; 256]; 3];
        for (i, &v) in self.pixels.iter().enumerate() {
            h[i % 3][usize::from(v)] += 1;
        }
        h
    }

    /// Pillow's `convert("L")`: ITU-R 601-2 luma in 16-bit fixed point, rounded
    /// (`(R * 19595 + G * 38470 + B * 7471 + 0x8000) >> 16`, `Convert.c`).
    fn luma(&self) -> Vec<u8> {
        self.pixels
            .chunks_exact(3)
            .map(|p| {
                let l = u32::from(p[0]) * 19595 + u32::from(p[1]) * 38470 + u32::from(p[2]) * 7471;
                u8::try_from((l + 0x8000) >> 16).expect("luma fits a byte")
            })
            .collect()
    }
}

/// Operations of the policy, named as in the official code.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Op {
    /// Affine shear along x, bicubic.
    ShearX,
    /// Affine shear along y, bicubic.
    ShearY,
    /// Translation along x by a fraction of the width, nearest.
    TranslateX,
    /// Translation along y by a fraction of the height, nearest.
    TranslateY,
    /// Counter-clockwise rotation in degrees, nearest, grey corners.
    Rotate,
    /// `ImageEnhance.Color`.
    Color,
    /// `ImageOps.posterize` to the magnitude's bits.
    Posterize,
    /// `ImageOps.solarize` at the magnitude's threshold.
    Solarize,
    /// `ImageEnhance.Contrast`.
    Contrast,
    /// `ImageEnhance.Sharpness`.
    Sharpness,
    /// `ImageEnhance.Brightness`.
    Brightness,
    /// `ImageOps.autocontrast` (no cutoff).
    AutoContrast,
    /// `ImageOps.equalize`.
    Equalize,
    /// `ImageOps.invert`.
    Invert,
}

/// Every operation, for tests and listings.
pub const OPS: [Op; 14] = [
    Op::ShearX,
    Op::ShearY,
    Op::TranslateX,
    Op::TranslateY,
    Op::Rotate,
    Op::Color,
    Op::Posterize,
    Op::Solarize,
    Op::Contrast,
    Op::Sharpness,
    Op::Brightness,
    Op::AutoContrast,
    Op::Equalize,
    Op::Invert,
];

/// The grey the official code fills uncovered pixels with.
pub const FILL: [u8; 3] = [128, 128, 128];

/// `numpy.linspace(start, stop, 10)[index]`: `index * step + start`, the last value `stop`.
fn linspace(start: f64, stop: f64, index: usize) -> f64 {
    if index == 9 {
        return stop;
    }
    index as f64 * ((stop - start) / 9.0) + start
}

impl Op {
    /// The official code's name for the operation (`shearX`, `autocontrast`, ...).
    #[must_use]
    pub fn name(self) -> &'static str {
        match self {
            Op::ShearX => "shearX",
            Op::ShearY => "shearY",
            Op::TranslateX => "translateX",
            Op::TranslateY => "translateY",
            Op::Rotate => "rotate",
            Op::Color => "color",
            Op::Posterize => "posterize",
            Op::Solarize => "solarize",
            Op::Contrast => "contrast",
            Op::Sharpness => "sharpness",
            Op::Brightness => "brightness",
            Op::AutoContrast => "autocontrast",
            Op::Equalize => "equalize",
            Op::Invert => "invert",
        }
    }

    /// The magnitude at `index` (0..10) of the operation's range: shear 0..0.3; translate
    /// 0..150/331 of the side; rotate 0..30 degrees; colour, contrast, sharpness, brightness
    /// 0..0.9; posterize `round(linspace(8, 4))` bits; solarize threshold 256..0; the rest take
    /// none (0).
    #[must_use]
    pub fn magnitude(self, index: usize) -> f64 {
        assert!(index < 10, "magnitude index {index} outside 0..10");
        match self {
            Op::ShearX | Op::ShearY => linspace(0.0, 0.3, index),
            Op::TranslateX | Op::TranslateY => linspace(0.0, 150.0 / 331.0, index),
            Op::Rotate => linspace(0.0, 30.0, index),
            Op::Color | Op::Contrast | Op::Sharpness | Op::Brightness => linspace(0.0, 0.9, index),
            // numpy rounds half to even; no value of this range is a half.
            Op::Posterize => linspace(8.0, 4.0, index).round(),
            Op::Solarize => linspace(256.0, 0.0, index),
            Op::AutoContrast | Op::Equalize | Op::Invert => 0.0,
        }
    }

    /// Whether the official code draws a random sign for the magnitude at each application.
    #[must_use]
    pub fn signed(self) -> bool {
        matches!(
            self,
            Op::ShearX
                | Op::ShearY
                | Op::TranslateX
                | Op::TranslateY
                | Op::Color
                | Op::Contrast
                | Op::Sharpness
                | Op::Brightness
        )
    }

    /// The operation at `magnitude` with `sign` (+1 or -1; ignored by unsigned operations).
    #[must_use]
    pub fn apply(self, image: &Rgb, magnitude: f64, sign: f64) -> Rgb {
        let m = magnitude * sign;
        match self {
            Op::ShearX => affine(image, [1.0, m, 0.0, 0.0, 1.0, 0.0], Resample::Bicubic, FILL),
            Op::ShearY => affine(image, [1.0, 0.0, 0.0, m, 1.0, 0.0], Resample::Bicubic, FILL),
            Op::TranslateX => {
                let t = m * image.width as f64;
                affine(image, [1.0, 0.0, t, 0.0, 1.0, 0.0], Resample::Nearest, FILL)
            }
            Op::TranslateY => {
                let t = m * image.height as f64;
                affine(image, [1.0, 0.0, 0.0, 0.0, 1.0, t], Resample::Nearest, FILL)
            }
            Op::Rotate => rotate(image, magnitude),
            Op::Color => {
                let grey = image.luma();
                let degenerate =
                    Rgb { pixels: grey.iter().flat_map(|&l| [l, l, l]).collect(), ..*image };
                blend(&degenerate, image, 1.0 + m)
            }
            Op::Contrast => {
                let grey = image.luma();
                let sum: u64 = grey.iter().map(|&l| u64::from(l)).sum();
                let mean = sum as f64 / grey.len() as f64;
                #[expect(clippy::cast_possible_truncation, reason = "Python's int() of 0..=255.5")]
                #[expect(clippy::cast_sign_loss, reason = "a mean of bytes is not negative")]
                let level = (mean + 0.5) as u8;
                blend(&Rgb::filled(image.width, image.height, [level; 3]), image, 1.0 + m)
            }
            Op::Brightness => {
                blend(&Rgb::filled(image.width, image.height, [0; 3]), image, 1.0 + m)
            }
            Op::Sharpness => blend(&smooth(image), image, 1.0 + m),
            Op::Posterize => {
                #[expect(clippy::cast_possible_truncation, reason = "4 to 8 bits")]
                #[expect(clippy::cast_sign_loss, reason = "4 to 8 bits")]
                let bits = magnitude as u32;
                let mask = !((1u8 << (8 - bits)).wrapping_sub(1));
                image.map(&[std::array::from_fn(|i| u8::try_from(i).expect("byte") & mask); 3])
            }
            Op::Solarize => image.map(
                &[std::array::from_fn(|i| {
                    let v = u8::try_from(i).expect("byte");
                    if f64::from(v) < magnitude {
                        v
                    } else {
                        255 - v
                    }
                }); 3],
            ),
            Op::Invert => {
                image.map(&[std::array::from_fn(|i| 255 - u8::try_from(i).expect("byte")); 3])
            }
            Op::AutoContrast => image.map(&autocontrast_luts(&image.histograms())),
            Op::Equalize => image.map(&equalize_luts(&image.histograms())),
        }
    }
}

/// `Image.blend(degenerate, image, factor)` (`ImagingBlend`): `degenerate + factor * (image -
/// degenerate)` in single precision, truncated; clipped to 0..=255 when `factor` is outside
/// [0, 1].
fn blend(degenerate: &Rgb, image: &Rgb, factor: f64) -> Rgb {
    #[expect(clippy::cast_possible_truncation, reason = "Pillow takes the factor as a C float")]
    let alpha = factor as f32;
    // Pillow clips only outside [0, 1], where the value can leave 0..=255; inside, clipping
    // changes nothing.
    let pixels = degenerate
        .pixels
        .iter()
        .zip(&image.pixels)
        .map(|(&a, &b)| clip8(f64::from(f32::from(a) + alpha * (f32::from(b) - f32::from(a)))))
        .collect();
    Rgb { pixels, ..*image }
}

/// `image.filter(ImageFilter.SMOOTH)` (`Filter.c`): the 3 x 3 kernel (1 1 1 / 1 5 1 / 1 1 1) / 13
/// in single precision (weights `1 / 13` and `5 / 13` as floats), from 0.5 adding the rows below,
/// at and above the pixel in that order, then clipped and truncated; the one-pixel border is
/// copied unchanged.
fn smooth(image: &Rgb) -> Rgb {
    let mut out = image.clone();
    if image.width < 3 || image.height < 3 {
        return out;
    }
    let (k, centre) = (1.0f32 / 13.0, 5.0f32 / 13.0);
    for y in 1..image.height - 1 {
        for x in 1..image.width - 1 {
            let value = std::array::from_fn(|c| {
                let row = |r: usize, mid: f32| {
                    let p = |dx: usize| f32::from(image.at(x + dx - 1, r)[c]);
                    (p(0) * k + p(1) * mid) + p(2) * k
                };
                let mut sum = 0.5f32;
                sum += row(y + 1, k);
                sum += row(y, centre);
                sum += row(y - 1, k);
                clip8(f64::from(sum))
            });
            out.put(x, y, value);
        }
    }
    out
}

/// Pillow's clipping of a computed value to a byte: 0 below, 255 above, truncated between
/// (`clip8` in `Filter.c`, and the same tests in `Blend.c` and the bicubic filter). Single-precision
/// values convert to `f64` exactly, so one function serves both.
fn clip8(v: f64) -> u8 {
    #[expect(clippy::cast_possible_truncation, reason = "clipped to a byte")]
    #[expect(clippy::cast_sign_loss, reason = "clipped to a byte")]
    if v <= 0.0 {
        0
    } else if v >= 255.0 {
        255
    } else {
        v as u8
    }
}

/// `ImageOps.autocontrast(image)`: per channel, its lowest and highest values stretched to 0 and
/// 255 (`int(ix * scale + offset)`, clamped); a channel of one value is left alone.
fn autocontrast_luts(histograms: &[[u64; 256]; 3]) -> [[u8; 256]; 3] {
    histograms.map(|h| {
        let lo = h.iter().position(|&n| n > 0);
        let hi = h.iter().rposition(|&n| n > 0);
        std::array::from_fn(|ix| {
            let byte = u8::try_from(ix).expect("byte");
            match (lo, hi) {
                (Some(lo), Some(hi)) if hi > lo => {
                    let scale = 255.0 / (hi - lo) as f64;
                    let offset = -(lo as f64) * scale;
                    let v = (ix as f64 * scale + offset).trunc();
                    #[expect(clippy::cast_possible_truncation, reason = "clamped to a byte")]
                    #[expect(clippy::cast_sign_loss, reason = "clamped to a byte")]
                    let v = v.clamp(0.0, 255.0) as u8;
                    v
                }
                _ => byte,
            }
        })
    })
}

/// `ImageOps.equalize(image)`: per channel, `step = (pixels - count of the highest value) //
/// 255`, `lut[i] = (step // 2 + pixels below i) // step` clamped to 255; a channel of one value,
/// or a zero step, is left alone.
fn equalize_luts(histograms: &[[u64; 256]; 3]) -> [[u8; 256]; 3] {
    histograms.map(|h| {
        let used: Vec<u64> = h.iter().copied().filter(|&n| n > 0).collect();
        let identity = std::array::from_fn(|i| u8::try_from(i).expect("byte"));
        if used.len() <= 1 {
            return identity;
        }
        let step = (used.iter().sum::<u64>() - used[used.len() - 1]) / 255;
        if step == 0 {
            return identity;
        }
        let mut n = step / 2;
        std::array::from_fn(|i| {
            let v = (n / step).min(255);
            n += h[i];
            u8::try_from(v).expect("clamped")
        })
    })
}

/// A pixel count or coordinate as a signed integer.
fn int(v: usize) -> i64 {
    i64::try_from(v).expect("image sizes fit i64")
}

/// Resampling of [`affine`].
#[derive(Clone, Copy, Debug)]
enum Resample {
    Nearest,
    Bicubic,
}

/// `image.transform(size, AFFINE, (a, b, c, d, e, f), resample, fillcolor=fill)` (`Geometry.c`):
/// output pixel `(x, y)` reads the input near `(a x' + b y' + c, d x' + e y' + f)` with
/// `x' = x + 0.5`, `y' = y + 0.5` (pixel centres), and is `fill` where that falls outside.
/// Nearest sampling takes Pillow's two paths: a translation walks the columns and rows by repeated
/// addition in double precision (`ImagingScaleAffine`); any other matrix runs in 16.16 fixed
/// point (`affine_fixed`). Bicubic maps in double precision (`ImagingGenericTransform`).
fn affine(image: &Rgb, m: [f64; 6], resample: Resample, fill: [u8; 3]) -> Rgb {
    let mut out = Rgb::filled(image.width, image.height, fill);
    let (w, h) = (image.width, image.height);
    let inside = |v: i64, n: usize| usize::try_from(v).ok().filter(|&v| v < n);
    match resample {
        Resample::Nearest if m[1] == 0.0 && m[3] == 0.0 => {
            let coord = |v: f64| {
                #[expect(clippy::cast_possible_truncation, reason = "C's (int) of a coordinate")]
                let v = if v < 0.0 { -1 } else { v as i64 };
                v
            };
            let mut columns = Vec::with_capacity(w);
            let mut xo = m[2] + m[0] * 0.5;
            for _ in 0..w {
                columns.push(inside(coord(xo), w));
                xo += m[0];
            }
            let mut yo = m[5] + m[4] * 0.5;
            for y in 0..h {
                if let Some(yi) = inside(coord(yo), h) {
                    for (x, xi) in columns.iter().enumerate() {
                        if let Some(xi) = xi {
                            out.put(x, y, image.at(*xi, yi));
                        }
                    }
                }
                yo += m[4];
            }
        }
        Resample::Nearest => {
            #[expect(
                clippy::cast_possible_truncation,
                reason = "16.16 fixed point of small values"
            )]
            let fix = |v: f64| (v * 65536.0 + 0.5).floor() as i64;
            let (a0, a1, a3, a4) = (fix(m[0]), fix(m[1]), fix(m[3]), fix(m[4]));
            let a2 = fix(m[2] + m[0] * 0.5 + m[1] * 0.5);
            let a5 = fix(m[5] + m[3] * 0.5 + m[4] * 0.5);
            for y in 0..h {
                for x in 0..w {
                    let (xi, yi) = (int(x), int(y));
                    let xin = (a2 + yi * a1 + xi * a0) >> 16;
                    let yin = (a5 + yi * a4 + xi * a3) >> 16;
                    if let (Some(sx), Some(sy)) = (inside(xin, w), inside(yin, h)) {
                        out.put(x, y, image.at(sx, sy));
                    }
                }
            }
        }
        Resample::Bicubic => {
            for y in 0..h {
                for x in 0..w {
                    let (xo, yo) = (x as f64 + 0.5, y as f64 + 0.5);
                    let xin = m[0] * xo + m[1] * yo + m[2];
                    let yin = m[3] * xo + m[4] * yo + m[5];
                    if xin < 0.0 || yin < 0.0 || xin >= w as f64 || yin >= h as f64 {
                        continue;
                    }
                    out.put(x, y, bicubic(image, xin - 0.5, yin - 0.5));
                }
            }
        }
    }
    out
}

/// Pillow's bicubic sample at `(x, y)` (pixel-centre coordinates, `bicubic_filter32RGB`): the
/// cubic convolution with a = -1 over the 4 x 4 neighbours in double precision, columns clamped to
/// the image; the first row is clamped too, and a later row outside the image repeats the row
/// before it; then clipped and truncated.
fn bicubic(image: &Rgb, xs: f64, ys: f64) -> [u8; 3] {
    let (fx, fy) = (xs.floor(), ys.floor());
    let (dx, dy) = (xs - fx, ys - fy);
    #[expect(clippy::cast_possible_truncation, reason = "within the image's size")]
    let (x0, y0) = (fx as i64 - 1, fy as i64 - 1);
    let (width, height) = (int(image.width), int(image.height));
    let clamp = |v: i64, n: i64| usize::try_from(v.clamp(0, n - 1)).expect("clamped");
    let cubic = |v: [f64; 4], d: f64| {
        let p1 = v[1];
        let p2 = -v[0] + v[2];
        let p3 = 2.0 * (v[0] - v[1]) + v[2] - v[3];
        let p4 = -v[0] + v[1] - v[2] + v[3];
        p1 + d * (p2 + d * (p3 + d * p4))
    };
    std::array::from_fn(|c| {
        let row = |r: usize| {
            cubic(std::array::from_fn(|i| f64::from(image.at(clamp(x0 + int(i), width), r)[c])), dx)
        };
        let mut rows = [0.0; 4];
        rows[0] = row(clamp(y0, height));
        for j in 1..4 {
            let r = y0 + int(j);
            rows[j] = if (0..height).contains(&r) { row(clamp(r, height)) } else { rows[j - 1] };
        }
        clip8(cubic(rows, dy))
    })
}

/// The official `rotate_with_fill`: `rotate(degrees)` counter-clockwise about the centre (nearest,
/// no expansion) with the uncovered corners grey 128.
fn rotate(image: &Rgb, degrees: f64) -> Rgb {
    // Pillow's shortcuts for 0, 90, 180 and 270 degrees are exact; the policy's angles (0 to 30
    // degrees) reach only the first.
    if degrees.rem_euclid(360.0) == 0.0 {
        return image.clone();
    }
    let angle = -degrees.to_radians();
    let round15 = |v: f64| (v * 1e15).round() / 1e15;
    let (cos, sin) = (round15(angle.cos()), round15(angle.sin()));
    let (cx, cy) = (image.width as f64 / 2.0, image.height as f64 / 2.0);
    // Pillow: (a, b, d, e) = (cos, sin, -sin, cos), then (c, f) maps the centre to itself.
    let c = cos * -cx + sin * -cy + cx;
    let f = -sin * -cx + cos * -cy + cy;
    affine(image, [cos, sin, c, -sin, cos, f], Resample::Nearest, FILL)
}

/// One of the policy's 25 sub-policies: two operations, each applied with its own probability at
/// a fixed magnitude index.
#[derive(Clone, Copy, Debug)]
pub struct SubPolicy {
    /// `(probability, operation, magnitude index)` of the first and second operation.
    pub ops: [(f64, Op, usize); 2],
}

const fn sub(p1: f64, op1: Op, m1: usize, p2: f64, op2: Op, m2: usize) -> SubPolicy {
    SubPolicy { ops: [(p1, op1, m1), (p2, op2, m2)] }
}

/// The CIFAR-10 policy of the official code (`CIFAR10Policy`), in its order.
pub const CIFAR10_POLICY: [SubPolicy; 25] = [
    sub(0.1, Op::Invert, 7, 0.2, Op::Contrast, 6),
    sub(0.7, Op::Rotate, 2, 0.3, Op::TranslateX, 9),
    sub(0.8, Op::Sharpness, 1, 0.9, Op::Sharpness, 3),
    sub(0.5, Op::ShearY, 8, 0.7, Op::TranslateY, 9),
    sub(0.5, Op::AutoContrast, 8, 0.9, Op::Equalize, 2),
    sub(0.2, Op::ShearY, 7, 0.3, Op::Posterize, 7),
    sub(0.4, Op::Color, 3, 0.6, Op::Brightness, 7),
    sub(0.3, Op::Sharpness, 9, 0.7, Op::Brightness, 9),
    sub(0.6, Op::Equalize, 5, 0.5, Op::Equalize, 1),
    sub(0.6, Op::Contrast, 7, 0.6, Op::Sharpness, 5),
    sub(0.7, Op::Color, 7, 0.5, Op::TranslateX, 8),
    sub(0.3, Op::Equalize, 7, 0.4, Op::AutoContrast, 8),
    sub(0.4, Op::TranslateY, 3, 0.2, Op::Sharpness, 6),
    sub(0.9, Op::Brightness, 6, 0.2, Op::Color, 8),
    sub(0.5, Op::Solarize, 2, 0.0, Op::Invert, 3),
    sub(0.2, Op::Equalize, 0, 0.6, Op::AutoContrast, 0),
    sub(0.2, Op::Equalize, 8, 0.6, Op::Equalize, 4),
    sub(0.9, Op::Color, 9, 0.6, Op::Equalize, 6),
    sub(0.8, Op::AutoContrast, 4, 0.2, Op::Solarize, 8),
    sub(0.1, Op::Brightness, 3, 0.7, Op::Color, 0),
    sub(0.4, Op::Solarize, 5, 0.9, Op::AutoContrast, 3),
    sub(0.9, Op::TranslateY, 9, 0.7, Op::TranslateY, 9),
    sub(0.9, Op::AutoContrast, 2, 0.8, Op::Solarize, 3),
    sub(0.8, Op::Equalize, 8, 0.1, Op::Invert, 3),
    sub(0.7, Op::TranslateY, 9, 0.9, Op::AutoContrast, 1),
];

/// What one application of the policy drew: the sub-policy and, per operation, whether it was
/// applied and its sign.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Drawn {
    /// Index of the sub-policy in [`CIFAR10_POLICY`].
    pub sub_policy: usize,
    /// Per operation: `Some(sign)` when applied (the sign is +1 for unsigned operations).
    pub applied: [Option<f64>; 2],
}

/// Draws a sub-policy uniformly, then for each of its operations whether it applies (`u <
/// p`) and, for signed operations that apply, the sign: the official code's order of draws.
pub fn draw(rng: &mut impl Rng) -> Drawn {
    let sub_policy = rng.gen_range(0..CIFAR10_POLICY.len());
    let mut applied = [None; 2];
    for (slot, &(p, op, _)) in applied.iter_mut().zip(&CIFAR10_POLICY[sub_policy].ops) {
        if rng.gen::<f64>() < p {
            *slot = Some(if op.signed() && rng.gen_bool(0.5) { -1.0 } else { 1.0 });
        }
    }
    Drawn { sub_policy, applied }
}

/// Applies what [`draw`] drew to `image`.
#[must_use]
pub fn apply(image: &Rgb, drawn: &Drawn) -> Rgb {
    let mut out = image.clone();
    for (&(_, op, index), sign) in CIFAR10_POLICY[drawn.sub_policy].ops.iter().zip(drawn.applied) {
        if let Some(sign) = sign {
            out = op.apply(&out, op.magnitude(index), sign);
        }
    }
    out
}

/// Which policy `augment = { cifar = { policy = ... } }` applies.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Policy {
    /// The official code's CIFAR-10 AutoAugment policy (default; it is used for CIFAR-100 too).
    #[default]
    AutoaugmentCifar10,
    /// No policy: crop and flip only.
    None,
}

/// Cutout's hole for an image of `height x width` and the centre `(cy, cx)`: rows
/// `cy - length/2 .. cy + length/2` and the same columns, upper bounds exclusive, clipped to
/// the image (`(y0, y1, x0, x1)`).
#[must_use]
pub fn cutout_hole(
    (height, width): (usize, usize),
    (cy, cx): (usize, usize),
    length: usize,
) -> (usize, usize, usize, usize) {
    let half = length / 2;
    (
        cy.saturating_sub(half),
        (cy + half).min(height),
        cx.saturating_sub(half),
        (cx + half).min(width),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;
    use rand_chacha::ChaCha8Rng;

    /// Chi-square statistic of observed counts against expected ones.
    fn chi_square(observed: &[f64], expected: &[f64]) -> f64 {
        observed.iter().zip(expected).map(|(o, e)| (o - e).powi(2) / e).sum()
    }

    #[test]
    fn sub_policies_are_chosen_uniformly_and_operations_at_their_rates() {
        let draws = 200_000;
        let mut rng = ChaCha8Rng::seed_from_u64(7);
        let mut chosen = [0.0; 25];
        let mut applied = [[0.0; 2]; 25];
        let mut negative = [0.0; 2];
        let mut signed_applied = [0.0; 2];
        for _ in 0..draws {
            let d = draw(&mut rng);
            chosen[d.sub_policy] += 1.0;
            for (slot, sign) in d.applied.iter().enumerate() {
                if let Some(sign) = sign {
                    applied[d.sub_policy][slot] += 1.0;
                    if CIFAR10_POLICY[d.sub_policy].ops[slot].1.signed() {
                        signed_applied[slot] += 1.0;
                        negative[slot] += f64::from(u8::from(*sign < 0.0));
                    }
                }
            }
        }
        // 24 degrees of freedom: the 99.9% quantile is 51.2.
        let uniform = chi_square(&chosen, &[f64::from(draws) / 25.0; 25]);
        assert!(uniform < 51.2, "sub-policy choice: chi-square {uniform}");
        for (k, sub) in CIFAR10_POLICY.iter().enumerate() {
            for (slot, &(p, op, _)) in sub.ops.iter().enumerate() {
                let rate = applied[k][slot] / chosen[k];
                // Five binomial standard errors (and exactly 0 for p = 0).
                let tolerance = 5.0 * (p * (1.0 - p) / chosen[k]).sqrt();
                assert!(
                    (rate - p).abs() <= tolerance,
                    "sub-policy {k} {}: applied at {rate}, p = {p}",
                    op.name()
                );
            }
        }
        for slot in 0..2 {
            let share = negative[slot] / signed_applied[slot];
            assert!((share - 0.5).abs() < 5.0 * (0.25 / signed_applied[slot]).sqrt(), "{share}");
        }
    }

    #[test]
    fn the_policy_table_is_the_official_one() {
        // Spot checks against paper-facts 4.5 and the counts of each operation in the table.
        assert_eq!(CIFAR10_POLICY[0].ops[0], (0.1, Op::Invert, 7));
        assert_eq!(CIFAR10_POLICY[14].ops[1], (0.0, Op::Invert, 3));
        assert_eq!(CIFAR10_POLICY[24].ops[1], (0.9, Op::AutoContrast, 1));
        let count =
            |op: Op| CIFAR10_POLICY.iter().flat_map(|s| s.ops).filter(|o| o.1 == op).count();
        assert_eq!(count(Op::Equalize), 9);
        assert_eq!(count(Op::AutoContrast), 7);
        assert_eq!(count(Op::TranslateY), 5);
        assert_eq!(count(Op::ShearX), 0);
        // Magnitudes: 14.5 px at translate index 9 on 32 px; posterize bits; solarize 256 at 0.
        assert!((Op::TranslateX.magnitude(9) * 32.0 - 14.501_510_574_018_13).abs() < 1e-9);
        let bits: Vec<f64> = (0..10).map(|i| Op::Posterize.magnitude(i)).collect();
        assert_eq!(bits, [8.0, 8.0, 7.0, 7.0, 6.0, 6.0, 5.0, 5.0, 4.0, 4.0]);
        assert_eq!(Op::Solarize.magnitude(0).to_bits(), 256f64.to_bits());
        assert_eq!(Op::Solarize.magnitude(9).to_bits(), 0f64.to_bits());
    }

    #[test]
    fn cutout_holes_are_16_square_inside_and_clipped_at_the_borders() {
        let (h, w) = (32, 32);
        let mut areas = std::collections::BTreeMap::new();
        let mut covered = vec![0u64; h * w];
        for cy in 0..h {
            for cx in 0..w {
                let (y0, y1, x0, x1) = cutout_hole((h, w), (cy, cx), 16);
                assert!(y0 <= cy && cy < y1.max(cy + 1) && y1 <= h && x1 <= w);
                *areas.entry((y1 - y0) * (x1 - x0)).or_insert(0) += 1;
                for y in y0..y1 {
                    for x in x0..x1 {
                        covered[y * w + x] += 1;
                    }
                }
            }
        }
        // Centres 8..=24 on both axes give the full 16 x 16 hole (17 x 17 of the 1,024 centres);
        // at the corner (0, 0) the hole is 8 x 8, at (31, 31) rows and columns 23..32, 9 x 9.
        assert_eq!(areas[&256], 17 * 17);
        assert_eq!(cutout_hole((h, w), (0, 0), 16), (0, 8, 0, 8));
        assert_eq!(cutout_hole((h, w), (31, 31), 16), (23, 32, 23, 32));
        // A pixel is covered by the centres (cy, cx) with cy - 8 <= y < cy + 8: 16 x 16 of them
        // in the middle, 9 x 9 at the corner (0, 0) (centres 0..=8), 8 x 8 at (31, 31).
        assert_eq!(covered[16 * w + 16], 256);
        assert_eq!(covered[0], 81);
        assert_eq!(covered[31 * w + 31], 64);
        // Uniform centres (the official `randint(32)`) drawn by the transform: see
        // `data::augment` tests.
    }
}

//! Raw image arrays as read from disk, before any tensor exists.

/// Images as bytes, sample-major, each `channels * height * width` long, with labels.
#[derive(Clone, Debug)]
pub struct RawImages {
    /// Pixel bytes (or small integers, for digits), `len = n * channels * height * width`.
    pub pixels: Vec<u8>,
    /// Class of each sample.
    pub labels: Vec<i64>,
    /// `[channels, height, width]`.
    pub shape: [usize; 3],
}

impl RawImages {
    /// Number of samples.
    #[must_use]
    pub fn len(&self) -> usize {
        self.labels.len()
    }

    /// Whether there are no samples.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.labels.is_empty()
    }

    /// Keeps the samples whose index satisfies `keep`, in order.
    #[must_use]
    pub fn select(&self, keep: impl Fn(usize) -> bool) -> RawImages {
        let size: usize = self.shape.iter().product();
        let mut out = RawImages { pixels: Vec::new(), labels: Vec::new(), shape: self.shape };
        for i in (0..self.len()).filter(|&i| keep(i)) {
            out.pixels.extend_from_slice(&self.pixels[i * size..(i + 1) * size]);
            out.labels.push(self.labels[i]);
        }
        out
    }
}

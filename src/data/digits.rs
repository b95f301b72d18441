//! The UCI optical digits (8x8, values 0..16), embedded in the binary so that the default matrix
//! always runs. Attribution: E. Alpaydin and C. Kaynak (1998), UCI Machine Learning Repository,
//! CC BY 4.0; the file is scikit-learn 1.9.1's `digits.csv.gz` (see `assets/README.md`).
//!
//! Split: the first [`TEST_PER_CLASS`] samples of each class in file order are the balanced test
//! set; the rest (124 to 133 per class) form the pool the long-tailed subset is drawn from.

use std::io::Read;

use super::raw::RawImages;

const GZ: &[u8] = include_bytes!("assets/digits.csv.gz");

/// Test samples held out per class.
pub const TEST_PER_CLASS: usize = 50;

/// The smallest class's pool size after the hold-out, used as `n_max` of the profile.
pub const N_MAX: usize = 124;

/// All 1,797 samples in file order.
///
/// # Panics
/// Never for the embedded file (its integrity is a unit test).
#[must_use]
pub fn all() -> RawImages {
    let mut text = String::new();
    flate2::read::GzDecoder::new(GZ)
        .read_to_string(&mut text)
        .expect("embedded digits are valid gzip");
    let mut raw = RawImages { pixels: Vec::new(), labels: Vec::new(), shape: [1, 8, 8] };
    for line in text.lines().filter(|l| !l.is_empty()) {
        let values: Vec<u8> = line.split(',').map(|v| v.trim().parse().expect("integer")).collect();
        raw.pixels.extend_from_slice(&values[..64]);
        raw.labels.push(i64::from(values[64]));
    }
    raw
}

/// `(pool, test)`: the remaining samples (the pool), and the balanced test set of the first
/// [`TEST_PER_CLASS`] samples of each class.
#[must_use]
pub fn split() -> (RawImages, RawImages) {
    let raw = all();
    let mut seen = [0usize; 10];
    let is_test: Vec<bool> = raw
        .labels
        .iter()
        .map(|&y| {
            let c = usize::try_from(y).expect("label");
            seen[c] += 1;
            seen[c] <= TEST_PER_CLASS
        })
        .collect();
    (raw.select(|i| !is_test[i]), raw.select(|i| is_test[i]))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn embedded_file_is_intact() {
        let raw = all();
        assert_eq!(raw.len(), 1797);
        assert!(raw.pixels.iter().all(|&p| p <= 16));
        let (pool, test) = split();
        assert_eq!(test.len(), 500);
        let min = (0..10).map(|c| pool.labels.iter().filter(|&&y| y == c).count()).min();
        assert_eq!(min, Some(N_MAX));
    }
}

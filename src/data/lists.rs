//! Image-list datasets (ImageNet-LT, Places-LT and lists in their format): the official split
//! files, one `<relative image path> <label>` per line, read and checked before any training.
//!
//! The long tail is the train list's own: class counts, shot groups and the imbalance factor come
//! from it, nothing is drawn. Validation and test sets are the `val` and `test` lists (OLTR's
//! files, used unchanged by Kang et al. and by the BALMS code).

use std::path::{Path, PathBuf};

use rayon::prelude::*;
use sha2::{Digest, Sha256};

use super::DataError;
use crate::data::longtail::Shot;

/// One split file, parsed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ImageList {
    /// The list file.
    pub file: PathBuf,
    /// Image paths relative to the dataset root, in file order.
    pub paths: Vec<String>,
    /// Labels, in file order.
    pub labels: Vec<i64>,
    /// SHA-256 (hex) of the file's bytes: the data hash of runs on it.
    pub sha256: String,
}

/// The three lists of a dataset, and the folder their paths are relative to.
#[derive(Clone, Debug)]
pub struct Lists {
    /// Folder holding the lists; image paths are relative to it.
    pub root: PathBuf,
    /// Training list (the long-tailed set).
    pub train: ImageList,
    /// Validation list (balanced; model selection and the Meta Sampler's meta set).
    pub val: ImageList,
    /// Test list (balanced).
    pub test: ImageList,
}

/// The file name of split `split` (`train`, `val`, `test`) for list prefix `prefix`.
#[must_use]
pub fn file_name(prefix: &str, split: &str) -> String {
    format!("{prefix}_{split}.txt")
}

/// Parses a list's text; `file` names it in errors.
///
/// # Errors
/// [`DataError::Format`] naming the file and line of a malformed line or a label outside
/// `0..classes`.
pub fn parse(text: &str, file: &Path, classes: usize) -> Result<ImageList, DataError> {
    let mut list = ImageList {
        file: file.to_path_buf(),
        paths: Vec::new(),
        labels: Vec::new(),
        sha256: format!("{:x}", Sha256::digest(text.as_bytes())),
    };
    let bad = |line: usize, message: String| DataError::Format {
        path: file.to_path_buf(),
        message: format!("line {line}: {message}"),
    };
    for (number, line) in text.lines().enumerate().map(|(i, l)| (i + 1, l.trim_end())) {
        if line.trim().is_empty() {
            continue;
        }
        let Some((path, label)) = line.rsplit_once(char::is_whitespace) else {
            return Err(bad(number, format!("expected `<path> <label>`, found `{line}`")));
        };
        let label: i64 =
            label.parse().map_err(|_| bad(number, format!("label `{label}` is not an integer")))?;
        if label < 0 || usize::try_from(label).is_ok_and(|l| l >= classes) {
            return Err(bad(number, format!("label {label} outside 0..{classes}")));
        }
        list.paths.push(path.trim().to_string());
        list.labels.push(label);
    }
    if list.paths.is_empty() {
        return Err(DataError::Format {
            path: file.to_path_buf(),
            message: "the list is empty".to_string(),
        });
    }
    Ok(list)
}

/// Reads and parses one list file.
///
/// # Errors
/// [`DataError::MissingFile`], [`DataError::Io`] or [`DataError::Format`].
pub fn read(file: &Path, classes: usize) -> Result<ImageList, DataError> {
    if !file.is_file() {
        return Err(DataError::MissingFile { path: file.to_path_buf() });
    }
    let text = std::fs::read_to_string(file)
        .map_err(|source| DataError::Io { path: file.to_path_buf(), source })?;
    parse(&text, file, classes)
}

impl ImageList {
    /// Images per class (`classes` entries).
    #[must_use]
    pub fn counts(&self, classes: usize) -> Vec<usize> {
        let mut counts = vec![0; classes];
        for &y in &self.labels {
            counts[usize::try_from(y).expect("checked label")] += 1;
        }
        counts
    }
}

impl Lists {
    /// Reads `<root>/<prefix>_{train,val,test}.txt` and checks that every class has training
    /// images.
    ///
    /// # Errors
    /// [`DataError`] naming the file (and line) at fault.
    pub fn read(root: &Path, prefix: &str, classes: usize) -> Result<Lists, DataError> {
        let split = |s: &str| read(&root.join(file_name(prefix, s)), classes);
        let lists = Lists {
            root: root.to_path_buf(),
            train: split("train")?,
            val: split("val")?,
            test: split("test")?,
        };
        let counts = lists.train.counts(classes);
        if let Some(empty) = counts.iter().position(|&n| n == 0) {
            return Err(DataError::Format {
                path: lists.train.file.clone(),
                message: format!(
                    "class {empty} has no training image ({classes} classes expected)"
                ),
            });
        }
        Ok(lists)
    }

    /// Checks that every listed image exists and has a readable image header, in parallel;
    /// reports the number of bad images per list and the first few paths with the reason.
    ///
    /// # Errors
    /// [`DataError::Images`] when any image is missing or unreadable.
    pub fn check_images(&self) -> Result<(), DataError> {
        let mut problems = Vec::new();
        let mut bad = 0;
        for list in [&self.train, &self.val, &self.test] {
            let failures: Vec<String> = list
                .paths
                .par_iter()
                .filter_map(|p| {
                    let path = self.root.join(p);
                    header_problem(&path).map(|why| format!("  {}: {why}", path.display()))
                })
                .collect();
            if !failures.is_empty() {
                bad += failures.len();
                problems.push(format!(
                    "{} of {} images of `{}` are missing or unreadable, e.g.:\n{}",
                    failures.len(),
                    list.paths.len(),
                    list.file.display(),
                    failures.iter().take(5).cloned().collect::<Vec<_>>().join("\n")
                ));
            }
        }
        if bad == 0 {
            Ok(())
        } else {
            Err(DataError::Images { count: bad, details: problems.join("\n") })
        }
    }
}

/// Why the image at `path` cannot be used, if it cannot: missing, or no readable header.
fn header_problem(path: &Path) -> Option<String> {
    if !path.is_file() {
        return Some("missing".to_string());
    }
    let reader =
        match image::ImageReader::open(path).and_then(image::ImageReader::with_guessed_format) {
            Ok(r) => r,
            Err(e) => return Some(e.to_string()),
        };
    match reader.into_dimensions() {
        Ok((w, h)) if w > 0 && h > 0 => None,
        Ok(_) => Some("empty image".to_string()),
        Err(e) => Some(e.to_string()),
    }
}

/// A dataset's class statistics from its train list: what `balms plan` shows.
#[must_use]
pub fn describe(lists: &Lists, classes: usize) -> String {
    let counts = lists.train.counts(classes);
    let groups = [Shot::Many, Shot::Medium, Shot::Few]
        .map(|g| counts.iter().filter(|&&n| Shot::of(n) == g).count());
    let max = counts.iter().max().copied().unwrap_or(0);
    let min = counts.iter().min().copied().unwrap_or(0);
    let imbalance = max as f64 / min.max(1) as f64;
    format!(
        "{} training images in {} classes (max {max}, min {min}, imbalance {imbalance:.0}), \
         many/medium/few classes {}/{}/{}; val {} images, test {} images; lists in {}",
        lists.train.paths.len(),
        counts.len(),
        groups[0],
        groups[1],
        groups[2],
        lists.val.paths.len(),
        lists.test.paths.len(),
        lists.root.display()
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_official_format() {
        let text = "train/airfield/00004851.jpg 0\ntrain/n01/a b.JPEG 2\n\n";
        let list = parse(text, Path::new("Places_LT_train.txt"), 3).unwrap();
        assert_eq!(list.paths, ["train/airfield/00004851.jpg", "train/n01/a b.JPEG"]);
        assert_eq!(list.labels, [0, 2]);
        assert_eq!(list.counts(3), [1, 0, 1]);
    }

    #[test]
    fn malformed_lines_name_file_and_line() {
        let err = parse("a.jpg 0\nb.jpg x\n", Path::new("L.txt"), 3).unwrap_err().to_string();
        assert!(err.contains("L.txt") && err.contains("line 2") && err.contains("`x`"), "{err}");
        let err = parse("a.jpg 5\n", Path::new("L.txt"), 3).unwrap_err().to_string();
        assert!(err.contains("outside 0..3"), "{err}");
        let err = parse("nolabel\n", Path::new("L.txt"), 3).unwrap_err().to_string();
        assert!(err.contains("expected `<path> <label>`"), "{err}");
        assert!(parse("\n", Path::new("L.txt"), 3).unwrap_err().to_string().contains("empty"));
    }
}

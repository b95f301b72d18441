//! A split's inputs: a tensor held in memory, or image files decoded as they are needed.
//!
//! Training, evaluation and stage 2 see both through the same three operations: rows by index
//! (evaluation transform), chunks in order (evaluation), and augmented training batches.

use std::sync::{mpsc, Arc};

use rand::RngCore;
use rand_chacha::ChaCha8Rng;
use tch::{Device, Tensor};

use super::augment::AugmentSpec;
use super::images::{Batch, ImageError, ImageFiles, Transform};

/// Training batches decoded ahead of the one being trained on.
pub const PREFETCH: usize = 4;

/// Largest evaluation chunk of decoded images (bounds memory at 224 x 224: 154 MB).
const FILE_CHUNK: i64 = 256;

/// One split's inputs.
#[derive(Debug)]
pub enum Inputs {
    /// Normalised inputs in memory on the run's device.
    Memory(Tensor),
    /// Image files, decoded and transformed per batch, then moved to `device`.
    Files {
        /// The files and their decoding pool.
        files: Arc<ImageFiles>,
        /// Where decoded batches go.
        device: Device,
    },
}

/// Rows that evaluation walks through in order: inputs, or frozen features.
pub trait Rows {
    /// Number of rows.
    fn count(&self) -> i64;
    /// Calls `f(start, rows)` on consecutive chunks of at most `size` rows (evaluation
    /// transform for images).
    fn each_chunk(&self, size: i64, f: &mut dyn FnMut(i64, Tensor));
}

impl Rows for Tensor {
    fn count(&self) -> i64 {
        self.size()[0]
    }

    fn each_chunk(&self, size: i64, f: &mut dyn FnMut(i64, Tensor)) {
        let n = self.count();
        for start in (0..n).step_by(usize::try_from(size).expect("positive")) {
            f(start, self.narrow(0, start, size.min(n - start)));
        }
    }
}

impl Rows for Inputs {
    fn count(&self) -> i64 {
        match self {
            Inputs::Memory(x) => x.count(),
            Inputs::Files { files, .. } => i64::try_from(files.paths.len()).expect("fits"),
        }
    }

    fn each_chunk(&self, size: i64, f: &mut dyn FnMut(i64, Tensor)) {
        match self {
            Inputs::Memory(x) => x.each_chunk(size, f),
            Inputs::Files { files, device } => {
                let size = size.min(FILE_CHUNK);
                let n = self.count();
                let jobs = (0..n)
                    .step_by(usize::try_from(size).expect("positive"))
                    .map(|s| ((s..(s + size).min(n)).collect(), 0))
                    .collect();
                let receiver = files.prefetch(jobs, Transform::Test, 2);
                let mut start = 0;
                for batch in receiver {
                    let x = batch_tensor(batch, files, *device).unwrap_or_else(|e| fail(&e));
                    let len = x.size()[0];
                    f(start, x);
                    start += len;
                }
                assert_eq!(start, n, "every image of the split was decoded");
            }
        }
    }
}

/// Decoding failures after the pre-training check (a file changed or truncated mid-run) stop the
/// process with the file's name; nothing is recorded for the run.
fn fail(error: &ImageError) -> ! {
    panic!("{error}")
}

/// Rows `index` (any device) of `files`, decoded now and moved to `device`.
fn load_rows(
    files: &ImageFiles,
    device: Device,
    index: &Tensor,
    transform: Transform,
    seed: u64,
) -> Tensor {
    let rows = Vec::<i64>::try_from(&index.to_device(Device::Cpu)).expect("int64");
    batch_tensor(files.load(&rows, transform, seed), files, device).unwrap_or_else(|e| fail(&e))
}

fn batch_tensor(batch: Batch, files: &ImageFiles, device: Device) -> Result<Tensor, ImageError> {
    let (pixels, n) = batch?;
    let side = i64::from(files.size.crop);
    Ok(Tensor::from_slice(&pixels).view([n, 3, side, side]).to_device(device))
}

impl Inputs {
    /// The in-memory inputs (`[N, ...]`, normalised, on the run's device), or `None` for image
    /// files.
    #[must_use]
    pub fn tensor(&self) -> Option<&Tensor> {
        match self {
            Inputs::Memory(x) => Some(x),
            Inputs::Files { .. } => None,
        }
    }

    /// Per-sample shape, `[channels, height, width]` or `[dim]`.
    #[must_use]
    pub fn sample_shape(&self) -> Vec<i64> {
        match self {
            Inputs::Memory(x) => x.size()[1..].to_vec(),
            Inputs::Files { files, .. } => {
                let side = i64::from(files.size.crop);
                vec![3, side, side]
            }
        }
    }

    /// Rows `index` (int64, any device) with the evaluation transform.
    ///
    /// # Panics
    /// If an image cannot be decoded (see [`Rows::each_chunk`]).
    pub fn rows(&self, index: &Tensor) -> Tensor {
        match self {
            Inputs::Memory(x) => x.index_select(0, index),
            Inputs::Files { files, device } => load_rows(files, *device, index, Transform::Test, 0),
        }
    }

    /// Rows `index` augmented with `augment` drawing from `rng` (image files: one seed drawn for
    /// the batch), decoded now: stage 2's augmented features, whose batches the Meta Sampler
    /// chooses as it goes.
    ///
    /// # Panics
    /// If an image cannot be decoded (see [`Rows::each_chunk`]).
    pub fn augmented_rows(
        &self,
        index: &Tensor,
        augment: &AugmentSpec,
        rng: &mut ChaCha8Rng,
    ) -> Tensor {
        match self {
            Inputs::Memory(x) => augment.apply(&x.index_select(0, index), rng),
            Inputs::Files { files, device } => {
                load_rows(files, *device, index, file_transform(augment), rng.next_u64())
            }
        }
    }

    /// The training batches of `batches` (row indices), augmented with `augment` drawing from
    /// `rng`. In memory, each batch is gathered and augmented when asked for; image files are
    /// decoded [`PREFETCH`] batches ahead on the decoding pool, each batch with a seed drawn from
    /// `rng` now, in order.
    pub fn train_batches<'a>(
        &'a self,
        batches: &'a [Vec<i64>],
        augment: &'a AugmentSpec,
        rng: &'a mut ChaCha8Rng,
    ) -> TrainBatches<'a> {
        match self {
            Inputs::Memory(x) => TrainBatches::Memory { x, batches: batches.iter(), augment, rng },
            Inputs::Files { files, device } => {
                let jobs = batches.iter().map(|b| (b.clone(), rng.next_u64())).collect();
                let receiver = files.prefetch(jobs, file_transform(augment), PREFETCH);
                TrainBatches::Files { receiver, files, device: *device }
            }
        }
    }
}

/// How image files are transformed for training under `augment`: the official training
/// transform for `random-resized-crop`, else the test transform.
fn file_transform(augment: &AugmentSpec) -> Transform {
    match augment {
        AugmentSpec::RandomResizedCrop { jitter } => Transform::Train { jitter: *jitter },
        AugmentSpec::None | AugmentSpec::CropFlip { .. } | AugmentSpec::Cifar { .. } => {
            Transform::Test
        }
    }
}

/// Training batches in order; see [`Inputs::train_batches`].
pub enum TrainBatches<'a> {
    /// Gathered from memory on demand.
    Memory {
        /// All training inputs.
        x: &'a Tensor,
        /// Remaining batches.
        batches: std::slice::Iter<'a, Vec<i64>>,
        /// Augmentation applied to each gathered batch.
        augment: &'a AugmentSpec,
        /// The run's augmentation generator, drawn from batch by batch, in order.
        rng: &'a mut ChaCha8Rng,
    },
    /// Decoded in the background.
    Files {
        /// Decoded batches, in order.
        receiver: mpsc::Receiver<Batch>,
        /// The files (for the crop size).
        files: &'a ImageFiles,
        /// Where batches go.
        device: Device,
    },
}

impl Iterator for TrainBatches<'_> {
    type Item = Result<Tensor, ImageError>;

    fn next(&mut self) -> Option<Self::Item> {
        match self {
            TrainBatches::Memory { x, batches, augment, rng } => {
                let indices = batches.next()?;
                let index = Tensor::from_slice(indices).to_device(x.device());
                Some(Ok(augment.apply(&x.index_select(0, &index), rng)))
            }
            TrainBatches::Files { receiver, files, device } => {
                let batch = receiver.recv().ok()?;
                Some(batch_tensor(batch, files, *device))
            }
        }
    }
}

/// Float inputs in memory (for tests and synthetic data).
impl From<Tensor> for Inputs {
    fn from(x: Tensor) -> Inputs {
        Inputs::Memory(x)
    }
}

//! Training one run: end-to-end, or stage 2 of decoupled training on a frozen backbone.
//!
//! The epoch loop is in [`end_to_end`]: per batch a forward pass, the epoch's loss (deferred
//! re-weighting switches it) and `Sgd::step`, which refuses a non-finite loss; per epoch the
//! selection rule sees the model; [`evaluate::evaluate`] scores the selected model. Every random
//! stream comes from the run's [`RunSeeds`].

mod adam;
mod bilevel;
pub mod evaluate;
pub mod schedule;
mod select;
mod stage2;

pub use stage2::stage2;

use std::path::Path;

use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use tch::nn::{self, OptimizerConfig};
use tch::{Device, Kind, Tensor};

use crate::data::RunData;
use crate::device::Autocast;
use crate::loss::{BuildContext, Loss};
use crate::matrix::{Optimizer, RunSeeds, Settings};
use crate::model::{Network, Phase};
use crate::seed::torch_seed;
use evaluate::Evaluation;
use schedule::Timeline;

/// Why training stopped.
#[derive(Debug, thiserror::Error)]
pub enum TrainError {
    /// The loss became NaN or infinite.
    #[error("training diverged: loss {value} at epoch {epoch}, iteration {iteration}")]
    Diverged {
        /// 1-based epoch (stage 2: 1).
        epoch: u64,
        /// 0-based global iteration.
        iteration: u64,
        /// The batch loss that was not finite (NaN or +-inf).
        value: f64,
    },
    /// Pretrained weights could not be used.
    #[error(transparent)]
    Pretrained(#[from] crate::model::pretrained::PretrainedError),
    /// Training inputs could not be decoded.
    #[error("training data: {0}")]
    Data(String),
    /// The loss could not be built for this data.
    #[error(transparent)]
    Loss(#[from] crate::loss::LossError),
    /// A checkpoint could not be written or read.
    #[error("checkpoint `{path}`")]
    Checkpoint {
        /// The checkpoint file (a run's `model.ot`).
        path: String,
        /// tch's error.
        #[source]
        source: tch::TchError,
    },
    /// Stopped at a step by request ([`Progress::stop_requested`]): not a result, not a failure.
    #[error("interrupted")]
    Interrupted,
    /// A checkpoint's bytes could not be written (a full disk, say); the file is left as it was.
    #[error("cannot write checkpoint `{path}`")]
    CheckpointWrite {
        /// The checkpoint file (a run's `model.ot`).
        path: String,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
}

/// What a training reports as it goes.
pub trait Progress {
    /// Whether training should stop at its next step (a SIGINT or SIGTERM arrived): it then
    /// returns [`TrainError::Interrupted`] and writes nothing. Checked before every batch.
    fn stop_requested(&self) -> bool {
        false
    }

    /// An epoch (or a block of stage-2 iterations) ended.
    fn epoch(&mut self, epoch: u64, epochs: u64, mean_loss: f64, lr: f64);
}

/// The outcome of a training run.
#[derive(Debug)]
pub struct Trained {
    /// Test metrics of the selected model.
    pub evaluation: Evaluation,
    /// Validation top-1 of the selected model.
    pub validation_top1: f64,
    /// Iterations run.
    pub iterations: u64,
    /// Iterations after which the selected model was taken.
    pub selected_iteration: u64,
    /// Mean training loss at the end.
    pub final_train_loss: Option<f64>,
    /// tau chosen or used by a post-hoc adjustment.
    pub tau: Option<f64>,
    /// Meta Sampler/Reweighter: the rates `sigmoid(phi)` after each tenth of stage 2.
    pub meta_rates: Option<Vec<Vec<f64>>>,
    /// End-to-end: the SHA-256 of the checkpoint's bytes as written.
    pub checkpoint_sha256: Option<String>,
}

/// Trains a network end to end and saves the selected model to `checkpoint`.
///
/// # Errors
/// [`TrainError`] on divergence, loss construction or checkpoint failure.
pub fn end_to_end(
    settings: &Settings,
    data: &RunData,
    seeds: &RunSeeds,
    device: Device,
    checkpoint: &Path,
    progress: &mut dyn Progress,
) -> Result<Trained, TrainError> {
    tch::manual_seed(torch_seed(seeds.init));
    let vs = nn::VarStore::new(device);
    let shape = &data.train_x.sample_shape();
    let classes = i64::try_from(data.class_counts.len()).expect("fits");
    let network = Network::new(&vs.root(), &settings.model, settings.classifier, shape, classes);
    crate::model::pretrained::apply(&vs, &settings.model)?;
    if settings.channels_last {
        crate::model::to_channels_last(&vs);
    }
    let batch = settings.batch_size as usize;
    let timeline = Timeline::new(
        settings.schedule.stepping,
        &data.class_counts,
        batch,
        &settings.sampler,
        settings.length,
        settings.schedule.warmup,
    )
    .map_err(TrainError::Data)?;
    let plan = LrPlan {
        peak: settings.optimizer.lr,
        start_factor: settings.schedule.warmup_start_factor,
        timeline,
    };
    let epochs = timeline.epochs();
    let losses = EpochLosses::new(settings, &data.class_counts, device, epochs)?;
    let mut sampler = settings.sampler.build(&data.train_labels, data.class_counts.len(), epochs);
    let mut sgd = Sgd::new(&vs, &settings.optimizer);
    let mut order = ChaCha8Rng::seed_from_u64(seeds.order);
    let mut augment = ChaCha8Rng::seed_from_u64(seeds.augment);
    let mut best = select::Best::new(settings.selection);
    let mut iteration = 0;
    let mut last_loss = f64::NAN;
    for epoch in 1..=epochs {
        let loss = losses.at(epoch - 1);
        let mut sum = 0.0;
        let mut batches = sampler.epoch(batch, &mut order);
        batches.truncate(usize::try_from(timeline.batches_in(epoch)).unwrap_or(usize::MAX));
        let inputs = data.train_x.train_batches(&batches, &settings.augment, &mut augment);
        for (indices, x) in batches.iter().zip(inputs) {
            if progress.stop_requested() {
                return Err(TrainError::Interrupted);
            }
            let index = Tensor::from_slice(indices).to_device(device);
            let mut x = x.map_err(|e| TrainError::Data(e.to_string()))?;
            if settings.channels_last {
                x = crate::model::channels_last(&x);
            }
            let logits = {
                let _region = Autocast::enter(settings.precision, device);
                network.logits(&x, Phase::Train)
            };
            let value =
                loss.forward(&logits.to_kind(Kind::Float), &data.train_y.index_select(0, &index));
            let value = sgd
                .step(&value, plan.at(iteration))
                .map_err(|value| TrainError::Diverged { epoch, iteration, value })?;
            sum += value;
            iteration += 1;
        }
        let mean = sum / batches.len() as f64;
        last_loss = mean;
        best.offer(&vs, iteration, data, |x| network.logits(x, Phase::Eval));
        progress.epoch(epoch, epochs, mean, plan.at(iteration - 1));
    }
    let selected_iteration = best.restore(&vs, iteration);
    let checkpoint_sha256 = save_checkpoint(&vs, checkpoint)?;
    let logits = |x: &Tensor| network.logits(x, Phase::Eval);
    Ok(Trained {
        evaluation: evaluate::evaluate(logits, &data.test_x, &data.test_y, &data.class_counts),
        validation_top1: evaluate::top1(logits, &data.val_x, &data.val_y),
        iterations: iteration,
        selected_iteration,
        final_train_loss: (iteration > 0).then_some(last_loss),
        tau: None,
        meta_rates: None,
        checkpoint_sha256: Some(checkpoint_sha256),
    })
}

/// Saves `vs` to `checkpoint` atomically and returns the SHA-256 of the bytes written. libtorch
/// serialises into memory and the bytes are
/// written with [`crate::files::write_atomic`]: libtorch's own file writer aborts the process
/// when the disk fills (its zip writer throws from a destructor), where this gives an error.
fn save_checkpoint(vs: &nn::VarStore, checkpoint: &Path) -> Result<String, TrainError> {
    let path = || checkpoint.display().to_string();
    let mut bytes = Vec::new();
    vs.save_to_stream(&mut bytes)
        .map_err(|source| TrainError::Checkpoint { path: path(), source })?;
    crate::files::write_atomic(checkpoint, &bytes)
        .map_err(|source| TrainError::CheckpointWrite { path: path(), source })?;
    Ok(crate::files::sha256(&bytes))
}

/// The loss of each epoch: with deferred re-weighting, unweighted before the switch and with
/// class-balanced weights after.
struct EpochLosses {
    plain: Box<dyn Loss>,
    reweighted: Option<(u64, Box<dyn Loss>)>,
}

impl EpochLosses {
    fn new(
        settings: &Settings,
        counts: &[usize],
        device: Device,
        epochs: u64,
    ) -> Result<EpochLosses, TrainError> {
        let context = BuildContext::new(counts.to_vec(), device);
        let plain = settings.loss.build(&context)?;
        let reweighted = match &settings.drw {
            None => None,
            Some(drw) => {
                let weights = crate::loss::class_balanced_weights(counts, drw.beta);
                let context = BuildContext { class_weights: Some(weights), ..context };
                Some((drw.first_epoch(epochs), settings.loss.build(&context)?))
            }
        };
        Ok(EpochLosses { plain, reweighted })
    }

    /// The loss of 0-based epoch `epoch`.
    fn at(&self, epoch: u64) -> &dyn Loss {
        match &self.reweighted {
            Some((first, loss)) if epoch >= *first => &**loss,
            _ => &*self.plain,
        }
    }
}

/// Progress (and selection) points of stage 2: ten blocks of iterations (fewer with fewer
/// iterations), reporting the mean loss of the last 100 iterations.
struct Blocks {
    every: usize,
    count: u64,
    done: usize,
    recent: std::collections::VecDeque<f64>,
}

impl Blocks {
    fn new(iterations: usize) -> Blocks {
        let every = (iterations / 10).max(1);
        let recent = std::collections::VecDeque::with_capacity(101);
        Blocks { every, count: (iterations / every) as u64, done: 0, recent }
    }

    /// Number of blocks.
    fn count(&self) -> u64 {
        self.count
    }

    /// Records an iteration's loss; at the end of a block, returns its 1-based number and the
    /// recent mean loss.
    fn push(&mut self, value: f64) -> Option<(u64, f64)> {
        self.recent.push_back(value);
        if self.recent.len() > 100 {
            self.recent.pop_front();
        }
        self.done += 1;
        (self.done % self.every == 0).then(|| ((self.done / self.every) as u64, self.mean()))
    }

    /// Mean loss of the last 100 iterations.
    fn mean(&self) -> f64 {
        let n = self.recent.len() as f64;
        self.recent.iter().sum::<f64>() / n
    }
}

/// A learning-rate schedule over a whole training.
struct LrPlan {
    peak: f64,
    start_factor: f64,
    timeline: Timeline,
}

impl LrPlan {
    fn at(&self, iteration: u64) -> f64 {
        self.timeline.learning_rate(self.peak, self.start_factor, iteration)
    }
}

/// SGD with momentum and weight decay over a variable store's trainable variables.
struct Sgd {
    optimizer: nn::Optimizer,
}

impl Sgd {
    fn new(vs: &nn::VarStore, o: &Optimizer) -> Sgd {
        let config = nn::Sgd {
            momentum: o.momentum,
            dampening: 0.0,
            wd: o.weight_decay,
            nesterov: o.nesterov,
        };
        Sgd { optimizer: config.build(vs, o.lr).expect("SGD over a variable store") }
    }

    /// One step on the batch loss `value` at learning rate `lr`; returns the loss, or `Err(loss)`
    /// if it is not finite.
    fn step(&mut self, value: &Tensor, lr: f64) -> Result<f64, f64> {
        let scalar = value.to_kind(Kind::Double).double_value(&[]);
        if !scalar.is_finite() {
            return Err(scalar);
        }
        self.optimizer.set_lr(lr);
        self.optimizer.backward_step(value);
        Ok(scalar)
    }
}

//! Training one run: end-to-end, or stage 2 of decoupled training on a frozen backbone.
//!
//! The epoch loop is split into small steps (`train_epoch`, `sgd`, `evaluate`); every random
//! stream comes from the run's [`RunSeeds`].

pub mod evaluate;
pub mod schedule;

use std::path::Path;

use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};
use tch::nn::{self, Module, OptimizerConfig};
use tch::{Device, Kind, Tensor};

use crate::data::RunData;
use crate::loss::{BuildContext, Loss};
use crate::matrix::{Optimizer, RunSeeds, Settings, Stage2};
use crate::model::{linear_classifier, ModelSpec, Network, Phase};
use crate::sampler::Sampler;
use crate::seed::torch_seed;
use crate::store::Evaluation;

/// Which model is reported.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Selection {
    /// The model after the last iteration (default; the test set never chooses anything).
    Last,
}

impl Selection {
    /// Label recorded in results.
    #[must_use]
    pub fn label(self) -> &'static str {
        match self {
            Selection::Last => "last",
        }
    }
}

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
        /// The loss value.
        value: f64,
    },
    /// The loss could not be built for this data.
    #[error(transparent)]
    Loss(#[from] crate::loss::LossError),
    /// A checkpoint could not be written or read.
    #[error("checkpoint `{path}`")]
    Checkpoint {
        /// The file.
        path: String,
        /// Why.
        #[source]
        source: tch::TchError,
    },
}

/// What a training reports as it goes.
pub trait Progress {
    /// An epoch (or a block of stage-2 iterations) ended.
    fn epoch(&mut self, epoch: u64, epochs: u64, mean_loss: f64, lr: f64);
}

/// The outcome of a training run.
#[derive(Debug)]
pub struct Trained {
    /// Test metrics of the selected model.
    pub evaluation: Evaluation,
    /// Iterations run.
    pub iterations: u64,
    /// Mean training loss at the end.
    pub final_train_loss: f64,
}

/// Trains a network end to end and saves it to `checkpoint`.
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
    let shape = &data.train_x.size()[1..];
    let classes = i64::try_from(data.class_counts.len()).expect("fits");
    let network = Network::new(&vs.root(), &settings.model, shape, classes);
    let loss =
        settings.loss.build(&BuildContext { class_counts: data.class_counts.clone(), device })?;
    let mut sampler = settings.sampler.build(&data.train_labels, data.class_counts.len());
    let mut sgd = Sgd::new(&vs, &settings.optimizer);
    let batch = settings.batch_size as usize;
    let per_epoch = data.train_labels.len().div_ceil(batch) as u64;
    let plan = LrPlan {
        peak: settings.optimizer.lr,
        total: settings.length.iterations(per_epoch),
        warmup: settings.schedule.warmup.iterations(per_epoch),
        start_factor: settings.schedule.warmup_start_factor,
    };
    let epochs = plan.total.div_ceil(per_epoch);
    let mut order = ChaCha8Rng::seed_from_u64(seeds.order);
    let mut augment = ChaCha8Rng::seed_from_u64(seeds.augment);
    let mut iteration = 0;
    let mut last_loss = f64::NAN;
    for epoch in 1..=epochs {
        let mut sum = 0.0;
        let mut batches = sampler.epoch(batch, &mut order);
        batches.truncate(usize::try_from(plan.total - iteration).unwrap_or(usize::MAX));
        for indices in &batches {
            let index = Tensor::from_slice(indices).to_device(device);
            let x = settings.augment.apply(&data.train_x.index_select(0, &index), &mut augment);
            let logits = network.logits(&x, Phase::Train);
            let value = sgd
                .step(&*loss, &logits, &data.train_y.index_select(0, &index), plan.at(iteration))
                .map_err(|value| TrainError::Diverged { epoch, iteration, value })?;
            sum += value;
            iteration += 1;
        }
        #[allow(clippy::cast_precision_loss)]
        let mean = sum / batches.len() as f64;
        last_loss = mean;
        progress.epoch(epoch, epochs, mean, plan.at(iteration - 1));
    }
    vs.save(checkpoint).map_err(|source| TrainError::Checkpoint {
        path: checkpoint.display().to_string(),
        source,
    })?;
    let evaluation = evaluate::evaluate(
        |x| network.logits(x, Phase::Eval),
        &data.test_x,
        &data.test_y,
        &data.class_counts,
    );
    Ok(Trained { evaluation, iterations: iteration, final_train_loss: last_loss })
}

/// Stage 2 of decoupled training: loads the stage-1 backbone from `checkpoint`, computes its
/// features once in evaluation mode, and trains a fresh linear classifier on them.
///
/// # Errors
/// [`TrainError`] on divergence, loss construction or an unreadable checkpoint.
pub fn stage2(
    stage2: &Stage2,
    model: &ModelSpec,
    data: &RunData,
    seeds: &RunSeeds,
    device: Device,
    checkpoint: &Path,
    progress: &mut dyn Progress,
) -> Result<Trained, TrainError> {
    let (train_features, test_features) = frozen_features(model, data, device, checkpoint)?;
    tch::manual_seed(torch_seed(seeds.init));
    let vs = nn::VarStore::new(device);
    let classes = i64::try_from(data.class_counts.len()).expect("fits");
    let classifier =
        linear_classifier(&(vs.root() / "classifier"), train_features.size()[1], classes);
    let loss =
        stage2.loss.build(&BuildContext { class_counts: data.class_counts.clone(), device })?;
    let mut sampler = stage2.sampler.build(&data.train_labels, data.class_counts.len());
    let mut sgd = Sgd::new(&vs, &stage2.optimizer);
    let plan = LrPlan {
        peak: stage2.optimizer.lr,
        total: u64::from(stage2.iterations),
        warmup: 0,
        start_factor: 1.0,
    };
    let mut order = ChaCha8Rng::seed_from_u64(seeds.order);
    let batches = stage2_batches(
        &mut *sampler,
        stage2.batch_size as usize,
        stage2.iterations as usize,
        &mut order,
    );
    // Progress in ten blocks of iterations (fewer when there are fewer than ten iterations).
    let report_every = (batches.len() / 10).max(1);
    let blocks = (batches.len() / report_every) as u64;
    let mut recent = std::collections::VecDeque::with_capacity(101);
    for (iteration, indices) in (0u64..).zip(&batches) {
        let index = Tensor::from_slice(indices).to_device(device);
        let logits = classifier.forward(&train_features.index_select(0, &index));
        let value = sgd
            .step(&*loss, &logits, &data.train_y.index_select(0, &index), plan.at(iteration))
            .map_err(|value| TrainError::Diverged { epoch: 1, iteration, value })?;
        recent.push_back(value);
        if recent.len() > 100 {
            recent.pop_front();
        }
        let done = usize::try_from(iteration).expect("fits") + 1;
        if done % report_every == 0 {
            #[allow(clippy::cast_precision_loss)]
            progress.epoch(
                (done / report_every) as u64,
                blocks,
                recent.iter().sum::<f64>() / recent.len() as f64,
                plan.at(iteration),
            );
        }
    }
    let evaluation = evaluate::evaluate(
        |f| classifier.forward(f),
        &test_features,
        &data.test_y,
        &data.class_counts,
    );
    #[allow(clippy::cast_precision_loss)]
    let final_train_loss = recent.iter().sum::<f64>() / recent.len() as f64;
    Ok(Trained { evaluation, iterations: batches.len() as u64, final_train_loss })
}

/// Batches for `iterations` stage-2 steps, taking sampler epochs as needed.
fn stage2_batches(
    sampler: &mut dyn Sampler,
    batch: usize,
    iterations: usize,
    rng: &mut ChaCha8Rng,
) -> Vec<Vec<i64>> {
    let mut batches = Vec::with_capacity(iterations);
    while batches.len() < iterations {
        batches.extend(sampler.epoch(batch, rng).into_iter().take(iterations - batches.len()));
    }
    batches
}

/// Features of the training subset and the test set from a saved backbone, in evaluation mode.
fn frozen_features(
    model: &ModelSpec,
    data: &RunData,
    device: Device,
    checkpoint: &Path,
) -> Result<(Tensor, Tensor), TrainError> {
    let mut vs = nn::VarStore::new(device);
    let shape = &data.train_x.size()[1..];
    let classes = i64::try_from(data.class_counts.len()).expect("fits");
    let network = Network::new(&vs.root(), model, shape, classes);
    vs.load(checkpoint).map_err(|source| TrainError::Checkpoint {
        path: checkpoint.display().to_string(),
        source,
    })?;
    vs.freeze();
    let features = |x: &Tensor| {
        let _guard = tch::no_grad_guard();
        let n = x.size()[0];
        let chunks: Vec<Tensor> = (0..n)
            .step_by(usize::try_from(evaluate::EVAL_BATCH).expect("fits"))
            .map(|start| {
                network
                    .backbone
                    .features(&x.narrow(0, start, evaluate::EVAL_BATCH.min(n - start)), Phase::Eval)
            })
            .collect();
        Tensor::cat(&chunks, 0)
    };
    Ok((features(&data.train_x), features(&data.test_x)))
}

/// A learning-rate schedule over a whole training.
struct LrPlan {
    peak: f64,
    total: u64,
    warmup: u64,
    start_factor: f64,
}

impl LrPlan {
    fn at(&self, iteration: u64) -> f64 {
        schedule::learning_rate(self.peak, iteration, self.total, self.warmup, self.start_factor)
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

    /// One step at learning rate `lr`; returns the batch loss, or `Err(loss)` if it is not finite.
    fn step(
        &mut self,
        loss: &dyn Loss,
        logits: &Tensor,
        targets: &Tensor,
        lr: f64,
    ) -> Result<f64, f64> {
        let value = loss.forward(logits, targets);
        let scalar = value.to_kind(Kind::Double).double_value(&[]);
        if !scalar.is_finite() {
            return Err(scalar);
        }
        self.optimizer.set_lr(lr);
        self.optimizer.backward_step(&value);
        Ok(scalar)
    }
}

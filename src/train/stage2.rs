//! Stage 2 of decoupled training on a frozen stage-1 backbone: its features are computed in
//! evaluation mode, once (`features = "cached"`, the default) or for every batch (`per-batch`,
//! `augmented`), then a classifier is trained on them (a fresh one, cRT; or learned per-class
//! scales of the stage-1 classifier, LWS), or the stage-1 classifier is adjusted post hoc
//! (tau-normalisation, logit adjustment).

use std::cell::RefCell;
use std::path::Path;

use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use tch::nn::{self, Module};
use tch::{Device, Tensor};

use super::select::Splits;
use super::{bilevel, evaluate, select, Blocks, LrPlan, Progress, Sgd, TrainError, Trained};
use crate::data::augment::AugmentSpec;
use crate::data::inputs::{Inputs, Rows};
use crate::data::RunData;
use crate::loss::{log_prior, BuildContext};
use crate::matrix::{RunSeeds, Settings, Stage2};
use crate::model::{linear_classifier, Classifier, Network, Phase};
use crate::sampler::MetaSet;
use crate::seed::torch_seed;
use crate::vocab::{Features, Stage2Classifier};

/// The frozen stage-1 model: its features of every split and its classifier's weights.
struct Frozen {
    /// Training features, or `None` when they are recomputed for every batch.
    train: Option<Tensor>,
    val: Tensor,
    test: Tensor,
    /// `(weight [C, F], bias [C])` when the stage-1 classifier is linear.
    linear: Option<(Tensor, Tensor)>,
    /// The backbone, for per-batch features of the training inputs.
    network: Network,
    width: i64,
    /// Stage 1's augmentation and its generator, for augmented per-batch features.
    augment: Option<(AugmentSpec, RefCell<ChaCha8Rng>)>,
}

impl Frozen {
    /// Features of training rows `index`: from the cache, or through the backbone.
    fn train_rows(&self, inputs: &Inputs, index: &Tensor) -> Tensor {
        if let Some(cached) = &self.train {
            return cached.index_select(0, index);
        }
        let _guard = tch::no_grad_guard();
        let x = match &self.augment {
            Some((spec, rng)) => inputs.augmented_rows(index, spec, &mut rng.borrow_mut()),
            None => inputs.rows(index),
        };
        self.network.backbone.features(&x, Phase::Eval)
    }
}

/// Runs stage 2 of `stage2` on the backbone of `stage1` saved at `checkpoint`.
///
/// # Errors
/// [`TrainError`] on divergence, loss construction or an unreadable checkpoint.
pub fn stage2(
    stage2: &Stage2,
    stage1: &Settings,
    data: &RunData,
    seeds: &RunSeeds,
    device: Device,
    checkpoint: &Path,
    progress: &mut dyn Progress,
) -> Result<Trained, TrainError> {
    let frozen = frozen(stage1, data, (device, checkpoint), stage2.features, seeds)?;
    match &stage2.classifier {
        Stage2Classifier::Retrain if stage2.sampler.meta().is_some() => {
            train_meta(stage2, &frozen, data, seeds, progress)
        }
        Stage2Classifier::Retrain | Stage2Classifier::Lws => {
            train_classifier(stage2, &frozen, data, seeds, device, progress)
        }
        Stage2Classifier::TauNorm { tau } => Ok(tau_norm(*tau, &frozen, data)),
        Stage2Classifier::LogitAdjust { tau } => Ok(logit_adjust(*tau, &frozen, data)),
    }
}

/// The trainable stage-2 classifier.
#[derive(Debug)]
enum Head {
    Fresh(nn::Linear),
    /// LWS: fixed `(W, b)`, learned scales `[C]`.
    Scaled(Tensor, Tensor, Tensor),
}

impl Module for Head {
    fn forward(&self, xs: &Tensor) -> Tensor {
        match self {
            Head::Fresh(linear) => linear.forward(xs),
            Head::Scaled(w, b, scales) => xs.linear(w, Some(b)) * scales.unsqueeze(0),
        }
    }
}

fn train_classifier(
    stage2: &Stage2,
    frozen: &Frozen,
    data: &RunData,
    seeds: &RunSeeds,
    device: Device,
    progress: &mut dyn Progress,
) -> Result<Trained, TrainError> {
    tch::manual_seed(torch_seed(seeds.init));
    let vs = nn::VarStore::new(device);
    let classes = i64::try_from(data.class_counts.len()).expect("fits");
    let head = match (&stage2.classifier, &frozen.linear) {
        (Stage2Classifier::Lws, Some((w, b))) => {
            let scales = (vs.root() / "classifier").ones("scales", &[classes]);
            Head::Scaled(w.shallow_clone(), b.shallow_clone(), scales)
        }
        (Stage2Classifier::Lws, None)
        | (
            Stage2Classifier::Retrain
            | Stage2Classifier::TauNorm { .. }
            | Stage2Classifier::LogitAdjust { .. },
            _,
        ) => Head::Fresh(linear_classifier(&(vs.root() / "classifier"), frozen.width, classes)),
    };
    let loss = stage2.loss.build(&BuildContext::new(data.class_counts.clone(), device))?;
    let batch = stage2.batch_size as usize;
    let epochs = (stage2.iterations as usize).div_ceil(data.train_labels.len().div_ceil(batch));
    let mut sampler =
        stage2.sampler.build(&data.train_labels, data.class_counts.len(), epochs as u64);
    let mut sgd = Sgd::new(&vs, &stage2.optimizer);
    let plan = LrPlan {
        peak: stage2.optimizer.lr,
        total: u64::from(stage2.iterations),
        warmup: 0,
        start_factor: 1.0,
    };
    let mut order = ChaCha8Rng::seed_from_u64(seeds.order);
    let batches =
        crate::sampler::batches(&mut *sampler, batch, stage2.iterations as usize, &mut order);
    let mut blocks = Blocks::new(batches.len());
    let mut best = select::Best::new(stage2.selection);
    let splits = Splits { val: (&frozen.val, &data.val_y), test: (&frozen.test, &data.test_y) };
    for (iteration, indices) in (0u64..).zip(&batches) {
        if progress.stop_requested() {
            return Err(TrainError::Interrupted);
        }
        let index = Tensor::from_slice(indices).to_device(device);
        let value = loss.forward(
            &head.forward(&frozen.train_rows(&data.train_x, &index)),
            &data.train_y.index_select(0, &index),
        );
        let value = sgd.step(&value, plan.at(iteration)).map_err(|value| TrainError::Diverged {
            epoch: 1,
            iteration,
            value,
        })?;
        if let Some((block, mean)) = blocks.push(value) {
            best.offer_split(&vs, iteration + 1, &splits, |f| head.forward(f));
            progress.epoch(block, blocks.count(), mean, plan.at(iteration));
        }
    }
    let selected_iteration = best.restore(&vs, batches.len() as u64);
    let mut trained = finish(|f| head.forward(f), frozen, data, None);
    trained.iterations = batches.len() as u64;
    trained.selected_iteration = selected_iteration;
    trained.final_train_loss = Some(blocks.mean());
    Ok(trained)
}

/// Stage 2 with the Meta Sampler or Reweighter (`train::bilevel`) on the frozen features.
fn train_meta(
    stage2: &Stage2,
    frozen: &Frozen,
    data: &RunData,
    seeds: &RunSeeds,
    progress: &mut dyn Progress,
) -> Result<Trained, TrainError> {
    let spec = stage2.sampler.meta().expect("a meta sampler");
    let val_labels = Vec::<i64>::try_from(&data.val_y.to_device(Device::Cpu)).expect("int64");
    let train_rows = |index: &Tensor| frozen.train_rows(&data.train_x, index);
    let val_rows = |index: &Tensor| frozen.val.index_select(0, index);
    let (meta_x, meta_y, meta_labels): (&dyn Fn(&Tensor) -> Tensor, _, _) = match spec.meta_set {
        MetaSet::Train => (&train_rows, &data.train_y, &data.train_labels[..]),
        MetaSet::Validation => (&val_rows, &data.val_y, &val_labels[..]),
    };
    let input = bilevel::MetaData {
        train_x: &train_rows,
        train_y: &data.train_y,
        train_labels: &data.train_labels,
        meta_x,
        meta_y,
        meta_labels,
        counts: &data.class_counts,
        features: (frozen.width, frozen.val.kind(), frozen.val.device()),
    };
    let splits = Splits { val: (&frozen.val, &data.val_y), test: (&frozen.test, &data.test_y) };
    let mut best = select::Best::new(stage2.selection);
    let (vs, linear, outcome) =
        bilevel::train(stage2, spec, &input, seeds, (&splits, &mut best), progress)?;
    let selected_iteration = best.restore(&vs, outcome.iterations);
    let mut trained = finish(|f| linear.forward(f), frozen, data, None);
    trained.iterations = outcome.iterations;
    trained.selected_iteration = selected_iteration;
    trained.final_train_loss = Some(outcome.final_train_loss);
    trained.meta_rates = Some(outcome.rates);
    Ok(trained)
}

/// The grid tau-normalisation searches when no tau is given: 0, 0.1, ..., 2.
#[must_use]
fn tau_grid() -> Vec<f64> {
    (0..=20).map(|k| f64::from(k) / 10.0).collect()
}

/// tau-normalised logits `x . (w_j / ||w_j||^tau)`, without the bias (Kang et al., `tau_norm.py`).
fn tau_norm_logits(weight: &Tensor, tau: f64) -> impl Fn(&Tensor) -> Tensor + '_ {
    let norms = weight.norm_scalaropt_dim(2.0, [1], true);
    let scaled = weight / norms.pow_tensor_scalar(tau);
    move |x: &Tensor| x.matmul(&scaled.tr())
}

fn tau_norm(fixed: Option<f64>, frozen: &Frozen, data: &RunData) -> Trained {
    let (weight, _) = frozen.linear.as_ref().expect("validated: linear stage-1 classifier");
    let tau = fixed.unwrap_or_else(|| {
        let mut best = (f64::NEG_INFINITY, 0.0);
        for tau in tau_grid() {
            let score = evaluate::top1(tau_norm_logits(weight, tau), &frozen.val, &data.val_y);
            if score > best.0 {
                best = (score, tau);
            }
        }
        best.1
    });
    finish(tau_norm_logits(weight, tau), frozen, data, Some(tau))
}

fn logit_adjust(tau: f64, frozen: &Frozen, data: &RunData) -> Trained {
    let (weight, bias) = frozen.linear.as_ref().expect("validated: linear stage-1 classifier");
    let prior: Vec<f64> = log_prior(&data.class_counts).iter().map(|l| tau * l).collect();
    let shift = Tensor::from_slice(&prior).to_device(weight.device()).to_kind(weight.kind());
    let logits = |x: &Tensor| x.linear(weight, Some(bias)) - shift.unsqueeze(0);
    finish(logits, frozen, data, Some(tau))
}

/// Test and validation metrics of a stage-2 model; training fields are filled by the caller.
fn finish(
    logits: impl Fn(&Tensor) -> Tensor,
    frozen: &Frozen,
    data: &RunData,
    tau: Option<f64>,
) -> Trained {
    Trained {
        evaluation: evaluate::evaluate(&logits, &frozen.test, &data.test_y, &data.class_counts),
        validation_top1: evaluate::top1(&logits, &frozen.val, &data.val_y),
        iterations: 0,
        selected_iteration: 0,
        final_train_loss: None,
        tau,
        meta_rates: None,
        checkpoint_sha256: None,
    }
}

/// Features of every split from a saved stage-1 model, in evaluation mode, and its classifier;
/// training features only when they are cached.
fn frozen(
    stage1: &Settings,
    data: &RunData,
    (device, checkpoint): (Device, &Path),
    mode: Features,
    seeds: &RunSeeds,
) -> Result<Frozen, TrainError> {
    let mut vs = nn::VarStore::new(device);
    let shape = &data.train_x.sample_shape();
    let classes = i64::try_from(data.class_counts.len()).expect("fits");
    let network = Network::new(&vs.root(), &stage1.model, stage1.classifier, shape, classes);
    vs.load(checkpoint).map_err(|source| TrainError::Checkpoint {
        path: checkpoint.display().to_string(),
        source,
    })?;
    vs.freeze();
    let linear = match &network.classifier {
        Classifier::Linear(l) => {
            Some((l.ws.detach(), l.bs.as_ref().expect("linear classifiers have a bias").detach()))
        }
        Classifier::Cosine { .. } => None,
    };
    Ok(Frozen {
        train: (mode == Features::Cached).then(|| eval_features(&network, &data.train_x)),
        val: eval_features(&network, &data.val_x),
        test: eval_features(&network, &data.test_x),
        linear,
        width: network.backbone.feature_dim(),
        network,
        augment: (mode == Features::Augmented).then(|| {
            (stage1.augment.clone(), RefCell::new(ChaCha8Rng::seed_from_u64(seeds.augment)))
        }),
    })
}

/// Backbone features of `x` in evaluation mode, in chunks.
fn eval_features(network: &Network, x: &Inputs) -> Tensor {
    let _guard = tch::no_grad_guard();
    let mut chunks = Vec::new();
    x.each_chunk(evaluate::EVAL_BATCH, &mut |_, chunk| {
        chunks.push(network.backbone.features(&chunk, Phase::Eval));
    });
    Tensor::cat(&chunks, 0)
}

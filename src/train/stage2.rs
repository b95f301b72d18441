//! Stage 2 of decoupled training on a frozen stage-1 backbone: its features are computed in
//! evaluation mode, once (`features = "cached"`, the default) or for every batch (`per-batch`,
//! `augmented`), or for every batch in training mode as the official code (`augmented-train-bn`,
//! batch norm's statistics moving), then a classifier is trained on them (a fresh one, cRT; or learned per-class
//! scales of the stage-1 classifier, LWS), or the stage-1 classifier is adjusted post hoc
//! (tau-normalisation, logit adjustment).

use std::cell::RefCell;
use std::path::Path;

use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use tch::nn::{self, Module};
use tch::{Device, Tensor};

use super::schedule::Timeline;
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
    /// Validation and test features, or `None` when the backbone's batch norm trains during
    /// stage 2, so that they are computed with the statistics of the moment.
    val: Option<Tensor>,
    test: Option<Tensor>,
    /// The features' kind and device.
    kind: (tch::Kind, Device),
    /// Whether stage-2 batches go through the backbone in training mode.
    train_bn: bool,
    /// `(weight [C, F], bias [C])` when the stage-1 classifier is linear.
    linear: Option<(Tensor, Tensor)>,
    /// The backbone, for per-batch features of the training inputs.
    network: Network,
    width: i64,
    /// Stage 1's augmentation and its generator, for augmented per-batch features.
    augment: Option<(AugmentSpec, RefCell<ChaCha8Rng>)>,
    /// `stage2.double-forward`: the last training batch's (augmented) inputs, kept for
    /// [`Frozen::repeat_train_pass`]; `None` inside when nothing is kept.
    last_inputs: Option<RefCell<Option<Tensor>>>,
}

impl Frozen {
    /// Features of training rows `index`: from the cache, or through the backbone; with
    /// `double-forward`, the batch's inputs are kept for [`Frozen::repeat_train_pass`].
    fn train_rows(&self, inputs: &Inputs, index: &Tensor) -> Tensor {
        let x = self.train_inputs(inputs, index);
        if let (Some(x), Some(kept)) = (&x, &self.last_inputs) {
            *kept.borrow_mut() = Some(x.shallow_clone());
        }
        self.features_of(x, index)
    }

    /// Features of training rows `index` drawn as meta batches (the Meta Sampler's meta set from
    /// the training split): as [`Frozen::train_rows`], but never kept for a second pass.
    fn meta_train_rows(&self, inputs: &Inputs, index: &Tensor) -> Tensor {
        let x = self.train_inputs(inputs, index);
        self.features_of(x, index)
    }

    /// The (augmented) inputs of training rows `index`, or `None` when features are cached.
    fn train_inputs(&self, inputs: &Inputs, index: &Tensor) -> Option<Tensor> {
        if self.train.is_some() {
            return None;
        }
        Some(match &self.augment {
            Some((spec, rng)) => inputs.augmented_rows(index, spec, &mut rng.borrow_mut()),
            None => inputs.rows(index),
        })
    }

    /// The backbone's features of inputs `x`, or the cached features of rows `index`.
    fn features_of(&self, x: Option<Tensor>, index: &Tensor) -> Tensor {
        match (x, &self.train) {
            (Some(x), _) => {
                let _guard = tch::no_grad_guard();
                self.network.backbone.features(&x, self.batch_phase())
            }
            (None, Some(cached)) => cached.index_select(0, index),
            (None, None) => unreachable!("inputs are drawn whenever nothing is cached"),
        }
    }

    /// `double-forward`: the last training batch through the backbone again, in training mode,
    /// for its effect on batch norm's running statistics (the official code's `batch_forward`
    /// after `meta_forward`); the features, equal to the first pass's, are dropped.
    fn repeat_train_pass(&self) {
        if let Some(x) = self.last_inputs.as_ref().and_then(|kept| kept.borrow_mut().take()) {
            let _guard = tch::no_grad_guard();
            let _ = self.network.backbone.features(&x, self.batch_phase());
        }
    }

    /// The backbone's phase for stage-2 batches: training mode moves batch norm's statistics.
    fn batch_phase(&self) -> Phase {
        if self.train_bn {
            Phase::Train
        } else {
            Phase::Eval
        }
    }

    /// Features of validation rows `index` (the Meta Sampler's meta batches): from the cache, or
    /// through the backbone in training mode, not augmented, as the official code's val loader.
    fn val_rows(&self, inputs: &Inputs, index: &Tensor) -> Tensor {
        if let Some(cached) = &self.val {
            return cached.index_select(0, index);
        }
        let _guard = tch::no_grad_guard();
        self.network.backbone.features(&inputs.rows(index), self.batch_phase())
    }

    /// The validation split's features: cached, or computed when read with the current
    /// statistics.
    fn val_split<'a>(&'a self, data: &'a RunData) -> SplitFeatures<'a> {
        match &self.val {
            Some(cached) => SplitFeatures::Cached(cached),
            None => SplitFeatures::Live(&self.network, &data.val_x),
        }
    }

    /// The test set's features, as [`Frozen::val_split`].
    fn test_split<'a>(&'a self, data: &'a RunData) -> SplitFeatures<'a> {
        match &self.test {
            Some(cached) => SplitFeatures::Cached(cached),
            None => SplitFeatures::Live(&self.network, &data.test_x),
        }
    }
}

/// A split's frozen features for evaluation: computed once, or through the backbone in evaluation
/// mode whenever they are read.
enum SplitFeatures<'a> {
    Cached(&'a Tensor),
    Live(&'a Network, &'a Inputs),
}

impl Rows for SplitFeatures<'_> {
    fn count(&self) -> i64 {
        match self {
            SplitFeatures::Cached(x) => x.count(),
            SplitFeatures::Live(_, inputs) => inputs.count(),
        }
    }

    fn each_chunk(&self, size: i64, f: &mut dyn FnMut(i64, Tensor)) {
        match self {
            SplitFeatures::Cached(x) => x.each_chunk(size, f),
            SplitFeatures::Live(network, inputs) => {
                let _guard = tch::no_grad_guard();
                inputs.each_chunk(size, &mut |start, chunk| {
                    f(start, network.backbone.features(&chunk, Phase::Eval));
                });
            }
        }
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
    // A post-hoc adjustment trains nothing, so nothing moves batch norm: cached features.
    let features = if stage2.classifier.is_post_hoc() { Features::Cached } else { stage2.features };
    let mut frozen = frozen(stage1, data, (device, checkpoint), features, seeds)?;
    if stage2.double_forward && features == Features::AugmentedTrainBn {
        frozen.last_inputs = Some(RefCell::new(None));
    }
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
    let timeline = Timeline::of_stage2(stage2, &data.class_counts).map_err(TrainError::Data)?;
    let mut sampler =
        stage2.sampler.build(&data.train_labels, data.class_counts.len(), timeline.epochs());
    let mut sgd = Sgd::new(&vs, &stage2.optimizer);
    let plan = LrPlan { peak: stage2.optimizer.lr, start_factor: 1.0, timeline };
    let mut order = ChaCha8Rng::seed_from_u64(seeds.order);
    let batches = timeline.batches(&mut *sampler, batch, &mut order);
    let mut blocks = Blocks::new(batches.len());
    let mut best = select::Best::new(stage2.selection);
    let (val, test) = (frozen.val_split(data), frozen.test_split(data));
    let splits = Splits { val: (&val, &data.val_y), test: (&test, &data.test_y) };
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
    let meta_train_rows = |index: &Tensor| frozen.meta_train_rows(&data.train_x, index);
    let val_rows = |index: &Tensor| frozen.val_rows(&data.val_x, index);
    let repeat = || frozen.repeat_train_pass();
    let (meta_x, meta_y, meta_labels): (&dyn Fn(&Tensor) -> Tensor, _, _) = match spec.meta_set {
        MetaSet::Train => (&meta_train_rows, &data.train_y, &data.train_labels[..]),
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
        features: (frozen.width, frozen.kind.0, frozen.kind.1),
        after_meta_step: &repeat,
    };
    let (val, test) = (frozen.val_split(data), frozen.test_split(data));
    let splits = Splits { val: (&val, &data.val_y), test: (&test, &data.test_y) };
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
            let score =
                evaluate::top1(tau_norm_logits(weight, tau), &frozen.val_split(data), &data.val_y);
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
        evaluation: evaluate::evaluate(
            &logits,
            &frozen.test_split(data),
            &data.test_y,
            &data.class_counts,
        ),
        validation_top1: evaluate::top1(&logits, &frozen.val_split(data), &data.val_y),
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
    let train_bn = mode == Features::AugmentedTrainBn;
    let val = (!train_bn).then(|| eval_features(&network, &data.val_x));
    // The features' kind and device: from the cached ones, or from one validation image.
    let kind = val.as_ref().map_or_else(
        || {
            let _guard = tch::no_grad_guard();
            let first = data.val_x.rows(&Tensor::from_slice(&[0i64]).to_device(device));
            let one = network.backbone.features(&first, Phase::Eval);
            (one.kind(), one.device())
        },
        |v| (v.kind(), v.device()),
    );
    let augmented = matches!(mode, Features::Augmented | Features::AugmentedTrainBn);
    Ok(Frozen {
        train: (mode == Features::Cached).then(|| eval_features(&network, &data.train_x)),
        val,
        test: (!train_bn).then(|| eval_features(&network, &data.test_x)),
        kind,
        train_bn,
        linear,
        width: network.backbone.feature_dim(),
        network,
        augment: augmented.then(|| {
            (stage1.augment.clone(), RefCell::new(ChaCha8Rng::seed_from_u64(seeds.augment)))
        }),
        last_inputs: None,
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::augment::AugmentSpec;
    use crate::data::autoaugment::Policy;
    use crate::data::ValidationInfo;
    use crate::loss::LossSpec;
    use crate::matrix::{Length, Optimizer, Schedule};
    use crate::model::{ClassifierSpec, ModelSpec};
    use crate::sampler::SamplerSpec;
    use crate::seed::Seed;
    use crate::vocab::Selection;
    use rand::{Rng, SeedableRng};
    use tch::Kind;

    /// Random CIFAR-shaped run data (24 training, 10 validation and 10 test images).
    fn data() -> RunData {
        let mut rng = ChaCha8Rng::seed_from_u64(1);
        let mut images = |n: i64| {
            let bytes: Vec<f32> =
                (0..n * 3 * 32 * 32).map(|_| f32::from(rng.gen::<u8>()) / 255.0).collect();
            let mean = Tensor::from_slice(&crate::data::cifar::MEAN).view([1, 3, 1, 1]);
            let std = Tensor::from_slice(&crate::data::cifar::STD).view([1, 3, 1, 1]);
            Inputs::Memory((Tensor::from_slice(&bytes).view([n, 3, 32, 32]) - mean) / std)
        };
        let labels = |n: i64| Tensor::arange(n, (Kind::Int64, Device::Cpu)).remainder(10);
        RunData {
            train_x: images(24),
            train_y: labels(24),
            train_labels: (0..24).map(|i| i % 10).collect(),
            val_x: images(10),
            val_y: labels(10),
            test_x: images(10),
            test_y: labels(10),
            class_counts: vec![3, 3, 3, 3, 2, 2, 2, 2, 2, 2],
            indices_sha256: String::new(),
            validation: ValidationInfo {
                per_class: 1,
                from_training: 0,
                indices_sha256: String::new(),
            },
            pool_indices: None,
        }
    }

    fn stage1() -> Settings {
        Settings {
            model: ModelSpec::Resnet32,
            classifier: ClassifierSpec::Linear,
            loss: LossSpec::Softmax,
            drw: None,
            sampler: SamplerSpec::Instance,
            length: Length::Iterations(1),
            batch_size: 8,
            optimizer: Optimizer { lr: 0.1, momentum: 0.9, weight_decay: 5e-4, nesterov: false },
            schedule: Schedule {
                warmup: Length::Iterations(0),
                warmup_start_factor: 1.0,
                stepping: crate::vocab::Stepping::Iteration,
            },
            augment: AugmentSpec::Cifar {
                padding: 4,
                policy: Policy::AutoaugmentCifar10,
                cutout: 16,
            },
            selection: Selection::Last,
            precision: crate::device::Precision::default(),
            channels_last: false,
        }
    }

    /// Test features (eval mode) before and after one stage-2 batch, and the batch's features.
    fn one_batch(mode: Features, checkpoint: &Path) -> (Tensor, Tensor, Tensor) {
        let data = data();
        let seeds = RunSeeds { seed: Seed(1), subset: 1, init: 2, order: 3, augment: 4 };
        let frozen = frozen(&stage1(), &data, (Device::Cpu, checkpoint), mode, &seeds).unwrap();
        let features = |f: &Frozen| {
            let mut chunks = Vec::new();
            f.test_split(&data).each_chunk(64, &mut |_, c| chunks.push(c));
            Tensor::cat(&chunks, 0)
        };
        let before = features(&frozen);
        let index = Tensor::arange(16, (Kind::Int64, Device::Cpu));
        let batch = frozen.train_rows(&data.train_x, &index);
        (before, features(&frozen), batch)
    }

    /// A freshly initialised ResNet-32 saved as a stage-1 checkpoint in `dir`.
    fn stage1_checkpoint(dir: &Path) -> std::path::PathBuf {
        let checkpoint = dir.join("stage1.ot");
        tch::manual_seed(5);
        let vs = nn::VarStore::new(Device::Cpu);
        let _network = Network::new(
            &vs.root(),
            &ModelSpec::Resnet32,
            ClassifierSpec::Linear,
            &[3, 32, 32],
            10,
        );
        vs.save(&checkpoint).unwrap();
        checkpoint
    }

    #[test]
    fn train_mode_batch_norm_moves_the_statistics_and_eval_mode_does_not() {
        let dir = tempfile::tempdir().unwrap();
        let checkpoint = stage1_checkpoint(dir.path());

        let (before, after, batch) = one_batch(Features::Augmented, &checkpoint);
        assert!(before.equal(&after), "eval mode left the statistics alone");
        let (before_bn, after_bn, batch_bn) = one_batch(Features::AugmentedTrainBn, &checkpoint);
        assert!(before_bn.equal(&before), "same backbone before stage 2");
        assert!(!after_bn.equal(&before_bn), "one training-mode batch moved the statistics");
        // Training mode normalises with the batch's own statistics: other features.
        assert!(!batch_bn.equal(&batch));
        // Both deterministic.
        let (_, again, batch_again) = one_batch(Features::AugmentedTrainBn, &checkpoint);
        assert!(again.equal(&after_bn) && batch_again.equal(&batch_bn));
        let (_, _, eval_again) = one_batch(Features::Augmented, &checkpoint);
        assert!(eval_again.equal(&batch));
    }

    /// Test features (eval mode) of `frozen` now.
    fn test_features(frozen: &Frozen, data: &RunData) -> Tensor {
        let mut chunks = Vec::new();
        frozen.test_split(data).each_chunk(64, &mut |_, c| chunks.push(c));
        Tensor::cat(&chunks, 0)
    }

    #[test]
    fn double_forward_passes_the_same_augmented_batch_again() {
        let dir = tempfile::tempdir().unwrap();
        let checkpoint = stage1_checkpoint(dir.path());
        let data = data();
        let seeds = RunSeeds { seed: Seed(1), subset: 1, init: 2, order: 3, augment: 4 };
        let build = |double: bool| {
            let mode = Features::AugmentedTrainBn;
            let mut f = frozen(&stage1(), &data, (Device::Cpu, &checkpoint), mode, &seeds).unwrap();
            if double {
                f.last_inputs = Some(RefCell::new(None));
            }
            f
        };
        let index = Tensor::arange(16, (Kind::Int64, Device::Cpu));
        let (once, twice) = (build(false), build(true));
        let batch_once = once.train_rows(&data.train_x, &index);
        let batch_twice = twice.train_rows(&data.train_x, &index);
        assert!(batch_once.equal(&batch_twice), "the first pass is the same");
        let kept = twice.last_inputs.as_ref().unwrap().borrow().as_ref().unwrap().copy();
        // A meta batch from the training split (through the backbone too) is not kept.
        let _ = once.meta_train_rows(&data.train_x, &index.flip([0]));
        let _ = twice.meta_train_rows(&data.train_x, &index.flip([0]));
        assert!(twice.last_inputs.as_ref().unwrap().borrow().as_ref().unwrap().equal(&kept));
        let after_once = test_features(&once, &data);
        twice.repeat_train_pass();
        let after_twice = test_features(&twice, &data);
        assert!(!after_twice.equal(&after_once), "the second pass moved the statistics again");
        // It is the same augmented images through the backbone in training mode once more.
        {
            let _guard = tch::no_grad_guard();
            let _ = once.network.backbone.features(&kept, Phase::Train);
        }
        assert!(test_features(&once, &data).equal(&after_twice));
        // The kept inputs are used once.
        twice.repeat_train_pass();
        assert!(test_features(&twice, &data).equal(&after_twice));
    }
}

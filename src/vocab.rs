//! The words a matrix file uses and the plan resolves, shared by the wire format (`config`), the
//! plan (`matrix`) and the stages that act on them (`train`, `report`): the model-selection rule,
//! what stage 2 does with the classifier, where stage 2's features come from, and the figures.
//!
//! A leaf: it imports nothing from the crate, so every layer above may use it (see the crate doc
//! for the direction of imports). Component specs (`LossSpec`, `SamplerSpec`, `ModelSpec`,
//! `DatasetSpec`) stay with their components, which import nothing above them.

use serde::{Deserialize, Serialize};

/// Which model is reported.
#[derive(strum::VariantNames, strum::EnumIter, strum::EnumMessage)]
#[strum(serialize_all = "kebab-case")]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Selection {
    /// The model after the last iteration (default; the test set never chooses anything).
    #[strum(message = "the last iterate (default)")]
    Last,
    /// The checkpoint (per epoch; per tenth of stage 2) with the best validation top-1; the
    /// earliest wins ties.
    #[strum(message = "the best validation top-1")]
    BestVal,
    /// The checkpoint with the best *test* top-1, as the reference code does for CIFAR (its
    /// `val` phase loads the test set). Optimistic by construction; offered only to measure that
    /// optimism, and labelled as such in results and tables.
    #[strum(message = "the best test top-1 (optimistic, labelled)")]
    BestTest,
}

impl Selection {
    /// Label recorded in results.
    #[must_use]
    pub fn label(self) -> &'static str {
        match self {
            Selection::Last => "last",
            Selection::BestVal => "best-val",
            Selection::BestTest => "best-test (optimistic: chosen on the test set)",
        }
    }
}

/// What stage 2 does with the stage-1 model's classifier.
#[derive(strum::VariantNames, strum::EnumIter, strum::EnumMessage)]
#[strum(serialize_all = "kebab-case")]
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", rename_all_fields = "kebab-case", deny_unknown_fields)]
pub enum Stage2Classifier {
    /// A fresh linear classifier, PyTorch-initialised (cRT; the official BALMS stage 2).
    #[strum(message = "a fresh linear classifier (cRT with class-balanced sampling; DT without)")]
    Retrain,
    /// Learnable weight scaling (Kang et al., `TauNormClassifier`): the stage-1 linear classifier
    /// is kept fixed and one scale per class, initialised to 1, multiplies its logits.
    #[strum(message = "learnable weight scaling of the stage-1 classifier")]
    Lws,
    /// tau-normalisation (Kang et al., `tau_norm.py`), post hoc: logits `x . w_j / ||w_j||^tau`
    /// without the bias. `tau` is chosen on the validation split from 0, 0.1, ..., 2 unless given.
    #[strum(
        message = "post hoc: weights divided by their norm^tau (tau chosen on validation unless given)",
        detailed_message = "tau-norm { tau = 1.0 }"
    )]
    TauNorm {
        /// Fixed tau (default: chosen on the validation split).
        #[serde(default)]
        tau: Option<f64>,
    },
    /// Post-hoc logit adjustment (Menon et al.): the stage-1 model's logits minus
    /// `tau * log(n_j / n)` at prediction time (default tau 1).
    #[strum(message = "post hoc: logits minus tau log prior")]
    LogitAdjust {
        /// Temperature (default 1).
        #[serde(default = "one")]
        tau: f64,
    },
}

fn one() -> f64 {
    1.0
}

impl Stage2Classifier {
    /// Whether this is a post-hoc adjustment (no training).
    #[must_use]
    pub fn is_post_hoc(&self) -> bool {
        match self {
            Stage2Classifier::TauNorm { .. } | Stage2Classifier::LogitAdjust { .. } => true,
            Stage2Classifier::Retrain | Stage2Classifier::Lws => false,
        }
    }

    /// Stable label used in plans.
    #[must_use]
    pub fn label(&self) -> String {
        match self {
            Stage2Classifier::Retrain => "retrain (fresh linear classifier)".to_string(),
            Stage2Classifier::Lws => "lws (stage-1 classifier fixed, per-class scales)".to_string(),
            Stage2Classifier::TauNorm { tau: None } => {
                "tau-norm (tau chosen on validation from 0..2 step 0.1)".to_string()
            }
            Stage2Classifier::TauNorm { tau: Some(t) } => format!("tau-norm (tau {t})"),
            Stage2Classifier::LogitAdjust { tau } => {
                format!("post-hoc logit adjustment (tau {tau})")
            }
        }
    }
}

/// How stage 2 gets the frozen backbone's features of training batches.
#[derive(strum::VariantNames, strum::EnumIter, strum::EnumMessage, strum::AsRefStr)]
#[strum(serialize_all = "kebab-case")]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Features {
    /// Computed once for the whole training subset (default: the backbone is frozen and stage 2
    /// does not augment, so every batch would give the same features).
    #[strum(message = "computed once (default)")]
    #[default]
    Cached,
    /// Recomputed by the backbone for every batch (and meta batch), as the official code does;
    /// the same model, far slower: kept to measure what the cache saves (`just bench`).
    #[strum(message = "through the backbone for every batch")]
    PerBatch,
    /// Recomputed for every training batch from inputs augmented with stage 1's `augment` (the
    /// official code augments stage-2 batches; ImageNet-LT, Places-LT); the backbone stays in
    /// evaluation mode, and meta batches from the validation split are not augmented, as the
    /// code's val loader. Needs a stage 1 with an augmentation.
    #[strum(message = "per batch, from stage 1's augmentation, batch norm in evaluation mode")]
    Augmented,
    /// As the official code runs stage 2 (`run_networks.py`): every batch recomputed from inputs
    /// augmented with stage 1's `augment`, through the frozen backbone in *training* mode, so
    /// batch norm normalises with the batch's statistics and its running statistics keep moving
    /// (also with the Meta Sampler's meta batches); validation and test use the moved statistics.
    /// Only the weights are frozen. Needs a stage 1 with an augmentation and `selection = "last"`
    /// (a kept checkpoint would not carry the moved statistics); post-hoc classifiers, which train
    /// nothing, use cached features.
    #[strum(
        message = "per batch, from stage 1's augmentation, batch norm in training mode (running statistics move), as the official code"
    )]
    AugmentedTrainBn,
}

impl Features {
    /// Whether this is the default (left out of serialised plans, so hashes do not move).
    #[must_use]
    pub fn is_cached(&self) -> bool {
        *self == Features::Cached
    }
}

/// How a training lays out its iterations and steps its learning rate (`schedule.stepping`,
/// `stage2.stepping`).
#[derive(strum::VariantNames, strum::EnumIter, strum::EnumMessage, strum::AsRefStr)]
#[strum(serialize_all = "kebab-case")]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Stepping {
    /// Exactly the matrix's iterations, the learning rate stepped every iteration, every batch of
    /// an epoch trained on (default; the paper's wording: "in the first 800 iterations").
    #[strum(message = "exact iterations, learning rate per iteration (default)")]
    #[default]
    Iteration,
    /// The official code's epoch arithmetic (`run_networks.py`): a length in iterations becomes
    /// `ceil(iterations / L)` epochs and a warm-up `ceil(warm-up / L)` epochs, with `L` the loader's
    /// length (`ceil(N / batch)`; the Meta Sampler's `N // batch`; class-aware sampling's
    /// `ceil(C * max n_j / batch)`); each epoch runs `floor(N / batch)` full batches (the rest of
    /// the loader is skipped), and the learning rate steps once, at the start of each epoch, so
    /// the last epoch runs at 0. A warm-up of one epoch, which the official scheduler refuses
    /// (it asserts at least two), starts the cosine at the peak in epoch 1.
    #[strum(
        message = "the official code's epochs: ceil(iterations / loader length) epochs of floor(N / batch) steps, learning rate per epoch"
    )]
    Epoch,
}

impl Stepping {
    /// Whether this is the default (left out of serialised plans, so hashes do not move).
    #[must_use]
    pub fn is_iteration(&self) -> bool {
        *self == Stepping::Iteration
    }
}

/// What a figure shows (`kind` in `[[figures]]`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum FigureKind {
    /// p(y) on the test set.
    MarginalLikelihood,
    /// The Meta Sampler's final rates.
    MetaRates,
    /// Per-class test accuracy.
    PerClassAccuracy,
}

impl FigureKind {
    /// The kind's name in the matrix and in figure file names.
    #[must_use]
    pub fn label(self) -> &'static str {
        match self {
            FigureKind::MarginalLikelihood => "marginal-likelihood",
            FigureKind::MetaRates => "meta-rates",
            FigureKind::PerClassAccuracy => "per-class-accuracy",
        }
    }

    /// The y-axis label.
    #[must_use]
    pub fn y_label(self) -> &'static str {
        match self {
            FigureKind::MarginalLikelihood => "p(y) on the test set",
            FigureKind::MetaRates => "learned sample rate",
            FigureKind::PerClassAccuracy => "test accuracy",
        }
    }
}

/// `[[figures]]` in a matrix.
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct FigureSpec {
    /// File name part (default: the kind), to tell two figures of one kind apart.
    #[serde(default)]
    pub name: Option<String>,
    /// What to draw.
    pub kind: FigureKind,
    /// The methods drawn (default: all that have the values).
    #[serde(default)]
    pub methods: Vec<String>,
    /// Only these imbalance factors (default: every column).
    #[serde(default)]
    pub imbalance: Option<Vec<f64>>,
    /// Draw the figure in the layout of one of the paper's instead of one file per column:
    /// every column a panel side by side in one SVG (`<matrix>.<name>.figure<N>.svg`), on the
    /// paper's y range where the class count is CIFAR's (widened to hold the data).
    #[serde(default)]
    pub paper: Option<PaperFigure>,
}

/// A figure of the paper whose layout a `[[figures]]` entry can take.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum PaperFigure {
    /// p(y) of end-to-end methods, CIFAR-100-LT at IF 10, 100 and 200 (y from 0 to 0.025).
    Figure1,
    /// p(y) of decoupled methods at IF 200, CIFAR-10-LT (y 0.04 to 0.22) and CIFAR-100-LT (y 0
    /// to 0.020).
    Figure2,
    /// The Meta Sampler's learned rates, CIFAR-100-LT IF 200 (rates from 0 to 1).
    Figure3,
}

impl PaperFigure {
    /// The figure's number in the paper.
    #[must_use]
    pub fn number(self) -> u8 {
        match self {
            PaperFigure::Figure1 => 1,
            PaperFigure::Figure2 => 2,
            PaperFigure::Figure3 => 3,
        }
    }

    /// The kind of values the paper's figure plots.
    #[must_use]
    pub fn kind(self) -> FigureKind {
        match self {
            PaperFigure::Figure1 | PaperFigure::Figure2 => FigureKind::MarginalLikelihood,
            PaperFigure::Figure3 => FigureKind::MetaRates,
        }
    }

    /// The paper's y range for a panel of `classes` classes, where it gives one.
    #[must_use]
    pub fn y_range(self, classes: usize) -> Option<(f64, f64)> {
        match (self, classes) {
            (PaperFigure::Figure1, 100) => Some((0.0, 0.025)),
            (PaperFigure::Figure2, 10) => Some((0.04, 0.22)),
            (PaperFigure::Figure2, 100) => Some((0.0, 0.020)),
            (PaperFigure::Figure3, _) => Some((0.0, 1.0)),
            (PaperFigure::Figure1 | PaperFigure::Figure2, _) => None,
        }
    }
}

/// The official protocol a matrix declares it follows (`follows`), against which `balms plan` and
/// every report list the settings where balms differs (`matrix::official`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Protocol {
    /// The official BALMS code's CIFAR-10-LT / CIFAR-100-LT pipeline (`config/CIFAR*_LT/*.yaml`,
    /// `run_networks.py`, `data/ImbalanceCIFAR.py` at 34a61e4).
    OfficialCifar,
}

impl Protocol {
    /// Its name in a matrix, with what it refers to.
    #[must_use]
    pub fn label(self) -> &'static str {
        match self {
            Protocol::OfficialCifar => {
                "official-cifar: the BALMS code's CIFAR-LT configs at 34a61e4"
            }
        }
    }
}

//! Networks: a backbone that maps inputs to features and a linear classifier on top.
//!
//! Keeping the two apart is what decoupled training needs: stage 2 freezes the backbone and
//! trains a fresh classifier. [`ModelSpec`] is the registry of backbones.

mod mlp;
pub mod pretrained;
pub mod resnet;
mod resnet32;
mod small_cnn;

use std::fmt::Write as _;

use serde::{Deserialize, Serialize};
use tch::nn::{self, Module};
use tch::Tensor;

/// Training or evaluation mode (batch norm statistics).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Phase {
    /// Training: batch statistics, running averages updated.
    Train,
    /// Evaluation: running averages used.
    Eval,
}

impl Phase {
    fn is_train(self) -> bool {
        self == Phase::Train
    }
}

/// A feature extractor.
pub trait Backbone: std::fmt::Debug + Send {
    /// Features of a batch.
    ///
    /// # Shapes
    /// `[B, *input]` to `[B, feature_dim]`.
    fn features(&self, xs: &Tensor, phase: Phase) -> Tensor;
    /// Width of the features.
    fn feature_dim(&self) -> i64;
}

/// A backbone as named in a matrix.
#[derive(strum::VariantNames, strum::EnumIter, strum::EnumMessage)]
#[strum(serialize_all = "kebab-case")]
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ModelSpec {
    /// Multi-layer perceptron on flattened inputs, ReLU between layers; features = last hidden layer.
    #[strum(message = "multi-layer perceptron", detailed_message = "mlp { hidden = [256, 256] }")]
    Mlp {
        /// Hidden widths, e.g. `[256, 256]`.
        hidden: Vec<i64>,
    },
    /// Small CNN for 1x28x28 inputs: two conv(3x3)-BN-ReLU-maxpool blocks (32, 64 channels), then
    /// a 128-unit ReLU layer as features.
    #[strum(message = "two conv blocks + 128-unit layer, 1x28x28")]
    SmallCnn,
    /// ResNet-32 for CIFAR (He et al.; Idelbayev's variant used by the official code): 3 stages of 5
    /// basic blocks (16/32/64 channels), option-A (zero-padding) shortcuts, Kaiming-normal conv
    /// init, global average pooling to 64 features.
    #[strum(message = "CIFAR ResNet-32, option-A shortcuts")]
    Resnet32,
    /// ImageNet ResNet with torchvision's layer names (`model = { resnet = { depth = 10 } }`):
    /// ResNet-10 for ImageNet-LT, an ImageNet-pretrained ResNet-152 for Places-LT.
    #[strum(
        message = "ImageNet ResNet (depth 10, 18, 34, 50, 101, 152), torchvision layer names",
        detailed_message = "resnet { depth = 10, pretrained = \"file.safetensors\", frozen = [\"conv1\", \"layer1\"] }"
    )]
    Resnet(ResnetSpec),
}

/// An ImageNet ResNet: depth, optional pretrained weights and frozen layers.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct ResnetSpec {
    /// 10 (basic blocks [1, 1, 1, 1]), 18, 34, 50, 101 or 152.
    pub depth: u32,
    /// Safetensors file of backbone weights (from `scripts/pth_to_safetensors.py`), looked up as
    /// given, then under `$BALMS_WEIGHTS` and `weights/`. A classifier of another class count
    /// in the file is ignored (fresh classifier, as fine-tuning ImageNet weights on Places).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pretrained: Option<String>,
    /// Backbone layers kept fixed (torchvision names, e.g. `["conv1", "bn1", "layer1"]`): their
    /// weights get no gradient (batch-norm statistics still update in training mode).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub frozen: Vec<String>,
}

impl ModelSpec {
    /// Stable name used in plans.
    #[must_use]
    pub fn label(&self) -> String {
        match self {
            ModelSpec::Mlp { hidden } => {
                format!(
                    "mlp({})",
                    hidden.iter().map(ToString::to_string).collect::<Vec<_>>().join("-")
                )
            }
            ModelSpec::SmallCnn => "small-cnn".to_string(),
            ModelSpec::Resnet32 => "resnet32".to_string(),
            ModelSpec::Resnet(r) => {
                let mut label = format!("resnet{}", r.depth);
                if let Some(file) = &r.pretrained {
                    let _ = write!(label, " pretrained `{file}`");
                }
                if !r.frozen.is_empty() {
                    let _ = write!(label, " frozen [{}]", r.frozen.join(", "));
                }
                label
            }
        }
    }

    /// Why this backbone cannot take inputs of `shape`, if it cannot.
    #[must_use]
    pub fn incompatibility(&self, shape: &[i64]) -> Option<String> {
        match self {
            ModelSpec::Mlp { hidden } if hidden.is_empty() || hidden.iter().any(|&h| h < 1) => {
                Some("`mlp.hidden` needs at least one positive width".to_string())
            }
            ModelSpec::SmallCnn if shape != [1, 28, 28] => {
                Some(format!("`small-cnn` takes 1x28x28 images, the dataset gives {shape:?}"))
            }
            ModelSpec::Resnet32 if shape.len() != 3 || shape[1] < 8 || shape[2] < 8 => Some(
                format!("`resnet32` takes images of at least 8x8, the dataset gives {shape:?}"),
            ),
            ModelSpec::Resnet(r) if resnet::layout(r.depth).is_none() => {
                Some(format!("`resnet.depth` = {}: one of 10, 18, 34, 50, 101, 152", r.depth))
            }
            ModelSpec::Resnet(_) if shape.len() != 3 || shape[1] < 16 || shape[2] < 16 => Some(
                format!("`resnet` takes images of at least 16x16, the dataset gives {shape:?}"),
            ),
            ModelSpec::Resnet(r) => r.frozen.iter().find(|f| !pretrained::is_layer(f)).map(|f| {
                format!(
                    "`resnet.frozen`: `{f}` is not a layer (conv1, bn1, layer1 ... layer4, or a \
                     block such as layer4.0)"
                )
            }),
            ModelSpec::Mlp { .. } | ModelSpec::SmallCnn | ModelSpec::Resnet32 => None,
        }
    }

    /// Builds the backbone under `path` for inputs of `shape`.
    #[must_use]
    pub fn build(&self, path: &nn::Path, shape: &[i64]) -> Box<dyn Backbone> {
        match self {
            ModelSpec::Mlp { hidden } => {
                Box::new(mlp::Mlp::new(path, shape.iter().product(), hidden))
            }
            ModelSpec::SmallCnn => Box::new(small_cnn::SmallCnn::new(path)),
            ModelSpec::Resnet32 => Box::new(resnet32::Resnet32::new(path, shape[0])),
            ModelSpec::Resnet(r) => Box::new(resnet::Resnet::new(path, r.depth, shape[0])),
        }
    }
}

/// The classifier on the features, as named in a matrix.
#[derive(strum::VariantNames, strum::EnumIter, strum::EnumMessage)]
#[strum(serialize_all = "kebab-case")]
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ClassifierSpec {
    /// Linear with bias, PyTorch's default initialisation (the official `DotProductClassifier`).
    #[strum(message = "linear with bias (the official DotProductClassifier)")]
    #[default]
    Linear,
    /// Cosine classifier, LDAM-DRW's `NormedLinear`: normalised features times column-normalised
    /// weights, no bias; weights drawn uniform in [-1, 1] and scaled to unit columns. Its logits
    /// lie in [-1, 1], so it needs a loss that scales them: LDAM (its own s = 30). With any
    /// other loss the matrix refuses it and names `scaled-cosine`.
    #[strum(message = "LDAM-DRW's NormedLinear, logits in [-1, 1] (for LDAM, which scales them)")]
    Cosine,
    /// The cosine classifier with its logits multiplied by a fixed `scale` s (default 16, the
    /// default of OLTR's `CosNorm_Classifier`, Liu et al. 2019): logits in [-s, s], for losses
    /// without a scale of their own (Softmax, Balanced Softmax, ...).
    #[strum(message = "cosine logits times a fixed scale s (for losses without one)")]
    ScaledCosine {
        /// The scale s (default 16).
        #[serde(default = "sixteen")]
        scale: f64,
    },
}

/// OLTR's `CosNorm_Classifier` default scale.
fn sixteen() -> f64 {
    16.0
}

impl ClassifierSpec {
    /// Stable label used in plans (`scaled-cosine(s=16)` with its scale).
    #[must_use]
    pub fn label(self) -> String {
        match self {
            ClassifierSpec::Linear => "linear".to_string(),
            ClassifierSpec::Cosine => "cosine".to_string(),
            ClassifierSpec::ScaledCosine { scale } => format!("scaled-cosine(s={scale})"),
        }
    }

    /// Builds the classifier under `path`.
    #[must_use]
    pub fn build(self, path: &nn::Path, features: i64, classes: i64) -> Classifier {
        match self {
            ClassifierSpec::Linear => {
                Classifier::Linear(linear_classifier(path, features, classes))
            }
            ClassifierSpec::Cosine => Classifier::Cosine {
                weight: cosine_classifier(path, features, classes),
                scale: None,
            },
            ClassifierSpec::ScaledCosine { scale } => Classifier::Cosine {
                weight: cosine_classifier(path, features, classes),
                scale: Some(scale),
            },
        }
    }
}

/// A built classifier.
#[derive(Debug)]
pub enum Classifier {
    /// `x W^T + b`.
    Linear(nn::Linear),
    /// `normalize(x) normalize(W, dim 0)` with `W` of shape `[features, classes]`, times `scale`
    /// when there is one.
    Cosine {
        /// `W`, `[features, classes]`.
        weight: Tensor,
        /// The fixed logit scale s of `scaled-cosine`.
        scale: Option<f64>,
    },
}

impl Module for Classifier {
    fn forward(&self, xs: &Tensor) -> Tensor {
        match self {
            Classifier::Linear(linear) => linear.forward(xs),
            Classifier::Cosine { weight, scale } => {
                let cosines = normalize(xs, 1).matmul(&normalize(weight, 0));
                match scale {
                    Some(s) => cosines * *s,
                    None => cosines,
                }
            }
        }
    }
}

/// `F.normalize(x, dim)`: divides by the L2 norm along `dim`, clamped below at 1e-12.
fn normalize(x: &Tensor, dim: i64) -> Tensor {
    x / x.norm_scalaropt_dim(2.0, [dim], true).clamp_min(1e-12)
}

fn cosine_classifier(path: &nn::Path, features: i64, classes: i64) -> Tensor {
    let weight = path.var("weight", &[features, classes], nn::Init::Uniform { lo: -1.0, up: 1.0 });
    tch::no_grad(|| {
        let unit = normalize(&weight, 0);
        let mut w = weight.shallow_clone();
        w.copy_(&unit);
    });
    weight
}

/// A backbone and its classifier.
#[derive(Debug)]
pub struct Network {
    /// The backbone, under `backbone` in the variable store: `[B, *input]` to `[B, feature_dim]`.
    pub backbone: Box<dyn Backbone>,
    /// The classifier on the backbone's features, under `classifier`: `[B, feature_dim]` to
    /// `[B, classes]`.
    pub classifier: Classifier,
}

impl Network {
    /// Builds backbone (`root / "backbone"`) and classifier (`root / "classifier"`).
    #[must_use]
    pub fn new(
        root: &nn::Path,
        spec: &ModelSpec,
        classifier: ClassifierSpec,
        shape: &[i64],
        classes: i64,
    ) -> Network {
        let backbone = spec.build(&(root / "backbone"), shape);
        let classifier = classifier.build(&(root / "classifier"), backbone.feature_dim(), classes);
        Network { backbone, classifier }
    }

    /// Logits of a batch.
    ///
    /// # Shapes
    /// `[B, *input]` to `[B, classes]`.
    pub fn logits(&self, xs: &Tensor, phase: Phase) -> Tensor {
        self.classifier.forward(&self.backbone.features(xs, phase))
    }
}

/// `x` (`[B, C, H, W]`) in the channels-last memory format (NHWC strides, same shape and values),
/// as `x.contiguous(memory_format=torch.channels_last)`; other ranks are returned as they are.
pub fn channels_last(x: &Tensor) -> Tensor {
    if x.dim() == 4 {
        x.permute([0, 2, 3, 1]).contiguous().permute([0, 3, 1, 2])
    } else {
        x.shallow_clone()
    }
}

/// Converts every 4-d variable of `vs` (convolution weights) to the channels-last format in
/// place, as `model.to(memory_format=torch.channels_last)`; convolutions then run in NHWC.
pub fn to_channels_last(vs: &nn::VarStore) {
    let _guard = tch::no_grad_guard();
    for (_, mut var) in vs.variables() {
        if var.dim() == 4 {
            let converted = channels_last(&var);
            var.set_data(&converted);
        }
    }
}

/// A 2-d batch norm as PyTorch's `BatchNorm2d` (and so the official code and torchvision) starts
/// it: weight 1, bias 0, eps 1e-5, momentum 0.1. tch's default configuration draws the weight from
/// U(0, 1) instead.
#[must_use]
pub fn batch_norm2d(path: nn::Path, channels: i64) -> nn::BatchNorm {
    let config = nn::BatchNormConfig { ws_init: nn::Init::Const(1.0), ..Default::default() };
    nn::batch_norm2d(path, channels, config)
}

/// PyTorch's default initialisation of `nn.Linear` and `nn.Conv2d`: weights and biases uniform in
/// `±1/sqrt(fan_in)` (tch's own default differs).
#[must_use]
pub fn torch_default_init(fan_in: i64) -> nn::Init {
    let bound = 1.0 / (fan_in as f64).sqrt();
    nn::Init::Uniform { lo: -bound, up: bound }
}

/// A linear classifier initialised as PyTorch's `nn.Linear` (the official code's
/// `DotProductClassifier`).
#[must_use]
pub fn linear_classifier(path: &nn::Path, features: i64, classes: i64) -> nn::Linear {
    let init = torch_default_init(features);
    nn::linear(
        path,
        features,
        classes,
        nn::LinearConfig { ws_init: init, bs_init: Some(init), bias: true },
    )
}

/// Number of trainable parameters in a variable store.
#[must_use]
pub fn parameter_count(vs: &nn::VarStore) -> i64 {
    vs.trainable_variables()
        .iter()
        .map(Tensor::numel)
        .map(|n| i64::try_from(n).expect("fits"))
        .sum()
}

#[cfg(test)]
mod tests {
    use super::*;
    use tch::{Device, Kind};

    fn count(spec: &ModelSpec, shape: &[i64], classes: i64) -> i64 {
        let vs = nn::VarStore::new(Device::Cpu);
        let net = Network::new(&vs.root(), spec, ClassifierSpec::Linear, shape, classes);
        let out = net.logits(
            &Tensor::zeros(
                [2].iter().chain(shape).copied().collect::<Vec<_>>(),
                (Kind::Float, Device::Cpu),
            ),
            Phase::Eval,
        );
        assert_eq!(out.size(), [2, classes]);
        parameter_count(&vs)
    }

    #[test]
    fn resnet32_has_464154_parameters_for_ten_classes() {
        assert_eq!(count(&ModelSpec::Resnet32, &[3, 32, 32], 10), 464_154);
    }

    #[test]
    fn small_models_shapes() {
        assert_eq!(
            count(&ModelSpec::Mlp { hidden: vec![32] }, &[1, 8, 8], 10),
            64 * 32 + 32 + 32 * 10 + 10
        );
        assert!(count(&ModelSpec::SmallCnn, &[1, 28, 28], 10) > 0);
    }

    #[test]
    fn cosine_classifier_gives_cosines() {
        let vs = nn::VarStore::new(Device::Cpu);
        let c = ClassifierSpec::Cosine.build(&vs.root(), 4, 3);
        let Classifier::Cosine { weight: w, scale: None } = &c else { panic!("cosine") };
        let norms = w.norm_scalaropt_dim(2.0, [0], false);
        assert!(norms.allclose(&Tensor::ones([3], (Kind::Float, Device::Cpu)), 1e-5, 1e-6, false));
        let x = Tensor::from_slice(&[3.0f32, 0.0, 0.0, 4.0]).view([1, 4]) * 10.0;
        let out = c.forward(&x);
        assert!(f64::try_from(out.abs().max()).unwrap() <= 1.0 + 1e-6);
        assert_eq!(parameter_count(&vs), 12);
    }

    #[test]
    fn channels_last_keeps_values_and_changes_strides() {
        tch::manual_seed(4);
        let vs = nn::VarStore::new(Device::Cpu);
        let net =
            Network::new(&vs.root(), &ModelSpec::Resnet32, ClassifierSpec::Linear, &[3, 8, 8], 5);
        let x = Tensor::randn([2, 3, 8, 8], (Kind::Float, Device::Cpu));
        let before = net.logits(&x, Phase::Eval);
        to_channels_last(&vs);
        let conv = vs.variables().into_values().find(|v| v.dim() == 4).expect("a convolution");
        let [_, c, h, w] = conv.size()[..] else { panic!("4-d") };
        assert_eq!(conv.stride(), [c * h * w, 1, w * c, c]);
        let after = net.logits(&channels_last(&x), Phase::Eval);
        assert!(before.allclose(&after, 1e-4, 1e-5, false));
    }

    #[test]
    fn incompatible_inputs_are_named() {
        assert!(ModelSpec::SmallCnn.incompatibility(&[1, 8, 8]).unwrap().contains("1x28x28"));
        assert!(ModelSpec::Resnet32.incompatibility(&[16]).is_some());
        assert!(ModelSpec::Mlp { hidden: vec![] }.incompatibility(&[16]).is_some());
    }
}

//! ResNet-32 for CIFAR, option-A shortcuts (Idelbayev's `resnet_cifar`, used by the official code
//! as `ResNet32Feature`).

use tch::nn::{self, Module, ModuleT};
use tch::Tensor;

use super::{batch_norm2d, Backbone, Phase};

const STAGES: [(i64, i64); 3] = [(16, 1), (32, 2), (64, 2)];
const BLOCKS_PER_STAGE: usize = 5;

fn conv3x3(path: nn::Path, input: i64, output: i64, stride: i64) -> nn::Conv2D {
    let config = nn::ConvConfig {
        stride,
        padding: 1,
        bias: false,
        ws_init: nn::init::DEFAULT_KAIMING_NORMAL,
        ..Default::default()
    };
    nn::conv2d(path, input, output, 3, config)
}

#[derive(Debug)]
struct BasicBlock {
    conv1: nn::Conv2D,
    bn1: nn::BatchNorm,
    conv2: nn::Conv2D,
    bn2: nn::BatchNorm,
    /// Channels to zero-pad on each side when the shortcut changes shape (option A).
    pad: Option<i64>,
}

impl BasicBlock {
    fn new(path: &nn::Path, input: i64, planes: i64, stride: i64) -> BasicBlock {
        BasicBlock {
            conv1: conv3x3(path / "conv1", input, planes, stride),
            bn1: batch_norm2d(path / "bn1", planes),
            conv2: conv3x3(path / "conv2", planes, planes, 1),
            bn2: batch_norm2d(path / "bn2", planes),
            pad: (stride != 1 || input != planes).then_some(planes / 4),
        }
    }

    fn forward(&self, xs: &Tensor, train: bool) -> Tensor {
        let h = self.bn1.forward_t(&self.conv1.forward(xs), train).relu();
        let h = self.bn2.forward_t(&self.conv2.forward(&h), train);
        let shortcut = match self.pad {
            Some(p) => {
                xs.slice(2, 0, None, 2).slice(3, 0, None, 2).constant_pad_nd([0, 0, 0, 0, p, p])
            }
            None => xs.shallow_clone(),
        };
        (h + shortcut).relu()
    }
}

/// The ResNet-32 feature extractor (64 features).
#[derive(Debug)]
pub struct Resnet32 {
    conv1: nn::Conv2D,
    bn1: nn::BatchNorm,
    blocks: Vec<BasicBlock>,
}

impl Resnet32 {
    /// Builds the network for inputs with `channels` channels.
    pub fn new(path: &nn::Path, channels: i64) -> Resnet32 {
        let mut input = 16;
        let mut blocks = Vec::new();
        for (s, &(planes, stride)) in STAGES.iter().enumerate() {
            for b in 0..BLOCKS_PER_STAGE {
                let stride = if b == 0 { stride } else { 1 };
                blocks.push(BasicBlock::new(
                    &(path / format!("layer{}", s + 1) / b),
                    input,
                    planes,
                    stride,
                ));
                input = planes;
            }
        }
        Resnet32 {
            conv1: conv3x3(path / "conv1", channels, 16, 1),
            bn1: batch_norm2d(path / "bn1", 16),
            blocks,
        }
    }
}

impl Backbone for Resnet32 {
    fn features(&self, xs: &Tensor, phase: Phase) -> Tensor {
        let train = phase.is_train();
        let h = self.bn1.forward_t(&self.conv1.forward(xs), train).relu();
        let h = self.blocks.iter().fold(h, |h, block| block.forward(&h, train));
        h.adaptive_avg_pool2d([1, 1]).flatten(1, -1)
    }

    fn feature_dim(&self) -> i64 {
        64
    }
}

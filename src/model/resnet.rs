//! ImageNet ResNets with torchvision's layer names (`conv1`, `bn1`, `layer1.0.conv1`, …,
//! `layer4.0.downsample.0`), so torchvision and Kang et al. weights convert by renaming only the
//! prefix (`scripts/pth_to_safetensors.py`). ResNet-10 is `ResNet(BasicBlock, [1, 1, 1, 1])`, the
//! OLTR/Kang et al./BALMS ImageNet-LT backbone; bottleneck blocks put the stride on the 3x3
//! convolution (torchvision's "v1.5"). Convolutions are initialised Kaiming-normal with fan-out
//! (torchvision; Kang et al.'s `normal_(0, sqrt(2 / (k * k * out)))` is the same), batch norms
//! with weight 1 and bias 0. Features: global average pooling (512 or 2,048 wide).

use tch::nn::{self, Module, ModuleT};
use tch::Tensor;

use super::{Backbone, Phase};

const FAN_OUT: nn::Init = nn::Init::Kaiming {
    dist: nn::init::NormalOrUniform::Normal,
    fan: nn::init::FanInOut::FanOut,
    non_linearity: nn::init::NonLinearity::ReLU,
};

/// Blocks per stage and whether they are bottlenecks, for a supported depth.
#[must_use]
pub fn layout(depth: u32) -> Option<([usize; 4], bool)> {
    match depth {
        10 => Some(([1, 1, 1, 1], false)),
        18 => Some(([2, 2, 2, 2], false)),
        34 => Some(([3, 4, 6, 3], false)),
        50 => Some(([3, 4, 6, 3], true)),
        101 => Some(([3, 4, 23, 3], true)),
        152 => Some(([3, 8, 36, 3], true)),
        _ => None,
    }
}

fn conv(path: nn::Path, input: i64, output: i64, kernel: i64, stride: i64) -> nn::Conv2D {
    let config = nn::ConvConfig {
        stride,
        padding: kernel / 2,
        bias: false,
        ws_init: FAN_OUT,
        ..Default::default()
    };
    nn::conv2d(path, input, output, kernel, config)
}

fn bn(path: nn::Path, channels: i64) -> nn::BatchNorm {
    super::batch_norm2d(path, channels)
}

/// A basic (two 3x3) or bottleneck (1x1, 3x3, 1x1) residual block.
#[derive(Debug)]
struct Block {
    convs: Vec<(nn::Conv2D, nn::BatchNorm)>,
    downsample: Option<(nn::Conv2D, nn::BatchNorm)>,
}

impl Block {
    fn new(path: &nn::Path, input: i64, planes: i64, stride: i64, bottleneck: bool) -> Block {
        let expansion = if bottleneck { 4 } else { 1 };
        let shapes: Vec<(i64, i64, i64, i64)> = if bottleneck {
            vec![(input, planes, 1, 1), (planes, planes, 3, stride), (planes, planes * 4, 1, 1)]
        } else {
            vec![(input, planes, 3, stride), (planes, planes, 3, 1)]
        };
        let convs = shapes
            .into_iter()
            .enumerate()
            .map(|(i, (cin, cout, k, s))| {
                (
                    conv(path / format!("conv{}", i + 1), cin, cout, k, s),
                    bn(path / format!("bn{}", i + 1), cout),
                )
            })
            .collect();
        let downsample = (stride != 1 || input != planes * expansion).then(|| {
            let d = path / "downsample";
            (conv(&d / 0, input, planes * expansion, 1, stride), bn(&d / 1, planes * expansion))
        });
        Block { convs, downsample }
    }

    fn forward(&self, xs: &Tensor, train: bool) -> Tensor {
        let last = self.convs.len() - 1;
        let mut h = xs.shallow_clone();
        for (i, (c, b)) in self.convs.iter().enumerate() {
            h = b.forward_t(&c.forward(&h), train);
            if i < last {
                h = h.relu();
            }
        }
        let shortcut = match &self.downsample {
            Some((c, b)) => b.forward_t(&c.forward(xs), train),
            None => xs.shallow_clone(),
        };
        (h + shortcut).relu()
    }
}

/// An ImageNet ResNet feature extractor.
#[derive(Debug)]
pub struct Resnet {
    conv1: nn::Conv2D,
    bn1: nn::BatchNorm,
    blocks: Vec<Block>,
    width: i64,
}

impl Resnet {
    /// Builds ResNet-`depth` (a depth [`layout`] knows) for inputs with `channels` channels.
    ///
    /// # Panics
    /// On an unknown depth (matrices are validated first).
    #[must_use]
    pub fn new(path: &nn::Path, depth: u32, channels: i64) -> Resnet {
        let (counts, bottleneck) = layout(depth).expect("validated depth");
        let expansion = if bottleneck { 4 } else { 1 };
        let mut input = 64;
        let mut blocks = Vec::new();
        for (stage, (&count, planes)) in counts.iter().zip([64, 128, 256, 512]).enumerate() {
            for b in 0..count {
                let stride = if b == 0 && stage > 0 { 2 } else { 1 };
                let block_path = path / format!("layer{}", stage + 1) / b;
                blocks.push(Block::new(&block_path, input, planes, stride, bottleneck));
                input = planes * expansion;
            }
        }
        Resnet {
            conv1: conv(path / "conv1", channels, 64, 7, 2),
            bn1: bn(path / "bn1", 64),
            blocks,
            width: input,
        }
    }
}

impl Backbone for Resnet {
    fn features(&self, xs: &Tensor, phase: Phase) -> Tensor {
        let train = phase.is_train();
        let h = self.bn1.forward_t(&self.conv1.forward(xs), train).relu();
        let h = h.max_pool2d([3, 3], [2, 2], [1, 1], [1, 1], false);
        let h = self.blocks.iter().fold(h, |h, block| block.forward(&h, train));
        h.adaptive_avg_pool2d([1, 1]).flatten(1, -1)
    }

    fn feature_dim(&self) -> i64 {
        self.width
    }
}

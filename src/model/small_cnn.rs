//! A small CNN for 28x28 grey images (MNIST, Fashion-MNIST).

use tch::nn::{self, Module, ModuleT};
use tch::Tensor;

use super::{batch_norm2d, torch_default_init, Backbone, Phase};

const FEATURES: i64 = 128;

/// `[conv3x3(32)-BN-ReLU-maxpool2] -> [conv3x3(64)-BN-ReLU-maxpool2] -> Linear(3136, 128)-ReLU`.
#[derive(Debug)]
pub struct SmallCnn {
    conv1: nn::Conv2D,
    bn1: nn::BatchNorm,
    conv2: nn::Conv2D,
    bn2: nn::BatchNorm,
    fc: nn::Linear,
}

fn conv(path: nn::Path, input: i64, output: i64) -> nn::Conv2D {
    let init = torch_default_init(input * 9);
    let config = nn::ConvConfig { padding: 1, ws_init: init, bs_init: init, ..Default::default() };
    nn::conv2d(path, input, output, 3, config)
}

impl SmallCnn {
    /// Builds the network under `path`.
    pub fn new(path: &nn::Path) -> SmallCnn {
        let init = torch_default_init(64 * 7 * 7);
        SmallCnn {
            conv1: conv(path / "conv1", 1, 32),
            bn1: batch_norm2d(path / "bn1", 32),
            conv2: conv(path / "conv2", 32, 64),
            bn2: batch_norm2d(path / "bn2", 64),
            fc: nn::linear(
                path / "fc",
                64 * 7 * 7,
                FEATURES,
                nn::LinearConfig { ws_init: init, bs_init: Some(init), bias: true },
            ),
        }
    }
}

impl Backbone for SmallCnn {
    fn features(&self, xs: &Tensor, phase: Phase) -> Tensor {
        let train = phase.is_train();
        let h = self.bn1.forward_t(&self.conv1.forward(xs), train).relu().max_pool2d_default(2);
        let h = self.bn2.forward_t(&self.conv2.forward(&h), train).relu().max_pool2d_default(2);
        self.fc.forward(&h.flatten(1, -1)).relu()
    }

    fn feature_dim(&self) -> i64 {
        FEATURES
    }
}

//! Multi-layer perceptron backbone.

use tch::nn::{self, Module};
use tch::Tensor;

use super::{torch_default_init, Backbone, Phase};

/// Flattened input, then `Linear-ReLU` per hidden width.
#[derive(Debug)]
pub struct Mlp {
    layers: Vec<nn::Linear>,
    dim: i64,
}

impl Mlp {
    /// An MLP from `input` features through `hidden` widths.
    pub fn new(path: &nn::Path, input: i64, hidden: &[i64]) -> Mlp {
        let mut fan_in = input;
        let layers = hidden
            .iter()
            .enumerate()
            .map(|(i, &width)| {
                let init = torch_default_init(fan_in);
                let config = nn::LinearConfig { ws_init: init, bs_init: Some(init), bias: true };
                let layer = nn::linear(path / format!("fc{i}"), fan_in, width, config);
                fan_in = width;
                layer
            })
            .collect();
        Mlp { layers, dim: fan_in }
    }
}

impl Backbone for Mlp {
    fn features(&self, xs: &Tensor, _phase: Phase) -> Tensor {
        let flat = xs.flatten(1, -1);
        self.layers.iter().fold(flat, |h, layer| layer.forward(&h).relu())
    }

    fn feature_dim(&self) -> i64 {
        self.dim
    }
}

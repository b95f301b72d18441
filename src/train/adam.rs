//! Adam on the Meta Sampler's rate logits (PyTorch's `torch.optim.Adam` with the official
//! code's settings from [`MetaSpec`]: no weight decay, eps 1e-8), the outer step of the bi-level
//! loop in `train::bilevel`.

use tch::{Device, Kind, Tensor};

use crate::sampler::MetaSpec;

/// Adam (PyTorch's `torch.optim.Adam`, no weight decay, eps 1e-8) on one tensor.
#[derive(Debug)]
pub struct Adam {
    lr: f64,
    betas: [f64; 2],
    m: Tensor,
    v: Tensor,
    step: i32,
}

impl Adam {
    /// Adam state for a parameter of `size` elements.
    #[must_use]
    pub fn new(spec: &MetaSpec, size: i64, kind: Kind, device: Device) -> Adam {
        Adam {
            lr: spec.lr,
            betas: spec.betas,
            m: Tensor::zeros([size], (kind, device)),
            v: Tensor::zeros([size], (kind, device)),
            step: 0,
        }
    }

    /// One step of `parameter` against `gradient`, in place, without tracking gradients.
    pub fn step(&mut self, parameter: &mut Tensor, gradient: &Tensor) {
        let _guard = tch::no_grad_guard();
        let [b1, b2] = self.betas;
        self.step += 1;
        self.m = &self.m * b1 + gradient * (1.0 - b1);
        self.v = &self.v * b2 + gradient.square() * (1.0 - b2);
        let m_hat = &self.m / (1.0 - b1.powi(self.step));
        let v_hat = &self.v / (1.0 - b2.powi(self.step));
        let update = m_hat / (v_hat.sqrt() + 1e-8) * self.lr;
        let _ = parameter.f_sub_(&update).expect("in-place update of a leaf without grad mode");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn adam_matches_a_hand_computed_step() {
        // First Adam step moves each coordinate by lr * sign(g) (bias-corrected m/sqrt(v) = g/|g|).
        let spec = MetaSpec::default();
        let mut p = Tensor::from_slice(&[0.0f64, 1.0]);
        let mut adam = Adam::new(&spec, 2, Kind::Double, Device::Cpu);
        adam.step(&mut p, &Tensor::from_slice(&[2.0f64, -0.5]));
        let got = Vec::<f64>::try_from(&p).unwrap();
        assert!((got[0] + 0.01).abs() < 1e-9 && (got[1] - 1.01).abs() < 1e-9, "{got:?}");
    }
}

//! Device choice, and registering CUDA so one binary serves CPU-only and GPU machines.
//!
//! rustc links with `--as-needed`, which drops `libtorch_cuda.so`, so CUDA looks absent even on
//! a GPU machine. Loading the library at start-up with `RTLD_GLOBAL` registers it where the full
//! PyTorch install and a GPU exist, and fails harmlessly on the CPU-minimal install.
#![expect(
    unsafe_code,
    reason = "dlopen of libtorch_cuda and libtorch's autocast switches, which tch does not expose; \
              each block says why it is sound"
)]

use clap::ValueEnum;
use tch::{Cuda, Device};

/// The `--device` choice, resolved by [`resolve`]: `auto` takes `cuda:0` when CUDA is usable, else
/// the CPU; `cuda` fails when CUDA is not usable.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum DeviceChoice {
    /// CUDA if usable, else CPU.
    Auto,
    /// CPU.
    Cpu,
    /// The first CUDA device; an error if CUDA is not usable.
    Cuda,
}

/// Tries to load `libtorch_cuda.so` (ignoring failure) so that CUDA kernels are registered.
pub fn register_cuda() {
    let name = c"libtorch_cuda.so";
    // SAFETY: dlopen with a valid NUL-terminated name; the handle is intentionally leaked so the
    // library stays loaded for the process's lifetime.
    unsafe {
        libc::dlopen(name.as_ptr(), libc::RTLD_NOW | libc::RTLD_GLOBAL);
    }
}

/// Resolves the choice to a device.
///
/// # Errors
/// When `cuda` is asked for and CUDA is not usable, with the reason to check.
pub fn resolve(choice: DeviceChoice) -> anyhow::Result<Device> {
    match choice {
        DeviceChoice::Cpu => Ok(Device::Cpu),
        DeviceChoice::Auto => Ok(if Cuda::is_available() { Device::Cuda(0) } else { Device::Cpu }),
        DeviceChoice::Cuda if Cuda::is_available() => Ok(Device::Cuda(0)),
        DeviceChoice::Cuda => anyhow::bail!(
            "`--device cuda` was asked for but CUDA is not usable (libtorch {}): no NVIDIA driver or \
             GPU, or libtorch is the CPU-minimal install\nhint: on a GPU machine run `just setup` \
             there (it installs the full PyTorch when `nvidia-smi` works), or use `--device cpu`",
            env!("BALMS_LIBTORCH_VERSION")
        ),
    }
}

/// `cpu` or `cuda:N`.
#[must_use]
pub fn label(device: Device) -> String {
    match device {
        Device::Cuda(i) => format!("cuda:{i}"),
        Device::Cpu | Device::Mps | Device::Vulkan => "cpu".to_string(),
    }
}

/// Numeric precision of training's forward passes, as named in a matrix (`precision`).
#[derive(strum::VariantNames, strum::EnumIter, strum::EnumMessage)]
#[strum(serialize_all = "kebab-case")]
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, ValueEnum, serde::Serialize, serde::Deserialize,
)]
#[serde(rename_all = "kebab-case")]
pub enum Precision {
    /// Float32 throughout (default).
    #[strum(message = "float32 throughout (default)")]
    #[default]
    F32,
    /// Automatic mixed precision with bfloat16 (PyTorch's `torch.autocast(dtype=torch.bfloat16)`)
    /// around each training forward pass; the logits are cast to float32 and the loss computed
    /// outside the region (CPU autocast would otherwise run `log_softmax` in bfloat16), and the
    /// backward pass runs outside it, as PyTorch recommends. Weights, gradients and optimiser
    /// state stay float32; bfloat16 keeps float32's exponent range, so no loss scaling is needed.
    /// Evaluation stays float32.
    #[strum(message = "bfloat16 autocast of the training forward")]
    Bf16Autocast,
}

impl Precision {
    /// Whether this is the default.
    #[must_use]
    pub fn is_default(&self) -> bool {
        *self == Precision::F32
    }

    /// Label for plans.
    #[must_use]
    pub fn label(self) -> &'static str {
        match self {
            Precision::F32 => "f32",
            Precision::Bf16Autocast => "bf16-autocast",
        }
    }
}

// ATen's autocast state (libtorch_cpu), which tch 0.24 wraps only for CUDA float16. `DeviceType`
// and `ScalarType` are C++ `enum class : int8_t`, passed as plain 8-bit integers by the x86-64
// and AArch64 C++ ABIs; a unit test reads the dtype back to check the binding.
extern "C" {
    #[link_name = "_ZN2at8autocast20set_autocast_enabledEN3c1010DeviceTypeEb"]
    fn at_set_autocast_enabled(device: i8, enabled: bool);
    #[link_name = "_ZN2at8autocast19is_autocast_enabledEN3c1010DeviceTypeE"]
    fn at_is_autocast_enabled(device: i8) -> bool;
    #[link_name = "_ZN2at8autocast18set_autocast_dtypeEN3c1010DeviceTypeENS1_10ScalarTypeE"]
    fn at_set_autocast_dtype(device: i8, dtype: i8);
    #[link_name = "_ZN2at8autocast18get_autocast_dtypeEN3c1010DeviceTypeE"]
    fn at_get_autocast_dtype(device: i8) -> i8;
    #[link_name = "_ZN2at8autocast17increment_nestingEv"]
    fn at_increment_nesting() -> i32;
    #[link_name = "_ZN2at8autocast17decrement_nestingEv"]
    fn at_decrement_nesting() -> i32;
    #[link_name = "_ZN2at8autocast11clear_cacheEv"]
    fn at_clear_cache();
}

/// `c10::DeviceType` codes.
const DEVICE_CPU: i8 = 0;
const DEVICE_CUDA: i8 = 1;
/// `c10::ScalarType::BFloat16`.
const SCALAR_BFLOAT16: i8 = 15;

/// An autocast region: enabled for the device of `device` while alive, restored on drop (as
/// `with torch.autocast(device_type, dtype=torch.bfloat16)`). A no-op for [`Precision::F32`].
pub struct Autocast {
    device: i8,
    previous: Option<(bool, i8)>,
}

impl Autocast {
    /// Enters the region for `precision` on `device`.
    #[must_use]
    pub fn enter(precision: Precision, device: Device) -> Autocast {
        let code = if device.is_cuda() { DEVICE_CUDA } else { DEVICE_CPU };
        if precision == Precision::F32 {
            return Autocast { device: code, previous: None };
        }
        // SAFETY: plain calls into ATen's thread-local autocast state with valid enum codes.
        let previous = unsafe {
            let previous = (at_is_autocast_enabled(code), at_get_autocast_dtype(code));
            at_set_autocast_dtype(code, SCALAR_BFLOAT16);
            at_set_autocast_enabled(code, true);
            at_increment_nesting();
            previous
        };
        Autocast { device: code, previous: Some(previous) }
    }
}

impl Drop for Autocast {
    fn drop(&mut self) {
        if let Some((enabled, dtype)) = self.previous {
            // SAFETY: as in `enter`; the cast cache is cleared when the outermost region ends.
            unsafe {
                if at_decrement_nesting() == 0 {
                    at_clear_cache();
                }
                at_set_autocast_enabled(self.device, enabled);
                at_set_autocast_dtype(self.device, dtype);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tch::{Kind, Tensor};

    #[test]
    fn bf16_autocast_region_casts_matmuls_and_restores_state() {
        let a = Tensor::ones([4, 4], (Kind::Float, Device::Cpu));
        {
            let _region = Autocast::enter(Precision::Bf16Autocast, Device::Cpu);
            // SAFETY: reading the thread-local state.
            unsafe {
                assert!(at_is_autocast_enabled(DEVICE_CPU));
                assert_eq!(at_get_autocast_dtype(DEVICE_CPU), SCALAR_BFLOAT16);
            }
            assert_eq!(a.matmul(&a).kind(), Kind::BFloat16);
        }
        // SAFETY: as above.
        unsafe { assert!(!at_is_autocast_enabled(DEVICE_CPU)) };
        assert_eq!(a.matmul(&a).kind(), Kind::Float);
        let _plain = Autocast::enter(Precision::F32, Device::Cpu);
        assert_eq!(a.matmul(&a).kind(), Kind::Float);
    }
}

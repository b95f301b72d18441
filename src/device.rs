//! Device choice, and registering CUDA so one binary serves CPU-only and GPU machines.
//!
//! rustc links with `--as-needed`, which drops `libtorch_cuda.so`, so CUDA looks absent even on
//! a GPU machine. Loading the library at start-up with `RTLD_GLOBAL` registers it where the full
//! PyTorch install and a GPU exist, and fails harmlessly on the CPU-minimal install.

use clap::ValueEnum;
use tch::{Cuda, Device};

/// `--device`.
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
        _ => "cpu".to_string(),
    }
}

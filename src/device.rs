//! Choosing where to train: the CPU, or a CUDA GPU when skiplab is built with `--features cuda`.
//!
//! Probing never panics: dfdx's `Cuda::default()` unwraps the driver's `cuInit`, so the driver
//! is asked first through cudarc's fallible calls, and a missing driver or GPU is a message.

use std::fmt;

/// What the user asked for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
pub enum DeviceChoice {
    /// CUDA when a usable GPU is found, else the CPU.
    #[default]
    Auto,
    Cpu,
    Cuda,
}

/// Where a run will actually train.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Device {
    Cpu,
    Cuda { ordinal: usize },
}

impl fmt::Display for Device {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Device::Cpu => write!(f, "cpu"),
            Device::Cuda { ordinal } => write!(f, "cuda:{ordinal}"),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DeviceError {
    #[error("--device cuda: this skiplab was built without CUDA support; rebuild with `cargo build --release --features cuda` (see the README)")]
    NotBuilt,
    #[error("--device cuda: no usable GPU: {0}")]
    Unavailable(String),
}

/// Asks the CUDA driver how many GPUs it sees, without panicking when there is no driver.
#[cfg(feature = "cuda")]
pub fn probe_cuda() -> Result<usize, String> {
    use cudarc::driver::result;
    result::init().map_err(|e| format!("the CUDA driver did not initialise ({e:?})"))?;
    let count = result::device::get_count().map_err(|e| format!("cannot count GPUs ({e:?})"))?;
    if count < 1 {
        return Err("the CUDA driver reports no GPU".into());
    }
    Ok(count as usize)
}

#[cfg(not(feature = "cuda"))]
pub fn probe_cuda() -> Result<usize, String> {
    Err("built without the `cuda` feature".into())
}

/// Resolves a choice to a device, with a note for the user when `auto` fell back to the CPU
/// although CUDA support is compiled in.
pub fn resolve(choice: DeviceChoice) -> Result<(Device, Option<String>), DeviceError> {
    match choice {
        DeviceChoice::Cpu => Ok((Device::Cpu, None)),
        DeviceChoice::Cuda if !cfg!(feature = "cuda") => Err(DeviceError::NotBuilt),
        DeviceChoice::Cuda => probe_cuda()
            .map(|_| (Device::Cuda { ordinal: 0 }, None))
            .map_err(DeviceError::Unavailable),
        DeviceChoice::Auto if !cfg!(feature = "cuda") => Ok((Device::Cpu, None)),
        DeviceChoice::Auto => match probe_cuda() {
            Ok(_) => Ok((Device::Cuda { ordinal: 0 }, None)),
            Err(why) => Ok((
                Device::Cpu,
                Some(format!("no usable GPU ({why}); training on the CPU")),
            )),
        },
    }
}

/// This machine's memory in bytes (Linux: `MemTotal` in /proc/meminfo), where it can be read.
pub fn physical_memory() -> Option<u64> {
    let info = std::fs::read_to_string("/proc/meminfo").ok()?;
    let line = info.lines().find(|l| l.starts_with("MemTotal:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpu_is_always_available_and_cuda_fails_cleanly_without_a_gpu() {
        assert_eq!(resolve(DeviceChoice::Cpu).unwrap().0, Device::Cpu);
        // On machines without a GPU (every CI machine), auto falls back and cuda is an error
        // with a message, never a panic.
        if probe_cuda().is_err() {
            assert_eq!(resolve(DeviceChoice::Auto).unwrap().0, Device::Cpu);
            let err = resolve(DeviceChoice::Cuda).unwrap_err().to_string();
            assert!(err.starts_with("--device cuda:"), "{err}");
        }
    }
}

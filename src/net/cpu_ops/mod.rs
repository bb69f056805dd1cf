//! Custom CPU kernels, one file per family: the fused dense layer ([`dense`], with the 3x3
//! windows of [`windows`] on im2col or [`winograd`]), the max-pool ([`pool`]) and the SGD step
//! ([`sgd`]), on host buffers ([`memory`]) and matrix products ([`gemm`]). They replace the
//! slow generic paths of the composed ops (dfdx's CPU gather walks an n-dimensional index per
//! element, its gemm 0.15 lacks AVX-512 on stable Rust, its SGD is one scalar loop); the CPU's
//! [`NetDevice`] is here, beside them.
//!
//! The kernels are checked against the composed ops they replace (values and gradients, or
//! bit for bit for SGD) and, through whole networks, against finite differences
//! (`tests/gradients.rs`).

mod dense;
mod elementwise;
mod gemm;
mod inference;
mod memory;
mod norm;
mod pool;
mod sgd;
mod windows;
mod winograd;

use std::sync::atomic::{AtomicBool, Ordering};

use dfdx::prelude::*;
use dfdx::tensor_ops::SgdConfig;

use crate::net::ops::{
    batch_norm_composed, dense_composed, maxpool2_composed, DenseInput, HostMirror, Images,
    NetDevice, Normalised,
};
pub use dense::{
    conv_kernel, conv_kernel_name, with_conv_kernel, ConvKernel, WINOGRAD_MIN_CHANNELS,
};
pub use inference::{DenseStack, Ending, Finish, StackBuilder};
pub use norm::{batch_norm, dense_batch_norm};

/// The CPU device training runs on: seeded, with dfdx's buffer cache on. Without the cache
/// every output and gradient buffer of a step was a fresh allocation, which the allocator
/// served from memory the OS had to fault in and clear again each step (about 100 page faults
/// and 7% of a CNN step). Every buffer of a step has the same size in the next one, so the
/// cache serves them all and memory stays flat. (Batches are uploaded into reused tensors:
/// the cache never reuses buffers adopted with `tensor_from_vec`.)
pub fn training_device(seed: u64) -> Cpu {
    let dev = Cpu::seed_from_u64(seed);
    dev.enable_cache();
    dev
}

/// `X·Xᵀ` of a row-major `rows × cols` matrix of f64 (the linear Gram matrix of `rows`
/// examples: linear CKA's), row-major `rows × rows`, with the training kernels' gemm.
pub fn gram(values: &[f64], rows: usize, cols: usize) -> Vec<f64> {
    let mut out = vec![0.0; rows * rows];
    let x = gemm::View::new(values, rows, cols);
    gemm::matmul_into(&mut out, x, x.t(), false);
    out
}

/// When set, the CPU runs the composed ops instead of its custom kernels (the benchmark uses
/// this to measure what the kernels gain).
static FORCE_COMPOSED: AtomicBool = AtomicBool::new(false);

pub fn set_force_composed(on: bool) {
    FORCE_COMPOSED.store(on, Ordering::Relaxed);
}

fn composed_forced() -> bool {
    FORCE_COMPOSED.load(Ordering::Relaxed)
}

impl<E: Dtype> NetDevice<E> for Cpu
where
    Cpu: Device<E>,
{
    fn maxpool2<T: Tape<E, Self>>(x: Images<E, Self, T>) -> Images<E, Self, T> {
        if composed_forced() {
            return maxpool2_composed(x);
        }
        pool::maxpool2(x)
    }

    fn host_mirrors() -> bool {
        !composed_forced()
    }

    fn sgd_update<S: Shape>(
        cfg: &SgdConfig,
        param: &mut Tensor<S, E, Self>,
        velocity: &mut <Self as Storage<E>>::Vec,
        grad: &<Self as Storage<E>>::Vec,
        mirror: &mut Option<HostMirror<E>>,
    ) -> Result<(), Self::Err> {
        if composed_forced() {
            *mirror = None;
            return cfg.try_update(param, velocity, grad);
        }
        sgd::sgd_update(cfg, param, velocity, grad, mirror);
        Ok(())
    }

    fn batch_norm<T>(
        z: Tensor<(usize, usize), E, Self, T>,
        gamma: Tensor<(usize,), E, Self, T>,
        beta: Tensor<(usize,), E, Self, T>,
        eps: f64,
        relu: bool,
        residual: Option<Tensor<(usize, usize), E, Self, T>>,
    ) -> Normalised<E, Self, T>
    where
        T: Tape<E, Self> + Merge<T> + Merge<NoneTape>,
    {
        if composed_forced() {
            return batch_norm_composed(z, gamma, beta, eps, relu, residual);
        }
        norm::batch_norm(z, gamma, beta, eps, relu, residual)
    }

    fn dense<T>(
        inputs: Vec<DenseInput<E, Self, T>>,
        bias: Option<Tensor<(usize,), E, Self, T>>,
        relu: bool,
    ) -> Tensor<(usize, usize), E, Self, T>
    where
        T: Tape<E, Self> + Merge<T> + Merge<NoneTape>,
    {
        if composed_forced() {
            return dense_composed(inputs, bias, relu);
        }
        dense::dense(inputs, bias, relu)
    }

    fn dense_batch_norm<T>(
        inputs: Vec<DenseInput<E, Self, T>>,
        gamma: Tensor<(usize,), E, Self, T>,
        beta: Tensor<(usize,), E, Self, T>,
        eps: f64,
        relu: bool,
        residual: Option<Tensor<(usize, usize), E, Self, T>>,
    ) -> Normalised<E, Self, T>
    where
        T: Tape<E, Self> + Merge<T> + Merge<NoneTape>,
    {
        if composed_forced() {
            let z = dense_composed(inputs, None, false);
            return batch_norm_composed(z, gamma, beta, eps, relu, residual);
        }
        norm::dense_batch_norm(inputs, gamma, beta, eps, relu, residual)
    }
}

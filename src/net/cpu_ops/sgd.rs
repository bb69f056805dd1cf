//! The SGD step, bit for bit dfdx's arithmetic, vectorisable and parallel.

use dfdx::optim::{Momentum, WeightDecay};
use dfdx::prelude::*;
use dfdx::tensor_ops::SgdConfig;
use multiversion::multiversion;
use rayon::prelude::*;

use super::memory::{host, host_ref};
use crate::net::ops::HostMirror;

/// One SGD step on a parameter, the same arithmetic as dfdx's `SgdConfig::try_update` (so the
/// same results to the bit), vectorisable and parallel over chunks: dfdx's CPU kernel is a
/// scalar loop on one thread and took 15% of an MLP training step.
pub fn sgd_update<S: Shape, E: Dtype>(
    cfg: &SgdConfig,
    param: &mut Tensor<S, E, Cpu>,
    velocity: &mut <Cpu as Storage<E>>::Vec,
    grad: &<Cpu as Storage<E>>::Vec,
    mirror: &mut Option<HostMirror<E>>,
) where
    Cpu: Device<E>,
{
    // Chunks large enough to amortise rayon's hand-off, small enough to split a layer.
    const CHUNK: usize = 1 << 14;
    let cast = |v: f64| E::from_f64(v).expect("a float dtype");
    let lr = cast(cfg.lr);
    let l2 = match cfg.weight_decay {
        Some(WeightDecay::L2(wd)) => Some(cast(wd)),
        _ => None,
    };
    let decoupled = match cfg.weight_decay {
        Some(WeightDecay::Decoupled(wd)) => Some(cast(wd * cfg.lr)),
        _ => None,
    };
    let momentum = cfg.momentum;
    let velocity = host::<E>(velocity);
    let grad = host_ref::<E>(grad);
    let n = param.shape().num_elements();
    assert!(velocity.len() == n && grad.len() == n, "sgd buffers");
    // Update the host mirror in place (made once, from the tensor) and copy it into the
    // tensor: one copy per step instead of one out and one back.
    let host = mirror.get_or_insert_with(|| {
        let mut copy = vec![E::default(); n];
        param.copy_into(&mut copy);
        HostMirror::new(copy)
    });
    assert_eq!(host.len(), n, "host mirror of the parameter");
    // A copy only if a layer's backward pass still holds the old values.
    let p = HostMirror::make_mut(host);
    p.par_chunks_mut(CHUNK)
        .zip(velocity.par_chunks_mut(CHUNK))
        .zip(grad.par_chunks(CHUNK))
        .for_each(|((p, v), g)| update_chunk(p, v, g, lr, momentum, l2, decoupled));
    param.copy_from(p);
}

/// The SGD step on one chunk, compiled for AVX-512 and AVX2 too (the crate's baseline is
/// SSE2, at which this loop took 15% of the paper MLP's training step on an AMD EPYC). The
/// same operations in the same order at every width (Rust does not fuse a multiply and an
/// add), so the results stay dfdx's to the bit.
#[multiversion(targets("x86_64+avx512f", "x86_64+avx2"))]
fn update_chunk<E: Dtype>(
    p: &mut [E],
    v: &mut [E],
    g: &[E],
    lr: E,
    momentum: Option<Momentum>,
    l2: Option<E>,
    decoupled: Option<E>,
) {
    let cast = |v: f64| E::from_f64(v).expect("a float dtype");
    // One loop per configuration, so each compiles to straight-line SIMD.
    match (momentum, l2, decoupled) {
        (Some(Momentum::Classic(u)), None, None) => {
            let u = cast(u);
            for ((p, g), v) in p.iter_mut().zip(g).zip(v.iter_mut()) {
                *v = *g + u * *v;
                *p -= *v * lr;
            }
        }
        (Some(Momentum::Classic(u)), Some(wd), None) => {
            let u = cast(u);
            for ((p, g), v) in p.iter_mut().zip(g).zip(v.iter_mut()) {
                *v = (*g + wd * *p) + u * *v;
                *p -= *v * lr;
            }
        }
        _ => {
            for ((p, &g), v) in p.iter_mut().zip(g).zip(v.iter_mut()) {
                let mut g = match l2 {
                    Some(wd) => g + wd * *p,
                    None => g,
                };
                g = match momentum {
                    Some(Momentum::Classic(u)) => {
                        *v = g + cast(u) * *v;
                        *v * lr
                    }
                    Some(Momentum::Nesterov(u)) => {
                        *v = g + cast(u) * *v;
                        (g + cast(u) * *v) * lr
                    }
                    None => g * lr,
                };
                if let Some(wd) = decoupled {
                    g += wd * *p;
                }
                *p -= g;
            }
        }
    }
}

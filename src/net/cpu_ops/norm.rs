//! Batch norm in training mode on the CPU, registered on dfdx's tape: the statistics per unit
//! in one parallel pass (summed in f64), the normalised values kept for the backward pass,
//! scale and shift in the same pass; the backward pass in two (the sums, then the input's
//! gradient). The composed version (`ops::batch_norm_composed`) made a normalised CNN step
//! about four times as slow: dfdx reduces a column at a time.

use dfdx::prelude::*;
use rayon::prelude::*;

use super::memory::{host, with_scratch, Pooled};
use crate::net::ops::Normalised;

/// Rows a parallel task takes (a block of whole rows, so each task sums every unit).
const ROWS_PER_TASK: usize = 256;

/// Per-unit sums over the rows of `a` and `b` (both `[rows, n]`) of `f(unit, a, b)`: each
/// block of rows summed in `E` (vectorised), the blocks' sums added in f64.
fn column_sums<E: Dtype>(
    a: &[E],
    b: &[E],
    n: usize,
    f: impl Fn(usize, E, E) -> E + Sync,
) -> Vec<f64> {
    if n == 0 {
        return Vec::new();
    }
    a.par_chunks(ROWS_PER_TASK * n)
        .zip(b.par_chunks(ROWS_PER_TASK * n))
        .map(|(a, b)| {
            let mut sums = vec![E::default(); n];
            for (ra, rb) in a.chunks_exact(n).zip(b.chunks_exact(n)) {
                for j in 0..n {
                    sums[j] += f(j, ra[j], rb[j]);
                }
            }
            sums.into_iter()
                .map(|s| s.to_f64().unwrap_or(f64::NAN))
                .collect::<Vec<f64>>()
        })
        .reduce(
            || vec![0.0; n],
            |mut a, b| {
                a.iter_mut().zip(b).for_each(|(x, y)| *x += y);
                a
            },
        )
}

/// `gamma · (z - mean) / sqrt(var + eps) + beta` per unit of `z` (`[rows, units]`), with the
/// rows' mean and biased variance (those come back too, for the running estimates); then
/// ReLU when `relu`, in the same pass.
pub fn batch_norm<E: Dtype, T: Tape<E, Cpu> + Merge<T>>(
    z: Tensor<(usize, usize), E, Cpu, T>,
    gamma: Tensor<(usize,), E, Cpu, T>,
    beta: Tensor<(usize,), E, Cpu, T>,
    eps: f64,
    relu: bool,
) -> Normalised<E, Cpu, T>
where
    Cpu: Device<E>,
{
    let (m, n) = *z.shape();
    let (z, mut tape) = z.split_tape();
    let (gamma, gamma_tape) = gamma.split_tape();
    let (beta, beta_tape) = beta.split_tape();
    tape = tape.merge(gamma_tape).merge(beta_tape);
    let from_f64 = |v: f64| E::from_f64(v).unwrap_or_default();
    let rows = m.max(1) as f64;
    // `xhat` starts as the input and is normalised in place.
    let mut xhat = Pooled::<E>::new(m * n);
    z.copy_into(&mut xhat);
    let mean: Vec<f64> = column_sums(&xhat, &xhat, n, |_, v, _| v)
        .into_iter()
        .map(|s| s / rows)
        .collect();
    let mean_e: Vec<E> = mean.iter().map(|&v| from_f64(v)).collect();
    // Two passes (the squared deviations from the mean), not E[x²] - E[x]²: no cancellation.
    let var: Vec<f64> = column_sums(&xhat, &xhat, n, |j, v, _| (v - mean_e[j]) * (v - mean_e[j]))
        .into_iter()
        .map(|s| s / rows)
        .collect();
    let inv_std: Vec<E> = var
        .iter()
        .map(|v| from_f64(1.0 / (v + eps).sqrt()))
        .collect();
    let (g, b) = (gamma.as_vec(), beta.as_vec());
    let zero = E::default();
    let mut y = Pooled::<E>::new(m * n);
    if n > 0 {
        xhat.par_chunks_mut(ROWS_PER_TASK * n)
            .zip(y.par_chunks_mut(ROWS_PER_TASK * n))
            .for_each(|(xs, ys)| {
                for (x, y) in xs.chunks_exact_mut(n).zip(ys.chunks_exact_mut(n)) {
                    for j in 0..n {
                        x[j] = (x[j] - mean_e[j]) * inv_std[j];
                        let v = x[j] * g[j] + b[j];
                        // A select, not a branch, so it vectorises (NaN becomes 0, as dfdx's).
                        let passes = v > zero;
                        y[j] = if relu && !passes { zero } else { v };
                    }
                }
            });
    }
    let mut out = z.device().zeros_like(&(m, n));
    out.copy_from(&y);
    // The ReLU mask for the backward pass: the output itself (y > 0 iff it passed).
    let activation = relu.then_some(y);
    let (out_ghost, z_ghost, gamma_ghost, beta_ghost) =
        (out.ghost(), z.ghost(), gamma.ghost(), beta.ghost());
    tape.add_backward_op(move |grads| {
        with_scratch::<E, _>(m * n, |dy| -> Result<(), CpuError> {
            dy.copy_from_slice(&host::<E>(grads.get_or_alloc_mut(&out_ghost)?)[..m * n]);
            if let Some(y) = &activation {
                let zero = E::default();
                dy.iter_mut()
                    .zip(y.iter())
                    .for_each(|(d, y)| *d = if *y > zero { *d } else { zero });
            }
            let dbeta = column_sums(dy, dy, n, |_, d, _| d);
            let dgamma = column_sums(dy, &xhat, n, |_, d, x| d * x);
            for (d, s) in host::<E>(grads.get_or_alloc_mut(&beta_ghost)?)
                .iter_mut()
                .zip(&dbeta)
            {
                *d += from_f64(*s);
            }
            for (d, s) in host::<E>(grads.get_or_alloc_mut(&gamma_ghost)?)
                .iter_mut()
                .zip(&dgamma)
            {
                *d += from_f64(*s);
            }
            // dz = gamma / std · (dy - mean(dy) - xhat · mean(dy · xhat)), per unit.
            let scale: Vec<E> = (0..n).map(|j| g[j] * inv_std[j]).collect();
            let mean_dy: Vec<E> = dbeta.iter().map(|s| from_f64(s / rows)).collect();
            let mean_dyx: Vec<E> = dgamma.iter().map(|s| from_f64(s / rows)).collect();
            let dz = host::<E>(grads.get_or_alloc_mut(&z_ghost)?);
            if n > 0 {
                dz.par_chunks_mut(ROWS_PER_TASK * n)
                    .zip(dy.par_chunks(ROWS_PER_TASK * n))
                    .zip(xhat.par_chunks(ROWS_PER_TASK * n))
                    .for_each(|((dzs, dys), xs)| {
                        let rows = dzs.chunks_exact_mut(n).zip(dys.chunks_exact(n));
                        for ((dz, dy), x) in rows.zip(xs.chunks_exact(n)) {
                            for j in 0..n {
                                dz[j] += scale[j] * (dy[j] - mean_dy[j] - x[j] * mean_dyx[j]);
                            }
                        }
                    });
            }
            Ok(())
        })
    });
    (out.put_tape(tape), mean, var)
}

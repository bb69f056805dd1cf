//! Batch norm in training mode on the CPU, registered on dfdx's tape. Each pass is one sweep
//! over memory in blocks of whole rows that vectorise along the units: the forward pass
//! takes the statistics per unit in one sweep (each block's mean and squared deviations in
//! cache, the blocks merged in f64) and writes the output in a second; the backward pass
//! takes its two sums in one sweep and the input's gradient in another. Only a copy of the
//! input is kept for the backward pass: the normalised values and the ReLU mask are
//! recomputed from it, which costs less than storing and reading them again. The composed
//! version (`ops::batch_norm_composed`) made a normalised CNN step about four times as slow:
//! dfdx reduces a column at a time.

use dfdx::prelude::*;
use rayon::prelude::*;

use super::memory::{host, Pooled};
use crate::net::ops::Normalised;

/// Rows a parallel task takes (a block of whole rows, so each task sums every unit, and a
/// block of a few thousand values stays in cache between its two passes).
const ROWS_PER_TASK: usize = 256;

/// Per-unit mean and biased variance over the rows of `x` (`[rows, n]`). Each block of rows
/// takes its own mean and sum of squared deviations (two passes over the block while it is in
/// cache: no cancellation, as `E[x²] - E[x]²` would have); the blocks are merged in f64 by
/// Chan et al.'s pairwise update.
fn mean_and_variance<E: Dtype>(x: &[E], n: usize) -> (Vec<f64>, Vec<f64>) {
    let rows = if n == 0 { 0 } else { x.len() / n };
    if rows == 0 {
        return (vec![0.0; n], vec![0.0; n]);
    }
    let to_f64 = |v: E| v.to_f64().unwrap_or(f64::NAN);
    let (count, mean, m2) = x
        .par_chunks(ROWS_PER_TASK * n)
        .map(|block| {
            let count = block.len() / n;
            let mut sum = vec![E::default(); n];
            for row in block.chunks_exact(n) {
                sum.iter_mut().zip(row).for_each(|(s, &v)| *s += v);
            }
            let inv = E::from_f64(1.0 / count as f64).unwrap_or_default();
            let mean: Vec<E> = sum.iter().map(|&s| s * inv).collect();
            let mut m2 = vec![E::default(); n];
            for row in block.chunks_exact(n) {
                m2.iter_mut().zip(row).zip(&mean).for_each(|((s, &v), &m)| {
                    let d = v - m;
                    *s += d * d;
                });
            }
            let mean: Vec<f64> = mean.into_iter().map(to_f64).collect();
            (
                count as f64,
                mean,
                m2.into_iter().map(to_f64).collect::<Vec<f64>>(),
            )
        })
        .reduce(
            || (0.0, vec![0.0; n], vec![0.0; n]),
            |(na, mut ma, mut qa), (nb, mb, qb)| {
                if na == 0.0 {
                    return (nb, mb, qb);
                }
                let total = na + nb;
                for j in 0..n {
                    let delta = mb[j] - ma[j];
                    ma[j] += delta * nb / total;
                    qa[j] += qb[j] + delta * delta * na * nb / total;
                }
                (total, ma, qa)
            },
        );
    (mean, m2.into_iter().map(|q| q / count).collect())
}

/// Adds two blocks' per-unit sums (f64).
fn add_sums(
    (mut a1, mut a2): (Vec<f64>, Vec<f64>),
    (b1, b2): (Vec<f64>, Vec<f64>),
) -> (Vec<f64>, Vec<f64>) {
    a1.iter_mut().zip(b1).for_each(|(x, y)| *x += y);
    a2.iter_mut().zip(b2).for_each(|(x, y)| *x += y);
    (a1, a2)
}

/// The per-unit constants of one batch norm: the batch mean, `gamma / std` and the shift.
struct Affine<E> {
    mean: Vec<E>,
    scale: Vec<E>,
    beta: Vec<E>,
}

impl<E: Dtype> Affine<E> {
    /// One row's output before ReLU, `(x - mean) · scale + beta`, into `out`. (`x - mean`
    /// first: `x · scale + (beta - mean · scale)` would cancel where the mean is large.) The
    /// backward pass recomputes it to find the ReLU mask: the same operations in the same
    /// order give the same values.
    #[inline(always)]
    fn row(&self, x: &[E], out: &mut [E]) {
        let constants = self.mean.iter().zip(&self.scale).zip(&self.beta);
        for ((y, &x), ((&m, &s), &b)) in out.iter_mut().zip(x).zip(constants) {
            *y = (x - m) * s + b;
        }
    }
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
    let zero = E::default();
    let mut x = Pooled::<E>::new(m * n);
    z.copy_into(&mut x);
    let (mean, var) = mean_and_variance(&x, n);
    let inv_std: Vec<E> = var
        .iter()
        .map(|v| from_f64(1.0 / (v + eps).sqrt()))
        .collect();
    let g = gamma.as_vec();
    let affine = Affine {
        mean: mean.iter().map(|&v| from_f64(v)).collect(),
        scale: g.iter().zip(&inv_std).map(|(&g, &s)| g * s).collect(),
        beta: beta.as_vec(),
    };
    let mut y = Pooled::<E>::new(m * n);
    if n > 0 {
        x.par_chunks(ROWS_PER_TASK * n)
            .zip(y.par_chunks_mut(ROWS_PER_TASK * n))
            .for_each(|(xs, ys)| {
                for (x, y) in xs.chunks_exact(n).zip(ys.chunks_exact_mut(n)) {
                    affine.row(x, y);
                    if relu {
                        // A select, not a branch, so it vectorises (NaN becomes 0, as dfdx's).
                        y.iter_mut()
                            .for_each(|v| *v = if *v > zero { *v } else { zero });
                    }
                }
            });
    }
    let mut out = z.device().zeros_like(&(m, n));
    out.copy_from(&y);
    drop(y);
    let dev = z.device().clone();
    let (out_ghost, z_ghost, gamma_ghost, beta_ghost) =
        (out.ghost(), z.ghost(), gamma.ghost(), beta.ghost());
    tape.add_backward_op(move |grads| {
        // The output's gradient is moved out of the store while the input's is written (the
        // store lends one buffer at a time), and put back after: no copy.
        let mut dy = Storage::<E>::try_alloc_len(&dev, 0)?;
        std::mem::swap(&mut dy, grads.get_or_alloc_mut(&out_ghost)?);
        let dy_host: &[E] = &host::<E>(&mut dy)[..m * n];
        let to_f64 = |v: E| v.to_f64().unwrap_or(f64::NAN);
        let chunk = ROWS_PER_TASK * n.max(1);
        // The output's gradient where the unit passed the ReLU (else 0), one row into `masked`.
        let mask = |x: &[E], dy: &[E], masked: &mut [E]| {
            if relu {
                affine.row(x, masked);
                for (d, &g) in masked.iter_mut().zip(dy) {
                    *d = if *d > zero { g } else { zero };
                }
            } else {
                masked.copy_from_slice(dy);
            }
        };
        // Σ dy and Σ dy · (x - mean) per unit: the gradients of beta and (times 1/std) gamma.
        let (sum_dy, sum_dyx) = x
            .par_chunks(chunk)
            .zip(dy_host.par_chunks(chunk))
            .map(|(xs, dys)| {
                let (mut s1, mut s2, mut masked) = (vec![zero; n], vec![zero; n], vec![zero; n]);
                for (x, dy) in xs.chunks_exact(n).zip(dys.chunks_exact(n)) {
                    mask(x, dy, &mut masked);
                    let units = s1.iter_mut().zip(s2.iter_mut()).zip(&affine.mean);
                    for (((s1, s2), &mean), (&d, &x)) in units.zip(masked.iter().zip(x)) {
                        *s1 += d;
                        *s2 += d * (x - mean);
                    }
                }
                let back = |s: Vec<E>| s.into_iter().map(to_f64).collect::<Vec<f64>>();
                (back(s1), back(s2))
            })
            .reduce(|| (vec![0.0; n], vec![0.0; n]), add_sums);
        for (d, s) in host::<E>(grads.get_or_alloc_mut(&beta_ghost)?)
            .iter_mut()
            .zip(&sum_dy)
        {
            *d += from_f64(*s);
        }
        let gamma_grad = host::<E>(grads.get_or_alloc_mut(&gamma_ghost)?);
        for ((d, s), i) in gamma_grad.iter_mut().zip(&sum_dyx).zip(&inv_std) {
            *d += from_f64(*s) * *i;
        }
        // dz = gamma / std · (dy - mean(dy) - xhat · mean(dy · xhat)) per unit, with
        // xhat = (x - mean) / std: dz += a · dy + c · (x - mean) + d.
        let rows = m.max(1) as f64;
        let (mut a, mut c, mut d) = (vec![zero; n], vec![zero; n], vec![zero; n]);
        for j in 0..n {
            let s = g[j].to_f64().unwrap_or(f64::NAN) * inv_std[j].to_f64().unwrap_or(f64::NAN);
            let i = inv_std[j].to_f64().unwrap_or(f64::NAN);
            a[j] = from_f64(s);
            c[j] = from_f64(-s * i * i * sum_dyx[j] / rows);
            d[j] = from_f64(-s * sum_dy[j] / rows);
        }
        let dz = host::<E>(grads.get_or_alloc_mut(&z_ghost)?);
        if n > 0 {
            dz[..m * n]
                .par_chunks_mut(chunk)
                .zip(x.par_chunks(chunk))
                .zip(dy_host.par_chunks(chunk))
                .for_each(|((dzs, xs), dys)| {
                    let mut masked = vec![zero; n];
                    let rows = dzs.chunks_exact_mut(n).zip(xs.chunks_exact(n));
                    for ((dz, x), dy) in rows.zip(dys.chunks_exact(n)) {
                        mask(x, dy, &mut masked);
                        let constants = a.iter().zip(&c).zip(&d).zip(&affine.mean);
                        let values = dz.iter_mut().zip(x).zip(&masked);
                        for (((dz, &x), &dy), (((&a, &c), &d), &mean)) in values.zip(constants) {
                            *dz += a * dy + c * (x - mean) + d;
                        }
                    }
                });
        }
        std::mem::swap(&mut dy, grads.get_or_alloc_mut(&out_ghost)?);
        Ok(())
    });
    (out.put_tape(tape), mean, var)
}

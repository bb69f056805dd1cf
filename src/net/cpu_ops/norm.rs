//! Batch norm in training mode on the CPU, registered on dfdx's tape. Each pass is one sweep
//! over memory in blocks of whole rows that vectorise along the units: the forward pass
//! takes the statistics per unit in one sweep (each block's mean and squared deviations in
//! cache, the blocks merged in f64) and writes the output in a second; the backward pass
//! takes its two sums in one sweep and the input's gradient in another. Only a copy of the
//! input is kept for the backward pass: the normalised values and the ReLU mask are
//! recomputed from it, which costs less than storing and reading them again. After a dense
//! layer ([`dense_batch_norm`]) the layer's own output buffer is that copy, and the input's
//! gradient goes straight to the layer's backward pass. The composed
//! version (`ops::batch_norm_composed`) made a normalised CNN step about four times as slow:
//! dfdx reduces a column at a time.

use dfdx::prelude::*;
use multiversion::multiversion;
use rayon::prelude::*;

use super::dense::{dense_forward, DenseForward};
use super::elementwise::{add_into, mask_by_output};
use super::memory::{host, Pooled};
use crate::net::ops::{DenseInput, Normalised};

/// Rows a parallel task takes (a block of whole rows, so each task sums every unit, and a
/// block of a few thousand values stays in cache between its two passes).
const ROWS_PER_TASK: usize = 256;

/// Per-unit mean and biased variance over the rows of `x` (`[rows, n]`). Each block of rows
/// takes its own mean and sum of squared deviations (two passes over the block while it is in
/// cache: no cancellation, as `E[x²] - E[x]²` would have); the blocks are merged in f64 by
/// Chan et al.'s pairwise update.
fn mean_and_variance<E: Dtype>(x: &[E], n: usize) -> (Vec<f64>, Vec<f64>) {
    let rows = x.len().checked_div(n).unwrap_or(0);
    if rows == 0 {
        return (vec![0.0; n], vec![0.0; n]);
    }
    let to_f64 = |v: E| v.to_f64().unwrap_or(f64::NAN);
    let (count, mean, m2) = x
        .par_chunks(ROWS_PER_TASK * n)
        .map(|block| {
            let (mean, m2) = block_moments(block, n);
            let back = |s: Vec<E>| s.into_iter().map(to_f64).collect::<Vec<f64>>();
            ((block.len() / n) as f64, back(mean), back(m2))
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

/// One block's per-unit mean and sum of squared deviations from it (`block`: whole rows of
/// `n` units), each pass over spans of whole rows as flat arrays (see [`Affine`]).
#[multiversion(targets("x86_64+avx512f", "x86_64+avx2"))]
fn block_moments<E: Dtype>(block: &[E], n: usize) -> (Vec<E>, Vec<E>) {
    let zero = E::default();
    let span = tiled(&vec![zero; n]).len();
    // Per-span sums folded onto one row.
    let fold = |spans: Vec<E>| {
        let mut per_unit = vec![zero; n];
        for row in spans.chunks_exact(n) {
            per_unit.iter_mut().zip(row).for_each(|(p, &v)| *p += v);
        }
        per_unit
    };
    let mut sums = vec![zero; span];
    for chunk in block.chunks(span) {
        let acc = &mut sums[..chunk.len()];
        for j in 0..chunk.len() {
            acc[j] += chunk[j];
        }
    }
    let inv = E::from_f64(1.0 / (block.len() / n) as f64).unwrap_or_default();
    let mean: Vec<E> = fold(sums).into_iter().map(|s| s * inv).collect();
    let spread = tiled(&mean);
    let mut squares = vec![zero; span];
    for chunk in block.chunks(span) {
        let (acc, mean) = (&mut squares[..chunk.len()], &spread[..chunk.len()]);
        for j in 0..chunk.len() {
            let d = chunk[j] - mean[j];
            acc[j] += d * d;
        }
    }
    (mean, fold(squares))
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

/// The per-unit constants of one batch norm (the batch mean, `gamma / std` and the shift),
/// each repeated for [`Affine::span`] elements: whole rows, at least [`MIN_SPAN`] values. The
/// loops below run over such spans as flat arrays. Row by row they would not vectorise: a
/// row of 16 or 32 channels is shorter than the vectorised loop's step (16 lanes unrolled
/// four times), so every value went down the scalar tail.
struct Affine<E> {
    mean: Vec<E>,
    scale: Vec<E>,
    beta: Vec<E>,
}

/// The fewest values an [`Affine`] span holds.
const MIN_SPAN: usize = 256;

/// `values` (one per unit) repeated over whole rows to at least [`MIN_SPAN`] values.
fn tiled<E: Copy>(values: &[E]) -> Vec<E> {
    let rows = MIN_SPAN.div_ceil(values.len().max(1));
    values.repeat(rows)
}

impl<E: Dtype> Affine<E> {
    fn new(mean: &[E], scale: &[E], beta: &[E]) -> Self {
        Affine {
            mean: tiled(mean),
            scale: tiled(scale),
            beta: tiled(beta),
        }
    }

    /// Values per span (a whole number of rows).
    fn span(&self) -> usize {
        self.mean.len()
    }

    /// The forward pass over a block of whole rows: `(x - mean) · scale + beta`, then ReLU
    /// when `RELU`. (`x - mean` first: `x · scale + (beta - mean · scale)` would cancel where
    /// the mean is large.) The backward pass recomputes the same expression for the ReLU
    /// mask: the same operations in the same order give the same values.
    fn forward<const RELU: bool>(&self, xs: &[E], ys: &mut [E]) {
        forward::<E, RELU, false>(self, xs, ys)
    }

    /// [`Affine::forward`] with a residual added before the ReLU: `ys` holds it on entry.
    fn forward_onto<const RELU: bool>(&self, xs: &[E], ys: &mut [E]) {
        forward::<E, RELU, true>(self, xs, ys)
    }

    /// Per-unit `Σ dy` and `Σ dy · (x - mean)` over a block of whole rows of `n` units, `dy`
    /// masked by the ReLU where `RELU`.
    fn gradient_sums<const RELU: bool>(&self, n: usize, xs: &[E], dys: &[E]) -> [Vec<E>; 2] {
        gradient_sums::<E, RELU>(self, n, xs, dys)
    }

    /// `dz = a · dy + c · (x - mean) + d` per unit over a block of whole rows (`dz +=` where
    /// `ACCUMULATE`), `dy` masked by the ReLU where `RELU`; `a`, `c` and `d` tiled as the span
    /// is ([`tiled`]).
    fn input_gradient<const RELU: bool, const ACCUMULATE: bool>(
        &self,
        constants: [&[E]; 3],
        xs: &[E],
        dys: &[E],
        dzs: &mut [E],
    ) {
        input_gradient::<E, RELU, ACCUMULATE>(self, constants, xs, dys, dzs)
    }
}

// The loops behind [`Affine`]'s methods, compiled for AVX-512 and AVX2 beside the baseline
// and chosen at run time (the crate builds for any x86-64: at its SSE2 baseline these loops
// ran scalar).

#[multiversion(targets("x86_64+avx512f", "x86_64+avx2"))]
fn forward<E: Dtype, const RELU: bool, const RESIDUAL: bool>(
    this: &Affine<E>,
    xs: &[E],
    ys: &mut [E],
) {
    let zero = E::default();
    for (x, y) in xs.chunks(this.span()).zip(ys.chunks_mut(this.span())) {
        let len = x.len();
        let (mean, scale, beta) = (&this.mean[..len], &this.scale[..len], &this.beta[..len]);
        let y = &mut y[..len];
        for j in 0..len {
            let mut v = (x[j] - mean[j]) * scale[j] + beta[j];
            if RESIDUAL {
                // `y` holds the residual.
                v += y[j];
            }
            // A select, not a branch (NaN becomes 0, as in dfdx's ReLU).
            y[j] = if !RELU || v > zero { v } else { zero };
        }
    }
}

#[multiversion(targets("x86_64+avx512f", "x86_64+avx2"))]
fn gradient_sums<E: Dtype, const RELU: bool>(
    this: &Affine<E>,
    n: usize,
    xs: &[E],
    dys: &[E],
) -> [Vec<E>; 2] {
    let zero = E::default();
    let (mut s1, mut s2) = (vec![zero; this.span()], vec![zero; this.span()]);
    for (x, dy) in xs.chunks(this.span()).zip(dys.chunks(this.span())) {
        let len = x.len();
        let (mean, scale, beta) = (&this.mean[..len], &this.scale[..len], &this.beta[..len]);
        let (dy, t1, t2) = (&dy[..len], &mut s1[..len], &mut s2[..len]);
        for j in 0..len {
            let xc = x[j] - mean[j];
            let d = if !RELU || xc * scale[j] + beta[j] > zero {
                dy[j]
            } else {
                zero
            };
            t1[j] += d;
            t2[j] += d * xc;
        }
    }
    // The span's rows folded onto one.
    [s1, s2].map(|s| {
        let mut per_unit = vec![zero; n];
        for row in s.chunks_exact(n) {
            per_unit.iter_mut().zip(row).for_each(|(p, &v)| *p += v);
        }
        per_unit
    })
}

#[multiversion(targets("x86_64+avx512f", "x86_64+avx2"))]
fn input_gradient<E: Dtype, const RELU: bool, const ACCUMULATE: bool>(
    this: &Affine<E>,
    [a, c, d]: [&[E]; 3],
    xs: &[E],
    dys: &[E],
    dzs: &mut [E],
) {
    let zero = E::default();
    let rows = xs.chunks(this.span()).zip(dys.chunks(this.span()));
    for ((x, dy), dz) in rows.zip(dzs.chunks_mut(this.span())) {
        let len = x.len();
        let (mean, scale, beta) = (&this.mean[..len], &this.scale[..len], &this.beta[..len]);
        let (a, c, d) = (&a[..len], &c[..len], &d[..len]);
        let (dy, dz) = (&dy[..len], &mut dz[..len]);
        for j in 0..len {
            let xc = x[j] - mean[j];
            let g = if !RELU || xc * scale[j] + beta[j] > zero {
                dy[j]
            } else {
                zero
            };
            let v = a[j] * g + c[j] * xc + d[j];
            dz[j] = if ACCUMULATE { dz[j] + v } else { v };
        }
    }
}

/// `gamma · (z - mean) / sqrt(var + eps) + beta` per unit of `z` (`[rows, units]`), with the
/// rows' mean and biased variance (those come back too, for the running estimates); plus
/// `residual` (a residual block's shortcut, `[rows, units]`) where given; then ReLU when
/// `relu`, all in the same pass. (The shortcut's add and the ReLU as dfdx ops cost a ResNet
/// two more passes each way, in generic kernels.)
pub fn batch_norm<E: Dtype, T: Tape<E, Cpu> + Merge<T>>(
    z: Tensor<(usize, usize), E, Cpu, T>,
    gamma: Tensor<(usize,), E, Cpu, T>,
    beta: Tensor<(usize,), E, Cpu, T>,
    eps: f64,
    relu: bool,
    residual: Option<Tensor<(usize, usize), E, Cpu, T>>,
) -> Normalised<E, Cpu, T>
where
    Cpu: Device<E>,
{
    let (m, n) = *z.shape();
    let (z, tape) = z.split_tape();
    let mut x = Pooled::<E>::new(m * n);
    z.copy_into(&mut x);
    let z_ghost = z.ghost();
    let rows = Rows { x, tape, m, n };
    normalise(
        rows,
        gamma,
        beta,
        eps,
        relu,
        residual,
        move |pass, grads| {
            // The input's gradient is added to what the store holds.
            let dz = host::<E>(grads.get_or_alloc_mut(&z_ghost)?);
            pass.input_gradient::<true>(&mut dz[..m * n]);
            Ok(())
        },
    )
}

/// [`super::dense::dense`] (no bias, no ReLU) followed by [`batch_norm`], in one tape entry:
/// the layer's output is normalised where the layer wrote it, and the backward pass hands the
/// layer its output's gradient in a host buffer. As two ops the output went into a tensor,
/// was copied again for batch norm, and its gradient was a zeroed buffer in the store that
/// batch norm added to and the layer copied out: four more passes over the layer's output.
pub fn dense_batch_norm<E: Dtype, T: Tape<E, Cpu> + Merge<T>>(
    inputs: Vec<DenseInput<E, Cpu, T>>,
    gamma: Tensor<(usize,), E, Cpu, T>,
    beta: Tensor<(usize,), E, Cpu, T>,
    eps: f64,
    relu: bool,
    residual: Option<Tensor<(usize, usize), E, Cpu, T>>,
) -> Normalised<E, Cpu, T>
where
    Cpu: Device<E>,
{
    let DenseForward { z, tape, backward } = dense_forward(inputs, None, false);
    let (m, n) = (backward.m, backward.n);
    let rows = Rows { x: z, tape, m, n };
    normalise(
        rows,
        gamma,
        beta,
        eps,
        relu,
        residual,
        move |pass, grads| {
            let mut dz = Pooled::<E>::new(m * n);
            pass.input_gradient::<false>(&mut dz);
            backward.run(&dz, grads)
        },
    )
}

/// A batch norm's backward pass at the point where its input's gradient is due: `dy` (the
/// output's gradient, masked by the ReLU where the output keeps the mask) and the constants
/// of `dz = a · dy + c · (x - mean) + d`.
struct InputGradient<'a, E: Dtype> {
    affine: &'a Affine<E>,
    x: &'a [E],
    dy: &'a [E],
    constants: [Vec<E>; 3],
    /// Whether the ReLU's mask is recomputed from `x` (no residual).
    relu: bool,
    n: usize,
}

impl<E: Dtype> InputGradient<'_, E> {
    /// Writes the input's gradient into `dz` (`+=` where `ACCUMULATE`).
    fn input_gradient<const ACCUMULATE: bool>(&self, dz: &mut [E]) {
        let n = self.n;
        if n == 0 {
            return;
        }
        let chunk = ROWS_PER_TASK * n;
        let [a, c, d] = &self.constants;
        let constants = [&a[..], &c[..], &d[..]];
        let affine = self.affine;
        dz.par_chunks_mut(chunk)
            .zip(self.x.par_chunks(chunk))
            .zip(self.dy.par_chunks(chunk))
            .for_each(|((dzs, xs), dys)| match self.relu {
                true => affine.input_gradient::<true, ACCUMULATE>(constants, xs, dys, dzs),
                false => affine.input_gradient::<false, ACCUMULATE>(constants, xs, dys, dzs),
            });
    }
}

/// What batch norm normalises: host rows `x` (`[m, n]`, kept for the backward pass) and the
/// tape of the op that made them.
struct Rows<E: Dtype, T> {
    x: Pooled<E>,
    tape: T,
    m: usize,
    n: usize,
}

/// Batch norm over `rows`; `input_gradient` finishes the backward pass with the input's
/// gradient (into the store, or into the layer that made the rows).
fn normalise<E, T, F>(
    Rows { x, mut tape, m, n }: Rows<E, T>,
    gamma: Tensor<(usize,), E, Cpu, T>,
    beta: Tensor<(usize,), E, Cpu, T>,
    eps: f64,
    relu: bool,
    residual: Option<Tensor<(usize, usize), E, Cpu, T>>,
    input_gradient: F,
) -> Normalised<E, Cpu, T>
where
    E: Dtype,
    T: Tape<E, Cpu> + Merge<T>,
    Cpu: Device<E>,
    F: 'static + FnOnce(&InputGradient<E>, &mut Gradients<E, Cpu>) -> Result<(), CpuError>,
{
    let (gamma, gamma_tape) = gamma.split_tape();
    let (beta, beta_tape) = beta.split_tape();
    tape = tape.merge(gamma_tape).merge(beta_tape);
    let residual = residual.map(|r| {
        assert_eq!(*r.shape(), (m, n), "batch norm's residual");
        let (r, r_tape) = r.split_tape();
        tape = std::mem::take(&mut tape).merge(r_tape);
        r
    });
    let from_f64 = |v: f64| E::from_f64(v).unwrap_or_default();
    let zero = E::default();
    let (mean, var) = mean_and_variance(&x, n);
    let inv_std: Vec<E> = var
        .iter()
        .map(|v| from_f64(1.0 / (v + eps).sqrt()))
        .collect();
    let g = gamma.as_vec();
    let mean_e: Vec<E> = mean.iter().map(|&v| from_f64(v)).collect();
    let scale: Vec<E> = g.iter().zip(&inv_std).map(|(&g, &s)| g * s).collect();
    let affine = Affine::new(&mean_e, &scale, &beta.as_vec());
    let mut y = Pooled::<E>::new(m * n);
    if let Some(r) = &residual {
        r.copy_into(&mut y);
    }
    if n > 0 {
        x.par_chunks(ROWS_PER_TASK * n)
            .zip(y.par_chunks_mut(ROWS_PER_TASK * n))
            .for_each(|(xs, ys)| match (relu, residual.is_some()) {
                (true, false) => affine.forward::<true>(xs, ys),
                (false, false) => affine.forward::<false>(xs, ys),
                (true, true) => affine.forward_onto::<true>(xs, ys),
                (false, true) => affine.forward_onto::<false>(xs, ys),
            });
    }
    let dev = gamma.device().clone();
    let mut out = dev.zeros_like(&(m, n));
    out.copy_from(&y);
    // With a residual the ReLU mask cannot be recomputed from the input alone: the output
    // keeps it (y > 0 iff the sum passed).
    let kept_output = (relu && residual.is_some()).then_some(y);
    let recompute_mask = relu && residual.is_none();
    let residual_ghost = residual.map(|r| r.ghost());
    let (out_ghost, gamma_ghost, beta_ghost) = (out.ghost(), gamma.ghost(), beta.ghost());
    tape.add_backward_op(move |grads| {
        // The output's gradient is moved out of the store while the input's is written (the
        // store lends one buffer at a time), and put back after: no copy. It is masked in
        // place where the output holds the mask (nothing else reads it).
        let mut dy = Storage::<E>::try_alloc_len(&dev, 0)?;
        std::mem::swap(&mut dy, grads.get_or_alloc_mut(&out_ghost)?);
        if let Some(y) = &kept_output {
            mask_by_output(&mut host::<E>(&mut dy)[..m * n], y);
        }
        let dy_host: &[E] = &host::<E>(&mut dy)[..m * n];
        if let Some(r) = &residual_ghost {
            add_into(&mut host::<E>(grads.get_or_alloc_mut(r)?)[..m * n], dy_host);
        }
        let relu = recompute_mask;
        let to_f64 = |v: E| v.to_f64().unwrap_or(f64::NAN);
        let chunk = ROWS_PER_TASK * n.max(1);
        // Σ dy and Σ dy · (x - mean) per unit: the gradients of beta and (times 1/std) gamma.
        let (sum_dy, sum_dyx) = x
            .par_chunks(chunk)
            .zip(dy_host.par_chunks(chunk))
            .map(|(xs, dys)| {
                let [s1, s2] = match relu {
                    true => affine.gradient_sums::<true>(n, xs, dys),
                    false => affine.gradient_sums::<false>(n, xs, dys),
                };
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
        // xhat = (x - mean) / std: dz = a · dy + c · (x - mean) + d.
        let rows = m.max(1) as f64;
        let (mut a, mut c, mut d) = (vec![zero; n], vec![zero; n], vec![zero; n]);
        for j in 0..n {
            let s = g[j].to_f64().unwrap_or(f64::NAN) * inv_std[j].to_f64().unwrap_or(f64::NAN);
            let i = inv_std[j].to_f64().unwrap_or(f64::NAN);
            a[j] = from_f64(s);
            c[j] = from_f64(-s * i * i * sum_dyx[j] / rows);
            d[j] = from_f64(-s * sum_dy[j] / rows);
        }
        let pass = InputGradient {
            affine: &affine,
            x: &x,
            dy: dy_host,
            constants: [tiled(&a), tiled(&c), tiled(&d)],
            relu,
            n,
        };
        let result = input_gradient(&pass, grads);
        std::mem::swap(&mut dy, grads.get_or_alloc_mut(&out_ghost)?);
        result
    });
    (out.put_tape(tape), mean, var)
}

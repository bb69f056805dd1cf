//! Custom CPU kernels: the fused dense layer and the max-pool registered on dfdx's tape,
//! and the SGD step. They replace the slow generic paths of the composed ops (dfdx's CPU
//! gather walks an n-dimensional index per element, its gemm 0.15 lacks AVX-512 on stable
//! Rust, its SGD is one scalar loop).
//!
//! The kernels are checked against the composed ops they replace (values and gradients, or
//! bit for bit for SGD) and, through whole networks, against finite differences
//! (`tests/gradients.rs`).

use std::any::{Any, TypeId};
use std::cell::RefCell;
use std::collections::HashMap;

use dfdx::optim::{Momentum, WeightDecay};
use dfdx::prelude::*;
use dfdx::tensor_ops::SgdConfig;
use rayon::prelude::*;

use super::ops::{DenseInput, DenseSource, HostMirror, Images};

mod winograd;

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

/// Runs `f` with a host buffer of `len` elements from this thread's pool ([`Pooled`];
/// contents unspecified). The kernels' large outputs are computed in these and copied into
/// tensors from dfdx's buffer cache: buffers adopted with `tensor_from_vec` would never be
/// reused by that cache, and fresh allocations of megabytes every step cost page faults.
fn with_scratch<E: Dtype, R>(len: usize, f: impl FnOnce(&mut [E]) -> R) -> R {
    f(&mut Pooled::<E>::new(len))
}

/// Runs `f` on the host data of a contiguous CPU tensor (a memcpy into scratch; dfdx's
/// `as_vec` walks the strides element by element, which is far slower).
fn with_host_data<S: Shape, E: Dtype, T, R>(
    t: &Tensor<S, E, Cpu, T>,
    f: impl FnOnce(&[E]) -> R,
) -> R
where
    Cpu: CopySlice<E>,
{
    let len = t.shape().num_elements();
    with_scratch::<E, _>(len, |buf| {
        t.copy_into(buf);
        f(buf)
    })
}

/// Copies sample `input` (`[h, w, c]`) into its 3x3 windows, zero outside: pixel `p`'s tap
/// `t` (row-major in the window) goes to `out[p * ld + t * c..][..c]`. `ld` is the row length
/// of the column matrix, which may hold other inputs' windows beside these.
fn im2col_sample<E: Dtype>(input: &[E], out: &mut [E], h: usize, w: usize, c: usize, ld: usize) {
    for y in 0..h {
        for x in 0..w {
            let p = y * w + x;
            for dy in 0..3 {
                for dx in 0..3 {
                    let at = p * ld + (dy * 3 + dx) * c;
                    let dst = &mut out[at..at + c];
                    let (sy, sx) = (y + dy, x + dx);
                    if sy >= 1 && sx >= 1 && sy <= h && sx <= w {
                        let s = ((sy - 1) * w + (sx - 1)) * c;
                        dst.copy_from_slice(&input[s..s + c]);
                    } else {
                        dst.fill(E::default());
                    }
                }
            }
        }
    }
}

/// The adjoint of [`im2col_sample`]: adds every window's gradient back onto its pixel.
fn col2im_sample<E: Dtype>(
    grad_cols: &[E],
    grad_in: &mut [E],
    h: usize,
    w: usize,
    c: usize,
    ld: usize,
) {
    for y in 0..h {
        for x in 0..w {
            let p = y * w + x;
            for dy in 0..3 {
                for dx in 0..3 {
                    let (sy, sx) = (y + dy, x + dx);
                    if sy >= 1 && sx >= 1 && sy <= h && sx <= w {
                        let at = p * ld + (dy * 3 + dx) * c;
                        let src = &grad_cols[at..at + c];
                        let s = ((sy - 1) * w + (sx - 1)) * c;
                        for (g, &v) in grad_in[s..s + c].iter_mut().zip(src) {
                            *g += v;
                        }
                    }
                }
            }
        }
    }
}

/// 2x2 max-pool with stride 2 on the CPU, parallel over the batch. The gradient goes to the
/// first maximum of each window (dfdx's reduce gives it to every tied maximum; ties are a
/// measure-zero set for real-valued activations, except all-zero ReLU windows, whose inputs
/// get no gradient through the ReLU either way).
pub fn maxpool2<E: Dtype, T: Tape<E, Cpu>>(x: Images<E, Cpu, T>) -> Images<E, Cpu, T> {
    let (b, h, w, c) = *x.shape();
    // Rounding up: windows at an odd last row or column hold fewer pixels.
    let (oh, ow) = (h.div_ceil(2), w.div_ceil(2));
    let (x, mut tape) = x.split_tape();
    let (per_in, per_out) = (h * w * c, oh * ow * c);
    // Pooled, not a fresh `vec!`: a megabyte allocated zeroed every call was faulted in from
    // the OS each step (the largest share of a CNN step's page faults).
    let mut winners = Pooled::<u32>::new(b * per_out);
    let mut out = x.device().zeros_like(&(b, oh, ow, c));
    with_host_data(&x, |input| {
        with_scratch::<E, _>(b * per_out, |pooled| {
            if per_out > 0 {
                pooled
                    .par_chunks_mut(per_out)
                    .zip(winners.par_chunks_mut(per_out))
                    .zip(input.par_chunks(per_in))
                    .for_each(|((out, win), inp)| pool_sample(inp, out, win, (h, w, c)));
            }
            out.copy_from(pooled);
        })
    });
    let (x_ghost, out_ghost) = (x.ghost(), out.ghost());
    tape.add_backward_op(move |grads| {
        let n = b * per_out;
        with_scratch::<E, _>(n, |grad_out| {
            grad_out.copy_from_slice(&grads.get_or_alloc_mut(&out_ghost)?[..n]);
            let grad_in = grads.get_or_alloc_mut(&x_ghost)?;
            if per_out > 0 {
                grad_in
                    .par_chunks_mut(per_in)
                    .zip(
                        grad_out
                            .par_chunks(per_out)
                            .zip(winners.par_chunks(per_out)),
                    )
                    .for_each(|(g_in, (g_out, win))| {
                        for (g, &i) in g_out.iter().zip(win) {
                            g_in[i as usize] += *g;
                        }
                    });
            }
            Ok(())
        })
    });
    out.put_tape(tape)
}

/// One sample's 2x2 max-pool: `input` `[h, w, c]` into `out` `[ceil(h/2), ceil(w/2), c]`, and
/// for every output the index in `input` of its window's first maximum (`winners`). Whole
/// rows of channels at a time, a compare-and-select the compiler vectorises (per channel it
/// ran scalar and took 6% of a CNN step); compiled for AVX-512 and AVX2 too.
#[multiversion::multiversion(targets("x86_64+avx512f", "x86_64+avx2"))]
fn pool_sample<E: Dtype>(
    input: &[E],
    out: &mut [E],
    winners: &mut [u32],
    (h, w, c): (usize, usize, usize),
) {
    let (oh, ow) = (h.div_ceil(2), w.div_ceil(2));
    for y in 0..oh {
        for x in 0..ow {
            let o = (y * ow + x) * c;
            let (out, win) = (&mut out[o..o + c], &mut winners[o..o + c]);
            let first = (2 * y * w + 2 * x) * c;
            out.copy_from_slice(&input[first..first + c]);
            for (ch, slot) in win.iter_mut().enumerate() {
                *slot = (first + ch) as u32;
            }
            // The rest of the window in the same order as before: right, below, below right.
            for (dy, dx) in [(0, 1), (1, 0), (1, 1)] {
                if 2 * y + dy >= h || 2 * x + dx >= w {
                    continue;
                }
                let at = ((2 * y + dy) * w + 2 * x + dx) * c;
                let candidates = &input[at..at + c];
                for (ch, ((best, slot), &v)) in out
                    .iter_mut()
                    .zip(win.iter_mut())
                    .zip(candidates)
                    .enumerate()
                {
                    // Strictly greater: ties keep the earlier maximum.
                    let better = v > *best;
                    *best = if better { v } else { *best };
                    *slot = if better { (at + ch) as u32 } else { *slot };
                }
            }
        }
    }
}

/// A matrix in a host buffer: `rows x cols` with element `(r, c)` at `r * rs + c * cs`.
#[derive(Clone, Copy)]
struct View<'a, E> {
    data: &'a [E],
    rows: usize,
    cols: usize,
    rs: usize,
    cs: usize,
}

impl<'a, E> View<'a, E> {
    /// A row-major `rows x cols` matrix.
    fn new(data: &'a [E], rows: usize, cols: usize) -> Self {
        Self {
            data,
            rows,
            cols,
            rs: cols,
            cs: 1,
        }
    }

    /// The transpose, by swapping the strides (no copy).
    fn t(self) -> Self {
        Self {
            rows: self.cols,
            cols: self.rows,
            rs: self.cs,
            cs: self.rs,
            ..self
        }
    }

    /// Whether every element lies inside `data`.
    fn in_bounds(&self) -> bool {
        self.rows == 0
            || self.cols == 0
            || (self.rows - 1) * self.rs + (self.cols - 1) * self.cs < self.data.len()
    }
}

/// `dst = a · b`, or `dst += a · b` when `accumulate`; `dst` is row-major `a.rows x b.cols`.
/// Uses the `gemm` crate with its AVX-512 kernels where the CPU has them. Parallel over
/// blocks of `dst`'s rows, one block per rayon thread, each a single-threaded gemm: gemm's own
/// threading splits these small matrices so finely that thread hand-offs cost more than they
/// bring (measured: the paper MLP trained faster on one thread than with gemm's two).
fn matmul_into<E: Dtype>(dst: &mut [E], a: View<E>, b: View<E>, accumulate: bool) {
    // Below this many multiply-adds one thread is faster than a fork and join.
    const PARALLEL_MIN: usize = 1 << 17;
    let (m, k, n) = (a.rows, a.cols, b.cols);
    assert!(
        b.rows == k && dst.len() >= m * n,
        "matmul shapes: {m}x{k} by {}x{n} into {}",
        b.rows,
        dst.len()
    );
    let dst = &mut dst[..m * n];
    let threads = rayon::current_num_threads();
    if threads < 2 || m < 2 || m * n * k < PARALLEL_MIN || n == 0 {
        gemm_serial(dst, a, b, accumulate);
        return;
    }
    let block = m.div_ceil(threads);
    dst.par_chunks_mut(block * n)
        .enumerate()
        .for_each(|(i, dst)| {
            let r0 = i * block;
            let rows = View {
                data: &a.data[(r0 * a.rs).min(a.data.len())..],
                rows: dst.len() / n,
                ..a
            };
            gemm_serial(dst, rows, b, accumulate);
        });
}

/// [`matmul_into`] on the calling thread.
fn gemm_serial<E: Dtype>(dst: &mut [E], a: View<E>, b: View<E>, accumulate: bool) {
    let (m, k, n) = (a.rows, a.cols, b.cols);
    // gemm reads and writes through raw pointers: check every bound, in release builds too.
    assert!(
        b.rows == k && dst.len() >= m * n && a.in_bounds() && b.in_bounds(),
        "matmul buffers: {m}x{k} by {}x{n} into {}",
        b.rows,
        dst.len()
    );
    if k == 0 {
        if !accumulate {
            dst[..m * n].fill(E::default());
        }
        return;
    }
    let one = E::from_f64(1.0).expect("1 is representable");
    // SAFETY: the views are in bounds (asserted above), dst holds m*n elements and is a
    // unique borrow, so it overlaps neither input.
    unsafe {
        gemm::gemm(
            m,
            n,
            k,
            dst.as_mut_ptr(),
            1,
            n as isize,
            accumulate,
            a.data.as_ptr(),
            a.cs as isize,
            a.rs as isize,
            b.data.as_ptr(),
            b.cs as isize,
            b.rs as isize,
            one,
            one,
            false,
            false,
            false,
            gemm::Parallelism::None,
        );
    }
}

/// The tape-free pieces of one rows input that the backward pass needs.
struct RowsPart<E: Dtype> {
    /// The input, if its gradient is needed. (Tensors, not ghosts, which dfdx does not
    /// export: these share the data, no copy.)
    grad_target: Option<Tensor<(usize, usize), E, Cpu>>,
    weight: Tensor<(usize, usize), E, Cpu>,
    /// Host copies made in the forward pass: the input and the weight.
    rows: Pooled<E>,
    weight_host: HostData<E>,
    k: usize,
}

/// A window input of a layer, off the tape, before its block is built.
struct WindowInput<E: Dtype> {
    image: Images<E, Cpu>,
    weight: Tensor<(usize, usize), E, Cpu>,
    weight_host: HostData<E>,
    needs_grad: bool,
}

/// One image batch of a [`WindowsBlock`]: its columns are `offset..offset + 9 * channels`.
struct WindowGroup<E: Dtype> {
    grad_target: Option<Images<E, Cpu>>,
    weight: Tensor<(usize, usize), E, Cpu>,
    channels: usize,
    offset: usize,
}

/// Every 3x3-windows input of a layer, prepared for one of the two kernels.
struct WindowsBlock<E: Dtype> {
    groups: Vec<WindowGroup<E>>,
    kernel: BlockKernel<E>,
    /// `(batch, height, width)`, the same for every group.
    size: (usize, usize, usize),
}

/// How a [`WindowsBlock`] multiplies.
enum BlockKernel<E: Dtype> {
    /// The windows of all its image batches side by side as one matrix (`[b*h*w, k]`,
    /// `k = 9 * sum of channels`), times their weight blocks stacked (`[k, n]`). One im2col
    /// buffer and one gemm per layer instead of one per input: the skip CNN's layers read two
    /// or three channel groups, and separate products each made a pass over the output and
    /// ran gemm at a third of the depth.
    Im2col {
        cols: Pooled<E>,
        weights: HostData<E>,
        k: usize,
    },
    /// The channel groups' tiles side by side, and the stacked weights, transformed
    /// ([`winograd`]).
    Winograd(winograd::Transformed<E>),
}

/// Which kernel computes a layer's 3x3 windows on the CPU.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ConvKernel {
    /// Winograd F(4x4, 3x3) where it pays: every layer whose window inputs hold at least
    /// [`WINOGRAD_MIN_CHANNELS`] channels (not the first layer of an RGB or grey network).
    Auto,
    Im2col,
    /// Winograd F(2x2, 3x3) on every layer.
    WinogradF2,
    /// Winograd F(4x4, 3x3) on every layer.
    WinogradF4,
}

/// Below this many input channels a layer's products are too shallow for Winograd's
/// transforms to pay for themselves. Measured on the paper's skip CNN (CIFAR-10 shape, batch
/// 32, 2-core Intel Xeon with AVX-512): F(2x2, 3x3) from 16 channels on trained 19% faster
/// than im2col everywhere, from 64 on 13%, from 128 on 9%; F(4x4, 3x3) from 16 channels on
/// 372 samples/s, on every layer (the RGB one too) 351.
pub const WINOGRAD_MIN_CHANNELS: usize = 16;

/// The Winograd scheme [`ConvKernel::Auto`] takes: F(4x4, 3x3). Measured against im2col on
/// the paper's CNNs (CIFAR-10 shape, batch 32, 2-core Intel Xeon, one binary): vanilla 1.57x,
/// skip 1.65x, reinforced 1.52x; F(2x2, 3x3) gave 1.05x, 1.15x and 1.04x.
const AUTO_SCHEME: winograd::Kind = winograd::Kind::F4;

thread_local! {
    static CONV_KERNEL: std::cell::Cell<Option<ConvKernel>> = const { std::cell::Cell::new(None) };
}

/// Runs `f` with the CPU's 3x3 layers on `kernel` on this thread (tests compare the kernels
/// on the same network). Elsewhere the `SKIPLAB_CPU_CONV` environment variable (`im2col`,
/// `winograd2`, `winograd4` or `auto`, the default) chooses, for A/B benchmarks of one binary.
pub fn with_conv_kernel<R>(kernel: ConvKernel, f: impl FnOnce() -> R) -> R {
    let before = CONV_KERNEL.with(|k| k.replace(Some(kernel)));
    struct Restore(Option<ConvKernel>);
    impl Drop for Restore {
        fn drop(&mut self) {
            CONV_KERNEL.with(|k| k.set(self.0));
        }
    }
    let _restore = Restore(before);
    f()
}

/// What [`conv_kernel`] computes the CPU's 3x3 layers with, in words.
pub fn conv_kernel_name() -> String {
    match conv_kernel() {
        ConvKernel::Auto => format!(
            "{} from {WINOGRAD_MIN_CHANNELS} input channels, else im2col",
            AUTO_SCHEME.name()
        ),
        ConvKernel::Im2col => "im2col".into(),
        ConvKernel::WinogradF2 => winograd::Kind::F2.name().into(),
        ConvKernel::WinogradF4 => winograd::Kind::F4.name().into(),
    }
}

/// The kernel in effect on this thread ([`with_conv_kernel`], else `SKIPLAB_CPU_CONV`).
pub fn conv_kernel() -> ConvKernel {
    static FROM_ENV: std::sync::OnceLock<ConvKernel> = std::sync::OnceLock::new();
    CONV_KERNEL.with(|k| k.get()).unwrap_or_else(|| {
        *FROM_ENV.get_or_init(|| match std::env::var("SKIPLAB_CPU_CONV").as_deref() {
            Ok("im2col") => ConvKernel::Im2col,
            Ok("winograd2") => ConvKernel::WinogradF2,
            Ok("winograd4") => ConvKernel::WinogradF4,
            Ok("auto") | Err(std::env::VarError::NotPresent) => ConvKernel::Auto,
            Ok(other) => {
                tracing::warn!(
                    "SKIPLAB_CPU_CONV={other:?} is not one of im2col, winograd2, winograd4, auto: using auto"
                );
                ConvKernel::Auto
            }
            Err(e) => {
                tracing::warn!("SKIPLAB_CPU_CONV: {e}: using auto");
                ConvKernel::Auto
            }
        })
    })
}

/// The fused layer `sum_i x_i · w_i (+ bias) (then ReLU)` on the CPU, where `x_i` may be the
/// 3x3 windows of an image batch: one tape entry instead of an im2col, a matmul per input, an
/// add per extra input, a bias broadcast and a ReLU, each with its own buffers. The matmuls
/// accumulate in place (gemm with `beta = 1`); all window inputs form one [`WindowsBlock`].
/// The host copies of inputs and weights made for the forward pass are kept for the backward
/// pass, which masks the output gradient once and computes the bias gradient, every weight's
/// gradient and the gradient of every input that needs one (for windows: through a scratch
/// buffer, added back onto the pixels).
pub fn dense<E: Dtype, T: Tape<E, Cpu> + Merge<T>>(
    inputs: Vec<DenseInput<E, Cpu, T>>,
    bias: Option<Tensor<(usize,), E, Cpu, T>>,
    relu: bool,
) -> Tensor<(usize, usize), E, Cpu, T>
where
    Cpu: Device<E>,
{
    let first = inputs
        .first()
        .expect("a dense layer has at least one input");
    let (m, n) = (first.x.matrix_shape().0, first.w.shape().1);
    let dev = first.w.device().clone();
    let mut tape = T::default();
    let mut row_parts = Vec::with_capacity(inputs.len());
    let mut windows = Vec::new();
    let mut z = Pooled::<E>::new(m * n);
    let mut z_written = false;
    for input in inputs {
        let DenseInput {
            x,
            w,
            x_needs_grad,
            w_host,
        } = input;
        let (rows_len, k) = x.matrix_shape();
        assert_eq!(
            (rows_len, w.shape().0, w.shape().1),
            (m, k, n),
            "dense input {rows_len}x{k} with weight {:?}",
            w.shape()
        );
        let (w, w_tape) = w.split_tape();
        tape = tape.merge(w_tape);
        let weight_host = host_weight(&w, w_host);
        match x {
            DenseSource::Rows(x) => {
                let (x, x_tape) = x.split_tape();
                tape = tape.merge(x_tape);
                let mut rows = Pooled::<E>::new(m * k);
                x.copy_into(&mut rows);
                matmul_into(
                    &mut z,
                    View::new(&rows, m, k),
                    View::new(&weight_host, k, n),
                    z_written,
                );
                z_written = true;
                row_parts.push(RowsPart {
                    grad_target: x_needs_grad.then_some(x),
                    weight: w,
                    rows,
                    weight_host,
                    k,
                });
            }
            DenseSource::Windows3x3(x, _) => {
                let (x, x_tape) = x.split_tape();
                tape = tape.merge(x_tape);
                windows.push(WindowInput {
                    image: x,
                    weight: w,
                    weight_host,
                    needs_grad: x_needs_grad,
                });
            }
        }
    }
    let block = (!windows.is_empty()).then(|| {
        let mut block = windows_block(windows, n);
        match &mut block.kernel {
            BlockKernel::Im2col { cols, weights, k } => matmul_into(
                &mut z,
                View::new(cols, m, *k),
                View::new(weights, *k, n),
                z_written,
            ),
            BlockKernel::Winograd(t) => winograd::forward(t, &block.groups, &mut z, z_written),
        }
        block
    });
    let zero = E::default();
    // A select, not a branch, so it vectorises; NaN becomes 0, as in dfdx's ReLU.
    let relu_of = move |z: E| if z > zero { z } else { zero };
    let bias = match bias {
        Some(b) => {
            assert_eq!(b.shape().0, n, "dense bias length");
            let (b, b_tape) = b.split_tape();
            tape = tape.merge(b_tape);
            let b_host = b.as_vec();
            // Bias and ReLU in one pass over the output.
            for row in z.chunks_exact_mut(n.max(1)) {
                let row = row.iter_mut().zip(&b_host);
                if relu {
                    row.for_each(|(z, b)| *z = relu_of(*z + *b));
                } else {
                    row.for_each(|(z, b)| *z += *b);
                }
            }
            Some(b.ghost())
        }
        None => {
            if relu {
                z.iter_mut().for_each(|z| *z = relu_of(*z));
            }
            None
        }
    };
    let mut out = dev.zeros_like(&(m, n));
    out.copy_from(&z);
    let out_ghost = out.ghost();
    // The ReLU mask: the output itself (y > 0 iff z > 0).
    let activation = relu.then_some(z);
    tape.add_backward_op(move |grads| {
        with_scratch::<E, _>(m * n, |dz| -> Result<(), CpuError> {
            dz.copy_from_slice(&host::<E>(grads.get_or_alloc_mut(&out_ghost)?)[..m * n]);
            if let Some(y) = &activation {
                let zero = E::default();
                dz.iter_mut()
                    .zip(y.iter())
                    .for_each(|(g, y)| *g = if *y > zero { *g } else { zero });
            }
            if let Some(b) = &bias {
                let db = host::<E>(grads.get_or_alloc_mut(b)?);
                for row in dz.chunks_exact(n.max(1)) {
                    db.iter_mut().zip(row).for_each(|(d, g)| *d += *g);
                }
            }
            let dz = View::new(&*dz, m, n);
            for part in &row_parts {
                let k = part.k;
                // dw += xᵀ · dz
                let dw = host::<E>(grads.get_or_alloc_mut(&part.weight)?);
                matmul_into(dw, View::new(&part.rows, m, k).t(), dz, true);
                if let Some(x) = &part.grad_target {
                    // dx += dz · wᵀ
                    let w_t = View::new(&part.weight_host, k, n).t();
                    matmul_into(host::<E>(grads.get_or_alloc_mut(x)?), dz, w_t, true);
                }
            }
            if let Some(block) = &block {
                windows_backward(block, dz, grads)?;
            }
            Ok(())
        })
    });
    out.put_tape(tape)
}

/// The host values of a weight: its mirror where the network keeps one, else a copy.
fn host_weight<E: Dtype>(
    w: &Tensor<(usize, usize), E, Cpu>,
    mirror: Option<HostMirror<E>>,
) -> HostData<E>
where
    Cpu: Device<E>,
{
    let len = w.shape().num_elements();
    match mirror {
        Some(mirror) => {
            assert_eq!(mirror.len(), len, "host copy of a {:?} weight", w.shape());
            HostData::Shared(mirror)
        }
        None => {
            let mut copy = Pooled::<E>::new(len);
            w.copy_into(&mut copy);
            HostData::Pooled(copy)
        }
    }
}

/// Builds the [`WindowsBlock`] of a layer's window inputs on the kernel [`conv_kernel`]
/// chooses: im2col columns of every image batch (parallel over samples) and the weight blocks
/// stacked (a single block is used as it is), or their Winograd transforms.
fn windows_block<E: Dtype>(windows: Vec<WindowInput<E>>, n: usize) -> WindowsBlock<E>
where
    Cpu: Device<E>,
{
    let (b, h, w, _) = *windows[0].image.shape();
    let pixels = h * w;
    let mut groups = Vec::with_capacity(windows.len());
    let mut images = Vec::with_capacity(windows.len());
    let mut weight_blocks = Vec::with_capacity(windows.len());
    let mut k = 0;
    for WindowInput {
        image: x,
        weight,
        weight_host,
        needs_grad,
    } in windows
    {
        let (xb, xh, xw, c) = *x.shape();
        assert_eq!(
            (xb, xh, xw),
            (b, h, w),
            "window inputs of one layer differ in size"
        );
        let mut image = Pooled::<E>::new(b * pixels * c);
        x.copy_into(&mut image);
        images.push(image);
        weight_blocks.push(weight_host);
        groups.push(WindowGroup {
            grad_target: needs_grad.then_some(x),
            weight,
            channels: c,
            offset: k,
        });
        k += 9 * c;
    }
    let scheme = match conv_kernel() {
        ConvKernel::Im2col => None,
        ConvKernel::WinogradF2 => Some(winograd::Kind::F2),
        ConvKernel::WinogradF4 => Some(winograd::Kind::F4),
        ConvKernel::Auto => (k / 9 >= WINOGRAD_MIN_CHANNELS).then_some(AUTO_SCHEME),
    };
    // Winograd's fractions need a float type (the networks are f32 or f64).
    let is_float = E::from_f64(0.5).is_some_and(|half| half + half != E::default());
    let size = (b, h, w);
    if let (Some(scheme), true) = (scheme, is_float) {
        let transformed = winograd::transform(scheme, &groups, images, &weight_blocks, size, n);
        return WindowsBlock {
            groups,
            kernel: BlockKernel::Winograd(transformed),
            size,
        };
    }
    let mut cols = Pooled::<E>::new(b * pixels * k);
    if b * pixels * k > 0 {
        cols.par_chunks_mut(pixels * k)
            .enumerate()
            .for_each(|(sample, cols)| {
                for (group, image) in groups.iter().zip(&images) {
                    let c = group.channels;
                    let img = &image[sample * pixels * c..(sample + 1) * pixels * c];
                    im2col_sample(img, &mut cols[group.offset..], h, w, c, k);
                }
            });
    }
    let weights = if weight_blocks.len() == 1 {
        weight_blocks.pop().expect("one block")
    } else {
        let mut stacked = Pooled::<E>::new(k * n);
        for (group, block) in groups.iter().zip(&weight_blocks) {
            let rows = group.offset * n..(group.offset + 9 * group.channels) * n;
            stacked[rows].copy_from_slice(block);
        }
        HostData::Pooled(stacked)
    };
    WindowsBlock {
        groups,
        kernel: BlockKernel::Im2col { cols, weights, k },
        size,
    }
}

/// The backward pass of a [`WindowsBlock`] given the masked output gradient `dz`. On im2col:
/// each group's weight gradient from its columns, then (if any group needs one) the gradient
/// of all the columns in one product, added back onto each group's pixels.
fn windows_backward<E: Dtype>(
    block: &WindowsBlock<E>,
    dz: View<E>,
    grads: &mut Gradients<E, Cpu>,
) -> Result<(), CpuError>
where
    Cpu: Device<E>,
{
    let (cols, weights, k) = match &block.kernel {
        BlockKernel::Im2col { cols, weights, k } => (cols, weights, *k),
        BlockKernel::Winograd(t) => return winograd::backward(t, &block.groups, dz.data, grads),
    };
    let (b, h, w) = block.size;
    let (m, n) = (b * h * w, dz.cols);
    for group in &block.groups {
        // dw += colsᵀ · dz, the group's columns read in place.
        let cols = View {
            data: &cols[group.offset..],
            rows: m,
            cols: 9 * group.channels,
            rs: k,
            cs: 1,
        };
        let dw = host::<E>(grads.get_or_alloc_mut(&group.weight)?);
        matmul_into(dw, cols.t(), dz, true);
    }
    if block.groups.iter().all(|g| g.grad_target.is_none()) || m * k == 0 {
        return Ok(());
    }
    with_scratch::<E, _>(m * k, |grad_cols| {
        // d cols = dz · wᵀ
        matmul_into(grad_cols, dz, View::new(weights, k, n).t(), false);
        for group in &block.groups {
            let Some(x) = &group.grad_target else {
                continue;
            };
            let c = group.channels;
            if c == 0 {
                continue;
            }
            let grad_in = host::<E>(grads.get_or_alloc_mut(x)?);
            grad_in
                .par_chunks_mut(h * w * c)
                .zip(grad_cols.par_chunks(h * w * k))
                .for_each(|(g_in, g_cols)| {
                    col2im_sample(&g_cols[group.offset..], g_in, h, w, c, k)
                });
        }
        Ok(())
    })
}

thread_local! {
    /// Buffers [`Pooled`] hands out, per element type, returned when their owner drops.
    static POOL: RefCell<HashMap<TypeId, Box<dyn Any>>> = RefCell::new(HashMap::new());
}

/// A host buffer from this thread's pool, returned to it on drop (so nested uses never
/// share one). [`dense`] also keeps its host copies from the forward to the backward pass
/// in these: fresh allocations of megabytes every step would cost page faults, and a
/// training step needs the same sizes every time.
struct Pooled<E: Dtype> {
    /// Never shorter than `len`. A buffer keeps its length when reused for fewer elements,
    /// so it is not filled again each time it serves a larger request (the kernels of one
    /// step ask for many sizes; refilling cost 4% of a CNN step).
    buf: Vec<E>,
    len: usize,
}

impl<E: Dtype> Pooled<E> {
    /// A buffer of `len` elements (contents unspecified: the caller overwrites them).
    fn new(len: usize) -> Self {
        let key = TypeId::of::<E>();
        let mut buf = POOL
            .with(|pool| {
                let mut pool = pool.borrow_mut();
                let free = pool.get_mut(&key)?.downcast_mut::<Vec<Vec<E>>>()?;
                // The smallest buffer that fits, else the largest (it grows).
                let fit = (0..free.len())
                    .filter(|&i| free[i].capacity() >= len)
                    .min_by_key(|&i| free[i].capacity())
                    .or_else(|| (0..free.len()).max_by_key(|&i| free[i].capacity()))?;
                Some(free.swap_remove(fit))
            })
            .unwrap_or_default();
        if buf.len() < len {
            buf.resize(len, E::default());
        }
        Pooled { buf, len }
    }
}

impl<E: Dtype> Drop for Pooled<E> {
    fn drop(&mut self) {
        let buf = std::mem::take(&mut self.buf);
        // During thread teardown the pool may be gone; the buffer is then simply freed.
        let _ = POOL.try_with(|pool| {
            pool.borrow_mut()
                .entry(TypeId::of::<E>())
                .or_insert_with(|| Box::new(Vec::<Vec<E>>::new()))
                .downcast_mut::<Vec<Vec<E>>>()
                .expect("the pool is keyed by element type")
                .push(buf)
        });
    }
}

/// Host values a kernel reads: its own pooled copy or a shared host mirror.
enum HostData<E: Dtype> {
    Pooled(Pooled<E>),
    Shared(HostMirror<E>),
}

impl<E: Dtype> std::ops::Deref for HostData<E> {
    type Target = [E];
    fn deref(&self) -> &[E] {
        match self {
            HostData::Pooled(p) => p,
            HostData::Shared(s) => s,
        }
    }
}

impl<E: Dtype> std::ops::Deref for Pooled<E> {
    type Target = [E];
    fn deref(&self) -> &[E] {
        &self.buf[..self.len]
    }
}

impl<E: Dtype> std::ops::DerefMut for Pooled<E> {
    fn deref_mut(&mut self) -> &mut [E] {
        &mut self.buf[..self.len]
    }
}

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
    {
        p.par_chunks_mut(CHUNK)
            .zip(velocity.par_chunks_mut(CHUNK))
            .zip(grad.par_chunks(CHUNK))
            .for_each(|((p, v), g)| {
                // One loop per configuration, so each compiles to straight-line SIMD.
                let step = |p: &mut E, g: E, v: &mut E| {
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
                };
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
                        for ((p, g), v) in p.iter_mut().zip(g).zip(v.iter_mut()) {
                            step(p, *g, v);
                        }
                    }
                }
            });
    }
    param.copy_from(p);
}

/// The host slice behind a CPU gradient buffer. (A separate function: in generic code bounded
/// by `Cpu: Device<E>`, the buffer type stays opaque.)
fn host<E: Dtype>(v: &mut <Cpu as Storage<E>>::Vec) -> &mut [E] {
    v
}

/// [`host`], read-only.
fn host_ref<E: Dtype>(v: &<Cpu as Storage<E>>::Vec) -> &[E] {
    v
}

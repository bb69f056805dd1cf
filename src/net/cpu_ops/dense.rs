//! The fused dense layer on dfdx's tape: every input (rows, or the 3x3 windows of an image
//! batch) times its weight block, accumulated in place, bias and ReLU, and its backward pass;
//! and which kernel (im2col or Winograd) computes the windows.

use dfdx::prelude::*;
use rayon::prelude::*;

use super::elementwise::mask_by_output;
use super::gemm::{matmul_into, View};
use super::memory::{host, with_scratch, HostData, Pooled};
use super::windows::{col2im_sample, im2col_sample, Layout, WindowGroup};
use super::winograd;
use crate::net::ops::{DenseInput, DenseSource, HostMirror, Images};

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
    stride: usize,
    weight: Tensor<(usize, usize), E, Cpu>,
    weight_host: HostData<E>,
    needs_grad: bool,
}

/// Every 3x3-windows input of a layer, prepared for one of the two kernels.
struct WindowsBlock<E: Dtype> {
    groups: Vec<WindowGroup<E>>,
    kernel: BlockKernel<E>,
    /// `(batch, height, width)` of the input images, the same for every group.
    size: (usize, usize, usize),
    /// The convolution's stride (Winograd only at 1).
    stride: usize,
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
    let DenseForward {
        z,
        mut tape,
        backward,
    } = dense_forward(inputs, bias, relu);
    let (m, n) = (backward.m, backward.n);
    let dev = backward.dev.clone();
    let mut out = dev.zeros_like(&(m, n));
    out.copy_from(&z);
    let out_ghost = out.ghost();
    // The ReLU mask: the output itself (y > 0 iff z > 0).
    let activation = relu.then_some(z);
    tape.add_backward_op(move |grads| {
        // The output's gradient is moved out of the store, masked in place (nothing else reads
        // it) and put back after, so the store can lend the inputs' gradients meanwhile: no
        // copy of it.
        let mut dz_buf = Storage::<E>::try_alloc_len(&dev, 0)?;
        std::mem::swap(&mut dz_buf, grads.get_or_alloc_mut(&out_ghost)?);
        let dz = &mut host::<E>(&mut dz_buf)[..m * n];
        if let Some(y) = &activation {
            mask_by_output(dz, &y[..m * n]);
        }
        let result = backward.run(dz, grads);
        std::mem::swap(&mut dz_buf, grads.get_or_alloc_mut(&out_ghost)?);
        result
    });
    out.put_tape(tape)
}

/// A dense layer's forward pass, off the tape: its output `[m, n]` (bias and ReLU applied
/// where asked) in a host buffer, the inputs' tapes merged, and what the backward pass needs.
/// [`dense`] puts the output in a tensor; batch norm after a layer reads it in place
/// ([`super::norm::dense_batch_norm`]).
pub(super) struct DenseForward<E: Dtype, T> {
    pub z: Pooled<E>,
    pub tape: T,
    pub backward: DenseBackward<E>,
}

/// What a dense layer's backward pass needs: the host copies of its inputs and weights made
/// in the forward pass, and the tensors whose gradients it adds to.
pub(super) struct DenseBackward<E: Dtype> {
    row_parts: Vec<RowsPart<E>>,
    block: Option<WindowsBlock<E>>,
    /// The bias (a tensor sharing its data: dfdx does not export ghosts), if any.
    bias: Option<Tensor<(usize,), E, Cpu>>,
    pub m: usize,
    pub n: usize,
    pub dev: Cpu,
}

/// The forward pass of [`dense`] into a host buffer.
pub(super) fn dense_forward<E: Dtype, T: Tape<E, Cpu> + Merge<T>>(
    inputs: Vec<DenseInput<E, Cpu, T>>,
    bias: Option<Tensor<(usize,), E, Cpu, T>>,
    relu: bool,
) -> DenseForward<E, T>
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
            DenseSource::Windows3x3(x, _, stride) => {
                let (x, x_tape) = x.split_tape();
                tape = tape.merge(x_tape);
                windows.push(WindowInput {
                    image: x,
                    stride,
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
            Some(b)
        }
        None => {
            if relu {
                z.iter_mut().for_each(|z| *z = relu_of(*z));
            }
            None
        }
    };
    DenseForward {
        z,
        tape,
        backward: DenseBackward {
            row_parts,
            block,
            bias,
            m,
            n,
            dev,
        },
    }
}

impl<E: Dtype> DenseBackward<E>
where
    Cpu: Device<E>,
{
    /// Adds the gradients of the bias, every weight and every input that needs one, given the
    /// gradient `dz` of the layer's output before its ReLU (`[m, n]`, masked by the caller).
    pub(super) fn run(&self, dz: &[E], grads: &mut Gradients<E, Cpu>) -> Result<(), CpuError> {
        let (m, n) = (self.m, self.n);
        let dz = View::new(dz, m, n);
        if let Some(b) = &self.bias {
            let db = host::<E>(grads.get_or_alloc_mut(b)?);
            for row in dz.data.chunks_exact(n.max(1)) {
                db.iter_mut().zip(row).for_each(|(d, g)| *d += *g);
            }
        }
        for part in &self.row_parts {
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
        if let Some(block) = &self.block {
            windows_backward(block, dz, grads)?;
        }
        Ok(())
    }
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
    let stride = windows[0].stride;
    let pixels = h * w;
    // Output pixels per sample (all of them at stride 1).
    let windows_per_sample = h.div_ceil(stride) * w.div_ceil(stride);
    let mut groups = Vec::with_capacity(windows.len());
    let mut images = Vec::with_capacity(windows.len());
    let mut weight_blocks = Vec::with_capacity(windows.len());
    let mut k = 0;
    for WindowInput {
        image: x,
        stride: group_stride,
        weight,
        weight_host,
        needs_grad,
    } in windows
    {
        let (xb, xh, xw, c) = *x.shape();
        assert_eq!(
            (xb, xh, xw, group_stride),
            (b, h, w, stride),
            "window inputs of one layer differ in size or stride"
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
    }
    // Winograd computes every output pixel: a strided convolution takes im2col, which
    // computes only the kept ones.
    .filter(|_| stride == 1);
    // Winograd's fractions need a float type (the networks are f32 or f64).
    let is_float = E::from_f64(0.5).is_some_and(|half| half + half != E::default());
    let size = (b, h, w);
    if let (Some(scheme), true) = (scheme, is_float) {
        let transformed = winograd::transform(scheme, &groups, images, &weight_blocks, size, n);
        return WindowsBlock {
            groups,
            kernel: BlockKernel::Winograd(transformed),
            size,
            stride,
        };
    }
    let mut cols = Pooled::<E>::new(b * windows_per_sample * k);
    if b * windows_per_sample * k > 0 {
        cols.par_chunks_mut(windows_per_sample * k)
            .enumerate()
            .for_each(|(sample, cols)| {
                for (group, image) in groups.iter().zip(&images) {
                    let c = group.channels;
                    let img = &image[sample * pixels * c..(sample + 1) * pixels * c];
                    let at = Layout {
                        h,
                        w,
                        c,
                        ld: k,
                        stride,
                    };
                    im2col_sample(img, &mut cols[group.offset..], at);
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
        stride,
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
    let stride = block.stride;
    let windows_per_sample = h.div_ceil(stride) * w.div_ceil(stride);
    let (m, n) = (b * windows_per_sample, dz.cols);
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
                .zip(grad_cols.par_chunks(windows_per_sample * k))
                .for_each(|(g_in, g_cols)| {
                    let at = Layout {
                        h,
                        w,
                        c,
                        ld: k,
                        stride,
                    };
                    col2im_sample(&g_cols[group.offset..], g_in, at)
                });
        }
        Ok(())
    })
}

//! Convolution and pooling composed from stable dfdx ops, so they build on stable Rust and
//! run on every dfdx device (dfdx 0.13's own conv2d/pool2d need its `nightly` feature).
//!
//! Images are channels-last, `[batch, height, width, channels]`.
//! - 3x3 "same" convolution: flatten the pixels to rows, append one zero row (the padding),
//!   gather the nine neighbour rows of every pixel (im2col), reshape to
//!   `[batch, pixels, 9 * channels]` and multiply by the `[9 * channels, filters]` weights.
//! - 2x2 max-pool: pad an odd size with -inf, reshape to `[batch, h/2, 2, w/2, 2, channels]`
//!   and take the max over the two window axes.
//!
//! No `slice` anywhere: dfdx 0.13's CPU slice backward overwrites instead of accumulating.
//!
//! On the CPU the im2col step runs as a custom kernel ([`ConvDevice`]); the composed version
//! remains the reference and what other devices run.

use std::sync::atomic::{AtomicBool, Ordering};

use dfdx::prelude::*;

/// A channels-last image batch.
pub type Images<E, D, T = NoneTape> = Tensor<(usize, usize, usize, usize), E, D, T>;

/// For every output pixel (row-major) and every tap of the 3x3 window (row-major), the row of
/// the flattened input to read, or `h * w` (the appended zero row) where the window leaves
/// the image.
pub fn im2col_rows(height: usize, width: usize) -> Vec<usize> {
    let pad = height * width;
    let mut rows = Vec::with_capacity(height * width * 9);
    for y in 0..height as isize {
        for x in 0..width as isize {
            for dy in -1..=1isize {
                for dx in -1..=1isize {
                    let (sy, sx) = (y + dy, x + dx);
                    let inside = sy >= 0 && sx >= 0 && sy < height as isize && sx < width as isize;
                    rows.push(if inside {
                        sy as usize * width + sx as usize
                    } else {
                        pad
                    });
                }
            }
        }
    }
    rows
}

/// The gather index for a batch: [`im2col_rows`] repeated for every sample.
pub fn im2col_index<D: dfdx::tensor::TensorFromVec<usize>>(
    dev: &D,
    batch: usize,
    height: usize,
    width: usize,
) -> Tensor<(usize, usize), usize, D> {
    let rows = im2col_rows(height, width);
    let per = rows.len();
    let mut all = Vec::with_capacity(batch * per);
    for _ in 0..batch {
        all.extend_from_slice(&rows);
    }
    dev.tensor_from_vec(all, (batch, per))
}

/// Device-specific pieces of the network ops: the CPU has custom kernels, other devices
/// use the composed dfdx ops.
pub trait ConvDevice<E: Dtype>: Device<E> {
    /// `[b, h, w, c]` -> `[b, h*w, 9c]`: each pixel's 3x3 neighbourhood, zero outside.
    /// `index` comes from [`im2col_index`] (only the composed version reads it).
    fn im2col3x3<T>(
        x: Images<E, Self, T>,
        index: &Tensor<(usize, usize), usize, Self>,
    ) -> Tensor<(usize, usize, usize), E, Self, T>
    where
        T: Tape<E, Self> + Merge<T> + Merge<NoneTape>;

    /// 2x2 max-pool with stride 2; an odd last row or column pools on its own.
    fn maxpool2<T: Tape<E, Self>>(x: Images<E, Self, T>) -> Images<E, Self, T> {
        maxpool2_composed(x)
    }

    /// `x · w` for network input `x`, which needs no gradient. By default a plain matmul
    /// (whose backward also computes the discarded input gradient).
    fn input_matmul<T>(
        x: Tensor<(usize, usize), E, Self>,
        w: Tensor<(usize, usize), E, Self, T>,
    ) -> Tensor<(usize, usize), E, Self, T>
    where
        T: Tape<E, Self> + Merge<T> + Merge<NoneTape>,
    {
        x.retaped::<T>().matmul(w)
    }
}

/// The composed im2col: append a zero row, gather the nine neighbour rows of every pixel.
pub fn im2col3x3_composed<E, D, T>(
    x: Images<E, D, T>,
    index: &Tensor<(usize, usize), usize, D>,
) -> Tensor<(usize, usize, usize), E, D, T>
where
    E: Dtype,
    D: Device<E>,
    T: Tape<E, D> + Merge<T> + Merge<NoneTape>,
{
    let (b, h, w, c) = *x.shape();
    let zeros = x.device().zeros_like(&(b, 1, c));
    let rows = x.reshape_like(&(b, h * w, c));
    let padded = (rows, zeros).concat_along(Axis::<1>);
    let cols: Tensor<(usize, usize, usize), E, D, T> = padded.gather(index.clone());
    cols.reshape_like(&(b, h * w, 9 * c))
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

impl<E: Dtype> ConvDevice<E> for Cpu
where
    Cpu: Device<E>,
{
    fn im2col3x3<T>(
        x: Images<E, Self, T>,
        index: &Tensor<(usize, usize), usize, Self>,
    ) -> Tensor<(usize, usize, usize), E, Self, T>
    where
        T: Tape<E, Self> + Merge<T> + Merge<NoneTape>,
    {
        if composed_forced() {
            return im2col3x3_composed(x, index);
        }
        super::cpu_ops::im2col3x3(x)
    }

    fn maxpool2<T: Tape<E, Self>>(x: Images<E, Self, T>) -> Images<E, Self, T> {
        if composed_forced() {
            return maxpool2_composed(x);
        }
        super::cpu_ops::maxpool2(x)
    }

    fn input_matmul<T>(
        x: Tensor<(usize, usize), E, Self>,
        w: Tensor<(usize, usize), E, Self, T>,
    ) -> Tensor<(usize, usize), E, Self, T>
    where
        T: Tape<E, Self> + Merge<T> + Merge<NoneTape>,
    {
        if composed_forced() {
            return x.retaped::<T>().matmul(w);
        }
        super::cpu_ops::input_matmul(x, w)
    }
}

#[cfg(feature = "cuda")]
impl<E: Dtype> ConvDevice<E> for Cuda
where
    Cuda: Device<E>,
{
    fn im2col3x3<T>(
        x: Images<E, Self, T>,
        index: &Tensor<(usize, usize), usize, Self>,
    ) -> Tensor<(usize, usize, usize), E, Self, T>
    where
        T: Tape<E, Self> + Merge<T> + Merge<NoneTape>,
    {
        im2col3x3_composed(x, index)
    }
}

/// A matrix of rows (im2col windows, flattened pixels).
type Rows<E, D, T> = Tensor<(usize, usize), E, D, T>;

/// The im2col rows of `x` as `[b*h*w, 9c]`, checking that a weight with `weight_rows` rows
/// fits; also returns `(b, h, w)`.
fn windows<E, D, T>(
    x: Images<E, D, T>,
    weight_rows: usize,
    index: &Tensor<(usize, usize), usize, D>,
) -> (Rows<E, D, T>, (usize, usize, usize))
where
    E: Dtype,
    D: ConvDevice<E>,
    T: Tape<E, D> + Merge<T> + Merge<NoneTape>,
{
    let (b, h, w, c) = *x.shape();
    assert_eq!(
        weight_rows,
        9 * c,
        "conv weight rows must be 9 x input channels"
    );
    // One large matmul over every pixel of the batch parallelises better than b small ones.
    (
        D::im2col3x3(x, index).reshape_like(&(b * h * w, 9 * c)),
        (b, h, w),
    )
}

/// 3x3 "same" convolution without bias: `[b, h, w, c]` x `[9c, f]` -> `[b, h, w, f]`.
/// `index` must come from [`im2col_index`] for the same batch and size.
pub fn conv3x3<E, D, T>(
    x: Images<E, D, T>,
    weight: Tensor<(usize, usize), E, D, T>,
    index: &Tensor<(usize, usize), usize, D>,
) -> Images<E, D, T>
where
    E: Dtype,
    D: ConvDevice<E>,
    T: Tape<E, D> + Merge<T> + Merge<NoneTape>,
{
    let (rows, filters) = *weight.shape();
    let (cols, (b, h, w)) = windows(x, rows, index);
    cols.matmul(weight).reshape_like(&(b, h, w, filters))
}

/// [`conv3x3`] on network input (no gradient for `x`).
pub fn conv3x3_input<E, D, T>(
    x: Images<E, D>,
    weight: Tensor<(usize, usize), E, D, T>,
    index: &Tensor<(usize, usize), usize, D>,
) -> Images<E, D, T>
where
    E: Dtype,
    D: ConvDevice<E>,
    T: Tape<E, D> + Merge<T> + Merge<NoneTape>,
{
    let (rows, filters) = *weight.shape();
    let (cols, (b, h, w)) = windows(x, rows, index);
    D::input_matmul(cols, weight).reshape_like(&(b, h, w, filters))
}

/// [`conv3x3`] built from the composed im2col on any device (the reference the custom
/// kernels are tested against).
pub fn conv3x3_composed<E, D, T>(
    x: Images<E, D, T>,
    weight: Tensor<(usize, usize), E, D, T>,
    index: &Tensor<(usize, usize), usize, D>,
) -> Images<E, D, T>
where
    E: Dtype,
    D: Device<E>,
    T: Tape<E, D> + Merge<T> + Merge<NoneTape>,
{
    let (b, h, w, c) = *x.shape();
    let filters = weight.shape().1;
    let cols = im2col3x3_composed(x, index).reshape_like(&(b * h * w, 9 * c));
    cols.matmul(weight).reshape_like(&(b, h, w, filters))
}

/// 2x2 max-pool with stride 2 on the device's fastest path. Sizes round up: an odd last row
/// or column forms windows of its own (PyTorch's `ceil_mode=True`).
pub fn maxpool2<E: Dtype, D: ConvDevice<E>, T: Tape<E, D>>(x: Images<E, D, T>) -> Images<E, D, T> {
    D::maxpool2(x)
}

/// The composed 2x2 max-pool: pad an odd size with a row or column of -inf (by concat, so
/// it never wins and takes no gradient), reshape and take the max over the window axes.
pub fn maxpool2_composed<E, D, T>(x: Images<E, D, T>) -> Images<E, D, T>
where
    E: Dtype,
    D: Device<E>,
    T: Tape<E, D>,
{
    let (b, h, w, c) = *x.shape();
    let minus_inf = E::from_f64(f64::NEG_INFINITY).expect("a float dtype");
    let x = if h % 2 == 1 {
        let pad = x.device().zeros_like(&(b, 1, w, c)) + minus_inf;
        (x, pad).concat_along(Axis::<1>)
    } else {
        x
    };
    let x = if w % 2 == 1 {
        let pad = x.device().zeros_like(&(b, h.div_ceil(2) * 2, 1, c)) + minus_inf;
        (x, pad).concat_along(Axis::<2>)
    } else {
        x
    };
    let (oh, ow) = (h.div_ceil(2), w.div_ceil(2));
    x.reshape_like(&(b, oh, 2, ow, 2, c))
        .max::<(usize, usize, usize, usize), Axes2<2, 4>>()
}

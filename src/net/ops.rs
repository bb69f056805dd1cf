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
//! A layer (the sum of its inputs times their weight blocks, bias, ReLU) is
//! [`NetDevice::dense`]. On the CPU, layers, pooling and the SGD step run as custom kernels
//! ([`super::cpu_ops`]); the composed versions remain the reference and what other devices
//! run.

use dfdx::prelude::*;
use dfdx::tensor_ops::SgdConfig;

/// A channels-last image batch.
pub type Images<E, D, T = NoneTape> = Tensor<(usize, usize, usize, usize), E, D, T>;

/// For every output pixel (row-major) and every tap of the 3x3 window (row-major), the row of
/// the flattened input to read, or `h * w` (the appended zero row) where the window leaves
/// the image.
pub fn im2col_rows(height: usize, width: usize) -> Vec<usize> {
    im2col_rows_strided(height, width, 1)
}

/// [`im2col_rows`] for a convolution of stride `stride` (padding 1, as PyTorch's): the windows
/// centred on rows and columns 0, stride, 2·stride, ..., `ceil(h/stride) x ceil(w/stride)` of
/// them.
pub fn im2col_rows_strided(height: usize, width: usize, stride: usize) -> Vec<usize> {
    let pad = height * width;
    let mut rows = Vec::with_capacity(height.div_ceil(stride) * width.div_ceil(stride) * 9);
    for y in (0..height as isize).step_by(stride) {
        for x in (0..width as isize).step_by(stride) {
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
    im2col_index_strided(dev, batch, height, width, 1)
}

/// [`im2col_index`] for a convolution of stride `stride` ([`im2col_rows_strided`]).
pub fn im2col_index_strided<D: dfdx::tensor::TensorFromVec<usize>>(
    dev: &D,
    batch: usize,
    height: usize,
    width: usize,
    stride: usize,
) -> Tensor<(usize, usize), usize, D> {
    let rows = im2col_rows_strided(height, width, stride);
    let per = rows.len();
    let mut all = Vec::with_capacity(batch * per);
    for _ in 0..batch {
        all.extend_from_slice(&rows);
    }
    dev.tensor_from_vec(all, (batch, per))
}

/// For every pixel of a stride-2 subsampling (rows and columns 0, 2, 4, ..., row-major) of an
/// `height x width` image, the flattened row it reads, repeated for every sample: `[batch,
/// ceil(h/2) * ceil(w/2)]`.
pub fn subsample_index<D: dfdx::tensor::TensorFromVec<usize>>(
    dev: &D,
    batch: usize,
    height: usize,
    width: usize,
) -> Tensor<(usize, usize), usize, D> {
    let rows: Vec<usize> = (0..height)
        .step_by(2)
        .flat_map(|y| (0..width).step_by(2).map(move |x| y * width + x))
        .collect();
    let per = rows.len();
    let mut all = Vec::with_capacity(batch * per);
    for _ in 0..batch {
        all.extend_from_slice(&rows);
    }
    dev.tensor_from_vec(all, (batch, per))
}

/// Every other pixel of every other row, `[b, h, w, c]` -> `[b, ceil(h/2), ceil(w/2), c]`:
/// option A's shortcut (the pixels a stride-2 convolution keeps). A gather (whose backward
/// adds), not a slice. `index` comes from [`subsample_index`] for the same batch and size.
pub fn subsample2<E, D, T>(
    x: Images<E, D, T>,
    index: &Tensor<(usize, usize), usize, D>,
) -> Images<E, D, T>
where
    E: Dtype,
    D: Device<E>,
    T: Tape<E, D>,
{
    let (b, h, w, c) = *x.shape();
    let picked: Tensor<(usize, usize, usize), E, D, T> =
        x.reshape_like(&(b, h * w, c)).gather(index.clone());
    picked.reshape_like(&(b, h.div_ceil(2), w.div_ceil(2), c))
}

/// Device-specific pieces of the network ops: the CPU has custom kernels, other devices
/// use the composed dfdx ops.
pub trait NetDevice<E: Dtype>: Device<E> {
    /// Whether the network should keep a [`HostMirror`] of every parameter for this
    /// device's kernels (the CPU's: dfdx gives no direct access to a tensor's buffer, so
    /// every read would be a copy).
    fn host_mirrors() -> bool {
        false
    }

    /// One SGD step on a parameter; by default dfdx's kernel. `mirror` is the parameter's
    /// host copy, where the device keeps one: the step must leave it equal to the parameter.
    fn sgd_update<S: Shape>(
        cfg: &SgdConfig,
        param: &mut Tensor<S, E, Self>,
        velocity: &mut <Self as Storage<E>>::Vec,
        grad: &<Self as Storage<E>>::Vec,
        mirror: &mut Option<HostMirror<E>>,
    ) -> Result<(), Self::Err> {
        *mirror = None;
        cfg.try_update(param, velocity, grad)
    }

    /// 2x2 max-pool with stride 2; an odd last row or column pools on its own.
    fn maxpool2<T: Tape<E, Self>>(x: Images<E, Self, T>) -> Images<E, Self, T> {
        maxpool2_composed(x)
    }

    /// The layer `sum_i x_i · w_i (+ bias) (then ReLU)`: MLP layers, 3x3 convolutions (as
    /// im2col windows times weights), the classifier. By default composed from dfdx ops
    /// ([`dense_composed`]).
    fn dense<T>(
        inputs: Vec<DenseInput<E, Self, T>>,
        bias: Option<Tensor<(usize,), E, Self, T>>,
        relu: bool,
    ) -> Tensor<(usize, usize), E, Self, T>
    where
        T: Tape<E, Self> + Merge<T> + Merge<NoneTape>,
    {
        dense_composed(inputs, bias, relu)
    }

    /// Batch norm in training mode on `[rows, units]`: per unit, `gamma · (z - mean) /
    /// sqrt(var + eps) + beta` with the rows' mean and biased variance, which come back too (for
    /// the running estimates), plus `residual` where given (a residual block's shortcut), then
    /// ReLU when `relu`. By default composed from dfdx ops ([`batch_norm_composed`]).
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
        batch_norm_composed(z, gamma, beta, eps, relu, residual)
    }

    /// [`NetDevice::dense`] without bias or ReLU, then [`NetDevice::batch_norm`]: a
    /// normalised layer in training mode. The CPU fuses the two (batch norm reads the layer's
    /// output where the layer wrote it).
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
        let z = Self::dense(inputs, None, false);
        Self::batch_norm(z, gamma, beta, eps, relu, residual)
    }
}

/// Batch norm's output, and the batch's mean and biased variance per unit.
pub type Normalised<E, D, T> = (Tensor<(usize, usize), E, D, T>, Vec<f64>, Vec<f64>);

/// [`NetDevice::batch_norm`] from dfdx ops: the mean and standard deviation over the rows,
/// broadcast back; what CUDA runs and what the CPU kernel is tested against.
pub fn batch_norm_composed<E, D, T>(
    z: Tensor<(usize, usize), E, D, T>,
    gamma: Tensor<(usize,), E, D, T>,
    beta: Tensor<(usize,), E, D, T>,
    eps: f64,
    relu: bool,
    residual: Option<Tensor<(usize, usize), E, D, T>>,
) -> Normalised<E, D, T>
where
    E: Dtype,
    D: Device<E>,
    T: Tape<E, D> + Merge<T> + Merge<NoneTape>,
{
    let shape = *z.shape();
    let mean = z.with_empty_tape().mean::<(usize,), Axis<0>>();
    let std = z.with_empty_tape().stddev::<(usize,), Axis<0>>(eps);
    let host = |t: &Tensor<(usize,), E, D, T>| -> Vec<f64> {
        t.as_vec()
            .into_iter()
            .map(|v| v.to_f64().unwrap_or(f64::NAN))
            .collect()
    };
    let batch_mean = host(&mean);
    let batch_var = host(&std).into_iter().map(|s| s * s - eps).collect();
    let xhat =
        (z - mean.broadcast_like::<_, Axis<0>>(&shape)) / std.broadcast_like::<_, Axis<0>>(&shape);
    let mut y = xhat * gamma.broadcast_like::<_, Axis<0>>(&shape)
        + beta.broadcast_like::<_, Axis<0>>(&shape);
    if let Some(r) = residual {
        y = y + r;
    }
    (if relu { y.relu() } else { y }, batch_mean, batch_var)
}

/// What a dense layer multiplies by a weight block: rows as they are, or the 3x3 windows of
/// an image batch (a "same" convolution; the image rows are the batch's pixels).
pub enum DenseSource<E: Dtype, D: Device<E>, T> {
    /// `[rows, k]`.
    Rows(Tensor<(usize, usize), E, D, T>),
    /// `[b, h, w, c]`, read as `[b*h*w, 9c]`, or at stride `s` (the third field) as
    /// `[b*ceil(h/s)*ceil(w/s), 9c]`; the gather index from [`im2col_index_strided`] for the
    /// same batch, size and stride (only the composed version reads it).
    Windows3x3(Images<E, D, T>, Tensor<(usize, usize), usize, D>, usize),
}

impl<E: Dtype, D: Device<E>, T> DenseSource<E, D, T> {
    /// The matrix shape this source presents: `(rows, k)`.
    pub fn matrix_shape(&self) -> (usize, usize) {
        match self {
            DenseSource::Rows(x) => *x.shape(),
            DenseSource::Windows3x3(x, _, stride) => {
                let (b, h, w, c) = *x.shape();
                (b * h.div_ceil(*stride) * w.div_ceil(*stride), 9 * c)
            }
        }
    }
}

/// One input of a dense layer: a source (`[rows, k]`) times its weight block `w` (`[k, n]`).
pub struct DenseInput<E: Dtype, D: Device<E>, T> {
    pub x: DenseSource<E, D, T>,
    pub w: Tensor<(usize, usize), E, D, T>,
    /// False for network input: the CPU kernel then skips computing its gradient.
    pub x_needs_grad: bool,
    /// The weight's values on the host, where the device keeps them ([`HostMirror`]): the
    /// CPU kernel then reads them instead of copying the tensor out.
    pub w_host: Option<HostMirror<E>>,
}

/// A host copy of a parameter's values that equals the parameter tensor (the network keeps
/// the two in step, see `Network::host_weight`). Shared: a layer's backward pass keeps the
/// values of its forward pass even if the optimiser writes a new copy meanwhile.
pub type HostMirror<E> = std::sync::Arc<Vec<E>>;

impl<E: Dtype, D: Device<E>, T> DenseInput<E, D, T> {
    /// Rows whose gradient is needed.
    pub fn new(x: Tensor<(usize, usize), E, D, T>, w: Tensor<(usize, usize), E, D, T>) -> Self {
        Self {
            x: DenseSource::Rows(x),
            w,
            x_needs_grad: true,
            w_host: None,
        }
    }

    /// A 3x3 "same" convolution of `x` (`[b, h, w, c]`) by `w` (`[9c, filters]`).
    pub fn conv3x3(
        x: Images<E, D, T>,
        w: Tensor<(usize, usize), E, D, T>,
        index: &Tensor<(usize, usize), usize, D>,
    ) -> Self {
        assert_eq!(
            w.shape().0,
            9 * x.shape().3,
            "conv weight rows must be 9 x input channels"
        );
        Self {
            x: DenseSource::Windows3x3(x, index.clone(), 1),
            w,
            x_needs_grad: true,
            w_host: None,
        }
    }

    /// Reads a window source at stride `stride` (padding 1, as PyTorch's) with `index` from
    /// [`im2col_index_strided`] for that stride: only the kept output pixels are computed.
    /// Rows sources stay as they are.
    pub fn strided(self, stride: usize, index: &Tensor<(usize, usize), usize, D>) -> Self {
        let x = match self.x {
            DenseSource::Windows3x3(x, _, _) => {
                let (_, h, w, _) = *x.shape();
                assert_eq!(
                    index.shape().1,
                    h.div_ceil(stride) * w.div_ceil(stride) * 9,
                    "im2col index for a {h}x{w} image at stride {stride}"
                );
                DenseSource::Windows3x3(x, index.clone(), stride)
            }
            rows => rows,
        };
        Self { x, ..self }
    }
}

impl<E: Dtype, D: Device<E>, T> DenseInput<E, D, T> {
    /// Adds the weight's host copy, if the device keeps one.
    pub fn with_host_weight(self, w_host: Option<HostMirror<E>>) -> Self {
        Self { w_host, ..self }
    }
}

impl<E: Dtype, D: Device<E>, T: Tape<E, D>> DenseInput<E, D, T> {
    /// Network input rows, which have no tape and need no gradient.
    pub fn network_input(
        x: Tensor<(usize, usize), E, D>,
        w: Tensor<(usize, usize), E, D, T>,
    ) -> Self {
        Self {
            x: DenseSource::Rows(x.retaped::<T>()),
            w,
            x_needs_grad: false,
            w_host: None,
        }
    }

    /// [`DenseInput::conv3x3`] of the network input image.
    pub fn conv3x3_network_input(
        x: Images<E, D>,
        w: Tensor<(usize, usize), E, D, T>,
        index: &Tensor<(usize, usize), usize, D>,
    ) -> Self {
        Self {
            x_needs_grad: false,
            ..Self::conv3x3(x.retaped::<T>(), w, index)
        }
    }
}

/// [`NetDevice::dense`] from dfdx ops: a matmul per input, summed, plus the broadcast bias,
/// then ReLU. (It computes the gradient of every input, needed or not.)
pub fn dense_composed<E, D, T>(
    inputs: Vec<DenseInput<E, D, T>>,
    bias: Option<Tensor<(usize,), E, D, T>>,
    relu: bool,
) -> Tensor<(usize, usize), E, D, T>
where
    E: Dtype,
    D: Device<E>,
    T: Tape<E, D> + Merge<T> + Merge<NoneTape>,
{
    let mut sum: Option<Tensor<(usize, usize), E, D, T>> = None;
    for DenseInput { x, w, .. } in inputs {
        let rows = match x {
            DenseSource::Rows(x) => x,
            DenseSource::Windows3x3(x, index, _) => {
                let (b, c) = (x.shape().0, x.shape().3);
                let windows = index.shape().1 / 9;
                im2col3x3_composed(x, &index).reshape_like(&(b * windows, 9 * c))
            }
        };
        let y = rows.matmul(w);
        sum = Some(match sum {
            None => y,
            Some(s) => s + y,
        });
    }
    let mut z = sum.expect("a dense layer has at least one input");
    if let Some(b) = bias {
        let shape = *z.shape();
        z = z + b.broadcast_like::<_, Axis<0>>(&shape);
    }
    if relu {
        z.relu()
    } else {
        z
    }
}

/// The composed im2col: append a zero row, gather the nine neighbour rows of every output
/// pixel (`[b, windows, 9c]`).
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
    // One window per output pixel: all of them, or the strided ones the index picks.
    cols.reshape_like(&(b, index.shape().1 / 9, 9 * c))
}

#[cfg(feature = "cuda")]
impl<E: Dtype> NetDevice<E> for Cuda where Cuda: Device<E> {}

/// 3x3 "same" convolution without bias: `[b, h, w, c]` x `[9c, f]` -> `[b, h, w, f]`.
/// `index` must come from [`im2col_index`] for the same batch and size.
pub fn conv3x3<E, D, T>(
    x: Images<E, D, T>,
    weight: Tensor<(usize, usize), E, D, T>,
    index: &Tensor<(usize, usize), usize, D>,
) -> Images<E, D, T>
where
    E: Dtype,
    D: NetDevice<E>,
    T: Tape<E, D> + Merge<T> + Merge<NoneTape>,
{
    let (b, h, w, _) = *x.shape();
    let filters = weight.shape().1;
    D::dense(vec![DenseInput::conv3x3(x, weight, index)], None, false)
        .reshape_like(&(b, h, w, filters))
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
pub fn maxpool2<E: Dtype, D: NetDevice<E>, T: Tape<E, D>>(x: Images<E, D, T>) -> Images<E, D, T> {
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

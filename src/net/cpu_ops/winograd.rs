//! The 3x3 convolution as Winograd's minimal filtering F(m x m, 3x3) (Lavin and Gray, 2015):
//! each m x m block of outputs comes from an (m + 2) x (m + 2) input tile, transformed once,
//! times the transformed weights. The three products of a training step (output, weight
//! gradient, input gradient) become `(m + 2)²` matrix products of `[tiles, C] x [C, n]`
//! instead of one of `[m² tiles, 9C] x [9C, n]`: 2.25x fewer multiply-adds for F(2x2, 3x3),
//! 4x fewer for F(4x4, 3x3). im2col's products already ran at about half the FMA peak of a
//! 2-core Zen 4 (92-117 of about 190 GFLOP/s), so fewer multiply-adds was the way left to go
//! much faster.
//!
//! With `d` an input tile, `g` a 3x3 filter and `Y` the outputs:
//! `V = Bᵀ d B`, `U = G g Gᵀ`, `M = Σ_channels U ⊙ V`, `Y = Aᵀ M A`. The backward pass is the
//! adjoint of each step: `dM = A dY Aᵀ`, `dU = Σ_tiles V ⊙ dM` (so `dg = Gᵀ dU G`) and
//! `dV = Σ_outputs U ⊙ dM` (so `dd = B dV Bᵀ`, added onto the overlapping tiles' pixels).
//! Frequency `ξ = S i + j` is row `i`, column `j` of a transformed tile (`S = m + 2`).
//!
//! Checked against the im2col kernel and the composed ops, and through whole networks against
//! finite differences (`tests/gradients.rs`).

use dfdx::prelude::*;
use multiversion::multiversion;
use rayon::prelude::*;

use super::gemm::{gemm_serial, View};
use super::memory::{host, HostData, Pooled};
use super::windows::WindowGroup;

/// A minimal filtering algorithm F(M x M, 3x3), on input tiles of side `S = M + 2`: its
/// matrices, and each 1-D transform and its adjoint written out (the unit tests check them
/// against the matrices: a generic matrix product was not folded into these by the compiler
/// and ran the layer at half the speed).
pub(super) trait Scheme<const S: usize, const M: usize>: 'static {
    // The matrices are the reference the written-out transforms are tested against.
    /// `Bᵀ`: an input tile's rows and columns to frequencies.
    #[cfg_attr(not(test), allow(dead_code))]
    const BT: [[f64; S]; S];
    /// `G`: a filter's rows and columns to frequencies.
    #[cfg_attr(not(test), allow(dead_code))]
    const G: [[f64; 3]; S];
    /// `Aᵀ`: frequencies to outputs.
    #[cfg_attr(not(test), allow(dead_code))]
    const AT: [[f64; S]; M];
    /// `Bᵀ x`.
    fn bt<E: Dtype>(x: [E; S]) -> [E; S];
    /// `B x`.
    fn b<E: Dtype>(x: [E; S]) -> [E; S];
    /// `G x`.
    fn g<E: Dtype>(x: [E; 3]) -> [E; S];
    /// `Gᵀ x`.
    fn gt<E: Dtype>(x: [E; S]) -> [E; 3];
    /// `Aᵀ x`.
    fn at<E: Dtype>(x: [E; S]) -> [E; M];
    /// `A x`.
    fn a<E: Dtype>(x: [E; M]) -> [E; S];
}

fn k<E: Dtype>(v: f64) -> E {
    E::from_f64(v).expect("a float dtype")
}

/// F(2x2, 3x3): 16 products, exact in binary floating point (coefficients 0, ±1, ±1/2).
pub(super) struct F2;

impl Scheme<4, 2> for F2 {
    const BT: [[f64; 4]; 4] = [
        [1.0, 0.0, -1.0, 0.0],
        [0.0, 1.0, 1.0, 0.0],
        [0.0, -1.0, 1.0, 0.0],
        [0.0, 1.0, 0.0, -1.0],
    ];
    const G: [[f64; 3]; 4] = [
        [1.0, 0.0, 0.0],
        [0.5, 0.5, 0.5],
        [0.5, -0.5, 0.5],
        [0.0, 0.0, 1.0],
    ];
    const AT: [[f64; 4]; 2] = [[1.0, 1.0, 1.0, 0.0], [0.0, 1.0, -1.0, -1.0]];
    #[inline(always)]
    fn bt<E: Dtype>([x0, x1, x2, x3]: [E; 4]) -> [E; 4] {
        [x0 - x2, x1 + x2, x2 - x1, x1 - x3]
    }
    #[inline(always)]
    fn b<E: Dtype>([x0, x1, x2, x3]: [E; 4]) -> [E; 4] {
        [x0, x1 - x2 + x3, x1 + x2 - x0, E::default() - x3]
    }
    #[inline(always)]
    fn g<E: Dtype>([x0, x1, x2]: [E; 3]) -> [E; 4] {
        let (sum, alt) = ((x0 + x2) * k(0.5), x1 * k(0.5));
        [x0, sum + alt, sum - alt, x2]
    }
    #[inline(always)]
    fn gt<E: Dtype>([x0, x1, x2, x3]: [E; 4]) -> [E; 3] {
        let (sum, alt) = ((x1 + x2) * k(0.5), (x1 - x2) * k(0.5));
        [x0 + sum, alt, x3 + sum]
    }
    #[inline(always)]
    fn at<E: Dtype>([x0, x1, x2, x3]: [E; 4]) -> [E; 2] {
        [x0 + x1 + x2, x1 - x2 - x3]
    }
    #[inline(always)]
    fn a<E: Dtype>([x0, x1]: [E; 2]) -> [E; 4] {
        [x0, x0 + x1, x0 - x1, E::default() - x1]
    }
}

/// F(4x4, 3x3) on the points 0, ±1, ±2: 36 products for 16 outputs. Its larger coefficients
/// cost some precision (f32 outputs within about 1e-5 relative of im2col's).
pub(super) struct F4;

impl Scheme<6, 4> for F4 {
    const BT: [[f64; 6]; 6] = [
        [4.0, 0.0, -5.0, 0.0, 1.0, 0.0],
        [0.0, -4.0, -4.0, 1.0, 1.0, 0.0],
        [0.0, 4.0, -4.0, -1.0, 1.0, 0.0],
        [0.0, -2.0, -1.0, 2.0, 1.0, 0.0],
        [0.0, 2.0, -1.0, -2.0, 1.0, 0.0],
        [0.0, 4.0, 0.0, -5.0, 0.0, 1.0],
    ];
    const G: [[f64; 3]; 6] = [
        [1.0 / 4.0, 0.0, 0.0],
        [-1.0 / 6.0, -1.0 / 6.0, -1.0 / 6.0],
        [-1.0 / 6.0, 1.0 / 6.0, -1.0 / 6.0],
        [1.0 / 24.0, 1.0 / 12.0, 1.0 / 6.0],
        [1.0 / 24.0, -1.0 / 12.0, 1.0 / 6.0],
        [0.0, 0.0, 1.0],
    ];
    const AT: [[f64; 6]; 4] = [
        [1.0, 1.0, 1.0, 1.0, 1.0, 0.0],
        [0.0, 1.0, -1.0, 2.0, -2.0, 0.0],
        [0.0, 1.0, 1.0, 4.0, 4.0, 0.0],
        [0.0, 1.0, -1.0, 8.0, -8.0, 1.0],
    ];
    #[inline(always)]
    fn bt<E: Dtype>([x0, x1, x2, x3, x4, x5]: [E; 6]) -> [E; 6] {
        let (t0, t1) = (x4 - x2 * k(4.0), x3 - x1 * k(4.0));
        let (t2, t3) = (x4 - x2, (x3 - x1) * k(2.0));
        [
            x0 * k(4.0) - x2 * k(5.0) + x4,
            t0 + t1,
            t0 - t1,
            t2 + t3,
            t2 - t3,
            x1 * k(4.0) - x3 * k(5.0) + x5,
        ]
    }
    #[inline(always)]
    fn b<E: Dtype>([y0, y1, y2, y3, y4, y5]: [E; 6]) -> [E; 6] {
        let (s12, d12) = (y1 + y2, y2 - y1);
        let (s34, d34) = (y3 + y4, y3 - y4);
        [
            y0 * k(4.0),
            d12 * k(4.0) - d34 * k(2.0) + y5 * k(4.0),
            E::default() - y0 * k(5.0) - s12 * k(4.0) - s34,
            d34 * k(2.0) - d12 - y5 * k(5.0),
            y0 + s12 + s34,
            y5,
        ]
    }
    #[inline(always)]
    fn g<E: Dtype>([x0, x1, x2]: [E; 3]) -> [E; 6] {
        let (s, d) = ((x0 + x2) * k(1.0 / 6.0), x1 * k(1.0 / 6.0));
        let (s24, d12) = (x0 * k(1.0 / 24.0) + x2 * k(1.0 / 6.0), x1 * k(1.0 / 12.0));
        [
            x0 * k(0.25),
            E::default() - s - d,
            d - s,
            s24 + d12,
            s24 - d12,
            x2,
        ]
    }
    #[inline(always)]
    fn gt<E: Dtype>([y0, y1, y2, y3, y4, y5]: [E; 6]) -> [E; 3] {
        let (s12, d12) = (y1 + y2, y2 - y1);
        let (s34, d34) = (y3 + y4, y3 - y4);
        [
            y0 * k(0.25) - s12 * k(1.0 / 6.0) + s34 * k(1.0 / 24.0),
            d12 * k(1.0 / 6.0) + d34 * k(1.0 / 12.0),
            (s34 - s12) * k(1.0 / 6.0) + y5,
        ]
    }
    #[inline(always)]
    fn at<E: Dtype>([x0, x1, x2, x3, x4, x5]: [E; 6]) -> [E; 4] {
        let (s12, d12) = (x1 + x2, x1 - x2);
        let (s34, d34) = (x3 + x4, x3 - x4);
        [
            x0 + s12 + s34,
            d12 + d34 * k(2.0),
            s12 + s34 * k(4.0),
            d12 + d34 * k(8.0) + x5,
        ]
    }
    #[inline(always)]
    fn a<E: Dtype>([y0, y1, y2, y3]: [E; 4]) -> [E; 6] {
        let (even, odd) = (y0 + y2, y1 + y3);
        let (even4, odd8) = (y0 + y2 * k(4.0), y1 * k(2.0) + y3 * k(8.0));
        [y0, even + odd, even - odd, even4 + odd8, even4 - odd8, y3]
    }
}

/// Which scheme a layer was transformed with.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Kind {
    F2,
    F4,
}

impl Kind {
    pub(super) fn name(self) -> &'static str {
        match self {
            Kind::F2 => "Winograd F(2x2, 3x3)",
            Kind::F4 => "Winograd F(4x4, 3x3)",
        }
    }
}

/// A layer's window inputs prepared for the fused passes: the transformed weights, the images
/// until the forward pass has turned them into tiles, then the tiles, kept for the backward
/// pass.
pub(super) struct Transformed<E: Dtype> {
    kind: Kind,
    /// The groups' `[b, h, w, c]` host copies, until [`forward`] has tiled them.
    images: Vec<Pooled<E>>,
    /// The input tiles, block by block (written by [`forward`]): the block from sample `s0`
    /// is `[S²][its tiles][channels]` (every group's channels side by side) from element
    /// `s0 · tiles per sample · S² · channels`, so each frequency's matrix is contiguous.
    v: Pooled<E>,
    /// The weights, `[S²][channels][n]`.
    u: Pooled<E>,
    channels: usize,
    n: usize,
    /// `(batch, height, width)` of the images and the output.
    size: (usize, usize, usize),
    /// Samples per block ([`samples_per_block`]).
    block: usize,
}

/// Tile counts and sizes: the images' height and width, tiles down and across, tiles in
/// the batch, output columns.
#[derive(Clone, Copy)]
struct Geometry {
    h: usize,
    w: usize,
    th: usize,
    tw: usize,
    tiles: usize,
    n: usize,
}

impl Geometry {
    fn new((b, h, w): (usize, usize, usize), m: usize, n: usize) -> Self {
        let (th, tw) = (h.div_ceil(m), w.div_ceil(m));
        Self {
            h,
            w,
            th,
            tw,
            tiles: b * th * tw,
            n,
        }
    }
}

/// Where [`lanes`] writes: rows of a buffer, found by a flat index.
trait RowsMut<E> {
    /// The `len` elements from flat index `at`.
    fn row(&mut self, at: usize, len: usize) -> &mut [E];
}

impl<E> RowsMut<E> for [E] {
    #[inline(always)]
    fn row(&mut self, at: usize, len: usize) -> &mut [E] {
        &mut self[at..at + len]
    }
}

/// One sample's rows in a block's frequency-major buffer (`[S²][tiles of the block][width]`),
/// as if it were `[S²][tiles of the sample][width]` (flat index `ξ part + row`): frequency
/// `ξ`'s rows start at `ξ stride`, the sample's among them at `offset`.
struct SampleRows<'a, E> {
    block: &'a mut [E],
    /// Elements of one frequency in the sample's view (tiles of the sample · width).
    part: usize,
    /// Elements of one frequency in the block (tiles of the block · width).
    stride: usize,
    /// Where the sample's rows start within each frequency.
    offset: usize,
}

impl<'a, E> SampleRows<'a, E> {
    /// The first sample's rows of a block of `tiles` tiles, `tiles_per_sample` per sample,
    /// each row `width` wide.
    fn new(block: &'a mut [E], tiles_per_sample: usize, tiles: usize, width: usize) -> Self {
        Self {
            block,
            part: tiles_per_sample * width,
            stride: tiles * width,
            offset: 0,
        }
    }

    /// Sample `s`'s rows of the block.
    fn select(&mut self, s: usize) {
        self.offset = s * self.part;
    }
}

impl<E> RowsMut<E> for SampleRows<'_, E> {
    #[inline(always)]
    fn row(&mut self, at: usize, len: usize) -> &mut [E] {
        let (f, at) = (at / self.part, at % self.part);
        &mut self.block[f * self.stride + self.offset + at..][..len]
    }
}

/// Tiles one block of the fused passes aims at. Each block makes `3 S²` gemm calls (its
/// products `V U`, `Vᵀ dM` and `dM Uᵀ`), and `Vᵀ dM` sums over the block's tiles alone, so
/// small blocks pay gemm's per-call cost, its packing of `U` for every block, and shallow
/// products. Measured on the paper's vanilla CNN (batch 32, 2-core AMD EPYC Zen 4, 1 MiB L2
/// per core; one thread per binary, the two binaries running at once so that the host's
/// drift hits both): 256 tiles 1.10-1.12x the whole-batch passes, 512 tiles 0.99x. Blocks
/// kept within 512 KiB (down to 12 tiles in the 128-channel layers) spent 4% of a step in
/// gemm packing `U` for the input gradient's products alone.
const BLOCK_TILES: usize = 256;

/// The most bytes of tiles and products (`S² · tiles · (channels + n)` elements) one block
/// may hold, so that wide layers at large batches do not make blocks larger than a cache.
const MAX_BLOCK_BYTES: usize = 8 << 20;

/// Samples per block of the fused passes: enough for about [`BLOCK_TILES`] tiles, no more
/// than [`MAX_BLOCK_BYTES`] allow, at least one, and few enough that every thread gets a
/// block.
fn samples_per_block(
    batch: usize,
    tiles_per_sample: usize,
    xi: usize,
    (channels, n): (usize, usize),
    element: usize,
    threads: usize,
) -> usize {
    let per_sample = (tiles_per_sample * xi * (channels + n) * element).max(1);
    BLOCK_TILES
        .div_ceil(tiles_per_sample.max(1))
        .min(MAX_BLOCK_BYTES / per_sample)
        .min(batch.div_ceil(threads.max(1)))
        .max(1)
}

/// A gradient buffer that several threads add onto, each only the samples of its own blocks.
/// dfdx lends one gradient at a time (`get_or_alloc_mut`; the helpers that lend several are
/// private to it), while the fused backward pass adds every group's input gradient from the
/// same block of `dV`. Two groups that read the same image share one buffer.
#[derive(Clone, Copy)]
struct SharedGrad<E> {
    ptr: *mut E,
    len: usize,
}

// SAFETY: a SharedGrad only hands out slices of samples, and the fused backward pass gives each
// sample to one thread (see `sample`).
unsafe impl<E: Send> Send for SharedGrad<E> {}
// SAFETY: as for Send: shared between threads, it still lends each sample to one of them.
unsafe impl<E: Sync> Sync for SharedGrad<E> {}

impl<E> SharedGrad<E> {
    fn new(buf: &mut [E]) -> Self {
        Self {
            ptr: buf.as_mut_ptr(),
            len: buf.len(),
        }
    }

    /// Sample `s`'s `per_sample` elements.
    ///
    /// # Safety
    /// The buffer outlives the slice, and while the slice lives no other reference to these
    /// elements exists (one thread per sample, one group at a time).
    #[allow(clippy::mut_from_ref)]
    unsafe fn sample(&self, s: usize, per_sample: usize) -> &mut [E] {
        assert!((s + 1) * per_sample <= self.len, "sample {s} of a gradient");
        // SAFETY: in bounds (asserted); exclusive by the caller's contract.
        unsafe { std::slice::from_raw_parts_mut(self.ptr.add(s * per_sample), per_sample) }
    }
}

/// Where `N` pixels of an `[h, w, len]` image start, from pixel `(y, x)` on in steps of
/// `(dy, dx)`; `None` for those outside the image (a start before the edge wraps around and
/// is outside too).
#[inline(always)]
fn pixel_starts<const N: usize>(
    (h, w): (usize, usize),
    (y, x): (usize, usize),
    (dy, dx): (usize, usize),
    len: usize,
) -> [Option<usize>; N] {
    let mut at = [None; N];
    for (k, at) in at.iter_mut().enumerate() {
        let (y, x) = (y.wrapping_add(k * dy), x.wrapping_add(k * dx));
        *at = (y < h && x < w).then(|| (y * w + x) * len);
    }
    at
}

/// Where `N` regularly spaced rows start: `start`, `start + stride`, ...
#[inline(always)]
fn strided<const N: usize>(start: usize, stride: usize) -> [Option<usize>; N] {
    let mut at = [None; N];
    for (k, at) in at.iter_mut().enumerate() {
        *at = Some(start + k * stride);
    }
    at
}

/// `dst[to[o] + k] (+)= f(src[from[0] + k], .., src[from[I-1] + k])[o]` for `k < len`: one
/// 1-D transform applied to whole rows of channels. A `None` in `from` reads a row of zeros
/// (pixels outside the image), one in `to` drops the row (outputs outside the image).
///
/// Blocks of [`LANES`] lanes are copied into local arrays, transformed there and copied out.
/// Rows given as separate slices, which the compiler cannot prove disjoint, were vectorised
/// or left scalar (2-4x slower) depending on inlining decisions that changed with unrelated
/// code, and building arrays of row slices cost 6% of a CNN step in closures left out of
/// line. Local arrays alias nothing, so the block loop always vectorises.
#[inline(always)]
#[allow(clippy::too_many_arguments)]
fn lanes<E: Dtype, const I: usize, const O: usize>(
    src: &[E],
    from: [Option<usize>; I],
    dst: &mut (impl RowsMut<E> + ?Sized),
    to: [Option<usize>; O],
    len: usize,
    accumulate: bool,
    f: impl Fn([E; I]) -> [E; O],
) {
    let mut start = 0;
    while start < len {
        if len - start >= LANES {
            // A full block: constant-length copies, which compile to register moves.
            lanes_block::<E, I, O, LANES>(src, &from, dst, &to, start, accumulate, &f);
            start += LANES;
        } else {
            lanes_block::<E, I, O, 1>(src, &from, dst, &to, start, accumulate, &f);
            start += 1;
        }
    }
}

/// [`lanes`] on the `L` lanes from `start`, through local arrays.
#[inline(always)]
#[allow(clippy::too_many_arguments)]
fn lanes_block<E: Dtype, const I: usize, const O: usize, const L: usize>(
    src: &[E],
    from: &[Option<usize>; I],
    dst: &mut (impl RowsMut<E> + ?Sized),
    to: &[Option<usize>; O],
    start: usize,
    accumulate: bool,
    f: &impl Fn([E; I]) -> [E; O],
) {
    let mut input = [[E::default(); L]; I];
    for (local, at) in input.iter_mut().zip(from) {
        if let Some(at) = at {
            local.copy_from_slice(&src[at + start..][..L]);
        }
    }
    let mut output = [[E::default(); L]; O];
    for lane in 0..L {
        let mut column = [E::default(); I];
        for i in 0..I {
            column[i] = input[i][lane];
        }
        let values = f(column);
        for o in 0..O {
            output[o][lane] = values[o];
        }
    }
    for (local, at) in output.iter().zip(to) {
        let Some(at) = at else { continue };
        let row: &mut [E; L] = dst.row(at + start, L).try_into().expect("L lanes");
        if accumulate {
            row.iter_mut().zip(local).for_each(|(r, v)| *r += *v);
        } else {
            *row = *local;
        }
    }
}

/// Lanes per block in [`lanes`]: one AVX-512 register of f32.
const LANES: usize = 16;

/// Prepares a layer's window inputs for scheme `kind`: the weights (`[9c, n]` blocks, row
/// `tap * c + channel`) transformed into `U`, the images (`images[i]` is group `i`'s
/// `[b, h, w, c]` host copy) kept for [`forward`], which tiles them.
pub(super) fn transform<E: Dtype>(
    kind: Kind,
    groups: &[WindowGroup<E>],
    images: Vec<Pooled<E>>,
    weights: &[HostData<E>],
    size: (usize, usize, usize),
    n: usize,
) -> Transformed<E> {
    match kind {
        Kind::F2 => transform_with::<E, F2, 4, 2>(kind, groups, images, weights, size, n),
        Kind::F4 => transform_with::<E, F4, 6, 4>(kind, groups, images, weights, size, n),
    }
}

fn transform_with<E: Dtype, W: Scheme<S, M>, const S: usize, const M: usize>(
    kind: Kind,
    groups: &[WindowGroup<E>],
    images: Vec<Pooled<E>>,
    weights: &[HostData<E>],
    size: (usize, usize, usize),
    n: usize,
) -> Transformed<E> {
    let xi = S * S;
    let channels: usize = groups.iter().map(|g| g.channels).sum();
    let g = Geometry::new(size, M, n);
    let tiles_per_sample = g.th * g.tw;
    let block = samples_per_block(
        size.0,
        tiles_per_sample,
        xi,
        (channels, n),
        std::mem::size_of::<E>(),
        rayon::current_num_threads(),
    );
    let mut u = Pooled::<E>::new(xi * channels * n);
    let mut tmp = vec![E::default(); 3 * S * n];
    let mut first = 0;
    for (group, weight) in groups.iter().zip(weights) {
        let c = group.channels;
        for ch in 0..c {
            // Down the filter's columns (over r): tmp row s * S + i; then along its rows.
            for s in 0..3 {
                let (from, to) = (strided((s * c + ch) * n, 3 * c * n), strided(s * S * n, n));
                lanes(weight, from, &mut tmp[..], to, n, false, W::g);
            }
            for i in 0..S {
                let to = strided((S * i * channels + first + ch) * n, channels * n);
                lanes(&tmp, strided(i * n, S * n), &mut u[..], to, n, false, W::g);
            }
        }
        first += c;
    }
    Transformed {
        kind,
        images,
        v: Pooled::<E>::new(g.tiles * xi * channels),
        u,
        channels,
        n,
        size,
        block,
    }
}

/// Writes one sample's tiles of one channel group: `img` is `[h, w, c]`, `v` the sample's
/// rows of its block's `[S²][tiles][channels]` tiles, the group's `c` channels start at
/// `first`. (The per-sample loops are compiled for AVX-512 and AVX2 too, chosen at run time:
/// the crate is built for baseline x86-64, where they would run 4 lanes wide.)
#[multiversion(targets("x86_64+avx512f", "x86_64+avx2"))]
fn input_tiles<E: Dtype, W: Scheme<S, M>, const S: usize, const M: usize>(
    img: &[E],
    v: &mut SampleRows<E>,
    g: Geometry,
    (first, c, channels): (usize, usize, usize),
) {
    let block = TileBlock { step: M, shift: 1 };
    let dst = (first, c, channels);
    pixels_to_frequencies::<E, S, S>(img, dst, v, g, block, FirstPass::DownColumns, W::bt);
}

/// `dst_ξ = lhs_ξ · rhs_ξ` (or `+=` when `accumulate`) for the `S²` frequencies of a block, on
/// the calling thread: `dst` is `[S²][rows][cols]`, `operands(ξ)` gives frequency ξ's views.
fn block_products<'a, E: Dtype>(
    dst: &mut [E],
    xi: usize,
    (rows, cols): (usize, usize),
    accumulate: bool,
    operands: impl Fn(usize) -> (View<'a, E>, View<'a, E>),
) {
    if rows * cols == 0 {
        return;
    }
    for (f, dst) in dst[..xi * rows * cols]
        .chunks_exact_mut(rows * cols)
        .enumerate()
    {
        let (lhs, rhs) = operands(f);
        gemm_serial(dst, lhs, rhs, accumulate);
    }
}

/// `z (+)= conv(x, w)` for `z` `[b*h*w, n]` (row-major, a row per output pixel); tiles the
/// images into `t`'s `V` for the backward pass (and drops them).
pub(super) fn forward<E: Dtype>(
    t: &mut Transformed<E>,
    groups: &[WindowGroup<E>],
    z: &mut [E],
    accumulate: bool,
) {
    match t.kind {
        Kind::F2 => forward_with::<E, F2, 4, 2>(t, groups, z, accumulate),
        Kind::F4 => forward_with::<E, F4, 6, 4>(t, groups, z, accumulate),
    }
}

/// The forward pass, fused block by block of samples, in parallel over the blocks: a block's
/// input tiles (`V = Bᵀ d B`, kept), its `S²` products `M_ξ = V_ξ U_ξ` into a buffer of the
/// thread's, and its outputs (`Y = Aᵀ M A`), while its tiles and products are still in cache.
/// Whole-batch passes (every tile, then every product, then every output) streamed 9.4 MB
/// buffers through memory between the steps for a 32-channel layer at 32x32, and the
/// transforms stalled on those stores.
fn forward_with<E: Dtype, W: Scheme<S, M>, const S: usize, const M: usize>(
    t: &mut Transformed<E>,
    groups: &[WindowGroup<E>],
    z: &mut [E],
    accumulate: bool,
) {
    let images = std::mem::take(&mut t.images);
    let (b, h, w) = t.size;
    let (n, c, xi) = (t.n, t.channels, S * S);
    let g = Geometry::new(t.size, M, n);
    let z = &mut z[..b * h * w * n];
    if z.is_empty() {
        return;
    }
    if c == 0 {
        if !accumulate {
            z.fill(E::default());
        }
        return;
    }
    let tiles_per_sample = g.th * g.tw;
    let Transformed { v, u, block, .. } = t;
    let (u, block) = (&*u, *block);
    v.par_chunks_mut(block * tiles_per_sample * xi * c)
        .zip(z.par_chunks_mut(block * h * w * n))
        .enumerate()
        .for_each(|(j, (v, z))| {
            let (first_sample, samples) = (j * block, z.len() / (h * w * n));
            let tiles = samples * tiles_per_sample;
            let mut rows = SampleRows::new(v, tiles_per_sample, tiles, c);
            for s in 0..samples {
                rows.select(s);
                let mut first = 0;
                for (group, image) in groups.iter().zip(&images) {
                    let gc = group.channels;
                    if gc > 0 {
                        let img = &image[(first_sample + s) * h * w * gc..][..h * w * gc];
                        input_tiles::<E, W, S, M>(img, &mut rows, g, (first, gc, c));
                    }
                    first += gc;
                }
            }
            let v = &*rows.block;
            let mut m = Pooled::<E>::new(xi * tiles * n);
            block_products(&mut m, xi, (tiles, n), false, |f| {
                (
                    View::new(&v[f * tiles * c..], tiles, c),
                    View::new(&u[f * c * n..], c, n),
                )
            });
            let local = Geometry { tiles, ..g };
            for (s, z) in z.chunks_exact_mut(h * w * n).enumerate() {
                output_tiles::<E, W, S, M>(&m, z, s, local, accumulate);
            }
        });
}

/// One sample's outputs `z` (`[h*w, n]`) from `M` (`[S²][tiles][n]`, the sample's tiles from
/// `sample · tiles per sample`): `Y = Aᵀ M A`.
#[multiversion(targets("x86_64+avx512f", "x86_64+avx2"))]
fn output_tiles<E: Dtype, W: Scheme<S, M>, const S: usize, const M: usize>(
    m: &[E],
    z: &mut [E],
    sample: usize,
    g: Geometry,
    accumulate: bool,
) {
    let n = g.n;
    let block = TileBlock { step: M, shift: 0 };
    frequencies_to_pixels(m, (0, n, n), z, sample, g, block, accumulate, W::at);
}

/// Which way [`pixels_to_frequencies`] first runs through a tile's pixels.
#[derive(Clone, Copy)]
enum FirstPass {
    DownColumns,
    AlongRows,
}

/// The transform from pixels to frequencies, shared by the input tiles (`Bᵀ d B`, down the
/// columns first) and the output gradient (`A dY Aᵀ`, along the rows first): for each of the
/// sample's tiles, the `I x I` pixels of its block (rows of `len` in `pixels`, `[h*w, len]`;
/// zero outside the image), `f` along one direction and then the other, into the tile's
/// `S²` frequency rows of `freq` (`width` wide, from `first`).
#[inline(always)]
#[allow(clippy::too_many_arguments)]
fn pixels_to_frequencies<E: Dtype, const I: usize, const S: usize>(
    pixels: &[E],
    (first, len, width): (usize, usize, usize),
    freq: &mut SampleRows<E>,
    g: Geometry,
    block: TileBlock,
    first_pass: FirstPass,
    f: impl Fn([E; I]) -> [E; S] + Copy,
) {
    let Geometry { h, w, th, tw, .. } = g;
    let TileBlock { step, shift } = block;
    let part = freq.part;
    // In pixels: along a line of the first pass, and from one line to the next. In frequency
    // rows: the step of the first pass's outputs (the frequency's row index when it runs down
    // the columns) and of the second's.
    let ((along, across), (first_stride, second_stride)) = match first_pass {
        FirstPass::DownColumns => (((1, 0), (0, 1)), (S * part, part)),
        FirstPass::AlongRows => (((0, 1), (1, 0)), (part, S * part)),
    };
    let mut tmp = vec![E::default(); I * S * len];
    for ty in 0..th {
        for tx in 0..tw {
            let (y, x) = (
                (step * ty).wrapping_sub(shift),
                (step * tx).wrapping_sub(shift),
            );
            // Line p's outputs go to tmp rows p * S + q.
            for p in 0..I {
                let start = (y.wrapping_add(p * across.0), x.wrapping_add(p * across.1));
                let line = pixel_starts::<I>((h, w), start, along, len);
                let to = strided(p * S * len, len);
                lanes(pixels, line, &mut tmp[..], to, len, false, f);
            }
            // Row `tile` of each frequency's part.
            let tile = (ty * tw + tx) * width + first;
            for q in 0..S {
                let to = strided(q * first_stride + tile, second_stride);
                lanes(&tmp, strided(q * len, S * len), freq, to, len, false, f);
            }
        }
    }
}

/// Where a tile's block of pixels lies: tile `(ty, tx)` starts at pixel
/// `(step ty - shift, step tx - shift)`.
#[derive(Clone, Copy)]
struct TileBlock {
    step: usize,
    shift: usize,
}

/// The transform from frequencies back to pixels, shared by the outputs (`Aᵀ M A`) and the
/// input gradient (`B dV Bᵀ`): for each of the sample's tiles, its `S²` frequency rows
/// (`freq[(ξ tiles + tile) width + first..][..len]`), `f` along the rows and then down the
/// columns, written or added (`accumulate`) onto the `O x O` pixels of its block (rows of
/// `len` in `pixels`, `[h*w, len]`); pixels outside the image are dropped.
#[inline(always)]
#[allow(clippy::too_many_arguments)]
fn frequencies_to_pixels<E: Dtype, const S: usize, const O: usize>(
    freq: &[E],
    (first, len, width): (usize, usize, usize),
    pixels: &mut [E],
    sample: usize,
    g: Geometry,
    block: TileBlock,
    accumulate: bool,
    f: impl Fn([E; S]) -> [E; O] + Copy,
) {
    let Geometry {
        h,
        w,
        th,
        tw,
        tiles,
        ..
    } = g;
    let TileBlock { step, shift } = block;
    let mut tmp = vec![E::default(); S * O * len];
    for ty in 0..th {
        for tx in 0..tw {
            let tile = (sample * th + ty) * tw + tx;
            // Along each frequency row (tmp row i * O + col), then down the columns.
            for i in 0..S {
                let from = strided((S * i * tiles + tile) * width + first, tiles * width);
                lanes(
                    freq,
                    from,
                    &mut tmp[..],
                    strided(i * O * len, len),
                    len,
                    false,
                    f,
                );
            }
            for col in 0..O {
                let top = (
                    (step * ty).wrapping_sub(shift),
                    (step * tx + col).wrapping_sub(shift),
                );
                let to = pixel_starts::<O>((h, w), top, (1, 0), len);
                let from = strided(col * len, O * len);
                lanes(&tmp, from, pixels, to, len, accumulate, f);
            }
        }
    }
}

/// The backward pass given the masked output gradient `dz` (`[b*h*w, n]`): every group's
/// weight gradient, and the input gradient of the groups that need one.
pub(super) fn backward<E: Dtype>(
    t: &Transformed<E>,
    groups: &[WindowGroup<E>],
    dz: &[E],
    grads: &mut Gradients<E, Cpu>,
) -> Result<(), CpuError>
where
    Cpu: Device<E>,
{
    match t.kind {
        Kind::F2 => backward_with::<E, F2, 4, 2>(t, groups, dz, grads),
        Kind::F4 => backward_with::<E, F4, 6, 4>(t, groups, dz, grads),
    }
}

/// The backward pass, fused block by block like the forward pass: a block's `dM = A dY Aᵀ`,
/// `dU += V_ξᵀ dM_ξ` into one accumulator per task, and (if any group needs an input
/// gradient) `dV_ξ = dM_ξ U_ξᵀ` and `dd = B dV Bᵀ` onto the pixels, from buffers of the
/// thread's while they are in cache. Then the tasks' `dU` are summed and `dg = Gᵀ dU G` goes
/// into each group's weight gradient.
fn backward_with<E: Dtype, W: Scheme<S, M>, const S: usize, const M: usize>(
    t: &Transformed<E>,
    groups: &[WindowGroup<E>],
    dz: &[E],
    grads: &mut Gradients<E, Cpu>,
) -> Result<(), CpuError>
where
    Cpu: Device<E>,
{
    let (b, h, w) = t.size;
    let (n, c, xi) = (t.n, t.channels, S * S);
    let g = Geometry::new(t.size, M, n);
    if b * h * w * n * c == 0 {
        return Ok(());
    }
    let tiles_per_sample = g.th * g.tw;
    let block = t.block;
    let blocks = b.div_ceil(block);
    // Each group's input gradient, where it needs one. Allocating a gradient may move the
    // map's entries, never their buffers; the pointers are used only inside the parallel
    // section below, while `grads` is not touched.
    let mut shared: Vec<Option<SharedGrad<E>>> = Vec::with_capacity(groups.len());
    for group in groups {
        let grad = match group.grad_target.as_ref().filter(|_| group.channels > 0) {
            Some(x) => Some(SharedGrad::new(host::<E>(grads.get_or_alloc_mut(x)?))),
            None => None,
        };
        if let Some(grad) = grad {
            // Lending a buffer again (two groups reading the same image) invalidates the
            // pointer taken from its earlier loan: the earlier groups take the new one.
            for earlier in shared.iter_mut().flatten() {
                if earlier.ptr == grad.ptr {
                    *earlier = grad;
                }
            }
        }
        shared.push(grad);
    }
    let needs_dv = shared.iter().any(Option::is_some);
    // Contiguous runs of blocks, one per thread, each with its own dU.
    let per_task = blocks.div_ceil(rayon::current_num_threads().clamp(1, blocks));
    let tasks = blocks.div_ceil(per_task);
    let du_len = xi * c * n;
    let mut du_parts = Pooled::<E>::new(tasks * du_len);
    du_parts
        .par_chunks_mut(du_len)
        .enumerate()
        .for_each(|(task, du)| {
            // The blocks of the forward pass: the same chunks of `V` and of the samples.
            let task_blocks =
                t.v.chunks(block * tiles_per_sample * xi * c)
                    .zip(dz[..b * h * w * n].chunks(block * h * w * n))
                    .enumerate()
                    .skip(task * per_task)
                    .take(per_task);
            for (j, (v, dz)) in task_blocks {
                let (first_sample, samples) = (j * block, dz.len() / (h * w * n));
                let tiles = samples * tiles_per_sample;
                let mut dm = Pooled::<E>::new(xi * tiles * n);
                let mut rows = SampleRows::new(&mut dm, tiles_per_sample, tiles, n);
                for (s, dz) in dz.chunks_exact(h * w * n).enumerate() {
                    rows.select(s);
                    output_grad_tiles::<E, W, S, M>(dz, &mut rows, g);
                }
                block_products(du, xi, (c, n), j > task * per_task, |f| {
                    (
                        View::new(&v[f * tiles * c..], tiles, c).t(),
                        View::new(&dm[f * tiles * n..], tiles, n),
                    )
                });
                if !needs_dv {
                    continue;
                }
                let mut dv = Pooled::<E>::new(xi * tiles * c);
                block_products(&mut dv, xi, (tiles, c), false, |f| {
                    (
                        View::new(&dm[f * tiles * n..], tiles, n),
                        View::new(&t.u[f * c * n..], c, n).t(),
                    )
                });
                let local = Geometry { tiles, ..g };
                for s in 0..samples {
                    let mut first = 0;
                    for (group, target) in groups.iter().zip(&shared) {
                        let gc = group.channels;
                        if let Some(target) = target {
                            // SAFETY: `grads` outlives this section and is not touched in it;
                            // the sample belongs to this task's blocks alone, and the slice
                            // lives only for this call (a second group on the same image
                            // takes its own afterwards).
                            let g_in = unsafe { target.sample(first_sample + s, h * w * gc) };
                            input_grad_tiles::<E, W, S, M>(&dv, g_in, s, local, (first, gc, c));
                        }
                        first += gc;
                    }
                }
            }
        });
    let (du, rest) = du_parts.split_at_mut(du_len);
    for part in rest.chunks_exact(du_len) {
        du.iter_mut().zip(part).for_each(|(d, p)| *d += *p);
    }
    let du = &*du;
    let mut tmp = vec![E::default(); 3 * S * n];
    let mut first = 0;
    for group in groups {
        let gc = group.channels;
        let dw = host::<E>(grads.get_or_alloc_mut(&group.weight)?);
        for ch in 0..gc {
            // Along each row of dU (tmp row i * 3 + s), then down the columns.
            for i in 0..S {
                let from = strided((S * i * c + first + ch) * n, c * n);
                lanes(
                    du,
                    from,
                    &mut tmp[..],
                    strided(i * 3 * n, n),
                    n,
                    false,
                    W::gt,
                );
            }
            for s in 0..3 {
                let to = strided((s * gc + ch) * n, 3 * gc * n);
                lanes(&tmp, strided(s * n, 3 * n), dw, to, n, true, W::gt);
            }
        }
        first += gc;
    }
    Ok(())
}

/// One sample's `dM = A dY Aᵀ` (`dm`: its rows of its block's `[S²][tiles][n]`) from its
/// output gradient `dz` (`[h*w, n]`); outputs past the image edge have none.
#[multiversion(targets("x86_64+avx512f", "x86_64+avx2"))]
fn output_grad_tiles<E: Dtype, W: Scheme<S, M>, const S: usize, const M: usize>(
    dz: &[E],
    dm: &mut SampleRows<E>,
    g: Geometry,
) {
    let (block, n) = (TileBlock { step: M, shift: 0 }, g.n);
    pixels_to_frequencies::<E, M, S>(dz, (0, n, n), dm, g, block, FirstPass::AlongRows, W::a);
}

/// Adds one sample's `dd = B dV Bᵀ` onto its pixels' gradient `g_in` (`[h*w, gc]`), for the
/// group whose `gc` channels start at `first` of dV's `c` (`dv`: `[S²][tiles][c]`).
#[multiversion(targets("x86_64+avx512f", "x86_64+avx2"))]
fn input_grad_tiles<E: Dtype, W: Scheme<S, M>, const S: usize, const M: usize>(
    dv: &[E],
    g_in: &mut [E],
    sample: usize,
    g: Geometry,
    (first, gc, c): (usize, usize, usize),
) {
    let block = TileBlock { step: M, shift: 1 };
    frequencies_to_pixels(dv, (first, gc, c), g_in, sample, g, block, true, W::b);
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `m · x` for a constant matrix `m`: after inlining the coefficients are constants, zero
    /// terms vanish and ±1 become adds and subtracts, so this is the hand-written transform.
    fn apply<E: Dtype, const R: usize, const C: usize>(m: &[[f64; C]; R], x: [E; C]) -> [E; R] {
        std::array::from_fn(|r| combine((0..C).map(|c| (m[r][c], x[c]))))
    }

    /// `mᵀ · x`, the adjoint of [`apply`].
    fn apply_t<E: Dtype, const R: usize, const C: usize>(m: &[[f64; C]; R], x: [E; R]) -> [E; C] {
        std::array::from_fn(|c| combine((0..R).map(|r| (m[r][c], x[r]))))
    }

    /// `Σ k x` over `(k, x)` terms, skipping zero coefficients and multiplying only by others
    /// than ±1.
    fn combine<E: Dtype>(terms: impl Iterator<Item = (f64, E)>) -> E {
        let mut sum: Option<E> = None;
        for (k, x) in terms {
            if k == 0.0 {
                continue;
            }
            sum = Some(match (sum, k) {
                (None, 1.0) => x,
                (None, -1.0) => E::default() - x,
                (None, _) => x * E::from_f64(k).expect("a float dtype"),
                (Some(s), 1.0) => s + x,
                (Some(s), -1.0) => s - x,
                (Some(s), _) => s + x * E::from_f64(k).expect("a float dtype"),
            });
        }
        sum.unwrap_or_default()
    }

    fn random<const N: usize>(seed: u64) -> [f64; N] {
        // A small LCG: the test needs generic values, not good randomness.
        let mut state = seed.wrapping_mul(6364136223846793005).wrapping_add(1);
        std::array::from_fn(|_| {
            state = state
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            (state >> 11) as f64 / (1u64 << 53) as f64 * 2.0 - 1.0
        })
    }

    fn same<const N: usize>(what: &str, a: [f64; N], b: [f64; N]) {
        for (x, y) in a.iter().zip(&b) {
            assert!((x - y).abs() < 1e-12, "{what}: {a:?} vs {b:?}");
        }
    }

    /// Each written-out transform is its matrix, and each adjoint the transpose.
    fn check<W: Scheme<S, M>, const S: usize, const M: usize>() {
        for seed in 0..20 {
            let (s, three, m) = (
                random::<S>(seed),
                random::<3>(seed + 100),
                random::<M>(seed + 200),
            );
            same("bt", W::bt(s), apply(&W::BT, s));
            same("b", W::b(s), apply_t(&W::BT, s));
            same("g", W::g(three), apply(&W::G, three));
            same("gt", W::gt(s), apply_t(&W::G, s));
            same("at", W::at(s), apply(&W::AT, s));
            same("a", W::a(m), apply_t(&W::AT, m));
        }
    }

    #[test]
    fn blocks_hold_about_256_tiles_and_every_thread_gets_one() {
        let f4 =
            |batch, tiles, (c, n), threads| samples_per_block(batch, tiles, 36, (c, n), 4, threads);
        // The paper CNN at batch 32 on 2 threads: 64, 16 and 4 tiles per sample.
        assert_eq!(f4(32, 64, (32, 32), 2), 4);
        assert_eq!(f4(32, 16, (64, 64), 2), 16);
        assert_eq!(f4(32, 4, (128, 128), 2), 16);
        // Fewer samples than threads: one each; a sample larger than a block: one.
        assert_eq!(f4(3, 4, (16, 16), 8), 1);
        assert_eq!(f4(32, 1024, (16, 16), 1), 1);
        // Wide layers at a large batch stop at the byte cap (36 · 4 · 1024 · 4 bytes a sample).
        assert_eq!(
            f4(256, 4, (512, 512), 1),
            MAX_BLOCK_BYTES / (36 * 4 * 1024 * 4)
        );
        // Degenerate sizes still give one sample per block.
        assert_eq!(f4(0, 0, (0, 0), 0), 1);
    }

    #[test]
    fn written_out_transforms_equal_their_matrices() {
        check::<F2, 4, 2>();
        check::<F4, 6, 4>();
    }

    /// The matrices compute a 1-D correlation: `Aᵀ[(G g) ⊙ (Bᵀ d)]_i = Σ_r d[i + r] g[r]`.
    fn correlates<W: Scheme<S, M>, const S: usize, const M: usize>() {
        let (d, g) = (random::<S>(7), random::<3>(8));
        let (u, v) = (apply(&W::G, g), apply(&W::BT, d));
        let y = apply(&W::AT, std::array::from_fn::<f64, S, _>(|i| u[i] * v[i]));
        same(
            "y",
            y,
            std::array::from_fn(|i| (0..3).map(|r| d[i + r] * g[r]).sum()),
        );
    }

    #[test]
    fn the_matrices_are_minimal_filtering() {
        correlates::<F2, 4, 2>();
        correlates::<F4, 6, 4>();
    }
}

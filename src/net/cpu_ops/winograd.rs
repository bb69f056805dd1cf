//! The 3x3 convolution as Winograd's minimal filtering F(2x2, 3x3) (Lavin and Gray, 2015):
//! each 2x2 block of outputs comes from a 4x4 input tile, transformed once, times the
//! transformed weights. The multiply-adds of the three products of a training step (output,
//! weight gradient, input gradient) become 16 matrix products of `[tiles, C] x [C, n]`
//! instead of one of `[4 * tiles, 9C] x [9C, n]`: 2.25x fewer. im2col's products already run
//! near this CPU's FMA peak, so fewer multiply-adds is the only way left to go faster.
//!
//! With `d` a 4x4 input tile, `g` a 3x3 filter and `Y` the 2x2 outputs:
//! `V = Bᵀ d B`, `U = G g Gᵀ`, `M = Σ_channels U ⊙ V`, `Y = Aᵀ M A`. The backward pass is the
//! adjoint of each step: `dM = A dY Aᵀ`, `dU = Σ_tiles V ⊙ dM` (so `dg = Gᵀ dU G`) and
//! `dV = Σ_outputs U ⊙ dM` (so `dd = B dV Bᵀ`, added onto the overlapping tiles' pixels).
//! Frequency `ξ = 4i + j` is row `i`, column `j` of a transformed tile.
//!
//! Checked against the im2col kernel and the composed ops, and through whole networks against
//! finite differences (`tests/gradients.rs`).

use dfdx::prelude::*;
use multiversion::multiversion;
use rayon::prelude::*;

use super::{gemm_serial, host, HostData, Pooled, View, WindowGroup};

/// Frequencies per transformed tile.
const XI: usize = 16;

/// A layer's window inputs transformed for the forward and backward passes.
pub(super) struct Transformed<E: Dtype> {
    /// The input tiles, `[tiles][16][channels]` (every group's channels side by side).
    v: Pooled<E>,
    /// The weights, `[16][channels][n]`.
    u: Pooled<E>,
    channels: usize,
    n: usize,
    /// `(batch, height, width)` of the images and the output.
    size: (usize, usize, usize),
}

impl<E: Dtype> Transformed<E> {
    fn tiles(&self) -> (usize, usize) {
        let (_, h, w) = self.size;
        (h.div_ceil(2), w.div_ceil(2))
    }

    fn tile_count(&self) -> usize {
        let (th, tw) = self.tiles();
        self.size.0 * th * tw
    }
}

fn half<E: Dtype>() -> E {
    E::from_f64(0.5).expect("a float dtype")
}

/// `Bᵀ x` for one row or column of a tile: `[x0 - x2, x1 + x2, x2 - x1, x1 - x3]`.
#[inline(always)]
fn bt_x<E: Dtype>([x0, x1, x2, x3]: [E; 4]) -> [E; 4] {
    [x0 - x2, x1 + x2, x2 - x1, x1 - x3]
}

/// `B x`, the adjoint of [`bt_x`].
#[inline(always)]
fn b_x<E: Dtype>([x0, x1, x2, x3]: [E; 4]) -> [E; 4] {
    [x0, x1 - x2 + x3, x1 + x2 - x0, E::default() - x3]
}

/// `G x` for one row or column of a filter.
#[inline(always)]
fn g_x<E: Dtype>([x0, x1, x2]: [E; 3], half: E) -> [E; 4] {
    let (sum, alt) = ((x0 + x2) * half, x1 * half);
    [x0, sum + alt, sum - alt, x2]
}

/// `Gᵀ x`, the adjoint of [`g_x`].
#[inline(always)]
fn gt_x<E: Dtype>([x0, x1, x2, x3]: [E; 4], half: E) -> [E; 3] {
    let (sum, alt) = ((x1 + x2) * half, (x1 - x2) * half);
    [x0 + sum, alt, x3 + sum]
}

/// `Aᵀ x` for one row or column of a transformed output tile.
#[inline(always)]
fn at_x<E: Dtype>([x0, x1, x2, x3]: [E; 4]) -> [E; 2] {
    [x0 + x1 + x2, x1 - x2 - x3]
}

/// `A x`, the adjoint of [`at_x`].
#[inline(always)]
fn a_x<E: Dtype>([x0, x1]: [E; 2]) -> [E; 4] {
    [x0, x0 + x1, x0 - x1, E::default() - x1]
}

/// `I` rows of `len` elements of `buf`, `stride` apart from `start`.
#[inline(always)]
fn rows<E, const I: usize>(buf: &[E], stride: usize, start: usize, len: usize) -> [&[E]; I] {
    std::array::from_fn(|k| &buf[start + k * stride..][..len])
}

/// Disjoint mutable rows of `len` elements of `buf` at increasing `starts`; a `None` start
/// gets a row of `spare` instead (outputs that fall outside the image are dropped there).
#[inline(always)]
fn rows_mut<'a, E, const O: usize>(
    mut buf: &'a mut [E],
    starts: [Option<usize>; O],
    len: usize,
    spare: &'a mut [E],
) -> [&'a mut [E]; O] {
    let mut spare = spare.chunks_exact_mut(len.max(1));
    let mut consumed = 0;
    starts.map(|start| match start {
        Some(start) => {
            let rest = std::mem::take(&mut buf);
            let (row, tail) = rest[start - consumed..].split_at_mut(len);
            buf = tail;
            consumed = start + len;
            row
        }
        None => spare.next().expect("a spare row per dropped output"),
    })
}

/// Regularly spaced mutable rows (see [`rows_mut`]).
#[inline(always)]
fn strided_mut<E, const O: usize>(
    buf: &mut [E],
    stride: usize,
    start: usize,
    len: usize,
) -> [&mut [E]; O] {
    rows_mut(
        buf,
        std::array::from_fn(|k| Some(start + k * stride)),
        len,
        &mut [],
    )
}

/// `y[o][k] (+)= f(x[0][k], .., x[I-1][k])[o]` for every lane `k`: one 1-D transform applied
/// to whole rows of channels, a loop the compiler vectorises.
#[inline(always)]
fn lanes<E: Dtype, const I: usize, const O: usize>(
    x: [&[E]; I],
    y: [&mut [E]; O],
    accumulate: bool,
    f: impl Fn([E; I]) -> [E; O],
) {
    let len = y.first().map_or(0, |row| row.len());
    let x = x.map(|row| &row[..len]);
    let mut y = y.map(|row| &mut row[..len]);
    if accumulate {
        for k in 0..len {
            let out = f(std::array::from_fn(|i| x[i][k]));
            for (row, value) in y.iter_mut().zip(out) {
                row[k] += value;
            }
        }
    } else {
        for k in 0..len {
            let out = f(std::array::from_fn(|i| x[i][k]));
            for (row, value) in y.iter_mut().zip(out) {
                row[k] = value;
            }
        }
    }
}

/// Transforms a layer's window inputs: the images (`images[i]` is group `i`'s `[b, h, w, c]`
/// host copy) into tiles, the weights (`[9c, n]` blocks, row `tap * c + channel`) into `U`.
pub(super) fn transform<E: Dtype>(
    groups: &[WindowGroup<E>],
    images: &[Pooled<E>],
    weights: &[HostData<E>],
    size: (usize, usize, usize),
    n: usize,
) -> Transformed<E> {
    let channels: usize = groups.iter().map(|g| g.channels).sum();
    let (b, h, w) = size;
    let (th, tw) = (h.div_ceil(2), w.div_ceil(2));
    let mut v = Pooled::<E>::new(b * th * tw * XI * channels);
    if !v.is_empty() {
        v.par_chunks_mut(th * tw * XI * channels)
            .enumerate()
            .for_each(|(sample, v)| {
                let mut first = 0;
                for (group, image) in groups.iter().zip(images) {
                    let c = group.channels;
                    if c > 0 {
                        let img = &image[sample * h * w * c..][..h * w * c];
                        input_tiles(img, v, (h, w, c), first, channels);
                    }
                    first += c;
                }
            });
    }
    let mut u = Pooled::<E>::new(XI * channels * n);
    let half = half::<E>();
    let mut tmp = vec![E::default(); 12 * n];
    let mut first = 0;
    for (group, weight) in groups.iter().zip(weights) {
        let c = group.channels;
        for ch in 0..c {
            // Down the filter's columns (over r): tmp row s * 4 + i; then along its rows.
            for s in 0..3 {
                let x = rows(weight, 3 * c * n, (s * c + ch) * n, n);
                let y = strided_mut(&mut tmp[s * 4 * n..], n, 0, n);
                lanes(x, y, false, |col| g_x(col, half));
            }
            for i in 0..4 {
                let x = rows(&tmp, 4 * n, i * n, n);
                let y = strided_mut(&mut u, channels * n, (4 * i * channels + first + ch) * n, n);
                lanes(x, y, false, |row| g_x(row, half));
            }
        }
        first += c;
    }
    Transformed {
        v,
        u,
        channels,
        n,
        size,
    }
}

/// Writes one sample's tiles of one channel group (see [`output_tiles`] on the targets): `img` is `[h, w, c]`, `v` the sample's
/// `[tiles][16][channels]` block, the group's channels start at `first`.
#[multiversion(targets("x86_64+avx512f", "x86_64+avx2"))]
fn input_tiles<E: Dtype>(
    img: &[E],
    v: &mut [E],
    (h, w, c): (usize, usize, usize),
    first: usize,
    channels: usize,
) {
    let tw = w.div_ceil(2);
    let zeros = vec![E::default(); c];
    let mut tmp = vec![E::default(); 16 * c];
    for ty in 0..h.div_ceil(2) {
        for tx in 0..tw {
            // The 4x4 patch from (2ty - 1, 2tx - 1), zero outside the image; down its
            // columns first (tmp row bb * 4 + i), then along its rows.
            for bb in 0..4 {
                let x = (2 * tx + bb).wrapping_sub(1);
                let column: [&[E]; 4] = std::array::from_fn(|a| {
                    let y = (2 * ty + a).wrapping_sub(1);
                    if y < h && x < w {
                        &img[(y * w + x) * c..][..c]
                    } else {
                        &zeros[..]
                    }
                });
                lanes(
                    column,
                    strided_mut(&mut tmp[bb * 4 * c..], c, 0, c),
                    false,
                    bt_x,
                );
            }
            let tile = &mut v[(ty * tw + tx) * XI * channels..][..XI * channels];
            for i in 0..4 {
                let x = rows(&tmp, 4 * c, i * c, c);
                let y = strided_mut(&mut tile[4 * i * channels..], channels, first, c);
                lanes(x, y, false, bt_x);
            }
        }
    }
}

/// The 16 products of frequency ξ's two views (`operands(ξ)`), in parallel over the
/// frequencies, into `dst` (`[16][rows][cols]`).
fn products<'a, E: Dtype>(
    dst: &mut [E],
    (rows, cols): (usize, usize),
    operands: impl Fn(usize) -> (View<'a, E>, View<'a, E>) + Sync,
) {
    if rows * cols == 0 {
        return;
    }
    dst[..XI * rows * cols]
        .par_chunks_mut(rows * cols)
        .enumerate()
        .for_each(|(xi, dst)| {
            let (lhs, rhs) = operands(xi);
            gemm_serial(dst, lhs, rhs, false);
        });
}

/// Frequency ξ's `[tiles, width]` matrix in a `[tiles][16][width]` buffer.
fn frequency<E>(data: &[E], xi: usize, tiles: usize, width: usize) -> View<'_, E> {
    View {
        data: &data[(xi * width).min(data.len())..],
        rows: tiles,
        cols: width,
        rs: XI * width,
        cs: 1,
    }
}

/// `z (+)= conv(x, w)` for `z` `[b*h*w, n]` (row-major, a row per output pixel).
pub(super) fn forward<E: Dtype>(t: &Transformed<E>, z: &mut [E], accumulate: bool) {
    let (b, h, w) = t.size;
    let (n, c, tiles) = (t.n, t.channels, t.tile_count());
    if b * h * w * n == 0 {
        return;
    }
    let mut m = Pooled::<E>::new(XI * tiles * n);
    products(&mut m, (tiles, n), |xi| {
        (
            frequency(&t.v, xi, tiles, c),
            View::new(&t.u[xi * c * n..], c, n),
        )
    });
    z[..b * h * w * n]
        .par_chunks_mut(h * w * n)
        .enumerate()
        .for_each(|(sample, z)| output_tiles(&m, z, sample, t.geometry(), accumulate));
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

impl<E: Dtype> Transformed<E> {
    fn geometry(&self) -> Geometry {
        let (_, h, w) = self.size;
        let (th, tw) = self.tiles();
        Geometry {
            h,
            w,
            th,
            tw,
            tiles: self.tile_count(),
            n: self.n,
        }
    }
}

/// One sample's outputs `z` (`[h*w, n]`) from `M` (`[16][tiles][n]`): `Y = Aᵀ M A`. (The
/// per-sample loops are compiled for AVX-512 and AVX2 too, chosen at run time: the crate is
/// built for baseline x86-64, where they would run 4 lanes wide.)
#[multiversion(targets("x86_64+avx512f", "x86_64+avx2"))]
fn output_tiles<E: Dtype>(m: &[E], z: &mut [E], sample: usize, g: Geometry, accumulate: bool) {
    let Geometry {
        h,
        w,
        th,
        tw,
        tiles,
        n,
    } = g;
    let mut tmp = vec![E::default(); 8 * n];
    let mut spare = vec![E::default(); 2 * n];
    for ty in 0..th {
        for tx in 0..tw {
            let tile = (sample * th + ty) * tw + tx;
            // Along each row of M (tmp row i * 2 + ox), then down the columns.
            for i in 0..4 {
                let x = rows(m, tiles * n, (4 * i * tiles + tile) * n, n);
                lanes(x, strided_mut(&mut tmp[i * 2 * n..], n, 0, n), false, at_x);
            }
            for ox in 0..2 {
                let x = 2 * tx + ox;
                let starts = std::array::from_fn(|oy| {
                    let y = 2 * ty + oy;
                    (y < h && x < w).then_some((y * w + x) * n)
                });
                let y = rows_mut(z, starts, n, &mut spare);
                lanes(rows(&tmp, 2 * n, ox * n, n), y, accumulate, at_x);
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
    let (b, h, w) = t.size;
    let (n, c, tiles) = (t.n, t.channels, t.tile_count());
    if b * h * w * n * c == 0 {
        return Ok(());
    }
    let (th, tw) = t.tiles();
    // dM = A dY Aᵀ per tile, `[tiles][16][n]`; outputs past the image edge have no gradient.
    let mut dm = Pooled::<E>::new(tiles * XI * n);
    let geometry = t.geometry();
    dm.par_chunks_mut(th * tw * XI * n)
        .enumerate()
        .for_each(|(sample, dm)| {
            output_grad_tiles(&dz[sample * h * w * n..][..h * w * n], dm, geometry)
        });
    // dU_ξ = V_ξᵀ dM_ξ, then dg = Gᵀ dU G into each group's weight gradient.
    let mut du = Pooled::<E>::new(XI * c * n);
    products(&mut du, (c, n), |xi| {
        (
            frequency(&t.v, xi, tiles, c).t(),
            frequency(&dm, xi, tiles, n),
        )
    });
    let half = half::<E>();
    let mut tmp = vec![E::default(); 12 * n];
    let mut first = 0;
    for group in groups {
        let gc = group.channels;
        let dw = host::<E>(grads.get_or_alloc_mut(&group.weight)?);
        for ch in 0..gc {
            // Along each row of dU (tmp row i * 3 + s), then down the columns.
            for i in 0..4 {
                let x = rows(&du, c * n, (4 * i * c + first + ch) * n, n);
                lanes(x, strided_mut(&mut tmp[i * 3 * n..], n, 0, n), false, |r| {
                    gt_x(r, half)
                });
            }
            for s in 0..3 {
                let y = strided_mut(dw, 3 * gc * n, (s * gc + ch) * n, n);
                lanes(rows(&tmp, 3 * n, s * n, n), y, true, |col| gt_x(col, half));
            }
        }
        first += gc;
    }
    if groups.iter().all(|g| g.grad_target.is_none()) {
        return Ok(());
    }
    // dV_ξ = dM_ξ U_ξᵀ, `[16][tiles][channels]`, then dd = B dV Bᵀ onto the pixels.
    let mut dv = Pooled::<E>::new(XI * tiles * c);
    products(&mut dv, (tiles, c), |xi| {
        (
            frequency(&dm, xi, tiles, n),
            View::new(&t.u[xi * c * n..], c, n).t(),
        )
    });
    let mut first = 0;
    for group in groups {
        let gc = group.channels;
        if let (Some(x), true) = (&group.grad_target, gc > 0) {
            let grad_in = host::<E>(grads.get_or_alloc_mut(x)?);
            grad_in
                .par_chunks_mut(h * w * gc)
                .enumerate()
                .for_each(|(sample, g_in)| {
                    input_grad_tiles(&dv, g_in, sample, geometry, (first, gc, c))
                });
        }
        first += gc;
    }
    Ok(())
}

/// One sample's `dM = A dY Aᵀ` (`dm`: `[tiles of the sample][16][n]`) from its output
/// gradient `dz` (`[h*w, n]`); outputs past the image edge have none.
#[multiversion(targets("x86_64+avx512f", "x86_64+avx2"))]
fn output_grad_tiles<E: Dtype>(dz: &[E], dm: &mut [E], g: Geometry) {
    let Geometry {
        h, w, th, tw, n, ..
    } = g;
    let zeros = vec![E::default(); n];
    let mut tmp = vec![E::default(); 8 * n];
    for ty in 0..th {
        for tx in 0..tw {
            // Along each output row (tmp row oy * 4 + j), then down the columns.
            for oy in 0..2 {
                let y = 2 * ty + oy;
                let row: [&[E]; 2] = std::array::from_fn(|ox| {
                    let x = 2 * tx + ox;
                    if y < h && x < w {
                        &dz[(y * w + x) * n..][..n]
                    } else {
                        &zeros[..]
                    }
                });
                lanes(
                    row,
                    strided_mut(&mut tmp[oy * 4 * n..], n, 0, n),
                    false,
                    a_x,
                );
            }
            let tile = &mut dm[(ty * tw + tx) * XI * n..][..XI * n];
            for j in 0..4 {
                let y = strided_mut(tile, 4 * n, j * n, n);
                lanes(rows(&tmp, 4 * n, j * n, n), y, false, a_x);
            }
        }
    }
}

/// Adds one sample's `dd = B dV Bᵀ` onto its pixels' gradient `g_in` (`[h*w, gc]`), for the
/// group whose `gc` channels start at `first` of dV's `c` (`dv`: `[16][tiles][c]`).
#[multiversion(targets("x86_64+avx512f", "x86_64+avx2"))]
fn input_grad_tiles<E: Dtype>(
    dv: &[E],
    g_in: &mut [E],
    sample: usize,
    g: Geometry,
    (first, gc, c): (usize, usize, usize),
) {
    let Geometry {
        h,
        w,
        th,
        tw,
        tiles,
        ..
    } = g;
    let mut tmp = vec![E::default(); 16 * gc];
    let mut spare = vec![E::default(); 4 * gc];
    for ty in 0..th {
        for tx in 0..tw {
            let tile = (sample * th + ty) * tw + tx;
            // Along each row of dV (tmp row i * 4 + bb), then down the columns onto the
            // patch's pixels.
            for i in 0..4 {
                let x = rows(dv, tiles * c, (4 * i * tiles + tile) * c + first, gc);
                lanes(
                    x,
                    strided_mut(&mut tmp[i * 4 * gc..], gc, 0, gc),
                    false,
                    b_x,
                );
            }
            for bb in 0..4 {
                let x = (2 * tx + bb).wrapping_sub(1);
                let starts = std::array::from_fn(|aa| {
                    let y = (2 * ty + aa).wrapping_sub(1);
                    (y < h && x < w).then_some((y * w + x) * gc)
                });
                let y = rows_mut(g_in, starts, gc, &mut spare);
                lanes(rows(&tmp, 4 * gc, bb * gc, gc), y, true, b_x);
            }
        }
    }
}

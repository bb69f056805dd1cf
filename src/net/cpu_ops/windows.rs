//! The 3x3 windows of image batches as the im2col kernel reads them (copied out to columns,
//! and their gradients added back onto the pixels), and a layer's window input as both
//! kernels (im2col and Winograd) take it.

use dfdx::prelude::*;

use crate::net::ops::Images;

/// One image batch of a [`super::dense`] layer's windows block: its columns are
/// `offset..offset + 9 * channels`.
pub(super) struct WindowGroup<E: Dtype> {
    pub(super) grad_target: Option<Images<E, Cpu>>,
    pub(super) weight: Tensor<(usize, usize), E, Cpu>,
    pub(super) channels: usize,
    pub(super) offset: usize,
}

/// Where one sample's windows lie: the image is `h x w x c`; a window row of the column
/// matrix is `ld` long (it may hold other inputs' windows beside these); windows are centred
/// on every `stride`-th row and column (padding 1).
#[derive(Clone, Copy)]
pub(super) struct Layout {
    pub(super) h: usize,
    pub(super) w: usize,
    pub(super) c: usize,
    pub(super) ld: usize,
    pub(super) stride: usize,
}

impl Layout {
    /// Calls `f(column offset, input offset or None where the tap leaves the image)` for
    /// every window (row-major in the output) and tap (row-major in the window). Plain loops,
    /// not iterator adapters: this is the inner loop of im2col.
    #[inline(always)]
    fn for_each_tap(self, mut f: impl FnMut(usize, Option<usize>)) {
        let Layout {
            h,
            w,
            c,
            ld,
            stride,
        } = self;
        let ow = w.div_ceil(stride);
        for (oy, y) in (0..h).step_by(stride).enumerate() {
            for (ox, x) in (0..w).step_by(stride).enumerate() {
                let p = oy * ow + ox;
                for dy in 0..3 {
                    for dx in 0..3 {
                        let (sy, sx) = (y + dy, x + dx);
                        let at = p * ld + (dy * 3 + dx) * c;
                        let inside = sy >= 1 && sx >= 1 && sy <= h && sx <= w;
                        f(at, inside.then(|| ((sy - 1) * w + (sx - 1)) * c));
                    }
                }
            }
        }
    }
}

/// Copies sample `input` (`[h, w, c]`) into its 3x3 windows, zero outside: window `p`'s tap
/// `t` (row-major in the window) goes to `out[p * ld + t * c..][..c]`.
pub(super) fn im2col_sample<E: Dtype>(input: &[E], out: &mut [E], at: Layout) {
    let c = at.c;
    at.for_each_tap(|dst, src| {
        let dst = &mut out[dst..dst + c];
        match src {
            Some(s) => dst.copy_from_slice(&input[s..s + c]),
            None => dst.fill(E::default()),
        }
    });
}

/// The adjoint of [`im2col_sample`]: adds every window's gradient back onto its pixel.
pub(super) fn col2im_sample<E: Dtype>(grad_cols: &[E], grad_in: &mut [E], at: Layout) {
    let c = at.c;
    at.for_each_tap(|col, src| {
        if let Some(s) = src {
            let from = &grad_cols[col..col + c];
            for (g, &v) in grad_in[s..s + c].iter_mut().zip(from) {
                *g += v;
            }
        }
    });
}

//! The 3x3 windows of image batches as the im2col kernel reads them (copied out to columns,
//! and their gradients added back onto the pixels), and a layer's window input as both
//! kernels (im2col and Winograd) take it.

use dfdx::prelude::*;

use crate::net::ops::Images;

/// One image batch of a [`super::dense`] layer's windows block: its columns are `offset..offset + 9 * channels`.
pub(super) struct WindowGroup<E: Dtype> {
    pub(super) grad_target: Option<Images<E, Cpu>>,
    pub(super) weight: Tensor<(usize, usize), E, Cpu>,
    pub(super) channels: usize,
    pub(super) offset: usize,
}

/// Copies sample `input` (`[h, w, c]`) into its 3x3 windows, zero outside: pixel `p`'s tap
/// `t` (row-major in the window) goes to `out[p * ld + t * c..][..c]`. `ld` is the row length
/// of the column matrix, which may hold other inputs' windows beside these.
pub(super) fn im2col_sample<E: Dtype>(
    input: &[E],
    out: &mut [E],
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
pub(super) fn col2im_sample<E: Dtype>(
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

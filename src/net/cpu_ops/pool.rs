//! The 2x2 max-pool, registered on dfdx's tape: parallel over the batch, vectorised over
//! channels.

use dfdx::prelude::*;
use rayon::prelude::*;

use super::memory::{with_host_data, with_scratch, Pooled};
use crate::net::ops::Images;

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

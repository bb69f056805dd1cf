//! Custom CPU kernels registered on dfdx's tape, replacing the slow generic paths of the
//! composed ops (dfdx's CPU gather walks an n-dimensional index per element).
//!
//! Each kernel has a finite-difference test and an equivalence test against the composed op
//! it replaces (`tests/gradients.rs`).

use std::any::{Any, TypeId};
use std::cell::RefCell;
use std::collections::HashMap;

use dfdx::prelude::*;
use rayon::prelude::*;

use super::ops::Images;

thread_local! {
    /// Reusable host buffers per element type, slot and thread. The kernels' large outputs
    /// are computed here and copied into tensors from dfdx's buffer cache: buffers adopted
    /// with `tensor_from_vec` would never be reused by that cache, and fresh allocations of
    /// tens of megabytes every step cost page faults.
    static SCRATCH: RefCell<HashMap<(TypeId, Slot), Box<dyn Any>>> = RefCell::new(HashMap::new());
}

/// Which scratch buffer: kernels use one for their output and one for a copy of their input.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
enum Slot {
    Output,
    Input,
}

/// Runs `f` with this thread's scratch buffer for `E` in `slot`, at least `len` long.
fn with_scratch<E: Dtype, R>(slot: Slot, len: usize, f: impl FnOnce(&mut [E]) -> R) -> R {
    // Take the buffer out while `f` runs, so a nested use of the same slot cannot alias it.
    let key = (TypeId::of::<E>(), slot);
    let mut buf: Vec<E> = SCRATCH
        .with(|cell| cell.borrow_mut().remove(&key))
        .and_then(|any| any.downcast::<Vec<E>>().ok().map(|b| *b))
        .unwrap_or_default();
    if buf.len() < len {
        buf.resize(len, E::default());
    }
    let result = f(&mut buf[..len]);
    SCRATCH.with(|cell| cell.borrow_mut().insert(key, Box::new(buf)));
    result
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
    with_scratch::<E, _>(Slot::Input, len, |buf| {
        t.copy_into(buf);
        f(buf)
    })
}

/// Copies sample `input` (`[h, w, c]`) into its 3x3 windows (`[h*w, 9, c]`), zero outside.
fn im2col_sample<E: Dtype>(input: &[E], out: &mut [E], h: usize, w: usize, c: usize) {
    for y in 0..h {
        for x in 0..w {
            let p = y * w + x;
            for dy in 0..3 {
                for dx in 0..3 {
                    let k = dy * 3 + dx;
                    let dst = &mut out[(p * 9 + k) * c..(p * 9 + k + 1) * c];
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
fn col2im_sample<E: Dtype>(grad_cols: &[E], grad_in: &mut [E], h: usize, w: usize, c: usize) {
    for y in 0..h {
        for x in 0..w {
            let p = y * w + x;
            for dy in 0..3 {
                for dx in 0..3 {
                    let (sy, sx) = (y + dy, x + dx);
                    if sy >= 1 && sx >= 1 && sy <= h && sx <= w {
                        let k = dy * 3 + dx;
                        let src = &grad_cols[(p * 9 + k) * c..(p * 9 + k + 1) * c];
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

/// `[b, h, w, c]` -> `[b, h*w, 9c]`: every pixel's 3x3 neighbourhood, zero-padded, on the
/// CPU, parallel over the batch; the backward pass adds the window gradients back.
pub fn im2col3x3<E: Dtype, T: Tape<E, Cpu>>(
    x: Images<E, Cpu, T>,
) -> Tensor<(usize, usize, usize), E, Cpu, T> {
    let (b, h, w, c) = *x.shape();
    let (x, mut tape) = x.split_tape();
    let (per_in, per_out) = (h * w * c, h * w * 9 * c);
    let mut out = x.device().zeros_like(&(b, h * w, 9 * c));
    with_host_data(&x, |input| {
        with_scratch::<E, _>(Slot::Output, b * per_out, |cols| {
            if per_in > 0 {
                cols.par_chunks_mut(per_out)
                    .zip(input.par_chunks(per_in))
                    .for_each(|(out, inp)| im2col_sample(inp, out, h, w, c));
            }
            out.copy_from(cols);
        })
    });
    let (x_ghost, out_ghost) = (x.ghost(), out.ghost());
    tape.add_backward_op(move |grads| {
        let n = b * per_out;
        with_scratch::<E, _>(Slot::Output, n, |grad_cols| {
            grad_cols.copy_from_slice(&grads.get_or_alloc_mut(&out_ghost)?[..n]);
            let grad_in = grads.get_or_alloc_mut(&x_ghost)?;
            if per_in > 0 {
                grad_in
                    .par_chunks_mut(per_in)
                    .zip(grad_cols.par_chunks(per_out))
                    .for_each(|(g_in, g_cols)| col2im_sample(g_cols, g_in, h, w, c));
            }
            Ok(())
        })
    });
    out.put_tape(tape)
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
    let mut winners = vec![0u32; b * per_out];
    let mut out = x.device().zeros_like(&(b, oh, ow, c));
    with_host_data(&x, |input| {
        with_scratch::<E, _>(Slot::Output, b * per_out, |pooled| {
            if per_out > 0 {
                pooled
                    .par_chunks_mut(per_out)
                    .zip(winners.par_chunks_mut(per_out))
                    .zip(input.par_chunks(per_in))
                    .for_each(|((out, win), inp)| {
                        for y in 0..oh {
                            for xx in 0..ow {
                                for ch in 0..c {
                                    let at = |dy: usize, dx: usize| {
                                        ((2 * y + dy) * w + 2 * xx + dx) * c + ch
                                    };
                                    let mut best = at(0, 0);
                                    for (dy, dx) in [(0, 1), (1, 0), (1, 1)] {
                                        if 2 * y + dy >= h || 2 * xx + dx >= w {
                                            continue;
                                        }
                                        if inp[at(dy, dx)] > inp[best] {
                                            best = at(dy, dx);
                                        }
                                    }
                                    let o = (y * ow + xx) * c + ch;
                                    out[o] = inp[best];
                                    win[o] = best as u32;
                                }
                            }
                        }
                    });
            }
            out.copy_from(pooled);
        })
    });
    let (x_ghost, out_ghost) = (x.ghost(), out.ghost());
    tape.add_backward_op(move |grads| {
        let n = b * per_out;
        with_scratch::<E, _>(Slot::Output, n, |grad_out| {
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

/// The host slice behind a CPU gradient buffer. (A separate function: in generic code bounded
/// by `Cpu: Device<E>`, the buffer type stays opaque.)
fn host<E: Dtype>(v: &mut <Cpu as Storage<E>>::Vec) -> &mut [E] {
    v
}

/// `x · w` where `x` is network input (no gradient needed) and `w` a parameter: the backward
/// pass computes only `dw = xᵀ · dz`. dfdx's matmul would also compute the input's gradient,
/// a quarter of an MLP's backward work when every layer reads the input through a skip.
pub fn input_matmul<E: Dtype, T: Tape<E, Cpu>>(
    x: Tensor<(usize, usize), E, Cpu>,
    w: Tensor<(usize, usize), E, Cpu, T>,
) -> Tensor<(usize, usize), E, Cpu, T>
where
    Cpu: Device<E>,
{
    let (w, mut tape) = w.split_tape();
    let z = x.clone().matmul(w.clone());
    let (w_ghost, z_ghost) = (w.ghost(), z.ghost());
    let ((b, inputs), n) = (*x.shape(), z.shape().1);
    tape.add_backward_op(move |grads| {
        with_host_data(&x, |x| {
            with_scratch::<E, _>(Slot::Output, b * n, |dz| -> Result<(), CpuError> {
                dz.copy_from_slice(host::<E>(grads.get_or_alloc_mut(&z_ghost)?));
                let dw = host::<E>(grads.get_or_alloc_mut(&w_ghost)?);
                // The gemm below reads and writes through raw pointers: check every length,
                // in release builds too.
                assert_eq!(
                    (x.len(), dz.len(), dw.len()),
                    (b * inputs, b * n, inputs * n),
                    "input matmul buffers"
                );
                let one = E::from_f64(1.0).expect("1 is representable");
                // dw += xᵀ · dz, all row-major: xᵀ is x read with swapped strides.
                // SAFETY: the three buffers have the lengths asserted above and do not
                // overlap (x and dz are this thread's two scratch buffers; dw is the weight's
                // gradient).
                unsafe {
                    gemm::gemm(
                        inputs,
                        n,
                        b,
                        dw.as_mut_ptr(),
                        1,
                        n as isize,
                        true,
                        x.as_ptr(),
                        inputs as isize,
                        1,
                        dz.as_ptr(),
                        1,
                        n as isize,
                        one,
                        one,
                        false,
                        false,
                        false,
                        gemm::Parallelism::Rayon(rayon::current_num_threads()),
                    );
                }
                Ok(())
            })
        })
    });
    z.put_tape(tape)
}

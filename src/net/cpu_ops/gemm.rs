//! Matrix products on host buffers: strided views (a transpose is a swap of strides) and
//! `gemm` with its AVX-512 kernels, parallel over blocks of rows.

use dfdx::prelude::*;
use rayon::prelude::*;

/// A matrix in a host buffer: `rows x cols` with element `(r, c)` at `r * rs + c * cs`.
#[derive(Clone, Copy)]
pub(super) struct View<'a, E> {
    pub(super) data: &'a [E],
    pub(super) rows: usize,
    pub(super) cols: usize,
    pub(super) rs: usize,
    pub(super) cs: usize,
}

impl<'a, E> View<'a, E> {
    /// A row-major `rows x cols` matrix.
    pub(super) fn new(data: &'a [E], rows: usize, cols: usize) -> Self {
        Self {
            data,
            rows,
            cols,
            rs: cols,
            cs: 1,
        }
    }

    /// The transpose, by swapping the strides (no copy).
    pub(super) fn t(self) -> Self {
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
pub(super) fn matmul_into<E: Dtype>(dst: &mut [E], a: View<E>, b: View<E>, accumulate: bool) {
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
pub(super) fn gemm_serial<E: Dtype>(dst: &mut [E], a: View<E>, b: View<E>, accumulate: bool) {
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

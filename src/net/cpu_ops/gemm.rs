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
    gemm_strided(dst, b.cols, a, b, accumulate);
}

/// `dst = a · b` (or `+=`) into an `a.rows x b.cols` block of a row-major buffer whose rows
/// lie `dst_rs` apart (some columns of a wider matrix), on the calling thread.
pub(super) fn gemm_strided<E: Dtype>(
    dst: &mut [E],
    dst_rs: usize,
    a: View<E>,
    b: View<E>,
    accumulate: bool,
) {
    let (m, k, n) = (a.rows, a.cols, b.cols);
    // gemm reads and writes through raw pointers: check every bound, in release builds too.
    assert!(
        b.rows == k && a.in_bounds() && b.in_bounds(),
        "matmul inputs: {m}x{k} by {}x{n}",
        b.rows
    );
    assert!(
        m == 0 || n == 0 || (dst_rs >= n && (m - 1) * dst_rs + n <= dst.len()),
        "matmul output: {m}x{n} with rows {dst_rs} apart into {}",
        dst.len()
    );
    let a_ptr = Strided::of(&a);
    // SAFETY: every block is in bounds (asserted) and `dst` is a unique borrow, so it overlaps
    // neither input.
    unsafe {
        gemm_raw(
            m,
            k,
            dst.as_mut_ptr(),
            dst_rs,
            a_ptr,
            Strided::of(&b),
            n,
            accumulate,
        )
    }
}

/// Columns `from` of a row-major buffer of `rows` rows `rs` apart, times `b`, into its
/// `b.cols` columns starting at `to`, which must lie apart from `from`: one layer's output
/// into later layers' sums in the same buffer, without a copy.
pub(super) fn gemm_columns<E: Dtype>(
    buf: &mut [E],
    rows: usize,
    rs: usize,
    from: std::ops::Range<usize>,
    to: usize,
    b: View<E>,
    accumulate: bool,
) {
    let (k, n) = (from.len(), b.cols);
    assert!(
        b.rows == k && b.in_bounds(),
        "matmul: {rows}x{k} by {}x{n}",
        b.rows
    );
    assert!(
        from.end <= rs && to + n <= rs && rows * rs <= buf.len(),
        "columns {from:?} and {to}..{} of {rows}x{rs} in {}",
        to + n,
        buf.len()
    );
    assert!(
        from.end <= to || to + n <= from.start,
        "columns {from:?} read while {to}..{} are written",
        to + n
    );
    let base = buf.as_mut_ptr();
    // Raw pointers only: a shared slice of the rows read would span elements gemm writes.
    let a = Strided {
        ptr: base.wrapping_add(from.start) as *const E,
        rs,
        cs: 1,
    };
    // SAFETY: both column ranges lie inside the buffer's rows (asserted) and do not overlap,
    // so gemm reads no element it writes; `buf` is a unique borrow.
    unsafe { gemm_raw(rows, k, base.add(to), rs, a, Strided::of(&b), n, accumulate) }
}

/// A matrix by its first element's address and strides.
struct Strided<E> {
    ptr: *const E,
    rs: usize,
    cs: usize,
}

impl<E> Strided<E> {
    fn of(view: &View<E>) -> Self {
        Self {
            ptr: view.data.as_ptr(),
            rs: view.rs,
            cs: view.cs,
        }
    }
}

/// gemm: `dst` (`m x n`, rows `dst_rs` apart) `=` or `+=` `a` (`m x k`) `·` `b` (`k x n`).
///
/// # Safety
/// Every block must be valid for its extent, and `dst` must overlap no element of the inputs.
#[allow(clippy::too_many_arguments)]
unsafe fn gemm_raw<E: Dtype>(
    m: usize,
    k: usize,
    dst: *mut E,
    dst_rs: usize,
    a: Strided<E>,
    b: Strided<E>,
    n: usize,
    accumulate: bool,
) {
    if m == 0 || n == 0 {
        return;
    }
    if k == 0 {
        if !accumulate {
            for r in 0..m {
                // SAFETY: row `r` of the block is valid (the caller's promise).
                unsafe { std::slice::from_raw_parts_mut(dst.add(r * dst_rs), n) }
                    .fill(E::default());
            }
        }
        return;
    }
    let one = E::from_f64(1.0).expect("1 is representable");
    // SAFETY: the blocks are valid and apart (the caller's promise).
    unsafe {
        gemm::gemm(
            m,
            n,
            k,
            dst,
            1,
            dst_rs as isize,
            accumulate,
            a.ptr,
            a.cs as isize,
            a.rs as isize,
            b.ptr,
            b.cs as isize,
            b.rs as isize,
            one,
            one,
            false,
            false,
            false,
            gemm::Parallelism::None,
        )
    };
}

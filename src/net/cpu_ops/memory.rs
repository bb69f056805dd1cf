//! Host memory for the kernels: buffers from a per-thread pool (the same sizes come back
//! every step, and fresh megabytes cost page faults), host copies of tensors, and the host
//! slices behind CPU buffers.

use std::any::{Any, TypeId};
use std::cell::RefCell;
use std::collections::HashMap;

use dfdx::prelude::*;

use crate::net::ops::HostMirror;

/// Runs `f` with a host buffer of `len` elements from this thread's pool ([`Pooled`];
/// contents unspecified). The kernels' large outputs are computed in these and copied into
/// tensors from dfdx's buffer cache: buffers adopted with `tensor_from_vec` would never be
/// reused by that cache, and fresh allocations of megabytes every step cost page faults.
pub(super) fn with_scratch<E: Dtype, R>(len: usize, f: impl FnOnce(&mut [E]) -> R) -> R {
    f(&mut Pooled::<E>::new(len))
}

/// Runs `f` on the host data of a contiguous CPU tensor (a memcpy into scratch; dfdx's
/// `as_vec` walks the strides element by element, which is far slower).
pub(super) fn with_host_data<S: Shape, E: Dtype, T, R>(
    t: &Tensor<S, E, Cpu, T>,
    f: impl FnOnce(&[E]) -> R,
) -> R
where
    Cpu: CopySlice<E>,
{
    let len = t.shape().num_elements();
    with_scratch::<E, _>(len, |buf| {
        t.copy_into(buf);
        f(buf)
    })
}

thread_local! {
    /// Buffers [`Pooled`] hands out, per element type, returned when their owner drops.
    static POOL: RefCell<HashMap<TypeId, Box<dyn Any>>> = RefCell::new(HashMap::new());
}

/// A host buffer from this thread's pool, returned to it on drop (so nested uses never
/// share one). [`super::dense::dense`] also keeps its host copies from the forward to the
/// backward pass in these: fresh allocations of megabytes every step would cost page faults,
/// and a training step needs the same sizes every time.
pub(super) struct Pooled<E: Dtype> {
    /// Never shorter than `len`. A buffer keeps its length when reused for fewer elements,
    /// so it is not filled again each time it serves a larger request (the kernels of one
    /// step ask for many sizes; refilling cost 4% of a CNN step).
    buf: Vec<E>,
    len: usize,
}

impl<E: Dtype> Pooled<E> {
    /// A buffer of `len` elements (contents unspecified: the caller overwrites them).
    pub(super) fn new(len: usize) -> Self {
        let key = TypeId::of::<E>();
        let mut buf = POOL
            .with(|pool| {
                let mut pool = pool.borrow_mut();
                let free = pool.get_mut(&key)?.downcast_mut::<Vec<Vec<E>>>()?;
                // The smallest buffer that fits, else the largest (it grows).
                let fit = (0..free.len())
                    .filter(|&i| free[i].capacity() >= len)
                    .min_by_key(|&i| free[i].capacity())
                    .or_else(|| (0..free.len()).max_by_key(|&i| free[i].capacity()))?;
                Some(free.swap_remove(fit))
            })
            .unwrap_or_default();
        if buf.len() < len {
            buf.resize(len, E::default());
        }
        Pooled { buf, len }
    }
}

impl<E: Dtype> Drop for Pooled<E> {
    fn drop(&mut self) {
        let buf = std::mem::take(&mut self.buf);
        // During thread teardown the pool may be gone; the buffer is then simply freed.
        let _ = POOL.try_with(|pool| {
            pool.borrow_mut()
                .entry(TypeId::of::<E>())
                .or_insert_with(|| Box::new(Vec::<Vec<E>>::new()))
                .downcast_mut::<Vec<Vec<E>>>()
                .expect("the pool is keyed by element type")
                .push(buf)
        });
    }
}

/// Host values a kernel reads: its own pooled copy or a shared host mirror.
pub(super) enum HostData<E: Dtype> {
    Pooled(Pooled<E>),
    Shared(HostMirror<E>),
}

impl<E: Dtype> std::ops::Deref for HostData<E> {
    type Target = [E];
    fn deref(&self) -> &[E] {
        match self {
            HostData::Pooled(p) => p,
            HostData::Shared(s) => s,
        }
    }
}

impl<E: Dtype> std::ops::Deref for Pooled<E> {
    type Target = [E];
    fn deref(&self) -> &[E] {
        &self.buf[..self.len]
    }
}

impl<E: Dtype> std::ops::DerefMut for Pooled<E> {
    fn deref_mut(&mut self) -> &mut [E] {
        &mut self.buf[..self.len]
    }
}

/// The host slice behind a CPU gradient buffer. (A separate function: in generic code bounded
/// by `Cpu: Device<E>`, the buffer type stays opaque.)
pub(super) fn host<E: Dtype>(v: &mut <Cpu as Storage<E>>::Vec) -> &mut [E] {
    v
}

/// [`host`], read-only.
pub(super) fn host_ref<E: Dtype>(v: &<Cpu as Storage<E>>::Vec) -> &[E] {
    v
}

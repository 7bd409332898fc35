//! The optimizer handle: its lifecycle (create, destroy), its lock, and the queries about
//! its shape (dtype, tensors, sizes).

use std::sync::{RwLock, RwLockReadGuard, RwLockWriteGuard, TryLockError};

use super::boundary::*;
use super::dtype::*;
use super::options::{RmspropOptions, options_ref};
use super::status::*;
use crate::any::{AnyElement, DtypeMismatch};
use crate::optimizer::Optimizer;
use crate::with_any;

/// Opaque optimizer: `optax.rmsprop` state over a layout of tensors, in one dtype.
///
/// Threading: functions taking `const RmspropOptimizer *` may run concurrently with each
/// other; functions taking `RmspropOptimizer *` must not run concurrently with any other
/// call on the same handle. Breaking this is detected: the late caller gets
/// `RMSPROP_ERR_BUSY` and nothing happens (no data race). Different handles are independent.
pub struct RmspropOptimizer {
    inner: RwLock<Inner>,
}

/// The optimizer behind a handle, in its dtype: the core's [`AnyOptimizer`], driven with
/// [`with_any!`](crate::with_any).
pub(crate) use crate::any::AnyOptimizer as Engine;

/// What the lock guards: the engine, and buffers reused per call (pointer-list views and
/// overlap spans), so that a step allocates nothing.
pub(crate) struct Inner {
    pub(crate) engine: Engine,
    pub(crate) views: Vec<[usize; 2]>,
    pub(crate) views2: Vec<[usize; 2]>,
    pub(crate) spans: Vec<(usize, usize)>,
}

/// Element types of the typed entry points: the handle's optimizer as `Optimizer<Self>`,
/// or `RMSPROP_ERR_WRONG_DTYPE` naming both dtypes.
pub(crate) trait Elem: AnyElement {
    fn get(e: &Engine) -> Result<&Optimizer<Self>, CError> {
        e.get::<Self>().map_err(wrong_dtype)
    }
    fn get_mut(e: &mut Engine) -> Result<&mut Optimizer<Self>, CError> {
        e.get_mut::<Self>().map_err(wrong_dtype)
    }
}
impl<T: AnyElement> Elem for T {}

fn wrong_dtype(m: DtypeMismatch) -> CError {
    CError::WrongDtype {
        expected: m.optimizer.name(),
        got: m.requested.name(),
    }
}

fn handle_ref<'a>(h: *const RmspropOptimizer) -> Result<&'a RmspropOptimizer, CError> {
    // SAFETY: the caller passes a live handle from `rmsprop_create` (documented). All
    // mutation goes through the RwLock inside.
    unsafe { object(h, "optimizer") }
}

/// Check a handle pointer by the pointer rule without locking it.
pub(crate) fn check_handle(h: *const RmspropOptimizer) -> Result<(), CError> {
    handle_ref(h).map(|_| ())
}

/// The handle's read lock (for `const` entry points); `RMSPROP_ERR_BUSY` when a mutating
/// call holds it.
pub(crate) fn read<'a>(h: *const RmspropOptimizer) -> Result<RwLockReadGuard<'a, Inner>, CError> {
    match handle_ref(h)?.inner.try_read() {
        Ok(g) => Ok(g),
        Err(TryLockError::WouldBlock) => Err(CError::Busy),
        Err(TryLockError::Poisoned(_)) => Err(CError::Poisoned),
    }
}

/// The handle's write lock (for mutating entry points); `RMSPROP_ERR_BUSY` when any other
/// call holds it.
pub(crate) fn write<'a>(h: *mut RmspropOptimizer) -> Result<RwLockWriteGuard<'a, Inner>, CError> {
    match handle_ref(h)?.inner.try_write() {
        Ok(g) => Ok(g),
        Err(TryLockError::WouldBlock) => Err(CError::Busy),
        Err(TryLockError::Poisoned(_)) => Err(CError::Poisoned),
    }
}

/// Run `f` on a handle's engine under its read lock.
pub(crate) fn with_engine<R>(
    h: *const RmspropOptimizer,
    f: impl FnOnce(&Engine) -> Result<R, CError>,
) -> Result<R, CError> {
    f(&read(h)?.engine)
}

/// Run `f` on a handle's engine under its write lock.
pub(crate) fn with_engine_mut<R>(
    h: *mut RmspropOptimizer,
    f: impl FnOnce(&mut Engine) -> Result<R, CError>,
) -> Result<R, CError> {
    f(&mut write(h)?.engine)
}

/// The body of every `const` query: `*out = f(engine)` under the read lock.
pub(crate) fn query<R>(
    h: *const RmspropOptimizer,
    out: *mut R,
    f: impl FnOnce(&Engine) -> Result<R, CError>,
) -> RmspropStatus {
    boundary_ok(|| {
        let v = with_engine(h, f)?;
        write_out(out, "out", v)
    })
}

/// The body of every mutating call without buffers: `f(engine)` under the write lock.
pub(crate) fn mutate(
    h: *mut RmspropOptimizer,
    f: impl FnOnce(&mut Engine) -> Result<(), CError>,
) -> RmspropStatus {
    boundary_ok(|| with_engine_mut(h, f))
}

/// A new handle around `engine`.
pub(crate) fn new_handle(engine: Engine) -> Box<RmspropOptimizer> {
    Box::new(RmspropOptimizer {
        inner: RwLock::new(Inner {
            engine,
            views: Vec::new(),
            views2: Vec::new(),
            spans: Vec::new(),
        }),
    })
}

/// Create an optimizer: optax `rmsprop(...).init(params)` for `num_tensors` tensors of
/// `sizes[i]` elements (0 allowed) in `dtype` (`RMSPROP_DTYPE_F32`, `_F64`, `_BF16` or `_F16`).
/// `nu` starts at `initial_scale`, `mu` and `trace` at 0, counts at 0.
///
/// Ownership: `options` is only read (free it whenever you like); on success `*out` owns a
/// new handle, to be released with `rmsprop_destroy`. `sizes` may be NULL when
/// `num_tensors` is 0. Threads: rayon's global pool until `rmsprop_set_threads`.
/// Errors: `RMSPROP_ERR_NULL_POINTER`, `RMSPROP_ERR_MISALIGNED` (`options`, `sizes`, `out`),
/// `RMSPROP_ERR_BAD_ENUM` (dtype), `RMSPROP_ERR_OVERFLOW` (the total size or the state's
/// byte size overflows; `num_tensors` too large for the `sizes` array; a pointer range wraps
/// the address space), `RMSPROP_ERR_OUT_OF_MEMORY` (the state cannot be allocated),
/// `RMSPROP_ERR_INVALID_HYPERPARAMETER` (`RMSPROP_FLAVOR_PYTORCH` with nesterov or bias
/// correction set, see `rmsprop_options_set_flavor`); `*out` untouched on error. Any thread.
#[unsafe(no_mangle)]
pub extern "C" fn rmsprop_create(
    options: *const RmspropOptions,
    sizes: *const usize,
    num_tensors: usize,
    dtype: RmspropDtype,
    out: *mut *mut RmspropOptimizer,
) -> RmspropStatus {
    boundary_ok(|| {
        let o = options_ref(options)?;
        // SAFETY: the caller passes `num_tensors` readable sizes (documented).
        let sizes = unsafe { slice(sizes, num_tensors, "sizes")? };
        check_out(out, "out")?;
        let mut engine = Engine::new(dtype_arg(dtype)?, o.config.clone(), sizes)?;
        with_any!(&mut engine, e => e.set_skip_non_finite(o.skip_non_finite));
        with_any!(&mut engine, e => e.set_transforms(o.transforms))?;
        with_any!(&mut engine, e => e.set_flavor(o.flavor))?;
        write_box(out, "out", new_handle(engine))
    })
}

/// Destroy an optimizer and free its state. NULL is a no-op.
///
/// Ownership: `optimizer` must come from `rmsprop_create` (or
/// `rmsprop_create_from_checkpoint`) and is invalid afterwards; using it again is undefined
/// behaviour (not detectable). Must not race with other calls on it.
#[unsafe(no_mangle)]
pub extern "C" fn rmsprop_destroy(optimizer: *mut RmspropOptimizer) {
    // SAFETY: NULL or a handle from `rmsprop_create`, destroyed once (documented).
    unsafe { free_box(optimizer) }
}

/// The optimizer's dtype (`RMSPROP_DTYPE_F32`, `_F64`, `_BF16` or `_F16`) into `*out`.
///
/// Every query (`rmsprop_dtype`, `rmsprop_num_tensors`, ...): errors
/// `RMSPROP_ERR_NULL_POINTER`, `RMSPROP_ERR_MISALIGNED`, `RMSPROP_ERR_OVERFLOW` (`optimizer`
/// or `out` is NULL, misaligned, or wraps the address space), `RMSPROP_ERR_BUSY` (a
/// mutating call is running on this handle), `RMSPROP_ERR_POISONED`; `*out` untouched on
/// error. Threading: const, may run concurrently with other const calls on the handle.
#[unsafe(no_mangle)]
pub extern "C" fn rmsprop_dtype(
    optimizer: *const RmspropOptimizer,
    out: *mut RmspropDtype,
) -> RmspropStatus {
    query(optimizer, out, |e| Ok(e.dtype().tag() as RmspropDtype))
}

/// The number of tensors in the layout into `*out`. Errors as `rmsprop_dtype`.
#[unsafe(no_mangle)]
pub extern "C" fn rmsprop_num_tensors(
    optimizer: *const RmspropOptimizer,
    out: *mut usize,
) -> RmspropStatus {
    query(optimizer, out, |e| Ok(with_any!(e, o => o.layout().len())))
}

/// The total element count of the layout (the length of the flat buffers) into `*out`.
/// Errors as `rmsprop_dtype`.
#[unsafe(no_mangle)]
pub extern "C" fn rmsprop_total_elements(
    optimizer: *const RmspropOptimizer,
    out: *mut usize,
) -> RmspropStatus {
    query(optimizer, out, |e| {
        Ok(with_any!(e, o => o.layout().total()))
    })
}

/// The size of tensor `tensor` into `*out`. Errors as `rmsprop_dtype`, and
/// `RMSPROP_ERR_OUT_OF_RANGE` (no such tensor).
#[unsafe(no_mangle)]
pub extern "C" fn rmsprop_tensor_size(
    optimizer: *const RmspropOptimizer,
    tensor: usize,
    out: *mut usize,
) -> RmspropStatus {
    query(optimizer, out, |e| {
        Ok(with_any!(e, o => o.layout().range(tensor)?.len()))
    })
}

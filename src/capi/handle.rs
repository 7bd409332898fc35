//! The optimizer handle: create, step, state access, hyperparameters, threads.

use std::sync::{RwLock, RwLockReadGuard, RwLockWriteGuard, TryLockError};

use super::options::{RmspropOptions, RmspropSchedule, sched};
use super::status::*;
use crate::config::LearningRate;
use crate::optimizer::{Component, Counts, Optimizer, Outcome};
use crate::real::Real;

/// Opaque optimizer: `optax.rmsprop` state over a layout of tensors, in one dtype.
///
/// Threading: functions taking `const RmspropOptimizer *` may run concurrently with each
/// other; functions taking `RmspropOptimizer *` must not run concurrently with any other
/// call on the same handle. Breaking this is detected: the late caller gets
/// `RMSPROP_ERR_BUSY` and nothing happens (no data race). Different handles are independent.
pub struct RmspropOptimizer {
    inner: RwLock<Inner>,
}

pub(crate) enum Engine {
    F32(Optimizer<f32>),
    F64(Optimizer<f64>),
}

struct Inner {
    engine: Engine,
    /// Reused per call: pointer-list views and overlap spans, so a step allocates nothing.
    views: Vec<[usize; 2]>,
    views2: Vec<[usize; 2]>,
    spans: Vec<(usize, usize)>,
}

/// Element types of the typed entry points.
pub(crate) trait Elem: Real {
    const DTYPE: RmspropDtype;
    fn get(e: &Engine) -> Result<&Optimizer<Self>, CError>;
    fn get_mut(e: &mut Engine) -> Result<&mut Optimizer<Self>, CError>;
}

fn dtype_name(e: &Engine) -> &'static str {
    match e {
        Engine::F32(_) => "f32",
        Engine::F64(_) => "f64",
    }
}

macro_rules! elem {
    ($t:ty, $v:ident, $d:ident) => {
        impl Elem for $t {
            const DTYPE: RmspropDtype = $d;
            fn get(e: &Engine) -> Result<&Optimizer<Self>, CError> {
                match e {
                    Engine::$v(o) => Ok(o),
                    other => Err(CError::WrongDtype {
                        expected: dtype_name(other),
                        got: <$t>::NAME,
                    }),
                }
            }
            fn get_mut(e: &mut Engine) -> Result<&mut Optimizer<Self>, CError> {
                match e {
                    Engine::$v(o) => Ok(o),
                    other => Err(CError::WrongDtype {
                        expected: dtype_name(other),
                        got: <$t>::NAME,
                    }),
                }
            }
        }
    };
}
elem!(f32, F32, RMSPROP_DTYPE_F32);
elem!(f64, F64, RMSPROP_DTYPE_F64);

macro_rules! both {
    // Run the same code on whichever engine the handle has.
    ($e:expr, $o:ident => $body:expr) => {
        match $e {
            Engine::F32($o) => $body,
            Engine::F64($o) => $body,
        }
    };
}

fn handle_ref<'a>(h: *const RmspropOptimizer) -> Result<&'a RmspropOptimizer, CError> {
    if h.is_null() {
        return Err(CError::Null("optimizer"));
    }
    if !h.is_aligned() {
        return Err(CError::Misaligned("optimizer"));
    }
    // SAFETY: non-NULL and aligned; the caller passes a live handle from `rmsprop_create`
    // (documented). All mutation goes through the RwLock inside.
    Ok(unsafe { &*h })
}

fn read<'a>(h: *const RmspropOptimizer) -> Result<RwLockReadGuard<'a, Inner>, CError> {
    match handle_ref(h)?.inner.try_read() {
        Ok(g) => Ok(g),
        Err(TryLockError::WouldBlock) => Err(CError::Busy),
        Err(TryLockError::Poisoned(_)) => Err(CError::Poisoned),
    }
}

fn write<'a>(h: *mut RmspropOptimizer) -> Result<RwLockWriteGuard<'a, Inner>, CError> {
    match handle_ref(h)?.inner.try_write() {
        Ok(g) => Ok(g),
        Err(TryLockError::WouldBlock) => Err(CError::Busy),
        Err(TryLockError::Poisoned(_)) => Err(CError::Poisoned),
    }
}

/// Run `f` on a handle's engine under its read lock (for `const` entry points elsewhere
/// in the C API: checkpoints).
pub(crate) fn with_engine<R>(
    h: *const RmspropOptimizer,
    f: impl FnOnce(&Engine) -> Result<R, CError>,
) -> Result<R, CError> {
    f(&read(h)?.engine)
}

/// Run `f` on a handle's engine under its write lock (for mutating entry points elsewhere
/// in the C API: checkpoints).
pub(crate) fn with_engine_mut<R>(
    h: *mut RmspropOptimizer,
    f: impl FnOnce(&mut Engine) -> Result<R, CError>,
) -> Result<R, CError> {
    f(&mut write(h)?.engine)
}

/// A new handle around `engine` (as `rmsprop_create` builds one).
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

fn component(c: RmspropComponent) -> Result<Component, CError> {
    match c {
        RMSPROP_NU => Ok(Component::Nu),
        RMSPROP_MU => Ok(Component::Mu),
        RMSPROP_TRACE => Ok(Component::Trace),
        other => Err(CError::BadEnum {
            what: "component",
            value: other as i64,
        }),
    }
}

fn outcome(o: Outcome) -> RmspropStatus {
    match o {
        Outcome::Applied => RMSPROP_OK,
        Outcome::Skipped => RMSPROP_SKIPPED_NON_FINITE,
    }
}

/// Create an optimizer: optax `rmsprop(...).init(params)` for `num_tensors` tensors of
/// `sizes[i]` elements (0 allowed) in `dtype` (`RMSPROP_DTYPE_F32` or `RMSPROP_DTYPE_F64`).
/// `nu` starts at `initial_scale`, `mu` and `trace` at 0, counts at 0.
///
/// Ownership: `options` is only read (free it whenever you like); on success `*out` owns a
/// new handle, to be released with `rmsprop_destroy`. `sizes` may be NULL when
/// `num_tensors` is 0. Threads: rayon's global pool until `rmsprop_set_threads`.
/// Errors: `RMSPROP_ERR_NULL_POINTER`, `RMSPROP_ERR_BAD_ENUM` (dtype),
/// `RMSPROP_ERR_INVALID_HYPERPARAMETER` / `RMSPROP_ERR_INVALID_SCHEDULE` (options),
/// `RMSPROP_ERR_OVERFLOW` (total size); `*out` untouched on error. Any thread.
#[unsafe(no_mangle)]
pub extern "C" fn rmsprop_create(
    options: *const RmspropOptions,
    sizes: *const usize,
    num_tensors: usize,
    dtype: RmspropDtype,
    out: *mut *mut RmspropOptimizer,
) -> RmspropStatus {
    boundary(|| {
        if options.is_null() {
            return Err(CError::Null("options"));
        }
        // SAFETY: non-NULL; the caller passes live options from `rmsprop_options_new`.
        let o = unsafe { &*options };
        // SAFETY: the caller passes `num_tensors` readable sizes (documented).
        let sizes = unsafe { slice(sizes, num_tensors, "sizes")? };
        if out.is_null() {
            return Err(CError::Null("out"));
        }
        let engine = match dtype {
            RMSPROP_DTYPE_F32 => {
                let mut e = Optimizer::<f32>::new(o.config.clone(), sizes)?;
                e.set_skip_non_finite(o.skip_non_finite);
                Engine::F32(e)
            }
            RMSPROP_DTYPE_F64 => {
                let mut e = Optimizer::<f64>::new(o.config.clone(), sizes)?;
                e.set_skip_non_finite(o.skip_non_finite);
                Engine::F64(e)
            }
            other => {
                return Err(CError::BadEnum {
                    what: "dtype",
                    value: other as i64,
                });
            }
        };
        let h = Box::new(RmspropOptimizer {
            inner: RwLock::new(Inner {
                engine,
                views: Vec::new(),
                views2: Vec::new(),
                spans: Vec::new(),
            }),
        });
        write_box(out, "out", h)?;
        Ok(RMSPROP_OK)
    })
}

/// Destroy an optimizer and free its state. NULL is a no-op.
///
/// Ownership: `optimizer` must come from `rmsprop_create` and is invalid afterwards; using
/// it again is undefined behaviour (not detectable). Must not race with other calls on it.
#[unsafe(no_mangle)]
pub extern "C" fn rmsprop_destroy(optimizer: *mut RmspropOptimizer) {
    boundary_value((), || {
        if !optimizer.is_null() {
            // SAFETY: a non-NULL handle from `rmsprop_create`, destroyed once (documented).
            drop(unsafe { Box::from_raw(optimizer) });
        }
    })
}

/// `n` must be the layout's length; checked before any slice is formed from it.
fn check_n(n: usize, expected: usize) -> Result<(), CError> {
    if n == expected {
        Ok(())
    } else {
        Err(crate::Error::LengthMismatch {
            what: "n",
            expected,
            got: n,
        }
        .into())
    }
}

fn overlap(a: *const u8, an: usize, b: *const u8, bn: usize) -> bool {
    let (a, b) = (a as usize, b as usize);
    an > 0 && bn > 0 && a < b.saturating_add(bn) && b < a.saturating_add(an)
}

fn flat_update<T: Elem>(
    h: *mut RmspropOptimizer,
    grads: *const T,
    updates: *mut T,
    n: usize,
) -> RmspropStatus {
    boundary(|| {
        let mut g = write(h)?;
        let opt = T::get_mut(&mut g.engine)?;
        check_n(n, opt.layout().total())?;
        if std::ptr::eq(grads, updates) {
            // SAFETY: `n` writable elements at `updates` (documented); gradients are read
            // from the same buffer, which the in-place kernel supports.
            let buf = unsafe { slice_mut(updates, n, "updates")? };
            return Ok(outcome(opt.update_in_place(buf)?));
        }
        let bytes = n.saturating_mul(size_of::<T>());
        if overlap(grads.cast(), bytes, updates.cast(), bytes) {
            return Err(CError::Overlap(
                "grads and updates overlap without being the same buffer".into(),
            ));
        }
        // SAFETY: `n` readable elements (documented), disjoint from `updates` (checked).
        let gs = unsafe { slice(grads, n, "grads")? };
        // SAFETY: `n` writable elements (documented), disjoint from `grads` (checked).
        let us = unsafe { slice_mut(updates, n, "updates")? };
        Ok(outcome(opt.update(gs, us)?))
    })
}

fn flat_step<T: Elem>(
    h: *mut RmspropOptimizer,
    params: *mut T,
    grads: *const T,
    n: usize,
) -> RmspropStatus {
    boundary(|| {
        let mut g = write(h)?;
        let opt = T::get_mut(&mut g.engine)?;
        check_n(n, opt.layout().total())?;
        let bytes = n.saturating_mul(size_of::<T>());
        if overlap(grads.cast(), bytes, params.cast(), bytes) {
            return Err(CError::Overlap("params and grads overlap".into()));
        }
        // SAFETY: `n` readable elements (documented), disjoint from `params` (checked).
        let gs = unsafe { slice(grads, n, "grads")? };
        // SAFETY: `n` writable elements (documented), disjoint from `grads` (checked).
        let ps = unsafe { slice_mut(params, n, "params")? };
        Ok(outcome(opt.step(ps, gs)?))
    })
}

/// Reuse a vector's allocation for another element type of the same layout (the vector is
/// emptied first, so no element is ever converted).
fn recycle<A, B>(mut v: Vec<A>) -> Vec<B> {
    v.clear();
    v.into_iter().map(|_| unreachable!()).collect()
}

/// Check that no destination range overlaps any other range. `spans` holds the
/// destination ranges `(start, end)` first, then from index `split` the read-only ones,
/// which may overlap each other. Each run is sorted on its own (linear when the tensors
/// already lie in address order, the common case of one arena per buffer kind), then the
/// two runs are swept in merged order: O(n) typically, O(n log n) at worst, no allocation.
fn check_spans(spans: &mut [(usize, usize)], split: usize) -> Result<(), CError> {
    let (dst, src) = spans.split_at_mut(split);
    dst.sort_unstable();
    src.sort_unstable();
    let (mut end_any, mut end_dst) = (0usize, 0usize);
    let (mut i, mut j) = (0, 0);
    while i < dst.len() || j < src.len() {
        let take_dst = j == src.len() || (i < dst.len() && dst[i] <= src[j]);
        let (s, e) = if take_dst { dst[i] } else { src[j] };
        if (take_dst && s < end_any) || (!take_dst && s < end_dst) {
            return Err(CError::Overlap("tensor buffers overlap: destination buffers must be disjoint from each other and from the gradients".into()));
        }
        end_any = end_any.max(e);
        if take_dst {
            end_dst = end_dst.max(e);
            i += 1;
        } else {
            j += 1;
        }
    }
    Ok(())
}

/// The shared body of the four list entry points. `src` are gradients; `dst` updates or
/// params; `in_place_ok` allows `src[i] == dst[i]` (update only).
fn list_call<T: Elem>(
    h: *mut RmspropOptimizer,
    src: *const *const T,
    dst: *const *mut T,
    num_tensors: usize,
    step: bool,
) -> RmspropStatus {
    boundary(|| {
        let mut guard = write(h)?;
        let inner = &mut *guard;
        let opt = T::get_mut(&mut inner.engine)?;
        let sizes = opt.layout().sizes();
        if num_tensors != sizes.len() {
            return Err(crate::Error::LengthMismatch {
                what: "num_tensors",
                expected: sizes.len(),
                got: num_tensors,
            }
            .into());
        }
        // SAFETY: the caller passes `num_tensors` readable pointers in each array (documented).
        let srcp = unsafe { slice(src, num_tensors, "grads")? };
        // SAFETY: as above.
        let dstp = unsafe { slice(dst, num_tensors, if step { "params" } else { "updates" })? };
        // In place when every non-empty tensor's update overwrites its gradient; an empty
        // tensor's pointers are never read or written, so they take no part in the decision.
        let in_place = !step
            && srcp
                .iter()
                .zip(dstp)
                .zip(sizes)
                .all(|((&s, &d), &n)| n == 0 || std::ptr::eq(s, d));
        let sz = size_of::<T>();
        let spans = &mut inner.spans;
        spans.clear();
        let span = |p: usize, n: usize| -> Result<(usize, usize), CError> {
            let bytes = n.checked_mul(sz).ok_or(CError::Overflow("tensor size"))?;
            Ok((p, p.saturating_add(bytes)))
        };
        for (&d, &n) in dstp.iter().zip(sizes).filter(|(_, n)| **n > 0) {
            spans.push(span(d as usize, n)?);
        }
        let split = spans.len();
        if !in_place {
            for (&s, &n) in srcp.iter().zip(sizes).filter(|(_, n)| **n > 0) {
                spans.push(span(s as usize, n)?);
            }
        }
        check_spans(spans, split)?;
        let mut gviews: Vec<&[T]> = recycle(std::mem::take(&mut inner.views));
        let mut dviews: Vec<&mut [T]> = recycle(std::mem::take(&mut inner.views2));
        let mut build = || -> Result<(), CError> {
            for ((&s, &d), &n) in srcp.iter().zip(dstp).zip(sizes) {
                if !in_place {
                    // SAFETY: `n` readable elements (documented); no destination overlaps it (checked).
                    gviews.push(unsafe { slice(s, n, "grads[i]")? });
                }
                // SAFETY: `n` writable elements (documented), disjoint from every other range (checked).
                dviews.push(unsafe {
                    slice_mut(d, n, if step { "params[i]" } else { "updates[i]" })?
                });
            }
            Ok(())
        };
        let built = build();
        let result = built.and_then(|()| {
            Ok(match (step, in_place) {
                (true, _) => opt.step_tensors(&mut dviews, &gviews)?,
                (false, true) => opt.update_tensors_in_place(&mut dviews)?,
                (false, false) => opt.update_tensors(&gviews, &mut dviews)?,
            })
        });
        inner.views = recycle(gviews);
        inner.views2 = recycle(dviews);
        Ok(outcome(result?))
    })
}

/// optax `update` for an `f32` optimizer over one flat buffer of all tensors (layout
/// order): reads `n` gradients, writes `n` updates, advances the state.
///
/// `updates == grads` is allowed and computes in place (the updates overwrite the
/// gradients); otherwise the buffers must not overlap.
/// Returns `RMSPROP_OK`, or `RMSPROP_SKIPPED_NON_FINITE` when skipping is on and a gradient
/// is NaN/inf. Errors: `RMSPROP_ERR_NULL_POINTER`, `RMSPROP_ERR_MISALIGNED`,
/// `RMSPROP_ERR_OVERLAP`, `RMSPROP_ERR_LENGTH_MISMATCH` (`n` must equal the layout's total),
/// `RMSPROP_ERR_WRONG_DTYPE` (an f64 optimizer), `RMSPROP_ERR_BUSY`, `RMSPROP_ERR_POISONED`;
/// on error nothing is written and the state is unchanged.
/// Threading: exclusive use of the handle; runs on the handle's worker threads.
#[unsafe(no_mangle)]
pub extern "C" fn rmsprop_update_f32(
    optimizer: *mut RmspropOptimizer,
    grads: *const f32,
    updates: *mut f32,
    n: usize,
) -> RmspropStatus {
    flat_update(optimizer, grads, updates, n)
}

/// `rmsprop_update_f32` for an `f64` optimizer.
#[unsafe(no_mangle)]
pub extern "C" fn rmsprop_update_f64(
    optimizer: *mut RmspropOptimizer,
    grads: *const f64,
    updates: *mut f64,
    n: usize,
) -> RmspropStatus {
    flat_update(optimizer, grads, updates, n)
}

/// The fused step for an `f32` optimizer: optax `update` followed by `apply_updates`, in
/// one pass: `params[i] += update[i]` over one flat buffer of `n` elements.
///
/// `params` and `grads` must not overlap. Returns and errors as `rmsprop_update_f32`;
/// on error (and on a skipped step) `params` and the state are unchanged.
#[unsafe(no_mangle)]
pub extern "C" fn rmsprop_step_f32(
    optimizer: *mut RmspropOptimizer,
    params: *mut f32,
    grads: *const f32,
    n: usize,
) -> RmspropStatus {
    flat_step(optimizer, params, grads, n)
}

/// `rmsprop_step_f32` for an `f64` optimizer.
#[unsafe(no_mangle)]
pub extern "C" fn rmsprop_step_f64(
    optimizer: *mut RmspropOptimizer,
    params: *mut f64,
    grads: *const f64,
    n: usize,
) -> RmspropStatus {
    flat_step(optimizer, params, grads, n)
}

/// optax `update` for an `f32` optimizer over a list of tensors, in one parallel dispatch:
/// `grads[i]` and `updates[i]` point to `sizes[i]` elements (NULL allowed for empty tensors).
///
/// Either every non-empty tensor has `updates[i] == grads[i]` (all in place), or no
/// destination buffer overlaps any other buffer (the gradient buffers, read-only, may overlap
/// each other). An empty tensor's two pointers are never used: any value, NULL included, and
/// they take no part in the in-place or overlap decisions.
/// Returns and errors as `rmsprop_update_f32`; `num_tensors` must equal the layout's count.
#[unsafe(no_mangle)]
pub extern "C" fn rmsprop_update_tensors_f32(
    optimizer: *mut RmspropOptimizer,
    grads: *const *const f32,
    updates: *const *mut f32,
    num_tensors: usize,
) -> RmspropStatus {
    list_call(optimizer, grads, updates, num_tensors, false)
}

/// `rmsprop_update_tensors_f32` for an `f64` optimizer.
#[unsafe(no_mangle)]
pub extern "C" fn rmsprop_update_tensors_f64(
    optimizer: *mut RmspropOptimizer,
    grads: *const *const f64,
    updates: *const *mut f64,
    num_tensors: usize,
) -> RmspropStatus {
    list_call(optimizer, grads, updates, num_tensors, false)
}

/// The fused step (optax `update` + `apply_updates`) for an `f32` optimizer over a list of
/// tensors in one parallel dispatch. No params buffer may overlap another params buffer or
/// any gradient buffer (the gradient buffers, read-only, may overlap each other; in place is
/// not allowed). An empty tensor's two pointers are never used: any value, NULL included.
/// Returns and errors as `rmsprop_step_f32`.
#[unsafe(no_mangle)]
pub extern "C" fn rmsprop_step_tensors_f32(
    optimizer: *mut RmspropOptimizer,
    params: *const *mut f32,
    grads: *const *const f32,
    num_tensors: usize,
) -> RmspropStatus {
    list_call(optimizer, grads, params, num_tensors, true)
}

/// `rmsprop_step_tensors_f32` for an `f64` optimizer.
#[unsafe(no_mangle)]
pub extern "C" fn rmsprop_step_tensors_f64(
    optimizer: *mut RmspropOptimizer,
    params: *const *mut f64,
    grads: *const *const f64,
    num_tensors: usize,
) -> RmspropStatus {
    list_call(optimizer, grads, params, num_tensors, true)
}

/// Untyped optax `update` over a flat buffer, for bindings that pass `void *`: `dtype`
/// must be the optimizer's (else `RMSPROP_ERR_WRONG_DTYPE`, nothing changed).
/// Otherwise identical to `rmsprop_update_f32` / `rmsprop_update_f64`.
#[unsafe(no_mangle)]
pub extern "C" fn rmsprop_update(
    optimizer: *mut RmspropOptimizer,
    grads: *const std::ffi::c_void,
    updates: *mut std::ffi::c_void,
    n: usize,
    dtype: RmspropDtype,
) -> RmspropStatus {
    match dtype {
        RMSPROP_DTYPE_F32 => flat_update::<f32>(optimizer, grads.cast(), updates.cast(), n),
        RMSPROP_DTYPE_F64 => flat_update::<f64>(optimizer, grads.cast(), updates.cast(), n),
        other => boundary(|| {
            Err(CError::BadEnum {
                what: "dtype",
                value: other as i64,
            })
        }),
    }
}

/// Untyped fused step over a flat buffer; see `rmsprop_update` and `rmsprop_step_f32`.
#[unsafe(no_mangle)]
pub extern "C" fn rmsprop_step(
    optimizer: *mut RmspropOptimizer,
    params: *mut std::ffi::c_void,
    grads: *const std::ffi::c_void,
    n: usize,
    dtype: RmspropDtype,
) -> RmspropStatus {
    match dtype {
        RMSPROP_DTYPE_F32 => flat_step::<f32>(optimizer, params.cast(), grads.cast(), n),
        RMSPROP_DTYPE_F64 => flat_step::<f64>(optimizer, params.cast(), grads.cast(), n),
        other => boundary(|| {
            Err(CError::BadEnum {
                what: "dtype",
                value: other as i64,
            })
        }),
    }
}

fn get_state<T: Elem>(
    h: *const RmspropOptimizer,
    c: RmspropComponent,
    tensor: usize,
    out: *mut T,
    n: usize,
) -> RmspropStatus {
    boundary(|| {
        let g = read(h)?;
        let opt = T::get(&g.engine)?;
        let src = opt.tensor_state(component(c)?, tensor)?;
        if n != src.len() {
            return Err(crate::Error::LengthMismatch {
                what: "n",
                expected: src.len(),
                got: n,
            }
            .into());
        }
        // SAFETY: `n` writable elements at `out` (documented); they cannot alias the state,
        // which this library owns and never exposes.
        let dst = unsafe { slice_mut(out, n, "out")? };
        dst.copy_from_slice(src);
        Ok(RMSPROP_OK)
    })
}

fn set_state<T: Elem>(
    h: *mut RmspropOptimizer,
    c: RmspropComponent,
    tensor: usize,
    values: *const T,
    n: usize,
) -> RmspropStatus {
    boundary(|| {
        let mut g = write(h)?;
        let opt = T::get_mut(&mut g.engine)?;
        let c = component(c)?;
        check_n(n, opt.tensor_state(c, tensor)?.len())?;
        // SAFETY: `n` readable elements (documented); the state is library-owned, so no alias.
        let src = unsafe { slice(values, n, "values")? };
        opt.set_tensor_state(c, tensor, src)?;
        Ok(RMSPROP_OK)
    })
}

/// Copy tensor `tensor`'s part of a state component (`RMSPROP_NU`, `RMSPROP_MU`,
/// `RMSPROP_TRACE`: optax's `nu`, `mu`, `trace`) of an `f32` optimizer into `out`
/// (`n` must equal the tensor's size).
/// Errors: `RMSPROP_ERR_NULL_POINTER`, `RMSPROP_ERR_MISALIGNED`, `RMSPROP_ERR_BAD_ENUM`,
/// `RMSPROP_ERR_NO_SUCH_STATE` (mu without centered, trace without momentum),
/// `RMSPROP_ERR_OUT_OF_RANGE`, `RMSPROP_ERR_LENGTH_MISMATCH`, `RMSPROP_ERR_WRONG_DTYPE`,
/// `RMSPROP_ERR_BUSY`. Threading: may run concurrently with other `const` calls.
#[unsafe(no_mangle)]
pub extern "C" fn rmsprop_get_state_f32(
    optimizer: *const RmspropOptimizer,
    component: RmspropComponent,
    tensor: usize,
    out: *mut f32,
    n: usize,
) -> RmspropStatus {
    get_state(optimizer, component, tensor, out, n)
}

/// `rmsprop_get_state_f32` for an `f64` optimizer.
#[unsafe(no_mangle)]
pub extern "C" fn rmsprop_get_state_f64(
    optimizer: *const RmspropOptimizer,
    component: RmspropComponent,
    tensor: usize,
    out: *mut f64,
    n: usize,
) -> RmspropStatus {
    get_state(optimizer, component, tensor, out, n)
}

/// Overwrite tensor `tensor`'s part of a state component of an `f32` optimizer from
/// `values` (`n` elements, the tensor's size), e.g. to carry an optax state in.
/// Errors as `rmsprop_get_state_f32`; unchanged on error. Threading: exclusive.
#[unsafe(no_mangle)]
pub extern "C" fn rmsprop_set_state_f32(
    optimizer: *mut RmspropOptimizer,
    component: RmspropComponent,
    tensor: usize,
    values: *const f32,
    n: usize,
) -> RmspropStatus {
    set_state(optimizer, component, tensor, values, n)
}

/// `rmsprop_set_state_f32` for an `f64` optimizer.
#[unsafe(no_mangle)]
pub extern "C" fn rmsprop_set_state_f64(
    optimizer: *mut RmspropOptimizer,
    component: RmspropComponent,
    tensor: usize,
    values: *const f64,
    n: usize,
) -> RmspropStatus {
    set_state(optimizer, component, tensor, values, n)
}

fn query<R>(
    h: *const RmspropOptimizer,
    out: *mut R,
    f: impl FnOnce(&Engine) -> Result<R, CError>,
) -> RmspropStatus {
    boundary(|| {
        let g = read(h)?;
        let v = f(&g.engine)?;
        write_out(out, "out", v)?;
        Ok(RMSPROP_OK)
    })
}

fn mutate(
    h: *mut RmspropOptimizer,
    f: impl FnOnce(&mut Engine) -> Result<(), CError>,
) -> RmspropStatus {
    boundary(|| {
        let mut g = write(h)?;
        f(&mut g.engine)?;
        Ok(RMSPROP_OK)
    })
}

/// The optimizer's dtype (`RMSPROP_DTYPE_F32` or `RMSPROP_DTYPE_F64`) into `*out`.
/// Errors: `RMSPROP_ERR_NULL_POINTER`, `RMSPROP_ERR_BUSY`. Threading: const.
#[unsafe(no_mangle)]
pub extern "C" fn rmsprop_dtype(
    optimizer: *const RmspropOptimizer,
    out: *mut RmspropDtype,
) -> RmspropStatus {
    query(optimizer, out, |e| {
        Ok(match e {
            Engine::F32(_) => RMSPROP_DTYPE_F32,
            Engine::F64(_) => RMSPROP_DTYPE_F64,
        })
    })
}

/// The number of tensors in the layout into `*out`. Errors as `rmsprop_dtype`.
#[unsafe(no_mangle)]
pub extern "C" fn rmsprop_num_tensors(
    optimizer: *const RmspropOptimizer,
    out: *mut usize,
) -> RmspropStatus {
    query(optimizer, out, |e| Ok(both!(e, o => o.layout().len())))
}

/// The total element count of the layout (the length of the flat buffers) into `*out`.
/// Errors as `rmsprop_dtype`.
#[unsafe(no_mangle)]
pub extern "C" fn rmsprop_total_elements(
    optimizer: *const RmspropOptimizer,
    out: *mut usize,
) -> RmspropStatus {
    query(optimizer, out, |e| Ok(both!(e, o => o.layout().total())))
}

/// The size of tensor `tensor` into `*out`. Errors: also `RMSPROP_ERR_OUT_OF_RANGE`.
#[unsafe(no_mangle)]
pub extern "C" fn rmsprop_tensor_size(
    optimizer: *const RmspropOptimizer,
    tensor: usize,
    out: *mut usize,
) -> RmspropStatus {
    query(optimizer, out, |e| {
        Ok(both!(e, o => o.layout().range(tensor)?.len()))
    })
}

/// Whether this configuration has state `component` (nu always; mu iff centered; trace iff
/// momentum is set) into `*out`. Errors: also `RMSPROP_ERR_BAD_ENUM`.
#[unsafe(no_mangle)]
pub extern "C" fn rmsprop_has_state(
    optimizer: *const RmspropOptimizer,
    component: RmspropComponent,
    out: *mut bool,
) -> RmspropStatus {
    query(optimizer, out, |e| {
        let c = self::component(component)?;
        Ok(both!(e, o => o.state(c).is_some()))
    })
}

/// optax's counts: `*schedule_count` (`ScaleByScheduleState.count`, the count the learning
/// rate is evaluated at: steps taken, saturating at INT32_MAX) and `*bias_correction_count`
/// (`ScaleByRmsWithCountState.count`). Both advance every step; either pointer may be NULL.
/// Errors: `RMSPROP_ERR_NULL_POINTER` (handle), `RMSPROP_ERR_BUSY`. Threading: const.
#[unsafe(no_mangle)]
pub extern "C" fn rmsprop_get_counts(
    optimizer: *const RmspropOptimizer,
    schedule_count: *mut i32,
    bias_correction_count: *mut i32,
) -> RmspropStatus {
    boundary(|| {
        let g = read(optimizer)?;
        let c = both!(&g.engine, o => o.counts());
        for (p, what) in [
            (schedule_count, "schedule_count"),
            (bias_correction_count, "bias_correction_count"),
        ] {
            if !p.is_null() && !p.is_aligned() {
                return Err(CError::Misaligned(what));
            }
        }
        if !schedule_count.is_null() {
            write_out(schedule_count, "schedule_count", c.schedule)?;
        }
        if !bias_correction_count.is_null() {
            write_out(
                bias_correction_count,
                "bias_correction_count",
                c.bias_correction,
            )?;
        }
        Ok(RMSPROP_OK)
    })
}

/// Set both counts (each in [0, INT32_MAX]), e.g. to resume from an optax state.
/// Errors: `RMSPROP_ERR_NULL_POINTER`, `RMSPROP_ERR_INVALID_HYPERPARAMETER` (negative),
/// `RMSPROP_ERR_BUSY`; unchanged on error. Threading: exclusive.
#[unsafe(no_mangle)]
pub extern "C" fn rmsprop_set_counts(
    optimizer: *mut RmspropOptimizer,
    schedule_count: i32,
    bias_correction_count: i32,
) -> RmspropStatus {
    mutate(optimizer, |e| {
        let c = Counts {
            schedule: schedule_count,
            bias_correction: bias_correction_count,
        };
        both!(e, o => o.set_counts(c))?;
        Ok(())
    })
}

/// Reset to the initial state (optax `init`): nu = initial_scale, mu = trace = 0, counts 0.
/// The skip counter and hyperparameters are kept. Errors: `RMSPROP_ERR_NULL_POINTER`,
/// `RMSPROP_ERR_BUSY`. Threading: exclusive.
#[unsafe(no_mangle)]
pub extern "C" fn rmsprop_reset(optimizer: *mut RmspropOptimizer) -> RmspropStatus {
    mutate(optimizer, |e| {
        both!(e, o => o.reset());
        Ok(())
    })
}

/// Steps skipped for non-finite gradients (see `rmsprop_options_set_skip_non_finite`).
/// Errors as `rmsprop_dtype`.
#[unsafe(no_mangle)]
pub extern "C" fn rmsprop_skipped_steps(
    optimizer: *const RmspropOptimizer,
    out: *mut u64,
) -> RmspropStatus {
    query(optimizer, out, |e| Ok(both!(e, o => o.skipped_steps())))
}

/// The learning rate the next step will use (the schedule at the current count, rounded to
/// the optimizer's dtype), into `*out`. Errors as `rmsprop_dtype`.
#[unsafe(no_mangle)]
pub extern "C" fn rmsprop_current_learning_rate(
    optimizer: *const RmspropOptimizer,
    out: *mut f64,
) -> RmspropStatus {
    query(optimizer, out, |e| {
        Ok(match e {
            Engine::F32(o) => o.current_learning_rate().to_f64(),
            Engine::F64(o) => o.current_learning_rate(),
        })
    })
}

/// Set a fixed learning rate between steps (as with `optax.inject_hyperparams`); replaces
/// any schedule. Counts are kept. Errors: `RMSPROP_ERR_NULL_POINTER`,
/// `RMSPROP_ERR_INVALID_HYPERPARAMETER`, `RMSPROP_ERR_BUSY`; unchanged on error. Exclusive.
#[unsafe(no_mangle)]
pub extern "C" fn rmsprop_set_learning_rate(
    optimizer: *mut RmspropOptimizer,
    learning_rate: f64,
) -> RmspropStatus {
    mutate(optimizer, |e| {
        Ok(both!(e, o => o.set_learning_rate(LearningRate::Fixed(learning_rate)))?)
    })
}

/// Replace the learning-rate schedule between steps (copied); it continues from the
/// current schedule count. Errors as `rmsprop_set_learning_rate`.
#[unsafe(no_mangle)]
pub extern "C" fn rmsprop_set_learning_rate_schedule(
    optimizer: *mut RmspropOptimizer,
    schedule: *const RmspropSchedule,
) -> RmspropStatus {
    mutate(optimizer, |e| {
        let s = sched(schedule, "schedule")?.clone();
        Ok(both!(e, o => o.set_learning_rate(LearningRate::Schedule(s.clone())))?)
    })
}

/// Set `decay` between steps (finite, in [0, 1]). Errors as `rmsprop_set_learning_rate`.
#[unsafe(no_mangle)]
pub extern "C" fn rmsprop_set_decay(optimizer: *mut RmspropOptimizer, decay: f64) -> RmspropStatus {
    mutate(optimizer, |e| Ok(both!(e, o => o.set_decay(decay))?))
}

/// Set `eps` between steps (finite, >= 0). Errors as `rmsprop_set_learning_rate`.
#[unsafe(no_mangle)]
pub extern "C" fn rmsprop_set_eps(optimizer: *mut RmspropOptimizer, eps: f64) -> RmspropStatus {
    mutate(optimizer, |e| Ok(both!(e, o => o.set_eps(eps))?))
}

/// Set `initial_scale` (finite, >= 0); it takes effect at the next `rmsprop_reset`.
/// Errors as `rmsprop_set_learning_rate`.
#[unsafe(no_mangle)]
pub extern "C" fn rmsprop_set_initial_scale(
    optimizer: *mut RmspropOptimizer,
    initial_scale: f64,
) -> RmspropStatus {
    mutate(optimizer, |e| {
        Ok(both!(e, o => o.set_initial_scale(initial_scale))?)
    })
}

/// Set `momentum` between steps (finite); only for optimizers created with momentum
/// (else `RMSPROP_ERR_NO_SUCH_STATE`). Errors as `rmsprop_set_learning_rate`.
#[unsafe(no_mangle)]
pub extern "C" fn rmsprop_set_momentum(
    optimizer: *mut RmspropOptimizer,
    momentum: f64,
) -> RmspropStatus {
    mutate(optimizer, |e| Ok(both!(e, o => o.set_momentum(momentum))?))
}

/// Worker threads for this handle's steps: 0 = rayon's global pool (default, one thread per
/// core), 1 = the calling thread only (no worker threads at all), n > 1 = a pool of n threads
/// owned by this handle (at most 1024). Use 1 or a small n in MPI ranks or inside a host's own thread pool
/// to avoid oversubscription. Results are bit-identical for every setting.
/// Errors: `RMSPROP_ERR_NULL_POINTER`, `RMSPROP_ERR_THREADS`, `RMSPROP_ERR_BUSY`; unchanged on error.
/// Note: rayon's pools do not survive `fork()` without `exec`.
#[unsafe(no_mangle)]
pub extern "C" fn rmsprop_set_threads(
    optimizer: *mut RmspropOptimizer,
    threads: usize,
) -> RmspropStatus {
    mutate(optimizer, |e| Ok(both!(e, o => o.set_threads(threads))?))
}

/// The thread setting (as passed to `rmsprop_set_threads`) into `*out`. Errors as `rmsprop_dtype`.
#[unsafe(no_mangle)]
pub extern "C" fn rmsprop_get_threads(
    optimizer: *const RmspropOptimizer,
    out: *mut usize,
) -> RmspropStatus {
    query(optimizer, out, |e| {
        Ok(match both!(e, o => o.threads()) {
            crate::Threads::Global => 0,
            crate::Threads::Caller => 1,
            crate::Threads::Owned(n) => n,
        })
    })
}

#[allow(dead_code)]
fn _assert_elem_dtype() {
    let _ = (<f32 as Elem>::DTYPE, <f64 as Elem>::DTYPE);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spans_detect_overlaps() {
        // (destinations..., sources...) with the split between them.
        let mut v = vec![(0, 10), (10, 20), (5, 15)];
        assert!(
            check_spans(&mut v, 1).is_err(),
            "source [5,15) overlaps destination [0,10)"
        );
        let mut v = vec![(0, 10), (20, 30), (10, 20), (12, 15)];
        assert!(
            check_spans(&mut v, 2).is_ok(),
            "sources may overlap each other"
        );
        let mut v = vec![(9, 12), (0, 10)];
        assert!(
            check_spans(&mut v, 2).is_err(),
            "destinations overlap, unsorted"
        );
        let mut v = vec![(100, 110), (0, 10), (50, 60), (105, 106)];
        assert!(
            check_spans(&mut v, 2).is_err(),
            "source inside a later destination"
        );
    }
}

//! The steps: optax `update` (optionally in place) and the fused `update` +
//! `apply_updates`, over one flat buffer or over lists of tensor pointers, typed and untyped.

use super::boundary::*;
use super::dtype::{Dtype, RmspropDtype, dtype_arg};
use super::handle::{Elem, RmspropOptimizer, write};
use super::overlap::{check_spans, overlap};
use super::status::*;
use crate::lowp::{Bf16, F16};
use crate::optimizer::Outcome;

fn outcome(o: Outcome) -> RmspropStatus {
    match o {
        Outcome::Applied => RMSPROP_OK,
        Outcome::Skipped => RMSPROP_SKIPPED_NON_FINITE,
    }
}

/// `n` must be the layout's length; checked before any slice is formed from it.
pub(crate) fn check_n(n: usize, expected: usize) -> Result<(), CError> {
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

/// The body of the flat update entry points (typed and untyped).
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
        if n > 0 && std::ptr::eq(grads, updates) {
            // SAFETY: `n` writable elements at `updates` (documented); gradients are read
            // from the same buffer, which the in-place kernel supports.
            let buf = unsafe { slice_mut(updates, n, "updates")? };
            return Ok(outcome(opt.update_in_place(buf)?));
        }
        if n > 0 {
            let (gr, ur) = (
                check_ptr(grads, n, "grads")?,
                check_ptr(updates, n, "updates")?,
            );
            if overlap(gr, ur) {
                return Err(CError::Overlap(
                    "grads and updates overlap without being the same buffer".into(),
                ));
            }
        }
        // SAFETY: `n` readable elements (documented), disjoint from `updates` (checked).
        let gs = unsafe { slice(grads, n, "grads")? };
        // SAFETY: `n` writable elements (documented), disjoint from `grads` (checked).
        let us = unsafe { slice_mut(updates, n, "updates")? };
        Ok(outcome(opt.update(gs, us)?))
    })
}

/// The body of the flat fused-step entry points (typed and untyped).
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
        if n > 0 {
            let (gr, pr) = (
                check_ptr(grads, n, "grads")?,
                check_ptr(params, n, "params")?,
            );
            if overlap(gr, pr) {
                return Err(CError::Overlap("params and grads overlap".into()));
            }
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

/// The shared body of the four list entry points. `src` are gradients; `dst` updates or
/// params (`step`). Update computes in place when every non-empty tensor has
/// `src[i] == dst[i]`; an empty tensor's pointers are never used and decide nothing.
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
        let (src_name, dst_name) = ("grads[i]", if step { "params[i]" } else { "updates[i]" });
        // SAFETY: the caller passes `num_tensors` readable pointers in each array (documented).
        let srcp = unsafe { slice(src, num_tensors, "grads")? };
        // SAFETY: as above.
        let dstp = unsafe { slice(dst, num_tensors, if step { "params" } else { "updates" })? };
        let in_place = !step
            && srcp
                .iter()
                .zip(dstp)
                .zip(sizes)
                .all(|((&s, &d), &n)| n == 0 || std::ptr::eq(s, d));
        // Every non-empty range passes the pointer rule, then one sweep finds overlaps:
        // destinations first, then (unless in place) the read-only gradients.
        let spans = &mut inner.spans;
        spans.clear();
        for (&d, &n) in dstp.iter().zip(sizes).filter(|(_, n)| **n > 0) {
            spans.push(check_ptr(d.cast_const(), n, dst_name)?);
        }
        let split = spans.len();
        if !in_place {
            for (&s, &n) in srcp.iter().zip(sizes).filter(|(_, n)| **n > 0) {
                spans.push(check_ptr(s, n, src_name)?);
            }
        }
        check_spans(spans, split)?;
        let mut gviews: Vec<&[T]> = recycle(std::mem::take(&mut inner.views));
        let mut dviews: Vec<&mut [T]> = recycle(std::mem::take(&mut inner.views2));
        let mut build = || -> Result<(), CError> {
            for ((&s, &d), &n) in srcp.iter().zip(dstp).zip(sizes) {
                if !in_place {
                    // SAFETY: `n` readable elements (documented); no destination overlaps it (checked).
                    gviews.push(unsafe { slice(s, n, src_name)? });
                }
                // SAFETY: `n` writable elements (documented), disjoint from every other range (checked).
                dviews.push(unsafe { slice_mut(d, n, dst_name)? });
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
/// is NaN/inf: then the state is unchanged and zeros are written to `updates` (as optax's
/// `apply_if_finite` returns zero updates).
/// Errors: `RMSPROP_ERR_NULL_POINTER`, `RMSPROP_ERR_MISALIGNED`, `RMSPROP_ERR_OVERFLOW` (a
/// pointer argument is NULL, misaligned, or its range wraps the address space),
/// `RMSPROP_ERR_OVERLAP`, `RMSPROP_ERR_LENGTH_MISMATCH` (`n` must equal the layout's total),
/// `RMSPROP_ERR_WRONG_DTYPE` (an f64 optimizer), `RMSPROP_ERR_BUSY` (another call is running
/// on this handle), `RMSPROP_ERR_POISONED`, `RMSPROP_ERR_NO_SUCH_STATE` (update entry points
/// only: weight decay is set and needs the parameters, which only `rmsprop_step*` receive;
/// see `rmsprop_options_set_weight_decay`); on error nothing is written and the state is
/// unchanged.
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
/// on error and on a skipped step (`RMSPROP_SKIPPED_NON_FINITE`) `params` and the state are
/// unchanged.
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
/// must be the optimizer's (else `RMSPROP_ERR_WRONG_DTYPE`, nothing changed; an unknown
/// value gives `RMSPROP_ERR_BAD_ENUM`). Otherwise identical to `rmsprop_update_f32` /
/// `rmsprop_update_f64`: returns and errors as `rmsprop_update_f32`.
#[unsafe(no_mangle)]
pub extern "C" fn rmsprop_update(
    optimizer: *mut RmspropOptimizer,
    grads: *const std::ffi::c_void,
    updates: *mut std::ffi::c_void,
    n: usize,
    dtype: RmspropDtype,
) -> RmspropStatus {
    match dtype_arg(dtype) {
        Ok(Dtype::F32) => flat_update::<f32>(optimizer, grads.cast(), updates.cast(), n),
        Ok(Dtype::F64) => flat_update::<f64>(optimizer, grads.cast(), updates.cast(), n),
        Ok(Dtype::Bf16) => flat_update::<Bf16>(optimizer, grads.cast(), updates.cast(), n),
        Ok(Dtype::F16) => flat_update::<F16>(optimizer, grads.cast(), updates.cast(), n),
        Err(e) => boundary(|| Err(e)),
    }
}

/// Untyped fused step over a flat buffer; see `rmsprop_update` (`dtype`: else
/// `RMSPROP_ERR_WRONG_DTYPE`, or `RMSPROP_ERR_BAD_ENUM` for an unknown value) and
/// `rmsprop_step_f32`: returns and errors as `rmsprop_step_f32`.
#[unsafe(no_mangle)]
pub extern "C" fn rmsprop_step(
    optimizer: *mut RmspropOptimizer,
    params: *mut std::ffi::c_void,
    grads: *const std::ffi::c_void,
    n: usize,
    dtype: RmspropDtype,
) -> RmspropStatus {
    match dtype_arg(dtype) {
        Ok(Dtype::F32) => flat_step::<f32>(optimizer, params.cast(), grads.cast(), n),
        Ok(Dtype::F64) => flat_step::<f64>(optimizer, params.cast(), grads.cast(), n),
        Ok(Dtype::Bf16) => flat_step::<Bf16>(optimizer, params.cast(), grads.cast(), n),
        Ok(Dtype::F16) => flat_step::<F16>(optimizer, params.cast(), grads.cast(), n),
        Err(e) => boundary(|| Err(e)),
    }
}

/// `rmsprop_update_f32` for a bfloat16 (`RMSPROP_DTYPE_BF16`) optimizer: each element a `uint16_t` holding the
/// bf16 bits; state and arithmetic in bf16, every operation rounded to bf16 as jitted optax
/// on XLA:CPU (docs/element-types.md). Returns and errors as `rmsprop_update_f32`.
#[unsafe(no_mangle)]
pub extern "C" fn rmsprop_update_bf16(
    optimizer: *mut RmspropOptimizer,
    grads: *const u16,
    updates: *mut u16,
    n: usize,
) -> RmspropStatus {
    flat_update::<Bf16>(optimizer, grads.cast(), updates.cast(), n)
}

/// `rmsprop_step_f32` for a bfloat16 (`RMSPROP_DTYPE_BF16`) optimizer (`uint16_t` bits, see
/// `rmsprop_update_bf16`). Returns and errors as `rmsprop_step_f32`.
#[unsafe(no_mangle)]
pub extern "C" fn rmsprop_step_bf16(
    optimizer: *mut RmspropOptimizer,
    params: *mut u16,
    grads: *const u16,
    n: usize,
) -> RmspropStatus {
    flat_step::<Bf16>(optimizer, params.cast(), grads.cast(), n)
}

/// `rmsprop_update_tensors_f32` for a bfloat16 (`RMSPROP_DTYPE_BF16`) optimizer (`uint16_t` bits, see
/// `rmsprop_update_bf16`). Returns and errors as `rmsprop_update_tensors_f32`.
#[unsafe(no_mangle)]
pub extern "C" fn rmsprop_update_tensors_bf16(
    optimizer: *mut RmspropOptimizer,
    grads: *const *const u16,
    updates: *const *mut u16,
    num_tensors: usize,
) -> RmspropStatus {
    list_call::<Bf16>(optimizer, grads.cast(), updates.cast(), num_tensors, false)
}

/// `rmsprop_step_tensors_f32` for a bfloat16 (`RMSPROP_DTYPE_BF16`) optimizer (`uint16_t` bits, see
/// `rmsprop_update_bf16`). Returns and errors as `rmsprop_step_tensors_f32`.
#[unsafe(no_mangle)]
pub extern "C" fn rmsprop_step_tensors_bf16(
    optimizer: *mut RmspropOptimizer,
    params: *const *mut u16,
    grads: *const *const u16,
    num_tensors: usize,
) -> RmspropStatus {
    list_call::<Bf16>(optimizer, grads.cast(), params.cast(), num_tensors, true)
}

/// `rmsprop_update_f32` for a float16 (`RMSPROP_DTYPE_F16`) optimizer: each element a `uint16_t` holding the
/// f16 bits; state and arithmetic in f16, every operation rounded to f16 as jitted optax
/// on XLA:CPU (docs/element-types.md). Returns and errors as `rmsprop_update_f32`.
#[unsafe(no_mangle)]
pub extern "C" fn rmsprop_update_f16(
    optimizer: *mut RmspropOptimizer,
    grads: *const u16,
    updates: *mut u16,
    n: usize,
) -> RmspropStatus {
    flat_update::<F16>(optimizer, grads.cast(), updates.cast(), n)
}

/// `rmsprop_step_f32` for a float16 (`RMSPROP_DTYPE_F16`) optimizer (`uint16_t` bits, see
/// `rmsprop_update_f16`). Returns and errors as `rmsprop_step_f32`.
#[unsafe(no_mangle)]
pub extern "C" fn rmsprop_step_f16(
    optimizer: *mut RmspropOptimizer,
    params: *mut u16,
    grads: *const u16,
    n: usize,
) -> RmspropStatus {
    flat_step::<F16>(optimizer, params.cast(), grads.cast(), n)
}

/// `rmsprop_update_tensors_f32` for a float16 (`RMSPROP_DTYPE_F16`) optimizer (`uint16_t` bits, see
/// `rmsprop_update_f16`). Returns and errors as `rmsprop_update_tensors_f32`.
#[unsafe(no_mangle)]
pub extern "C" fn rmsprop_update_tensors_f16(
    optimizer: *mut RmspropOptimizer,
    grads: *const *const u16,
    updates: *const *mut u16,
    num_tensors: usize,
) -> RmspropStatus {
    list_call::<F16>(optimizer, grads.cast(), updates.cast(), num_tensors, false)
}

/// `rmsprop_step_tensors_f32` for a float16 (`RMSPROP_DTYPE_F16`) optimizer (`uint16_t` bits, see
/// `rmsprop_update_f16`). Returns and errors as `rmsprop_step_tensors_f32`.
#[unsafe(no_mangle)]
pub extern "C" fn rmsprop_step_tensors_f16(
    optimizer: *mut RmspropOptimizer,
    params: *const *mut u16,
    grads: *const *const u16,
    num_tensors: usize,
) -> RmspropStatus {
    list_call::<F16>(optimizer, grads.cast(), params.cast(), num_tensors, true)
}

//! The optimizer's state: nu, mu and trace per tensor, the counts, reset, and the skip
//! counter.

use super::boundary::*;
use super::handle::{Elem, RmspropOptimizer, mutate, query, read, write};
use super::status::*;
use super::steps::check_n;
use crate::optimizer::{Component, Counts};
use crate::with_any;

/// A state component (an `int32_t` in the ABI).
pub type RmspropComponent = i32;
/// `nu`, the EMA of squared gradients (always present).
pub const RMSPROP_NU: RmspropComponent = 1;
/// `mu`, the EMA of gradients (centered only).
pub const RMSPROP_MU: RmspropComponent = 2;
/// `trace`, the momentum buffer (momentum set only).
pub const RMSPROP_TRACE: RmspropComponent = 3;

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
        check_n(n, src.len())?;
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
/// (`n` must equal the tensor's size; `out` may be NULL when it is 0).
/// Errors: `RMSPROP_ERR_NULL_POINTER`, `RMSPROP_ERR_MISALIGNED`, `RMSPROP_ERR_OVERFLOW`
/// (`optimizer` or the buffer is NULL, misaligned, or its range wraps the address space),
/// `RMSPROP_ERR_BAD_ENUM` (component), `RMSPROP_ERR_NO_SUCH_STATE` (mu without centered,
/// trace without momentum), `RMSPROP_ERR_OUT_OF_RANGE` (tensor), `RMSPROP_ERR_LENGTH_MISMATCH`
/// (`n`), `RMSPROP_ERR_WRONG_DTYPE` (an f64 optimizer), `RMSPROP_ERR_BUSY` (a mutating call
/// is running on this handle), `RMSPROP_ERR_POISONED`; `out` untouched on error.
/// Threading: may run concurrently with other `const` calls.
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
/// Errors as `rmsprop_get_state_f32` (`RMSPROP_ERR_BUSY`: any other call is running on this
/// handle); unchanged on error. Threading: exclusive.
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

/// `rmsprop_get_state_f32` for a bfloat16 optimizer: the state is kept in bf16, copied out as
/// `uint16_t` bits. Errors as `rmsprop_get_state_f32`.
#[unsafe(no_mangle)]
pub extern "C" fn rmsprop_get_state_bf16(
    optimizer: *const RmspropOptimizer,
    component: RmspropComponent,
    tensor: usize,
    out: *mut u16,
    n: usize,
) -> RmspropStatus {
    get_state::<crate::lowp::Bf16>(optimizer, component, tensor, out.cast(), n)
}

/// `rmsprop_set_state_f32` for a bfloat16 optimizer (`uint16_t` bits of bf16). Errors as
/// `rmsprop_set_state_f32`; unchanged on error. Threading: exclusive.
#[unsafe(no_mangle)]
pub extern "C" fn rmsprop_set_state_bf16(
    optimizer: *mut RmspropOptimizer,
    component: RmspropComponent,
    tensor: usize,
    values: *const u16,
    n: usize,
) -> RmspropStatus {
    set_state::<crate::lowp::Bf16>(optimizer, component, tensor, values.cast(), n)
}

/// `rmsprop_get_state_f32` for a float16 optimizer: the state is kept in f16, copied out as
/// `uint16_t` bits. Errors as `rmsprop_get_state_f32`.
#[unsafe(no_mangle)]
pub extern "C" fn rmsprop_get_state_f16(
    optimizer: *const RmspropOptimizer,
    component: RmspropComponent,
    tensor: usize,
    out: *mut u16,
    n: usize,
) -> RmspropStatus {
    get_state::<crate::lowp::F16>(optimizer, component, tensor, out.cast(), n)
}

/// `rmsprop_set_state_f32` for a float16 optimizer (`uint16_t` bits of f16). Errors as
/// `rmsprop_set_state_f32`; unchanged on error. Threading: exclusive.
#[unsafe(no_mangle)]
pub extern "C" fn rmsprop_set_state_f16(
    optimizer: *mut RmspropOptimizer,
    component: RmspropComponent,
    tensor: usize,
    values: *const u16,
    n: usize,
) -> RmspropStatus {
    set_state::<crate::lowp::F16>(optimizer, component, tensor, values.cast(), n)
}

/// Whether this configuration has state `component` (nu always; mu iff centered; trace iff
/// momentum is set) into `*out`. Errors as `rmsprop_dtype`, and `RMSPROP_ERR_BAD_ENUM`
/// (component).
#[unsafe(no_mangle)]
pub extern "C" fn rmsprop_has_state(
    optimizer: *const RmspropOptimizer,
    component: RmspropComponent,
    out: *mut bool,
) -> RmspropStatus {
    query(optimizer, out, |e| {
        let c = self::component(component)?;
        Ok(with_any!(e, o => o.state(c).is_some()))
    })
}

/// optax's counts: `*schedule_count` (`ScaleByScheduleState.count`, the count the learning
/// rate is evaluated at: steps taken, saturating at INT32_MAX) and `*bias_correction_count`
/// (`ScaleByRmsWithCountState.count`). Both advance every step; either pointer may be NULL.
/// Errors: `RMSPROP_ERR_NULL_POINTER` (optimizer), `RMSPROP_ERR_MISALIGNED`,
/// `RMSPROP_ERR_OVERFLOW` (a pointer argument is misaligned or wraps the address space),
/// `RMSPROP_ERR_BUSY` (a mutating call is running on this handle), `RMSPROP_ERR_POISONED`;
/// nothing is written on error. Threading: const.
#[unsafe(no_mangle)]
pub extern "C" fn rmsprop_get_counts(
    optimizer: *const RmspropOptimizer,
    schedule_count: *mut i32,
    bias_correction_count: *mut i32,
) -> RmspropStatus {
    boundary_ok(|| {
        let c = with_any!(&read(optimizer)?.engine, o => o.counts());
        for (p, what) in [
            (schedule_count, "schedule_count"),
            (bias_correction_count, "bias_correction_count"),
        ] {
            if !p.is_null() {
                check_out(p, what)?;
            }
        }
        write_optional(schedule_count, "schedule_count", c.schedule)?;
        write_optional(
            bias_correction_count,
            "bias_correction_count",
            c.bias_correction,
        )
    })
}

/// Set both counts (each in [0, INT32_MAX]), e.g. to resume from an optax state.
/// Errors: `RMSPROP_ERR_INVALID_HYPERPARAMETER` (negative); `RMSPROP_ERR_NULL_POINTER`,
/// `RMSPROP_ERR_MISALIGNED`, `RMSPROP_ERR_OVERFLOW` (`optimizer` is NULL, misaligned, or wraps
/// the address space), `RMSPROP_ERR_BUSY` (any other call is running on this handle),
/// `RMSPROP_ERR_POISONED`; unchanged on error. Threading: exclusive.
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
        with_any!(e, o => o.set_counts(c))?;
        Ok(())
    })
}

/// Reset to the initial state (optax `init`): nu = initial_scale, mu = trace = 0, counts 0.
/// The skip counter and hyperparameters are kept. Errors: `RMSPROP_ERR_NULL_POINTER`,
/// `RMSPROP_ERR_MISALIGNED`, `RMSPROP_ERR_OVERFLOW` (`optimizer` is NULL, misaligned, or
/// wraps the address space), `RMSPROP_ERR_BUSY` (any other call is running on this handle),
/// `RMSPROP_ERR_POISONED`. Threading: exclusive.
#[unsafe(no_mangle)]
pub extern "C" fn rmsprop_reset(optimizer: *mut RmspropOptimizer) -> RmspropStatus {
    mutate(optimizer, |e| {
        with_any!(e, o => o.reset());
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
    query(optimizer, out, |e| Ok(with_any!(e, o => o.skipped_steps())))
}

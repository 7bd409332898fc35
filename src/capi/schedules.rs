//! Learning-rate schedules: optax's schedule functions, built from C.
//!
//! Opaque, immutable, heap-allocated, owned by the caller until freed, and copied by the
//! functions that take them, so they may be freed right after use.

use super::boundary::*;
use super::dtype::{Dtype, RmspropDtype, dtype_arg};
use super::status::*;
use crate::schedule::Schedule;

/// Opaque learning-rate schedule (one of optax's schedule functions).
pub struct RmspropSchedule {
    pub(crate) schedule: Schedule,
}

/// Resolve a schedule pointer (the one pointer rule).
pub(crate) fn sched<'a>(
    s: *const RmspropSchedule,
    what: &'static str,
) -> Result<&'a Schedule, CError> {
    // SAFETY: the caller passes a live schedule from an `rmsprop_schedule_*` constructor
    // (documented); schedules are immutable after construction.
    Ok(unsafe { &object(s, what)?.schedule })
}

fn new_schedule(s: Schedule, out: *mut *mut RmspropSchedule) -> Result<RmspropStatus, CError> {
    s.validate()?;
    check_out(out, "out")?;
    write_box(out, "out", Box::new(RmspropSchedule { schedule: s }))?;
    Ok(RMSPROP_OK)
}

/// `optax.constant_schedule(value)`.
///
/// Every `rmsprop_schedule_*` constructor: on success `*out` owns a new schedule (free it
/// with `rmsprop_schedule_free`); on error `*out` is untouched. Any thread.
/// Errors: `RMSPROP_ERR_INVALID_SCHEDULE` (non-finite values, step arguments outside int32,
/// and what optax itself rejects); `RMSPROP_ERR_NULL_POINTER`, `RMSPROP_ERR_MISALIGNED`,
/// `RMSPROP_ERR_OVERFLOW` (`out`, or another pointer argument, is NULL where it must not
/// be, misaligned, or its range wraps the address space or overflows `size_t`).
#[unsafe(no_mangle)]
pub extern "C" fn rmsprop_schedule_constant(
    value: f64,
    out: *mut *mut RmspropSchedule,
) -> RmspropStatus {
    boundary(|| new_schedule(Schedule::Constant { value }, out))
}

/// `optax.linear_schedule(init_value, end_value, transition_steps, transition_begin)`.
/// `transition_steps <= 0` gives a constant `init_value`, as in optax.
/// Errors as `rmsprop_schedule_constant`.
#[unsafe(no_mangle)]
pub extern "C" fn rmsprop_schedule_linear(
    init_value: f64,
    end_value: f64,
    transition_steps: i64,
    transition_begin: i64,
    out: *mut *mut RmspropSchedule,
) -> RmspropStatus {
    boundary(|| {
        new_schedule(
            Schedule::Linear {
                init_value,
                end_value,
                transition_steps,
                transition_begin,
            },
            out,
        )
    })
}

/// `optax.polynomial_schedule(init_value, end_value, power, transition_steps, transition_begin)`.
/// Errors as `rmsprop_schedule_constant`.
#[unsafe(no_mangle)]
pub extern "C" fn rmsprop_schedule_polynomial(
    init_value: f64,
    end_value: f64,
    power: f64,
    transition_steps: i64,
    transition_begin: i64,
    out: *mut *mut RmspropSchedule,
) -> RmspropStatus {
    boundary(|| {
        new_schedule(
            Schedule::Polynomial {
                init_value,
                end_value,
                power,
                transition_steps,
                transition_begin,
            },
            out,
        )
    })
}

/// `optax.exponential_decay(init_value, transition_steps, decay_rate, transition_begin,
/// staircase, end_value)`. `end_value` NULL means optax's `None`; otherwise it points to the
/// bound (a misaligned one gives `RMSPROP_ERR_MISALIGNED`). Errors as `rmsprop_schedule_constant`.
#[unsafe(no_mangle)]
pub extern "C" fn rmsprop_schedule_exponential_decay(
    init_value: f64,
    transition_steps: i64,
    decay_rate: f64,
    transition_begin: i64,
    staircase: bool,
    end_value: *const f64,
    out: *mut *mut RmspropSchedule,
) -> RmspropStatus {
    boundary(|| {
        let end_value = read_optional(end_value, "end_value")?;
        new_schedule(
            Schedule::ExponentialDecay {
                init_value,
                transition_steps,
                decay_rate,
                transition_begin,
                staircase,
                end_value,
            },
            out,
        )
    })
}

/// `optax.cosine_decay_schedule(init_value, decay_steps, alpha, exponent)` (optax defaults
/// alpha 0, exponent 1). `decay_steps` must be positive, as optax requires.
/// Errors as `rmsprop_schedule_constant`.
#[unsafe(no_mangle)]
pub extern "C" fn rmsprop_schedule_cosine_decay(
    init_value: f64,
    decay_steps: i64,
    alpha: f64,
    exponent: f64,
    out: *mut *mut RmspropSchedule,
) -> RmspropStatus {
    boundary(|| {
        new_schedule(
            Schedule::CosineDecay {
                init_value,
                decay_steps,
                alpha,
                exponent,
            },
            out,
        )
    })
}

/// `optax.warmup_cosine_decay_schedule(init_value, peak_value, warmup_steps, decay_steps,
/// end_value, exponent)` (optax defaults end_value 0, exponent 1). `decay_steps` counts the
/// warmup too and must exceed `warmup_steps`. Errors as `rmsprop_schedule_constant`.
#[unsafe(no_mangle)]
pub extern "C" fn rmsprop_schedule_warmup_cosine_decay(
    init_value: f64,
    peak_value: f64,
    warmup_steps: i64,
    decay_steps: i64,
    end_value: f64,
    exponent: f64,
    out: *mut *mut RmspropSchedule,
) -> RmspropStatus {
    boundary(|| {
        new_schedule(
            Schedule::WarmupCosineDecay {
                init_value,
                peak_value,
                warmup_steps,
                decay_steps,
                end_value,
                exponent,
            },
            out,
        )
    })
}

/// `optax.warmup_exponential_decay_schedule(init_value, peak_value, warmup_steps,
/// transition_steps, decay_rate, transition_begin, staircase, end_value)`; `end_value`
/// NULL means None. Errors as `rmsprop_schedule_constant`.
#[unsafe(no_mangle)]
#[allow(clippy::too_many_arguments)]
pub extern "C" fn rmsprop_schedule_warmup_exponential_decay(
    init_value: f64,
    peak_value: f64,
    warmup_steps: i64,
    transition_steps: i64,
    decay_rate: f64,
    transition_begin: i64,
    staircase: bool,
    end_value: *const f64,
    out: *mut *mut RmspropSchedule,
) -> RmspropStatus {
    boundary(|| {
        let end_value = read_optional(end_value, "end_value")?;
        new_schedule(
            Schedule::WarmupExponentialDecay {
                init_value,
                peak_value,
                warmup_steps,
                transition_steps,
                decay_rate,
                transition_begin,
                staircase,
                end_value,
            },
            out,
        )
    })
}

/// `optax.piecewise_constant_schedule(init_value, {boundaries[i]: scales[i]})`: from count
/// `boundaries[i]` on, the value is multiplied by `scales[i]`. Boundaries strictly
/// increasing, scales >= 0. `count` may be 0 (then both arrays may be NULL); otherwise both
/// arrays are checked by the pointer rule (`count = SIZE_MAX` gives `RMSPROP_ERR_OVERFLOW`).
/// Errors as `rmsprop_schedule_constant`.
#[unsafe(no_mangle)]
pub extern "C" fn rmsprop_schedule_piecewise_constant(
    init_value: f64,
    boundaries: *const i64,
    scales: *const f64,
    count: usize,
    out: *mut *mut RmspropSchedule,
) -> RmspropStatus {
    boundary(|| {
        // SAFETY: the caller passes `count` readable elements in each array (documented).
        let b = unsafe { slice(boundaries, count, "boundaries")? };
        // SAFETY: as above.
        let s = unsafe { slice(scales, count, "scales")? };
        let pairs = b.iter().copied().zip(s.iter().copied()).collect();
        new_schedule(
            Schedule::PiecewiseConstant {
                init_value,
                boundaries_and_scales: pairs,
            },
            out,
        )
    })
}

/// `optax.join_schedules(schedules, boundaries)`: `num_schedules` schedules (copied) and
/// `num_schedules - 1` sorted boundaries; schedule `i + 1` starts at `boundaries[i]` with
/// its count restarted at 0. Joins may be nested. Each `schedules[i]` must be a live
/// schedule (NULL gives `RMSPROP_ERR_NULL_POINTER`). Errors as `rmsprop_schedule_constant`.
#[unsafe(no_mangle)]
pub extern "C" fn rmsprop_schedule_join(
    schedules: *const *const RmspropSchedule,
    num_schedules: usize,
    boundaries: *const i64,
    num_boundaries: usize,
    out: *mut *mut RmspropSchedule,
) -> RmspropStatus {
    boundary(|| {
        // SAFETY: the caller passes `num_schedules` readable pointers (documented).
        let ptrs = unsafe { slice(schedules, num_schedules, "schedules")? };
        // SAFETY: the caller passes `num_boundaries` readable values (documented).
        let b = unsafe { slice(boundaries, num_boundaries, "boundaries")? };
        let list = ptrs
            .iter()
            .map(|&p| sched(p, "schedules[i]").cloned())
            .collect::<Result<Vec<_>, _>>()?;
        new_schedule(
            Schedule::Join {
                schedules: list,
                boundaries: b.to_vec(),
            },
            out,
        )
    })
}

/// The schedule's value at `count`, as jitted optax computes it for parameters of `dtype`
/// (`RMSPROP_DTYPE_F32` or `RMSPROP_DTYPE_F64`, i.e. jax without or with x64;
/// `RMSPROP_DTYPE_BF16` / `_F16`: the f32 value cast to bf16 / f16, as optax's
/// `scale_by_schedule` casts it to the parameters' dtype).
/// Errors: `RMSPROP_ERR_BAD_ENUM` (dtype); `RMSPROP_ERR_NULL_POINTER`,
/// `RMSPROP_ERR_MISALIGNED`, `RMSPROP_ERR_OVERFLOW` (`schedule` or `out` is NULL, misaligned,
/// or wraps the address space); `*out` untouched on error. Any thread.
#[unsafe(no_mangle)]
pub extern "C" fn rmsprop_schedule_value(
    schedule: *const RmspropSchedule,
    count: i32,
    dtype: RmspropDtype,
    out: *mut f64,
) -> RmspropStatus {
    boundary(|| {
        let s = sched(schedule, "schedule")?;
        let v = match dtype_arg(dtype)? {
            Dtype::F32 => s.value::<f32>(count) as f64,
            Dtype::F64 => s.value::<f64>(count),
            Dtype::Bf16 => crate::Real::to_f64(s.value::<crate::lowp::Bf16>(count)),
            Dtype::F16 => crate::Real::to_f64(s.value::<crate::lowp::F16>(count)),
        };
        write_out(out, "out", v)?;
        Ok(RMSPROP_OK)
    })
}

/// Free a schedule. NULL is a no-op. Options, optimizers and joins that copied it are unaffected.
#[unsafe(no_mangle)]
pub extern "C" fn rmsprop_schedule_free(schedule: *mut RmspropSchedule) {
    // SAFETY: NULL or a pointer from an `rmsprop_schedule_*` constructor, freed once.
    unsafe { free_box(schedule) }
}

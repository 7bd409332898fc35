//! Options (every `optax.rmsprop` argument) and schedule objects, built from C.
//!
//! Both are opaque, heap-allocated, owned by the caller until freed, and copied by the
//! functions that take them, so they may be freed right after use.

use super::status::*;
use crate::config::{self, Config, LearningRate};
use crate::schedule::Schedule;

/// Opaque options: every argument of `optax.rmsprop`, starting at optax's defaults.
/// New options can be added later without breaking programs built against this header.
pub struct RmspropOptions {
    pub(crate) config: Config,
    pub(crate) skip_non_finite: bool,
}

/// Opaque learning-rate schedule (one of optax's schedule functions).
pub struct RmspropSchedule {
    pub(crate) schedule: Schedule,
}

/// Resolve an options pointer.
fn opts<'a>(o: *mut RmspropOptions) -> Result<&'a mut RmspropOptions, CError> {
    if o.is_null() {
        return Err(CError::Null("options"));
    }
    // SAFETY: non-NULL; the caller passes a pointer from `rmsprop_options_new` that has not
    // been freed, and does not use it from two threads at once (documented).
    Ok(unsafe { &mut *o })
}

/// Resolve a schedule pointer.
pub(crate) fn sched<'a>(
    s: *const RmspropSchedule,
    what: &'static str,
) -> Result<&'a Schedule, CError> {
    if s.is_null() {
        return Err(CError::Null(what));
    }
    // SAFETY: non-NULL; the caller passes a live schedule from an `rmsprop_schedule_*`
    // constructor (documented); schedules are immutable after construction.
    Ok(unsafe { &(*s).schedule })
}

/// Create options with optax's defaults (`decay` 0.9, `eps` 1e-8, `initial_scale` 0,
/// `eps_in_sqrt` true, `centered` false, `momentum` None, `nesterov` false,
/// `bias_correction` false) and a fixed `learning_rate`.
///
/// Ownership: on success `*out` owns a new object; free it with `rmsprop_options_free`.
/// Errors: `RMSPROP_ERR_NULL_POINTER` (out), `RMSPROP_ERR_INVALID_HYPERPARAMETER`
/// (non-finite learning rate); `*out` is untouched on error.
/// Threading: any thread; an options object must not be used by two threads at once.
#[unsafe(no_mangle)]
pub extern "C" fn rmsprop_options_new(
    learning_rate: f64,
    out: *mut *mut RmspropOptions,
) -> RmspropStatus {
    boundary(|| {
        config::check_learning_rate(learning_rate)?;
        if out.is_null() {
            return Err(CError::Null("out"));
        }
        let o = Box::new(RmspropOptions {
            config: Config::new(learning_rate),
            skip_non_finite: false,
        });
        write_box(out, "out", o)?;
        Ok(RMSPROP_OK)
    })
}

/// Free options. NULL is a no-op. Optimizers created from them are unaffected.
#[unsafe(no_mangle)]
pub extern "C" fn rmsprop_options_free(options: *mut RmspropOptions) {
    boundary_value((), || {
        if !options.is_null() {
            // SAFETY: a non-NULL pointer from `rmsprop_options_new`, freed once (documented).
            drop(unsafe { Box::from_raw(options) });
        }
    })
}

fn set(
    o: *mut RmspropOptions,
    f: impl FnOnce(&mut RmspropOptions) -> Result<(), CError>,
) -> RmspropStatus {
    boundary(|| {
        f(opts(o)?)?;
        Ok(RMSPROP_OK)
    })
}

/// Set a fixed learning rate (optax `scale(-learning_rate)`; no schedule count). Any finite
/// value; replaces a schedule set earlier.
/// Errors: `RMSPROP_ERR_NULL_POINTER`, `RMSPROP_ERR_INVALID_HYPERPARAMETER`; unchanged on error.
#[unsafe(no_mangle)]
pub extern "C" fn rmsprop_options_set_learning_rate(
    options: *mut RmspropOptions,
    learning_rate: f64,
) -> RmspropStatus {
    set(options, |o| {
        config::check_learning_rate(learning_rate)?;
        o.config.learning_rate = LearningRate::Fixed(learning_rate);
        Ok(())
    })
}

/// Use a learning-rate schedule (optax `scale_by_schedule`: evaluated at the count before
/// each step). The schedule is copied; free yours whenever you like.
/// Errors: `RMSPROP_ERR_NULL_POINTER` (either pointer); unchanged on error.
#[unsafe(no_mangle)]
pub extern "C" fn rmsprop_options_set_learning_rate_schedule(
    options: *mut RmspropOptions,
    schedule: *const RmspropSchedule,
) -> RmspropStatus {
    set(options, |o| {
        let s = sched(schedule, "schedule")?.clone();
        o.config.learning_rate = LearningRate::Schedule(s);
        Ok(())
    })
}

/// Set `decay` (optax default 0.9); must be finite and in [0, 1].
/// Errors: `RMSPROP_ERR_NULL_POINTER`, `RMSPROP_ERR_INVALID_HYPERPARAMETER`; unchanged on error.
#[unsafe(no_mangle)]
pub extern "C" fn rmsprop_options_set_decay(
    options: *mut RmspropOptions,
    decay: f64,
) -> RmspropStatus {
    set(options, |o| {
        config::check_decay(decay)?;
        o.config.decay = decay;
        Ok(())
    })
}

/// Set `eps` (optax default 1e-8); must be finite and >= 0.
/// Errors: `RMSPROP_ERR_NULL_POINTER`, `RMSPROP_ERR_INVALID_HYPERPARAMETER`; unchanged on error.
#[unsafe(no_mangle)]
pub extern "C" fn rmsprop_options_set_eps(options: *mut RmspropOptions, eps: f64) -> RmspropStatus {
    set(options, |o| {
        config::check_eps(eps)?;
        o.config.eps = eps;
        Ok(())
    })
}

/// Set `initial_scale`, the value `nu` starts at (optax default 0; PyTorch uses 0, TF1 1);
/// must be finite and >= 0.
/// Errors: `RMSPROP_ERR_NULL_POINTER`, `RMSPROP_ERR_INVALID_HYPERPARAMETER`; unchanged on error.
#[unsafe(no_mangle)]
pub extern "C" fn rmsprop_options_set_initial_scale(
    options: *mut RmspropOptions,
    initial_scale: f64,
) -> RmspropStatus {
    set(options, |o| {
        config::check_initial_scale(initial_scale)?;
        o.config.initial_scale = initial_scale;
        Ok(())
    })
}

/// Set `eps_in_sqrt` (optax default true: `1/sqrt(nu + eps)`; false: `1/(sqrt(nu) + eps)`,
/// PyTorch's form). Errors: `RMSPROP_ERR_NULL_POINTER`.
#[unsafe(no_mangle)]
pub extern "C" fn rmsprop_options_set_eps_in_sqrt(
    options: *mut RmspropOptions,
    eps_in_sqrt: bool,
) -> RmspropStatus {
    set(options, |o| {
        o.config.eps_in_sqrt = eps_in_sqrt;
        Ok(())
    })
}

/// Set `centered` (optax default false): divide by the variance estimate `nu - mu^2`
/// (optax `scale_by_stddev`). Errors: `RMSPROP_ERR_NULL_POINTER`.
#[unsafe(no_mangle)]
pub extern "C" fn rmsprop_options_set_centered(
    options: *mut RmspropOptions,
    centered: bool,
) -> RmspropStatus {
    set(options, |o| {
        o.config.centered = centered;
        Ok(())
    })
}

/// Set `momentum` to a value (optax `momentum=value`, a `trace` state; 0.0 still keeps a
/// trace, as optax does). Must be finite.
/// Errors: `RMSPROP_ERR_NULL_POINTER`, `RMSPROP_ERR_INVALID_HYPERPARAMETER`; unchanged on error.
#[unsafe(no_mangle)]
pub extern "C" fn rmsprop_options_set_momentum(
    options: *mut RmspropOptions,
    momentum: f64,
) -> RmspropStatus {
    set(options, |o| {
        config::check_momentum(momentum)?;
        o.config.momentum = Some(momentum);
        Ok(())
    })
}

/// Unset `momentum` (optax `momentum=None`, the default: no trace state at all).
/// Errors: `RMSPROP_ERR_NULL_POINTER`.
#[unsafe(no_mangle)]
pub extern "C" fn rmsprop_options_clear_momentum(options: *mut RmspropOptions) -> RmspropStatus {
    set(options, |o| {
        o.config.momentum = None;
        Ok(())
    })
}

/// Set `nesterov` (optax default false; ignored without momentum, as optax ignores it).
/// Errors: `RMSPROP_ERR_NULL_POINTER`.
#[unsafe(no_mangle)]
pub extern "C" fn rmsprop_options_set_nesterov(
    options: *mut RmspropOptions,
    nesterov: bool,
) -> RmspropStatus {
    set(options, |o| {
        o.config.nesterov = nesterov;
        Ok(())
    })
}

/// Set `bias_correction` (optax default false): divide `nu` (and `mu`) by `1 - decay^k`.
/// Errors: `RMSPROP_ERR_NULL_POINTER`.
#[unsafe(no_mangle)]
pub extern "C" fn rmsprop_options_set_bias_correction(
    options: *mut RmspropOptions,
    bias_correction: bool,
) -> RmspropStatus {
    set(options, |o| {
        o.config.bias_correction = bias_correction;
        Ok(())
    })
}

/// Skip steps whose gradients contain NaN or infinity (in the spirit of
/// `optax.apply_if_finite`): such a step returns `RMSPROP_SKIPPED_NON_FINITE`, changes
/// neither parameters nor state (counts included) and is counted
/// (`rmsprop_skipped_steps`); the update entry points then write zero updates, as
/// `apply_if_finite` returns. Default false: non-finite values propagate as in optax.
/// Costs one extra read of the gradients per step. Errors: `RMSPROP_ERR_NULL_POINTER`.
#[unsafe(no_mangle)]
pub extern "C" fn rmsprop_options_set_skip_non_finite(
    options: *mut RmspropOptions,
    skip: bool,
) -> RmspropStatus {
    set(options, |o| {
        o.skip_non_finite = skip;
        Ok(())
    })
}

fn new_schedule(s: Schedule, out: *mut *mut RmspropSchedule) -> Result<RmspropStatus, CError> {
    s.validate()?;
    if out.is_null() {
        return Err(CError::Null("out"));
    }
    write_box(out, "out", Box::new(RmspropSchedule { schedule: s }))?;
    Ok(RMSPROP_OK)
}

/// `optax.constant_schedule(value)`.
///
/// Every `rmsprop_schedule_*` constructor: on success `*out` owns a new schedule (free it
/// with `rmsprop_schedule_free`); errors `RMSPROP_ERR_NULL_POINTER` (out) and
/// `RMSPROP_ERR_INVALID_SCHEDULE` (non-finite values, step arguments outside int32,
/// and what optax itself rejects), leaving `*out` untouched. Any thread.
#[unsafe(no_mangle)]
pub extern "C" fn rmsprop_schedule_constant(
    value: f64,
    out: *mut *mut RmspropSchedule,
) -> RmspropStatus {
    boundary(|| new_schedule(Schedule::Constant { value }, out))
}

/// `optax.linear_schedule(init_value, end_value, transition_steps, transition_begin)`.
/// `transition_steps <= 0` gives a constant `init_value`, as in optax.
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

fn opt_f64(p: *const f64) -> Result<Option<f64>, CError> {
    if p.is_null() {
        return Ok(None);
    }
    if !p.is_aligned() {
        return Err(CError::Misaligned("end_value"));
    }
    // SAFETY: non-NULL and aligned; the caller passes a readable double (documented).
    Ok(Some(unsafe { p.read() }))
}

/// `optax.exponential_decay(init_value, transition_steps, decay_rate, transition_begin,
/// staircase, end_value)`. `end_value` NULL means optax's `None`; otherwise it points to the bound.
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
        let end_value = opt_f64(end_value)?;
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
/// warmup too and must exceed `warmup_steps`.
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
/// NULL means None.
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
        let end_value = opt_f64(end_value)?;
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
/// increasing, scales >= 0. `count` may be 0 (then both arrays may be NULL).
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
/// its count restarted at 0. Joins may be nested.
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
/// (`RMSPROP_DTYPE_F32` or `RMSPROP_DTYPE_F64`, i.e. jax without or with x64).
/// Errors: `RMSPROP_ERR_NULL_POINTER`, `RMSPROP_ERR_BAD_ENUM`; `*out` untouched on error.
#[unsafe(no_mangle)]
pub extern "C" fn rmsprop_schedule_value(
    schedule: *const RmspropSchedule,
    count: i32,
    dtype: RmspropDtype,
    out: *mut f64,
) -> RmspropStatus {
    boundary(|| {
        let s = sched(schedule, "schedule")?;
        let v = match dtype {
            RMSPROP_DTYPE_F32 => s.value::<f32>(count) as f64,
            RMSPROP_DTYPE_F64 => s.value::<f64>(count),
            other => {
                return Err(CError::BadEnum {
                    what: "dtype",
                    value: other as i64,
                });
            }
        };
        write_out(out, "out", v)?;
        Ok(RMSPROP_OK)
    })
}

/// Free a schedule. NULL is a no-op. Options, optimizers and joins that copied it are unaffected.
#[unsafe(no_mangle)]
pub extern "C" fn rmsprop_schedule_free(schedule: *mut RmspropSchedule) {
    boundary_value((), || {
        if !schedule.is_null() {
            // SAFETY: a non-NULL pointer from an `rmsprop_schedule_*` constructor, freed once.
            drop(unsafe { Box::from_raw(schedule) });
        }
    })
}

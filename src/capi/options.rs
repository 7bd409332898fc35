//! Options: every `optax.rmsprop` argument, built from C before `rmsprop_create`.
//!
//! Opaque, heap-allocated, owned by the caller until freed, and copied by the functions
//! that take them, so they may be freed right after use.

use super::boundary::*;
use super::hyper::{Flag, Hyper};
use super::schedules::{RmspropSchedule, sched};
use super::status::*;
use crate::config::{Config, LearningRate};

/// Opaque options: every argument of `optax.rmsprop`, starting at optax's defaults.
/// New options can be added later without breaking programs built against this header.
pub struct RmspropOptions {
    pub(crate) config: Config,
    pub(crate) skip_non_finite: bool,
    pub(crate) transforms: crate::transform::Transforms,
    pub(crate) flavor: crate::preset::Flavor,
}

/// Resolve an options pointer for reading (the one pointer rule).
pub(crate) fn options_ref<'a>(o: *const RmspropOptions) -> Result<&'a RmspropOptions, CError> {
    // SAFETY: the caller passes live options from `rmsprop_options_new`, not used by
    // another thread during the call (documented).
    unsafe { object(o, "options") }
}

/// Run `f` on the options behind `o` (checked by the one pointer rule).
pub(crate) fn with_options(
    o: *mut RmspropOptions,
    f: impl FnOnce(&mut RmspropOptions) -> Result<(), CError>,
) -> RmspropStatus {
    boundary_ok(|| {
        // SAFETY: the caller passes live options from `rmsprop_options_new` and does not
        // use them from two threads at once (documented).
        f(unsafe { object_mut(o, "options")? })
    })
}

/// The body of every real-valued `rmsprop_options_set_*`.
fn set_hyper(o: *mut RmspropOptions, h: Hyper, v: f64) -> RmspropStatus {
    with_options(o, |o| Ok(h.set(&mut o.config, v)?))
}

/// The body of every boolean `rmsprop_options_set_*`.
fn set_flag(o: *mut RmspropOptions, f: Flag, on: bool) -> RmspropStatus {
    with_options(o, |o| {
        f.set_config(&mut o.config, on);
        Ok(())
    })
}

/// Create options with optax's defaults (`decay` 0.9, `eps` 1e-8, `initial_scale` 0,
/// `eps_in_sqrt` true, `centered` false, `momentum` None, `nesterov` false,
/// `bias_correction` false) and a fixed `learning_rate` (any finite value).
///
/// Ownership: on success `*out` owns a new object; free it with `rmsprop_options_free`.
/// Errors: `RMSPROP_ERR_INVALID_HYPERPARAMETER` (non-finite learning rate);
/// `RMSPROP_ERR_NULL_POINTER`, `RMSPROP_ERR_MISALIGNED`, `RMSPROP_ERR_OVERFLOW` (`out` is
/// NULL, misaligned, or wraps the address space); `*out` is untouched on error.
/// Threading: any thread; an options object must not be used by two threads at once.
#[unsafe(no_mangle)]
pub extern "C" fn rmsprop_options_new(
    learning_rate: f64,
    out: *mut *mut RmspropOptions,
) -> RmspropStatus {
    boundary_ok(|| {
        Hyper::LearningRate.check(learning_rate)?;
        check_out(out, "out")?;
        let o = Box::new(RmspropOptions {
            config: Config::new(learning_rate),
            skip_non_finite: false,
            transforms: Default::default(),
            flavor: Default::default(),
        });
        write_box(out, "out", o)
    })
}

/// Free options. NULL is a no-op. Optimizers created from them are unaffected.
#[unsafe(no_mangle)]
pub extern "C" fn rmsprop_options_free(options: *mut RmspropOptions) {
    // SAFETY: NULL or a pointer from `rmsprop_options_new`, freed once (documented).
    unsafe { free_box(options) }
}

/// Set a fixed learning rate (optax `scale(-learning_rate)`; no schedule count). Any finite
/// value; replaces a schedule set earlier.
///
/// Every `rmsprop_options_set_*` / `rmsprop_options_clear_momentum`: errors
/// `RMSPROP_ERR_NULL_POINTER`, `RMSPROP_ERR_MISALIGNED`, `RMSPROP_ERR_OVERFLOW` (`options`
/// is NULL, misaligned, or wraps the address space), and, for a value,
/// `RMSPROP_ERR_INVALID_HYPERPARAMETER`; the options are unchanged on error.
#[unsafe(no_mangle)]
pub extern "C" fn rmsprop_options_set_learning_rate(
    options: *mut RmspropOptions,
    learning_rate: f64,
) -> RmspropStatus {
    set_hyper(options, Hyper::LearningRate, learning_rate)
}

/// Use a learning-rate schedule (optax `scale_by_schedule`: evaluated at the count before
/// each step). The schedule is copied; free yours whenever you like.
/// Errors: `RMSPROP_ERR_NULL_POINTER`, `RMSPROP_ERR_MISALIGNED`, `RMSPROP_ERR_OVERFLOW`
/// (`options` or `schedule` is NULL, misaligned, or wraps the address space); unchanged on
/// error.
#[unsafe(no_mangle)]
pub extern "C" fn rmsprop_options_set_learning_rate_schedule(
    options: *mut RmspropOptions,
    schedule: *const RmspropSchedule,
) -> RmspropStatus {
    with_options(options, |o| {
        o.config.learning_rate = LearningRate::Schedule(sched(schedule, "schedule")?.clone());
        Ok(())
    })
}

/// Set `decay` (optax default 0.9); must be finite and in [0, 1].
/// Errors as `rmsprop_options_set_learning_rate`.
#[unsafe(no_mangle)]
pub extern "C" fn rmsprop_options_set_decay(
    options: *mut RmspropOptions,
    decay: f64,
) -> RmspropStatus {
    set_hyper(options, Hyper::Decay, decay)
}

/// Set `eps` (optax default 1e-8); must be finite and >= 0.
/// Errors as `rmsprop_options_set_learning_rate`.
#[unsafe(no_mangle)]
pub extern "C" fn rmsprop_options_set_eps(options: *mut RmspropOptions, eps: f64) -> RmspropStatus {
    set_hyper(options, Hyper::Eps, eps)
}

/// Set `initial_scale`, the value `nu` starts at (optax default 0; PyTorch uses 0, TF1 1);
/// must be finite and >= 0. Errors as `rmsprop_options_set_learning_rate`.
#[unsafe(no_mangle)]
pub extern "C" fn rmsprop_options_set_initial_scale(
    options: *mut RmspropOptions,
    initial_scale: f64,
) -> RmspropStatus {
    set_hyper(options, Hyper::InitialScale, initial_scale)
}

/// Set `eps_in_sqrt` (optax default true: `1/sqrt(nu + eps)`; false: `1/(sqrt(nu) + eps)`,
/// PyTorch's form). Errors as `rmsprop_options_set_learning_rate`.
#[unsafe(no_mangle)]
pub extern "C" fn rmsprop_options_set_eps_in_sqrt(
    options: *mut RmspropOptions,
    eps_in_sqrt: bool,
) -> RmspropStatus {
    set_flag(options, Flag::EpsInSqrt, eps_in_sqrt)
}

/// Set `centered` (optax default false): divide by the variance estimate `nu - mu^2`
/// (optax `scale_by_stddev`). Errors as `rmsprop_options_set_learning_rate`.
#[unsafe(no_mangle)]
pub extern "C" fn rmsprop_options_set_centered(
    options: *mut RmspropOptions,
    centered: bool,
) -> RmspropStatus {
    set_flag(options, Flag::Centered, centered)
}

/// Set `momentum` to a value (optax `momentum=value`, a `trace` state; 0.0 still keeps a
/// trace, as optax does). Must be finite. Errors as `rmsprop_options_set_learning_rate`.
#[unsafe(no_mangle)]
pub extern "C" fn rmsprop_options_set_momentum(
    options: *mut RmspropOptions,
    momentum: f64,
) -> RmspropStatus {
    set_hyper(options, Hyper::Momentum, momentum)
}

/// Unset `momentum` (optax `momentum=None`, the default: no trace state at all).
/// Errors as `rmsprop_options_set_learning_rate`.
#[unsafe(no_mangle)]
pub extern "C" fn rmsprop_options_clear_momentum(options: *mut RmspropOptions) -> RmspropStatus {
    with_options(options, |o| {
        o.config.momentum = None;
        Ok(())
    })
}

/// Set `nesterov` (optax default false; ignored without momentum, as optax ignores it).
/// Errors as `rmsprop_options_set_learning_rate`.
#[unsafe(no_mangle)]
pub extern "C" fn rmsprop_options_set_nesterov(
    options: *mut RmspropOptions,
    nesterov: bool,
) -> RmspropStatus {
    set_flag(options, Flag::Nesterov, nesterov)
}

/// Set `bias_correction` (optax default false): divide `nu` (and `mu`) by `1 - decay^k`.
/// Errors as `rmsprop_options_set_learning_rate`.
#[unsafe(no_mangle)]
pub extern "C" fn rmsprop_options_set_bias_correction(
    options: *mut RmspropOptions,
    bias_correction: bool,
) -> RmspropStatus {
    set_flag(options, Flag::BiasCorrection, bias_correction)
}

/// Skip steps whose gradients contain NaN or infinity (in the spirit of
/// `optax.apply_if_finite`): such a step returns `RMSPROP_SKIPPED_NON_FINITE`, changes
/// neither parameters nor state (counts included) and is counted
/// (`rmsprop_skipped_steps`); the update entry points then write zero updates, as
/// `apply_if_finite` returns. Default false: non-finite values propagate as in optax.
/// Costs one extra read of the gradients per step.
/// Errors as `rmsprop_options_set_learning_rate`.
#[unsafe(no_mangle)]
pub extern "C" fn rmsprop_options_set_skip_non_finite(
    options: *mut RmspropOptions,
    skip: bool,
) -> RmspropStatus {
    with_options(options, |o| {
        o.skip_non_finite = skip;
        Ok(())
    })
}

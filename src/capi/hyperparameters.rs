//! Hyperparameters of a live optimizer: the learning rate (fixed or a schedule) and the
//! real-valued hyperparameters, changed between steps as `optax.inject_hyperparams` allows.

use super::handle::{RmspropOptimizer, mutate, query};
use super::hyper::Hyper;
use super::schedules::{RmspropSchedule, sched};
use super::status::*;
use crate::config::LearningRate;
use crate::real::Real;
use crate::with_any;

/// The body of every real-valued `rmsprop_set_*`.
fn set_live(h: *mut RmspropOptimizer, p: Hyper, v: f64) -> RmspropStatus {
    mutate(h, |e| Ok(with_any!(e, o => o.set_hyper(p, v))?))
}

/// The learning rate the next step will use (the schedule at the current count, rounded to
/// the optimizer's dtype), into `*out`. Errors as `rmsprop_dtype`.
#[unsafe(no_mangle)]
pub extern "C" fn rmsprop_current_learning_rate(
    optimizer: *const RmspropOptimizer,
    out: *mut f64,
) -> RmspropStatus {
    query(optimizer, out, |e| {
        Ok(with_any!(e, o => o.current_learning_rate().to_f64()))
    })
}

/// Set a fixed learning rate between steps (as with `optax.inject_hyperparams`); replaces
/// any schedule. Counts are kept.
///
/// Every `rmsprop_set_*` hyperparameter setter: errors `RMSPROP_ERR_INVALID_HYPERPARAMETER`
/// (the value breaks the rule of its `rmsprop_options_set_*` twin), `RMSPROP_ERR_NULL_POINTER`,
/// `RMSPROP_ERR_MISALIGNED`, `RMSPROP_ERR_OVERFLOW` (`optimizer` is NULL, misaligned, or wraps
/// the address space), `RMSPROP_ERR_BUSY` (any other call is running on this handle),
/// `RMSPROP_ERR_POISONED`; unchanged on error. Threading: exclusive.
#[unsafe(no_mangle)]
pub extern "C" fn rmsprop_set_learning_rate(
    optimizer: *mut RmspropOptimizer,
    learning_rate: f64,
) -> RmspropStatus {
    set_live(optimizer, Hyper::LearningRate, learning_rate)
}

/// Replace the learning-rate schedule between steps (copied); it continues from the
/// current schedule count. Errors as `rmsprop_set_learning_rate` (the pointer rule applies
/// to `schedule` too).
#[unsafe(no_mangle)]
pub extern "C" fn rmsprop_set_learning_rate_schedule(
    optimizer: *mut RmspropOptimizer,
    schedule: *const RmspropSchedule,
) -> RmspropStatus {
    mutate(optimizer, |e| {
        let s = sched(schedule, "schedule")?;
        Ok(with_any!(e, o => o.set_learning_rate(LearningRate::Schedule(s.clone())))?)
    })
}

/// Set `decay` between steps (finite, in [0, 1]). Errors as `rmsprop_set_learning_rate`.
#[unsafe(no_mangle)]
pub extern "C" fn rmsprop_set_decay(optimizer: *mut RmspropOptimizer, decay: f64) -> RmspropStatus {
    set_live(optimizer, Hyper::Decay, decay)
}

/// Set `eps` between steps (finite, >= 0). Errors as `rmsprop_set_learning_rate`.
#[unsafe(no_mangle)]
pub extern "C" fn rmsprop_set_eps(optimizer: *mut RmspropOptimizer, eps: f64) -> RmspropStatus {
    set_live(optimizer, Hyper::Eps, eps)
}

/// Set `initial_scale` (finite, >= 0); it takes effect at the next `rmsprop_reset`.
/// Errors as `rmsprop_set_learning_rate`.
#[unsafe(no_mangle)]
pub extern "C" fn rmsprop_set_initial_scale(
    optimizer: *mut RmspropOptimizer,
    initial_scale: f64,
) -> RmspropStatus {
    set_live(optimizer, Hyper::InitialScale, initial_scale)
}

/// Set `momentum` between steps (finite); only for optimizers created with momentum
/// (else `RMSPROP_ERR_NO_SUCH_STATE`). Errors as `rmsprop_set_learning_rate`.
#[unsafe(no_mangle)]
pub extern "C" fn rmsprop_set_momentum(
    optimizer: *mut RmspropOptimizer,
    momentum: f64,
) -> RmspropStatus {
    set_live(optimizer, Hyper::Momentum, momentum)
}

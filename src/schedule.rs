//! optax's learning-rate schedules, with optax's formulas, dtypes and count semantics.
//!
//! A schedule is evaluated at the *count before the step* (optax's
//! `scale_by_schedule` reads `state.count`, then stores `safe_increment(count)`),
//! so the first step uses `value(0)`. Counts are `i32` and saturate at `i32::MAX`.
//!
//! Precision follows jitted optax exactly where it is observable:
//! - for `f32` parameters (jax without x64) every schedule computes in `f32`;
//! - for `f64` parameters (jax with x64) `linear`, `polynomial` and `exponential_decay`
//!   still compute in `f32` (an `int32` count divided by an `int` is `f32` in jax), while
//!   `constant`, `cosine_decay` and `piecewise_constant` are weakly typed and compute in
//!   `f64`; `join` (and the warmup schedules, which are joins) promotes like `jnp.where`:
//!   `f32` if any joined piece is `f32`, else `f64`.
//!
//! Degenerate arguments behave as in optax: `transition_steps <= 0` (polynomial,
//! linear, exponential) or `decay_rate == 0` gives a constant `init_value`, and a
//! negative `transition_begin` counts as 0. Where optax raises (`cosine_decay` with
//! `decay_steps <= 0`, negative piecewise scales) validation rejects the schedule;
//! this crate also rejects non-finite values, join boundary lists of the wrong length,
//! unsorted join boundaries, and step arguments outside the `i32` range.

use crate::element::Real;
use crate::error::{Error, Result};

/// One of optax's schedules. Step arguments are `i64` for convenience and must fit in `i32`.
#[derive(Debug, Clone, PartialEq)]
pub enum Schedule {
    /// `optax.constant_schedule(value)`.
    Constant {
        /// The value at every count.
        value: f64,
    },
    /// `optax.linear_schedule(init_value, end_value, transition_steps, transition_begin)`.
    Linear {
        /// Value before the transition.
        init_value: f64,
        /// Value after the transition.
        end_value: f64,
        /// Length of the transition.
        transition_steps: i64,
        /// Count at which the transition starts.
        transition_begin: i64,
    },
    /// `optax.polynomial_schedule(init_value, end_value, power, transition_steps, transition_begin)`.
    Polynomial {
        /// Value before the transition.
        init_value: f64,
        /// Value after the transition.
        end_value: f64,
        /// Exponent; an integral value is applied by repeated multiplication as jax's `integer_pow`.
        power: f64,
        /// Length of the transition.
        transition_steps: i64,
        /// Count at which the transition starts.
        transition_begin: i64,
    },
    /// `optax.exponential_decay(init_value, transition_steps, decay_rate, transition_begin, staircase, end_value)`.
    ExponentialDecay {
        /// Value at count <= transition_begin.
        init_value: f64,
        /// Counts per factor of `decay_rate`.
        transition_steps: i64,
        /// Factor per `transition_steps`.
        decay_rate: f64,
        /// Count at which decay starts.
        transition_begin: i64,
        /// Decay in whole steps of `transition_steps`.
        staircase: bool,
        /// Lower bound (upper bound when `decay_rate > 1`).
        end_value: Option<f64>,
    },
    /// `optax.cosine_decay_schedule(init_value, decay_steps, alpha, exponent)`.
    CosineDecay {
        /// Value at count 0.
        init_value: f64,
        /// Counts of the decay.
        decay_steps: i64,
        /// Final value as a fraction of `init_value`.
        alpha: f64,
        /// Exponent applied to the cosine factor.
        exponent: f64,
    },
    /// `optax.warmup_cosine_decay_schedule(init_value, peak_value, warmup_steps, decay_steps, end_value, exponent)`.
    WarmupCosineDecay {
        /// Value at count 0.
        init_value: f64,
        /// Value at the end of the warmup.
        peak_value: f64,
        /// Linear warmup length.
        warmup_steps: i64,
        /// Total length, warmup included.
        decay_steps: i64,
        /// Final value.
        end_value: f64,
        /// Cosine exponent.
        exponent: f64,
    },
    /// `optax.warmup_exponential_decay_schedule(...)`.
    WarmupExponentialDecay {
        /// Value at count 0.
        init_value: f64,
        /// Value at the end of the warmup.
        peak_value: f64,
        /// Linear warmup length.
        warmup_steps: i64,
        /// Counts per factor of `decay_rate` after the warmup.
        transition_steps: i64,
        /// Decay factor.
        decay_rate: f64,
        /// Delay after the warmup before decaying.
        transition_begin: i64,
        /// Decay in whole steps.
        staircase: bool,
        /// Bound of the decay.
        end_value: Option<f64>,
    },
    /// `optax.piecewise_constant_schedule(init_value, boundaries_and_scales)`.
    PiecewiseConstant {
        /// Value before the first boundary.
        init_value: f64,
        /// `(boundary, scale)` pairs; at each boundary reached the value is multiplied by the scale.
        /// Applied in boundary order (optax sorts the dict); duplicates are rejected.
        boundaries_and_scales: Vec<(i64, f64)>,
    },
    /// `optax.join_schedules(schedules, boundaries)`: schedule `i+1` runs from
    /// `boundaries[i]` on, with its count restarted at 0.
    Join {
        /// The schedules, in order.
        schedules: Vec<Schedule>,
        /// `schedules.len() - 1` boundaries.
        boundaries: Vec<i64>,
    },
}

/// The deepest nesting of joins accepted (checkpoints store schedules recursively).
pub const MAX_DEPTH: usize = 64;

/// A schedule value with jax's dtype: either a committed `f32` or a weakly typed
/// value (a Python float, or weak arithmetic in the default float type).
#[derive(Clone, Copy, Debug)]
enum Val {
    Strong32(f32),
    Weak(f64),
}

impl Val {
    fn get(self) -> f64 {
        match self {
            Val::Strong32(v) => v as f64,
            Val::Weak(v) => v,
        }
    }
}

fn step_arg(name: &str, v: i64) -> Result<()> {
    if i32::try_from(v).is_ok() {
        Ok(())
    } else {
        Err(Error::InvalidSchedule(format!(
            "{name} must fit in a 32-bit signed count, got {v}"
        )))
    }
}

fn finite_arg(name: &str, v: f64) -> Result<()> {
    if v.is_finite() {
        Ok(())
    } else {
        Err(Error::InvalidSchedule(format!(
            "{name} must be finite, got {v}"
        )))
    }
}

/// `jnp.clip(count - begin, 0, steps)` in int32, with a negative begin treated as 0.
fn clipped(count: i32, begin: i64, steps: i64) -> i32 {
    let begin = begin.max(0) as i32;
    count.wrapping_sub(begin).clamp(0, steps as i32)
}

/// optax's polynomial schedule body, always in `f32` (see the module docs).
fn polynomial(count: i32, init: f64, end: f64, power: f64, steps: i64, begin: i64) -> Val {
    if steps <= 0 {
        return Val::Weak(init);
    }
    let c = clipped(count, begin, steps);
    // XLA rewrites the division by the constant `transition_steps` as a multiplication by
    // its reciprocal (folded in double, rounded once) and contracts `1 - c * r` to an FMA.
    let frac = (-(c as f32)).mul_add(recip_f32(steps), 1.0f32);
    let p = if power.fract() == 0.0 && power.abs() <= 64.0 {
        integer_pow(frac, power as i32)
    } else {
        frac.powf(power as f32)
    };
    Val::Strong32(((init - end) as f32).mul_add(p, end as f32))
}

/// `1 / steps` as XLA folds it: computed in double, rounded to `f32` once.
fn recip_f32(steps: i64) -> f32 {
    (1.0f64 / steps as f64) as f32
}

/// jax's `lax.integer_pow` lowering: binary exponentiation, reciprocal for negative powers.
fn integer_pow(x: f32, n: i32) -> f32 {
    let mut e = n.unsigned_abs();
    if e == 0 {
        return 1.0;
    }
    let mut base = x;
    let mut acc: Option<f32> = None;
    while e > 0 {
        if e & 1 == 1 {
            acc = Some(match acc {
                None => base,
                Some(a) => a * base,
            });
        }
        e >>= 1;
        if e > 0 {
            base = base * base;
        }
    }
    let r = acc.unwrap_or(1.0);
    if n < 0 { 1.0 / r } else { r }
}

fn exponential(
    count: i32,
    init: f64,
    steps: i64,
    rate: f64,
    begin: i64,
    staircase: bool,
    end: Option<f64>,
) -> Val {
    if steps <= 0 || rate == 0.0 {
        return Val::Weak(init);
    }
    let dc = count.wrapping_sub(begin.max(0) as i32);
    // Division by a constant becomes a multiplication by its reciprocal under XLA.
    let mut p = (dc as f32) * recip_f32(steps);
    if staircase {
        p = p.floor();
    }
    let mut v = if dc <= 0 {
        init as f32
    } else {
        (init as f32) * (rate as f32).powf(p)
    };
    if let Some(e) = end {
        v = if rate < 1.0 {
            v.max_nan(e as f32)
        } else {
            v.min_nan(e as f32)
        };
    }
    Val::Strong32(v)
}

/// optax's `cosine_decay_schedule` body as XLA:CPU compiles it, in `F` (see the module docs).
///
/// optax writes `init * ((1 - alpha) * (0.5 * (1 + cos(pi * min(c, ds) / ds))) ** exponent
/// + alpha)`. Jitted, XLA's algebraic simplifier and LLVM turn that into (read off the
/// optimized HLO and the object code, `tools/gen_fixtures.py --dump-schedule-hlo`):
///
/// ```text
/// k = F(pi) * (1 / F(ds))              both constants folded in F: reciprocal, then product
/// a = cos(min(F(c), F(ds)) * k) + 1    the C library's cosf / cos
/// exponent 0:  init * (F(1-alpha) + F(alpha))          pow(x, 0) -> 1, folded in F
/// exponent 1:  p = a,             f = 0.5              pow(x, 1) -> x
/// exponent 2:  p = a * a,         f = 0.25             pow(x, 2) -> x * x; the 0.5s are
/// exponent 3:  p = a * (a * a),   f = 0.125              pulled out and folded
/// exponent -1: p = 1 / (a * 0.5), f = 1                pow(x, -1) -> 1 / x
/// otherwise:   p = powf(a * 0.5, exponent), f = 1      the C library's powf / pow
/// value = fma(p, f * F(1 - alpha), F(alpha)) * F(init)  (1 - alpha, alpha in f64, rounded once)
/// ```
///
/// The exponent cases are decided on `F(exponent)`, the constant XLA's simplifier sees.
/// With `alpha == 0` XLA drops the `+ 0` and folds `f * init` instead; `f` is a power of
/// two, so that is the same value (up to subnormals, which XLA:CPU flushes anyway).
/// Checked bit for bit against jitted optax (both dtypes, counts 0..decay_steps+2 and near
/// `i32::MAX`, decay_steps from 1 to 4097; the folded `k` for every decay_steps up to 400
/// and some up to 2^30), alpha in [-0.1, 1.5] including 0, 1e-9 and 1, exponents
/// -3 .. 7 including the special values above), with glibc's `cosf`/`cos`/`powf`/`pow`,
/// which XLA:CPU calls too.
fn cosine<F: Real>(count: i32, init: f64, steps: i64, alpha: f64, exponent: f64) -> F {
    let ds = F::from_f64(steps as f64);
    let c = F::from_i32(count).min_nan(ds);
    let k = F::from_f64(std::f64::consts::PI) * (F::ONE / ds);
    let a = (c * k).cos() + F::ONE;
    let one_minus_alpha = F::from_f64(1.0 - alpha);
    let alpha_t = F::from_f64(alpha);
    let init_t = F::from_f64(init);
    let e = F::from_f64(exponent);
    let half = F::from_f64(0.5);
    let (p, f) = if e == F::ZERO {
        return (one_minus_alpha + alpha_t) * init_t;
    } else if e == F::ONE {
        (a, 0.5)
    } else if e == F::from_f64(2.0) {
        (a * a, 0.25)
    } else if e == F::from_f64(3.0) {
        (a * (a * a), 0.125)
    } else if e == F::from_f64(-1.0) {
        (F::ONE / (a * half), 1.0)
    } else {
        ((a * half).powf(e), 1.0)
    };
    p.mul_add(F::from_f64(f) * one_minus_alpha, alpha_t) * init_t
}

fn piecewise<F: Real>(count: i32, init: f64, pairs: &[(i64, f64)]) -> F {
    // Pairs are validated sorted; a passed boundary multiplies by its scale, rounded once.
    let mut v = F::from_f64(init);
    for &(threshold, scale) in pairs {
        if (count as i64) >= threshold {
            v = F::from_f64(scale) * v;
        }
    }
    v
}

impl Schedule {
    /// The value jitted optax computes at `count` for parameters of dtype `T`.
    pub fn value<T: Real>(&self, count: i32) -> T {
        let x64 = T::X64;
        let v = self.eval(count, x64);
        T::from_f64(v.get())
    }

    /// Whether, under jax x64, this schedule's output is a committed `f32`.
    fn strong_f32(&self) -> bool {
        match self {
            Schedule::Constant { .. }
            | Schedule::CosineDecay { .. }
            | Schedule::PiecewiseConstant { .. } => false,
            Schedule::Linear {
                transition_steps, ..
            }
            | Schedule::Polynomial {
                transition_steps, ..
            } => *transition_steps > 0,
            Schedule::ExponentialDecay {
                transition_steps,
                decay_rate,
                ..
            } => *transition_steps > 0 && *decay_rate != 0.0,
            Schedule::WarmupCosineDecay { warmup_steps, .. } => *warmup_steps > 0,
            Schedule::WarmupExponentialDecay {
                warmup_steps,
                transition_steps,
                decay_rate,
                ..
            } => *warmup_steps > 0 || (*transition_steps > 0 && *decay_rate != 0.0),
            Schedule::Join { schedules, .. } => schedules.iter().any(Schedule::strong_f32),
        }
    }

    fn weak<F: Real>(v: F) -> Val {
        Val::Weak(v.to_f64())
    }

    fn eval(&self, count: i32, x64: bool) -> Val {
        match self {
            Schedule::Constant { value } => Val::Weak(*value),
            Schedule::Linear {
                init_value,
                end_value,
                transition_steps,
                transition_begin,
            } => polynomial(
                count,
                *init_value,
                *end_value,
                1.0,
                *transition_steps,
                *transition_begin,
            ),
            Schedule::Polynomial {
                init_value,
                end_value,
                power,
                transition_steps,
                transition_begin,
            } => polynomial(
                count,
                *init_value,
                *end_value,
                *power,
                *transition_steps,
                *transition_begin,
            ),
            Schedule::ExponentialDecay {
                init_value,
                transition_steps,
                decay_rate,
                transition_begin,
                staircase,
                end_value,
            } => exponential(
                count,
                *init_value,
                *transition_steps,
                *decay_rate,
                *transition_begin,
                *staircase,
                *end_value,
            ),
            Schedule::CosineDecay {
                init_value,
                decay_steps,
                alpha,
                exponent,
            } => {
                if x64 {
                    Self::weak(cosine::<f64>(
                        count,
                        *init_value,
                        *decay_steps,
                        *alpha,
                        *exponent,
                    ))
                } else {
                    Self::weak(cosine::<f32>(
                        count,
                        *init_value,
                        *decay_steps,
                        *alpha,
                        *exponent,
                    ))
                }
            }
            Schedule::PiecewiseConstant {
                init_value,
                boundaries_and_scales,
            } => {
                if x64 {
                    Self::weak(piecewise::<f64>(count, *init_value, boundaries_and_scales))
                } else {
                    Self::weak(piecewise::<f32>(count, *init_value, boundaries_and_scales))
                }
            }
            Schedule::WarmupCosineDecay {
                init_value,
                peak_value,
                warmup_steps,
                decay_steps,
                end_value,
                exponent,
            } => {
                let alpha = if *peak_value == 0.0 {
                    0.0
                } else {
                    end_value / peak_value
                };
                let warm = |c| polynomial(c, *init_value, *peak_value, 1.0, *warmup_steps, 0);
                let cos = |c| {
                    let s = Schedule::CosineDecay {
                        init_value: *peak_value,
                        decay_steps: decay_steps - warmup_steps,
                        alpha,
                        exponent: *exponent,
                    };
                    s.eval(c, x64)
                };
                join2(count, *warmup_steps, warm, cos, self.strong_f32() || !x64)
            }
            Schedule::WarmupExponentialDecay {
                init_value,
                peak_value,
                warmup_steps,
                transition_steps,
                decay_rate,
                transition_begin,
                staircase,
                end_value,
            } => {
                let warm = |c| polynomial(c, *init_value, *peak_value, 1.0, *warmup_steps, 0);
                let decay = |c| {
                    exponential(
                        c,
                        *peak_value,
                        *transition_steps,
                        *decay_rate,
                        *transition_begin,
                        *staircase,
                        *end_value,
                    )
                };
                join2(count, *warmup_steps, warm, decay, self.strong_f32() || !x64)
            }
            Schedule::Join {
                schedules,
                boundaries,
            } => {
                // jnp.where keeps the last piece whose boundary has been reached.
                let mut idx = 0;
                let mut local = count;
                for (i, &b) in boundaries.iter().enumerate() {
                    if (count as i64) >= b {
                        idx = i + 1;
                        local = count.wrapping_sub(b as i32);
                    }
                }
                let v = schedules[idx].eval(local, x64);
                promote(v, self.strong_f32() || !x64)
            }
        }
    }

    /// Check the arguments (see the module docs for the rules).
    pub fn validate(&self) -> Result<()> {
        self.validate_at(1)
    }

    fn validate_at(&self, depth: usize) -> Result<()> {
        if depth > MAX_DEPTH {
            return Err(Error::InvalidSchedule(format!(
                "joins nested deeper than {MAX_DEPTH} levels"
            )));
        }
        match self {
            Schedule::Constant { value } => finite_arg("value", *value),
            Schedule::Linear {
                init_value,
                end_value,
                transition_steps,
                transition_begin,
            } => {
                finite_arg("init_value", *init_value)?;
                finite_arg("end_value", *end_value)?;
                step_arg("transition_steps", *transition_steps)?;
                step_arg("transition_begin", *transition_begin)
            }
            Schedule::Polynomial {
                init_value,
                end_value,
                power,
                transition_steps,
                transition_begin,
            } => {
                finite_arg("init_value", *init_value)?;
                finite_arg("end_value", *end_value)?;
                finite_arg("power", *power)?;
                step_arg("transition_steps", *transition_steps)?;
                step_arg("transition_begin", *transition_begin)
            }
            Schedule::ExponentialDecay {
                init_value,
                transition_steps,
                decay_rate,
                transition_begin,
                end_value,
                ..
            } => {
                finite_arg("init_value", *init_value)?;
                finite_arg("decay_rate", *decay_rate)?;
                if let Some(e) = end_value {
                    finite_arg("end_value", *e)?;
                }
                step_arg("transition_steps", *transition_steps)?;
                step_arg("transition_begin", *transition_begin)
            }
            Schedule::CosineDecay {
                init_value,
                decay_steps,
                alpha,
                exponent,
            } => {
                finite_arg("init_value", *init_value)?;
                finite_arg("alpha", *alpha)?;
                finite_arg("exponent", *exponent)?;
                step_arg("decay_steps", *decay_steps)?;
                if *decay_steps <= 0 {
                    return Err(Error::InvalidSchedule(format!(
                        "cosine_decay requires positive decay_steps, got {decay_steps}"
                    )));
                }
                Ok(())
            }
            Schedule::WarmupCosineDecay {
                init_value,
                peak_value,
                warmup_steps,
                decay_steps,
                end_value,
                exponent,
            } => {
                finite_arg("init_value", *init_value)?;
                finite_arg("peak_value", *peak_value)?;
                finite_arg("end_value", *end_value)?;
                finite_arg("exponent", *exponent)?;
                step_arg("warmup_steps", *warmup_steps)?;
                step_arg("decay_steps", *decay_steps)?;
                if decay_steps - warmup_steps <= 0 {
                    return Err(Error::InvalidSchedule(format!(
                        "warmup_cosine_decay requires decay_steps > warmup_steps, got decay_steps={decay_steps}, warmup_steps={warmup_steps}"
                    )));
                }
                let alpha = if *peak_value == 0.0 {
                    0.0
                } else {
                    end_value / peak_value
                };
                finite_arg("end_value / peak_value", alpha)
            }
            Schedule::WarmupExponentialDecay {
                init_value,
                peak_value,
                warmup_steps,
                transition_steps,
                decay_rate,
                transition_begin,
                end_value,
                ..
            } => {
                finite_arg("init_value", *init_value)?;
                finite_arg("peak_value", *peak_value)?;
                finite_arg("decay_rate", *decay_rate)?;
                if let Some(e) = end_value {
                    finite_arg("end_value", *e)?;
                }
                step_arg("warmup_steps", *warmup_steps)?;
                step_arg("transition_steps", *transition_steps)?;
                step_arg("transition_begin", *transition_begin)
            }
            Schedule::PiecewiseConstant {
                init_value,
                boundaries_and_scales,
            } => {
                finite_arg("init_value", *init_value)?;
                let mut prev: Option<i64> = None;
                for &(b, s) in boundaries_and_scales {
                    step_arg("boundary", b)?;
                    finite_arg("scale", s)?;
                    if s < 0.0 {
                        return Err(Error::InvalidSchedule(format!(
                            "piecewise_constant expects non-negative scales, got {s}"
                        )));
                    }
                    if prev.is_some_and(|p| p >= b) {
                        return Err(Error::InvalidSchedule(format!(
                            "piecewise_constant boundaries must be strictly increasing, got {b} after {}",
                            prev.unwrap_or_default()
                        )));
                    }
                    prev = Some(b);
                }
                Ok(())
            }
            Schedule::Join {
                schedules,
                boundaries,
            } => {
                if schedules.is_empty() {
                    return Err(Error::InvalidSchedule(
                        "join needs at least one schedule".into(),
                    ));
                }
                if boundaries.len() + 1 != schedules.len() {
                    return Err(Error::InvalidSchedule(format!(
                        "join needs one boundary fewer than schedules: {} schedules, {} boundaries",
                        schedules.len(),
                        boundaries.len()
                    )));
                }
                for w in boundaries.windows(2) {
                    if w[0] > w[1] {
                        return Err(Error::InvalidSchedule(format!(
                            "join boundaries must be sorted, got {} after {}",
                            w[1], w[0]
                        )));
                    }
                }
                for &b in boundaries {
                    step_arg("boundary", b)?;
                }
                schedules.iter().try_for_each(|s| s.validate_at(depth + 1))
            }
        }
    }
}

/// Round a joined value to `f32` when the join's output dtype is `f32`.
fn promote(v: Val, to_f32: bool) -> Val {
    if to_f32 {
        Val::Strong32(v.get() as f32)
    } else {
        v
    }
}

/// A two-piece join at `boundary`, as the warmup schedules build it.
fn join2(
    count: i32,
    boundary: i64,
    first: impl Fn(i32) -> Val,
    second: impl Fn(i32) -> Val,
    to_f32: bool,
) -> Val {
    let v = if (count as i64) < boundary {
        first(count)
    } else {
        second(count.wrapping_sub(boundary as i32))
    };
    promote(v, to_f32)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn linear_interpolates_and_clamps() {
        let s = Schedule::Linear {
            init_value: 1.0,
            end_value: 0.0,
            transition_steps: 4,
            transition_begin: 2,
        };
        let v: Vec<f32> = (0..8).map(|c| s.value::<f32>(c)).collect();
        assert_eq!(v, [1.0, 1.0, 1.0, 0.75, 0.5, 0.25, 0.0, 0.0]);
    }

    #[test]
    fn degenerate_transition_is_constant() {
        let s = Schedule::Linear {
            init_value: 0.1,
            end_value: 0.0,
            transition_steps: 0,
            transition_begin: 0,
        };
        assert_eq!(s.value::<f64>(100), 0.1);
        assert_eq!(s.value::<f32>(100), 0.1f32);
    }

    #[test]
    fn join_restarts_count_at_boundary() {
        let s = Schedule::Join {
            schedules: vec![
                Schedule::Constant { value: 0.5 },
                Schedule::Linear {
                    init_value: 1.0,
                    end_value: 0.0,
                    transition_steps: 2,
                    transition_begin: 0,
                },
            ],
            boundaries: vec![3],
        };
        let v: Vec<f32> = (0..6).map(|c| s.value::<f32>(c)).collect();
        assert_eq!(v, [0.5, 0.5, 0.5, 1.0, 0.5, 0.0]);
    }

    #[test]
    fn piecewise_multiplies_at_boundaries() {
        let s = Schedule::PiecewiseConstant {
            init_value: 1.0,
            boundaries_and_scales: vec![(2, 0.5), (4, 0.5)],
        };
        let v: Vec<f64> = (0..6).map(|c| s.value::<f64>(c)).collect();
        assert_eq!(v, [1.0, 1.0, 0.5, 0.5, 0.25, 0.25]);
    }

    #[test]
    fn validation_names_the_problem() {
        let bad = Schedule::CosineDecay {
            init_value: 1.0,
            decay_steps: 0,
            alpha: 0.0,
            exponent: 1.0,
        };
        assert!(
            bad.validate()
                .unwrap_err()
                .to_string()
                .contains("decay_steps")
        );
        let bad = Schedule::Join {
            schedules: vec![Schedule::Constant { value: 1.0 }],
            boundaries: vec![1],
        };
        assert!(bad.validate().is_err());
        let bad = Schedule::PiecewiseConstant {
            init_value: 1.0,
            boundaries_and_scales: vec![(5, 0.5), (2, 0.5)],
        };
        assert!(bad.validate().is_err());
    }

    /// Known answers of jitted `optax.cosine_decay_schedule(init, decay_steps, alpha, exponent)`
    /// (optax 0.2.8, jax 0.10.2, XLA:CPU, glibc), as bits: f32 without x64, f64 with x64.
    /// Mostly counts where evaluating optax's expression as written (`pi * c / ds`,
    /// `0.5 * (1 + cos)`, `powf`) is off by an ulp, plus a count past the decay.
    #[allow(clippy::type_complexity)]
    const COSINE_KAT: [((f64, i64, f64, f64), &[(i32, u32)], &[(i32, u64)]); 8] = [
        (
            (0.05, 35, 0.0, 1.0),
            &[(10, 0x3D263ED0), (11, 0x3D1ECFD6), (40, 0x0)],
            &[(22, 0x3F8F13BE07B5189C), (40, 0x0)],
        ),
        (
            (0.05, 30, 0.1, 2.0),
            &[(10, 0x3CF851EA), (11, 0x3CDF560B), (35, 0x3BA3D70B)],
            &[
                (7, 0x3FA40FE3D7E62FE7),
                (13, 0x3F95EDA2AD9645DA),
                (35, 0x3F747AE147AE147C),
            ],
        ),
        (
            (0.7, 97, 1e-9, 3.0),
            &[(4, 0x3F30F4F8), (7, 0x3F2C68C1), (102, 0x30406A1E)],
            &[
                (5, 0x3FE5F698EAF94DC3),
                (9, 0x3FE5032912D0B276),
                (102, 0x3E080D43DE9CC603),
            ],
        ),
        (
            (0.3, 1000, 0.5, 1.5),
            &[(119, 0x3E95A7F1), (147, 0x3E93A557), (1005, 0x3E19999A)],
            &[
                (176, 0x3FD225BBDFA9BC7B),
                (208, 0x3FD1C16F9C06F8D3),
                (1005, 0x3FC3333333333333),
            ],
        ),
        (
            (1.0, 13, 0.2, -1.0),
            &[(6, 0x3FD05E9D), (9, 0x4079DF65), (18, 0x7F800000)],
            &[
                (7, 0x40002782379A2934),
                (8, 0x40056ECCC5F1EBD2),
                (18, 0x7FF0000000000000),
            ],
        ),
        (
            (0.02, 7, 0.1, 0.0),
            &[(12, 0x3CA3D70A), (i32::MAX, 0x3CA3D70A)],
            &[(12, 0x3F947AE147AE147B), (i32::MAX, 0x3F947AE147AE147B)],
        ),
        (
            (0.1, 21, 0.0, -0.5),
            &[(9, 0x3E02F97B), (15, 0x3E6C020B), (26, 0x7F800000)],
            &[
                (2, 0x3FB9E3A006519A0A),
                (9, 0x3FC05F2F3C26F0BC),
                (26, 0x7FF0000000000000),
            ],
        ),
        (
            (0.004, 77, 0.3, 2.0),
            &[(20, 0x3B50EA47), (22, 0x3B478EAF), (82, 0x3A9D4952)],
            &[
                (10, 0x3F6EEC80C83455BA),
                (14, 0x3F6D457068282E26),
                (82, 0x3F53A92A30553261),
            ],
        ),
    ];

    /// XLA:CPU calls the C library's `cosf`/`cos`/`powf`/`pow`; these known answers hold
    /// where Rust's `f32::cos` etc. call the same functions (glibc).
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    #[test]
    fn cosine_matches_jitted_optax() {
        for &((init_value, decay_steps, alpha, exponent), f32s, f64s) in &COSINE_KAT {
            let s = Schedule::CosineDecay {
                init_value,
                decay_steps,
                alpha,
                exponent,
            };
            for &(c, bits) in f32s {
                let v = s.value::<f32>(c);
                assert_eq!(v.to_bits(), bits, "{s:?} f32 count {c}: {v:e}");
            }
            for &(c, bits) in f64s {
                let v = s.value::<f64>(c);
                assert_eq!(v.to_bits(), bits, "{s:?} f64 count {c}: {v:e}");
            }
        }
    }

    #[test]
    fn integer_pow_matches_repeated_multiplication() {
        assert_eq!(integer_pow(0.7, 3), 0.7f32 * (0.7f32 * 0.7f32));
        assert_eq!(integer_pow(0.7, 1), 0.7);
        assert_eq!(integer_pow(2.0, -2), 0.25);
    }
}

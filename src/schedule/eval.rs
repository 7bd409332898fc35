//! Evaluation: the value jitted optax computes for each schedule, in jax's dtypes.

use super::Schedule;
use crate::element::Real;

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
pub(super) fn integer_pow(x: f32, n: i32) -> f32 {
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

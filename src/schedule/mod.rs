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
//!
//! Files: this one declares every schedule once (`schedules!`: variant, checkpoint tag,
//! optax name, fields); `eval` computes values as jitted optax does; `validate` checks
//! arguments. Adding a schedule: its entry in `schedules!`, its arm in `eval` (value and
//! output dtype), any rule relating its fields in `validate`, plus its C constructor and
//! tests; the checkpoint codec follows from the declaration.

mod eval;
mod validate;

#[cfg(test)]
mod tests;

use crate::error::Result;

/// Declares every schedule once: its variant, checkpoint tag, optax name and fields (in
/// optax's argument order, which is also the checkpoint's field order). From this the macro
/// generates the [`Schedule`] enum, the tag/name table ([`Schedule::KINDS`]), and
/// [`Schedule::visit_fields`] / [`Schedule::inspect_fields`], which hand each field to a visitor: the checkpoint
/// codec encodes and decodes through it, and [`Schedule::validate`] checks every field's
/// range through it. Field types are those [`FieldVisitor`] covers.
macro_rules! schedules {
    ($(
        $(#[doc = $doc:literal])*
        $variant:ident = $tag:literal, $name:literal {
            $( $(#[doc = $fdoc:literal])* $field:ident : $ty:ty ),* $(,)?
        }
    ),* $(,)?) => {
        /// One of optax's schedules. Step arguments are `i64` for convenience and must fit
        /// in `i32`.
        #[derive(Debug, Clone, PartialEq)]
        pub enum Schedule {
            $(
                $(#[doc = $doc])*
                $variant {
                    $( $(#[doc = $fdoc])* $field: $ty, )*
                },
            )*
        }

        impl Schedule {
            /// Every schedule kind: its checkpoint tag and optax's function name.
            pub const KINDS: &'static [(u8, &'static str)] = &[$(($tag, $name)),*];

            /// The checkpoint tag of this kind (fixed forever: checkpoints store it).
            pub fn tag(&self) -> u8 {
                match self {
                    $( Schedule::$variant { .. } => $tag, )*
                }
            }

            /// optax's function name for this kind.
            pub fn name(&self) -> &'static str {
                match self {
                    $( Schedule::$variant { .. } => $name, )*
                }
            }

            /// The kind with checkpoint tag `tag`, every field zero / empty / `None`, for a
            /// decoder to fill through [`Schedule::visit_fields`].
            pub fn empty(tag: u8) -> Option<Schedule> {
                match tag {
                    $( $tag => Some(Schedule::$variant {
                        $( $field: <$ty>::default(), )*
                    }), )*
                    _ => None,
                }
            }

            /// Hand every field, in declaration order, to `v` (which may replace it).
            pub fn visit_fields<E, V: FieldVisitor<E>>(&mut self, v: &mut V) -> Result<(), E> {
                match self {
                    $( Schedule::$variant { $( $field, )* } => {
                        $( <V as Visit<$ty, E>>::visit(v, stringify!($field), $field)?; )*
                    } )*
                }
                Ok(())
            }

            /// Show every field, in declaration order, to `v`.
            pub fn inspect_fields<E, V: FieldInspector<E>>(&self, v: &mut V) -> Result<(), E> {
                match self {
                    $( Schedule::$variant { $( $field, )* } => {
                        $( <V as Inspect<$ty, E>>::inspect(v, stringify!($field), $field)?; )*
                    } )*
                }
                Ok(())
            }
        }
    };
}

/// Reads or replaces one field of type `T`, by name, failing with `E` (a decoder).
pub trait Visit<T, E> {
    /// Read, check or overwrite the field `name`.
    fn visit(&mut self, name: &'static str, value: &mut T) -> Result<(), E>;
}

/// Looks at one field of type `T`, by name, failing with `E` (an encoder, a validator).
pub trait Inspect<T, E> {
    /// Read or check the field `name`.
    fn inspect(&mut self, name: &'static str, value: &T) -> Result<(), E>;
}

/// Declares a visitor trait over every field type schedules use, with its blanket impl. A
/// new field type is added to this list, and to each visitor (checkpoint reader and
/// writer, validator).
macro_rules! field_visitor {
    ($(#[doc = $doc:literal])* $name:ident: $visit:ident) => {
        $(#[doc = $doc])*
        pub trait $name<E>:
            $visit<f64, E>
            + $visit<i64, E>
            + $visit<bool, E>
            + $visit<Option<f64>, E>
            + $visit<Vec<(i64, f64)>, E>
            + $visit<Vec<i64>, E>
            + $visit<Vec<Schedule>, E>
        {
        }

        impl<E, V> $name<E> for V where
            V: $visit<f64, E>
                + $visit<i64, E>
                + $visit<bool, E>
                + $visit<Option<f64>, E>
                + $visit<Vec<(i64, f64)>, E>
                + $visit<Vec<i64>, E>
                + $visit<Vec<Schedule>, E>
        {
        }
    };
}

field_visitor!(
    /// A [`Visit`]or of every field type schedules use.
    FieldVisitor: Visit
);
field_visitor!(
    /// An [`Inspect`]or of every field type schedules use.
    FieldInspector: Inspect
);

schedules! {
    /// `optax.constant_schedule(value)`.
    Constant = 1, "constant_schedule" {
        /// The value at every count.
        value: f64,
    },
    /// `optax.linear_schedule(init_value, end_value, transition_steps, transition_begin)`.
    Linear = 2, "linear_schedule" {
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
    Polynomial = 3, "polynomial_schedule" {
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
    ExponentialDecay = 4, "exponential_decay" {
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
    CosineDecay = 5, "cosine_decay_schedule" {
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
    WarmupCosineDecay = 6, "warmup_cosine_decay_schedule" {
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
    WarmupExponentialDecay = 7, "warmup_exponential_decay_schedule" {
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
    PiecewiseConstant = 8, "piecewise_constant_schedule" {
        /// Value before the first boundary.
        init_value: f64,
        /// `(boundary, scale)` pairs; at each boundary reached the value is multiplied by the scale.
        /// Applied in boundary order (optax sorts the dict); duplicates are rejected.
        boundaries_and_scales: Vec<(i64, f64)>,
    },
    /// `optax.join_schedules(schedules, boundaries)`: schedule `i+1` runs from
    /// `boundaries[i]` on, with its count restarted at 0.
    Join = 9, "join_schedules" {
        /// The schedules, in order.
        schedules: Vec<Schedule>,
        /// `schedules.len() - 1` boundaries.
        boundaries: Vec<i64>,
    },
}

/// The deepest nesting of joins accepted (checkpoints store schedules recursively).
pub const MAX_DEPTH: usize = 64;

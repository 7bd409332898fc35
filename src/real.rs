//! The element types the optimizer computes in: `f32` and `f64`.
//!
//! optax computes in the parameters' own dtype; so does this crate. The trait
//! carries exactly the operations the kernels and schedules need, with the
//! rounding behaviour spelled out (`from_f64` rounds to nearest, `mul_add` is a
//! single rounding).

use std::fmt::Debug;
use std::ops::{Add, Div, Mul, Neg, Sub};

/// A floating-point element type the optimizer supports.
pub trait Real:
    Copy
    + Send
    + Sync
    + Debug
    + Default
    + PartialOrd
    + Add<Output = Self>
    + Sub<Output = Self>
    + Mul<Output = Self>
    + Div<Output = Self>
    + Neg<Output = Self>
    + 'static
{
    /// `0`.
    const ZERO: Self;
    /// `1`.
    const ONE: Self;
    /// `true` for `f64`: optax under `jax_enable_x64`, where weakly typed
    /// schedule arithmetic happens in double precision.
    const X64: bool;
    /// Human-readable dtype name (`"f32"`, `"f64"`).
    const NAME: &'static str;
    /// Round an `f64` to this type (round to nearest even), as XLA folds a Python float.
    fn from_f64(v: f64) -> Self;
    /// Widen to `f64` (exact).
    fn to_f64(self) -> f64;
    /// Convert an `i32` step count, rounding to nearest as XLA's `convert` does.
    fn from_i32(v: i32) -> Self;
    /// `self * a + b` with one rounding.
    fn mul_add(self, a: Self, b: Self) -> Self;
    /// Correctly rounded square root.
    fn sqrt(self) -> Self;
    /// `self` raised to `e`.
    fn powf(self, e: Self) -> Self;
    /// Cosine.
    fn cos(self) -> Self;
    /// Largest integer value not above `self`.
    fn floor(self) -> Self;
    /// IEEE maximum (NaN-propagating like XLA's `max`).
    fn max_nan(self, o: Self) -> Self;
    /// IEEE minimum (NaN-propagating like XLA's `min`).
    fn min_nan(self, o: Self) -> Self;
    /// `true` for NaN or infinity.
    fn is_non_finite(self) -> bool;
}

macro_rules! impl_real {
    ($t:ty, $x64:expr, $name:expr) => {
        impl Real for $t {
            const ZERO: Self = 0.0;
            const ONE: Self = 1.0;
            const X64: bool = $x64;
            const NAME: &'static str = $name;
            #[inline(always)]
            fn from_f64(v: f64) -> Self {
                v as $t
            }
            #[inline(always)]
            fn to_f64(self) -> f64 {
                self as f64
            }
            #[inline(always)]
            fn from_i32(v: i32) -> Self {
                v as $t
            }
            #[inline(always)]
            fn mul_add(self, a: Self, b: Self) -> Self {
                <$t>::mul_add(self, a, b)
            }
            #[inline(always)]
            fn sqrt(self) -> Self {
                <$t>::sqrt(self)
            }
            #[inline(always)]
            fn powf(self, e: Self) -> Self {
                <$t>::powf(self, e)
            }
            #[inline(always)]
            fn cos(self) -> Self {
                <$t>::cos(self)
            }
            #[inline(always)]
            fn floor(self) -> Self {
                <$t>::floor(self)
            }
            #[inline(always)]
            fn max_nan(self, o: Self) -> Self {
                if self.is_nan() || o.is_nan() {
                    <$t>::NAN
                } else {
                    <$t>::max(self, o)
                }
            }
            #[inline(always)]
            fn min_nan(self, o: Self) -> Self {
                if self.is_nan() || o.is_nan() {
                    <$t>::NAN
                } else {
                    <$t>::min(self, o)
                }
            }
            #[inline(always)]
            fn is_non_finite(self) -> bool {
                !self.is_finite()
            }
        }
    };
}

impl_real!(f32, false, "f32");
impl_real!(f64, true, "f64");

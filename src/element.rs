//! Element types: the one place that says which types the optimizer stores and computes
//! in, their dtype tags and their byte encoding.
//!
//! - [`Dtype`]: the plain tag enum. Its numbers are the checkpoint's on-disk dtype tags and
//!   the C API's `RMSPROP_DTYPE_*` values.
//! - [`Element`]: a type the optimizer *stores* (parameters, gradients, checkpoint buffers):
//!   its [`Dtype`], its little-endian bytes, and the type its optimizer state is kept and
//!   computed in ([`Element::State`], [`StateOf`]).
//! - [`Real`]: a type the optimizer *computes* in (`f32`, `f64`): the operations the kernels
//!   and schedules need, with the rounding behaviour spelled out (`from_f64` rounds to
//!   nearest, `mul_add` is a single rounding). Every `Real` is an `Element` whose state type
//!   is itself: optax computes in the parameters' own dtype, and so does this crate.
//!
//! # The seam for other parameter types
//! Parameters and state are separate types in the abstraction, equal today. A parameter type
//! whose state is kept in another type (bf16 parameters with `f32` state, as mixed-precision
//! training does) is an `Element` with `type State = f32` and no `Real` impl; complex
//! parameters are an `Element` over a complex `State` with its own `Real`-like arithmetic.
//! Either is an addition here (a `Dtype` variant, an `Element` impl) plus a kernel whose loads
//! and stores convert between `P` and `StateOf<P>`; nothing in the f32/f64 path changes, which
//! stays monomorphised exactly as before (`StateOf<f32>` *is* `f32`).

use std::fmt::Debug;
use std::ops::{Add, Div, Mul, Neg, Sub};

/// The element type of a buffer, as a plain tag. The numbers are fixed: they are the
/// checkpoint format's dtype tags and the C API's `RMSPROP_DTYPE_F32` / `RMSPROP_DTYPE_F64`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Dtype {
    /// `f32` (`float`).
    F32 = 1,
    /// `f64` (`double`).
    F64 = 2,
    /// bfloat16 ([`crate::lowp::Bf16`]), `uint16_t` bits in C.
    Bf16 = 3,
    /// IEEE binary16 ([`crate::lowp::F16`]), `uint16_t` bits in C.
    F16 = 4,
}

impl Dtype {
    /// Every dtype, in tag order.
    pub const ALL: [Dtype; 4] = [Dtype::F32, Dtype::F64, Dtype::Bf16, Dtype::F16];

    /// `"f32"` or `"f64"`.
    pub fn name(self) -> &'static str {
        match self {
            Dtype::F32 => "f32",
            Dtype::F64 => "f64",
            Dtype::Bf16 => "bf16",
            Dtype::F16 => "f16",
        }
    }

    /// Bytes per element.
    pub fn size(self) -> usize {
        match self {
            Dtype::F32 => 4,
            Dtype::F64 => 8,
            Dtype::Bf16 | Dtype::F16 => 2,
        }
    }

    /// The tag number (checkpoint byte, C enum value).
    pub fn tag(self) -> u8 {
        self as u8
    }

    /// The dtype with tag number `t`, if any.
    pub fn from_tag(t: i64) -> Option<Dtype> {
        Dtype::ALL.into_iter().find(|d| d.tag() as i64 == t)
    }
}

/// A type the optimizer stores: parameters, gradients, updates, checkpoint buffers.
pub trait Element: Copy + Send + Sync + Debug + Default + 'static {
    /// The tag of this type.
    const DTYPE: Dtype;
    /// The type the optimizer state (`nu`, `mu`, `trace`) of parameters of this type is
    /// kept and computed in. `Self` for every [`Real`].
    type State: Real;
    /// Append the exact little-endian bits of `xs` (NaN payloads included) to `out`.
    fn put_le(xs: &[Self], out: &mut Vec<u8>);
    /// Values from their little-endian bits; `bytes.len()` is a multiple of the size
    /// (a trailing partial element is ignored).
    fn get_le(bytes: &[u8]) -> Vec<Self>;
}

/// The state type of parameters of type `P` (see [`Element::State`]).
pub type StateOf<P> = <P as Element>::State;

/// A floating-point type the optimizer computes in: `f32` or `f64`. Its state type is
/// itself.
pub trait Real:
    Element<State = Self>
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
    /// `1/sqrt(self)` as XLA's `rsqrt` of this dtype computes it. For `f32`/`f64` two
    /// correctly rounded operations (see the kernel's docs for XLA's estimate); bf16/f16
    /// compute it in `f32` and round once.
    #[inline(always)]
    fn rsqrt(self) -> Self {
        Self::ONE / self.sqrt()
    }
    /// optax's bias correction `1 - decay**count` for moments of this dtype (`decay` a
    /// Python float, `count` the incremented int32 count): computed in this dtype for
    /// `f32`/`f64`; bf16/f16 compute it in `f32` and round once.
    fn bias_correction(decay: f64, count: i32) -> Self {
        Self::ONE - Self::from_f64(decay).powf(Self::from_i32(count))
    }
    /// A moment divided by its bias correction `bc`, as XLA:CPU lowers optax's
    /// `t / bias_correction_.astype(t.dtype)` for this dtype: a division for `f32`/`f64`
    /// (and bf16); for f16, XLA multiplies by the f16-rounded reciprocal (measured).
    #[inline(always)]
    fn bias_correct(self, bc: Self) -> Self {
        self / bc
    }
}

macro_rules! impl_real {
    ($t:ty, $dtype:expr, $x64:expr, $name:expr) => {
        impl Element for $t {
            const DTYPE: Dtype = $dtype;
            type State = $t;
            fn put_le(xs: &[Self], out: &mut Vec<u8>) {
                for x in xs {
                    out.extend_from_slice(&x.to_le_bytes());
                }
            }
            fn get_le(bytes: &[u8]) -> Vec<Self> {
                const N: usize = size_of::<$t>();
                bytes
                    .chunks_exact(N)
                    .map(|c| {
                        let mut a = [0u8; N];
                        a.copy_from_slice(c);
                        <$t>::from_le_bytes(a)
                    })
                    .collect()
            }
        }

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

impl_real!(f32, Dtype::F32, false, "f32");
impl_real!(f64, Dtype::F64, true, "f64");

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dtype_tags_are_the_c_enum_values() {
        assert_eq!(
            Dtype::F32.tag() as crate::capi::RmspropDtype,
            crate::capi::RMSPROP_DTYPE_F32
        );
        assert_eq!(
            Dtype::F64.tag() as crate::capi::RmspropDtype,
            crate::capi::RMSPROP_DTYPE_F64
        );
        for d in Dtype::ALL {
            assert_eq!(Dtype::from_tag(d.tag() as i64), Some(d));
        }
        assert_eq!(Dtype::from_tag(0), None);
        assert_eq!(Dtype::from_tag(5), None);
    }

    fn agrees<T: Real>() {
        assert_eq!(T::DTYPE.name(), T::NAME);
        assert_eq!(T::DTYPE.size(), size_of::<T>());
        assert_eq!(T::X64, T::DTYPE == Dtype::F64);
        assert_eq!(T::ONE.to_f64(), 1.0);
        // Bits survive the byte encoding, a NaN payload and -0 included.
        let xs = [
            T::from_f64(-0.0),
            T::from_f64(1.5),
            T::from_f64(f64::NAN),
            T::ONE,
        ];
        let mut bytes = Vec::new();
        T::put_le(&xs, &mut bytes);
        assert_eq!(bytes.len(), xs.len() * size_of::<T>());
        let back = T::get_le(&bytes);
        for (a, b) in xs.iter().zip(&back) {
            assert_eq!(a.to_f64().to_bits(), b.to_f64().to_bits());
        }
        assert_eq!(
            bytes[..size_of::<T>()].last(),
            Some(&0x80),
            "little-endian -0"
        );
    }

    #[test]
    fn dtype_constants_agree_with_the_types() {
        agrees::<f32>();
        agrees::<f64>();
        agrees::<crate::lowp::Bf16>();
        agrees::<crate::lowp::F16>();
        // The seam is the identity for the types that compute.
        let x: StateOf<f32> = 1.0f32;
        assert_eq!(x, 1.0);
    }
}

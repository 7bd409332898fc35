//! bfloat16 and float16 elements, computed the way jitted optax on XLA:CPU computes them.
//!
//! # What XLA:CPU does (measured, not assumed)
//! XLA:CPU has no bf16 or f16 arithmetic: its float-normalization pass widens each bf16/f16
//! operation to `f32` and rounds the result back to the narrow type after **every**
//! operation; no multiply-add is contracted across such a rounding, and constants (Python
//! floats such as `1 - decay`, `eps`, `-lr`) are rounded once from `f64` to the narrow type.
//! Replaying two jitted `optax.rmsprop` steps on 65,536 elements (bf16 and f16,
//! `eps_in_sqrt` true shown, false alike; eps 1e-3, decay 0.9, lr 0.01; optax 0.2.8, jax 0.10.2;
//! `tools/gen_fixtures_lowp.py --probe`) against numpy emulations:
//!
//! | emulation | bf16 `nu` / params mismatches | f16 `nu` / params mismatches |
//! |---|---|---|
//! | every op rounded to the narrow type | 0 / 0 | 0 / 0 |
//! | same, with the moment update contracted into an FMA | 7,488 / 259 | 8,855 / 349 |
//! | all in `f32`, rounded once at the end | 25,332 / 4,693 | 30,571 / 6,963 |
//!
//! Two exceptions, both mirrored: for f16 (not bf16), XLA turns optax's bias-correction
//! division `nu / bc` into `nu * (1/bc)`, the reciprocal rounded to f16
//! ([`Real::bias_correct`]; found from the fixtures). And the one fused operation is `rsqrt` (`eps_in_sqrt`): XLA computes it in `f32` and rounds
//! once, which [`Real::rsqrt`] mirrors. Subnormals: bf16 shares `f32`'s exponent range, so
//! the kernels' flush-to-zero mode flushes bf16 subnormals as XLA does; f16 subnormals are
//! normal `f32` values and survive, as they do in XLA.
//!
//! Each operation here is therefore "widen to `f32`, one IEEE `f32` operation, round to
//! nearest even". Rounding twice (exact -> `f32` -> narrow) gives the correctly rounded
//! narrow result for `+ - * /` and `sqrt`, since `f32`'s 24 bits are at least `2p + 2` for
//! bf16 (p = 8) and f16 (p = 11).

use std::cmp::Ordering;
use std::ops::{Add, Div, Mul, Neg, Sub};

use crate::element::{Dtype, Element, Real};

/// `f32` -> bf16 bits, round to nearest even; NaN stays NaN (quieted, sign kept).
/// Branch-free (selects only), so that the kernel loops vectorise.
#[inline(always)]
pub fn bf16_from_f32(x: f32) -> u16 {
    let b = x.to_bits();
    let nan = (b & 0x7fff_ffff) > 0x7f80_0000;
    // Cannot overflow: the largest non-NaN pattern is 0xff80_0000.
    let rounded = b.wrapping_add(0x7fff + ((b >> 16) & 1)) >> 16;
    let quiet = (b >> 16) | 0x0040;
    (if nan { quiet } else { rounded }) as u16
}

/// bf16 bits -> `f32` (exact).
#[inline(always)]
pub fn bf16_to_f32(h: u16) -> f32 {
    f32::from_bits((h as u32) << 16)
}

/// `f32` -> IEEE binary16 bits, round to nearest even, subnormals produced (not flushed),
/// overflow to infinity, NaN quieted with its sign and top payload bits.
#[inline(always)]
pub fn f16_from_f32(x: f32) -> u16 {
    let b = x.to_bits();
    let sign = ((b >> 16) & 0x8000) as u16;
    let a = b & 0x7fff_ffff;
    if a > 0x7f80_0000 {
        return sign | 0x7e00 | ((a >> 13) as u16 & 0x01ff);
    }
    if a >= 0x4780_0000 {
        // >= 65536 (or inf): infinity.
        return sign | 0x7c00;
    }
    if a >= 0x3880_0000 {
        // Normal f16 (>= 2^-14): round the 13 dropped bits to nearest even, rebias the
        // exponent (127 -> 15). A carry out of the mantissa rounds up into the next binade,
        // 65520 and above into infinity (0x7c00).
        let r = a + 0x0fff + ((a >> 13) & 1);
        return sign | ((r >> 13) - (112 << 10)) as u16;
    }
    if a <= 0x3300_0000 {
        // <= 2^-25: half the smallest subnormal or less rounds (ties to even) to zero.
        return sign;
    }
    // Subnormal f16: the value in units of 2^-24, rounded to nearest even.
    let mant = (a & 0x007f_ffff) | 0x0080_0000;
    let s = 126 - (a >> 23); // 14..=24
    let half = 1u32 << (s - 1);
    let r = (mant + half - 1 + ((mant >> s) & 1)) >> s;
    sign | r as u16
}

/// IEEE binary16 bits -> `f32` (exact).
#[inline(always)]
pub fn f16_to_f32(h: u16) -> f32 {
    let sign = ((h & 0x8000) as u32) << 16;
    let e = ((h >> 10) & 0x1f) as u32;
    let m = (h & 0x03ff) as u32;
    if e == 0x1f {
        f32::from_bits(sign | 0x7f80_0000 | (m << 13))
    } else if e == 0 {
        // Zero or subnormal: m * 2^-24, a normal f32 (or zero), exact.
        let v = m as f32 * (1.0 / 16_777_216.0);
        f32::from_bits(v.to_bits() | sign)
    } else {
        f32::from_bits(sign | ((e + 112) << 23) | (m << 13))
    }
}

/// `f64` -> `f32` rounding to odd: an inexact result gets an odd last bit. Rounding that
/// to a type with at least two bits fewer is then the correctly rounded `f64` -> narrow
/// conversion (XLA rounds a Python float constant to bf16/f16 directly, once).
fn f32_round_to_odd(x: f64) -> f32 {
    let r = x as f32;
    if x.is_nan() || !r.is_finite() || r as f64 == x || r.to_bits() & 1 == 1 {
        return r;
    }
    // Step one unit in the last place towards x (|r| and x differ, so the magnitude moves).
    let bits = if (r as f64).abs() < x.abs() {
        r.to_bits() + 1
    } else {
        r.to_bits() - 1
    };
    f32::from_bits(bits)
}

macro_rules! lowp_type {
    ($t:ident, $dtype:expr, $name:expr, $from:ident, $to:ident, $one:expr, $recip:expr, $doc:expr) => {
        #[doc = $doc]
        #[derive(Clone, Copy, Default, Debug)]
        #[repr(transparent)]
        pub struct $t(
            /// The raw bits.
            pub u16,
        );

        impl $t {
            /// Round an `f32` to this type (nearest even).
            #[inline(always)]
            pub fn from_f32(x: f32) -> Self {
                $t($from(x))
            }
            /// Widen to `f32` (exact).
            #[inline(always)]
            pub fn to_f32(self) -> f32 {
                $to(self.0)
            }
            /// The raw bits.
            pub fn to_bits(self) -> u16 {
                self.0
            }
            /// From raw bits.
            pub fn from_bits(b: u16) -> Self {
                $t(b)
            }
        }

        impl PartialEq for $t {
            fn eq(&self, o: &Self) -> bool {
                self.to_f32() == o.to_f32()
            }
        }

        impl PartialOrd for $t {
            fn partial_cmp(&self, o: &Self) -> Option<Ordering> {
                self.to_f32().partial_cmp(&o.to_f32())
            }
        }

        impl Add for $t {
            type Output = Self;
            #[inline(always)]
            fn add(self, o: Self) -> Self {
                Self::from_f32(self.to_f32() + o.to_f32())
            }
        }
        impl Sub for $t {
            type Output = Self;
            #[inline(always)]
            fn sub(self, o: Self) -> Self {
                Self::from_f32(self.to_f32() - o.to_f32())
            }
        }
        impl Mul for $t {
            type Output = Self;
            #[inline(always)]
            fn mul(self, o: Self) -> Self {
                Self::from_f32(self.to_f32() * o.to_f32())
            }
        }
        impl Div for $t {
            type Output = Self;
            #[inline(always)]
            fn div(self, o: Self) -> Self {
                Self::from_f32(self.to_f32() / o.to_f32())
            }
        }
        impl Neg for $t {
            type Output = Self;
            #[inline(always)]
            fn neg(self) -> Self {
                $t(self.0 ^ 0x8000)
            }
        }

        impl Element for $t {
            const DTYPE: Dtype = $dtype;
            type State = $t;
            fn put_le(xs: &[Self], out: &mut Vec<u8>) {
                for x in xs {
                    out.extend_from_slice(&x.0.to_le_bytes());
                }
            }
            fn get_le(bytes: &[u8]) -> Vec<Self> {
                bytes
                    .chunks_exact(2)
                    .map(|c| $t(u16::from_le_bytes([c[0], c[1]])))
                    .collect()
            }
        }

        impl Real for $t {
            const ZERO: Self = $t(0);
            const ONE: Self = $t($one);
            const X64: bool = false;
            const NAME: &'static str = $name;
            #[inline(always)]
            fn from_f64(v: f64) -> Self {
                Self::from_f32(f32_round_to_odd(v))
            }
            #[inline(always)]
            fn to_f64(self) -> f64 {
                self.to_f32() as f64
            }
            #[inline(always)]
            fn from_i32(v: i32) -> Self {
                Self::from_f64(v as f64)
            }
            /// Two roundings: XLA does not contract across a narrow-type rounding.
            #[inline(always)]
            fn mul_add(self, a: Self, b: Self) -> Self {
                self * a + b
            }
            #[inline(always)]
            fn sqrt(self) -> Self {
                Self::from_f32(self.to_f32().sqrt())
            }
            /// `1/sqrt` in `f32`, rounded once, as XLA's widened `rsqrt`.
            #[inline(always)]
            fn rsqrt(self) -> Self {
                Self::from_f32(1.0 / self.to_f32().sqrt())
            }
            fn powf(self, e: Self) -> Self {
                Self::from_f32(self.to_f32().powf(e.to_f32()))
            }
            fn cos(self) -> Self {
                Self::from_f32(self.to_f32().cos())
            }
            fn floor(self) -> Self {
                Self::from_f32(self.to_f32().floor())
            }
            #[inline(always)]
            fn max_nan(self, o: Self) -> Self {
                Self::from_f32(self.to_f32().max_nan(o.to_f32()))
            }
            #[inline(always)]
            fn min_nan(self, o: Self) -> Self {
                Self::from_f32(self.to_f32().min_nan(o.to_f32()))
            }
            #[inline(always)]
            fn is_non_finite(self) -> bool {
                !self.to_f32().is_finite()
            }
            /// optax computes `1 - decay**count` in `f32` (a Python float to an int32
            /// power) and casts it to the moment's dtype once.
            fn bias_correction(decay: f64, count: i32) -> Self {
                Self::from_f32(<f32 as Real>::bias_correction(decay, count))
            }
            #[inline(always)]
            fn bias_correct(self, bc: Self) -> Self {
                if $recip {
                    self * (Self::ONE / bc)
                } else {
                    self / bc
                }
            }
        }
    };
}

lowp_type!(
    Bf16,
    Dtype::Bf16,
    "bf16",
    bf16_from_f32,
    bf16_to_f32,
    0x3f80,
    false,
    "bfloat16 (8-bit significand, `f32`'s exponent range), as raw bits."
);
lowp_type!(
    F16,
    Dtype::F16,
    "f16",
    f16_from_f32,
    f16_to_f32,
    0x3c00,
    true,
    "IEEE 754 binary16 (`_Float16`), as raw bits."
);

#[cfg(test)]
mod tests {
    use super::*;

    /// The correctly rounded narrow value of `x`, by brute force over the neighbours.
    fn nearest(x: f64, to: fn(u16) -> f32) -> u16 {
        let mut best: Option<(f64, u16)> = None;
        for h in 0..=u16::MAX {
            let v = to(h) as f64;
            if !v.is_finite() {
                continue;
            }
            let d = (v - x).abs();
            let better = match best {
                None => true,
                Some((bd, bh)) => d < bd || (d == bd && h & 1 == 0 && bh & 1 == 1),
            };
            if better && (v != 0.0 || x.is_sign_negative() == (h & 0x8000 != 0)) {
                best = Some((d, h));
            }
        }
        best.unwrap().1
    }

    #[test]
    fn every_narrow_value_survives_the_round_trip() {
        for h in 0..=u16::MAX {
            let b = bf16_to_f32(h);
            if b.is_nan() {
                assert!(bf16_to_f32(bf16_from_f32(b)).is_nan());
            } else {
                assert_eq!(bf16_from_f32(b), h, "bf16 {h:#06x}");
            }
            let f = f16_to_f32(h);
            if f.is_nan() {
                assert!(f16_to_f32(f16_from_f32(f)).is_nan());
            } else {
                assert_eq!(f16_from_f32(f), h, "f16 {h:#06x}");
            }
        }
    }

    #[test]
    fn rounding_is_to_nearest_even() {
        // Midpoints and their neighbours between consecutive finite values of each type,
        // subnormals and the overflow threshold included.
        let mut checked = 0;
        for h in (0..0x7c00u16).step_by(7).chain(0x3bf0..0x3c10) {
            for (to, from) in [
                (f16_to_f32 as fn(u16) -> f32, f16_from_f32 as fn(f32) -> u16),
                (bf16_to_f32, bf16_from_f32),
            ] {
                let (a, b) = (to(h) as f64, to(h + 1) as f64);
                if !b.is_finite() {
                    continue;
                }
                let mid = (a + b) / 2.0;
                let even = if h & 1 == 0 { h } else { h + 1 };
                for x in [
                    mid,
                    (mid as f32).next_up() as f64,
                    (mid as f32).next_down() as f64,
                ] {
                    let x32 = x as f32;
                    if x32 as f64 != x {
                        continue;
                    }
                    let want = match x.partial_cmp(&mid).unwrap() {
                        Ordering::Less => h,
                        Ordering::Greater => h + 1,
                        Ordering::Equal => even,
                    };
                    assert_eq!(from(x32), want, "{x:e}");
                    assert_eq!(from(-x32), want | 0x8000, "{:e}", -x);
                    checked += 1;
                }
            }
        }
        assert!(checked > 5000);
        // Overflow: f16's largest finite is 65504; 65520 is the midpoint to 2^16.
        assert_eq!(f16_from_f32(65519.0), 0x7bff);
        assert_eq!(f16_from_f32(65520.0), 0x7c00);
        assert_eq!(bf16_from_f32(f32::MAX), 0x7f80);
        assert_eq!(f16_from_f32(f32::NEG_INFINITY), 0xfc00);
        assert!(f16_to_f32(f16_from_f32(f32::NAN)).is_nan());
    }

    #[test]
    fn constants_round_once_from_f64() {
        // 1 + 2^-8 + 2^-40: rounding to f32 first gives the tie 1 + 2^-8, which rounds to
        // 1 (even); jitted XLA rounds the f64 once and gets 1 + 2^-7 (measured).
        let x = 1.0 + 2f64.powi(-8) + 2f64.powi(-40);
        assert_eq!(Bf16::from_f64(x).to_f32(), 1.0 + 2f32.powi(-7));
        let y = 1.0 + 2f64.powi(-11) + 2f64.powi(-40);
        assert_eq!(F16::from_f64(y).to_f32(), 1.0 + 2f32.powi(-10));
        for v in [0.1, 0.9, 1e-8, -0.01, 3.3e38, 1e-45] {
            assert_eq!(Bf16::from_f64(v).0, nearest(v, bf16_to_f32), "{v:e}");
            if v < 65520.0 {
                assert_eq!(F16::from_f64(v).0, nearest(v, f16_to_f32), "{v:e}");
            } else {
                assert_eq!(F16::from_f64(v).0, 0x7c00, "{v:e} overflows f16");
            }
        }
        // The eps trap: optax's default eps=1e-8 is zero in f16 (below half of the
        // smallest subnormal, 2^-25 = 2.98e-8), not in bf16.
        assert_eq!(F16::from_f64(1e-8).0, 0);
        assert!(Bf16::from_f64(1e-8).to_f32() > 0.0);
    }
}

//! The element types (`f32`, `f64`) with their typed C entry points.

use super::*;

/// `f32` or `f64`, with the typed C entry points.
pub trait Elem: Copy + PartialEq + std::fmt::Debug + 'static {
    /// The C dtype.
    const DT: i32;
    /// The other C dtype.
    const OTHER: i32;
    /// Size in bytes.
    const SIZE: usize;
    /// The smallest positive normal value, widened.
    const MIN_NORMAL: f64;
    /// Round from `f64`.
    fn from_f64(x: f64) -> Self;
    /// Widen to `f64`.
    fn to_f64(self) -> f64;
    /// The bits, widened.
    fn bits(self) -> u64;
    /// `self + o` in this type.
    fn add(self, o: Self) -> Self;
    /// NaN?
    fn is_nan(self) -> bool;
    /// Finite?
    fn finite(self) -> bool;
    /// `rmsprop_update_*`.
    fn update(h: *mut RmspropOptimizer, g: *const Self, u: *mut Self, n: usize) -> i32;
    /// `rmsprop_step_*`.
    fn step(h: *mut RmspropOptimizer, p: *mut Self, g: *const Self, n: usize) -> i32;
    /// `rmsprop_update_tensors_*`.
    fn update_tensors(
        h: *mut RmspropOptimizer,
        g: *const *const Self,
        u: *const *mut Self,
        n: usize,
    ) -> i32;
    /// `rmsprop_step_tensors_*`.
    fn step_tensors(
        h: *mut RmspropOptimizer,
        p: *const *mut Self,
        g: *const *const Self,
        n: usize,
    ) -> i32;
    /// `rmsprop_get_state_*`.
    fn get_state(h: *const RmspropOptimizer, c: i32, t: usize, out: *mut Self, n: usize) -> i32;
    /// `rmsprop_set_state_*`.
    fn set_state(h: *mut RmspropOptimizer, c: i32, t: usize, v: *const Self, n: usize) -> i32;
}

macro_rules! elem {
    ($t:ty, $dt:expr, $other:expr, $upd:ident, $step:ident, $updt:ident, $stept:ident, $get:ident, $set:ident) => {
        impl Elem for $t {
            const DT: i32 = $dt;
            const OTHER: i32 = $other;
            const SIZE: usize = size_of::<$t>();
            const MIN_NORMAL: f64 = <$t>::MIN_POSITIVE as f64;
            fn from_f64(x: f64) -> Self {
                x as $t
            }
            fn to_f64(self) -> f64 {
                self as f64
            }
            fn bits(self) -> u64 {
                self.to_bits() as u64
            }
            fn add(self, o: Self) -> Self {
                self + o
            }
            fn is_nan(self) -> bool {
                <$t>::is_nan(self)
            }
            fn finite(self) -> bool {
                <$t>::is_finite(self)
            }
            fn update(h: *mut RmspropOptimizer, g: *const Self, u: *mut Self, n: usize) -> i32 {
                $upd(h, g, u, n)
            }
            fn step(h: *mut RmspropOptimizer, p: *mut Self, g: *const Self, n: usize) -> i32 {
                $step(h, p, g, n)
            }
            fn update_tensors(
                h: *mut RmspropOptimizer,
                g: *const *const Self,
                u: *const *mut Self,
                n: usize,
            ) -> i32 {
                $updt(h, g, u, n)
            }
            fn step_tensors(
                h: *mut RmspropOptimizer,
                p: *const *mut Self,
                g: *const *const Self,
                n: usize,
            ) -> i32 {
                $stept(h, p, g, n)
            }
            fn get_state(
                h: *const RmspropOptimizer,
                c: i32,
                t: usize,
                out: *mut Self,
                n: usize,
            ) -> i32 {
                $get(h, c, t, out, n)
            }
            fn set_state(
                h: *mut RmspropOptimizer,
                c: i32,
                t: usize,
                v: *const Self,
                n: usize,
            ) -> i32 {
                $set(h, c, t, v, n)
            }
        }
    };
}
elem!(
    f32,
    RMSPROP_DTYPE_F32,
    RMSPROP_DTYPE_F64,
    rmsprop_update_f32,
    rmsprop_step_f32,
    rmsprop_update_tensors_f32,
    rmsprop_step_tensors_f32,
    rmsprop_get_state_f32,
    rmsprop_set_state_f32
);
elem!(
    f64,
    RMSPROP_DTYPE_F64,
    RMSPROP_DTYPE_F32,
    rmsprop_update_f64,
    rmsprop_step_f64,
    rmsprop_update_tensors_f64,
    rmsprop_step_tensors_f64,
    rmsprop_get_state_f64,
    rmsprop_set_state_f64
);

/// Bitwise equality, except that any NaN equals any NaN (payloads may differ between
/// code paths that compute the same value).
pub(crate) fn same_nan<T: Elem>(a: T, b: T) -> bool {
    a.bits() == b.bits() || (a.is_nan() && b.is_nan())
}

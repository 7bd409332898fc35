//! The element loop compiled per instruction set, each wrapper in the kernels'
//! floating-point environment ([`super::fpenv`]).
//!
//! [`super::body`] is one generic, `#[inline(always)]` function. Compiled for the target's
//! baseline (SSE2 on x86-64), `mul_add` has no instruction: every element pays a call to
//! libm's `fma`, and the loop cannot vectorise. This module compiles the *same* loop again
//! inside `#[target_feature]` functions — AVX2+FMA and AVX-512 — where LLVM emits
//! `vfmadd…` and vectorises over `ymm` / `zmm` registers. Which one runs is chosen in
//! [`super::select`].
//!
//! # Same bits on every path
//! Every path executes the same IEEE operations in the same order: `+ - * /`, `sqrt` and
//! `fma` are correctly rounded whether done by a scalar instruction, a vector lane or libm,
//! and LLVM neither reassociates nor contracts without fast-math flags (Rust sets none).
//! Vectorising an elementwise loop therefore changes no result bit; the kernel tests check
//! this for every variant, mode and dtype on every path this CPU has. The one thing left
//! open is which NaN comes out where a NaN meets a NaN (say a NaN parameter plus a NaN
//! update): IEEE 754 and Rust leave the sign and payload of a NaN unspecified, and LLVM may
//! swap the operands of a commutative `+`, so such an element is NaN on every path but its
//! sign bit may differ.
//!
//! # `unsafe`
//! Two blocks, each with a `SAFETY` comment: the calls of the `#[target_feature]` loops
//! from code compiled without those features (undefined behaviour on a CPU that lacks
//! them). `super::select::entry`, the only code that hands the wrappers out, checks at run
//! time that the CPU has the features.

use super::body::body;
use super::fpenv::{Guard, flush_subnormals};
use super::{Bufs, Coeffs};
use crate::element::Real;

/// The loop compiled for the target's baseline features, in the kernels' floating-point
/// environment.
pub(super) fn baseline<
    T: Real,
    const C: bool,
    const E: bool,
    const M: u8,
    const B: bool,
    const MODE: u8,
>(
    k: &Coeffs<T>,
    b: Bufs<'_, T>,
) {
    let _env = Guard::enter(flush_subnormals());
    baseline_loop::<T, C, E, M, B, MODE>(k, b)
}

/// Never inlined, so that all of the loop's arithmetic stays between the guard's `asm!`.
#[inline(never)]
pub(super) fn baseline_loop<
    T: Real,
    const C: bool,
    const E: bool,
    const M: u8,
    const B: bool,
    const MODE: u8,
>(
    k: &Coeffs<T>,
    b: Bufs<'_, T>,
) {
    body::<T, C, E, M, B, MODE>(k, b)
}

#[cfg(target_arch = "x86_64")]
pub(super) use x86::{avx2, avx512};

#[cfg(target_arch = "x86_64")]
mod x86 {
    use super::super::body::body;
    use super::super::fpenv::{Guard, flush_subnormals};
    use super::super::{Bufs, Coeffs};
    use crate::element::Real;

    #[target_feature(enable = "avx2,fma")]
    #[inline(never)]
    fn avx2_loop<
        T: Real,
        const C: bool,
        const E: bool,
        const M: u8,
        const B: bool,
        const MODE: u8,
    >(
        k: &Coeffs<T>,
        b: Bufs<'_, T>,
    ) {
        body::<T, C, E, M, B, MODE>(k, b)
    }

    #[target_feature(enable = "avx512f,avx512vl,avx2,fma")]
    #[inline(never)]
    fn avx512_loop<
        T: Real,
        const C: bool,
        const E: bool,
        const M: u8,
        const B: bool,
        const MODE: u8,
    >(
        k: &Coeffs<T>,
        b: Bufs<'_, T>,
    ) {
        body::<T, C, E, M, B, MODE>(k, b)
    }

    /// The loop compiled with AVX2 + FMA. Only `select::entry` hands this out.
    pub(in crate::kernel) fn avx2<
        T: Real,
        const C: bool,
        const E: bool,
        const M: u8,
        const B: bool,
        const MODE: u8,
    >(
        k: &Coeffs<T>,
        b: Bufs<'_, T>,
    ) {
        let _env = Guard::enter(flush_subnormals());
        #[allow(unsafe_code)]
        // SAFETY: `select::entry` returns this function only after `Isa::Avx2.is_supported()`
        // detected avx2 and fma on this CPU at run time, so the call cannot reach an
        // instruction the CPU lacks. The arguments are plain safe references.
        unsafe {
            avx2_loop::<T, C, E, M, B, MODE>(k, b)
        }
    }

    /// The loop compiled with AVX-512F/VL + FMA. Only `select::entry` hands this out.
    pub(in crate::kernel) fn avx512<
        T: Real,
        const C: bool,
        const E: bool,
        const M: u8,
        const B: bool,
        const MODE: u8,
    >(
        k: &Coeffs<T>,
        b: Bufs<'_, T>,
    ) {
        let _env = Guard::enter(flush_subnormals());
        #[allow(unsafe_code)]
        // SAFETY: `select::entry` returns this function only after
        // `Isa::Avx512.is_supported()` detected avx512f, avx512vl, avx2 and fma on this CPU
        // at run time.
        unsafe {
            avx512_loop::<T, C, E, M, B, MODE>(k, b)
        }
    }
}

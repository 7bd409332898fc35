//! Run-time SIMD dispatch for the fused kernel.
//!
//! [`crate::kernel`]'s element loop (`body`) is one generic, `#[inline(always)]` function.
//! Compiled for the target's baseline (SSE2 on x86-64), `mul_add` has no instruction: every
//! element pays a call to libm's `fma`, and the loop cannot vectorise. This module compiles
//! the *same* loop again inside `#[target_feature]` functions — AVX2+FMA and AVX-512 — where
//! LLVM emits `vfmadd…` and vectorises over `ymm` / `zmm` registers, and picks one, once per
//! process: AVX2+FMA where the CPU has it, else the baseline; AVX-512 on request.
//!
//! # Same bits on every path
//! Every path executes the same IEEE operations in the same order: `+ - * /`, `sqrt` and
//! `fma` are correctly rounded whether done by a scalar instruction, a vector lane or libm,
//! and LLVM neither reassociates nor contracts without fast-math flags (Rust sets none).
//! Vectorising an elementwise loop therefore changes no result bit; the tests below check
//! this for every variant, mode and dtype on every path this CPU has. The one thing left
//! open is which NaN comes out where a NaN meets a NaN (say a NaN parameter plus a NaN
//! update): IEEE 754 and Rust leave the sign and payload of a NaN unspecified, and LLVM may
//! swap the operands of a commutative `+`, so such an element is NaN on every path but its
//! sign bit may differ.
//!
//! # Subnormals: flushed to zero, as XLA:CPU does
//! On x86-64 every kernel call sets the MXCSR bits FTZ (flush underflowing results to zero)
//! and DAZ (read subnormal inputs as zero) on the thread that runs it, and restores the
//! caller's control bits before returning, also when unwinding; floating-point exception
//! flags raised inside stay raised. The host's threads are never left changed. This is what
//! XLA:CPU does around every jitted computation (`tsl::port::ScopedFlushDenormal`), so values
//! below `1.18e-38` (f32) / `2.2e-308` (f64) behave as in jitted optax, and a step never
//! falls onto the slow microcode path that subnormal operands take on many CPUs (a `nu`
//! decaying under zero gradients ends up subnormal, `0.9 * 1.4e-45` rounds back to
//! `1.4e-45`, and would stay there). Only elements where a value is subnormal can differ
//! from IEEE gradual underflow; `docs/performance.md` has the measured cost and effect.
//! `RMSPROP_FTZ=0` (read once, at first use) keeps the caller's environment instead.
//! On other architectures the caller's environment is used as it is.
//!
//! Formally, Rust assumes the default floating-point environment wherever Rust code does
//! arithmetic. The guard keeps the changed environment confined to one call of a separate,
//! never-inlined loop function, bracketed by the two `asm!` blocks, so no arithmetic of the
//! caller can be moved into it; within the loop every operation reads its operands from
//! memory, so nothing can be constant-folded under the wrong mode.
//!
//! # Choosing a path
//! [`active`] detects the CPU's features on first use and caches the answer (and the FTZ
//! setting) in an atomic. The default is AVX2+FMA where available: measured on Zen 4
//! (`docs/performance.md`), AVX-512 was no faster once a step is memory-bound (equal within
//! 4% at 1e7 elements), 9% faster in cache for the default step and 20% slower for
//! centered+momentum; the divide and square-root units, which bound the in-cache step, do
//! not process more elements per cycle with 512-bit vectors on Zen 4 or on recent Intel
//! cores, and on some Intel server cores 512-bit code lowers the clock of the whole core.
//! The environment variable `RMSPROP_SIMD` (read once, at that first use) selects a path
//! instead: `baseline`, `avx2` or `avx512`; a path the CPU lacks falls back to the best one
//! below it. Results are the same on every path.
//!
//! # `unsafe`
//! The crate denies `unsafe_code`; this module allows it in four blocks, each with a
//! `SAFETY` comment:
//! - the two calls of `#[target_feature]` functions from code compiled without those
//!   features (undefined behaviour on a CPU that lacks them): [`entry`], the only code that
//!   hands these wrappers out, checks at run time that the CPU has the features;
//! - `stmxcsr` / `ldmxcsr` in `fpenv` (the `_mm_getcsr` / `_mm_setcsr` intrinsics are
//!   deprecated): they read and write a local `u32`, and only ever load a value read from
//!   the register with the FTZ and DAZ bits changed, both defined on every x86-64 CPU.

use std::sync::atomic::{AtomicU8, Ordering};

use crate::kernel::{Bufs, Coeffs, KernelFn, body};
use crate::real::Real;

/// An instruction-set level the kernel is compiled for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum Isa {
    /// The compilation target's baseline (SSE2 on x86-64): scalar, `fma` through libm.
    Baseline = 1,
    /// AVX2 + FMA (x86-64-v3): 8 f32 / 4 f64 lanes.
    Avx2 = 2,
    /// AVX-512F + VL, with AVX2 and FMA: 16 f32 / 8 f64 lanes.
    Avx512 = 3,
}

impl Isa {
    /// Every level, lowest first.
    pub(crate) const ALL: [Isa; 3] = [Isa::Baseline, Isa::Avx2, Isa::Avx512];

    /// The name `RMSPROP_SIMD` accepts.
    pub(crate) fn name(self) -> &'static str {
        match self {
            Isa::Baseline => "baseline",
            Isa::Avx2 => "avx2",
            Isa::Avx512 => "avx512",
        }
    }

    fn from_name(s: &str) -> Option<Isa> {
        Isa::ALL
            .into_iter()
            .find(|i| i.name().eq_ignore_ascii_case(s.trim()))
    }

    /// Whether this CPU (and OS) can run the level. Cheap: std caches the detection.
    pub(crate) fn is_supported(self) -> bool {
        match self {
            Isa::Baseline => true,
            #[cfg(target_arch = "x86_64")]
            Isa::Avx2 => {
                std::arch::is_x86_feature_detected!("avx2")
                    && std::arch::is_x86_feature_detected!("fma")
            }
            #[cfg(target_arch = "x86_64")]
            Isa::Avx512 => {
                Isa::Avx2.is_supported()
                    && std::arch::is_x86_feature_detected!("avx512f")
                    && std::arch::is_x86_feature_detected!("avx512vl")
            }
            #[cfg(not(target_arch = "x86_64"))]
            _ => false,
        }
    }
}

/// `0` until detected; then the active level's discriminant, plus [`FLUSH_BIT`] when
/// kernels flush subnormals.
static ACTIVE: AtomicU8 = AtomicU8::new(0);
const FLUSH_BIT: u8 = 0x10;

fn settings() -> (Isa, bool) {
    let mut v = ACTIVE.load(Ordering::Relaxed);
    if v == 0 {
        // Racing first calls compute the same answer; whichever store lands is fine.
        let isa = detect(std::env::var("RMSPROP_SIMD").ok().as_deref());
        let flush = flush_wanted(std::env::var("RMSPROP_FTZ").ok().as_deref());
        v = isa as u8 | if flush { FLUSH_BIT } else { 0 };
        ACTIVE.store(v, Ordering::Relaxed);
    }
    let isa = match v & !FLUSH_BIT {
        3 => Isa::Avx512,
        2 => Isa::Avx2,
        _ => Isa::Baseline,
    };
    (isa, v & FLUSH_BIT != 0)
}

/// The level the kernels run at: AVX2 where supported, or what `RMSPROP_SIMD` selects.
/// Detected on the first call, then one relaxed atomic load.
pub(crate) fn active() -> Isa {
    settings().0
}

/// Whether kernels run with subnormals flushed to zero (default yes; `RMSPROP_FTZ=0` no).
pub(crate) fn flush_subnormals() -> bool {
    settings().1
}

/// The kernels' floating-point environment, set on this thread while the value lives, for
/// a caller that makes many kernel calls in a row (`parallel`'s leaves): each call's own
/// guard then finds FTZ/DAZ set and costs one `stmxcsr` instead of two `ldmxcsr`. The
/// holder must do no floating-point arithmetic of its own meanwhile, only kernel calls and
/// bookkeeping.
pub(crate) struct KernelEnv {
    _guard: fpenv::Guard,
}

impl KernelEnv {
    /// Set the environment (when flushing is on); restored on drop.
    #[inline(always)]
    pub(crate) fn enter() -> KernelEnv {
        KernelEnv {
            _guard: fpenv::Guard::enter(flush_subnormals()),
        }
    }
}

fn flush_wanted(setting: Option<&str>) -> bool {
    !matches!(
        setting.map(|s| s.trim().to_ascii_lowercase()).as_deref(),
        Some("0" | "off" | "false" | "no")
    )
}

/// The level to use: `choice` (a `RMSPROP_SIMD` value) or AVX2 by default, lowered to the
/// best level the CPU supports.
fn detect(choice: Option<&str>) -> Isa {
    let want = choice.and_then(Isa::from_name).unwrap_or(Isa::Avx2);
    Isa::ALL
        .into_iter()
        .rev()
        .find(|i| *i <= want && i.is_supported())
        .unwrap_or(Isa::Baseline)
}

/// The kernel of one configuration and mode compiled for `isa`, or for the baseline when
/// this CPU does not support `isa`.
pub(crate) fn entry<
    T: Real,
    const C: bool,
    const E: bool,
    const M: u8,
    const B: bool,
    const MODE: u8,
>(
    isa: Isa,
) -> KernelFn<T> {
    match isa {
        // The feature checks here are what makes the wrappers' `unsafe` calls sound.
        #[cfg(target_arch = "x86_64")]
        Isa::Avx512 if Isa::Avx512.is_supported() => x86::avx512::<T, C, E, M, B, MODE>,
        #[cfg(target_arch = "x86_64")]
        Isa::Avx2 if Isa::Avx2.is_supported() => x86::avx2::<T, C, E, M, B, MODE>,
        _ => baseline::<T, C, E, M, B, MODE>,
    }
}

/// The loop compiled for the target's baseline features, in the kernels' floating-point
/// environment.
fn baseline<T: Real, const C: bool, const E: bool, const M: u8, const B: bool, const MODE: u8>(
    k: &Coeffs<T>,
    b: Bufs<'_, T>,
) {
    let _env = fpenv::Guard::enter(flush_subnormals());
    baseline_loop::<T, C, E, M, B, MODE>(k, b)
}

/// Never inlined, so that all of the loop's arithmetic stays between the guard's `asm!`.
#[inline(never)]
fn baseline_loop<
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

/// The floating-point environment of a kernel call: FTZ + DAZ on x86-64.
#[cfg(target_arch = "x86_64")]
mod fpenv {
    /// MXCSR bit 15: results that underflow become zero.
    pub(super) const FTZ: u32 = 1 << 15;
    /// MXCSR bit 6: subnormal operands are read as zero.
    pub(super) const DAZ: u32 = 1 << 6;
    /// MXCSR bits 0-5: the sticky exception flags.
    const FLAGS: u32 = 0x3f;

    /// The MXCSR register.
    pub(super) fn read() -> u32 {
        let mut v: u32 = 0;
        #[allow(unsafe_code)]
        // SAFETY: `stmxcsr` stores the 4-byte MXCSR to `v`, a live, aligned, writable local;
        // it touches nothing else (no stack use, no flags).
        unsafe {
            core::arch::asm!(
                "stmxcsr [{p}]",
                p = in(reg) &raw mut v,
                options(nostack, preserves_flags)
            );
        }
        v
    }

    /// Load MXCSR. Callers pass a value read by [`read`] with only FTZ, DAZ or the
    /// exception flags changed, so no reserved bit is ever set (that would fault).
    fn write(v: u32) {
        #[allow(unsafe_code)]
        // SAFETY: `ldmxcsr` loads 4 bytes from `v`, a live, aligned local. The value is a
        // read-back of MXCSR with FTZ/DAZ/flag bits changed: DAZ and FTZ exist on every
        // x86-64 CPU, so no reserved bit is set and the instruction cannot fault.
        unsafe {
            core::arch::asm!(
                "ldmxcsr [{p}]",
                p = in(reg) &raw const v,
                options(nostack, readonly)
            );
        }
    }

    /// Sets FTZ + DAZ while alive (when asked to and not already set); restores the
    /// caller's control bits on drop, keeping exception flags raised meanwhile.
    pub(super) struct Guard {
        saved: Option<u32>,
    }

    impl Guard {
        #[inline(always)]
        pub(super) fn enter(flush: bool) -> Guard {
            if !flush {
                return Guard { saved: None };
            }
            let saved = read();
            if saved & (FTZ | DAZ) == FTZ | DAZ {
                return Guard { saved: None };
            }
            write(saved | FTZ | DAZ);
            Guard { saved: Some(saved) }
        }
    }

    impl Drop for Guard {
        #[inline(always)]
        fn drop(&mut self) {
            if let Some(saved) = self.saved {
                write((saved & !FLAGS) | (read() & FLAGS));
            }
        }
    }
}

/// Other architectures keep the caller's floating-point environment.
#[cfg(not(target_arch = "x86_64"))]
mod fpenv {
    pub(super) struct Guard;
    impl Guard {
        #[inline(always)]
        pub(super) fn enter(_flush: bool) -> Guard {
            Guard
        }
    }
}

#[cfg(target_arch = "x86_64")]
mod x86 {
    use crate::kernel::{Bufs, Coeffs, body};
    use crate::real::Real;

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

    /// The loop compiled with AVX2 + FMA. Only [`super::entry`] hands this out.
    pub(super) fn avx2<
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
        let _env = super::fpenv::Guard::enter(super::flush_subnormals());
        #[allow(unsafe_code)]
        // SAFETY: `entry` returns this function only after `Isa::Avx2.is_supported()`
        // detected avx2 and fma on this CPU at run time, so the call cannot reach an
        // instruction the CPU lacks. The arguments are plain safe references.
        unsafe {
            avx2_loop::<T, C, E, M, B, MODE>(k, b)
        }
    }

    /// The loop compiled with AVX-512F/VL + FMA. Only [`super::entry`] hands this out.
    pub(super) fn avx512<
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
        let _env = super::fpenv::Guard::enter(super::flush_subnormals());
        #[allow(unsafe_code)]
        // SAFETY: `entry` returns this function only after `Isa::Avx512.is_supported()`
        // detected avx512f, avx512vl, avx2 and fma on this CPU at run time.
        unsafe {
            avx512_loop::<T, C, E, M, B, MODE>(k, b)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kernel::{Mode, Variant, select_for};

    /// splitmix64: deterministic test data without a dependency.
    struct Rng(u64);
    impl Rng {
        fn next(&mut self) -> u64 {
            self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
            let mut z = self.0;
            z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
            z ^ (z >> 31)
        }
        /// Mostly ordinary magnitudes, with zeros, subnormals, huge values and non-finites.
        fn value(&mut self) -> f64 {
            let r = self.next();
            let u = (r >> 11) as f64 / (1u64 << 53) as f64;
            let sign = if r & 1 == 0 { 1.0 } else { -1.0 };
            match r % 64 {
                0 => 0.0,
                1 => f64::NAN,
                2 => sign * f64::INFINITY,
                3 => sign * 1e-40 * u,  // subnormal in f32
                4 => sign * 1e-310 * u, // subnormal in f64
                5 => sign * 1e30 * u,
                _ => sign * 10f64.powf(8.0 * u - 6.0),
            }
        }
        fn vec<T: Real>(&mut self, n: usize, non_negative: bool) -> Vec<T> {
            (0..n)
                .map(|_| {
                    let v = self.value();
                    T::from_f64(if non_negative { v.abs() } else { v })
                })
                .collect()
        }
    }

    fn variants() -> Vec<Variant> {
        let mut out = Vec::new();
        for bits in 0..32u32 {
            out.push(Variant {
                centered: bits & 1 != 0,
                eps_in_sqrt: bits & 2 != 0,
                momentum: bits & 4 != 0,
                nesterov: bits & 8 != 0,
                bias_correction: bits & 16 != 0,
            });
        }
        out
    }

    /// Bit patterns, so that -0 != +0 and every rounding difference shows. NaNs compare
    /// equal whatever their sign and payload: IEEE 754 and Rust leave those unspecified, and
    /// LLVM may swap the operands of a commutative `+`, which changes which NaN an x86 add
    /// of two NaNs returns (`inf + NaN` style elements only).
    fn bits<T: Real>(xs: &[T]) -> Vec<u64> {
        xs.iter()
            .map(|x| {
                let x = x.to_f64();
                if x.is_nan() { u64::MAX } else { x.to_bits() }
            })
            .collect()
    }

    fn run_one<T: Real>(isa: Isa, v: Variant, mode: Mode, n: usize, seed: u64) -> [Vec<u64>; 4] {
        let mut rng = Rng(seed);
        let k = coeffs::<T>();
        let grads: Vec<T> = rng.vec(n, false);
        let mut dst: Vec<T> = rng.vec(n, false);
        if mode == Mode::UpdateInPlace {
            dst.clone_from(&grads);
        }
        let mut nu: Vec<T> = rng.vec(n, true);
        let mut mu: Vec<T> = if v.centered {
            rng.vec(n, false)
        } else {
            Vec::new()
        };
        let mut trace: Vec<T> = if v.momentum {
            rng.vec(n, false)
        } else {
            Vec::new()
        };
        let f = select_for::<T>(isa, v, mode);
        f(
            &k,
            Bufs {
                grads: if mode == Mode::UpdateInPlace {
                    &[]
                } else {
                    &grads
                },
                dst: &mut dst,
                nu: &mut nu,
                mu: &mut mu,
                trace: &mut trace,
            },
        );
        [bits(&dst), bits(&nu), bits(&mu), bits(&trace)]
    }

    fn all_paths_match_baseline<T: Real>() {
        let paths: Vec<Isa> = Isa::ALL.into_iter().filter(|i| i.is_supported()).collect();
        // Lengths that exercise the vector body, its remainder loops and tiny inputs.
        let lens = [0usize, 1, 7, 31, 1000, 4099];
        let mut compared = 0;
        for v in variants() {
            for mode in [Mode::Update, Mode::UpdateInPlace, Mode::Step] {
                for (j, &n) in lens.iter().enumerate() {
                    let seed = 0x5EED ^ (j as u64) << 8;
                    let want = run_one::<T>(Isa::Baseline, v, mode, n, seed);
                    for &isa in &paths[1..] {
                        let got = run_one::<T>(isa, v, mode, n, seed);
                        assert!(
                            got == want,
                            "{} differs from baseline: {} {v:?} {mode:?} n={n}",
                            isa.name(),
                            T::NAME
                        );
                        compared += 1;
                    }
                }
            }
        }
        // On an x86-64 CI machine with AVX2 at least one SIMD path was really compared.
        if paths.len() > 1 {
            assert!(compared > 0);
        }
    }

    #[test]
    fn every_path_is_bit_identical_to_baseline_f32() {
        all_paths_match_baseline::<f32>();
    }

    #[test]
    fn every_path_is_bit_identical_to_baseline_f64() {
        all_paths_match_baseline::<f64>();
    }

    #[cfg(target_arch = "x86_64")]
    #[test]
    fn the_guard_sets_ftz_daz_and_restores_the_caller() {
        use fpenv::{DAZ, FTZ, Guard, read};
        let before = read() & !0x3f;
        {
            let _g = Guard::enter(true);
            assert_eq!(read() & (FTZ | DAZ), FTZ | DAZ);
            {
                // A host that already flushes: nothing to change, nothing to restore.
                let _inner = Guard::enter(true);
                assert_eq!(read() & (FTZ | DAZ), FTZ | DAZ);
            }
            assert_eq!(read() & (FTZ | DAZ), FTZ | DAZ);
        }
        assert_eq!(read() & !0x3f, before);
        {
            let _off = Guard::enter(false);
            assert_eq!(read() & !0x3f, before);
        }
        // A kernel call leaves the thread as it found it.
        let mut out = [0.0f32; 3];
        let mut nu = [1e-40f32, 0.0, 2.0];
        select_for::<f32>(Isa::Baseline, VARIANT_DEFAULT, Mode::Update)(
            &coeffs(),
            Bufs {
                grads: &[1e-30, 1e-41, 1.0],
                dst: &mut out,
                nu: &mut nu,
                mu: &mut [],
                trace: &mut [],
            },
        );
        assert_eq!(read() & !0x3f, before);
        if flush_subnormals() {
            // g*g = 1e-60 and 0.9*1e-40 underflow; the subnormal g = 1e-41 reads as 0.
            assert_eq!(nu[0], 0.0);
            assert_eq!(nu[1], 0.0);
            assert_eq!(out[1], 0.0);
        }
    }

    const VARIANT_DEFAULT: Variant = Variant {
        centered: false,
        eps_in_sqrt: true,
        momentum: false,
        nesterov: false,
        bias_correction: false,
    };

    fn coeffs<T: Real>() -> Coeffs<T> {
        Coeffs {
            one_minus_decay: T::from_f64(1.0 - 0.9),
            decay: T::from_f64(0.9),
            eps: T::from_f64(1e-8),
            neg_lr: T::from_f64(-0.01),
            momentum: T::from_f64(0.9),
            bias_correction: T::from_f64(1.0 - 0.9f64.powi(3)),
        }
    }

    /// Flushing changes an element only where one of its inputs is subnormal (the test data
    /// has no normal value small enough for an intermediate to underflow).
    #[cfg(target_arch = "x86_64")]
    #[test]
    fn flushing_changes_only_elements_with_subnormal_inputs() {
        fn run(v: Variant, flush: bool, n: usize) -> ([Vec<u64>; 4], Vec<bool>) {
            let mut rng = Rng(99);
            let grads: Vec<f32> = rng.vec(n, false);
            let mut dst: Vec<f32> = rng.vec(n, false);
            let mut nu: Vec<f32> = rng.vec(n, true);
            let mut mu: Vec<f32> = rng.vec(n, false);
            let mut trace: Vec<f32> = rng.vec(n, false);
            let tiny = (0..n)
                .map(|i| {
                    [grads[i], dst[i], nu[i], mu[i], trace[i]]
                        .iter()
                        .any(|x| x.is_subnormal())
                })
                .collect();
            let f = if v.centered {
                baseline_loop::<f32, true, false, 2, true, 2>
            } else {
                baseline_loop::<f32, false, true, 0, false, 2>
            };
            let _env = fpenv::Guard::enter(flush);
            f(
                &coeffs(),
                Bufs {
                    grads: &grads,
                    dst: &mut dst,
                    nu: &mut nu,
                    mu: if v.centered { &mut mu } else { &mut [] },
                    trace: if v.centered { &mut trace } else { &mut [] },
                },
            );
            ([bits(&dst), bits(&nu), bits(&mu), bits(&trace)], tiny)
        }
        for centered in [false, true] {
            let v = Variant {
                centered,
                ..VARIANT_DEFAULT
            };
            let n = 20_000;
            let (ieee, tiny) = run(v, false, n);
            let (ftz, _) = run(v, true, n);
            let mut differ = 0;
            for (i, &t) in tiny.iter().enumerate() {
                if (0..4).any(|c| ieee[c].get(i) != ftz[c].get(i)) {
                    differ += 1;
                    assert!(t, "element {i} changed without a subnormal input");
                }
            }
            let with_tiny = tiny.iter().filter(|&&t| t).count();
            eprintln!(
                "centered={centered}: {differ} of {n} elements differ ({with_tiny} have a subnormal input)"
            );
            assert!(differ > 0 && differ <= with_tiny);
        }
    }

    #[test]
    fn ftz_setting() {
        assert!(flush_wanted(None));
        assert!(flush_wanted(Some("1")));
        assert!(!flush_wanted(Some("0")));
        assert!(!flush_wanted(Some(" OFF ")));
    }

    #[test]
    fn detection_respects_the_choice_and_the_cpu() {
        let best = Isa::ALL
            .into_iter()
            .rev()
            .find(|i| i.is_supported())
            .unwrap();
        assert_eq!(detect(None), best.min(Isa::Avx2));
        assert_eq!(detect(Some("baseline")), Isa::Baseline);
        assert_eq!(detect(Some(" AVX2 ")), best.min(Isa::Avx2));
        assert_eq!(detect(Some("avx512")), best);
        assert_eq!(detect(Some("nonsense")), best.min(Isa::Avx2));
        assert!(active().is_supported());
        // What the test machine has, so that the log shows which paths were compared.
        let have: Vec<&str> = Isa::ALL
            .into_iter()
            .filter(|i| i.is_supported())
            .map(Isa::name)
            .collect();
        eprintln!("SIMD paths on this CPU: {have:?}");
    }
}

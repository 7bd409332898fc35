//! Run-time choice of the kernel: the instruction set (detected once per process, or
//! `RMSPROP_SIMD`) and the monomorphised loop of a configuration's [`Variant`] and [`Mode`].
//!
//! # Choosing a path
//! [`active`] detects the CPU's features on first use and caches the answer in an atomic.
//! The default is AVX2+FMA where available: measured on Zen 4 (`docs/performance.md`),
//! AVX-512 was no faster once a step is memory-bound (equal within 4% at 1e7 elements), 9%
//! faster in cache for the default step and 20% slower for centered+momentum; the divide
//! and square-root units, which bound the in-cache step, do not process more elements per
//! cycle with 512-bit vectors on Zen 4 or on recent Intel cores, and on some Intel server
//! cores 512-bit code lowers the clock of the whole core. The environment variable
//! `RMSPROP_SIMD` (read once, at that first use) selects a path instead: `baseline`,
//! `avx2` or `avx512`; a path the CPU lacks falls back to the best one below it. Results
//! are the same on every path ([`super::simd`]).
//!
//! Every configuration gets its own monomorphised loop (const generic parameters), chosen
//! here once per step, so the inner loop never branches on the configuration.

use std::sync::atomic::{AtomicU8, Ordering};

use super::simd;
use super::{KernelFn, M_IN_PLACE, M_STEP, M_UPDATE, MOM_HEAVY, MOM_NESTEROV, MOM_NONE};
use super::{Mode, Variant};
use crate::element::Real;

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

/// `0` until detected; then the active level's discriminant.
static ACTIVE: AtomicU8 = AtomicU8::new(0);

/// The level the kernels run at: AVX2 where supported, or what `RMSPROP_SIMD` selects.
/// Detected on the first call, then one relaxed atomic load.
pub(crate) fn active() -> Isa {
    let mut v = ACTIVE.load(Ordering::Relaxed);
    if v == 0 {
        // Racing first calls compute the same answer; whichever store lands is fine.
        v = detect(std::env::var("RMSPROP_SIMD").ok().as_deref()) as u8;
        ACTIVE.store(v, Ordering::Relaxed);
    }
    match v {
        3 => Isa::Avx512,
        2 => Isa::Avx2,
        _ => Isa::Baseline,
    }
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
fn entry<T: Real, const C: bool, const E: bool, const M: u8, const B: bool, const MODE: u8>(
    isa: Isa,
) -> KernelFn<T> {
    match isa {
        // The feature checks here are what makes the wrappers' `unsafe` calls sound.
        #[cfg(target_arch = "x86_64")]
        Isa::Avx512 if Isa::Avx512.is_supported() => simd::avx512::<T, C, E, M, B, MODE>,
        #[cfg(target_arch = "x86_64")]
        Isa::Avx2 if Isa::Avx2.is_supported() => simd::avx2::<T, C, E, M, B, MODE>,
        _ => simd::baseline::<T, C, E, M, B, MODE>,
    }
}

/// The loop of one configuration and mode, compiled for `isa`.
fn kernel<T: Real, const C: bool, const E: bool, const M: u8, const B: bool, const MODE: u8>(
    isa: Isa,
) -> KernelFn<T> {
    entry::<T, C, E, M, B, MODE>(isa)
}

macro_rules! pick {
    // Resolve one run-time flag into a const parameter at a time.
    ($v:ident, $mode:ident, $isa:ident) => {
        pick!(@c $v, $mode, $isa)
    };
    (@c $v:ident, $mode:ident, $isa:ident) => {
        if $v.centered { pick!(@e $v, $mode, $isa, true) } else { pick!(@e $v, $mode, $isa, false) }
    };
    (@e $v:ident, $mode:ident, $isa:ident, $c:tt) => {
        if $v.eps_in_sqrt {
            pick!(@m $v, $mode, $isa, $c, true)
        } else {
            pick!(@m $v, $mode, $isa, $c, false)
        }
    };
    (@m $v:ident, $mode:ident, $isa:ident, $c:tt, $e:tt) => {
        if !$v.momentum {
            pick!(@b $v, $mode, $isa, $c, $e, MOM_NONE)
        } else if $v.nesterov {
            pick!(@b $v, $mode, $isa, $c, $e, MOM_NESTEROV)
        } else {
            pick!(@b $v, $mode, $isa, $c, $e, MOM_HEAVY)
        }
    };
    (@b $v:ident, $mode:ident, $isa:ident, $c:tt, $e:tt, $m:ident) => {
        if $v.bias_correction {
            pick!(@mode $mode, $isa, $c, $e, $m, true)
        } else {
            pick!(@mode $mode, $isa, $c, $e, $m, false)
        }
    };
    (@mode $mode:ident, $isa:ident, $c:tt, $e:tt, $m:ident, $b:tt) => {
        match $mode {
            Mode::Update => kernel::<T, $c, $e, $m, $b, M_UPDATE>($isa),
            Mode::UpdateInPlace => kernel::<T, $c, $e, $m, $b, M_IN_PLACE>($isa),
            Mode::Step => kernel::<T, $c, $e, $m, $b, M_STEP>($isa),
        }
    };
}

/// The specialised kernel for a variant and mode, compiled for the instruction set chosen
/// once per process (AVX2+FMA where the CPU has it, else the baseline; AVX-512 on request;
/// see the module docs). Chosen once per step, never per element. Every instruction set gives
/// bit-identical results.
pub fn select<T: Real>(v: Variant, mode: Mode) -> KernelFn<T> {
    select_for(active(), v, mode)
}

/// [`select`] for a given instruction-set level (the baseline where the CPU lacks it).
pub(crate) fn select_for<T: Real>(isa: Isa, v: Variant, mode: Mode) -> KernelFn<T> {
    pick!(v, mode, isa)
}

#[cfg(test)]
mod tests {
    use super::*;

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

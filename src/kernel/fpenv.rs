//! The floating-point environment of a kernel call: subnormals flushed to zero, as
//! XLA:CPU does.
//!
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
//! never-inlined loop function ([`super::simd`]), bracketed by the two `asm!` blocks, so no
//! arithmetic of the caller can be moved into it; within the loop every operation reads
//! its operands from memory, so nothing can be constant-folded under the wrong mode.
//!
//! # `unsafe`
//! Two blocks, each with a `SAFETY` comment: `stmxcsr` / `ldmxcsr` (the `_mm_getcsr` /
//! `_mm_setcsr` intrinsics are deprecated). They read and write a local `u32`, and only
//! ever load a value read from the register with the FTZ and DAZ bits changed, both
//! defined on every x86-64 CPU.

use std::sync::atomic::{AtomicU8, Ordering};

/// `0` until read; then [`FLUSH_ON`] or [`FLUSH_OFF`].
static FLUSH: AtomicU8 = AtomicU8::new(0);
const FLUSH_OFF: u8 = 1;
const FLUSH_ON: u8 = 2;

/// Whether kernels run with subnormals flushed to zero (default yes; `RMSPROP_FTZ=0` no).
/// Read from the environment on the first call, then one relaxed atomic load.
pub(crate) fn flush_subnormals() -> bool {
    let mut v = FLUSH.load(Ordering::Relaxed);
    if v == 0 {
        // Racing first calls compute the same answer; whichever store lands is fine.
        v = if flush_wanted(std::env::var("RMSPROP_FTZ").ok().as_deref()) {
            FLUSH_ON
        } else {
            FLUSH_OFF
        };
        FLUSH.store(v, Ordering::Relaxed);
    }
    v == FLUSH_ON
}

/// `RMSPROP_FTZ`'s meaning: anything but `0`, `off`, `false`, `no` (any case) flushes.
pub(crate) fn flush_wanted(setting: Option<&str>) -> bool {
    !matches!(
        setting.map(|s| s.trim().to_ascii_lowercase()).as_deref(),
        Some("0" | "off" | "false" | "no")
    )
}

/// The kernels' floating-point environment, set on this thread while the value lives, for
/// a caller that makes many kernel calls in a row ([`super::split`]'s leaves): each call's
/// own guard then finds FTZ/DAZ set and costs one `stmxcsr` instead of two `ldmxcsr`. The
/// holder must do no floating-point arithmetic of its own meanwhile, only kernel calls and
/// bookkeeping.
pub(crate) struct KernelEnv {
    _guard: Guard,
}

impl KernelEnv {
    /// Set the environment (when flushing is on); restored on drop.
    #[inline(always)]
    pub(crate) fn enter() -> KernelEnv {
        KernelEnv {
            _guard: Guard::enter(flush_subnormals()),
        }
    }
}

#[cfg(target_arch = "x86_64")]
pub(crate) use x86::Guard;
#[cfg(all(test, target_arch = "x86_64"))]
pub(crate) use x86::{DAZ, FTZ, read};

/// FTZ + DAZ on x86-64.
#[cfg(target_arch = "x86_64")]
mod x86 {
    /// MXCSR bit 15: results that underflow become zero.
    pub(crate) const FTZ: u32 = 1 << 15;
    /// MXCSR bit 6: subnormal operands are read as zero.
    pub(crate) const DAZ: u32 = 1 << 6;
    /// MXCSR bits 0-5: the sticky exception flags.
    const FLAGS: u32 = 0x3f;

    /// The MXCSR register.
    pub(crate) fn read() -> u32 {
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
    pub(crate) struct Guard {
        saved: Option<u32>,
    }

    impl Guard {
        /// Enter the kernels' environment if `flush` (and it is not already set).
        #[inline(always)]
        pub(crate) fn enter(flush: bool) -> Guard {
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
pub(crate) struct Guard;

#[cfg(not(target_arch = "x86_64"))]
impl Guard {
    /// Nothing to set.
    #[inline(always)]
    pub(crate) fn enter(_flush: bool) -> Guard {
        Guard
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ftz_setting() {
        assert!(flush_wanted(None));
        assert!(flush_wanted(Some("1")));
        assert!(!flush_wanted(Some("0")));
        assert!(!flush_wanted(Some(" OFF ")));
    }

    #[cfg(target_arch = "x86_64")]
    #[test]
    fn the_guard_sets_ftz_daz_and_restores_the_caller() {
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
        {
            let _env = KernelEnv::enter();
            assert_eq!(
                read() & (FTZ | DAZ) == FTZ | DAZ,
                flush_subnormals(),
                "KernelEnv follows RMSPROP_FTZ"
            );
        }
        assert_eq!(read() & !0x3f, before);
    }
}

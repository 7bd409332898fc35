//! Tests across the kernel's files: the formulas, the modes, every instruction-set path
//! against the baseline, and the floating-point environment around a kernel call.

use super::fpenv::flush_subnormals;
use super::simd::baseline_loop;
use super::*;
use crate::element::Real;

fn coeffs64() -> Coeffs<f64> {
    Coeffs {
        one_minus_decay: 0.1,
        decay: 0.9,
        eps: 1e-8,
        neg_lr: -0.01,
        momentum: 0.9,
        bias_correction: 1.0 - 0.9,
    }
}

fn variant() -> Variant {
    Variant {
        centered: false,
        eps_in_sqrt: true,
        momentum: false,
        nesterov: false,
        bias_correction: false,
    }
}

#[test]
fn default_variant_matches_the_formula() {
    let k = coeffs64();
    let g = [0.5, -2.0, 0.0];
    let mut out = [0.0; 3];
    let mut nu = [0.0; 3];
    let f = select::<f64>(variant(), Mode::Update);
    f(
        &k,
        Bufs {
            grads: &g,
            dst: &mut out,
            nu: &mut nu,
            mu: &mut [],
            trace: &mut [],
        },
    );
    for i in 0..3 {
        let n = 0.1f64.mul_add(g[i] * g[i], 0.0);
        assert_eq!(nu[i], n);
        assert_eq!(out[i], -0.01 * ((1.0 / (n + 1e-8).sqrt()) * g[i]));
    }
}

#[test]
fn modes_agree() {
    let k = coeffs64();
    let mut v = variant();
    v.centered = true;
    v.momentum = true;
    v.nesterov = true;
    v.bias_correction = true;
    let g = [0.25, -3.0, 1e-3, 7.0];
    let run = |mode: Mode, dst: &mut [f64]| {
        let (mut nu, mut mu, mut tr) = ([2.0; 4], [0.1; 4], [0.3; 4]);
        let grads: &[f64] = if mode == Mode::UpdateInPlace { &[] } else { &g };
        select::<f64>(v, mode)(
            &k,
            Bufs {
                grads,
                dst,
                nu: &mut nu,
                mu: &mut mu,
                trace: &mut tr,
            },
        );
        (nu, mu, tr)
    };
    let mut upd = [0.0; 4];
    let s1 = run(Mode::Update, &mut upd);
    let mut inplace = g;
    let s2 = run(Mode::UpdateInPlace, &mut inplace);
    let p0 = [1.0, 2.0, 3.0, 4.0];
    let mut p = p0;
    let s3 = run(Mode::Step, &mut p);
    assert_eq!(s1, s2);
    assert_eq!(s1, s3);
    assert_eq!(upd, inplace);
    for i in 0..4 {
        assert_eq!(p[i], p0[i] + upd[i]);
    }
    // The trace moved, and nesterov's output differs from the trace itself.
    assert_ne!(upd[0], s1.2[0]);
}

#[test]
fn split_keeps_empty_buffers_empty() {
    let g = [1.0f32; 10];
    let mut d = [0.0f32; 10];
    let mut nu = [0.0f32; 10];
    let b = Bufs {
        grads: &g,
        dst: &mut d,
        nu: &mut nu,
        mu: &mut [],
        trace: &mut [],
    };
    let (l, r) = b.split_at(4);
    assert_eq!((l.len(), r.len(), l.mu.len(), r.trace.len()), (4, 6, 0, 0));
}

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

/// A kernel call leaves the thread's floating-point environment as it found it.
#[cfg(target_arch = "x86_64")]
#[test]
fn a_kernel_call_restores_the_callers_environment() {
    use fpenv::read;
    let before = read() & !0x3f;
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
fn every_path_is_bit_identical_to_baseline_bf16() {
    all_paths_match_baseline::<crate::lowp::Bf16>();
}

#[test]
fn every_path_is_bit_identical_to_baseline_f16() {
    all_paths_match_baseline::<crate::lowp::F16>();
}

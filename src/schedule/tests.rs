//! Known answers and rules of the schedules.

use super::Schedule;
use super::eval::integer_pow;

#[test]
fn linear_interpolates_and_clamps() {
    let s = Schedule::Linear {
        init_value: 1.0,
        end_value: 0.0,
        transition_steps: 4,
        transition_begin: 2,
    };
    let v: Vec<f32> = (0..8).map(|c| s.value::<f32>(c)).collect();
    assert_eq!(v, [1.0, 1.0, 1.0, 0.75, 0.5, 0.25, 0.0, 0.0]);
}

#[test]
fn degenerate_transition_is_constant() {
    let s = Schedule::Linear {
        init_value: 0.1,
        end_value: 0.0,
        transition_steps: 0,
        transition_begin: 0,
    };
    assert_eq!(s.value::<f64>(100), 0.1);
    assert_eq!(s.value::<f32>(100), 0.1f32);
}

#[test]
fn join_restarts_count_at_boundary() {
    let s = Schedule::Join {
        schedules: vec![
            Schedule::Constant { value: 0.5 },
            Schedule::Linear {
                init_value: 1.0,
                end_value: 0.0,
                transition_steps: 2,
                transition_begin: 0,
            },
        ],
        boundaries: vec![3],
    };
    let v: Vec<f32> = (0..6).map(|c| s.value::<f32>(c)).collect();
    assert_eq!(v, [0.5, 0.5, 0.5, 1.0, 0.5, 0.0]);
}

#[test]
fn piecewise_multiplies_at_boundaries() {
    let s = Schedule::PiecewiseConstant {
        init_value: 1.0,
        boundaries_and_scales: vec![(2, 0.5), (4, 0.5)],
    };
    let v: Vec<f64> = (0..6).map(|c| s.value::<f64>(c)).collect();
    assert_eq!(v, [1.0, 1.0, 0.5, 0.5, 0.25, 0.25]);
}

#[test]
fn validation_names_the_problem() {
    let bad = Schedule::CosineDecay {
        init_value: 1.0,
        decay_steps: 0,
        alpha: 0.0,
        exponent: 1.0,
    };
    assert!(
        bad.validate()
            .unwrap_err()
            .to_string()
            .contains("decay_steps")
    );
    let bad = Schedule::Join {
        schedules: vec![Schedule::Constant { value: 1.0 }],
        boundaries: vec![1],
    };
    assert!(bad.validate().is_err());
    let bad = Schedule::PiecewiseConstant {
        init_value: 1.0,
        boundaries_and_scales: vec![(5, 0.5), (2, 0.5)],
    };
    assert!(bad.validate().is_err());
}

/// Known answers of jitted `optax.cosine_decay_schedule(init, decay_steps, alpha, exponent)`
/// (optax 0.2.8, jax 0.10.2, XLA:CPU, glibc), as bits: f32 without x64, f64 with x64.
/// Mostly counts where evaluating optax's expression as written (`pi * c / ds`,
/// `0.5 * (1 + cos)`, `powf`) is off by an ulp, plus a count past the decay.
#[allow(clippy::type_complexity)]
const COSINE_KAT: [((f64, i64, f64, f64), &[(i32, u32)], &[(i32, u64)]); 8] = [
    (
        (0.05, 35, 0.0, 1.0),
        &[(10, 0x3D263ED0), (11, 0x3D1ECFD6), (40, 0x0)],
        &[(22, 0x3F8F13BE07B5189C), (40, 0x0)],
    ),
    (
        (0.05, 30, 0.1, 2.0),
        &[(10, 0x3CF851EA), (11, 0x3CDF560B), (35, 0x3BA3D70B)],
        &[
            (7, 0x3FA40FE3D7E62FE7),
            (13, 0x3F95EDA2AD9645DA),
            (35, 0x3F747AE147AE147C),
        ],
    ),
    (
        (0.7, 97, 1e-9, 3.0),
        &[(4, 0x3F30F4F8), (7, 0x3F2C68C1), (102, 0x30406A1E)],
        &[
            (5, 0x3FE5F698EAF94DC3),
            (9, 0x3FE5032912D0B276),
            (102, 0x3E080D43DE9CC603),
        ],
    ),
    (
        (0.3, 1000, 0.5, 1.5),
        &[(119, 0x3E95A7F1), (147, 0x3E93A557), (1005, 0x3E19999A)],
        &[
            (176, 0x3FD225BBDFA9BC7B),
            (208, 0x3FD1C16F9C06F8D3),
            (1005, 0x3FC3333333333333),
        ],
    ),
    (
        (1.0, 13, 0.2, -1.0),
        &[(6, 0x3FD05E9D), (9, 0x4079DF65), (18, 0x7F800000)],
        &[
            (7, 0x40002782379A2934),
            (8, 0x40056ECCC5F1EBD2),
            (18, 0x7FF0000000000000),
        ],
    ),
    (
        (0.02, 7, 0.1, 0.0),
        &[(12, 0x3CA3D70A), (i32::MAX, 0x3CA3D70A)],
        &[(12, 0x3F947AE147AE147B), (i32::MAX, 0x3F947AE147AE147B)],
    ),
    (
        (0.1, 21, 0.0, -0.5),
        &[(9, 0x3E02F97B), (15, 0x3E6C020B), (26, 0x7F800000)],
        &[
            (2, 0x3FB9E3A006519A0A),
            (9, 0x3FC05F2F3C26F0BC),
            (26, 0x7FF0000000000000),
        ],
    ),
    (
        (0.004, 77, 0.3, 2.0),
        &[(20, 0x3B50EA47), (22, 0x3B478EAF), (82, 0x3A9D4952)],
        &[
            (10, 0x3F6EEC80C83455BA),
            (14, 0x3F6D457068282E26),
            (82, 0x3F53A92A30553261),
        ],
    ),
];

/// XLA:CPU calls the C library's `cosf`/`cos`/`powf`/`pow`; these known answers hold
/// where Rust's `f32::cos` etc. call the same functions (glibc).
#[cfg(all(target_os = "linux", target_env = "gnu"))]
#[test]
fn cosine_matches_jitted_optax() {
    for &((init_value, decay_steps, alpha, exponent), f32s, f64s) in &COSINE_KAT {
        let s = Schedule::CosineDecay {
            init_value,
            decay_steps,
            alpha,
            exponent,
        };
        for &(c, bits) in f32s {
            let v = s.value::<f32>(c);
            assert_eq!(v.to_bits(), bits, "{s:?} f32 count {c}: {v:e}");
        }
        for &(c, bits) in f64s {
            let v = s.value::<f64>(c);
            assert_eq!(v.to_bits(), bits, "{s:?} f64 count {c}: {v:e}");
        }
    }
}

#[test]
fn integer_pow_matches_repeated_multiplication() {
    assert_eq!(integer_pow(0.7, 3), 0.7f32 * (0.7f32 * 0.7f32));
    assert_eq!(integer_pow(0.7, 1), 0.7);
    assert_eq!(integer_pow(2.0, -2), 0.25);
}

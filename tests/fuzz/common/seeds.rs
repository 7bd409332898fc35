//! Seeds: valid checkpoints and hand-written programs.

use super::*;

/// Valid checkpoints for the `checkpoint_load` seeds: each fixed layout and dtype, with
/// every configuration flag, every schedule kind, nested joins, after a few steps. Each
/// is prefixed with a mode byte (see [`checkpoint_load`]).
pub fn checkpoint_seeds() -> Vec<(String, Vec<u8>)> {
    let scheds: Vec<Schedule> = vec![
        Schedule::Constant { value: 0.01 },
        Schedule::Linear {
            init_value: 0.1,
            end_value: 0.0,
            transition_steps: 10,
            transition_begin: 2,
        },
        Schedule::Polynomial {
            init_value: 0.1,
            end_value: 0.01,
            power: 2.0,
            transition_steps: 10,
            transition_begin: 0,
        },
        Schedule::ExponentialDecay {
            init_value: 0.1,
            transition_steps: 5,
            decay_rate: 0.5,
            transition_begin: 1,
            staircase: true,
            end_value: Some(0.001),
        },
        Schedule::CosineDecay {
            init_value: 0.1,
            decay_steps: 20,
            alpha: 0.1,
            exponent: 1.0,
        },
        Schedule::WarmupCosineDecay {
            init_value: 0.0,
            peak_value: 0.1,
            warmup_steps: 3,
            decay_steps: 30,
            end_value: 0.001,
            exponent: 1.0,
        },
        Schedule::WarmupExponentialDecay {
            init_value: 0.0,
            peak_value: 0.1,
            warmup_steps: 3,
            transition_steps: 4,
            decay_rate: 0.9,
            transition_begin: 0,
            staircase: false,
            end_value: None,
        },
        Schedule::PiecewiseConstant {
            init_value: 0.1,
            boundaries_and_scales: vec![(2, 0.5), (5, 0.1), (9, 2.0)],
        },
    ];
    let join = Schedule::Join {
        schedules: vec![scheds[1].clone(), scheds[7].clone(), scheds[4].clone()],
        boundaries: vec![3, 8],
    };
    let mut nested = scheds[0].clone();
    for _ in 0..5 {
        nested = Schedule::Join {
            schedules: vec![nested.clone(), scheds[2].clone()],
            boundaries: vec![4],
        };
    }
    let mut out = Vec::new();
    let mut k = 0usize;
    let mut push = |name: String, bytes: Vec<u8>, out: &mut Vec<(String, Vec<u8>)>| {
        // Mode 1 (repair the frame) for most; mode 0 (raw) and mode 3 for some.
        let mode = [1u8, 1, 3, 0][k % 4];
        k += 1;
        let mut v = vec![mode];
        v.extend_from_slice(&bytes);
        out.push((name, v));
    };
    for (li, &(dt, sizes)) in LAYOUTS.iter().enumerate() {
        let lrs: Vec<LearningRate> = std::iter::once(LearningRate::Fixed(0.01))
            .chain(scheds.iter().cloned().map(LearningRate::Schedule))
            .chain([
                LearningRate::Schedule(join.clone()),
                LearningRate::Schedule(nested.clone()),
            ])
            .collect();
        for (si, lr) in lrs.into_iter().enumerate() {
            let mut c = Config::new(lr);
            // Vary the flags with the schedule index.
            c.centered = si % 2 == 1;
            c.momentum = (si % 3 != 0).then_some(0.9);
            c.nesterov = si % 4 == 2;
            c.bias_correction = si % 5 == 1;
            c.eps_in_sqrt = si % 3 != 2;
            c.initial_scale = if si % 2 == 0 { 0.0 } else { 1.0 };
            let skip = si % 4 == 3;
            let bytes = if dt == RMSPROP_DTYPE_F32 {
                seed_bytes::<f32>(c, sizes, skip, si)
            } else {
                seed_bytes::<f64>(c, sizes, skip, si)
            };
            push(format!("seed-l{li}-s{si}"), bytes, &mut out);
        }
    }
    out
}

pub(crate) fn seed_bytes<T: checkpoint::Element + Elem + rmsprop::Real>(
    c: Config,
    sizes: &[usize],
    skip: bool,
    steps: usize,
) -> Vec<u8> {
    let mut opt = Optimizer::<T>::new(c, sizes).expect("seed optimizer");
    opt.set_skip_non_finite(skip);
    let n = opt.layout().total();
    let mut p: Vec<T> = (0..n).map(|i| Elem::from_f64(i as f64 * 0.1)).collect();
    for s in 0..steps % 4 {
        let g: Vec<T> = (0..n)
            .map(|i| Elem::from_f64((i as f64 - 2.0) * (s as f64 + 1.0)))
            .collect();
        let _ = opt.step(&mut p, &g).expect("seed step");
    }
    if skip && n > 0 {
        let mut g = vec![Elem::from_f64(0.0); n];
        g[0] = Elem::from_f64(f64::NAN);
        let _ = opt.step(&mut p, &g).expect("seed skip");
    }
    checkpoint::encode(&opt)
}

/// Hand-written programs for the `c_api_sequence` seeds.
pub fn c_api_seeds() -> Vec<(String, Vec<u8>)> {
    use Op::*;
    fn p(ops: &[(Op, &[u8])]) -> Vec<u8> {
        program(ops)
    }
    let progs: Vec<(&str, Vec<u8>)> = vec![
        (
            "steps-f32",
            p(&[
                (Flat, &[0, 0, 0, 5, 9, 0, 2, 0x11]),
                (Flat, &[0, 0, 2, 5, 9, 2, 1, 2]),
            ]),
        ),
        (
            "create-f64-step-list",
            p(&[
                (OptionsNew, &[8]),
                (OptionsSet, &[1, 0, 6, 0, 1]),
                (OptionsSet, &[1, 0, 7, 5]),
                (Create, &[1, 0, 3, 3, 0x70, 0x10, 0x00, 0, 4, 5, 1]),
                (List, &[1, 1, 0, 5, 0, 2, 7, 1, 1, 1, 9, 9]),
                (Twin, &[1, 2, 5, 2, 1, 5, 2]),
                (Checkpoint, &[1, 4, 0, 1]),
            ]),
        ),
        (
            "schedules",
            p(&[
                (ScheduleNew, &[1, 1, 9, 0, 6, 2, 1]),
                (ScheduleNew, &[4, 1, 9, 7, 0, 2]),
                (ScheduleNew, &[7, 1, 9, 1, 2, 1, 4, 5, 2, 3, 9, 2]),
                (ScheduleJoin, &[1, 3, 0, 1, 2, 1, 1, 5, 7]),
                (OptionsNew, &[8]),
                (OptionsSet, &[0, 1, 1, 3]),
                (Create, &[0, 0, 2, 3, 4, 0, 5, 1]),
                (Flat, &[0, 1, 2, 5, 9, 3, 3, 0]),
                (Hyper, &[0, 0, 5, 1, 1]),
                (Counts, &[0, 0, 6, 7]),
                (Reset, &[0]),
            ]),
        ),
        (
            "state-and-threads",
            p(&[
                (SetState, &[0, 1, 0, 2, 2, 2, 1, 0, 4]),
                (GetState, &[0, 1, 0, 2, 2, 2]),
                (Threads, &[0, 4]),
                (Twin, &[0, 0, 3, 2, 0, 2]),
                (Queries, &[0, 1, 3, 0, 4]),
                (Nulls, &[27, 0]),
            ]),
        ),
        ("deep-join", p(&[(ScheduleJoin, &[0, 0, 70])])),
    ];
    progs
        .into_iter()
        .map(|(n, v)| (format!("seed-{n}"), v))
        .collect()
}

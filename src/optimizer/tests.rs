//! Unit tests of the optimizer: layout, state access, counts, reset, the step entry points
//! against each other, threads, skipping non-finite steps.

use super::*;
use crate::kernel::split::SEQUENTIAL_BELOW;
use crate::schedule::Schedule;

/// Deterministic values in about [-2, 2], none zero.
fn data(n: usize, salt: u64) -> Vec<f32> {
    (0..n as u64)
        .map(|i| {
            let h = (i ^ (salt << 32)).wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 40;
            (h as f32 / (1u64 << 24) as f32 - 0.5) * 4.0 + 1e-3
        })
        .collect()
}

fn bits(xs: &[f32]) -> Vec<u32> {
    xs.iter().map(|x| x.to_bits()).collect()
}

/// Every state buffer on, so that a mix-up between buffers shows.
fn full_config() -> Config {
    let mut c = Config::new(0.01);
    c.centered = true;
    c.momentum = Some(0.9);
    c.nesterov = true;
    c.bias_correction = true;
    c.initial_scale = 0.25;
    c
}

#[test]
fn layout_offsets_empty_tensors_and_overflow() {
    let l = Layout::new(&[3, 0, 5]).unwrap();
    assert_eq!(l.offsets(), &[0, 3, 3, 8]);
    assert_eq!((l.len(), l.total(), l.is_empty()), (3, 8, false));
    assert_eq!(l.range(1).unwrap(), 3..3);
    assert_eq!(l.range(2).unwrap(), 3..8);
    assert_eq!(
        l.range(3),
        Err(Error::TensorOutOfRange { index: 3, count: 3 })
    );
    let e = Layout::new(&[]).unwrap();
    assert_eq!((e.total(), e.is_empty(), e.offsets()), (0, true, &[0][..]));
    assert_eq!(Layout::new(&[usize::MAX, 1]), Err(Error::LayoutOverflow));
    // Addressable elements but not addressable bytes: refused before allocating.
    assert_eq!(
        Optimizer::<f64>::new(Config::new(0.1), &[usize::MAX / 4]).unwrap_err(),
        Error::LayoutOverflow
    );
}

#[test]
fn init_creates_exactly_the_buffers_of_the_configuration() {
    let o = Optimizer::<f32>::new(full_config(), &[2, 3]).unwrap();
    assert_eq!(o.state(Component::Nu), Some(&[0.25f32; 5][..]));
    assert_eq!(o.state(Component::Mu), Some(&[0.0f32; 5][..]));
    assert_eq!(o.state(Component::Trace), Some(&[0.0f32; 5][..]));
    let plain = Optimizer::<f32>::new(Config::new(0.1), &[2, 3]).unwrap();
    assert!(plain.state(Component::Mu).is_none() && plain.state(Component::Trace).is_none());
    assert_eq!(
        plain.tensor_state(Component::Mu, 0),
        Err(Error::NoSuchState("mu", "centered=true"))
    );
    assert_eq!(plain.counts(), Counts::default());
    assert!(Optimizer::<f32>::new(Config::new(f64::NAN), &[1]).is_err());
}

#[test]
fn tensor_state_reads_and_writes_only_its_range() {
    let mut o = Optimizer::<f32>::new(full_config(), &[2, 0, 3]).unwrap();
    for (k, c) in [Component::Nu, Component::Mu, Component::Trace]
        .into_iter()
        .enumerate()
    {
        let before = o.full_state().clone();
        let v = [1.0 + k as f32, 2.0, 3.0];
        o.set_tensor_state(c, 2, &v).unwrap();
        assert_eq!(o.tensor_state(c, 2).unwrap(), &v);
        assert_eq!(o.tensor_state(c, 1).unwrap(), &[] as &[f32]);
        let whole = o.state(c).unwrap();
        assert_eq!(&whole[2..], &v);
        assert_eq!(
            &whole[..2],
            &before_buf(&before, c)[..2],
            "tensor 0 untouched"
        );
        // The other buffers did not move.
        for other in [Component::Nu, Component::Mu, Component::Trace] {
            if other != c {
                assert_eq!(o.state(other).unwrap(), &before_buf(&before, other)[..]);
            }
        }
        // Wrong length or index: an error, nothing changed.
        let snapshot = o.full_state().clone();
        assert_eq!(
            o.set_tensor_state(c, 0, &[1.0; 3]),
            Err(Error::LengthMismatch {
                what: c.name(),
                expected: 2,
                got: 3
            })
        );
        assert!(o.set_tensor_state(c, 3, &[]).is_err());
        assert!(o.set_state(c, &[0.0; 4]).is_err());
        assert_eq!(o.full_state(), &snapshot);
        o.set_state(c, &[7.0; 5]).unwrap();
        assert_eq!(o.state(c).unwrap(), &[7.0; 5]);
    }
}

fn before_buf(s: &State<f32>, c: Component) -> Vec<f32> {
    match c {
        Component::Nu => s.nu.clone(),
        Component::Mu => s.mu.clone().unwrap(),
        Component::Trace => s.trace.clone().unwrap(),
    }
}

#[test]
fn full_state_must_fit_layout_and_configuration() {
    let mut o = Optimizer::<f32>::new(full_config(), &[2, 1]).unwrap();
    let good = State {
        nu: vec![1.0; 3],
        mu: Some(vec![0.5; 3]),
        trace: Some(vec![0.25; 3]),
        counts: Counts {
            schedule: 4,
            bias_correction: 2,
        },
    };
    let mut no_mu = good.clone();
    no_mu.mu = None;
    let mut short = good.clone();
    short.trace = Some(vec![0.0; 2]);
    let mut negative = good.clone();
    negative.counts.bias_correction = -1;
    for bad in [no_mu, short, negative] {
        assert!(o.set_full_state(bad).is_err());
        assert_eq!(o.counts(), Counts::default(), "unchanged");
    }
    o.set_full_state(good.clone()).unwrap();
    assert_eq!(o.full_state(), &good);
}

#[test]
fn counts_advance_saturate_and_reset() {
    let mut o = Optimizer::<f32>::new(full_config(), &[3]).unwrap();
    let mut p = [1.0f32; 3];
    let _ = o.step(&mut p, &[0.5; 3]).unwrap();
    let _ = o.step(&mut p, &[0.5; 3]).unwrap();
    assert_eq!(
        o.counts(),
        Counts {
            schedule: 2,
            bias_correction: 2
        }
    );
    assert!(
        o.set_counts(Counts {
            schedule: -1,
            bias_correction: 0
        })
        .is_err()
    );
    assert_eq!(o.counts().schedule, 2, "a refused count changes nothing");
    let max = Counts {
        schedule: i32::MAX,
        bias_correction: i32::MAX,
    };
    o.set_counts(max).unwrap();
    let _ = o.step(&mut p, &[0.5; 3]).unwrap();
    assert_eq!(o.counts(), max, "optax's safe_increment saturates");
    assert!(p.iter().all(|x| x.is_finite()));

    o.set_initial_scale(0.5).unwrap();
    assert_ne!(o.state(Component::Nu).unwrap()[0], 0.5, "not before reset");
    o.reset();
    assert_eq!(o.counts(), Counts::default());
    assert_eq!(o.state(Component::Nu).unwrap(), &[0.5; 3]);
    assert_eq!(o.state(Component::Mu).unwrap(), &[0.0; 3]);
    assert_eq!(o.state(Component::Trace).unwrap(), &[0.0; 3]);
}

/// The default configuration's first step, by hand: `nu = (1 - decay) g^2`,
/// `u = -lr * (1/sqrt(nu + eps) * g)`. `1 - decay` is folded in f64 (`1 - 0.9` is
/// 0.09999999999999998, not 0.1), as XLA folds optax's Python floats.
#[test]
fn one_default_step_matches_the_formula() {
    let mut o = Optimizer::<f64>::new(Config::new(0.01), &[3]).unwrap();
    let g = [0.5, -2.0, 3.0];
    let mut u = [0.0; 3];
    assert_eq!(o.update(&g, &mut u).unwrap(), Outcome::Applied);
    for i in 0..3 {
        let nu = (1.0 - 0.9f64).mul_add(g[i] * g[i], 0.9 * 0.0);
        assert_eq!(o.state(Component::Nu).unwrap()[i], nu);
        assert_eq!(u[i], -0.01 * ((1.0 / (nu + 1e-8).sqrt()) * g[i]));
    }
}

/// Runs 3 steps of every entry point from the same start: the fused step equals update +
/// apply, in place equals update, per tensor equals flat, all bit for bit (the state too).
#[test]
fn every_entry_point_computes_the_same_bits() {
    let sizes = [3usize, 0, 5, 1];
    let n: usize = sizes.iter().sum();
    let new = || Optimizer::<f32>::new(full_config(), &sizes).unwrap();
    let grads: Vec<Vec<f32>> = (0..3).map(|k| data(n, k)).collect();
    let p0 = data(n, 9);
    let split = |v: &[f32]| -> Vec<Vec<f32>> {
        let mut out = Vec::new();
        let mut at = 0;
        for &s in &sizes {
            out.push(v[at..at + s].to_vec());
            at += s;
        }
        out
    };

    // Reference: update, then apply by hand.
    let mut a = new();
    let mut pa = p0.clone();
    for g in &grads {
        let mut u = vec![0.0; n];
        let _ = a.update(g, &mut u).unwrap();
        for (p, u) in pa.iter_mut().zip(&u) {
            *p += *u;
        }
    }

    let mut b = new();
    let mut pb = p0.clone();
    for g in &grads {
        let _ = b.step(&mut pb, g).unwrap();
    }

    let mut c = new();
    let mut pc = p0.clone();
    for g in &grads {
        let mut u = g.clone();
        let _ = c.update_in_place(&mut u).unwrap();
        for (p, u) in pc.iter_mut().zip(&u) {
            *p += *u;
        }
    }

    let mut d = new();
    let mut pd = split(&p0);
    for g in &grads {
        let gl = split(g);
        let gr: Vec<&[f32]> = gl.iter().map(|v| v.as_slice()).collect();
        let mut pr: Vec<&mut [f32]> = pd.iter_mut().map(|v| v.as_mut_slice()).collect();
        let _ = d.step_tensors(&mut pr, &gr).unwrap();
    }

    let mut e = new();
    let mut pe = split(&p0);
    for g in &grads {
        let mut ul = split(g);
        let mut ur: Vec<&mut [f32]> = ul.iter_mut().map(|v| v.as_mut_slice()).collect();
        let _ = e.update_tensors_in_place(&mut ur).unwrap();
        for (p, u) in pe.iter_mut().zip(&ul) {
            for (p, u) in p.iter_mut().zip(u) {
                *p += *u;
            }
        }
    }

    let mut f = new();
    let mut pf = split(&p0);
    for g in &grads {
        let gl = split(g);
        let gr: Vec<&[f32]> = gl.iter().map(|v| v.as_slice()).collect();
        let mut ul: Vec<Vec<f32>> = sizes.iter().map(|&s| vec![f32::NAN; s]).collect();
        let mut ur: Vec<&mut [f32]> = ul.iter_mut().map(|v| v.as_mut_slice()).collect();
        let _ = f.update_tensors(&gr, &mut ur).unwrap();
        for (p, u) in pf.iter_mut().zip(&ul) {
            for (p, u) in p.iter_mut().zip(u) {
                *p += *u;
            }
        }
    }

    let want = bits(&pa);
    assert_ne!(want, bits(&p0), "the steps moved the parameters");
    assert_eq!(bits(&pb), want, "step");
    assert_eq!(bits(&pc), want, "update_in_place");
    for (name, p) in [
        ("step_tensors", &pd),
        ("update_tensors_in_place", &pe),
        ("update_tensors", &pf),
    ] {
        assert_eq!(bits(&p.concat()), want, "{name}");
    }
    for o in [&b, &c, &d, &e, &f] {
        assert_eq!(o.full_state(), a.full_state());
    }
}

#[test]
fn list_entry_points_check_every_length_first() {
    let mut o = Optimizer::<f32>::new(full_config(), &[2, 3]).unwrap();
    let g0 = [1.0f32; 2];
    let g1 = [1.0f32; 2]; // should be 3
    let mut p0 = [0.0f32; 2];
    let mut p1 = [0.0f32; 3];
    let r = o.step_tensors(&mut [&mut p0, &mut p1], &[&g0, &g1]);
    assert_eq!(
        r,
        Err(Error::LengthMismatch {
            what: "grads",
            expected: 3,
            got: 2
        })
    );
    assert!(
        o.step_tensors(&mut [&mut p0], &[&g0]).is_err(),
        "one tensor short"
    );
    assert_eq!(o.counts(), Counts::default());
    assert_eq!((p0, p1), ([0.0; 2], [0.0; 3]), "nothing written");
    assert!(o.update(&[0.0; 4], &mut [0.0; 5]).is_err());
}

#[test]
fn thread_settings_give_the_same_bits() {
    // Large enough to run in parallel (two tensors straddling the split).
    let sizes = [SEQUENTIAL_BELOW / 2 + 3, SEQUENTIAL_BELOW];
    let n: usize = sizes.iter().sum();
    let g = data(n, 1);
    let run = |threads: usize| {
        let mut o = Optimizer::<f32>::new(full_config(), &sizes).unwrap();
        o.set_threads(threads).unwrap();
        let mut p = data(n, 2);
        for _ in 0..2 {
            let _ = o.step(&mut p, &g).unwrap();
        }
        (o.threads(), bits(&p))
    };
    let (t1, want) = run(1);
    assert_eq!(t1, Threads::Caller);
    for (n, t) in [(0, Threads::Global), (3, Threads::Owned(3))] {
        let (got_t, got) = run(n);
        assert_eq!(got_t, t);
        assert!(got == want, "threads={n}");
    }
    let mut o = Optimizer::<f32>::new(Config::new(0.1), &[1]).unwrap();
    o.set_threads(2).unwrap();
    assert!(o.set_threads(MAX_THREADS + 1).is_err());
    assert_eq!(
        o.threads(),
        Threads::Owned(2),
        "a refused setting changes nothing"
    );
}

#[test]
fn non_finite_steps_are_skipped_only_when_asked() {
    let mut o = Optimizer::<f32>::new(full_config(), &[2, 2]).unwrap();
    let bad = [1.0, f32::NAN, 0.5, 0.5];
    let mut p = [1.0f32; 4];
    o.set_skip_non_finite(true);
    let before = o.full_state().clone();
    assert_eq!(o.step(&mut p, &bad).unwrap(), Outcome::Skipped);
    assert_eq!(p, [1.0; 4]);
    let mut u = [9.0f32; 4];
    assert_eq!(o.update(&bad, &mut u).unwrap(), Outcome::Skipped);
    assert_eq!(u, [0.0; 4], "a skipped update writes zeros");
    let mut lists = [[9.0f32, f32::INFINITY], [9.0, 9.0]];
    let [l0, l1] = &mut lists;
    assert_eq!(
        o.update_tensors_in_place(&mut [l0, l1]).unwrap(),
        Outcome::Skipped
    );
    assert_eq!(lists, [[0.0; 2]; 2]);
    assert_eq!(o.full_state(), &before, "no state change, counts included");
    assert_eq!(o.skipped_steps(), 3);
    assert_eq!(o.step(&mut p, &[0.5; 4]).unwrap(), Outcome::Applied);

    o.set_skip_non_finite(false);
    assert_eq!(o.step(&mut p, &bad).unwrap(), Outcome::Applied);
    assert!(
        p[1].is_nan() && !p[0].is_nan(),
        "NaN propagates elementwise, as optax"
    );
    assert_eq!(o.skipped_steps(), 3);
}

#[test]
fn live_hyperparameters() {
    let mut o = Optimizer::<f64>::new(Config::new(0.1), &[1]).unwrap();
    assert_eq!(
        o.set_momentum(0.5),
        Err(Error::NoSuchState("trace", "momentum set"))
    );
    assert!(o.set_decay(2.0).is_err());
    assert_eq!(o.hyper(Hyper::Decay), Some(0.9));
    o.set_hyper(Hyper::Decay, 0.5).unwrap();
    assert_eq!(o.config().decay, 0.5);
    o.set_hyper(Hyper::LearningRate, 0.25).unwrap();
    assert_eq!(o.current_learning_rate(), 0.25);
    o.set_learning_rate(LearningRate::Schedule(Schedule::Linear {
        init_value: 1.0,
        end_value: 0.0,
        transition_steps: 4,
        transition_begin: 0,
    }))
    .unwrap();
    assert_eq!(o.hyper(Hyper::LearningRate), None);
    let _ = o.step(&mut [0.0], &[1.0]).unwrap();
    // The schedule is evaluated at the count before the step: 1 step done -> 0.75.
    assert_eq!(o.current_learning_rate(), 0.75);
}

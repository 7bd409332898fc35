//! The step with 8-bit block-wise state ([`rmsprop::quant::Optimizer8bit`]): the same
//! arithmetic as the `f32`-state optimizer, a bounded requantization error per step,
//! thread-count independence, and closeness to the `f32`-state run.

use rmsprop::quant::{MapKind, Optimizer8bit, Q8Options, QuantMap, Rounding};
use rmsprop::{Component, Config, Optimizer, Schedule};

/// A small deterministic generator (no dependency): xorshift64* to a normal-ish value.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> f32 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        let u = (self.0.wrapping_mul(0x2545_f491_4f6c_dd1d) >> 40) as f32 / (1u64 << 24) as f32;
        // Sum of uniforms: roughly normal, with a heavier spread across elements below.
        (u - 0.5) * 4.0
    }
    fn grads(&mut self, n: usize) -> Vec<f32> {
        // Per-element scales over four decades: what makes block-wise quantization hard.
        (0..n)
            .map(|i| self.next() * 10f32.powi((i % 97) as i32 % 5 - 3))
            .collect()
    }
}

fn configs() -> Vec<(String, Config)> {
    let mut v = Vec::new();
    for centered in [false, true] {
        for eps_in_sqrt in [false, true] {
            for momentum in [None, Some(0.0), Some(0.9)] {
                for nesterov in [false, true] {
                    if nesterov && momentum.is_none() {
                        continue;
                    }
                    for bias_correction in [false, true] {
                        let mut c = Config::new(0.01);
                        c.centered = centered;
                        c.eps_in_sqrt = eps_in_sqrt;
                        c.momentum = momentum;
                        c.nesterov = nesterov;
                        c.bias_correction = bias_correction;
                        c.initial_scale = if centered { 0.1 } else { 0.0 };
                        v.push((format!("{c:?}"), c));
                    }
                }
            }
        }
    }
    let mut c = Config::new(Schedule::WarmupCosineDecay {
        init_value: 0.0,
        peak_value: 0.02,
        warmup_steps: 3,
        decay_steps: 10,
        end_value: 0.001,
        exponent: 1.0,
    });
    c.momentum = Some(0.9);
    c.centered = true;
    c.initial_scale = 0.1;
    v.push(("warmup_cosine schedule, centered, momentum".into(), c));
    v
}

fn components(c: &Config) -> Vec<Component> {
    let mut v = vec![Component::Nu];
    if c.centered {
        v.push(Component::Mu);
    }
    if c.momentum.is_some() {
        v.push(Component::Trace);
    }
    v
}

/// The bound on one requantized value `x` (the exact `f32` result of the step) in a block
/// of absmax `a`, rounded to the nearest code: half the gap between the two codes around
/// `x / a`, times `a`; plus one unit roundoff of `a` for the roundings of `x * (1/a)`
/// and of `code * a` (each at most half an ulp of a value no larger than `a`).
/// Directed rounding (`Up`, `TowardZero`) may move a value by the whole gap.
fn bound(map: &QuantMap, r: Rounding, x: f32, a: f32) -> f32 {
    if a == 0.0 {
        return 0.0;
    }
    let c = map.values();
    let v = (x / a).clamp(-1.0, 1.0);
    let i = c.partition_point(|&ci| ci <= v).clamp(1, 255);
    let gaps = if r == Rounding::Nearest { 0.5 } else { 1.0 };
    gaps * (c[i] - c[i - 1]) * a + a * f32::EPSILON
}

/// The direction a directed rounding must respect.
fn directed_ok(r: Rounding, got: f32, exact: f32, a: f32) -> bool {
    let slack = a * f32::EPSILON; // the rounding of `code * absmax`
    match r {
        Rounding::Up => got >= exact - slack,
        Rounding::TowardZero => got.abs() <= exact.abs() + slack,
        _ => true,
    }
}

const SIZES: [usize; 4] = [5000, 100, 0, 9000]; // partial last blocks; one f32 tensor; an empty one

#[test]
fn every_configuration_runs_the_f32_arithmetic_and_requantizes_within_the_bound() {
    for block in [256, 2048] {
        for (name, c) in configs() {
            let opts = Q8Options {
                block,
                ..Q8Options::default()
            };
            let mut q = Optimizer8bit::new(c.clone(), &SIZES, opts).unwrap();
            let mut r = Optimizer::<f32>::new(c.clone(), &SIZES).unwrap();
            let total: usize = SIZES.iter().sum();
            let mut rng = Rng(0x9e37_79b9_7f4a_7c15 ^ block as u64);
            assert!(q.is_quantized(0).unwrap() && !q.is_quantized(1).unwrap());
            let mut worst = [0f32; 3];
            for step in 0..12 {
                // The f32 optimizer starts each step from the 8-bit state, dequantized.
                for comp in components(&c) {
                    r.set_state(comp, &q.state(comp).unwrap()).unwrap();
                }
                r.set_counts(q.counts()).unwrap();
                let g = rng.grads(total);
                let (mut uq, mut ur) = (vec![0f32; total], vec![0f32; total]);
                q.update(&g, &mut uq).unwrap();
                let _ = r.update(&g, &mut ur).unwrap();
                for i in 0..total {
                    assert_eq!(
                        uq[i].to_bits(),
                        ur[i].to_bits(),
                        "{name} block {block} step {step} [{i}]: {} vs {}",
                        uq[i],
                        ur[i]
                    );
                }
                assert_eq!(q.counts(), r.counts());
                for (k, comp) in components(&c).into_iter().enumerate() {
                    let exact = r.state(comp).unwrap();
                    let got = q.state(comp).unwrap();
                    let map = if comp == Component::Nu {
                        QuantMap::unsigned()
                    } else {
                        QuantMap::signed()
                    };
                    let rounding = match comp {
                        Component::Nu => opts.nu_rounding,
                        Component::Mu => opts.mu_rounding,
                        Component::Trace => opts.trace_rounding,
                    };
                    let mut off = 0;
                    for (t, &n) in SIZES.iter().enumerate() {
                        let qt = q.quantized(comp, t).unwrap();
                        for (b, range) in (off..off + n)
                            .step_by(block)
                            .map(|s| (s, s..(s + block).min(off + n)))
                            .enumerate()
                        {
                            let (_, range) = range;
                            let a = exact[range.clone()]
                                .iter()
                                .fold(0f32, |m, x| m.max(x.abs()));
                            match qt {
                                None => assert_eq!(
                                    &got[range.clone()],
                                    &exact[range.clone()],
                                    "{name}: f32 tensor {t}"
                                ),
                                Some(qt) => {
                                    // The new absmax is the updated block's, exactly.
                                    assert_eq!(
                                        qt.absmax[b].to_bits(),
                                        a.to_bits(),
                                        "{name}: absmax"
                                    );
                                    for i in range {
                                        let e = (got[i] - exact[i]).abs();
                                        assert!(
                                            e <= bound(map, rounding, exact[i], a),
                                            "{name} block {block} step {step} {} [{i}]: {} vs {} (absmax {a})",
                                            comp.name(),
                                            got[i],
                                            exact[i]
                                        );
                                        assert!(
                                            directed_ok(rounding, got[i], exact[i], a),
                                            "{name}: direction"
                                        );
                                        // The documented worst case: half the largest gap
                                        // (nearest), the largest gap (directed).
                                        let gaps = if rounding == Rounding::Nearest {
                                            1.0
                                        } else {
                                            2.0
                                        };
                                        assert!(
                                            e <= gaps * map.max_half_gap() * a * (1.0 + 1e-6)
                                                + a * f32::EPSILON
                                        );
                                        worst[k] = worst[k].max(e / a);
                                    }
                                }
                            }
                        }
                        off += n;
                    }
                }
            }
            assert!(worst[0] > 0.0, "{name}: quantization did something");
        }
    }
}

#[test]
fn results_do_not_depend_on_the_thread_count() {
    let mut c = Config::new(0.003);
    c.centered = true;
    c.momentum = Some(0.9);
    c.nesterov = true;
    c.bias_correction = true;
    let sizes = [300_000, 77_777, 1000];
    let total: usize = sizes.iter().sum();
    let run = |threads: usize| {
        let mut q = Optimizer8bit::new(c.clone(), &sizes, Q8Options::default()).unwrap();
        q.set_threads(threads).unwrap();
        let mut rng = Rng(7);
        let mut p = rng.grads(total);
        for _ in 0..4 {
            let g = rng.grads(total);
            q.step(&mut p, &g).unwrap();
        }
        let codes: Vec<_> = [Component::Nu, Component::Mu, Component::Trace]
            .iter()
            .flat_map(|&k| (0..2).map(move |t| (k, t)))
            .map(|(k, t)| q.quantized(k, t).unwrap().unwrap().clone())
            .collect();
        (p.iter().map(|x| x.to_bits()).collect::<Vec<_>>(), codes)
    };
    let one = run(1);
    for t in [0, 2, 3, 5] {
        assert!(run(t) == one, "{t} threads differ from 1");
    }
}

#[test]
fn update_in_place_and_step_agree_with_update() {
    let mut c = Config::new(0.01);
    c.momentum = Some(0.5);
    let sizes = [8192];
    let mut rng = Rng(3);
    let g = rng.grads(8192);
    let p0 = rng.grads(8192);
    let mut a = Optimizer8bit::new(c.clone(), &sizes, Q8Options::default()).unwrap();
    let mut b = Optimizer8bit::new(c.clone(), &sizes, Q8Options::default()).unwrap();
    let mut d = Optimizer8bit::new(c.clone(), &sizes, Q8Options::default()).unwrap();
    for _ in 0..3 {
        let mut u = vec![0f32; 8192];
        a.update(&g, &mut u).unwrap();
        let mut gu = g.clone();
        b.update_in_place(&mut gu).unwrap();
        let mut p = p0.clone();
        d.step(&mut p, &g).unwrap();
        assert_eq!(u, gu);
        let applied: Vec<f32> = p0.iter().zip(&u).map(|(x, y)| x + y).collect();
        assert_eq!(p, applied);
    }
}

/// Noisy least squares on two tensors of 8192 (quantized) and one of 64 (f32 state),
/// 600 steps: the final parameters of the 8-bit run stay close to the f32-state run.
#[test]
fn training_stays_close_to_the_f32_state_optimizer() {
    for (nu_map, rounding) in [
        (MapKind::Unsigned, Rounding::Up),
        (MapKind::Unsigned, Rounding::Nearest),
        (MapKind::Signed, Rounding::BitsandbytesCpu),
    ] {
        for momentum in [None, Some(0.9)] {
            let mut c = Config::new(0.005);
            c.momentum = momentum;
            let sizes = [8192, 64, 8192];
            let total: usize = sizes.iter().sum();
            let opts = Q8Options {
                nu_map,
                nu_rounding: rounding,
                ..Q8Options::default()
            };
            let mut q = Optimizer8bit::new(c.clone(), &sizes, opts).unwrap();
            let mut r = Optimizer::<f32>::new(c.clone(), &sizes).unwrap();
            let mut rng = Rng(11);
            let target: Vec<f32> = (0..total).map(|_| rng.next()).collect();
            // Curvatures over one decade, 0.3..3: gradients of one block stay within what
            // a block-wise scale represents (see docs/quantized-state.md for the hazard of
            // wider ranges and how rounding `nu` up contains it).
            let scale: Vec<f32> = (0..total)
                .map(|i| 10f32.powf((i % 7) as f32 / 6.0 - 0.5))
                .collect();
            let (mut pq, mut pr) = (vec![0f32; total], vec![0f32; total]);
            for _ in 0..600 {
                let noise: Vec<f32> = (0..total).map(|_| rng.next()).collect();
                let grad = |p: &[f32]| -> Vec<f32> {
                    (0..total)
                        .map(|i| scale[i] * (p[i] - target[i]) + 0.1 * noise[i])
                        .collect()
                };
                let (gq, gr) = (grad(&pq), grad(&pr));
                q.step(&mut pq, &gq).unwrap();
                let _ = r.step(&mut pr, &gr).unwrap();
            }
            let norm = |v: &[f32]| v.iter().map(|x| (*x as f64).powi(2)).sum::<f64>().sqrt();
            let diff: Vec<f32> = pq.iter().zip(&pr).map(|(a, b)| a - b).collect();
            let rel = norm(&diff) / norm(&pr);
            let dist = |p: &[f32]| {
                norm(
                    &p.iter()
                        .zip(&target)
                        .map(|(a, b)| a - b)
                        .collect::<Vec<_>>(),
                )
            };
            eprintln!(
                "{nu_map:?} {rounding:?} momentum {momentum:?}: |p8 - p32| / |p32| = {rel:.2e}; distance to optimum f32 {:.4e}, 8-bit {:.4e}",
                dist(&pr),
                dist(&pq)
            );
            // Measured 2026-12-03: at most 3.1e-3 over these six runs (nu rounded up: its
            // systematic bias dominates; nearest: 1e-4..1.3e-3). The bound leaves a 3x margin.
            assert!(rel < 1e-2, "{rel}");
            // And the 8-bit run optimises about as well.
            assert!(dist(&pq) < 1.1 * dist(&pr) + 1e-3);
        }
    }
}

#[test]
fn invalid_block_size_is_refused() {
    let opts = Q8Options {
        block: 512,
        ..Q8Options::default()
    };
    assert!(Optimizer8bit::new(Config::new(0.01), &[5000], opts).is_err());
}

#[test]
fn state_memory_is_one_byte_per_element_plus_absmax() {
    let mut c = Config::new(0.01);
    c.centered = true;
    c.momentum = Some(0.9);
    let q = Optimizer8bit::new(c, &[1 << 20, 100], Q8Options::default()).unwrap();
    // 3 buffers x (1 B + 4 B / 256) per quantized element; 3 x 4 B per small-tensor element.
    assert_eq!(
        q.state_bytes(),
        3 * ((1 << 20) + 4 * (1 << 20) / 256) + 3 * 4 * 100
    );
}

#[test]
fn quantized_state_round_trips_through_its_parts() {
    let mut c = Config::new(0.01);
    c.centered = true;
    c.momentum = Some(0.9);
    let sizes = [5000, 10];
    let mut rng = Rng(5);
    let mut a = Optimizer8bit::new(c.clone(), &sizes, Q8Options::default()).unwrap();
    let mut p = rng.grads(5010);
    for _ in 0..3 {
        a.step(&mut p, &rng.grads(5010)).unwrap();
    }
    // A second optimizer resumed from the parts (codes, absmax, small-tensor f32 state,
    // counts) continues bit for bit.
    let mut b = Optimizer8bit::new(c.clone(), &sizes, Q8Options::default()).unwrap();
    for comp in [Component::Nu, Component::Mu, Component::Trace] {
        b.set_state(comp, &a.state(comp).unwrap()).unwrap(); // the f32 tensor
        b.set_quantized(comp, 0, a.quantized(comp, 0).unwrap().unwrap().clone())
            .unwrap();
        assert!(b.quantized(comp, 1).unwrap().is_none());
    }
    b.set_counts(a.counts());
    let mut pb = p.clone();
    let g = rng.grads(5010);
    a.step(&mut p, &g).unwrap();
    b.step(&mut pb, &g).unwrap();
    assert_eq!(p, pb);
    // Wrong lengths and f32 tensors are refused, nothing changes.
    let mut bad = a.quantized(Component::Nu, 0).unwrap().unwrap().clone();
    bad.absmax.pop();
    assert!(b.set_quantized(Component::Nu, 0, bad.clone()).is_err());
    assert!(b.set_quantized(Component::Nu, 1, bad).is_err());
    assert_eq!(
        a.state(Component::Nu).unwrap(),
        b.state(Component::Nu).unwrap()
    );
}

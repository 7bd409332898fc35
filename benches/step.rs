//! Step throughput: `cargo bench --bench step`.
//!
//! - `step/…` the fused step (optax `update` + `apply_updates`), `update/…` update only;
//! - `{default|cm}`: optax defaults, or `centered=True, momentum=0.9`;
//! - `{flat|t1000}`: one tensor, or the same elements split into 1000 tensors (one call);
//! - `{t1|tall}`: the caller's thread only, or rayon's global pool (one thread per core);
//! - the number is the total of f32 elements (1e3, 1e5, 1e7);
//! - `subnormal/…`: the default step with `nu` held in the subnormal range (gradients of
//!   1e-21, so `nu ~ 1e-42`), next to the same step on ordinary values; run it with
//!   `RMSPROP_FTZ=0` too to see the cost of IEEE gradual underflow;
//! - `threshold/…`: 1 thread vs all around `parallel::SEQUENTIAL_BELOW`.
//!
//! Time per call is what criterion prints; its "thrpt" line is elements per second. The
//! defaults keep the whole run at a few minutes on 2 cores; pass criterion's own options
//! (`--measurement-time`, `--sample-size`) for tighter numbers. `tools/bench/compare.py`
//! measures the same through the C ABI against a bandwidth probe and other optimizers.

use std::hint::black_box;
use std::time::Duration;

use criterion::{
    BenchmarkId, Criterion, SamplingMode, Throughput, criterion_group, criterion_main,
};
use rmsprop::{Config, Optimizer};

const TENSORS: usize = 1000;

fn config(centered_momentum: bool) -> Config {
    let mut c = Config::new(1e-3);
    if centered_momentum {
        c.centered = true;
        c.momentum = Some(0.9);
    }
    c
}

/// Deterministic gradients of magnitude about `scale`, sign alternating.
fn grads(n: usize, scale: f32) -> Vec<f32> {
    (0..n)
        .map(|i| {
            let u = ((i as u32).wrapping_mul(2_654_435_761) >> 8) as f32 / (1 << 24) as f32;
            let s = if i % 2 == 0 { 1.0 } else { -1.0 };
            s * scale * (0.5 + u)
        })
        .collect()
}

fn sizes(n: usize, tensors: usize) -> Vec<usize> {
    let base = n / tensors;
    let mut v = vec![base; tensors];
    v[tensors - 1] += n - base * tensors;
    v
}

struct Case {
    opt: Optimizer<f32>,
    params: Vec<f32>,
    grads: Vec<f32>,
    updates: Vec<f32>,
    sizes: Vec<usize>,
}

fn case(n: usize, tensors: usize, cm: bool, threads: usize, scale: f32) -> Case {
    let sizes = sizes(n, tensors);
    let mut opt = Optimizer::<f32>::new(config(cm), &sizes).expect("valid config");
    opt.set_threads(threads).expect("thread pool");
    Case {
        opt,
        params: vec![0.5; n],
        grads: grads(n, scale),
        updates: vec![0.0; n],
        sizes,
    }
}

/// Split a flat buffer into per-tensor slices (built once, outside the timed loop).
fn split_mut<'a>(mut buf: &'a mut [f32], sizes: &[usize]) -> Vec<&'a mut [f32]> {
    let mut out = Vec::with_capacity(sizes.len());
    for &s in sizes {
        let (a, b) = buf.split_at_mut(s);
        out.push(a);
        buf = b;
    }
    out
}

fn split<'a>(mut buf: &'a [f32], sizes: &[usize]) -> Vec<&'a [f32]> {
    let mut out = Vec::with_capacity(sizes.len());
    for &s in sizes {
        let (a, b) = buf.split_at(s);
        out.push(a);
        buf = b;
    }
    out
}

fn run(c: &mut Case, fused: bool, tensors: usize, b: &mut criterion::Bencher<'_>) {
    let Case {
        opt,
        params,
        grads,
        updates,
        sizes,
    } = c;
    match (fused, tensors) {
        (true, 1) => b.iter(|| black_box(opt.step(params, grads).expect("step"))),
        (false, 1) => b.iter(|| black_box(opt.update(grads, updates).expect("update"))),
        (true, _) => {
            let mut p = split_mut(params, sizes);
            let g = split(grads, sizes);
            b.iter(|| black_box(opt.step_tensors(&mut p, &g).expect("step")))
        }
        (false, _) => {
            let mut u = split_mut(updates, sizes);
            let g = split(grads, sizes);
            b.iter(|| black_box(opt.update_tensors(&g, &mut u).expect("update")))
        }
    }
}

fn steps(cr: &mut Criterion) {
    for fused in [true, false] {
        let mut group = cr.benchmark_group(if fused { "step" } else { "update" });
        for n in [1_000usize, 100_000, 10_000_000] {
            group.throughput(Throughput::Elements(n as u64));
            group.sampling_mode(if n >= 1_000_000 {
                SamplingMode::Flat
            } else {
                SamplingMode::Auto
            });
            for cm in [false, true] {
                for tensors in [1, TENSORS] {
                    for threads in [1usize, 0] {
                        let id = format!(
                            "{}/{}/{}",
                            if cm { "cm" } else { "default" },
                            if tensors == 1 { "flat" } else { "t1000" },
                            if threads == 1 { "t1" } else { "tall" },
                        );
                        let mut c = case(n, tensors, cm, threads, 1e-3);
                        group.bench_with_input(BenchmarkId::new(id, n), &n, |b, _| {
                            run(&mut c, fused, tensors, b)
                        });
                    }
                }
            }
        }
        group.finish();
    }
}

fn subnormal(cr: &mut Criterion) {
    let mut group = cr.benchmark_group("subnormal");
    for n in [100_000usize, 10_000_000] {
        group.throughput(Throughput::Elements(n as u64));
        group.sampling_mode(if n >= 1_000_000 {
            SamplingMode::Flat
        } else {
            SamplingMode::Auto
        });
        for (label, scale) in [("normal", 1e-3f32), ("subnormal_nu", 1e-21)] {
            let mut c = case(n, 1, false, 1, scale);
            // A few steps first, so that nu sits at its steady state (g^2 ~ 1e-42: subnormal).
            for _ in 0..3 {
                let _ = c.opt.step(&mut c.params, &c.grads).expect("step");
            }
            if scale < 1e-20 {
                let nu = c.opt.state(rmsprop::Component::Nu).expect("nu");
                assert!(nu.iter().all(|v| v.is_subnormal() || *v == 0.0));
            }
            group.bench_with_input(
                BenchmarkId::new(format!("default/t1/{label}"), n),
                &n,
                |b, _| run(&mut c, true, 1, b),
            );
        }
    }
    group.finish();
}

/// Around the sequential threshold: 1 thread vs all, so that a change of
/// `parallel::SEQUENTIAL_BELOW` / `GRAIN` shows whether going parallel still pays.
fn threshold(cr: &mut Criterion) {
    let mut group = cr.benchmark_group("threshold");
    for n in [1usize << 15, 1 << 16, 1 << 17, 1 << 18, 1 << 20] {
        group.throughput(Throughput::Elements(n as u64));
        for cm in [false, true] {
            for threads in [1usize, 0] {
                let id = format!(
                    "{}/{}",
                    if cm { "cm" } else { "default" },
                    if threads == 1 { "t1" } else { "tall" }
                );
                let mut c = case(n, 1, cm, threads, 1e-3);
                group.bench_with_input(BenchmarkId::new(id, n), &n, |b, _| run(&mut c, true, 1, b));
            }
        }
    }
    group.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .warm_up_time(Duration::from_millis(300))
        .measurement_time(Duration::from_millis(1200))
        .sample_size(15);
    targets = subnormal, threshold, steps
}
criterion_main!(benches);

//! Step time with `f32` state vs 8-bit block-wise state, side by side, and a bandwidth
//! probe with the 8-bit step's memory pattern (a benchmark script, not a test).
//!
//! ```text
//! cargo run --release --example q8_bench -- [elements, default 1e7] [repeats, default 20] [threads, default 0 = all]
//! ```
//! For each configuration prints the median step time, the bytes each element moves
//! (as counted below) and the resulting bandwidth. The probe reads and writes the same
//! arrays as the 8-bit default step (params f32 read+write, grads f32 read, `nu` codes
//! u8 read+write, absmax per 256) with a trivial computation: what memory allows.

use std::time::Instant;

use rmsprop::quant::{Optimizer8bit, Q8Options};
use rmsprop::{Config, Optimizer};

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    v[v.len() / 2]
}

fn time(repeats: usize, mut f: impl FnMut()) -> f64 {
    f(); // warm up (page faults, pool start)
    median(
        (0..repeats)
            .map(|_| {
                let t = Instant::now();
                f();
                t.elapsed().as_secs_f64()
            })
            .collect(),
    )
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let n: usize = args
        .get(1)
        .map_or(10_000_000, |s| s.parse::<f64>().unwrap() as usize);
    let repeats: usize = args.get(2).map_or(20, |s| s.parse().unwrap());
    let threads: usize = args.get(3).map_or(0, |s| s.parse().unwrap());
    println!("n = {n}, repeats = {repeats}, threads = {threads} (0: rayon's global pool)");
    println!(
        "{:<44} {:>10} {:>8} {:>10} {:>14}",
        "case", "ms/step", "B/elem", "GB/s", "state B/param"
    );
    let row = |name: &str, secs: f64, bytes: f64, state: f64| {
        println!(
            "{name:<44} {:>10.3} {bytes:>8.2} {:>10.2} {state:>14.3}",
            secs * 1e3,
            bytes * n as f64 / secs / 1e9
        );
    };
    let g: Vec<f32> = (0..n).map(|i| ((i % 1000) as f32 - 500.0) * 1e-3).collect();
    let mut p = vec![0.5f32; n];
    let nb = n.div_ceil(256) as f64 / n as f64 * 4.0; // absmax bytes per element, one way

    let cases: [(&str, bool, Option<f64>); 2] = [
        ("default", false, None),
        ("centered+momentum", true, Some(0.9)),
    ];
    for (name, centered, momentum) in cases {
        let mut c = Config::new(1e-3);
        c.centered = centered;
        c.momentum = momentum;
        let k = 1 + centered as usize + momentum.is_some() as usize; // state buffers

        let mut f = Optimizer::<f32>::new(c.clone(), &[n]).unwrap();
        match threads {
            0 => {}
            t => f.set_threads(t).unwrap(),
        }
        let s = time(repeats, || {
            let _ = f.step(&mut p, &g).unwrap();
        });
        // params r+w, grads r, each state buffer r+w, all f32.
        row(
            &format!("{name}: f32 state"),
            s,
            12.0 + 8.0 * k as f64,
            4.0 * k as f64,
        );

        let mut q = Optimizer8bit::new(c.clone(), &[n], Q8Options::default()).unwrap();
        q.set_threads(threads).unwrap();
        let s = time(repeats, || q.step(&mut p, &g).unwrap());
        let state = q.state_bytes() as f64 / n as f64;
        // params r+w, grads r, each state buffer's codes r+w and absmax r+w.
        row(
            &format!("{name}: 8-bit state"),
            s,
            12.0 + k as f64 * (2.0 + 2.0 * nb),
            state,
        );
    }

    // The probe: the 8-bit default step's traffic, trivial arithmetic, same threads.
    let mut codes = vec![0u8; n];
    let mut absmax = vec![1f32; n.div_ceil(256)];
    let probe = |p: &mut [f32], codes: &mut [u8], absmax: &mut [f32]| {
        use rayon::prelude::*;
        p.par_chunks_mut(1 << 16)
            .zip(codes.par_chunks_mut(1 << 16))
            .zip(absmax.par_chunks_mut(1 << 8))
            .zip(g.par_chunks(1 << 16))
            .for_each(|(((p, c), a), g)| {
                for ((x, ci), gi) in p.iter_mut().zip(c.iter_mut()).zip(g) {
                    *x += *gi;
                    *ci = ci.wrapping_add(1);
                }
                for v in a.iter_mut() {
                    *v += 1.0;
                }
            });
    };
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(if threads == 0 {
            rayon::current_num_threads()
        } else {
            threads
        })
        .build()
        .unwrap();
    let s = time(repeats, || {
        pool.install(|| probe(&mut p, &mut codes, &mut absmax))
    });
    row("probe: 8-bit default pattern", s, 14.0 + 2.0 * nb, 0.0);
    std::hint::black_box(&p);
}

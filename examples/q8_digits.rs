//! Training with `f32` optimizer state vs 8-bit block-wise state, seeded, on the digits
//! data (`c_examples/data/digits.csv`, 1797 8x8 images): a tanh MLP, softmax
//! cross-entropy, optax.rmsprop with a warmup-cosine learning rate, both arms from the same
//! initialisation and batch order.
//!
//! ```text
//! cargo run --release --example q8_digits -- [hidden sizes, e.g. 256 or 512,512] [seeds] [epochs]
//! ```
//! Prints one CSV row per arm, seed and epoch: `arm,seed,epoch,train_loss,test_loss,test_acc`.
//! The 8-bit arm quantizes every tensor (`min_8bit_size = 0`, biases included), the
//! hardest setting; `tools/plot_q8.py` turns the rows into `docs/quantized-state.png`.

use rmsprop::quant::{Optimizer8bit, Q8Options};
use rmsprop::{Config, Optimizer, Schedule};

struct Rng(u64);
impl Rng {
    fn u64(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn uniform(&mut self) -> f32 {
        (self.u64() >> 40) as f32 / (1u64 << 24) as f32
    }
    fn below(&mut self, n: usize) -> usize {
        (self.u64() % n as u64) as usize
    }
}

const N_IN: usize = 64;
const N_OUT: usize = 10;
const BATCH: usize = 32;

/// Layer `l` maps `dims[l]` to `dims[l + 1]`: weights `[out][in]` then biases, one tensor each.
struct Mlp {
    dims: Vec<usize>,
    offs: Vec<usize>, // offset of each tensor in the flat parameter vector
}

impl Mlp {
    fn new(hidden: &[usize]) -> Mlp {
        let mut dims = vec![N_IN];
        dims.extend_from_slice(hidden);
        dims.push(N_OUT);
        let mut offs = vec![0];
        for l in 0..dims.len() - 1 {
            let w = dims[l] * dims[l + 1];
            offs.push(offs.last().unwrap() + w);
            offs.push(offs.last().unwrap() + dims[l + 1]);
        }
        Mlp { dims, offs }
    }
    fn sizes(&self) -> Vec<usize> {
        self.offs.windows(2).map(|w| w[1] - w[0]).collect()
    }
    fn total(&self) -> usize {
        *self.offs.last().unwrap()
    }
    fn init(&self, rng: &mut Rng) -> Vec<f32> {
        let mut p = vec![0f32; self.total()];
        for l in 0..self.dims.len() - 1 {
            let (fi, fo) = (self.dims[l], self.dims[l + 1]);
            let a = (6.0 / (fi + fo) as f32).sqrt();
            for x in &mut p[self.offs[2 * l]..self.offs[2 * l + 1]] {
                *x = (2.0 * rng.uniform() - 1.0) * a;
            }
        }
        p
    }
    /// Activations of every layer for one example (the last: softmax probabilities).
    fn forward(&self, p: &[f32], x: &[f32]) -> Vec<Vec<f32>> {
        let mut acts = vec![x.to_vec()];
        let nl = self.dims.len() - 1;
        for l in 0..nl {
            let (fi, fo) = (self.dims[l], self.dims[l + 1]);
            let w = &p[self.offs[2 * l]..self.offs[2 * l + 1]];
            let b = &p[self.offs[2 * l + 1]..self.offs[2 * l + 2]];
            let a = acts.last().unwrap();
            let mut z: Vec<f32> = (0..fo)
                .map(|o| {
                    b[o] + w[o * fi..(o + 1) * fi]
                        .iter()
                        .zip(a)
                        .map(|(x, y)| x * y)
                        .sum::<f32>()
                })
                .collect();
            if l + 1 < nl {
                z.iter_mut().for_each(|v| *v = v.tanh());
            } else {
                let m = z.iter().fold(f32::MIN, |m, v| m.max(*v));
                let s: f32 = z.iter().map(|v| (v - m).exp()).sum();
                z.iter_mut().for_each(|v| *v = (*v - m).exp() / s);
            }
            acts.push(z);
        }
        acts
    }
    /// Adds the gradient of the loss of one example (scaled by `scale`) into `g`; returns its loss.
    fn backprop(&self, p: &[f32], x: &[f32], y: usize, scale: f32, g: &mut [f32]) -> f32 {
        let acts = self.forward(p, x);
        let nl = self.dims.len() - 1;
        let probs = &acts[nl];
        let loss = -(probs[y].max(1e-12)).ln();
        let mut delta: Vec<f32> = probs.clone();
        delta[y] -= 1.0;
        for l in (0..nl).rev() {
            let (fi, fo) = (self.dims[l], self.dims[l + 1]);
            let a = &acts[l];
            let (wo, bo) = (self.offs[2 * l], self.offs[2 * l + 1]);
            for o in 0..fo {
                let d = delta[o] * scale;
                g[bo + o] += d;
                for (gi, ai) in g[wo + o * fi..wo + (o + 1) * fi].iter_mut().zip(a) {
                    *gi += d * ai;
                }
            }
            if l > 0 {
                let w = &p[wo..bo];
                delta = (0..fi)
                    .map(|i| {
                        let s: f32 = (0..fo).map(|o| w[o * fi + i] * delta[o]).sum();
                        s * (1.0 - a[i] * a[i])
                    })
                    .collect();
            }
        }
        loss
    }
}

enum Opt {
    F32(Optimizer<f32>),
    Q8(Optimizer8bit),
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let hidden: Vec<usize> = args
        .get(1)
        .map(|s| {
            s.split(',')
                .map(|x| x.parse().expect("hidden sizes"))
                .collect()
        })
        .unwrap_or_else(|| vec![256]);
    let seeds: u64 = args.get(2).map_or(5, |s| s.parse().expect("seeds"));
    let epochs: usize = args.get(3).map_or(30, |s| s.parse().expect("epochs"));

    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/c_examples/data/digits.csv");
    let text = std::fs::read_to_string(path).expect("digits.csv");
    let (mut xs, mut ys) = (Vec::new(), Vec::new());
    for line in text.lines().filter(|l| !l.trim().is_empty()) {
        let v: Vec<f32> = line.split(',').map(|t| t.trim().parse().unwrap()).collect();
        xs.extend(v[..N_IN].iter().map(|p| p / 16.0));
        ys.push(v[N_IN] as usize);
    }
    let n = ys.len();
    let mlp = Mlp::new(&hidden);
    println!("arm,seed,epoch,train_loss,test_loss,test_acc");
    eprintln!(
        "model 64-{hidden:?}-10, {} parameters, tensors {:?}",
        mlp.total(),
        mlp.sizes()
    );
    for seed in 0..seeds {
        // One split, initialisation and batch order per seed, shared by both arms.
        let mut rng = Rng(0x5eed_0000_0000_0001 ^ (seed + 1).wrapping_mul(0x9e37_79b9_7f4a_7c15));
        let mut order: Vec<usize> = (0..n).collect();
        for i in (1..n).rev() {
            order.swap(i, rng.below(i + 1));
        }
        let n_train = n * 4 / 5;
        let (train, test) = order.split_at(n_train);
        let p0 = mlp.init(&mut rng);
        let steps_per_epoch = n_train.div_ceil(BATCH);
        let batches: Vec<Vec<usize>> = (0..epochs)
            .flat_map(|_| {
                let mut t = train.to_vec();
                for i in (1..t.len()).rev() {
                    t.swap(i, rng.below(i + 1));
                }
                t.chunks(BATCH).map(<[usize]>::to_vec).collect::<Vec<_>>()
            })
            .collect();
        for arm in ["f32", "8bit"] {
            let config = Config::new(Schedule::WarmupCosineDecay {
                init_value: 0.0,
                peak_value: 3e-3,
                warmup_steps: steps_per_epoch as i64,
                decay_steps: (steps_per_epoch * epochs) as i64,
                end_value: 3e-5,
                exponent: 1.0,
            });
            let mut opt = match arm {
                "f32" => Opt::F32(Optimizer::new(config, &mlp.sizes()).unwrap()),
                _ => Opt::Q8(
                    Optimizer8bit::new(
                        config,
                        &mlp.sizes(),
                        Q8Options {
                            min_8bit_size: 0,
                            ..Q8Options::default()
                        },
                    )
                    .unwrap(),
                ),
            };
            let mut p = p0.clone();
            let mut g = vec![0f32; mlp.total()];
            for epoch in 0..epochs {
                let mut train_loss = 0.0f64;
                for b in &batches[epoch * steps_per_epoch..(epoch + 1) * steps_per_epoch] {
                    g.fill(0.0);
                    let s = 1.0 / b.len() as f32;
                    for &e in b {
                        train_loss +=
                            mlp.backprop(&p, &xs[e * N_IN..(e + 1) * N_IN], ys[e], s, &mut g)
                                as f64;
                    }
                    match &mut opt {
                        Opt::F32(o) => {
                            let _ = o.step(&mut p, &g).unwrap();
                        }
                        Opt::Q8(o) => o.step(&mut p, &g).unwrap(),
                    }
                }
                let (mut test_loss, mut correct) = (0.0f64, 0usize);
                for &e in test {
                    let acts = mlp.forward(&p, &xs[e * N_IN..(e + 1) * N_IN]);
                    let pr = acts.last().unwrap();
                    test_loss -= (pr[ys[e]].max(1e-12) as f64).ln();
                    let best = (0..N_OUT).fold(0, |m, k| if pr[k] > pr[m] { k } else { m });
                    correct += (best == ys[e]) as usize;
                }
                println!(
                    "{arm},{seed},{},{:.6},{:.6},{:.6}",
                    epoch + 1,
                    train_loss / n_train as f64,
                    test_loss / test.len() as f64,
                    correct as f64 / test.len() as f64
                );
            }
        }
    }
}

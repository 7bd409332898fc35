//! Running a kernel over the whole flat element space: sequentially for small steps,
//! otherwise split recursively into halves with `rayon::join`, across tensor
//! boundaries, down to a grain size. The kernels are elementwise, so the result is
//! bit-identical whatever the split and the thread count; nothing is allocated.

use super::fpenv::KernelEnv;
use super::{Bufs, Coeffs};

/// Below this many elements a step runs on the caller's thread alone: waking workers
/// costs more than it saves. Measured through the C ABI (f32 step, 2 threads vs 1 on a
/// 2-core AMD EPYC, `docs/performance.md`): 2 threads were 0.3-0.8x as fast at 16-32 Ki
/// elements and 1.1-1.7x as fast from 64 Ki on.
pub const SEQUENTIAL_BELOW: usize = 1 << 16;

/// Elements per leaf task. At most half of [`SEQUENTIAL_BELOW`], so that the smallest
/// parallel step really splits; large enough that a leaf (~0.6 MB of f32 traffic for the
/// default step) amortises its task, small enough to balance 16 threads from 1e6 elements
/// on (32 leaves). 16 Ki to 256 Ki measured alike at 1e6 and 1e7 elements on 2 threads.
/// A multiple of 64 keeps SIMD chunks aligned.
pub const GRAIN: usize = 1 << 15;

/// What runs on each leaf of the split: a [`super::KernelFn`], or a kernel with the gradient
/// transforms in front (`crate::transform`).
pub trait Leaf<T>: Fn(&Coeffs<T>, Bufs<'_, T>) + Copy + Send + Sync {}
impl<T, F: Fn(&Coeffs<T>, Bufs<'_, T>) + Copy + Send + Sync> Leaf<T> for F {}

/// Where the work runs.
#[derive(Clone, Copy)]
pub enum Exec<'p> {
    /// The caller's thread only.
    Sequential,
    /// rayon's global pool.
    Global,
    /// A pool owned by the optimizer.
    Pool(&'p rayon::ThreadPool),
}

impl Exec<'_> {
    /// Run `f(parallel)`: sequentially below [`SEQUENTIAL_BELOW`] elements or when so set.
    pub(crate) fn run(self, total: usize, f: impl FnOnce(bool) + Send) {
        match self {
            _ if total < SEQUENTIAL_BELOW => f(false),
            Exec::Sequential => f(false),
            Exec::Global => f(true),
            Exec::Pool(p) => p.install(|| f(true)),
        }
    }
}

fn flat<T: Send + Sync, F: Leaf<T>>(f: F, k: &Coeffs<T>, b: Bufs<'_, T>, par: bool) {
    if !par || b.len() <= GRAIN {
        let _env = KernelEnv::enter();
        f(k, b);
    } else {
        let mid = (b.len() / 2).next_multiple_of(64).min(b.len());
        let (l, r) = b.split_at(mid);
        rayon::join(|| flat(f, k, l, par), || flat(f, k, r, par));
    }
}

/// Run over one contiguous set of buffers.
pub fn run_flat<T: Send + Sync, F: Leaf<T>>(exec: Exec<'_>, f: F, k: &Coeffs<T>, b: Bufs<'_, T>) {
    let total = b.len();
    exec.run(total, |par| flat(f, k, b, par));
}

/// Per-tensor buffers: the caller's lists of slices plus the optimizer's flat state.
pub struct ListBufs<'a, 'g, 'd, T> {
    /// One gradient slice per tensor, or an empty list in update-in-place mode.
    pub grads: &'a [&'g [T]],
    /// One destination slice per tensor.
    pub dst: &'a mut [&'d mut [T]],
    /// Flat second moment over all tensors.
    pub nu: &'a mut [T],
    /// Flat first moment (or empty).
    pub mu: &'a mut [T],
    /// Flat trace (or empty).
    pub trace: &'a mut [T],
}

fn split_list<T>(s: &[T], at: usize) -> (&[T], &[T]) {
    if s.is_empty() { (s, s) } else { s.split_at(at) }
}

fn split_state<T>(s: &mut [T], at: usize) -> (&mut [T], &mut [T]) {
    if s.is_empty() {
        (&mut [], &mut [])
    } else {
        s.split_at_mut(at)
    }
}

/// `offsets` has one more entry than the list: `offsets[i]` is tensor `i`'s first element.
fn list<T: Send + Sync, F: Leaf<T>>(
    f: F,
    k: &Coeffs<T>,
    b: ListBufs<'_, '_, '_, T>,
    offsets: &[usize],
    par: bool,
) {
    let n = b.dst.len();
    let base = offsets[0];
    let elems = offsets[n] - base;
    if n == 1 {
        let one = Bufs {
            grads: b.grads.first().copied().unwrap_or(&[]),
            dst: &mut *b.dst[0],
            nu: b.nu,
            mu: b.mu,
            trace: b.trace,
        };
        return flat(f, k, one, par);
    }
    if !par || elems <= GRAIN {
        let ListBufs {
            grads,
            dst,
            mut nu,
            mut mu,
            mut trace,
        } = b;
        // One floating-point environment switch for the whole run of tensors.
        let _env = KernelEnv::enter();
        for (i, d) in dst.iter_mut().enumerate() {
            let len = d.len();
            let (n0, n1) = split_state(nu, len);
            let (m0, m1) = split_state(mu, len);
            let (t0, t1) = split_state(trace, len);
            (nu, mu, trace) = (n1, m1, t1);
            let g = grads.get(i).copied().unwrap_or(&[]);
            f(
                k,
                Bufs {
                    grads: g,
                    dst: d,
                    nu: n0,
                    mu: m0,
                    trace: t0,
                },
            );
        }
        return;
    }
    // Split the tensor list where the element count is closest to half, keeping both sides non-empty.
    let half = base + elems / 2;
    let at = offsets[1..n].partition_point(|&o| o < half) + 1;
    let at = at.clamp(1, n - 1);
    let cut = offsets[at] - base;
    let (g0, g1) = split_list(b.grads, at);
    let (d0, d1) = b.dst.split_at_mut(at);
    let (n0, n1) = split_state(b.nu, cut);
    let (m0, m1) = split_state(b.mu, cut);
    let (t0, t1) = split_state(b.trace, cut);
    let left = ListBufs {
        grads: g0,
        dst: d0,
        nu: n0,
        mu: m0,
        trace: t0,
    };
    let right = ListBufs {
        grads: g1,
        dst: d1,
        nu: n1,
        mu: m1,
        trace: t1,
    };
    rayon::join(
        || list(f, k, left, &offsets[..=at], par),
        || list(f, k, right, &offsets[at..], par),
    );
}

/// Run over a list of tensors in one dispatch. `offsets` are the layout's prefix sums.
pub fn run_list<T: Send + Sync, F: Leaf<T>>(
    exec: Exec<'_>,
    f: F,
    k: &Coeffs<T>,
    b: ListBufs<'_, '_, '_, T>,
    offsets: &[usize],
) {
    if b.dst.is_empty() {
        return;
    }
    let total = offsets[offsets.len() - 1];
    exec.run(total, |par| list(f, k, b, offsets, par));
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kernel::{Mode, Variant, select};

    fn coeffs() -> Coeffs<f32> {
        Coeffs {
            one_minus_decay: 0.1,
            decay: 0.9,
            eps: 1e-8,
            neg_lr: -0.01,
            momentum: 0.9,
            bias_correction: 0.271,
        }
    }

    /// Tensor sizes around and above the thresholds, with odd and empty tensors.
    fn sizes() -> Vec<usize> {
        vec![
            3,
            GRAIN - 1,
            0,
            2 * GRAIN + 5,
            1,
            SEQUENTIAL_BELOW + 17,
            GRAIN / 3,
            4 * GRAIN,
            0,
            129,
        ]
    }

    fn data(n: usize, salt: u32) -> Vec<f32> {
        (0..n as u32)
            .map(|i| {
                let h = (i ^ salt).wrapping_mul(2_654_435_761) >> 9;
                (h as f32 / (1 << 23) as f32 - 0.5) * 4.0
            })
            .collect()
    }

    type Out = (Vec<f32>, Vec<f32>, Vec<f32>, Vec<f32>);

    fn run(exec: Exec<'_>, per_tensor: bool, mode: Mode) -> Out {
        let sizes = sizes();
        let total: usize = sizes.iter().sum();
        let offsets: Vec<usize> = std::iter::once(0)
            .chain(sizes.iter().scan(0, |a, &s| {
                *a += s;
                Some(*a)
            }))
            .collect();
        let v = Variant {
            centered: true,
            eps_in_sqrt: true,
            momentum: true,
            nesterov: true,
            bias_correction: true,
        };
        let f = select::<f32>(v, mode);
        let grads = data(total, 1);
        let mut dst = if mode == Mode::UpdateInPlace {
            grads.clone()
        } else {
            data(total, 2)
        };
        let mut nu: Vec<f32> = data(total, 3).iter().map(|x| x.abs()).collect();
        let mut mu = data(total, 4);
        let mut trace = data(total, 5);
        let g: &[f32] = if mode == Mode::UpdateInPlace {
            &[]
        } else {
            &grads
        };
        if per_tensor {
            let mut gl: Vec<&[f32]> = Vec::new();
            let mut dl: Vec<&mut [f32]> = Vec::new();
            let mut rest = &mut dst[..];
            for (i, &s) in sizes.iter().enumerate() {
                if !g.is_empty() {
                    gl.push(&g[offsets[i]..offsets[i + 1]]);
                }
                let (a, b) = rest.split_at_mut(s);
                dl.push(a);
                rest = b;
            }
            let b = ListBufs {
                grads: &gl,
                dst: &mut dl,
                nu: &mut nu,
                mu: &mut mu,
                trace: &mut trace,
            };
            run_list(exec, f, &coeffs(), b, &offsets);
        } else {
            let b = Bufs {
                grads: g,
                dst: &mut dst,
                nu: &mut nu,
                mu: &mut mu,
                trace: &mut trace,
            };
            run_flat(exec, f, &coeffs(), b);
        }
        (dst, nu, mu, trace)
    }

    /// Bit patterns (the centered variance goes negative for some elements: NaN != NaN).
    fn bits(o: &Out) -> [Vec<u32>; 4] {
        let b = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<u32>>();
        [b(&o.0), b(&o.1), b(&o.2), b(&o.3)]
    }

    /// Elementwise kernels: any split over any number of threads gives the sequential bits,
    /// for flat buffers and tensor lists alike (sizes straddle `GRAIN` and `SEQUENTIAL_BELOW`).
    #[test]
    fn parallel_runs_match_the_sequential_run() {
        let pool3 = rayon::ThreadPoolBuilder::new()
            .num_threads(3)
            .build()
            .unwrap();
        for mode in [Mode::Update, Mode::UpdateInPlace, Mode::Step] {
            let want = run(Exec::Sequential, false, mode);
            for exec in [Exec::Sequential, Exec::Global, Exec::Pool(&pool3)] {
                for per_tensor in [false, true] {
                    let got = run(exec, per_tensor, mode);
                    assert!(
                        bits(&got) == bits(&want),
                        "{mode:?} per_tensor={per_tensor}"
                    );
                }
            }
        }
    }
}

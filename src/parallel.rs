//! Running a kernel over the whole flat element space: sequentially for small steps,
//! otherwise split recursively into halves with `rayon::join`, across tensor
//! boundaries, down to a grain size. The kernels are elementwise, so the result is
//! bit-identical whatever the split and the thread count; nothing is allocated.

use crate::dispatch;
use crate::kernel::{Bufs, Coeffs, KernelFn};

/// Below this many elements a step runs on the caller's thread alone: waking
/// workers costs more than it saves (measured in `benches/step.rs`).
pub const SEQUENTIAL_BELOW: usize = 1 << 15;

/// Elements per leaf task. Large enough to amortise a task, small enough to balance
/// 2-16 threads at a few million elements. A multiple of 64 keeps SIMD chunks aligned.
pub const GRAIN: usize = 1 << 14;

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
    fn run(self, total: usize, f: impl FnOnce(bool) + Send) {
        match self {
            _ if total < SEQUENTIAL_BELOW => f(false),
            Exec::Sequential => f(false),
            Exec::Global => f(true),
            Exec::Pool(p) => p.install(|| f(true)),
        }
    }
}

fn flat<T: Send + Sync>(f: KernelFn<T>, k: &Coeffs<T>, b: Bufs<'_, T>, par: bool) {
    if !par || b.len() <= GRAIN {
        let _env = dispatch::KernelEnv::enter();
        f(k, b);
    } else {
        let mid = (b.len() / 2).next_multiple_of(64).min(b.len());
        let (l, r) = b.split_at(mid);
        rayon::join(|| flat(f, k, l, par), || flat(f, k, r, par));
    }
}

/// Run over one contiguous set of buffers.
pub fn run_flat<T: Send + Sync>(exec: Exec<'_>, f: KernelFn<T>, k: &Coeffs<T>, b: Bufs<'_, T>) {
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
fn list<T: Send + Sync>(
    f: KernelFn<T>,
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
        let _env = dispatch::KernelEnv::enter();
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
pub fn run_list<T: Send + Sync>(
    exec: Exec<'_>,
    f: KernelFn<T>,
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

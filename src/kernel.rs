//! The fused RMSProp kernel: one pass over the flat buffers per step.
//!
//! Each element is read once and written once. Per element, in the buffer's own
//! dtype, with the operation order and the multiply-add contractions of jitted optax
//! (`scale_by_rms` / `scale_by_stddev`, `scale_by_learning_rate`, `trace`):
//!
//! ```text
//! nu  = fma(1-decay, g*g, decay*nu)              update_moment_per_elem_norm, order 2
//! mu  = fma(1-decay, g,   decay*mu)              centered only (update_moment, order 1)
//! nh  = nu / (1 - decay^k)  (bias_correction)    mh likewise; the state keeps nu, mu
//! v   = fma(-mh, mh, nh)     (centered)           not clamped: may go negative -> NaN, as optax
//! s   = 1/sqrt(v + eps)     (eps_in_sqrt)        or 1/(sqrt(v) + eps)
//! u   = (-lr) * (s * g)
//! t   = fma(momentum, t, u); out = t             momentum only
//! out = fma(momentum, t, u)                      nesterov (with the new t)
//! dst = out  |  params + out                     update, or fused apply_updates
//! ```
//!
//! Two rewrites XLA applies in special cases are deliberately not copied, since they are
//! compiler artifacts: with exactly one non-empty tensor XLA multiplies by `1/(1 - decay^k)`
//! instead of dividing (copying it would make results depend on the layout, and sharded
//! training relies on a shard computing exactly what the same elements compute in the whole
//! model), and with `decay = 0.5` it factors `nu` into `fma(g, g, nu) * 0.5`. Both differ by
//! at most about one unit roundoff per step; `tests/optax_conformance.rs` bounds them.
//!
//! Every configuration gets its own monomorphised loop (const generic parameters), so
//! the inner loop never branches on the configuration.

use crate::dispatch::{self, Isa};
use crate::real::Real;

/// How the kernel reads gradients and writes its result.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// optax `update`: gradients from `grads`, updates written to `dst`.
    Update,
    /// optax `update` with the updates written over the gradients, which are read from `dst`.
    UpdateInPlace,
    /// optax `update` + `apply_updates`: gradients from `grads`, `dst` (the parameters) += update.
    Step,
}

const M_UPDATE: u8 = 0;
const M_IN_PLACE: u8 = 1;
const M_STEP: u8 = 2;

const MOM_NONE: u8 = 0;
const MOM_HEAVY: u8 = 1;
const MOM_NESTEROV: u8 = 2;

/// The per-step constants, each derived in `f64` and rounded once to the dtype, as XLA
/// folds optax's Python-float hyperparameters.
#[derive(Clone, Copy, Debug)]
pub struct Coeffs<T> {
    /// `1 - decay`.
    pub one_minus_decay: T,
    /// `decay`.
    pub decay: T,
    /// `eps`.
    pub eps: T,
    /// `-learning_rate` at this step's count.
    pub neg_lr: T,
    /// `momentum` (unused without momentum).
    pub momentum: T,
    /// `1 - decay^k` for the incremented bias-correction count (unused without bias correction).
    pub bias_correction: T,
}

/// The buffers of one contiguous run of elements. `grads` is empty in
/// [`Mode::UpdateInPlace`]; `mu` and `trace` are empty when the configuration has none.
#[derive(Debug)]
pub struct Bufs<'a, T> {
    /// Gradients (read only).
    pub grads: &'a [T],
    /// Updates out, gradients-then-updates, or parameters, depending on the mode.
    pub dst: &'a mut [T],
    /// Second moment.
    pub nu: &'a mut [T],
    /// First moment (centered only).
    pub mu: &'a mut [T],
    /// Momentum trace (momentum only).
    pub trace: &'a mut [T],
}

fn split_mut<T>(s: &mut [T], mid: usize) -> (&mut [T], &mut [T]) {
    if s.is_empty() {
        (&mut [], &mut [])
    } else {
        s.split_at_mut(mid)
    }
}

fn split<T>(s: &[T], mid: usize) -> (&[T], &[T]) {
    if s.is_empty() {
        (&[], &[])
    } else {
        s.split_at(mid)
    }
}

impl<'a, T> Bufs<'a, T> {
    /// Number of elements.
    pub fn len(&self) -> usize {
        self.dst.len()
    }

    /// `true` when there are no elements.
    pub fn is_empty(&self) -> bool {
        self.dst.is_empty()
    }

    /// Split every buffer at `mid` (empty optional buffers stay empty).
    pub fn split_at(self, mid: usize) -> (Bufs<'a, T>, Bufs<'a, T>) {
        let (g0, g1) = split(self.grads, mid);
        let (d0, d1) = self.dst.split_at_mut(mid);
        let (n0, n1) = split_mut(self.nu, mid);
        let (m0, m1) = split_mut(self.mu, mid);
        let (t0, t1) = split_mut(self.trace, mid);
        (
            Bufs {
                grads: g0,
                dst: d0,
                nu: n0,
                mu: m0,
                trace: t0,
            },
            Bufs {
                grads: g1,
                dst: d1,
                nu: n1,
                mu: m1,
                trace: t1,
            },
        )
    }
}

/// A monomorphised kernel for one configuration and mode.
pub type KernelFn<T> = fn(&Coeffs<T>, Bufs<'_, T>);

/// The static shape of a configuration: what the kernel specialises on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Variant {
    /// `centered`.
    pub centered: bool,
    /// `eps_in_sqrt`.
    pub eps_in_sqrt: bool,
    /// `momentum.is_some()`.
    pub momentum: bool,
    /// `nesterov` (only meaningful with momentum).
    pub nesterov: bool,
    /// `bias_correction`.
    pub bias_correction: bool,
}

/// The element loop. `#[inline(always)]` so that the SIMD wrappers of the dispatch
/// layer compile it with their target features.
#[inline(always)]
pub(crate) fn body<
    T: Real,
    const C: bool,
    const E: bool,
    const M: u8,
    const B: bool,
    const MODE: u8,
>(
    k: &Coeffs<T>,
    b: Bufs<'_, T>,
) {
    let n = b.dst.len();
    let dst = b.dst;
    let nu = &mut b.nu[..n];
    let grads = if MODE == M_IN_PLACE {
        &[][..]
    } else {
        &b.grads[..n]
    };
    let mu = if C { &mut b.mu[..n] } else { &mut [][..] };
    let trace = if M != MOM_NONE {
        &mut b.trace[..n]
    } else {
        &mut [][..]
    };
    for i in 0..n {
        let g = if MODE == M_IN_PLACE { dst[i] } else { grads[i] };
        let nu_new = k.one_minus_decay.mul_add(g * g, k.decay * nu[i]);
        nu[i] = nu_new;
        let nu_hat = if B {
            nu_new / k.bias_correction
        } else {
            nu_new
        };
        let var = if C {
            let mu_new = k.one_minus_decay.mul_add(g, k.decay * mu[i]);
            mu[i] = mu_new;
            let mu_hat = if B {
                mu_new / k.bias_correction
            } else {
                mu_new
            };
            // XLA contracts `nu_hat - mu_hat * mu_hat` into one FMA. Beyond the last bit this
            // matters for huge gradients: `inf - huge` is inf (update 0), `inf - inf` is NaN.
            (-mu_hat).mul_add(mu_hat, nu_hat)
        } else {
            nu_hat
        };
        let s = if E {
            T::ONE / (var + k.eps).sqrt()
        } else {
            T::ONE / (var.sqrt() + k.eps)
        };
        let u = k.neg_lr * (s * g);
        let out = if M == MOM_NONE {
            u
        } else {
            let t = k.momentum.mul_add(trace[i], u);
            trace[i] = t;
            if M == MOM_NESTEROV {
                k.momentum.mul_add(t, u)
            } else {
                t
            }
        };
        dst[i] = if MODE == M_STEP { dst[i] + out } else { out };
    }
}

/// The loop of one configuration and mode, compiled for `isa` (see [`crate::dispatch`]).
fn kernel<T: Real, const C: bool, const E: bool, const M: u8, const B: bool, const MODE: u8>(
    isa: Isa,
) -> KernelFn<T> {
    dispatch::entry::<T, C, E, M, B, MODE>(isa)
}

macro_rules! pick {
    // Resolve one run-time flag into a const parameter at a time.
    ($v:ident, $mode:ident, $isa:ident) => {
        pick!(@c $v, $mode, $isa)
    };
    (@c $v:ident, $mode:ident, $isa:ident) => {
        if $v.centered { pick!(@e $v, $mode, $isa, true) } else { pick!(@e $v, $mode, $isa, false) }
    };
    (@e $v:ident, $mode:ident, $isa:ident, $c:tt) => {
        if $v.eps_in_sqrt {
            pick!(@m $v, $mode, $isa, $c, true)
        } else {
            pick!(@m $v, $mode, $isa, $c, false)
        }
    };
    (@m $v:ident, $mode:ident, $isa:ident, $c:tt, $e:tt) => {
        if !$v.momentum {
            pick!(@b $v, $mode, $isa, $c, $e, MOM_NONE)
        } else if $v.nesterov {
            pick!(@b $v, $mode, $isa, $c, $e, MOM_NESTEROV)
        } else {
            pick!(@b $v, $mode, $isa, $c, $e, MOM_HEAVY)
        }
    };
    (@b $v:ident, $mode:ident, $isa:ident, $c:tt, $e:tt, $m:ident) => {
        if $v.bias_correction {
            pick!(@mode $mode, $isa, $c, $e, $m, true)
        } else {
            pick!(@mode $mode, $isa, $c, $e, $m, false)
        }
    };
    (@mode $mode:ident, $isa:ident, $c:tt, $e:tt, $m:ident, $b:tt) => {
        match $mode {
            Mode::Update => kernel::<T, $c, $e, $m, $b, M_UPDATE>($isa),
            Mode::UpdateInPlace => kernel::<T, $c, $e, $m, $b, M_IN_PLACE>($isa),
            Mode::Step => kernel::<T, $c, $e, $m, $b, M_STEP>($isa),
        }
    };
}

/// The specialised kernel for a variant and mode, compiled for the instruction set chosen
/// once per process (AVX2+FMA where the CPU has it, else the baseline; AVX-512 on request;
/// see `dispatch`). Chosen once per step, never per element. Every instruction set gives
/// bit-identical results.
pub fn select<T: Real>(v: Variant, mode: Mode) -> KernelFn<T> {
    select_for(dispatch::active(), v, mode)
}

/// [`select`] for a given instruction-set level (the baseline where the CPU lacks it).
pub(crate) fn select_for<T: Real>(isa: Isa, v: Variant, mode: Mode) -> KernelFn<T> {
    pick!(v, mode, isa)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn coeffs() -> Coeffs<f64> {
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
        let k = coeffs();
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
        let k = coeffs();
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
}

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
//!
//! Files, each depending only on the ones below it (no import circle):
//! - `split`: running a kernel over a whole step, split over threads ([`split`]);
//! - `select`: the run-time choice of instruction set and monomorphised loop ([`select()`]);
//! - `simd`: the loop compiled per instruction set (AVX2+FMA, AVX-512, baseline), `unsafe`;
//! - `fpenv`: the FTZ/DAZ floating-point environment of a kernel call, `unsafe`;
//! - `body`: the generic element loop;
//! - `q8`: the same loop run block by block over 8-bit block-wise state ([`q8`]);
//! - this file: the types they share ([`Mode`], [`Coeffs`], [`Bufs`], [`Variant`], [`KernelFn`]).

mod body;
pub(crate) mod fpenv;
pub mod q8;
mod select;
mod simd;
pub mod split;

#[cfg(test)]
mod tests;

pub use select::select;
#[cfg(test)]
use select::{Isa, select_for};

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

pub(crate) const M_UPDATE: u8 = 0;
pub(crate) const M_IN_PLACE: u8 = 1;
pub(crate) const M_STEP: u8 = 2;

pub(crate) const MOM_NONE: u8 = 0;
pub(crate) const MOM_HEAVY: u8 = 1;
pub(crate) const MOM_NESTEROV: u8 = 2;

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

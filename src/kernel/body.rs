//! The element loop: one generic function for every dtype, variant, mode and instruction
//! set. The formulas and their operation order are documented in [`super`].
//!
//! `body` is `#[inline(always)]`: it has no code of its own, it is compiled into each
//! wrapper of [`super::simd`] with that wrapper's target features.

use super::{Bufs, Coeffs, M_IN_PLACE, M_STEP, MOM_NESTEROV, MOM_NONE};
use crate::element::Real;

/// The element loop. `#[inline(always)]` so that the SIMD wrappers
/// compile it with their target features.
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
            T::bias_correct(nu_new, k.bias_correction)
        } else {
            nu_new
        };
        let var = if C {
            let mu_new = k.one_minus_decay.mul_add(g, k.decay * mu[i]);
            mu[i] = mu_new;
            let mu_hat = if B {
                T::bias_correct(mu_new, k.bias_correction)
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
            (var + k.eps).rsqrt()
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

//! Framework presets: another framework's RMSProp, operation for operation.
//!
//! # PyTorch (`torch.optim.RMSprop`, CPU, float32 and float64)
//! Per element, in torch's order, each line one ATen kernel as this build computes it
//! (measured against torch 2.15 on x86-64 with AVX-512, `tools/gen_framework_fixtures.py`):
//!
//! ```text
//! g   = -g                                   maximize
//! g   = fma(wd, p, g)                        grad.add(param, alpha=wd)  (vectorised fmadd)
//! sa  = fma((1-alpha)*g, g, sa*alpha)        square_avg.mul_(alpha).addcmul_(g, g, 1-alpha)
//! ga  = fma(w, g - ga, ga)                   grad_avg.lerp_(g, w = 1-alpha)   (w < 0.5;
//!       g - fma(1-w, g - ga, ...)            ATen's other lerp form for w >= 0.5) centered
//! avg = sqrt(fma(-ga, ga, sa)) | sqrt(sa)    addcmul(ga, ga, value=-1).sqrt_()  | sqrt()
//! avg = avg + eps                            add_(eps)
//! buf = buf*m + g/avg; p = fma(-lr, buf, p)  momentum > 0: mul_, addcdiv_, add_(alpha=-lr)
//! p   = p + ((-lr)*g)/avg                    otherwise: addcdiv_(g, avg, value=-lr)
//! ```
//!
//! State: `nu` is torch's `square_avg`, `mu` its `grad_avg` (centered), `trace` its
//! `momentum_buffer`; the learning rate is outside the buffer, so changing it between steps
//! (`torch.optim.lr_scheduler`, here `Optimizer::set_learning_rate`) acts as in torch.
//!
//! # TF1 (`tf.compat.v1.train.RMSPropOptimizer`, CPU kernels `ApplyRMSProp` and
//! `ApplyCenteredRMSProp`, float32 and float64)
//! Every operation separately rounded (Eigen evaluates these expressions without fusing;
//! measured against tensorflow-cpu 2.21's kernels: 0 mismatches), the constants cast to the
//! dtype first, so `1 - rho` is computed in the dtype:
//!
//! ```text
//! ms  = ms + (g*g - ms) * (1 - rho)
//! mg  = mg + (g - mg) * (1 - rho)                 centered
//! den = (ms - mg*mg) + eps  |  ms + eps
//! mom = mom*momentum + (g*lr) / sqrt(den)
//! var = var - mom
//! ```
//!
//! State: `nu` is TF's `ms` (TF initializes it to ones: set `initial_scale` 1.0), `mu` its
//! `mg`, `trace` its `mom` (set a momentum, 0.0 included, to keep the slot; without one
//! `mom` is just this step's term).
//!
//! # Keras 3 (`keras.optimizers.RMSprop`, TensorFlow backend, eager `apply_gradients`)
//! `update_step` as written, each `ops.*` call one separately rounded TensorFlow kernel,
//! Python-float constants (`rho`, `1 - rho` folded in double, `epsilon`, `momentum`) cast
//! to the dtype:
//!
//! ```text
//! v   = rho*v + (1 - rho)*(g*g)
//! a   = rho*a + (1 - rho)*g                       centered
//! den = (v - a*a) + eps  |  v + eps
//! inc = (lr*g) / sqrt(den)
//! m   = momentum*m + inc; var = var - m          momentum > 0;  else var = var - inc
//! ```
//!
//! State: `nu` is Keras' `velocity`, `mu` its `average_gradient`, `trace` its `momentum`.
//! Keras' `weight_decay` is this library's decoupled decay (`var - var*wd*lr`, applied
//! first). Keras' jitted path (`jit_compile=True`, the jax backend's `model.fit`) lets XLA
//! fuse these operations and gives other bits; the eager TensorFlow path is the one
//! reproduced.
//!
//! **PyTorch is not bit for bit in one place:** torch's CPU `sqrt` is not correctly rounded on this
//! build (it differs from IEEE `sqrt` by 1 ulp on about 20% of float32 and 1.4% of float64
//! inputs: a vendor math routine); the library uses IEEE `sqrt`. Everything else is exact,
//! so a step differs by at most the effect of one ulp of `avg`, propagated (bounded in
//! `tests/framework_conformance.rs`).

use crate::element::Real;
use crate::kernel::{Bufs, Mode};
use crate::transform::{Place, Pre, grad};

/// Which framework's RMSProp a handle computes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Flavor {
    /// `optax.rmsprop` (the default).
    #[default]
    Optax = 0,
    /// `torch.optim.RMSprop`.
    PyTorch = 1,
    /// Keras 3 `keras.optimizers.RMSprop` (TensorFlow backend, eager).
    Keras = 2,
    /// TF1 `tf.compat.v1.train.RMSPropOptimizer` (`ApplyRMSProp` / `ApplyCenteredRMSProp`).
    Tf1 = 3,
}

impl Flavor {
    /// The flavor with this C enum value (only those implemented).
    pub fn from_i32(v: i32) -> Option<Self> {
        match v {
            0 => Some(Flavor::Optax),
            1 => Some(Flavor::PyTorch),
            2 => Some(Flavor::Keras),
            3 => Some(Flavor::Tf1),
            _ => None,
        }
    }
}

/// The per-step constants of the PyTorch flavor, in the compute dtype (each Python float
/// argument rounded once, as torch casts a Python scalar to the tensor's dtype).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Torch<T> {
    pub(crate) alpha: T,
    pub(crate) one_minus_alpha: T,
    /// `1 - (1 - alpha)` as ATen's lerp computes it in the dtype.
    pub(crate) lerp_rest: T,
    pub(crate) eps: T,
    pub(crate) momentum: T,
    pub(crate) neg_lr: T,
    pub(crate) centered: bool,
    pub(crate) use_momentum: bool,
    /// `|1 - alpha| < 0.5`: which of ATen's two lerp forms runs.
    pub(crate) lerp_small: bool,
}

impl<T: Real> Torch<T> {
    /// The constants of a step with learning rate `lr` (torch's `lr` for this step).
    pub(crate) fn new(c: &crate::config::Config, lr: T) -> Self {
        let w = T::from_f64(1.0 - c.decay);
        let m = c.momentum.unwrap_or(0.0);
        Torch {
            alpha: T::from_f64(c.decay),
            one_minus_alpha: w,
            lerp_rest: T::ONE - w,
            eps: T::from_f64(c.eps),
            momentum: T::from_f64(m),
            neg_lr: -lr,
            centered: c.centered,
            use_momentum: m > 0.0,
            lerp_small: (1.0 - c.decay).abs() < 0.5,
        }
    }
}

/// One kernel leaf of the PyTorch flavor (transforms included).
#[inline(never)]
pub(crate) fn torch_leaf<T: Real>(
    k: &Torch<T>,
    x: &Pre<T>,
    mode: Mode,
    at: Place<'_>,
    b: Bufs<'_, T>,
) {
    let mut pos = (b.nu.as_ptr().addr() - at.nu_base) / size_of::<T>();
    let mut rest = b;
    while !rest.is_empty() {
        let (tensor, end) = at.tensor_at(pos);
        let len = rest.len().min(end - pos);
        let decay = at.decayed(tensor);
        let (head, tail) = rest.split_at(len);
        rest = tail;
        pos += len;
        for i in 0..len {
            let p = if mode == Mode::Step {
                head.dst[i]
            } else {
                T::ZERO
            };
            // Decoupled decay (Keras style; torch's RMSprop has none) before the step.
            let p_dec = match x.decoupled {
                Some((wd, lr)) if decay && mode == Mode::Step => p - (p * wd) * lr,
                _ => p,
            };
            let g0 = if mode == Mode::UpdateInPlace {
                head.dst[i]
            } else {
                head.grads[i]
            };
            let g = grad(x, g0, p, decay && mode == Mode::Step);
            let sa = (k.one_minus_alpha * g).mul_add(g, head.nu[i] * k.alpha);
            head.nu[i] = sa;
            let var = if k.centered {
                let ga = head.mu[i];
                let d = g - ga;
                let ga = if k.lerp_small {
                    k.one_minus_alpha.mul_add(d, ga)
                } else {
                    (-k.lerp_rest).mul_add(d, g)
                };
                head.mu[i] = ga;
                (-ga).mul_add(ga, sa)
            } else {
                sa
            };
            let avg = var.sqrt() + k.eps;
            let (out, new_p) = if k.use_momentum {
                let buf = head.trace[i] * k.momentum + g / avg;
                head.trace[i] = buf;
                (k.neg_lr * buf, k.neg_lr.mul_add(buf, p_dec))
            } else {
                let u = (k.neg_lr * g) / avg;
                (u, p_dec + u)
            };
            head.dst[i] = if mode == Mode::Step { new_p } else { out };
        }
    }
}

/// The per-step constants of the TF1 flavor, in the compute dtype.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Tf1<T> {
    pub(crate) one_minus_rho: T,
    pub(crate) eps: T,
    pub(crate) momentum: T,
    pub(crate) lr: T,
    pub(crate) centered: bool,
    pub(crate) has_mom: bool,
}

impl<T: Real> Tf1<T> {
    /// The constants of a step with learning rate `lr`.
    pub(crate) fn new(c: &crate::config::Config, lr: T) -> Self {
        Tf1 {
            one_minus_rho: T::ONE - T::from_f64(c.decay),
            eps: T::from_f64(c.eps),
            momentum: T::from_f64(c.momentum.unwrap_or(0.0)),
            lr,
            centered: c.centered,
            has_mom: c.momentum.is_some(),
        }
    }
}

/// One kernel leaf of the TF1 flavor (transforms included).
#[inline(never)]
pub(crate) fn tf1_leaf<T: Real>(k: &Tf1<T>, x: &Pre<T>, mode: Mode, at: Place<'_>, b: Bufs<'_, T>) {
    let mut pos = (b.nu.as_ptr().addr() - at.nu_base) / size_of::<T>();
    let mut rest = b;
    while !rest.is_empty() {
        let (tensor, end) = at.tensor_at(pos);
        let len = rest.len().min(end - pos);
        let decay = at.decayed(tensor);
        let (head, tail) = rest.split_at(len);
        rest = tail;
        pos += len;
        for i in 0..len {
            let p = if mode == Mode::Step {
                head.dst[i]
            } else {
                T::ZERO
            };
            let p_dec = match x.decoupled {
                Some((wd, lr)) if decay && mode == Mode::Step => p - (p * wd) * lr,
                _ => p,
            };
            let g0 = if mode == Mode::UpdateInPlace {
                head.dst[i]
            } else {
                head.grads[i]
            };
            let g = grad(x, g0, p, decay && mode == Mode::Step);
            let ms = head.nu[i] + (g * g - head.nu[i]) * k.one_minus_rho;
            head.nu[i] = ms;
            let den = if k.centered {
                let mg = head.mu[i] + (g - head.mu[i]) * k.one_minus_rho;
                head.mu[i] = mg;
                (ms - mg * mg) + k.eps
            } else {
                ms + k.eps
            };
            let step = (g * k.lr) / den.sqrt();
            let mom = if k.has_mom {
                let m = head.trace[i] * k.momentum + step;
                head.trace[i] = m;
                m
            } else {
                step
            };
            head.dst[i] = if mode == Mode::Step {
                p_dec - mom
            } else {
                -mom
            };
        }
    }
}

/// The per-step constants of the Keras flavor, in the compute dtype.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Keras<T> {
    pub(crate) rho: T,
    pub(crate) one_minus_rho: T,
    pub(crate) eps: T,
    pub(crate) momentum: T,
    pub(crate) lr: T,
    pub(crate) centered: bool,
    pub(crate) use_momentum: bool,
}

impl<T: Real> Keras<T> {
    /// The constants of a step with learning rate `lr`.
    pub(crate) fn new(c: &crate::config::Config, lr: T) -> Self {
        let m = c.momentum.unwrap_or(0.0);
        Keras {
            rho: T::from_f64(c.decay),
            one_minus_rho: T::from_f64(1.0 - c.decay),
            eps: T::from_f64(c.eps),
            momentum: T::from_f64(m),
            lr,
            centered: c.centered,
            use_momentum: m > 0.0,
        }
    }
}

/// One kernel leaf of the Keras flavor (transforms included).
#[inline(never)]
pub(crate) fn keras_leaf<T: Real>(
    k: &Keras<T>,
    x: &Pre<T>,
    mode: Mode,
    at: Place<'_>,
    b: Bufs<'_, T>,
) {
    let mut pos = (b.nu.as_ptr().addr() - at.nu_base) / size_of::<T>();
    let mut rest = b;
    while !rest.is_empty() {
        let (tensor, end) = at.tensor_at(pos);
        let len = rest.len().min(end - pos);
        let decay = at.decayed(tensor);
        let (head, tail) = rest.split_at(len);
        rest = tail;
        pos += len;
        for i in 0..len {
            let p = if mode == Mode::Step {
                head.dst[i]
            } else {
                T::ZERO
            };
            let p_dec = match x.decoupled {
                Some((wd, lr)) if decay && mode == Mode::Step => p - (p * wd) * lr,
                _ => p,
            };
            let g0 = if mode == Mode::UpdateInPlace {
                head.dst[i]
            } else {
                head.grads[i]
            };
            let g = grad(x, g0, p, decay && mode == Mode::Step);
            let v = k.rho * head.nu[i] + k.one_minus_rho * (g * g);
            head.nu[i] = v;
            let den = if k.centered {
                let a = k.rho * head.mu[i] + k.one_minus_rho * g;
                head.mu[i] = a;
                (v - a * a) + k.eps
            } else {
                v + k.eps
            };
            let inc = (k.lr * g) / den.sqrt();
            let step = if k.use_momentum {
                let m = k.momentum * head.trace[i] + inc;
                head.trace[i] = m;
                m
            } else {
                inc
            };
            head.dst[i] = if mode == Mode::Step {
                p_dec - step
            } else {
                -step
            };
        }
    }
}

//! Gradient transforms applied in front of RMSProp, inside the fused step.
//!
//! Composed exactly as optax composes them, in this fixed order:
//!
//! ```text
//! g = -g                                  maximize (PyTorch `maximize=True`)
//! g = select(norm < max_norm, g, (g / norm) * max_norm)
//!                                         optax.clip_by_global_norm(max_norm)
//! g = min(max(g, -max_delta), max_delta)  optax.clip(max_delta)
//! g = g + wd * p                          coupled weight decay: optax.add_decayed_weights(wd,
//!                                         mask) before rmsprop, PyTorch `weight_decay`
//! ... rmsprop on g ...
//! p = (p - (p * wd) * lr) + update        decoupled weight decay: Keras 3 `weight_decay`
//!                                         (applied to the variables before the update step)
//! ```
//!
//! that is `optax.chain(clip_by_global_norm, clip, add_decayed_weights, rmsprop)`: every
//! transform written as optax's (or Keras') source writes it, one IEEE rounding per
//! operation, no fused multiply-add (`g + wd * p` is two roundings: `tests/
//! framework_conformance.rs` checks it against jitted optax).
//!
//! # Fused, and free when off
//! The elementwise transforms run per block of [`BLOCK`] elements inside each kernel leaf:
//! the block's transformed gradients go to a stack buffer that stays in L1, then the
//! unchanged RMSProp kernel runs on the block. Gradients and parameters are read from
//! memory once. With no transform set, the optimizer calls the plain kernel: nothing here
//! runs.
//!
//! # The global norm: a fixed reduction order
//! `clip_by_global_norm` needs the norm of all gradients of the step before any element can
//! be updated: one extra read of the gradients. Its value is bit-identical for every thread
//! count, layout split and entry point (flat or per tensor), because the summation order
//! depends only on the flat element index:
//! 1. the flat element space (all tensors, in order) is cut into blocks of [`NORM_BLOCK`]
//!    elements (the last one shorter);
//! 2. in a block, element `i` is squared in `f64` and added to lane `i % 8` of eight `f64`
//!    accumulators, in increasing `i`; the lanes are then combined as
//!    `((l0 + l1) + (l2 + l3)) + ((l4 + l5) + (l6 + l7))`;
//! 3. block sums are added in block order, from `0.0`, in `f64`;
//! 4. `norm = sqrt(sum)` in `f64`, rounded once to the parameters' dtype.
//!
//! Blocks are summed in parallel (step 2), the rest is sequential. For `f32` gradients the
//! squares are exact and the `f64` sum carries 29 extra bits, so the norm is the correctly
//! rounded norm in all but astronomically rare cases. optax computes the sum in the
//! gradients' dtype in XLA's own (unspecified) reduction order, so its norm may differ from
//! this one by a few units in the last place: measured and bounded in
//! `tests/framework_conformance.rs`.

use crate::element::Real;
use crate::error::{Error, Result};
use crate::kernel::split::Exec;
use crate::kernel::{Bufs, Coeffs, KernelFn, Mode};

/// Elements per transform block: the stack buffer of transformed gradients (16 KiB f32,
/// 32 KiB f64 at most: L1-sized).
pub const BLOCK: usize = 2048;

/// Elements per block of the global-norm reduction (see the module documentation). Part of
/// the documented summation order: changing it changes the last bits of the norm.
pub const NORM_BLOCK: usize = 4096;

/// How weight decay is applied.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WeightDecayKind {
    /// Added to the gradient before the moments: `g + wd * p` (optax `add_decayed_weights`
    /// chained before `rmsprop`, PyTorch `RMSprop(weight_decay=...)`).
    Coupled = 0,
    /// Applied to the parameters, scaled by the learning rate: `p - (p * wd) * lr` before the
    /// update is added (Keras 3 `weight_decay`, AdamW style).
    Decoupled = 1,
}

impl WeightDecayKind {
    /// The kind with this C enum value.
    pub fn from_i32(v: i32) -> Option<Self> {
        match v {
            0 => Some(WeightDecayKind::Coupled),
            1 => Some(WeightDecayKind::Decoupled),
            _ => None,
        }
    }
}

/// The gradient transforms of an optimizer. The default is none of them.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Transforms {
    /// Negate the gradients first (PyTorch `maximize`).
    pub maximize: bool,
    /// `optax.clip(max_delta)`; `None` = off.
    pub clip: Option<f64>,
    /// `optax.clip_by_global_norm(max_norm)`; `None` = off.
    pub clip_by_global_norm: Option<f64>,
    /// The weight decay factor; `0` = off (optax skips a constant zero decay too).
    pub weight_decay: f64,
    /// How the weight decay is applied.
    pub weight_decay_kind: WeightDecayKind,
}

impl Default for Transforms {
    fn default() -> Self {
        Transforms {
            maximize: false,
            clip: None,
            clip_by_global_norm: None,
            weight_decay: 0.0,
            weight_decay_kind: WeightDecayKind::Coupled,
        }
    }
}

fn non_negative(name: &'static str, v: f64) -> Result<()> {
    if v >= 0.0 && !v.is_nan() {
        Ok(())
    } else {
        Err(Error::InvalidHyperparameter {
            name,
            rule: "finite and >= 0, or +infinity (off)",
            value: v,
        })
    }
}

impl Transforms {
    /// `true` when no transform is set: the plain kernel runs.
    pub fn is_identity(&self) -> bool {
        !self.maximize
            && self.clip.is_none()
            && self.clip_by_global_norm.is_none()
            && self.weight_decay == 0.0
    }

    /// `true` when the step needs the parameters (any weight decay).
    pub fn needs_params(&self) -> bool {
        self.weight_decay != 0.0
    }

    /// Set `optax.clip(max_delta)`: `max_delta >= 0`; `+infinity` turns it off (clipping to
    /// `[-inf, inf]` changes nothing). On error nothing changes.
    pub fn set_clip(&mut self, max_delta: f64) -> Result<()> {
        non_negative("max_delta", max_delta)?;
        self.clip = (max_delta != f64::INFINITY).then_some(max_delta);
        Ok(())
    }

    /// Set `optax.clip_by_global_norm(max_norm)`: `max_norm >= 0`; `+infinity` turns it
    /// off (optax with `max_norm = inf` differs only when the norm itself is inf or NaN: it
    /// then divides, giving NaN). On error nothing changes.
    pub fn set_clip_by_global_norm(&mut self, max_norm: f64) -> Result<()> {
        non_negative("max_norm", max_norm)?;
        self.clip_by_global_norm = (max_norm != f64::INFINITY).then_some(max_norm);
        Ok(())
    }

    /// Set the weight decay (finite, any sign as optax allows; `0` = off) and its kind.
    pub fn set_weight_decay(&mut self, wd: f64, kind: WeightDecayKind) -> Result<()> {
        if !wd.is_finite() {
            return Err(Error::InvalidHyperparameter {
                name: "weight_decay",
                rule: "finite",
                value: wd,
            });
        }
        self.weight_decay = wd;
        self.weight_decay_kind = kind;
        Ok(())
    }

    /// Check every value (for transforms built field by field, e.g. from a checkpoint).
    pub fn validate(&self) -> Result<()> {
        if let Some(d) = self.clip {
            non_negative("max_delta", d)?;
        }
        if let Some(n) = self.clip_by_global_norm {
            non_negative("max_norm", n)?;
        }
        let mut t = Transforms::default();
        t.set_weight_decay(self.weight_decay, self.weight_decay_kind)
    }
}

/// One step's transform constants, in the compute dtype.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Pre<T> {
    pub(crate) maximize: bool,
    /// `(norm, max_norm)` when the global norm clip triggers (`!(norm < max_norm)`).
    pub(crate) rescale: Option<(T, T)>,
    pub(crate) clip: Option<T>,
    /// Coupled weight decay factor (`None`: off or decoupled).
    pub(crate) coupled: Option<T>,
    /// Decoupled `(wd, lr)` (`None`: off or coupled).
    pub(crate) decoupled: Option<(T, T)>,
    /// Coupled decay as one fused multiply-add (PyTorch's `grad.add(param, alpha=wd)`)
    /// instead of optax's `g + wd * p`.
    pub(crate) fused_decay: bool,
}

impl<T: Real> Pre<T> {
    /// The constants of a step: `norm` is the step's global norm (when clipping by it),
    /// `lr` the learning rate the step uses.
    pub(crate) fn new(t: &Transforms, norm: Option<T>, lr: T) -> Self {
        let rescale = match (t.clip_by_global_norm, norm) {
            (Some(max), Some(n)) => {
                let max = T::from_f64(max);
                // optax: `select(g_norm < max_norm, t, (t / g_norm) * max_norm)`; a NaN
                // norm rescales (to NaN), as optax does.
                if n < max { None } else { Some((n, max)) }
            }
            _ => None,
        };
        let wd = (t.weight_decay != 0.0).then(|| T::from_f64(t.weight_decay));
        Pre {
            maximize: t.maximize,
            rescale,
            clip: t.clip.map(T::from_f64),
            coupled: wd.filter(|_| t.weight_decay_kind == WeightDecayKind::Coupled),
            decoupled: wd
                .filter(|_| t.weight_decay_kind == WeightDecayKind::Decoupled)
                .map(|w| (w, lr)),
            fused_decay: false,
        }
    }
}

/// The transformed gradient of one element (`p`: its parameter, used by coupled decay when
/// `decay` is set for its tensor).
#[inline(always)]
pub(crate) fn grad<T: Real>(x: &Pre<T>, g: T, p: T, decay: bool) -> T {
    let mut g = if x.maximize { -g } else { g };
    if let Some((n, m)) = x.rescale {
        g = (g / n) * m;
    }
    if let Some(d) = x.clip {
        // jnp.clip: maximum(min, x) then minimum(max, x), NaN propagating.
        g = g.max_nan(-d).min_nan(d);
    }
    if decay && let Some(wd) = x.coupled {
        g = if x.fused_decay {
            wd.mul_add(p, g)
        } else {
            g + wd * p
        };
    }
    g
}

/// Where a kernel leaf's elements sit in the flat element space, for the per-tensor mask.
#[derive(Clone, Copy)]
pub(crate) struct Place<'a> {
    /// Address of the optimizer's flat `nu` buffer: every leaf gets a sub-slice of it, so
    /// its offset there is the leaf's flat index (layout independent, list or flat).
    pub(crate) nu_base: usize,
    /// The layout's prefix sums.
    pub(crate) offsets: &'a [usize],
    /// Per-tensor weight decay mask (`true` = decayed); empty = every tensor decayed.
    pub(crate) mask: &'a [bool],
}

impl Place<'_> {
    /// The tensor holding flat element `pos`, and the flat index where it ends.
    pub(crate) fn tensor_at(&self, pos: usize) -> (usize, usize) {
        let t = self.offsets.partition_point(|&o| o <= pos) - 1;
        (t, self.offsets[t + 1])
    }

    pub(crate) fn decayed(&self, tensor: usize) -> bool {
        self.mask.get(tensor).copied().unwrap_or(true)
    }
}

/// Transform one block in place: `s` holds the raw gradients on entry (`p`: the block's
/// parameters, or empty). One simple loop per transform, so each vectorises; the same
/// operations, in the same order, as [`grad`].
#[inline(always)]
fn transform_block<T: Real>(x: &Pre<T>, s: &mut [T], p: &[T], decay: bool) {
    if x.maximize {
        for g in s.iter_mut() {
            *g = -*g;
        }
    }
    if let Some((n, m)) = x.rescale {
        for g in s.iter_mut() {
            *g = (*g / n) * m;
        }
    }
    if let Some(d) = x.clip {
        let lo = -d;
        for g in s.iter_mut() {
            // jnp.clip: NaN stays NaN (both comparisons are false).
            let v = *g;
            *g = if v < lo {
                lo
            } else if v > d {
                d
            } else {
                v
            };
        }
    }
    if decay
        && !p.is_empty()
        && let Some(wd) = x.coupled
    {
        if x.fused_decay {
            for (g, &p) in s.iter_mut().zip(p) {
                *g = wd.mul_add(p, *g);
            }
        } else {
            for (g, &p) in s.iter_mut().zip(p) {
                *g = *g + wd * p;
            }
        }
    }
}

/// A kernel leaf with the transforms in front: per block, transform the gradients into a
/// stack buffer (and apply decoupled decay to the parameters), then run `f` on the block.
#[inline(always)]
fn leaf_body<T: Real>(
    f: KernelFn<T>,
    x: &Pre<T>,
    mode: Mode,
    at: Place<'_>,
    k: &Coeffs<T>,
    b: Bufs<'_, T>,
) {
    let mut scratch = [T::ZERO; BLOCK];
    let mut pos = (b.nu.as_ptr().addr() - at.nu_base) / size_of::<T>();
    let mut rest = b;
    while !rest.is_empty() {
        let (tensor, end) = at.tensor_at(pos);
        let len = rest.len().min(BLOCK).min(end - pos);
        let decay = at.decayed(tensor);
        let (head, tail) = rest.split_at(len);
        rest = tail;
        pos += len;
        match mode {
            Mode::UpdateInPlace => {
                // No parameters here: the optimizer rejects weight decay for this mode.
                transform_block(x, head.dst, &[], false);
                f(k, head);
            }
            Mode::Update => {
                scratch[..len].copy_from_slice(head.grads);
                transform_block(x, &mut scratch[..len], &[], false);
                f(
                    k,
                    Bufs {
                        grads: &scratch[..len],
                        ..head
                    },
                );
            }
            Mode::Step => {
                scratch[..len].copy_from_slice(head.grads);
                transform_block(x, &mut scratch[..len], head.dst, decay);
                if decay && let Some((wd, lr)) = x.decoupled {
                    for p in head.dst.iter_mut() {
                        *p = *p - (*p * wd) * lr;
                    }
                }
                f(
                    k,
                    Bufs {
                        grads: &scratch[..len],
                        ..head
                    },
                );
            }
        }
    }
}

/// [`leaf_body`] compiled for AVX2 + FMA (vector width, and `mul_add` as one instruction
/// instead of a libm call).
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
fn leaf_avx2<T: Real>(
    f: KernelFn<T>,
    x: &Pre<T>,
    mode: Mode,
    at: Place<'_>,
    k: &Coeffs<T>,
    b: Bufs<'_, T>,
) {
    leaf_body(f, x, mode, at, k, b)
}

/// A kernel leaf with the transforms in front (see [`leaf_body`]). The transforms use only
/// correctly rounded IEEE operations, so every instruction set gives the same bits.
#[inline(never)]
pub(crate) fn leaf<T: Real>(
    f: KernelFn<T>,
    x: &Pre<T>,
    mode: Mode,
    at: Place<'_>,
    k: &Coeffs<T>,
    b: Bufs<'_, T>,
) {
    #[cfg(target_arch = "x86_64")]
    if has_avx2() {
        // SAFETY: the CPU has AVX2 and FMA (checked at run time just above).
        #[allow(unsafe_code)]
        return unsafe { leaf_avx2(f, x, mode, at, k, b) };
    }
    leaf_body(f, x, mode, at, k, b)
}

#[cfg(target_arch = "x86_64")]
fn has_avx2() -> bool {
    std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("fma")
}

/// Add the squares of `s` (whose first element has flat index `≡ lane0 (mod 8)`) into the
/// eight lanes.
#[inline(always)]
fn accumulate<T: Real>(lanes: &mut [f64; 8], lane0: usize, s: &[T]) {
    let head = ((8 - lane0) % 8).min(s.len());
    for (j, &g) in s[..head].iter().enumerate() {
        let v = g.to_f64();
        lanes[lane0 + j] += v * v;
    }
    let mut chunks = s[head..].chunks_exact(8);
    for c in &mut chunks {
        for j in 0..8 {
            let v = c[j].to_f64();
            lanes[j] += v * v;
        }
    }
    for (j, &g) in chunks.remainder().iter().enumerate() {
        let v = g.to_f64();
        lanes[j] += v * v;
    }
}

/// [`block_sum_body`], compiled for AVX2 where the CPU has it (same bits: IEEE adds and
/// multiplies in the same order).
fn block_sum<T: Real>(grads: &[&[T]], offsets: &[usize], start: usize, end: usize) -> f64 {
    #[cfg(target_arch = "x86_64")]
    if has_avx2() {
        // SAFETY: the CPU has AVX2 and FMA (checked at run time just above).
        #[allow(unsafe_code)]
        return unsafe { block_sum_avx2(grads, offsets, start, end) };
    }
    block_sum_body(grads, offsets, start, end)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
fn block_sum_avx2<T: Real>(grads: &[&[T]], offsets: &[usize], start: usize, end: usize) -> f64 {
    block_sum_body(grads, offsets, start, end)
}

/// The sum of squares of flat elements `[start, end)` (one block), in the documented order.
#[inline(always)]
fn block_sum_body<T: Real>(grads: &[&[T]], offsets: &[usize], start: usize, end: usize) -> f64 {
    let mut lanes = [0.0f64; 8];
    let mut pos = start;
    while pos < end {
        let t = offsets.partition_point(|&o| o <= pos) - 1;
        let stop = end.min(offsets[t + 1]);
        accumulate(
            &mut lanes,
            pos % 8,
            &grads[t][pos - offsets[t]..stop - offsets[t]],
        );
        pos = stop;
    }
    let l = lanes;
    ((l[0] + l[1]) + (l[2] + l[3])) + ((l[4] + l[5]) + (l[6] + l[7]))
}

/// The global L2 norm of `grads` (one slice per tensor, flat element space split at
/// `offsets`; a flat buffer is one slice with offsets `[0, len]`), in the fixed order of the
/// module documentation, rounded once to `T`. `partials` is reused storage.
pub(crate) fn global_norm<T: Real>(
    exec: Exec<'_>,
    grads: &[&[T]],
    offsets: &[usize],
    partials: &mut Vec<f64>,
) -> T {
    use rayon::prelude::*;
    let total = offsets[offsets.len() - 1];
    partials.clear();
    partials.resize(total.div_ceil(NORM_BLOCK), 0.0);
    let one = |(i, s): (usize, &mut f64)| {
        let start = i * NORM_BLOCK;
        *s = block_sum(grads, offsets, start, (start + NORM_BLOCK).min(total));
    };
    exec.run(total, |par| {
        if par {
            partials.par_iter_mut().enumerate().for_each(one);
        } else {
            partials.iter_mut().enumerate().for_each(one);
        }
    });
    let sum = partials.iter().fold(0.0f64, |a, &b| a + b);
    T::from_f64(sum.sqrt())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn norm_is_the_same_for_every_split_and_close_to_exact() {
        let n = 3 * NORM_BLOCK + 1234;
        let g: Vec<f32> = (0..n)
            .map(|i| ((i as f32) * 0.37).sin() * (1.0 + (i % 7) as f32))
            .collect();
        let mut p = Vec::new();
        let flat = global_norm(Exec::Sequential, &[&g], &[0, n], &mut p);
        for cuts in [vec![1usize, 5, 4097], vec![4096, 4100], vec![3, 3, 3, 8000]] {
            let mut offs = vec![0];
            offs.extend(cuts.iter().copied());
            offs.push(n);
            let parts: Vec<&[f32]> = offs.windows(2).map(|w| &g[w[0]..w[1]]).collect();
            let v = global_norm(Exec::Global, &parts, &offs, &mut p);
            assert_eq!(v.to_bits(), flat.to_bits(), "{cuts:?}");
        }
        let exact: f64 = g
            .iter()
            .map(|&x| (x as f64) * (x as f64))
            .sum::<f64>()
            .sqrt();
        // f32 squares are exact in f64 and the f64 sum's relative error is ~n * 2^-53, far
        // below half an f32 ulp: the result is exact's correct rounding.
        assert_eq!(flat, exact as f32);
    }

    #[test]
    fn setters_validate_and_infinity_turns_off() {
        let mut t = Transforms::default();
        assert!(t.is_identity());
        t.set_clip(0.5).unwrap();
        assert_eq!(t.clip, Some(0.5));
        t.set_clip(f64::INFINITY).unwrap();
        assert_eq!(t.clip, None);
        assert!(t.set_clip(-1.0).is_err() && t.set_clip(f64::NAN).is_err());
        assert!(t.set_clip_by_global_norm(-0.1).is_err());
        assert!(
            t.set_weight_decay(f64::NAN, WeightDecayKind::Coupled)
                .is_err()
        );
        assert!(t.is_identity());
        t.set_weight_decay(-0.01, WeightDecayKind::Decoupled)
            .unwrap();
        assert!(t.needs_params() && !t.is_identity());
        t.validate().unwrap();
    }

    #[test]
    fn element_transforms_follow_optax_order() {
        let t = Transforms {
            maximize: true,
            clip: Some(0.25),
            clip_by_global_norm: Some(1.0),
            weight_decay: 0.5,
            weight_decay_kind: WeightDecayKind::Coupled,
        };
        let x = Pre::<f64>::new(&t, Some(2.0), 0.1);
        // -0.8 / 2 * 1 = -0.4, clipped to -0.25, + 0.5 * 0.1
        assert_eq!(grad(&x, 0.8, 0.1, true), -0.25 + 0.5 * 0.1);
        assert_eq!(grad(&x, 0.8, 0.1, false), -0.25);
        let x = Pre::<f64>::new(&t, Some(0.5), 0.1);
        assert!(x.rescale.is_none());
        let x = Pre::<f64>::new(&t, Some(f64::NAN), 0.1);
        assert!(grad(&x, 0.8, 0.1, false).is_nan());
    }
}

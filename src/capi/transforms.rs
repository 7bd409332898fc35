//! Gradient transforms in front of RMSProp (maximize, value clipping, global-norm clipping,
//! coupled or decoupled weight decay with a per-tensor mask), fused into the step. The
//! order and the exact operations are those of `optax.chain(clip_by_global_norm, clip,
//! masked(add_decayed_weights), rmsprop)`; see `src/transform.rs`.

use super::boundary::*;
use super::handle::{RmspropOptimizer, mutate, query};
use super::options::{RmspropOptions, with_options};
use super::status::*;
use crate::preset::Flavor;
use crate::transform::WeightDecayKind;
use crate::with_any;

/// How weight decay is applied (an `int32_t` in the ABI).
pub type RmspropWeightDecayKind = i32;
/// Added to the gradient before the moments, `g + wd * p`: optax
/// `chain(masked(add_decayed_weights(wd), mask), rmsprop(...))`, PyTorch
/// `RMSprop(weight_decay=wd)`.
pub const RMSPROP_WEIGHT_DECAY_COUPLED: RmspropWeightDecayKind = 0;
/// Applied to the parameters, scaled by the learning rate, before the update is added:
/// `p = p - (p * wd) * lr` (Keras 3 `weight_decay`, AdamW style).
pub const RMSPROP_WEIGHT_DECAY_DECOUPLED: RmspropWeightDecayKind = 1;

const _: () = assert!(
    RMSPROP_WEIGHT_DECAY_COUPLED == WeightDecayKind::Coupled as i32
        && RMSPROP_WEIGHT_DECAY_DECOUPLED == WeightDecayKind::Decoupled as i32
);

/// Set weight decay: factor `weight_decay` (finite, any sign as optax allows; 0 = off, the
/// default) applied as `kind` (`RMSPROP_WEIGHT_DECAY_COUPLED` or
/// `RMSPROP_WEIGHT_DECAY_DECOUPLED`). Weight decay needs the parameters, so an optimizer
/// with it accepts only the step entry points (`rmsprop_step*`); the update entry points
/// return `RMSPROP_ERR_NO_SUCH_STATE`. Which tensors are decayed: `rmsprop_set_weight_decay_mask`
/// (default: all). Errors: `RMSPROP_ERR_BAD_ENUM` (unknown `kind`); otherwise errors as
/// `rmsprop_options_set_learning_rate` (`RMSPROP_ERR_INVALID_HYPERPARAMETER` for a
/// non-finite factor). Nothing changes on error.
#[unsafe(no_mangle)]
pub extern "C" fn rmsprop_options_set_weight_decay(
    options: *mut RmspropOptions,
    weight_decay: f64,
    kind: RmspropWeightDecayKind,
) -> RmspropStatus {
    with_options(options, |o| {
        let k = WeightDecayKind::from_i32(kind).ok_or(CError::BadEnum {
            what: "weight decay kind",
            value: kind.into(),
        })?;
        Ok(o.transforms.set_weight_decay(weight_decay, k)?)
    })
}

/// Negate the gradients before everything else (PyTorch `maximize=True`: the step then
/// ascends). Default false. Errors as `rmsprop_options_set_learning_rate`.
#[unsafe(no_mangle)]
pub extern "C" fn rmsprop_options_set_maximize(
    options: *mut RmspropOptions,
    maximize: bool,
) -> RmspropStatus {
    with_options(options, |o| {
        o.transforms.maximize = maximize;
        Ok(())
    })
}

/// Clip each gradient element to `[-max_delta, max_delta]` (`optax.clip(max_delta)`, after
/// the global-norm clip, before weight decay). `max_delta` must be `>= 0`; `INFINITY` turns
/// clipping off (the default). Errors as `rmsprop_options_set_learning_rate`
/// (`RMSPROP_ERR_INVALID_HYPERPARAMETER` for NaN or a negative value).
#[unsafe(no_mangle)]
pub extern "C" fn rmsprop_options_set_clip(
    options: *mut RmspropOptions,
    max_delta: f64,
) -> RmspropStatus {
    with_options(options, |o| Ok(o.transforms.set_clip(max_delta)?))
}

/// Rescale the gradients when their global L2 norm over all tensors is not below
/// `max_norm`: `g = (g / norm) * max_norm` (`optax.clip_by_global_norm(max_norm)`, exactly
/// its `select(norm < max_norm, g, (g / norm) * max_norm)`). The norm is computed in one
/// extra read of the gradients, summed in `double` in a fixed order of the flat element
/// index (blocks of 4096 elements, eight lanes per block, blocks added in order), so it is
/// bit-identical for every thread count and entry point; it is then rounded once to the
/// dtype (optax sums in the dtype in XLA's order: at most 1 ulp apart, measured).
/// `rmsprop_last_grad_norm` reads it back. `max_norm` must be `>= 0`; `INFINITY` turns the
/// clip off (the default; optax with an infinite `max_norm` differs only when the norm is
/// itself infinite or NaN). Errors as `rmsprop_options_set_learning_rate`
/// (`RMSPROP_ERR_INVALID_HYPERPARAMETER` for NaN or a negative value).
#[unsafe(no_mangle)]
pub extern "C" fn rmsprop_options_set_clip_by_global_norm(
    options: *mut RmspropOptions,
    max_norm: f64,
) -> RmspropStatus {
    with_options(options, |o| {
        Ok(o.transforms.set_clip_by_global_norm(max_norm)?)
    })
}

/// Choose which tensors weight decay applies to (optax `add_decayed_weights(wd, mask)`,
/// PyTorch parameter groups with and without `weight_decay`): `mask[i]` true decays tensor
/// `i`. `n_tensors` must equal the optimizer's tensor count, and each
/// `mask[i]` be a C `bool` (0 or 1); `n_tensors` 0 (any `mask`, NULL included) restores the
/// default (every tensor decayed). The mask is copied; it is saved in checkpoints. Errors: `RMSPROP_ERR_LENGTH_MISMATCH` (wrong `n_tensors`),
/// `RMSPROP_ERR_NULL_POINTER` (`mask` NULL with `n_tensors` > 0); otherwise errors as
/// `rmsprop_reset`.
/// Threading: exclusive.
#[unsafe(no_mangle)]
pub extern "C" fn rmsprop_set_weight_decay_mask(
    optimizer: *mut RmspropOptimizer,
    mask: *const bool,
    n_tensors: usize,
) -> RmspropStatus {
    mutate(optimizer, |e| {
        // SAFETY: the caller passes `n_tensors` readable bools, each 0 or 1 (documented);
        // `slice` checks NULL, alignment and wrap first.
        let m: &[bool] = unsafe { slice(mask, n_tensors, "mask")? };
        if m.is_empty() {
            with_any!(e, o => o.set_weight_decay_mask(&[]))?;
        } else {
            let want = with_any!(&*e, o => o.layout().len());
            if m.len() != want {
                return Err(crate::Error::LengthMismatch {
                    what: "mask",
                    expected: want,
                    got: m.len(),
                }
                .into());
            }
            with_any!(e, o => o.set_weight_decay_mask(m))?;
        }
        Ok(())
    })
}

/// The global L2 norm of the gradients of the last applied step, as
/// `rmsprop_options_set_clip_by_global_norm` computed and used it (rounded to the dtype),
/// into `*out`; NaN until a step ran with that clip set. Errors as `rmsprop_dtype`.
#[unsafe(no_mangle)]
pub extern "C" fn rmsprop_last_grad_norm(
    optimizer: *const RmspropOptimizer,
    out: *mut f64,
) -> RmspropStatus {
    query(optimizer, out, |e| {
        Ok(with_any!(e, o => o.last_grad_norm()))
    })
}

/// Which framework's RMSProp an optimizer computes (an `int32_t` in the ABI).
pub type RmspropFlavor = i32;
/// `optax.rmsprop` (the default).
pub const RMSPROP_FLAVOR_OPTAX: RmspropFlavor = 0;
/// `torch.optim.RMSprop(lr, alpha=decay, eps, weight_decay, momentum, centered, maximize)`
/// on CPU: torch's operation order and roundings (division `g / avg`, fused multiply-adds
/// where ATen fuses, momentum buffer *before* the learning rate: `buf = m*buf + g/avg;
/// p -= lr*buf`). State: `RMSPROP_NU` is torch's `square_avg`, `RMSPROP_MU` its `grad_avg`,
/// `RMSPROP_TRACE` its `momentum_buffer`; `rmsprop_set_learning_rate` between steps sets
/// the next step's `lr`, as `torch.optim.lr_scheduler` does. Bit for bit except torch's CPU
/// `sqrt`, which is not correctly rounded (1 ulp on about 20% of float32 inputs): the
/// library's IEEE sqrt leaves a few ulps over 20 steps (measured, tested). The update entry
/// points write the update torch adds (`-lr*buf`, rounded); only the step entry points give
/// torch's parameters bit for bit with momentum (torch fuses that product into the add).
pub const RMSPROP_FLAVOR_PYTORCH: RmspropFlavor = 1;
/// Keras 3 `keras.optimizers.RMSprop(learning_rate, rho, momentum, epsilon, centered,
/// weight_decay)` on the TensorFlow backend with eager `apply_gradients`: its `update_step`
/// bit for bit (`v = rho*v + (1-rho)*g*g`, `inc = lr*g / sqrt(v + eps)`, `m = momentum*m +
/// inc`, `var -= m`, every operation separately rounded; eps inside the sqrt; set eps to
/// Keras' 1e-7). `weight_decay` is `RMSPROP_WEIGHT_DECAY_DECOUPLED` (Keras applies
/// `var - var*wd*lr` first). State: `RMSPROP_NU` = `velocity`, `RMSPROP_MU` =
/// `average_gradient`, `RMSPROP_TRACE` = `momentum`. Keras' jitted path (`jit_compile`, the
/// jax backend's `model.fit`) fuses operations and gives other bits. Keras' own
/// `clipnorm`/`clipvalue`/`global_clipnorm` formulas are not reproduced (the clips here are
/// optax's). Measured bit-exact except float64 with a schedule and weight decay together
/// (about 5e-10 relative after 24 steps, not yet explained).
pub const RMSPROP_FLAVOR_KERAS: RmspropFlavor = 2;
/// TF1 `tf.compat.v1.train.RMSPropOptimizer(learning_rate, decay, momentum, epsilon,
/// centered)`: the CPU kernels `ApplyRMSProp` / `ApplyCenteredRMSProp` bit for bit
/// (`ms += (g*g - ms)*(1 - rho)`, `mom = mom*momentum + g*lr/sqrt(ms + eps)`, `var -= mom`,
/// every operation separately rounded). State: `RMSPROP_NU` is `ms` (TF starts it at 1: set
/// `initial_scale` 1.0), `RMSPROP_MU` is `mg`, `RMSPROP_TRACE` is `mom` (set a momentum,
/// 0.0 included, to keep the slot). Set eps (TF1's default is 1e-10).
pub const RMSPROP_FLAVOR_TF1: RmspropFlavor = 3;

const _: () = assert!(
    RMSPROP_FLAVOR_OPTAX == Flavor::Optax as i32
        && RMSPROP_FLAVOR_PYTORCH == Flavor::PyTorch as i32
);

/// Choose the framework whose RMSProp the optimizer reproduces: `RMSPROP_FLAVOR_OPTAX`
/// (default), `RMSPROP_FLAVOR_PYTORCH`, `RMSPROP_FLAVOR_KERAS` or `RMSPROP_FLAVOR_TF1` (see
/// each constant; with Keras and TF1 the options mean their arguments the same way: decay =
/// `rho`/`decay`, eps = `epsilon`). With the PyTorch flavor the
/// options mean torch's arguments: learning rate = `lr`, decay = `alpha` (set it: torch's
/// default is 0.99, optax's 0.9), eps = `eps` (always outside the square root;
/// `eps_in_sqrt` is unused), momentum = `momentum` (a momentum buffer is used when it is
/// positive), centered, `rmsprop_options_set_weight_decay(.., RMSPROP_WEIGHT_DECAY_COUPLED)` =
/// `weight_decay` (as torch: one fused multiply-add), `rmsprop_options_set_maximize` =
/// `maximize`; nesterov and bias correction must stay off (checked by `rmsprop_create`,
/// `RMSPROP_ERR_INVALID_HYPERPARAMETER`; the same for TF1). The clips keep optax's
/// semantics under every flavor. Errors: `RMSPROP_ERR_BAD_ENUM` (unknown value); otherwise
/// errors as
/// `rmsprop_options_set_learning_rate`.
#[unsafe(no_mangle)]
pub extern "C" fn rmsprop_options_set_flavor(
    options: *mut RmspropOptions,
    flavor: RmspropFlavor,
) -> RmspropStatus {
    with_options(options, |o| {
        o.flavor = Flavor::from_i32(flavor).ok_or(CError::BadEnum {
            what: "flavor",
            value: flavor.into(),
        })?;
        Ok(())
    })
}

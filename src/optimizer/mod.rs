//! The optimizer: a layout (tensor sizes over one flat element space), the state
//! optax keeps (`nu`, `mu`, `trace`, counts) as flat buffers, and the step entry points.
//!
//! Every entry point validates all of its arguments before it touches anything, so a
//! failed call leaves the optimizer exactly as it was.
//!
//! Files: `layout` (sizes, offsets), `state` (buffers, counts), `threads` (where a step
//! runs), this one (the optimizer and its entry points).

mod layout;
mod state;
mod threads;

#[cfg(test)]
mod tests;

pub use layout::Layout;
pub use state::{Component, Counts, State, safe_increment};
pub use threads::{MAX_THREADS, Threads};

use crate::config::{Config, Hyper, LearningRate};
use crate::element::Real;
use crate::error::{Error, Result};
use crate::kernel::split::{self as parallel, ListBufs};
use crate::kernel::{self, Bufs, Coeffs, Mode, Variant};
use crate::preset::{self, Flavor, Keras, Tf1, Torch};
use crate::transform::{self, Place, Pre, Transforms};
use state::check_counts;
use threads::Workers;

/// optax.rmsprop over a flat multi-tensor layout, computing in `T` (`f32` or `f64`).
pub struct Optimizer<T: Real> {
    config: Config,
    layout: Layout,
    state: State<T>,
    variant: Variant,
    workers: Workers,
    skip_non_finite: bool,
    skipped: u64,
    /// Gradient transforms (`crate::transform`); identity by default.
    transforms: Transforms,
    /// Per-tensor weight decay mask; empty = every tensor decayed.
    wd_mask: Vec<bool>,
    /// The global norm of the last applied step's gradients (NaN until one ran with
    /// `clip_by_global_norm`).
    last_norm: f64,
    /// Reused block sums of the global norm.
    norm_partials: Vec<f64>,
    /// Which framework's RMSProp (`crate::preset`).
    flavor: Flavor,
}

/// What a step did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[must_use]
pub enum Outcome {
    /// The step was applied.
    Applied,
    /// A gradient was NaN or infinite and skipping is on: nothing changed but the skip counter.
    Skipped,
}

/// `true` if any value is NaN or infinite. Branch-free per block so it vectorises.
fn any_non_finite<T: Real>(xs: &[T]) -> bool {
    xs.chunks(256)
        .any(|c| c.iter().fold(false, |acc, x| acc | x.is_non_finite()))
}

impl<T: Real> std::fmt::Debug for Optimizer<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Optimizer")
            .field("dtype", &T::NAME)
            .field("config", &self.config)
            .field("layout", &self.layout)
            .field("threads", &self.workers.threads())
            .finish_non_exhaustive()
    }
}

fn variant_of(c: &Config) -> Variant {
    Variant {
        centered: c.centered,
        eps_in_sqrt: c.eps_in_sqrt,
        momentum: c.momentum.is_some(),
        nesterov: c.nesterov,
        bias_correction: c.bias_correction,
    }
}

fn check_len(what: &'static str, expected: usize, got: usize) -> Result<()> {
    if expected == got {
        Ok(())
    } else {
        Err(Error::LengthMismatch {
            what,
            expected,
            got,
        })
    }
}

impl<T: Real> Optimizer<T> {
    /// optax `init`: a validated configuration over tensors of `sizes` elements.
    pub fn new(config: Config, sizes: &[usize]) -> Result<Self> {
        config.validate()?;
        let layout = Layout::new(sizes)?;
        let state = State::try_init(&config, layout.total())?;
        Ok(Optimizer {
            variant: variant_of(&config),
            config,
            layout,
            state,
            workers: Workers::new(),
            skip_non_finite: false,
            skipped: 0,
            transforms: Transforms::default(),
            wd_mask: Vec::new(),
            last_norm: f64::NAN,
            norm_partials: Vec::new(),
            flavor: Flavor::Optax,
        })
    }

    /// The configuration, with any hyperparameters set since creation.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// The layout.
    pub fn layout(&self) -> &Layout {
        &self.layout
    }

    /// The whole state.
    pub fn full_state(&self) -> &State<T> {
        &self.state
    }

    /// Replace the whole state after checking that it fits this layout and configuration.
    pub fn set_full_state(&mut self, state: State<T>) -> Result<()> {
        let total = self.layout.total();
        check_len("nu", total, state.nu.len())?;
        if state.mu.is_some() != self.config.centered {
            return Err(Error::NoSuchState("mu", "centered=true"));
        }
        if state.trace.is_some() != self.config.momentum.is_some() {
            return Err(Error::NoSuchState("trace", "momentum set"));
        }
        if let Some(m) = &state.mu {
            check_len("mu", total, m.len())?;
        }
        if let Some(t) = &state.trace {
            check_len("trace", total, t.len())?;
        }
        check_counts(state.counts)?;
        self.state = state;
        Ok(())
    }

    /// optax `init` again: `nu = initial_scale`, `mu = trace = 0`, counts 0.
    pub fn reset(&mut self) {
        self.state.reinit(&self.config);
    }

    /// The current counters.
    pub fn counts(&self) -> Counts {
        self.state.counts
    }

    /// Set the counters (each in `[0, i32::MAX]`), for example to resume a run.
    pub fn set_counts(&mut self, counts: Counts) -> Result<()> {
        check_counts(counts)?;
        self.state.counts = counts;
        Ok(())
    }

    fn buffer(&self, c: Component) -> Result<&Vec<T>> {
        match c {
            Component::Nu => Ok(&self.state.nu),
            Component::Mu => self
                .state
                .mu
                .as_ref()
                .ok_or(Error::NoSuchState("mu", "centered=true")),
            Component::Trace => self
                .state
                .trace
                .as_ref()
                .ok_or(Error::NoSuchState("trace", "momentum set")),
        }
    }

    fn buffer_mut(&mut self, c: Component) -> Result<&mut Vec<T>> {
        match c {
            Component::Nu => Ok(&mut self.state.nu),
            Component::Mu => self
                .state
                .mu
                .as_mut()
                .ok_or(Error::NoSuchState("mu", "centered=true")),
            Component::Trace => self
                .state
                .trace
                .as_mut()
                .ok_or(Error::NoSuchState("trace", "momentum set")),
        }
    }

    /// A whole flat state buffer, or `None` when this configuration has none.
    pub fn state(&self, c: Component) -> Option<&[T]> {
        self.buffer(c).ok().map(|v| v.as_slice())
    }

    /// One tensor's part of a state buffer.
    pub fn tensor_state(&self, c: Component, tensor: usize) -> Result<&[T]> {
        let r = self.layout.range(tensor)?;
        Ok(&self.buffer(c)?[r])
    }

    /// Overwrite one tensor's part of a state buffer.
    pub fn set_tensor_state(&mut self, c: Component, tensor: usize, values: &[T]) -> Result<()> {
        let r = self.layout.range(tensor)?;
        check_len(c.name(), r.len(), values.len())?;
        self.buffer_mut(c)?[r].copy_from_slice(values);
        Ok(())
    }

    /// Overwrite a whole flat state buffer.
    pub fn set_state(&mut self, c: Component, values: &[T]) -> Result<()> {
        check_len(c.name(), self.layout.total(), values.len())?;
        self.buffer_mut(c)?.copy_from_slice(values);
        Ok(())
    }

    /// Threads a step may use: `0` = rayon's global pool (default), `1` = the caller's
    /// thread only, `n > 1` = a pool of `n` threads owned by this optimizer. Results are
    /// bit-identical for every setting.
    ///
    /// Safe after `fork()`: in a forked child, steps run on a pool built in the child (the
    /// threads of pools built before the fork do not exist there), or on the calling thread
    /// if no pool can be built; see `src/fork.rs`.
    pub fn set_threads(&mut self, n: usize) -> Result<()> {
        self.workers.set(n)
    }

    /// Skip steps whose gradients contain NaN or infinity (in the spirit of
    /// `optax.apply_if_finite`): such a step changes no state, not even the counts, and is
    /// counted; the fused step leaves the parameters alone and the update entry points write
    /// zero updates, as `apply_if_finite` returns. Off by default: non-finite values
    /// propagate as in optax.
    pub fn set_skip_non_finite(&mut self, skip: bool) {
        self.skip_non_finite = skip;
    }

    /// Whether non-finite steps are skipped.
    pub fn skip_non_finite(&self) -> bool {
        self.skip_non_finite
    }

    /// Steps skipped for non-finite gradients since creation.
    pub fn skipped_steps(&self) -> u64 {
        self.skipped
    }

    /// Set the skip counter (for restoring a checkpoint).
    pub fn set_skipped_steps(&mut self, n: u64) {
        self.skipped = n;
    }

    /// Become `other` (configuration, layout, state, skip flag and counter), keeping this
    /// optimizer's thread setting and pool: how `checkpoint::restore` swaps in a fully
    /// validated replacement.
    pub(crate) fn replace_keeping_threads(&mut self, mut other: Optimizer<T>) {
        std::mem::swap(&mut other.workers, &mut self.workers);
        *self = other;
    }

    fn skip<'g>(&mut self, mut grads: impl Iterator<Item = &'g [T]>) -> bool {
        if self.skip_non_finite && grads.any(any_non_finite) {
            self.skipped += 1;
            true
        } else {
            false
        }
    }

    /// Set the gradient transforms (`crate::transform`) for the next steps. On error
    /// nothing changes.
    pub fn set_transforms(&mut self, t: Transforms) -> Result<()> {
        t.validate()?;
        self.transforms = t;
        Ok(())
    }

    /// Compute another framework's RMSProp (`crate::preset`). The PyTorch flavor reads
    /// `decay` as torch's `alpha`, `eps` as its `eps` (always outside the square root:
    /// `eps_in_sqrt` is not used), `momentum` (a momentum buffer is used when it is > 0, as
    /// torch does), `centered`, the learning rate (fixed, scheduled, or set between steps) and
    /// `initial_scale` (torch's `square_avg` starts at 0, the default); `nesterov` and
    /// `bias_correction` must be off (torch has neither). On error nothing changes.
    pub fn set_flavor(&mut self, f: Flavor) -> Result<()> {
        if f != Flavor::Optax {
            for (on, name) in [
                (self.config.nesterov, "nesterov"),
                (self.config.bias_correction, "bias_correction"),
            ] {
                if on {
                    return Err(Error::InvalidHyperparameter {
                        name,
                        rule: "off with the PyTorch and TF1 flavors (they have none)",
                        value: 1.0,
                    });
                }
            }
        }
        self.flavor = f;
        Ok(())
    }

    /// The flavor.
    pub fn flavor(&self) -> Flavor {
        self.flavor
    }

    /// The gradient transforms.
    pub fn transforms(&self) -> &Transforms {
        &self.transforms
    }

    /// Which tensors weight decay applies to (optax `add_decayed_weights(wd, mask)`,
    /// PyTorch parameter groups): one flag per tensor, `true` = decayed; an empty mask
    /// decays every tensor (the default).
    pub fn set_weight_decay_mask(&mut self, mask: &[bool]) -> Result<()> {
        if !mask.is_empty() {
            check_len("mask", self.layout.len(), mask.len())?;
        }
        self.wd_mask = mask.to_vec();
        Ok(())
    }

    /// The weight decay mask (empty: every tensor decayed).
    pub fn weight_decay_mask(&self) -> &[bool] {
        &self.wd_mask
    }

    /// The global norm of the gradients of the last applied step, as
    /// `clip_by_global_norm` used it (rounded to the dtype); NaN until a step ran with
    /// that clip set.
    pub fn last_grad_norm(&self) -> f64 {
        self.last_norm
    }

    /// Set the last global norm (for restoring a checkpoint).
    pub fn set_last_grad_norm(&mut self, v: f64) {
        self.last_norm = v;
    }

    fn check_update_mode(&self) -> Result<()> {
        if self.transforms.needs_params() {
            Err(Error::NeedsParams)
        } else {
            Ok(())
        }
    }

    /// The thread setting.
    pub fn threads(&self) -> Threads {
        self.workers.threads()
    }

    /// Replace the learning rate between steps (as `optax.inject_hyperparams` allows).
    /// Counts are kept: a new schedule continues from the current count.
    pub fn set_learning_rate(&mut self, lr: LearningRate) -> Result<()> {
        match &lr {
            LearningRate::Fixed(v) => Hyper::LearningRate.check(*v)?,
            LearningRate::Schedule(s) => s.validate()?,
        }
        self.config.learning_rate = lr;
        Ok(())
    }

    /// Set a scalar hyperparameter between steps (a fixed learning rate replaces a
    /// schedule). `momentum` only for a configuration created with momentum: the trace
    /// buffer exists only then. On error nothing changes.
    pub fn set_hyper(&mut self, h: Hyper, v: f64) -> Result<()> {
        if h == Hyper::Momentum && self.config.momentum.is_none() {
            return Err(Error::NoSuchState("trace", "momentum set"));
        }
        h.set(&mut self.config, v)
    }

    /// A scalar hyperparameter's current value (`None`: a scheduled learning rate, or no
    /// momentum).
    pub fn hyper(&self, h: Hyper) -> Option<f64> {
        h.get(&self.config)
    }

    /// Set `decay` between steps.
    pub fn set_decay(&mut self, v: f64) -> Result<()> {
        self.set_hyper(Hyper::Decay, v)
    }

    /// Set `eps` between steps.
    pub fn set_eps(&mut self, v: f64) -> Result<()> {
        self.set_hyper(Hyper::Eps, v)
    }

    /// Set `initial_scale` (it takes effect at the next [`Optimizer::reset`]).
    pub fn set_initial_scale(&mut self, v: f64) -> Result<()> {
        self.set_hyper(Hyper::InitialScale, v)
    }

    /// Set `momentum` between steps; only for a configuration created with momentum.
    pub fn set_momentum(&mut self, v: f64) -> Result<()> {
        self.set_hyper(Hyper::Momentum, v)
    }

    /// The learning rate the next step uses, in the compute dtype.
    pub fn current_learning_rate(&self) -> T {
        match &self.config.learning_rate {
            LearningRate::Fixed(lr) => T::from_f64(*lr),
            LearningRate::Schedule(s) => s.value::<T>(self.state.counts.schedule),
        }
    }

    /// The constants of the next step, and the counts after it.
    fn prepare(&self) -> (Coeffs<T>, Counts) {
        step_coeffs(&self.config, self.state.counts)
    }

    /// The transform constants of the next step (computing the global norm when clipping
    /// by it), or `None` when no transform is set.
    fn pre(&mut self, grads: &[&[T]], offsets: &[usize], lr: T) -> Option<Pre<T>> {
        if self.transforms.is_identity() && self.flavor == Flavor::Optax {
            return None;
        }
        let norm = self.transforms.clip_by_global_norm.map(|_| {
            let exec = self.workers.exec(offsets[offsets.len() - 1]);
            let n = transform::global_norm(exec, grads, offsets, &mut self.norm_partials);
            self.last_norm = n.to_f64();
            n
        });
        let mut p = Pre::new(&self.transforms, norm, lr);
        p.fused_decay = self.flavor == Flavor::PyTorch;
        Some(p)
    }

    fn run_flat(&mut self, mode: Mode, grads: &[T], dst: &mut [T]) {
        let (k, next) = self.prepare();
        let f = kernel::select::<T>(self.variant, mode);
        let g = if mode == Mode::UpdateInPlace {
            &*dst
        } else {
            grads
        };
        let pre = self.pre(&[g], &[0, g.len()], -k.neg_lr);
        let exec = self.workers.exec(dst.len());
        let s = &mut self.state;
        let at = Place {
            nu_base: s.nu.as_ptr().addr(),
            offsets: self.layout.offsets(),
            mask: &self.wd_mask,
        };
        let bufs = Bufs {
            grads,
            dst,
            nu: &mut s.nu,
            mu: s.mu.as_deref_mut().unwrap_or(&mut []),
            trace: s.trace.as_deref_mut().unwrap_or(&mut []),
        };
        match pre {
            None => parallel::run_flat(exec, f, &k, bufs),
            Some(x) if self.flavor == Flavor::PyTorch => {
                let t = Torch::new(&self.config, -k.neg_lr);
                let leaf =
                    move |_: &Coeffs<T>, b: Bufs<'_, T>| preset::torch_leaf(&t, &x, mode, at, b);
                parallel::run_flat(exec, leaf, &k, bufs)
            }
            Some(x) if self.flavor == Flavor::Tf1 => {
                let t = Tf1::new(&self.config, -k.neg_lr);
                let leaf =
                    move |_: &Coeffs<T>, b: Bufs<'_, T>| preset::tf1_leaf(&t, &x, mode, at, b);
                parallel::run_flat(exec, leaf, &k, bufs)
            }
            Some(x) if self.flavor == Flavor::Keras => {
                let t = Keras::new(&self.config, -k.neg_lr);
                let leaf =
                    move |_: &Coeffs<T>, b: Bufs<'_, T>| preset::keras_leaf(&t, &x, mode, at, b);
                parallel::run_flat(exec, leaf, &k, bufs)
            }
            Some(x) => {
                let leaf =
                    move |k: &Coeffs<T>, b: Bufs<'_, T>| transform::leaf(f, &x, mode, at, k, b);
                parallel::run_flat(exec, leaf, &k, bufs)
            }
        }
        s.counts = next;
    }

    fn run_list(&mut self, mode: Mode, grads: &[&[T]], dst: &mut [&mut [T]]) {
        let (k, next) = self.prepare();
        let f = kernel::select::<T>(self.variant, mode);
        let pre = if self.transforms.is_identity() && self.flavor == Flavor::Optax {
            None
        } else if mode == Mode::UpdateInPlace {
            let g: Vec<&[T]> = dst.iter().map(|d| &**d).collect();
            let offsets = self.layout.offsets().to_vec();
            self.pre(&g, &offsets, -k.neg_lr)
        } else {
            let offsets = self.layout.offsets().to_vec();
            self.pre(grads, &offsets, -k.neg_lr)
        };
        let exec = self.workers.exec(self.layout.total());
        let s = &mut self.state;
        let at = Place {
            nu_base: s.nu.as_ptr().addr(),
            offsets: self.layout.offsets(),
            mask: &self.wd_mask,
        };
        let bufs = ListBufs {
            grads,
            dst,
            nu: &mut s.nu,
            mu: s.mu.as_deref_mut().unwrap_or(&mut []),
            trace: s.trace.as_deref_mut().unwrap_or(&mut []),
        };
        match pre {
            None => parallel::run_list(exec, f, &k, bufs, self.layout.offsets()),
            Some(x) if self.flavor == Flavor::PyTorch => {
                let t = Torch::new(&self.config, -k.neg_lr);
                let leaf =
                    move |_: &Coeffs<T>, b: Bufs<'_, T>| preset::torch_leaf(&t, &x, mode, at, b);
                parallel::run_list(exec, leaf, &k, bufs, self.layout.offsets())
            }
            Some(x) if self.flavor == Flavor::Tf1 => {
                let t = Tf1::new(&self.config, -k.neg_lr);
                let leaf =
                    move |_: &Coeffs<T>, b: Bufs<'_, T>| preset::tf1_leaf(&t, &x, mode, at, b);
                parallel::run_list(exec, leaf, &k, bufs, self.layout.offsets())
            }
            Some(x) if self.flavor == Flavor::Keras => {
                let t = Keras::new(&self.config, -k.neg_lr);
                let leaf =
                    move |_: &Coeffs<T>, b: Bufs<'_, T>| preset::keras_leaf(&t, &x, mode, at, b);
                parallel::run_list(exec, leaf, &k, bufs, self.layout.offsets())
            }
            Some(x) => {
                let leaf =
                    move |k: &Coeffs<T>, b: Bufs<'_, T>| transform::leaf(f, &x, mode, at, k, b);
                parallel::run_list(exec, leaf, &k, bufs, self.layout.offsets())
            }
        }
        s.counts = next;
    }

    fn check_list<S: AsRef<[T]>>(&self, what: &'static str, list: &[S]) -> Result<()> {
        check_len(what, self.layout.len(), list.len())?;
        for (s, &n) in list.iter().zip(self.layout.sizes()) {
            check_len(what, n, s.as_ref().len())?;
        }
        Ok(())
    }

    /// optax `update` over flat buffers: `updates` receives the updates.
    pub fn update(&mut self, grads: &[T], updates: &mut [T]) -> Result<Outcome> {
        self.check_update_mode()?;
        check_len("grads", self.layout.total(), grads.len())?;
        check_len("updates", self.layout.total(), updates.len())?;
        if self.skip(std::iter::once(grads)) {
            updates.fill(T::ZERO);
            return Ok(Outcome::Skipped);
        }
        self.run_flat(Mode::Update, grads, updates);
        Ok(Outcome::Applied)
    }

    /// optax `update` with the updates written over the gradients.
    pub fn update_in_place(&mut self, grads_then_updates: &mut [T]) -> Result<Outcome> {
        self.check_update_mode()?;
        check_len("grads", self.layout.total(), grads_then_updates.len())?;
        if self.skip(std::iter::once(&*grads_then_updates)) {
            grads_then_updates.fill(T::ZERO);
            return Ok(Outcome::Skipped);
        }
        self.run_flat(Mode::UpdateInPlace, &[], grads_then_updates);
        Ok(Outcome::Applied)
    }

    /// optax `update` + `apply_updates`, fused: `params += update`.
    pub fn step(&mut self, params: &mut [T], grads: &[T]) -> Result<Outcome> {
        check_len("params", self.layout.total(), params.len())?;
        check_len("grads", self.layout.total(), grads.len())?;
        if self.skip(std::iter::once(grads)) {
            return Ok(Outcome::Skipped);
        }
        self.run_flat(Mode::Step, grads, params);
        Ok(Outcome::Applied)
    }

    /// optax `update` over one slice per tensor, in one dispatch.
    pub fn update_tensors(&mut self, grads: &[&[T]], updates: &mut [&mut [T]]) -> Result<Outcome> {
        self.check_update_mode()?;
        self.check_list("grads", grads)?;
        self.check_list("updates", updates)?;
        if self.skip(grads.iter().copied()) {
            updates.iter_mut().for_each(|u| u.fill(T::ZERO));
            return Ok(Outcome::Skipped);
        }
        self.run_list(Mode::Update, grads, updates);
        Ok(Outcome::Applied)
    }

    /// optax `update` per tensor, updates written over the gradients.
    pub fn update_tensors_in_place(
        &mut self,
        grads_then_updates: &mut [&mut [T]],
    ) -> Result<Outcome> {
        self.check_update_mode()?;
        self.check_list("grads", grads_then_updates)?;
        if self.skip(grads_then_updates.iter().map(|g| &**g)) {
            grads_then_updates.iter_mut().for_each(|u| u.fill(T::ZERO));
            return Ok(Outcome::Skipped);
        }
        self.run_list(Mode::UpdateInPlace, &[], grads_then_updates);
        Ok(Outcome::Applied)
    }

    /// optax `update` + `apply_updates` per tensor, in one dispatch.
    pub fn step_tensors(&mut self, params: &mut [&mut [T]], grads: &[&[T]]) -> Result<Outcome> {
        self.check_list("params", params)?;
        self.check_list("grads", grads)?;
        if self.skip(grads.iter().copied()) {
            return Ok(Outcome::Skipped);
        }
        self.run_list(Mode::Step, grads, params);
        Ok(Outcome::Applied)
    }
}

/// The constants of the step taken at `counts`, and the counts after it: each derived in
/// `f64` and rounded once, as jitted optax folds them. Shared by every step kernel (also
/// the 8-bit-state one in [`crate::quant`]) so that they cannot drift apart.
pub(crate) fn step_coeffs<T: Real>(c: &Config, counts: Counts) -> (Coeffs<T>, Counts) {
    let neg_lr = match &c.learning_rate {
        LearningRate::Fixed(lr) => T::from_f64(-lr),
        LearningRate::Schedule(s) => -s.value::<T>(counts.schedule),
    };
    let bc_count = safe_increment(counts.bias_correction);
    let decay = T::from_f64(c.decay);
    let coeffs = Coeffs {
        one_minus_decay: T::from_f64(1.0 - c.decay),
        decay,
        eps: T::from_f64(c.eps),
        neg_lr,
        momentum: T::from_f64(c.momentum.unwrap_or(0.0)),
        bias_correction: T::bias_correction(c.decay, bc_count),
    };
    let next = Counts {
        schedule: safe_increment(counts.schedule),
        bias_correction: bc_count,
    };
    (coeffs, next)
}

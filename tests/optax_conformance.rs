//! Conformance against the real `optax.rmsprop`, jitted on XLA:CPU (optax 0.2.8, jax 0.10.2).
//!
//! The fixtures in `tests/fixtures/` were recorded by `tools/gen_fixtures.py` (which documents
//! the file format and the gradient hash); this test needs no Python. Every case is run through
//! six entry points (`update`, `update_in_place`, `step`, `update_tensors`,
//! `update_tensors_in_place`, `step_tensors`) with 1 and with 2 threads. The first run
//! (`update`, 1 thread) is compared with optax; every other run must reproduce it bit for bit
//! (NaN == NaN), params included (`step` fuses optax's `apply_updates`, `params + updates`).
//!
//! What is compared, every stored step: updates, params (reference: the previous reference
//! params plus the reference updates; the generator asserts jitted `apply_updates` is exactly
//! that), `nu`, `mu`, `trace`, both counts, and the learning rate the library uses
//! (`Schedule::value`).
//!
//! Tolerances (see `Family`, `Budget` and `StatePath`):
//! - `nu`, `mu`: bit-exact, except `nu` in the "xla-factored decay 0.5" family (below). They
//!   depend on neither rsqrt nor the learning rate, and jitted optax computes them with one
//!   documented FMA pattern.
//! - `eps_in_sqrt = false` ("sqrtF"): bit-exact (updates, trace, params). Every operation is a
//!   correctly rounded IEEE operation under jit (sqrt, divide, multiply, FMA, and the C
//!   library's `powf`/`pow` for `decay^k`). An exact emulation of this sequence, read off
//!   XLA's optimized HLO and object code, reproduces every sqrtF fixture bit for bit; the two
//!   lines marked (*) are XLA rewrites that the library deliberately does not replicate:
//!   ```text
//!   nu = fma(g*g, 1-d, d*nu)       (*) fma(g, g, nu) * (1-d) when T(1-d) == T(d) (decay 0.5:
//!                                  XLA factors a*c + b*c)
//!   mu = fma(g, 1-d, d*mu)
//!   bc = 1 - powf(T(d), T(k))      k = the incremented count
//!   >= 2 non-empty tensors: nh = nu / bc, mh = mu / bc
//!   (*) exactly 1 non-empty tensor: r = 1 / bc, nh = nu * r, mh = mu * r  (XLA's reciprocal)
//!   centered var: fma(-mh, mh, nh) (bias correction, >= 2 tensors)
//!                 fma(nu, r, -(mh*mh)) (bias correction, 1 tensor)
//!                 fma(-mu, mu, nu), but nu - mu*mu when decay is 0.5 (no bias correction)
//!                 (the fused form turns a huge gradient's inf - inf into inf: update 0)
//!   s = 1 / (sqrt(var) + eps);  u = (-lr) * (s * g)
//!   t = fma(m, t, u);  nesterov out = fma(m, t_new, u)
//!   ```
//! - "xla-factored decay 0.5" (`T(1 - decay) == T(decay)`, any `eps_in_sqrt`): the library
//!   computes `fma(1-d, g*g, d*nu)` as for every other decay instead of XLA's factored
//!   `fma(g, g, nu) * d`. One step's two evaluations differ by at most 1.5 ulp of `nu` (half
//!   of: the rounding of `g*g`, of the library's sum and of XLA's sum, each <= 1/2 ulp of a
//!   value twice `nu`), and an old difference is multiplied by `d`: `nu` gets the absolute
//!   budget `b = d * b_prev + 1.5 ulp(nu)` (observed: 2 ulps). `mu` stays exact (`(g + mu) *
//!   0.5` and `fma(0.5, g, 0.5 * mu)` round the same value). `StatePath::update_budget`
//!   carries `b` through the library's own operations to the update with exact interval
//!   bounds (no linearisation), adding 1/2 ulp of `mu^2` where XLA leaves `nu - mu*mu`
//!   uncontracted (centered without bias correction); the trace, nesterov output and params
//!   then get the propagated budgets below. Where that uncontracted form meets a huge
//!   gradient (`nu` = inf, `mu*mu` overflows) XLA computes inf - inf = NaN while the
//!   library's FMA gives inf and an update of 0 (what optax gives for every other decay):
//!   optax's update, trace and params of that element are NaN from then on, the library's
//!   are not, and these values are counted apart (printed per family).
//!   Why the library does not copy the rewrite: it is a compiler artefact of one decay value,
//!   it would need a second code path for one constant, and the difference is a rounding.
//! - "xla single-leaf recip" (bias correction, exactly one non-empty tensor): XLA computes
//!   `nu * T(1/bc)` (and `mu`, and `fma(nu, r, -(mh*mh))` for the centered variance); the
//!   library divides, `nu / bc`, as optax's source does, because its results must not depend
//!   on the tensor layout (sharded training relies on a shard's result being identical to the
//!   same elements of a whole-model run). Budget: 1 ulp of `nu_hat` and of `mu_hat` (two
//!   roundings of values less than an ulp apart), 1/2 ulp of `mh^2`, propagated to the update
//!   as above. XLA's rounded `mh*mh` meets the same inf - inf as in the factored family
//!   (counted apart the same way). With `initial_scale` 0 the first centered bias-corrected step is ill-conditioned
//!   (`g^2 - g^2`, zero up to rounding) and no ulp budget means anything there, so the
//!   single-leaf centered fixture uses `initial_scale` 0.1; the ill-conditioned regime is
//!   checked bit for bit on two tensors (`layout2_centered_bc_is0`, `edge_constgrad_*`).
//! - `eps_in_sqrt = true` ("sqrtT"): XLA:CPU lowers `rsqrt` to a hardware estimate plus
//!   Newton steps, measured within 1 ulp (<= 2 units of roundoff `ur`, relative) of the
//!   correctly rounded value, never more (200,000 inputs per dtype; 19% (f32) / 14% (f64) differ
//!   by 1). The library's `1/sqrt(x)` rounds twice (sqrt, divide): within 2 `ur` of the exact
//!   value, which is itself within 1 `ur` of the correctly rounded one. So `s` may differ by
//!   5 `ur`, and `u = (-lr) * (s * g)` rounds twice more on each side (4 `ur`):
//!   `RSQRT_U_UR` = 9 units of roundoff relative to |u| (4.5 to 9 ulps; observed: 4).
//!   Anything downstream (trace, nesterov output, params) gets a propagated absolute budget:
//!   each step adds the pre-momentum allowance, plus one ulp of every value that rounds a
//!   differing input; the trace carries |momentum| times its previous budget. A fixed ulp
//!   tolerance on the trace would be meaningless: it is a sum of updates of both signs, and
//!   cancellation makes its relative error unbounded while its absolute error stays tiny.
//! - schedule + nesterov ("sqrtF+sched+nesterov"): with a run-time learning rate XLA
//!   contracts the nesterov trace and output either as fma(m, t, round(-lr*(s*g))) or as
//!   fma(s*g, -lr, round(m*t)), depending on the schedule's HLO, the dtype and the tensor
//!   size (checked by exact emulation; fixed learning rates and heavy-ball momentum always
//!   use the first form). Each step may therefore differ by the rounding of one of the two
//!   products: one ulp of `u` plus one ulp of `m*t` per step, propagated as above.
//! - schedule values: bit-exact, every schedule kind, both dtypes, where the C library is
//!   glibc (`SCHEDULE_TRANSC_ULPS`). "As jitted optax computes it" means XLA's optimized HLO:
//!   division by a constant becomes multiplication by its rounded reciprocal (linear:
//!   `frac = fma(-c, T(1/steps), 1)`, `value = fma(frac, T(init-end), T(end))`; exponential:
//!   `p = c * T(1/steps)`), constants are folded (cosine: `T(pi) * T(1/decay_steps)`,
//!   `pow(x, 2)` -> `x*x` with the 0.5s pulled out as `T(1 - alpha) * 0.25`; the full rule
//!   is at `cosine` in `src/schedule/eval.rs`), and a*b + c is contracted to an FMA
//!   (`python3 tools/gen_fixtures.py --dump-schedule-hlo` prints the HLO of each fixture).
//!   When a step's value differs (only possible off glibc), that step's update gets the
//!   relative difference of the learning rate times |u| plus one ulp on top of its family's
//!   allowance.
//!
//! The worst ulp distance per dtype, family and array is printed (`--nocapture`).

mod common;

use common::*;
use rmsprop::{Component, Config, Counts, LearningRate, Optimizer, Outcome};
use std::collections::BTreeMap;
use std::fmt::Write as _;

/// Pre-momentum update allowance with `eps_in_sqrt = true`, in units of roundoff relative to
/// |u| (see the module docs).
const RSQRT_U_UR: f64 = 9.0;
/// Schedule values computed through pow / cos / exp: XLA:CPU emits calls to the C library's
/// `powf`/`cosf`/`pow`/`cos` (seen in the object code it generates), the same functions
/// Rust's `f32::powf` etc. call on Linux/glibc, so the library, which mirrors XLA's HLO, is
/// exact there (observed: 0 ulps, every fixture, both dtypes). Another libm may round
/// differently, by at most 1 ulp for these (glibc documents < 1 ulp).
const SCHEDULE_TRANSC_ULPS: u64 = if cfg!(all(target_os = "linux", target_env = "gnu")) {
    0
} else {
    1
};
/// XLA:CPU flushes subnormals to zero and the library must not change the host's FP mode:
/// mismatches where the reference or the library value is subnormal are counted apart.
/// The fixtures hold no subnormal reference value (header `subnormal_refs=0`), and none
/// appeared; the test asserts this count exactly so that a change is seen.
const EXPECTED_FTZ_EXCEPTIONS: usize = 0;

#[derive(Clone, Copy, Debug, PartialEq)]
enum Api {
    Update,
    UpdateInPlace,
    Step,
    UpdateTensors,
    UpdateTensorsInPlace,
    StepTensors,
}

const APIS: [Api; 6] = [
    Api::Update,
    Api::UpdateInPlace,
    Api::Step,
    Api::UpdateTensors,
    Api::UpdateTensorsInPlace,
    Api::StepTensors,
];

impl Api {
    fn gives_updates(self) -> bool {
        !matches!(self, Api::Step | Api::StepTensors)
    }
}

/// Everything one run produced, every step, full length.
struct Run<T> {
    /// Updates (empty for the step APIs).
    u: Vec<Vec<T>>,
    p: Vec<Vec<T>>,
    nu: Vec<Vec<T>>,
    mu: Vec<Vec<T>>,
    t: Vec<Vec<T>>,
    counts: Vec<Counts>,
    /// The learning rate the library used at each step.
    lr: Vec<T>,
}

fn config_of(fx: &Fixture) -> Config {
    let lr = match fx.schedule() {
        Some(s) => LearningRate::Schedule(s),
        None => match fx.lr {
            Lr::Fixed(v) => LearningRate::Fixed(v),
            Lr::Schedule(_) => unreachable!(),
        },
    };
    let mut c = Config::new(lr);
    c.decay = fx.decay;
    c.eps = fx.eps;
    c.initial_scale = fx.initial_scale;
    c.eps_in_sqrt = fx.eps_in_sqrt;
    c.centered = fx.centered;
    c.momentum = fx.momentum;
    c.nesterov = fx.nesterov;
    c.bias_correction = fx.bias_correction;
    c
}

fn split_mut<'a, T>(mut flat: &'a mut [T], sizes: &[usize]) -> Vec<&'a mut [T]> {
    let mut v = Vec::with_capacity(sizes.len());
    for &n in sizes {
        let (a, b) = flat.split_at_mut(n);
        v.push(a);
        flat = b;
    }
    v
}

fn split<'a, T>(mut flat: &'a [T], sizes: &[usize]) -> Vec<&'a [T]> {
    let mut v = Vec::with_capacity(sizes.len());
    for &n in sizes {
        let (a, b) = flat.split_at(n);
        v.push(a);
        flat = b;
    }
    v
}

fn applied(r: rmsprop::Result<Outcome>, what: &str) {
    match r {
        Ok(Outcome::Applied) => {}
        other => panic!("{what}: {other:?}"),
    }
}

fn run<T: Elem>(fx: &Fixture, data: &Data<T>, api: Api, threads: usize) -> Run<T> {
    let mut opt = Optimizer::<T>::new(config_of(fx), &fx.sizes)
        .unwrap_or_else(|e| panic!("{}: {e}", fx.file));
    opt.set_threads(threads).unwrap();
    opt.set_counts(Counts {
        schedule: fx.count0_schedule,
        bias_correction: fx.count0_bias,
    })
    .unwrap();
    let per_tensor = matches!(
        api,
        Api::UpdateTensors | Api::UpdateTensorsInPlace | Api::StepTensors
    );
    for (name, comp) in [
        ("nu", Component::Nu),
        ("mu", Component::Mu),
        ("t", Component::Trace),
    ] {
        if let Some(v) = data.init.get(name) {
            if per_tensor {
                for (i, part) in split(v, &fx.sizes).into_iter().enumerate() {
                    opt.set_tensor_state(comp, i, part).unwrap();
                }
            } else {
                opt.set_state(comp, v).unwrap();
            }
        }
    }
    let n = fx.total();
    let mut params = fx.params::<T>();
    let mut out = Run {
        u: vec![],
        p: vec![],
        nu: vec![],
        mu: vec![],
        t: vec![],
        counts: vec![],
        lr: vec![],
    };
    for k in 0..fx.steps {
        out.lr.push(opt.current_learning_rate());
        let g = fx.grads::<T>(k);
        let mut u = vec![T::ZERO; n];
        match api {
            Api::Update => applied(opt.update(&g, &mut u), "update"),
            Api::UpdateInPlace => {
                u.copy_from_slice(&g);
                applied(opt.update_in_place(&mut u), "update_in_place")
            }
            Api::Step => applied(opt.step(&mut params, &g), "step"),
            Api::UpdateTensors => {
                let gs = split(&g, &fx.sizes);
                let mut us = split_mut(&mut u, &fx.sizes);
                applied(opt.update_tensors(&gs, &mut us), "update_tensors")
            }
            Api::UpdateTensorsInPlace => {
                u.copy_from_slice(&g);
                let mut us = split_mut(&mut u, &fx.sizes);
                applied(
                    opt.update_tensors_in_place(&mut us),
                    "update_tensors_in_place",
                )
            }
            Api::StepTensors => {
                let gs = split(&g, &fx.sizes);
                let mut ps = split_mut(&mut params, &fx.sizes);
                applied(opt.step_tensors(&mut ps, &gs), "step_tensors")
            }
        }
        if api.gives_updates() {
            // optax.apply_updates: params + updates, in the params' dtype
            for (p, &x) in params.iter_mut().zip(&u) {
                *p = *p + x;
            }
            out.u.push(u);
        }
        out.p.push(params.clone());
        out.nu.push(opt.state(Component::Nu).unwrap().to_vec());
        out.mu.push(
            opt.state(Component::Mu)
                .map(<[T]>::to_vec)
                .unwrap_or_default(),
        );
        out.t.push(
            opt.state(Component::Trace)
                .map(<[T]>::to_vec)
                .unwrap_or_default(),
        );
        if per_tensor {
            // the per-tensor state accessors agree with the flat ones
            let offs = fx.offsets();
            for i in 0..fx.sizes.len() {
                let a = opt.tensor_state(Component::Nu, i).unwrap();
                let b = &opt.state(Component::Nu).unwrap()[offs[i]..offs[i + 1]];
                assert_eq!(same_bits(a, b), None, "{}: tensor_state vs state", fx.file);
            }
        }
        out.counts.push(opt.counts());
    }
    out
}

fn same_bits<T: Elem>(a: &[T], b: &[T]) -> Option<usize> {
    assert_eq!(a.len(), b.len());
    a.iter()
        .zip(b)
        .position(|(x, y)| !(x.bits() == y.bits() || (x.is_nan() && y.is_nan())))
}

/// Cross-API / cross-thread identity with the primary run.
fn assert_identical<T: Elem>(
    fx: &Fixture,
    what: &str,
    prim: &Run<T>,
    other: &Run<T>,
    errors: &mut Vec<String>,
) {
    for k in 0..fx.steps {
        let mut cmp = |name: &str, a: &[T], b: &[T]| {
            if let Some(i) = same_bits(a, b) {
                errors.push(format!(
                    "{} [{what}] step {k} {name}[{i}]: {} vs primary {} (runs must be bit-identical)",
                    fx.file, b[i], a[i]
                ));
            }
        };
        if !other.u.is_empty() {
            cmp("u", &prim.u[k], &other.u[k]);
        }
        cmp("params", &prim.p[k], &other.p[k]);
        cmp("nu", &prim.nu[k], &other.nu[k]);
        cmp("mu", &prim.mu[k], &other.mu[k]);
        cmp("trace", &prim.t[k], &other.t[k]);
        if prim.counts[k] != other.counts[k] {
            errors.push(format!(
                "{} [{what}] step {k}: counts {:?} vs {:?}",
                fx.file, other.counts[k], prim.counts[k]
            ));
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq)]
enum Family {
    /// eps_in_sqrt = false: bit-exact.
    SqrtF,
    /// eps_in_sqrt = false, schedule + nesterov: contraction chosen by XLA's codegen.
    SqrtFSchedNesterov,
    /// eps_in_sqrt = true: XLA's rsqrt estimate.
    SqrtT,
    /// `T(1 - decay) == T(decay)` (decay 0.5): XLA factors the second moment (see the module
    /// docs); the library does not.
    XlaFactoredDecayHalf,
    /// Bias correction with exactly one non-empty tensor: XLA multiplies by a rounded
    /// reciprocal of the bias correction (see the module docs); the library divides.
    XlaSingleLeafReciprocal,
}

impl Family {
    fn of<T: Elem>(fx: &Fixture) -> Family {
        if factored_decay::<T>(fx.decay) {
            Family::XlaFactoredDecayHalf
        } else if single_leaf_reciprocal(fx) {
            Family::XlaSingleLeafReciprocal
        } else if fx.eps_in_sqrt {
            Family::SqrtT
        } else if fx.schedule().is_some() && fx.momentum.is_some() && fx.nesterov {
            Family::SqrtFSchedNesterov
        } else {
            Family::SqrtF
        }
    }
    fn name(self) -> &'static str {
        match self {
            Family::SqrtF => "sqrtF",
            Family::SqrtFSchedNesterov => "sqrtF+sched+nesterov",
            Family::SqrtT => "sqrtT",
            Family::XlaFactoredDecayHalf => "xla-factored decay 0.5",
            Family::XlaSingleLeafReciprocal => "xla single-leaf recip",
        }
    }
}

/// XLA's algebraic simplifier factors `a*c + b*c` when the two folded constants are equal:
/// `(1-d)*g*g + d*nu` becomes `fma(g, g, nu) * d` when `T(1 - d) == T(d)`.
fn factored_decay<T: Elem>(decay: f64) -> bool {
    T::from_f64(1.0 - decay).to_f64() == T::from_f64(decay).to_f64()
}

/// With bias correction and exactly one non-empty tensor (empty ones do not count), XLA
/// computes `nu * (1 / (1 - d^k))` instead of `nu / (1 - d^k)` (`mu` likewise).
fn single_leaf_reciprocal(fx: &Fixture) -> bool {
    fx.bias_correction && fx.sizes.iter().filter(|&&n| n > 0).count() == 1
}

/// The ulp at `|x|` or at the next binade when `|x|` is within 4 units of roundoff below a
/// power of two: two roundings of values that close can land one ulp of the larger binade apart.
fn ulp_up<T: Elem>(x: f64) -> f64 {
    T::from_f64(x.abs() * (1.0 + 4.0 * T::UNIT_ROUNDOFF)).ulp()
}

fn momentum_kind(fx: &Fixture) -> &'static str {
    match fx.momentum {
        None => "mom=none",
        Some(0.0) => "mom=0",
        Some(_) if fx.nesterov => "nesterov",
        Some(_) => "heavy",
    }
}

/// Worst observations, keyed by (dtype, family, momentum kind, array).
#[derive(Default)]
struct Stats {
    worst: BTreeMap<(String, String, String, String), (u64, String)>,
    compared: BTreeMap<(String, String), usize>,
    ftz_exceptions: usize,
    /// optax NaN, library a number: XLA's inf - inf (see `PathBudget::xla_nan`), per family
    xla_nan: BTreeMap<String, usize>,
    zero_sign: usize,
    lr_worst: BTreeMap<(String, String), (u64, String)>,
}

impl Stats {
    fn note(
        &mut self,
        key: (String, String, String, String),
        d: u64,
        where_: impl FnOnce() -> String,
    ) {
        let e = self.worst.entry(key).or_insert((0, String::new()));
        if d > e.0 || (e.1.is_empty() && d == 0) {
            *e = (d, where_());
        }
    }
}

/// Which of XLA's rewrites of the path from the state to the update apply (see `Family`).
struct StatePath {
    /// `nu = fma(g, g, nu) * d` (decay 0.5).
    factored: bool,
    /// Bias correction by a rounded reciprocal (one non-empty tensor).
    single_leaf: bool,
    /// XLA rounds `mu_hat * mu_hat` before subtracting it (no FMA in the centered variance):
    /// factored without bias correction (`nu - mu*mu`), and single-leaf
    /// (`fma(nu, r, -(mh*mh))`).
    rounds_mm: bool,
}

/// What [`StatePath::update_budget`] found for one element.
struct PathBudget {
    /// Absolute budget on the pre-momentum update `u = (-lr) * (s * g)`.
    u: f64,
    /// XLA's rounded `mu_hat * mu_hat` overflows where `nu_hat` is inf: inf - inf, NaN,
    /// where the library's FMA gives inf - (finite exact product) = inf and an update of 0.
    xla_nan: bool,
}

impl StatePath {
    fn of<T: Elem>(fx: &Fixture) -> StatePath {
        let factored = factored_decay::<T>(fx.decay);
        let single_leaf = single_leaf_reciprocal(fx);
        StatePath {
            factored,
            single_leaf,
            rounds_mm: fx.centered && (single_leaf || (factored && !fx.bias_correction)),
        }
    }

    fn any(&self) -> bool {
        self.factored || self.single_leaf
    }

    /// Propagate a difference of at most `b_nu` (absolute) in `nu`, plus the roundings
    /// XLA's rewrites do differently, through the library's own operations to the update:
    /// `nh = nu / bc` (single leaf: 1 ulp more), `mh = mu / bc` (single leaf: 1 ulp; `mu`
    /// is exact in every family), `var = nh - mh^2` (plus 1/2 ulp of `mh^2` where XLA rounds
    /// the product, plus 1 ulp where the inputs differ), then `s` by the exact derivative
    /// bounds of `1/sqrt(w)` or `1/(sqrt(v) + eps)` over the whole interval (not a
    /// linearisation: near `var == 0` the budget grows as it must), then `u`. The values are
    /// recomputed from the library's state with the library's operations.
    #[allow(clippy::too_many_arguments)]
    fn update_budget<T: Elem>(
        &self,
        fx: &Fixture,
        lr: T,
        g: T,
        nu: T,
        mu: T,
        b_nu: f64,
        bc: T,
    ) -> PathBudget {
        let f = |x: T| x.to_f64();
        let nh = nu / bc;
        let mut b_nh = b_nu / f(bc).abs();
        if b_nu > 0.0 {
            b_nh += ulp_up::<T>(f(nh));
        }
        if self.single_leaf {
            b_nh += ulp_up::<T>(f(nh));
        }
        let (var, b_var, xla_nan) = if fx.centered {
            let mh = mu / bc;
            let b_mh = if self.single_leaf {
                ulp_up::<T>(f(mh))
            } else {
                0.0
            };
            let var = (-mh).mul_add(mh, nh);
            let mut b_var = b_nh + b_mh * (2.0 * f(mh).abs() + b_mh);
            if self.rounds_mm {
                b_var += ulp_up::<T>(f(mh) * f(mh));
            }
            if b_var > 0.0 {
                b_var += ulp_up::<T>(f(var));
            }
            let xla_nan = self.rounds_mm
                && f(nh).is_infinite()
                && f(mh).is_finite()
                && f(mh * mh).is_infinite();
            (var, b_var, xla_nan)
        } else {
            (nh, b_nh, false)
        };
        let (gf, lrf) = (f(g).abs(), f(lr).abs());
        if b_var == 0.0 || !f(var).is_finite() || !gf.is_finite() {
            return PathBudget { u: 0.0, xla_nan };
        }
        let eps = T::from_f64(fx.eps);
        let (b_s, s) = if fx.eps_in_sqrt {
            // s = 1/sqrt(w): the two sides' evaluation errors are in RSQRT_U_UR; this is
            // the difference of the exact function over inputs b_w apart
            let w = f(var + eps);
            let b_w = b_var + ulp_up::<T>(w);
            let w_min = w - b_w;
            if w <= 0.0 {
                return PathBudget { u: 0.0, xla_nan }; // NaN / inf: must match exactly
            }
            let b_s = if w_min > 0.0 {
                b_w / (w.sqrt() * w_min.sqrt() * (w.sqrt() + w_min.sqrt()))
            } else {
                f64::INFINITY
            };
            (b_s, 1.0 / w.sqrt())
        } else {
            if f(var) < 0.0 {
                return PathBudget { u: 0.0, xla_nan }; // NaN: must match exactly
            }
            // |sqrt(a) - sqrt(b)| <= min(|a - b| / sqrt(a), sqrt(|a - b|)), + both roundings
            let r = var.sqrt();
            let b_r = (b_var / f(r)).min(b_var.sqrt()) + ulp_up::<T>(f(r));
            let d = f(r + eps);
            let b_d = b_r + ulp_up::<T>(d);
            // both sides' sqrt(var) + eps are >= eps
            let d_min = (d - b_d).max(f(eps));
            let s = 1.0 / d;
            (b_d / (d * d_min) + ulp_up::<T>(s), s)
        };
        let u = lrf * s * gf;
        PathBudget {
            u: lrf * gf * b_s + lrf * ulp_up::<T>(s * gf) + ulp_up::<T>(u),
            xla_nan,
        }
    }
}

/// Allowed absolute differences of one step, per element.
struct Budget {
    u: Vec<f64>,
    t: Vec<f64>,
    out: Vec<f64>,
    p: Vec<f64>,
}

/// Compare the primary run with optax; returns error lines.
fn compare<T: Elem>(fx: &Fixture, data: &Data<T>, prim: &Run<T>, stats: &mut Stats) -> Vec<String> {
    let mut errors = vec![];
    let fam = Family::of::<T>(fx);
    let mk = momentum_kind(fx);
    let key = |a: &str| {
        (
            <T as Elem>::DTYPE.to_string(),
            fam.name().to_string(),
            mk.to_string(),
            a.to_string(),
        )
    };
    let n = fx.total();
    let m = fx
        .momentum
        .map(T::from_f64)
        .unwrap_or(T::ZERO)
        .to_f64()
        .abs();
    let sched = fx.schedule();
    let transc = sched.as_ref().is_some_and(transcendental);
    let sel = &fx.step_elems;
    let params0 = fx.params::<T>();
    let mut ref_p: Vec<T> = sel.iter().map(|&i| params0[i]).collect();
    let mut bud = Budget {
        u: vec![0.0; n],
        t: vec![0.0; n],
        out: vec![0.0; n],
        p: vec![0.0; n],
    };
    let ulp = |x: T| x.ulp();
    let fail = |errors: &mut Vec<String>, s: String| errors.push(s);
    let path = StatePath::of::<T>(fx);
    // budget on nu (absolute), carried across steps (factored family only)
    let mut b_nu = vec![0.0f64; n];
    // elements where XLA's rounded `mu_hat * mu_hat` met inf - inf (`PathBudget::xla_nan`):
    // optax's update, trace and params are NaN from then on
    let mut xla_nan = vec![false; n];

    for k in 0..fx.steps {
        let rec = &data.steps[k];
        // ---- learning rate and counts
        let lr_lib = prim.lr[k];
        let dlr = ulps(lr_lib, rec.lr);
        let lr_allowed = if transc { SCHEDULE_TRANSC_ULPS } else { 0 };
        let lkey = (
            <T as Elem>::DTYPE.to_string(),
            if sched.is_some() {
                if transc {
                    "schedule(pow/exp/cos)"
                } else {
                    "schedule(arithmetic)"
                }
            } else {
                "fixed"
            }
            .to_string(),
        );
        let e = stats.lr_worst.entry(lkey).or_insert((0, String::new()));
        if dlr > e.0 || e.1.is_empty() {
            *e = (dlr, format!("{} step {k}", fx.file));
        }
        if dlr > lr_allowed {
            fail(
                &mut errors,
                format!(
                    "{} step {k}: learning rate {} vs optax {} ({dlr} ulps > {lr_allowed})",
                    fx.file, lr_lib, rec.lr
                ),
            );
        }
        if let Some(s) = &sched {
            // the public schedule API gives the same value
            let c = if k == 0 {
                fx.count0_schedule
            } else {
                prim.counts[k - 1].schedule
            };
            assert_eq!(
                s.value::<T>(c).bits(),
                lr_lib.bits(),
                "{}: value() vs current_learning_rate()",
                fx.file
            );
        }
        let c = prim.counts[k];
        if rec.count_schedule >= 0 && c.schedule != rec.count_schedule {
            fail(
                &mut errors,
                format!(
                    "{} step {k}: schedule count {} vs optax {}",
                    fx.file, c.schedule, rec.count_schedule
                ),
            );
        }
        if rec.count_bias >= 0 && c.bias_correction != rec.count_bias {
            fail(
                &mut errors,
                format!(
                    "{} step {k}: bias-correction count {} vs optax {}",
                    fx.file, c.bias_correction, rec.count_bias
                ),
            );
        }

        // ---- budgets of this step (absolute, per element; all 0 for an exact family)
        // a learning rate off by a relative r moves the pre-momentum update by r|u| + 1 ulp
        let lr_rel = if dlr > 0 {
            let (a, b) = (lr_lib.to_f64(), rec.lr.to_f64());
            (a - b).abs() / a.abs().min(b.abs())
        } else {
            0.0
        };
        let u_rel = if fx.eps_in_sqrt {
            RSQRT_U_UR * T::UNIT_ROUNDOFF
        } else {
            0.0
        } + lr_rel;
        let u_ulps = if dlr > 0 { 1.0 } else { 0.0 };
        let nest_extra = !fx.eps_in_sqrt && sched.is_some() && fx.momentum.is_some() && fx.nesterov;
        let grads = if path.any() { fx.grads::<T>(k) } else { vec![] };
        // the bias correction the library used at this step (its count after the step)
        let bc = if fx.bias_correction {
            T::ONE - T::from_f64(fx.decay).powf(T::from_i32(prim.counts[k].bias_correction))
        } else {
            T::ONE
        };
        for i in 0..n {
            let out_l = prim.u[k][i]; // the primary run is the `update` API
            let mut b_state_u = 0.0;
            if path.any() {
                let nu_l = prim.nu[k][i];
                if path.factored {
                    // factored vs unfactored second moment: <= 1.5 ulp per step, the old
                    // difference scaled by decay (module docs)
                    b_nu[i] = if nu_l.to_f64().is_finite() {
                        fx.decay * b_nu[i] + 1.5 * ulp_up::<T>(nu_l.to_f64())
                    } else {
                        0.0 // inf (or NaN) on both sides: must match exactly
                    };
                }
                let mu_l = if fx.centered { prim.mu[k][i] } else { T::ZERO };
                let b = path.update_budget(fx, prim.lr[k], grads[i], nu_l, mu_l, b_nu[i], bc);
                b_state_u = b.u;
                if b.xla_nan {
                    xla_nan[i] = true;
                }
            }
            let (t_now, t_prev) = if fx.momentum.is_some() {
                (
                    prim.t[k][i].to_f64().abs(),
                    if k == 0 {
                        data.init.get("t").map_or(0.0, |v| v[i].to_f64().abs())
                    } else {
                        prim.t[k - 1][i].to_f64().abs()
                    },
                )
            } else {
                (0.0, 0.0)
            };
            // magnitude of the pre-momentum update u: |out| without momentum, else |t| + m|t_prev|
            let u_mag = if fx.momentum.is_some() {
                t_now + m * t_prev
            } else {
                out_l.to_f64().abs()
            };
            let ulp_u = ulp(T::from_f64(u_mag));
            let mut bu = u_ulps * ulp_u + u_rel * u_mag + b_state_u;
            if nest_extra {
                bu += ulp_u + ulp(T::from_f64(m * t_prev));
            }
            bud.u[i] = bu;
            let (bt, bo) = match fx.momentum {
                None => (0.0, bu),
                Some(_) => {
                    let mut bt = m * bud.t[i] + bu;
                    if bt > 0.0 {
                        bt += ulp(prim.t[k][i]);
                    }
                    if fx.nesterov {
                        let mut bo = m * bt + bu;
                        if nest_extra {
                            bo += ulp(T::from_f64(m * t_now));
                        }
                        if bo > 0.0 {
                            bo += ulp(out_l);
                        }
                        (bt, bo)
                    } else {
                        (bt, bt)
                    }
                }
            };
            bud.t[i] = bt;
            bud.out[i] = bo;
            let mut bp = bud.p[i] + bo;
            if bp > 0.0 {
                bp += ulp(prim.p[k][i]);
            }
            bud.p[i] = bp;
        }

        // ---- element comparisons
        let check = |errors: &mut Vec<String>,
                     stats: &mut Stats,
                     arr: &str,
                     i: usize,
                     lib: T,
                     rf: T,
                     budget: f64,
                     nan_ok: bool| {
            *stats
                .compared
                .entry((<T as Elem>::DTYPE.to_string(), arr.to_string()))
                .or_default() += 1;
            let d = ulps(lib, rf);
            if nan_ok && rf.is_nan() && !lib.is_nan() {
                *stats.xla_nan.entry(fam.name().to_string()).or_default() += 1;
                return;
            }
            if d == 0 && lib.bits() != rf.bits() && !lib.is_nan() {
                stats.zero_sign += 1; // +0 vs -0: equal values
            }
            // NaN must match NaN and an infinity itself; finite values within the budget
            let ok = d == 0
                || (!lib.is_nan()
                    && !rf.is_nan()
                    && lib.to_f64().is_finite()
                    && rf.to_f64().is_finite()
                    && (lib.to_f64() - rf.to_f64()).abs() <= budget);
            if !ok && (lib.is_subnormal() || rf.is_subnormal()) {
                stats.ftz_exceptions += 1;
                return;
            }
            if d != u64::MAX {
                stats.note(key(arr), d, || format!("{} step {k} [{i}]", fx.file));
            }
            if !ok {
                fail(
                    errors,
                    format!(
                        "{} step {k} {arr}[{i}]: library {lib:e} vs optax {rf:e} ({} ulps, budget {budget:e} = {:.1} ulps)",
                        fx.file,
                        if d == u64::MAX {
                            "NaN mismatch".to_string()
                        } else {
                            d.to_string()
                        },
                        budget / rf.ulp()
                    ),
                );
            }
        };
        for a in &fx.per_step {
            let rv = &rec.arrays[a];
            for (j, &i) in sel.iter().enumerate() {
                let (lib, budget) = match a.as_str() {
                    "u" => (prim.u[k][i], bud.out[i]),
                    "nu" => (prim.nu[k][i], b_nu[i]),
                    "mu" => (prim.mu[k][i], 0.0),
                    "t" => (prim.t[k][i], bud.t[i]),
                    o => panic!("array {o}"),
                };
                let nan_ok = xla_nan[i] && a != "nu" && a != "mu";
                check(&mut errors, stats, a, i, lib, rv[j], budget, nan_ok);
            }
        }
        // params at the stored elements: reference = previous reference + reference update
        if fx.per_step.iter().any(|a| a == "u") {
            let ru = &rec.arrays["u"];
            for (j, &i) in sel.iter().enumerate() {
                ref_p[j] = ref_p[j] + ru[j];
                check(
                    &mut errors,
                    stats,
                    "params",
                    i,
                    prim.p[k][i],
                    ref_p[j],
                    bud.p[i],
                    xla_nan[i],
                );
            }
        }
        if k + 1 == fx.steps {
            for (a, rv) in &data.fin {
                for (i, &rvi) in rv.iter().enumerate() {
                    let (lib, budget) = match a.as_str() {
                        "u" => (prim.u[k][i], bud.out[i]),
                        "p" => (prim.p[k][i], bud.p[i]),
                        "nu" => (prim.nu[k][i], b_nu[i]),
                        "mu" => (prim.mu[k][i], 0.0),
                        "t" => (prim.t[k][i], bud.t[i]),
                        o => panic!("array {o}"),
                    };
                    let nan_ok = xla_nan[i] && a != "nu" && a != "mu";
                    check(
                        &mut errors,
                        stats,
                        &format!("final {a}"),
                        i,
                        lib,
                        rvi,
                        budget,
                        nan_ok,
                    );
                }
            }
        }
    }
    errors
}

fn conformance<T: Elem>() {
    let fixtures: Vec<Fixture> = all_fixtures()
        .into_iter()
        .filter(|f| f.dtype == <T as Elem>::DTYPE)
        .collect();
    assert!(
        fixtures.len() >= 100,
        "expected the full fixture set, found {}",
        fixtures.len()
    );
    let mut stats = Stats::default();
    let mut errors = vec![];
    let mut subnormal_refs = 0;
    for fx in &fixtures {
        subnormal_refs += fx.subnormal_refs;
        let data = fx.data::<T>();
        let prim = run::<T>(fx, &data, Api::Update, 1);
        let errs = compare(fx, &data, &prim, &mut stats);
        if !errs.is_empty() {
            // per case: how many mismatches per array, and the first few
            let mut per: BTreeMap<String, usize> = BTreeMap::new();
            for e in &errs {
                let arr = e
                    .split_whitespace()
                    .nth(3)
                    .unwrap_or("?")
                    .split('[')
                    .next()
                    .unwrap()
                    .to_string();
                *per.entry(arr).or_default() += 1;
            }
            let mut msg = format!("{}: {} mismatches {:?}", fx.file, errs.len(), per);
            for e in errs.iter().take(3) {
                msg.push_str("\n    ");
                msg.push_str(e);
            }
            errors.push(msg);
        }
        for api in APIS {
            for threads in [1, 2] {
                if api == Api::Update && threads == 1 {
                    continue;
                }
                let other = run::<T>(fx, &data, api, threads);
                assert_identical(
                    fx,
                    &format!("{api:?}, {threads} threads"),
                    &prim,
                    &other,
                    &mut errors,
                );
            }
        }
    }

    let mut rep = String::new();
    writeln!(rep, "\n=== optax conformance, {}: {} fixtures, worst ulp distance (finite values; NaN must match NaN) ===", <T as Elem>::DTYPE, fixtures.len()).unwrap();
    writeln!(
        rep,
        "{:<22} {:<10} {:<12} {:>12}  where",
        "family", "momentum", "array", "worst ulps"
    )
    .unwrap();
    for ((_, fam, mk, arr), (d, w)) in &stats.worst {
        writeln!(rep, "{fam:<22} {mk:<10} {arr:<12} {d:>12}  {w}").unwrap();
    }
    writeln!(rep, "learning rate (Schedule::value vs jitted optax):").unwrap();
    for ((_, kind), (d, w)) in &stats.lr_worst {
        writeln!(rep, "  {kind:<24} worst {d} ulps  ({w})").unwrap();
    }
    writeln!(
        rep,
        "elements compared: {:?}",
        stats
            .compared
            .iter()
            .map(|((_, a), c)| (a.as_str(), *c))
            .collect::<Vec<_>>()
    )
    .unwrap();
    writeln!(
        rep,
        "+0/-0 differences (equal values, not failures): {}",
        stats.zero_sign
    )
    .unwrap();
    writeln!(
        rep,
        "optax NaN where XLA's rounded mu_hat^2 overflows (inf - inf), library a number: {:?}",
        stats.xla_nan
    )
    .unwrap();
    writeln!(rep, "subnormal (FTZ) exceptions: {} (expected {EXPECTED_FTZ_EXCEPTIONS}); subnormal reference values in fixtures: {subnormal_refs}", stats.ftz_exceptions).unwrap();
    println!("{rep}");
    if !errors.is_empty() {
        panic!(
            "{} of {} {} fixtures fail:\n{}",
            errors.len(),
            fixtures.len(),
            <T as Elem>::DTYPE,
            errors.join("\n")
        );
    }
    assert_eq!(
        stats.ftz_exceptions, EXPECTED_FTZ_EXCEPTIONS,
        "subnormal (FTZ) exception count changed"
    );
}

#[test]
fn optax_conformance_f32() {
    conformance::<f32>();
}

#[test]
fn optax_conformance_f64() {
    conformance::<f64>();
}

/// The hash reproduces the generator's values.
#[test]
fn hash_known_answers() {
    assert_eq!(splitmix64(0), 0xE220_A839_7B1D_CDAF);
    let g32: Vec<u32> = (0..6).map(|i| grad::<f32>(1, 0, i).to_bits()).collect();
    let g64: Vec<u64> = (0..6).map(|i| grad::<f64>(1, 0, i).to_bits()).collect();
    let p32: Vec<u32> = (0..3).map(|i| param::<f32>(2, i).to_bits()).collect();
    let p64: Vec<u64> = (0..3).map(|i| param::<f64>(2, i).to_bits()).collect();
    assert_eq!(g32, KAT_G32);
    assert_eq!(g64, KAT_G64);
    assert_eq!(p32, KAT_P32);
    assert_eq!(p64, KAT_P64);
    // HUGE (-1e30 / -1e200) and TINY (-/+1e-30, 1e-200) categories
    let s32: Vec<u32> = KAT_SPECIAL_IDX
        .iter()
        .map(|&i| grad::<f32>(1, 0, i).to_bits())
        .collect();
    let s64: Vec<u64> = KAT_SPECIAL_IDX
        .iter()
        .map(|&i| grad::<f64>(1, 0, i).to_bits())
        .collect();
    assert_eq!(s32, KAT_SPECIAL_G32);
    assert_eq!(s64, KAT_SPECIAL_G64);
}

// Known answers, printed by tools/gen_fixtures.py's gen_grads(1, 0, n, dtype) and
// gen_params(2, n, dtype) viewed as unsigned integers.
const KAT_G32: [u32; 6] = [
    0x3C91745F, 0x3CF0BF21, 0x00000000, 0x3E8DE00E, 0x00000000, 0xBF164CC2,
];
const KAT_G64: [u64; 6] = [
    0x3F922E8BE9B7F429,
    0x3F9E17E434E77016,
    0x0000000000000000,
    0x3FD1BC01DAE85B97,
    0x0000000000000000,
    0xBFE2C998449535C8,
];
const KAT_P32: [u32; 3] = [0x4030E411, 0x3F31F58C, 0x3E0C0441];
const KAT_P64: [u64; 3] = [0x40061C822B281BF6, 0x3FE63EB182D0BA90, 0x3FC1808827DCD650];
const KAT_SPECIAL_IDX: [u64; 4] = [182, 722, 110, 125];
const KAT_SPECIAL_G32: [u32; 4] = [0xF149F2CA, 0xF149F2CA, 0x8DA24260, 0x0DA24260];
const KAT_SPECIAL_G64: [u64; 4] = [
    0xE974E718D7D7625A,
    0xE974E718D7D7625A,
    0x96687E92154EF7AC,
    0x16687E92154EF7AC,
];

/// Every schedule spec of the fixtures parses, and evaluates to optax's recorded values at
/// every recorded count (the same check as in the main test, reported per schedule kind).
#[test]
fn schedule_specs_parse() {
    for fx in all_fixtures() {
        if let Lr::Schedule(s) = &fx.lr {
            let sch = parse_schedule(s);
            sch.validate()
                .unwrap_or_else(|e| panic!("{}: {e}", fx.file));
        }
    }
}

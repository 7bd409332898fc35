#!/usr/bin/env python3
"""Generate the optax conformance fixtures in tests/fixtures/ from the REAL optax.rmsprop.

Requirements (versions used to produce the committed fixtures):
    pip install jax==0.10.2 jaxlib==0.10.2 optax==0.2.8 numpy==2.4.6
    (CPU backend: XLA:CPU on an x86-64 CPU with AVX-512 and FMA, AMD EPYC.)

Usage:
    python3 tools/gen_fixtures.py            # regenerates every tests/fixtures/*.bin and MANIFEST
    python3 tools/gen_fixtures.py --dtype f32   # (internal) one half only, in this process
    python3 tools/gen_fixtures.py --dump-schedule-hlo   # XLA's optimized HLO of each fixture
                                             # schedule (the op sequence a library must mirror)

The run is deterministic for a given CPU and jax/optax version. jax's `jax_enable_x64` is a
global switch, so the parent process runs the f32 half (x64 disabled) and the f64 half (x64
enabled) as two subprocesses of this same script. XLA:CPU lowers `rsqrt` to a hardware
estimate plus Newton steps, so the `eps_in_sqrt=True` fixtures can differ in the last bit on
another CPU family; everything else should regenerate bit-identically.

How optax is driven (exactly as a user does):
    opt = optax.rmsprop(learning_rate=<python float or optax schedule>, decay=<float>, ...)
    state = opt.init(params)                          # params: a list of 1-D arrays
    updates, state = jax.jit(opt.update)(grads, state, params)
    params = jax.jit(optax.apply_updates)(params, updates)     # a SEPARATE jit
Hyperparameters are Python floats, so optax folds `1 - decay` etc. in f64 and rounds once.
The script asserts, every step, that the jitted apply_updates equals numpy's `p + u` bitwise
(NaN == NaN), so the Rust test may compute params as previous params + stored updates.

------------------------------------------------------------------------------------------
Gradients and initial params are NOT stored: both sides generate them from this hash
(the Rust copy lives in tests/common/mod.rs and must stay identical).

    splitmix64(x):  z = x + 0x9E3779B97F4A7C15
                    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9
                    z = (z ^ (z >> 27)) * 0x94D049BB133111EB
                    return z ^ (z >> 31)                        (all u64, wrapping)
    key(seed, step, i) = seed * 1_000_003 + step * 65_537 + i  (u64, wrapping; i = flat index)
    r    = splitmix64(key)
    r2   = splitmix64(r ^ 0x5DEECE66D)                          (the mantissa's own bits)
    sign = -1 if (r >> 63) & 1 else +1
    mant = 1 + (r2 >> 41) / 2**23   for f32                     (a full 24-bit significand)
           1 + (r2 >> 12) / 2**52   for f64                     (a full 53-bit significand)
           (computed exactly in f64; exact in the dtype)
    expo = ((r >> 45) & 15) - 8                                 (gradients: 2**-8 .. 2**7)
    Full-width significands matter: with short ones g*g is exact in f64 and a missing or
    extra FMA contraction of `g*g` could not be seen in the f64 fixtures.

    gradient(seed, step, i), category c = r & 0xFF:
        c <  16        -> +0.0                                   (1/16)
        c == 16        -> sign * HUGE   HUGE = 1e30 (f32) / 1e200 (f64)   (1/256)
                          (g*g overflows to inf: nu becomes inf forever and the update is
                          exactly 0 from then on; centered: inf - inf = NaN while mu*mu
                          overflows too)
        17 <= c < 25   -> sign * TINY   TINY = 1e-30 (f32) / 1e-200 (f64)  (1/32)
                          (g*g underflows to exactly 0)
        otherwise      -> sign * mant * 2**expo                  (normal, exact in the dtype)
      HUGE/TINY are the f64 literals rounded once to the dtype (Rust: `1e30_f64 as f32`).
      The brief suggested HUGE with probability 1/16; that kills (nu = inf, update 0 forever)
      87% of the elements within 31 steps, so it is 1/256 here.
    param(seed, i) = sign * mant * 2**(((r >> 45) & 7) - 4) with r = splitmix64(key(seed, 0, i))
                     (normal values in [2**-4, 2**4) only)

    When a case has `grad_steps=fixed` the gradient of every step is gradient(seed, 0, i)
    (a constant gradient stream); with `grad_steps=vary` step k uses gradient(seed, k, i).
    `overrides=K@I:V,...` then replaces the gradient of step K, flat index I by the float V
    (Python repr: `inf`, `-inf`, `nan`, `1e+30`, ...), after the hash.

------------------------------------------------------------------------------------------
File format: tests/fixtures/<name>.bin, one file per case, all numbers little-endian.
  Line 1: ASCII header, `key=value` fields separated by single spaces, ending in '\\n'.
          Values never contain spaces. Floats are Python repr (shortest round-trip), so
          Rust's `str::parse::<f64>` recovers the exact double.
      name           case name (= file stem)
      group          basic | schedule | large | layout | counts | edge
      dtype          f32 | f64
      sizes          comma-separated tensor sizes (the pytree is a list of 1-D arrays)
      steps          number of optimizer steps
      lr             fixed learning rate (Python float)           } exactly one of these two
      schedule       schedule spec (below)                          }
      decay eps initial_scale    Python floats
      eps_in_sqrt centered nesterov bias_correction     true | false
      momentum       Python float or `none`
      grad_seed param_seed       u64 seeds of the hash above
      grad_steps     vary | fixed
      overrides      `-` or `K@I:V,...`
      count0_schedule count0_bias   initial counts (int32) put in the optax state before step 0
                     (Rust: `set_counts`). A count optax does not keep is ignored.
      init_state     default | stored  (stored: nu0, mu0 (centered), trace0 (momentum) arrays
                     follow the header, full length, in that order)
      per_step       comma list of arrays stored after every step, from {u, nu, mu, t}
                     (u = updates, nu, mu, t = trace) in this order
      step_elems     all | headtail16: which flat elements the per-step arrays hold.
                     headtail16: for each tensor (offset o, size n), indices
                     o + [0, min(16, n)) then o + [max(16, n - 16), n), ascending.
      final          `-` or comma list from {u, p, nu, mu, t}: arrays stored in full after the
                     last step (p = params after the last step)
      subnormal_refs number of subnormal values among all stored reference floats
                     (XLA:CPU flushes subnormals to zero; see the Rust test)
  Then the binary payload:
      [init_state arrays, if stored]
      for step k = 0 .. steps-1:
          lr_k            dtype   the learning rate optax used at step k, i.e.
                                  -jit(lambda c: jnp.array(-sched(c), dtype))(count_before_step)
                                  (a fixed lr: the Python float rounded to dtype)
          count_schedule  i32     schedule count after step k (-1: optax keeps none)
          count_bias      i32     bias-correction count after step k (-1: optax keeps none)
          per_step arrays dtype   each len(step_elems) values, in `per_step` order
      final arrays        dtype   each the full flat length, in `final` order

Schedule spec syntax: a Python expression over optax's schedule constructors, all arguments
positional in optax's signature order, no spaces; the generator builds the schedule by
evaluating exactly that string, so spec and fixture cannot disagree.
    constant_schedule(value)
    linear_schedule(init_value,end_value,transition_steps,transition_begin)
    polynomial_schedule(init_value,end_value,power,transition_steps,transition_begin)
    exponential_decay(init_value,transition_steps,decay_rate,transition_begin,staircase,end_value)
    cosine_decay_schedule(init_value,decay_steps,alpha,exponent)
    warmup_cosine_decay_schedule(init_value,peak_value,warmup_steps,decay_steps,end_value,exponent)
    warmup_exponential_decay_schedule(init_value,peak_value,warmup_steps,transition_steps,
                                      decay_rate,transition_begin,staircase,end_value)
    piecewise_constant_schedule(init_value,{boundary:scale,...})
    join_schedules([schedule,...],[boundary,...])
  Literals: Python float/int repr, True, False, None.

Cases (see the *_cases functions; tests/fixtures/README.md has the table): basic (the full
cross product, every array every step), schedule (every schedule kind; per-step updates and
learning rates, final state), large (layout [1, 7, 1023, 4099, 0]: per-step updates only for
the first and last 16 elements of each tensor, plus the full final updates and state, which
keeps the directory near 4 MB while still covering SIMD remainders), layout (a single
non-empty tensor, where XLA multiplies by a reciprocal bias correction; and its two-tensor
counterpart in the ill-conditioned regime), counts (int32 saturation), edge (NaN/inf semantics).

Known optax bug avoided: jitted `polynomial_schedule` with a non-integer power returns NaN at
and after the end of its transition (frac == 0; e.g. polynomial_schedule(0.02,0.001,2.5,30,3)
at count 33) while unjitted it returns end_value. The non-integer-power fixture therefore
starts its transition inside the 40 steps but ends it after them (transition_steps 45).
"""

import argparse
import os
import platform
import subprocess
import sys

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
OUT_DIR = os.path.normpath(os.path.join(HERE, "..", "tests", "fixtures"))

M64 = (1 << 64) - 1
GOLDEN = np.uint64(0x9E3779B97F4A7C15)
MIX1 = np.uint64(0xBF58476D1CE4E5B9)
MIX2 = np.uint64(0x94D049BB133111EB)


# --------------------------------------------------------------------------------------
# The hash (must match tests/common/mod.rs)
# --------------------------------------------------------------------------------------
def splitmix64(x):
    """x: np.uint64 array. Wrapping u64 arithmetic (numpy arrays wrap silently)."""
    with np.errstate(over="ignore"):
        z = x + GOLDEN
        z = (z ^ (z >> np.uint64(30))) * MIX1
        z = (z ^ (z >> np.uint64(27))) * MIX2
        return z ^ (z >> np.uint64(31))


def keys(seed, step, n):
    base = (seed * 1_000_003 + step * 65_537) & M64
    with np.errstate(over="ignore"):
        return np.uint64(base) + np.arange(n, dtype=np.uint64)


def _sign_mant(r, dt):
    sign = np.where((r >> np.uint64(63)) & np.uint64(1), -1.0, 1.0)
    r2 = splitmix64(r ^ np.uint64(0x5DEECE66D))
    if dt == np.float32:
        frac = (r2 >> np.uint64(41)).astype(np.float64) / 2.0**23
    else:
        frac = (r2 >> np.uint64(12)).astype(np.float64) / 2.0**52
    return sign, 1.0 + frac


def gen_grads(seed, step, n, dt):
    r = splitmix64(keys(seed, step, n))
    sign, mant = _sign_mant(r, dt)
    expo = ((r >> np.uint64(45)) & np.uint64(15)).astype(np.int64) - 8
    normal = sign * np.ldexp(mant, expo)
    c = (r & np.uint64(0xFF)).astype(np.int64)
    huge, tiny = (1e30, 1e-30) if dt == np.float32 else (1e200, 1e-200)
    g = np.where(c < 16, 0.0, np.where(c == 16, sign * huge, np.where(c < 25, sign * tiny, normal)))
    return g.astype(dt)  # one rounding f64 -> dtype (normal values are exact)


def gen_params(seed, n, dt):
    r = splitmix64(keys(seed, 0, n))
    sign, mant = _sign_mant(r, dt)
    expo = ((r >> np.uint64(45)) & np.uint64(7)).astype(np.int64) - 4
    return (sign * np.ldexp(mant, expo)).astype(dt)


# --------------------------------------------------------------------------------------
# Case definitions
# --------------------------------------------------------------------------------------
SMALL = [1, 7, 0, 33]
LARGE = [1, 7, 1023, 4099, 0]


def base_case(**kw):
    c = dict(
        group="basic",
        sizes=SMALL,
        steps=31,
        lr=None,
        schedule=None,
        decay=0.9,
        eps=1e-8,
        initial_scale=0.0,
        eps_in_sqrt=True,
        centered=False,
        momentum=None,
        nesterov=False,
        bias_correction=False,
        grad_seed=1,
        param_seed=2,
        grad_steps="vary",
        overrides=[],
        count0_schedule=0,
        count0_bias=0,
        init_state=None,  # None or dict(nu=..., mu=..., t=...) of flat float64 arrays
        per_step=None,  # None: u, nu, [mu], [t]
        step_elems="all",
        final=None,  # None: []
    )
    c.update(kw)
    return c


def state_arrays(c):
    arrs = ["nu"]
    if c["centered"]:
        arrs.append("mu")
    if c["momentum"] is not None:
        arrs.append("t")
    return arrs


def basic_cases():
    out = []
    lrs = [1e-3, 0.01, 0.1, 3e-4, 0.05]
    decays = [0.9, 0.99, 0.5, 0.95]
    epss = [1e-8, 1e-3, 1e-6, 0.1]
    scales = [0.0, 1.0, 0.1]
    i = 0
    for centered in (False, True):
        for eps_in_sqrt in (True, False):
            for bc in (False, True):
                for mom in (None, 0.0, 0.9):
                    for nest in (False, True):
                        ms = "none" if mom is None else repr(mom).replace(".", "p")
                        name = "basic_c%d_s%d_b%d_m%s_n%d" % (centered, eps_in_sqrt, bc, ms, nest)
                        out.append(
                            base_case(
                                name=name,
                                lr=lrs[i % 5],
                                decay=decays[(i + i // 6) % 4],  # decorrelated from momentum
                                eps=epss[(i // 3) % 4],
                                initial_scale=scales[(i // 4) % 3],
                                eps_in_sqrt=eps_in_sqrt,
                                centered=centered,
                                momentum=mom,
                                nesterov=nest,
                                bias_correction=bc,
                                grad_seed=100 + i,
                                param_seed=500 + i,
                                # nesterov without momentum is a no-op in optax: a short
                                # trajectory shows it is ignored and saves fixture space
                                steps=8 if (nest and mom is None) else 31,
                            )
                        )
                        i += 1
    return out


SCHEDULES = [
    ("const", "constant_schedule(0.01)"),
    ("linear", "linear_schedule(0.1,0.001,25,5)"),
    ("poly2", "polynomial_schedule(0.05,0.002,2,30,4)"),
    # non-integer power: transition 3..48, so the jit NaN at its end (see top) stays outside
    ("poly2p5", "polynomial_schedule(0.02,0.001,2.5,45,3)"),
    ("exp", "exponential_decay(0.05,6,0.7,0,False,None)"),
    ("exp_stair", "exponential_decay(0.05,6,0.7,0,True,None)"),
    ("exp_begin", "exponential_decay(0.05,7,0.6,10,False,None)"),
    ("exp_end", "exponential_decay(0.05,3,0.5,0,False,0.004)"),
    ("exp_grow_end", "exponential_decay(0.001,4,1.5,2,False,0.02)"),
    ("cosine", "cosine_decay_schedule(0.05,35,0.0,1.0)"),
    ("cosine_alpha_exp", "cosine_decay_schedule(0.05,30,0.1,2.0)"),
    ("warmup_cosine", "warmup_cosine_decay_schedule(0.0,0.05,8,35,0.001,1.0)"),
    ("warmup_cosine_exp", "warmup_cosine_decay_schedule(0.001,0.04,5,30,0.0,1.5)"),
    ("warmup_exp", "warmup_exponential_decay_schedule(0.0,0.05,6,5,0.8,3,False,0.005)"),
    ("warmup_exp_stair", "warmup_exponential_decay_schedule(0.001,0.04,5,4,0.5,0,True,None)"),
    ("piecewise", "piecewise_constant_schedule(0.05,{5:0.5,12:0.2,25:2.0})"),
    (
        "join3",
        "join_schedules([constant_schedule(0.02),linear_schedule(0.02,0.002,15,0),"
        "cosine_decay_schedule(0.002,10,0.5,1.0)],[5,20])",
    ),
    ("join2", "join_schedules([linear_schedule(0.0,0.03,10,0),exponential_decay(0.03,5,0.8,0,False,None)],[10])"),
]


def schedule_cases():
    out = []
    for j, (sname, spec) in enumerate(SCHEDULES):
        # config A: optax defaults (eps_in_sqrt=True).
        out.append(
            base_case(
                name="sched_%s_default" % sname,
                group="schedule",
                steps=40,
                schedule=spec,
                grad_seed=2000 + j,
                param_seed=2500 + j,
                per_step=["u"],
                final=["nu"],
            )
        )
        # config B: centered + bias correction + momentum 0.9, eps outside the sqrt: the
        # bit-reproducible path, so the schedule value is tested exactly. initial_scale 0.1
        # keeps the first centered+bias-corrected step away from nu_hat - mu_hat^2 == 0
        # (with initial_scale 0 it is 0 up to rounding: huge updates or NaN).
        out.append(
            base_case(
                name="sched_%s_cbm" % sname,
                group="schedule",
                steps=40,
                schedule=spec,
                decay=0.95,
                eps=1e-6,
                initial_scale=0.1,
                eps_in_sqrt=False,
                centered=True,
                bias_correction=True,
                momentum=0.9,
                grad_seed=3000 + j,
                param_seed=3500 + j,
                per_step=["u"],
                final=["nu", "mu", "t"],
            )
        )
    # config N: B with nesterov, for a few schedules. With a schedule (a run-time learning
    # rate) XLA contracts the nesterov trace and output as fma(s*g, -lr, round(m*t)) or as
    # fma(m, t, round(-lr*(s*g))) depending on the schedule's HLO, the dtype and the tensor
    # size: not a property of the maths, so these are compared within a rounding budget.
    for j, (sname, spec) in enumerate(SCHEDULES):
        if sname not in ("exp", "linear", "warmup_cosine"):
            continue
        out.append(
            base_case(
                name="sched_%s_cbmn" % sname,
                group="schedule",
                steps=40,
                schedule=spec,
                decay=0.95,
                eps=1e-6,
                initial_scale=0.1,
                eps_in_sqrt=False,
                centered=True,
                bias_correction=True,
                momentum=0.9,
                nesterov=True,
                grad_seed=3100 + j,
                param_seed=3600 + j,
                per_step=["u"],
                final=["nu", "mu", "t"],
            )
        )
    return out


def large_cases():
    common = dict(group="large", sizes=LARGE, steps=30, per_step=["u"], step_elems="headtail16")
    cfgs = [
        ("large_default", dict(lr=0.01)),
        ("large_centered_bc", dict(lr=0.003, decay=0.95, centered=True, bias_correction=True)),
        ("large_mom_nesterov", dict(lr=0.001, momentum=0.9, nesterov=True, initial_scale=1.0)),
        ("large_sqrtF_centered_m0", dict(lr=0.01, eps=1e-6, eps_in_sqrt=False, centered=True, momentum=0.0)),
    ]
    out = []
    for j, (name, kw) in enumerate(cfgs):
        c = base_case(name=name, grad_seed=4000 + j, param_seed=4500 + j, **common, **kw)
        c["final"] = ["u"] + state_arrays(c)
        out.append(c)
    return out


def layout_cases():
    # XLA's bias-correction rounding depends on the pytree: with exactly one non-empty leaf
    # it computes nu * (1 / (1 - decay**k)) (a reciprocal, then a multiply), with two or
    # more it divides, nu / (1 - decay**k). The library always divides (a shard's result must
    # not depend on how the model is split into tensors), so the Rust test compares the
    # single-leaf cases within a propagated 1-ulp budget on nu_hat / mu_hat.
    #
    # layout1_centered_bc uses initial_scale 0.1: with initial_scale 0, centered + bias
    # correction makes the first step's variance nu_hat - mu_hat**2 = g**2 - g**2, zero up to
    # rounding, so any 1-ulp difference in nu_hat turns into NaN or an arbitrary update (optax
    # itself gives NaN or garbage there); no ulp budget means anything in that regime. The
    # ill-conditioned regime is covered where the library must match exactly: layout2_*
    # (the same configuration with initial_scale 0 on two non-empty leaves, bit-exact family)
    # and edge_constgrad_centered_bc_*.
    common = dict(group="layout", steps=25, eps=1e-6, eps_in_sqrt=False, bias_correction=True, per_step=["u"])
    out = []
    for j, (name, sizes, centered, scale) in enumerate(
        [
            ("layout1_centered_bc", [100], True, 0.1),
            ("layout1_bc_empties", [0, 100, 0], False, 0.0),
            ("layout2_centered_bc_is0", [60, 0, 40], True, 0.0),
        ]
    ):
        c = base_case(name=name, sizes=sizes, centered=centered, lr=0.01, decay=0.95, initial_scale=scale,
                      grad_seed=5000 + j, param_seed=5500 + j, **common)
        c["final"] = state_arrays(c)
        out.append(c)
    return out


def count_cases():
    big = 2147483645
    return [
        base_case(
            name="counts_linear",
            group="counts",
            steps=6,
            schedule="linear_schedule(0.1,0.01,100,0)",
            bias_correction=True,
            count0_schedule=big,
            count0_bias=big,
            grad_seed=6000,
            param_seed=6001,
        ),
        base_case(
            name="counts_cosine_centered",
            group="counts",
            steps=6,
            schedule="cosine_decay_schedule(0.05,1000,0.1,1.0)",
            centered=True,
            bias_correction=True,
            momentum=0.9,
            decay=0.999,
            count0_schedule=big,
            count0_bias=big - 1,
            grad_seed=6010,
            param_seed=6011,
        ),
    ]


def edge_cases(dt):
    huge = 1e30 if dt == np.float32 else 1e200
    n = sum(SMALL)
    out = []
    # eps = 0: a zero gradient while nu == 0 gives rsqrt(0) * 0 = inf * 0 = NaN.
    out.append(
        base_case(
            name="edge_eps0_zero_grad",
            group="edge",
            steps=6,
            lr=0.01,
            eps=0.0,
            overrides=[(0, i, 0.0) for i in range(8)] + [(3, 10, 0.0)],
            grad_seed=7000,
            param_seed=7001,
        )
    )
    # centered variance nu - mu^2 < 0 (not clamped by optax) -> NaN; the trace keeps the NaN
    # forever with momentum 0.0 (0.0 * NaN), momentum None recovers once nu > mu^2.
    mu0 = np.zeros(n)
    mu0[[1, 3, 8, 20, 40]] = 5.0
    for mom, tag in ((0.0, "m0"), (None, "mnone")):
        c = base_case(
            name="edge_centered_negvar_%s" % tag,
            group="edge",
            steps=31,
            lr=0.01,
            centered=True,
            momentum=mom,
            grad_seed=7010,
            param_seed=7011,
        )
        c["init_state"] = dict(nu=np.zeros(n), mu=mu0, t=np.zeros(n))
        out.append(c)
    # non-finite gradients: inf -> nu = inf, update 0*inf = NaN once; NaN -> nu NaN forever.
    ov = [(1, 30, huge), (2, 3, float("inf")), (4, 5, float("nan")), (6, 20, float("-inf")), (9, 12, -huge)]
    for mom, tag in ((0.0, "m0"), (None, "mnone"), (0.9, "m0p9n")):
        out.append(
            base_case(
                name="edge_nonfinite_grad_%s" % tag,
                group="edge",
                steps=15,
                lr=0.01,
                momentum=mom,
                nesterov=(tag == "m0p9n"),
                overrides=ov,
                grad_seed=7020,
                param_seed=7021,
            )
        )
    # constant gradient stream + centered + bias correction: nu_hat - mu_hat^2 is ~0, its
    # sign decided by rounding alone (the most sensitive test of the subtraction pattern).
    for sqrt, tag in ((False, "sqrtF"), (True, "sqrtT")):
        out.append(
            base_case(
                name="edge_constgrad_centered_bc_%s" % tag,
                group="edge",
                steps=31,
                lr=0.01,
                eps=1e-3,
                eps_in_sqrt=sqrt,
                centered=True,
                bias_correction=True,
                grad_steps="fixed",
                grad_seed=7030,
                param_seed=7031,
            )
        )
    return out


def all_cases(dt):
    return basic_cases() + schedule_cases() + large_cases() + layout_cases() + count_cases() + edge_cases(dt)


# --------------------------------------------------------------------------------------
# Running optax
# --------------------------------------------------------------------------------------
def fmt_float(x):
    return repr(float(x))


def fmt_bool(b):
    return "true" if b else "false"


def is_subnormal(a):
    a = np.asarray(a)
    if a.size == 0:
        return 0
    tiny = np.finfo(a.dtype).tiny
    return int(np.sum((a != 0) & (np.abs(a) < tiny)))


def bits_equal(a, b):
    a = np.asarray(a)
    b = np.asarray(b)
    if a.shape != b.shape or a.dtype != b.dtype:
        return False
    ui = np.uint32 if a.dtype == np.float32 else np.uint64
    same = a.view(ui) == b.view(ui)
    both_nan = np.isnan(a) & np.isnan(b)
    return bool(np.all(same | both_nan))


def lr_function(sched, dt):
    """The learning rate as the update step computes it: scale_by_schedule evaluates
    jnp.array(-1 * sched(count), dtype=g.dtype); negated back (exact). Checked to reproduce
    the updates of jitted optax.rmsprop bit for bit (the scalar is computed the same way
    inside the update's fusion)."""
    import jax
    import jax.numpy as jnp

    return jax.jit(lambda cnt: -jnp.array(-1 * sched(cnt), dtype=dt))


def run_case(c, dtname):
    import jax
    import jax.numpy as jnp
    import optax

    dt = np.float32 if dtname == "f32" else np.float64
    sizes = c["sizes"]
    n = sum(sizes)
    offs = np.cumsum([0] + sizes)

    def split(flat):
        return [jnp.asarray(flat[offs[i] : offs[i + 1]]) for i in range(len(sizes))]

    def flat(tree_list):
        return np.concatenate([np.asarray(x) for x in tree_list]).astype(dt) if n else np.zeros(0, dt)

    if c["schedule"] is not None:
        ns = {k: getattr(optax, k) for k in SCHEDULE_FNS}
        assert " " not in c["schedule"]
        sched = eval(c["schedule"], {"__builtins__": {}}, ns)  # noqa: S307 (our own literal)
        lr_arg = sched
    else:
        sched = None
        lr_arg = c["lr"]

    opt = optax.rmsprop(
        learning_rate=lr_arg,
        decay=c["decay"],
        eps=c["eps"],
        initial_scale=c["initial_scale"],
        eps_in_sqrt=c["eps_in_sqrt"],
        centered=c["centered"],
        momentum=c["momentum"],
        nesterov=c["nesterov"],
        bias_correction=c["bias_correction"],
    )
    p_flat = gen_params(c["param_seed"], n, dt)
    params = split(p_flat)
    state = opt.init(params)
    rms, sch, tr = state
    if c["bias_correction"]:
        rms = rms._replace(count=jnp.asarray(c["count0_bias"], jnp.int32))
    if sched is not None:
        sch = sch._replace(count=jnp.asarray(c["count0_schedule"], jnp.int32))
    init_payload = []
    if c["init_state"] is not None:
        nu0 = c["init_state"]["nu"].astype(dt)
        rms = rms._replace(nu=split(nu0))
        init_payload.append(nu0)
        if c["centered"]:
            mu0 = c["init_state"]["mu"].astype(dt)
            rms = rms._replace(mu=split(mu0))
            init_payload.append(mu0)
        if c["momentum"] is not None:
            t0 = c["init_state"]["t"].astype(dt)
            tr = tr._replace(trace=split(t0))
            init_payload.append(t0)
    state = (rms, sch, tr)

    update = jax.jit(opt.update)
    apply = jax.jit(optax.apply_updates)
    if sched is not None:
        lr_fn = lr_function(sched, dt)

    per_step = c["per_step"] or (["u"] + state_arrays(c))
    final = c["final"] or []
    if c["step_elems"] == "all":
        sel = np.arange(n)
    else:
        idx = []
        for i, sz in enumerate(sizes):
            o = offs[i]
            head = list(range(o, o + min(16, sz)))
            tail = list(range(o + max(16, sz - 16), o + sz))
            idx += head + tail
        sel = np.array(idx, dtype=np.int64)

    payload = [a.tobytes() for a in init_payload]
    subn = sum(is_subnormal(a) for a in init_payload)
    p_np = p_flat.copy()
    for k in range(c["steps"]):
        gstep = 0 if c["grad_steps"] == "fixed" else k
        g = gen_grads(c["grad_seed"], gstep, n, dt)
        for ks, ki, kv in c["overrides"]:
            if ks == k:
                g[ki] = dt(kv)
        rms, sch, tr = state
        if sched is not None:
            count_before = sch.count
            lr_k = np.asarray(lr_fn(count_before), dtype=dt)
        else:
            lr_k = np.asarray(c["lr"], dtype=dt)
        updates, state = update(split(g), state, params)
        params = apply(params, updates)
        u = flat(updates)
        new_p = flat(params)
        expect = (p_np + u).astype(dt)
        assert bits_equal(new_p, expect), "jitted apply_updates != p + u in %s step %d" % (c["name"], k)
        p_np = new_p
        rms, sch, tr = state
        arrays = dict(u=u, p=new_p, nu=flat(rms.nu))
        if c["centered"]:
            arrays["mu"] = flat(rms.mu)
        if c["momentum"] is not None:
            arrays["t"] = flat(tr.trace)
        cnt_s = int(sch.count) if sched is not None else -1
        cnt_b = int(rms.count) if c["bias_correction"] else -1
        rec = [np.asarray(lr_k, dt).tobytes(), np.int32(cnt_s).tobytes(), np.int32(cnt_b).tobytes()]
        for a in per_step:
            v = arrays[a][sel]
            subn += is_subnormal(v)
            rec.append(np.ascontiguousarray(v, dtype=dt).tobytes())
        subn += is_subnormal(lr_k)
        payload += rec
        if k == c["steps"] - 1:
            for a in final:
                subn += is_subnormal(arrays[a])
                payload.append(np.ascontiguousarray(arrays[a], dtype=dt).tobytes())

    if sched is not None:
        lr_field = "schedule=" + c["schedule"]
    else:
        lr_field = "lr=" + fmt_float(c["lr"])
    ov = ",".join("%d@%d:%s" % (s, i, fmt_float(v)) for s, i, v in c["overrides"]) or "-"
    fields = [
        "name=" + c["name"],
        "group=" + c["group"],
        "dtype=" + dtname,
        "sizes=" + ",".join(str(s) for s in sizes),
        "steps=%d" % c["steps"],
        lr_field,
        "decay=" + fmt_float(c["decay"]),
        "eps=" + fmt_float(c["eps"]),
        "initial_scale=" + fmt_float(c["initial_scale"]),
        "eps_in_sqrt=" + fmt_bool(c["eps_in_sqrt"]),
        "centered=" + fmt_bool(c["centered"]),
        "momentum=" + ("none" if c["momentum"] is None else fmt_float(c["momentum"])),
        "nesterov=" + fmt_bool(c["nesterov"]),
        "bias_correction=" + fmt_bool(c["bias_correction"]),
        "grad_seed=%d" % c["grad_seed"],
        "param_seed=%d" % c["param_seed"],
        "grad_steps=" + c["grad_steps"],
        "overrides=" + ov,
        "count0_schedule=%d" % c["count0_schedule"],
        "count0_bias=%d" % c["count0_bias"],
        "init_state=" + ("default" if c["init_state"] is None else "stored"),
        "per_step=" + ",".join(per_step),
        "step_elems=" + c["step_elems"],
        "final=" + (",".join(final) or "-"),
        "subnormal_refs=%d" % subn,
    ]
    header = " ".join(fields)
    assert all(" " not in f for f in fields) and header.isascii()
    return header.encode("ascii") + b"\n" + b"".join(payload), subn


def run_dtype(dtname):
    import jax

    jax.config.update("jax_enable_x64", dtname == "f64")
    jax.config.update("jax_platforms", "cpu")
    dt = np.float32 if dtname == "f32" else np.float64
    os.makedirs(OUT_DIR, exist_ok=True)
    total = 0
    for c in all_cases(dt):
        data, subn = run_case(c, dtname)
        fname = "%s_%s.bin" % (c["name"], dtname)
        with open(os.path.join(OUT_DIR, fname), "wb") as f:
            f.write(data)
        total += len(data)
        if subn:
            print("  %s: %d subnormal reference values" % (fname, subn))
    print("%s: %d cases, %d bytes" % (dtname, len(all_cases(dt)), total))


SCHEDULE_FNS = [
    "constant_schedule",
    "linear_schedule",
    "polynomial_schedule",
    "exponential_decay",
    "cosine_decay_schedule",
    "warmup_cosine_decay_schedule",
    "warmup_exponential_decay_schedule",
    "piecewise_constant_schedule",
    "join_schedules",
]


def dump_schedule_hlo(dtname):
    """Print XLA's optimized HLO of every fixture schedule, compiled exactly as the recorded
    learning rates were (lr_function): the exact operation sequence to mirror."""
    import re

    import jax

    jax.config.update("jax_enable_x64", dtname == "f64")
    jax.config.update("jax_platforms", "cpu")
    import jax.numpy as jnp
    import optax

    dt = np.float32 if dtname == "f32" else np.float64
    ns = {k: getattr(optax, k) for k in SCHEDULE_FNS}
    specs = [s for _, s in SCHEDULES] + [c["schedule"] for c in count_cases()]
    for spec in specs:
        sched = eval(spec, {"__builtins__": {}}, ns)  # noqa: S307 (our own literal)
        text = lr_function(sched, dt).lower(jnp.int32(0)).compile().as_text()
        keep = []
        for line in text.splitlines():
            line = re.sub(r", metadata=\{[^}]*\}", "", line)
            if not line.strip() or line.startswith(("HloModule", "FileNames", "FunctionNames", "FileLocations", "StackFrames")):
                continue
            if re.match(r"^\d+ ", line) or "file_location_id" in line or "file_name_id" in line:
                continue
            keep.append(line)
        print("=== %s %s\n%s\n" % (dtname, spec, "\n".join(keep)))


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--dtype", choices=["f32", "f64"], help="(internal) generate one half in-process")
    ap.add_argument(
        "--dump-schedule-hlo",
        action="store_true",
        help="print the optimized HLO of every fixture schedule (both dtypes) and exit",
    )
    args = ap.parse_args()
    if args.dump_schedule_hlo:
        if args.dtype:
            dump_schedule_hlo(args.dtype)
        else:
            for dtname in ("f32", "f64"):
                subprocess.run(
                    [sys.executable, os.path.abspath(__file__), "--dtype", dtname, "--dump-schedule-hlo"], check=True
                )
        return
    if args.dtype:
        run_dtype(args.dtype)
        return
    os.makedirs(OUT_DIR, exist_ok=True)
    for f in os.listdir(OUT_DIR):
        if f.endswith(".bin") or f == "MANIFEST":
            os.remove(os.path.join(OUT_DIR, f))
    for dtname in ("f32", "f64"):
        subprocess.run([sys.executable, os.path.abspath(__file__), "--dtype", dtname], check=True)
    import jax
    import jaxlib
    import optax

    files = sorted(f for f in os.listdir(OUT_DIR) if f.endswith(".bin"))
    with open(os.path.join(OUT_DIR, "MANIFEST"), "w") as f:
        f.write("# generated by tools/gen_fixtures.py; one fixture file per line\n")
        f.write(
            "# jax %s, jaxlib %s, optax %s, numpy %s, python %s, machine %s\n"
            % (jax.__version__, jaxlib.__version__, optax.__version__, np.__version__, platform.python_version(), platform.machine())
        )
        for name in files:
            f.write(name + "\n")
    size = sum(os.path.getsize(os.path.join(OUT_DIR, x)) for x in files)
    print("wrote %d fixtures, %d bytes, to %s" % (len(files), size, OUT_DIR))


if __name__ == "__main__":
    main()

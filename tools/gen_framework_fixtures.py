#!/usr/bin/env python3
"""Generate tests/fixtures/frameworks/*.bin: trajectories of optax chains (gradient
transforms in front of optax.rmsprop) and of torch.optim.RMSprop, run by the REAL
frameworks, replayed by tests/framework_conformance.rs without any framework installed.

Requirements (versions that produced the committed fixtures):
    a venv with jax==0.10.2 optax==0.2.8 torch==2.15 (CPU) tensorflow-cpu==2.21 keras==3.15 numpy
    (XLA:CPU and ATen on x86-64, AVX-512 + FMA, AMD EPYC)

torch cases: torch.optim.RMSprop(params, foreach=False, **kwargs) stepped with the stored
gradients (and, for one case, torch.optim.lr_scheduler.StepLR; the learning rate each step
used is stored); the same run with foreach=True is compared bitwise and the header's
foreach_agrees says whether every parameter matched. Header extras: flavor=pytorch; the
updates arrays are zeros (torch has no separate update).

Usage:
    python3 tools/gen_framework_fixtures.py            # rewrites every fixture and MANIFEST
    python3 tools/gen_framework_fixtures.py --dtype f32   # (internal) one half, this process

jax_enable_x64 is process-global, so the parent runs the f32 half and the f64 half as two
subprocesses of this script.

How optax is driven (as a user does):
    opt = optax.chain(optax.scale(-1.0)            # maximize (torch semantics; exact)
                      optax.clip_by_global_norm(n), optax.clip(d),
                      optax.masked(optax.add_decayed_weights(wd), mask),
                      optax.rmsprop(lr or schedule, ...))      # only the parts a case sets
    updates, state = jax.jit(opt.update)(grads, state, params)
    params = jax.jit(optax.apply_updates)(params, updates)

File format (little-endian):
    1. one ASCII line of space-separated key=value fields ending in '\\n': name framework
       dtype sizes steps lr|schedule decay eps initial_scale eps_in_sqrt centered momentum
       nesterov bias_correction maximize clip global_norm weight_decay wd_kind mask
       grads (normal|dyadic) (floats are Python repr: exact doubles; '-' = off).
    2. initial params, full length (dtype).
    3. per step: the learning rate used (f64), optax's global norm of the step's gradients
       computed by a separate jitted optax.tree.norm (f64; NaN if no global-norm clip),
       the gradients, the updates, the params after the step (dtype, full length each).
"""
import argparse
import os
import struct
import subprocess
import sys

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.join(HERE, "..", "tests", "fixtures", "frameworks")


def cases():
    """(name, sizes, steps, dict of options)."""
    small = [1, 7, 0, 33, 5]
    big = [2000, 0, 2500, 17]  # 4517 elements: crosses a 4096-element norm block
    return [
        ("optax_clip", small, 20, dict(clip=0.05)),
        ("optax_gnorm_mom", small, 20, dict(global_norm=3.0, momentum=0.9, grads="dyadic")),
        ("optax_gnorm_normal", small, 20, dict(global_norm=3.0)),
        ("optax_wd_mask_centered", small, 20,
         dict(weight_decay=0.01, mask=[1, 0, 1, 1, 0], centered=True)),
        ("optax_all_sched", small, 25,
         dict(maximize=True, global_norm=2.5, clip=0.3, weight_decay=0.05, mask=[1, 1, 0, 0, 1],
              momentum=0.9, bias_correction=True, initial_scale=0.1,
              schedule="linear_schedule(0.02,0.001,20,3)", grads="dyadic")),
        ("optax_all_noclip_sched", small, 25,
         dict(maximize=True, global_norm=2.5, weight_decay=0.05, mask=[1, 1, 0, 0, 1],
              momentum=0.9, bias_correction=True, initial_scale=0.1,
              schedule="linear_schedule(0.02,0.001,20,3)", grads="dyadic")),
        ("optax_gnorm_big", big, 6, dict(global_norm=20.0, centered=True, momentum=0.5,
                                                  grads="dyadic")),
    ]


def run(dtype):
    if dtype == "f64":
        os.environ["JAX_ENABLE_X64"] = "1"
    import jax
    import jax.numpy as jnp
    import optax

    jax.config.update("jax_enable_x64", dtype == "f64")
    np_t = np.float32 if dtype == "f32" else np.float64
    for name, sizes, steps, o in cases():
        rng = np.random.default_rng(sum(map(ord, name)))
        o = dict(o)
        lr = o.get("lr", 0.01)
        sched = o.get("schedule")
        lr_arg = eval("optax." + sched) if sched else lr
        parts = []
        if o.get("maximize"):
            parts.append(optax.scale(-1.0))
        if "global_norm" in o:
            parts.append(optax.clip_by_global_norm(o["global_norm"]))
        if "clip" in o:
            parts.append(optax.clip(o["clip"]))
        mask = o.get("mask")
        if "weight_decay" in o:
            wdt = optax.add_decayed_weights(o["weight_decay"])
            if mask is not None:
                wdt = optax.masked(wdt, [bool(m) for m in mask])
            parts.append(wdt)
        mom = o.get("momentum")
        parts.append(optax.rmsprop(
            lr_arg, decay=o.get("decay", 0.9), eps=o.get("eps", 1e-8),
            initial_scale=o.get("initial_scale", 0.0), eps_in_sqrt=False,
            centered=o.get("centered", False), momentum=mom,
            nesterov=o.get("nesterov", False), bias_correction=o.get("bias_correction", False)))
        opt = optax.chain(*parts)
        params = [jnp.asarray(rng.uniform(-2, 2, n).astype(np_t)) for n in sizes]
        state = opt.init(params)
        upd = jax.jit(opt.update)
        app = jax.jit(optax.apply_updates)
        norm = jax.jit(optax.tree.norm)
        f = lambda v: "-" if v is None else repr(float(v))
        header = dict(
            name=name, framework="optax", dtype=dtype, sizes=",".join(map(str, sizes)),
            steps=steps, lr=("-" if sched else repr(lr)), schedule=(sched or "-"),
            decay=repr(o.get("decay", 0.9)), eps=repr(o.get("eps", 1e-8)),
            initial_scale=repr(o.get("initial_scale", 0.0)), eps_in_sqrt=0,
            centered=int(o.get("centered", False)), momentum=f(mom),
            nesterov=int(o.get("nesterov", False)),
            bias_correction=int(o.get("bias_correction", False)),
            maximize=int(o.get("maximize", False)), clip=f(o.get("clip")),
            global_norm=f(o.get("global_norm")), weight_decay=f(o.get("weight_decay")),
            wd_kind="coupled", mask=("-" if mask is None else ",".join(map(str, mask))),
            grads=o.get("grads", "normal"))
        buf = bytearray((" ".join(f"{k}={v}" for k, v in header.items()) + "\n").encode())
        for p in params:
            buf += np.asarray(p, np_t).tobytes()
        sched_fn = lr_arg if sched else None
        for k in range(steps):
            scale = [0.0625, 1.0, 4.0][k % 3]  # the global norm clip triggers on some steps
            if o.get("grads") == "dyadic":
                # k * 2^-5 * scale, |k| < 32: squares and every partial sum are exact in
                # f32 (sum < 2^24 units), so XLA's reduction order and the library's give
                # the same, correctly rounded, global norm, and a trajectory can be compared
                # bit for bit.
                grads = [jnp.asarray((rng.integers(-31, 32, n) * (scale / 32)).astype(np_t))
                         for n in sizes]
            else:
                grads = [jnp.asarray((rng.standard_normal(n) * scale).astype(np_t))
                         for n in sizes]
            lr_k = float(jax.jit(sched_fn)(jnp.asarray(k, jnp.int32))) if sched_fn else lr
            nrm = float(norm(grads)) if "global_norm" in o else float("nan")
            updates, state = upd(grads, state, params)
            new = app(params, updates)
            for p, u, q in zip(params, updates, new):
                assert np.array_equal(np.asarray(p) + np.asarray(u), np.asarray(q), equal_nan=True)
            params = new
            buf += struct.pack("<dd", lr_k, nrm)
            for arrs in (grads, updates, params):
                for a in arrs:
                    buf += np.asarray(a, np_t).tobytes()
        with open(os.path.join(OUT, f"{name}_{dtype}.bin"), "wb") as fh:
            fh.write(bytes(buf))


def torch_cases():
    """(name, sizes, steps, RMSprop kwargs, lr schedule or None)."""
    small = [1, 7, 0, 33, 5]
    return [
        ("torch_default", small, 20, dict(lr=0.01), None),
        ("torch_centered_mom_wd_max", small, 20,
         dict(lr=0.005, alpha=0.9, eps=1e-6, weight_decay=0.01, momentum=0.9, centered=True,
              maximize=True), None),
        ("torch_alpha0p3_centered", small, 20, dict(lr=0.002, alpha=0.3, centered=True), None),
        # torch.optim.lr_scheduler: the learning rate changes between steps, outside the
        # momentum buffer (where optax's differs).
        ("torch_mom_steplr", small, 24, dict(lr=0.02, alpha=0.95, momentum=0.5),
         ("StepLR", dict(step_size=5, gamma=0.5))),
    ]


def run_torch(dtype):
    import torch
    tt = torch.float32 if dtype == "f32" else torch.float64
    np_t = np.float32 if dtype == "f32" else np.float64
    for name, sizes, steps, kw, sched in torch_cases():
        rng = np.random.default_rng(sum(map(ord, name)))
        p0 = [rng.uniform(-2, 2, n).astype(np_t) for n in sizes]
        grads_all = [[(rng.standard_normal(n) * [0.0625, 1.0, 4.0][k % 3]).astype(np_t)
                      for n in sizes] for k in range(steps)]
        runs = {}
        for foreach in (False, True):
            params = [torch.tensor(p, dtype=tt, requires_grad=True) for p in p0]
            opt = torch.optim.RMSprop(params, foreach=foreach, **kw)
            sch = getattr(torch.optim.lr_scheduler, sched[0])(opt, **sched[1]) if sched else None
            lrs, after = [], []
            for k in range(steps):
                for p, g in zip(params, grads_all[k]):
                    p.grad = torch.tensor(g, dtype=tt)
                lrs.append(opt.param_groups[0]["lr"])
                opt.step()
                if sch:
                    sch.step()
                after.append([p.detach().numpy().copy() for p in params])
            runs[foreach] = (lrs, after)
        agree = all(np.array_equal(a, b) for sa, sb in zip(runs[False][1], runs[True][1])
                    for a, b in zip(sa, sb))
        lrs, after = runs[False]
        mom = kw.get("momentum", 0.0)
        header = dict(
            name=name, framework="torch", dtype=dtype, sizes=",".join(map(str, sizes)),
            steps=steps, lr=repr(kw["lr"]), schedule="-", decay=repr(kw.get("alpha", 0.99)),
            eps=repr(kw.get("eps", 1e-8)), initial_scale="0.0", eps_in_sqrt=0,
            centered=int(kw.get("centered", False)), momentum=(repr(mom) if mom > 0 else "-"),
            nesterov=0, bias_correction=0, maximize=int(kw.get("maximize", False)), clip="-",
            global_norm="-", weight_decay=(repr(kw["weight_decay"]) if kw.get("weight_decay")
                                           else "-"),
            wd_kind="coupled", mask="-", grads="normal", flavor="pytorch",
            foreach_agrees=int(agree))
        buf = bytearray((" ".join(f"{k}={v}" for k, v in header.items()) + "\n").encode())
        for p in p0:
            buf += p.tobytes()
        for k in range(steps):
            buf += struct.pack("<dd", lrs[k], float("nan"))
            for g in grads_all[k]:
                buf += g.tobytes()
            for n in sizes:  # no separate updates in torch: zeros
                buf += np.zeros(n, np_t).tobytes()
            for p in after[k]:
                buf += p.tobytes()
        with open(os.path.join(OUT, f"{name}_{dtype}.bin"), "wb") as fh:
            fh.write(bytes(buf))


def tf1_cases():
    """(name, sizes, steps, kwargs of the kernel, per-step lr function or None)."""
    small = [1, 7, 0, 33, 5]
    return [
        ("tf1_default", small, 20, dict(lr=0.01, rho=0.9, momentum=None, eps=1e-10,
                                        centered=False), None),
        ("tf1_mom_centered", small, 20, dict(lr=0.005, rho=0.95, momentum=0.9, eps=1e-6,
                                             centered=True), None),
        # A learning rate changed every few steps (tf.compat.v1 passes the current value).
        ("tf1_mom_sched", small, 24, dict(lr=0.02, rho=0.9, momentum=0.5, eps=1e-10,
                                          centered=False), lambda k: 0.02 * 0.5 ** (k // 5)),
    ]


def run_tf1(dtype):
    """The TF1 optimizer's CPU kernels, called eagerly as RMSPropOptimizer calls them:
    tf.raw_ops.ResourceApplyRMSProp / ResourceApplyCenteredRMSProp (ms starts at ones, mg
    and mom at zeros; momentum 0.0 where the case has none)."""
    import tensorflow as tf
    np_t = np.float32 if dtype == "f32" else np.float64
    for name, sizes, steps, kw, sched in tf1_cases():
        rng = np.random.default_rng(sum(map(ord, name)))
        p0 = [rng.uniform(-2, 2, n).astype(np_t) for n in sizes]
        var = [tf.Variable(p) for p in p0]
        ms = [tf.Variable(np.ones(n, np_t)) for n in sizes]
        mg = [tf.Variable(np.zeros(n, np_t)) for n in sizes]
        mom = [tf.Variable(np.zeros(n, np_t)) for n in sizes]
        header = dict(
            name=name, framework="tf1", dtype=dtype, sizes=",".join(map(str, sizes)),
            steps=steps, lr=repr(kw["lr"]), schedule="-", decay=repr(kw["rho"]),
            eps=repr(kw["eps"]), initial_scale="1.0", eps_in_sqrt=0,
            centered=int(kw["centered"]),
            momentum=("-" if kw["momentum"] is None else repr(kw["momentum"])),
            nesterov=0, bias_correction=0, maximize=0, clip="-", global_norm="-",
            weight_decay="-", wd_kind="coupled", mask="-", grads="normal", flavor="tf1")
        buf = bytearray((" ".join(f"{k}={v}" for k, v in header.items()) + "\n").encode())
        for p in p0:
            buf += p.tobytes()
        for k in range(steps):
            lr = sched(k) if sched else kw["lr"]
            grads = [(rng.standard_normal(n) * [0.0625, 1.0, 4.0][k % 3]).astype(np_t)
                     for n in sizes]
            c = lambda x: np.asarray(x, np_t)
            for i in range(len(sizes)):
                args = dict(var=var[i].handle, ms=ms[i].handle, mom=mom[i].handle, lr=c(lr),
                            rho=c(kw["rho"]), momentum=c(kw["momentum"] or 0.0),
                            epsilon=c(kw["eps"]), grad=grads[i])
                if kw["centered"]:
                    tf.raw_ops.ResourceApplyCenteredRMSProp(mg=mg[i].handle, **args)
                else:
                    tf.raw_ops.ResourceApplyRMSProp(**args)
            buf += struct.pack("<dd", lr, float("nan"))
            for g in grads:
                buf += g.tobytes()
            for m in mom:  # the update TF applies: var -= mom
                buf += (-m.numpy()).astype(np_t).tobytes()
            for v in var:
                buf += v.numpy().tobytes()
        with open(os.path.join(OUT, f"{name}_{dtype}.bin"), "wb") as fh:
            fh.write(bytes(buf))


def keras_cases():
    """(name, sizes, steps, keras.optimizers.RMSprop kwargs, schedule or None)."""
    small = [1, 7, 0, 33, 5]
    return [
        ("keras_default", small, 20, dict(learning_rate=0.01), None),
        ("keras_mom_centered", small, 20,
         dict(learning_rate=0.005, rho=0.95, momentum=0.9, epsilon=1e-6, centered=True), None),
        ("keras_wd_mom_sched", small, 24, dict(momentum=0.5, weight_decay=0.01),
         dict(initial_learning_rate=0.02, decay_steps=5, decay_rate=0.5, staircase=True)),
    ]


def run_keras(dtype):
    """keras.optimizers.RMSprop on the TensorFlow backend, apply_gradients called eagerly
    (each ops.* call one TensorFlow kernel; jit_compile / the jax backend fuse differently)."""
    os.environ["KERAS_BACKEND"] = "tensorflow"
    import keras
    keras.config.set_floatx("float32" if dtype == "f32" else "float64")
    assert keras.backend.backend() == "tensorflow"
    np_t = np.float32 if dtype == "f32" else np.float64
    for name, sizes, steps, kw, sched in keras_cases():
        rng = np.random.default_rng(sum(map(ord, name)))
        p0 = [rng.uniform(-2, 2, n).astype(np_t) for n in sizes]
        var = [keras.Variable(p, dtype=dtype.replace("f", "float")) for p in p0]
        kw = dict(kw)
        if sched:
            kw["learning_rate"] = keras.optimizers.schedules.ExponentialDecay(**sched)
        opt = keras.optimizers.RMSprop(**kw)
        opt.build(var)
        mom = kw.get("momentum", 0.0)
        wd = kw.get("weight_decay")
        header = dict(
            name=name, framework="keras", dtype=dtype, sizes=",".join(map(str, sizes)),
            steps=steps, lr=repr(kw["learning_rate"] if not sched else sched["initial_learning_rate"]),
            schedule="-", decay=repr(kw.get("rho", 0.9)), eps=repr(kw.get("epsilon", 1e-7)),
            initial_scale="0.0", eps_in_sqrt=1, centered=int(kw.get("centered", False)),
            momentum=(repr(mom) if mom > 0 else "-"), nesterov=0, bias_correction=0,
            maximize=0, clip="-", global_norm="-", weight_decay=(repr(wd) if wd else "-"),
            wd_kind="decoupled", mask="-", grads="normal", flavor="keras")
        buf = bytearray((" ".join(f"{k}={v}" for k, v in header.items()) + "\n").encode())
        for p in p0:
            buf += p.tobytes()
        for k in range(steps):
            lr = float(np.asarray(keras.ops.convert_to_numpy(opt.learning_rate)))
            grads = [(rng.standard_normal(n) * [0.0625, 1.0, 4.0][k % 3]).astype(np_t)
                     for n in sizes]
            opt.apply_gradients(zip([keras.ops.convert_to_tensor(g) for g in grads], var))
            buf += struct.pack("<dd", lr, float("nan"))
            for g in grads:
                buf += g.tobytes()
            for n in sizes:  # params are compared; no separate update
                buf += np.zeros(n, np_t).tobytes()
            for v in var:
                buf += np.asarray(v.numpy(), np_t).tobytes()
        with open(os.path.join(OUT, f"{name}_{dtype}.bin"), "wb") as fh:
            fh.write(bytes(buf))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--dtype")
    a = ap.parse_args()
    if a.dtype:
        run(a.dtype)
        run_torch(a.dtype)
        run_tf1(a.dtype)
        run_keras(a.dtype)
        return
    os.makedirs(OUT, exist_ok=True)
    for old in os.listdir(OUT):
        if old.endswith(".bin"):
            os.remove(os.path.join(OUT, old))
    for d in ("f32", "f64"):
        subprocess.run([sys.executable, __file__, "--dtype", d], check=True)
    import jax
    import optax
    import tensorflow as tf
    import torch
    files = sorted(x for x in os.listdir(OUT) if x.endswith(".bin"))
    with open(os.path.join(OUT, "MANIFEST"), "w") as fh:
        fh.write(f"# jax {jax.__version__}, optax {optax.__version__}, numpy {np.__version__}, "
                 f"torch {torch.__version__} (CPU capability "
                 f"{torch.backends.cpu.get_cpu_capability()}), tensorflow-cpu {tf.__version__}\n")
        fh.write("\n".join(files) + "\n")


if __name__ == "__main__":
    main()

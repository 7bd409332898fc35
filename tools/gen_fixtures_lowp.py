#!/usr/bin/env python3
"""Generate the bfloat16 / float16 optax conformance fixtures in tests/fixtures/lowp/ from
the REAL optax.rmsprop, read by tests/optax_lowp.rs (which needs no Python).

Requirements (versions used to produce the committed fixtures):
    a venv with jax==0.10.2 jaxlib==0.10.2 optax==0.2.8 numpy ml_dtypes
    (CPU backend: XLA:CPU on x86-64 with AVX-512 and FMA, AMD EPYC.)

Usage:
    python3 tools/gen_fixtures_lowp.py        # rewrites tests/fixtures/lowp/*.bin and MANIFEST
    python3 tools/gen_fixtures_lowp.py --probe   # the measurement behind src/lowp.rs: jitted
                                                 # optax vs per-op / FMA / round-once emulations

How optax is driven (exactly as a user does): params a list of 1-D bf16/f16 arrays,
`opt = optax.rmsprop(<python float or schedule>, decay=..., ...)`, `state = opt.init(params)`,
`updates, state = jax.jit(opt.update)(grads, state, params)`,
`params = jax.jit(optax.apply_updates)(params, updates)`. Hyperparameters are Python floats.

File format (little endian), one file per case `<name>_<bf16|f16>.bin`:
    b"RMSLOWP1"
    u32 header length, then that many bytes of ASCII `key=value` lines:
        dtype, sizes (comma separated), steps, lr (python float repr) or
        schedule=linear:<init>,<end>,<transition_steps>,<transition_begin> or
        schedule=cosine:<init>,<decay_steps>,<alpha>,<exponent>,
        decay, eps, initial_scale, eps_in_sqrt, centered, momentum (`none` or a float),
        nesterov, bias_correction, components (which state arrays follow: nu[,mu][,trace])
    then u16 arrays of n = sum(sizes) elements each (raw bf16/f16 bits):
        initial params
        per step: grads, updates, params after the step, then each listed state component
"""
import os
import struct
import sys

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.join(HERE, "..", "tests", "fixtures", "lowp")


def cases():
    """(name, sizes, steps, kwargs, schedule spec or None, gradient kind)."""
    out = []
    layout = [1, 7, 0, 33]
    decays = [0.9, 0.95, 0.99, 0.8]
    i = 0
    for c in (0, 1):
        for s in (0, 1):
            for b in (0, 1):
                for m in ("none", "0p0", "0p9", "0p9n"):
                    mom = None if m == "none" else (0.0 if m == "0p0" else 0.9)
                    kw = dict(
                        learning_rate=[0.01, 0.003, 0.05][i % 3],
                        decay=decays[i % 4],
                        eps=[1e-3, 1e-4, 1e-2, 1e-3][i % 4],
                        initial_scale=[0.0, 0.1, 1.0][i % 3],
                        eps_in_sqrt=bool(s),
                        centered=bool(c),
                        momentum=mom,
                        nesterov=m.endswith("n"),
                        bias_correction=bool(b),
                    )
                    if c and b and kw["initial_scale"] == 0.0:
                        kw["initial_scale"] = 0.1  # avoid g^2 - g^2 at the first step
                    out.append((f"basic_c{c}_s{s}_b{b}_m{m}", layout, 12, kw, None, "normal"))
                    i += 1
    dflt = dict(decay=0.9, eps=1e-3, initial_scale=0.0, eps_in_sqrt=True, centered=False,
                momentum=None, nesterov=False, bias_correction=False)
    cbm = dict(decay=0.9, eps=1e-3, initial_scale=0.1, eps_in_sqrt=False, centered=True,
               momentum=0.9, nesterov=False, bias_correction=True)
    out.append(("sched_linear_default", layout, 16, dflt, ("linear", 0.02, 0.001, 10, 3), "normal"))
    out.append(("sched_cosine_cbm", layout, 16, cbm, ("cosine", 0.02, 12, 0.1, 1.0), "normal"))
    out.append(("large_default", [1, 1000, 0, 3071], 6, dict(dflt, learning_rate=0.01), None, "normal"))
    out.append(("large_cbm", [1, 1000, 0, 3071], 6, dict(cbm, learning_rate=0.01), None, "normal"))
    out.append(("empty_only", [0, 0], 3, dict(dflt, learning_rate=0.01), None, "normal"))
    out.append(("edge_special", layout, 8, dict(dflt, learning_rate=0.01, momentum=0.9), None, "special"))
    out.append(("edge_special_sqrtF", layout, 8, dict(cbm, learning_rate=0.01), None, "special"))
    # optax's default eps=1e-8: zero in float16 (a zero gradient then gives 0 * inf = NaN),
    # tiny next to nu in bfloat16.
    out.append(("eps_default", layout, 6, dict(dflt, learning_rate=0.01, eps=1e-8), None, "zeros"))
    return out


def grads_for(kind, rng, n, step, dt):
    g = (rng.standard_normal(n) * np.exp(rng.uniform(-4, 4, n))).astype(np.float32)
    if kind == "zeros":
        g[::3] = 0.0
    if kind == "special":
        fi = __import__("ml_dtypes").finfo(dt)
        specials = [0.0, -0.0, float(fi.smallest_subnormal), float(fi.smallest_normal),
                    float(fi.max), -float(fi.max), 1e30 if dt != np.float16 else 300.0]
        for j in range(n):
            if (j + step) % 5 == 0:
                g[j] = specials[(j + 3 * step) % len(specials)]
        if step == 5:
            g[2] = np.inf
        if step == 6:
            g[3] = np.nan
    return g.astype(dt)


def run_case(name, sizes, steps, kw, sched, gkind, dt, dname):
    import jax
    import jax.numpy as jnp
    import optax

    kw = dict(kw)
    if sched is None:
        lr = kw.pop("learning_rate")
        lr_line = f"lr={lr!r}"
    elif sched[0] == "linear":
        kw.pop("learning_rate", None)
        lr = optax.linear_schedule(sched[1], sched[2], sched[3], sched[4])
        lr_line = f"schedule=linear:{sched[1]!r},{sched[2]!r},{sched[3]},{sched[4]}"
    else:
        kw.pop("learning_rate", None)
        lr = optax.cosine_decay_schedule(sched[1], sched[2], sched[3], sched[4])
        lr_line = f"schedule=cosine:{sched[1]!r},{sched[2]},{sched[3]!r},{sched[4]!r}"
    opt = optax.rmsprop(lr, **kw)
    seed = sum(map(ord, name + dname))
    rng = np.random.default_rng(seed)
    n = sum(sizes)
    params = [jnp.asarray(rng.standard_normal(k).astype(np.float32).astype(dt)) for k in sizes]
    state = opt.init(params)
    upd = jax.jit(opt.update)
    app = jax.jit(optax.apply_updates)

    def flat(xs):
        return np.concatenate([np.asarray(x).reshape(-1) for x in xs]) if xs else np.zeros(0, dt)

    comps = ["nu"] + (["mu"] if kw["centered"] else []) + (["trace"] if kw["momentum"] is not None else [])

    def state_arrays(st):
        rms = st[0]
        out = {"nu": flat(rms.nu)}
        if kw["centered"]:
            out["mu"] = flat(rms.mu)
        if kw["momentum"] is not None:
            tr = [s for s in st if hasattr(s, "trace")][0]
            out["trace"] = flat(tr.trace)
        return out

    body = [flat(params)]
    for step in range(steps):
        gflat = grads_for(gkind, rng, n, step, dt)
        grads, off = [], 0
        for k in sizes:
            grads.append(jnp.asarray(gflat[off:off + k]))
            off += k
        updates, state = upd(grads, state, params)
        params = app(params, updates)
        sa = state_arrays(state)
        body += [gflat, flat(updates), flat(params)] + [sa[c] for c in comps]
    for a in body:
        assert a.dtype == dt and a.size == n, (name, a.dtype, a.size)
    header = "\n".join([
        f"dtype={dname}", "sizes=" + ",".join(map(str, sizes)), f"steps={steps}", lr_line,
        f"decay={kw['decay']!r}", f"eps={kw['eps']!r}", f"initial_scale={kw['initial_scale']!r}",
        f"eps_in_sqrt={int(kw['eps_in_sqrt'])}", f"centered={int(kw['centered'])}",
        "momentum=" + ("none" if kw["momentum"] is None else repr(kw["momentum"])),
        f"nesterov={int(kw['nesterov'])}", f"bias_correction={int(kw['bias_correction'])}",
        "components=" + ",".join(comps),
    ]).encode()
    fn = f"{name}_{dname}.bin"
    with open(os.path.join(OUT, fn), "wb") as f:
        f.write(b"RMSLOWP1" + struct.pack("<I", len(header)) + header)
        for a in body:
            f.write(np.ascontiguousarray(a).view("<u2").tobytes())
    return fn


def probe():
    """Jitted optax vs emulations (two steps, 65,536 elements): which rounding XLA uses."""
    import jax
    import jax.numpy as jnp
    import ml_dtypes
    import optax

    n = 1 << 16
    rng = np.random.default_rng(0)
    for dt, dname in ((ml_dtypes.bfloat16, "bf16"), (np.float16, "f16")):
        def r(x):
            return np.asarray(x, np.float32).astype(dt).astype(np.float32)

        def c(v):
            return np.float32(np.float64(v).astype(dt))

        for sq in (True, False):
            eps = 1e-3
            opt = optax.rmsprop(0.01, decay=0.9, eps=eps, eps_in_sqrt=sq)
            p = jnp.asarray(rng.standard_normal(n).astype(np.float32).astype(dt))
            gs = [(rng.standard_normal(n) * np.exp(rng.uniform(-3, 3, n))).astype(np.float32).astype(dt)
                  for _ in range(2)]
            st = opt.init(p)

            @jax.jit
            def step(p, g, st):
                u, st = opt.update(g, st, p)
                return optax.apply_updates(p, u), st

            pj, sj = p, st
            for g in gs:
                pj, sj = step(pj, jnp.asarray(g), sj)
            for mode in ("per-op", "fma", "once"):
                pe = np.asarray(p).astype(np.float32)
                nu = np.zeros(n, np.float32)
                for g in gs:
                    g = g.astype(np.float32)
                    if mode == "once":
                        nu = r(np.float32(0.1) * g * g + np.float32(0.9) * nu)
                        s = 1 / np.sqrt(nu + np.float32(eps)) if sq else 1 / (np.sqrt(nu) + np.float32(eps))
                        pe = r(pe + np.float32(-0.01) * (s * g))
                        continue
                    if mode == "fma":
                        nu = r((np.float64(c(0.1)) * np.float64(r(g * g)) + np.float64(r(c(0.9) * nu))).astype(np.float32))
                    else:
                        nu = r(r(c(0.1) * r(g * g)) + r(c(0.9) * nu))
                    s = r(1 / np.sqrt(r(nu + c(eps)))) if sq else r(c(1) / r(r(np.sqrt(nu)) + c(eps)))
                    pe = r(pe + r(c(-0.01) * r(s * g)))
                mn = int((nu.astype(dt).view(np.uint16) != np.asarray(sj[0].nu).view(np.uint16)).sum())
                mp = int((pe.astype(dt).view(np.uint16) != np.asarray(pj).view(np.uint16)).sum())
                print(f"{dname} eps_in_sqrt={sq} {mode:7s} nu mismatches {mn:6d}  params mismatches {mp:6d}")


def main():
    if "--probe" in sys.argv:
        probe()
        return
    import jax
    import ml_dtypes
    import optax

    os.makedirs(OUT, exist_ok=True)
    for f in os.listdir(OUT):
        if f.endswith(".bin"):
            os.remove(os.path.join(OUT, f))
    files = []
    for dt, dname in ((ml_dtypes.bfloat16, "bf16"), (np.float16, "f16")):
        for case in cases():
            files.append(run_case(*case, dt, dname))
    with open(os.path.join(OUT, "MANIFEST"), "w") as f:
        f.write(f"# jax {jax.__version__}, optax {optax.__version__}, numpy {np.__version__}, "
                f"ml_dtypes {ml_dtypes.__version__}\n")
        for fn in sorted(files):
            f.write(fn + "\n")
    print(f"{len(files)} files")


if __name__ == "__main__":
    main()

#!/usr/bin/env python3
"""Checkpoints against the REAL optax, through tools/optax_state.py and the library (ctypes).

Two parts:
* numpy only (CI can run these with pytest): the Python codec in tools/optax_state.py reads
  the committed tests/data/checkpoint_v1_*.ckpt files and re-encodes them byte for byte (two
  independent implementations of the format agree), and rejects corrupted bytes.
* jax + optax (a tool run, NOT in CI; versions: jax 0.10.2, optax 0.2.8, numpy 2.4.6). For each
  case: optax.rmsprop runs K1 steps; its state is flattened to the npz + JSON form, converted
  to a checkpoint with the tool, loaded into the library with
  rmsprop_create_from_checkpoint, and both continue K2 steps with the same gradients:
  params and nu/mu/trace must be bit-identical. Then the reverse: the library's checkpoint is
  converted back into an optax state (tool), and both continue K3 more steps, bit-identical.
  `--write` commits what CI re-checks without jax (tests/checkpoint.rs,
  optax_states_continue_exactly):
      tests/data/optax/<case>.ckpt        optax's state after K1 steps, as a checkpoint
      tests/data/optax/<case>.after.ckpt  optax's state after K1 + K2 steps
      tests/data/optax/<case>.cont.bin    one ASCII line
                                              case=<name> dtype=f32|f64 sizes=a,b steps=K2
                                              counts=<comma list of the counts optax keeps, or none>
                                          then little-endian arrays of the dtype: the params
                                          after K1 steps, the K2 gradient vectors, the params
                                          after K1 + K2 steps (flat, layout order).

Usage (the library must be built: cargo build --release, or set RMSPROP_LIBRARY):
    python3 tests/python/test_optax_roundtrip.py            # check against the committed files
    python3 tests/python/test_optax_roundtrip.py --write    # regenerate them
    python3 -m pytest tests/python/test_optax_roundtrip.py  # the same (jax part skipped without jax)

jax_enable_x64 is process-global, so each dtype runs in its own subprocess of this script.
"""

import ctypes
import json
import os
import subprocess
import sys
import tempfile
import zlib
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "tools"))
import optax_state as tool  # noqa: E402

DATA = ROOT / "tests" / "data" / "optax"
SHAPES = [(5,), (2, 3)]
K1, K2, K3 = 4, 3, 2

JOIN = {
    "kind": "join",
    "boundaries": [3],
    "schedules": [
        {"kind": "warmup_cosine_decay", "init_value": 0.0, "peak_value": 0.02,
         "warmup_steps": 2, "decay_steps": 5, "end_value": 0.002, "exponent": 1.0},
        {"kind": "exponential_decay", "init_value": 0.01, "transition_steps": 2,
         "decay_rate": 0.5, "transition_begin": 1, "staircase": True, "end_value": 0.001},
    ],
}

# (name, dtype, config, exact): `exact` cases continue bit-identically in both directions;
# the others use configurations where the library is not bit-identical to optax on XLA:CPU
# even without any checkpoint (found with this test: eps_in_sqrt=True, XLA's rsqrt; centered,
# `nu - mu^2`; f64 (x64) schedules from count 5 of a 6-step cosine/linear decay), so their
# continuation is compared to a tolerance. The state transfer itself (optax -> checkpoint ->
# library, library -> checkpoint -> optax) is checked bit for bit in every case.
CASES = [
    ("nesterov_bc_join_f32", "float32",
     {"learning_rate": JOIN, "decay": 0.95, "eps": 1e-6, "initial_scale": 0.1,
      "eps_in_sqrt": False, "momentum": 0.9, "nesterov": True, "bias_correction": True},
     True),
    ("default_f32", "float32", {"learning_rate": 0.01}, False),
    ("centered_momentum_f32", "float32",
     {"learning_rate": 0.01, "centered": True, "momentum": 0.5, "eps_in_sqrt": False},
     False),
    ("momentum_eps_outside_f64", "float64",
     {"learning_rate": 0.01, "eps_in_sqrt": False, "eps": 1e-4, "momentum": 0.5},
     True),
    ("cosine_nesterov_f64", "float64",
     {"learning_rate": {"kind": "cosine_decay", "init_value": 0.01, "decay_steps": 6,
                        "alpha": 0.1, "exponent": 1.0},
      "eps_in_sqrt": False, "eps": 1e-4, "momentum": 0.5, "nesterov": True},
     False),
    ("bias_correction_centered_f64", "float64",
     {"learning_rate": 0.003, "centered": True, "bias_correction": True,
      "initial_scale": 0.5},
     False),
]


# ----------------------------------------------------------------------------------------
# numpy-only checks of the Python codec.

def test_python_codec_reads_committed_v1_files():
    for name in ("checkpoint_v1_f32.ckpt", "checkpoint_v1_f64.ckpt"):
        data = (ROOT / "tests" / "data" / name).read_bytes()
        assert tool.encode(tool.decode(data)) == data, name


def test_python_codec_rejects_corruption():
    data = (ROOT / "tests" / "data" / "checkpoint_v1_f64.ckpt").read_bytes()
    for i in range(len(data)):
        bad = bytearray(data)
        bad[i] ^= 0x10
        try:
            tool.decode(bytes(bad))
        except tool.CheckpointError:
            continue
        raise AssertionError(f"byte {i} flipped was accepted")
    for n in range(len(data)):
        try:
            tool.decode(data[:n])
        except tool.CheckpointError:
            continue
        raise AssertionError(f"truncation to {n} accepted")


# ----------------------------------------------------------------------------------------
# The library through ctypes.

def load_library():
    cands = [os.environ.get("RMSPROP_LIBRARY"), os.environ.get("RMSPROP_LIB")] + [
        str(ROOT / "target" / p / "librmsprop.so") for p in ("release", "debug")]
    for c in cands:
        if c and Path(c).exists():
            lib = ctypes.CDLL(c)
            break
    else:
        raise RuntimeError("librmsprop.so not found: run `cargo build --release` or set RMSPROP_LIBRARY")
    P = ctypes.c_void_p
    S = ctypes.c_size_t
    lib.rmsprop_create_from_checkpoint.argtypes = [P, S, ctypes.POINTER(P)]
    lib.rmsprop_checkpoint_size.argtypes = [P, ctypes.POINTER(S)]
    lib.rmsprop_checkpoint_save.argtypes = [P, P, S, ctypes.POINTER(S)]
    lib.rmsprop_step.argtypes = [P, P, P, S, ctypes.c_int32]
    lib.rmsprop_destroy.argtypes = [P]
    lib.rmsprop_destroy.restype = None
    lib.rmsprop_last_error_message.restype = ctypes.c_char_p
    for f in ("rmsprop_create_from_checkpoint", "rmsprop_checkpoint_size",
              "rmsprop_checkpoint_save", "rmsprop_step"):
        getattr(lib, f).restype = ctypes.c_int32
    return lib


class Lib:
    def __init__(self, lib, ckpt):
        self.lib = lib
        self.h = ctypes.c_void_p()
        buf = ctypes.create_string_buffer(ckpt, len(ckpt))
        self.check(lib.rmsprop_create_from_checkpoint(buf, len(ckpt), ctypes.byref(self.h)))

    def check(self, st):
        if st != 0:
            raise RuntimeError(f"status {st}: {self.lib.rmsprop_last_error_message().decode()}")

    def step(self, params, grads):
        dtype = 1 if params.dtype == np.float32 else 2
        g = np.ascontiguousarray(grads)
        self.check(self.lib.rmsprop_step(self.h, params.ctypes.data, g.ctypes.data,
                                         params.size, dtype))

    def save(self):
        n = ctypes.c_size_t()
        self.check(self.lib.rmsprop_checkpoint_size(self.h, ctypes.byref(n)))
        buf = ctypes.create_string_buffer(n.value)
        w = ctypes.c_size_t()
        self.check(self.lib.rmsprop_checkpoint_save(self.h, buf, n.value, ctypes.byref(w)))
        return buf.raw[:w.value]

    def __del__(self):
        self.lib.rmsprop_destroy(self.h)


# ----------------------------------------------------------------------------------------
# optax.

def same_bits(a, b, what):
    a, b = np.asarray(a), np.asarray(b)
    assert a.dtype == b.dtype and a.shape == b.shape, what
    view = np.uint32 if a.dtype == np.float32 else np.uint64
    if not np.array_equal(a.view(view), b.view(view)):
        bad = np.flatnonzero(a.view(view) != b.view(view))
        raise AssertionError(f"{what}: {bad.size} elements differ, first {bad[0]}: "
                             f"{a.reshape(-1)[bad[0]]!r} vs {b.reshape(-1)[bad[0]]!r}")


def close(a, b, what):
    """Close (relative to the largest value), for the non-exact cases."""
    a, b = np.asarray(a), np.asarray(b)
    rtol = 1e-4 if a.dtype == np.float32 else 1e-9
    atol = rtol * float(np.max(np.abs(b), initial=0.0))
    assert np.allclose(a, b, rtol=rtol, atol=atol), f"{what}: {np.max(np.abs(a - b))}"


def kept_counts(cfg):
    kept = []
    if isinstance(cfg["learning_rate"], dict):
        kept.append("schedule")
    if cfg.get("bias_correction"):
        kept.append("bias_correction")
    return kept


def compare_states(lib_ckpt, optax_ckpt, cfg, what, cmp):
    a, b = tool.decode(lib_ckpt), tool.decode(optax_ckpt)
    for name in ("nu", "mu", "trace"):
        assert (a[name] is None) == (b[name] is None), (what, name)
        if a[name] is not None:
            cmp(a[name], b[name], f"{what}: {name}")
    for c in kept_counts(cfg):
        assert a[f"{c}_count"] == b[f"{c}_count"], (what, c)
    assert a["config"] == b["config"], what


def run_dtype(dtype, write):
    import jax
    jax.config.update("jax_enable_x64", dtype == "float64")
    import jax.numpy as jnp
    import optax

    lib = load_library()
    flat = lambda tree: np.concatenate([np.asarray(x).reshape(-1) for x in tree])  # noqa: E731

    for name, dt, cfg, exact in CASES:
        if dt != dtype:
            continue
        cmp = same_bits if exact else close
        rng = np.random.default_rng(zlib.crc32(name.encode()))
        params = [jnp.asarray(rng.standard_normal(s).astype(dt)) for s in SHAPES]
        grads = [[rng.standard_normal(s).astype(dt) for s in SHAPES] for _ in range(K1 + K2 + K3)]
        grads[K1 + 1][0][2] = 0.0  # an exact zero gradient too
        opt = tool.make_optax(cfg)
        update = jax.jit(opt.update)
        apply = jax.jit(optax.apply_updates)
        state = opt.init(params)

        def optax_steps(params, state, ks):
            for k in ks:
                g = [jnp.asarray(x) for x in grads[k]]
                u, state = update(g, state, params)
                params = apply(params, u)
            return params, state

        def as_ckpt(state):
            return tool.encode(tool.leaves_to_checkpoint(tool.leaves_from_optax(state), cfg))

        params, state = optax_steps(params, state, range(K1))

        # optax -> npz + json -> checkpoint, through the tool's command-line functions.
        with tempfile.TemporaryDirectory() as tmp:
            np.savez(f"{tmp}/state.npz", **tool.leaves_from_optax(state))
            with open(f"{tmp}/config.json", "w") as f:
                json.dump(cfg, f)
            ckpt = tool.to_checkpoint(f"{tmp}/state.npz", f"{tmp}/config.json", f"{tmp}/s.ckpt")
        p1 = flat(params)

        # The library holds exactly optax's state: it saves the same bytes back.
        mine = Lib(lib, ckpt)
        assert mine.save() == ckpt, f"{name}: state changed on the way into the library"

        # Both continue K2 steps.
        params2, state2 = optax_steps(params, state, range(K1, K1 + K2))
        after = as_ckpt(state2)
        p = p1.copy()
        for k in range(K1, K1 + K2):
            mine.step(p, flat(grads[k]))
        cmp(p, flat(params2), f"{name}: params after optax state -> library")
        lib_ckpt = mine.save()
        compare_states(lib_ckpt, after, cfg, f"{name}: state after optax state -> library", cmp)

        # Library checkpoint -> tool -> optax state (exactly the library's state: bit check),
        # then both continue K3 steps.
        with tempfile.TemporaryDirectory() as tmp:
            Path(f"{tmp}/lib.ckpt").write_bytes(lib_ckpt)
            tool.from_checkpoint(f"{tmp}/lib.ckpt", f"{tmp}/state.npz", f"{tmp}/config.json")
            with np.load(f"{tmp}/state.npz") as z:
                leaves = {k: z[k] for k in z.files}
            with open(f"{tmp}/config.json") as f:
                cfg_back = json.load(f)
        assert cfg_back == tool.decode(lib_ckpt)["config"]
        state3 = tool.optax_state_from_leaves(leaves, cfg_back, params2)
        compare_states(as_ckpt(state3), lib_ckpt, cfg, f"{name}: library -> optax state",
                       same_bits)
        # optax continues from the library's params (equal to its own in exact cases).
        sizes = [int(np.prod(s)) for s in SHAPES]
        params_lib = [jnp.asarray(x.reshape(s))
                      for x, s in zip(np.split(p.copy(), np.cumsum(sizes)[:-1]), SHAPES)]
        params3, state3 = optax_steps(params_lib, state3, range(K1 + K2, K1 + K2 + K3))
        for k in range(K1 + K2, K1 + K2 + K3):
            mine.step(p, flat(grads[k]))
        cmp(p, flat(params3), f"{name}: params after library -> optax state")
        compare_states(mine.save(), as_ckpt(state3), cfg,
                       f"{name}: state after library -> optax state", cmp)

        # The files CI re-checks without jax.
        head = (f"case={name} dtype={'f32' if dt == 'float32' else 'f64'} "
                f"sizes={','.join(str(int(np.prod(s))) for s in SHAPES)} steps={K2} "
                f"exact={int(exact)} counts={','.join(kept_counts(cfg)) or 'none'}\n").encode()
        cont = head + b"".join(
            np.ascontiguousarray(x, dtype=np.dtype(dt).newbyteorder("<")).tobytes()
            for x in [p1] + [flat(grads[k]) for k in range(K1, K1 + K2)] + [flat(params2)])
        files = {f"{name}.ckpt": ckpt, f"{name}.after.ckpt": after, f"{name}.cont.bin": cont}
        for fname, data in files.items():
            path = DATA / fname
            if write:
                DATA.mkdir(parents=True, exist_ok=True)
                path.write_bytes(data)
            else:
                assert path.read_bytes() == data, f"{path} differs from a fresh optax run"
        same = int(np.sum(p.view(np.uint32 if dt == "float32" else np.uint64)
                          == flat(params3).view(np.uint32 if dt == "float32" else np.uint64)))
        print(f"ok {name} ({'bit-identical' if exact else 'within tolerance'}; "
              f"{same} of {p.size} final params bit-identical to optax)")


def run_all(write):
    for dtype in ("float32", "float64"):
        cmd = [sys.executable, __file__, "--dtype", dtype] + (["--write"] if write else [])
        subprocess.run(cmd, check=True)


def test_optax_round_trip_through_the_library():
    import pytest
    pytest.importorskip("jax")
    pytest.importorskip("optax")
    run_all(write=False)


if __name__ == "__main__":
    args = sys.argv[1:]
    write = "--write" in args
    if "--dtype" in args:
        run_dtype(args[args.index("--dtype") + 1], write)
    else:
        test_python_codec_reads_committed_v1_files()
        test_python_codec_rejects_corruption()
        run_all(write)
        print("all optax round trips passed")

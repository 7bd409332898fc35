"""Tests of the low-level binding (python/rmsprop/lowlevel.py, imported by its old name
rmsprop_ctypes, which must keep working) against the real librmsprop.so.

Run: python3 -m pytest -q tests/python   (RMSPROP_LIBRARY may point at the library to test;
default: the repository's target/release, then target/debug).
"""

import os
import subprocess
import sys
import threading
import time

import numpy as np
import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.join(ROOT, "python"))

import rmsprop_ctypes as R  # noqa: E402
from rmsprop_ctypes import Optimizer, Options, RmspropError, Schedule  # noqa: E402

EXPECTED_EXAMPLE = """Objective function:  14.0
Objective function: 1.39E+01
Objective function: 1.38E+01
Objective function: 1.37E+01
Objective function: 1.37E+01
Objective function: 1.36E+01
"""


# ------------------------------------------------------------------------------------------------
# The documentation's example


def test_example_reproduces_optax_docs_output():
    out = subprocess.run(
        [sys.executable, os.path.join(ROOT, "python", "examples", "quadratic.py")],
        capture_output=True,
        text=True,
        check=True,
        env=dict(os.environ),
    )
    assert out.stdout == EXPECTED_EXAMPLE, out.stdout + out.stderr


def test_constants_and_version_match_the_library():
    for name in dir(R):
        if name == "OK" or name.startswith(("ERR_", "SKIPPED_")):
            assert R.status_name(getattr(R, name)) == "RMSPROP_" + name
    assert R.status_name(-1) == "RMSPROP_UNKNOWN_STATUS"
    assert R.version().count(".") == 2


def test_every_declared_function_has_argtypes_and_restype():
    lib = R._lib
    for name, (restype, argtypes) in R._SIGNATURES.items():
        fn = getattr(lib, name)
        assert fn.argtypes == argtypes, name
        assert fn.restype == restype, name
    # Sizes and pointers are 64-bit: a size_t above 2^32 must survive the call unchanged.
    with Optimizer(0.1, [3]) as opt:
        with pytest.raises(RmspropError) as e:
            opt.tensor_size(2**40 + 1)
        assert e.value.status == R.ERR_OUT_OF_RANGE
        assert "1099511627777" in e.value.message


# ------------------------------------------------------------------------------------------------
# Zero copy


def test_step_modifies_the_same_array_in_place():
    params = np.arange(6, dtype=np.float32).reshape(2, 3)
    view = params.reshape(-1)  # shares memory
    address = params.ctypes.data
    before = params.copy()
    with Optimizer(0.01, [6]) as opt:
        ident = id(params)
        assert opt.step(params, np.ones_like(params)) is True
    assert id(params) == ident
    assert params.ctypes.data == address
    assert np.shares_memory(params, view)
    assert not np.array_equal(params, before)
    np.testing.assert_array_equal(view, params.reshape(-1))
    # The documented first step of optax.rmsprop with grads 1: -lr / sqrt(0.1 + 1e-8).
    step = np.float32(-0.01) * (np.float32(1) / np.sqrt(np.float32(0.1) + np.float32(1e-8)))
    np.testing.assert_allclose(params, before + step, rtol=2 * np.finfo(np.float32).eps)


def test_update_returns_updates_or_writes_in_place():
    g = np.array([0.5, -1.0, 2.0], dtype=np.float64)
    with Optimizer(0.1, [3], dtype=np.float64) as a, Optimizer(0.1, [3], dtype=np.float64) as b:
        u = a.update(g)
        assert u is not g and u.dtype == np.float64
        g2 = g.copy()
        out = b.update(g2, out=g2)  # in place: updates overwrite the gradients
        assert out is g2
        np.testing.assert_array_equal(u, g2)


# ------------------------------------------------------------------------------------------------
# Errors


def test_library_errors_raise_with_status_and_message():
    with pytest.raises(RmspropError) as e:
        Options(0.1, decay=1.5)
    assert e.value.status == R.ERR_INVALID_HYPERPARAMETER
    assert e.value.name == "RMSPROP_ERR_INVALID_HYPERPARAMETER"
    assert "decay must be in [0, 1], got 1.5" in e.value.message
    assert "decay" in str(e.value)

    with pytest.raises(RmspropError) as e:
        Schedule.cosine_decay(1.0, 0)
    assert e.value.status == R.ERR_INVALID_SCHEDULE and "decay_steps" in e.value.message

    with pytest.raises(RmspropError) as e:
        Optimizer(float("nan"), [3])
    assert e.value.status == R.ERR_INVALID_HYPERPARAMETER and "learning_rate" in e.value.message

    with Optimizer(0.1, [3, 2]) as opt:
        p = np.ones(5, dtype=np.float32)
        opt.step(p, np.ones(5, dtype=np.float32))
        nu = opt.get_state("nu", 0).copy()
        counts = opt.counts

        with pytest.raises(RmspropError) as e:
            opt.step(p[:4], np.ones(4, dtype=np.float32))
        assert e.value.status == R.ERR_LENGTH_MISMATCH
        assert "expected 5 elements, got 4" in e.value.message
        with pytest.raises(RmspropError) as e:
            opt.step(p, p)
        assert e.value.status == R.ERR_OVERLAP
        with pytest.raises(RmspropError) as e:
            opt.get_state("mu", 0)
        assert e.value.status == R.ERR_NO_SUCH_STATE and "mu" in e.value.message
        with pytest.raises(RmspropError) as e:
            opt.get_state("nu", 2)
        assert e.value.status == R.ERR_OUT_OF_RANGE
        with pytest.raises(RmspropError) as e:
            opt.set_counts(-1, 0)
        assert e.value.status == R.ERR_INVALID_HYPERPARAMETER
        with pytest.raises(RmspropError) as e:
            opt.set_decay(float("inf"))
        assert e.value.status == R.ERR_INVALID_HYPERPARAMETER
        with pytest.raises(RmspropError) as e:
            opt.get_state(4, 0)
        assert e.value.status == R.ERR_BAD_ENUM and "component" in e.value.message
        # A misaligned float32 array (offset by one byte into a buffer).
        raw = np.zeros(4 * 5 + 1, dtype=np.uint8)
        mis = np.frombuffer(raw.data, dtype=np.float32, count=5, offset=1)
        assert not mis.flags.aligned
        with pytest.raises(RmspropError) as e:
            opt.update(mis, out=np.empty(5, dtype=np.float32))
        assert e.value.status == R.ERR_MISALIGNED and "grads" in e.value.message

        # Nothing changed after all those failures.
        np.testing.assert_array_equal(opt.get_state("nu", 0), nu)
        assert opt.counts == counts


def test_wrapper_refuses_arrays_it_would_have_to_copy():
    with Optimizer(0.1, [4]) as opt:
        p = np.zeros(4, dtype=np.float32)
        with pytest.raises(TypeError, match="float64"):
            opt.step(p, np.zeros(4))  # float64 grads for a float32 optimizer
        with pytest.raises(TypeError, match="ndarray"):
            opt.step(p, [1.0, 2.0, 3.0, 4.0])
        with pytest.raises(ValueError, match="C-contiguous"):
            opt.step(p, np.zeros(8, dtype=np.float32)[::2])
        ro = np.zeros(4, dtype=np.float32)
        ro.flags.writeable = False
        with pytest.raises(ValueError, match="writeable"):
            opt.step(ro, np.zeros(4, dtype=np.float32))
        with pytest.raises(ValueError, match="elements"):
            opt.step(p, np.zeros(3, dtype=np.float32))
        with pytest.raises(TypeError):
            opt.step(p.astype(">f4"), p)  # non-native byte order is another dtype
    with Optimizer(0.1, [2, 3]) as opt:
        with pytest.raises(ValueError, match=r"params\[1\] has 2 elements"):
            opt.step_tensors([np.zeros(2, np.float32), np.zeros(2, np.float32)], [np.zeros(2, np.float32), np.zeros(3, np.float32)])
        with pytest.raises(RmspropError) as e:
            opt.step_tensors([np.zeros(2, np.float32)], [np.zeros(2, np.float32)])
        assert e.value.status == R.ERR_LENGTH_MISMATCH and "num_tensors" in e.value.message
    opt = Optimizer(0.1, [1])
    opt.close()
    opt.close()  # twice is fine
    with pytest.raises(ValueError, match="closed"):
        opt.step(np.zeros(1, np.float32), np.zeros(1, np.float32))


# ------------------------------------------------------------------------------------------------
# Per-tensor API, float64, state


def _grads(rng, shapes, dtype, k):
    return [(rng.standard_normal(s) * (k + 1)).astype(dtype) for s in shapes]


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_per_tensor_api_matches_the_flat_api(dtype):
    shapes = [(3,), (0,), (5, 2), (2, 1), (7,)]
    sizes = [int(np.prod(s)) for s in shapes]
    rng = np.random.default_rng(1)
    params = [rng.standard_normal(s).astype(dtype) for s in shapes]
    flat = np.concatenate([p.reshape(-1) for p in params])
    kw = dict(momentum=0.9, nesterov=True, centered=True, bias_correction=True)
    with Optimizer(0.01, sizes, dtype=dtype, **kw) as a, Optimizer(0.01, sizes, dtype=dtype, **kw) as b:
        addresses = [p.ctypes.data for p in params]
        for k in range(4):
            gs = _grads(rng, shapes, dtype, k)
            assert a.step_tensors(params, gs) is True
            assert b.step(flat, np.concatenate([g.reshape(-1) for g in gs])) is True
        np.testing.assert_array_equal(np.concatenate([p.reshape(-1) for p in params]), flat)
        assert [p.ctypes.data for p in params] == addresses
        for c in ("nu", "mu", "trace"):
            for t in range(len(shapes)):
                np.testing.assert_array_equal(a.get_state(c, t), b.get_state(c, t))
        # update_tensors, in place and not, agree with each other
        gs = _grads(rng, shapes, dtype, 9)
        ups = a.update_tensors(gs)
        gcopy = [g.copy() for g in gs]
        ups2 = b.update_tensors(gcopy, out=gcopy)
        for u, v, g in zip(ups, ups2, gcopy):
            assert v is g
            np.testing.assert_array_equal(u, v)


def test_float64_optimizer_end_to_end():
    with Optimizer(Schedule.linear(0.1, 0.01, 10), [4], dtype=np.float64) as opt:
        assert opt.library_dtype == np.float64 and opt.dtype == np.float64
        p = np.array([1.0, -2.0, 3.0, -4.0])
        for _ in range(12):
            opt.step(p, 2 * p)
        assert opt.counts == (12, 12)
        assert opt.learning_rate == pytest.approx(0.01)
        assert np.all(np.abs(p) < [1.0, 2.0, 3.0, 4.0])
        with pytest.raises(TypeError):
            opt.step(p.astype(np.float32), p.astype(np.float32))


def test_state_read_write_carries_an_optimizer_over():
    kw = dict(centered=True, momentum=0.5, initial_scale=0.1)
    rng = np.random.default_rng(2)
    with Optimizer(0.02, [3, 4], **kw) as a, Optimizer(0.02, [3, 4], **kw) as b:
        assert a.has_state("mu") and a.has_state("trace") and a.has_state("nu")
        np.testing.assert_array_equal(b.get_state("nu", 1), np.full(4, 0.1, np.float32))
        pa = rng.standard_normal(7).astype(np.float32)
        for _ in range(3):
            a.step(pa, rng.standard_normal(7).astype(np.float32))
        # Carry a's state into b: every component of every tensor, and the counts.
        for c in ("nu", "mu", "trace"):
            for t in range(2):
                b.set_state(c, t, a.get_state(c, t))
        b.set_counts(*a.counts)
        pb = pa.copy()
        g = rng.standard_normal(7).astype(np.float32)
        a.step(pa, g)
        b.step(pb, g)
        np.testing.assert_array_equal(pa, pb)
        b.reset()
        assert b.counts == (0, 0)
        np.testing.assert_array_equal(b.get_state("nu", 0), np.full(3, 0.1, np.float32))
        with pytest.raises(RmspropError) as e:
            b.set_state("nu", 0, np.zeros(4, np.float32))
        assert e.value.status == R.ERR_LENGTH_MISMATCH


def test_skipped_non_finite_step():
    with Optimizer(0.1, [3], skip_non_finite=True) as opt:
        p = np.ones(3, np.float32)
        assert opt.step(p, np.array([1, np.nan, 1], np.float32)) is False
        np.testing.assert_array_equal(p, np.ones(3, np.float32))
        assert opt.skipped_steps == 1 and opt.counts == (0, 0)


def test_schedule_objects():
    s = Schedule.warmup_cosine_decay(0.0, 1.0, 10, 100)
    assert s.value(0) == 0.0 and s.value(10) == pytest.approx(1.0)
    j = Schedule.join([Schedule.constant(0.5), Schedule.piecewise_constant(0.2, {3: 0.5})], [5])
    assert j.value(4) == 0.5 and j.value(5) == pytest.approx(0.2) and j.value(8, np.float64) == pytest.approx(0.1)
    with pytest.raises(RmspropError) as e:
        Schedule.join([Schedule.constant(1.0)] * 2, [])
    assert e.value.status == R.ERR_INVALID_SCHEDULE
    with pytest.raises(RmspropError) as e:
        Schedule.piecewise_constant(1.0, {5: -1.0})
    assert e.value.status == R.ERR_INVALID_SCHEDULE
    e2 = Schedule.exponential_decay(1.0, 2, 0.5, end_value=0.3)
    assert e2.value(100) == pytest.approx(0.3)
    s.close()
    with pytest.raises(ValueError, match="closed"):
        s.value(1)


def test_two_threads_on_one_optimizer_get_busy_not_a_crash():
    n = 1 << 20
    with Optimizer(0.01, [n]) as opt:
        opt.threads = 1
        g = np.full(n, 0.5, np.float32)
        statuses = {"ok": 0, "busy": 0, "other": []}
        stop = time.monotonic() + 10.0
        lock = threading.Lock()

        def worker():
            p = np.zeros(n, np.float32)
            while time.monotonic() < stop:
                with lock:
                    if statuses["busy"] >= 3:
                        return
                before = p.copy()
                try:
                    opt.step(p, g)
                    with lock:
                        statuses["ok"] += 1
                except RmspropError as e:
                    with lock:
                        if e.status == R.ERR_BUSY:
                            statuses["busy"] += 1
                            if not np.array_equal(p, before):
                                statuses["other"].append("params written on BUSY")
                        else:
                            statuses["other"].append(str(e))

        threads = [threading.Thread(target=worker) for _ in range(2)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert statuses["other"] == []
        assert statuses["busy"] >= 1, statuses
        assert opt.counts[0] == statuses["ok"]


# ------------------------------------------------------------------------------------------------
# Against a pure-numpy reimplementation of optax.rmsprop


def numpy_rmsprop(p0, grads, lr, dtype, decay=0.9, eps=1e-8, eps_in_sqrt=True, momentum=None, nesterov=False, fma=False):
    """optax.rmsprop (no centering, no bias correction) in numpy, one rounding per operation.

    Constants are folded in float64 and rounded once, as jitted optax does. With ``fma=True``
    (float32 only) the multiply-adds that XLA contracts into FMA are emulated in float64: the
    float32 product is exact in float64, and the sum is rounded twice (to float64, then to
    float32), which equals a true FMA except in rare double-rounding ties.
    """
    T = dtype
    p = p0.astype(T).copy()
    nu = np.zeros_like(p)
    tr = np.zeros_like(p)
    od, d, e, nlr, m = T(1.0 - decay), T(decay), T(eps), T(-lr), T(momentum or 0.0)

    def madd(a, b, c):  # a * b + c
        if fma:
            return (a.astype(np.float64) * np.float64(b) + c.astype(np.float64)).astype(T)
        return a * b + c

    for g in grads:
        nu = madd(g * g, od, d * nu)
        s = T(1) / np.sqrt(nu + e) if eps_in_sqrt else T(1) / (np.sqrt(nu) + e)
        u = nlr * (s * g)
        if momentum is not None:
            tr = madd(tr, m, u)
            u = madd(tr, m, u) if nesterov else tr
        p = p + u
    return p, nu


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("eps_in_sqrt", [True, False])
@pytest.mark.parametrize("momentum", [None, 0.9])
def test_matches_numpy_reimplementation_within_stated_tolerance(dtype, eps_in_sqrt, momentum):
    """The library uses FMA where jitted optax does; numpy cannot, so the two differ by a few
    roundings per step. Tolerance, per element after `steps` steps:

        |p - p_ref| <= steps * eps_mach * |p_ref|  +  8 * eps_mach * steps * lr / sqrt(1 - decay) / (1 - momentum)

    Why: an FMA and a separate multiply-add differ by at most ~1 ulp, so nu differs by a few
    ulp (it is an EMA: old differences decay instead of growing); the update u = -lr * g / sqrt(nu)
    then differs by a few ulp *relative to |u|*, and |u| <= lr / sqrt(1 - decay) because
    nu >= (1 - decay) * g^2. Momentum sums past updates with weights summing to <= 1/(1 - m).
    Each `p + u` adds one rounding of |p|. Summed over the steps: the bound above, with a 8x
    factor on the per-step ulps (observed: within 1.5x of the bound with factor 1).
    """
    steps, lr, decay, n = 20, 0.01, 0.9, 4096
    rng = np.random.default_rng(3)
    p0 = rng.standard_normal(n).astype(dtype)
    grads = [(3 * rng.standard_normal(n)).astype(dtype) for _ in range(steps)]
    with Optimizer(lr, [n], dtype=dtype, eps_in_sqrt=eps_in_sqrt, momentum=momentum) as opt:
        p = p0.copy()
        for g in grads:
            opt.step(p, g)
        nu = opt.get_state("nu", 0)
    ref, ref_nu = numpy_rmsprop(p0, grads, lr, dtype, decay=decay, eps_in_sqrt=eps_in_sqrt, momentum=momentum)
    eps = np.finfo(dtype).eps
    atol = 8 * eps * steps * lr / np.sqrt(1 - decay) / (1 - (momentum or 0.0))
    np.testing.assert_allclose(p, ref, rtol=steps * eps, atol=atol)
    np.testing.assert_allclose(nu, ref_nu, rtol=8 * eps)


@pytest.mark.parametrize("momentum", [None, 0.9])
def test_eps_outside_sqrt_float32_is_bit_exact_with_emulated_fma(momentum):
    """eps_in_sqrt=False has no rsqrt: every operation is a correctly rounded IEEE operation
    or an FMA (notes: bit-reproducible against jitted optax). With the FMA emulated in float64
    the numpy reference must agree bit for bit (the double-rounding caveat of the emulation
    does not occur on this seeded data)."""
    steps, lr, n = 20, 0.01, 4096
    rng = np.random.default_rng(4)
    p0 = rng.standard_normal(n).astype(np.float32)
    grads = [(3 * rng.standard_normal(n)).astype(np.float32) for _ in range(steps)]
    with Optimizer(lr, [n], eps_in_sqrt=False, momentum=momentum, nesterov=momentum is not None) as opt:
        p = p0.copy()
        for g in grads:
            opt.step(p, g)
        nu = opt.get_state("nu", 0)
    ref, ref_nu = numpy_rmsprop(
        p0, grads, lr, np.float32, eps_in_sqrt=False, momentum=momentum, nesterov=momentum is not None, fma=True
    )
    np.testing.assert_array_equal(nu, ref_nu)
    np.testing.assert_array_equal(p, ref)

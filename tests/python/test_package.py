"""Tests of the Python package `rmsprop` (python/rmsprop/): the pytree API against the
low-level binding (bit for bit: same library, same order of operations), against values
computed independently, and its structure, checkpoint, error and zero-copy behaviour.

Run: python3 -m pytest -q tests/python   (RMSPROP_LIBRARY may name the library to test.)
"""

from __future__ import annotations

import array
import copy
import io
import os
import pickle
import re
import subprocess
import sys
from collections import namedtuple

import numpy as np
import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.join(ROOT, "python"))

import rmsprop  # noqa: E402
from rmsprop import lowlevel as L  # noqa: E402
from rmsprop.tree import flatten, leaf_paths, unflatten  # noqa: E402


def _tree(rng, dtype=np.float32, scale=1.0):
    """A nested dict whose insertion order is NOT the sorted order."""
    return {
        "zeta": (rng.standard_normal((2, 3)) * scale).astype(dtype),
        "alpha": {
            "w": (rng.standard_normal((4,)) * scale).astype(dtype),
            "b": np.asarray(rng.standard_normal(()) * scale, dtype=dtype),  # a 0-d leaf
        },
        "mid": [(rng.standard_normal((3, 1)) * scale).astype(dtype), (rng.standard_normal(5) * scale).astype(dtype)],
    }


# Sorted-key, depth-first order of _tree's leaves (jax.tree_util's).
ORDER = ["['alpha']['b']", "['alpha']['w']", "['mid'][0]", "['mid'][1]", "['zeta']"]


def _flat(tree):
    return np.concatenate([np.asarray(x).reshape(-1) for x in flatten(tree)[0]])


def _bits(a):
    a = np.asarray(a)
    return a.view(np.uint32 if a.dtype == np.float32 else np.uint64)


# ------------------------------------------------------------------------------------------------
# Structure


def test_tree_order_is_sorted_keys_depth_first_and_round_trips():
    rng = np.random.default_rng(0)
    t = _tree(rng)
    leaves, treedef = flatten(t)
    assert leaf_paths(treedef) == ORDER
    assert leaves[0] is t["alpha"]["b"] and leaves[4] is t["zeta"]
    back = unflatten(treedef, leaves)
    assert back.keys() == t.keys() or sorted(back) == sorted(t)
    assert back["mid"][1] is t["mid"][1] and isinstance(back["mid"], list)
    # Insertion order does not matter; the same keys give the same order.
    t2 = {"mid": t["mid"], "zeta": t["zeta"], "alpha": {"b": t["alpha"]["b"], "w": t["alpha"]["w"]}}
    assert flatten(t2)[1] == treedef
    # Tuples and namedtuples keep their type; None is an empty subtree.
    P = namedtuple("P", "w b")
    leaves, td = flatten((P(1, 2), None, [3]))
    assert leaves == [1, 2, 3]
    out = unflatten(td, ["a", "b", "c"])
    assert out == (P("a", "b"), None, ["c"]) and type(out[0]) is P
    assert pickle.loads(pickle.dumps(treedef)) == treedef
    with pytest.raises(ValueError, match="more leaves"):
        unflatten(td, [1, 2, 3, 4])


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_pytree_steps_equal_the_flat_low_level_steps_bit_for_bit(dtype):
    rng = np.random.default_rng(1)
    params = _tree(rng, dtype)
    flat = _flat(params).copy()
    kw = dict(decay=0.8, eps=1e-6, centered=True, momentum=0.5, nesterov=True)
    opt = rmsprop.RMSProp(0.05, **kw, params=params)
    assert opt.dtype == dtype and opt.num_elements == flat.size == 1 + 4 + 3 + 5 + 6
    with L.Optimizer(0.05, [flat.size], dtype=dtype, **kw) as ref:
        for k in range(4):
            grads = _tree(rng, dtype, scale=k + 1)
            assert opt.step(params, grads) is True
            ref.step(flat, _flat(grads))
            np.testing.assert_array_equal(_bits(_flat(params)), _bits(flat))
        state = opt.state
        for name, tree in (("nu", state.nu), ("mu", state.mu), ("trace", state.trace)):
            assert leaf_paths(flatten(tree)[1]) == ORDER
            assert tree["zeta"].shape == (2, 3) and tree["alpha"]["b"].shape == ()
            np.testing.assert_array_equal(_bits(_flat(tree)), _bits(ref.get_state(name, 0)))
        assert (state.count, state.bias_correction_count, state.skipped_steps) == (4, 4, 0)


def test_update_returns_the_structure_and_equals_step():
    rng = np.random.default_rng(2)
    params = _tree(rng)
    grads = _tree(rng)
    a = rmsprop.RMSProp(0.01, params=params)
    b = rmsprop.RMSProp(0.01, params=params)
    updates = a.update(grads)
    assert sorted(updates) == ["alpha", "mid", "zeta"] and isinstance(updates["mid"], list)
    assert updates["zeta"].shape == (2, 3) and updates["alpha"]["b"].shape == ()
    stepped = copy.deepcopy(params)
    b.step(stepped, grads)
    for p, u, s in zip(flatten(params)[0], flatten(updates)[0], flatten(stepped)[0]):
        np.testing.assert_array_equal(p + u, s)  # apply_updates is one float add per element
    # out=grads: in place.
    c = rmsprop.RMSProp(0.01, params=params)
    g2 = copy.deepcopy(grads)
    assert c.update(g2, out=g2) is g2
    np.testing.assert_array_equal(_flat(g2), _flat(updates))


def test_documented_quadratic_through_the_package():
    # optax's documentation: f(x) = sum(x^2), rmsprop(0.003), printed with {:.2E}.
    params = np.array([1.0, 2.0, 3.0], dtype=np.float32)
    opt = rmsprop.rmsprop(learning_rate=0.003).init(params)
    lines = []
    for _ in range(5):
        opt.step(params, 2.0 * params)
        lines.append("{:.2E}".format(np.sum(params**2)))
    assert lines == ["1.39E+01", "1.38E+01", "1.37E+01", "1.37E+01", "1.36E+01"]


def test_matches_an_independent_float64_computation():
    # optax.rmsprop's update written out in numpy, float64: nu = decay nu + (1 - decay) g^2,
    # u = -lr g / sqrt(nu + eps). The library may round differently (it follows jitted
    # optax: fused operations, scale applied to the ratio), a few ulp per operation of
    # quantities below 4 in magnitude here (|p| < 4, |u| <= lr / sqrt(1 - decay) < 0.32);
    # over 6 steps that stays below 64 ulp of 4 (5.7e-14; measured here: 4.5e-16), while a
    # wrong formula is far off (decay and 1 - decay swapped: 0.44, measured).
    rng = np.random.default_rng(3)
    params = {"a": rng.standard_normal(7), "b": rng.standard_normal((2, 2))}
    ref = {k: v.copy() for k, v in params.items()}
    nu = {k: np.zeros_like(v) for k, v in params.items()}
    opt = rmsprop.RMSProp(0.1, decay=0.9, eps=1e-8, params=params)
    for _ in range(6):
        grads = {k: rng.standard_normal(v.shape) for k, v in params.items()}
        opt.step(params, grads)
        for k in ref:
            nu[k] = 0.9 * nu[k] + 0.1 * grads[k] ** 2
            ref[k] = ref[k] + (-0.1) * (grads[k] / np.sqrt(nu[k] + 1e-8))
    for k in ref:
        np.testing.assert_allclose(params[k], ref[k], rtol=0, atol=64 * 4 * np.finfo(np.float64).eps)
        assert np.max(np.abs(params[k])) < 4


def test_structure_dtype_and_shape_mismatches_are_refused_before_anything_changes():
    rng = np.random.default_rng(4)
    params = _tree(rng)
    opt = rmsprop.RMSProp(0.1, params=params)
    before = _flat(params).copy()
    with pytest.raises(ValueError, match="structure"):
        opt.step(params, {"zeta": params["zeta"]})
    bad = copy.deepcopy(params)
    bad["zeta"] = bad["zeta"].T.copy()
    with pytest.raises(ValueError, match=r"\['zeta'\] has shape \(3, 2\), init saw \(2, 3\)"):
        opt.step(params, bad)
    bad = copy.deepcopy(params)
    bad["mid"][0] = bad["mid"][0].astype(np.float64)
    with pytest.raises(TypeError, match=r"grads\['mid'\]\[0\] has dtype float64"):
        opt.step(params, bad)
    with pytest.raises(TypeError, match="mix dtypes"):
        rmsprop.RMSProp(0.1, params=[np.zeros(2, np.float32), np.zeros(2)])
    with pytest.raises(TypeError, match="float32, float64"):
        rmsprop.RMSProp(0.1, params=np.zeros(2, np.int32))
    with pytest.raises(TypeError, match="not the dtype= given"):
        rmsprop.RMSProp(0.1, params=np.zeros(2, np.float32), dtype=np.float64)
    with pytest.raises(ValueError, match="threads"):
        rmsprop.RMSProp(0.1, threads=-1)
    with pytest.raises(rmsprop.RmspropError) as e:
        rmsprop.RMSProp(0.1, params=np.zeros(2), threads=10**6)  # the library's limit is 1024
    assert e.value.status == L.ERR_THREADS
    with pytest.raises(RuntimeError, match="init"):
        rmsprop.RMSProp(0.1).step(params, params)
    # The same memory as params and grads: the library refuses (it would read what it writes).
    with pytest.raises(rmsprop.BadBufferError) as e:
        opt.step(params, params)
    assert e.value.status == L.ERR_OVERLAP and isinstance(e.value, ValueError)
    np.testing.assert_array_equal(_flat(params), before)
    assert opt.counts == (0, 0)
    with rmsprop.RMSProp(0.1, params=np.zeros(2)) as closed:
        pass
    with pytest.raises(RuntimeError, match="closed"):
        closed.step(np.zeros(2), np.zeros(2))


# ------------------------------------------------------------------------------------------------
# Zero copy


class OnlyDLPack:
    """Exposes an array through DLPack only (as a framework tensor does)."""

    def __init__(self, a, legacy=False):
        self._a, self._legacy = a, legacy

    def __dlpack__(self, **kw):
        return self._a.__dlpack__() if self._legacy else self._a.__dlpack__(**kw)

    def __dlpack_device__(self):
        return self._a.__dlpack_device__()


class OnlyArrayInterface:
    def __init__(self, a):
        self._a = a
        self.__array_interface__ = a.__array_interface__


class LegacyTensor(OnlyDLPack):
    """Pre-1.0 DLPack (numpy imports it read-only) plus a zero-copy __array__, as PyTorch."""

    def __init__(self, a):
        super().__init__(a, legacy=True)

    def __array__(self, dtype=None, copy=None):
        return self._a


@pytest.mark.parametrize(
    "wrap",
    [
        lambda a: a,
        lambda a: array.array("f", a.tobytes()),  # buffer protocol: a copy we then check in
        lambda a: OnlyDLPack(a),
        lambda a: OnlyArrayInterface(a),
        lambda a: LegacyTensor(a),
        lambda a: memoryview(a),
    ],
    ids=["ndarray", "array.array", "dlpack", "array_interface", "legacy_dlpack+__array__", "memoryview"],
)
def test_step_writes_into_the_callers_own_memory(wrap):
    base = np.array([1.0, -2.0, 3.0, 0.5], dtype=np.float32)
    p = wrap(base)
    if isinstance(p, array.array):
        base = np.frombuffer(p, dtype=np.float32)  # the array.array's own memory
    expected = base.copy()
    with L.Optimizer(0.01, [4]) as ref:
        ref.step(expected, np.ones(4, np.float32))
    opt = rmsprop.RMSProp(0.01, params=[p])
    if type(p) is OnlyDLPack and not np.from_dlpack(OnlyDLPack(np.zeros(1))).flags.writeable:
        # Older numpy (2.0.2, seen with Python 3.9) imports every DLPack capsule read-only: then
        # a DLPack-only object cannot be written in place, and says so (objects that also
        # offer a zero-copy __array__, as PyTorch tensors do, still work: see LegacyTensor).
        with pytest.raises(ValueError, match="writeable"):
            opt.step([p], [np.ones(4, np.float32)])
        return
    assert opt.step([p], [np.ones(4, np.float32)]) is True
    np.testing.assert_array_equal(base, expected)  # changed where it lives: no copy was made


def test_unusable_arrays_raise_clear_errors():
    opt = rmsprop.RMSProp(0.01, params=np.zeros(4, np.float32))
    g = np.ones(4, np.float32)
    ro = np.zeros(4, np.float32)
    ro.flags.writeable = False
    with pytest.raises(ValueError, match="writeable"):
        opt.step(ro, g)
    with pytest.raises(ValueError, match="writeable"):
        opt.step(OnlyDLPack(np.zeros(4, np.float32), legacy=True), g)  # read-only import
    with pytest.raises(ValueError, match="C-contiguous"):
        opt.step(np.zeros(8, np.float32)[::2], g)
    with pytest.raises(TypeError, match="dtype float64"):
        opt.step(np.zeros(4), g)
    with pytest.raises(ValueError, match="structure"):
        opt.step(np.zeros(4, np.float32), [1.0, 2.0, 3.0, 4.0])  # a list is a tree of 4 floats
    with pytest.raises(TypeError, match="must be an array"):
        opt.step(np.zeros(4, np.float32), "abcd")
    with pytest.raises(ValueError, match="writeable"):
        opt.step(memoryview(bytes(16)).cast("f"), g)
    one = rmsprop.RMSProp(0.01, params=np.zeros((), np.float32))
    with pytest.raises(ValueError, match="numpy scalar"):
        one.step(np.float32(1.0), np.ones((), np.float32))  # a scalar has no memory to write
    one.step(np.zeros((), np.float32), np.float32(1.0))  # as gradients, scalars are fine

    class BadDevice(OnlyDLPack):
        def __dlpack__(self, **kw):
            raise BufferError("a CUDA tensor")

    with pytest.raises(TypeError, match="DLPack.*CUDA"):
        opt.step(BadDevice(np.zeros(4, np.float32)), g)


def test_torch_cpu_tensor_if_available():
    torch = pytest.importorskip("torch")
    p = torch.tensor([1.0, 2.0, 3.0])
    ptr = p.data_ptr()
    opt = rmsprop.RMSProp(0.01, params=p)
    opt.step(p, torch.ones(3))
    assert p.data_ptr() == ptr and not torch.equal(p, torch.tensor([1.0, 2.0, 3.0]))


# ------------------------------------------------------------------------------------------------
# Hyperparameters and schedules


def test_schedules_match_the_low_level_ones_and_drive_the_learning_rate():
    S = rmsprop.schedules
    cases = [
        (S.constant_schedule(0.5), L.Schedule.constant(0.5)),
        (S.linear_schedule(1.0, 0.1, 10, 2), L.Schedule.linear(1.0, 0.1, 10, 2)),
        (S.polynomial_schedule(1.0, 0.1, 2.0, 10), L.Schedule.polynomial(1.0, 0.1, 2.0, 10)),
        (S.exponential_decay(1.0, 5, 0.5, 1, True, 0.2), L.Schedule.exponential_decay(1.0, 5, 0.5, 1, True, 0.2)),
        (S.cosine_decay(1.0, 10, 0.1), L.Schedule.cosine_decay(1.0, 10, 0.1)),
        (S.warmup_cosine_decay_schedule(0.0, 1.0, 3, 10), L.Schedule.warmup_cosine_decay(0.0, 1.0, 3, 10)),
        (
            S.warmup_exponential_decay_schedule(0.0, 1.0, 2, 4, 0.5),
            L.Schedule.warmup_exponential_decay(0.0, 1.0, 2, 4, 0.5),
        ),
        (S.piecewise_constant_schedule(1.0, {3: 0.5, 6: 0.1}), L.Schedule.piecewise_constant(1.0, {3: 0.5, 6: 0.1})),
    ]
    cases.append((S.join_schedules([cases[1][0], cases[4][0]], [5]), L.Schedule.join([cases[1][1], cases[4][1]], [5])))
    for ours, ref in cases:
        for count in (0, 1, 3, 7, 20):
            for dt in (np.float32, np.float64):
                assert ours.value(count, dt) == ref.value(count, dt)
        again = pickle.loads(pickle.dumps(ours))
        assert [again(c) for c in range(12)] == [ours(c) for c in range(12)], repr(ours)
    # Linear from 1.0 to 0.0 over 4 steps: the learning rate the next step uses.
    sched = S.linear_schedule(1.0, 0.0, 4)
    opt = rmsprop.RMSProp(sched, params=np.zeros(2, np.float32))
    seen = []
    for _ in range(5):
        seen.append(opt.learning_rate)
        opt.step(np.zeros(2, np.float32), np.ones(2, np.float32))
    assert seen == [1.0, 0.75, 0.5, 0.25, 0.0]
    with pytest.raises(rmsprop.InvalidScheduleError) as e:
        S.cosine_decay_schedule(1.0, 0)
    assert e.value.status == L.ERR_INVALID_SCHEDULE and isinstance(e.value, ValueError)


def test_live_hyperparameters_equal_the_low_level_setters():
    rng = np.random.default_rng(5)
    p = rng.standard_normal(6)
    q = p.copy()
    opt = rmsprop.RMSProp(0.1, momentum=0.9, params=p)
    with L.Optimizer(0.1, [6], dtype=np.float64, momentum=0.9) as ref:
        for k in range(6):
            g = rng.standard_normal(6)
            if k == 2:
                opt.decay, opt.eps, opt.momentum, opt.learning_rate = 0.5, 1e-3, 0.1, 0.02
                ref.set_decay(0.5), ref.set_eps(1e-3), ref.set_momentum(0.1), ref.set_learning_rate(0.02)
            if k == 4:
                opt.learning_rate = rmsprop.schedules.constant_schedule(0.3)
                ref.set_learning_rate(L.Schedule.constant(0.3))
            opt.step(p, g)
            ref.step(q, g)
            np.testing.assert_array_equal(_bits(p), _bits(q))
    assert opt.hyperparameters["decay"] == 0.5 and opt.momentum == 0.1
    assert opt.learning_rate == 0.3
    with pytest.raises(rmsprop.InvalidHyperparameterError, match=r"decay must be in \[0, 1\], got 1.5") as e:
        opt.decay = 1.5
    assert e.value.status == L.ERR_INVALID_HYPERPARAMETER
    assert e.value.name == "RMSPROP_ERR_INVALID_HYPERPARAMETER"
    assert opt.decay == 0.5  # unchanged
    with pytest.raises(rmsprop.RmspropError):
        rmsprop.RMSProp(0.1, eps=-1.0)
    # initial_scale takes effect at reset.
    opt.initial_scale = 2.0
    opt.reset()
    np.testing.assert_array_equal(opt.state.nu, np.full(6, 2.0))
    # Without momentum there is no trace to set.
    plain = rmsprop.RMSProp(0.1, params=np.zeros(2))
    with pytest.raises(rmsprop.NoSuchStateError):
        plain.momentum = 0.5


def test_threads_setting_gives_the_same_bits():
    rng = np.random.default_rng(6)
    p0 = rng.standard_normal(100_003).astype(np.float32)
    results = []
    for threads in (0, 1, 3):
        p = p0.copy()
        opt = rmsprop.RMSProp(0.01, params=p, threads=threads)
        assert opt.threads == threads
        for k in range(3):
            opt.step(p, (p0 * (k + 1)).astype(np.float32))
        results.append(p)
    np.testing.assert_array_equal(_bits(results[0]), _bits(results[1]))
    np.testing.assert_array_equal(_bits(results[0]), _bits(results[2]))


# ------------------------------------------------------------------------------------------------
# Checkpoints and pickling


def _trained(rng, dtype=np.float32, **kw):
    params = _tree(rng, dtype)
    opt = rmsprop.RMSProp(rmsprop.schedules.cosine_decay_schedule(0.1, 20), centered=True, momentum=0.9, **kw)
    opt.init(params)
    for k in range(3):
        opt.step(params, _tree(rng, dtype, scale=k + 1))
    return opt, params


def _continue(opt, params, seed):
    rng = np.random.default_rng(seed)
    for k in range(3):
        opt.step(params, _tree(rng, params["zeta"].dtype, scale=k + 1))
    return _flat(params), _flat(opt.state.nu), _flat(opt.state.trace)


def _same(a, b):
    for x, y in zip(a, b):
        np.testing.assert_array_equal(_bits(x), _bits(y))


@pytest.mark.parametrize("how", ["bytes", "file", "fileobj", "state_dict", "pickle", "deepcopy", "from_checkpoint"])
def test_checkpoint_round_trips_continue_bit_for_bit(tmp_path, how):
    rng = np.random.default_rng(7)
    opt, params = _trained(rng, np.float64)
    p2 = copy.deepcopy(params)
    if how == "bytes":
        other = rmsprop.RMSProp(0.5).init(p2)  # another configuration: the checkpoint's wins
        other.load(opt.save())
    elif how == "file":
        path = tmp_path / "run.ckpt"
        opt.save(path)
        other = rmsprop.RMSProp(0.5, centered=True, momentum=0.1).init(p2)
        other.load(str(path))
    elif how == "fileobj":
        buf = io.BytesIO()
        opt.save(buf)
        buf.seek(0)
        other = rmsprop.RMSProp().init(p2)
        other.load(buf)
    elif how == "state_dict":
        sd = opt.state_dict()
        assert isinstance(sd["checkpoint"], bytes) and sd["leaves"] == ORDER
        other = rmsprop.RMSProp().init(p2)
        other.load_state_dict(pickle.loads(pickle.dumps(sd)))
    elif how == "pickle":
        other = pickle.loads(pickle.dumps(opt))
    elif how == "deepcopy":
        other = copy.deepcopy(opt)
    else:
        other = rmsprop.RMSProp.from_checkpoint(opt.save(), params=p2)
    assert other.hyperparameters == opt.hyperparameters | {"learning_rate": other.hyperparameters["learning_rate"]}
    assert repr(other.hyperparameters["learning_rate"]) == repr(opt.hyperparameters["learning_rate"])
    assert other.counts == opt.counts == (3, 3)
    _same(_continue(opt, params, 99), _continue(other, p2, 99))


def test_unbound_optimizer_pickles_its_configuration():
    opt = rmsprop.RMSProp(rmsprop.schedules.linear_schedule(1.0, 0.0, 4), decay=0.7, momentum=0.2)
    again = pickle.loads(pickle.dumps(opt))
    assert again.hyperparameters["decay"] == 0.7 and not again.initialized
    again.init(np.zeros(2, np.float32))
    assert again.learning_rate == 1.0


def test_checkpoint_errors_change_nothing(tmp_path):
    rng = np.random.default_rng(8)
    opt, params = _trained(rng)
    good = opt.save()
    before = opt.save()
    bad = bytearray(good)
    bad[40] ^= 1
    with pytest.raises(rmsprop.CheckpointCorruptError) as e:
        opt.load(bytes(bad))
    assert e.value.status == L.ERR_CHECKPOINT_CORRUPT and e.value.name == "RMSPROP_ERR_CHECKPOINT_CORRUPT"
    assert isinstance(e.value, rmsprop.CheckpointError) and isinstance(e.value, rmsprop.RmspropError)
    with pytest.raises(rmsprop.CheckpointCorruptError):
        opt.load(good[:-1])
    small = rmsprop.RMSProp().init(np.zeros(3, np.float32))
    with pytest.raises(rmsprop.CheckpointMismatchError):
        opt.load(small.save())
    with pytest.raises(rmsprop.CheckpointMismatchError):  # same sizes, other dtype
        rmsprop.RMSProp().init(_tree(rng, np.float64)).load(good)
    with pytest.raises(rmsprop.RmspropIOError) as e:
        opt.load(tmp_path / "missing.ckpt")
    assert isinstance(e.value, OSError) and "missing.ckpt" in e.value.message
    with pytest.raises(rmsprop.RmspropIOError):
        opt.save(tmp_path / "no-such-dir" / "x.ckpt")
    with pytest.raises(ValueError, match="leaves"):
        small.load_state_dict(opt.state_dict())
    with pytest.raises(ValueError, match="sizes"):
        rmsprop.RMSProp.from_checkpoint(good, params=np.zeros(3, np.float32))
    assert opt.save() == before


def test_low_level_checkpoint_functions():
    with L.Optimizer(0.1, [3, 2], momentum=0.5) as a:
        a.step(np.ones(5, np.float32), np.full(5, 0.5, np.float32))
        n = a.checkpoint_size()
        data = a.save_checkpoint()
        assert len(data) == n
        buf = bytearray(n + 10)
        assert a.save_checkpoint_into(buf) == n and bytes(buf[:n]) == data and buf[n:] == bytearray(10)
        with pytest.raises(rmsprop.BadBufferError) as e:
            a.save_checkpoint_into(bytearray(n - 1))
        assert e.value.status == L.ERR_BUFFER_TOO_SMALL
        with L.Optimizer.from_checkpoint(data) as b:
            assert b.sizes == (3, 2) and b.dtype == np.float32 and b.counts == (1, 1)
            np.testing.assert_array_equal(b.get_state("trace", 0), a.get_state("trace", 0))
        cfg = L.checkpoint_config(data)
        assert cfg["momentum"] == 0.5 and cfg["learning_rate"] == pytest.approx(0.1, rel=1e-15)
        a.set_initial_scale(1.0)
        a.reset()
        np.testing.assert_array_equal(a.get_state("nu", 1), np.ones(2, np.float32))


# ------------------------------------------------------------------------------------------------
# Errors, constants, header parity


def test_every_error_status_has_its_exception_class():
    for status, cls in L.ERRORS.items():
        err = L._make_error(status, L.status_name(status), "m", "f")
        assert type(err) is cls and err.status == status and isinstance(err, rmsprop.RmspropError)
        again = pickle.loads(pickle.dumps(err))
        assert type(again) is cls and again.status == status and str(again) == str(err)
    with pytest.raises(rmsprop.BusyError):
        raise L._make_error(L.ERR_BUSY, "RMSPROP_ERR_BUSY", "busy")
    assert issubclass(rmsprop.OutOfMemoryError, MemoryError)


def _header():
    with open(os.path.join(ROOT, "include", "rmsprop.h")) as f:
        return f.read()


def test_binding_matches_the_header():
    text = _header()
    # Every function: declared here with as many arguments as the header's prototype.
    protos = dict(
        (m.group(1), m.group(2))
        for m in re.finditer(r"^\w[\w\s\*]*?\b(rmsprop_\w+)\(([^)]*)\);", text, re.MULTILINE | re.DOTALL)
    )
    assert len(protos) > 60
    assert sorted(protos) == sorted(L._SIGNATURES), set(protos) ^ set(L._SIGNATURES)
    for name, args in protos.items():
        n = 0 if args.strip() == "void" else args.count(",") + 1
        assert len(L._SIGNATURES[name][1]) == n, name
    # Every constant: the same value.
    defines = dict(re.findall(r"^#define (RMSPROP_\w+) (.+)$", text, re.MULTILINE))
    defines.pop("RMSPROP_H", None)
    assert sorted(defines) == sorted(L.HEADER_CONSTANTS)
    for name, value in L.HEADER_CONSTANTS.items():
        if name == "RMSPROP_VERSION_NUMBER":
            assert value == L.version_number()
        elif isinstance(value, str):
            assert defines[name] == f'"{value}"'
        else:
            assert int(defines[name]) == value, name
        short = name[len("RMSPROP_") :]
        if hasattr(L, short):
            assert getattr(L, short) == value, short
        if name.startswith(("RMSPROP_ERR_", "RMSPROP_OK", "RMSPROP_SKIPPED")):
            assert L.status_name(value) == name


def test_versions_agree():
    with open(os.path.join(ROOT, "Cargo.toml")) as f:
        cargo = re.search(r'^version = "([^"]+)"', f.read(), re.MULTILINE).group(1)
    with open(os.path.join(ROOT, "pyproject.toml")) as f:
        py = re.search(r'^version = "([^"]+)"', f.read(), re.MULTILINE).group(1)
    assert cargo == py == rmsprop.__version__ == L.HEADER_CONSTANTS["RMSPROP_VERSION_STRING"] == rmsprop.library_version()


def test_library_override_and_clear_load_errors(tmp_path):
    code = "import rmsprop; print(rmsprop.library_path)"
    env = dict(os.environ, RMSPROP_LIBRARY=str(tmp_path / "nothing.so"), PYTHONPATH=os.path.join(ROOT, "python"))
    env.pop("RMSPROP_LIB", None)
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, cwd=tmp_path)
    assert out.returncode != 0 and "nothing.so: not found" in out.stderr and "RMSPROP_LIBRARY" in out.stderr
    env["RMSPROP_LIBRARY"] = rmsprop.library_path
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, cwd=tmp_path)
    assert out.returncode == 0 and out.stdout.strip() == rmsprop.library_path


@pytest.mark.skipif(
    os.environ.get("RMSPROP_TEST_INSTALLED") != "1",
    reason="set RMSPROP_TEST_INSTALLED=1 after `pip install .` into this interpreter's environment",
)
def test_installed_package_carries_its_own_library(tmp_path):
    # From another directory, without the source tree on the path and without RMSPROP_LIBRARY:
    # the package pip installed must load the library it carries.
    env = {k: v for k, v in os.environ.items() if k not in ("RMSPROP_LIBRARY", "RMSPROP_LIB", "PYTHONPATH")}
    code = (
        "import os, numpy as np, rmsprop\n"
        "here = os.path.dirname(rmsprop.__file__)\n"
        "assert os.path.dirname(rmsprop.library_path) == here, rmsprop.library_path\n"
        "assert os.path.exists(os.path.join(here, 'py.typed'))\n"
        "p = np.array([1.0, 2.0, 3.0], np.float32)\n"
        "opt = rmsprop.RMSProp(0.003, params=p)\n"
        "opt.step(p, 2 * p)\n"
        "print('{:.2E}'.format(np.sum(p ** 2)), rmsprop.library_version())\n"
    )
    out = subprocess.run([sys.executable, "-I", "-c", code], env=env, capture_output=True, text=True, cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["1.39E+01", rmsprop.__version__]

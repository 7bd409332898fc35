"""Tests of ``rmsprop.torch.RMSprop``, the ``torch.optim.RMSprop`` drop-in.

With ``semantics="optax"`` it must equal the package's ``rmsprop.RMSProp`` (the optax
reproduction the conformance fixtures pin) bit for bit, fed the same gradients: same library,
same elementwise kernel, so any difference is a mapping or bookkeeping bug. With
``semantics="pytorch"`` (the library's PyTorch flavor) it must match ``torch.optim.RMSprop``.

torch is required: CI installs it (tests/run_all.sh). RMSPROP_SKIP_TORCH=1 skips this module,
saying so in the pytest summary.
"""

from __future__ import annotations

import copy
import io
import os
import pickle
import sys

import numpy as np
import pytest

if os.environ.get("RMSPROP_SKIP_TORCH") == "1":
    pytest.skip("RMSPROP_SKIP_TORCH=1: the rmsprop.torch tests are NOT run", allow_module_level=True)

try:
    import torch
except ImportError as e:  # never a silent skip: CI must run these
    raise ImportError(
        "the rmsprop.torch tests need torch (pip install torch; tests/run_all.sh installs it), "
        "or RMSPROP_SKIP_TORCH=1 to skip them explicitly"
    ) from e

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.join(ROOT, "python"))

import rmsprop  # noqa: E402
from rmsprop.torch import RMSprop, has_pytorch_semantics  # noqa: E402

PYTORCH = has_pytorch_semantics()
needs_pytorch = pytest.mark.skipif(
    not PYTORCH,
    reason="semantics='pytorch' needs the library's PyTorch flavor (rmsprop_options_set_flavor), "
    "which the loaded library lacks",
)

CONFIGS = [
    {},
    {"momentum": 0.9},
    {"centered": True},
    {"momentum": 0.5, "centered": True, "alpha": 0.9, "eps": 1e-6},
]


def _model(seed=0, dtype=torch.float32):
    torch.manual_seed(seed)
    m = torch.nn.Sequential(torch.nn.Linear(5, 7), torch.nn.Tanh(), torch.nn.Linear(7, 2))
    return m.to(dtype)


def _data(seed=1, dtype=torch.float32):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(16, 5, generator=g, dtype=dtype), torch.randn(16, 2, generator=g, dtype=dtype)


def _backward(model, x, y):
    for p in model.parameters():
        p.grad = None
    loss = torch.nn.functional.mse_loss(model(x), y)
    loss.backward()
    return loss


def _bits_equal(a, b):
    return all(torch.equal(p.detach(), q.detach()) for p, q in zip(a, b))


def _package_reference(model, lr=1e-2, alpha=0.99, eps=1e-8, momentum=0, centered=False):
    """The same optax.rmsprop through the package's numpy API (rmsprop.RMSProp)."""
    return rmsprop.RMSProp(
        learning_rate=lr,
        decay=alpha,
        eps=eps,
        eps_in_sqrt=False,
        centered=centered,
        momentum=momentum if momentum > 0 else None,
        params=[p.detach().numpy() for p in model.parameters()],
    )


def _ref_step(ref, model):
    ref.step([p.detach().numpy() for p in model.parameters()], [p.grad.numpy() for p in model.parameters()])


# ------------------------------------------------------------------------------------------------
# optax semantics: bit for bit the package's optax reproduction


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("cfg", CONFIGS)
def test_optax_semantics_equal_the_package_bit_for_bit(cfg, dtype):
    m, r = _model(dtype=dtype), _model(dtype=dtype)
    x, y = _data(dtype=dtype)
    opt = RMSprop(m.parameters(), lr=3e-3, semantics="optax", **cfg)
    ref = _package_reference(r, lr=3e-3, **cfg)
    for _ in range(6):
        _backward(m, x, y)
        _backward(r, x, y)
        opt.step()
        _ref_step(ref, r)
    assert _bits_equal(m.parameters(), r.parameters())
    nu = ref.state.nu
    for i, p in enumerate(m.parameters()):
        assert torch.equal(opt.state[p]["square_avg"], torch.from_numpy(nu[i]).reshape(p.shape))
        assert int(opt.state[p]["step"]) == 6


@pytest.mark.parametrize("cfg", CONFIGS)
def test_optax_semantics_are_torch_rmsprop_up_to_rounding(cfg):
    """The argument mapping is torch's math: a wrong one (eps inside the sqrt, alpha taken as
    1 - alpha, momentum applied after the learning rate...) is off by O(lr) = 1e-3 at the first
    step. optax rounds differently from torch (other operation order, 1 - alpha, ...), a few
    ulps per step that the model's feedback grows (measured: <= 1e-5 relative over 5 steps;
    larger in ulps only where p - update nearly cancels): so rtol 1e-4, atol 1e-6 = lr/1000."""
    m, t = _model(), _model()
    x, y = _data()
    a = RMSprop(m.parameters(), lr=1e-3, semantics="optax", **cfg)
    b = torch.optim.RMSprop(t.parameters(), lr=1e-3, **cfg)
    for _ in range(5):
        for model, o in ((m, a), (t, b)):
            o.zero_grad()
            torch.nn.functional.mse_loss(model(x), y).backward()
            o.step()
    for p, q in zip(m.parameters(), t.parameters()):
        torch.testing.assert_close(p, q, rtol=1e-4, atol=1e-6)
    sa, sb = a.state_dict()["state"], b.state_dict()["state"]
    for i in sb:
        assert set(sa[i]) == set(sb[i])
        for k in sb[i]:
            torch.testing.assert_close(sa[i][k], sb[i][k], rtol=1e-3, atol=1e-6)


@pytest.mark.parametrize("maximize", [False, True])
def test_optax_semantics_weight_decay_and_maximize_are_torchs_gradient_preprocessing(maximize):
    m, r = _model(), _model()
    x, y = _data()
    opt = RMSprop(m.parameters(), lr=1e-2, weight_decay=0.1, maximize=maximize, momentum=0.3, semantics="optax")
    ref = _package_reference(r, lr=1e-2, momentum=0.3)
    for _ in range(4):
        _backward(m, x, y)
        _backward(r, x, y)
        opt.step()
        grads = []
        for p in r.parameters():
            g = -p.grad if maximize else p.grad
            grads.append(g.add(p.detach(), alpha=0.1).numpy())  # torch's own operations
        ref.step([p.detach().numpy() for p in r.parameters()], grads)
    assert _bits_equal(m.parameters(), r.parameters())


def test_param_groups_have_their_own_hyperparameters_and_dtypes():
    m32, r32 = _model(0), _model(0)
    m64, r64 = _model(1, torch.float64), _model(1, torch.float64)
    x, y = _data()
    opt = RMSprop(
        [
            {"params": m32[0].parameters()},
            {"params": list(m32[2].parameters()) + list(m64.parameters()), "lr": 1e-3, "momentum": 0.9},
        ],
        lr=1e-2,
        alpha=0.95,
        semantics="optax",
    )
    ref_a = _package_reference(r32[0], lr=1e-2, alpha=0.95)
    ref_b32 = _package_reference(r32[2], lr=1e-3, alpha=0.95, momentum=0.9)
    ref_b64 = _package_reference(r64, lr=1e-3, alpha=0.95, momentum=0.9)
    for _ in range(3):
        _backward(m32, x, y)
        _backward(r32, x, y)
        _backward(m64, x.double(), y.double())
        _backward(r64, x.double(), y.double())
        opt.step()
        _ref_step(ref_a, r32[0])
        _ref_step(ref_b32, r32[2])
        _ref_step(ref_b64, r64)
    assert _bits_equal(m32.parameters(), r32.parameters())
    assert _bits_equal(m64.parameters(), r64.parameters())


def test_a_scheduler_drives_the_learning_rate_each_step():
    m, r = _model(), _model()
    x, y = _data()
    opt = RMSprop(m.parameters(), lr=1e-2, momentum=0.5, semantics="optax")
    sched = torch.optim.lr_scheduler.StepLR(opt, step_size=2, gamma=0.3)
    ref = _package_reference(r, lr=1e-2, momentum=0.5)
    lrs = []
    for _ in range(7):
        _backward(m, x, y)
        _backward(r, x, y)
        lrs.append(opt.param_groups[0]["lr"])
        ref.learning_rate = lrs[-1]
        opt.step()
        _ref_step(ref, r)
        sched.step()
    assert lrs[0] == 1e-2 and lrs[2] == pytest.approx(3e-3) and lrs[6] == pytest.approx(2.7e-4)
    assert _bits_equal(m.parameters(), r.parameters())


def test_live_hyperparameter_changes_take_effect():
    m, r = _model(), _model()
    x, y = _data()
    opt = RMSprop(m.parameters(), lr=1e-2, momentum=0.5, semantics="optax")
    ref = _package_reference(r, lr=1e-2, momentum=0.5)
    for i in range(4):
        if i == 2:
            for g in opt.param_groups:
                g.update(alpha=0.9, eps=1e-4, momentum=0.7)
            ref.decay, ref.eps, ref.momentum = 0.9, 1e-4, 0.7
        _backward(m, x, y)
        _backward(r, x, y)
        opt.step()
        _ref_step(ref, r)
    assert _bits_equal(m.parameters(), r.parameters())


def test_parameters_without_gradients_are_skipped_and_keep_their_state():
    """torch skips a parameter whose grad is None (no state change, no step count): the group's
    handle is rebuilt over the parameters that have gradients, carrying every state over.
    Reference: one package optimizer per parameter, stepped only when it has a gradient (the
    kernel is elementwise, so the layout does not change the bits)."""
    m, r = _model(), _model()
    x, y = _data()
    opt = RMSprop(m.parameters(), lr=1e-2, momentum=0.9, centered=True, semantics="optax")
    params, rparams = list(m.parameters()), list(r.parameters())
    refs = [
        rmsprop.RMSProp(1e-2, decay=0.99, eps_in_sqrt=False, centered=True, momentum=0.9, params=p.detach().numpy())
        for p in rparams
    ]
    steps = [0] * len(params)
    patterns = [(0, 1, 2, 3), (0, 2), (0, 2), (1, 3), (), (0, 1, 2, 3), (3,)]
    for live in patterns:
        _backward(m, x, y)
        _backward(r, x, y)
        for i in range(len(params)):
            if i not in live:
                params[i].grad = None
        before = [p.detach().clone() for p in params]
        opt.step()
        for i in live:
            refs[i].step(rparams[i].detach().numpy(), rparams[i].grad.numpy())
            steps[i] += 1
        for i in range(len(params)):
            if i not in live:
                assert torch.equal(params[i], before[i])
    assert _bits_equal(params, rparams)
    for i, p in enumerate(params):
        st = opt.state[p]
        assert int(st["step"]) == steps[i]
        trace = torch.from_numpy(refs[i].state.trace).reshape(p.shape)
        assert torch.equal(st["momentum_buffer"], (trace.double() / -1e-2).float())  # torch's buffer
        assert torch.equal(st["grad_avg"], torch.from_numpy(refs[i].state.mu).reshape(p.shape))


def test_a_parameter_that_never_had_a_gradient_has_no_state():
    m = _model()
    x, y = _data()
    opt = RMSprop(m.parameters(), semantics="optax")
    _backward(m, x, y)
    m[0].bias.grad = None
    opt.step()
    sd = opt.state_dict()
    assert sorted(sd["state"]) == [0, 2, 3]  # index 1 = m[0].bias: as torch's state_dict
    t = torch.optim.RMSprop(_model().parameters())
    _backward_t = _model()
    t = torch.optim.RMSprop(_backward_t.parameters())
    _backward(_backward_t, x, y)
    _backward_t[0].bias.grad = None
    t.step()
    assert sorted(t.state_dict()["state"]) == [0, 2, 3]


# ------------------------------------------------------------------------------------------------
# state_dict: torch's layout, both ways


def _torch_layout_keys(cfg):
    keys = {"step", "square_avg"}
    if cfg.get("momentum", 0) > 0:
        keys.add("momentum_buffer")
    if cfg.get("centered"):
        keys.add("grad_avg")
    return keys


@pytest.mark.parametrize("cfg", CONFIGS)
def test_state_dict_has_torchs_layout(cfg):
    m, t = _model(), _model()
    x, y = _data()
    ours = RMSprop(m.parameters(), semantics="optax", **cfg)
    theirs = torch.optim.RMSprop(t.parameters(), **cfg)
    for model, o in ((m, ours), (t, theirs)):
        _backward(model, x, y)
        o.step()
    a, b = ours.state_dict(), theirs.state_dict()
    assert a["param_groups"] == b["param_groups"]
    assert sorted(a["state"]) == sorted(b["state"])
    for i in b["state"]:
        assert set(a["state"][i]) == set(b["state"][i]) == _torch_layout_keys(cfg)
        for k, v in b["state"][i].items():
            assert a["state"][i][k].shape == v.shape and a["state"][i][k].dtype == v.dtype, k
    # torch.save / torch.load round trip of the dict itself
    buf = io.BytesIO()
    torch.save(a, buf)
    buf.seek(0)
    loaded = torch.load(buf)
    assert loaded["param_groups"] == a["param_groups"]


@pytest.mark.parametrize("cfg", CONFIGS)
def test_checkpoint_round_trip_continues_bit_for_bit(cfg):
    m, r = _model(), _model()
    x, y = _data()
    a = RMSprop(m.parameters(), lr=1e-2, semantics="optax", **cfg)
    b = RMSprop(r.parameters(), lr=1e-2, semantics="optax", **cfg)
    for _ in range(3):
        for model, o in ((m, a), (r, b)):
            _backward(model, x, y)
            o.step()
    buf = io.BytesIO()
    torch.save(b.state_dict(), buf)
    buf.seek(0)
    b = RMSprop(r.parameters(), lr=5.0, semantics="optax", **cfg)  # the loaded groups win
    b.load_state_dict(torch.load(buf))
    assert b.param_groups[0]["lr"] == 1e-2
    for _ in range(3):
        for model, o in ((m, a), (r, b)):
            _backward(model, x, y)
            o.step()
    if cfg.get("momentum", 0) == 0:
        assert _bits_equal(m.parameters(), r.parameters())
    else:
        # optax semantics with momentum: torch's momentum_buffer is optax's trace / -lr, and
        # that conversion (rounded once each way) may move the trace by an ulp; three steps
        # of feedback keep it below 1e-6 relative or 1e-5 * lr absolute (near-cancelling elements).
        for p, q in zip(m.parameters(), r.parameters()):
            torch.testing.assert_close(p, q, rtol=1e-6, atol=1e-7)
    for p, q in zip(m.parameters(), r.parameters()):
        assert int(b.state[q]["step"]) == 6
        for k, v in a.state[p].items():
            if k == "momentum_buffer":
                torch.testing.assert_close(v, b.state[q][k], rtol=1e-5, atol=1e-9)
            else:
                assert torch.equal(v, b.state[q][k]) or cfg.get("momentum", 0) > 0


@pytest.mark.parametrize("cfg", CONFIGS)
def test_switch_from_torch_to_ours_mid_run(cfg):
    """torch.optim.RMSprop for 3 steps, then its state_dict into rmsprop.torch.RMSprop: the
    state arrives exactly (the package's optimizer, given torch's state as optax's, continues
    to the same bits)."""
    m, r = _model(), _model()
    x, y = _data()
    t = torch.optim.RMSprop(m.parameters(), lr=1e-2, **cfg)
    for _ in range(3):
        _backward(m, x, y)
        t.step()
    with torch.no_grad():
        for p, q in zip(m.parameters(), r.parameters()):
            q.copy_(p)
    ts = t.state_dict()["state"]
    ours = RMSprop(m.parameters(), lr=1.0, semantics="optax", **cfg)
    ours.load_state_dict(t.state_dict())
    ref = _package_reference(r, lr=1e-2, **cfg)
    ref.set_state(
        nu=[ts[i]["square_avg"].numpy() for i in range(4)],
        mu=[ts[i]["grad_avg"].numpy() for i in range(4)] if cfg.get("centered") else None,
        # optax's trace is torch's buffer times -lr (see the module docs)
        trace=[(ts[i]["momentum_buffer"].double() * -1e-2).float().numpy() for i in range(4)]
        if cfg.get("momentum", 0) > 0
        else None,
    )
    for _ in range(3):
        _backward(m, x, y)
        _backward(r, x, y)
        ours.step()
        _ref_step(ref, r)
    assert _bits_equal(m.parameters(), r.parameters())
    assert all(int(ours.state[p]["step"]) == 6 for p in m.parameters())


@pytest.mark.parametrize("cfg", CONFIGS)
def test_switch_from_ours_to_torch_mid_run(cfg):
    m = _model()
    x, y = _data()
    ours = RMSprop(m.parameters(), lr=1e-2, semantics="optax", **cfg)
    for _ in range(3):
        _backward(m, x, y)
        ours.step()
    sd = ours.state_dict()
    t = torch.optim.RMSprop(m.parameters(), lr=1.0, **cfg)
    t.load_state_dict(sd)
    assert t.param_groups[0]["lr"] == 1e-2
    for i, p in enumerate(m.parameters()):
        for k, v in sd["state"][i].items():
            assert torch.equal(t.state[p][k], v), k
    _backward(m, x, y)
    t.step()  # torch continues from our state
    assert all(float(t.state[p]["step"]) == 4 for p in m.parameters())


def test_assigning_state_entries_takes_effect_at_the_next_step():
    """ZeroRedundancyOptimizer.load_state_dict writes optim.state[p] = {...} directly."""
    m, r = _model(), _model()
    x, y = _data()
    a = RMSprop(m.parameters(), lr=1e-2, centered=True, semantics="optax")
    b = RMSprop(r.parameters(), lr=1e-2, centered=True, semantics="optax")
    for _ in range(2):
        _backward(m, x, y)
        a.step()
    sd = a.state_dict()
    with torch.no_grad():
        for p, q in zip(m.parameters(), r.parameters()):
            q.copy_(p)
    for i, q in enumerate(r.parameters()):
        b.state[q] = {k: v.clone() for k, v in sd["state"][i].items()}
    for _ in range(2):
        for model, o in ((m, a), (r, b)):
            _backward(model, x, y)
            o.step()
    assert _bits_equal(m.parameters(), r.parameters())


def test_pickle_and_deepcopy_carry_the_state():
    m = _model()
    x, y = _data()
    a = RMSprop(m.parameters(), lr=1e-2, centered=True, semantics="optax", threads=1)
    _backward(m, x, y)
    a.step()
    b = copy.deepcopy(a)
    assert b.semantics == "optax" and b.threads == 1
    pickled = pickle.loads(pickle.dumps(a))
    for pa, pb in zip(a.param_groups[0]["params"], b.param_groups[0]["params"]):
        for k, v in a.state[pa].items():
            assert torch.equal(v, b.state[pb][k])
    assert len(pickled.state_dict()["state"]) == 4


def test_threads_do_not_change_the_bits():
    outs = []
    for threads in (None, 1, 2):
        torch.manual_seed(3)
        params = [torch.nn.Parameter(torch.randn(n)) for n in (1, 4097, 70001, 3)]
        opt = RMSprop(params, lr=1e-3, momentum=0.9, centered=True, semantics="optax", threads=threads)
        g = torch.Generator().manual_seed(4)
        for _ in range(3):
            for p in params:
                p.grad = torch.randn(p.shape, generator=g)
            opt.step()
        outs.append([p.detach().clone() for p in params])
    assert _bits_equal(outs[0], outs[1]) and _bits_equal(outs[0], outs[2])


def test_closure_and_zero_grad():
    m = _model()
    x, y = _data()
    opt = RMSprop(m.parameters(), semantics="optax")

    def closure():
        opt.zero_grad()
        loss = torch.nn.functional.mse_loss(m(x), y)
        loss.backward()
        return loss

    l0 = opt.step(closure).detach()
    l1 = opt.step(closure).detach()
    assert l1.item() < l0.item()
    opt.zero_grad()
    assert all(p.grad is None for p in m.parameters())


def test_empty_parameters_are_fine():
    params = [torch.nn.Parameter(torch.zeros(0)), torch.nn.Parameter(torch.ones(3))]
    opt = RMSprop(params, lr=0.1, semantics="optax")
    for p in params:
        p.grad = torch.ones_like(p)
    opt.step()
    assert params[1].detach().tolist() == pytest.approx([0.0] * 3, abs=1e-5)  # 1 - 0.1 * 1/sqrt(0.01)


# ------------------------------------------------------------------------------------------------
# Errors: clear, naming the parameter, nothing changed


def _grad_all(params):
    for p in params:
        p.grad = torch.ones_like(p)


@pytest.mark.parametrize(
    "make, exc, words",
    [
        (lambda: torch.nn.Parameter(torch.ones(3, dtype=torch.float16)), TypeError, "float16"),
        (lambda: torch.nn.Parameter(torch.ones(3, device="meta")), TypeError, "meta"),
        (lambda: torch.nn.Parameter(torch.ones(4, 3).t()), ValueError, "contiguous"),
    ],
)
def test_unsupported_parameters_raise_naming_the_parameter(make, exc, words):
    good = torch.nn.Parameter(torch.ones(5))
    bad = make()
    opt = RMSprop([good, bad], semantics="optax")
    _grad_all([good, bad])
    with pytest.raises(exc, match=rf"param_groups\[0\]\['params'\]\[1\].*{words}|{words}.*param_groups\[0\]\['params'\]\[1\]"):
        opt.step()
    assert torch.equal(good, torch.ones(5))  # nothing changed


def test_bad_gradients_raise_before_anything_changes():
    a, b = torch.nn.Parameter(torch.ones(5)), torch.nn.Parameter(torch.ones(4))
    opt = RMSprop([a, b], semantics="optax")
    a.grad = torch.ones(5)
    b.grad = torch.ones(8)[::2]  # not contiguous
    with pytest.raises(ValueError, match=r"\['params'\]\[1\]\.grad is not contiguous"):
        opt.step()
    assert torch.equal(a, torch.ones(5)) and torch.equal(b, torch.ones(4))
    b.grad = torch.ones(4)
    opt.step()
    assert a[0].item() < 1.0


def test_constructor_arguments_are_checked_like_torch():
    p = [torch.nn.Parameter(torch.ones(2))]
    for kw, msg in [
        ({"lr": -1.0}, "Invalid learning rate"),
        ({"eps": -1.0}, "Invalid epsilon"),
        ({"momentum": -0.1}, "Invalid momentum"),
        ({"weight_decay": -1}, "Invalid weight_decay"),
        ({"alpha": -1}, "Invalid alpha"),
        ({"semantics": "keras"}, "semantics"),
        ({"capturable": True}, "capturable"),
        ({"differentiable": True}, "differentiable"),
        ({"threads": -1}, "threads"),
    ]:
        kw.setdefault("semantics", "optax")
        with pytest.raises(ValueError, match=msg):
            RMSprop(p, **kw)
    RMSprop(p, foreach=True, semantics="optax")  # accepted (and ignored), as a drop-in must


@pytest.mark.skipif(PYTORCH, reason="the loaded library has the PyTorch flavor")
def test_pytorch_semantics_without_the_flavor_say_so():
    with pytest.raises(NotImplementedError, match="rmsprop_options_set_flavor"):
        RMSprop([torch.nn.Parameter(torch.ones(2))])


# ------------------------------------------------------------------------------------------------
# PyTorch semantics: torch.optim.RMSprop's results. They run once the library has the flavor.

# The bound: the PyTorch flavor reproduces torch's CPU operations in torch's order, except that
# a sqrt may round differently (torch's CPU sqrt is not guaranteed correctly rounded), i.e. one
# ulp in `avg` for some elements, which moves the update by about one ulp of the update. Over
# a few steps the model's feedback carries it into later gradients, so we allow ULPS ulps of
# each tensor's scale (its largest magnitude): relative to the tensor, not to each element,
# since p - update can cancel to a tiny element whose own ulp is no measure of the error.
ULPS = 16
# The state (square_avg, grad_avg, momentum_buffer) carries every step's sqrt differences, not
# only the last one's: the momentum buffer sums g / avg over about 1 / (1 - momentum) steps,
# and with maximize=True the gradient ascent amplifies differences in the parameters. Measured
# worst (torch 2.15, f32, maximize + momentum 0.3, 8 and 9 steps): 35 ulps of the buffer's
# scale; parameters stay within ULPS.
STATE_ULPS = 64


def _assert_close_ulps(a, b, what, ulps=ULPS):
    a, b = a.detach(), b.detach()
    scale = float(torch.maximum(a.abs().max(), b.abs().max())) if a.numel() else 0.0
    ulp = float(np.spacing(np.array(scale, dtype=np.float32 if a.dtype == torch.float32 else np.float64)))
    err = float((a - b).abs().max()) if a.numel() else 0.0
    assert err <= ulps * ulp, f"{what}: max error {err} > {ulps} ulps of scale {scale}"


PT_CONFIGS = CONFIGS + [{"weight_decay": 0.05}, {"maximize": True, "momentum": 0.3}, {"weight_decay": 0.01, "centered": True}]


@needs_pytorch
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("cfg", PT_CONFIGS)
def test_pytorch_semantics_match_torch_with_a_scheduler(cfg, dtype):
    m, t = _model(dtype=dtype), _model(dtype=dtype)
    x, y = _data(dtype=dtype)
    a = RMSprop(m.parameters(), lr=1e-2, **cfg)
    b = torch.optim.RMSprop(t.parameters(), lr=1e-2, **cfg)
    sa = torch.optim.lr_scheduler.ExponentialLR(a, gamma=0.8)
    sb = torch.optim.lr_scheduler.ExponentialLR(b, gamma=0.8)
    for _ in range(8):
        for model, o, s in ((m, a, sa), (t, b, sb)):
            o.zero_grad()
            torch.nn.functional.mse_loss(model(x), y).backward()
            o.step()
            s.step()
    for i, (p, q) in enumerate(zip(m.parameters(), t.parameters())):
        _assert_close_ulps(p, q, f"param {i}")
    da, db = a.state_dict()["state"], b.state_dict()["state"]
    for i in db:
        assert set(da[i]) == set(db[i])
        assert float(da[i]["step"]) == float(db[i]["step"])
        for k in db[i]:
            if k != "step":
                _assert_close_ulps(da[i][k], db[i][k], f"state {i} {k}", STATE_ULPS)


@needs_pytorch
@pytest.mark.parametrize("cfg", PT_CONFIGS)
def test_pytorch_semantics_checkpoint_and_switches_both_ways(cfg):
    """torch 3 steps -> ours 3 steps (via torch.save'd state_dict) -> torch 3 steps, against
    torch alone for 9 steps."""
    m, t = _model(), _model()
    x, y = _data()
    ref = torch.optim.RMSprop(t.parameters(), lr=1e-2, **cfg)
    first = torch.optim.RMSprop(m.parameters(), lr=1e-2, **cfg)

    def run(model, o, n):
        for _ in range(n):
            o.zero_grad()
            torch.nn.functional.mse_loss(model(x), y).backward()
            o.step()

    run(t, ref, 9)
    run(m, first, 3)
    buf = io.BytesIO()
    torch.save(first.state_dict(), buf)
    buf.seek(0)
    ours = RMSprop(m.parameters(), lr=1e-2, **cfg)
    ours.load_state_dict(torch.load(buf))
    run(m, ours, 3)
    last = torch.optim.RMSprop(m.parameters(), lr=1e-2, **cfg)
    last.load_state_dict(ours.state_dict())
    run(m, last, 3)
    for i, (p, q) in enumerate(zip(m.parameters(), t.parameters())):
        _assert_close_ulps(p, q, f"param {i}")
    for p, q in zip(m.parameters(), t.parameters()):
        assert float(last.state[p]["step"]) == 9
        for k in ref.state[q]:
            if k != "step":
                _assert_close_ulps(last.state[p][k], ref.state[q][k], k, STATE_ULPS)


def test_sparse_gradients_and_resized_parameters_are_refused():
    emb = torch.nn.Embedding(10, 3, sparse=True)
    opt = RMSprop(emb.parameters(), semantics="optax")
    emb(torch.tensor([1, 2])).sum().backward()
    with pytest.raises(TypeError, match=r"param_groups\[0\]\['params'\]\[0\].*sparse"):
        opt.step()
    # A parameter whose memory is swapped for a larger one must not be read past the old size.
    p = torch.nn.Parameter(torch.ones(5))
    opt = RMSprop([p], semantics="optax")
    p.grad = torch.ones(5)
    opt.step()
    p.data = torch.ones(7)
    p.grad = torch.ones(7)
    with pytest.raises(ValueError, match="7 elements"):
        opt.step()
    assert torch.equal(p.detach(), torch.ones(7))


def _run_example(semantics):
    import re
    import subprocess

    env = dict(os.environ, PYTHONPATH=os.path.join(ROOT, "python"))
    out = subprocess.run(
        [sys.executable, os.path.join(ROOT, "python", "examples", "torch_drop_in.py"), semantics],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    assert out.returncode == 0, out.stderr
    return float(re.search(r"= ([0-9.]+) ulps", out.stdout).group(1))


def test_drop_in_example_runs_with_optax_semantics():
    assert _run_example("optax") > 0  # momentum + a schedule: optax's maths differ (documented)


@needs_pytorch
def test_drop_in_example_matches_torch_with_pytorch_semantics():
    assert _run_example("pytorch") <= ULPS


def test_state_reads_are_current_and_not_kept():
    """opt.state[p], .get, .items, .values read the library's state now (copies); membership and
    len are torch's (a parameter has state once it stepped); no second copy is kept around."""
    m = _model()
    x, y = _data()
    opt = RMSprop(m.parameters(), lr=1e-2, semantics="optax")
    params = list(m.parameters())
    assert len(opt.state) == 0 and params[0] not in opt.state
    _backward(m, x, y)
    opt.step()
    first = opt.state[params[0]]["square_avg"]
    _backward(m, x, y)
    opt.step()
    assert len(opt.state) == 4 and all(p in opt.state for p in params)
    now = opt.state.get(params[0])["square_avg"]
    assert not torch.equal(first, now)
    assert torch.equal(dict(opt.state.items())[params[0]]["square_avg"], now)
    assert all(int(v["step"]) == 2 for v in opt.state.values())
    opt.state_dict()
    assert all(dict.__getitem__(opt.state, p) == {} for p in params)  # placeholders only


def test_add_param_group_mid_run():
    m, r = _model(), _model()
    x, y = _data()
    opt = RMSprop(m[0].parameters(), lr=1e-2, semantics="optax")
    ref_a = _package_reference(r[0], lr=1e-2)
    for i in range(4):
        if i == 2:
            opt.add_param_group({"params": m[2].parameters(), "lr": 3e-3, "momentum": 0.9})
            ref_b = _package_reference(r[2], lr=3e-3, momentum=0.9)
        _backward(m, x, y)
        _backward(r, x, y)
        if i < 2:
            for p in m[2].parameters():  # not in the optimizer yet: torch would not touch them
                p.grad = None
            for p in r[2].parameters():
                p.grad = None
        opt.step()
        _ref_step(ref_a, r[0])
        if i >= 2:
            _ref_step(ref_b, r[2])
    assert _bits_equal(m.parameters(), r.parameters())
    assert [int(v["step"]) for v in opt.state_dict()["state"].values()] == [4, 4, 2, 2]

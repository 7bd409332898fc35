"""``rmsprop.torch.RMSprop``: a drop-in for ``torch.optim.RMSprop`` computed by the library.

    import torch
    from rmsprop.torch import RMSprop

    model = torch.nn.Linear(10, 1)
    opt = RMSprop(model.parameters(), lr=1e-2, alpha=0.99, momentum=0.9)   # torch's arguments
    sched = torch.optim.lr_scheduler.StepLR(opt, step_size=10, gamma=0.5)
    for x, y in data:
        opt.zero_grad()
        torch.nn.functional.mse_loss(model(x), y).backward()
        opt.step()
        sched.step()
    torch.save(opt.state_dict(), "opt.pt")      # torch's own layout: loads into torch.optim.RMSprop

It is a ``torch.optim.Optimizer``: same constructor arguments (``lr, alpha, eps,
weight_decay, momentum, centered, maximize``; ``foreach`` is accepted and ignored,
``capturable``/``differentiable`` must stay False), param groups, ``add_param_group``,
``zero_grad``, closures, hooks, and every ``torch.optim.lr_scheduler`` (each group's
hyperparameters are read at every step). It works as the ``optimizer_class`` of
``torch.distributed.optim.ZeroRedundancyOptimizer``.

**Semantics** (keyword ``semantics``):

- ``"pytorch"`` (the default): the library's PyTorch flavor (``rmsprop_options_set_flavor``
  with ``RMSPROP_FLAVOR_PYTORCH``; coupled weight decay and maximize by the library), which
  reproduces ``torch.optim.RMSprop`` on CPU within the bound the library documents for that
  flavor. A library without that flavor raises ``NotImplementedError`` at construction.
- ``"optax"``: ``optax.rmsprop(learning_rate=lr, decay=alpha, eps=eps, initial_scale=0.0,
  eps_in_sqrt=False, centered=centered, momentum=momentum or None, nesterov=False,
  bias_correction=False)`` exactly as the library reproduces it, applied to the gradient
  after torch's own preprocessing done with torch's operations: ``-grad`` when ``maximize``,
  then ``grad.add(param, alpha=weight_decay)`` when ``weight_decay != 0`` (so it equals
  ``optax.chain(optax.add_decayed_weights(weight_decay), optax.rmsprop(...))`` up to the
  rounding of that one addition). The state: ``square_avg`` = ``nu``, ``grad_avg`` = ``mu``,
  and ``momentum_buffer`` = ``trace / -lr``: optax applies the learning rate *before* its
  trace (``trace = momentum * trace - lr * update``), torch after it (``buf = momentum * buf
  + update; param -= lr * buf``). With a constant lr the two are the same arithmetic; with
  a changing lr and momentum they differ, and optax semantics follow optax. The conversion
  uses the group's lr (computed in float64, rounded once; with lr = 0 the trace is passed
  as is), so a state_dict round trip with momentum may move the buffer by an ulp.

**Memory**: parameters and gradients are handed to the library by address
(``tensor.data_ptr()``, one call per group and dtype: ``rmsprop_step_tensors_f32/_f64``), never
copied; the parameters change in place. Only CPU, dense, contiguous ``float32``/``float64``
tensors are accepted: anything else raises ``TypeError`` (device, dtype, sparse) or
``ValueError`` (layout) naming the parameter (``param_groups[g]['params'][i]``), before
anything changes. The library keeps the state (one handle per param group and dtype, laid
out as the group's parameters that have gradients).

**Parameters without gradients** are skipped, as torch does (no state change, no step
count). The handle's layout is fixed, so when the set of parameters with gradients changes
the group's handle is rebuilt over the new set and the state of every parameter is carried
over (a copy of the group's state, only when the set changes).

**State**: ``opt.state[p]`` (and ``.get``, ``.items()``, ``.values()``) reads the current
state of ``p`` out of the library as torch names it (a copy, not kept:
``step``, ``square_avg``, ``momentum_buffer`` when ``momentum > 0``, ``grad_avg`` when
``centered``); ``state_dict()`` is torch's layout, so ``torch.optim.RMSprop`` loads it, and
``load_state_dict`` accepts one saved by ``torch.optim.RMSprop``: switch between the two at any
step, either way. Assigning ``opt.state[p] = {...}`` (as ``ZeroRedundancyOptimizer`` does)
takes effect at the next step; changing a returned tensor in place does not.

**Threads**: ``threads`` as in :class:`rmsprop.RMSProp` (``None``/0: the library's pool,
one thread per core; 1: the calling thread; n: n threads). The bits do not depend on it.
"""

from __future__ import annotations

import ctypes
from collections import defaultdict
from ctypes import POINTER, c_bool, c_double, c_int32, c_void_p
from typing import Any, Callable, Dict, List, Optional, Tuple

import numpy as np
import torch

from . import _capi
from .lowlevel import Optimizer as _Handle
from .lowlevel import Options as _Options

__all__ = ["RMSprop", "has_pytorch_semantics", "SEMANTICS"]

#: The accepted values of ``semantics``.
SEMANTICS = ("pytorch", "optax")

# The PyTorch flavor's C API (the presets): RmspropFlavor values and the option setters.
_FLAVOR_OPTAX = 0  # RMSPROP_FLAVOR_OPTAX
_FLAVOR_PYTORCH = 1  # RMSPROP_FLAVOR_PYTORCH
_WEIGHT_DECAY_COUPLED = 0  # kind 0 of rmsprop_options_set_weight_decay: grad + wd * param
_PRESET_SIGNATURES = {
    "rmsprop_options_set_flavor": (c_int32, [_capi._OptionsP, c_int32]),
    "rmsprop_options_set_weight_decay": (c_int32, [_capi._OptionsP, c_double, c_int32]),
    "rmsprop_options_set_maximize": (c_int32, [_capi._OptionsP, c_bool]),
}


def has_pytorch_semantics() -> bool:
    """Whether the loaded library has the PyTorch flavor (``rmsprop_options_set_flavor``,
    ``rmsprop_options_set_weight_decay``, ``rmsprop_options_set_maximize``), which
    ``semantics="pytorch"`` needs."""
    lib = _capi._lib
    return all(hasattr(lib, name) for name in _PRESET_SIGNATURES)


if has_pytorch_semantics():
    for _name, (_res, _args) in _PRESET_SIGNATURES.items():
        getattr(_capi._lib, _name).restype = _res
        getattr(_capi._lib, _name).argtypes = _args

_DTYPES = {torch.float32: np.float32, torch.float64: np.float64}
# Raw entry points taking the pointer lists as void* (arrays of addresses built by numpy).
_STEP_PROTO = ctypes.CFUNCTYPE(c_int32, c_void_p, c_void_p, c_void_p, ctypes.c_size_t)
_STEP = {
    dt: _STEP_PROTO(ctypes.cast(getattr(_capi._lib, f"rmsprop_step_tensors_{sfx}"), c_void_p).value)
    for dt, sfx in ((torch.float32, "f32"), (torch.float64, "f64"))
}
_STEP_NAME = {torch.float32: "rmsprop_step_tensors_f32", torch.float64: "rmsprop_step_tensors_f64"}


def _scalar_dtype() -> torch.dtype:
    """The dtype torch gives ``state['step']`` (``torch.optim.optimizer._get_scalar_dtype``)."""
    return torch.float64 if torch.get_default_dtype() == torch.float64 else torch.float32


def _float(v: Any) -> float:
    return float(v.item()) if isinstance(v, torch.Tensor) else float(v)


class _Bucket:
    """One library handle: the parameters of one group and one dtype that have gradients."""

    __slots__ = ("params", "names", "dtype", "opt", "hyper", "shape_key", "steps", "n", "optax")

    def __init__(self, params, names, dtype, opt, hyper, steps, optax):
        self.optax: bool = optax  # optax semantics: the trace is scaled by -lr
        self.params: List[torch.Tensor] = params
        self.names: List[str] = names
        self.dtype: torch.dtype = dtype
        self.opt: _Handle = opt
        self.hyper: Dict[str, Any] = hyper
        self.shape_key = tuple(p.numel() for p in params)
        self.steps: List[int] = steps  # each parameter's step count when the handle was built
        self.n = 0  # steps taken by this handle since

    def step_of(self, i: int) -> int:
        return self.steps[i] + self.n


class _GroupCache:
    __slots__ = ("key", "buckets")

    def __init__(self, key, buckets):
        self.key = key  # ids of the group's parameters with gradients, in order
        self.buckets: List[_Bucket] = buckets


class _State(defaultdict):
    """``Optimizer.state``: a parameter in a library handle ("live") has a placeholder entry
    here, and reading it (``[p]``, ``get``, ``items``, ``values``) copies its state out of the
    library; no copy is kept, so the state is not held twice. Assigned entries are noted and
    pushed into the library at the next step."""

    def __init__(self, owner: "RMSprop", *args):
        super().__init__(dict, *args)
        self._owner_id = id(owner)
        self._live: Dict[int, Tuple[_Bucket, int]] = {}  # id(param) -> (bucket, index)
        self.dirty: set = set()
        # Optax semantics: the exact trace behind a momentum_buffer this optimizer parked
        # (id(param) -> (buffer given out, trace)), so that rebuilding a handle is exact.
        self.traces: Dict[int, Tuple[torch.Tensor, torch.Tensor]] = {}

    def __getitem__(self, p):
        where = self._live.get(id(p))
        if where is not None and p not in self.dirty:
            bucket, i = where
            return RMSprop._extract(bucket, i)
        return super().__getitem__(p)

    def get(self, p, default=None):
        return self[p] if p in self else default

    def items(self):
        return [(p, self[p]) for p in list(dict.keys(self))]

    def values(self):
        return [self[p] for p in list(dict.keys(self))]

    def __setitem__(self, p, v):
        dict.__setitem__(self, p, v)
        self.dirty.add(p)

    def __delitem__(self, p):
        dict.__delitem__(self, p)
        self.dirty.add(p)

    def pop(self, p, *default):
        self.dirty.add(p)
        return dict.pop(self, p, *default)

    def update(self, *args, **kwargs):
        other = dict(*args, **kwargs)
        for k, v in other.items():
            self[k] = v

    def setdefault(self, p, default=None):
        if p not in self:
            self[p] = default
        return dict.__getitem__(self, p)

    def clear(self):
        self.dirty.update(self.keys())
        self.dirty.update(b.params[i] for b, i in self._live.values())
        dict.clear(self)

    def __reduce__(self):  # pickles as torch's plain defaultdict, with the current state
        return (defaultdict, (dict,), None, None, iter(self.items()))


class RMSprop(torch.optim.Optimizer):
    """``torch.optim.RMSprop`` computed by the rmsprop library (see the module's docs)."""

    def __init__(
        self,
        params: Any,
        lr: float = 1e-2,
        alpha: float = 0.99,
        eps: float = 1e-8,
        weight_decay: float = 0,
        momentum: float = 0,
        centered: bool = False,
        capturable: bool = False,
        foreach: Optional[bool] = None,
        maximize: bool = False,
        differentiable: bool = False,
        *,
        semantics: str = "pytorch",
        threads: Optional[int] = None,
    ):
        if isinstance(lr, torch.Tensor) and lr.numel() != 1:
            raise ValueError("Tensor lr must be 1-element")
        if not 0.0 <= lr:
            raise ValueError(f"Invalid learning rate: {lr}")
        if not 0.0 <= eps:
            raise ValueError(f"Invalid epsilon value: {eps}")
        if not 0.0 <= momentum:
            raise ValueError(f"Invalid momentum value: {momentum}")
        if not 0.0 <= weight_decay:
            raise ValueError(f"Invalid weight_decay value: {weight_decay}")
        if not 0.0 <= alpha:
            raise ValueError(f"Invalid alpha value: {alpha}")
        if semantics not in SEMANTICS:
            raise ValueError(f"semantics must be one of {SEMANTICS}, got {semantics!r}")
        if semantics == "pytorch" and not has_pytorch_semantics():
            raise NotImplementedError(
                "PyTorch semantics need a library with rmsprop_options_set_flavor (the loaded "
                f"{_capi.library_path} has none): use semantics='optax' or a newer library"
            )
        if threads is not None and int(threads) < 0:
            raise ValueError(f"threads must be >= 0, got {threads}")
        self._semantics = semantics
        self._threads = None if threads is None else int(threads)
        self._groups: List[Optional[_GroupCache]] = []
        defaults = {
            "lr": lr,
            "momentum": momentum,
            "alpha": alpha,
            "eps": eps,
            "centered": centered,
            "weight_decay": weight_decay,
            "capturable": capturable,
            "foreach": foreach,
            "maximize": maximize,
            "differentiable": differentiable,
        }
        self._check_flags(defaults, "")
        super().__init__(params, defaults)
        self.state = _State(self, self.state)

    # -- torch.optim.Optimizer protocol -------------------------------------------------------
    @property
    def semantics(self) -> str:
        return self._semantics

    @property
    def threads(self) -> Optional[int]:
        return self._threads

    @staticmethod
    def _check_flags(group: Dict[str, Any], where: str) -> None:
        for flag in ("capturable", "differentiable"):
            if group.get(flag):
                raise ValueError(f"{flag}=True{where} is not supported by rmsprop.torch.RMSprop (CPU only)")

    def __setstate__(self, state: Dict[str, Any]) -> None:
        # Called by load_state_dict (state, param_groups) and by unpickling (everything).
        super().__setstate__(state)
        for group in self.param_groups:
            group.setdefault("momentum", 0)
            group.setdefault("centered", False)
            group.setdefault("foreach", None)
            group.setdefault("maximize", False)
            group.setdefault("differentiable", False)
            group.setdefault("capturable", False)
        self.__dict__.setdefault("_semantics", "pytorch")
        self.__dict__.setdefault("_threads", None)
        self._drop_handles()  # what was loaded is the state now
        self.state = _State(self, self.state)
        for p, entry in list(dict.items(self.state)):
            if entry and not torch.is_tensor(entry.get("step", 0)):
                entry["step"] = torch.tensor(float(entry["step"]), dtype=_scalar_dtype())

    def __getstate__(self) -> Dict[str, Any]:
        self._absorb()
        return {
            "defaults": self.defaults,
            "state": defaultdict(dict, self.state.items()),
            "param_groups": self.param_groups,
            "_semantics": self._semantics,
            "_threads": self._threads,
        }

    def state_dict(self) -> Dict[str, Any]:
        """torch's ``Optimizer.state_dict()``, in ``torch.optim.RMSprop``'s layout (copies of
        the library's state)."""
        self._absorb()
        return super().state_dict()  # reads self.state.items(): fresh copies

    def add_param_group(self, param_group: Dict[str, Any]) -> None:
        self._check_flags(param_group, " in a param group")
        super().add_param_group(param_group)

    @torch.no_grad()
    def step(self, closure: Optional[Callable[[], Any]] = None) -> Any:
        """One RMSprop step over every parameter that has a gradient (see the module docs)."""
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        self._absorb()
        while len(self._groups) < len(self.param_groups):
            self._groups.append(None)
        for gi, group in enumerate(self.param_groups):
            self._step_group(gi, group)
        return loss

    # -- the library's handles ----------------------------------------------------------------
    def _drop_handles(self) -> None:
        for cache in getattr(self, "_groups", []):
            if cache is not None:
                for b in cache.buckets:
                    b.opt.close()
        self._groups = []
        st = self.__dict__.get("state")
        if isinstance(st, _State):
            st._live.clear()
            st.traces.clear()

    def _close_group(self, gi: int, save: bool) -> None:
        """Close group ``gi``'s handles; with ``save`` their state goes into ``self.state``
        first (entries assigned since, which are newer, are kept)."""
        cache = self._groups[gi]
        if cache is None:
            return
        st = self.state
        for b in cache.buckets:
            for i, p in enumerate(b.params):
                st._live.pop(id(p), None)
                if save and p not in st.dirty:
                    entry = self._extract(b, i)
                    dict.__setitem__(st, p, entry)
                    if b.optax and "momentum_buffer" in entry:
                        st.traces[id(p)] = (entry["momentum_buffer"], self._component(b, i, "trace"))
            b.opt.close()
        self._groups[gi] = None

    def _absorb(self) -> None:
        """Take in ``self.state`` changes made from outside (load_state_dict, assignments)."""
        st = self.__dict__.get("state")
        if not isinstance(st, _State) or st._owner_id != id(self):
            self._drop_handles()
            self.state = _State(self, st if st is not None else {})
            return
        if not st.dirty:
            return
        touched = {id(p) for p in st.dirty}
        for gi, cache in enumerate(self._groups):
            if cache is not None and any(id(p) in touched for b in cache.buckets for p in b.params):
                self._close_group(gi, save=True)
        st.dirty.clear()

    @staticmethod
    def _component(b: _Bucket, i: int, name: str) -> torch.Tensor:
        return torch.from_numpy(b.opt.get_state(name, i)).reshape(b.params[i].shape)

    @staticmethod
    def _extract(b: _Bucket, i: int) -> Dict[str, Any]:
        """Parameter ``i`` of bucket ``b``'s state in torch's names (new tensors)."""

        def comp(name: str) -> torch.Tensor:
            return RMSprop._component(b, i, name)

        entry: Dict[str, Any] = {"step": torch.tensor(float(b.step_of(i)), dtype=_scalar_dtype())}
        entry["square_avg"] = comp("nu")
        if b.hyper["momentum"] > 0:
            trace = comp("trace")
            lr = b.hyper["lr"]
            if b.optax and lr != 0:
                # optax's trace accumulates -lr * update, torch's buffer the update itself
                trace = (trace.double() / -lr).to(trace.dtype)
            entry["momentum_buffer"] = trace
        if b.hyper["centered"]:
            entry["grad_avg"] = comp("mu")
        return entry

    def _hyper(self, group: Dict[str, Any]) -> Dict[str, Any]:
        return {
            "lr": _float(group["lr"]),
            "alpha": float(group["alpha"]),
            "eps": float(group["eps"]),
            "momentum": float(group["momentum"]),
            "centered": bool(group["centered"]),
            "weight_decay": float(group["weight_decay"]),
            "maximize": bool(group["maximize"]),
        }

    def _options(self, h: Dict[str, Any]) -> _Options:
        """The library options for a group's hyperparameters, in this optimizer's semantics."""
        momentum = h["momentum"] if h["momentum"] > 0 else None
        if self._semantics == "optax":
            return _Options(
                h["lr"], decay=h["alpha"], eps=h["eps"], initial_scale=0.0, eps_in_sqrt=False,
                centered=h["centered"], momentum=momentum,
            )
        opts = _Options()
        try:
            _capi._call("rmsprop_options_set_flavor", opts, _FLAVOR_PYTORCH)
            opts.set_learning_rate(h["lr"]).set_decay(h["alpha"]).set_eps(h["eps"]).set_momentum(momentum)
            _capi._call("rmsprop_options_set_eps_in_sqrt", opts, False)
            _capi._call("rmsprop_options_set_centered", opts, h["centered"])
            _capi._call("rmsprop_options_set_weight_decay", opts, h["weight_decay"], _WEIGHT_DECAY_COUPLED)
            _capi._call("rmsprop_options_set_maximize", opts, h["maximize"])
        except BaseException:
            opts.close()
            raise
        return opts

    def _rebuild_needed(self, b: _Bucket, h: Dict[str, Any]) -> bool:
        old = b.hyper
        if (old["momentum"] > 0) != (h["momentum"] > 0) or old["centered"] != h["centered"]:
            return True
        # Only the PyTorch flavor puts weight decay and maximize into the library.
        return self._semantics == "pytorch" and (
            old["weight_decay"] != h["weight_decay"] or old["maximize"] != h["maximize"]
        )

    def _apply_live(self, b: _Bucket, h: Dict[str, Any]) -> None:
        """Hyperparameters that the library changes between steps (torch reads them at each)."""
        old = b.hyper
        if h["lr"] != old["lr"]:
            b.opt.set_learning_rate(h["lr"])
        if h["alpha"] != old["alpha"]:
            b.opt.set_decay(h["alpha"])
        if h["eps"] != old["eps"]:
            b.opt.set_eps(h["eps"])
        if h["momentum"] != old["momentum"]:
            b.opt.set_momentum(h["momentum"])
        b.hyper = h

    def _build_group(self, gi: int, group: Dict[str, Any], active: List[torch.Tensor], h: Dict[str, Any]) -> None:
        index = {id(p): i for i, p in enumerate(group["params"])}
        by_dtype: Dict[torch.dtype, List[torch.Tensor]] = {}
        for p in active:
            name = f"param_groups[{gi}]['params'][{index[id(p)]}]"
            self._check_param(p, name)
            by_dtype.setdefault(p.dtype, []).append(p)
        # Every check before anything changes: the old handles still hold the state.
        self._close_group(gi, save=True)
        st = self.state
        buckets = []
        try:
            for dtype, ps in by_dtype.items():
                names = [f"param_groups[{gi}]['params'][{index[id(p)]}]" for p in ps]
                with self._options(h) as opts:
                    opt = _Handle(opts, [p.numel() for p in ps], dtype=_DTYPES[dtype])
                buckets.append(_Bucket(ps, names, dtype, opt, dict(h), [0] * len(ps), self._semantics == "optax"))
                if self._threads is not None:
                    opt.threads = self._threads
                b = buckets[-1]
                for i, p in enumerate(ps):
                    entry = dict.get(st, p)
                    if entry:
                        b.steps[i] = int(_float(entry.get("step", 0)))
                        exact = st.traces.pop(id(p), None)
                        self._load_entry(b, i, entry, names[i])
                        if exact is not None and exact[0] is entry.get("momentum_buffer") and b.hyper["momentum"] > 0:
                            b.opt.set_state("trace", i, exact[1].reshape(-1).numpy())
        except BaseException:
            for b in buckets:
                b.opt.close()
            raise
        for b in buckets:
            for i, p in enumerate(b.params):
                st._live[id(p)] = (b, i)
                dict.__setitem__(st, p, {})  # a placeholder: the library holds the state
        self._groups[gi] = _GroupCache(tuple(id(p) for p in active), buckets)

    @staticmethod
    def _load_entry(b: _Bucket, i: int, entry: Dict[str, Any], name: str) -> None:
        p = b.params[i]
        np_dtype = _DTYPES[b.dtype]
        for key, comp, wanted in (
            ("square_avg", "nu", True),
            ("momentum_buffer", "trace", b.hyper["momentum"] > 0),
            ("grad_avg", "mu", b.hyper["centered"]),
        ):
            t = entry.get(key)
            if t is None or not wanted:
                continue  # absent: the initial state (zeros), as torch would create it
            t = torch.as_tensor(t).detach()
            if t.numel() != p.numel():
                raise ValueError(f"state of {name}: {key} has {t.numel()} elements, the parameter {p.numel()}")
            t = t.to(device="cpu")
            if comp == "trace" and b.optax and b.hyper["lr"] != 0:
                t = t.double() * -b.hyper["lr"]  # torch's buffer -> optax's trace
            a = t.to(dtype=b.dtype).contiguous().reshape(-1).numpy()
            b.opt.set_state(comp, i, a.astype(np_dtype, copy=False))

    @staticmethod
    def _check_param(p: torch.Tensor, name: str) -> None:
        if p.device.type != "cpu":
            raise TypeError(f"{name} is on {p.device}: rmsprop.torch.RMSprop steps CPU tensors only")
        if p.dtype not in _DTYPES:
            raise TypeError(f"{name} has dtype {p.dtype}: rmsprop.torch.RMSprop steps float32 and float64 only")
        if p.layout != torch.strided:
            raise TypeError(f"{name} has layout {p.layout}: only dense (strided) tensors are supported")
        if not p.is_contiguous():
            raise ValueError(f"{name} is not contiguous: the library needs contiguous memory")

    def _step_group(self, gi: int, group: Dict[str, Any]) -> None:
        # The per-step path: per parameter, only what cannot be known in advance (its
        # gradient, checked, and both addresses), so that many small tensors stay cheap.
        if group["capturable"] or group["differentiable"]:
            self._check_flags(group, f" in param_groups[{gi}]")
        params = group["params"]
        grads = [p.grad for p in params]
        if any(g is None for g in grads):
            active = [p for p, g in zip(params, grads) if g is not None]
            grads = [g for g in grads if g is not None]
        else:
            active = params
        h = self._hyper(group)
        cache = self._groups[gi]
        key = tuple(map(id, active))
        if cache is None or cache.key != key or any(self._rebuild_needed(b, h) for b in cache.buckets):
            if not active:
                return
            self._build_group(gi, group, active, h)
            cache = self._groups[gi]
        assert cache is not None
        if len(cache.buckets) == 1:
            per_bucket = [grads]
        else:
            where = {id(p): g for p, g in zip(active, grads)}
            per_bucket = [[where[id(p)] for p in b.params] for b in cache.buckets]
        for b, g in zip(cache.buckets, per_bucket):  # every check before any step
            self._check_grads(b, g)
        for b, g in zip(cache.buckets, per_bucket):
            self._apply_live(b, h)
            self._step_bucket(b, g, h)

    @staticmethod
    def _check_grads(b: _Bucket, grads: List[torch.Tensor]) -> None:
        dt, strided = b.dtype, torch.strided
        try:
            for g, n in zip(grads, b.shape_key):
                if g.dtype is not dt or not g.is_cpu or g.layout is not strided or g.numel() != n or not g.is_contiguous():
                    break
            else:
                return
        except RuntimeError:
            pass
        for g, name, n in zip(grads, b.names, b.shape_key):  # find the culprit, say what it is
            if g.layout != strided:
                raise TypeError(f"{name}.grad has layout {g.layout}: RMSprop does not support sparse gradients")
            if g.dtype != dt or not g.is_cpu:
                raise TypeError(f"{name}.grad is a {g.dtype} tensor on {g.device}, the parameter {dt} on cpu")
            if g.numel() != n:
                raise ValueError(
                    f"{name}.grad has {g.numel()} elements, the parameter had {n} when it was laid out "
                    "(a parameter that changes size needs a new optimizer)"
                )
            if not g.is_contiguous():
                raise ValueError(f"{name}.grad is not contiguous: the library needs contiguous memory")

    def _step_bucket(self, b: _Bucket, grads: List[torch.Tensor], h: Dict[str, Any]) -> None:
        if self._semantics == "optax" and (h["maximize"] or h["weight_decay"] != 0):
            # torch's preprocessing, with torch's operations (new tensors, as torch makes).
            grads = [-g if h["maximize"] else g for g in grads]
            if h["weight_decay"] != 0:
                grads = [g.add(p, alpha=h["weight_decay"]) for g, p in zip(grads, b.params)]
        n = len(b.params)
        pp = np.array([p.data_ptr() for p in b.params], dtype=np.uintp)
        gp = np.array([g.data_ptr() for g in grads], dtype=np.uintp)
        status = _STEP[b.dtype](b.opt._as_parameter_, pp.ctypes.data, gp.ctypes.data, n)
        _capi._check(status, _STEP_NAME[b.dtype])
        b.n += 1

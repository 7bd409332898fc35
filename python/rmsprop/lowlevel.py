"""rmsprop.lowlevel: the C API of the rmsprop library, one to one, through ctypes.

Every function and constant of ``include/rmsprop.h`` is available here (declared, with
argtypes and restype, in ``rmsprop._capi``; constants in :mod:`rmsprop.constants`; a test
holds both to the header), plus thin owning wrappers: :class:`Options`,
:class:`Schedule` and :class:`Optimizer` over flat buffers and lists of tensors. Most users
want the pytree-aware :class:`rmsprop.RMSProp` instead; this layer is for those who need
the C API's exact shape (and it is what ``rmsprop_ctypes``, the old module name, imports).

Zero-copy: parameters, gradients and updates are arrays handed to the library by pointer;
``step`` changes the parameter array in place. Accepted: numpy arrays and anything exposing
the buffer protocol, ``__array_interface__`` or DLPack (a PyTorch CPU tensor, for example);
never converted or copied. Arrays must have exactly the optimizer's dtype (``float32`` or
``float64``) and be C-contiguous; arrays the library writes must be writeable. A wrong array
raises ``TypeError``/``ValueError`` before the library is called.

    import numpy as np
    from rmsprop import lowlevel

    solver = lowlevel.rmsprop(learning_rate=0.003)      # optax.rmsprop(learning_rate=0.003)
    params = np.array([1.0, 2.0, 3.0], dtype=np.float32)
    with solver.init(params) as opt:                     # optax init
        for _ in range(5):
            opt.step(params, 2.0 * params)               # update + apply_updates, in place

The library: the file (or directory holding ``librmsprop.so``) named by the environment
variable ``RMSPROP_LIBRARY`` (``RMSPROP_LIB`` is read too, for old scripts), else the copy
installed inside this package by ``pip install``, else the source tree's ``target/release``
(then ``target/debug``), for running from a checkout after ``cargo build --release``.
:data:`library_path` says which one was loaded.

Errors raise :class:`RmspropError` (a subclass per kind, see :data:`ERRORS`) with the
library's status code, its name and the library's message. ``RMSPROP_SKIPPED_NON_FINITE`` is
not an error: ``step`` returns ``False``.

Threads: ctypes releases the GIL during each call. Calls that change an optimizer must not
run concurrently on the same optimizer; if they do, the late one raises :class:`BusyError`
and changes nothing.
"""

from __future__ import annotations

import functools
import os
import struct
from ctypes import (
    POINTER,
    byref,
    c_bool,
    c_double,
    c_float,
    c_int32,
    c_int64,
    c_size_t,
    c_uint16,
    c_uint64,
)
from typing import Any, Iterable, Mapping, Sequence

import numpy as np

from ._capi import (  # noqa: F401  (re-exported: the low-level API in one module)
    _SIGNATURES,
    _OptimizerP,
    _ScheduleP,
    _OptionsP,
    _bytes_view,
    _call,
    _check,
    _component,
    _dtype_code,
    _lib,
    as_array,
    last_error_message,
    library_path,
    load_library,
    status_name,
    version,
    version_number,
)
from .constants import *  # noqa: F401,F403  (OK, ERR_*, DTYPE_*, NU, MU, TRACE, HEADER_CONSTANTS)
from .constants import (  # noqa: F401
    DTYPE_BF16,
    DTYPE_F16,
    DTYPE_F32,
    DTYPE_F64,
    FLAVOR_OPTAX,
    MU,
    NU,
    OK,
    TRACE,
    WEIGHT_DECAY_COUPLED,
)
from .errors import *  # noqa: F401,F403
from .errors import ERRORS, RmspropError, _make_error  # noqa: F401

__all__ = [
    "RmspropError",
    "Options",
    "Schedule",
    "Optimizer",
    "rmsprop",
    "load_library",
    "library_path",
    "status_name",
    "version",
    "as_array",
    "checkpoint_config",
    "NU",
    "MU",
    "TRACE",
]


# ---------------------------------------------------------------------------------------------
# Owned handles


class _Handle:
    """Owns one library object; freed by close(), a with-block, or garbage collection."""

    _free_name = ""

    def __init__(self, ptr):
        self._ptr = ptr

    @property
    def _as_parameter_(self):
        if not self._ptr:
            raise ValueError(f"{type(self).__name__} is closed")
        return self._ptr

    def close(self) -> None:
        ptr, self._ptr = getattr(self, "_ptr", None), None
        if ptr:
            getattr(_lib, self._free_name)(ptr)

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def __del__(self):
        try:
            self.close()
        except Exception:  # interpreter shutdown: the library may already be gone
            pass


def _recorded(fn):
    """A Schedule constructor that remembers how it was called (for pickling and repr)."""

    @functools.wraps(fn)
    def make(cls, *args, **kwargs):
        sched = fn(cls, *args, **kwargs)
        sched._recipe = (fn.__name__, args, kwargs)
        return sched

    return classmethod(make)


def _rebuild_schedule(recipe) -> "Schedule":
    name, args, kwargs = recipe
    return getattr(Schedule, name)(*args, **kwargs)


class Schedule(_Handle):
    """An optax learning-rate schedule. Build one with the class methods (optax's names) or
    with :mod:`rmsprop.schedules`. Calling it gives its value at a count. Picklable."""

    _free_name = "rmsprop_schedule_free"
    _recipe: tuple = ("", (), {})

    def __reduce__(self):
        return (_rebuild_schedule, (self._recipe,))

    def __repr__(self) -> str:
        name, args, kwargs = self._recipe
        parts = [repr(a) for a in args] + [f"{k}={v!r}" for k, v in kwargs.items()]
        return f"Schedule.{name}({', '.join(parts)})"

    @classmethod
    def _make(cls, fn: str, *args) -> "Schedule":
        out = _ScheduleP()
        _call(fn, *args, byref(out))
        return cls(out)

    @staticmethod
    def _opt(v):
        return None if v is None else byref(c_double(float(v)))

    @_recorded
    def constant(cls, value: float) -> "Schedule":
        return cls._make("rmsprop_schedule_constant", float(value))

    @_recorded
    def linear(cls, init_value, end_value, transition_steps, transition_begin=0) -> "Schedule":
        return cls._make(
            "rmsprop_schedule_linear", float(init_value), float(end_value), int(transition_steps), int(transition_begin)
        )

    @_recorded
    def polynomial(cls, init_value, end_value, power, transition_steps, transition_begin=0) -> "Schedule":
        return cls._make(
            "rmsprop_schedule_polynomial",
            float(init_value),
            float(end_value),
            float(power),
            int(transition_steps),
            int(transition_begin),
        )

    @_recorded
    def exponential_decay(
        cls, init_value, transition_steps, decay_rate, transition_begin=0, staircase=False, end_value=None
    ) -> "Schedule":
        return cls._make(
            "rmsprop_schedule_exponential_decay",
            float(init_value),
            int(transition_steps),
            float(decay_rate),
            int(transition_begin),
            bool(staircase),
            cls._opt(end_value),
        )

    @_recorded
    def cosine_decay(cls, init_value, decay_steps, alpha=0.0, exponent=1.0) -> "Schedule":
        return cls._make(
            "rmsprop_schedule_cosine_decay", float(init_value), int(decay_steps), float(alpha), float(exponent)
        )

    @_recorded
    def warmup_cosine_decay(
        cls, init_value, peak_value, warmup_steps, decay_steps, end_value=0.0, exponent=1.0
    ) -> "Schedule":
        return cls._make(
            "rmsprop_schedule_warmup_cosine_decay",
            float(init_value),
            float(peak_value),
            int(warmup_steps),
            int(decay_steps),
            float(end_value),
            float(exponent),
        )

    @_recorded
    def warmup_exponential_decay(
        cls,
        init_value,
        peak_value,
        warmup_steps,
        transition_steps,
        decay_rate,
        transition_begin=0,
        staircase=False,
        end_value=None,
    ) -> "Schedule":
        return cls._make(
            "rmsprop_schedule_warmup_exponential_decay",
            float(init_value),
            float(peak_value),
            int(warmup_steps),
            int(transition_steps),
            float(decay_rate),
            int(transition_begin),
            bool(staircase),
            cls._opt(end_value),
        )

    @_recorded
    def piecewise_constant(cls, init_value, boundaries_and_scales: Mapping[int, float] | None = None) -> "Schedule":
        items = sorted((boundaries_and_scales or {}).items())
        n = len(items)
        b = (c_int64 * max(n, 1))(*[int(k) for k, _ in items])
        s = (c_double * max(n, 1))(*[float(v) for _, v in items])
        return cls._make("rmsprop_schedule_piecewise_constant", float(init_value), b, s, n)

    @_recorded
    def join(cls, schedules: Sequence["Schedule"], boundaries: Sequence[int]) -> "Schedule":
        scheds = list(schedules)
        for s in scheds:
            if not isinstance(s, Schedule):
                raise TypeError(f"join takes Schedule objects, got {type(s).__name__}")
        ptrs = (_ScheduleP * max(len(scheds), 1))(*[s._as_parameter_ for s in scheds])
        bs = (c_int64 * max(len(boundaries), 1))(*[int(b) for b in boundaries])
        return cls._make("rmsprop_schedule_join", ptrs, len(scheds), bs, len(boundaries))

    def value(self, count: int, dtype=np.float32) -> float:
        """The value at ``count`` as jitted optax computes it for parameters of ``dtype``."""
        out = c_double()
        _call("rmsprop_schedule_value", self, int(count), _dtype_code(dtype), byref(out))
        return out.value

    __call__ = value


class Options(_Handle):
    """Every argument of ``optax.rmsprop``, with optax's defaults."""

    _free_name = "rmsprop_options_free"

    def __init__(
        self,
        learning_rate: float | Schedule = 0.001,
        *,
        decay: float = 0.9,
        eps: float = 1e-8,
        initial_scale: float = 0.0,
        eps_in_sqrt: bool = True,
        centered: bool = False,
        momentum: float | None = None,
        nesterov: bool = False,
        bias_correction: bool = False,
        skip_non_finite: bool = False,
        weight_decay: float = 0.0,
        weight_decay_kind: int = WEIGHT_DECAY_COUPLED,
        maximize: bool = False,
        clip: float = float("inf"),
        clip_by_global_norm: float = float("inf"),
        flavor: int = FLAVOR_OPTAX,
    ):
        out = _OptionsP()
        _call("rmsprop_options_new", 0.001, byref(out))
        super().__init__(out)
        try:
            self.set_learning_rate(learning_rate)
            self.set_decay(decay)
            self.set_eps(eps)
            self.set_initial_scale(initial_scale)
            _call("rmsprop_options_set_eps_in_sqrt", self, bool(eps_in_sqrt))
            _call("rmsprop_options_set_centered", self, bool(centered))
            self.set_momentum(momentum)
            _call("rmsprop_options_set_nesterov", self, bool(nesterov))
            _call("rmsprop_options_set_bias_correction", self, bool(bias_correction))
            _call("rmsprop_options_set_skip_non_finite", self, bool(skip_non_finite))
            _call("rmsprop_options_set_weight_decay", self, float(weight_decay), int(weight_decay_kind))
            _call("rmsprop_options_set_maximize", self, bool(maximize))
            _call("rmsprop_options_set_clip", self, float(clip))
            _call("rmsprop_options_set_clip_by_global_norm", self, float(clip_by_global_norm))
            _call("rmsprop_options_set_flavor", self, int(flavor))
        except Exception:
            self.close()
            raise

    def set_learning_rate(self, learning_rate: float | Schedule) -> "Options":
        if isinstance(learning_rate, Schedule):
            _call("rmsprop_options_set_learning_rate_schedule", self, learning_rate)
        else:
            _call("rmsprop_options_set_learning_rate", self, float(learning_rate))
        return self

    def set_decay(self, decay: float) -> "Options":
        _call("rmsprop_options_set_decay", self, float(decay))
        return self

    def set_eps(self, eps: float) -> "Options":
        _call("rmsprop_options_set_eps", self, float(eps))
        return self

    def set_initial_scale(self, initial_scale: float) -> "Options":
        _call("rmsprop_options_set_initial_scale", self, float(initial_scale))
        return self

    def set_momentum(self, momentum: float | None) -> "Options":
        if momentum is None:
            _call("rmsprop_options_clear_momentum", self)
        else:
            _call("rmsprop_options_set_momentum", self, float(momentum))
        return self

    def init(self, params, dtype=None) -> "Optimizer":
        """optax ``init``: an optimizer for ``params`` (one array, or a list of arrays)."""
        arrays = [params] if isinstance(params, np.ndarray) else list(params)
        if dtype is None:
            dtype = arrays[0].dtype if arrays else np.float32
        return Optimizer(self, [int(np.size(a)) for a in arrays], dtype=dtype)


def rmsprop(learning_rate: float | Schedule, **kwargs) -> Options:
    """``optax.rmsprop(learning_rate, ...)``: the options; call ``.init(params)`` next."""
    return Options(learning_rate, **kwargs)


def _numpy_dtype(code: int) -> Any:
    """The numpy dtype of a library dtype code (bfloat16 needs the ml_dtypes package)."""
    if code == DTYPE_F32:
        return np.float32
    if code == DTYPE_F64:
        return np.float64
    if code == DTYPE_F16:
        return np.float16
    try:
        import ml_dtypes
    except ImportError as e:  # pragma: no cover - depends on the environment
        raise TypeError("a bfloat16 optimizer needs the ml_dtypes package for its numpy dtype") from e
    return ml_dtypes.bfloat16


class Optimizer(_Handle):
    """optax.rmsprop state over a layout of tensors of ``sizes`` elements, in ``dtype``."""

    _free_name = "rmsprop_destroy"

    def __init__(self, options: Options | float | Schedule, sizes: int | Iterable[int], dtype=np.float32, **kwargs):
        self._ptr = None
        own = not isinstance(options, Options)
        if isinstance(options, Options):
            if kwargs:
                raise TypeError("pass optax arguments either in Options or as keywords, not both")
            opts = options
        else:
            opts = Options(options, **kwargs)
        try:
            sizes = [int(sizes)] if isinstance(sizes, (int, np.integer)) else [int(s) for s in sizes]
            self._set_dtype(dtype)
            arr = (c_size_t * max(len(sizes), 1))(*sizes)
            out = _OptimizerP()
            _call("rmsprop_create", opts, arr, len(sizes), _dtype_code(self.dtype), byref(out))
            super().__init__(out)
            self.sizes = tuple(sizes)
        finally:
            if own:
                opts.close()

    def _set_dtype(self, dtype) -> None:
        self.dtype = np.dtype(dtype)
        code = _dtype_code(self.dtype)
        self._elem = {DTYPE_F32: c_float, DTYPE_F64: c_double}.get(code, c_uint16)
        self._ptr_t = POINTER(self._elem)
        self._sfx = {DTYPE_F32: "f32", DTYPE_F64: "f64", DTYPE_BF16: "bf16", DTYPE_F16: "f16"}[code]

    @classmethod
    def from_checkpoint(cls, data) -> "Optimizer":
        """A new optimizer from checkpoint bytes (``rmsprop_create_from_checkpoint``): the
        checkpoint's dtype, layout, configuration and state; threads: the global pool."""
        view = _bytes_view(data)
        out = _OptimizerP()
        _call("rmsprop_create_from_checkpoint", view.ctypes.data, view.size, byref(out))
        self = cls.__new__(cls)
        _Handle.__init__(self, out)
        code = c_int32()
        _call("rmsprop_dtype", self, byref(code))
        self._set_dtype(_numpy_dtype(code.value))
        self.sizes = tuple(self.tensor_size(i) for i in range(self.num_tensors))
        return self

    # -- arrays ---------------------------------------------------------------------------
    def _array(self, a, name: str, writeable: bool) -> np.ndarray:
        return as_array(a, name, self.dtype, writeable)

    def _addr(self, a: np.ndarray):
        return a.ctypes.data_as(self._ptr_t)

    def _ptr_of(self, a, name: str, writeable: bool):
        return self._addr(self._array(a, name, writeable))

    def _list(self, arrays, name: str, writeable: bool):
        arrays = [self._array(a, f"{name}[{i}]", writeable) for i, a in enumerate(arrays)]
        if len(arrays) == len(self.sizes):
            # The list entry points take no per-tensor lengths: the library uses the layout's.
            # An array of another size would be read or written out of bounds, so check here.
            for i, (a, n) in enumerate(zip(arrays, self.sizes)):
                if a.size != n:
                    raise ValueError(f"{name}[{i}] has {a.size} elements, tensor {i} has {n}")
        ptrs = (self._ptr_t * max(len(arrays), 1))(*[self._addr(a) for a in arrays])
        return ptrs, arrays

    # -- steps ----------------------------------------------------------------------------
    def step(self, params, grads) -> bool:
        """optax update + apply_updates over one flat array, in place. False if skipped."""
        p = self._array(params, "params", True)
        g = self._array(grads, "grads", False)
        # One length describes both buffers in the C call: they must agree, or the library
        # would read or write past the shorter one.
        if p.size != g.size:
            raise ValueError(f"params has {p.size} elements, grads {g.size}")
        return _call(f"rmsprop_step_{self._sfx}", self, self._addr(p), self._addr(g), p.size) == OK

    def update(self, grads, out=None):
        """optax update: returns the updates (in ``out``, which may be ``grads`` itself)."""
        g = self._array(grads, "grads", False)
        if out is None:
            out = np.empty_like(g)
        u = self._array(out, "out", True)
        if g.size != u.size:  # one length for both buffers in the C call
            raise ValueError(f"grads has {g.size} elements, out {u.size}")
        _call(f"rmsprop_update_{self._sfx}", self, self._addr(g), self._addr(u), g.size)
        return out

    def step_tensors(self, params: Sequence[Any], grads: Sequence[Any]) -> bool:
        """The fused step over one array per tensor, in one parallel dispatch. False if skipped."""
        pp, pa = self._list(params, "params", True)
        gp, ga = self._list(grads, "grads", False)
        if len(pa) != len(ga):
            raise ValueError(f"{len(pa)} params arrays, {len(ga)} grads arrays")
        return _call(f"rmsprop_step_tensors_{self._sfx}", self, pp, gp, len(pa)) == OK

    def update_tensors(self, grads: Sequence[Any], out: Sequence[Any] | None = None) -> list[Any]:
        """optax update per tensor; ``out=grads`` computes in place."""
        grads = list(grads)
        gp, ga = self._list(grads, "grads", False)
        out = [np.empty_like(g) for g in ga] if out is None else list(out)
        up, ua = self._list(out, "out", True)
        if len(ga) != len(ua):
            raise ValueError(f"{len(ga)} grads arrays, {len(ua)} out arrays")
        _call(f"rmsprop_update_tensors_{self._sfx}", self, gp, up, len(ga))
        return out

    # -- state ----------------------------------------------------------------------------
    def get_state(self, component, tensor: int = 0, out=None) -> np.ndarray:
        """A copy of tensor ``tensor``'s part of ``nu``, ``mu`` or ``trace`` (into ``out``)."""
        n = self.tensor_size(tensor)
        if out is None:
            out = np.empty(n, dtype=self.dtype)
        o = self._array(out, "out", True)
        _call(f"rmsprop_get_state_{self._sfx}", self, _component(component), int(tensor), self._addr(o), o.size)
        return out

    def set_state(self, component, tensor: int, values) -> None:
        """Overwrite tensor ``tensor``'s part of ``nu``, ``mu`` or ``trace``."""
        v = self._array(values, "values", False)
        _call(f"rmsprop_set_state_{self._sfx}", self, _component(component), int(tensor), self._addr(v), v.size)

    def has_state(self, component) -> bool:
        out = c_bool()
        _call("rmsprop_has_state", self, _component(component), byref(out))
        return out.value

    @property
    def counts(self) -> tuple[int, int]:
        """(schedule count, bias-correction count), as in optax's state."""
        a, b = c_int32(), c_int32()
        _call("rmsprop_get_counts", self, byref(a), byref(b))
        return a.value, b.value

    def set_counts(self, schedule: int, bias_correction: int) -> None:
        _call("rmsprop_set_counts", self, int(schedule), int(bias_correction))

    def reset(self) -> None:
        _call("rmsprop_reset", self)

    def set_weight_decay_mask(self, mask: Sequence[bool]) -> None:
        """Which tensors weight decay applies to (one flag per tensor; empty = all)."""
        m = (c_bool * max(len(mask), 1))(*[bool(x) for x in mask])
        _call("rmsprop_set_weight_decay_mask", self, m, len(mask))

    @property
    def last_grad_norm(self) -> float:
        """The global gradient norm of the last step (NaN until clip_by_global_norm ran)."""
        out = c_double()
        _call("rmsprop_last_grad_norm", self, byref(out))
        return out.value

    @property
    def skipped_steps(self) -> int:
        out = c_uint64()
        _call("rmsprop_skipped_steps", self, byref(out))
        return out.value

    # -- layout ---------------------------------------------------------------------------
    @property
    def num_tensors(self) -> int:
        out = c_size_t()
        _call("rmsprop_num_tensors", self, byref(out))
        return out.value

    @property
    def total_elements(self) -> int:
        out = c_size_t()
        _call("rmsprop_total_elements", self, byref(out))
        return out.value

    def tensor_size(self, tensor: int) -> int:
        out = c_size_t()
        _call("rmsprop_tensor_size", self, int(tensor), byref(out))
        return out.value

    @property
    def library_dtype(self) -> np.dtype:
        out = c_int32()
        _call("rmsprop_dtype", self, byref(out))
        if out.value == DTYPE_F32:
            return np.dtype(np.float32)
        if out.value == DTYPE_F16:
            return np.dtype(np.float16)
        if out.value == DTYPE_BF16:
            return self.dtype  # bfloat16 (ml_dtypes) is what it was created with
        return np.dtype(np.float64)

    # -- hyperparameters ------------------------------------------------------------------
    @property
    def learning_rate(self) -> float:
        """The learning rate the next step will use."""
        out = c_double()
        _call("rmsprop_current_learning_rate", self, byref(out))
        return out.value

    def set_learning_rate(self, learning_rate: float | Schedule) -> None:
        if isinstance(learning_rate, Schedule):
            _call("rmsprop_set_learning_rate_schedule", self, learning_rate)
        else:
            _call("rmsprop_set_learning_rate", self, float(learning_rate))

    def set_decay(self, decay: float) -> None:
        _call("rmsprop_set_decay", self, float(decay))

    def set_eps(self, eps: float) -> None:
        _call("rmsprop_set_eps", self, float(eps))

    def set_initial_scale(self, initial_scale: float) -> None:
        """Takes effect at the next :meth:`reset`."""
        _call("rmsprop_set_initial_scale", self, float(initial_scale))

    def set_momentum(self, momentum: float) -> None:
        _call("rmsprop_set_momentum", self, float(momentum))

    @property
    def threads(self) -> int:
        out = c_size_t()
        _call("rmsprop_get_threads", self, byref(out))
        return out.value

    @threads.setter
    def threads(self, n: int) -> None:
        _call("rmsprop_set_threads", self, int(n))

    # -- checkpoints ----------------------------------------------------------------------
    def checkpoint_size(self) -> int:
        """The exact size in bytes of this optimizer's checkpoint."""
        out = c_size_t()
        _call("rmsprop_checkpoint_size", self, byref(out))
        return out.value

    def save_checkpoint(self) -> bytes:
        """The checkpoint (full state and configuration) as ``bytes``."""
        buf = bytearray(self.checkpoint_size())
        n = self.save_checkpoint_into(buf)
        return bytes(buf[:n])

    def save_checkpoint_into(self, out: Any) -> int:
        """Write the checkpoint into ``out`` (a writeable bytes-like object at least
        :meth:`checkpoint_size` long; the rest is untouched); returns the bytes written."""
        view = _bytes_view(out)
        if not view.flags.writeable:
            raise ValueError("out must be writeable")
        written = c_size_t()
        _call("rmsprop_checkpoint_save", self, view.ctypes.data, view.size, byref(written))
        return written.value

    def load_checkpoint(self, data) -> None:
        """Load checkpoint bytes: configuration and state become the checkpoint's (layout and
        dtype must match; unchanged on any error)."""
        view = _bytes_view(data)
        _call("rmsprop_checkpoint_load", self, view.ctypes.data, view.size)

    def save_checkpoint_file(self, path: str | bytes | os.PathLike) -> None:
        """Save the checkpoint to ``path`` atomically (the library's temp file + rename)."""
        _call("rmsprop_checkpoint_save_file", self, os.fsencode(path))

    def load_checkpoint_file(self, path: str | bytes | os.PathLike) -> None:
        """Load the checkpoint file ``path`` (as :meth:`load_checkpoint`)."""
        _call("rmsprop_checkpoint_load_file", self, os.fsencode(path))


# ---------------------------------------------------------------------------------------------
# Reading a checkpoint's configuration (docs/checkpoint-format.md, version 1), so that Python
# can show the hyperparameters a loaded checkpoint brought. The library has validated every
# checkpoint this reads (it reads only what the library wrote or accepted).

_SCHEDULE_FIELDS = {
    # tag: (Schedule constructor, field kinds in optax's argument order)
    1: ("constant", "f"),
    2: ("linear", "ffii"),
    3: ("polynomial", "fffii"),
    4: ("exponential_decay", "fifibo"),
    5: ("cosine_decay", "fiff"),
    6: ("warmup_cosine_decay", "ffiiff"),
    7: ("warmup_exponential_decay", "ffiifibo"),
}


class _Reader:
    def __init__(self, data: bytes, pos: int):
        self.data, self.pos = data, pos

    def take(self, fmt: str):
        (v,) = struct.unpack_from("<" + fmt, self.data, self.pos)
        self.pos += struct.calcsize(fmt)
        return v

    def field(self, kind: str):
        if kind == "f":
            return self.take("d")
        if kind == "i":
            return self.take("q")
        if kind == "b":
            return bool(self.take("B"))
        present = self.take("B")  # "o": optional f64
        value = self.take("d")
        return value if present else None

    def schedule(self) -> Schedule:
        tag = self.take("B")
        if tag in _SCHEDULE_FIELDS:
            name, kinds = _SCHEDULE_FIELDS[tag]
            return getattr(Schedule, name)(*[self.field(k) for k in kinds])
        if tag == 8:
            init = self.take("d")
            items = {}
            for _ in range(self.take("Q")):
                b = self.take("q")
                items[b] = self.take("d")
            return Schedule.piecewise_constant(init, items)
        if tag == 9:
            scheds = [self.schedule() for _ in range(self.take("Q"))]
            bounds = [self.take("q") for _ in range(self.take("Q"))]
            return Schedule.join(scheds, bounds)
        raise ValueError(f"unknown schedule tag {tag} in checkpoint")


def checkpoint_config(data) -> dict[str, Any]:
    """The ``optax.rmsprop`` arguments stored in a (version 1) checkpoint: ``learning_rate``
    (a float or a :class:`Schedule`), ``decay``, ``eps``, ``initial_scale``, ``eps_in_sqrt``,
    ``centered``, ``momentum`` (None when unset), ``nesterov``, ``bias_correction`` and
    ``skip_non_finite``. Validate the bytes first (load them into an optimizer)."""
    view = _bytes_view(data)
    head = bytes(view[:36])
    if len(head) < 36 or head[:8] != b"RMSPCKPT" or head[24:28] != b"CONF":
        raise ValueError("not a version 1 rmsprop checkpoint")
    (conf_len,) = struct.unpack_from("<Q", head, 28)
    r = _Reader(bytes(view[: 36 + conf_len]), 36)  # only the CONF section is copied
    decay, eps, initial_scale = r.take("d"), r.take("d"), r.take("d")
    flags = r.take("B")
    has_momentum = r.take("B")
    momentum = r.take("d")
    kind = r.take("B")
    lr = r.take("d") if kind == 0 else r.schedule()
    return {
        "learning_rate": lr,
        "decay": decay,
        "eps": eps,
        "initial_scale": initial_scale,
        "eps_in_sqrt": bool(flags & 1),
        "centered": bool(flags & 2),
        "momentum": momentum if has_momentum else None,
        "nesterov": bool(flags & 4),
        "bias_correction": bool(flags & 8),
        "skip_non_finite": bool(flags & 16),
    }

"""rmsprop_ctypes: optax.rmsprop from Python, through the rmsprop C library, with ctypes.

Zero-copy: parameters, gradients and updates are numpy arrays handed to the library by
pointer; ``step`` changes the parameter array in place. Arrays must have exactly the
optimizer's dtype (``float32`` or ``float64``) and be C-contiguous; arrays the library writes
must be writeable. Nothing is converted or copied behind your back: a wrong array raises.

    import numpy as np
    import rmsprop_ctypes as rmsprop

    solver = rmsprop.rmsprop(learning_rate=0.003)      # optax.rmsprop(learning_rate=0.003)
    params = np.array([1.0, 2.0, 3.0], dtype=np.float32)
    with solver.init(params) as opt:                     # optax init
        for _ in range(5):
            opt.step(params, 2.0 * params)               # update + apply_updates, in place

The library is ``librmsprop.so``: the path in the environment variable ``RMSPROP_LIB`` (a
file, or a directory holding it), else the repository's ``target/release`` (then
``target/debug``). Errors raise :class:`RmspropError` with the library's status code, its
name and the library's message. ``RMSPROP_SKIPPED_NON_FINITE`` is not an error: ``step``
returns ``False``.

Threads: ctypes releases the GIL during each call. Calls that change an optimizer must not
run concurrently on the same optimizer; if they do, the late one raises ``RmspropError``
with status ``ERR_BUSY`` and changes nothing. Do not use an optimizer after ``fork()``
without ``exec`` (rayon's thread pools do not survive it): use the "spawn" start method.
"""

from __future__ import annotations

import ctypes
import os
from ctypes import (
    POINTER,
    byref,
    c_bool,
    c_char_p,
    c_double,
    c_float,
    c_int32,
    c_int64,
    c_size_t,
    c_uint32,
    c_uint64,
    c_void_p,
)
from typing import Iterable, Mapping, Sequence

import numpy as np

__all__ = [
    "RmspropError",
    "Options",
    "Schedule",
    "Optimizer",
    "rmsprop",
    "load_library",
    "status_name",
    "version",
    "NU",
    "MU",
    "TRACE",
]

# ---------------------------------------------------------------------------------------------
# Constants, as in include/rmsprop.h (checked against rmsprop_status_name by the tests)

OK = 0
SKIPPED_NON_FINITE = 1
ERR_NULL_POINTER = 2
ERR_INVALID_HYPERPARAMETER = 3
ERR_INVALID_SCHEDULE = 4
ERR_LENGTH_MISMATCH = 5
ERR_OUT_OF_RANGE = 6
ERR_NO_SUCH_STATE = 7
ERR_MISALIGNED = 8
ERR_OVERLAP = 9
ERR_WRONG_DTYPE = 10
ERR_BAD_ENUM = 11
ERR_BUSY = 12
ERR_POISONED = 13
ERR_INTERNAL = 14
ERR_OVERFLOW = 15
ERR_THREADS = 16
ERR_BUFFER_TOO_SMALL = 17
ERR_IO = 18
ERR_CHECKPOINT_CORRUPT = 19
ERR_CHECKPOINT_VERSION = 20
ERR_CHECKPOINT_MISMATCH = 21

DTYPE_F32 = 1
DTYPE_F64 = 2

WEIGHT_DECAY_COUPLED = 0
WEIGHT_DECAY_DECOUPLED = 1

FLAVOR_OPTAX = 0
FLAVOR_PYTORCH = 1
FLAVOR_KERAS = 2
FLAVOR_TF1 = 3

NU = 1
MU = 2
TRACE = 3
_COMPONENTS = {"nu": NU, "mu": MU, "trace": TRACE}


class RmspropError(Exception):
    """A failed library call: ``status`` (int), ``name`` ("RMSPROP_ERR_...") and ``message``."""

    def __init__(self, status: int, name: str, message: str, function: str = ""):
        self.status = status
        self.name = name
        self.message = message
        self.function = function
        where = f"{function}: " if function else ""
        super().__init__(f"{where}{name} ({status}): {message}")


# ---------------------------------------------------------------------------------------------
# Loading and declaring every function (argtypes and restype: 64-bit pointers and size_t)


class _Options(ctypes.Structure):
    pass


class _Schedule(ctypes.Structure):
    pass


class _Optimizer(ctypes.Structure):
    pass


_OptionsP = POINTER(_Options)
_ScheduleP = POINTER(_Schedule)
_OptimizerP = POINTER(_Optimizer)
_F32P = POINTER(c_float)
_F64P = POINTER(c_double)
_Status = c_int32

# name: (restype, [argtypes])
_SIGNATURES = {
    # status, version
    "rmsprop_last_error_message": (c_char_p, []),
    "rmsprop_status_name": (c_char_p, [_Status]),
    "rmsprop_version_number": (c_uint32, []),
    "rmsprop_version_string": (c_char_p, []),
    # options
    "rmsprop_options_new": (_Status, [c_double, POINTER(_OptionsP)]),
    "rmsprop_options_free": (None, [_OptionsP]),
    "rmsprop_options_set_learning_rate": (_Status, [_OptionsP, c_double]),
    "rmsprop_options_set_learning_rate_schedule": (_Status, [_OptionsP, _ScheduleP]),
    "rmsprop_options_set_decay": (_Status, [_OptionsP, c_double]),
    "rmsprop_options_set_eps": (_Status, [_OptionsP, c_double]),
    "rmsprop_options_set_initial_scale": (_Status, [_OptionsP, c_double]),
    "rmsprop_options_set_eps_in_sqrt": (_Status, [_OptionsP, c_bool]),
    "rmsprop_options_set_centered": (_Status, [_OptionsP, c_bool]),
    "rmsprop_options_set_momentum": (_Status, [_OptionsP, c_double]),
    "rmsprop_options_clear_momentum": (_Status, [_OptionsP]),
    "rmsprop_options_set_nesterov": (_Status, [_OptionsP, c_bool]),
    "rmsprop_options_set_bias_correction": (_Status, [_OptionsP, c_bool]),
    "rmsprop_options_set_skip_non_finite": (_Status, [_OptionsP, c_bool]),
    "rmsprop_options_set_weight_decay": (_Status, [_OptionsP, c_double, c_int32]),
    "rmsprop_options_set_maximize": (_Status, [_OptionsP, c_bool]),
    "rmsprop_options_set_flavor": (_Status, [_OptionsP, c_int32]),
    "rmsprop_options_set_clip": (_Status, [_OptionsP, c_double]),
    "rmsprop_options_set_clip_by_global_norm": (_Status, [_OptionsP, c_double]),
    "rmsprop_set_weight_decay_mask": (_Status, [_OptimizerP, POINTER(c_bool), c_size_t]),
    "rmsprop_last_grad_norm": (_Status, [_OptimizerP, POINTER(c_double)]),
    # schedules
    "rmsprop_schedule_constant": (_Status, [c_double, POINTER(_ScheduleP)]),
    "rmsprop_schedule_linear": (_Status, [c_double, c_double, c_int64, c_int64, POINTER(_ScheduleP)]),
    "rmsprop_schedule_polynomial": (
        _Status,
        [c_double, c_double, c_double, c_int64, c_int64, POINTER(_ScheduleP)],
    ),
    "rmsprop_schedule_exponential_decay": (
        _Status,
        [c_double, c_int64, c_double, c_int64, c_bool, _F64P, POINTER(_ScheduleP)],
    ),
    "rmsprop_schedule_cosine_decay": (
        _Status,
        [c_double, c_int64, c_double, c_double, POINTER(_ScheduleP)],
    ),
    "rmsprop_schedule_warmup_cosine_decay": (
        _Status,
        [c_double, c_double, c_int64, c_int64, c_double, c_double, POINTER(_ScheduleP)],
    ),
    "rmsprop_schedule_warmup_exponential_decay": (
        _Status,
        [c_double, c_double, c_int64, c_int64, c_double, c_int64, c_bool, _F64P, POINTER(_ScheduleP)],
    ),
    "rmsprop_schedule_piecewise_constant": (
        _Status,
        [c_double, POINTER(c_int64), _F64P, c_size_t, POINTER(_ScheduleP)],
    ),
    "rmsprop_schedule_join": (
        _Status,
        [POINTER(_ScheduleP), c_size_t, POINTER(c_int64), c_size_t, POINTER(_ScheduleP)],
    ),
    "rmsprop_schedule_value": (_Status, [_ScheduleP, c_int32, c_int32, _F64P]),
    "rmsprop_schedule_free": (None, [_ScheduleP]),
    # optimizer
    "rmsprop_create": (
        _Status,
        [_OptionsP, POINTER(c_size_t), c_size_t, c_int32, POINTER(_OptimizerP)],
    ),
    "rmsprop_destroy": (None, [_OptimizerP]),
    "rmsprop_update_f32": (_Status, [_OptimizerP, _F32P, _F32P, c_size_t]),
    "rmsprop_update_f64": (_Status, [_OptimizerP, _F64P, _F64P, c_size_t]),
    "rmsprop_step_f32": (_Status, [_OptimizerP, _F32P, _F32P, c_size_t]),
    "rmsprop_step_f64": (_Status, [_OptimizerP, _F64P, _F64P, c_size_t]),
    "rmsprop_update_tensors_f32": (_Status, [_OptimizerP, POINTER(_F32P), POINTER(_F32P), c_size_t]),
    "rmsprop_update_tensors_f64": (_Status, [_OptimizerP, POINTER(_F64P), POINTER(_F64P), c_size_t]),
    "rmsprop_step_tensors_f32": (_Status, [_OptimizerP, POINTER(_F32P), POINTER(_F32P), c_size_t]),
    "rmsprop_step_tensors_f64": (_Status, [_OptimizerP, POINTER(_F64P), POINTER(_F64P), c_size_t]),
    "rmsprop_update": (_Status, [_OptimizerP, c_void_p, c_void_p, c_size_t, c_int32]),
    "rmsprop_step": (_Status, [_OptimizerP, c_void_p, c_void_p, c_size_t, c_int32]),
    "rmsprop_get_state_f32": (_Status, [_OptimizerP, c_int32, c_size_t, _F32P, c_size_t]),
    "rmsprop_get_state_f64": (_Status, [_OptimizerP, c_int32, c_size_t, _F64P, c_size_t]),
    "rmsprop_set_state_f32": (_Status, [_OptimizerP, c_int32, c_size_t, _F32P, c_size_t]),
    "rmsprop_set_state_f64": (_Status, [_OptimizerP, c_int32, c_size_t, _F64P, c_size_t]),
    "rmsprop_dtype": (_Status, [_OptimizerP, POINTER(c_int32)]),
    "rmsprop_num_tensors": (_Status, [_OptimizerP, POINTER(c_size_t)]),
    "rmsprop_total_elements": (_Status, [_OptimizerP, POINTER(c_size_t)]),
    "rmsprop_tensor_size": (_Status, [_OptimizerP, c_size_t, POINTER(c_size_t)]),
    "rmsprop_has_state": (_Status, [_OptimizerP, c_int32, POINTER(c_bool)]),
    "rmsprop_get_counts": (_Status, [_OptimizerP, POINTER(c_int32), POINTER(c_int32)]),
    "rmsprop_set_counts": (_Status, [_OptimizerP, c_int32, c_int32]),
    "rmsprop_reset": (_Status, [_OptimizerP]),
    "rmsprop_skipped_steps": (_Status, [_OptimizerP, POINTER(c_uint64)]),
    "rmsprop_current_learning_rate": (_Status, [_OptimizerP, _F64P]),
    "rmsprop_set_learning_rate": (_Status, [_OptimizerP, c_double]),
    "rmsprop_set_learning_rate_schedule": (_Status, [_OptimizerP, _ScheduleP]),
    "rmsprop_set_decay": (_Status, [_OptimizerP, c_double]),
    "rmsprop_set_eps": (_Status, [_OptimizerP, c_double]),
    "rmsprop_set_momentum": (_Status, [_OptimizerP, c_double]),
    "rmsprop_set_threads": (_Status, [_OptimizerP, c_size_t]),
    "rmsprop_get_threads": (_Status, [_OptimizerP, POINTER(c_size_t)]),
}


def _candidates() -> list[str]:
    env = os.environ.get("RMSPROP_LIB")
    if env:
        return [os.path.join(env, "librmsprop.so") if os.path.isdir(env) else env]
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    return [os.path.join(root, "target", p, "librmsprop.so") for p in ("release", "debug")]


def load_library(path: str | None = None) -> ctypes.CDLL:
    """Load librmsprop.so and declare argtypes/restype of every function it exports."""
    paths = [path] if path else _candidates()
    errors = []
    for p in paths:
        if not os.path.exists(p):
            errors.append(f"{p}: not found")
            continue
        lib = ctypes.CDLL(p)
        for name, (restype, argtypes) in _SIGNATURES.items():
            fn = getattr(lib, name)  # AttributeError: the library lacks a declared function
            fn.restype = restype
            fn.argtypes = argtypes
        return lib
    raise OSError(
        "cannot load librmsprop.so (build it with `cargo build --release`, or set RMSPROP_LIB): "
        + "; ".join(errors)
    )


_lib = load_library()


def status_name(status: int) -> str:
    """The library's name for a status code ("RMSPROP_ERR_BUSY")."""
    return _lib.rmsprop_status_name(status).decode()


def version() -> str:
    """The loaded library's version string."""
    return _lib.rmsprop_version_string().decode()


def _check(status: int, function: str) -> int:
    """Raise RmspropError for an error status; return OK or SKIPPED_NON_FINITE."""
    if status in (OK, SKIPPED_NON_FINITE):
        return status
    # The message is per thread and this is the same OS thread as the failed call.
    msg = _lib.rmsprop_last_error_message()
    raise RmspropError(status, status_name(status), msg.decode(errors="replace") if msg else "", function)


def _call(name: str, *args) -> int:
    for a in args:
        if isinstance(a, _Handle) and not a._ptr:
            raise ValueError(f"{type(a).__name__} is closed")
    return _check(getattr(_lib, name)(*args), name)


def _dtype_code(dtype) -> int:
    d = np.dtype(dtype)
    if d == np.float32:
        return DTYPE_F32
    if d == np.float64:
        return DTYPE_F64
    raise TypeError(f"dtype must be float32 or float64, got {d}")


def _component(c) -> int:
    if isinstance(c, str):
        try:
            return _COMPONENTS[c]
        except KeyError:
            raise ValueError(f"component must be one of {sorted(_COMPONENTS)}, got {c!r}") from None
    return int(c)


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


class Schedule(_Handle):
    """An optax learning-rate schedule. Build one with the class methods (optax's names)."""

    _free_name = "rmsprop_schedule_free"

    @classmethod
    def _make(cls, fn: str, *args) -> "Schedule":
        out = _ScheduleP()
        _call(fn, *args, byref(out))
        return cls(out)

    @staticmethod
    def _opt(v):
        return None if v is None else byref(c_double(float(v)))

    @classmethod
    def constant(cls, value: float) -> "Schedule":
        return cls._make("rmsprop_schedule_constant", float(value))

    @classmethod
    def linear(cls, init_value, end_value, transition_steps, transition_begin=0) -> "Schedule":
        return cls._make(
            "rmsprop_schedule_linear", float(init_value), float(end_value), int(transition_steps), int(transition_begin)
        )

    @classmethod
    def polynomial(cls, init_value, end_value, power, transition_steps, transition_begin=0) -> "Schedule":
        return cls._make(
            "rmsprop_schedule_polynomial",
            float(init_value),
            float(end_value),
            float(power),
            int(transition_steps),
            int(transition_begin),
        )

    @classmethod
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

    @classmethod
    def cosine_decay(cls, init_value, decay_steps, alpha=0.0, exponent=1.0) -> "Schedule":
        return cls._make(
            "rmsprop_schedule_cosine_decay", float(init_value), int(decay_steps), float(alpha), float(exponent)
        )

    @classmethod
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

    @classmethod
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

    @classmethod
    def piecewise_constant(cls, init_value, boundaries_and_scales: Mapping[int, float] | None = None) -> "Schedule":
        items = sorted((boundaries_and_scales or {}).items())
        n = len(items)
        b = (c_int64 * max(n, 1))(*[int(k) for k, _ in items])
        s = (c_double * max(n, 1))(*[float(v) for _, v in items])
        return cls._make("rmsprop_schedule_piecewise_constant", float(init_value), b, s, n)

    @classmethod
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
        weight_decay: float = 0.0,
        weight_decay_kind: int = WEIGHT_DECAY_COUPLED,
        maximize: bool = False,
        clip: float = float("inf"),
        clip_by_global_norm: float = float("inf"),
        flavor: int = FLAVOR_OPTAX,
        skip_non_finite: bool = False,
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
            _call(
                "rmsprop_options_set_weight_decay", self, float(weight_decay), int(weight_decay_kind)
            )
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


class Optimizer(_Handle):
    """optax.rmsprop state over a layout of tensors of ``sizes`` elements, in ``dtype``."""

    _free_name = "rmsprop_destroy"

    def __init__(self, options: Options | float | Schedule, sizes: int | Iterable[int], dtype=np.float32, **kwargs):
        self._ptr = None
        own = not isinstance(options, Options)
        opts = Options(options, **kwargs) if own else options
        if kwargs and not own:
            raise TypeError("pass optax arguments either in Options or as keywords, not both")
        try:
            sizes = [int(sizes)] if np.ndim(sizes) == 0 else [int(s) for s in sizes]
            self.dtype = np.dtype(dtype)
            code = _dtype_code(self.dtype)
            self._elem = c_float if code == DTYPE_F32 else c_double
            self._ptr_t = POINTER(self._elem)
            self._sfx = "f32" if code == DTYPE_F32 else "f64"
            arr = (c_size_t * max(len(sizes), 1))(*sizes)
            out = _OptimizerP()
            _call("rmsprop_create", opts, arr, len(sizes), code, byref(out))
            super().__init__(out)
            self.sizes = tuple(sizes)
        finally:
            if own:
                opts.close()

    # -- arrays ---------------------------------------------------------------------------
    def _ptr_of(self, a, name: str, writeable: bool):
        if not isinstance(a, np.ndarray):
            raise TypeError(f"{name} must be a numpy.ndarray, got {type(a).__name__}")
        if a.dtype != self.dtype:
            raise TypeError(f"{name} has dtype {a.dtype}, this optimizer computes in {self.dtype} (no implicit copies)")
        if not a.flags.c_contiguous:
            raise ValueError(f"{name} must be C-contiguous (np.ascontiguousarray would copy it)")
        if writeable and not a.flags.writeable:
            raise ValueError(f"{name} must be writeable")
        return a.ctypes.data_as(self._ptr_t)

    def _list(self, arrays, name: str, writeable: bool):
        arrays = list(arrays)
        if len(arrays) == len(self.sizes):
            # The list entry points take no per-tensor lengths: the library uses the layout's.
            # An array of another size would be read or written out of bounds, so check here.
            for i, (a, n) in enumerate(zip(arrays, self.sizes)):
                if isinstance(a, np.ndarray) and a.size != n:
                    raise ValueError(f"{name}[{i}] has {a.size} elements, tensor {i} has {n}")
        ptrs = (self._ptr_t * max(len(arrays), 1))(
            *[self._ptr_of(a, f"{name}[{i}]", writeable) for i, a in enumerate(arrays)]
        )
        return ptrs, arrays

    # -- steps ----------------------------------------------------------------------------
    def step(self, params: np.ndarray, grads: np.ndarray) -> bool:
        """optax update + apply_updates over one flat array, in place. False if skipped."""
        p = self._ptr_of(params, "params", True)
        g = self._ptr_of(grads, "grads", False)
        # One length describes both buffers in the C call: they must agree, or the library
        # would read or write past the shorter one.
        if params.size != grads.size:
            raise ValueError(f"params has {params.size} elements, grads {grads.size}")
        return _call(f"rmsprop_step_{self._sfx}", self, p, g, params.size) == OK

    def update(self, grads: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
        """optax update: returns the updates (in ``out``, which may be ``grads`` itself)."""
        if out is None:
            out = np.empty_like(grads)
        g = self._ptr_of(grads, "grads", False)
        u = self._ptr_of(out, "out", True)
        if grads.size != out.size:  # one length for both buffers in the C call
            raise ValueError(f"grads has {grads.size} elements, out {out.size}")
        _call(f"rmsprop_update_{self._sfx}", self, g, u, grads.size)
        return out

    def step_tensors(self, params: Sequence[np.ndarray], grads: Sequence[np.ndarray]) -> bool:
        """The fused step over one array per tensor, in one parallel dispatch. False if skipped."""
        pp, pa = self._list(params, "params", True)
        gp, ga = self._list(grads, "grads", False)
        if len(pa) != len(ga):
            raise ValueError(f"{len(pa)} params arrays, {len(ga)} grads arrays")
        return _call(f"rmsprop_step_tensors_{self._sfx}", self, pp, gp, len(pa)) == OK

    def update_tensors(
        self, grads: Sequence[np.ndarray], out: Sequence[np.ndarray] | None = None
    ) -> list[np.ndarray]:
        """optax update per tensor; ``out=grads`` computes in place."""
        grads = list(grads)
        out = [np.empty_like(g) for g in grads] if out is None else list(out)
        gp, ga = self._list(grads, "grads", False)
        up, ua = self._list(out, "out", True)
        if len(ga) != len(ua):
            raise ValueError(f"{len(ga)} grads arrays, {len(ua)} out arrays")
        _call(f"rmsprop_update_tensors_{self._sfx}", self, gp, up, len(ga))
        return ua

    # -- state ----------------------------------------------------------------------------
    def get_state(self, component, tensor: int = 0) -> np.ndarray:
        """A copy of tensor ``tensor``'s part of ``nu``, ``mu`` or ``trace``."""
        n = self.tensor_size(tensor)
        out = np.empty(n, dtype=self.dtype)
        _call(f"rmsprop_get_state_{self._sfx}", self, _component(component), int(tensor), self._ptr_of(out, "out", True), n)
        return out

    def set_state(self, component, tensor: int, values: np.ndarray) -> None:
        """Overwrite tensor ``tensor``'s part of ``nu``, ``mu`` or ``trace``."""
        v = self._ptr_of(values, "values", False)
        _call(f"rmsprop_set_state_{self._sfx}", self, _component(component), int(tensor), v, values.size)

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

    @property
    def skipped_steps(self) -> int:
        out = c_uint64()
        _call("rmsprop_skipped_steps", self, byref(out))
        return out.value

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
        return np.dtype(np.float32 if out.value == DTYPE_F32 else np.float64)

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

"""The loaded library: ctypes declarations of every function of include/rmsprop.h (argtypes
and restype), where the library is found, and the call/check helpers of the bindings."""

from __future__ import annotations

import ctypes
import glob
import os
from ctypes import (
    POINTER,
    c_bool,
    c_char_p,
    c_double,
    c_float,
    c_int32,
    c_int64,
    c_size_t,
    c_uint32,
    c_uint16,
    c_uint64,
    c_void_p,
)
from typing import Any

import numpy as np

from .constants import DTYPE_BF16, DTYPE_F16, DTYPE_F32, DTYPE_F64, HEADER_CONSTANTS, OK, SKIPPED_NON_FINITE, _COMPONENTS
from .errors import _make_error

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
_U16P = POINTER(c_uint16)  # bfloat16 / float16 bits
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
    # presets and gradient transforms
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
    # bfloat16 / float16 (uint16_t bits)
    "rmsprop_update_bf16": (_Status, [_OptimizerP, _U16P, _U16P, c_size_t]),
    "rmsprop_update_f16": (_Status, [_OptimizerP, _U16P, _U16P, c_size_t]),
    "rmsprop_step_bf16": (_Status, [_OptimizerP, _U16P, _U16P, c_size_t]),
    "rmsprop_step_f16": (_Status, [_OptimizerP, _U16P, _U16P, c_size_t]),
    "rmsprop_update_tensors_bf16": (_Status, [_OptimizerP, POINTER(_U16P), POINTER(_U16P), c_size_t]),
    "rmsprop_update_tensors_f16": (_Status, [_OptimizerP, POINTER(_U16P), POINTER(_U16P), c_size_t]),
    "rmsprop_step_tensors_bf16": (_Status, [_OptimizerP, POINTER(_U16P), POINTER(_U16P), c_size_t]),
    "rmsprop_step_tensors_f16": (_Status, [_OptimizerP, POINTER(_U16P), POINTER(_U16P), c_size_t]),
    "rmsprop_get_state_bf16": (_Status, [_OptimizerP, c_int32, c_size_t, _U16P, c_size_t]),
    "rmsprop_get_state_f16": (_Status, [_OptimizerP, c_int32, c_size_t, _U16P, c_size_t]),
    "rmsprop_set_state_bf16": (_Status, [_OptimizerP, c_int32, c_size_t, _U16P, c_size_t]),
    "rmsprop_set_state_f16": (_Status, [_OptimizerP, c_int32, c_size_t, _U16P, c_size_t]),
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
    "rmsprop_set_initial_scale": (_Status, [_OptimizerP, c_double]),
    "rmsprop_set_momentum": (_Status, [_OptimizerP, c_double]),
    "rmsprop_set_threads": (_Status, [_OptimizerP, c_size_t]),
    "rmsprop_get_threads": (_Status, [_OptimizerP, POINTER(c_size_t)]),
    # checkpoints
    "rmsprop_checkpoint_size": (_Status, [_OptimizerP, POINTER(c_size_t)]),
    "rmsprop_checkpoint_save": (_Status, [_OptimizerP, c_void_p, c_size_t, POINTER(c_size_t)]),
    "rmsprop_checkpoint_load": (_Status, [_OptimizerP, c_void_p, c_size_t]),
    "rmsprop_checkpoint_save_file": (_Status, [_OptimizerP, c_char_p]),
    "rmsprop_checkpoint_load_file": (_Status, [_OptimizerP, c_char_p]),
    "rmsprop_create_from_checkpoint": (_Status, [c_void_p, c_size_t, POINTER(_OptimizerP)]),
}


_LIBRARY_ENV = ("RMSPROP_LIBRARY", "RMSPROP_LIB")
_HERE = os.path.dirname(os.path.abspath(__file__))


def _bundled() -> list[str]:
    """The library ``pip install`` put into this package (named like an extension module)."""
    return sorted(glob.glob(os.path.join(_HERE, "_librmsprop*.so")))


def _candidates() -> list[str]:
    for var in _LIBRARY_ENV:
        env = os.environ.get(var)
        if env:
            return [os.path.join(env, "librmsprop.so") if os.path.isdir(env) else env]
    # In a source checkout this file is python/rmsprop/lowlevel.py: the root is two levels up.
    root = os.path.dirname(os.path.dirname(_HERE))
    tree = [os.path.join(root, "target", p, "librmsprop.so") for p in ("release", "debug")]
    return _bundled() + tree


def load_library(path: str | None = None) -> ctypes.CDLL:
    """Load librmsprop.so and declare argtypes/restype of every function of the header."""
    paths = [path] if path else _candidates()
    errors = []
    for p in paths:
        if not os.path.exists(p):
            errors.append(f"{p}: not found")
            continue
        lib = ctypes.CDLL(p)
        for name, (restype, argtypes) in _SIGNATURES.items():
            try:
                fn = getattr(lib, name)
            except AttributeError:
                raise OSError(
                    f"{p} lacks {name}: it is not the rmsprop library this binding was written "
                    f"for (version {HEADER_CONSTANTS['RMSPROP_VERSION_STRING']})"
                ) from None
            fn.restype = restype
            fn.argtypes = argtypes
        major = lib.rmsprop_version_number() // 10000
        if major != HEADER_CONSTANTS["RMSPROP_VERSION_MAJOR"]:
            raise OSError(
                f"{p} is version {lib.rmsprop_version_string().decode()}, this binding needs major "
                f"version {HEADER_CONSTANTS['RMSPROP_VERSION_MAJOR']}"
            )
        setattr(lib, "_rmsprop_path", os.path.abspath(p))
        return lib
    raise OSError(
        "cannot load librmsprop.so (reinstall the package with `pip install`, build it with "
        "`cargo build --release`, or set RMSPROP_LIBRARY to its path): " + "; ".join(errors)
    )


_lib = load_library()

#: The absolute path of the loaded librmsprop.so.
library_path: str = getattr(_lib, "_rmsprop_path")


def status_name(status: int) -> str:
    """The library's name for a status code ("RMSPROP_ERR_BUSY")."""
    return _lib.rmsprop_status_name(status).decode()


def version() -> str:
    """The loaded library's version string."""
    return _lib.rmsprop_version_string().decode()


def version_number() -> int:
    """The loaded library's version as MAJOR * 10000 + MINOR * 100 + PATCH."""
    return int(_lib.rmsprop_version_number())


def last_error_message() -> str:
    """The message of the most recent failed call on this thread ("" if none)."""
    msg = _lib.rmsprop_last_error_message()
    return msg.decode(errors="replace") if msg else ""


def _check(status: int, function: str) -> int:
    """Raise RmspropError for an error status; return OK or SKIPPED_NON_FINITE."""
    if status in (OK, SKIPPED_NON_FINITE):
        return status
    # The message is per thread and this is the same OS thread as the failed call.
    raise _make_error(status, status_name(status), last_error_message(), function)


def _call(name: str, *args: Any) -> int:
    for a in args:
        if hasattr(a, "_free_name") and not a._ptr:  # a closed Options/Schedule/Optimizer
            raise ValueError(f"{type(a).__name__} is closed")
    return _check(getattr(_lib, name)(*args), name)


def _dtype_code(dtype) -> int:
    d = np.dtype(dtype)
    if d == np.float32:
        return DTYPE_F32
    if d == np.float64:
        return DTYPE_F64
    if d == np.float16:
        return DTYPE_F16
    if d.name == "bfloat16":  # ml_dtypes.bfloat16
        return DTYPE_BF16
    raise TypeError(f"dtype must be float32, float64, float16 or bfloat16, got {d}")


def _component(c) -> int:
    if isinstance(c, str):
        try:
            return _COMPONENTS[c]
        except KeyError:
            raise ValueError(f"component must be one of {sorted(_COMPONENTS)}, got {c!r}") from None
    return int(c)


def _exposes_buffer(obj) -> bool:
    try:
        memoryview(obj).release()
        return True
    except TypeError:
        return False


def as_array(obj: Any, name: str = "array", dtype=None, writeable: bool = False) -> np.ndarray:
    """A numpy view of ``obj`` sharing its memory: never a copy.

    Accepts a ``numpy.ndarray``, or anything exposing DLPack (``__dlpack__``: a PyTorch CPU
    tensor), ``__array_interface__`` or the buffer protocol (``array.array``, ``memoryview``,
    ``bytearray``). With ``dtype`` the array must have exactly that dtype; it must be
    C-contiguous; with ``writeable`` it must be writeable. Anything else raises
    ``TypeError`` (kind of object, dtype) or ``ValueError`` (layout, read-only), naming
    ``name``, before the library sees it.
    """
    if isinstance(obj, np.ndarray):
        a = obj
    elif isinstance(obj, np.generic):
        if writeable:
            raise ValueError(f"{name} is a numpy scalar, which is immutable: use a 0-d array (np.array(x))")
        a = np.asarray(obj)
    elif hasattr(obj, "__dlpack__"):
        try:
            a = np.from_dlpack(obj)
        except Exception as e:  # a device tensor, a tensor that requires grad, ...
            raise TypeError(
                f"{name}: cannot view this {type(obj).__name__} in place through DLPack ({e}); "
                "pass a CPU, contiguous, detached tensor"
            ) from e
        if not a.flags.writeable and hasattr(obj, "__array__"):
            # Pre-1.0 DLPack carries no read-only flag and numpy then marks the view read-only.
            # The object's own __array__ may give a writeable view of the same memory (a
            # PyTorch tensor does): take it only when it provably is that memory.
            try:
                b = np.asarray(obj)
            except Exception:
                b = a
            if b.flags.writeable and b.ctypes.data == a.ctypes.data and b.shape == a.shape and b.dtype == a.dtype:
                a = b
    elif hasattr(obj, "__array_interface__") or _exposes_buffer(obj):
        a = np.asarray(obj)  # through these protocols numpy shares the object's memory
    else:
        raise TypeError(
            f"{name} must be an array (numpy.ndarray, or an object exposing the buffer protocol, "
            f"__array_interface__ or DLPack), got {type(obj).__name__}"
        )
    if dtype is not None and a.dtype != dtype:
        raise TypeError(f"{name} has dtype {a.dtype}, this optimizer computes in {np.dtype(dtype)} (no implicit copies)")
    if not a.flags.c_contiguous:
        raise ValueError(f"{name} must be C-contiguous (np.ascontiguousarray would copy it)")
    if writeable and not a.flags.writeable:
        raise ValueError(f"{name} must be writeable (the library writes into it in place)")
    return a


def _bytes_view(data) -> np.ndarray:
    """A uint8 numpy view of a bytes-like object (bytes, bytearray, memoryview, ...), no copy."""
    if isinstance(data, np.ndarray):
        if not data.flags.c_contiguous:
            raise ValueError("checkpoint data must be contiguous")
        return data.reshape(-1).view(np.uint8)
    return np.frombuffer(data, dtype=np.uint8)



"""rmsprop: ``optax.rmsprop``, exactly, from Python: the rmsprop Rust library through ctypes.

    import numpy as np
    import rmsprop

    params = {"w": np.ones((3, 2), np.float32), "b": np.zeros(2, np.float32)}
    opt = rmsprop.RMSProp(learning_rate=0.003, params=params)   # optax.rmsprop(...).init(params)
    grads = {"w": np.full((3, 2), 0.5, np.float32), "b": np.ones(2, np.float32)}
    opt.step(params, grads)        # optax update + apply_updates, in place in params' arrays
    opt.state.nu["w"]              # optax's state, in the params' structure and shapes
    opt.learning_rate = rmsprop.schedules.cosine_decay_schedule(0.003, 1000)
    blob = opt.save()              # checkpoint bytes (or opt.save("run.ckpt"), pickle.dumps(opt))

Parameters are an array, a list/tuple, or a nested dict of arrays (leaf order: ``jax.tree_util``'s,
dict keys sorted; see :mod:`rmsprop.tree`), all float32 or all float64. Arrays are never
copied: numpy arrays and anything exposing the buffer protocol, ``__array_interface__`` or
DLPack (PyTorch CPU tensors) are read and written where they live; a non-contiguous,
read-only or wrongly typed array raises ``ValueError``/``TypeError``.

Errors from the library raise :class:`RmspropError` (``.status``, ``.name``, ``.message``)
or its subclass for that status (:class:`BusyError`, :class:`CheckpointMismatchError`, ...).

Modules: :mod:`rmsprop.schedules` (optax's schedules), :mod:`rmsprop.tree` (pytree order),
:mod:`rmsprop.lowlevel` (every function and constant of the C header, one to one),
:mod:`rmsprop.torch` (``RMSprop``, a ``torch.optim.RMSprop`` drop-in; imported on demand,
it needs torch).

The shared library ships inside this package (``pip install``); ``RMSPROP_LIBRARY=/path/to/
librmsprop.so`` overrides it, and in a source checkout ``target/release`` is the fallback.

Fork: a process forked while an optimizer exists (``multiprocessing``'s "fork" start method)
can go on using it in the child; "spawn" and "forkserver" work as for any module.
"""

from __future__ import annotations

from . import lowlevel, schedules, tree
from ._optimizer import RMSProp, RMSPropState
from .lowlevel import (
    ERRORS,
    BadBufferError,
    BusyError,
    CheckpointCorruptError,
    CheckpointError,
    CheckpointMismatchError,
    CheckpointVersionError,
    InvalidArgumentError,
    InvalidHyperparameterError,
    InvalidScheduleError,
    RmspropIOError,
    LengthMismatchError,
    NoSuchStateError,
    OutOfMemoryError,
    PoisonedError,
    RmspropError,
    Schedule,
    as_array,
    library_path,
)

__version__ = "0.1.0"


def library_version() -> str:
    """The loaded librmsprop's version string."""
    return lowlevel.version()


def rmsprop(learning_rate: float | Schedule = 0.001, *args, **kwargs) -> RMSProp:
    """``optax.rmsprop(learning_rate, ...)``: an :class:`RMSProp`; call ``.init(params)`` next."""
    return RMSProp(learning_rate, *args, **kwargs)


__all__ = [
    "RMSProp",
    "RMSPropState",
    "rmsprop",
    "Schedule",
    "schedules",
    "tree",
    "lowlevel",
    "as_array",
    "library_path",
    "library_version",
    "RmspropError",
    "ERRORS",
    "InvalidArgumentError",
    "InvalidHyperparameterError",
    "InvalidScheduleError",
    "LengthMismatchError",
    "NoSuchStateError",
    "BadBufferError",
    "BusyError",
    "PoisonedError",
    "RmspropIOError",
    "CheckpointError",
    "CheckpointCorruptError",
    "CheckpointVersionError",
    "CheckpointMismatchError",
    "OutOfMemoryError",
    "__version__",
]

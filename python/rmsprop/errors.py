"""The exceptions of the rmsprop package: :class:`RmspropError` and one subclass per kind of
library status (:data:`ERRORS`), each carrying ``status``, ``name`` and ``message``."""

from __future__ import annotations

from .constants import (
    ERR_BAD_ENUM,
    ERR_BUFFER_TOO_SMALL,
    ERR_BUSY,
    ERR_CHECKPOINT_CORRUPT,
    ERR_CHECKPOINT_MISMATCH,
    ERR_CHECKPOINT_VERSION,
    ERR_INVALID_HYPERPARAMETER,
    ERR_INVALID_SCHEDULE,
    ERR_IO,
    ERR_LENGTH_MISMATCH,
    ERR_MISALIGNED,
    ERR_NO_SUCH_STATE,
    ERR_OUT_OF_MEMORY,
    ERR_OUT_OF_RANGE,
    ERR_OVERFLOW,
    ERR_OVERLAP,
    ERR_POISONED,
    ERR_WRONG_DTYPE,
)

__all__ = [
    "RmspropError",
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
    "ERRORS",
]

class RmspropError(Exception):
    """A failed library call: ``status`` (int), ``name`` ("RMSPROP_ERR_...") and ``message``.

    Raised as the subclass for its status (:data:`ERRORS`), so ``except rmsprop.BusyError``
    and ``except rmsprop.RmspropError`` both work. The invalid-argument kinds are also
    ``ValueError``s, ``RmspropIOError`` is also an ``OSError``, ``OutOfMemoryError`` a ``MemoryError``.
    """

    def __init__(self, status: int, name: str, message: str, function: str = ""):
        self.status = status
        self.name = name
        self.message = message
        self.function = function
        where = f"{function}: " if function else ""
        Exception.__init__(self, f"{where}{name} ({status}): {message}")

    def __reduce__(self):
        return (_make_error, (self.status, self.name, self.message, self.function))


class InvalidArgumentError(RmspropError, ValueError):
    """A value the library refuses: a hyperparameter, schedule, length, index, enum, ..."""


class InvalidHyperparameterError(InvalidArgumentError):
    """``RMSPROP_ERR_INVALID_HYPERPARAMETER``."""


class InvalidScheduleError(InvalidArgumentError):
    """``RMSPROP_ERR_INVALID_SCHEDULE``."""


class LengthMismatchError(InvalidArgumentError):
    """``RMSPROP_ERR_LENGTH_MISMATCH``."""


class NoSuchStateError(InvalidArgumentError):
    """``RMSPROP_ERR_NO_SUCH_STATE`` (``mu`` without centered, ``trace`` without momentum)."""


class BadBufferError(InvalidArgumentError):
    """``RMSPROP_ERR_MISALIGNED``, ``RMSPROP_ERR_OVERLAP``, ``RMSPROP_ERR_BUFFER_TOO_SMALL``."""


class BusyError(RmspropError):
    """``RMSPROP_ERR_BUSY``: another thread is using this optimizer right now."""


class PoisonedError(RmspropError):
    """``RMSPROP_ERR_POISONED``: an earlier call failed mid-step; the state may be half-written."""


class RmspropIOError(RmspropError, OSError):
    """``RMSPROP_ERR_IO``: a checkpoint file could not be read or written."""


class CheckpointError(RmspropError):
    """A checkpoint the library refuses (corrupt, newer version, or another layout/dtype)."""


class CheckpointCorruptError(CheckpointError):
    """``RMSPROP_ERR_CHECKPOINT_CORRUPT``."""


class CheckpointVersionError(CheckpointError):
    """``RMSPROP_ERR_CHECKPOINT_VERSION``."""


class CheckpointMismatchError(CheckpointError):
    """``RMSPROP_ERR_CHECKPOINT_MISMATCH``."""


class OutOfMemoryError(RmspropError, MemoryError):
    """``RMSPROP_ERR_OUT_OF_MEMORY``."""


#: The exception class raised for each error status (others raise :class:`RmspropError`).
ERRORS: dict[int, type[RmspropError]] = {
    ERR_INVALID_HYPERPARAMETER: InvalidHyperparameterError,
    ERR_INVALID_SCHEDULE: InvalidScheduleError,
    ERR_LENGTH_MISMATCH: LengthMismatchError,
    ERR_OUT_OF_RANGE: InvalidArgumentError,
    ERR_NO_SUCH_STATE: NoSuchStateError,
    ERR_MISALIGNED: BadBufferError,
    ERR_OVERLAP: BadBufferError,
    ERR_WRONG_DTYPE: InvalidArgumentError,
    ERR_BAD_ENUM: InvalidArgumentError,
    ERR_BUSY: BusyError,
    ERR_POISONED: PoisonedError,
    ERR_OVERFLOW: InvalidArgumentError,
    ERR_BUFFER_TOO_SMALL: BadBufferError,
    ERR_IO: RmspropIOError,
    ERR_CHECKPOINT_CORRUPT: CheckpointCorruptError,
    ERR_CHECKPOINT_VERSION: CheckpointVersionError,
    ERR_CHECKPOINT_MISMATCH: CheckpointMismatchError,
    ERR_OUT_OF_MEMORY: OutOfMemoryError,
}


def _make_error(status: int, name: str, message: str, function: str = "") -> RmspropError:
    return ERRORS.get(status, RmspropError)(status, name, message, function)


"""optax's learning-rate schedules, by optax's names (``optax.<name>`` takes the same
arguments). Each returns a :class:`rmsprop.Schedule`: pass it as ``learning_rate``, call it
(``sched(count)``, ``sched.value(count, dtype)``) for its value at a count, pickle it.

The short names (``cosine_decay``, ``linear``, ...) are aliases of the same functions.
"""

from __future__ import annotations

from typing import Mapping, Optional, Sequence

from .lowlevel import Schedule

__all__ = [
    "Schedule",
    "constant_schedule",
    "linear_schedule",
    "polynomial_schedule",
    "exponential_decay",
    "cosine_decay_schedule",
    "warmup_cosine_decay_schedule",
    "warmup_exponential_decay_schedule",
    "piecewise_constant_schedule",
    "join_schedules",
    "constant",
    "linear",
    "polynomial",
    "cosine_decay",
    "warmup_cosine_decay",
    "warmup_exponential_decay",
    "piecewise_constant",
    "join",
]


def constant_schedule(value: float) -> Schedule:
    """``optax.constant_schedule(value)``."""
    return Schedule.constant(value)


def linear_schedule(init_value: float, end_value: float, transition_steps: int, transition_begin: int = 0) -> Schedule:
    """``optax.linear_schedule``."""
    return Schedule.linear(init_value, end_value, transition_steps, transition_begin)


def polynomial_schedule(
    init_value: float, end_value: float, power: float, transition_steps: int, transition_begin: int = 0
) -> Schedule:
    """``optax.polynomial_schedule``."""
    return Schedule.polynomial(init_value, end_value, power, transition_steps, transition_begin)


def exponential_decay(
    init_value: float,
    transition_steps: int,
    decay_rate: float,
    transition_begin: int = 0,
    staircase: bool = False,
    end_value: Optional[float] = None,
) -> Schedule:
    """``optax.exponential_decay``."""
    return Schedule.exponential_decay(init_value, transition_steps, decay_rate, transition_begin, staircase, end_value)


def cosine_decay_schedule(init_value: float, decay_steps: int, alpha: float = 0.0, exponent: float = 1.0) -> Schedule:
    """``optax.cosine_decay_schedule``."""
    return Schedule.cosine_decay(init_value, decay_steps, alpha, exponent)


def warmup_cosine_decay_schedule(
    init_value: float,
    peak_value: float,
    warmup_steps: int,
    decay_steps: int,
    end_value: float = 0.0,
    exponent: float = 1.0,
) -> Schedule:
    """``optax.warmup_cosine_decay_schedule`` (``decay_steps`` counts the warmup too)."""
    return Schedule.warmup_cosine_decay(init_value, peak_value, warmup_steps, decay_steps, end_value, exponent)


def warmup_exponential_decay_schedule(
    init_value: float,
    peak_value: float,
    warmup_steps: int,
    transition_steps: int,
    decay_rate: float,
    transition_begin: int = 0,
    staircase: bool = False,
    end_value: Optional[float] = None,
) -> Schedule:
    """``optax.warmup_exponential_decay_schedule``."""
    return Schedule.warmup_exponential_decay(
        init_value, peak_value, warmup_steps, transition_steps, decay_rate, transition_begin, staircase, end_value
    )


def piecewise_constant_schedule(
    init_value: float, boundaries_and_scales: Optional[Mapping[int, float]] = None
) -> Schedule:
    """``optax.piecewise_constant_schedule``."""
    return Schedule.piecewise_constant(init_value, boundaries_and_scales)


def join_schedules(schedules: Sequence[Schedule], boundaries: Sequence[int]) -> Schedule:
    """``optax.join_schedules`` (each schedule's count restarts at its boundary)."""
    return Schedule.join(list(schedules), list(boundaries))


constant = constant_schedule
linear = linear_schedule
polynomial = polynomial_schedule
cosine_decay = cosine_decay_schedule
warmup_cosine_decay = warmup_cosine_decay_schedule
warmup_exponential_decay = warmup_exponential_decay_schedule
piecewise_constant = piecewise_constant_schedule
join = join_schedules

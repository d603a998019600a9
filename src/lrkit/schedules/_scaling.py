"""Rescaling whole schedules: to a new run length, and to a new batch size."""

from __future__ import annotations

import dataclasses
import math
from numbers import Integral, Real
from typing import Any

from lrkit.schedules import _check as check
from lrkit.schedules._base import Schedule
from lrkit.schedules._combinators import Warmup, scale
from lrkit.schedules._errors import ScheduleTypeError, ScheduleValueError
from lrkit.schedules._time import Stretch, stretch
from lrkit.schedules._units import UNIT_RE, Length, check_length
from lrkit.schedules._wsd import WSD


def rescale(schedule: Schedule, *, total_steps: int) -> Stretch:
    """Stretch a finite schedule so that it ends at ``total_steps``.

    ``v(t) = schedule(t * D / total_steps)`` where ``D`` is the schedule's duration: every
    phase keeps its share of the run. (A schedule written with ``'%'`` lengths does the same
    through :meth:`Schedule.bind`.)

    Raises:
        ValueError: the schedule never settles (no duration) or ``total_steps`` is not positive.

    >>> rescale(linear(1.0, 0.0, steps=100), total_steps=1000)(500)
    0.5
    """
    steps = check_length("rescale", "total_steps", total_steps)
    d = schedule.duration
    if d is None or d <= 0:
        raise ScheduleValueError(
            f"rescale: the schedule must have a positive duration, got {schedule} with "
            f"duration {d!r}"
        )
    return stretch(schedule, float(steps) / d)  # type: ignore[arg-type]


def scale_for_batch(
    schedule: Schedule,
    *,
    base_batch: int,
    batch: int,
    rule: str = "linear",
    warmup_factor: float | None = None,
) -> Schedule:
    """Adapt a schedule tuned at ``base_batch`` to ``batch``: scale values, stretch warmups.

    The values are multiplied by ``k = batch / base_batch`` (``rule="linear"``; Goyal et al.,
    2017) or ``k = sqrt(batch / base_batch)`` (``rule="sqrt"``; Krizhevsky, 2014, common for
    Adam). Every :func:`warmup` in the schedule, and the warmup phase of every :func:`wsd`,
    lasts ``warmup_factor`` times longer (default ``k`` when growing the batch, 1 when
    shrinking it), since a larger jump in the peak value wants a gentler ramp. Other lengths are unchanged: to also shorten the run (same epochs,
    fewer steps), write lengths in epochs (``"3ep"``) and bind with the new steps per epoch,
    or use :func:`rescale`.

    Raises:
        TypeError: a batch size that is not a number.
        ValueError: batch sizes not positive integers, unknown ``rule``, ``warmup_factor``
            not > 0.

    >>> s = scale_for_batch(warmup(constant(0.1), steps=100), base_batch=256, batch=1024)
    >>> s.duration, round(s(400), 6)
    (400, 0.4)
    """
    owner = "scale_for_batch"
    b0 = _batch_size(owner, "base_batch", base_batch)
    b1 = _batch_size(owner, "batch", batch)
    check.choice(owner, "rule", rule, ("linear", "sqrt"))
    ratio = b1 / b0
    k = ratio if rule == "linear" else math.sqrt(ratio)
    factor = (
        max(k, 1.0)
        if warmup_factor is None
        else check.positive(owner, "warmup_factor", warmup_factor)
    )
    return scale(_stretch_warmups(schedule, factor), k)


def _batch_size(owner: str, name: str, value: object) -> int:
    """A positive whole number (an int, or an integral float such as 256.0)."""
    message = f"{owner}: {name} must be a positive integer, got {name}={value!r}"
    if isinstance(value, bool) or not isinstance(value, Real):
        raise ScheduleTypeError(message)
    whole = isinstance(value, Integral) or (math.isfinite(value) and value == round(value))
    if not whole or value <= 0:
        raise ScheduleValueError(message)
    return int(value) if isinstance(value, Integral) else int(float(value))


def _stretch_warmups(s: Schedule, factor: float) -> Schedule:
    """``s`` with every warmup (a :func:`warmup` or WSD's warmup phase) ``factor`` times longer."""
    changes: dict[str, Any] = {}
    for name in s._children:
        value = getattr(s, name)
        if isinstance(value, tuple):
            changes[name] = tuple(_stretch_warmups(c, factor) for c in value)
        else:
            changes[name] = _stretch_warmups(value, factor)
    if isinstance(s, Warmup):
        changes["steps"] = _scale_length(s.steps, factor)
    elif isinstance(s, WSD) and s.warmup_steps != 0:
        changes["warmup_steps"] = _scale_length(s.warmup_steps, factor)
    return dataclasses.replace(s, **changes) if changes else s


def _scale_length(length: Length, factor: float) -> Length:
    if isinstance(length, str):
        match = UNIT_RE.match(length)
        if match is None:  # pragma: no cover - lengths are validated at construction
            raise ScheduleValueError(f"scale_for_batch: cannot scale length {length!r}")
        return f"{float(match.group(1)) * factor!r}{match.group(2)}"
    return max(1, round(length * factor))

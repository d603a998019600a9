"""Rescaling whole schedules: to a new run length, and to a new batch size."""

from __future__ import annotations

import dataclasses
import math
import re

from lrkit.schedules import _check as check
from lrkit.schedules._base import Schedule
from lrkit.schedules._combinators import Stretch, Warmup, scale, stretch
from lrkit.schedules._errors import ScheduleValueError
from lrkit.schedules._units import Length, check_length


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
    Adam). Every :func:`warmup` in the schedule lasts ``warmup_factor`` times longer (default
    ``k`` when growing the batch, 1 when shrinking it), since a larger jump in the peak value
    wants a gentler ramp. Other lengths are unchanged: to also shorten the run (same epochs,
    fewer steps), write lengths in epochs (``"3ep"``) and bind with the new steps per epoch,
    or use :func:`rescale`.

    Raises:
        ValueError: batch sizes not positive, unknown ``rule``, ``warmup_factor`` not > 0.

    >>> s = scale_for_batch(warmup(constant(0.1), steps=100), base_batch=256, batch=1024)
    >>> s.duration, round(s(400), 6)
    (400, 0.4)
    """
    owner = "scale_for_batch"
    b0 = check_length(owner, "base_batch", base_batch)
    b1 = check_length(owner, "batch", batch)
    if isinstance(b0, str) or isinstance(b1, str):
        raise ScheduleValueError(
            f"{owner}: batch sizes must be integers, got base_batch={base_batch!r}, batch={batch!r}"
        )
    check.choice(owner, "rule", rule, ("linear", "sqrt"))
    ratio = b1 / b0
    k = ratio if rule == "linear" else math.sqrt(ratio)
    factor = (
        max(k, 1.0)
        if warmup_factor is None
        else check.positive(owner, "warmup_factor", warmup_factor)
    )
    return scale(_stretch_warmups(schedule, factor), k)


def _stretch_warmups(s: Schedule, factor: float) -> Schedule:
    changes: dict[str, object] = {}
    for name in s._children:
        value = getattr(s, name)
        if isinstance(value, tuple):
            changes[name] = tuple(_stretch_warmups(c, factor) for c in value)
        else:
            changes[name] = _stretch_warmups(value, factor)
    if isinstance(s, Warmup):
        changes["steps"] = _scale_length(s.steps, factor)
    return dataclasses.replace(s, **changes) if changes else s


def _scale_length(length: Length, factor: float) -> Length:
    if isinstance(length, str):
        # The number, then the unit: "2ep" must not read as the number "2e" and unit "p".
        match = re.match(r"^\s*([0-9]*\.?[0-9]+(?:[eE][-+]?[0-9]+)?)\s*(st|ep|%)\s*$", length)
        if match is None:
            raise ScheduleValueError(f"scale_for_batch: cannot scale length {length!r}")
        return f"{float(match.group(1)) * factor:g}{match.group(2)}"
    return max(1, round(length * factor))

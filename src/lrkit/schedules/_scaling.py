"""Rescaling whole schedules: to a new run length, and to a new batch size."""

from __future__ import annotations

import dataclasses
import math
import warnings
from numbers import Integral, Real
from typing import Any

from lrkit.schedules import _check as check
from lrkit.schedules._base import Schedule
from lrkit.schedules._combinators import Warmup, _schedule, scale
from lrkit.schedules._errors import ScheduleTypeError, ScheduleValueError
from lrkit.schedules._time import Stretch, stretch
from lrkit.schedules._units import UNIT_RE, Length, check_length
from lrkit.schedules._wsd import WSD

#: The largest batch for which Goyal et al. (2017) found the linear rule with a gradual warmup
#: to match small-batch accuracy (ResNet-50 on ImageNet: 8k, i.e. 8192); beyond it, it broke.
LINEAR_RULE_LIMIT = 8192


class BatchScalingWarning(UserWarning):
    """:func:`scale_for_batch` is asked for a rescaling where its rule is known to break."""


def rescale(schedule: Schedule, *, total_steps: int) -> Stretch:
    """Stretch a finite schedule so that it ends at ``total_steps``.

    ``v(t) = schedule(t * D / total_steps)`` where ``D`` is the schedule's duration: every
    phase keeps its share of the run. (A schedule written with ``'%'`` lengths does the same
    through :meth:`Schedule.bind`.)

    Raises:
        TypeError: ``schedule`` is not a Schedule.
        ValueError: the schedule never settles (no duration) or ``total_steps`` is not positive.

    >>> rescale(linear(1.0, 0.0, steps=100), total_steps=1000)(500)
    0.5
    """
    _schedule("rescale", "schedule", schedule)
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
    dataset_size: int | None = None,
    epochs: float | None = None,
) -> Schedule:
    """Adapt a schedule tuned at ``base_batch`` to ``batch``: scale values, stretch warmups.

    The values are multiplied by ``k = batch / base_batch`` (``rule="linear"``; Goyal et al.,
    2017) or ``k = sqrt(batch / base_batch)`` (``rule="sqrt"``; Krizhevsky, 2014; Hoffer et al.,
    2017, common for Adam). Every :func:`warmup` in the schedule, and the warmup phase of every
    :func:`wsd`, lasts ``warmup_factor`` times longer (default ``k`` when growing the batch, 1
    when shrinking it), since a larger jump in the peak value wants a gentler ramp.

    Run length: without ``dataset_size`` other lengths are unchanged (write them in epochs,
    ``"3ep"``, and bind with the new steps per epoch to keep the epochs). With
    ``dataset_size=N`` the run lasts exactly ``epochs * ceil(N / batch)`` steps, ``epochs``
    defaulting to the schedule's duration (in steps at ``base_batch``) over
    ``ceil(N / base_batch)``: the warmups are stretched by ``warmup_factor`` first, then the
    whole schedule is rescaled (see :func:`rescale`) to that length, so a stretched warmup
    takes a larger share of the same epochs (``warmup_factor=1``: every phase keeps its
    epochs, as Goyal et al.'s 5-epoch warmup at every batch size).

    Warns:
        BatchScalingWarning: the linear rule for ``batch`` above :data:`LINEAR_RULE_LIMIT`
            (8192; Goyal et al. report it breaking beyond ~8k), or the linear rule growing
            the rate more than 2x on a schedule without any warmup (Goyal et al. needed a
            gradual warmup for large batches).

    Raises:
        TypeError: ``schedule`` not a Schedule, a batch size that is not a number.
        ValueError: batch sizes not positive integers, unknown ``rule``, ``warmup_factor``
            not > 0, ``dataset_size`` not a positive integer, ``epochs`` not > 0, a schedule
            without a duration when ``dataset_size`` is given.

    >>> s = scale_for_batch(warmup(constant(0.1), steps=100), base_batch=256, batch=1024)
    >>> s.duration, round(s(400), 6)
    (400, 0.4)
    >>> run = warmup(cosine(0.1, steps=900), steps=100)              # 10 epochs of 100 steps
    >>> s = scale_for_batch(run, base_batch=128, batch=512, dataset_size=12800, warmup_factor=1)
    >>> s.duration, round(s(25), 6)                                    # 10 epochs of 25 steps
    (250.0, 0.4)
    """
    owner = "scale_for_batch"
    _schedule(owner, "schedule", schedule)
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
    _warn(schedule, rule, b1, k)
    if dataset_size is None:
        if epochs is not None:
            raise ScheduleValueError(f"{owner}: epochs needs dataset_size, got epochs={epochs!r}")
        return scale(_stretch_warmups(schedule, factor), k)
    n = _batch_size(owner, "dataset_size", dataset_size)
    spe0, spe1 = math.ceil(n / b0), math.ceil(n / b1)
    d = schedule.duration
    if d is None or d <= 0:
        raise ScheduleValueError(
            f"{owner}: with dataset_size the schedule must have a positive duration (in steps "
            f"at base_batch), got {schedule} with duration {d!r}"
        )
    ep = d / spe0 if epochs is None else check.positive(owner, "epochs", epochs)
    total = max(1, round(ep * spe1))
    return scale(rescale(_stretch_warmups(schedule, factor), total_steps=total), k)


def _warn(schedule: Schedule, rule: str, batch: int, k: float) -> None:
    if rule != "linear":
        return
    if batch > LINEAR_RULE_LIMIT and k > 1:
        warnings.warn(
            f"scale_for_batch: the linear rule is reported to hold up to a batch of about 8k "
            f"(Goyal et al., 2017, with a 5-epoch warmup) and to lose accuracy beyond; got "
            f"batch={batch}: watch the first epochs, or try rule='sqrt' or a longer warmup",
            BatchScalingWarning,
            stacklevel=3,
        )
    if k > 2 and not _has_warmup(schedule):
        warnings.warn(
            f"scale_for_batch: the linear rule multiplies the rate by {k:g} and the schedule has "
            f"no warmup; Goyal et al. (2017) needed a gradual warmup for large batches: wrap it "
            f"in warmup(...)",
            BatchScalingWarning,
            stacklevel=3,
        )


def _has_warmup(s: Schedule) -> bool:
    if isinstance(s, Warmup) or (isinstance(s, WSD) and s.warmup_steps != 0):
        return True
    for name in s._children:
        value = getattr(s, name)
        children = value if isinstance(value, tuple) else (value,)
        if any(_has_warmup(c) for c in children):
            return True
    return False


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

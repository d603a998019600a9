"""Lengths written in steps, epochs or fractions of the run, and their resolution to steps.

A length is one of:

- an ``int`` (or an integral float): a number of optimizer steps;
- ``"<n>st"``: steps, e.g. ``"500st"``;
- ``"<x>ep"``: epochs, e.g. ``"3ep"`` or ``"0.5ep"``; needs ``steps_per_epoch`` to bind;
- ``"<x>%"``: a fraction of the whole run, e.g. ``"10%"``; needs ``total_steps`` to bind.

Units become integer steps (rounded to nearest) when a schedule is bound to a run with
:meth:`lrkit.Schedule.bind`, so nothing is left to fail mid-run.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass
from numbers import Integral, Real

from lrkit.schedules._errors import ScheduleTypeError, ScheduleValueError

Length = int | str

#: Lengths beyond this are refused: far past any run, and still exact as a float.
MAX_STEPS = 2**53

UNIT_RE = re.compile(r"^\s*([0-9]*\.?[0-9]+(?:[eE][-+]?[0-9]+)?)\s*(st|ep|%)\s*$")


@dataclass(frozen=True, slots=True)
class RunInfo:
    """What a schedule needs to know about a run to turn units into steps."""

    total_steps: int | None = None
    steps_per_epoch: int | None = None


def check_length(owner: str, name: str, value: object, *, allow_zero: bool = False) -> Length:
    """Validate a length argument and return it normalised (ints stay ints, unit strings stay).

    Raises:
        TypeError: for a value that is neither a number nor a string.
        ValueError: for a non-positive, non-integral or malformed length.
    """
    accepted = "a non-negative" if allow_zero else "a positive"
    if isinstance(value, bool):
        raise ScheduleTypeError(
            f"{owner}: {name} must be {accepted} integer or a unit string such as '3ep' or "
            f"'10%', got {name}={value!r}"
        )
    if isinstance(value, Integral):
        ivalue = int(value)
    elif isinstance(value, Real):
        fvalue = float(value)
        if not math.isfinite(fvalue) or fvalue != round(fvalue):
            raise ScheduleValueError(
                f"{owner}: {name} must be {accepted} integer number of steps, got {name}={value!r}"
            )
        ivalue = int(fvalue)
    elif isinstance(value, str):
        match = UNIT_RE.match(value)
        if match is None:
            raise ScheduleValueError(
                f"{owner}: {name} must be an integer or a unit string like '500st', '3ep' or "
                f"'10%', got {name}={value!r}"
            )
        amount, unit = float(match.group(1)), match.group(2)
        if amount > MAX_STEPS:
            raise ScheduleValueError(
                f"{owner}: {name} is too large (at most 2**53), got {name}={value!r}"
            )
        if amount < 0 or (amount == 0 and not allow_zero):
            raise ScheduleValueError(
                f"{owner}: {name} must be {accepted[2:]}, got {name}={value!r}"
            )
        if unit == "%" and amount > 100:
            raise ScheduleValueError(
                f"{owner}: {name} as a fraction of the run must be at most 100%, got {name}={value!r}"
            )
        if unit == "st":
            if amount != round(amount):
                raise ScheduleValueError(
                    f"{owner}: {name} in steps must be whole, got {name}={value!r}"
                )
            return _not_too_large(owner, name, int(amount), value)
        return value.strip()
    else:
        raise ScheduleTypeError(
            f"{owner}: {name} must be an integer or a unit string such as '3ep' or '10%', "
            f"got {name}={value!r} of type {type(value).__name__}"
        )
    if ivalue < 0 or (ivalue == 0 and not allow_zero):
        raise ScheduleValueError(
            f"{owner}: {name} must be {accepted} integer, got {name}={value!r}"
        )
    return _not_too_large(owner, name, ivalue, value)


def check_lengths(
    owner: str, name: str, values: object, *, allow_zero: bool = False
) -> tuple[Length, ...]:
    """Validate a list of lengths (each as :func:`check_length`) and return it as a tuple.

    Raises:
        TypeError: ``values`` is not a list or tuple (a string is not), or an entry's type.
        ValueError: an entry that is not a valid length.
    """
    if isinstance(values, (str, bytes)) or not isinstance(values, Sequence):
        raise ScheduleTypeError(f"{owner}: {name} must be a list of steps, got {name}={values!r}")
    return tuple(
        check_length(owner, f"{name}[{i}]", v, allow_zero=allow_zero) for i, v in enumerate(values)
    )


def _not_too_large(owner: str, name: str, steps: int, value: object) -> int:
    if steps > MAX_STEPS:
        raise ScheduleValueError(
            f"{owner}: {name} is too large (at most 2**53 steps), got {name}={value!r}"
        )
    return steps


def is_resolved(value: Length) -> bool:
    """True when ``value`` is already a number of steps."""
    return not isinstance(value, str)


def resolve_length(owner: str, name: str, value: Length, run: RunInfo) -> int:
    """Turn a length into steps for ``run``; raise if the run lacks what the unit needs."""
    if not isinstance(value, str):
        return value
    match = UNIT_RE.match(value)
    if match is None:
        raise ScheduleValueError(f"{owner}: {name} is not a valid length, got {name}={value!r}")
    amount, unit = float(match.group(1)), match.group(2)
    if unit == "ep":
        if run.steps_per_epoch is None:
            raise ScheduleValueError(
                f"{owner}: {name}={value!r} is in epochs; bind with steps_per_epoch=..."
            )
        steps = round(amount * run.steps_per_epoch)
        basis = f"steps_per_epoch={run.steps_per_epoch}"
    else:
        if run.total_steps is None:
            raise ScheduleValueError(
                f"{owner}: {name}={value!r} is a fraction of the run; bind with total_steps=..."
            )
        steps = round(amount / 100.0 * run.total_steps)
        basis = f"total_steps={run.total_steps}"
    if steps == 0 and amount > 0:
        raise ScheduleValueError(
            f"{owner}: {name}={value!r} rounds to 0 steps with {basis}; use a longer length"
        )
    return _not_too_large(owner, name, steps, value)


def check_run(total_steps: object, steps_per_epoch: object) -> RunInfo:
    """Validate the arguments of ``bind`` and pack them."""
    out: list[int | None] = []
    for name, value in (("total_steps", total_steps), ("steps_per_epoch", steps_per_epoch)):
        if value is None:
            out.append(None)
        else:
            checked = check_length("bind", name, value)
            if isinstance(checked, str):
                raise ScheduleValueError(f"bind: {name} must be an integer, got {name}={value!r}")
            out.append(checked)
    return RunInfo(out[0], out[1])

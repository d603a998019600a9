"""Argument validation shared by every schedule: one message shape, naming owner, argument, value."""

from __future__ import annotations

import itertools
import math
import sys
from collections.abc import Callable, Iterable, Mapping
from numbers import Real

from lrkit.schedules._errors import ScheduleTypeError, ScheduleValueError


def real(owner: str, name: str, value: object) -> float:
    """Return ``value`` as a finite float; raise TypeError / ValueError otherwise."""
    if isinstance(value, bool) or not isinstance(value, Real):
        raise ScheduleTypeError(
            f"{owner}: {name} must be a real number, got {name}={value!r} "
            f"of type {type(value).__name__}"
        )
    try:
        out = float(value)
    except OverflowError:  # an int beyond the float range
        out = math.inf
    if not math.isfinite(out):
        raise ScheduleValueError(f"{owner}: {name} must be finite, got {name}={value!r}")
    return out


def positive(owner: str, name: str, value: object) -> float:
    """A finite float strictly greater than zero."""
    out = real(owner, name, value)
    if out <= 0:
        raise ScheduleValueError(f"{owner}: {name} must be > 0, got {name}={value!r}")
    return out


def non_negative(owner: str, name: str, value: object) -> float:
    """A finite float greater than or equal to zero."""
    out = real(owner, name, value)
    if out < 0:
        raise ScheduleValueError(f"{owner}: {name} must be >= 0, got {name}={value!r}")
    return out


def in_range(
    owner: str,
    name: str,
    value: object,
    low: float,
    high: float,
    *,
    low_open: bool = False,
    high_open: bool = False,
) -> float:
    """A finite float in the interval given by ``low``, ``high`` and the two open flags."""
    out = real(owner, name, value)
    bad_low = out <= low if low_open else out < low
    bad_high = out >= high if high_open else out > high
    if bad_low or bad_high:
        interval = f"{'(' if low_open else '['}{low:g}, {high:g}{')' if high_open else ']'}"
        raise ScheduleValueError(f"{owner}: {name} must be in {interval}, got {name}={value!r}")
    return out


def choice(owner: str, name: str, value: object, options: Iterable[str]) -> str:
    """One of a fixed set of strings."""
    opts = tuple(options)
    if not isinstance(value, str):
        raise ScheduleTypeError(
            f"{owner}: {name} must be a string, one of {', '.join(repr(o) for o in opts)}, "
            f"got {name}={value!r} of type {type(value).__name__}"
        )
    if value not in opts:
        listed = ", ".join(repr(o) for o in opts)
        raise ScheduleValueError(f"{owner}: {name} must be one of {listed}, got {name}={value!r}")
    return str(value)


def boolean(owner: str, name: str, value: object) -> bool:
    """A real ``bool`` (not 0/1, not a string)."""
    if not isinstance(value, bool):
        raise ScheduleTypeError(f"{owner}: {name} must be True or False, got {name}={value!r}")
    return value


def reals(owner: str, name: str, values: object, *, min_len: int = 1) -> tuple[float, ...]:
    """A non-empty sequence of finite floats, returned as a tuple."""
    items = _as_tuple(values)
    if items is None:
        raise ScheduleTypeError(f"{owner}: {name} must be a list of numbers, got {name}={values!r}")
    out = tuple(real(owner, f"{name}[{i}]", v) for i, v in enumerate(items))
    if len(out) < min_len:
        raise ScheduleValueError(
            f"{owner}: {name} must hold at least {min_len} value(s), got {name}={values!r}"
        )
    return out


def increasing(owner: str, name: str, values: tuple[int, ...], *, strict: bool = True) -> None:
    """Raise unless ``values`` is (strictly) increasing."""
    for a, b in itertools.pairwise(values):
        if b < a or (strict and b == a):
            kind = "strictly increasing" if strict else "non-decreasing"
            raise ScheduleValueError(f"{owner}: {name} must be {kind}, got {name}={list(values)!r}")


def sequence_arg(owner: str, name: str, values: object) -> tuple[object, ...]:
    """A list or tuple (not a string), returned as a tuple; TypeError otherwise."""
    items = _as_tuple(values)
    if items is None:
        raise ScheduleTypeError(f"{owner}: {name} must be a list, got {name}={values!r}")
    return items


def _as_tuple(values: object) -> tuple[object, ...] | None:
    """``values`` as a tuple if it is a list-like of items (not a string, bytes, a mapping or a
    0-d array, which iterate oddly or not at all); None otherwise."""
    if isinstance(values, (str, bytes, Mapping)) or not isinstance(values, Iterable):
        return None
    try:
        return tuple(values)
    except TypeError:  # e.g. a 0-d numpy array: iterable by type, not in fact
        return None


#: The largest finite float64 (``np.finfo(np.float64).max``): a schedule whose values could
#: exceed it is refused; the clocks that could overflow are capped there.
MAX_VALUE = sys.float_info.max


def bounded(owner: str, name: str, shown: Callable[[], str], magnitude: float) -> None:
    """Raise unless ``magnitude`` (an upper bound on ``|v(t)|`` over every step of a product or
    multiple being built) is at most the largest float: else it could write ``inf``.

    ``shown()`` gives the argument as the message prints it (cut to about 200 characters).
    """
    if not magnitude <= MAX_VALUE:
        text = shown()
        if len(text) > 200:
            text = f"{text[:200]}... ({len(text)} characters)"
        raise ScheduleValueError(
            f"{owner}: the values could overflow (up to {magnitude:g} in magnitude, beyond the "
            f"largest float {MAX_VALUE:g}), got {name}={text}"
        )

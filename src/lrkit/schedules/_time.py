"""Time operators: shift (delay), advance (skip ahead), stretch (slow down) and repeat."""

from __future__ import annotations

from dataclasses import dataclass, field

from lrkit.schedules import _check as check
from lrkit.schedules._arrays import Namespace, finite_cap, is_numpy
from lrkit.schedules._base import FloatArray, Schedule, register
from lrkit.schedules._combinators import _schedule
from lrkit.schedules._errors import ScheduleValueError
from lrkit.schedules._units import MAX_STEPS, Length, check_length

#: The largest finite step (the largest float): a stretch that speeds time up caps its inner
#: clock there.
_MAX_STEP = check.MAX_VALUE


@register("shift")
@dataclass(frozen=True, slots=True)
class Shift(Schedule):
    """See :func:`shift`."""

    _positional = 1
    _lengths = ("steps",)
    _children = ("schedule",)
    schedule: Schedule
    steps: Length = 1

    def _validate(self) -> None:
        _schedule("shift", "schedule", self.schedule)
        self._set("steps", check_length("shift", "steps", self.steps))

    def _eval(self, t: FloatArray, xp: Namespace) -> FloatArray:
        return self.schedule._eval(xp.maximum(t - float(self.steps), 0.0), xp)  # type: ignore[arg-type]

    def _duration(self) -> float | None:
        inner = self.schedule._duration()
        return None if inner is None else inner + self.steps  # type: ignore[operator]


def shift(schedule: Schedule, *, steps: Length) -> Shift:
    """Delay: ``v(t) = schedule(max(t - steps, 0))``, holding ``schedule(0)`` meanwhile.

    >>> shift(linear(0.0, 1.0, steps=10), steps=5)(10)
    0.5
    """
    return Shift(schedule, steps)


@register("advance")
@dataclass(frozen=True, slots=True)
class Advance(Schedule):
    """See :func:`advance`."""

    _positional = 1
    _lengths = ("steps",)
    _children = ("schedule",)
    schedule: Schedule
    steps: Length = 1

    def _validate(self) -> None:
        _schedule("advance", "schedule", self.schedule)
        self._set("steps", check_length("advance", "steps", self.steps))

    def _eval(self, t: FloatArray, xp: Namespace) -> FloatArray:
        return self.schedule._eval(t + float(self.steps), xp)  # type: ignore[arg-type]

    def _duration(self) -> float | None:
        inner = self.schedule._duration()
        return None if inner is None else max(inner - self.steps, 0)  # type: ignore[operator]


def advance(schedule: Schedule, *, steps: Length) -> Advance:
    """Skip the first ``steps`` steps: ``v(t) = schedule(t + steps)``.

    >>> advance(linear(0.0, 1.0, steps=10), steps=5)(0)
    0.5
    """
    return Advance(schedule, steps)


@register("stretch")
@dataclass(frozen=True, slots=True)
class Stretch(Schedule):
    """See :func:`stretch`."""

    _positional = 2
    _children = ("schedule",)
    schedule: Schedule
    factor: float = 1.0
    #: (inner duration, own duration) for an inner schedule that settles after a positive
    #: duration, else None.
    _ends: tuple[float, float] | None = field(init=False, repr=False, compare=False, default=None)

    def _validate(self) -> None:
        _schedule("stretch", "schedule", self.schedule)
        self._set("factor", check.positive("stretch", "factor", self.factor))
        inner = self.schedule._duration() if self.schedule.is_bound else None
        if inner is not None and inner > 0:
            end = inner * self.factor
            if not end <= MAX_STEPS:  # (inf included)
                raise ScheduleValueError(
                    f"stretch: factor makes the schedule longer than 2**53 steps (its duration "
                    f"{inner!r} * {self.factor!r} = {end:g}), got factor={self.factor!r}"
                )
            # A length that is a whole number of steps up to rounding (rescale to 1000 steps
            # of a 999-step schedule: 1000.0000000000001) is that number, so that a schedule
            # joined after it starts on the step, not a rounding error later.
            if abs(end - round(end)) <= 1e-12 * end:
                end = float(round(end))
            if end > 0:  # (a tiny factor can round the length to 0: settled from the start)
                self._set("_ends", (float(inner), end))

    def _eval(self, t: FloatArray, xp: Namespace) -> FloatArray:
        if self._ends is None:  # never settles, or settled from the start
            cap = finite_cap(xp, t, _MAX_STEP * self.factor)
            return self.schedule._eval(xp.minimum(t, cap) / self.factor, xp)
        # The inner schedule holds past its end: clamp there, and reach it exactly at t = end
        # (t / factor may fall an ulp short, or overflow for a tiny factor).
        inner, end = self._ends
        local = xp.minimum(t, end) / end * inner
        if not is_numpy(xp):  # float32 (and XLA's x * (1 / end)) may fall short of inner
            local = xp.where(t >= end, inner, local)
        return self.schedule._eval(local, xp)

    def _duration(self) -> float | None:
        if self._ends is not None:
            return self._ends[1]
        inner = self.schedule._duration()
        return None if inner is None else inner * self.factor


def stretch(schedule: Schedule, factor: float) -> Stretch:
    """Slow time by ``factor``: ``v(t) = schedule(t / factor)`` (``factor < 1`` speeds it up).

    Raises:
        ValueError: ``factor`` not > 0, or a stretched duration beyond ``2**53`` steps (the
            longest length lrkit accepts).

    >>> stretch(linear(0.0, 1.0, steps=10), 2.0)(10)
    0.5
    """
    return Stretch(schedule, factor)


@register("repeat")
@dataclass(frozen=True, slots=True)
class Repeat(Schedule):
    """See :func:`repeat`."""

    _positional = 1
    _children = ("schedule",)
    schedule: Schedule
    times: int | None = None
    #: The inner schedule's duration as a float, once it is bound (read by ``_eval``).
    _period: float | None = field(init=False, repr=False, compare=False, default=None)

    def _validate(self) -> None:
        owner = "repeat"
        _schedule(owner, "schedule", self.schedule)
        if self.times is not None:
            times = check_length(owner, "times", self.times)
            if isinstance(times, str):
                raise ScheduleValueError(
                    f"{owner}: times must be a positive integer, got times={self.times!r}"
                )
            self._set("times", times)
        if self.schedule.is_bound:
            d = self.schedule._duration()
            if d is None or d <= 0:
                raise ScheduleValueError(
                    f"{owner}: the schedule must have a positive duration to repeat, got "
                    f"{self.schedule} with duration {d!r}"
                )
            self._set("_period", float(d))

    def _eval(self, t: FloatArray, xp: Namespace) -> FloatArray:
        period: float = self._period  # type: ignore[assignment]
        local = xp.remainder(t, period)
        if self.times is not None:
            local = xp.where(t >= self.times * period, period, local)
        return self.schedule._eval(local, xp)

    def _duration(self) -> float | None:
        if self.times is None:
            return None
        return self.times * self.schedule._duration()  # type: ignore[operator]


def repeat(schedule: Schedule, *, times: int | None = None) -> Repeat:
    """Run ``schedule`` back to back: ``v(t) = schedule(t mod D)`` with ``D`` its duration.

    With ``times`` it stops after ``times * D`` steps and holds the final value; without, it
    repeats forever (no duration).

    Raises:
        ValueError: the schedule has no positive duration, ``times`` not a positive integer.

    >>> repeat(linear(1.0, 0.0, steps=10), times=2)([5, 15, 25])
    array([0.5, 0.5, 0. ])
    """
    return Repeat(schedule, times)

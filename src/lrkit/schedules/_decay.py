"""Decay families: constant, step, multistep, exponential, polynomial, inverse square root."""

from __future__ import annotations

import math
from collections.abc import Sequence as Seq
from dataclasses import dataclass, field

import numpy as np

from lrkit.schedules import _check as check
from lrkit.schedules._anneal import mix
from lrkit.schedules._arrays import (
    Namespace,
    errstate,
    floor_div,
    is_numpy,
    lookup,
    power,
    put_value,
)
from lrkit.schedules._base import FloatArray, Schedule, register
from lrkit.schedules._errors import ScheduleValueError
from lrkit.schedules._units import Length, check_length, check_lengths


@register("constant")
@dataclass(frozen=True, slots=True)
class Constant(Schedule):
    """See :func:`constant`."""

    _positional = 1
    value: float

    def _validate(self) -> None:
        self._set("value", check.real("constant", "value", self.value))

    def _eval(self, t: FloatArray, xp: Namespace) -> FloatArray:
        return xp.full_like(t, self.value)

    def _duration(self) -> float | None:
        return 0


def constant(value: float) -> Constant:
    """The same value at every step: ``v(t) = value``.

    Its duration is 0: it is at its final value from the first step.

    >>> constant(0.1)(1234)
    0.1
    """
    return Constant(value)


@register("step_decay")
@dataclass(frozen=True, slots=True)
class StepDecay(Schedule):
    """See :func:`step_decay`."""

    _positional = 1
    _lengths = ("steps",)
    start: float
    steps: Length
    gamma: float = 0.1

    def _validate(self) -> None:
        self._set("start", check.real("step_decay", "start", self.start))
        self._set("steps", check_length("step_decay", "steps", self.steps))
        self._set("gamma", check.in_range("step_decay", "gamma", self.gamma, 0, 1, low_open=True))

    def _eval(self, t: FloatArray, xp: Namespace) -> FloatArray:
        return self.start * power(xp, self.gamma, floor_div(xp, t, float(self.steps)))  # type: ignore[arg-type]

    def _duration(self) -> float | None:
        return 0 if self.gamma == 1 else None


def step_decay(start: float, *, steps: Length, gamma: float = 0.1) -> StepDecay:
    """Multiply by ``gamma`` every ``steps`` steps: ``v(t) = start * gamma ** floor(t / steps)``.

    Matches ``torch.optim.lr_scheduler.StepLR(step_size=steps, gamma=gamma)`` step for step.

    Args:
        start: the value for the first ``steps`` steps.
        steps: the length of each constant stretch (int, or a unit such as ``"30ep"``).
        gamma: the factor applied at each drop, in (0, 1].

    Raises:
        ValueError: ``steps`` not positive, ``gamma`` outside (0, 1], ``start`` not finite.

    Never settles (no duration) unless ``gamma == 1``.

    >>> s = step_decay(0.1, steps=30, gamma=0.1)
    >>> s(29), s(30)
    (0.1, 0.010000000000000002)
    """
    return StepDecay(start, steps, gamma)


@register("multistep_decay")
@dataclass(frozen=True, slots=True)
class MultistepDecay(Schedule):
    """See :func:`multistep_decay`."""

    _positional = 1
    _lengths = ("milestones",)
    start: float
    milestones: tuple[Length, ...]
    gamma: float = 0.1
    # Array for _eval, built once at construction.
    _ms: FloatArray | None = field(init=False, repr=False, compare=False, default=None)

    def _validate(self) -> None:
        owner = "multistep_decay"
        self._set("start", check.real(owner, "start", self.start))
        ms = check_lengths(owner, "milestones", self.milestones)
        if not ms:
            raise ScheduleValueError(f"{owner}: milestones must not be empty, got milestones=[]")
        self._set("milestones", ms)
        if self._lengths_resolved("milestones"):
            check.increasing(owner, "milestones", ms)  # type: ignore[arg-type]
            self._set("_ms", np.asarray(ms, dtype=np.float64))
        self._set("gamma", check.in_range(owner, "gamma", self.gamma, 0, 1, low_open=True))

    def _eval(self, t: FloatArray, xp: Namespace) -> FloatArray:
        if not is_numpy(xp):  # gamma ** (number of milestones passed), no index arrays
            passed = [self.gamma**k for k in range(len(self.milestones) + 1)]
            return self.start * lookup(xp, t, self.milestones, passed)  # type: ignore[arg-type]
        drops = np.searchsorted(self._ms, t, side="right")  # type: ignore[call-overload]
        return self.start * np.power(self.gamma, drops, dtype=np.float64)

    def _duration(self) -> float | None:
        return self.milestones[-1]  # type: ignore[return-value]


def multistep_decay(start: float, *, milestones: Seq[Length], gamma: float = 0.1) -> MultistepDecay:
    """Multiply by ``gamma`` at each milestone: ``v(t) = start * gamma ** #{m in milestones: m <= t}``.

    Matches ``torch.optim.lr_scheduler.MultiStepLR(milestones, gamma)``: the drop applies from
    the milestone step itself.

    Args:
        start: the value before the first milestone.
        milestones: strictly increasing positive steps (ints or units).
        gamma: the factor applied at each milestone, in (0, 1].

    Raises:
        ValueError: empty or non-increasing milestones, ``gamma`` outside (0, 1].

    Holds ``start * gamma ** len(milestones)`` from the last milestone on.

    >>> s = multistep_decay(1.0, milestones=[10, 20], gamma=0.5)
    >>> s(9), s(10), s(25)
    (1.0, 0.5, 0.25)
    """
    return MultistepDecay(
        start,
        check.sequence_arg("multistep_decay", "milestones", milestones),  # type: ignore[arg-type]
        gamma,
    )


@register("exponential")
@dataclass(frozen=True, slots=True)
class Exponential(Schedule):
    """See :func:`exponential`."""

    _positional = 1
    _lengths = ("every",)
    start: float
    gamma: float
    every: Length = 1
    staircase: bool = False
    end: float | None = None
    #: :meth:`_duration`, computed once ``every`` is a number of steps (read by ``_eval``).
    _settle: float | None = field(init=False, repr=False, compare=False, default=None)

    def _validate(self) -> None:
        owner = "exponential"
        start = check.positive(owner, "start", self.start)
        gamma = check.positive(owner, "gamma", self.gamma)
        self._set("start", start)
        self._set("gamma", gamma)
        self._set("every", check_length(owner, "every", self.every))
        self._set("staircase", check.boolean(owner, "staircase", self.staircase))
        if self.end is None:
            if gamma > 1:
                raise ScheduleValueError(
                    f"{owner}: a growing schedule (gamma > 1) needs an end value to stop at, "
                    f"got gamma={self.gamma!r}, end=None"
                )
        else:
            end = check.non_negative(owner, "end", self.end)
            if (gamma < 1 and end > start) or (gamma > 1 and end < start):
                raise ScheduleValueError(
                    f"{owner}: end must lie on the side gamma moves towards, got "
                    f"start={self.start!r}, gamma={self.gamma!r}, end={self.end!r}"
                )
            self._set("end", end)
        if self._lengths_resolved("every"):
            self._set("_settle", self._duration())

    def _eval(self, t: FloatArray, xp: Namespace) -> FloatArray:
        if self.gamma == 1:  # no change per period: end is never reached, start is held
            return xp.full_like(t, self.start)
        every = float(self.every)  # type: ignore[arg-type]
        p = floor_div(xp, t, every) if self.staircase else t / every
        end = self._settle
        if end is not None:
            # From the end on the value is end exactly (gamma ** p may round an ulp off), and
            # capping p there keeps a growing gamma ** p finite for any step.
            p = xp.minimum(p, end / self.every)  # type: ignore[operator]
        with errstate(xp, over="ignore"):  # start * gamma ** p past a huge end: inf, then end
            v = self.start * power(xp, self.gamma, p)
        if self.end is not None:
            v = xp.maximum(v, self.end) if self.gamma < 1 else xp.minimum(v, self.end)
            if end is not None:
                v = put_value(xp, v, t >= float(end), self.end)
        return v

    def _periods(self) -> float:
        """Periods of ``every`` steps from ``start`` to ``end`` (logs apart: no overflow)."""
        return (math.log(self.end) - math.log(self.start)) / math.log(self.gamma)  # type: ignore[arg-type]

    def _duration(self) -> float | None:
        if self.gamma == 1:
            return 0
        if self.end is None or self.end == 0:
            return None
        periods = self._periods()
        if self.staircase:
            periods = math.ceil(periods - 1e-12)
        return periods * self.every  # type: ignore[operator]


def exponential(
    start: float,
    *,
    gamma: float,
    every: Length = 1,
    staircase: bool = False,
    end: float | None = None,
) -> Exponential:
    """Multiply by ``gamma`` per ``every`` steps: ``v(t) = start * gamma ** (t / every)``.

    With ``staircase=True`` the exponent is ``floor(t / every)`` (Keras ``ExponentialDecay``
    with ``staircase=True``, ``decay_rate=gamma``, ``decay_steps=every``). ``every=1`` is
    ``torch.optim.lr_scheduler.ExponentialLR(gamma)``. With ``end`` the value stops there
    (optax ``exponential_decay(end_value=...)``): ``max(v, end)`` when decaying, ``min(v, end)``
    when growing. A growing schedule (``gamma > 1``, as in an LR range test) must give ``end``.

    Raises:
        ValueError: ``start`` or ``gamma`` not > 0, ``gamma > 1`` without ``end``, ``end`` on the
            wrong side of ``start``.

    Settles at ``end`` when one is given; otherwise decays forever (no duration). With
    ``gamma == 1`` it holds ``start`` (``end`` is never reached).

    >>> exponential(1.0, gamma=0.5, every=10)(20)
    0.25
    """
    return Exponential(start, gamma, every, staircase, end)


@register("polynomial")
@dataclass(frozen=True, slots=True)
class Polynomial(Schedule):
    """See :func:`polynomial`."""

    _positional = 2
    _lengths = ("steps",)
    start: float
    end: float = 0.0
    steps: Length = 1
    power: float = 1.0
    cycle: bool = False

    def _validate(self) -> None:
        owner = "polynomial"
        self._set("start", check.real(owner, "start", self.start))
        self._set("end", check.real(owner, "end", self.end))
        self._set("steps", check_length(owner, "steps", self.steps))
        self._set("power", check.positive(owner, "power", self.power))
        self._set("cycle", check.boolean(owner, "cycle", self.cycle))

    def _eval(self, t: FloatArray, xp: Namespace) -> FloatArray:
        steps = float(self.steps)  # type: ignore[arg-type]
        if self.cycle:
            span = steps * xp.maximum(-floor_div(xp, -t, steps), 1.0)
            frac = t / span
        else:
            frac = xp.minimum(t, steps) / steps
        return mix(self.start, self.end, (1.0 - frac) ** self.power)

    def _duration(self) -> float | None:
        return None if self.cycle else self.steps  # type: ignore[return-value]


def polynomial(
    start: float,
    end: float = 0.0,
    *,
    steps: Length,
    power: float = 1.0,
    cycle: bool = False,
) -> Polynomial:
    """Polynomial decay to ``end``: ``w = (1 - min(t, steps) / steps) ** power``,
    ``v(t) = start * w + end * (1 - w)``.

    Keras ``PolynomialDecay(start, steps, end, power, cycle)``; with ``end=0`` it is
    ``torch.optim.lr_scheduler.PolynomialLR(total_iters=steps, power=power)``; transformers'
    ``get_polynomial_decay_schedule_with_warmup`` is ``warmup(polynomial(...), steps=...)``.
    With ``cycle=True`` the horizon grows to the next multiple of ``steps``
    (``steps * ceil(t / steps)``), as Keras does, and the schedule never settles.

    Raises:
        ValueError: ``steps`` not positive, ``power`` not > 0.

    Holds ``end`` from step ``steps`` on (without ``cycle``).

    >>> polynomial(1.0, 0.0, steps=10, power=2.0)(5)
    0.25
    """
    return Polynomial(start, end, steps, power, cycle)


@register("inverse_sqrt")
@dataclass(frozen=True, slots=True)
class InverseSqrt(Schedule):
    """See :func:`inverse_sqrt`."""

    _positional = 1
    _lengths = ("steps",)
    peak: float
    steps: Length

    def _validate(self) -> None:
        self._set("peak", check.real("inverse_sqrt", "peak", self.peak))
        self._set("steps", check_length("inverse_sqrt", "steps", self.steps))

    def _eval(self, t: FloatArray, xp: Namespace) -> FloatArray:
        steps = float(self.steps)  # type: ignore[arg-type]
        return self.peak * xp.sqrt(steps / (t + steps))

    def _duration(self) -> float | None:
        return None


def inverse_sqrt(peak: float, *, steps: Length) -> InverseSqrt:
    """Inverse square root decay: ``v(t) = peak * sqrt(steps / (t + steps))``.

    ``steps`` is the timescale: the value halves after ``3 * steps`` steps. Composed as
    ``warmup(inverse_sqrt(peak, steps=W), steps=W)`` it is transformers'
    ``get_inverse_sqrt_schedule(num_warmup_steps=W)`` (timescale defaults to the warmup) and the
    "Noam" schedule of *Attention Is All You Need* (Vaswani et al., 2017) up to the peak.

    Raises:
        ValueError: ``steps`` not positive.

    Decays forever (no duration).

    >>> inverse_sqrt(1.0, steps=100)(300)
    0.5
    """
    return InverseSqrt(peak, steps)

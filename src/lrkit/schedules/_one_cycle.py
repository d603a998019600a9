"""The one-cycle policy (Smith & Topin, 2018) for the learning rate and the inverse momentum."""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from lrkit.schedules import _check as check
from lrkit.schedules._anneal import cos_weight, mix
from lrkit.schedules._arrays import Namespace, empty, put
from lrkit.schedules._base import FloatArray, Schedule, register
from lrkit.schedules._errors import ScheduleValueError
from lrkit.schedules._units import Length, check_length


def _phase_ends(owner: str, steps: int, pct_start: float, three_phase: bool) -> tuple[float, ...]:
    """torch's phase end steps: ``pct*T - 1`` (, ``2*pct*T - 2``), ``T - 1``; validated."""
    first = pct_start * steps - 1.0
    ends = (first, 2.0 * pct_start * steps - 2.0) if three_phase else (first,)
    ends = (*ends, steps - 1.0)
    previous = 0.0
    for end in ends:
        if end <= previous:
            raise ScheduleValueError(
                f"{owner}: every phase must last at least one step, got steps={steps}, "
                f"pct_start={pct_start!r}, three_phase={three_phase} (phase ends at {list(ends)})"
            )
        previous = end
    return ends


def one_cycle_curve(
    t: FloatArray,
    ends: tuple[float, ...],
    values: tuple[float, ...],
    anneal: str,
    xp: Namespace,
) -> FloatArray:
    """Anneal through ``values[0] -> values[1] -> ...`` with phase ``k`` ending at ``ends[k]``.

    Steps past the last end hold ``values[-1]``.
    """
    out = empty(xp, t)
    start = 0.0
    for k, end in enumerate(ends):
        last = k == len(ends) - 1
        mask = t >= start if last else (t >= start) & (t <= end)
        if k > 0:
            mask &= t > start

        def phase(t: FloatArray, k: int = k, start: float = start, end: float = end) -> FloatArray:
            frac = xp.clip((t - start) / (end - start), 0.0, 1.0)
            w = cos_weight(frac, xp) if anneal == "cos" else 1.0 - frac
            return mix(values[k], values[k + 1], w)

        out = put(xp, out, mask, phase, t)
        start = end
    return out


def _check_common(owner: str, obj: Schedule) -> None:
    obj._set("steps", check_length(owner, "steps", obj.steps))  # type: ignore[attr-defined]
    obj._set(
        "pct_start",
        check.in_range(owner, "pct_start", obj.pct_start, 0, 1, low_open=True, high_open=True),  # type: ignore[attr-defined]
    )
    obj._set("anneal", check.choice(owner, "anneal", obj.anneal, ("cos", "linear")))  # type: ignore[attr-defined]
    obj._set("three_phase", check.boolean(owner, "three_phase", obj.three_phase))  # type: ignore[attr-defined]
    if obj._lengths_resolved("steps"):
        ends = _phase_ends(owner, obj.steps, obj.pct_start, obj.three_phase)  # type: ignore[attr-defined]
        obj._set("_ends", ends)


@register("one_cycle")
@dataclass(frozen=True, slots=True)
class OneCycle(Schedule):
    """See :func:`one_cycle`."""

    _positional = 1
    _lengths = ("steps",)
    peak: float
    steps: Length = 1
    pct_start: float = 0.3
    div_factor: float = 25.0
    final_div_factor: float = 1e4
    anneal: str = "cos"
    three_phase: bool = False
    #: The phase end steps, once ``steps`` is bound.
    _ends: tuple[float, ...] = field(init=False, repr=False, compare=False, default=())

    def _validate(self) -> None:
        owner = "one_cycle"
        self._set("peak", check.positive(owner, "peak", self.peak))
        self._set("div_factor", check.positive(owner, "div_factor", self.div_factor))
        self._set(
            "final_div_factor", check.positive(owner, "final_div_factor", self.final_div_factor)
        )
        initial = self.peak / self.div_factor
        if not math.isfinite(initial) or not math.isfinite(initial / self.final_div_factor):
            raise ScheduleValueError(
                f"{owner}: peak / div_factor and peak / div_factor / final_div_factor must be "
                f"finite, got peak={self.peak!r}, div_factor={self.div_factor!r}, "
                f"final_div_factor={self.final_div_factor!r}"
            )
        _check_common(owner, self)

    def _eval(self, t: FloatArray, xp: Namespace) -> FloatArray:
        initial = self.peak / self.div_factor
        low = initial / self.final_div_factor
        values = (
            (initial, self.peak, initial, low) if self.three_phase else (initial, self.peak, low)
        )
        return one_cycle_curve(t, self._ends, values, self.anneal, xp)

    def _magnitude(self) -> float:
        return max(self.peak, self.peak / self.div_factor)

    def _duration(self) -> float | None:
        return self.steps - 1  # type: ignore[operator]


def one_cycle(
    peak: float,
    *,
    steps: Length,
    pct_start: float = 0.3,
    div_factor: float = 25.0,
    final_div_factor: float = 1e4,
    anneal: str = "cos",
    three_phase: bool = False,
) -> OneCycle:
    """The one-cycle learning rate (Smith & Topin, 2018), with torch ``OneCycleLR`` semantics.

    Values: ``initial = peak / div_factor``, ``low = initial / final_div_factor``. Two phases:
    ``initial -> peak`` over steps ``[0, pct_start*steps - 1]``, then ``peak -> low`` until
    ``steps - 1``. Three phases: ``initial -> peak``, ``peak -> initial`` until
    ``2*pct_start*steps - 2``, ``initial -> low`` until ``steps - 1``. Within a phase from
    ``a`` to ``b`` at fraction ``f``: ``w = (1 + cos(pi f)) / 2`` (``anneal="cos"``) or
    ``1 - f`` (``"linear"``), ``v = a * w + b * (1 - w)``.

    ``torch.optim.lr_scheduler.OneCycleLR(max_lr=peak, total_steps=steps, ...)`` step for step,
    except that torch raises past ``total_steps`` while lrkit holds ``low``. Pair it with
    :func:`one_cycle_momentum` for the inverse momentum (or Adam beta1) cycle.

    Raises:
        ValueError: ``peak``/factors not > 0, ``pct_start`` outside (0, 1), a phase shorter
            than one step, unknown ``anneal``.

    Holds ``low`` from step ``steps - 1`` on.

    >>> s = one_cycle(1.0, steps=100, pct_start=0.25, div_factor=10.0)
    >>> round(s(0), 6), round(s(24), 6)
    (0.1, 1.0)
    """
    return OneCycle(peak, steps, pct_start, div_factor, final_div_factor, anneal, three_phase)


@register("one_cycle_momentum")
@dataclass(frozen=True, slots=True)
class OneCycleMomentum(Schedule):
    """See :func:`one_cycle_momentum`."""

    _lengths = ("steps",)
    steps: Length
    low: float = 0.85
    high: float = 0.95
    pct_start: float = 0.3
    anneal: str = "cos"
    three_phase: bool = False
    #: The phase end steps, once ``steps`` is bound.
    _ends: tuple[float, ...] = field(init=False, repr=False, compare=False, default=())

    def _validate(self) -> None:
        owner = "one_cycle_momentum"
        low = check.real(owner, "low", self.low)
        high = check.real(owner, "high", self.high)
        if low > high:
            raise ScheduleValueError(
                f"{owner}: low must be <= high, got low={self.low!r}, high={self.high!r}"
            )
        self._set("low", low)
        self._set("high", high)
        _check_common(owner, self)

    def _eval(self, t: FloatArray, xp: Namespace) -> FloatArray:
        values = (
            (self.high, self.low, self.high, self.high)
            if self.three_phase
            else (self.high, self.low, self.high)
        )
        return one_cycle_curve(t, self._ends, values, self.anneal, xp)

    def _duration(self) -> float | None:
        return self.steps - 1  # type: ignore[operator]


def one_cycle_momentum(
    *,
    steps: Length,
    low: float = 0.85,
    high: float = 0.95,
    pct_start: float = 0.3,
    anneal: str = "cos",
    three_phase: bool = False,
) -> OneCycleMomentum:
    """The momentum (or Adam beta1) that mirrors :func:`one_cycle`: ``high -> low -> high``.

    Same phases as :func:`one_cycle` with the same arguments; the values are ``high -> low``
    then ``low -> high`` (three phases: ``high -> low -> high -> high``), as
    ``OneCycleLR(cycle_momentum=True, base_momentum=low, max_momentum=high)`` sets them.

    Raises:
        ValueError: ``low > high``, and as :func:`one_cycle`.

    Holds ``high`` from step ``steps - 1`` on.

    >>> s = one_cycle_momentum(steps=100, pct_start=0.25)
    >>> s(0), round(s(24), 6), s(99)
    (0.95, 0.85, 0.95)
    """
    return OneCycleMomentum(steps, low, high, pct_start, anneal, three_phase)

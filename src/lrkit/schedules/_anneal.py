"""Annealing between values: linear, cosine, constant pieces and interpolation through points."""

from __future__ import annotations

from collections.abc import Sequence as Seq
from dataclasses import dataclass, field

import numpy as np

from lrkit.schedules import _check as check
from lrkit.schedules._arrays import Namespace, is_numpy, lookup
from lrkit.schedules._base import FloatArray, Schedule, register
from lrkit.schedules._errors import ScheduleValueError
from lrkit.schedules._units import Length, check_length, check_lengths


def mix(start: float, end: float, w: FloatArray) -> FloatArray:
    """``start * w + end * (1 - w)``: exact at both ends (w = 1 gives start, w = 0 gives end)."""
    return start * w + end * (1.0 - w)


def cos_weight(frac: FloatArray, xp: Namespace) -> FloatArray:
    """Half-cosine weight going from 1 at ``frac = 0`` to 0 at ``frac = 1``."""
    return 0.5 * (1.0 + xp.cos(np.pi * frac))


@register("linear")
@dataclass(frozen=True, slots=True)
class Linear(Schedule):
    """See :func:`linear`."""

    _positional = 2
    _lengths = ("steps",)
    start: float
    end: float
    steps: Length

    def _validate(self) -> None:
        self._set("start", check.real("linear", "start", self.start))
        self._set("end", check.real("linear", "end", self.end))
        self._set("steps", check_length("linear", "steps", self.steps))

    def _eval(self, t: FloatArray, xp: Namespace) -> FloatArray:
        steps = float(self.steps)  # type: ignore[arg-type]
        return mix(self.start, self.end, 1.0 - xp.minimum(t, steps) / steps)

    def _duration(self) -> float | None:
        return self.steps  # type: ignore[return-value]


def linear(start: float, end: float, *, steps: Length) -> Linear:
    """Straight line from ``start`` to ``end``: ``w = 1 - min(t, steps) / steps``,
    ``v(t) = start * w + end * (1 - w)``.

    ``torch.optim.lr_scheduler.LinearLR(start_factor, end_factor, total_iters)`` is
    ``linear(base * start_factor, base * end_factor, steps=total_iters)``.

    Raises:
        ValueError: ``steps`` not positive, values not finite.

    Holds ``end`` from step ``steps`` on.

    >>> linear(0.0, 1.0, steps=100)(25)
    0.25
    """
    return Linear(start, end, steps)


@register("cosine")
@dataclass(frozen=True, slots=True)
class Cosine(Schedule):
    """See :func:`cosine`."""

    _positional = 2
    _lengths = ("steps",)
    start: float
    end: float = 0.0
    steps: Length = 1

    def _validate(self) -> None:
        self._set("start", check.real("cosine", "start", self.start))
        self._set("end", check.real("cosine", "end", self.end))
        self._set("steps", check_length("cosine", "steps", self.steps))

    def _eval(self, t: FloatArray, xp: Namespace) -> FloatArray:
        steps = float(self.steps)  # type: ignore[arg-type]
        return mix(self.start, self.end, cos_weight(xp.minimum(t, steps) / steps, xp))

    def _duration(self) -> float | None:
        return self.steps  # type: ignore[return-value]


def cosine(start: float, end: float = 0.0, *, steps: Length) -> Cosine:
    """Half-cosine from ``start`` to ``end`` (the floor when decaying):
    ``w = (1 + cos(pi * min(t, steps) / steps)) / 2``, ``v(t) = start * w + end * (1 - w)``.

    ``torch.optim.lr_scheduler.CosineAnnealingLR(T_max=steps, eta_min=end)`` for
    ``t <= T_max`` (torch keeps following the cosine back up after ``T_max``; lrkit holds
    ``end``). Keras ``CosineDecay(initial, decay_steps, alpha)`` is
    ``cosine(initial, alpha * initial, steps=decay_steps)``; optax ``cosine_decay_schedule``
    likewise. SGDR: Loshchilov & Hutter, 2017.

    Raises:
        ValueError: ``steps`` not positive, values not finite.

    Holds ``end`` from step ``steps`` on.

    >>> cosine(1.0, 0.0, steps=100)(50)
    0.5
    """
    return Cosine(start, end, steps)


@register("piecewise")
@dataclass(frozen=True, slots=True)
class Piecewise(Schedule):
    """See :func:`piecewise`."""

    _positional = 1
    _lengths = ("boundaries",)
    values: tuple[float, ...]
    boundaries: tuple[Length, ...]
    # Arrays for _eval, built once at construction (the hot path only indexes them).
    _bounds: FloatArray | None = field(init=False, repr=False, compare=False, default=None)
    _values: FloatArray | None = field(init=False, repr=False, compare=False, default=None)

    def _validate(self) -> None:
        owner = "piecewise"
        values = check.reals(owner, "values", self.values)
        bounds = check_lengths(owner, "boundaries", self.boundaries)
        if len(values) != len(bounds) + 1:
            raise ScheduleValueError(
                f"{owner}: values must have one more entry than boundaries, got "
                f"{len(values)} values and {len(bounds)} boundaries"
            )
        self._set("values", values)
        self._set("boundaries", bounds)
        if self._lengths_resolved("boundaries"):
            check.increasing(owner, "boundaries", bounds)  # type: ignore[arg-type]
            self._set("_bounds", np.asarray(bounds, dtype=np.float64))
            self._set("_values", np.asarray(values, dtype=np.float64))

    def _eval(self, t: FloatArray, xp: Namespace) -> FloatArray:
        if not is_numpy(xp):
            return lookup(xp, t, self.boundaries, self.values)  # type: ignore[arg-type]
        return self._values[np.searchsorted(self._bounds, t, side="right")]  # type: ignore[index,call-overload]

    def _duration(self) -> float | None:
        return self.boundaries[-1] if self.boundaries else 0  # type: ignore[return-value]


def piecewise(values: Seq[float], *, boundaries: Seq[Length]) -> Piecewise:
    """Constant pieces: ``v(t) = values[i]`` for ``boundaries[i-1] <= t < boundaries[i]``.

    A value changes at its boundary step, like ``MultiStepLR``. Keras'
    ``PiecewiseConstantDecay`` switches one step later (``t > boundary``): pass
    ``boundaries=[b + 1 for b in keras_boundaries]`` to reproduce it. optax's
    ``piecewise_constant_schedule`` multiplies scales; pass their running products as values.

    Raises:
        ValueError: ``len(values) != len(boundaries) + 1``, boundaries not increasing.

    Holds ``values[-1]`` from the last boundary on.

    >>> piecewise([1.0, 0.1, 0.01], boundaries=[100, 200])(150)
    0.1
    """
    return Piecewise(
        check.sequence_arg("piecewise", "values", values),  # type: ignore[arg-type]
        check.sequence_arg("piecewise", "boundaries", boundaries),  # type: ignore[arg-type]
    )


@register("interpolate")
@dataclass(frozen=True, slots=True)
class Interpolate(Schedule):
    """See :func:`interpolate`."""

    _positional = 2
    _lengths = ("steps",)
    steps: tuple[Length, ...]
    values: tuple[float, ...]
    kind: str = "linear"
    # Arrays for _eval, built once at construction.
    _xs: FloatArray | None = field(init=False, repr=False, compare=False, default=None)
    _ys: FloatArray | None = field(init=False, repr=False, compare=False, default=None)

    def _validate(self) -> None:
        owner = "interpolate"
        steps = check_lengths(owner, "steps", self.steps, allow_zero=True)
        values = check.reals(owner, "values", self.values)
        if len(steps) != len(values):
            raise ScheduleValueError(
                f"{owner}: steps and values must have the same length, got {len(steps)} steps "
                f"and {len(values)} values"
            )
        self._set("steps", steps)
        self._set("values", values)
        self._set("kind", check.choice(owner, "kind", self.kind, ("linear", "cosine")))
        if self._lengths_resolved("steps"):
            check.increasing(owner, "steps", steps)  # type: ignore[arg-type]
            self._set("_xs", np.asarray(steps, dtype=np.float64))
            self._set("_ys", np.asarray(values, dtype=np.float64))

    def _eval(self, t: FloatArray, xp: Namespace) -> FloatArray:
        xs: FloatArray = self._xs  # type: ignore[assignment]  # set once bound
        ys: FloatArray = self._ys  # type: ignore[assignment]
        if len(xs) == 1:
            return xp.full_like(t, self.values[0])
        if is_numpy(xp):  # the segment of each step by binary search
            i = np.clip(np.searchsorted(xs, t, side="right") - 1, 0, len(xs) - 2)
            return self._segment(t, xs[i], xs[i + 1], ys[i], ys[i + 1], xp)  # type: ignore[arg-type]
        # No index arrays on other namespaces: each segment over all steps, picked by where.
        x, y = [float(k) for k in self.steps], self.values  # type: ignore[arg-type]
        out = self._segment(t, x[0], x[1], y[0], y[1], xp)  # type: ignore[arg-type]
        for k in range(1, len(x) - 1):
            seg = self._segment(t, x[k], x[k + 1], y[k], y[k + 1], xp)  # type: ignore[arg-type]
            out = xp.where(t >= x[k], seg, out)
        return out

    def _segment(
        self, t: FloatArray, x0: float, x1: float, y0: float, y1: float, xp: Namespace
    ) -> FloatArray:
        """From ``(x0, y0)`` to ``(x1, y1)`` (arrays of ends on numpy, numbers elsewhere)."""
        frac = xp.clip((t - x0) / (x1 - x0), 0.0, 1.0)
        w = 1.0 - frac if self.kind == "linear" else cos_weight(frac, xp)
        return mix(y0, y1, w)

    def _duration(self) -> float | None:
        return self.steps[-1]  # type: ignore[return-value]


def interpolate(steps: Seq[Length], values: Seq[float], *, kind: str = "linear") -> Interpolate:
    """Through the points ``(steps[i], values[i])``, linearly or by half-cosines between them.

    Between ``steps[i]`` and ``steps[i+1]``, with ``f = (t - steps[i]) / (steps[i+1] - steps[i])``:
    ``w = 1 - f`` (linear) or ``w = (1 + cos(pi f)) / 2`` (cosine) and
    ``v(t) = values[i] * w + values[i+1] * (1 - w)``. Like ``numpy.interp`` and fastai's
    ``combine_scheds`` of ``SchedLin`` / ``SchedCos`` pieces; optax's
    ``piecewise_interpolate_schedule``.

    Raises:
        ValueError: lengths differ, steps not strictly increasing, unknown ``kind``.

    Holds ``values[0]`` before the first point and ``values[-1]`` after the last.

    >>> interpolate([0, 100, 200], [0.0, 1.0, 0.5])(150)
    0.75
    """
    return Interpolate(
        check.sequence_arg("interpolate", "steps", steps),  # type: ignore[arg-type]
        check.sequence_arg("interpolate", "values", values),  # type: ignore[arg-type]
        kind,
    )

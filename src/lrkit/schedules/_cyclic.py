"""Periodic families: cosine with warm restarts (SGDR) and cyclical learning rates (CLR)."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from lrkit.schedules import _check as check
from lrkit.schedules._anneal import cos_weight, mix
from lrkit.schedules._arrays import (
    Namespace,
    as_float,
    errstate,
    finite_cap,
    floor_div,
    is_numpy,
    power,
)
from lrkit.schedules._base import FloatArray, Schedule, register
from lrkit.schedules._errors import ScheduleValueError
from lrkit.schedules._units import Length, check_length

#: A period start computed as ``S`` is reached from ``S * below`` on: 4 ulps of slack in the
#: steps' dtype (float64: ``_BELOW``; a float32 array needs its own, as ``_BELOW`` rounds to 1).
_SLACK_ULPS = 4
_BELOW = 1.0 - _SLACK_ULPS * float(np.finfo(np.float64).eps)


def _below(xp: Namespace, t: FloatArray) -> float:
    """``1 - 4 ulps`` in the dtype of ``t`` (``_BELOW`` on numpy, whose steps are float64)."""
    return _BELOW if is_numpy(xp) else 1.0 - _SLACK_ULPS * float(xp.finfo(t.dtype).eps)


def _in_dtype(xp: Namespace, t: FloatArray, x: float) -> float:
    """``x >= 0`` as the dtype of ``t`` holds it: rounded there when numpy has that dtype
    (float16/32/64), at most its largest finite value (numpy steps are float64: ``x`` itself)."""
    if is_numpy(xp):
        return x
    largest = finite_cap(xp, t, check.MAX_VALUE)
    info = xp.finfo(t.dtype)
    for dtype in (np.float16, np.float32, np.float64):
        ref = np.finfo(dtype)
        if info.bits == ref.bits and float(info.eps) == float(ref.eps) and x <= largest:
            return float(dtype(x))
    return min(x, largest)


def _huge(xp: Namespace, t: FloatArray) -> float:
    """``1 / smallest normal`` of the dtype of ``t``: the largest number whose reciprocal is
    not subnormal."""
    return 1.0 / float(xp.finfo(t.dtype).smallest_normal)


def _check_peak_floor(owner: str, peak: object, floor: object) -> tuple[float, float]:
    p = check.real(owner, "peak", peak)
    f = check.real(owner, "floor", floor)
    if p < f:
        raise ScheduleValueError(
            f"{owner}: peak must be >= floor, got peak={peak!r}, floor={floor!r}"
        )
    return p, f


@register("cosine_restarts")
@dataclass(frozen=True, slots=True)
class CosineRestarts(Schedule):
    """See :func:`cosine_restarts`."""

    _positional = 2
    _lengths = ("steps",)
    peak: float
    floor: float = 0.0
    steps: Length = 1
    period_mult: float = 1.0
    peak_mult: float = 1.0

    def _validate(self) -> None:
        owner = "cosine_restarts"
        peak, floor = _check_peak_floor(owner, self.peak, self.floor)
        self._set("peak", peak)
        self._set("floor", floor)
        self._set("steps", check_length(owner, "steps", self.steps))
        pm = check.real(owner, "period_mult", self.period_mult)
        if pm < 1:
            raise ScheduleValueError(
                f"{owner}: period_mult must be >= 1, got period_mult={self.period_mult!r}"
            )
        self._set("period_mult", pm)
        self._set(
            "peak_mult", check.in_range(owner, "peak_mult", self.peak_mult, 0, 1, low_open=True)
        )

    def cycle_index(
        self, t: FloatArray, xp: Namespace = np
    ) -> tuple[FloatArray, FloatArray, FloatArray]:
        """For steps ``t``: the restart index ``i``, the start of that period and its length."""
        first = float(self.steps)  # type: ignore[arg-type]
        m = self.period_mult
        if m == 1.0:
            i = floor_div(xp, t, first)
            return i, i * first, xp.full_like(t, first)
        # t * (m - 1) / first overflows for a huge period_mult; capping t there changes no
        # period index, as period i starts beyond the largest float once m ** i does.
        # (A float32 array caps both factors at its own largest float: (m - 1) / steps there
        # can be inf, and 0 * inf NaN.)
        # The cap is 4 ulps short of largest / rate, so that its product with rate cannot
        # round up to inf (then i = inf, and NaN from the loop below).
        largest = finite_cap(xp, t, check.MAX_VALUE)
        below = _below(xp, t)
        rate = min((m - 1.0) / first, largest)
        x = xp.minimum(t, largest / max(rate, 1.0) * below) * rate
        i = xp.floor(xp.log1p(x) / math.log(m))
        # m ** i (not expm1) keeps the period starts exact for integer period_mult; the next
        # start uses m ** i * m, exact too, so the power is computed once per pass. The ratio
        # (m ** i - 1) / (m - 1) is taken first, so that the first restart is ``steps``
        # exactly for any m (steps * (m - 1) / (m - 1) can round to steps + 1 ulp and miss it).
        # The logarithm can be off by one at period boundaries: move i until
        # start(i) <= t < start(i + 1), one partition of the time axis; a start within a few
        # ulps above t counts as reached (its rounding, not the formula, put it there).
        # (Other namespaces always make the three passes: testing for early exit would sync.)
        # The ratio is taken with m as the array holds it (float32: rounded), so that
        # (m ** 1 - 1) / (m - 1) is 1 exactly there too: m ** i rounds m, m - 1.0 would not.
        # Off numpy m is also kept below 1 / smallest normal: XLA divides by (m - 1) as a
        # multiplication by its reciprocal, which would flush to 0. (Only the start of the
        # third period moves, from beyond that bound to it: 2**126 steps for float32.)
        m_arr = m if is_numpy(xp) else min(_in_dtype(xp, t, m), _huge(xp, t))
        with errstate(xp, over="ignore"):  # a next start past the largest float is inf
            for _ in range(3):
                grow = m_arr**i
                start = first * ((grow - 1.0) / (m_arr - 1.0))
                low = t < start * below
                high = t >= first * ((grow * m_arr - 1.0) / (m_arr - 1.0)) * below
                if is_numpy(xp) and not (low.any() or high.any()):
                    break
                i = i - as_float(xp, low, t) + as_float(xp, high, t)
            else:
                grow = m_arr**i
                start = first * ((grow - 1.0) / (m_arr - 1.0))
            length = first * grow  # inf for a period past the largest float: value peak
        return i, start, length

    def _eval(self, t: FloatArray, xp: Namespace) -> FloatArray:
        i, start, length = self.cycle_index(t, xp)
        w = cos_weight(xp.clip((t - start) / length, 0.0, 1.0), xp)
        if self.peak_mult != 1.0:
            w = w * power(xp, self.peak_mult, i)
        # floor + (peak - floor) * w, written so that peak - floor cannot overflow.
        return mix(self.peak, self.floor, w)

    def _duration(self) -> float | None:
        return None


def cosine_restarts(
    peak: float,
    floor: float = 0.0,
    *,
    steps: Length,
    period_mult: float = 1.0,
    peak_mult: float = 1.0,
) -> CosineRestarts:
    """Cosine annealing with warm restarts (SGDR; Loshchilov & Hutter, 2017).

    Period ``i`` (from 0) lasts ``T_i = steps * period_mult ** i`` steps and starts at
    ``S_i = steps * (period_mult ** i - 1) / (period_mult - 1)`` (``i * steps`` when
    ``period_mult = 1``). Inside it, with ``f = (t - S_i) / T_i``:
    ``v(t) = floor + (peak - floor) * peak_mult ** i * (1 + cos(pi f)) / 2``.

    ``torch.optim.lr_scheduler.CosineAnnealingWarmRestarts(T_0=steps, T_mult, eta_min=floor)``
    (torch accepts integer ``T_mult`` only; lrkit any float >= 1). Keras
    ``CosineDecayRestarts(peak, first_decay_steps=steps, t_mul, m_mul, alpha=0)`` is this with
    ``floor=0``; with ``alpha > 0`` Keras shrinks the floor together with the peak.

    Raises:
        ValueError: ``peak < floor``, ``steps`` not positive, ``period_mult < 1``,
            ``peak_mult`` outside (0, 1].

    Cyclic by definition: restarts forever (no duration).

    >>> s = cosine_restarts(1.0, 0.0, steps=10, period_mult=2.0, peak_mult=0.5)
    >>> s(0), s(10), s(30)
    (1.0, 0.5, 0.25)
    """
    return CosineRestarts(peak, floor, steps, period_mult, peak_mult)


@register("cyclic")
@dataclass(frozen=True, slots=True)
class Cyclic(Schedule):
    """See :func:`cyclic`."""

    _positional = 2
    _lengths = ("steps_up", "steps_down")
    floor: float
    peak: float
    steps_up: Length = 1
    steps_down: Length | None = None
    mode: str = "triangular"
    gamma: float = 1.0

    def _validate(self) -> None:
        owner = "cyclic"
        peak, floor = _check_peak_floor(owner, self.peak, self.floor)
        self._set("peak", peak)
        self._set("floor", floor)
        self._set("steps_up", check_length(owner, "steps_up", self.steps_up))
        if self.steps_down is not None:
            self._set("steps_down", check_length(owner, "steps_down", self.steps_down))
        self._set(
            "mode",
            check.choice(owner, "mode", self.mode, ("triangular", "triangular2", "exp_range")),
        )
        self._set("gamma", check.in_range(owner, "gamma", self.gamma, 0, 1, low_open=True))

    def _eval(self, t: FloatArray, xp: Namespace) -> FloatArray:
        up = float(self.steps_up)  # type: ignore[arg-type]
        down = up if self.steps_down is None else float(self.steps_down)  # type: ignore[arg-type]
        total = up + down
        ratio = up / total
        if is_numpy(xp):
            cycle = xp.floor(1.0 + t / total)
            x = 1.0 + t / total - cycle
        else:  # the position in the cycle from the remainder: no cancellation in float32
            cycle = 1.0 + floor_div(xp, t, total)
            x = (t - (cycle - 1.0) * total) / total
        height = xp.where(x <= ratio, x / ratio, (x - 1.0) / (ratio - 1.0))
        if self.mode == "triangular2":
            height = height * 0.5 ** (cycle - 1.0)  # (2 ** (c - 1) overflows; this underflows)
        elif self.mode == "exp_range":
            height = height * power(xp, self.gamma, t)
        # floor + (peak - floor) * height, written so that peak - floor cannot overflow.
        return mix(self.peak, self.floor, height)

    def _duration(self) -> float | None:
        return None


def cyclic(
    floor: float,
    peak: float,
    *,
    steps_up: Length,
    steps_down: Length | None = None,
    mode: str = "triangular",
    gamma: float = 1.0,
) -> Cyclic:
    """Cyclical learning rate (CLR; Smith, 2017) between ``floor`` and ``peak``.

    A cycle is ``steps_up`` steps rising then ``steps_down`` (default ``steps_up``) falling.
    With ``L = steps_up + steps_down``, ``c = floor(1 + t / L)`` (the cycle, from 1),
    ``x = 1 + t / L - c`` and ``r = steps_up / L``: ``h = x / r`` if ``x <= r`` else
    ``(x - 1) / (r - 1)``, and ``v(t) = floor + (peak - floor) * h * s`` where ``s`` is 1
    (``triangular``), ``1 / 2 ** (c - 1)`` (``triangular2``) or ``gamma ** t`` (``exp_range``).
    This is ``torch.optim.lr_scheduler.CyclicLR(base_lr=floor, max_lr=peak, step_size_up,
    step_size_down, mode, gamma)``.

    Raises:
        ValueError: ``peak < floor``, lengths not positive, unknown ``mode``, ``gamma``
            outside (0, 1].

    Cyclic by definition (no duration).

    >>> s = cyclic(0.1, 1.0, steps_up=10)
    >>> s(0), s(10), s(20)
    (0.1, 1.0, 0.1)
    """
    return Cyclic(floor, peak, steps_up, steps_down, mode, gamma)

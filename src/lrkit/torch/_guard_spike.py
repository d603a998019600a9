"""The guard's spike rule: a value far above the recent values, in robust units (pure Python).

With ``h`` the last good values (losses or gradient norms), ``m = median(h)``,
``mad = median(|h - m|)`` and ``M = median(|h|)``::

    scale = max(1.4826 * mad, floor_frac * M)
    spike  <=>  value - m > max(factor * scale, min_delta)

``1.4826 * mad`` estimates the standard deviation of normal noise and ignores outliers in
``h``; ``floor_frac * M`` keeps a quiet run (full batch, tiny noise) from calling every small rise
a spike; ``min_delta`` is an absolute rise below which nothing is a spike (a run whose losses are
all ``0.0``). The rule depends on differences only, so it is right for negative losses (a
Gaussian negative log-likelihood) and does not change when a constant is added to every loss.

:func:`is_spike` applies the rule to a list; :class:`SpikeWindow` is what the guard keeps: the
window in arrival order and sorted, so that judging a value costs a lookup of the median (the MAD
only when the rise could be a spike), with the same decisions as :func:`is_spike`.
"""

from __future__ import annotations

import math
import statistics
from bisect import bisect_left, insort
from collections import deque
from collections.abc import Iterable, Sequence

#: 1 / Phi^-1(3/4): MAD times this estimates the standard deviation of normal data.
MAD_TO_SIGMA = 1.4826


def robust_scale(history: Sequence[float], floor_frac: float) -> tuple[float, float]:
    """``(median, scale)`` of ``history`` as defined in the module docstring."""
    ordered = sorted(history)
    m = _median_sorted(ordered)
    mad = statistics.median([abs(x - m) for x in ordered])
    # median(|h|) is the median itself when no value is negative (the usual case: one sort less)
    typical = m if ordered[0] >= 0 else statistics.median([abs(x) for x in ordered])
    return m, max(MAD_TO_SIGMA * mad, floor_frac * typical)


def _median_sorted(xs: Sequence[float]) -> float:
    n = len(xs)
    return xs[n // 2] if n % 2 else (xs[n // 2 - 1] + xs[n // 2]) / 2


def is_spike(
    value: float,
    history: Sequence[float],
    *,
    factor: float | None,
    floor_frac: float,
    min_delta: float,
    min_history: int,
) -> bool:
    """True when ``value`` is a spike above ``history`` (see the module docstring).

    False when the rule is off (``factor`` None), the history is shorter than ``min_history``
    or ``value`` is not finite (that is judged apart, as a non-finite value).

    >>> is_spike(1e-9, [0.0] * 10, factor=8.0, floor_frac=0.1, min_delta=1e-8, min_history=5)
    False
    >>> is_spike(-1.0, [-3.0, -2.5, -3.2, -2.8, -3.1], factor=8.0, floor_frac=0.1,
    ...          min_delta=1e-8, min_history=5)
    False
    >>> is_spike(300.0, [-3.0, -2.5, -3.2, -2.8, -3.1], factor=8.0, floor_frac=0.1,
    ...          min_delta=1e-8, min_history=5)
    True
    """
    if factor is None or len(history) < min_history or not math.isfinite(value):
        return False
    m, scale = robust_scale(history, floor_frac)
    return value - m > max(factor * scale, min_delta)


def robust_z(value: float, history: Sequence[float], floor_frac: float) -> float:
    """``(value - median) / scale`` (inf when the scale is 0 and the value is above the median)."""
    m, scale = robust_scale(history, floor_frac)
    d = value - m
    if scale > 0:
        return d / scale
    return math.inf if d > 0 else (0.0 if d == 0 else -math.inf)


class SpikeWindow:
    """The last ``size`` good values, in arrival order (:attr:`values`) and sorted, for the rule.

    :meth:`is_spike` decides exactly as :func:`is_spike` on ``list(values)`` does, without
    sorting per call: the median is read from the sorted copy (kept with ``insort``: O(log n)
    search and one memmove per value), and the MAD, the one O(n log n) part, is computed only when
    the rise above the median exceeds both ``min_delta`` and ``factor * floor_frac * M`` (``M``
    the median |value|), lower bounds of the threshold: below them nothing is a spike, whatever
    the MAD.

    >>> w = SpikeWindow(3, [1.0, 5.0, 2.0])
    >>> w.push(4.0), list(w.values), w.median()
    (1.0, [5.0, 2.0, 4.0], 4.0)
    >>> w.is_spike(9.0, factor=1.0, floor_frac=0.1, min_delta=0.0, min_history=3)
    True
    """

    __slots__ = ("_sorted", "values")

    def __init__(self, size: int, values: Iterable[float] = ()) -> None:
        self.values: deque[float] = deque(maxlen=size)
        self._sorted: list[float] = []
        for v in values:
            self.push(v)

    def __len__(self) -> int:
        return len(self._sorted)

    def copy(self) -> SpikeWindow:
        """An independent copy (values and sorted order)."""
        out = SpikeWindow.__new__(SpikeWindow)
        out.values = self.values.copy()
        out._sorted = self._sorted.copy()
        return out

    def push(self, value: float) -> float | None:
        """Append a finite ``value``; returns the oldest value it pushed out (None: none)."""
        vals, s = self.values, self._sorted
        old = None
        if len(vals) == vals.maxlen:
            old = vals[0]
            del s[bisect_left(s, old)]  # an element equal to it (-0.0 == 0.0 changes nothing)
        vals.append(value)
        insort(s, value)
        return old

    def median(self) -> float:
        """The median of the values (the window must not be empty)."""
        return _median_sorted(self._sorted)

    def is_spike(
        self,
        value: float,
        *,
        factor: float | None,
        floor_frac: float,
        min_delta: float,
        min_history: int,
    ) -> bool:
        """:func:`is_spike` of ``value`` against :attr:`values` (same arguments, same answer)."""
        s = self._sorted
        n = len(s)
        if factor is None or n < min_history or not math.isfinite(value):
            return False
        m = s[n // 2] if n % 2 else (s[n // 2 - 1] + s[n // 2]) / 2
        rise = value - m
        if rise <= min_delta:  # the threshold is max(factor * scale, min_delta) >= min_delta
            return False
        typical = m if s[0] >= 0 else statistics.median([abs(x) for x in s])
        # scale >= floor_frac * typical, and x -> factor * x rounds monotonically: a lower bound
        if rise <= factor * (floor_frac * typical):
            return False
        mad = statistics.median([abs(x - m) for x in s])
        scale = max(MAD_TO_SIGMA * mad, floor_frac * typical)
        return rise > max(factor * scale, min_delta)

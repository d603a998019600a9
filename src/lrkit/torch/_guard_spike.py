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
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence

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

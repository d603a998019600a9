"""Learning-rate range test analysis: smoothing, divergence, and suggestion rules (numpy only).

Each rule is a small pure function of the rates and the smoothed losses, as in fastai's
``lr_find`` suggestion functions; :func:`suggest` runs them all and picks one with a confidence.

>>> rates = np.geomspace(1e-4, 1.0, 60)
>>> x = np.log10(rates)
>>> losses = 2.0 - 1.5 / (1 + np.exp(-3 * (x + 2.5))) + np.exp(4 * (x + 0.5))
>>> s = suggest(rates, losses, beta=0.0)
>>> s.method, 1e-3 < s.rate < 1e-1
('minimum/10', True)
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from numbers import Real

import numpy as np
import numpy.typing as npt

FloatArray = npt.NDArray[np.float64]

#: The rules, in the order they are reported.
RULES = ("valley", "steepest", "minimum/10")


def _beta(owner: str, beta: object) -> float:
    if isinstance(beta, bool) or not isinstance(beta, Real) or not 0.0 <= float(beta) < 1.0:
        raise ValueError(f"{owner}: beta must be a number in [0, 1), got beta={beta!r}")
    return float(beta)


def _curve(
    owner: str,
    rates: npt.ArrayLike,
    losses: npt.ArrayLike,
    *,
    min_points: int = 2,
    finite_losses: bool = True,
) -> tuple[FloatArray, FloatArray]:
    """Rates and losses as equal-length float arrays, validated; with ``finite_losses=False``
    non-finite losses are allowed (they mark divergence)."""
    r = np.asarray(rates, dtype=np.float64).reshape(-1)
    y = np.asarray(losses, dtype=np.float64).reshape(-1)
    if r.shape != y.shape:
        raise ValueError(
            f"{owner}: rates and losses must have the same length, got {r.size} and {y.size}"
        )
    if r.size < min_points:
        raise ValueError(f"{owner}: need at least {min_points} points, got {r.size}")
    if not (np.all(np.isfinite(r)) and np.all(r > 0)):
        raise ValueError(f"{owner}: rates must be finite and > 0, got rates={r!r}")
    if finite_losses and not np.all(np.isfinite(y)):
        raise ValueError(f"{owner}: losses must be finite (cut at divergence first)")
    return r, y


def smooth(losses: npt.ArrayLike, beta: float = 0.98) -> FloatArray:
    """Debiased exponential moving average of ``losses``.

    ``a_i = beta * a_{i-1} + (1 - beta) * x_i`` from ``a_{-1} = 0``, reported as
    ``a_i / (1 - beta**(i + 1))`` so the first values are not pulled towards 0 (Adam's bias
    correction). ``beta = 0`` returns the losses unchanged. Non-finite values propagate.

    Raises:
        ValueError: ``beta`` outside [0, 1).

    >>> smooth([1.0, 1.0, 1.0], 0.9).tolist()
    [1.0, 1.0, 1.0]
    """
    b = _beta("smooth", beta)
    x = np.asarray(losses, dtype=np.float64).reshape(-1)
    out = np.empty_like(x)
    avg = 0.0
    for i, v in enumerate(x):
        avg = b * avg + (1.0 - b) * v
        out[i] = avg / (1.0 - b ** (i + 1))
    return out


def divergence_index(smoothed: npt.ArrayLike, factor: float = 4.0) -> int | None:
    """First index where the loss diverged: non-finite, or ``> factor * min(smoothed[:i+1])``.

    Raises:
        ValueError: ``factor`` not > 1.

    >>> divergence_index([3.0, 2.0, 1.0, 2.0, 5.0], factor=4.0)
    4
    """
    if isinstance(factor, bool) or not isinstance(factor, Real) or not float(factor) > 1.0:
        raise ValueError(f"divergence_index: factor must be a number > 1, got factor={factor!r}")
    best = math.inf
    for i, v in enumerate(np.asarray(smoothed, dtype=np.float64).reshape(-1)):
        if not math.isfinite(v):
            return i
        best = min(best, v)
        if v > factor * best:
            return i
    return None


def steepest(rates: npt.ArrayLike, smoothed: npt.ArrayLike) -> float:
    """The rate where the loss falls fastest per decade: ``argmin_i dL/d log(r)``.

    With ``g_i = (L_{i+1} - L_i) / (log r_{i+1} - log r_i)`` it returns ``r_i`` for the most
    negative ``g_i`` (fastai's ``steep``).

    >>> steepest([1e-3, 1e-2, 1e-1, 1.0], [2.0, 1.9, 1.0, 0.9])
    0.01
    """
    r, y = _curve("steepest", rates, smoothed)
    g = np.diff(y) / np.diff(np.log(r))
    return float(r[int(np.argmin(g))])


def valley(rates: npt.ArrayLike, smoothed: npt.ArrayLike) -> float:
    """fastai's ``valley`` rule: the longest decreasing run of the loss, two thirds down it.

    The longest (not necessarily contiguous) strictly decreasing subsequence of the losses is
    found; with ``start``/``end`` its first and last index and ``k = (end - start) / 3`` it
    returns ``r[start + int(k) + int(k / 2)]`` (fastai ``valley``, O(n^2) as there; as there
    ``start`` is one before the run's first index, and an index of -1, possible on curves of 2
    or 3 points, is clamped to 0 where fastai wraps to the last rate).

    >>> valley([1e-4, 1e-3, 1e-2, 1e-1, 1.0, 10.0, 100.0], [5, 4, 3, 2, 1, 0.5, 9])
    0.01
    """
    r, y = _curve("valley", rates, smoothed)
    n = y.size
    lds = [1] * n
    max_start = max_end = 0
    for i in range(1, n):
        for j in range(i):
            if y[i] < y[j] and lds[i] < lds[j] + 1:
                lds[i] = lds[j] + 1
            if lds[max_end] < lds[i]:
                max_end = i
                max_start = max_end - lds[max_end]
    sections = (max_end - max_start) / 3
    idx = max_start + int(sections) + int(sections / 2)
    return float(r[min(max(idx, 0), n - 1)])


def minimum_tenth(rates: npt.ArrayLike, smoothed: npt.ArrayLike) -> float:
    """One tenth of the rate at the lowest smoothed loss (fastai's ``minimum``).

    >>> minimum_tenth([0.1, 1.0, 10.0], [2.0, 1.0, 3.0])
    0.1
    """
    r, y = _curve("minimum_tenth", rates, smoothed)
    return float(r[int(np.argmin(y))] / 10.0)


@dataclass(frozen=True)
class Suggestion:
    """A suggested rate, the rule that chose it, a confidence in [0, 1] and every rule's rate."""

    rate: float
    method: str
    confidence: float
    alternatives: dict[str, float] = field(default_factory=dict)
    reasons: tuple[str, ...] = ()

    @property
    def confidence_label(self) -> str:
        """``"high"`` (>= 0.7), ``"medium"`` (>= 0.4) or ``"low"``."""
        return "high" if self.confidence >= 0.7 else "medium" if self.confidence >= 0.4 else "low"


def suggest(
    rates: npt.ArrayLike,
    losses: npt.ArrayLike,
    *,
    beta: float = 0.98,
    diverge_factor: float = 4.0,
    skip_start: int = 0,
    skip_end: int = 0,
    rule: str = "minimum/10",
) -> Suggestion:
    """Smooth the range-test losses, cut at divergence, and suggest a peak learning rate.

    The curve used is ``smooth(losses, beta)[skip_start : d - skip_end]`` where ``d`` is the
    divergence index (or the end). Every rule in :data:`RULES` is computed; ``rule`` picks the
    suggestion (default ``"minimum/10"``: one decade below the rate of the lowest loss; Smith,
    2017; fastai's ``minimum``). These are fastai's rules on a ramp; :func:`lrkit.tune.find_lr`
    suggests with the probe rule (:func:`choose_probe`) by default, which
    ``benchmarks/tune_quality.py`` measured right far more often on tasks it was not tuned on.
    The confidence multiplies three scores in [0, 1]:

    * depth: ``min(1, drop / 0.2)`` with ``drop = (L_0 - L_min) / L_0`` (a range test whose loss
      barely moves says little);
    * agreement: ``1 / (1 + |log10(minimum/10 / steepest)|)``: the fastest fall and the
      minimum tell a consistent story when the former lies near a decade below the latter;
    * shape: 1 if the loss turned up after its minimum (the test saw the edge), else 0.5.

    Raises:
        ValueError: mismatched or too short inputs, rates not > 0, bad ``beta``/factor/rule, or
            fewer than 3 points left after trimming.
    """
    if rule not in RULES:
        raise ValueError(f"suggest: rule must be one of {RULES}, got rule={rule!r}")
    r, y_raw = _curve("suggest", rates, losses, min_points=3, finite_losses=False)
    y = smooth(y_raw, beta)
    d = divergence_index(y, diverge_factor)
    stop = y.size if d is None else d
    for name, value in (("skip_start", skip_start), ("skip_end", skip_end)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise ValueError(f"suggest: {name} must be an integer >= 0, got {name}={value!r}")
    lo, hi = skip_start, stop - skip_end
    if hi - lo < 3:
        raise ValueError(
            f"suggest: fewer than 3 points left after trimming (skip_start={skip_start}, "
            f"skip_end={skip_end}, divergence at {d}, {r.size} points)"
        )
    r, y = r[lo:hi], y[lo:hi]
    alts = {
        "valley": valley(r, y),
        "steepest": steepest(r, y),
        "minimum/10": minimum_tenth(r, y),
    }
    i_min = int(np.argmin(y))
    reasons = []
    drop = (y[0] - y[i_min]) / abs(y[0]) if y[0] != 0 else 0.0
    depth = float(min(1.0, max(0.0, drop / 0.2)))
    gap = abs(math.log10(alts["minimum/10"] / alts["steepest"]))
    agreement = 1.0 / (1.0 + gap)
    turned = d is not None or y[-1] > y[i_min] * 1.05
    shape = 1.0 if turned else 0.5
    if depth < 1.0:
        reasons.append(f"the smoothed loss fell only {100 * drop:.0f}% over the test")
    if not turned:
        reasons.append("the loss never turned up: the range may end too low (raise end)")
    if gap > 1.0:
        reasons.append(f"minimum/10 and steepest disagree by {gap:.1f} decades")
    return Suggestion(
        rate=float(alts[rule]),
        method=rule,
        confidence=round(depth * agreement * shape, 3),
        alternatives=alts,
        reasons=tuple(reasons),
    )


# ---------------------------------------------------------------------------- peak refinement
@dataclass(frozen=True)
class Refinement:
    """The outcome of :func:`refine_peak`: the starting and refined peaks, and every rate tried
    with its loss (``trials``, ascending rate, the start included)."""

    peak: float
    refined: float
    factor: float
    max_steps: int
    trials: tuple[tuple[float, float], ...]

    @property
    def steps(self) -> int:
        """Signed number of factor steps from ``peak`` to ``refined`` (``+1``: one step up)."""
        return round(math.log(self.refined / self.peak) / math.log(self.factor))


def refine_peak(
    peak: float,
    loss_at_peak: float,
    losses_at: Callable[[list[float]], Sequence[float]],
    *,
    factor: float = 2.0,
    max_steps: int = 2,
) -> Refinement:
    """Tune a peak rate by factor steps: try ``peak / factor`` and ``peak * factor``; if the
    better of the two has a strictly lower loss than ``peak``, keep stepping in that direction
    while the loss keeps falling, at most ``max_steps`` steps from ``peak``.

    The rates tried are ``peak * factor**k`` for integer ``k`` with ``|k| <= max_steps``, so the
    result lies in ``[peak / factor**max_steps, peak * factor**max_steps]`` and ``losses_at`` is
    asked about at most ``max_steps + 1`` rates: the first call with the two neighbours (so they
    can be evaluated in parallel), each further call with one rate. A non-finite loss (a run
    that diverged) counts as worse than any finite one; on an exact tie between the two
    neighbours the lower rate is preferred. This is the practitioner's "try a factor of 2 around
    the range test's suggestion", made bounded and reproducible.

    Args:
        peak: the starting rate (e.g. the range test's suggestion), finite and > 0.
        loss_at_peak: the loss already measured at ``peak``.
        losses_at: called with a list of rates, returns their losses in the same order.
        factor: the step between rates tried, > 1.
        max_steps: the most factor steps from ``peak`` in either direction, >= 1.

    Raises:
        ValueError: a bad ``peak``, ``factor`` or ``max_steps``, or ``losses_at`` returning the
            wrong number of losses.

    >>> r = refine_peak(0.1, 1.0, lambda rates: [abs(math.log2(x / 0.35)) for x in rates])
    >>> round(r.refined, 3), r.steps, len(r.trials)
    (0.4, 2, 4)
    >>> refine_peak(0.1, 0.0, lambda rates: [1.0 for _ in rates]).refined
    0.1
    """
    ok = isinstance(peak, Real) and not isinstance(peak, bool) and 0 < float(peak) < math.inf
    if not ok:
        raise ValueError(f"refine_peak: peak must be a finite number > 0, got peak={peak!r}")
    f_ok = (
        isinstance(factor, Real) and not isinstance(factor, bool) and 1 < float(factor) < math.inf
    )
    if not f_ok:
        raise ValueError(f"refine_peak: factor must be a finite number > 1, got factor={factor!r}")
    if isinstance(max_steps, bool) or not isinstance(max_steps, int) or max_steps < 1:
        raise ValueError(
            f"refine_peak: max_steps must be an integer >= 1, got max_steps={max_steps!r}"
        )
    peak, factor = float(peak), float(factor)

    def rate(k: int) -> float:
        return peak * factor**k

    def key(v: float) -> float:
        v = float(v)
        return v if math.isfinite(v) else math.inf

    def ask(ks: list[int]) -> None:
        got = list(losses_at([rate(k) for k in ks]))
        if len(got) != len(ks):
            raise ValueError(
                f"refine_peak: losses_at returned {len(got)} losses for {len(ks)} rates"
            )
        loss.update({k: key(v) for k, v in zip(ks, got, strict=True)})

    loss = {0: key(loss_at_peak)}
    ask([-1, 1])
    best = min((-1, 1), key=lambda k: (loss[k], k))
    if not loss[best] < loss[0]:
        best = 0
    while best != 0 and abs(best) < max_steps:
        nxt = best + (1 if best > 0 else -1)
        ask([nxt])
        if not loss[nxt] < loss[best]:
            break
        best = nxt
    trials = tuple((rate(k), loss[k]) for k in sorted(loss))
    return Refinement(peak, rate(best), factor, max_steps, trials)

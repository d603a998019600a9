"""The probe rule of the range test (numpy only): where the short probe runs go
(:func:`probe_rates`, :func:`refine_rates`), how many there are and what they cost
(:func:`range_test_updates`), and which rate they suggest (:func:`choose_probe`).
:func:`lrkit.tune.find_lr` runs them; ``docs/tune.md`` explains the rule.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from numbers import Real

import numpy as np

from lrkit.tune.rules import Suggestion, _curve

#: Probes per range test, the factor between neighbouring probe rates, and how far below the
#: ramp's divergence point the highest probe sits (chosen on the development half of
#: ``benchmarks/suite.py``; see ``benchmarks/tune_quality.py``).
PROBES = 6
PROBE_SPACING = 4.0
PROBE_TOP = 2.0
#: The factor either side of the best coarse probe at which the two refining probes run.
PROBE_REFINE = 2.0
#: Probe runs in all (the coarse ones and the two refining ones), and updates per probe run.
PROBE_RUNS = PROBES + 2
PROBE_STEPS = 80


def range_test_updates(ramp_steps: int, probe_steps: int = PROBE_STEPS) -> int:
    """The most optimizer updates a range test with the probe rule makes: the ramp's
    ``ramp_steps`` (fewer when it diverges early) plus ``PROBE_RUNS * probe_steps``.

    >>> range_test_updates(100)
    740
    """
    return ramp_steps + PROBE_RUNS * probe_steps


def probe_rates(
    edge: float, *, count: int = PROBES, spacing: float = PROBE_SPACING, top: float = PROBE_TOP
) -> tuple[float, ...]:
    """The rates of the short probe runs, ascending: ``h / spacing**j`` for
    ``j = count-1 .. 0``, where ``h = 2**floor(log2(edge / top))`` and ``edge`` is where the
    ramp diverged (or its last rate). Rounding the highest probe down to a power of 2 puts the
    probes of every seed on one grid, so two seeds whose ramps diverge at slightly different
    rates probe the same rates.

    Raises:
        ValueError: ``edge`` not finite and > 0, ``count < 2``, ``spacing <= 1`` or ``top < 1``.

    >>> probe_rates(10.0, count=3)
    (0.25, 1.0, 4.0)
    """
    if isinstance(edge, bool) or not isinstance(edge, Real) or not 0 < float(edge) < math.inf:
        raise ValueError(f"probe_rates: edge must be a finite number > 0, got edge={edge!r}")
    if isinstance(count, bool) or not isinstance(count, int) or count < 2:
        raise ValueError(f"probe_rates: count must be an integer >= 2, got count={count!r}")
    if isinstance(spacing, bool) or not isinstance(spacing, Real) or not spacing > 1:
        raise ValueError(f"probe_rates: spacing must be a number > 1, got spacing={spacing!r}")
    if isinstance(top, bool) or not isinstance(top, Real) or not 1 <= top < math.inf:
        raise ValueError(f"probe_rates: top must be a number >= 1, got top={top!r}")
    high = 2.0 ** math.floor(math.log2(float(edge) / float(top)))
    return tuple(high / float(spacing) ** j for j in range(count - 1, -1, -1))


def refine_rates(best: float, factor: float = PROBE_REFINE) -> tuple[float, float]:
    """The two refining probes around the best coarse probe: ``best / factor`` and
    ``best * factor``.

    >>> refine_rates(0.1)
    (0.05, 0.2)
    """
    return best / factor, best * factor


def choose_probe(rates: Sequence[float], losses: Sequence[float], start_loss: float) -> Suggestion:
    """The probe rule: the rate of the short run that ended with the lowest loss.

    ``losses[i]`` is the loss (on the same held-out batches) after a short warmup-cosine run at
    ``rates[i]`` from the same initial model; non-finite means it diverged. The confidence
    multiplies two scores in [0, 1]:

    * depth: ``min(1, drop / 0.2)`` with ``drop = (start_loss - L_best) / |start_loss|`` (the
      probes barely learnt: their ranking says little);
    * shape: 1 when the best probe has a probe on each side, else 0.35 (the best may lie beyond
      the probed range).

    Raises:
        ValueError: mismatched lengths, fewer than 2 probes, rates not > 0, or no finite loss.

    >>> s = choose_probe([0.01, 0.1, 1.0], [0.9, 0.5, float("nan")], 2.0)
    >>> s.rate, s.method, s.confidence
    (0.1, 'probe', 1.0)
    """
    r, y = _curve("choose_probe", rates, losses, min_points=2, finite_losses=False)
    y = np.where(np.isfinite(y), y, np.inf)
    if not np.isfinite(y).any():
        raise ValueError(
            f"choose_probe: every probe diverged (rates {r.min():.3g} to {r.max():.3g}): "
            "lower the range test's start"
        )
    i = int(np.argmin(y))
    reasons = []
    drop = (
        (start_loss - y[i]) / abs(start_loss) if math.isfinite(start_loss) and start_loss else 0.0
    )
    depth = float(min(1.0, max(0.0, drop / 0.2)))
    if depth < 1.0:
        reasons.append(f"the best probe lowered the loss only {100 * drop:.0f}%")
    interior = 0 < i < r.size - 1
    if not interior:
        side = "lowest" if i == 0 else "highest"
        reasons.append(f"the best probe is the {side} rate tried: the best rate may lie beyond")
    return Suggestion(
        rate=float(r[i]),
        method="probe",
        confidence=round(depth * (1.0 if interior else 0.35), 3),
        alternatives={},
        reasons=tuple(reasons),
    )

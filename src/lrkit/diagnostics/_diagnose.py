"""Run every detector and rank the findings: :func:`diagnose`, and :func:`healthy`."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

from lrkit.diagnostics._finding import KINDS, Finding
from lrkit.diagnostics._log import RunLog
from lrkit.diagnostics._rules_loss import diverged, lr_too_high, lr_too_low, warmup_too_short
from lrkit.diagnostics._rules_schedule import decay_too_early, not_converged, plateau
from lrkit.diagnostics._rules_signals import exploding_gradients, layer_imbalance, overfitting
from lrkit.diagnostics._series import curve, even_samples, fmt

__all__ = ["DETECTORS", "diagnose", "healthy"]

Detector = Callable[[RunLog], "Finding | None"]

#: Every detector, in :data:`KINDS` order (``healthy`` is what remains when none fires).
DETECTORS: tuple[Detector, ...] = (
    layer_imbalance,
    diverged,
    warmup_too_short,
    lr_too_high,
    exploding_gradients,
    decay_too_early,
    overfitting,
    lr_too_low,
    plateau,
    not_converged,
)


def _rank(f: Finding) -> tuple[float, int]:
    return (-f.severity, KINDS.index(f.kind))


def healthy(log: RunLog, *, detectors: Sequence[Detector] = DETECTORS) -> Finding | None:
    """A ``healthy`` finding (severity 0, with the loss's start and end as evidence) when no
    detector fires on ``log``; None otherwise."""
    if any(d(even_samples(log)) is not None for d in detectors):
        return None
    return _healthy(log)


def _healthy(log: RunLog) -> Finding:
    c = curve(log)
    ev: dict[str, float] = {}
    text = "no problem found"
    if c is not None:
        a, b = c.to_loss(c.head(2)), c.to_loss(c.tail(2))
        ev = {"start_loss": a, "final_loss": b}
        text += f": the loss fell from {fmt(a)} to {fmt(b)}"
    vl = log.val_loss
    if vl is not None and any(math.isfinite(v) for v in vl):
        best = min(v for v in vl if math.isfinite(v))
        ev["best_val_loss"] = best
        text += f", best validation loss {fmt(best)}"
    return Finding(
        "healthy", 0.0, int(log.steps[0]), int(log.steps[-1]), text, tuple(ev.items()), "", None
    )


def diagnose(
    log: RunLog,
    *,
    detectors: Sequence[Detector] = DETECTORS,
    min_severity: float = 0.0,
) -> list[Finding]:
    """Run each detector on ``log``; the findings, most severe first.

    The sampled statistics are first thinned to an even grid
    (:func:`~lrkit.diagnostics._series.even_samples`). Ties of severity are broken by :data:`lrkit.diagnostics.KINDS` order (root causes such as
    ``diverged`` or ``layer_imbalance`` before their symptoms). Findings below
    ``min_severity`` are dropped; when none remains the list is one ``healthy`` finding.

    >>> import numpy as np
    >>> steps = np.arange(200)
    >>> loss = np.maximum(2.0 * np.exp(-steps / 10), 0.5)   # flat at 0.5 from step 14
    >>> log = RunLog(steps, loss, {"lr": {"0": np.full(200, 0.1)}})
    >>> [f.kind for f in diagnose(log)]
    ['plateau']
    """
    if not isinstance(log, RunLog):
        raise TypeError(f"diagnose: log must be a RunLog, got {type(log).__name__}")
    log = even_samples(log)
    found = [f for d in detectors if (f := d(log)) is not None and f.severity >= min_severity]
    return sorted(found, key=_rank) if found else [_healthy(log)]

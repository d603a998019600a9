"""The schedule specs that the detectors' advice suggests (text an lrkit user can paste)."""

from __future__ import annotations

import math

import numpy as np

from lrkit.diagnostics._log import RunLog
from lrkit.diagnostics._series import fmt

__all__ = ["peak_rate", "rate_at", "warmup_cosine"]


def peak_rate(log: RunLog) -> float | None:
    """The main group's largest finite rate (None without a rate column)."""
    lr = log.lr
    if lr is None or not np.any(np.isfinite(lr)):
        return None
    return float(np.nanmax(lr))


def rate_at(log: RunLog, step: int) -> float | None:
    """The main group's rate at the last recorded step <= ``step`` (None without a rate)."""
    lr = log.lr
    if lr is None:
        return None
    i = max(0, int(np.searchsorted(log.steps, step, side="right")) - 1)
    v = float(lr[i])
    return v if math.isfinite(v) else peak_rate(log)


def warmup_cosine(peak: float, total: int, warmup_frac: float = 0.05) -> str:
    """``warmup(cosine(peak, 0.0, steps=total - w), steps=w)`` with ``w = ceil(warmup_frac *
    total)`` (at least 1): a run of ``total`` steps in all."""
    total = max(2, int(total))
    w = min(total - 1, max(1, math.ceil(warmup_frac * total)))
    return f"warmup(cosine({fmt(peak)}, 0.0, steps={total - w}), steps={w})"

"""Detectors on the shape of the training loss against the rate: diverged, rate too high or too
low, warmup too short.

Each is a pure function ``detector(log) -> Finding | None`` over the binned view of
:mod:`lrkit.diagnostics._series` (``y``: the median log-loss of each bin, ``r``: the median
rate). ``rebound(a..b) = max_{a<=i<=b} (y_i - min_{j<=i} y_j)`` is how far the loss rose above
the best it had reached. Thresholds are keyword arguments; their defaults were chosen on the
development tasks of ``benchmarks/diagnose_accuracy.py``.
"""

from __future__ import annotations

import math

import numpy as np

from lrkit.diagnostics._advice import peak_rate, rate_at, warmup_cosine
from lrkit.diagnostics._finding import Finding
from lrkit.diagnostics._log import RunLog
from lrkit.diagnostics._series import curve, fmt, running_rebound, typical_ratio

__all__ = ["diverged", "lr_too_high", "lr_too_low", "warmup_too_short"]


def _last(log: RunLog) -> int:
    return int(log.steps[-1])


def diverged(log: RunLog, *, rise: float = math.log(3.0)) -> Finding | None:
    """The loss became non-finite, or ended far above its best and back at its start level.

    Fires when a loss is NaN/inf (from that step), or when ``tail - min(y) >= rise`` (the last
    bins' median at least ``e**rise`` = 3x the best bin) and ``tail >= head - (head - min(y)) /
    4`` (back to, or above, where the run started).
    """
    bad = np.flatnonzero(~np.isfinite(log.loss))
    peak = peak_rate(log)
    if bad.size:
        s = int(log.steps[bad[0]])
        lr = rate_at(log, s)
        ev: dict[str, float] = {"step": s, "non_finite_steps": int(bad.size)}
        if lr is not None:
            ev["lr"] = lr
        return _diverged_finding(log, s, ev, f"the loss became non-finite at step {s}", lr, 1.0)
    c = curve(log)
    if c is None:
        return None
    best_i = int(np.nanargmin(c.y))
    best, head, tail = float(c.y[best_i]), c.head(2), c.tail(3)
    if tail - best < rise or tail < head - (head - best) / 4:
        return None
    after = np.flatnonzero(c.y[best_i:] >= best + rise)
    s = int(c.steps[best_i + int(after[0])]) if after.size else int(c.steps[best_i])
    lr = rate_at(log, s)
    ev = {
        "best_loss": c.to_loss(best),
        "final_loss": c.to_loss(tail),
        "start_loss": c.to_loss(head),
    }
    if lr is not None:
        ev["lr"] = lr
    text = (
        f"the loss rose from its best {fmt(c.to_loss(best))} to {fmt(c.to_loss(tail))} "
        f"(start {fmt(c.to_loss(head))}) and did not recover"
    )
    return _diverged_finding(log, s, ev, text, lr if lr is not None else peak, 0.9)


def _diverged_finding(
    log: RunLog, s: int, ev: dict[str, float], text: str, lr: float | None, sev: float
) -> Finding:
    peak = peak_rate(log)
    if peak is None or lr is None:
        advice = "lower the learning rate about 10x and guard the run (lrkit.torch.DivergenceGuard)"
        spec = None
    else:
        new = min(peak, lr) / 10
        advice = (
            f"lower the peak rate about 10x, to ~{fmt(new)} (it was {fmt(lr)} at step {s}), "
            "warm it up, and guard the run with lrkit.torch.DivergenceGuard"
        )
        spec = warmup_cosine(new, log.total_steps)
    return Finding("diverged", sev, s, _last(log), text, tuple(ev.items()), advice, spec)


def lr_too_high(
    log: RunLog,
    *,
    rebound: float = 0.4,
    early_frac: float = 0.2,
    high_frac: float = 0.5,
    ratio_high: float = 0.05,
) -> Finding | None:
    """The loss rose while the rate was high (oscillation, spikes), or updates are huge.

    Fires when, after the first ``early_frac`` of the run (the warmup's part), the loss rose
    ``rebound`` above its running best (``rebound(at(early_frac)..end) >= rebound``: 0.4 in log
    units is 1.5x) at a bin whose rate is at least ``high_frac`` of the peak; or when the typical
    update-to-weight ratio exceeds ``ratio_high`` while the loss fell less than 30%.
    """
    c = curve(log)
    if c is None:
        return None
    peak = peak_rate(log)
    r, lo_i, hi_i = running_rebound(c.y, start=c.at(early_frac))
    lr_hi = None if c.lr is None else float(c.lr[hi_i])
    high_rate = lr_hi is None or peak is None or lr_hi >= high_frac * peak
    ratio = typical_ratio(log)
    fell = c.head(2) - float(np.nanmin(c.y))
    stuck_wild = ratio is not None and ratio > ratio_high and fell < math.log(1 / 0.7)
    if not ((r >= rebound and high_rate) or stuck_wild):
        return None
    ev: dict[str, float] = {"rebound_log": r}
    if ratio is not None:
        ev["update_ratio"] = ratio
    if r >= rebound and high_rate:
        s, e = int(c.steps[lo_i]), int(c.steps[hi_i])
        at = lr_hi if lr_hi is not None else peak
        text = (
            f"the loss rose {fmt(math.exp(r) if c.log else 1 + r)}x above its best between "
            f"steps {s} and {e}" + (f" at rate {fmt(at)}" if at is not None else "")
        )
        sev = min(0.85, 0.5 + r / 2)
    else:
        s, e, at = int(log.steps[0]), _last(log), peak
        text = (
            f"updates are {fmt(ratio or 0)} of the weights per step (typical: ~1e-3) and the "
            f"loss fell only {100 * (1 - math.exp(-fell)):.0f}%"
        )
        sev = 0.6
    if at is not None:
        ev["lr"] = at
    if peak is None or at is None:
        advice, spec = "lower the learning rate about 3x", None
    else:
        new = at / 3
        advice = f"lower the peak rate about 3x, to ~{fmt(new)}, and decay it (e.g. cosine)"
        spec = warmup_cosine(new, log.total_steps)
    return Finding("lr_too_high", sev, s, e, text, tuple(ev.items()), advice, spec)


def lr_too_low(
    log: RunLog,
    *,
    max_fall: float = math.log(1 / 0.6),
    keep: float = 0.5,
    ratio_low: float = 1e-4,
    calm: float = 0.15,
) -> Finding | None:
    """A slow, steady fall: the rate could be higher.

    With ``fall = head - tail`` (log units) and the halves ``f1 = y_0 - y_mid``, ``f2 = y_mid -
    y_end``, fires when the loss is calm (``rebound < calm``), still falling (``f2 > 0``) and
    either fell little and at an unchanged pace (``0 < fall < max_fall``: less than 40%, and
    ``f2 >= keep * f1``), or its typical update ratio is below ``ratio_low``.
    """
    c = curve(log)
    if c is None:
        return None
    mid = c.bins // 2
    f1 = float(np.nanmedian(c.y[:2]) - np.nanmedian(c.y[mid - 1 : mid + 1]))
    f2 = float(np.nanmedian(c.y[mid - 1 : mid + 1]) - c.tail(2))
    fall = c.head(2) - c.tail(2)
    r, _, _ = running_rebound(c.y)
    ratio = typical_ratio(log)
    slow = 0 < fall < max_fall and f2 >= keep * f1
    tiny = ratio is not None and ratio < ratio_low
    if r >= calm or f2 <= 0 or not (slow or tiny):
        return None
    peak = peak_rate(log)
    ev: dict[str, float] = {"fall_log": fall, "first_half_fall": f1, "second_half_fall": f2}
    if ratio is not None:
        ev["update_ratio"] = ratio
    text = (
        f"the loss fell steadily but only {100 * (1 - math.exp(-fall)):.0f}% "
        f"({fmt(c.to_loss(c.head(2)))} -> {fmt(c.to_loss(c.tail(2)))}), as fast in the second "
        "half as in the first" + (f"; updates {fmt(ratio or 0.0)} of the weights" if tiny else "")
    )
    sev = 0.55 + (0.15 if tiny else 0.0) + (0.1 if slow else 0.0)
    if peak is None:
        advice, spec = "raise the learning rate about 10x (or run lrkit find)", None
    else:
        advice = f"raise the peak rate about 10x, to ~{fmt(10 * peak)} (or run `lrkit find`)"
        spec = warmup_cosine(10 * peak, log.total_steps)
    return Finding(
        "lr_too_low", sev, int(log.steps[0]), _last(log), text, tuple(ev.items()), advice, spec
    )


def warmup_too_short(
    log: RunLog,
    *,
    early_frac: float = 0.2,
    rise: float = 0.15,
    short_frac: float = 0.02,
) -> Finding | None:
    """An early spike or instability with a rate at (or near) its peak from the start.

    Fires when the rate reached 90% of its peak within ``short_frac`` of the run (no or a short
    warmup), the loss rose ``rise`` above its running best in the first ``early_frac`` of the run
    (``rebound(0..at(early_frac)) >= rise``), and the instability did not persist: the later
    rebound is smaller and the run ended below that early peak.
    """
    c = curve(log)
    if c is None:
        return None
    e = c.at(early_frac)
    r, lo_i, hi_i = running_rebound(c.y[: e + 1])
    if r < rise:
        return None
    peak = peak_rate(log)
    reach = None
    if log.lr is not None and peak is not None:
        idx = np.flatnonzero(np.asarray(log.lr) >= 0.9 * peak)
        reach = int(log.steps[idx[0]] - log.steps[0]) if idx.size else None
        if reach is None or reach > short_frac * log.total_steps:
            return None
    late, _, _ = running_rebound(c.y, start=e + 1)
    if late >= r or c.tail(3) >= float(c.y[hi_i]):
        return None
    s, t = int(c.steps[lo_i]), int(c.steps[hi_i])
    ev: dict[str, float] = {"early_rebound_log": r, "later_rebound_log": late}
    if reach is not None:
        ev["steps_to_peak_rate"] = reach
    text = (
        f"the loss jumped {fmt(math.exp(r) if c.log else 1 + r)}x between steps {s} and {t}, "
        f"while the rate was at its peak "
        + (f"after {reach} steps" if reach is not None else "from the start")
    )
    w = max(1, math.ceil(0.05 * log.total_steps))
    advice = f"warm the rate up over ~5% of the run ({w} steps)"
    spec = None
    if peak is not None:
        spec = warmup_cosine(peak, log.total_steps, 0.05)
        advice += f", e.g. warmup(cosine({fmt(peak)}, ...), steps='5%')"
    return Finding(
        "warmup_too_short", min(0.8, 0.55 + r / 2), s, t, text, tuple(ev.items()), advice, spec
    )

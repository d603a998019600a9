"""Detectors on the timing of the schedule: decay too early, not converged, plateau.

Same conventions as :mod:`lrkit.diagnostics._rules_loss`: ``y`` is the binned median log-loss,
``r`` the binned rate, ``B`` the number of bins; a positive *fall* is the loss going down.
"""

from __future__ import annotations

import math

import numpy as np

from lrkit.diagnostics._advice import peak_rate, warmup_cosine
from lrkit.diagnostics._finding import Finding
from lrkit.diagnostics._log import RunLog
from lrkit.diagnostics._series import curve, fmt, slope

__all__ = ["decay_too_early", "not_converged", "plateau"]


def decay_too_early(
    log: RunLog,
    *,
    decayed: float = 0.1,
    by_frac: float = 0.4,
    stall: float = 0.25,
    min_fall: float = 0.004,
) -> Finding | None:
    """The rate decayed early while the loss was still falling, and progress then stalled.

    With ``d`` the first bin after the peak where ``r_d <= decayed * max(r)``: fires when ``d``
    is within the first ``by_frac`` of the run, the loss was falling until then (on the
    smoothed curve ``s``: ``v_before = (s_0 - s_d) / d >= min_fall`` per bin) and its mean fall
    per bin afterwards, ``v_after = (s_d - s_end) / (B - 1 - d)``, is below ``stall *
    v_before``.
    """
    c = curve(log)
    peak = peak_rate(log)
    if c is None or c.lr is None or peak is None or peak <= 0:
        return None
    top = int(np.nanargmax(c.lr))
    low = np.flatnonzero(c.lr[top:] <= decayed * float(np.nanmax(c.lr)))
    if not low.size:
        return None
    d = top + int(low[0])
    if d > c.at(by_frac) or d < 1:
        return None
    ys = c.smooth
    v_before = (float(ys[0]) - float(ys[d])) / d
    v_after = (float(ys[d]) - float(ys[-1])) / max(1, c.bins - 1 - d)
    if v_before < min_fall or v_after >= stall * v_before:
        return None
    s = int(c.steps[d])
    frac = (s - int(log.steps[0])) / log.total_steps
    ev = {
        "decayed_at_frac": frac,
        "fall_per_bin_before": v_before,
        "fall_per_bin_after": v_after,
        "peak_lr": peak,
    }
    text = (
        f"the rate fell below {fmt(decayed)}x its peak at step {s} ({100 * frac:.0f}% of the "
        f"run); the loss was falling {fmt(v_before / max(v_after, 1e-12))}x faster before than "
        "after"
    )
    spec = warmup_cosine(peak, log.total_steps)
    advice = (
        f"decay over the whole run (cosine to the last step) instead of the first {100 * frac:.0f}%"
    )
    sev = min(0.8, 0.55 + 0.3 * (1 - frac))
    return Finding(
        "decay_too_early", sev, s, int(log.steps[-1]), text, tuple(ev.items()), advice, spec
    )


def not_converged(
    log: RunLog,
    *,
    tail_frac: float = 0.25,
    min_fall: float = 0.03,
    annealed_fall: float = 0.25,
    min_val: int = 6,
) -> Finding | None:
    """Still falling at the end: a longer run (or a later decay) would reach a lower loss.

    Judges the validation loss when it has at least ``min_val`` evaluations, else the binned
    training loss; silent when a loss is not finite. Over the last ``tail_frac`` of the run, with ``v`` the least-squares fall per
    point and ``m`` the points: fires when the projected fall ``v * m >= min_fall`` (3% in log
    units; ``annealed_fall``, 0.25: 22%, when the rate ended below 0.2 of its peak, as the end of a
    decay brings its own gain) and the last half of that tail is still falling.
    """
    if not np.all(np.isfinite(log.loss)):
        return None  # diverged: its own finding
    vs, vl = log.val_steps, log.val_loss
    name = "training"
    if vl is not None and np.isfinite(vl).sum() >= min_val and np.all(vl[np.isfinite(vl)] > 0):
        ok = np.isfinite(vl)
        y, steps, name = np.log(vl[ok]), vs[ok], "validation"
    else:
        c = curve(log)
        if c is None or c.first_bad is not None:
            return None
        y, steps = c.y, c.steps.astype(np.float64)
    m = max(3, math.ceil(tail_frac * len(y)))
    tail = y[-m:]
    fall = -slope(tail) * (m - 1)
    late = -slope(tail[-max(2, m // 2) :])
    peak = peak_rate(log)
    lr = log.lr
    end_rate = None if lr is None or peak is None else float(lr[-1]) / peak
    # a fall while the rate anneals to ~0 is the decay's own gain: ask for more then
    need = min_fall if end_rate is None or end_rate >= 0.2 else annealed_fall
    if fall < need or late <= 0:
        return None
    s = int(steps[-m])
    ev = {"tail_fall_log": fall, "tail_points": m}
    text = (
        f"the {name} loss was still falling at the end: {100 * (1 - math.exp(-fall)):.1f}% over "
        f"the last {int(log.steps[-1]) - s + 1} steps"
    )
    advice = "train longer (about 2x the steps) or decay later"
    spec = None if peak is None else warmup_cosine(peak, 2 * log.total_steps)
    sev = min(0.5, 0.3 + fall)
    return Finding(
        "not_converged", sev, s, int(log.steps[-1]), text, tuple(ev.items()), advice, spec
    )


def plateau(
    log: RunLog,
    *,
    window_frac: float = 0.3,
    flat: float = 0.03,
    high_frac: float = 0.7,
    progress: float = 0.1,
) -> Finding | None:
    """The loss is flat for a long stretch while the rate is still high: decay (or restart).

    A stretch of ``w = max(3, window_frac * B)`` bins, after the loss had fallen ``progress``
    from its start, where every bin's rate is at least ``high_frac`` of the peak and the loss
    moved less than ``flat`` (log units) across it by its least-squares line
    (``|slope| * (w - 1) < flat``). The longest one wins. ``high_frac`` is 0.7: a cosine
    stays above half its peak for half the run, long enough for the ordinary flattening of a
    healthy run's middle to pass for a plateau.
    """
    c = curve(log)
    peak = peak_rate(log)
    if c is None or c.lr is None or peak is None:
        return None
    w = max(3, round(window_frac * c.bins))
    best: tuple[int, int] | None = None
    i = 0
    while i + w <= c.bins:
        j = i + w
        if _flat(c.y, c.lr, i, j, flat, high_frac * peak) and c.head(2) - c.y[i] >= progress:
            while j < c.bins and _flat(c.y, c.lr, i, j + 1, flat, high_frac * peak):
                j += 1
            if best is None or j - i > best[1] - best[0]:
                best = (i, j)
            i = j
        else:
            i += 1
    if best is None:
        return None
    i, j = best
    s, e = int(c.steps[i]), int(c.steps[j - 1])
    level = c.to_loss(float(np.nanmedian(c.y[i:j])))
    ev = {"flat_bins": j - i, "loss": level, "lr": float(np.nanmedian(c.lr[i:j]))}
    text = (
        f"the loss stayed near {fmt(level)} from step {s} to {e} while the rate stayed at "
        f"{fmt(ev['lr'])} (>= {fmt(high_frac)}x its peak)"
    )
    advice = (
        "decay the rate when the loss flattens: lrkit.controllers.Plateau(factor=0.5, "
        "patience=...) on top of the schedule, or a decay from this point; or restart/bump it"
    )
    spec = warmup_cosine(peak, log.total_steps)
    return Finding("plateau", 0.45, s, e, text, tuple(ev.items()), advice, spec)


def _flat(y: np.ndarray, lr: np.ndarray, i: int, j: int, flat: float, high: float) -> bool:
    part = y[i:j]
    if not np.all(np.isfinite(part)) or np.any(lr[i:j] < high):
        return False
    return abs(slope(part)) * (len(part) - 1) < flat

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
from typing import Any

import numpy as np

from lrkit.diagnostics._advice import peak_rate, rate_at, warmup_cosine
from lrkit.diagnostics._finding import Finding
from lrkit.diagnostics._log import RunLog
from lrkit.diagnostics._series import (
    alignment,
    curve,
    felt_spikes,
    fmt,
    running_median,
    running_rebound,
    typical_ratio,
    val_train_gap,
)

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
    noise_mult: float = 3.0,
    high_frac: float = 0.5,
    stuck_fall: float = 0.1,
    ratio_floor: float = 5e-4,
    spike: float = 10.0,
    align: float = 0.08,
) -> Finding | None:
    """The loss rose while the rate was high (oscillation, a blow-up), got stuck, or the
    gradient norm spiked at a high rate.

    On the smoothed curve ``s`` (running median of 5 bins) it fires when

    * *rose*: the loss rose above its running best by ``rebound(s) >= max(rebound, noise_mult
      * noise)`` (0.4 in log units is 1.5x; ``noise`` is the bins' robust scatter around
      ``s``) at a bin whose rate is at least ``high_frac`` of the peak; or
    * *stuck*: after the first 15% of the run the loss moved less than ``stuck_fall`` (10%)
      although the rate fell from ``>= high_frac`` to ``<= 0.2`` of its peak meanwhile (a
      decay that does not help: the model was damaged), with updates that are not small
      (typical ratio ``>= ratio_floor``, when recorded) and that do not keep going downhill
      (:func:`~lrkit.diagnostics._series.alignment` below ``align``, when recorded: a slow
      run whose every step could have been longer is stuck for want of rate); or
    * *spiked*: the gradient norm exceeded ``spike`` times its running median (of the previous
      20 samples) at a rate ``>= high_frac`` of the peak, at least twice, or once with the loss
      rising ``max(0.05, 3 * noise)`` above its best within 3 bins
      (:func:`~lrkit.diagnostics._series.felt_spikes`).
    """
    c = curve(log)
    if c is None:
        return None
    peak = peak_rate(log)
    ys = c.smooth
    high = None if c.lr is None or peak is None else c.lr >= high_frac * peak
    r, lo_i, hi_i = running_rebound(ys, where=high)
    ratio = typical_ratio(log)
    rose = r >= max(rebound, noise_mult * c.noise)
    aligned = alignment(log)
    stuck = (
        _stuck(c, ys, high_frac, stuck_fall)
        and (ratio is None or ratio >= ratio_floor)
        and (aligned is None or aligned[0] < align)
    )
    spikes = felt_spikes(log, _spikes_at_high_rate(log, spike, high_frac))
    if not (rose or stuck or spikes):
        return None
    ev: dict[str, float] = {"rebound_log": r, "noise_log": c.noise}
    if ratio is not None:
        ev["update_ratio"] = ratio
    if rose:
        s, e = int(c.steps[lo_i]), int(c.steps[hi_i])
        at = None if c.lr is None else float(c.lr[hi_i])
        text = (
            f"the loss rose {fmt(math.exp(r) if c.log else 1 + r)}x above its best between "
            f"steps {s} and {e}" + (f" at rate {fmt(at)}" if at is not None else "")
        )
        sev = min(0.85, 0.5 + r / 2)
    elif stuck:
        a = c.at(0.15)
        s, e, at = int(c.steps[a]), int(log.steps[-1]), peak
        text = (
            f"the loss stopped improving at ~{fmt(c.to_loss(float(ys[a])))} from step {s} and did "
            "not respond when the rate decayed: the high rate damaged the model early (dead "
            "units or a collapsed output)"
        )
        sev = 0.7
    else:
        s = spikes[0]
        e, at = spikes[-1], rate_at(log, s)
        ev["grad_spikes"] = len(spikes)
        text = f"the gradient norm spiked {len(spikes)} times while the rate was high"
        sev = 0.7
    if at is not None:
        ev["lr"] = at
    if peak is None or at is None:
        advice, spec = "lower the learning rate about 3x", None
    else:
        new = min(at, peak) / (10 if stuck else 3)
        advice = (
            f"lower the peak rate about {10 if stuck else 3}x, to ~{fmt(new)}, and decay it "
            "(e.g. cosine)"
        )
        spec = warmup_cosine(new, log.total_steps)
    return Finding("lr_too_high", sev, s, e, text, tuple(ev.items()), advice, spec)


def _stuck(c: Any, ys: np.ndarray, high_frac: float, stuck_fall: float) -> bool:
    if c.lr is None or not np.isfinite(c.lr).all():
        return False
    a = c.at(0.15)
    part, lr = ys[a:], c.lr[a:]
    top = float(np.nanmax(c.lr))
    if len(part) < 3 or top <= 0:
        return False
    decayed = lr[0] >= high_frac * top and lr[-1] <= 0.2 * top
    moved = float(np.nanmax(part) - np.nanmin(part[-3:]))
    return bool(decayed and moved < stuck_fall)


def _spikes_at_high_rate(log: RunLog, spike: float, high_frac: float) -> list[int]:
    g, lr, peak = log.grad_norm, log.lr, peak_rate(log)
    if g is None or lr is None or peak is None:
        return []
    idx = np.flatnonzero(np.isfinite(g))
    out = []
    for j in range(5, len(idx)):
        prev = g[idx[max(0, j - 20) : j]]
        i = idx[j]
        if g[i] > spike * float(np.median(prev)) and lr[i] >= high_frac * peak:
            out.append(int(log.steps[i]))
    return out


def lr_too_low(
    log: RunLog,
    *,
    max_fall: float = math.log(1 / 0.6),
    tiny_fall: float = 0.15,
    keep: float = 0.5,
    ratio_low: float = 3e-4,
    ratio_tiny: float = 5e-4,
    ratio_high: float = 1e-2,
    calm: float = 0.15,
    align: float = 0.08,
    gap: float = 1.5,
    rose: float = 0.4,
) -> Finding | None:
    """A slow, steady fall, or steps that keep going downhill: the rate could be higher.

    With ``fall = head - tail`` (log units), the halves' falls ``f1``, ``f2`` and their falls
    per unit of rate spent ``e_i = f_i / sum(r over half i)``: fires when the smoothed loss is
    calm (``rebound < max(calm, 3 * noise)``) and either hardly moved (``fall < tiny_fall``:
    14%, with a typical update ratio below ``ratio_tiny`` when recorded), or fell less than
    ``max_fall`` (40%) at an unchanged pace per unit of rate (``keep * e1 <= e2 <= e1 /
    keep``: not levelling off, and not falling only once the rate decays, which is a high
    rate's sign) with a typical update ratio below ``ratio_high`` (1e-2) when recorded, or its
    typical update ratio is below ``ratio_low`` (3e-4; the rule of thumb is ~1e-3).

    *Aligned* (when the log has ``grad_update_cos``): the median ``cos(Δw_k, -g_{k+1})`` past
    the first 10% of the run while the rate is >= half its peak
    (:func:`~lrkit.diagnostics._series.alignment`) is at least ``align`` (0.08): the next
    gradient keeps pointing the way the last update went, so each step stopped short. This
    fires at severity 0.75 (above a stuck loss's 0.7) on any run whose loss stayed finite and
    did not rise ``max(rose, 3 * noise)`` above its running best (0.4: 1.5x, the rise that
    reads ``lr_too_high``).

    Never when that median is ``-align`` or less (the steps overshoot: not a low rate), nor
    when the last validation loss is ``gap`` (1.5x) or more above the training loss (the data
    limits the run, not the rate; a small training set also gives consistent gradients that
    align).
    """
    c = curve(log)
    if c is None:
        return None
    mid = c.bins // 2
    f1 = float(np.nanmedian(c.y[:2]) - np.nanmedian(c.y[mid - 1 : mid + 1]))
    f2 = float(np.nanmedian(c.y[mid - 1 : mid + 1]) - c.tail(2))
    fall = c.head(2) - c.tail(2)
    r, _, _ = running_rebound(c.smooth)
    ratio = typical_ratio(log)
    if c.lr is not None and np.all(np.isfinite(c.lr)) and np.nansum(c.lr[mid:]) > 0:
        e1 = f1 / max(float(np.nansum(c.lr[:mid])), 1e-300)
        e2 = f2 / float(np.nansum(c.lr[mid:]))
    else:
        e1, e2 = f1, f2
    # a loss that hardly moved with updates of normal size is stuck (lr_too_high), not slow
    tiny = fall < tiny_fall and (ratio is None or ratio < ratio_tiny)
    # updates that already move the weights >= 1% a step are not too small: no slow-fall call
    big = ratio is not None and ratio >= ratio_high
    slow = 0 < fall < max_fall and f2 > 0 and keep * e1 <= e2 <= e1 / keep and not big
    small_steps = ratio is not None and ratio < ratio_low and fall > -c.noise
    a = alignment(log)
    vt = val_train_gap(log)
    # a run that blew up or rose is not slow, however its steps pointed before
    steady = c.first_bad is None and r < max(rose, 3 * c.noise)
    aligned = a is not None and a[0] >= align and steady
    calm_ok = r < max(calm, 3 * c.noise)
    overshoot = a is not None and a[0] <= -align
    data_bound = vt is not None and vt >= math.log(gap)
    if data_bound or overshoot or not (aligned or (calm_ok and (tiny or slow or small_steps))):
        return None
    peak = peak_rate(log)
    ev: dict[str, float] = {"fall_log": fall, "first_half_fall": f1, "second_half_fall": f2}
    if ratio is not None:
        ev["update_ratio"] = ratio
    if a is not None:
        ev["grad_update_cos"] = a[0]
    if aligned and a is not None:
        text = (
            f"each step stopped short: the next gradient kept pointing the way the update went "
            f"(median cosine {a[0]:.2f} over {a[1]} samples at a high rate; ~0 when the rate "
            f"fits); the loss went {fmt(c.to_loss(c.head(2)))} -> {fmt(c.to_loss(c.tail(2)))}"
        )
        sev = 0.75
    else:
        text = (
            f"the loss fell steadily but only {100 * (1 - math.exp(-fall)):.0f}% "
            f"({fmt(c.to_loss(c.head(2)))} -> {fmt(c.to_loss(c.tail(2)))}), as fast in the "
            "second half as in the first, per unit of rate"
            + (f"; updates {fmt(ratio or 0.0)} of the weights" if small_steps else "")
        )
        sev = 0.75 if tiny else 0.55 + (0.15 if small_steps else 0.0) + (0.1 if slow else 0.0)
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
    noise_mult: float = 3.0,
    short_frac: float = 0.02,
) -> Finding | None:
    """An early spike or instability with a rate at (or near) its peak from the start.

    Fires when the rate reached 90% of its peak within ``short_frac`` of the run (no or a short
    warmup), the loss (running median of 3 bins) rose ``max(rise, noise_mult * noise)`` above its running best in
    the first ``early_frac`` of the run, and the instability did not persist: the later
    rebound is smaller and the run ended below that early peak.
    """
    c = curve(log)
    if c is None:
        return None
    ys = running_median(c.y, 3)  # a warmup spike can be brief: 3 bins, not 5
    e = c.at(early_frac)
    r, lo_i, hi_i = running_rebound(ys[: e + 1])
    if r < max(rise, noise_mult * c.noise):
        return None
    peak = peak_rate(log)
    reach = None
    if log.lr is not None and peak is not None:
        idx = np.flatnonzero(np.asarray(log.lr) >= 0.9 * peak)
        reach = int(log.steps[idx[0]] - log.steps[0]) if idx.size else None
        if reach is None or reach > short_frac * log.total_steps:
            return None
    late, _, _ = running_rebound(ys, start=e + 1)
    if late >= r or c.tail(3) >= float(ys[hi_i]):
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
    # the rate-too-high symptom it explains (capped at 0.85) ranks after it; diverged does not
    return Finding("warmup_too_short", 0.86, s, t, text, tuple(ev.items()), advice, spec)

"""Detectors on the other recorded signals: overfitting (validation), layer imbalance (update
ratios per layer), exploding gradients (gradient norm)."""

from __future__ import annotations

import math

import numpy as np

from lrkit.diagnostics._advice import peak_rate, warmup_cosine
from lrkit.diagnostics._finding import Finding
from lrkit.diagnostics._log import RunLog
from lrkit.diagnostics._series import curve, felt_spikes, fmt, layer_offsets, running_rebound

__all__ = ["exploding_gradients", "layer_imbalance", "overfitting"]


def _smooth3(v: np.ndarray) -> np.ndarray:
    """Running median of 3 (the ends keep their own value)."""
    out = v.copy()
    for i in range(1, len(v) - 1):
        out[i] = float(np.median(v[i - 1 : i + 2]))
    return out


def overfitting(
    log: RunLog,
    *,
    rise: float = 0.04,
    min_after: int = 2,
    min_points: int = 4,
    stall: float = 0.02,
    gap: float = 1.5,
    train_fall: float = 0.1,
) -> Finding | None:
    """Validation loss rises, or stalls far above a training loss that keeps falling.

    With ``v`` the validation log-loss smoothed by a running median of 3 and ``i*`` its minimum,
    fires when either

    * *rising*: at least ``min_after`` evaluations follow ``i*``, the last is ``rise`` above
      the minimum (``v_end - v_{i*} >= rise``: 4%), the training loss fell meanwhile and
      validation ends at least ``gap`` times the training loss; or
    * *stalled*: over the second half of the evaluations validation fell less than ``stall``
      (2%) while training fell at least ``train_fall`` (log units) or already sat 10x below
      it, and validation ends at least ``gap`` times the training loss (median of its last
      10%).
    """
    vl = log.val_loss
    if vl is None:
        return None
    ok = np.isfinite(vl) & (vl > 0)
    if ok.sum() < min_points:
        return None
    vs, v = log.val_steps[ok], _smooth3(np.log(vl[ok]))
    i = int(np.argmin(v))
    train = np.asarray(log.loss)
    good = np.isfinite(train) & (train > 0)
    if not good.any():
        return None
    tail = good & (log.steps >= log.steps[-1] - 0.1 * log.total_steps)
    t_end = float(np.log(np.median(train[tail]))) if tail.any() else math.nan

    def train_at(step: float) -> float:
        near = good & (np.abs(log.steps - step) <= max(1, 0.05 * log.total_steps))
        return float(np.log(np.median(train[near]))) if near.any() else math.nan

    up = float(v[-1] - v[i])
    far = v[-1] - t_end
    wide = far >= math.log(gap)  # a model broken by a high rate is as bad on both sets
    rising = all((len(v) - 1 - i >= min_after, up >= rise, train_at(vs[i]) > t_end, wide))
    h = len(v) // 2
    v_fall = float(v[h] - v[-1])
    t_fall = train_at(vs[h]) - t_end
    stalled = v_fall < stall and (t_fall >= train_fall or far >= math.log(10)) and wide
    if not (rising or stalled):
        return None
    s = int(vs[i]) if rising else int(vs[h])
    ev = {
        "best_val_loss": math.exp(v[i]),
        "final_val_loss": math.exp(v[-1]),
        "final_train_loss": math.exp(t_end),
        "best_step": int(vs[i]),
    }
    if rising:
        text = (
            f"validation loss rose {100 * (math.exp(up) - 1):.0f}% from its best "
            f"{fmt(math.exp(v[i]))} at step {s} to {fmt(math.exp(v[-1]))} while the training "
            "loss fell"
        )
    else:
        text = (
            f"validation loss stalled at {fmt(math.exp(v[-1]))} from step {s} while the "
            f"training loss fell {100 * (1 - math.exp(-t_fall)):.0f}% more, to "
            f"{fmt(math.exp(t_end))} ({fmt(math.exp(v[-1] - t_end))}x below validation)"
        )
    peak = peak_rate(log)
    span = max(2, s - int(log.steps[0]) + 1)
    advice = (
        f"stop at ~step {s} (keep that checkpoint) or end the decay there; more weight decay or "
        "data also help"
    )
    spec = None if peak is None else warmup_cosine(peak, span)
    sev = min(0.85, 0.5 + up) if rising else 0.5
    return Finding("overfitting", sev, s, int(log.steps[-1]), text, tuple(ev.items()), advice, spec)


def layer_imbalance(
    log: RunLog,
    *,
    decades: float = 1.5,
    early_frac: float = 0.5,
    unstable: float = 0.4,
    stuck: float = 0.1,
    quiet: float = 5e-4,
    decades_felt: float = 0.7,
) -> Finding | None:
    """One layer's update-to-weight ratio is orders of magnitude off the others' (or one
    group's rate is, and the run is unstable).

    At each sampled step ``t`` of the first ``early_frac`` of the run (before a layer that
    blew up could grow its weights and hide it), ``d_l(t) = log10 r_l(t) - median_{k != l}
    log10 r_k(t)``; a layer's offset is the median of ``d_l(t)`` over those steps. Fires when
    some layer has ``|offset| >= decades`` (1.5: about 30x); the worst one is reported (ties,
    as with two layers, go to the one further from the rule-of-thumb ratio 1e-3), with the
    multiplier ``10**(-offset)`` that brings it back in line. A layer that moves far *more* than
    the others while the median layer moves less than ``quiet`` (5e-4) of its weights per
    update is reported at severity 0.45, below a low-rate finding: a parameter initialised at
    zero moves ~1/t of itself per update at any rate, so it stands out when the rest's rate is
    too low; unless the param groups' rates span ``decades`` themselves (then the group
    split explains the gap). Also fires when the param groups'
    median rates span ``decades`` or more and the run was unstable (a non-finite loss, or the
    smoothed loss rose ``unstable`` above its running best) or failed to learn (the loss fell
    less than ``stuck``, 10% in log units, from its first to its last bins): a layer whose
    rate blew it up (or killed it) within the first steps, before its update ratio could show
    it. Groups that far apart whose first 10 recorded updates differ in size (median update
    ratio of the high-rate group over the low-rate one's) by ``decades_felt`` (0.7: 5x) or
    more are reported at severity 0.5 even in a stable run: under Adam a layer at 100x shows
    only there, before its weights grow (a deliberate fine-tuning split is flagged too, and
    says so).
    """
    per = layer_offsets(log, early_frac)
    off = np.array([per[k][0] for k in per])
    if not per or len(per) < 2 or float(np.max(np.abs(off))) < decades:
        return _group_rates(log, decades, unstable, stuck, decades_felt)
    names = list(per)
    typical = np.array([abs(math.log10(per[k][1]) + 3) for k in names])
    w = int(np.argmax(np.round(np.abs(off), 6) + 1e-3 * typical))
    ratios = {k: per[k][1] for k in names}
    m = float(np.median([math.log10(v) for k, v in ratios.items() if k != names[w]]))
    name, mult = names[w], 10 ** (-float(off[w]))
    ev = {"layer_ratio": ratios[name], "median_ratio": 10**m, "decades_off": float(off[w])}
    way = "far larger" if off[w] > 0 else "far smaller"
    text = (
        f"layer {name!r} moves {fmt(ratios[name])} of its weights per update, {way} than the "
        f"median layer ({fmt(10**m)}): {abs(off[w]):.1f} orders of magnitude"
    )
    advice = (
        f"give {name!r} its own param group with an lr multiplier ~{fmt(mult)}: "
        f"Scheduler(opt, lr=..., group_mult={{'{name}': {fmt(mult)}}})"
        + (" (or freeze it if that is intended)" if off[w] < 0 else "")
    )
    sev = min(0.95, 0.6 + 0.15 * (abs(off[w]) - decades))
    if off[w] > 0 and 10**m < quiet and not _rates_apart(log, decades):
        # the rest hardly move: a parameter grown from zero (its ratio does not follow the
        # rate) or a rate too low for the rest; below a low-rate finding, but still reported
        sev = 0.45
        text += "; the other layers hardly move, so the rate may be too low for them instead"
    return Finding(
        "layer_imbalance",
        sev,
        int(log.steps[0]),
        int(log.steps[-1]),
        text,
        tuple(ev.items()),
        advice,
        None,
    )


def _group_medians(log: RunLog) -> dict[str, float]:
    """Each param group's median rate, for the groups with a positive one."""
    groups = log.hparams.get("lr", {})
    med = {g: float(np.nanmedian(v)) for g, v in groups.items() if np.isfinite(v).any()}
    return {g: v for g, v in med.items() if v > 0}


def _rates_apart(log: RunLog, decades: float) -> bool:
    """Whether the param groups' median rates span ``decades`` or more."""
    med = list(_group_medians(log).values())
    return len(med) >= 2 and math.log10(max(med) / min(med)) >= decades


def _first_updates_apart(log: RunLog, hi: str, lo: str, decades: float, first: int = 10) -> float:
    """How many decades group ``hi``'s update ratio exceeds group ``lo``'s over the first
    ``first`` recorded updates (medians), when that is at least ``decades``; else 0."""
    a, b = log.group_ratio.get(hi), log.group_ratio.get(lo)
    if a is None or b is None:
        return 0.0
    a, b = np.asarray(a), np.asarray(b)
    ok = np.flatnonzero(np.isfinite(a) & np.isfinite(b) & (a > 0) & (b > 0))[:first]
    if ok.size < 3:
        return 0.0
    gap = float(np.median(np.log10(a[ok])) - np.median(np.log10(b[ok])))
    return gap if gap >= decades else 0.0


def _group_rates(
    log: RunLog, decades: float, unstable: float, stuck: float, decades_felt: float
) -> Finding | None:
    med = _group_medians(log)
    if len(med) < 2:
        return None
    hi, lo = max(med, key=med.__getitem__), min(med, key=med.__getitem__)
    spread = math.log10(med[hi] / med[lo])
    if spread < decades:
        return None
    c = curve(log)
    bad = not np.all(np.isfinite(log.loss))
    rose = c is not None and running_rebound(c.smooth)[0] >= unstable
    flat = c is not None and c.head(2) - c.tail(3) < stuck
    felt = _first_updates_apart(log, hi, lo, decades_felt)
    if not (bad or rose or flat or felt):
        return None
    others = float(np.median([v for g, v in med.items() if g != hi]))
    mult = others / med[hi]
    ev = {"group_lr": med[hi], "other_lr": others, "decades_apart": spread}
    text = (
        f"group {hi!r} runs at {fmt(med[hi] / others)}x the rate of the others and the run "
        + (
            "diverged"
            if bad
            else "was unstable"
            if rose
            else "failed to learn"
            if flat
            else f"its first updates were {fmt(10**felt)}x the others' in size"
        )
        + ": that layer's updates are far larger than the rest's"
    )
    advice = (
        f"lower {hi!r}'s rate ~{fmt(1 / mult)}x, to about the others' (divide its multiplier "
        f"in Scheduler(opt, lr=..., group_mult={{'{hi}': ...}}) by {fmt(1 / mult)})"
    )
    if felt and not (bad or rose or flat):
        text += " (if the groups' rates differ on purpose, as in fine-tuning, ignore this)"
    return Finding(
        "layer_imbalance",
        1.0 if bad else 0.85 if (rose or flat) else 0.5,
        int(log.steps[0]),
        int(log.steps[-1]),
        text,
        tuple(ev.items()),
        advice,
        None,
    )


def exploding_gradients(
    log: RunLog, *, spike: float = 10.0, growth: float = 100.0, window: int = 20
) -> Finding | None:
    """The gradient norm was non-finite, spiked, or grew by orders of magnitude.

    Over the sampled norms ``g``: fires on any ``inf`` (how a monitor records a non-finite
    norm), spikes ``g_i > spike * median(g_{i-window..i-1})`` (after 5 samples; two or more, or
    a single one that the loss felt: :func:`~lrkit.diagnostics._series.felt_spikes`), or
    growth ``median(last 10%) / median(first 10%) >= growth``.
    """
    if log.grad_norm is None:
        return None
    g_all = np.asarray(log.grad_norm)
    sampled = ~np.isnan(g_all)
    if sampled.sum() < 5:
        return None
    g, st = g_all[sampled], log.steps[sampled]
    ev: dict[str, float] = {}
    inf = np.flatnonzero(~np.isfinite(g))
    first: int | None = None
    if inf.size:
        first = int(st[inf[0]])
        ev["non_finite_norms"] = int(inf.size)
        text = f"the gradient norm was not finite at step {first} ({inf.size} samples)"
    fin = g[np.isfinite(g)]
    spikes = [
        i
        for i in range(5, len(g))
        if np.isfinite(g[i])
        and g[i] > spike * float(np.median(_finite(g[max(0, i - window) : i]) or [np.inf]))
    ]
    felt = felt_spikes(log, [int(st[i]) for i in spikes])
    spikes = [i for i in spikes if int(st[i]) in felt]
    k = max(1, len(fin) // 10)
    grew = float(np.median(fin[-k:]) / max(np.median(fin[:k]), 1e-30)) if fin.size else 1.0
    if first is None and spikes:
        first = int(st[spikes[0]])
        ev["spikes"] = len(spikes)
        text = f"the gradient norm spiked over {fmt(spike)}x its running median {len(spikes)} times"
    elif first is None and grew >= growth:
        first = int(st[0])
        text = f"the gradient norm grew {fmt(grew)}x over the run"
    if first is None:
        return None
    ev["growth"] = grew
    if fin.size:
        ev["median_norm"] = float(np.median(fin))
        clip = 2 * float(np.median(fin))
    else:
        clip = 1.0
    advice = (
        f"clip gradients (torch.nn.utils.clip_grad_norm_(model.parameters(), {fmt(clip)})), "
        "guard the run (DivergenceGuard(grad_spike_factor=10)) and lower the rate"
    )
    sev = 0.8 if inf.size else 0.65
    return Finding(
        "exploding_gradients",
        sev,
        first,
        int(log.steps[-1]),
        text,
        tuple(ev.items()),
        advice,
        None,
    )


def _finite(x: np.ndarray) -> list[float]:
    return [float(v) for v in x if math.isfinite(v)]

"""Shared views of a :class:`RunLog` that the detectors judge: binned medians on a log scale.

Per-step losses are noisy (one mini-batch each), so the detectors look at the run through
``B`` bins of equal length, each summarised by its median (robust to single bad batches):
``B = clip(n // 5, 10, 100)`` for ``n`` finite training steps. Losses are judged in log units
(``y = ln(loss)``; a difference of 0.1 is a 10.5% change) when every finite loss is positive,
else as ``loss / |loss_0|`` (``loss_0``: the median of the first 5% of steps), so that
differences read as fractions of the starting level either way.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, replace

import numpy as np

from lrkit.diagnostics._log import RunLog

__all__ = [
    "Curve",
    "alignment",
    "binned",
    "curve",
    "even_samples",
    "felt_spikes",
    "fmt",
    "layer_offsets",
    "layer_ratios",
    "running_median",
    "running_rebound",
    "slope",
    "typical_ratio",
    "val_train_gap",
]


def fmt(x: float) -> str:
    """A number for a message: 3 significant digits."""
    return f"{x:.3g}"


def binned(x: np.ndarray, bins: int) -> np.ndarray:
    """The median of each of ``bins`` consecutive equal slices of ``x`` (NaNs ignored; a slice
    with no finite value is NaN)."""
    out = np.full(bins, np.nan)
    edges = np.linspace(0, len(x), bins + 1).round().astype(int)
    for i in range(bins):
        part = x[edges[i] : edges[i + 1]]
        part = part[np.isfinite(part)]
        if part.size:
            out[i] = float(np.median(part))
    return out


def running_median(y: np.ndarray, k: int) -> np.ndarray:
    """Centred running median of ``k`` (odd) points, the window shrunk at the ends (NaNs
    ignored)."""
    h = k // 2
    out = np.full(len(y), np.nan)
    for i in range(len(y)):
        w = min(h, i, len(y) - 1 - i)
        part = y[i - w : i + w + 1]
        part = part[np.isfinite(part)]
        if part.size:
            out[i] = float(np.median(part))
    return out


def running_rebound(
    y: np.ndarray, start: int = 0, where: np.ndarray | None = None
) -> tuple[float, int, int]:
    """The largest rise of ``y`` above its running minimum, ``max_{b >= start} (y_b -
    min_{a <= b} y_a)`` over the bins ``b`` where ``where`` is true (all by default), with the
    index of that minimum and of the peak (NaNs skipped)."""
    best, lo_i, hi_i = 0.0, 0, 0
    run_min, run_i = math.inf, 0
    for i, v in enumerate(y):
        if not math.isfinite(v):
            continue
        if v < run_min:
            run_min, run_i = v, i
        elif i >= start and (where is None or where[i]) and v - run_min > best:
            best, lo_i, hi_i = float(v - run_min), run_i, i
    return best, lo_i, hi_i


def slope(y: np.ndarray) -> float:
    """Least-squares slope of ``y`` against its index (per bin; NaNs skipped; 0 when fewer than
    two finite points)."""
    idx = np.arange(len(y), dtype=np.float64)
    ok = np.isfinite(y)
    if ok.sum() < 2:
        return 0.0
    return float(np.polyfit(idx[ok], y[ok], 1)[0])


@dataclass(frozen=True)
class Curve:
    """The binned view of a run (see the module docstring).

    Attributes:
        steps: the first step of each bin.
        y: the median loss of each bin (log units when ``log``).
        lr: the median main-group rate of each bin (None without a rate).
        log: whether ``y`` is ``ln(loss)``.
        n: finite training steps (before the first non-finite loss).
        first_bad: the step of the first non-finite loss (None: none).
    """

    steps: np.ndarray
    y: np.ndarray
    lr: np.ndarray | None
    log: bool
    n: int
    first_bad: int | None

    @property
    def smooth(self) -> np.ndarray:
        """``y`` through a centred running median of 5 bins (3 at the ends): one bad bin
        cannot make a rise."""
        return running_median(self.y, 5)

    @property
    def noise(self) -> float:
        """The bins' scatter around :attr:`smooth`: ``1.4826 * median |y - smooth|`` (a robust
        standard deviation), 0 when unknown."""
        dev = np.abs(self.y - self.smooth)
        dev = dev[np.isfinite(dev)]
        return float(1.4826 * np.median(dev)) if dev.size else 0.0

    @property
    def bins(self) -> int:
        """The number of bins."""
        return len(self.y)

    def at(self, frac: float) -> int:
        """The bin index at fraction ``frac`` of the run."""
        return min(self.bins - 1, max(0, round(frac * self.bins)))

    def head(self, k: int = 3) -> float:
        """The median of the first ``k`` bins."""
        return float(np.nanmedian(self.y[:k]))

    def tail(self, k: int = 3) -> float:
        """The median of the last ``k`` bins."""
        return float(np.nanmedian(self.y[-k:]))

    def to_loss(self, v: float) -> float:
        """A ``y`` value back in loss units."""
        return math.exp(v) if self.log else v


def curve(log: RunLog) -> Curve | None:
    """The binned view of ``log``'s finite prefix; None when it has fewer than 10 finite steps."""
    loss = np.asarray(log.loss)
    bad = np.flatnonzero(~np.isfinite(loss))
    cut = int(bad[0]) if bad.size else len(loss)
    first_bad = int(log.steps[cut]) if bad.size else None
    if cut < 10:
        return None
    part = loss[:cut]
    use_log = bool(np.all(part > 0))
    if use_log:
        y = np.log(part)
    else:  # relative to the starting level, so thresholds read as fractions of it
        y = part / max(abs(float(np.median(part[: max(1, cut // 20)]))), 1e-12)
    bins = int(np.clip(cut // 5, 10, 100))
    lr = log.lr
    edges = np.linspace(0, cut, bins + 1).round().astype(int)
    return Curve(
        steps=np.asarray(log.steps[:cut])[edges[:-1]].astype(np.int64),
        y=binned(y, bins),
        lr=None if lr is None else binned(np.asarray(lr)[:cut], bins),
        log=use_log,
        n=cut,
        first_bad=first_bad,
    )


def layer_ratios(log: RunLog) -> dict[str, float]:
    """Each layer's median update-to-weight ratio over its sampled steps (per group when the
    log has no per-layer ratio); layers never sampled are left out."""
    source = log.ratio or log.group_ratio
    out = {}
    for name, r in source.items():
        ok = r[np.isfinite(r) & (r > 0)]
        if ok.size:
            out[name] = float(np.median(ok))
    return out


def layer_offsets(log: RunLog, early_frac: float = 0.5) -> dict[str, tuple[float, float]]:
    """Per layer: the median over the sampled steps of the first ``early_frac`` of the run of
    ``log10 r_l(t) - median_{k != l} log10 r_k(t)``, and the layer's median ratio there.
    Steps where fewer than two layers have a positive ratio are skipped."""
    source = log.ratio or log.group_ratio
    names = list(source)
    if len(names) < 2:
        return {}
    cut = log.steps[0] + early_frac * log.total_steps
    rows = np.flatnonzero(log.steps <= cut)
    mat = np.stack([np.asarray(source[k])[rows] for k in names], axis=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        q = np.where(np.isfinite(mat) & (mat > 0), np.log10(mat), np.nan)
    q = q[np.isfinite(q).sum(axis=1) >= 2]
    out: dict[str, tuple[float, float]] = {}
    for j, name in enumerate(names):
        others = np.delete(q, j, axis=1)
        ok = np.isfinite(q[:, j]) & np.isfinite(others).any(axis=1)
        if ok.sum() == 0:
            continue
        d = q[ok, j] - np.nanmedian(others[ok], axis=1)
        out[name] = (float(np.median(d)), float(10 ** np.median(q[ok, j])))
    return out


def typical_ratio(log: RunLog) -> float | None:
    """The median over layers of :func:`layer_ratios` (None when no ratio was recorded)."""
    per = layer_ratios(log)
    return float(np.median(list(per.values()))) if per else None


def felt_spikes(
    log: RunLog, spikes: list[int], *, echo: float = 0.05, after: int = 3, noise_mult: float = 3.0
) -> list[int]:
    """The gradient-norm spikes (steps) that count: all of them when there are two or more;
    a single one only when the loss felt it, i.e. the loss (running median of 3 bins) over the
    spike's bin and the ``after`` bins that follow rose ``max(echo, noise_mult * noise)`` above
    its best before the spike. One spike the loss never noticed is an odd batch, not a
    problem of the rate or of the gradients."""
    if len(spikes) != 1:
        return spikes
    c = curve(log)
    if c is None:
        return []
    ys = running_median(c.y, 3)
    b = int(np.searchsorted(c.steps, spikes[0], side="right")) - 1
    if b < 0:
        return []
    before = ys[: b + 1]
    best = float(np.nanmin(before)) if np.isfinite(before).any() else math.nan
    rose = float(np.nanmax(ys[b : b + after + 1])) - best
    return spikes if rose >= max(echo, noise_mult * c.noise) else []


def alignment(
    log: RunLog, *, after_frac: float = 0.1, high_frac: float = 0.5, min_points: int = 2
) -> tuple[float, int] | None:
    """The median of ``grad_update_cos`` (``cos(Δw_k, -g_{k+1})``) over the sampled steps past
    the first ``after_frac`` of the run where the main group's rate is at least ``high_frac``
    of its peak, and how many there were; None without the column or with fewer than
    ``min_points`` such samples.

    Positive: the next gradient still points the way the update went (a longer step would
    have lowered the loss further); negative: the steps overshoot. At a well-tuned rate it
    sits near 0 once the first fast fall is over (the noise of the mini-batch gradient
    dominates); its sign is that of ``-dL/dlr``, the negated hypergradient of Baydin et al.
    (2018).
    """
    c, lr = log.grad_update_cos, log.lr
    if c is None or lr is None or not np.isfinite(lr).any():
        return None
    peak = float(np.nanmax(lr))
    keep = (
        np.isfinite(c)
        & (log.steps >= log.steps[0] + after_frac * log.total_steps)
        & (lr >= high_frac * peak)
    )
    if keep.sum() < min_points:
        return None
    return float(np.median(c[keep])), int(keep.sum())


def val_train_gap(log: RunLog, tail_frac: float = 0.1) -> float | None:
    """``ln(last validation loss / training loss)`` at the end of the run (the training loss as
    the median of the last ``tail_frac`` of the steps); None without positive finite values."""
    vl = log.val_loss
    if vl is None:
        return None
    v = vl[np.isfinite(vl) & (vl > 0)]
    train = np.asarray(log.loss)
    tail = (
        np.isfinite(train)
        & (train > 0)
        & (log.steps >= log.steps[-1] - tail_frac * log.total_steps)
    )
    if not v.size or not tail.any():
        return None
    return float(math.log(v[-1] / float(np.median(train[tail]))))


def even_samples(log: RunLog, first: int = 10) -> RunLog:
    """``log`` with its sampled statistics (gradient norms, update ratios) thinned to an even
    grid: the first ``first`` samples, then each sample at least ``gap`` steps after the last
    one kept, ``gap`` the 90th percentile of the sampling intervals (the log's steady
    interval, robust to a missing sample). ``lrkit.torch.Monitor`` samples the start of a run
    densely and then every ``every`` updates; the rules that count spikes or take medians over
    samples judge them on an even grid, so that a dense start does not outweigh the rest of
    the run. A sample whose gradient norm is not finite is kept anyway, on the grid or not.
    (Finite spikes off the grid are not: on the development runs, keeping those above 10x the
    kept median added false alarms on healthy runs, early spikes of runs that then train
    normally; see benchmarks/data/diagnose_accuracy_round4.txt.) ``grad_update_cos`` is left whole (its rule selects its
    own steps)."""
    cols = [*log.group_grad_norm.values(), *log.ratio.values(), *log.group_ratio.values()]
    if log.grad_norm is not None:
        cols.append(log.grad_norm)
    if not cols:
        return log
    sampled = np.flatnonzero(np.any([~np.isnan(c) for c in cols], axis=0))
    if sampled.size < first + 2:
        return log
    steps = log.steps[sampled].astype(np.float64)
    gap = float(np.quantile(np.diff(steps[first - 1 :]), 0.9)) * (1 - 1e-6)
    g = None if log.grad_norm is None else np.asarray(log.grad_norm)
    keep = list(sampled[:first])
    last = float(steps[first - 1])
    for i, s in zip(sampled[first:], steps[first:], strict=True):
        if s - last >= gap:
            keep.append(i)
            last = float(s)
        elif g is not None and np.isinf(g[i]):  # a blow-up is never thinned away
            keep.append(i)
    if len(keep) == sampled.size:
        return log
    mask = np.zeros(len(log), dtype=bool)
    mask[keep] = True

    def thin(v: np.ndarray) -> np.ndarray:
        return np.where(mask, v, np.nan)

    def thin_all(m: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        return {k: thin(v) for k, v in m.items()}

    return replace(
        log,
        grad_norm=None if log.grad_norm is None else thin(log.grad_norm),
        group_grad_norm=thin_all(log.group_grad_norm),
        ratio=thin_all(log.ratio),
        group_ratio=thin_all(log.group_ratio),
    )

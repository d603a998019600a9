"""Peak refinement for a schedule comparison: after the candidates have been compared at the
common peak, each of the best few families is trained at ``peak / factor`` and ``peak * factor``
(and, while the loss keeps falling, one more step in that direction, at most ``max_steps``
steps) with the same seeds, budget and initialisation; the rule is
:func:`lrkit.tune.rules.refine_peak`.
Each run is written atomically to ``<out>/runs/refine/`` so that ``resume`` reuses it.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from lrkit.tune._search import Search, refine_stem
from lrkit.tune.candidates import Candidate
from lrkit.tune.records import PeakRefinement, RateTrial, RunResult
from lrkit.tune.rules import refine_peak


@dataclass(frozen=True)
class RefineOptions:
    """How the peaks are refined: ``enabled``; ``factor`` between rates tried (> 1); at most
    ``max_steps`` factor steps from the peak (>= 1); the ``top`` best schedules at the common
    peak (>= 1). Validated when built."""

    enabled: bool = True
    factor: float = 2.0
    max_steps: int = 2
    top: int = 3

    def __post_init__(self) -> None:
        f = self.factor
        ok = isinstance(f, (int, float)) and not isinstance(f, bool)
        if not (ok and 1 < f < math.inf):
            raise ValueError(
                f"compare: refine_factor must be a finite number > 1, got refine_factor={f!r}"
            )
        for name, value in (("refine_steps", self.max_steps), ("refine_top", self.top)):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"compare: {name} must be an integer >= 1, got {name}={value!r}")


def strict_mean(runs: Sequence[RunResult]) -> float:
    """The mean final validation loss over the runs; inf when any of them diverged (a rate at
    which one seed of three blows up is not a rate to recommend)."""
    v = np.array([r.final_val_loss for r in runs], dtype=float)
    return float(v.mean()) if v.size and np.all(np.isfinite(v)) else math.inf


def _trial(rate: float, peak: float, runs: Sequence[RunResult]) -> RateTrial:
    v = np.array([r.final_val_loss for r in runs], dtype=float)
    ok = v[np.isfinite(v)]
    return RateTrial(
        peak=rate,
        ratio=rate / peak,
        val_loss_mean=strict_mean(runs),
        val_loss_std=float(ok.std(ddof=1)) if ok.size > 1 else None,
        diverged=int(np.sum(~np.isfinite(v))),
        seeds=len(runs),
        spec=runs[0].spec if runs else "",
    )


def refine(
    search: Search,
    cand_at: Callable[[float], Candidate],
    peak: float,
    at_peak: Sequence[RunResult],
    opts: RefineOptions,
) -> PeakRefinement:
    """Refine one family's peak: ``cand_at(rate)`` builds the family's candidate at a rate;
    ``at_peak`` are its runs at ``peak``. Returns the refinement: the range-test (common) peak
    and the refined one, one trial per rate tried (mean ± std final validation loss over the
    seeds, the common peak included) and the refinement's runs. A candidate whose spec does
    not change with the rate is not trained again: its record has ``fixed=True`` and the
    common-peak trial only."""
    runs: list[RunResult] = []
    trials = [_trial(peak, peak, at_peak)]
    base = cand_at(peak)
    if cand_at(peak * opts.factor).spec == base.spec:  # the spec does not use the peak
        return _record(base, peak, peak, opts, 0, trials, (), fixed=True)

    def losses_at(rates: list[float]) -> list[float]:
        pairs = [(cand_at(rate), rate) for rate in rates]
        got = search.results([(c, refine_stem(c, rate)) for c, rate in pairs])
        out = []
        n = len(search.seeds)
        for i, (_, rate) in enumerate(pairs):
            rs = got[i * n : (i + 1) * n]
            runs.extend(rs)
            trials.append(_trial(rate, peak, rs))
            out.append(trials[-1].val_loss_mean)
        return out

    res = refine_peak(
        peak, strict_mean(at_peak), losses_at, factor=opts.factor, max_steps=opts.max_steps
    )
    return _record(cand_at(res.refined), peak, res.refined, opts, res.steps, trials, tuple(runs))


def _record(
    best: Candidate,
    peak: float,
    refined: float,
    opts: RefineOptions,
    steps: int,
    trials: list[RateTrial],
    runs: tuple[RunResult, ...],
    fixed: bool = False,
) -> PeakRefinement:
    """The refinement record; ``fixed``: the schedule does not use the peak (a spec text without
    ``peak``), so nothing was trained and its common-peak runs stand."""
    return PeakRefinement(
        schedule=best.name,
        factor=float(opts.factor),
        max_steps=opts.max_steps,
        peak=peak,
        refined_peak=refined,
        steps=steps,
        fixed=fixed,
        spec=best.spec,
        plateau=best.plateau,
        trials=tuple(sorted(trials, key=lambda t: t.peak)),
        runs=runs,
    )

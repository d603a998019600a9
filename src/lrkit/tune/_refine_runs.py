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
from pathlib import Path
from typing import Any

import numpy as np

from lrkit.tune._runs import execute_runs, file_slug, load_run, run_key
from lrkit.tune.candidates import Candidate
from lrkit.tune.rules import refine_peak
from lrkit.tune.tasks import Task


def strict_mean(runs: Sequence[dict[str, Any]]) -> float:
    """The mean final validation loss over the runs; inf when any of them diverged (a rate at
    which one seed of three blows up is not a rate to recommend)."""
    v = np.array([r["final_val_loss"] for r in runs], dtype=float)
    return float(v.mean()) if v.size and np.all(np.isfinite(v)) else math.inf


def _trial(rate: float, peak: float, runs: Sequence[dict[str, Any]]) -> dict[str, Any]:
    v = np.array([r["final_val_loss"] for r in runs], dtype=float)
    ok = v[np.isfinite(v)]
    return {
        "peak": rate,
        "ratio": rate / peak,
        "val_loss_mean": strict_mean(runs),
        "val_loss_std": float(ok.std(ddof=1)) if ok.size > 1 else 0.0,
        "diverged": int(np.sum(~np.isfinite(v))),
        "seeds": len(runs),
        "spec": runs[0]["spec"] if runs else "",
    }


def refine(
    task: Task,
    ref: str | None,
    name: str,
    cand_at: Callable[[float], Candidate],
    peak: float,
    at_peak: Sequence[dict[str, Any]],
    seeds: list[int],
    steps: int,
    *,
    factor: float,
    max_steps: int,
    pool: Any,
    folder: Path | None,
    resume: bool,
    bar: Any,
) -> dict[str, Any]:
    """Refine one family's peak; returns the JSON-ready record: the family, the
    factor and step bound, the range-test (common) peak and the refined one, one trial per rate
    tried (mean ± std final validation loss over ``seeds``, the common peak included) and the
    refinement's runs. ``cand_at(rate)`` builds the family's candidate at a rate; ``at_peak``
    are its runs at ``peak``. A candidate whose spec does not change with the rate is not
    trained again: its record has ``fixed=True`` and the common-peak trial only."""
    runs: list[dict[str, Any]] = []
    trials = [_trial(peak, peak, at_peak)]
    if cand_at(peak * factor).spec == cand_at(peak).spec:  # the spec does not use the peak
        return _record(cand_at(peak), peak, peak, factor, max_steps, 0, trials, runs, fixed=True)

    def losses_at(rates: list[float]) -> list[float]:
        todo, got = [], {}
        for rate in rates:
            cand = cand_at(rate)
            for seed in seeds:
                key = run_key(name, cand, seed, steps)
                path = (
                    folder
                    / "runs"
                    / "refine"
                    / f"{file_slug(cand.name)}-{rate:.6g}-seed{seed}.json"
                    if folder is not None
                    else None
                )
                done = load_run(path, key) if resume else None
                if done is None:
                    todo.append((cand, seed, key, path))
                else:
                    got[(cand.spec, seed)] = done
                    _advance(bar, 1, 1)
        _advance(bar, len(todo), 0)
        for rec in execute_runs(task, ref, todo, steps, pool, bar):
            got[(rec["spec"], rec["seed"])] = rec
        out = []
        for rate in rates:
            spec = cand_at(rate).spec
            rs = [got[(spec, s)] for s in seeds]
            runs.extend(rs)
            trials.append(_trial(rate, peak, rs))
            out.append(trials[-1]["val_loss_mean"])
        return out

    res = refine_peak(peak, strict_mean(at_peak), losses_at, factor=factor, max_steps=max_steps)
    best = cand_at(res.refined)
    return _record(best, peak, res.refined, res.factor, res.max_steps, res.steps, trials, runs)


def _record(
    best: Candidate,
    peak: float,
    refined: float,
    factor: float,
    max_steps: int,
    steps: int,
    trials: list[dict[str, Any]],
    runs: list[dict[str, Any]],
    fixed: bool = False,
) -> dict[str, Any]:
    """The JSON-ready refinement record; ``fixed``: the schedule does not use the peak (a spec
    text without ``peak``), so nothing was trained and its common-peak runs stand."""
    return {
        "schedule": best.name,
        "factor": factor,
        "max_steps": max_steps,
        "peak": peak,
        "refined_peak": refined,
        "steps": steps,
        "fixed": fixed,
        "spec": best.spec,
        "plateau": best.plateau,
        "trials": sorted(trials, key=lambda t: t["peak"]),
        "runs": runs,
    }


def _advance(bar: Any, total: int, done: int) -> None:
    """Grow the progress bar by ``total`` runs, ``done`` of which are already finished."""
    if bar is not None and total:
        bar.total += total
        if done:
            bar.update(done)
        bar.refresh()

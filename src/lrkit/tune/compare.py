"""Compare learning-rate schedules on one task: same model, same initialisation, same data order,
equal step budget, several seeds (the engine behind ``lrkit compare``).

A comparison finds the peak rate with the range test (:func:`lrkit.tune.finder.find_lr`) unless
one is given, builds the candidate schedules at that peak, trains one run per (schedule, seed)
— in this process or in ``jobs`` worker processes — and writes each finished run atomically to
``<out>/runs/`` so an interrupted comparison resumes without redoing them. Then, unless told
not to, it refines the peaks of the best few schedules by factor steps (:mod:`._refine_runs`)
and recommends the best of them, each at its own peak: schedules differ in the peak they
tolerate (a warmup or a short decay phase moves it), so one common peak can favour the wrong one.
"""

from __future__ import annotations

import functools
import json
import math
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from lrkit.tools._files import write_json
from lrkit.tune import report as _report
from lrkit.tune import summary as _summary
from lrkit.tune._refine_runs import refine as _refine
from lrkit.tune._runs import (
    execute_runs,
    file_slug,
    load_run,
    progress_bar,
    run_key,
    train_run,
    worker_pool,
)
from lrkit.tune.candidates import (
    DEFAULT_SCHEDULES,
    Candidate,
    builtin_schedule,
    candidate_at,
    candidates,
    spec_schedule,
)
from lrkit.tune.tasks import Task, load_task

__all__ = [
    "DEFAULT_SCHEDULES",
    "Candidate",
    "Comparison",
    "builtin_schedule",
    "candidates",
    "compare",
    "run_key",
    "spec_schedule",
    "train_run",
]


# ---------------------------------------------------------------------------- comparison
@dataclass
class Comparison:
    """The outcome of :func:`compare`: the peak, the finder result, every run and the summary.

    ``summary`` and ``common_recommendation`` are at the common peak; ``recommendation`` is the
    final choice, made among the refined schedules at their own peaks (the same as
    ``common_recommendation`` when nothing was refined); ``refinements`` holds one record per
    refined schedule, best at the common peak first.
    """

    task: str
    peak: float
    steps: int
    seeds: list[int]
    candidates: list[Candidate]
    runs: list[dict[str, Any]]
    finder: dict[str, Any] | None = None
    summary: list[dict[str, Any]] = field(default_factory=list)
    recommendation: str = ""
    reasoning: str = ""
    target: float | None = None
    wall_s: float = 0.0
    refinements: list[dict[str, Any]] = field(default_factory=list)
    common_recommendation: str = ""

    @property
    def refinement(self) -> dict[str, Any] | None:
        """The recommended schedule's refinement record (None when it was not refined)."""
        comp = {"refinements": self.refinements, "recommendation": self.recommendation}
        return _summary.chosen_refinement(comp)  # type: ignore[return-value]

    @property
    def refined_peak(self) -> float:
        """The recommended schedule's refined peak (the common peak when not refined)."""
        ref = self.refinement
        return ref["refined_peak"] if ref else self.peak

    @property
    def recommended_spec(self) -> str:
        """The recommended schedule's spec at the refined peak ("" when none); a plateau
        candidate's controller is named after it."""
        ref = self.refinement
        if ref:
            spec, plateau = ref["spec"], ref["plateau"]
        else:
            c = next((c for c in self.candidates if c.name == self.recommendation), None)
            if c is None:
                return ""
            spec, plateau = c.spec, c.plateau
        return spec + (f" + Plateau({_kwargs(plateau)})" if plateau else "")

    def to_dict(self) -> dict[str, Any]:
        """Everything as plain JSON-ready data (what the report is written from)."""
        return {
            "task": self.task,
            "peak": self.peak,
            "steps": self.steps,
            "seeds": list(self.seeds),
            "candidates": [
                {"name": c.name, "spec": c.spec, "plateau": c.plateau} for c in self.candidates
            ],
            "finder": self.finder,
            "summary": self.summary,
            "recommendation": self.recommendation,
            "common_recommendation": self.common_recommendation,
            "reasoning": self.reasoning,
            "refined_peak": self.refined_peak,
            "recommended_spec": self.recommended_spec,
            "refinements": self.refinements,
            "target": self.target,
            "wall_s": self.wall_s,
            "runs": self.runs,
        }

    def table(self) -> str:
        """The summary as an aligned text table."""
        return _report.summary_table(self.summary, self.target)

    def write(self, folder: str | Path) -> Path:
        """Write the report folder (plots, JSON, CSV, HTML); returns the HTML file's path."""
        return _report.write_comparison(self.to_dict(), folder)


def _kwargs(d: dict[str, Any]) -> str:
    return ", ".join(f"{k}={v!r}" for k, v in d.items())


def compare(
    task: str | Task | None = None,
    *,
    schedules: Sequence[str] | None = None,
    seeds: int | Sequence[int] = 3,
    steps: int | None = None,
    peak: float | None = None,
    target: float | None = None,
    jobs: int = 1,
    out: str | Path | None = None,
    resume: bool = False,
    progress: bool = True,
    finder_steps: int = 100,
    refine: bool = True,
    refine_factor: float = 2.0,
    refine_steps: int = 2,
    refine_top: int = 3,
) -> Comparison:
    """Compare schedules on ``task`` and recommend one.

    Args:
        task: a built-in name, ``"module:function"``, or a :class:`Task` (``jobs > 1`` needs a
            name, which each worker process loads).
        schedules: built-in names (:data:`DEFAULT_SCHEDULES`) and/or spec texts using ``peak``.
        seeds: a count (seeds ``0..n-1``) or the seeds.
        steps: the step budget per run (default: the task's).
        peak: the peak rate; None runs the range test (on the seed-0 model) to find it.
        target: the validation loss for "steps to target" (default: the median of the
            schedules' mean final losses).
        jobs: worker processes (1: in this process).
        out: the report folder; finished runs go to ``out/runs/`` (needed for ``resume``).
        resume: reuse the finished runs (and range test) found in ``out`` with the same settings.
        refine: after the comparison, tune the peaks of the ``refine_top`` schedules with the
            lowest mean final validation loss at the common peak: train each at
            ``peak / refine_factor`` and ``peak * refine_factor`` (same seeds, budget and
            initialisation) and, while its mean final validation loss keeps falling, step on in
            that direction, at most ``refine_steps`` steps from the peak
            (:func:`lrkit.tune.rules.refine_peak`); then recommend the best of them, each at
            its own refined peak (:attr:`Comparison.refined_peak`,
            :attr:`Comparison.recommended_spec`). Cost per refined schedule: ``refine_steps + 1``
            extra rates at most (3 by default), each over every seed; 2 when the peak is
            already the best of three.
        refine_factor: the factor between rates tried, > 1.
        refine_steps: the most factor steps from the peak, >= 1.
        refine_top: how many schedules to refine, >= 1 (the best at the common peak first; a
            spec text without ``peak`` does not use the rate, is not retrained and does not
            count).

    Raises:
        ValueError: bad seeds/steps/jobs/peak/refine settings, ``resume`` without ``out``,
            ``jobs > 1`` with a Task object, unknown schedules or bad specs.
    """
    t0 = time.perf_counter()
    ref = task if isinstance(task, str) else None
    the_task = load_task(task)
    name = ref or the_task.name
    seed_list = (
        list(range(seeds))
        if isinstance(seeds, int) and not isinstance(seeds, bool)
        else list(seeds)  # type: ignore[arg-type]
    )
    if not seed_list or any(
        isinstance(s, bool) or not isinstance(s, int) or s < 0 for s in seed_list
    ):
        raise ValueError(
            f"compare: seeds must be a positive count or integers >= 0, got seeds={seeds!r}"
        )
    n_steps = the_task.steps if steps is None else steps
    if isinstance(n_steps, bool) or not isinstance(n_steps, int) or n_steps < 10:
        raise ValueError(f"compare: steps must be an integer >= 10, got steps={steps!r}")
    if isinstance(jobs, bool) or not isinstance(jobs, int) or jobs < 1:
        raise ValueError(f"compare: jobs must be an integer >= 1, got jobs={jobs!r}")
    if jobs > 1 and ref is None:
        raise ValueError("compare: jobs > 1 needs the task by name ('digits' or 'module:function')")
    if resume and out is None:
        raise ValueError("compare: resume=True needs out= (the report folder)")
    if peak is not None and not (isinstance(peak, (int, float)) and 0 < peak < math.inf):
        raise ValueError(f"compare: peak must be a finite number > 0, got peak={peak!r}")
    ok = isinstance(refine_factor, (int, float)) and not isinstance(refine_factor, bool)
    if not (ok and 1 < refine_factor < math.inf):
        raise ValueError(
            f"compare: refine_factor must be a finite number > 1, got refine_factor={refine_factor!r}"
        )
    if isinstance(refine_steps, bool) or not isinstance(refine_steps, int) or refine_steps < 1:
        raise ValueError(
            f"compare: refine_steps must be an integer >= 1, got refine_steps={refine_steps!r}"
        )
    if isinstance(refine_top, bool) or not isinstance(refine_top, int) or refine_top < 1:
        raise ValueError(
            f"compare: refine_top must be an integer >= 1, got refine_top={refine_top!r}"
        )
    folder = Path(out) if out is not None else None
    candidates(schedules, 1.0, n_steps)  # unknown names and bad specs fail before any training

    # One pool of workers serves the comparison and the refinement (a pool per batch would pay
    # the worker start-up again for each refinement step). It starts first, so that the
    # workers import torch and load the task while the range test runs here.
    with worker_pool(jobs, ref) as pool:
        finder = _find_peak(the_task, name, folder, resume, finder_steps) if peak is None else None
        the_peak = float(peak) if peak is not None else float(finder["suggestion"])  # type: ignore[index]
        cands = candidates(schedules, the_peak, n_steps)

        todo, runs = [], []
        refined: list[dict[str, Any]] = []
        for cand in cands:
            for seed in seed_list:
                key = run_key(name, cand, seed, n_steps)
                path = (
                    folder / "runs" / f"{file_slug(cand.name)}-seed{seed}.json" if folder else None
                )
                done = load_run(path, key) if (resume and path is not None) else None
                if done is not None:
                    runs.append(done)
                else:
                    todo.append((cand, seed, key, path))
        bar = progress_bar(progress, len(cands) * len(seed_list), len(runs))
        try:
            runs += execute_runs(the_task, ref, todo, n_steps, pool, bar)
            order = {
                (c.name, s): i for i, (c, s) in enumerate((c, s) for c in cands for s in seed_list)
            }
            runs.sort(key=lambda r: order[(r["schedule"], r["seed"])])
            summary, tgt = _report.summarise(runs, [c.name for c in cands], target)
            rec, why = _report.recommend(summary)
            final, refined = rec, []
            if refine and rec:
                for row in _summary.ranked(summary):
                    if sum(not r["fixed"] for r in refined) == refine_top:
                        break
                    item = row["schedule"]  # a candidate's name is its item (spec text stripped)
                    refined.append(
                        _refine(
                            the_task,
                            ref,
                            name,
                            functools.partial(candidate_at, item, n_steps),
                            the_peak,
                            [r for r in runs if r["schedule"] == row["schedule"]],
                            seed_list,
                            n_steps,
                            factor=float(refine_factor),
                            max_steps=refine_steps,
                            pool=pool,
                            folder=folder,
                            resume=resume,
                            bar=bar,
                        )
                    )
                final, why_refined = _summary.recommend_refined(refined, rec)
                why = f"At the common peak {the_peak:.3g}: {why} {why_refined}"
        finally:
            if bar is not None:
                bar.close()
    comp = Comparison(
        name, the_peak, n_steps, seed_list, cands, runs, finder, summary, final, why, tgt
    )
    comp.refinements, comp.common_recommendation = refined, rec
    comp.wall_s = time.perf_counter() - t0
    return comp


def _find_peak(task: Task, name: str, folder: Path | None, resume: bool, n: int) -> dict[str, Any]:
    from lrkit.tune.finder import find_lr

    path = folder / "finder.json" if folder else None
    if resume and path is not None and path.exists():
        d = json.loads(path.read_text())
        if d.get("task") == name and d.get("steps") == n:
            return d
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        model = task.model()
    model.train()
    opt = task.optimizer(model.parameters(), 1e-3)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        res = find_lr(model, opt, task.loss, task.batches(0), start=1e-6, end=10.0, steps=n)
    finally:
        torch.set_num_threads(threads)
    d = {"task": name, "steps": n, **res.to_dict()}
    if path is not None:
        write_json(path, d)
    return d

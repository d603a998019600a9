"""The outcome of a schedule comparison (:class:`Comparison`), a frozen record: the peak and the
range test, every run, the summary at the common peak (the grid search) or of the last rung (the
halving search), the refinements or the halving search's path, and the recommendation.
It becomes JSON only when written (:meth:`Comparison.to_dict`, :meth:`Comparison.write`).

numpy and the standard library only (the report's plots import matplotlib when written).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any

from lrkit.diagnostics import Finding
from lrkit.tune import findings as _findings
from lrkit.tune import summary as _summary
from lrkit.tune.candidates import Candidate
from lrkit.tune.halving import SearchPath
from lrkit.tune.range_test import FinderResult
from lrkit.tune.records import PeakRefinement, RunResult, SummaryRow

#: Rates in the full grid the search's compute is measured against (a factor 2 apart).
GRID_RATES = 12


@dataclass(frozen=True)
class Comparison:
    """The outcome of :func:`lrkit.tune.compare`.

    The grid search: ``summary`` and ``common_recommendation`` are at the common peak;
    ``recommendation`` is the final choice, made among the refined schedules at their own peaks
    (the same as ``common_recommendation`` when nothing was refined); ``refinements`` holds one
    record per refined schedule, best at the common peak first.

    The halving search (``search_path`` set): ``peak`` is the centre of the rates tried,
    ``runs`` and ``summary`` are the last rung's (full length, every seed; one row per
    configuration, named ``family@rate``), ``rung_runs`` the earlier rungs' shorter runs,
    ``recommendation`` the recommended configuration's family (also
    ``common_recommendation``), ``refined_peak`` its rate; ``refinements`` is empty.

    ``finder`` is the range test (None when the peak was given), run for ``finder_steps``
    updates; ``notes`` are warnings about the settings; ``device`` is where the trials trained.
    """

    task: str
    peak: float
    steps: int
    seeds: tuple[int, ...]
    candidates: tuple[Candidate, ...]
    runs: tuple[RunResult, ...]
    finder: FinderResult | None
    summary: tuple[SummaryRow, ...]
    recommendation: str
    reasoning: str
    target: float | None
    wall_s: float
    refinements: tuple[PeakRefinement, ...]
    common_recommendation: str
    finder_steps: int = 0
    notes: tuple[str, ...] = ()
    device: str = "cpu"
    search_path: SearchPath | None = None
    rung_runs: tuple[RunResult, ...] = ()

    @cached_property
    def findings(self) -> dict[str, tuple[Finding, ...]]:
        """Each schedule's diagnostics on its first seed's run at the common peak
        (:func:`lrkit.tune.findings.schedule_findings`), computed once."""
        return _findings.schedule_findings(self.runs, self.seeds)

    @property
    def refinement(self) -> PeakRefinement | None:
        """The recommended schedule's refinement (None when it was not refined)."""
        return _summary.chosen_refinement(self.refinements, self.recommendation)

    @property
    def refined_peak(self) -> float:
        """The recommended schedule's refined peak (the common peak when not refined); after the
        halving search, the recommended configuration's rate (the centre when none, or when its
        spec does not use the rate)."""
        if self.search_path is not None:
            rec = self.search_path.recommended
            return rec.rate if rec is not None and not rec.fixed else self.peak
        ref = self.refinement
        return ref.refined_peak if ref else self.peak

    @property
    def recommended_runs(self) -> tuple[RunResult, ...]:
        """The recommended configuration's runs (every seed, full length): at its refined peak
        when refined (from the refinement's runs, or the comparison's when the refined peak is
        the common one); after the halving search, its runs at the last rung."""
        if not self.recommendation:
            return ()
        if self.search_path is not None:
            rec = self.search_path.recommended
            label = rec.label if rec is not None else ""
            return tuple(r for r in self.runs if r.schedule == label)
        ref = self.refinement
        spec = ref.at_refined.spec if ref is not None and ref.refined_peak != ref.peak else None
        pool = ref.runs if spec is not None and ref is not None else self.runs
        name = self.recommendation
        return tuple(r for r in pool if r.schedule == name and (spec is None or r.spec == spec))

    @property
    def recommended_spec(self) -> str:
        """The recommended schedule's spec at the refined peak ("" when none); a plateau
        candidate's controller is named after it."""
        ref = self.refinement
        plateau: Mapping[str, Any] | None
        if self.search_path is not None:
            runs = self.recommended_runs
            if not runs:
                return ""
            spec, plateau = runs[0].spec, runs[0].plateau
        elif ref:
            spec, plateau = ref.spec, ref.plateau
        else:
            c = next((c for c in self.candidates if c.name == self.recommendation), None)
            if c is None:
                return ""
            spec, plateau = c.spec, c.plateau
        return spec + (f" + Plateau({_kwargs(plateau)})" if plateau else "")

    @property
    def finder_updates(self) -> int:
        """The updates the range test made, ramp and probes (0 when the peak was given)."""
        if self.finder is None:
            return 0
        return self.finder.updates or len(self.finder.rates)

    @property
    def compute(self) -> float:
        """The training the search used, in full-length runs: every run (comparison and
        refinement; for the halving search, each run's steps / the run length) plus the range
        test's updates divided by the run length."""
        test = self.finder_updates / self.steps
        if self.search_path is not None:
            return self.search_path.cost + test
        return len(self.runs) + sum(len(r.runs) for r in self.refinements) + test

    def compute_note(self) -> str:
        """One line: the search's compute against a full grid of every candidate x 12 rates a
        factor 2 apart x the same seeds."""
        grid = len(self.candidates) * GRID_RATES * len(self.seeds)
        test = f" + a {self.finder_updates}-update range test" if self.finder is not None else ""
        if self.search_path is not None:
            return (
                f"compute: used {self.compute:.1f} full-run equivalents "
                f"({_runs_by_length(self.search_path)}{test}), {100 * self.compute / grid:.0f}% "
                f"of a {grid}-run grid ({len(self.candidates)} schedules x {GRID_RATES} rates x "
                f"{len(self.seeds)} seeds)"
            )
        n = len(self.runs) + sum(len(r.runs) for r in self.refinements)
        return (
            f"compute: {n} runs of {self.steps} steps{test} = {self.compute:.1f} full runs, "
            f"{100 * self.compute / grid:.0f}% of a full grid ({len(self.candidates)} schedules "
            f"x {GRID_RATES} rates x {len(self.seeds)} seeds = {grid} runs)"
        )

    def refinement_note(self) -> str:
        """One line on the recommended schedule's peak (:func:`lrkit.tune.summary.refinement_note`,
        or :func:`lrkit.tune.summary.path_note` after the halving search)."""
        if self.search_path is not None:
            return _summary.path_note(self.search_path, self.finder is not None)
        return _summary.refinement_note(self.peak, self.finder is not None, self.refinement)

    def to_dict(self) -> dict[str, Any]:
        """Everything as plain JSON-ready data (``results.json``)."""
        finder = (
            {"task": self.task, "steps": self.finder_steps, **self.finder.to_dict()}
            if self.finder is not None
            else None
        )
        return {
            "task": self.task,
            "peak": self.peak,
            "steps": self.steps,
            "seeds": list(self.seeds),
            "device": self.device,
            "candidates": [
                {"name": c.name, "spec": c.spec, "plateau": c.plateau} for c in self.candidates
            ],
            "finder": finder,
            "search": "grid" if self.search_path is None else "halving",
            "search_path": None if self.search_path is None else self.search_path.to_dict(),
            "summary": [r.to_json() for r in self.summary],
            "recommendation": self.recommendation,
            "common_recommendation": self.common_recommendation,
            "reasoning": self.reasoning,
            "notes": list(self.notes),
            "refined_peak": self.refined_peak,
            "recommended_spec": self.recommended_spec,
            "refinements": [r.to_json() for r in self.refinements],
            "target": self.target,
            "wall_s": self.wall_s,
            "compute_full_runs": self.compute,
            "compute_note": self.compute_note(),
            "findings": _findings.findings_json(self.findings),
            "runs": [r.to_json() for r in self.runs],
            "rung_runs": [r.to_json() for r in self.rung_runs],
        }

    def table(self) -> str:
        """The summary as an aligned text table."""
        from lrkit.tune import report

        return report.summary_table(self.summary, self.target)

    def write(self, folder: str | Path) -> Path:
        """Write the report folder (plots, JSON, CSV, HTML); returns the HTML file's path."""
        from lrkit.tune import report

        return report.write_comparison(self, folder)


def _runs_by_length(path: SearchPath) -> str:
    """``"35 runs of 33 steps, 12 of 100, 12 of 300"``: the runs trained, by length."""
    by: dict[int, int] = {}
    for r in path.rungs:
        n = len(r.scores) * len(r.rung.new_seeds)
        if n:
            by[r.rung.horizon] = by.get(r.rung.horizon, 0) + n
    parts = [f"{n} of {h}" for h, n in by.items()]
    if parts:
        parts[0] = parts[0].replace(" of ", " runs of ", 1) + " steps"
    return ", ".join(parts) or "no runs"


def _kwargs(d: Mapping[str, Any]) -> str:
    return ", ".join(f"{k}={v!r}" for k, v in d.items())

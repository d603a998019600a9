"""The outcome of a schedule comparison (:class:`Comparison`), a frozen record: the peak and the
range test, every run, the summary at the common peak, the refinements and the recommendation.
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
from lrkit.tune.range_test import FinderResult
from lrkit.tune.records import PeakRefinement, RunResult, SummaryRow

#: Rates in the full grid the search's compute is measured against (a factor 2 apart).
GRID_RATES = 12


@dataclass(frozen=True)
class Comparison:
    """The outcome of :func:`lrkit.tune.compare`.

    ``summary`` and ``common_recommendation`` are at the common peak; ``recommendation`` is the
    final choice, made among the refined schedules at their own peaks (the same as
    ``common_recommendation`` when nothing was refined); ``refinements`` holds one record per
    refined schedule, best at the common peak first. ``finder`` is the range test (None when the
    peak was given), run for ``finder_steps`` updates; ``notes`` are warnings about the settings;
    ``device`` is where the trials trained.
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
        """The recommended schedule's refined peak (the common peak when not refined)."""
        ref = self.refinement
        return ref.refined_peak if ref else self.peak

    @property
    def recommended_spec(self) -> str:
        """The recommended schedule's spec at the refined peak ("" when none); a plateau
        candidate's controller is named after it."""
        ref = self.refinement
        plateau: Mapping[str, Any] | None
        if ref:
            spec, plateau = ref.spec, ref.plateau
        else:
            c = next((c for c in self.candidates if c.name == self.recommendation), None)
            if c is None:
                return ""
            spec, plateau = c.spec, c.plateau
        return spec + (f" + Plateau({_kwargs(plateau)})" if plateau else "")

    @property
    def compute(self) -> float:
        """The training the search used, in full-length runs: every run (comparison and
        refinement) plus the range test's updates divided by the run length."""
        n = len(self.runs) + sum(len(r.runs) for r in self.refinements)
        return n + (self.finder_steps / self.steps if self.finder is not None else 0.0)

    def compute_note(self) -> str:
        """One line: the search's compute against a full grid of every candidate x 12 rates a
        factor 2 apart x the same seeds."""
        grid = len(self.candidates) * GRID_RATES * len(self.seeds)
        n = len(self.runs) + sum(len(r.runs) for r in self.refinements)
        test = f" + a {self.finder_steps}-update range test" if self.finder is not None else ""
        return (
            f"compute: {n} runs of {self.steps} steps{test} = {self.compute:.1f} full runs, "
            f"{100 * self.compute / grid:.0f}% of a full grid ({len(self.candidates)} schedules "
            f"x {GRID_RATES} rates x {len(self.seeds)} seeds = {grid} runs)"
        )

    def refinement_note(self) -> str:
        """One line on the recommended schedule's peak (:func:`lrkit.tune.summary.refinement_note`)."""
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
        }

    def table(self) -> str:
        """The summary as an aligned text table."""
        from lrkit.tune import report

        return report.summary_table(self.summary, self.target)

    def write(self, folder: str | Path) -> Path:
        """Write the report folder (plots, JSON, CSV, HTML); returns the HTML file's path."""
        from lrkit.tune import report

        return report.write_comparison(self, folder)


def _kwargs(d: Mapping[str, Any]) -> str:
    return ", ".join(f"{k}={v!r}" for k, v in d.items())

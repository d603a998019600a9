"""The grid search of a schedule comparison (``compare(search="grid")``): every candidate at
the common peak on every seed (run files ``<out>/runs/<name>-seed<s>.json``), then the peaks of
the best few refined by factor steps (:mod:`._refine_runs`), and the best of them, each at its
own peak, recommended.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from lrkit.tune import summary as _summary
from lrkit.tune._refine_runs import RefineOptions
from lrkit.tune._refine_runs import refine as _refine
from lrkit.tune._search import Outcome, Search, main_stem
from lrkit.tune.candidates import DEFAULT_SCHEDULES, Candidate, candidate_at
from lrkit.tune.options import CompareOptions
from lrkit.tune.records import PeakRefinement, RunResult, SummaryRow


def grid_search(
    search: Search, cands: Sequence[Candidate], peak: float, opts: CompareOptions
) -> Outcome:
    """The grid search: run every candidate at the common ``peak`` on every seed, summarise,
    recommend, refine the best peaks (``opts.refine``) and recommend again among the
    refined."""
    runs = search.results([(c, main_stem(c)) for c in cands])
    summary, tgt = _summary.summarise(runs, [c.name for c in cands], opts.target)
    rec, why = _summary.recommend(summary)
    if not rec:
        why += f" Try a range below this peak, e.g. --peak {peak / 10:.3g}."
    names = [c.name for c in cands]
    items = dict(zip(names, opts.schedules or DEFAULT_SCHEDULES, strict=True))
    refined = _refinements(search, _RefinePicks(summary, runs, items, rec), peak, opts.refine)
    final = rec
    if refined:
        final, why_refined = _summary.recommend_refined(refined, rec)
        why = f"At the common peak {peak:.3g}: {why} {why_refined}"
    return Outcome(tuple(runs), tuple(summary), tgt, rec, tuple(refined), final, why)


def grid_most_runs(opts: CompareOptions, n_cands: int) -> int:
    """The most runs the grid search can take: every candidate x seed, plus ``max_steps + 1``
    rates x seeds for each refined schedule."""
    n = len(opts.seeds)
    refine = min(opts.refine.top, n_cands) * (opts.refine.max_steps + 1) * n
    return n_cands * n + (refine if opts.refine.enabled else 0)


@dataclass(frozen=True)
class _RefinePicks:
    """What the refinement chooses from: the summary and runs at the common peak, each
    candidate's item (built-in name or spec text, by candidate name) and the common choice."""

    summary: Sequence[SummaryRow]
    runs: Sequence[RunResult]
    items: Mapping[str, str]
    recommendation: str


def _refinements(
    search: Search, picks: _RefinePicks, peak: float, opts: RefineOptions
) -> list[PeakRefinement]:
    """Refine the peaks of the ``opts.top`` best schedules at the common peak (none when
    refinement is off or nothing converged)."""
    refined: list[PeakRefinement] = []
    if not (opts.enabled and picks.recommendation):
        return refined
    for row in _summary.ranked(picks.summary):
        if sum(not r.fixed for r in refined) == opts.top:
            break
        cand_at = functools.partial(candidate_at, picks.items[row.schedule], search.steps)
        at_peak = [r for r in picks.runs if r.schedule == row.schedule]
        refined.append(_refine(search, cand_at, peak, at_peak, opts))
    return refined

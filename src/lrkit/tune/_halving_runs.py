"""The halving search's runs: :func:`lrkit.tune.halving.successive_halving` decides what to
train, rung by rung; this module trains it through the comparison's
:class:`~lrkit.tune._search.Search` (so the executor, resume and the progress bar work as for
every other run) and summarises the last rung. Each run is written atomically to ``<out>/runs/rung<k>/`` (e.g.
``runs/rung0/cosine-0.12-seed0.json``) so that ``resume`` reuses it; its key holds its horizon.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence

from lrkit.tune import halving, recipes
from lrkit.tune import summary as _summary
from lrkit.tune._search import Outcome, Search, rung_stem
from lrkit.tune.candidates import DEFAULT_SCHEDULES, Candidate, candidate_at, candidates
from lrkit.tune.halving import Config, Plan, Rung, Score
from lrkit.tune.options import CompareOptions
from lrkit.tune.probe_rule import range_test_updates
from lrkit.tune.records import RunResult

#: The runs trained so far, by (configuration label, seed, horizon).
_Memo = dict[tuple[str, int, int], RunResult]


def halving_plan(opts: CompareOptions, steps: int) -> Plan:
    """The halving search's plan for ``opts``: the schedules (by candidate name; those whose
    spec does not use the rate marked fixed), the seeds, and the range test's cost (its ramp
    of ``finder_steps`` updates and its probe runs, / ``steps``, when the peak is not given)
    within the budget.

    Raises:
        ValueError: unknown names, bad specs, or a budget too small.
    """
    at_1 = candidates(opts.schedules, 1.0, steps)
    at_2 = candidates(opts.schedules, 2.0, steps)
    fixed = [a.name for a, b in zip(at_1, at_2, strict=True) if a.spec == b.spec]
    test = range_test_updates(opts.finder_steps) / steps if opts.peak is None else 0.0
    names = [c.name for c in at_1]
    items = opts.schedules or DEFAULT_SCHEDULES
    scales = [recipes.RECIPES[i].rate_scale if i in recipes.RECIPES else 1.0 for i in items]
    return halving.plan(
        names,
        opts.halving,
        steps=steps,
        seeds=opts.seeds,
        fixed=fixed,
        extra_cost=test,
        scales=scales,
    )


def halving_search(
    search: Search, plan: Plan, cands: Sequence[Candidate], center: float, opts: CompareOptions
) -> Outcome:
    """Run ``plan`` around ``center`` (:func:`lrkit.tune.halving.successive_halving`) and
    recommend the best of its last rung: ``cands`` are the schedules at the centre (each
    rebuilt from its built-in name or spec text in ``opts.schedules`` at each rung's horizon and
    rate); ``search`` is the comparison's context at the full length and every seed;
    ``opts.target``: the loss for "steps to target" in the summary (default: the median)."""
    items = dict(zip([c.name for c in cands], opts.schedules or DEFAULT_SCHEDULES, strict=True))
    memo: _Memo = {}

    def evaluate(rung: Rung, configs: Sequence[Config]) -> list[Score]:
        return _evaluate(search, rung, configs, items, memo)

    path = halving.successive_halving(plan, center, evaluate)
    last = path.rungs[-1]
    rec = path.recommended
    finals = [
        memo[(s.config.label, seed, plan.steps)] for s in last.scores for seed in last.rung.seeds
    ]
    keys = {id(r) for r in finals}
    earlier = tuple(r for r in memo.values() if id(r) not in keys)
    rows, tgt = _summary.summarise(finals, [s.config.label for s in last.scores], opts.target)
    _, why = _summary.recommend(rows, best=rec.label if rec else None)
    why = f"{_summary.path_sentence(path)} {why}"
    if rec is None:
        low = min((s.config.rate for r in path.rungs for s in r.scores), default=center)
        why += f" Try a range below the rates tried, e.g. --peak {low / 10:.3g}."
    name = rec.family if rec else ""
    return Outcome(tuple(finals), tuple(rows), tgt, name, (), name, why, path, earlier)


def _candidate(config: Config, items: Mapping[str, str], horizon: int) -> Candidate:
    """``config``'s candidate rebuilt for ``horizon`` steps (the schedule's shape rescaled),
    named by the configuration's label."""
    cand = candidate_at(items[config.family], horizon, config.rate)
    return dataclasses.replace(cand, name=config.label)


def _evaluate(
    search: Search, rung: Rung, configs: Sequence[Config], items: Mapping[str, str], memo: _Memo
) -> list[Score]:
    """Train ``configs`` at ``rung`` (its horizon, its new seeds; the other seeds come from
    ``memo``, trained at an earlier rung of the same horizon) and score them on its seeds."""
    h = rung.horizon
    if configs and rung.new_seeds:
        here = dataclasses.replace(search, steps=h, seeds=rung.new_seeds, rung=rung.index)
        todo = [
            (_candidate(c, items, h), rung_stem(c.family, rung.index, None if c.fixed else c.rate))
            for c in configs
        ]
        got = here.results(todo)
        n = len(rung.new_seeds)
        for i, c in enumerate(configs):
            for seed, run in zip(rung.new_seeds, got[i * n : (i + 1) * n], strict=True):
                memo[(c.label, seed, h)] = run
    return [
        Score(c, tuple(memo[(c.label, seed, h)].final_val_loss for seed in rung.seeds))
        for c in configs
    ]

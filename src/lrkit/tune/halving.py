"""Successive halving over (schedule family x peak rate), the default search of
:func:`lrkit.tune.compare`: the plan (how many rates, each rung's horizon, seeds and size, the
worst-case cost against a budget) and the judgement of each rung (which configurations go on,
which are cut, where a family's range of rates is extended, which one is recommended). No
training happens here: :mod:`lrkit.tune._halving_runs` trains what the plan asks for.

With ``F`` families that use the rate, ``G`` that do not (a spec text without ``peak``: one
configuration each), ``n`` rates, ``R`` rungs (3), ``eta`` (3), a run length of ``T`` steps and
``S`` seeds:

* rung 0 tries every family at the rates ``center * factor**j``, ``j = -(n-1)/2 .. (n-1)/2``:
  ``N_0 = F * n + G`` configurations;
* rung ``k`` trains ``N_k = ceil(N_{k-1} / eta)`` configurations for
  ``H_k = min(T, max(10, round(T / eta**(R-1-k))))`` steps, on the first seed for ``k < R-1``
  and on every seed at the last rung (``H_{R-1} = T``);
* a rung keeps (promotes) its ``N_{k+1}`` configurations with the lowest final validation loss,
  never one that diverged (its loss is ``inf``); at the last rung the lowest mean over the seeds
  is recommended (a configuration with a diverged seed counts as ``inf``);
* a (configuration, seed) already trained for the same horizon at an earlier rung is reused, not
  trained again (with ``T = 30`` rungs 0 and 1 are both 10 steps long);
* cost, in full-run equivalents: ``sum_k N_k * S_k_new * H_k / T`` (``S_k_new``: the seeds
  rung ``k`` trains, not reused) plus the range test's ``updates / T``.

Edge extension: after rung 0, a family whose best rate is the highest (lowest) rate tried and
strictly better than its neighbour gets one more rate a factor further on that side, at rung 0,
and again while the newest rate keeps being the best, at most :data:`MAX_EXTEND` times; the
extensions do not enlarge the later rungs (their sizes are the plan's).

Reference: K. Jamieson, A. Talwalkar, "Non-stochastic best arm identification and
hyperparameter optimization", AISTATS 2016 (successive halving); L. Li et al., "Hyperband",
JMLR 2018.

:func:`successive_halving` runs the whole search given a function that trains and scores
configurations at a rung; the plan (:func:`plan`, :class:`Plan`, :class:`HalvingOptions`) is made
in :mod:`lrkit.tune.halving_plan` and exported here too.

Standard library only.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from lrkit.tune.halving_plan import (
    DEFAULT_BUDGET,
    DEFAULT_ETA,
    DEFAULT_FACTOR,
    MAX_EXTEND,
    MIN_HORIZON,
    N_RATES_CHOICES,
    RUNGS,
    SEARCHES,
    Config,
    HalvingOptions,
    Plan,
    Rung,
    horizons,
    plan,
)

__all__ = [
    "DEFAULT_BUDGET",
    "DEFAULT_ETA",
    "DEFAULT_FACTOR",
    "MAX_EXTEND",
    "MIN_HORIZON",
    "N_RATES_CHOICES",
    "RUNGS",
    "SEARCHES",
    "Config",
    "Evaluate",
    "Extension",
    "HalvingOptions",
    "Plan",
    "Rung",
    "RungResult",
    "Score",
    "SearchPath",
    "best",
    "extension_records",
    "extensions",
    "horizons",
    "plan",
    "promote",
    "ranked",
    "successive_halving",
]


@dataclass(frozen=True)
class Score:
    """A configuration's result at a rung: its final validation loss on each of the rung's
    seeds (``inf``: diverged)."""

    config: Config
    losses: tuple[float, ...]

    @property
    def loss(self) -> float:
        """The mean over the seeds; ``inf`` when any seed diverged (or none ran)."""
        v = self.losses
        return sum(v) / len(v) if v and all(math.isfinite(x) for x in v) else math.inf

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready (non-finite losses as null)."""
        return {
            **self.config.to_dict(),
            "label": self.config.label,
            "losses": [x if math.isfinite(x) else None for x in self.losses],
            "loss": self.loss if math.isfinite(self.loss) else None,
        }


def ranked(scores: Sequence[Score]) -> list[Score]:
    """The scores lowest loss first; ties keep their order."""
    return sorted(scores, key=lambda s: s.loss)


def promote(scores: Sequence[Score], keep: int) -> tuple[Config, ...]:
    """The ``keep`` configurations with the lowest loss (best first, ties in order); one whose
    loss is ``inf`` (diverged) is never promoted, so fewer may go on."""
    return tuple(s.config for s in ranked(scores) if math.isfinite(s.loss))[: max(keep, 0)]


def best(scores: Sequence[Score]) -> Config | None:
    """The configuration with the lowest mean loss (the first on ties); None when every one
    diverged on some seed."""
    got = promote(scores, 1)
    return got[0] if got else None


def extensions(scores: Sequence[Score], plan: Plan, center: float) -> tuple[Config, ...]:
    """The next edge-extension configurations after rung-0 ``scores`` (every family's, the
    extensions so far included): for each family that uses the rate, one rate a factor below
    its lowest when that one is its best (the lowest rate on ties) and strictly better than its
    neighbour, and fewer than :data:`MAX_EXTEND` were added on that side; likewise above its
    highest. A family thus extends on one side only."""
    out: list[Config] = []
    lo, hi = plan.exponents[0], plan.exponents[-1]
    for fam in plan.families:
        own = sorted((s for s in scores if s.config.family == fam), key=lambda s: s.config.exponent)
        if fam in plan.fixed or len(own) < 2:
            continue
        top = min(own, key=lambda s: s.loss)  # the first (lowest rate) on ties
        if not math.isfinite(top.loss):
            continue
        j = top.config.exponent
        if top is own[0] and top.loss < own[1].loss and lo - j < MAX_EXTEND:
            out.append(plan.extended(top.config, -1, center))
        elif top is own[-1] and top.loss < own[-2].loss and j - hi < MAX_EXTEND:
            out.append(plan.extended(top.config, 1, center))
    return tuple(out)


@dataclass(frozen=True)
class Extension:
    """A family's range extended at rung 0: ``direction`` +1 (up) or -1 (down) and the
    ``rates`` added, in the order tried."""

    family: str
    direction: int
    rates: tuple[float, ...]

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready."""
        return {"family": self.family, "direction": self.direction, "rates": list(self.rates)}


def extension_records(scores: Sequence[Score], plan: Plan) -> tuple[Extension, ...]:
    """The extensions among rung-0 ``scores``: per family and side, the rates beyond the
    planned range."""
    out = []
    lo, hi = plan.exponents[0], plan.exponents[-1]
    for fam in plan.families:
        own = sorted((s.config for s in scores if s.config.family == fam), key=lambda c: c.exponent)
        down = tuple(c.rate for c in reversed(own) if c.exponent < lo)
        up = tuple(c.rate for c in own if c.exponent > hi)
        out += [Extension(fam, -1, down)] if down else []
        out += [Extension(fam, 1, up)] if up else []
    return tuple(out)


@dataclass(frozen=True)
class RungResult:
    """One rung as it went: the planned ``rung``, every configuration's ``scores`` (in the
    order trained) and the configurations ``promoted`` to the next rung (best first; none at
    the last rung)."""

    rung: Rung
    scores: tuple[Score, ...]
    promoted: tuple[Config, ...] = ()

    @property
    def cut(self) -> tuple[Config, ...]:
        """The configurations not promoted (none at the last rung: nothing follows it)."""
        if self.rung.final:
            return ()
        keep = set(self.promoted)
        return tuple(s.config for s in self.scores if s.config not in keep)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready."""
        return {
            "index": self.rung.index,
            "horizon": self.rung.horizon,
            "seeds": list(self.rung.seeds),
            "scores": [s.to_dict() for s in self.scores],
            "promoted": [c.label for c in self.promoted],
            "cut": [c.label for c in self.cut],
        }


@dataclass(frozen=True)
class SearchPath:
    """How the halving search went: the ``center`` rate (the range test's suggestion or the
    given peak), the ``plan``, each rung as it went, the range ``extensions`` and the
    ``recommended`` configuration (None when every one of the last rung diverged)."""

    center: float
    plan: Plan
    rungs: tuple[RungResult, ...]
    extensions: tuple[Extension, ...] = field(default=())
    recommended: Config | None = None

    @property
    def cost(self) -> float:
        """The training the search's runs used, in full-run equivalents (the range test not
        included): ``sum_k len(scores_k) * len(new_seeds_k) * horizon_k / steps``."""
        return sum(self.plan.rung_cost(r.rung.index, len(r.scores)) for r in self.rungs)

    @property
    def runs(self) -> int:
        """How many runs the search trained (reused ones not counted twice)."""
        return sum(len(r.scores) * len(r.rung.new_seeds) for r in self.rungs)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready."""
        rec = self.recommended
        return {
            "center": self.center,
            "plan": self.plan.to_dict(),
            "rungs": [r.to_dict() for r in self.rungs],
            "extensions": [e.to_dict() for e in self.extensions],
            "recommended": None if rec is None else {**rec.to_dict(), "label": rec.label},
            "cost": self.cost,
            "runs": self.runs,
        }


#: Trains ``configs`` at ``rung`` (its horizon, on its seeds) and returns their scores, in order.
Evaluate = Callable[[Rung, Sequence[Config]], Sequence[Score]]


def _affordable(
    more: Sequence[Config], scores: Sequence[Score], slack: float, unit: float
) -> tuple[Config, ...]:
    """The extensions that what is left of the budget (``slack``, each costing ``unit``) pays
    for: the families with the lowest rung-0 loss first."""
    n = len(more) if math.isinf(slack) else max(0, math.floor(slack / unit + 1e-9))
    best_of: dict[str, float] = {}
    for sc in scores:
        best_of[sc.config.family] = min(best_of.get(sc.config.family, math.inf), sc.loss)
    return tuple(sorted(more, key=lambda c: best_of.get(c.family, math.inf))[:n])


def successive_halving(plan: Plan, center: float, evaluate: Evaluate) -> SearchPath:
    """Run ``plan`` around ``center``: score rung 0's configurations (:meth:`Plan.configs`),
    extend the families' ranges while that improves (:func:`extensions`, at most
    :data:`MAX_EXTEND` rounds, and no more extension runs than the budget leaves after the
    plan's worst case, the families with the lowest loss first), then at each rung promote the next rung's planned size
    (:func:`promote`) and score those at the next rung; recommend the best of the last
    (:func:`best`). ``evaluate`` does the training (never called with no configurations).

    >>> p = plan(["a"], HalvingOptions(n_rates=3, eta=2), steps=40, seeds=(0,))
    >>> def evaluate(rung, configs):  # rates 0.5, 1, 2; the loss is lowest at 4 (exponent 2)
    ...     return [Score(c, ((c.exponent - 2) ** 2 + 1.0,)) for c in configs]
    >>> path = successive_halving(p, 1.0, evaluate)  # 4 is better than 2, 8 is not
    >>> [(e.direction, e.rates) for e in path.extensions], path.recommended.rate
    ([(1, (4.0, 8.0))], 4.0)
    """

    def scored(rung: Rung, configs: Sequence[Config]) -> list[Score]:
        return list(evaluate(rung, configs)) if configs else []

    scores = scored(plan.rungs[0], plan.configs(center))
    slack = math.inf if plan.budget is None else plan.budget - plan.worst_cost
    unit = plan.rung_cost(0, 1)
    for _ in range(MAX_EXTEND):
        more = _affordable(extensions(scores, plan, center), scores, slack, unit)
        if not more:
            break
        slack -= len(more) * unit
        scores += scored(plan.rungs[0], more)
    rungs: list[RungResult] = []
    for rung in plan.rungs:
        if rung.index > 0:
            scores = scored(rung, rungs[-1].promoted)
        nxt = rung.index + 1
        keep = plan.rungs[nxt].size if nxt < len(plan.rungs) else 0
        rungs.append(RungResult(rung, tuple(scores), promote(scores, keep)))
    ext = extension_records(rungs[0].scores, plan)
    return SearchPath(center, plan, tuple(rungs), ext, best(rungs[-1].scores))

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
configurations at a rung; :func:`plan` makes the plan.

>>> p = plan(["cosine", "wsd"], HalvingOptions(n_rates=3), steps=90, seeds=(0, 1))
>>> [(r.horizon, r.size, r.seeds) for r in p.rungs]
[(10, 6, (0,)), (30, 2, (0,)), (90, 1, (0, 1))]
>>> round(p.worst_cost, 4)  # 6 x 10/90 + 2 x 30/90 + 1 x 2 x 90/90
3.3333

Standard library only.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

#: The default budget of the search, in full-run equivalents (range test included).
DEFAULT_BUDGET = 24.0
#: The default reduction factor between rungs (each keeps the best ``1/eta``).
DEFAULT_ETA = 3.0
#: The default ratio between neighbouring rates of a family.
DEFAULT_FACTOR = 2.0
#: The numbers of rates per family the plan chooses from (the largest that fits the budget).
N_RATES_CHOICES = (3, 5, 7, 9)
#: The shortest horizon of a rung, in steps.
MIN_HORIZON = 10
#: The most rates an edge extension adds on one side of a family's range.
MAX_EXTEND = 3
#: The number of rungs.
RUNGS = 3
#: The two searches of :func:`lrkit.tune.compare`.
SEARCHES = ("halving", "grid")


def _is_num(v: object) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


@dataclass(frozen=True)
class HalvingOptions:
    """The settings of the halving search, validated when built: ``budget`` in full-run
    equivalents (None: :data:`DEFAULT_BUDGET` when ``n_rates`` is None, else no cap);
    ``n_rates`` per family (an odd integer >= 1; None: the largest of :data:`N_RATES_CHOICES`
    that fits the budget); ``eta`` (> 1) the reduction factor between rungs; ``factor``
    (>= 1.1) the ratio between neighbouring rates.

    Raises:
        ValueError: a bad value (the message names it).
    """

    budget: float | None = None
    n_rates: int | None = None
    eta: float = DEFAULT_ETA
    factor: float = DEFAULT_FACTOR

    def __post_init__(self) -> None:
        b, n, e, f = self.budget, self.n_rates, self.eta, self.factor
        if b is not None and not (_is_num(b) and 0 < b < math.inf):
            raise ValueError(f"compare: budget must be a finite number > 0, got budget={b!r}")
        if n is not None and not (isinstance(n, int) and not isinstance(n, bool) and n % 2 == 1):
            raise ValueError(f"compare: n_rates must be an odd integer >= 1, got n_rates={n!r}")
        if n is not None and n < 1:
            raise ValueError(f"compare: n_rates must be an odd integer >= 1, got n_rates={n!r}")
        if not (_is_num(e) and 1 < e < math.inf):
            raise ValueError(f"compare: eta must be a finite number > 1, got eta={e!r}")
        if not (_is_num(f) and 1.1 <= f < math.inf):
            raise ValueError(f"compare: factor must be a finite number >= 1.1, got factor={f!r}")


@dataclass(frozen=True)
class Rung:
    """One rung of the plan: its ``index``, the ``horizon`` (steps per run), the ``seeds`` its
    configurations are judged on, the ``size`` (how many configurations it trains at most; rung
    0 without extensions) and ``new_seeds``, the seeds it trains (the others were trained for
    the same horizon at an earlier rung and are reused)."""

    index: int
    horizon: int
    seeds: tuple[int, ...]
    size: int
    new_seeds: tuple[int, ...]


@dataclass(frozen=True)
class Config:
    """One configuration: a schedule ``family`` (a candidate's name) at ``rate`` =
    ``center * factor**exponent``; ``fixed``: the family's spec does not use the rate (one
    configuration, rate = center)."""

    family: str
    rate: float
    exponent: int = 0
    fixed: bool = False

    @property
    def label(self) -> str:
        """Its name in tables and run records: ``"cosine@0.241"`` (the family alone when
        fixed)."""
        return self.family if self.fixed else f"{self.family}@{self.rate:.3g}"

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready."""
        return {"family": self.family, "rate": self.rate, "exponent": self.exponent}


@dataclass(frozen=True)
class Plan:
    """What the search will do (:func:`plan`): the ``families`` (in order; those in ``fixed``
    do not use the rate), the run length ``steps``, the rates per family ``n_rates``, ``eta``,
    ``factor``, the ``budget`` it was fitted to (None: no cap), the ``rungs`` and
    ``extra_cost``, the range test's cost in full-run equivalents (0 when the peak is given)."""

    families: tuple[str, ...]
    fixed: tuple[str, ...]
    steps: int
    n_rates: int
    eta: float
    factor: float
    budget: float | None
    rungs: tuple[Rung, ...]
    extra_cost: float = 0.0

    def rung_cost(self, index: int, size: int | None = None) -> float:
        """Rung ``index``'s cost in full-run equivalents for ``size`` configurations (default:
        the planned size): ``size * len(new_seeds) * horizon / steps``."""
        r = self.rungs[index]
        n = r.size if size is None else size
        return n * len(r.new_seeds) * r.horizon / self.steps

    @property
    def worst_cost(self) -> float:
        """The most the plan costs without edge extensions: every rung full, plus
        ``extra_cost``."""
        return self.extra_cost + sum(self.rung_cost(k) for k in range(len(self.rungs)))

    @property
    def most_runs(self) -> int:
        """The most runs the search can train: every rung full, plus :data:`MAX_EXTEND`
        extension runs per family that uses the rate."""
        full = sum(r.size * len(r.new_seeds) for r in self.rungs)
        moving = len(self.families) - len(self.fixed)
        return full + MAX_EXTEND * moving * len(self.rungs[0].new_seeds)

    @property
    def exponents(self) -> range:
        """The exponents ``j`` of rung 0's rates, ``-(n-1)/2 .. (n-1)/2``."""
        half = (self.n_rates - 1) // 2
        return range(-half, half + 1)

    def configs(self, center: float) -> tuple[Config, ...]:
        """Rung 0's configurations around ``center``: family by family, rates ascending."""
        out = []
        for fam in self.families:
            if fam in self.fixed:
                out.append(Config(fam, center, 0, fixed=True))
            else:
                out += [Config(fam, center * self.factor**j, j) for j in self.exponents]
        return tuple(out)

    def extended(self, config: Config, direction: int, center: float) -> Config:
        """``config``'s family one factor step further in ``direction`` (+1 up, -1 down)."""
        j = config.exponent + direction
        return Config(config.family, center * self.factor**j, j)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready."""
        return {
            "families": list(self.families),
            "fixed": list(self.fixed),
            "steps": self.steps,
            "n_rates": self.n_rates,
            "eta": self.eta,
            "factor": self.factor,
            "budget": self.budget,
            "worst_cost": self.worst_cost,
            "extra_cost": self.extra_cost,
            "rungs": [
                {"index": r.index, "horizon": r.horizon, "seeds": list(r.seeds), "size": r.size}
                for r in self.rungs
            ],
        }


def horizons(steps: int, eta: float, rungs: int = RUNGS) -> tuple[int, ...]:
    """Each rung's run length: ``min(steps, max(MIN_HORIZON, round(steps / eta**(rungs-1-k))))``.

    >>> horizons(300, 3)
    (33, 100, 300)
    >>> horizons(30, 3)
    (10, 10, 30)
    """
    return tuple(
        min(steps, max(MIN_HORIZON, round(steps / eta ** (rungs - 1 - k)))) for k in range(rungs)
    )


def _rungs(n0: int, steps: int, seeds: tuple[int, ...], eta: float) -> tuple[Rung, ...]:
    out: list[Rung] = []
    size = n0
    hs = horizons(steps, eta)
    for k, h in enumerate(hs):
        judged = seeds if k == len(hs) - 1 else seeds[:1]
        done = {s for r in out if r.horizon == h for s in r.seeds}
        new = tuple(s for s in judged if s not in done)
        out.append(Rung(k, h, judged, size, new))
        size = math.ceil(size / eta)
    return tuple(out)


def plan(
    families: Sequence[str],
    opts: HalvingOptions,
    *,
    steps: int,
    seeds: Sequence[int],
    fixed: Sequence[str] = (),
    extra_cost: float = 0.0,
) -> Plan:
    """The plan for ``families`` (``fixed``: those whose spec does not use the rate) over runs
    of ``steps`` with ``seeds``, and a range test costing ``extra_cost`` full runs: with
    ``opts.n_rates`` rates per family, else the largest of :data:`N_RATES_CHOICES` whose worst
    case (:attr:`Plan.worst_cost`, extensions excluded) fits ``opts.budget``.

    Raises:
        ValueError: not even 3 rates (or the ``n_rates`` given) fit the budget; the message
            names the budget and the minimum. No families, steps < 10 or no seeds.
    """
    fams = tuple(families)
    if not fams or len(set(fams)) != len(fams):
        raise ValueError(f"compare: families must be distinct and not empty, got {fams!r}")
    if isinstance(steps, bool) or not isinstance(steps, int) or steps < MIN_HORIZON:
        raise ValueError(f"compare: steps must be an integer >= 10, got steps={steps!r}")
    if not seeds:
        raise ValueError(f"compare: seeds must not be empty, got seeds={tuple(seeds)!r}")
    if not set(fixed) <= set(fams):
        raise ValueError(f"compare: fixed must name families, got fixed={tuple(fixed)!r}")
    fix = tuple(f for f in fams if f in set(fixed))
    budget = opts.budget
    if budget is None and opts.n_rates is None:
        budget = DEFAULT_BUDGET

    def make(n: int) -> Plan:
        n0 = (len(fams) - len(fix)) * n + len(fix)
        rungs = _rungs(n0, steps, tuple(seeds), float(opts.eta))
        return Plan(fams, fix, steps, n, opts.eta, opts.factor, budget, rungs, extra_cost)

    choices = (opts.n_rates,) if opts.n_rates is not None else N_RATES_CHOICES
    plans = [make(n) for n in choices]
    fits = [p for p in plans if budget is None or p.worst_cost <= budget]
    if not fits:
        least = plans[0]
        raise ValueError(
            f"compare: budget must be >= {math.ceil(least.worst_cost * 100) / 100:g} full-run "
            f"equivalents (the worst case of n_rates={least.n_rates} for {len(fams)} "
            f"schedule(s), {len(seeds)} seed(s), {steps} steps), got budget={budget!r}"
        )
    return fits[-1]


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
        if self.rung.index == RUNGS - 1:
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


def successive_halving(plan: Plan, center: float, evaluate: Evaluate) -> SearchPath:
    """Run ``plan`` around ``center``: score rung 0's configurations (:meth:`Plan.configs`),
    extend the families' ranges while that improves (:func:`extensions`, at most
    :data:`MAX_EXTEND` rounds), then at each rung promote the next rung's planned size
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
    for _ in range(MAX_EXTEND):
        more = extensions(scores, plan, center)
        if not more:
            break
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

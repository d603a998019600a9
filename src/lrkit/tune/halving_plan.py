"""The plan of the halving search (:mod:`lrkit.tune.halving`), fixed before any training: the
settings (:class:`HalvingOptions`), each rung's horizon, seeds and size (:class:`Rung`), the
configurations of rung 0 (:class:`Config`) and the worst-case cost that the budget bounds
(:class:`Plan`, :func:`plan`).

With ``F`` families that use the rate, ``G`` that do not, ``n`` rates, ``R`` rungs (3), ``eta``,
a run length of ``T`` steps and ``S`` seeds: ``N_0 = F * n + G``,
``N_k = ceil(N_{k-1} / eta)``, ``H_k = min(T, max(10, round(T / eta**(R-1-k))))``; rungs before
the last train on the first seed, the last on every seed; a rung trains only the seeds not
already trained for the same horizon at an earlier rung (``S_k_new``); the worst case is
``extra_cost + sum_k N_k * S_k_new * H_k / T`` (extensions excluded).

>>> p = plan(["cosine", "wsd"], HalvingOptions(n_rates=3), steps=90, seeds=(0, 1))
>>> [(r.horizon, r.size, r.seeds) for r in p.rungs]
[(10, 6, (0,)), (30, 2, (0,)), (90, 1, (0, 1))]
>>> round(p.worst_cost, 4)  # 6 x 10/90 + 2 x 30/90 + 1 x 2 x 90/90
3.3333

Standard library only.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

#: The default budget of the search, in full-run equivalents (range test included): a tenth of
#: a grid of 7 recipes x 12 rates x 3 seeds; with it, 5 rates per recipe for runs of 150 steps
#: or more (the range test then costs up to 5 runs), the best of the settings tried on the
#: development half of benchmarks/suite.py (benchmarks/tune_quality.py).
DEFAULT_BUDGET = 25.0
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
    (>= 1.1) the ratio between neighbouring rates; ``rungs`` (2..5) how many rungs.

    Raises:
        ValueError: a bad value (the message names it).
    """

    budget: float | None = None
    n_rates: int | None = None
    eta: float = DEFAULT_ETA
    factor: float = DEFAULT_FACTOR
    rungs: int = RUNGS

    def __post_init__(self) -> None:
        b, n, e, f = self.budget, self.n_rates, self.eta, self.factor
        r = self.rungs
        if not (isinstance(r, int) and not isinstance(r, bool) and 2 <= r <= 5):
            raise ValueError(f"compare: rungs must be an integer in 2..5, got rungs={r!r}")
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
    the same horizon at an earlier rung and are reused); ``final``: the last rung."""

    index: int
    horizon: int
    seeds: tuple[int, ...]
    size: int
    new_seeds: tuple[int, ...]
    final: bool = False


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
    scales: tuple[float, ...] = ()

    def scale(self, family: str) -> float:
        """The factor between ``family``'s rates and the centre's (``scales``, aligned with
        ``families``; 1 when not given)."""
        if not self.scales:
            return 1.0
        return self.scales[self.families.index(family)]

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
                c = center * self.scale(fam)
                out += [Config(fam, c * self.factor**j, j) for j in self.exponents]
        return tuple(out)

    def extended(self, config: Config, direction: int, center: float) -> Config:
        """``config``'s family one factor step further in ``direction`` (+1 up, -1 down)."""
        j = config.exponent + direction
        return Config(config.family, center * self.scale(config.family) * self.factor**j, j)

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


def _rungs(n0: int, steps: int, seeds: tuple[int, ...], eta: float, rungs: int) -> tuple[Rung, ...]:
    out: list[Rung] = []
    size = n0
    hs = horizons(steps, eta, rungs)
    for k, h in enumerate(hs):
        last = k == len(hs) - 1
        judged = seeds if last else seeds[:1]
        done = {s for r in out if r.horizon == h for s in r.seeds}
        new = tuple(s for s in judged if s not in done)
        out.append(Rung(k, h, judged, size, new, last))
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
    scales: Sequence[float] = (),
) -> Plan:
    """The plan for ``families`` (``fixed``: those whose spec does not use the rate) over runs
    of ``steps`` with ``seeds``, and a range test costing ``extra_cost`` full runs (``scales``:
    each family's rates are ``center * scale * factor**j``; default 1 for all): with
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
    if scales and (len(scales) != len(fams) or not all(0 < float(x) < math.inf for x in scales)):
        raise ValueError(
            f"compare: scales must be one finite number > 0 per family, got {tuple(scales)!r}"
        )
    budget = opts.budget
    if budget is None and opts.n_rates is None:
        budget = DEFAULT_BUDGET

    def make(n: int) -> Plan:
        n0 = (len(fams) - len(fix)) * n + len(fix)
        rungs = _rungs(n0, steps, tuple(seeds), float(opts.eta), opts.rungs)
        return Plan(
            fams, fix, steps, n, opts.eta, opts.factor, budget, rungs, extra_cost, tuple(scales)
        )

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

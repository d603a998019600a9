"""The halving search's planner and judge (lrkit.tune.halving), without training: rung
arithmetic, budget -> rates, promotion, edge extension, recommendation, and their invariants."""

from __future__ import annotations

import itertools
import math
import random

import pytest
from hypothesis import given
from hypothesis import strategies as st
from tests import strategies as S

from lrkit.tune import halving
from lrkit.tune.halving import (
    Config,
    HalvingOptions,
    Score,
    extensions,
    horizons,
    plan,
    promote,
    successive_halving,
)

SEVEN = ("constant", "step", "cosine", "warmup-cosine", "one-cycle", "wsd", "plateau")


@pytest.mark.parametrize(
    ("steps", "eta", "expected"),
    [
        (300, 3, (33, 100, 300)),  # round(300 / 9) = 33
        (900, 3, (100, 300, 900)),
        (1000, 2, (250, 500, 1000)),
        (30, 3, (10, 10, 30)),  # raised to the 10-step minimum
        (10, 3, (10, 10, 10)),
        (50, 1.5, (22, 33, 50)),
    ],
)
def test_horizons(steps, eta, expected):
    """Rung k runs round(steps / eta**(2-k)) steps, at least 10, at most steps."""
    assert horizons(steps, eta) == expected


def test_default_plan_for_the_seven_recipes():
    """Seven recipes, 300 steps, 3 seeds and a 100-update range test: the default budget (25)
    allows 5 rates (7 would cost 29.4); rungs of 35, 12 and 4 configurations."""
    p = plan(SEVEN, HalvingOptions(), steps=300, seeds=(0, 1, 2), extra_cost=100 / 300)
    assert p.n_rates == 5 and p.budget == halving.DEFAULT_BUDGET == 25
    assert [(r.horizon, r.size, r.seeds, r.new_seeds) for r in p.rungs] == [
        (33, 35, (0,), (0,)),
        (100, 12, (0,), (0,)),
        (300, 4, (0, 1, 2), (0, 1, 2)),
    ]
    # 35 x 33/300 + 12 x 100/300 + 4 x 3 + 1/3
    assert p.worst_cost == pytest.approx(3.85 + 4 + 12 + 1 / 3)
    assert p.most_runs == 35 + 12 + 12 + 3 * 7
    assert list(p.exponents) == [-2, -1, 0, 1, 2]
    rates = [c.rate for c in p.configs(0.1) if c.family == "wsd"]
    assert rates == pytest.approx([0.025, 0.05, 0.1, 0.2, 0.4])


@pytest.mark.parametrize(
    ("budget", "n_rates"),
    [(13.99, 3), (20.19, 5), (29.4, 7), (35.3, 9), (1000.0, 9)],
)
def test_budget_picks_the_most_rates_that_fit(budget, n_rates):
    """The largest odd n_rates in 3..9 whose worst case fits the budget (worst cases 13.98,
    20.18, 29.39, 35.26 here)."""
    p = plan(SEVEN, HalvingOptions(budget=budget), steps=300, seeds=(0, 1, 2), extra_cost=1 / 3)
    assert p.n_rates == n_rates and p.worst_cost <= budget


def test_budget_too_small_names_budget_and_minimum():
    """Not even 3 rates fit: ValueError naming the budget given and the least that would do."""
    with pytest.raises(ValueError, match=r"budget must be >= 13\.98 .*n_rates=3.*got budget=5"):
        plan(SEVEN, HalvingOptions(budget=5), steps=300, seeds=(0, 1, 2), extra_cost=1 / 3)
    with pytest.raises(ValueError, match=r"budget must be >= 29\.06 .*n_rates=7.*got budget=20"):
        plan(SEVEN, HalvingOptions(budget=20, n_rates=7), steps=300, seeds=(0, 1, 2))


def test_n_rates_without_budget_is_not_capped():
    """n_rates given and no budget: no cap; rung 0 has n_rates rates per family."""
    p = plan(SEVEN, HalvingOptions(n_rates=11), steps=300, seeds=(0, 1, 2))
    assert p.budget is None and p.rungs[0].size == 77 and p.worst_cost > halving.DEFAULT_BUDGET


def test_a_family_that_ignores_the_rate_gets_one_configuration():
    """A fixed family (a spec without ``peak``) is one configuration at the centre, never
    extended."""
    p = plan(["a", "b"], HalvingOptions(n_rates=5), steps=90, seeds=(0,), fixed=["b"])
    cs = p.configs(1.0)
    assert [c.label for c in cs if c.family == "b"] == ["b"] and len(cs) == 6
    scores = [Score(c, (1.0 if c.family == "a" else 0.1,)) for c in cs]
    assert extensions(scores, p, 1.0) == ()
    assert p.most_runs == 6 + 2 + 1 + 3  # 3 extension runs for a only


def test_runs_of_the_same_length_are_reused_not_counted_twice():
    """With 30 steps rungs 0 and 1 are both 10 steps on seed 0: rung 1 trains nothing; with 10
    steps the last rung trains only the seeds rung 0 did not."""
    p = plan(["a"], HalvingOptions(n_rates=9), steps=30, seeds=(0, 1, 2))
    assert [r.new_seeds for r in p.rungs] == [(0,), (), (0, 1, 2)]
    assert p.rung_cost(1) == 0 and p.worst_cost == pytest.approx(9 / 3 + 0 + 1 * 3)
    p = plan(["a"], HalvingOptions(n_rates=9), steps=10, seeds=(0, 1, 2))
    assert [r.new_seeds for r in p.rungs] == [(0,), (), (1, 2)]


def _scores(losses):
    return [Score(Config("f", 2.0**j, j), (v,)) for j, v in enumerate(losses)]


def test_promotion_never_takes_a_diverged_configuration():
    """Lowest loss first, ties in order; inf (diverged) never goes on, so fewer may."""
    s = _scores([0.5, math.inf, 0.2, 0.5, math.inf])
    assert [c.exponent for c in promote(s, 2)] == [2, 0]
    assert [c.exponent for c in promote(s, 4)] == [2, 0, 3]
    assert promote(_scores([math.inf] * 3), 2) == ()


def test_a_diverged_seed_makes_the_configuration_inf():
    """At the last rung a configuration with one diverged seed loses to any that converged on
    every seed, however good its other seeds; nothing converged: no recommendation."""
    good = Score(Config("a", 1.0), (0.3, 0.3))
    risky = Score(Config("b", 1.0), (0.01, math.inf))
    assert math.isinf(risky.loss) and halving.best([risky, good]) == good.config
    assert halving.best([risky]) is None


@pytest.mark.parametrize(
    ("losses", "expected"),
    [
        ([0.5, 0.4, 0.3], [2]),  # best at the top, better than its neighbour: one above
        ([0.3, 0.4, 0.5], [-2]),  # best at the bottom: one below
        ([0.5, 0.3, 0.5], []),  # best inside
        ([0.5, 0.3, 0.3], []),  # tie: the lowest rate is the best, inside
        ([0.3, 0.3, 0.5], []),  # tie at the bottom edge: not strictly better than its neighbour
        ([math.inf] * 3, []),  # everything diverged
    ],
)
def test_extension_only_at_an_edge_that_is_strictly_best(losses, expected):
    """Edge extension: one rate a factor beyond the edge, only when the edge's rate is the
    family's best and strictly better than its neighbour."""
    p = plan(["f"], HalvingOptions(n_rates=3), steps=90, seeds=(0,))
    scores = [Score(Config("f", 2.0**j, j), (v,)) for j, v in zip(p.exponents, losses, strict=True)]
    assert [c.exponent for c in extensions(scores, p, 1.0)] == expected


def _run(p, loss, center=1.0):
    """The search with a loss of (family, exponent, seed, horizon)."""
    seen = []

    def evaluate(rung, configs):
        seen.append((rung.index, tuple(configs)))
        return [
            Score(c, tuple(loss(c.family, c.exponent, s, rung.horizon) for s in rung.seeds))
            for c in configs
        ]

    return successive_halving(p, center, evaluate), seen


@pytest.mark.parametrize(
    ("optimum", "added"),
    [(3, (3, 4)), (9, (3, 4, 5)), (-3, (-3, -4)), (-2, (-3,)), (0, ())],
)
def test_extension_continues_while_it_improves_and_is_recorded(optimum, added):
    """Rates -2..2 (exponents): the range grows a factor at a time while the newest rate is the
    best, at most 3 times; the last rate tried is the first that did not improve (or the
    third); the extension records the rates added, in order."""
    p = plan(["f"], HalvingOptions(n_rates=5), steps=90, seeds=(0, 1))
    path, _ = _run(p, lambda f, j, s, h: (j - optimum) ** 2)
    got = [(e.direction, tuple(round(math.log2(r)) for r in e.rates)) for e in path.extensions]
    assert got == ([(1 if optimum > 0 else -1, added)] if added else [])


def test_extension_of_each_family_is_its_own():
    """Each family extends by its own losses: f's best is above the range, g's inside."""
    p = plan(["f", "g"], HalvingOptions(n_rates=3), steps=90, seeds=(0,))
    path, seen = _run(p, lambda f, j, s, h: (j - (5 if f == "f" else 0)) ** 2)
    assert [(e.family, e.direction, len(e.rates)) for e in path.extensions] == [("f", 1, 3)]
    rung0 = [c for k, cs in seen if k == 0 for c in cs]
    assert len(rung0) == 6 + 3  # the plan's 6, then one extension per round
    assert p.rungs[1].size == 2  # the plan's size, not ceil(9 / 3)
    assert len(path.rungs[1].scores) == 2


def test_recommendation_is_the_best_of_the_last_rung():
    """The recommendation is the configuration with the lowest mean over the seeds of the last
    rung, whatever it scored at the shorter rungs; one diverged seed rules a configuration
    out."""
    p = plan(["a", "b"], HalvingOptions(n_rates=3, eta=2), steps=90, seeds=(0, 1, 2))
    assert [r.size for r in p.rungs] == [6, 3, 2]

    def loss(f, j, s, h, blow_up=False):  # short runs favour a, full runs b
        if h < 90:
            return 1.0 + 0.1 * (f == "b") + 0.3 * abs(j)
        if blow_up and f == "b" and s == 2:
            return math.inf
        return 0.5 - 0.2 * (f == "b") + 0.01 * abs(j)

    path, _ = _run(p, loss)
    last = path.rungs[-1]
    assert [s.config.label for s in last.scores] == ["a@1", "b@1"]
    assert path.recommended == min(last.scores, key=lambda s: s.loss).config
    assert path.recommended.label == "b@1"
    path, _ = _run(p, lambda *a: loss(*a, blow_up=True))
    assert path.recommended.label == "a@1"


def test_settings_are_validated():
    """Bad halving settings fail when built, naming the argument and the value."""
    for kw, match in [
        ({"budget": 0}, "budget must be a finite number > 0, got budget=0"),
        ({"n_rates": 4}, "n_rates must be an odd integer >= 1, got n_rates=4"),
        ({"n_rates": -1}, "n_rates must be an odd integer >= 1, got n_rates=-1"),
        ({"eta": 1}, "eta must be a finite number > 1, got eta=1"),
        ({"factor": 1.05}, "factor must be a finite number >= 1.1, got factor=1.05"),
    ]:
        with pytest.raises(ValueError, match=match):
            HalvingOptions(**kw)


@given(S.halving_settings())
def test_plan_invariants(setting):
    """Any settings: the worst case never exceeds the budget (or the plan is refused, naming
    the budget); rung sizes shrink by eta; horizons rise to the run length, never below 10."""
    try:
        p = plan(
            setting.families,
            setting.options,
            steps=setting.steps,
            seeds=setting.seeds,
            fixed=setting.fixed,
            extra_cost=setting.extra_cost,
        )
    except ValueError as exc:
        assert "budget must be >=" in str(exc) and "got budget=" in str(exc)
        return
    if p.budget is not None:
        assert p.worst_cost <= p.budget
    if setting.options.n_rates is None:
        assert p.n_rates in halving.N_RATES_CHOICES
        bigger = [n for n in halving.N_RATES_CHOICES if n > p.n_rates]
        for n in bigger[:1]:  # the next choice up does not fit
            opts = HalvingOptions(budget=p.budget, n_rates=n, eta=p.eta, factor=p.factor)
            with pytest.raises(ValueError, match="budget must be"):
                plan(
                    p.families,
                    opts,
                    steps=p.steps,
                    seeds=setting.seeds,
                    fixed=p.fixed,
                    extra_cost=p.extra_cost,
                )
    sizes = [r.size for r in p.rungs]
    assert sizes[0] == (len(p.families) - len(p.fixed)) * p.n_rates + len(p.fixed)
    assert all(b == math.ceil(a / p.eta) for a, b in itertools.pairwise(sizes))
    hs = [r.horizon for r in p.rungs]
    assert hs == sorted(hs) and hs[-1] == p.steps and min(hs) >= min(10, p.steps)
    assert p.rungs[-1].seeds == setting.seeds


@given(S.halving_settings(), st.integers(0, 2**32 - 1), st.floats(0.0, 0.5))
def test_search_invariants(setting, seed, p_diverge):
    """Any losses (some diverged): every promoted configuration was scored at the rung before;
    no diverged one is promoted; each rung trains at most its planned size (rung 0 plus at most
    3 extension runs per family); the cost without extensions stays within the plan's."""
    o = setting.options
    n = o.n_rates if o.n_rates is not None and o.n_rates <= 7 else 5
    opts = HalvingOptions(n_rates=n, eta=o.eta, factor=o.factor)  # no budget: any plan
    p = plan(setting.families, opts, steps=setting.steps, seeds=setting.seeds, fixed=setting.fixed)
    rng = random.Random(seed)
    table: dict = {}

    def loss(f, j, s, h):
        key = (f, j, s, h)
        if key not in table:
            table[key] = math.inf if rng.random() < p_diverge else rng.random()
        return table[key]

    path, _ = _run(p, loss)
    for before, after in itertools.pairwise(path.rungs):
        scored = {s.config for s in before.scores}
        assert set(before.promoted) <= scored
        assert [s.config for s in after.scores] == list(before.promoted)
        assert all(math.isfinite(s.loss) for s in before.scores if s.config in before.promoted)
        assert len(after.scores) <= after.rung.size
    moving = len(p.families) - len(p.fixed)
    assert len(path.rungs[0].scores) <= p.rungs[0].size + halving.MAX_EXTEND * moving
    n_ext = sum(len(e.rates) for e in path.extensions)
    assert len(path.rungs[0].scores) == p.rungs[0].size + n_ext
    ext_cost = n_ext * p.rungs[0].horizon / p.steps
    assert path.cost - ext_cost <= p.worst_cost - p.extra_cost + 1e-9
    last = path.rungs[-1]
    if path.recommended is not None:
        assert path.recommended == min(last.scores, key=lambda s: s.loss).config
    else:
        assert all(math.isinf(s.loss) for s in last.scores)


def test_family_scales_move_each_familys_rates_and_extensions():
    """With scales, a family's rates (and its edge extensions) are centre * scale *
    factor**j; a bad scale is refused with the value."""
    p = halving.plan(
        ["constant", "cosine"],
        HalvingOptions(n_rates=3),
        steps=90,
        seeds=(0,),
        scales=(0.5, 1.0),
    )
    rates = {(c.family, c.exponent): c.rate for c in p.configs(0.2)}
    assert rates[("constant", 0)] == pytest.approx(0.1)
    assert rates[("cosine", 0)] == pytest.approx(0.2)
    assert rates[("constant", 1)] == pytest.approx(0.2)
    top = next(c for c in p.configs(0.2) if c.family == "constant" and c.exponent == 1)
    assert p.extended(top, 1, 0.2).rate == pytest.approx(0.4)
    with pytest.raises(ValueError, match="scales"):
        halving.plan(["a", "b"], HalvingOptions(n_rates=3), steps=90, seeds=(0,), scales=(1.0,))


def test_recipes_that_hold_the_peak_are_centred_lower():
    """compare centres constant, step and plateau at half the range test's rate (their
    rate_scale), the decaying recipes at the rate itself."""
    from lrkit.tune import recipes

    assert {n for n in recipes.names() if recipes.recipe(n).rate_scale != 1.0} == {
        "constant",
        "step",
        "plateau",
    }
    assert all(recipes.recipe(n).rate_scale == 0.5 for n in ("constant", "step", "plateau"))


def test_extensions_stay_within_the_budget():
    """With a budget that leaves room for one extension run beyond the worst case, only the
    most promising family extends, once; the search's cost never exceeds the budget."""
    base = plan(["a", "b"], HalvingOptions(n_rates=3), steps=90, seeds=(0,))
    unit = base.rung_cost(0, 1)
    p = plan(
        ["a", "b"],
        HalvingOptions(n_rates=3, budget=base.worst_cost + 1.5 * unit),
        steps=90,
        seeds=(0,),
    )

    def evaluate(rung, configs):  # both families improve upwards; "b" is better throughout
        return [Score(c, (10.0 - c.exponent - (c.family == "b"),)) for c in configs]

    path = successive_halving(p, 1.0, evaluate)
    assert [(e.family, len(e.rates)) for e in path.extensions] == [("b", 1)]
    assert path.cost <= p.budget + 1e-9

"""The public table of candidate recipes (lrkit.tune.recipes): one definition for compare,
FinderResult's helpers and the CLI."""

from __future__ import annotations

import numpy as np
import pytest

import lrkit
from lrkit.tune import recipes
from lrkit.tune.candidates import DEFAULT_SCHEDULES, builtin_schedule


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("constant", lrkit.constant(0.1)),
        ("step", lrkit.step_decay(0.1, steps=34, gamma=0.1)),
        ("cosine", lrkit.cosine(0.1, 0.0, steps=100)),
        ("warmup-cosine", lrkit.warmup(lrkit.cosine(0.1, 0.0, steps=95), steps=5)),
        ("one-cycle", lrkit.one_cycle(0.1, steps=100)),
        ("wsd", lrkit.wsd(0.1, 0.0, warmup_steps=5, stable_steps=75, decay_steps=20)),
        ("plateau", lrkit.constant(0.1)),
    ],
)
def test_recipe_builds_the_documented_schedule(name, expected):
    """Each recipe at peak 0.1 over 100 steps is the schedule its summary describes."""
    assert recipes.get(name, peak=0.1, total_steps=100) == expected


def test_names_are_the_default_candidates_in_order():
    """compare's default candidates are exactly the recipe table, in report order."""
    assert recipes.names() == DEFAULT_SCHEDULES
    assert set(recipes.RECIPES) == set(DEFAULT_SCHEDULES)


@pytest.mark.parametrize("name", recipes.names())
def test_compare_candidate_is_the_recipe(name):
    """A built-in compare candidate's spec is the recipe's schedule (no second copy to drift)."""
    cand = builtin_schedule(name, 0.3, 240)
    assert lrkit.parse(cand.spec) == recipes.get(name, peak=0.3, total_steps=240)
    assert (cand.plateau is not None) == (recipes.recipe(name).plateau is not None)


@pytest.mark.parametrize("name", recipes.names())
def test_recipes_peak_at_the_peak_and_stay_finite(name):
    """Every recipe reaches ``peak`` (one-cycle at its top) and never exceeds it."""
    s = recipes.get(name, peak=0.2, total_steps=50)
    v = s(np.arange(50))
    assert np.all(np.isfinite(v)) and v.max() == pytest.approx(0.2)


def test_options_and_units():
    """Options tune a recipe; whole-run recipes accept a unit length."""
    assert recipes.get("cosine", peak=1.0, total_steps=10, end_factor=0.1)(10) == pytest.approx(0.1)
    assert recipes.get("warmup-cosine", peak=1.0, total_steps=100, warmup_steps=10) == (
        lrkit.warmup(lrkit.cosine(1.0, 0.0, steps=90), steps=10)
    )
    assert isinstance(recipes.get("one-cycle", peak=1.0, total_steps="2ep"), lrkit.Schedule)


def test_errors_name_the_argument():
    """Unknown names, bad peaks, unit lengths where an integer is needed, unknown options."""
    with pytest.raises(ValueError, match="unknown recipe 'nope'; known: constant"):
        recipes.get("nope", peak=0.1, total_steps=10)
    with pytest.raises(ValueError, match="peak must be a finite number > 0, got peak=inf"):
        recipes.get("cosine", peak=float("inf"), total_steps=10)
    with pytest.raises(ValueError, match="'wsd' needs total_steps an integer >= 2"):
        recipes.get("wsd", peak=0.1, total_steps="3ep")
    with pytest.raises(TypeError, match="'constant' takes no option"):
        recipes.get("constant", peak=0.1, total_steps=10, end_factor=0.5)


def test_recipe_object_is_callable():
    """A Recipe builds its schedule like get()."""
    r = recipes.recipe("wsd")
    assert r(peak=0.1, total_steps=100) == recipes.get("wsd", peak=0.1, total_steps=100)

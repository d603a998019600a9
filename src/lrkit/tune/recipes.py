"""The table of candidate recipes: a named schedule shape, made concrete by a peak rate and a run
length. ``lrkit compare`` compares them, :class:`lrkit.tune.FinderResult`'s helpers build them at
the range test's suggestion and the CLI lists them; this module is their one definition.

>>> from lrkit.tune import recipes
>>> print(recipes.get("warmup-cosine", peak=0.1, total_steps=100))
warmup(cosine(0.1, 0.0, steps=95), steps=5)
>>> recipes.names()[:3]
('constant', 'step', 'cosine')

numpy and the standard library only.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from numbers import Integral, Real
from types import MappingProxyType
from typing import Any

import lrkit
from lrkit.schedules import Schedule

Builder = Callable[..., Schedule]


@dataclass(frozen=True)
class Recipe:
    """One candidate recipe: its name, a one-line description, the function that builds its
    schedule from ``(peak, total_steps, **options)`` and, for a reactive recipe, the keyword
    arguments of the :class:`lrkit.controllers.Plateau` controller that goes with it (fed the
    validation loss). ``rate_scale``: where this recipe's best peak rate tends to sit relative
    to warmup-cosine's (the rate the range test suggests): the search centres the recipe's rates
    on ``suggestion * rate_scale``. The recipes that hold the peak for long (constant, step,
    plateau) do best at about half the rate of those that decay from it (median over the
    development half of ``benchmarks/suite.py``'s oracle grid; 1 for the others)."""

    name: str
    summary: str
    build: Builder
    plateau: Mapping[str, float] | None = field(default=None)
    rate_scale: float = 1.0

    def __call__(self, *, peak: float, total_steps: int | str, **options: Any) -> Schedule:
        """The schedule at ``peak`` over ``total_steps`` updates (see :func:`get`)."""
        return get(self.name, peak=peak, total_steps=total_steps, **options)


def _warmup_len(total: int, frac: float) -> int:
    """Warmup length: ``max(1, round(frac * total))`` updates."""
    return max(1, round(frac * total))


def _constant(peak: float, total: int | str) -> Schedule:
    return lrkit.constant(peak)


def _step(peak: float, total: int | str, *, gamma: float = 0.1) -> Schedule:
    return lrkit.step_decay(peak, steps=max(1, math.ceil(_int(total, "step") / 3)), gamma=gamma)


def _cosine(peak: float, total: int | str, *, end_factor: float = 0.0) -> Schedule:
    return lrkit.cosine(peak, peak * end_factor, steps=total)


def _warmup_cosine(
    peak: float,
    total: int | str,
    *,
    warmup_frac: float = 0.05,
    warmup_steps: int | None = None,
    end_factor: float = 0.0,
) -> Schedule:
    n = _int(total, "warmup-cosine")
    w = _warmup_len(n, warmup_frac) if warmup_steps is None else warmup_steps
    return lrkit.warmup(lrkit.cosine(peak, peak * end_factor, steps=n - w), steps=w)


def _one_cycle(peak: float, total: int | str, **options: Any) -> Schedule:
    return lrkit.one_cycle(peak, steps=total, **options)


def _wsd(
    peak: float, total: int | str, *, warmup_frac: float = 0.05, decay_frac: float = 0.2
) -> Schedule:
    n = _int(total, "wsd")
    w = _warmup_len(n, warmup_frac)
    d = max(1, round(decay_frac * n))
    return lrkit.wsd(peak, 0.0, warmup_steps=w, stable_steps=n - w - d, decay_steps=d)


_TABLE: dict[str, Recipe] = {
    r.name: r
    for r in (
        Recipe("constant", "the peak throughout", _constant, rate_scale=0.5),
        Recipe("step", "the peak, x0.1 at 1/3 and 2/3 of the run", _step, rate_scale=0.5),
        Recipe("cosine", "cosine from the peak to 0", _cosine),
        Recipe("warmup-cosine", "5% linear warmup, then cosine to 0", _warmup_cosine),
        Recipe("one-cycle", "torch OneCycleLR's defaults", _one_cycle),
        Recipe("wsd", "5% warmup, stable, last 20% 1-sqrt decay to 0", _wsd),
        Recipe(
            "plateau",
            "the peak, x0.2 after 2 validations without improvement (torch rule)",
            _constant,
            MappingProxyType({"factor": 0.2, "patience": 2}),
            rate_scale=0.5,
        ),
    )
}

#: Every recipe by name, in report order (read-only).
RECIPES: Mapping[str, Recipe] = MappingProxyType(_TABLE)


def names() -> tuple[str, ...]:
    """The recipes' names, in report order."""
    return tuple(RECIPES)


def recipe(name: str) -> Recipe:
    """The recipe called ``name``.

    Raises:
        ValueError: an unknown name (the message lists the known ones).
    """
    if not isinstance(name, str) or name not in RECIPES:
        raise ValueError(
            f"recipes: unknown recipe {name!r}; known: {', '.join(RECIPES)} "
            "(or a spec such as \"cosine(peak, steps='100%')\" where a spec is accepted)"
        )
    return RECIPES[name]


def get(name: str, *, peak: float, total_steps: int | str, **options: Any) -> Schedule:
    """The schedule of recipe ``name`` at ``peak`` over ``total_steps`` updates.

    ``total_steps`` may be a unit string (``"3ep"``) for the recipes that pass it on whole
    (constant, cosine, one-cycle); the others place phase boundaries at fractions of it and
    need an integer. ``options`` tune a recipe: ``end_factor`` (cosine, warmup-cosine: the end
    rate is ``end_factor * peak``), ``warmup_frac`` (warmup-cosine, wsd; warmup
    ``max(1, round(warmup_frac * total_steps))``, or ``warmup_steps`` for warmup-cosine),
    ``decay_frac`` (wsd), ``gamma`` (step), and
    :func:`lrkit.one_cycle`'s keywords (one-cycle). A reactive recipe (``plateau``) returns its
    schedule; its controller's settings are :attr:`Recipe.plateau`.

    Raises:
        ValueError: an unknown name, ``peak`` not a finite number > 0, or a bad length.
        TypeError: an option the recipe does not take.
    """
    r = recipe(name)
    ok = isinstance(peak, Real) and not isinstance(peak, bool) and 0 < float(peak) < math.inf
    if not ok:
        raise ValueError(f"recipes.get: peak must be a finite number > 0, got peak={peak!r}")
    try:
        return r.build(float(peak), total_steps, **options)
    except TypeError as exc:
        if "unexpected keyword" in str(exc):
            raise TypeError(
                f"recipes.get: recipe {name!r} takes no option among {sorted(options)}"
            ) from None
        raise


def _int(total: object, name: str) -> int:
    if isinstance(total, bool) or not isinstance(total, Integral) or int(total) < 2:
        raise ValueError(
            f"recipes.get: recipe {name!r} needs total_steps an integer >= 2, "
            f"got total_steps={total!r}"
        )
    return int(total)

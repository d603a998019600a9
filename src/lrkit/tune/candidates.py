"""The candidates of a schedule comparison: the built-in families at a peak rate, and spec texts
in which the name ``peak`` stands for it."""

from __future__ import annotations

import ast
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import lrkit
from lrkit.tune import recipes


@dataclass(frozen=True)
class Candidate:
    """One schedule to compare: a name, its bound spec text and an optional plateau controller
    (keyword arguments of :class:`lrkit.controllers.Plateau`, fed the validation loss)."""

    name: str
    spec: str
    plateau: dict[str, Any] | None = None


#: The default candidates, in report order: every recipe of :mod:`lrkit.tune.recipes`.
DEFAULT_SCHEDULES = recipes.names()


def builtin_schedule(name: str, peak: float, steps: int) -> Candidate:
    """The candidate of recipe ``name`` (:mod:`lrkit.tune.recipes`) at ``peak`` over ``steps``
    updates, with the recipe's plateau controller if it has one.

    Raises:
        ValueError: an unknown name.
    """
    if name not in recipes.RECIPES:
        raise ValueError(
            f"compare: unknown schedule {name!r}; built-in: {', '.join(DEFAULT_SCHEDULES)}, "
            "or a spec such as \"cosine(peak, steps='100%')\""
        )
    r = recipes.recipe(name)
    sched = recipes.get(name, peak=peak, total_steps=steps)
    return Candidate(name, str(sched), dict(r.plateau) if r.plateau is not None else None)


class _Peak(ast.NodeTransformer):
    def __init__(self, peak: float) -> None:
        self.peak = peak

    def visit_Name(self, node: ast.Name) -> ast.AST:
        if node.id in ("peak", "PEAK"):
            return ast.copy_location(ast.Constant(self.peak), node)
        return node


_LABEL = re.compile(r"^\s*([A-Za-z_][A-Za-z0-9_.-]*)\s*=(?=[^(]*\()")


def split_label(item: str) -> tuple[str, str]:
    """``"name=spec"`` -> ``("name", "spec")``; a spec without a label is its own name.

    >>> split_label("mine=warmup(cosine(peak, steps='90%'), steps='10%')")
    ('mine', "warmup(cosine(peak, steps='90%'), steps='10%')")
    >>> split_label("cosine(peak, steps='100%')")
    ("cosine(peak, steps='100%')", "cosine(peak, steps='100%')")
    """
    m = _LABEL.match(item)
    if m is None:
        return item.strip(), item.strip()
    return m.group(1), item[m.end() :].strip()


def spec_schedule(text: str, peak: float, steps: int) -> Candidate:
    """A candidate from spec text; the name ``peak`` stands for the peak rate, ``'%'`` lengths
    are of the run: ``"warmup(cosine(peak, steps='90%'), steps='10%')"``. A short label may
    come first, ``"mine=warmup(...)"``: the candidate is then called ``mine`` in tables.

    Raises:
        lrkit.SpecError: text that does not parse (a ValueError).
    """
    label, text = split_label(text)
    try:
        tree = ast.parse(text.strip(), mode="eval")
    except SyntaxError:
        lrkit.parse(text)  # raises the spec parser's pointed error
        raise
    filled = ast.unparse(_Peak(peak).visit(tree))
    sched = lrkit.parse(filled).bind(total_steps=steps)
    return Candidate(label, str(sched))


def candidates(items: Sequence[str] | None, peak: float, steps: int) -> list[Candidate]:
    """Built-in names and spec texts (anything with a parenthesis) -> candidates.

    Raises:
        ValueError: an unknown name, a bad spec, or a name given twice.
    """
    out = []
    for item in items or DEFAULT_SCHEDULES:
        out.append(
            spec_schedule(item, peak, steps) if "(" in item else builtin_schedule(item, peak, steps)
        )
    names = [c.name for c in out]
    dup = {n for n in names if names.count(n) > 1}
    if dup:
        raise ValueError(f"compare: schedules given twice: {sorted(dup)}")
    return out


def length_notes(items: Sequence[str] | None, steps: int) -> list[str]:
    """One line for each spec text whose schedule settles (reaches its final value) more than
    one step before or after the run ends: a spec written for another run length (``'%'``
    lengths follow the run and are never flagged). Built-in names fit by construction.

    >>> length_notes(["cosine(peak, steps=100)", "cosine(peak, steps='100%')"], 300)
    ["schedule 'cosine(peak, steps=100)' settles after 100 steps but each run has 300 (use '%' lengths to follow the run)"]
    """
    out = []
    for item in items or ():
        if "(" not in item:
            continue
        d = lrkit.parse(spec_schedule(item, 1.0, steps).spec).duration
        if d is not None and d > 0 and abs(d - steps) > 1:
            out.append(
                f"schedule {split_label(item)[0]!r} settles after {d:g} steps but each run has {steps} "
                "(use '%' lengths to follow the run)"
            )
    return out


def candidate_at(item: str, steps: int, rate: float) -> Candidate:
    """The one candidate ``item`` (a built-in name or a spec text) at ``rate``."""
    return candidates([item], rate, steps)[0]

"""The candidates of a schedule comparison: the built-in families at a peak rate, and spec texts
in which the name ``peak`` stands for it."""

from __future__ import annotations

import ast
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import lrkit


@dataclass(frozen=True)
class Candidate:
    """One schedule to compare: a name, its bound spec text and an optional plateau controller
    (keyword arguments of :class:`lrkit.controllers.Plateau`, fed the validation loss)."""

    name: str
    spec: str
    plateau: dict[str, Any] | None = None


#: The default candidates, in report order.
DEFAULT_SCHEDULES = ("constant", "step", "cosine", "warmup-cosine", "one-cycle", "wsd", "plateau")


def builtin_schedule(name: str, peak: float, steps: int) -> Candidate:
    """The default candidate ``name`` at ``peak`` over ``steps`` updates.

    constant: ``peak``; step: ``x0.1`` at 1/3 and 2/3 of the run; cosine: ``peak -> 0``;
    warmup-cosine: 5% linear warmup then cosine to 0; one-cycle: torch ``OneCycleLR`` defaults;
    wsd: 5% warmup, stable, last 20% ``1-sqrt`` decay to 0; plateau: ``peak`` multiplied by 0.2
    after 2 validations without improvement (torch rule).

    Raises:
        ValueError: an unknown name.
    """
    w = max(1, round(0.05 * steps))
    d = max(1, round(0.2 * steps))
    builders: dict[str, Callable[[], Any]] = {
        "constant": lambda: lrkit.constant(peak),
        "step": lambda: lrkit.step_decay(peak, steps=max(1, math.ceil(steps / 3)), gamma=0.1),
        "cosine": lambda: lrkit.cosine(peak, 0.0, steps=steps),
        "warmup-cosine": lambda: lrkit.warmup(lrkit.cosine(peak, 0.0, steps=steps - w), steps=w),
        "one-cycle": lambda: lrkit.one_cycle(peak, steps=steps),
        "wsd": lambda: lrkit.wsd(
            peak, 0.0, warmup_steps=w, stable_steps=steps - w - d, decay_steps=d
        ),
        "plateau": lambda: lrkit.constant(peak),
    }
    if name not in builders:
        raise ValueError(
            f"compare: unknown schedule {name!r}; built-in: {', '.join(DEFAULT_SCHEDULES)}, "
            "or a spec such as \"cosine(peak, steps='100%')\""
        )
    plateau = {"factor": 0.2, "patience": 2} if name == "plateau" else None
    return Candidate(name, str(builders[name]()), plateau)


class _Peak(ast.NodeTransformer):
    def __init__(self, peak: float) -> None:
        self.peak = peak

    def visit_Name(self, node: ast.Name) -> ast.AST:
        if node.id in ("peak", "PEAK"):
            return ast.copy_location(ast.Constant(self.peak), node)
        return node


def spec_schedule(text: str, peak: float, steps: int) -> Candidate:
    """A candidate from spec text; the name ``peak`` stands for the peak rate, ``'%'`` lengths
    are of the run: ``"warmup(cosine(peak, steps='90%'), steps='10%')"``.

    Raises:
        lrkit.SpecError: text that does not parse (a ValueError).
    """
    try:
        tree = ast.parse(text.strip(), mode="eval")
    except SyntaxError:
        lrkit.parse(text)  # raises the spec parser's pointed error
        raise
    filled = ast.unparse(_Peak(peak).visit(tree))
    sched = lrkit.parse(filled).bind(total_steps=steps)
    return Candidate(text.strip(), str(sched))


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


def candidate_at(item: str, steps: int, rate: float) -> Candidate:
    """The one candidate ``item`` (a built-in name or a spec text) at ``rate``."""
    return candidates([item], rate, steps)[0]

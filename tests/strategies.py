"""Hypothesis strategies that draw random valid lrkit schedules and compositions of them.

``families()`` draws one schedule of any family; ``schedules()`` nests families inside
combinators (warmup, ``>>``, ``*``, scale, clip, shift, advance, stretch, repeat). Values stay in [1e-6, 10] so every
drawn schedule is valid for every combinator (e.g. an exponential warmup needs a target > 0).
"""

from __future__ import annotations

import dataclasses
from typing import Any

from hypothesis import strategies as st

import lrkit
from lrkit import Schedule

values = st.floats(min_value=1e-6, max_value=10.0, allow_nan=False, allow_infinity=False)
lengths = st.integers(min_value=1, max_value=200)
gammas = st.floats(min_value=0.05, max_value=1.0, exclude_min=False)
unit_gammas = st.floats(min_value=0.5, max_value=1.0)


@st.composite
def ordered_pair(draw: Any) -> tuple[float, float]:
    """(low, high) with low <= high, both in ``values``."""
    a, b = draw(values), draw(values)
    return (min(a, b), max(a, b))


@st.composite
def increasing_lengths(
    draw: Any, min_size: int = 1, max_size: int = 5, start: int = 1
) -> list[int]:
    """A strictly increasing list of steps, each >= start."""
    gaps = draw(st.lists(lengths, min_size=min_size, max_size=max_size))
    out, acc = [], start - 1
    for g in gaps:
        acc += g
        out.append(acc)
    if start == 0 and out:
        out[0] = 0
    return out


def constant() -> st.SearchStrategy[Schedule]:
    return st.builds(lrkit.constant, values)


def step_decay() -> st.SearchStrategy[Schedule]:
    return st.builds(lambda v, n, g: lrkit.step_decay(v, steps=n, gamma=g), values, lengths, gammas)


def multistep_decay() -> st.SearchStrategy[Schedule]:
    return st.builds(
        lambda v, ms, g: lrkit.multistep_decay(v, milestones=ms, gamma=g),
        values,
        increasing_lengths(),
        gammas,
    )


@st.composite
def exponential(draw: Any) -> Schedule:
    start = draw(values)
    every = draw(st.integers(1, 50))
    staircase = draw(st.booleans())
    if draw(st.booleans()):  # growing, as in a range test: needs an end
        gamma = draw(st.floats(min_value=1.01, max_value=2.0))
        end = start * draw(st.floats(min_value=1.0, max_value=1e3))
        return lrkit.exponential(start, gamma=gamma, every=every, staircase=staircase, end=end)
    gamma = draw(unit_gammas)
    end = draw(st.none() | st.floats(min_value=0.0, max_value=1.0).map(lambda f: f * start))
    return lrkit.exponential(start, gamma=gamma, every=every, staircase=staircase, end=end)


def polynomial() -> st.SearchStrategy[Schedule]:
    return st.builds(
        lambda a, b, n, p, c: lrkit.polynomial(a, b, steps=n, power=p, cycle=c),
        values,
        values,
        lengths,
        st.floats(min_value=0.25, max_value=4.0),
        st.booleans(),
    )


def inverse_sqrt() -> st.SearchStrategy[Schedule]:
    return st.builds(lambda p, n: lrkit.inverse_sqrt(p, steps=n), values, lengths)


def linear() -> st.SearchStrategy[Schedule]:
    return st.builds(lambda a, b, n: lrkit.linear(a, b, steps=n), values, values, lengths)


def cosine() -> st.SearchStrategy[Schedule]:
    return st.builds(lambda a, b, n: lrkit.cosine(a, b, steps=n), values, values, lengths)


@st.composite
def piecewise(draw: Any) -> Schedule:
    bounds = draw(increasing_lengths(min_size=0))
    vals = draw(st.lists(values, min_size=len(bounds) + 1, max_size=len(bounds) + 1))
    return lrkit.piecewise(vals, boundaries=bounds)


@st.composite
def interpolate(draw: Any) -> Schedule:
    steps = draw(increasing_lengths(min_size=1, max_size=5, start=0))
    vals = draw(st.lists(values, min_size=len(steps), max_size=len(steps)))
    return lrkit.interpolate(steps, vals, kind=draw(st.sampled_from(["linear", "cosine"])))


@st.composite
def cosine_restarts(draw: Any) -> Schedule:
    floor, peak = draw(ordered_pair())
    return lrkit.cosine_restarts(
        peak,
        floor,
        steps=draw(lengths),
        period_mult=draw(st.sampled_from([1.0, 1.5, 2.0, 3.0]) | st.floats(1.0, 3.0)),
        peak_mult=draw(st.floats(min_value=0.1, max_value=1.0)),
    )


@st.composite
def cyclic(draw: Any) -> Schedule:
    floor, peak = draw(ordered_pair())
    return lrkit.cyclic(
        floor,
        peak,
        steps_up=draw(lengths),
        steps_down=draw(st.none() | lengths),
        mode=draw(st.sampled_from(["triangular", "triangular2", "exp_range"])),
        gamma=draw(st.floats(min_value=0.9, max_value=1.0)),
    )


ONE_CYCLE_COMMON = {
    "steps": st.integers(20, 400),
    "pct_start": st.floats(min_value=0.1, max_value=0.45),
    "anneal": st.sampled_from(["cos", "linear"]),
    "three_phase": st.booleans(),
}


def one_cycle() -> st.SearchStrategy[Schedule]:
    return st.builds(
        lrkit.one_cycle,
        values,
        div_factor=st.floats(min_value=1.0, max_value=100.0),
        final_div_factor=st.floats(min_value=1.0, max_value=1e4),
        **ONE_CYCLE_COMMON,
    )


@st.composite
def one_cycle_momentum(draw: Any) -> Schedule:
    low, high = draw(ordered_pair())
    kwargs = {k: draw(v) for k, v in ONE_CYCLE_COMMON.items()}
    return lrkit.one_cycle_momentum(low=low, high=high, **kwargs)


@st.composite
def wsd(draw: Any) -> Schedule:
    floor, peak = draw(ordered_pair())
    return lrkit.wsd(
        peak,
        floor,
        warmup_steps=draw(st.integers(0, 100)),
        stable_steps=draw(st.integers(0, 300)),
        decay_steps=draw(lengths),
        decay=draw(st.sampled_from(["linear", "cosine", "1-sqrt"])),
        start=draw(st.floats(min_value=0.0, max_value=1.0)) * peak,
    )


FAMILIES: dict[str, Any] = {
    "constant": constant,
    "step_decay": step_decay,
    "multistep_decay": multistep_decay,
    "exponential": exponential,
    "polynomial": polynomial,
    "inverse_sqrt": inverse_sqrt,
    "linear": linear,
    "cosine": cosine,
    "piecewise": piecewise,
    "interpolate": interpolate,
    "cosine_restarts": cosine_restarts,
    "cyclic": cyclic,
    "one_cycle": one_cycle,
    "one_cycle_momentum": one_cycle_momentum,
    "wsd": wsd,
}


def families() -> st.SearchStrategy[Schedule]:
    """One schedule of any family."""
    return st.one_of(*(make() for make in FAMILIES.values()))


def _is_finite(s: Schedule) -> bool:
    return s.duration is not None


def _extend(children: st.SearchStrategy[Schedule]) -> st.SearchStrategy[Schedule]:
    finite = children.filter(_is_finite)
    positive = children.filter(lambda s: s.duration is not None and s.duration > 0)
    return st.one_of(
        st.builds(
            # An exponential ramp needs a first value > 0 (a WSD warmup starts at 0).
            lambda s, n, a, shape: lrkit.warmup(
                s, steps=n, start=a, shape=shape if s(0) > 0 else "linear"
            ),
            children,
            lengths,
            values,
            st.sampled_from(["linear", "cosine", "exponential"]),
        ),
        st.builds(lambda a, b: a >> b, finite, children),
        st.builds(lambda a, b: a * b, children, children),
        st.builds(lambda s, k: k * s, children, st.floats(min_value=0.1, max_value=10.0)),
        st.builds(lambda s, lo: s.clip(low=lo), children, values),
        st.builds(lambda s, hi: s.clip(high=hi), children, values),
        st.builds(lambda s, n: s.shift(n), children, lengths),
        st.builds(lambda s, n: s.advance(n), children, lengths),
        st.builds(lambda s, k: s.stretch(k), children, st.floats(min_value=0.25, max_value=4.0)),
        st.builds(lambda s, n: s.repeat(n), positive, st.none() | st.integers(1, 4)),
    )


def schedules() -> st.SearchStrategy[Schedule]:
    """A family or a composition of families, nested up to a few levels."""
    return st.recursive(families(), _extend, max_leaves=4)


def finite_schedules() -> st.SearchStrategy[Schedule]:
    """A schedule (possibly composed) with a finite duration."""
    return schedules().filter(_is_finite)


def steps(max_value: float = 5e4) -> st.SearchStrategy[list[float]]:
    """A list of non-negative steps: mostly integers, some fractional."""
    ints = st.integers(0, int(max_value)).map(float)
    floats = st.floats(min_value=0.0, max_value=max_value, allow_nan=False)
    return st.lists(ints | floats, min_size=1, max_size=30)


def with_units(s: Schedule, *, steps_per_epoch: int, total_steps: int, unit: str) -> Schedule:
    """The same schedule with every length written in epochs ('ep') or in '%' of the run.

    Binding the result with ``total_steps`` / ``steps_per_epoch`` gives ``s`` back.
    """
    changes: dict[str, object] = {}

    def convert(n: object) -> object:
        if isinstance(n, str):
            return n
        if unit == "ep":
            return f"{n / steps_per_epoch!r}ep"
        return f"{n * 100 / total_steps!r}%"

    for name in s._lengths:
        value = getattr(s, name)
        if value is None:
            continue
        changes[name] = (
            tuple(convert(v) for v in value) if isinstance(value, tuple) else convert(value)
        )
    for name in s._children:
        value = getattr(s, name)
        kw = {"steps_per_epoch": steps_per_epoch, "total_steps": total_steps, "unit": unit}
        if isinstance(value, tuple):
            changes[name] = tuple(with_units(c, **kw) for c in value)
        else:
            changes[name] = with_units(value, **kw)
    return dataclasses.replace(s, **changes) if changes else s

"""Hypothesis strategies that draw random valid lrkit schedules and compositions of them.

``families()`` draws one schedule of any family; ``schedules()`` nests families inside
combinators (warmup, ``>>``, ``*``, scale, clip, shift, advance, stretch, repeat). Values stay in [1e-6, 10] so every
drawn schedule is valid for every combinator (e.g. an exponential warmup needs a target > 0).
"""

from __future__ import annotations

import copy
import dataclasses
import math
from decimal import Decimal
from fractions import Fraction
from typing import Any

import numpy as np
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


# ----------------------------------------------------------------------------- hostile input
#: Values no argument should take silently: non-finite, signed zero, extremes of the float
#: range, huge ints, bools, strings, numpy scalars of every kind and 0-d arrays.
HOSTILE_SPECIALS: list[Any] = [
    math.nan, math.inf, -math.inf, -0.0, 0.0, 1.7976931348623157e308, -1.7976931348623157e308,
    1e308, 1e200, 1e-300, 5e-324, -5e-324, 2**53, 2**53 + 1, 2**62, 2**63, -(2**63), 10**400,
    True, False, "", "1.0", "nan", "3ep", "10%", "1e400%", "0.01%", "1e17ep", "-5st", b"1", 1j, None, [], [1.0],
    Fraction(1, 3), Decimal("0.5"),
    np.float64(math.nan), np.float32(math.inf), np.float16(65504.0), np.float64(-0.0),
    np.int64(2**62), np.int8(-1), np.uint64(2**64 - 1), np.bool_(True), np.complex128(1.0),
    np.array(1.0), np.array(3), np.array(math.nan), np.array([1.0, 2.0]),
]  # fmt: skip


def _hostile_pool(n: int = 4_000, seed: int = 0) -> list[Any]:
    """The specials, then ``n`` numbers drawn once: floats over the whole float64 range (signs,
    subnormals, every exponent), ints up to 2**70, and numpy scalars and 0-d arrays of them."""
    rng = np.random.default_rng(seed)
    out: list[Any] = list(HOSTILE_SPECIALS)
    for _ in range(n):
        kind = rng.integers(6)
        if kind < 2:  # any finite float64 bit pattern's neighbourhood: mantissa * 2**exp
            x = float(rng.uniform(-2, 2) * 2.0 ** int(rng.integers(-1074, 1024)))
        elif kind == 2:
            x = float(rng.uniform(-1e3, 1e3))
        else:
            x = int(rng.integers(-(2**62), 2**62)) >> int(rng.integers(0, 62))
            x = x * (2 ** int(rng.integers(0, 9)))
        wrap = rng.integers(8)
        if wrap == 0:
            with np.errstate(over="ignore"):  # beyond float32: inf, one more hostile value
                out.append(np.float32(x) if isinstance(x, float) else np.int64(x % 2**62))
        elif wrap == 1:
            out.append(np.array(x if isinstance(x, float) else x % 2**62))
        else:
            out.append(x)
    return out


#: Every hostile value a test may draw; drawn by index (cheap for Hypothesis, and a failing
#: example shrinks towards the specials at the front).
HOSTILE_POOL = _hostile_pool()

#: A hostile number or object from HOSTILE_POOL.
hostile = st.integers(min_value=0, max_value=len(HOSTILE_POOL) - 1).map(HOSTILE_POOL.__getitem__)

#: Schedules that are valid but extreme: values at the ends of the float range, very long
#: or very short, growing to a huge end. Combinators must refuse what would overflow.
EXTREME_SCHEDULES: list[Schedule] = [
    lrkit.constant(1.7976931348623157e308),
    lrkit.constant(-1e300),
    lrkit.constant(5e-324),
    lrkit.linear(-1.7976931348623157e308, 1.7976931348623157e308, steps=7),
    lrkit.cosine(1e308, -1e308, steps=2**53),
    lrkit.exponential(1.0, gamma=10.0, end=1e308),
    lrkit.exponential(1e-300, gamma=1e-300),
    lrkit.cyclic(-1e308, 1e308, steps_up=1, mode="exp_range", gamma=5e-324),
    lrkit.cosine_restarts(1e308, -1e308, steps=1, period_mult=1e308),
    lrkit.one_cycle(1e300, steps=10, div_factor=1e-8),
    lrkit.inverse_sqrt(1e308, steps=1),
    lrkit.polynomial(1e308, -1e308, steps=3, power=1e-300),
    lrkit.wsd(1e308, -1e308, warmup_steps=1, stable_steps=2**53, decay_steps=1),
    lrkit.step_decay(1e308, steps=1, gamma=5e-324),
]


#: Per public constructor: a valid call (positional, keyword) to start from. A hostile call
#: replaces one or two of these arguments by hostile values.
VALID_CALLS: dict[str, tuple[tuple[Any, ...], dict[str, Any]]] = {
    "constant": ((0.1,), {}),
    "step_decay": ((0.1,), {"steps": 10, "gamma": 0.5}),
    "multistep_decay": ((0.1,), {"milestones": [10, 20], "gamma": 0.5}),
    "exponential": ((0.1,), {"gamma": 0.9, "every": 2, "staircase": False, "end": 0.01}),
    "polynomial": ((0.1, 0.0), {"steps": 10, "power": 2.0, "cycle": False}),
    "inverse_sqrt": ((0.1,), {"steps": 10}),
    "linear": ((0.0, 0.1), {"steps": 10}),
    "cosine": ((0.1, 0.0), {"steps": 10}),
    "piecewise": (([0.1, 0.01],), {"boundaries": [10]}),
    "interpolate": (([0, 10], [0.0, 0.1]), {"kind": "linear"}),
    "cosine_restarts": ((0.1, 0.0), {"steps": 10, "period_mult": 2.0, "peak_mult": 0.5}),
    "cyclic": ((0.01, 0.1), {"steps_up": 5, "steps_down": 7, "mode": "triangular", "gamma": 1.0}),
    "one_cycle": ((0.1,), {"steps": 100, "pct_start": 0.3, "div_factor": 25.0,
                           "final_div_factor": 1e4, "anneal": "cos", "three_phase": False}),
    "one_cycle_momentum": ((), {"steps": 100, "low": 0.85, "high": 0.95, "pct_start": 0.3,
                                "anneal": "cos", "three_phase": False}),
    "wsd": ((0.1, 0.0), {"warmup_steps": 5, "stable_steps": 10, "decay_steps": 10,
                         "decay": "1-sqrt", "start": 0.0}),
}  # fmt: skip

#: The combinators: a valid call given one child schedule ``s`` (two for sequence/product).
COMBINATOR_CALLS: dict[str, Any] = {
    "warmup": lambda s, t: ((s,), {"steps": 5, "start": 0.0, "shape": "linear"}),
    "sequence": lambda s, t: (([s, t],), {"boundaries": [10]}),
    "product": lambda s, t: (([s, t],), {}),
    "scale": lambda s, t: ((s, 0.5), {}),
    "clip": lambda s, t: ((s, 0.0, 1.0), {}),
    "shift": lambda s, t: ((s,), {"steps": 5}),
    "advance": lambda s, t: ((s,), {"steps": 5}),
    "stretch": lambda s, t: ((s, 2.0), {}),
    "repeat": lambda s, t: ((s,), {"times": 3}),
}


@st.composite
def hostile_call(
    draw: Any, args: tuple[Any, ...], kwargs: dict[str, Any], names: list[str]
) -> tuple[tuple[Any, ...], dict[str, Any], list[str]]:
    """The call ``(args, kwargs)`` with one or two of its arguments (listed in ``names``,
    positional ones first) replaced by hostile values; also returns the names replaced."""
    chosen = draw(st.lists(st.sampled_from(names), min_size=1, max_size=2, unique=True))
    args, kwargs = list(args), dict(kwargs)
    for name in chosen:
        value = draw(hostile)
        index = names.index(name)
        if index < len(args):
            args[index] = value
        else:
            kwargs[name] = value
    return tuple(args), kwargs, chosen


def seeded_hostile_calls(
    seed: int, args: tuple[Any, ...], kwargs: dict[str, Any], names: list[str], n: int
) -> list[tuple[tuple[Any, ...], dict[str, Any], list[str]]]:
    """``n`` calls like :func:`hostile_call`, generated from ``seed`` without Hypothesis draws.

    Hypothesis spends milliseconds per drawn value on a loaded machine; a test that makes
    thousands of calls per function draws one seed per example and makes ``n`` calls from it
    (each failure names its call, so it reproduces without shrinking).
    """
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(n):
        k = 1 + int(rng.integers(2))
        chosen = [names[i] for i in rng.choice(len(names), size=min(k, len(names)), replace=False)]
        new_args, new_kwargs = list(args), dict(kwargs)
        for name in chosen:
            value = HOSTILE_POOL[int(rng.integers(len(HOSTILE_POOL)))]
            index = names.index(name)
            if index < len(new_args):
                new_args[index] = value
            else:
                new_kwargs[name] = value
        out.append((tuple(new_args), new_kwargs, chosen))
    return out


def _child_pool() -> list[Schedule]:
    """EXTREME_SCHEDULES, one schedule per family (its VALID_CALLS), and compositions of them,
    one with lengths still in units."""
    fams = [getattr(lrkit, name)(*args, **kwargs) for name, (args, kwargs) in VALID_CALLS.items()]
    cos, restarts, one = fams[7], fams[10], fams[12]
    composed = [
        lrkit.warmup(cos, steps=3, shape="exponential", start=1e-300),
        lrkit.linear(0.0, 1e308, steps=2) >> restarts,
        cos * restarts * one,
        lrkit.scale(one, -1e300),
        lrkit.stretch(cos, 1e-300),
        lrkit.stretch(restarts, 1e300),
        lrkit.repeat(cos, times=10**15),
        lrkit.shift(restarts, steps=2**53),
        lrkit.advance(cos, steps=2**53),
        lrkit.clip(restarts, -1e308, 1e308),
        lrkit.cosine(1.0, steps="10%") >> lrkit.constant(0.5),
    ]
    return [*EXTREME_SCHEDULES, *fams, *composed]


#: Children for the combinators: extreme, plain and composed schedules.
CHILD_POOL = _child_pool()


def hostile_schedules() -> st.SearchStrategy[Schedule]:
    """A schedule from CHILD_POOL, drawn by index."""
    return st.integers(min_value=0, max_value=len(CHILD_POOL) - 1).map(CHILD_POOL.__getitem__)


def json_paths(node: object, prefix: tuple = ()) -> list[tuple]:
    """Every key / index path in a JSON-like tree (not the root): where a state can be
    corrupted."""
    out: list[tuple] = []
    items = (
        node.items()
        if isinstance(node, dict)
        else enumerate(node)
        if isinstance(node, list)
        else []
    )
    for k, v in items:
        out.append((*prefix, k))
        out.extend(json_paths(v, (*prefix, k)))
    return out


@st.composite
def corrupted_state(draw: st.DrawFn, state: dict, hostile: list) -> dict:
    """A deep copy of ``state`` with one node (any depth) replaced by one of ``hostile``,
    deleted, or given an unknown key: what a load must refuse or take exactly."""
    out = copy.deepcopy(state)
    path = draw(st.sampled_from(json_paths(out)))
    parent = out
    for k in path[:-1]:
        parent = parent[k]
    op = draw(st.sampled_from(["replace", "delete", "add"]))
    if op == "delete" and isinstance(parent, dict):
        del parent[path[-1]]
    elif op == "add" and isinstance(parent[path[-1]], dict):
        parent[path[-1]]["unknown"] = draw(st.sampled_from(hostile))
    else:
        parent[path[-1]] = copy.deepcopy(draw(st.sampled_from(hostile)))
    return out


@dataclasses.dataclass(frozen=True)
class HalvingSetting:
    """A drawn halving search: its families (``fixed``: those that ignore the rate), run
    length, seeds, options and range-test cost."""

    families: tuple[str, ...]
    fixed: tuple[str, ...]
    steps: int
    seeds: tuple[int, ...]
    options: Any
    extra_cost: float


@st.composite
def halving_settings(draw: st.DrawFn) -> HalvingSetting:
    """A halving search's settings: 1-8 families (some maybe fixed), 10-3000 steps, 1-5
    seeds, eta in [1.5, 5], factor in [1.1, 4], a budget in [0.5, 300] or n_rates given."""
    from lrkit.tune.halving import HalvingOptions

    n = draw(st.integers(1, 8))
    fams = tuple(f"f{i}" for i in range(n))
    fixed = tuple(f for f in fams if draw(st.booleans()) and draw(st.booleans()))
    budget = draw(st.floats(0.5, 300.0))
    n_rates = draw(st.one_of(st.none(), st.sampled_from([1, 3, 5, 7, 9, 11])))
    opts = HalvingOptions(
        budget=budget if n_rates is None or draw(st.booleans()) else None,
        n_rates=n_rates,
        eta=draw(st.floats(1.5, 5.0)),
        factor=draw(st.floats(1.1, 4.0)),
    )
    return HalvingSetting(
        families=fams,
        fixed=fixed,
        steps=draw(st.integers(10, 3000)),
        seeds=tuple(range(draw(st.integers(1, 5)))),
        options=opts,
        extra_cost=draw(st.sampled_from([0.0, 0.1, 1.0])),
    )


# ----------------------------------------------------------------------------- divergence guard
#: A loss or gradient norm as the guard sees it: ties and exact differences (a quarter grid, and
#: the next float above a grid point, to land just past a threshold), noise of any scale, signed
#: zeros and tiny values, sums that overflow, and spikes.
guard_values = st.one_of(
    st.integers(min_value=-40, max_value=40).map(lambda i: i / 4),
    st.integers(min_value=-40, max_value=40).map(lambda i: math.nextafter(i / 4, math.inf)),
    st.floats(min_value=-1e3, max_value=1e3, allow_nan=False),
    st.sampled_from([0.0, -0.0, 1e-9, -1e-9, 5e-324, 1.7e308, -1.7e308]),
    st.floats(min_value=0.5, max_value=2.0).map(lambda x: x * 1e6),
)

#: ``guard_values`` or, one time in ten, a non-finite one.
guard_readings = st.integers(min_value=0, max_value=9).flatmap(
    lambda i: st.sampled_from([math.nan, math.inf, -math.inf]) if i == 0 else guard_values
)


@st.composite
def spike_rules(draw: Any) -> dict[str, Any]:
    """Settings of the guard's spike rule (``window``, ``min_history``, ``factor``,
    ``floor_frac``, ``min_delta``), small windows so that values are pushed out often."""
    return {
        "window": draw(st.integers(min_value=1, max_value=12)),
        "min_history": draw(st.integers(min_value=1, max_value=8)),
        "factor": draw(st.one_of(st.sampled_from([0.5, 1.0, 3.0, 21.0]), st.floats(0.01, 50.0))),
        "floor_frac": draw(st.one_of(st.sampled_from([0.0, 0.1, 1.0]), st.floats(0.0, 1.0))),
        "min_delta": draw(st.sampled_from([0.0, 1e-8, 0.5])),
    }

"""Properties every schedule keeps, checked on random valid schedules and compositions."""

from __future__ import annotations

import json
import math
import pickle

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from tests import strategies as S

import lrkit
from lrkit import Schedule

REL = 1e-12  # slack for bounds: start * w + end * (1 - w) may land an ulp outside


def within(v: np.ndarray, low: float, high: float) -> bool:
    scale = max(abs(low), abs(high), 1e-300)
    return bool(np.all(v >= low - REL * scale) and np.all(v <= high + REL * scale))


# ----------------------------------------------------------------------------- values
@given(S.schedules(), S.steps())
def test_values_are_finite(s: Schedule, ts: list[float]) -> None:
    """No schedule, composed or not, returns NaN or inf at any step."""
    assert np.all(np.isfinite(s(np.array(ts))))
    assert all(math.isfinite(s(t)) for t in ts[:5])


@given(S.schedules(), S.steps())
def test_scalar_equals_vectorised(s: Schedule, ts: list[float]) -> None:
    """``s(t)`` is exactly ``s(np.array(ts))[i]``: one formula for both call styles."""
    arr = s(np.array(ts))
    assert isinstance(s(ts[0]), float)
    assert [s(t) for t in ts] == arr.tolist()


@given(S.schedules(), S.steps(), st.randoms(use_true_random=False))
def test_closed_form_independent_of_order(s: Schedule, ts: list[float], rnd) -> None:
    """A closed form: the value at t does not depend on which steps were asked before."""
    arr = np.array(ts)
    perm = np.array(rnd.sample(range(len(ts)), len(ts)))
    assert np.array_equal(s(arr[perm]), s(arr)[perm])
    assert np.array_equal(s(arr.reshape(1, -1))[0], s(arr))  # shape is kept


@given(S.schedules())
def test_array_shapes_are_kept(s: Schedule) -> None:
    """An array in gives an array of the same shape out, an empty one included."""
    assert s(np.zeros((2, 3))).shape == (2, 3)
    assert s(np.array([])).shape == (0,)


# ----------------------------------------------------------------------------- round trips
@given(S.schedules())
def test_dict_round_trip_through_json(s: Schedule) -> None:
    """``from_dict(json.loads(json.dumps(s.to_dict())))`` equals ``s`` and gives its values."""
    back = lrkit.from_dict(json.loads(json.dumps(s.to_dict())))
    assert back == s
    ts = np.arange(0, 3000, 7.0)
    assert np.array_equal(back(ts), s(ts))


@given(S.schedules())
def test_text_round_trip(s: Schedule) -> None:
    """``parse(str(s)) == s``: the printed spec is the schedule."""
    assert lrkit.parse(str(s)) == s
    assert lrkit.as_schedule(str(s)) == s


@given(S.schedules())
def test_pickle_round_trip(s: Schedule) -> None:
    """Schedules pickle (for multiprocessing and checkpoints) and come back equal."""
    back = pickle.loads(pickle.dumps(s))
    assert back == s
    ts = np.arange(0, 1000, 3.0)
    assert np.array_equal(back(ts), s(ts))


# ----------------------------------------------------------------------------- bounds
@given(S.families(), S.steps())
def test_family_bounds(s: Schedule, ts: list[float]) -> None:
    """Each family stays inside the range it promises."""
    v = s(np.array(ts))
    name = s._name
    if name in ("linear", "cosine", "polynomial"):
        assert within(v, min(s.start, s.end), max(s.start, s.end))
    elif name in ("piecewise", "interpolate"):
        assert within(v, min(s.values), max(s.values))
    elif name in ("cosine_restarts", "cyclic"):
        assert within(v, s.floor, s.peak)
    elif name == "one_cycle":
        low = s.peak / s.div_factor / s.final_div_factor
        assert within(v, min(low, s.peak / s.div_factor), s.peak)
    elif name == "one_cycle_momentum":
        assert within(v, s.low, s.high)
    elif name == "wsd":
        assert within(v, min(s.floor, s.start), s.peak)
    elif name in ("step_decay", "multistep_decay", "inverse_sqrt"):
        top = s.peak if name == "inverse_sqrt" else s.start
        assert within(v, 0.0, top)
    elif name == "exponential":
        end = 0.0 if s.end is None else s.end
        assert within(v, min(s.start, end), max(s.start, end))
    else:
        assert name == "constant"
        assert np.all(v == s.value)


@given(S.one_cycle())
def test_one_cycle_reaches_its_values(s: Schedule) -> None:
    """one_cycle starts at peak / div_factor, touches peak at the phase end, ends at low."""
    initial = s.peak / s.div_factor
    assert s(0) == pytest.approx(initial, rel=1e-12)
    assert s(s.pct_start * s.steps - 1) == pytest.approx(s.peak, rel=1e-12)
    assert s(s.steps - 1) == pytest.approx(initial / s.final_div_factor, rel=1e-12)


# ----------------------------------------------------------------------------- monotonicity
MONOTONE = st.one_of(
    S.step_decay(),
    S.multistep_decay(),
    S.exponential(),
    S.polynomial().filter(lambda s: not s.cycle),
    S.linear(),
    S.cosine(),
    S.inverse_sqrt(),
)


@given(MONOTONE)
def test_monotone_families(s: Schedule) -> None:
    """Decays never go back up; linear/cosine/polynomial move monotonically start -> end."""
    ts = np.arange(0, 1500, 0.5)
    v = s(ts)
    d = np.diff(v)
    scale = max(np.max(np.abs(v)), 1e-300)
    if s._name in ("linear", "cosine", "polynomial"):
        increasing = s.end > s.start
    else:
        increasing = s._name == "exponential" and s.gamma > 1
    if increasing:
        assert np.all(d >= -REL * scale)
    else:
        assert np.all(d <= REL * scale)


# ----------------------------------------------------------------------------- ends and joins
@given(S.finite_schedules(), st.lists(st.integers(1, 10**6), min_size=1, max_size=10))
def test_holds_final_value_past_duration(s: Schedule, later: list[int]) -> None:
    """Past its duration a finite schedule holds one value, its final_value."""
    d = s.duration
    held = s(np.array([d + k for k in later], dtype=float))
    assert np.all(held == held[0])
    assert s.final_value == pytest.approx(held[0], rel=1e-9, abs=1e-300)


@given(S.schedules(), S.lengths, S.values, st.sampled_from(["linear", "cosine", "exponential"]))
def test_warmup_meets_the_schedule(s: Schedule, n: int, start: float, shape: str) -> None:
    """A warmup starts at ``start``, ends exactly on the schedule's first value, without a jump."""
    w = lrkit.warmup(s, steps=n, start=start, shape=shape)
    head = s(0)
    assert w(0) == pytest.approx(start, rel=1e-12)
    assert w(n) == head
    # Just before the end the ramp is within (its slope x the gap) of the head.
    gap = abs(start - head) + (abs(head * math.log(head / start)) if head > 0 else 0.0)
    assert w(n - 1e-7 * n) == pytest.approx(head, abs=2e-7 * gap + 1e-12 * abs(head))
    assert w(n + 5) == s(5)


@given(S.values, S.values, S.values, S.lengths, S.lengths)
def test_sequence_is_continuous_when_ends_meet(
    a: float, b: float, c: float, n: int, m: int
) -> None:
    """``a >> b`` where a ends on b's first value has no jump at the join."""
    first = lrkit.linear(a, b, steps=n)
    second = lrkit.cosine(b, c, steps=m)
    s = first >> second
    assert s(n) == second(0) == first.final_value
    assert s(n - 1e-7 * n) == pytest.approx(b, abs=2e-7 * abs(a - b) + 1e-12 * b)
    assert s.duration == n + m


@given(S.finite_schedules(), S.schedules(), S.steps())
def test_sequence_runs_children_on_local_clocks(a: Schedule, b: Schedule, ts: list[float]) -> None:
    """``a >> b`` is a until a.duration, then b with its own clock from 0."""
    s = a >> b
    d = a.duration
    for t in ts:
        expected = a(t) if t < d else b(t - d)
        assert s(t) == expected


# ----------------------------------------------------------------------------- units
@given(
    S.finite_schedules() | S.schedules(),
    st.integers(1, 50),
    st.sampled_from(["ep", "%"]),
)
def test_bind_units_equals_steps(s: Schedule, spe: int, unit: str) -> None:
    """Lengths in '%' of the run or in epochs, once bound, give the schedule written in steps."""
    total = 100_000
    u = S.with_units(s, steps_per_epoch=spe, total_steps=total, unit=unit)
    bound = u.bind(total_steps=total, steps_per_epoch=spe)
    assert bound == s
    assert bound.is_bound
    assert u == s or not u.is_bound  # only a schedule without lengths is left unchanged
    ts = np.arange(0, 2000, 3.0)
    assert np.array_equal(bound(ts), s(ts))
    # units survive the text and dict forms unbound
    assert lrkit.parse(str(u)) == u
    assert lrkit.from_dict(json.loads(json.dumps(u.to_dict()))) == u

"""Controllers' load_state_dict: the whole state is checked before any of it is applied (kind,
version, exact keys, each field's type, range and finiteness, settings), so a refused load
changes nothing."""

from __future__ import annotations

import copy
import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from tests import strategies as S

from lrkit.controllers import (
    Controller,
    Cusum,
    PageHinkley,
    Plateau,
    RestartOnPlateau,
    RestartOnShift,
    Restarts,
)

LOSSES = [1.0, 0.9, 0.95, 0.95, 0.96, 0.97, 0.8, 0.81, 0.82, 0.83, 3.0, 3.1, 2.9, 3.0, 3.2, 3.1]


def _plateau() -> Plateau:
    return Plateau(factor=0.5, patience=1, cooldown=1, accumulation_size=2, smoothing=0.3)


def _trend() -> RestartOnPlateau:
    return RestartOnPlateau(patience=1, judge="trend", window=3, to=2, peak_decay=0.5)


def _restarts() -> Restarts:
    return Restarts(groups=[0])


def _cusum() -> RestartOnShift:
    return RestartOnShift(burn_in=4, min_interval=1)


def _page_hinkley() -> RestartOnShift:
    return RestartOnShift("page_hinkley", burn_in=4, threshold=0.3)


MAKERS = [_plateau, _trend, _restarts, _cusum, _page_hinkley]


def _used(make) -> Controller:
    """A controller of ``make`` after a run of metrics (and a restart and a bump for Restarts)."""
    c = make()
    for k, loss in enumerate(LOSSES):
        c.observe(k, loss)
        c.scale(k)
    if isinstance(c, Restarts):
        c.restart(to=3, at=5, stretch=2.0, reset_optimizer=True)
        c.bump(factor=3.0, steps=4, at=9, shape="linear")
    return c


@pytest.mark.parametrize("make", MAKERS)
def test_json_round_trip_loads_exactly(make) -> None:
    """A used controller's state, through JSON, loads into a fresh one and comes back equal."""
    state = json.loads(json.dumps(_used(make).state_dict(), allow_nan=False))
    c = make()
    c.load_state_dict(state)
    assert c.state_dict() == state


@pytest.mark.parametrize(
    ("make", "key", "value", "message"),
    [
        (
            _plateau,
            "num_reductions",
            -1,
            r"num_reductions must be an integer >= 0, got num_reductions=-1",
        ),
        (_plateau, "best", float("nan"), r"best must be finite, got best=nan"),
        (
            _plateau,
            "num_bad_evals",
            1.5,
            r"num_bad_evals must be an integer, got num_bad_evals=1.5",
        ),
        (_plateau, "_recent", [1.0, "x"], r"_recent\[1\] must be a real number"),
        (
            _plateau,
            "last_reduced_step",
            True,
            r"last_reduced_step must be an integer, got last_reduced_step=True",
        ),
        (_trend, "restarts", [[3, -1.0, 1.0, 1.0]], r"restarts\[0\]\[1\] \(to\) must be >= 0"),
        (
            _restarts,
            "bumps",
            [[9, 3.0, 0, "linear"]],
            r"bumps\[0\]\[2\] \(steps\) must be an integer >= 1",
        ),
        (
            _restarts,
            "bumps",
            [[9, 3.0, 4, "square"]],
            r"bumps\[0\]\[3\] \(shape\) must be one of 'cosine', 'linear'",
        ),
        (
            _restarts,
            "events",
            [{"kind": "restart"}],
            r"events\[0\] lacks \['step', 'reset_optimizer', 'groups'\]",
        ),
        (
            _cusum,
            "detector_state",
            {"n": 3, "mu": 1.0, "var": -1.0, "g": 0.0},
            r"detector_state\['var'\] must be >= 0",
        ),
        (
            _page_hinkley,
            "detector_state",
            {"n": 3, "mu": 1.0, "var": 0.0, "cum": 0.1, "cum_min": 0.5},
            r"cum_min'\] must be <= min\(0, cum\), got cum_min=0.5, cum=0.1",
        ),
        (
            _cusum,
            "shift_steps",
            [-3],
            r"shift_steps\[0\] must be an integer >= 0, got shift_steps\[0\]=-3",
        ),
        (_cusum, "last_step", -2, r"last_step must be an integer >= -1, got last_step=-2"),
        (_cusum, "version", None, r"unknown state version, got version=None"),
    ],
)
def test_bad_value_is_refused_and_changes_nothing(make, key, value, message) -> None:
    """A corrupted field raises naming the key and the value; the controller is unchanged."""
    state = _used(make).state_dict()
    state[key] = value
    c = _used(make)
    before = c.state_dict()
    with pytest.raises((ValueError, TypeError), match=message):
        c.load_state_dict(state)
    assert c.state_dict() == before


def test_plateau_settings_mismatch_raises() -> None:
    """A checkpoint of Plateau(factor=0.5) is refused by Plateau(factor=0.01), which is unchanged
    (the Scheduler's strict=False path is tested in tests/torch_binding)."""
    state = _used(_plateau).state_dict()
    other = Plateau(factor=0.01, patience=1, cooldown=1, accumulation_size=2, smoothing=0.3)
    with pytest.raises(ValueError, match=r"other settings \(factor: checkpoint 0.5, here 0.01\)"):
        other.load_state_dict(state)
    assert other.num_evals == 0 and other.factor == 0.01


def test_shift_detector_kind_is_a_setting() -> None:
    """A CUSUM checkpoint does not load into a Page-Hinkley RestartOnShift."""
    state = _used(_cusum).state_dict()
    with pytest.raises(ValueError, match=r"detector_settings: checkpoint \{'kind': 'Cusum'"):
        _page_hinkley().load_state_dict(state)


def test_detectors_refuse_bad_statistics() -> None:
    """Cusum and PageHinkley load their statistics all or nothing."""
    d = Cusum(burn_in=2)
    for x in (1.0, 1.1, 1.0):
        d.update(x)
    before = d.state_dict()
    with pytest.raises(ValueError, match=r"state\['g'\] must be >= 0, got state\['g'\]=-0.5"):
        d.load_state_dict({**before, "g": -0.5})
    with pytest.raises(ValueError, match=r"state has unknown keys \['cum'\]"):
        d.load_state_dict({**before, "cum": 0.0})
    assert d.state_dict() == before
    p = PageHinkley()
    p.load_state_dict({"n": 5, "mu": 2.0, "var": 0.1, "cum": 0.3, "cum_min": -0.2})
    assert p.cum_min == -0.2


_HOSTILE = [
    float("nan"),
    float("inf"),
    -1,
    1.5,
    0,
    -0.0,
    None,
    "x",
    True,
    [],
    {},
    10**20,
    [1, "a"],
    {"a": 1},
    [[0, 1.0, 1.0, 1.0]],
]


@st.composite
def _corruption(draw) -> tuple:
    make = draw(st.sampled_from(MAKERS))
    state = draw(S.corrupted_state(_used(make).state_dict(), _HOSTILE))
    return make, state


@pytest.mark.slow
@settings(max_examples=max(400, settings.default.max_examples))
@given(case=_corruption())
def test_corrupted_state_loads_exactly_or_changes_nothing(case) -> None:
    """One random corruption of a valid state: either it loads and comes back exactly, or it
    raises ValueError/TypeError and the controller is unchanged."""
    make, state = case
    c = _used(make)
    before = c.state_dict()
    try:
        c.load_state_dict(copy.deepcopy(state))
    except (ValueError, TypeError):
        assert c.state_dict() == before
        return
    assert c.state_dict() == state
    c.observe(len(LOSSES), 1.0)
    c.scale(len(LOSSES))

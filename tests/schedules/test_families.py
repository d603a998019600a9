"""Regression tests for single families, each pinned to the bug it caught."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

import lrkit as L


def test_growing_exponential_far_past_its_end_has_no_overflow() -> None:
    """A range-test ramp (gamma > 1) holds ``end`` at any step without an overflow warning."""
    s = L.exponential(1e-7, gamma=2.0, end=1.0)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert s(10**6) == 1.0
        assert np.all(s(np.array([0.0, 1e3, 1e9])) == [1e-7, 1.0, 1.0])
    stair = L.exponential(1e-7, gamma=10.0, every=3, staircase=True, end=1.0)
    assert stair(10**7) == 1.0
    assert stair(3) == 1e-6 * (1e-7 * 10 / 1e-6)  # one period: start * gamma


def test_cosine_restarts_restarts_exactly_at_period_starts() -> None:
    """With integer period_mult a new period starts at the peak exactly at its first step.

    (The period index came from a logarithm and was off by one at some boundaries, giving the
    floor instead of the peak there, e.g. steps=3, period_mult=3 at t=3 and t=12.)
    """
    for steps, mult in [(3, 3.0), (5, 2.0), (1, 2.0), (7, 4.0), (2, 5.0)]:
        s = L.cosine_restarts(1.0, 0.0, steps=steps, period_mult=mult)
        start, length = 0, steps
        for _ in range(8):
            assert s(start) == 1.0, (steps, mult, start)
            assert length == 1 or s(start + length - 1) < 1.0
            start, length = start + length, int(length * mult)


def test_cyclic_families_never_settle() -> None:
    """cosine_restarts, cyclic and an endless repeat have no duration and keep cycling."""
    for s in (
        L.cosine_restarts(1.0, 0.0, steps=10),
        L.cyclic(0.0, 1.0, steps_up=5),
        L.linear(1.0, 0.0, steps=10).repeat(),
    ):
        assert s.duration is None
        assert s.final_value is None
        assert s(10**6) == s(0)  # a whole number of periods later, back at the start


def test_extreme_valid_parameters_stay_finite_without_warnings() -> None:
    """Wide ranges, tiny factors and huge multipliers give finite values and no overflow warning.

    (peak - floor overflowed for peak=1e308, floor=-1e308; period_mult=1e300 gave NaN at 1e15;
    an exponential warmup from 1e-300 to 1e300 gave inf; triangular2 warned at step 1e15.)
    """
    cases = [
        L.cosine_restarts(1e308, -1e308, steps=10),
        L.cosine_restarts(1e308, -1e308, steps=10, period_mult=2.0, peak_mult=0.5),
        L.cosine_restarts(1.0, 0.0, steps=1, period_mult=1e300),
        L.cosine_restarts(1.0, 0.0, steps=1, period_mult=1e10),
        L.cyclic(-1e308, 1e308, steps_up=10),
        L.cyclic(0.0, 1.0, steps_up=1, mode="triangular2"),
        L.warmup(L.constant(1e300), steps=10, start=1e-300, shape="exponential"),
        L.exponential(1e-300, gamma=1e300, end=1e300),
        L.stretch(L.cosine_restarts(1.0, steps=3, period_mult=2.0), 1e-300),
        L.stretch(L.cyclic(0.0, 1.0, steps_up=3), 1e-300),
    ]
    ts = np.array([0.0, 1.0, 2.5, 7.0, 1e6, 1e15, 1e300])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        for s in cases:
            vs = s(ts)
            assert np.all(np.isfinite(vs)), s
            assert [s(float(t)) for t in ts] == vs.tolist(), s


def test_one_cycle_refuses_factors_that_overflow() -> None:
    """A div_factor so small that peak / div_factor is infinite is refused at construction."""
    with pytest.raises(L.ScheduleValueError, match=r"one_cycle: .*div_factor.*finite"):
        L.one_cycle(1.0, steps=100, div_factor=1e-310)
    with pytest.raises(L.ScheduleValueError, match=r"one_cycle: .*final_div_factor.*finite"):
        L.one_cycle(1e300, steps=100, div_factor=1.0, final_div_factor=1e-10)


def test_period_boundaries_of_wide_cosine_restarts_are_exact() -> None:
    """Written as peak * w + floor * (1 - w), a restart starts at the peak and ends near the floor."""
    s = L.cosine_restarts(3.0, -1.0, steps=4, period_mult=2.0, peak_mult=0.5)
    assert s(0) == 3.0 and s(4) == 1.0 and s(12) == 0.0
    assert L.cyclic(-1.0, 3.0, steps_up=2, steps_down=6)(2) == 3.0


def test_exponential_with_end_is_end_exactly_from_its_duration() -> None:
    """At and after its duration an exponential with ``end`` is exactly ``end`` (was an ulp off)."""
    rng = np.random.default_rng(0)
    for _ in range(300):
        start = float(rng.uniform(0.01, 10.0))
        gamma = float(rng.uniform(0.01, 0.999))
        end = start * float(rng.uniform(0.001, 0.99))
        for s in (
            L.exponential(start, gamma=gamma, end=end, every=int(rng.integers(1, 10))),
            L.exponential(end, gamma=1.0 / gamma, end=start, staircase=True),
        ):
            d = s.duration
            assert s(d) == s.end == s(d + 1.0) == s(d * 3.0 + 7.0), s


def test_exponential_with_gamma_one_holds_start_whatever_the_end() -> None:
    """gamma == 1 changes nothing per period: the value is start (was min(start, end), or end)."""
    for end in (0.0, 0.5, 1.0, 2.0):
        s = L.exponential(1.0, gamma=1.0, end=end)
        assert s(np.array([0.0, 3.0, 1e9])).tolist() == [1.0, 1.0, 1.0]
        assert s.duration == 0 and s.final_value == 1.0

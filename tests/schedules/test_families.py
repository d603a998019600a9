"""Regression tests for single families, each pinned to the bug it caught."""

from __future__ import annotations

import warnings

import numpy as np

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

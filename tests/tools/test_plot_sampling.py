"""Where plots evaluate schedules: ``sample_steps`` and ``breakpoints`` (phase ends).

Expected phase ends are read off each family's definition: a warmup of W steps ends at W;
``a >> b`` joins at ``a``'s duration; WSD's phases end at W and W + S (Hu et al., 2024);
torch ``OneCycleLR`` ends its phases at ``pct*T - 1`` (``2*pct*T - 2``) and ``T - 1``
(torch/optim/lr_scheduler.py, ``_schedule_phases``); SGDR restarts at ``T0 * (m**i - 1)/(m - 1)``.
"""

from __future__ import annotations

import numpy as np
import pytest

import lrkit
from lrkit.tools._sampling import breakpoints, sample_steps


@pytest.mark.parametrize(
    ("schedule", "horizon", "expected"),
    [
        (lrkit.warmup(lrkit.cosine(1.0, steps=900), steps=100), None, [100, 1000]),
        (lrkit.linear(0.0, 1.0, steps=30) >> lrkit.cosine(1.0, steps=70), None, [30, 100]),
        (lrkit.wsd(1.0, warmup_steps=10, stable_steps=80, decay_steps=10), None, [10, 90, 100]),
        (lrkit.one_cycle(1.0, steps=1000), None, [299, 999]),
        (lrkit.one_cycle(1.0, steps=1000, three_phase=True), None, [299, 598, 999]),
        (lrkit.cosine_restarts(1.0, steps=10, period_mult=2.0), 100, [10, 30, 70]),
        (lrkit.multistep_decay(1.0, milestones=[30, 80]), None, [30, 80]),
        (lrkit.shift(lrkit.linear(1.0, 0.0, steps=10), steps=5), None, [5, 15]),
        (lrkit.stretch(lrkit.warmup(lrkit.cosine(1.0, steps=9), steps=1), 10.0), None, [10, 100]),
        (lrkit.repeat(lrkit.linear(1.0, 0.0, steps=10), times=3), None, [10, 20, 30]),
        (0.5 * lrkit.warmup(lrkit.cosine(1.0, steps=90), steps=10), None, [10, 100]),
        (lrkit.step_decay(1.0, steps=25), 100, [25, 50, 75, 100]),
        # CLR triangle: peaks at 10, 50, 90 and troughs at 40, 80 (up 10, down 30).
        (lrkit.cyclic(0.1, 1.0, steps_up=10, steps_down=30), 100, [10, 40, 50, 80, 90]),
    ],
)
def test_breakpoints(schedule: lrkit.Schedule, horizon: int | None, expected: list[int]) -> None:
    """Phase ends of each family and combinator, within the horizon."""
    assert breakpoints(schedule, horizon) == [float(b) for b in expected]


def test_breakpoints_are_where_the_value_changes_course() -> None:
    """At a sequence join the slope changes: the breakpoint is a real kink in the values."""
    s = lrkit.linear(0.0, 1.0, steps=40) >> lrkit.linear(1.0, 0.0, steps=60)
    (join, end) = breakpoints(s)
    values = s(np.arange(101))
    assert np.argmax(values) == join and end == 100


def test_breakpoints_of_a_cyclic_schedule_need_a_horizon() -> None:
    """A schedule that never settles has no default horizon."""
    with pytest.raises(ValueError, match=r"breakpoints: .* never settles"):
        breakpoints(lrkit.cosine_restarts(1.0, steps=10))


def test_sample_steps_dense_then_strided() -> None:
    """Every step up to max_points; beyond, a strided grid with both ends and phase ends."""
    np.testing.assert_array_equal(sample_steps(99), np.arange(100))
    s = lrkit.warmup(lrkit.cosine(1.0, steps=5_000_000), steps=123_457)
    x = sample_steps(5_123_457, [s], max_points=1000)
    assert x[0] == 0 and x[-1] == 5_123_457
    assert {123_456, 123_457} <= set(x.tolist())
    assert np.all(np.diff(x) > 0) and np.all(x == np.rint(x))
    assert 1000 <= len(x) <= 1010


def test_sample_steps_rejects_bad_steps() -> None:
    """steps must be a positive integer."""
    with pytest.raises(ValueError, match="sample_steps: steps must be a positive integer"):
        sample_steps(0)
    with pytest.raises(TypeError, match="sample_steps: steps must be a positive integer"):
        sample_steps(10.0)  # type: ignore[arg-type]

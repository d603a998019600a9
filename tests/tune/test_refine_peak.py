"""The peak refinement rule (refine_peak): factor steps around a peak, bounded, reproducible."""

from __future__ import annotations

import math
import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from lrkit.tune.rules import refine_peak


class Oracle:
    """A loss as a function of the rate, recording every call (the rates asked, in order)."""

    def __init__(self, fn):
        self.fn, self.calls = fn, []

    def __call__(self, rates):
        self.calls.append(list(rates))
        return [self.fn(r) for r in rates]


def _bowl(best):
    return lambda r: (math.log2(r / best)) ** 2


def test_steps_up_to_the_bound_when_loss_keeps_falling():
    """A minimum far above the peak: neighbours first, then one rate per call, stopping at 2."""
    o = Oracle(_bowl(10.0))
    r = refine_peak(0.1, _bowl(10.0)(0.1), o, factor=2.0, max_steps=2)
    assert o.calls == [[0.05, 0.2], [0.4]]
    assert r.refined == 0.4 and r.steps == 2
    assert [t[0] for t in r.trials] == [0.05, 0.1, 0.2, 0.4]


def test_stops_when_the_next_step_is_worse():
    """The minimum one step below: the second step down is tried, found worse, and dropped."""
    o = Oracle(_bowl(0.05))
    r = refine_peak(0.1, _bowl(0.05)(0.1), o, max_steps=3)
    assert o.calls == [[0.05, 0.2], [0.025]]
    assert r.refined == 0.05 and r.steps == -1


def test_keeps_the_peak_unless_strictly_better():
    """Equal losses, or worse neighbours, keep the peak after the two neighbour runs only."""
    o = Oracle(lambda r: 1.0)
    assert refine_peak(0.3, 1.0, o).refined == 0.3 and o.calls == [[0.15, 0.6]]
    assert refine_peak(0.3, 0.5, Oracle(_bowl(0.3))).refined == 0.3


def test_diverged_rates_count_as_worst():
    """inf/NaN losses (diverged runs) never win; a finite peak loss beats them."""
    r = refine_peak(1.0, 2.0, lambda rates: [math.nan, math.inf])
    assert r.refined == 1.0 and all(not math.isfinite(v) for rate, v in r.trials if rate != 1.0)
    r = refine_peak(1.0, math.inf, lambda rates: [3.0, math.inf], max_steps=1)
    assert r.refined == 0.5


def test_tie_between_neighbours_prefers_the_lower_rate():
    """Both neighbours equally better than the peak: the lower rate is taken."""
    r = refine_peak(1.0, 2.0, lambda rates: [1.0] * len(rates), max_steps=1)
    assert r.refined == 0.5


@given(
    peak=st.floats(1e-5, 10.0),
    factor=st.floats(1.1, 4.0),
    max_steps=st.integers(1, 4),
    losses=st.lists(st.one_of(st.floats(0.0, 5.0), st.just(math.inf)), min_size=9, max_size=9),
)
def test_bounds_and_choice(peak, factor, max_steps, losses):
    """Any losses: at most max_steps+1 rates asked, all of them peak*factor**k with |k| <=
    max_steps, and the refined rate has the lowest loss among the rates tried."""

    def fn(rate):
        k = round(math.log(rate / peak) / math.log(factor))
        assert abs(k) <= max_steps and math.isclose(rate, peak * factor**k)
        return losses[k + 4]

    o = Oracle(fn)
    r = refine_peak(peak, losses[4], o, factor=factor, max_steps=max_steps)
    asked = [x for c in o.calls for x in c]
    assert len(asked) <= max_steps + 1 and len(set(asked)) == len(asked)
    assert (
        peak / factor**max_steps * (1 - 1e-9) <= r.refined <= peak * factor**max_steps * (1 + 1e-9)
    )
    assert abs(r.steps) <= max_steps
    best = min(v for _, v in r.trials)
    assert dict(r.trials)[r.refined] == best


@pytest.mark.parametrize(
    ("kw", "match"),
    [
        ({"peak": 0.0}, "peak must be a finite number > 0, got peak=0.0"),
        ({"factor": 1.0}, "factor must be a finite number > 1, got factor=1.0"),
        ({"max_steps": 0}, "max_steps must be an integer >= 1, got max_steps=0"),
        ({"max_steps": 1.5}, "max_steps must be an integer >= 1, got max_steps=1.5"),
    ],
)
def test_errors(kw, match):
    """Bad settings name the function, the argument and the value, before any loss is asked."""
    args = {"peak": 0.1, "factor": 2.0, "max_steps": 2} | kw
    with pytest.raises(ValueError, match=f"refine_peak: {re.escape(match)}"):
        refine_peak(args.pop("peak"), 1.0, lambda rates: pytest.fail("asked"), **args)


def test_wrong_number_of_losses():
    """losses_at returning too few losses is an error, not a silent zip."""
    with pytest.raises(ValueError, match="returned 1 losses for 2 rates"):
        refine_peak(0.1, 1.0, lambda rates: [1.0])

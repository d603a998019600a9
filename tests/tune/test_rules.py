"""Range-test analysis: smoothing, divergence and the suggestion rules (lrkit.tune.rules)."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from lrkit.tune import probe_rule
from lrkit.tune.rules import (
    divergence_index,
    minimum_tenth,
    smooth,
    steepest,
    suggest,
    valley,
)

finite = st.floats(-1e3, 1e3, allow_nan=False)


def _fastai_valley(lrs, losses):
    """fastai.callback.schedule.valley (fastai 2.7), re-typed from its source as the reference."""
    n = len(losses)
    max_start, max_end = 0, 0
    lds = [1] * n
    for i in range(1, n):
        for j in range(0, i):
            if (losses[i] < losses[j]) and (lds[i] < lds[j] + 1):
                lds[i] = lds[j] + 1
            if lds[max_end] < lds[i]:
                max_end = i
                max_start = max_end - lds[max_end]
    sections = (max_end - max_start) / 3
    idx = max_start + int(sections) + int(sections / 2)
    return float(lrs[idx]) if idx >= 0 else None  # fastai wraps to lrs[-1] here; lrkit uses lrs[0]


def _curve(n=80):
    """A typical range-test curve: flat, a drop around 1e-2.5, an explosion past 1e-0.5."""
    rates = np.geomspace(1e-5, 10.0, n)
    x = np.log10(rates)
    return rates, 2.0 - 1.5 / (1 + np.exp(-3 * (x + 2.5))) + np.exp(4 * (x + 0.5))


@given(st.lists(finite, min_size=1, max_size=40), st.floats(0.0, 0.99))
def test_smooth_is_debiased_weighted_mean(xs, beta):
    """smooth() equals sum_j beta^(i-j) (1-beta) x_j / (1 - beta^(i+1)) at every i."""
    out = smooth(xs, beta)
    for i in range(len(xs)):
        w = np.array([beta ** (i - j) * (1 - beta) for j in range(i + 1)])
        ref = float(np.dot(w, xs[: i + 1]) / (1 - beta ** (i + 1)))
        assert out[i] == pytest.approx(ref, rel=1e-9, abs=1e-9)


def test_smooth_constant_and_identity():
    """A constant stays constant (no bias towards 0); beta=0 returns the input."""
    assert smooth([3.0] * 10, 0.98).tolist() == pytest.approx([3.0] * 10)
    assert smooth([1.0, 5.0, 2.0], 0.0).tolist() == [1.0, 5.0, 2.0]


@pytest.mark.parametrize("beta", [-0.1, 1.0, 2, True, "x"])
def test_smooth_rejects_bad_beta(beta):
    """beta outside [0, 1) is a ValueError naming beta."""
    with pytest.raises(ValueError, match="smooth: beta must be"):
        smooth([1.0, 2.0], beta)


def test_divergence_index():
    """Divergence is the first point above factor x the running minimum, or non-finite."""
    assert divergence_index([3, 2, 1, 3.9, 4.1], 4.0) == 4
    assert divergence_index([3, 2, 1, 3.9], 4.0) is None
    assert divergence_index([3, float("nan"), 1], 4.0) == 1
    with pytest.raises(ValueError, match="factor must be a number > 1"):
        divergence_index([1.0], 1.0)


def test_steepest_finds_fastest_fall_per_decade():
    """For L = -tanh(log10 r + 3) the steepest fall in log-rate space is at r = 1e-3."""
    rates = np.geomspace(1e-6, 1.0, 61)
    losses = -np.tanh(np.log10(rates) + 3)
    r = steepest(rates, losses)
    assert 10**-3.2 <= r <= 10**-2.9


@given(st.lists(finite, min_size=2, max_size=30))
def test_valley_matches_fastai(losses):
    """valley() equals fastai's valley rule on arbitrary curves (index clamped at 0, not wrapped)."""
    rates = np.geomspace(1e-5, 1.0, len(losses))
    ref = _fastai_valley(rates, losses)
    assert valley(rates, losses) == (rates[0] if ref is None else ref)


def test_minimum_tenth():
    """minimum/10 is a tenth of the rate of the lowest loss."""
    assert minimum_tenth([1e-3, 1e-2, 1e-1], [3.0, 1.0, 2.0]) == pytest.approx(1e-3)


def test_suggest_on_typical_curve():
    """On a clean curve the default is minimum/10, a decade below the loss minimum, confident."""
    rates, losses = _curve()
    s = suggest(rates, losses, beta=0.0)
    i_min = int(np.argmin(losses))
    assert s.method == "minimum/10" and s.rate == pytest.approx(rates[i_min] / 10)
    assert set(s.alternatives) == {"valley", "steepest", "minimum/10"}
    assert s.confidence > 0.4 and s.confidence_label in ("medium", "high")


@pytest.mark.parametrize("rule", ["valley", "steepest", "minimum/10"])
def test_suggest_rule_selects_alternative(rule):
    """rule= picks which alternative becomes the suggestion."""
    rates, losses = _curve()
    s = suggest(rates, losses, beta=0.0, rule=rule)
    assert (s.method, s.rate) == (rule, s.alternatives[rule])
    with pytest.raises(ValueError, match="rule must be one of"):
        suggest(rates, losses, rule="median")


def test_suggest_flat_curve_has_low_confidence():
    """A loss that barely moves yields low confidence and says why."""
    rates = np.geomspace(1e-5, 1e-3, 50)
    losses = 2.0 - 0.01 * np.linspace(0, 1, 50)
    s = suggest(rates, losses, beta=0.0)
    assert s.confidence < 0.3 and s.confidence_label == "low"
    assert any("fell only" in r for r in s.reasons)


def test_suggest_cuts_at_divergence():
    """Points after divergence are ignored: losses after the blow-up, however low, do not move
    the suggestion."""
    rates, losses = _curve()
    cut = suggest(rates[:60], losses[:60], beta=0.0)
    # without the cut, the late low losses would hold the minimum and move every rule
    exploded = np.concatenate([losses[:60], np.full(10, 1e6), np.full(10, 1e-3)])
    assert suggest(rates, exploded, beta=0.0).rate == cut.rate


@pytest.mark.parametrize(
    ("rates", "losses", "match"),
    [
        ([1.0, 2.0, 3.0], [1.0, 2.0], "same length"),
        ([1.0, 2.0], [1.0, 2.0], "at least 3 points"),
        ([0.0, 1.0, 2.0], [1.0, 2.0, 3.0], "rates must be finite and > 0"),
    ],
)
def test_suggest_errors(rates, losses, match):
    """Malformed inputs are ValueErrors naming the problem."""
    with pytest.raises(ValueError, match=match):
        suggest(rates, losses)


def test_suggest_too_few_after_trim():
    """Trimming below 3 points is an error naming the skips."""
    with pytest.raises(ValueError, match="fewer than 3 points"):
        suggest([1e-3, 1e-2, 1e-1, 1.0], [1.0, 0.9, 0.8, 0.7], beta=0.0, skip_start=2)


# ---------------------------------------------------------------------------- probe rule
def test_probe_rates_sit_below_the_edge_a_factor_apart():
    """probe_rates: ascending, the highest at edge / top rounded down to a power of 2 (so
    nearby edges give the same probes), neighbours `spacing` apart."""
    r = probe_rule.probe_rates(10.0, count=4, spacing=4.0, top=2.0)
    assert r[-1] == 4.0 and len(r) == 4
    assert probe_rule.probe_rates(9.0, count=4) == r
    assert all(b / a == pytest.approx(4.0) for a, b in itertools.pairwise(r))


@pytest.mark.parametrize(
    ("kw", "match"),
    [
        ({"edge": 0.0}, "edge"),
        ({"edge": float("inf")}, "edge"),
        ({"edge": 1.0, "count": 1}, "count"),
        ({"edge": 1.0, "spacing": 1.0}, "spacing"),
        ({"edge": 1.0, "top": 0.5}, "top"),
    ],
)
def test_probe_rates_refuses_bad_arguments(kw, match):
    """Each bad argument is named with its value."""
    with pytest.raises(ValueError, match=match):
        probe_rule.probe_rates(**kw)


def test_choose_probe_picks_the_lowest_loss_and_is_honest():
    """The lowest held-out loss wins; confidence is full for an interior best that learnt,
    lower at the edge of the probed range and when the probes barely learnt."""
    inner = probe_rule.choose_probe([0.01, 0.1, 1.0], [0.8, 0.5, 0.9], start_loss=2.0)
    assert inner.rate == 0.1 and inner.confidence == 1.0 and inner.confidence_label == "high"
    edge = probe_rule.choose_probe([0.01, 0.1, 1.0], [0.9, 0.7, 0.5], start_loss=2.0)
    assert edge.rate == 1.0 and edge.confidence_label == "low"
    assert any("highest rate" in r for r in edge.reasons)
    flat = probe_rule.choose_probe([0.01, 0.1, 1.0], [1.99, 1.98, 1.99], start_loss=2.0)
    assert flat.confidence_label == "low" and any("only" in r for r in flat.reasons)


def test_choose_probe_skips_diverged_and_refuses_all_diverged():
    """Non-finite probes never win; if every probe diverged the error says to go lower."""
    s = probe_rule.choose_probe([0.01, 0.1, 1.0], [0.9, float("nan"), float("inf")], start_loss=2.0)
    assert s.rate == 0.01
    with pytest.raises(ValueError, match="every probe diverged"):
        probe_rule.choose_probe([0.1, 1.0], [float("nan"), float("inf")], start_loss=2.0)


@given(
    st.lists(
        st.floats(0.0, 10.0) | st.just(float("inf")) | st.just(float("nan")),
        min_size=2,
        max_size=10,
    )
)
def test_choose_probe_rate_is_a_finite_minimum(losses):
    """Whatever the losses, the chosen rate is one of the probes with the lowest finite loss,
    and the confidence lies in [0, 1]."""
    rates = [10.0**-i for i in range(len(losses), 0, -1)]
    finite = [v for v in losses if np.isfinite(v)]
    if not finite:
        with pytest.raises(ValueError):
            probe_rule.choose_probe(rates, losses, 5.0)
        return
    s = probe_rule.choose_probe(rates, losses, 5.0)
    assert losses[rates.index(s.rate)] == min(finite) and 0.0 <= s.confidence <= 1.0

"""Plateau: step-by-step equality with torch, Keras, optax and fastai; smoothing; state; errors."""

from __future__ import annotations

import itertools
import json
import math
import warnings

import pytest
from hypothesis import given
from hypothesis import strategies as st
from tests.controllers._references import FastaiPlateau, KerasPlateau, OptaxPlateau

import lrkit
from lrkit.controllers import ControllerWarning, Plateau

torch = pytest.importorskip("torch")

metrics_st = st.lists(
    st.one_of(
        st.floats(-2.0, 2.0, allow_nan=False),
        st.sampled_from([0.5, 0.5, 1.0, -1.0]),  # exact repeats: ties must not count as better
    ),
    min_size=1,
    max_size=80,
)


def _torch_lrs(metrics, lr0=1.0, **kw):
    opt = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=lr0)
    sched = torch.optim.lr_scheduler.ReduceLROnPlateau(opt, **kw)
    out = []
    for m in metrics:
        sched.step(m)
        out.append(opt.param_groups[0]["lr"])
    return out


@given(
    metrics=metrics_st,
    mode=st.sampled_from(["min", "max"]),
    factor=st.sampled_from([0.1, 0.5, 0.9]),
    patience=st.integers(0, 5),
    threshold=st.sampled_from([0.0, 1e-4, 0.05, 0.3]),
    threshold_mode=st.sampled_from(["rel", "abs"]),
    cooldown=st.integers(0, 4),
    min_lr_frac=st.sampled_from([0.0, 1e-3, 0.05]),
    lr0=st.sampled_from([1.0, 0.1, 3e-4]),
)
def test_equals_torch_step_by_step(
    metrics, mode, factor, patience, threshold, threshold_mode, cooldown, min_lr_frac, lr0
):
    """Plateau on a constant schedule gives torch ReduceLROnPlateau's lr after every metric.

    (min_lr below the initial lr: torch applies min_lr only when it reduces, lrkit's floor always.)
    """
    min_lr = min_lr_frac * lr0
    kw = dict(
        mode=mode,
        factor=factor,
        patience=patience,
        threshold=threshold,
        threshold_mode=threshold_mode,
        cooldown=cooldown,
    )
    expected = _torch_lrs(metrics, lr0=lr0, min_lr=min_lr, **kw)
    # torch's eps compares absolute lrs; with the scale relative to lr0 the same eps is eps / lr0
    p = Plateau(**kw, floor=min_lr, eps=1e-8 / lr0)
    for k, (m, want) in enumerate(zip(metrics, expected, strict=True)):
        p.observe(k, m)
        got = max(lr0 * p.scale(k), min_lr)
        assert got == pytest.approx(want, rel=1e-12, abs=1e-15), (k, m)


def test_torch_default_arguments_match():
    """Plateau() with no arguments decides like ReduceLROnPlateau(opt) with its defaults."""
    metrics = [1.0] + [1.0 - 1e-5 * i for i in range(40)] + [0.5] + [0.6] * 30
    expected = _torch_lrs(metrics)
    p = Plateau()
    got = []
    for k, m in enumerate(metrics):
        p.observe(k, m)
        got.append(p.scale(k))
    assert got == pytest.approx(expected, rel=1e-12)
    assert p.num_reductions == sum(1 for a, b in itertools.pairwise([1.0, *expected]) if b < a), (
        "num_reductions counts the applied reductions"
    )


def test_warmup_cosine_with_plateau_reductions_on_top():
    """On warmup-then-cosine, lr(k) = schedule(k) * torch's plateau factor at every step."""
    sched = lrkit.warmup(lrkit.cosine(0.1, 0.001, steps=90), steps=10)
    metrics = [1.0 / (1 + k) if k < 30 else 0.05 + 0.001 * math.sin(k) for k in range(100)]
    factors = _torch_lrs(metrics, lr0=1.0, factor=0.5, patience=4, cooldown=2)
    p = Plateau(factor=0.5, patience=4, cooldown=2)
    reductions = 0
    for k, m in enumerate(metrics):
        p.observe(k, m)
        value = sched(p.clock(k)) * p.scale(k)
        assert value == pytest.approx(sched(k) * factors[k], rel=1e-12)
        reductions = p.num_reductions
    assert reductions >= 2, "the sequence is built to plateau several times"
    assert p.last_reduced_step is not None and p.last_reduced_step > 30


@given(
    metrics=metrics_st,
    mode=st.sampled_from(["min", "max"]),
    factor=st.sampled_from([0.1, 0.5]),
    patience=st.integers(0, 5),
    min_delta=st.sampled_from([0.0, 1e-4, 0.1]),
    cooldown=st.integers(0, 4),
    min_lr=st.sampled_from([0.0, 0.01, 0.2]),
)
def test_keras_rule_equals_keras_reference(
    metrics, mode, factor, patience, min_delta, cooldown, min_lr
):
    """rule='keras' reproduces Keras's on_epoch_end counting, cooldown and min_lr guard."""
    ref = KerasPlateau(mode, factor, patience, min_delta, cooldown, min_lr)
    p = Plateau(
        mode=mode,
        factor=factor,
        patience=patience,
        threshold=0.0,
        threshold_mode="abs",
        cooldown=cooldown,
        min_scale=min_lr,
        eps=0.0,
        rule="keras",
        min_delta=min_delta,
    )
    for k, m in enumerate(metrics):
        ref.step(m)
        p.observe(k, m)
        assert p.scale(k) == pytest.approx(ref.lr, rel=1e-12), k
        assert p.num_bad_evals == ref.wait, k


@given(
    metrics=metrics_st,
    factor=st.sampled_from([0.1, 0.5]),
    patience=st.integers(1, 5),
    rtol=st.sampled_from([0.0, 1e-4, 0.1]),
    atol=st.sampled_from([0.0, 1e-3, 0.2]),
    cooldown=st.integers(0, 4),
    accumulation_size=st.integers(1, 4),
    min_scale=st.sampled_from([0.0, 0.05]),
)
def test_optax_rule_equals_optax_reference(
    metrics, factor, patience, rtol, atol, cooldown, accumulation_size, min_scale
):
    """rule='optax' reproduces optax.contrib.reduce_on_plateau, accumulation included."""
    ref = OptaxPlateau(factor, patience, rtol, atol, cooldown, accumulation_size, min_scale)
    p = Plateau(
        factor=factor,
        patience=patience,
        threshold=rtol,
        threshold_mode="rel",
        cooldown=cooldown,
        min_scale=min_scale,
        eps=0.0,
        rule="optax",
        min_delta=atol,
        accumulation_size=accumulation_size,
    )
    for k, m in enumerate(metrics):
        ref.step(m)
        p.observe(k, m)
        assert p.scale(k) == pytest.approx(ref.scale, rel=1e-12), k


@given(
    metrics=metrics_st,
    mode=st.sampled_from(["min", "max"]),
    divisor=st.sampled_from([2.0, 10.0]),
    patience=st.integers(0, 5),
    min_delta=st.sampled_from([0.0, 0.01, 0.3]),
    min_lr=st.sampled_from([0.0, 0.01]),
)
def test_fastai_rule_equals_fastai_reference(metrics, mode, divisor, patience, min_delta, min_lr):
    """rule='fastai' reproduces fastai's ReduceLROnPlateau (factor = 1 / fastai's divisor)."""
    ref = FastaiPlateau(mode, divisor, patience, min_delta, min_lr)
    p = Plateau(
        mode=mode,
        factor=1.0 / divisor,
        patience=patience,
        threshold=0.0,
        threshold_mode="abs",
        floor=min_lr,
        eps=0.0,
        rule="fastai",
        min_delta=min_delta,
    )
    for k, m in enumerate(metrics):
        ref.step(m)
        p.observe(k, m)
        assert max(p.scale(k), min_lr) == pytest.approx(ref.lr, rel=1e-12), k


def test_rules_count_patience_differently():
    """With patience=2 torch reduces after 3 bad evaluations, Keras/optax/fastai after 2."""
    seq = [1.0, 1.0, 1.0, 1.0]  # one best then three ties (ties are not improvements)
    fired_at = {}
    for rule in ("torch", "keras", "optax", "fastai"):
        p = Plateau(patience=2, threshold=0.0, rule=rule, eps=0.0)
        for k, m in enumerate(seq):
            p.observe(k, m)
        fired_at[rule] = p.last_reduced_step
    assert fired_at == {"torch": 3, "keras": 2, "optax": 2, "fastai": 2}


def test_non_finite_metric_is_skipped_with_a_warning():
    """NaN / inf metrics warn and change no counter; they are never an improvement."""
    p = Plateau(patience=1, threshold=0.0)
    p.observe(0, 1.0)
    before = p.state_dict()
    for bad in (float("nan"), float("inf"), -float("inf")):
        with pytest.warns(ControllerWarning, match="non-finite metric"):
            p.observe(1, bad)
    after = p.state_dict()
    assert after["num_skipped"] == 3
    for key in ("best", "num_bad_evals", "num_reductions", "num_evals"):
        assert after[key] == before[key], key
    # -inf in mode min would be "better than anything" if it were counted
    p.observe(2, 1.5)
    p.observe(3, 1.5)
    assert p.num_reductions == 1 and p.best == 1.0


def _lucky_dip_sequence(dip=0.7):
    """Steadily improving loss with one freak low value (a lucky batch) at step 5."""
    seq = [1.0 - 0.01 * k for k in range(30)]
    seq[5] = dip
    return seq


def _reductions(seq, **kwargs):
    p = Plateau(patience=3, **kwargs)
    for k, m in enumerate(seq):
        p.observe(k, m)
    return p.num_reductions


def test_a_single_spike_makes_later_evaluations_bad_without_smoothing():
    """Judged against the best ever, one freak value makes every later evaluation look bad."""
    assert _reductions(_lucky_dip_sequence()) >= 3


def test_smoothing_limits_the_damage_of_a_single_spike():
    """An EMA-smoothed metric reduces far less often after one freak value than the raw one."""
    seq = _lucky_dip_sequence()
    assert _reductions(seq, smoothing=0.9) <= 1 < _reductions(seq)


@pytest.mark.parametrize("dip", [0.2, 0.5, 0.7])
def test_trend_judge_ignores_a_single_spike(dip):
    """The trend judge (Theil-Sen slope) never reduces on a steadily improving loss with a spike."""
    assert _reductions(_lucky_dip_sequence(dip), judge="trend", window=5) == 0


def test_trend_judge_detects_a_real_plateau():
    """The trend judge still reduces when the metric really stops improving."""
    p = Plateau(patience=2, judge="trend", window=4)
    seq = [1.0 - 0.05 * k for k in range(10)] + [0.5] * 10
    for k, m in enumerate(seq):
        p.observe(k, m)
    assert p.num_reductions >= 1
    assert p.last_reduced_step is not None and p.last_reduced_step >= 10


@given(metrics=metrics_st, cut=st.integers(0, 80))
def test_resume_from_state_dict_makes_the_same_decisions(metrics, cut):
    """A Plateau restored from a JSON round-trip of its state continues exactly as the original."""
    kw = dict(factor=0.5, patience=2, cooldown=1, smoothing=0.5, accumulation_size=2)
    a = Plateau(**kw)
    cut = min(cut, len(metrics))
    for k in range(cut):
        a.observe(k, metrics[k])
    b = Plateau(**kw)
    b.load_state_dict(json.loads(json.dumps(a.state_dict(), allow_nan=False)))
    for k in range(cut, len(metrics)):
        a.observe(k, metrics[k])
        b.observe(k, metrics[k])
        assert a.scale(k) == b.scale(k)
    assert a.state_dict() == b.state_dict()


def test_load_state_dict_rejects_another_kind():
    """Loading a state of another controller raises, naming the kind it got."""
    with pytest.raises(ValueError, match="kind='Restarts'"):
        Plateau().load_state_dict({"kind": "Restarts"})


def test_reduce_events_are_emitted_and_drained():
    """Each applied reduction leaves one 'reduce' event, drained by pop_events."""
    p = Plateau(patience=0, factor=0.5)
    for k, m in enumerate([1.0, 2.0, 3.0]):
        p.observe(k, m)
    events = p.pop_events()
    assert [e["kind"] for e in events] == ["reduce", "reduce"]
    assert [e["step"] for e in events] == [1, 2]
    assert p.pop_events() == []


def test_min_scale_bounds_the_scale():
    """The scale never goes below min_scale, and the floor bounds nothing in the scale itself."""
    p = Plateau(patience=0, factor=0.1, min_scale=0.05)
    for k in range(10):
        p.observe(k, float(k))
    assert p.scale(10) == 0.05
    assert p.num_reductions == 2


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        (dict(mode="low"), "Plateau: mode must be one of 'min', 'max', got mode='low'"),
        (dict(factor=1.0), "Plateau: factor must be in \\(0, 1\\), got factor=1.0"),
        (dict(factor=0.0), "factor=0.0"),
        (dict(patience=-1), "Plateau: patience must be an integer >= 0, got patience=-1"),
        (dict(patience=1.5), "patience must be an integer, got patience=1.5"),
        (dict(threshold=-0.1), "threshold=-0.1"),
        (dict(threshold=1.0, threshold_mode="rel"), "threshold=1.0"),
        (dict(threshold_mode="pct"), "threshold_mode='pct'"),
        (dict(cooldown=-2), "cooldown=-2"),
        (dict(floor=-1.0), "floor=-1.0"),
        (dict(min_scale=1.0), "min_scale=1.0"),
        (dict(eps=-1e-9), "eps=-1e-09"),
        (dict(target=""), "target=''"),
        (dict(rule="tf"), "rule='tf'"),
        (dict(rule="optax", patience=0), "patience=0"),
        (dict(rule="fastai", cooldown=1), "rule='fastai' has no cooldown, got cooldown=1"),
        (dict(min_delta=-1.0), "min_delta=-1.0"),
        (dict(accumulation_size=0), "accumulation_size=0"),
        (dict(smoothing=1.0), "smoothing=1.0"),
        (dict(judge="ema"), "judge='ema'"),
        (dict(window=1), "window=1"),
    ],
)
def test_bad_arguments_raise_naming_argument_and_value(kwargs, match):
    """Every bad constructor argument raises ValueError/TypeError naming it and its value."""
    with pytest.raises((ValueError, TypeError), match=match):
        Plateau(**kwargs)


def test_bad_metric_type_raises():
    """A string metric is a TypeError, not silently converted."""
    with pytest.raises(TypeError, match=r"metric='0\.5'"):
        Plateau().observe(0, "0.5")


def test_no_warning_on_finite_metrics():
    """Finite metrics never warn."""
    p = Plateau(patience=0)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        for k in range(5):
            p.observe(k, float(k))
